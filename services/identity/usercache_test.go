package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// Two instances share one database: a is the instance under test, b stands
// for another replica whose changes reach a only as CHANGES events
// (ForgetUser) or by the cache TTL.
func TestUserCacheAcrossInstances(t *testing.T) {
	svcs, clk := newInstances(t, 2, identity.Config{})
	a, b := svcs[0], svcs[1]
	w := setupOn(t, a, clk)
	ctx, id := context.Background(), w.user.ID

	get := func(svc *identity.Service) *identity.User {
		t.Helper()
		u, err := svc.GetUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := get(a); u.Status != identity.StatusActive {
		t.Fatalf("status %v", u.Status)
	}
	// Callers get copies: changing one does not change the cache.
	get(a).DisplayName = "scribbled"
	if u := get(a); u.DisplayName != "Mia" {
		t.Fatalf("cache shared its copy: %q", u.DisplayName)
	}

	if _, err := b.SetUserStatus(ctx, id, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	// Authenticate reads the store, never the cache: the disabled account
	// is refused at once on every instance.
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonAccountDisabled {
		t.Fatalf("disabled elsewhere, authenticate on a: %v", r.Reason)
	}
	// The administrator read may be stale until the change event arrives.
	if u := get(a); u.Status != identity.StatusActive {
		t.Fatalf("expected the cached copy before the event, got %v", u.Status)
	}
	a.ForgetUser(id)
	if u := get(a); u.Status != identity.StatusDisabled {
		t.Fatalf("after ForgetUser: %v", u.Status)
	}

	// A read-modify-write on a starts from the stored row, not a stale
	// copy: b's lock survives a's profile update.
	if _, err := b.LockUser(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	u, err := a.UpdateUser(ctx, id, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Mia Li"})
	if err != nil {
		t.Fatal(err)
	}
	if !u.Locked(clk.t) || u.Status != identity.StatusDisabled {
		t.Fatalf("a's update wrote back stale state: locked=%v status=%v", u.Locked(clk.t), u.Status)
	}
	if u := get(b); u.DisplayName != "Mia Li" || !u.Locked(clk.t) {
		t.Fatalf("b sees %q locked=%v", u.DisplayName, u.Locked(clk.t))
	}

	// Without an event the TTL (default 5s) bounds the staleness.
	get(a)
	if _, err := b.UnlockUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	if u := get(a); !u.Locked(clk.t) {
		t.Fatal("expected the cached copy within the TTL")
	}
	clk.t = clk.t.Add(6 * time.Second)
	if u := get(a); u.Locked(clk.t) {
		t.Fatal("still locked after the TTL")
	}
}

// Every write made through an instance is visible to its next read at once.
func TestUserCacheOwnWrites(t *testing.T) {
	w := setup(t)
	ctx, id := context.Background(), w.user.ID
	check := func(what string, ok func(*identity.User) bool) {
		t.Helper()
		u, err := w.svc.GetUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !ok(u) {
			t.Fatalf("%s: not visible: %+v", what, u)
		}
	}
	check("create", func(u *identity.User) bool { return u.FailedCount == 0 })
	w.auth(t, "Wrong-Pass-1")
	check("failed login", func(u *identity.User) bool { return u.FailedCount == 1 })
	w.auth(t, "First-Pass-1")
	check("successful login", func(u *identity.User) bool { return u.FailedCount == 0 })
	if _, err := w.svc.LockUser(ctx, id, time.Hour); err != nil {
		t.Fatal(err)
	}
	check("lock", func(u *identity.User) bool { return u.Locked(w.clk.t) })
	if _, err := w.svc.UnlockUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	check("unlock", func(u *identity.User) bool { return !u.Locked(w.clk.t) })
	before, _ := w.svc.GetUser(ctx, id)
	w.clk.t = w.clk.t.Add(time.Minute)
	if _, err := w.svc.SetPassword(ctx, id, "Third-Pass-3", true); err != nil {
		t.Fatal(err)
	}
	check("set password", func(u *identity.User) bool { return u.MustChange && u.PasswordHash != before.PasswordHash })
	if _, err := w.svc.UpdateUser(ctx, id, identity.UserUpdate{Mask: []string{"email"}, Email: "mia@example.org"}); err != nil {
		t.Fatal(err)
	}
	check("update", func(u *identity.User) bool { return u.Email == "mia@example.org" })
	if _, err := w.svc.SetUserStatus(ctx, id, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	check("disable", func(u *identity.User) bool { return u.Status == identity.StatusDisabled })
}

// A negative TTL turns the cache off: another instance's change is seen at once.
func TestUserCacheDisabled(t *testing.T) {
	svcs, clk := newInstances(t, 2, identity.Config{UserCacheTTL: -1})
	w := setupOn(t, svcs[0], clk)
	ctx, id := context.Background(), w.user.ID
	if _, err := svcs[0].GetUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := svcs[1].SetUserStatus(ctx, id, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if u, err := svcs[0].GetUser(ctx, id); err != nil || u.Status != identity.StatusDisabled {
		t.Fatalf("uncached read: %v %v", u, err)
	}
}
