package identity_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// clock is the services' time: now, and the login gate's waits (sleep),
// which return at once and are recorded; with advance set (sequential
// tests only) a wait moves the clock on by its length.
type clock struct {
	t       time.Time
	advance bool

	mu    sync.Mutex
	slept []time.Duration
}

func (c *clock) now() time.Time { return c.t }

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.slept = append(c.slept, d)
	c.mu.Unlock()
	if c.advance {
		c.t = c.t.Add(d)
	}
	return ctx.Err()
}

// waits returns the waits recorded so far and forgets them.
func (c *clock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.slept
	c.slept = nil
	return out
}

// newService builds the real service on a SQLite store with a test clock.
func newService(t *testing.T) (*identity.Service, *clock) {
	t.Helper()
	svcs, clk := newInstances(t, 1, identity.Config{})
	return svcs[0], clk
}

// newInstances builds n services (instances of the identity component) on
// one SQLite store, one key ring and one test clock, with config cfg.
func newInstances(t *testing.T, n int, cfg identity.Config) ([]*identity.Service, *clock) {
	t.Helper()
	return newInstancesWith(t, n, cfg, cheapHasher)
}

// newInstancesWith is newInstances with each instance's hasher made by newHasher.
func newInstancesWith(t *testing.T, n int, cfg identity.Config, newHasher func() *crypto.Hasher) ([]*identity.Service, *clock) {
	t.Helper()
	db, sealer, clk := testDB(t), testSealer(t), newTestClock()
	var out []*identity.Service
	for range n {
		out = append(out, testService(t, identity.Deps{Store: sqlstore.New(db), Sealer: sealer, Now: clk.now, Sleep: clk.sleep, Config: cfg,
			Hasher: newHasher()}))
	}
	return out, clk
}

type world struct {
	svc  *identity.Service
	clk  *clock
	ctx  context.Context // app caller
	user *identity.User
}

func setup(t *testing.T) *world {
	t.Helper()
	svc, clk := newService(t)
	return setupOn(t, svc, clk)
}

// setupOn bootstraps svc and adds an app "oa" and a user "mia" linked to it
// as "m001" with password First-Pass-1.
func setupOn(t testing.TB, svc *identity.Service, clk *clock) *world {
	t.Helper()
	ctx := context.Background()
	if _, _, err := svc.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	orgs, _, err := svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if err != nil || len(orgs) != 1 {
		t.Fatalf("orgs: %v %v", orgs, err)
	}
	app, _, err := svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "oa", Name: "OA"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := svc.CreateUser(ctx, identity.NewUser{LoginName: "mia", DisplayName: "Mia", OrgID: orgs[0].ID, Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateLink(ctx, u.ID, app.ID, "m001"); err != nil {
		t.Fatal(err)
	}
	return &world{svc: svc, clk: clk, ctx: caller.With(ctx, &caller.Caller{App: app.CallerApp(), RequestID: "r1"}), user: u}
}

func (w *world) auth(t *testing.T, pw string) *identity.AuthResult {
	t.Helper()
	res, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", Password: pw, AuthType: identity.AuthPassword})
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return res
}

func reasonOf(err error) string {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.Reason
	}
	return ""
}

func TestPasswordExpiryAndChange(t *testing.T) {
	w := setup(t)
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonOK {
		t.Fatalf("fresh password: %v", r.Reason)
	}
	w.clk.t = w.clk.t.Add(91 * 24 * time.Hour)
	r := w.auth(t, "First-Pass-1")
	if r.Reason != identity.ReasonPasswordExpired || r.Reason.LegacyCode() != -1 || r.User != nil {
		t.Fatalf("expired password: %v", r.Reason)
	}
	// a wrong password on an expired account is still just wrong
	if r := w.auth(t, "Nope-Nope-1"); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("wrong password: %v", r.Reason)
	}
	// an expired password may still be changed with the current one
	err := w.svc.ChangePassword(w.ctx, "m001", "First-Pass-1", "First-Pass-1")
	if reasonOf(err) != "PASSWORD_REUSED" {
		t.Fatalf("reuse of the current password: %v", err)
	}
	if err := w.svc.ChangePassword(w.ctx, "m001", "First-Pass-1", "Second-Pass-2"); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.ChangePassword(w.ctx, "m001", "Second-Pass-2", "First-Pass-1"); reasonOf(err) != "PASSWORD_REUSED" {
		t.Fatalf("reuse of an older password: %v", err)
	}
	if r := w.auth(t, "Second-Pass-2"); r.Reason != identity.ReasonOK {
		t.Fatalf("after change: %v", r.Reason)
	}
}

