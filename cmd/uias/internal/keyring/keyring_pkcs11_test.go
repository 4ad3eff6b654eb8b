//go:build pkcs11 && cgo

package keyring

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
)

// "uias keys new-pkcs11" against SoftHSM2 (docs/operators.md, A cipher
// machine): it makes the key, prints the ring entry, and a ring with that
// entry wraps inside the token; a second key with the same label is
// refused.
func TestNewPKCS11(t *testing.T) {
	out, err := exec.Command(filepath.Join("..", "..", "..", "..", "scripts", "softhsm.sh")).Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SoftHSM2 is needed for the pkcs11 build's tests: %v", err)
		}
		t.Skipf("SoftHSM2 is not available: %v", err)
	}
	module := strings.TrimSpace(string(out))
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "uias", "--so-pin", "87654321", "--pin", "12345678").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v %s", err, out)
	}
	t.Setenv("UIAS_HSM_PIN", "12345678")
	args := []string{"new-pkcs11", "--module", module, "--token", "uias", "--label", "uias-m2", "--pin-env", "UIAS_HSM_PIN", "--id", "m2"}
	var stdout, stderr bytes.Buffer
	if code := Main(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	_, entry, ok := strings.Cut(stdout.String(), "\n")
	if !ok || !strings.HasPrefix(entry, `"m2":{"pkcs11":`) || strings.Contains(stdout.String(), "12345678") {
		t.Fatalf("output:\n%s", stdout.String())
	}
	r, err := crypto.ParseRing([]byte(`{"version": 2, "master": {"active": "m2", "keys": {` + strings.TrimSpace(entry) + `}}}`))
	if err != nil {
		t.Fatal(err)
	}
	dk := crypto.NewDataKey()
	w, err := r.WrapKey(dk, "d1")
	if err != nil || !strings.HasPrefix(w, "m2:") {
		t.Fatalf("wrap: %q %v", w, err)
	}
	if got, err := r.UnwrapKey(w, "d1"); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	stderr.Reset()
	if code := Main(args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "never replaced") {
		t.Fatalf("the same label again: exit %d: %s", code, stderr.String())
	}
}
