package identity_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/identity"
)

// gate holds the hasher's workers on demand: while closed is false, every
// hash that starts reports on started and blocks until open is called. No
// timing: tests wait for exact states (a worker held, n calls waiting).
type gate struct {
	holding atomic.Bool
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate() *gate {
	return &gate{started: make(chan struct{}, 64), release: make(chan struct{})}
}

func (g *gate) beforeHash() {
	if g.holding.Load() {
		g.started <- struct{}{}
		<-g.release
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// admissionWorld is a service on one hash worker whose hash duration
// estimate is fixed at hashTime and whose projected-wait budget is maxWait.
func admissionWorld(t *testing.T, hashTime, maxWait time.Duration) (*world, *crypto.Hasher, *gate) {
	t.Helper()
	g := newGate()
	var h *crypto.Hasher
	svcs, clk := newInstancesWith(t, 1, identity.Config{}, func() *crypto.Hasher {
		h = crypto.NewHasher(crypto.HasherConfig{
			Params:  crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
			Workers: 1, MaxWait: maxWait,
			Testing: &crypto.HasherTesting{HashTime: hashTime, BeforeHash: g.beforeHash},
		})
		return h
	})
	w := setupOn(t, svcs[0], clk)
	t.Cleanup(g.open)
	return w, h, g
}

// holdWorker starts a correct-password Authenticate whose hash holds the
// only worker; the returned channel yields its result once the gate opens.
func holdWorker(t *testing.T, w *world, g *gate) <-chan error {
	t.Helper()
	g.holding.Store(true)
	done := make(chan error, 1)
	go func() { done <- wantVerdict(w, "First-Pass-1", identity.ReasonOK) }()
	<-g.started
	return done
}

func wantVerdict(w *world, pw string, want identity.Reason) error {
	res, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", Password: pw, AuthType: identity.AuthPassword})
	if err != nil {
		return err
	}
	if res.Reason != want {
		return errors.New("verdict " + res.Reason.String() + ", want " + want.String())
	}
	return nil
}

func waitForWaiters(h *crypto.Hasher, n int) {
	for h.Waiting() != n {
		runtime.Gosched()
	}
}

// wantOverloaded checks err is the fast refusal: RESOURCE_EXHAUSTED,
// reason OVERLOADED, legacy code -6.
func wantOverloaded(t *testing.T, what string, err error) {
	t.Helper()
	ae, ok := apierr.As(err)
	if !ok || ae.Code != apierr.ResourceExhausted || ae.Reason != "OVERLOADED" || apierr.LegacyCode(err) != -6 {
		t.Fatalf("%s: got %v, want RESOURCE_EXHAUSTED OVERLOADED (-6)", what, err)
	}
}

// TestNoHashVerdictsNeverRefused: with the only hash worker busy and any
// password check projected far beyond max_hash_wait, every verdict that
// needs no hash is still answered, and only the calls that need one are
// refused (OVERLOADED, -6), without counting as failed logins.
func TestNoHashVerdictsNeverRefused(t *testing.T) {
	w, h, g := admissionWorld(t, time.Hour, 3*time.Second)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	app := caller.From(w.ctx).App
	mk := func(login, account string, n identity.NewUser) *identity.User {
		t.Helper()
		n.LoginName, n.DisplayName, n.OrgID = login, login, orgs[0].ID
		n.Password = "First-Pass-1"
		u, err := w.svc.CreateUser(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.CreateLink(ctx, u.ID, app.ID, account); err != nil {
			t.Fatal(err)
		}
		return u
	}
	locked := mk("lou", "l001", identity.NewUser{})
	if _, err := w.svc.LockUser(ctx, locked.ID, 0); err != nil {
		t.Fatal(err)
	}
	disabled := mk("dee", "d001", identity.NewUser{})
	if _, err := w.svc.SetUserStatus(ctx, disabled.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	mk("pat", "p001", identity.NewUser{PasswordOnly: true})

	held := holdWorker(t, w, g)
	auth := func(account string, authType int) (*identity.AuthResult, error) {
		req := identity.AuthRequest{AppUserID: account, AuthType: authType}
		if authType != identity.AuthFingerprint {
			req.Password = "First-Pass-1"
		}
		if authType != identity.AuthPassword {
			req.Fingerprint = impression(1, 1)
		}
		return w.svc.Authenticate(w.ctx, req)
	}
	for _, c := range []struct {
		name     string
		account  string
		authType int
		want     identity.Reason
		legacy   int32
	}{
		{"unknown account", "nobody", identity.AuthPassword, identity.ReasonNoSuchUser, -2},
		{"locked account", "l001", identity.AuthPassword, identity.ReasonAccountLocked, -1},
		{"disabled account", "d001", identity.AuthPassword, identity.ReasonAccountDisabled, -1},
		{"fingerprint, none enrolled", "m001", identity.AuthFingerprint, identity.ReasonNoFingerprint, -4},
		{"fingerprint for a password-only user", "p001", identity.AuthPasswordFingerprint, identity.ReasonPasswordOnly, -3},
	} {
		res, err := auth(c.account, c.authType)
		if err != nil || res.Reason != c.want || res.Reason.LegacyCode() != c.legacy {
			t.Errorf("%s under saturation: %v %v, want %v (%d)", c.name, res, err, c.want, c.legacy)
		}
	}
	if err := w.svc.ChangePassword(w.ctx, "nobody", "First-Pass-1", "Second-Pass-2"); !errors.Is(err, identity.ErrNotFound) && reasonOf(err) != "NOT_FOUND" {
		t.Errorf("password change of an unknown account under saturation: %v, want NOT_FOUND", err)
	}

	// The calls that need a hash are refused at once.
	_, err := auth("m001", identity.AuthPassword)
	wantOverloaded(t, "password Authenticate", err)
	wantOverloaded(t, "ChangePassword", w.svc.ChangePassword(w.ctx, "m001", "First-Pass-1", "Second-Pass-2"))
	_, _, _, err = w.svc.AdminLogin(ctx, "admin", "Boot-Strap-Pass1")
	wantOverloaded(t, "AdminLogin", err)
	// AdminLogin must not tell which logins exist: an unknown one costs a
	// (dummy) hash like a real one, so it is refused alike.
	_, _, _, err = w.svc.AdminLogin(ctx, "nobody", "Whatever-Pass-1")
	wantOverloaded(t, "AdminLogin of an unknown login", err)
	if h.Waiting() != 0 {
		t.Fatalf("%d refused calls left waiting", h.Waiting())
	}

	g.open()
	if err := <-held; err != nil {
		t.Fatalf("the call holding the worker: %v", err)
	}
	// Refusals were not failed logins: the account is not locked after
	// more refusals than max_failures would allow.
	for range 6 {
		_, err := auth("m001", identity.AuthPassword)
		if err != nil {
			t.Fatal(err)
		}
	}
	u, err := w.svc.GetUser(ctx, w.user.ID)
	if err != nil || u.FailedCount != 0 {
		t.Fatalf("after refusals: failed count %v, %v; want 0", u, err)
	}
}

// TestPasswordCheckWaitBudget: on one worker with hashes estimated at an
// hour (so no real stall can matter), a password check waits while its
// projected wait fits both max_hash_wait (3 h) and its deadline (wait plus
// its own hash), and is refused at once otherwise. Every admitted call is
// then served.
func TestPasswordCheckWaitBudget(t *testing.T) {
	w, h, g := admissionWorld(t, time.Hour, 3*time.Hour)
	held := holdWorker(t, w, g)
	deadline := func(d time.Duration) *world {
		ctx, cancel := context.WithDeadline(w.ctx, time.Now().Add(d))
		t.Cleanup(cancel)
		c := *w
		c.ctx = ctx
		return &c
	}
	served := make(chan error, 3)

	// First in line: 1 h wait + 1 h hash does not fit 1.5 h left, fits 2.5 h.
	wantOverloaded(t, "1.5 h deadline, 2 h projected", wantVerdict(deadline(90*time.Minute), "First-Pass-1", identity.ReasonOK))
	go func() { served <- wantVerdict(deadline(150*time.Minute), "First-Pass-1", identity.ReasonOK) }()
	waitForWaiters(h, 1)
	// Without a deadline max_hash_wait decides: 2 h and 3 h waits fit 3 h...
	for k := 1; k <= 2; k++ {
		go func() { served <- wantVerdict(w, "First-Pass-1", identity.ReasonOK) }()
		waitForWaiters(h, k+1)
	}
	// ...4 h does not, nor does a wrong password (it needs a hash as well).
	wantOverloaded(t, "4 h projected, max_hash_wait 3 h", wantVerdict(w, "First-Pass-1", identity.ReasonOK))
	wantOverloaded(t, "wrong password, 4 h projected", wantVerdict(w, "Wrong-Pass-1", identity.ReasonBadCredentials))

	g.open()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-served; err != nil {
			t.Fatalf("admitted call: %v", err)
		}
	}
}
