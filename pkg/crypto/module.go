package crypto

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// A cipher machine (加密机, a hardware security module) can hold master
// keys of the ring: such a key never leaves the module. Data keys are
// wrapped and unwrapped inside it (AES-256-GCM with the key object), and the
// keys the ring derives from a master key (key-check value, purpose keys)
// are derived inside it (NIST SP 800-108 counter mode with AES-CMAC). It is
// reached through PKCS#11, which needs cgo: only a build with the pkcs11
// tag has it (hsm_pkcs11.go); the default pure-Go build refuses a ring
// naming one, saying so.
//
// In the ring file a module key is an object:
//
//	"m3": {"pkcs11": {"module": "/usr/lib/softhsm/libsofthsm2.so",
//	                  "token": "uias", "label": "uias-m3",
//	                  "pin_env": "UIAS_HSM_PIN"}}
//
// The PIN comes from the environment variable pin_env or the file pin_file,
// never from the ring or the config file.

// ModuleKey is a master key inside a cipher machine.
type ModuleKey interface {
	// Seal encrypts plaintext with AES-256-GCM in the module under a fresh
	// 12-byte nonce, binding aad; it returns nonce|ciphertext|tag.
	Seal(plaintext, aad []byte) ([]byte, error)
	// Open reverses Seal (in the module).
	Open(sealed, aad []byte) ([]byte, error)
	// Derive returns n bytes derived in the module for info (SP 800-108
	// counter mode, AES-CMAC as PRF).
	Derive(info string, n int) ([]byte, error)
	// String names the key (module, token, label) for messages.
	String() string
}

// ModuleKeyConfig is how a ring file names a module key.
type ModuleKeyConfig struct {
	Module  string `json:"module"`
	Token   string `json:"token"`
	Label   string `json:"label"`
	PinEnv  string `json:"pin_env,omitempty"`
	PinFile string `json:"pin_file,omitempty"`
	// allowOpenPIN accepts a PIN file that group or others may access, as
	// RingSource.AllowOpenFile does the ring file (LoadRing passes it on).
	allowOpenPIN bool
}

// ErrModule reports that the cipher machine failed an operation (the
// device, the session, the login): not that the value is wrong
// (ErrOpenFailed). The error names the key and the module's error.
var ErrModule = errors.New("the cipher machine failed")

// ErrNoPKCS11 reports a ring naming a module key in a build without
// PKCS#11.
var ErrNoPKCS11 = errors.New("this uias was built without PKCS#11 (cipher machine) support: build it with the pkcs11 tag (docs/operators.md, Key ring)")

// openModuleKey opens a module key; set by hsm_pkcs11.go in a build with
// the pkcs11 tag.
var openModuleKey func(ModuleKeyConfig, string) (ModuleKey, error)

// PKCS11Supported reports whether this build can use cipher machines.
func PKCS11Supported() bool { return openModuleKey != nil }

// pin reads the PIN of c from its environment variable or file (used by
// the pkcs11 build only).
//
//nolint:unused // the default build has no cipher machine
func (c ModuleKeyConfig) pin() (string, error) {
	switch {
	case c.PinEnv != "" && c.PinFile != "":
		return "", errors.New("give the PIN by pin_env or pin_file, not both")
	case c.PinEnv != "":
		v, ok := os.LookupEnv(c.PinEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("the PIN variable %s is not set", c.PinEnv)
		}
		return v, nil
	case c.PinFile != "":
		// With the module and label in the ring, the PIN is all it takes to
		// wrap and unwrap every data key in the module: its file gets the
		// ring file's mode check (sec31b L2).
		fi, err := os.Stat(c.PinFile)
		if err != nil {
			return "", fmt.Errorf("the PIN file: %w", err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 && !c.allowOpenPIN {
			return "", fmt.Errorf("the PIN file %s has mode %04o: %w; make it readable by the UIAS user only "+
				"(chmod 600, or defaultMode 0400 on a Kubernetes Secret volume), or accept it explicitly as for the key ring file", c.PinFile, perm, ErrKeyFileOpen)
		}
		b, err := os.ReadFile(c.PinFile)
		if err != nil {
			return "", fmt.Errorf("the PIN file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", errors.New("a module key needs pin_env or pin_file (the PIN is never in the ring)")
}

func (c ModuleKeyConfig) check() error {
	if c.Module == "" || c.Token == "" || c.Label == "" {
		return errors.New("a module key needs module, token and label")
	}
	return nil
}
