package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// withMaster returns a copy of r with master key id of suite s added (32
// random bytes) and made active.
func withMaster(r *crypto.Ring, id string, s crypto.Suite) *crypto.Ring {
	out := *r
	out.Master = crypto.KeySet{Active: id, Keys: map[string][]byte{}, Suites: map[string]crypto.Suite{}}
	for k, v := range r.Master.Keys {
		out.Master.Keys[k] = v
		out.Master.Suites[k] = r.Master.SuiteOf(k)
	}
	out.Master.Keys[id] = crypto.NewDataKey()
	out.Master.Suites[id] = s
	return &out
}

// withoutMaster returns a copy of r without master key id.
func withoutMaster(r *crypto.Ring, id string) *crypto.Ring {
	out := *r
	out.Master = crypto.KeySet{Active: r.Master.Active, Keys: map[string][]byte{}, Suites: r.Master.Suites}
	for k, v := range r.Master.Keys {
		if k != id {
			out.Master.Keys[k] = v
		}
	}
	return &out
}

// sealedValues reads every sealed value of the database: users' ID numbers
// and phones, fingerprint templates.
func sealedValues(t *testing.T, db *store.DB) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for _, q := range []string{
		"SELECT id_number_enc FROM users WHERE id_number_enc <> ''",
		"SELECT phone_enc FROM users WHERE phone_enc <> ''",
		"SELECT template_enc FROM user_fingers",
	} {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		rows.Close()
	}
	return out
}

func keyAlgorithms(st *identity.KeyStatus) map[string]string {
	out := map[string]string{}
	for _, k := range st.Keys {
		out[k.ID] = k.Suite.Algorithm() + " under " + k.MasterKeyID() + " " + st.MasterSuites[k.MasterKeyID()].Algorithm()
	}
	return out
}

