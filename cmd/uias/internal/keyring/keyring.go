// Package keyring is the `uias keys` command: offline key ring tasks that
// need no running server ("uias ctl keys" rotates the data keys of a
// running deployment).
package keyring

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/uias/uias/pkg/crypto"
)

const usage = `Usage: uias keys new [--suite aes|sm4] [--out FILE]
       uias keys new-pkcs11 --module LIB --token TOKEN --label LABEL (--pin-env VAR | --pin-file FILE) [--id m2]

  new    makes a new key ring (version 2: one random master key, one random
         signing key). With --out it is written to FILE (mode 0600; an
         existing file is never replaced), for identity.key_file; without,
         the JSON is printed, to keep in a Secret given to every identity
         replica as UIAS_KEYRING. Every replica of one database needs the
         same ring: make it once, back it up, and hand out copies.
         --suite sm4 makes keys of the national commercial suite (SM4-GCM,
         HKDF-SM3, HMAC-SM3; "m1": {"suite": "sm4", "key": ...}); the
         default, aes, is AES-256-GCM, HKDF-SHA-256, HMAC-SHA-256. To move
         an existing deployment, add one such key to its ring instead
         (docs/operators.md, Key ring).

  new-pkcs11
         makes an AES-256 master key inside a cipher machine (a PKCS#11
         token; SoftHSM2 for tests) that never leaves it (sensitive, not
         extractable), labelled LABEL, and prints the entry to add to the
         ring's "master" keys. The PIN is read from the environment
         variable or file named, never from the command line or the ring.
         Needs a uias built with the pkcs11 tag (cgo).
`

// Main runs `uias keys ...`; it returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "new-pkcs11" {
		return newPKCS11(args[1:], stdout, stderr)
	}
	if args[0] != "new" {
		fmt.Fprintf(stderr, "uias keys: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	fset := flag.NewFlagSet("uias keys new", flag.ContinueOnError)
	fset.SetOutput(stderr)
	out := fset.String("out", "", "write the ring to this file (mode 0600) instead of printing it")
	suiteName := fset.String("suite", "aes", "the keys' suite: aes (AES-256-GCM, HMAC-SHA-256) or sm4 (SM4-GCM, HMAC-SM3)")
	if err := fset.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() != 0 {
		fmt.Fprintf(stderr, "uias keys new: unexpected argument %q\n", fset.Arg(0))
		return 2
	}
	suite, err := crypto.ParseSuite(*suiteName)
	if err != nil || *suiteName == "" {
		fmt.Fprintf(stderr, "uias keys new: --suite %q: want aes or sm4\n", *suiteName)
		return 2
	}
	ring := crypto.NewRingJSONSuite(suite)
	if *out == "" {
		_, _ = stdout.Write(ring)
		return 0
	}
	if err := writeNew(*out, ring); err != nil {
		fmt.Fprintf(stderr, "uias keys new: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote a new key ring (%s) to %s (mode 0600): back it up, and give every identity replica the same ring\n",
		suite.Algorithm(), *out)
	return 0
}

// writeNew creates path (and its directory, 0700) with data, mode 0600,
// refusing to replace an existing file: a replaced ring makes the data
// sealed with the old one unreadable.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: a key ring is never replaced (the data sealed with it would be lost); choose another file", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}

// newPKCS11 is "uias keys new-pkcs11".
func newPKCS11(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("uias keys new-pkcs11", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var c crypto.ModuleKeyConfig
	fset.StringVar(&c.Module, "module", "", "the PKCS#11 library of the cipher machine (e.g. /usr/lib/softhsm/libsofthsm2.so)")
	fset.StringVar(&c.Token, "token", "", "the label of the token")
	fset.StringVar(&c.Label, "label", "", "the label of the new key (must be free)")
	fset.StringVar(&c.PinEnv, "pin-env", "", "the environment variable holding the user PIN")
	fset.StringVar(&c.PinFile, "pin-file", "", "the file holding the user PIN")
	id := fset.String("id", "m2", "the master key id to print the ring entry for")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() != 0 {
		fmt.Fprintf(stderr, "uias keys new-pkcs11: unexpected argument %q\n", fset.Arg(0))
		return 2
	}
	if err := crypto.CheckKeyID(*id); err != nil {
		fmt.Fprintf(stderr, "uias keys new-pkcs11: --id: %v\n", err)
		return 2
	}
	if err := crypto.NewPKCS11Key(c); err != nil {
		fmt.Fprintf(stderr, "uias keys new-pkcs11: %v\n", err)
		return 1
	}
	entry, _ := json.Marshal(map[string]any{*id: map[string]any{"pkcs11": c}})
	fmt.Fprintf(stdout, "made key %q on token %q; add this to the ring's \"master\" keys (and make it active):\n%s\n",
		c.Label, c.Token, strings.TrimSuffix(strings.TrimPrefix(string(entry), "{"), "}"))
	return 0
}
