//go:build pkcs11 && cgo

package identity_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// softHSMKey makes a token in a temporary SoftHSM2 directory and a master
// key on it, and returns its ring entry (scripts/softhsm.sh installs
// SoftHSM2; without it the test skips, or fails in CI).
func softHSMKey(t *testing.T) crypto.ModuleKeyConfig {
	t.Helper()
	out, err := exec.Command(filepath.Join("..", "..", "scripts", "softhsm.sh")).Output()
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
	c := crypto.ModuleKeyConfig{Module: strings.TrimSpace(string(out)), Token: "uias", Label: "uias-m2", PinEnv: "UIAS_TEST_HSM_PIN"}
	if err := crypto.NewPKCS11Key(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPKCS11RotationIntoTheModule: a database on the ring's AES master key
// moves to a master key in a cipher machine (SoftHSM2): "keys rotate"
// re-wraps every data key inside the token, re-encryption moves the data,
// and with the ring's own master key gone everything still opens.
func TestPKCS11RotationIntoTheModule(t *testing.T) {
	c := softHSMKey(t)
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	soft, _ := crypto.ParseRing(crypto.NewRingJSON())
	k := &keyed{db: db, st: sqlstore.New(db), ring: soft}
	svc, _ := k.instance(t)
	w := setupOn(t, svc, nil)
	if _, err := svc.EnrollFinger(ctx, w.user.ID, 2, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	ringWith := func(withM1 bool) *crypto.Ring {
		keys := map[string]any{"m2": map[string]any{"pkcs11": c}}
		if withM1 {
			keys["m1"] = base64.StdEncoding.EncodeToString(soft.Master.Keys["m1"])
		}
		b, _ := json.Marshal(map[string]any{"version": 2, "master": map[string]any{"active": "m2", "keys": keys},
			"signing": map[string]any{"active": "s1", "keys": map[string]string{"s1": base64.StdEncoding.EncodeToString(soft.Signing.Keys["s1"])}}})
		r, err := crypto.ParseRing(b)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k.ring = ringWith(true)
	svc, _ = k.instance(t)
	st, err := svc.RotateKeys(ctx)
	if err != nil || st.ActiveKeyID != "d2" {
		t.Fatalf("rotate: %+v %v", st, err)
	}
	dks, _ := k.st.ListDataKeys(ctx)
	for _, dk := range dks {
		if !strings.HasPrefix(dk.Wrapped, "m2:") {
			t.Fatalf("data key %s is not wrapped in the token: %q", dk.ID, head8(dk.Wrapped))
		}
	}
	if r, err := svc.ReencryptData(ctx, 0); err != nil || r.Remaining != 0 || r.Failed != 0 {
		t.Fatalf("re-encrypt: %+v %v", r, err)
	}
	k.ring = ringWith(false)
	svc, _ = k.instance(t)
	w2 := &world{svc: svc, ctx: w.ctx, user: w.user}
	if r := w2.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 1), ""); r != identity.ReasonOK {
		t.Fatalf("finger with the master key in the token only: %v", r)
	}
}
