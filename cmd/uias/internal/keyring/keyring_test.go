package keyring

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
)

func TestNew(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"new"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := crypto.ParseRing(out.Bytes()); err != nil {
		t.Fatalf("printed ring does not parse: %v", err)
	}
	path := filepath.Join(t.TempDir(), "sub", "keyring.json")
	out.Reset()
	if code := Main([]string{"new", "--out", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ring file: %v %v", fi, err)
	}
	if _, err := crypto.LoadRing(crypto.RingSource{File: path}); err != nil {
		t.Fatalf("written ring does not load: %v", err)
	}
	before, _ := os.ReadFile(path)
	errb.Reset()
	if code := Main([]string{"new", "--out", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "never replaced") {
		t.Fatalf("existing file: exit %d: %s", code, errb.String())
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the existing ring was changed")
	}
}

// "uias keys new --suite sm4" makes a ring of SM4 keys; an unknown suite
// is a usage error that writes nothing.
func TestNewSuite(t *testing.T) {
	var out, errb bytes.Buffer
	path := filepath.Join(t.TempDir(), "keyring.json")
	if code := Main([]string{"new", "--suite", "sm4", "--out", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "SM4-GCM") {
		t.Fatalf("message: %s", out.String())
	}
	r, err := crypto.LoadRing(crypto.RingSource{File: path})
	if err != nil || r.Suite() != crypto.SuiteSM4 || r.Signing.SuiteOf("s1") != crypto.SuiteSM4 {
		t.Fatalf("an SM4 ring: %v", err)
	}
	out.Reset()
	if code := Main([]string{"new", "--suite", "aes"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if r, err := crypto.ParseRing(out.Bytes()); err != nil || r.Suite() != crypto.SuiteAES || strings.Contains(out.String(), "suite") {
		t.Fatalf("an AES ring: %v\n%s", err, out.String())
	}
	other := filepath.Join(t.TempDir(), "k.json")
	for _, bad := range []string{"sm9", "", "AES"} {
		errb.Reset()
		if code := Main([]string{"new", "--suite", bad, "--out", other}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "want aes or sm4") {
			t.Fatalf("--suite %q: exit %d: %s", bad, code, errb.String())
		}
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatal("a refused suite wrote a ring")
	}
}

// Without the pkcs11 build, "uias keys new-pkcs11" says what is missing.
func TestNewPKCS11WithoutTheBuild(t *testing.T) {
	if crypto.PKCS11Supported() {
		t.Skip("this build has PKCS#11 (pkg/crypto tests it against SoftHSM2)")
	}
	var out, errb bytes.Buffer
	code := Main([]string{"new-pkcs11", "--module", "/usr/lib/softhsm/libsofthsm2.so", "--token", "t", "--label", "k", "--pin-env", "X"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "built without PKCS#11") {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if code := Main([]string{"new-pkcs11", "--id", "a:b"}, &out, &errb); code != 2 {
		t.Fatalf("a bad id: exit %d", code)
	}
}
