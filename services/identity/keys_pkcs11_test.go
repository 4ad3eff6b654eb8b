//go:build pkcs11 && cgo

package identity_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/crypto/hsmtest"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// softHSMKey makes a SoftHSM2 token with a master key (hsmtest.Key).
func softHSMKey(t *testing.T) crypto.ModuleKeyConfig {
	t.Helper()
	return hsmtest.Key(t, filepath.Join("..", ".."), "uias-m2")
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
