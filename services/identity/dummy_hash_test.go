package identity_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// AdminLogin must not tell, by how long it takes, whether a login exists:
// an unknown login costs one password hash, like a wrong password for a
// real account (and so do a user without a password, a disabled and a
// locked one). Counted through the hasher's test hook, not timed.
func TestAdminLoginHashesForUnknownLogins(t *testing.T) {
	ctx := context.Background()
	db := testDB(t)
	var hashes atomic.Int64
	hasher := crypto.NewHasher(crypto.HasherConfig{Params: cheapArgon2,
		Testing: &crypto.HasherTesting{HashTime: time.Millisecond, BeforeHash: func() { hashes.Add(1) }}})
	svc := testService(t, identity.Deps{Store: sqlstore.New(db), Hasher: hasher,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if _, _, err := svc.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	adminCtx, _ := adminCtx(t, svc, "10.0.0.1", "r1")
	org := evRoot(t, svc)
	if _, err := svc.CreateUser(adminCtx, identity.NewUser{LoginName: "nopass", DisplayName: "No Password", OrgID: org.ID}); err != nil {
		t.Fatal(err)
	}
	newUser := func(login string) *identity.User {
		u, err := svc.CreateUser(adminCtx, identity.NewUser{LoginName: login, DisplayName: login, OrgID: org.ID, Password: "Right-Pass-123"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	disabled, locked := newUser("disabled"), newUser("locked")
	if _, err := svc.SetUserStatus(adminCtx, disabled.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.LockUser(adminCtx, locked.ID, time.Hour); err != nil {
		t.Fatal(err)
	}

	count := func(login, password string) (int64, error) {
		before := hashes.Load()
		_, _, _, err := svc.AdminLogin(ctx, login, password)
		return hashes.Load() - before, err
	}
	wrong, wrongErr := count("admin", "Wrong-Pass-123")
	if wrongErr == nil || wrong != 1 {
		t.Fatalf("wrong password: %d hashes, %v", wrong, wrongErr)
	}
	for _, login := range []string{"nobody", "no-such-admin-at-all"} {
		n, err := count(login, "Wrong-Pass-123")
		if n != wrong {
			t.Errorf("unknown login %q: %d hashes, a wrong password costs %d", login, n, wrong)
		}
		if err == nil || err.Error() != wrongErr.Error() {
			t.Errorf("unknown login %q answered %v, a wrong password %v", login, err, wrongErr)
		}
	}
	// Accounts that fail before any hash (no password, disabled, locked)
	// cost the same hash.
	for _, login := range []string{"nopass", "disabled", "locked"} {
		if n, err := count(login, "Right-Pass-123"); n != wrong || err == nil || err.Error() != wrongErr.Error() {
			t.Errorf("%s: %d hashes, %v", login, n, err)
		}
	}
	if n, err := count("admin", "Boot-Strap-Pass1"); n != 1 || err != nil {
		t.Errorf("right password: %d hashes, %v", n, err)
	}
}

// TestFingerLoginCostsAlike: the sign-in page's finger login with a
// password hashes once whatever the verdict (unknown login, no finger
// enrolled, another finger, the right finger and a wrong password), and
// without a password never: neither the time nor the work tells which
// logins exist or whether a finger matched (review sec23 M1).
func TestFingerLoginCostsAlike(t *testing.T) {
	ctx := context.Background()
	var hashes atomic.Int64
	hasher := crypto.NewHasher(crypto.HasherConfig{Params: cheapArgon2,
		Testing: &crypto.HasherTesting{HashTime: time.Millisecond, BeforeHash: func() { hashes.Add(1) }}})
	svc := testService(t, identity.Deps{Store: sqlstore.New(testDB(t)), Hasher: hasher,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	if _, _, err := svc.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	admin, _ := adminCtx(t, svc, "10.0.0.1", "r1")
	org := evRoot(t, svc)
	for _, login := range []string{"fay", "nofinger"} {
		u, err := svc.CreateUser(admin, identity.NewUser{LoginName: login, DisplayName: login, OrgID: org.ID, Password: "Right-Pass-123"})
		if err != nil {
			t.Fatal(err)
		}
		if login == "fay" {
			if _, err := svc.EnrollFinger(admin, u.ID, 1, impression(1, 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, tc := range []struct {
		login    string
		finger   []byte
		password string
		hashes   int64
	}{
		{"nobody", impression(1, 1), "Wrong-Pass-123", 1},
		{"nofinger", impression(1, 1), "Wrong-Pass-123", 1},
		{"fay", impression(2, 1), "Wrong-Pass-123", 1},
		{"fay", impression(1, 1), "Wrong-Pass-123", 1},
		{"fay", impression(1, 1), "Right-Pass-123", 1},
		{"nobody", impression(1, 1), "", 0},
		{"fay", impression(2, 1), "", 0},
	} {
		before := hashes.Load()
		if _, err := svc.SSOFingerLogin(browserAt(fmt.Sprintf("192.0.2.%d", 10+i)), tc.login, tc.finger, tc.password, "b"); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if n := hashes.Load() - before; n != tc.hashes {
			t.Errorf("%s with a password %q: %d hashes, want %d", tc.login, tc.password, n, tc.hashes)
		}
	}
}
