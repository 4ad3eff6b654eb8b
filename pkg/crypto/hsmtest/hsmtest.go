// Package hsmtest gives the tests of the pkcs11 build a cipher machine:
// a SoftHSM2 token in a temporary directory with a master key on it
// (scripts/softhsm.sh finds or installs SoftHSM2).
package hsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
)

// Key makes a SoftHSM2 token (label "uias", PIN in UIAS_TEST_HSM_PIN) in a
// temporary directory and a master key labelled label on it, and returns
// its ring entry. root is the repository's top directory, relative to the
// test's package. Without SoftHSM2 the test skips, or fails in CI
// (CI=true).
func Key(t *testing.T, root, label string) crypto.ModuleKeyConfig {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "scripts", "softhsm.sh")).Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SoftHSM2 is needed for the pkcs11 build's tests: %v", err)
		}
		t.Skipf("SoftHSM2 is not available: %v", err)
	}
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
	t.Setenv("UIAS_TEST_HSM_PIN", "12345678")
	c := crypto.ModuleKeyConfig{Module: strings.TrimSpace(string(out)), Token: "uias", Label: label, PinEnv: "UIAS_TEST_HSM_PIN"}
	if err := crypto.NewPKCS11Key(c); err != nil {
		t.Fatal(err)
	}
	return c
}
