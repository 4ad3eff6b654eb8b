package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// keyed is a SQLite store with services running on data keys opened from a
// key ring.
type keyed struct {
	db   *store.DB
	st   *sqlstore.Store
	ring *crypto.Ring
}

func newKeyed(t *testing.T) *keyed {
	t.Helper()
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	return &keyed{db: db, st: sqlstore.New(db), ring: ring}
}

// instance opens the keys (as a starting component does) and builds a service.
func (k *keyed) instance(t *testing.T) (*identity.Service, *identity.Keys) {
	t.Helper()
	ctx := context.Background()
	has, err := identity.HasKeyedData(ctx, k.st, k.st)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := identity.OpenKeys(ctx, k.st, k.ring, has, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	svc, err := identity.New(identity.Deps{Store: k.st, Keys: keys, Logger: zap.NewNop(),
		Hasher: crypto.NewHasher(crypto.HasherConfig{Params: crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})})
	if err != nil {
		t.Fatal(err)
	}
	return svc, keys
}

func (k *keyed) sealed(t *testing.T, id string) (string, string) {
	t.Helper()
	var a, b string
	if err := k.db.QueryRowContext(context.Background(), "SELECT id_number_enc, phone_enc FROM users WHERE id = ?", id).Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func person(t *testing.T, svc *identity.Service, login string) *identity.User {
	t.Helper()
	ctx := context.Background()
	if _, _, err := svc.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	orgs, _, err := svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := svc.CreateUser(ctx, identity.NewUser{LoginName: login, DisplayName: login, OrgID: orgs[0].ID,
		IDType: identity.IDTypeResidentID, IDNumber: "110101199003071233", Phone: "13812345678"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func reason(err error) string {
	if e, ok := apierr.As(err); ok {
		return e.Reason
	}
	return ""
}

// An update of a person whose stored values do not decrypt fails and
// changes nothing (it used to store the values as empty).
func TestUpdateUserNeverErasesUndecryptableData(t *testing.T) {
	k := newKeyed(t)
	svc, _ := k.instance(t)
	u := person(t, svc, "ada")
	idEnc, phoneEnc := k.sealed(t, u.ID)
	// The stored value is damaged (or sealed with a key this ring lacks).
	if _, err := k.db.ExecContext(context.Background(), "UPDATE users SET phone_enc = ? WHERE id = ?", "d1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", u.ID); err != nil {
		t.Fatal(err)
	}
	_, err := svc.UpdateUser(context.Background(), u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Ada L"})
	if reason(err) != "PERSONAL_DATA_UNREADABLE" || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("update: %v, want PERSONAL_DATA_UNREADABLE", err)
	}
	if a, _ := k.sealed(t, u.ID); a != idEnc {
		t.Fatal("the ID number changed")
	}
	_ = phoneEnc
	got, _ := k.st.GetUser(context.Background(), u.ID)
	if got.DisplayName != "ada" {
		t.Fatal("the update was applied")
	}
}

// OpenKeys refuses a different ring, and a database with data but without
// data keys unless the ring is the version-1 ring that sealed it.
func TestOpenKeysChecksTheRing(t *testing.T) {
	k := newKeyed(t)
	svc, _ := k.instance(t)
	person(t, svc, "bea")
	ctx := context.Background()
	checks, _ := k.st.ListKeyChecks(ctx)
	if len(checks) != 1 || checks[0].MasterID != "m1" {
		t.Fatalf("key checks: %+v", checks)
	}
	// Same ring again: fine.
	k.instance(t)
	// Another ring with the same key ids.
	other, _ := crypto.ParseRing(crypto.NewRingJSON())
	_, err := identity.OpenKeys(ctx, k.st, other, true, zap.NewNop())
	if !errors.Is(err, identity.ErrKeyRingMismatch) {
		t.Fatalf("other ring: %v", err)
	}
	// A ring with other ids: the data keys do not unwrap.
	other.Master.Keys["m9"], other.Master.Active = other.Master.Keys["m1"], "m9"
	delete(other.Master.Keys, "m1")
	_, err = identity.OpenKeys(ctx, k.st, other, true, zap.NewNop())
	if !errors.Is(err, identity.ErrKeyRingMismatch) || !strings.Contains(err.Error(), `master key "m1"`) {
		t.Fatalf("ring without m1: %v", err)
	}
	if checks, _ := k.st.ListKeyChecks(ctx); len(checks) != 1 {
		t.Fatalf("a refused ring stored a key check: %+v", checks)
	}

	// Data without data keys and a version-2 ring: refused.
	k2 := newKeyed(t)
	if _, _, err := newPlainService(t, k2.st).Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	_, err = identity.OpenKeys(ctx, k2.st, k2.ring, true, zap.NewNop())
	if !errors.Is(err, identity.ErrKeyRingMismatch) || !strings.Contains(err.Error(), "version-1") {
		t.Fatalf("v2 ring on pre-data-key data: %v", err)
	}
}

func newPlainService(t *testing.T, st identity.Store) *identity.Service {
	t.Helper()
	return testService(t, identity.Deps{Store: st})
}

// A rotation through one instance reaches another: it opens values sealed
// with the new key at once (reload on an unknown key id) and seals with it
// after a reload.
func TestRotationAcrossInstances(t *testing.T) {
	k := newKeyed(t)
	a, _ := k.instance(t)
	b, bKeys := k.instance(t)
	u := person(t, a, "cy")
	ctx := context.Background()
	st, err := a.RotateKeys(ctx)
	if err != nil || st.ActiveKeyID != "d2" || st.OnOlderKeys != 2 {
		t.Fatalf("rotate: %+v %v", st, err)
	}
	// a re-seals the person with d2; b has not reloaded yet.
	if _, err := a.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Cy 2"}); err != nil {
		t.Fatal(err)
	}
	if i, _ := k.sealed(t, u.ID); !strings.HasPrefix(i, "d2:") {
		t.Fatalf("after an update through the rotating instance: %q", i)
	}
	got, err := b.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Cy 3"})
	if err != nil || got.IDNumberMask == "" || got.PhoneMask == "" {
		t.Fatalf("update through the other instance: %v %+v", err, got)
	}
	if bKeys.Sealer().ActiveKeyID() != "d2" {
		t.Fatalf("the other instance seals with %s after reloading", bKeys.Sealer().ActiveKeyID())
	}
}

// ReencryptData moves values in batches, counts values that do not decrypt
// as failed and leaves them untouched, and checks its batch size.
func TestReencryptData(t *testing.T) {
	k := newKeyed(t)
	svc, _ := k.instance(t)
	ctx := context.Background()
	var users []*identity.User
	users = append(users, person(t, svc, "u1"))
	orgs, _, _ := svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	for _, l := range []string{"u2", "u3"} {
		u, err := svc.CreateUser(ctx, identity.NewUser{LoginName: l, DisplayName: l, OrgID: orgs[0].ID, Phone: "13812345678"})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	damaged := "d1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if _, err := k.db.ExecContext(ctx, "UPDATE users SET phone_enc = ? WHERE id = ?", damaged, users[2].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int{-1, identity.MaxReencryptBatch + 1} {
		if _, err := svc.ReencryptData(ctx, bad); reason(err) != "BAD_REQUEST" {
			t.Errorf("batch %d: %v", bad, err)
		}
	}
	// Four values on d1: u1's ID number and phone, u2's and u3's phones.
	// Which user a batch of one takes depends on id order (random within
	// a millisecond), so it leaves 2, 3 or (the damaged one) 4 values.
	r1, err := svc.ReencryptData(ctx, 1)
	if err != nil || r1.Reencrypted+r1.Failed != 1 || r1.Remaining < 2 || r1.Remaining > 4 || r1.ActiveKeyID != "d2" {
		t.Fatalf("first batch: %+v %v", r1, err)
	}
	r2, err := svc.ReencryptData(ctx, 0)
	if err != nil || r1.Reencrypted+r2.Reencrypted != 2 || r2.Failed != 1 || r2.Remaining != 1 {
		t.Fatalf("second batch: %+v (first %+v) %v", r2, r1, err)
	}
	if _, p := k.sealed(t, users[2].ID); p != damaged {
		t.Fatal("a value that does not decrypt was changed")
	}
	for _, u := range users[:2] {
		i, p := k.sealed(t, u.ID)
		if (i != "" && !strings.HasPrefix(i, "d2:")) || !strings.HasPrefix(p, "d2:") {
			t.Fatalf("user %s still on %q / %q", u.LoginName, i, p)
		}
	}
	// Without key management (a service built on a bare Sealer).
	plain := newPlainService(t, k.st)
	if _, err := plain.RotateKeys(ctx); reason(err) != "KEYS_UNAVAILABLE" {
		t.Fatalf("rotate without keys: %v", err)
	}
}

// TestReencryptFingerTemplates: after a rotation, fingerprint templates
// count among the values on older keys and the re-encrypt job moves them
// to the new key; with the old data key retired (gone from the database)
// a new instance still matches the enrolled finger.
func TestReencryptFingerTemplates(t *testing.T) {
	k := newKeyed(t)
	svc, _ := k.instance(t)
	w := setupOn(t, svc, nil)
	ctx := context.Background()
	if _, err := svc.EnrollFinger(ctx, w.user.ID, 2, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EnrollFinger(ctx, w.user.ID, 7, impression(3, 0)); err != nil {
		t.Fatal(err)
	}
	st, err := svc.RotateKeys(ctx)
	if err != nil || st.ActiveKeyID != "d2" || st.OnOlderKeys != 2 {
		t.Fatalf("after rotate: %+v %v (want both templates on older keys)", st, err)
	}
	r, err := svc.ReencryptData(ctx, 1)
	if err != nil || r.Reencrypted != 1 || r.Remaining != 1 {
		t.Fatalf("first batch: %+v %v", r, err)
	}
	r, err = svc.ReencryptData(ctx, 0)
	if err != nil || r.Reencrypted != 1 || r.Failed != 0 || r.Remaining != 0 {
		t.Fatalf("second batch: %+v %v", r, err)
	}
	rows, err := k.db.QueryContext(ctx, "SELECT template_enc FROM user_fingers")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var enc string
		if err := rows.Scan(&enc); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "d2:") {
			t.Fatalf("a template is still sealed with %q", enc[:3])
		}
		n++
	}
	rows.Close()
	if n != 2 {
		t.Fatalf("%d templates", n)
	}
	// Retire d1: a new instance knows d2 only.
	if _, err := k.db.ExecContext(ctx, "DELETE FROM data_keys WHERE id = 'd1'"); err != nil {
		t.Fatal(err)
	}
	fresh, _ := k.instance(t)
	w2 := &world{svc: fresh, ctx: w.ctx, user: w.user}
	for _, probe := range [][]byte{impression(1, 1), impression(3, 2)} {
		if r := w2.mustAuthFinger(t, identity.AuthFingerprint, probe, ""); r != identity.ReasonOK {
			t.Fatalf("enrolled finger after re-encryption and retirement of d1: %v", r)
		}
	}
	if r := w2.mustAuthFinger(t, identity.AuthFingerprint, impression(2, 1), ""); r != identity.ReasonBadCredentials {
		t.Fatalf("another finger: %v", r)
	}
}

// A key id named by what a caller sent (a made-up sealed token) makes an
// instance read the data keys at most once a second: the first reads them
// (a key rotated in elsewhere is found), the next within the second does
// not.
func TestReloadForUnknownKeyIsThrottled(t *testing.T) {
	k := newKeyed(t)
	a, _ := k.instance(t)
	_, bKeys := k.instance(t)
	ctx := context.Background()
	if _, err := a.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if !bKeys.ReloadForUnknown(ctx) || bKeys.Sealer().ActiveKeyID() != "d2" {
		t.Fatalf("first reload for an unknown key: active %s", bKeys.Sealer().ActiveKeyID())
	}
	if _, err := a.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if bKeys.ReloadForUnknown(ctx) || bKeys.Sealer().ActiveKeyID() != "d2" {
		t.Fatalf("a second reload within %s read the keys: active %s", identity.UnknownKeyReloadEvery, bKeys.Sealer().ActiveKeyID())
	}
	// Reload itself (stored data naming a key: not made up) is not throttled.
	if err := bKeys.Reload(ctx); err != nil || bKeys.Sealer().ActiveKeyID() != "d3" {
		t.Fatalf("reload: %v, active %s", err, bKeys.Sealer().ActiveKeyID())
	}
}