// TestRotationBetweenSuites, on SQLite and (with UIAS_TEST_PG_DSN)
// PostgreSQL: a database on AES keys moves to SM4 (an SM4 master key made
// active in the ring, "keys rotate", "keys reencrypt"): the new data key is
// SM4-GCM, every data key is re-wrapped with SM4-GCM, every stored value
// (ID number, phone, fingerprint template) is sealed "<key>:sm4:...", and
// the old AES master key can leave the ring; then back to AES the same
// way. Values of both suites open side by side meanwhile. A ring missing
// the SM4 master key, and a value with an unknown algorithm tag, are
// refused, changing nothing.
func TestRotationBetweenSuites(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			ring, err := crypto.ParseRing(crypto.NewRingJSON())
			if err != nil {
				t.Fatal(err)
			}
			k := &keyed{db: db, st: sqlstore.New(db), ring: ring}
			svc, _ := k.instance(t)
			w := setupOn(t, svc, nil)
			orgs, _, _ := svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
			ada, err := svc.CreateUser(ctx, identity.NewUser{LoginName: "ada", DisplayName: "Ada", OrgID: orgs[0].ID,
				IDType: identity.IDTypeResidentID, IDNumber: "110101199003071233", Phone: "13812345678"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.EnrollFinger(ctx, w.user.ID, 2, impression(1, 0)); err != nil {
				t.Fatal(err)
			}
			for _, v := range sealedValues(t, db) {
				if !strings.HasPrefix(v, "d1:") || strings.Contains(v, ":sm4:") {
					t.Fatalf("a value of an AES database: %q", head8(v))
				}
			}

			// To SM4: an SM4 master key m2 joins the ring, active.
			k.ring = withMaster(ring, "m2", crypto.SuiteSM4)
			svc, _ = k.instance(t)
			st, err := svc.KeyStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := keyAlgorithms(st); got["d1"] != "AES-256-GCM under m1 AES-256-GCM" || st.MasterSuites["m2"] != crypto.SuiteSM4 {
				t.Fatalf("status before the rotation: %v, active master %s", got, st.MasterSuites["m2"])
			}
			st, err = svc.RotateKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := keyAlgorithms(st); st.ActiveKeyID != "d2" || got["d2"] != "SM4-GCM under m2 SM4-GCM" ||
				got["d1"] != "AES-256-GCM under m2 SM4-GCM" || st.OnOlderKeys != 3 {
				t.Fatalf("after the rotation to SM4: active %s, %v, %d on older keys", st.ActiveKeyID, got, st.OnOlderKeys)
			}
			dks, _ := k.st.ListDataKeys(ctx)
			for _, dk := range dks {
				if !strings.HasPrefix(dk.Wrapped, "m2:sm4:") {
					t.Fatalf("data key %s is wrapped as %q", dk.ID, head8(dk.Wrapped))
				}
			}
			// Mixed: a new person on SM4 while ada is still on AES.
			bo, err := svc.CreateUser(ctx, identity.NewUser{LoginName: "bo", DisplayName: "Bo", OrgID: orgs[0].ID,
				IDType: identity.IDTypeResidentID, IDNumber: "440304198510105612", Phone: "13900000000"})
			if err != nil {
				t.Fatal(err)
			}
			if i, p := sealedOf(t, db, bo.ID); !strings.HasPrefix(i, "d2:sm4:") || !strings.HasPrefix(p, "d2:sm4:") {
				t.Fatalf("a new person on the SM4 key: %q %q", head8(i), head8(p))
			}
			for _, u := range []*identity.User{ada, bo} {
				got, err := svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: u.DisplayName + "!"})
				if err != nil || got.IDNumberMask == "" || got.PhoneMask == "" {
					t.Fatalf("update of %s with both suites in the database: %v", u.LoginName, err)
				}
			}
			r, err := svc.ReencryptData(ctx, 0)
			if err != nil || r.Failed != 0 || r.Remaining != 0 || r.Reencrypted == 0 {
				t.Fatalf("re-encrypt to SM4: %+v %v", r, err)
			}
			for _, v := range sealedValues(t, db) {
				if !strings.HasPrefix(v, "d2:sm4:") {
					t.Fatalf("a value still on %q after re-encryption", head8(v))
				}
			}

			// The AES master key leaves; the fingerprint still matches, the
			// personal data still opens.
			k.ring = withoutMaster(k.ring, "m1")
			svc, _ = k.instance(t)
			w2 := &world{svc: svc, ctx: w.ctx, user: w.user}
			if r := w2.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 1), ""); r != identity.ReasonOK {
				t.Fatalf("finger after the move to SM4: %v", r)
			}
			if r := w2.mustAuthFinger(t, identity.AuthFingerprint, impression(2, 1), ""); r != identity.ReasonBadCredentials {
				t.Fatalf("another finger: %v", r)
			}
			if got, err := svc.UpdateUser(ctx, ada.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Ada 2"}); err != nil || got.IDNumberMask == "" {
				t.Fatalf("ada on SM4 only: %v", err)
			}

			// A ring without the SM4 master key: refused by name.
			if _, err := identity.OpenKeys(ctx, k.st, withoutMaster(k.ring, "m2"), true, zap.NewNop()); !errors.Is(err, identity.ErrKeyRingMismatch) ||
				!strings.Contains(err.Error(), `master key "m2"`) {
				t.Fatalf("ring without m2: %v", err)
			}

			// Back to AES: an AES master key m3, rotate, re-encrypt.
			k.ring = withMaster(k.ring, "m3", crypto.SuiteAES)
			svc, _ = k.instance(t)
			st, err = svc.RotateKeys(ctx)
			if err != nil || st.ActiveKeyID != "d3" || keyAlgorithms(st)["d3"] != "AES-256-GCM under m3 AES-256-GCM" {
				t.Fatalf("rotation back to AES: %v %v", keyAlgorithms(st), err)
			}
			// A value with an unknown algorithm tag is refused and kept.
			bad := "d2:sm9:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			if _, err := db.ExecContext(ctx, db.Rebind("UPDATE users SET phone_enc = ? WHERE id = ?"), bad, bo.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.UpdateUser(ctx, bo.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Bo 3"}); reason(err) != "PERSONAL_DATA_UNREADABLE" {
				t.Fatalf("update of a person with an unknown algorithm tag: %v", err)
			}
			// (bo's ID number stays with the phone: a person's values move
			// together)
			r, err = svc.ReencryptData(ctx, 0)
			if err != nil || r.Failed != 1 || r.Remaining != 2 {
				t.Fatalf("re-encrypt back to AES: %+v %v", r, err)
			}
			boID, p := sealedOf(t, db, bo.ID)
			if p != bad || !strings.HasPrefix(boID, "d2:sm4:") {
				t.Fatalf("the unreadable person's values were changed: %q %q", head8(boID), p)
			}
			for _, v := range sealedValues(t, db) {
				if v != bad && v != boID && (!strings.HasPrefix(v, "d3:") || strings.Contains(v, ":sm4:")) {
					t.Fatalf("a value on %q after the move back to AES", head8(v))
				}
			}
			w3 := &world{svc: svc, ctx: w.ctx, user: w.user}
			if r := w3.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 2), ""); r != identity.ReasonOK {
				t.Fatalf("finger after the move back to AES: %v", r)
			}
		})
	}
}

// head8 is the start of a sealed value, for messages.
func head8(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// sealedOf is keyed.sealed on either database.
func sealedOf(t *testing.T, db *store.DB, id string) (string, string) {
	t.Helper()
	var a, b string
	if err := db.QueryRowContext(context.Background(), db.Rebind("SELECT id_number_enc, phone_enc FROM users WHERE id = ?"), id).Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	return a, b
}