// authFrom is auth with the person's address reported by the app.
func (w *world) authFrom(t *testing.T, pw, ip string) *identity.AuthResult {
	t.Helper()
	res, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", Password: pw, AuthType: identity.AuthPassword,
		Extend: map[string]string{identity.ClientIPExtend: ip}})
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return res
}

func TestLockExpires(t *testing.T) {
	w := setup(t)
	for i := 0; i < 5; i++ {
		w.authFrom(t, "Wrong-Pass-1", fmt.Sprintf("198.51.100.%d", i))
	}
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonAccountLocked {
		t.Fatalf("want locked, got %v", r.Reason)
	}
	w.clk.t = w.clk.t.Add(16 * time.Minute)
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonOK {
		t.Fatalf("lock should lapse after 15 minutes: %v", r.Reason)
	}
}

func TestRehashOnParameterChange(t *testing.T) {
	st, sealer := sqlstore.New(testDB(t)), testSealer(t)
	mk := func(mem uint32) *identity.Service {
		p := cheapArgon2
		p.MemoryKiB = mem
		return testService(t, identity.Deps{Store: st, Sealer: sealer, Hasher: crypto.NewHasher(crypto.HasherConfig{Params: p})})
	}
	ctx := context.Background()
	old := mk(64)
	if _, _, err := old.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	admin, err := st.GetUserByLogin(ctx, "admin")
	if err != nil || !strings.Contains(admin.PasswordHash, "m=64,") {
		t.Fatalf("hash under old params: %v %v", admin, err)
	}
	// The operator raises the memory cost; the next successful login
	// re-hashes under the new parameters, a failed one does not.
	cur := mk(128)
	if _, _, _, err := cur.AdminLogin(ctx, "admin", "Wrong-Pass-99"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if u, _ := st.GetUserByLogin(ctx, "admin"); u.PasswordHash != admin.PasswordHash {
		t.Fatal("a failed login must not rehash")
	}
	if _, _, _, err := cur.AdminLogin(ctx, "admin", "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	u, _ := st.GetUserByLogin(ctx, "admin")
	if !strings.Contains(u.PasswordHash, "m=128,") {
		t.Fatalf("not rehashed: %s", u.PasswordHash[:30])
	}
	if _, _, _, err := cur.AdminLogin(ctx, "admin", "Boot-Strap-Pass1"); err != nil {
		t.Fatalf("login after rehash: %v", err)
	}
}

func TestBootstrap(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	// A weak bootstrap password is refused before anything is written.
	if _, _, err := svc.Bootstrap(ctx, "weak"); reasonOf(errors.Unwrap(err)) != "WEAK_PASSWORD" {
		t.Fatalf("weak bootstrap password: %v", err)
	}
	if orgs, _, _ := svc.ListOrgs(ctx, identity.OrgFilter{}, 0, ""); len(orgs) != 0 {
		t.Fatalf("refused bootstrap wrote orgs: %v", orgs)
	}
	created, generated, err := svc.Bootstrap(ctx, "")
	if err != nil || !created || generated == "" {
		t.Fatalf("first bootstrap: %v %v %q", created, err, generated)
	}
	if err := svc.Policy().CheckPassword(generated, "admin"); err != nil {
		t.Fatalf("generated password fails the policy: %v", err)
	}
	if _, _, _, err := svc.AdminLogin(ctx, "admin", generated); err != nil {
		t.Fatalf("login with generated password: %v", err)
	}
	// Later starts do nothing, and ignore a password given, even a weak one
	// (UIAS_BOOTSTRAP_PASSWORD left set must not block a restart).
	for _, pw := range []string{"Other-Pass-123", "weak"} {
		if created, _, err := svc.Bootstrap(ctx, pw); err != nil || created {
			t.Fatalf("later bootstrap with %q: %v %v", pw, created, err)
		}
	}
	if _, _, _, err := svc.AdminLogin(ctx, "admin", generated); err != nil {
		t.Fatalf("login after later bootstraps: %v", err)
	}
}

func TestBootstrapResumesAfterRootOnly(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if _, err := svc.CreateOrg(ctx, "root", "Root", ""); err != nil {
		t.Fatal(err)
	}
	created, _, err := svc.Bootstrap(ctx, "Boot-Strap-Pass1")
	if err != nil || !created {
		t.Fatalf("resume: %v %v", created, err)
	}
	if _, _, _, err := svc.AdminLogin(ctx, "admin", "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
}

// TestNoAdministratorDisablesOrLocksThemselves: the last system
// administrator disabling or locking their own account would leave nobody
// to administer (nobody else changes a system administrator); another
// administrator may, and re-enabling or unlocking oneself is harmless.
func TestNoAdministratorDisablesOrLocksThemselves(t *testing.T) {
	w := setup(t)
	self := caller.With(context.Background(), &caller.Caller{Principal: w.user.ID, RequestID: "r2"})
	for what, call := range map[string]func() error{
		"disable":       func() error { _, err := w.svc.SetUserStatus(self, w.user.ID, identity.StatusDisabled); return err },
		"lock":          func() error { _, err := w.svc.LockUser(self, w.user.ID, time.Hour); return err },
		"lock for good": func() error { _, err := w.svc.LockUser(self, w.user.ID, 0); return err },
	} {
		err := call()
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Reason != "OWN_ACCOUNT" || ae.Code != apierr.FailedPrecondition ||
			!strings.Contains(ae.Message, "your own account") {
			t.Fatalf("%s oneself: %v", what, err)
		}
	}
	if u, err := w.svc.GetUser(context.Background(), w.user.ID); err != nil || u.Status != identity.StatusActive || !u.LockedUntil.IsZero() {
		t.Fatalf("a refused change changed the account: %+v %v", u, err)
	}
	if _, err := w.svc.SetUserStatus(self, w.user.ID, identity.StatusActive); err != nil {
		t.Fatalf("enable oneself: %v", err)
	}
	if _, err := w.svc.UnlockUser(self, w.user.ID); err != nil {
		t.Fatalf("unlock oneself: %v", err)
	}
	other := caller.With(context.Background(), &caller.Caller{Principal: "someone-else", RequestID: "r3"})
	if _, err := w.svc.LockUser(other, w.user.ID, time.Hour); err != nil {
		t.Fatalf("another administrator locks: %v", err)
	}
	if u, err := w.svc.SetUserStatus(other, w.user.ID, identity.StatusDisabled); err != nil || u.Status != identity.StatusDisabled {
		t.Fatalf("another administrator disables: %+v %v", u, err)
	}
}

// A listing filtered by an object that does not exist is NOT_FOUND naming
// it (not an empty page that reads as "nobody there"); later pages are not
// asked again.
func TestListingFilterNamesAnUnknownObject(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	for what, call := range map[string]func() error{
		"users of an unknown org": func() error {
			_, _, err := w.svc.ListUsers(ctx, identity.UserFilter{OrgID: "nosuch"}, 0, "")
			return err
		},
		"groups of an unknown org": func() error {
			_, _, err := w.svc.ListGroups(ctx, identity.GroupFilter{OrgID: "nosuch"}, 0, "")
			return err
		},
		"orgs under an unknown org": func() error {
			_, _, err := w.svc.ListOrgs(ctx, identity.OrgFilter{ParentID: "nosuch"}, 0, "")
			return err
		},
		"links of an unknown app": func() error {
			_, _, err := w.svc.ListLinks(ctx, identity.LinkFilter{AppID: "nosuch"}, 0, "")
			return err
		},
		"links of an unknown user": func() error {
			_, _, err := w.svc.ListLinks(ctx, identity.LinkFilter{UserID: "nosuch"}, 0, "")
			return err
		},
	} {
		err := call()
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Code != apierr.NotFound || !strings.Contains(ae.Message, "nosuch") {
			t.Errorf("%s: %v", what, err)
		}
	}
	if users, _, err := w.svc.ListUsers(ctx, identity.UserFilter{OrgID: w.user.OrgID}, 0, ""); err != nil || len(users) == 0 {
		t.Fatalf("users of a real org: %v %v", users, err)
	}
}
