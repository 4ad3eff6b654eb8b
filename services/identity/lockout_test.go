package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity"
)

// from is a context of an anonymous caller (AdminLogin) at address ip.
func from(ip string) context.Context {
	return caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr(ip), RequestID: "r-" + ip})
}

// wantThrottled checks err is the gate's refusal as callers get it:
// RESOURCE_EXHAUSTED LOGIN_THROTTLED with a positive retry_after_seconds,
// legacy code -6.
func wantThrottled(t *testing.T, what string, err error) {
	t.Helper()
	ae, ok := apierr.FromStatus(apierr.ToStatus(err))
	if !ok || ae.Code != apierr.ResourceExhausted || ae.Reason != "LOGIN_THROTTLED" || ae.Meta[apierr.MetaLegacyCode] != "-6" {
		t.Fatalf("%s: %v, want RESOURCE_EXHAUSTED LOGIN_THROTTLED (-6)", what, err)
	}
	if n, err := strconv.Atoi(ae.Meta["retry_after_seconds"]); err != nil || n < 1 {
		t.Fatalf("%s: retry_after_seconds %q", what, ae.Meta["retry_after_seconds"])
	}
}

// auditRecords returns the audit records of api among rows.
func auditRecords(t *testing.T, rows []outboxRow, api string) []events.AuditRecord {
	t.Helper()
	var out []events.AuditRecord
	for _, r := range rows {
		if r.Subject != "uias.audit.identity."+api {
			continue
		}
		var rec events.AuditRecord
		if err := json.Unmarshal(r.Payload, &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// TestOneAddressCannotLockTheOwnerOut is the attack of issue 15: AdminLogin
// needs no credential, and five wrong passwords used to lock any person.
// Now 1,000 wrong attempts from one address are slowed down, then refused,
// and the owner logs in from another address at once.
func TestOneAddressCannotLockTheOwnerOut(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	m := e.mark(t)
	attacker := from("203.0.113.9")

	var checked, throttled int
	for i := range 1000 {
		_, _, _, err := e.svc.AdminLogin(attacker, "admin", fmt.Sprintf("Guess-%04d-Pw", i))
		switch reasonOf(err) {
		case "BAD_ADMIN_LOGIN":
			if throttled > 0 {
				t.Fatalf("attempt %d checked after the address was refused", i)
			}
			checked++
		case "LOGIN_THROTTLED":
			wantThrottled(t, fmt.Sprintf("attempt %d", i), err)
			throttled++
		default:
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Ten failures pass at once, the next five wait 1, 2, 4, 8 and 16 s
	// (before their hash, holding no worker); the rest are refused unhashed.
	if checked != 15 || throttled != 985 {
		t.Fatalf("checked %d, refused %d; want 15 and 985", checked, throttled)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	if got := e.clk.waits(); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}

	// The owner, from another address: no wait, logged in, never locked.
	tok, _, admin, err := e.svc.AdminLogin(from("198.51.100.7"), "admin", "Boot-Strap-Pass1")
	if err != nil || tok == "" {
		t.Fatalf("owner's login from another address: %v", err)
	}
	if got := e.clk.waits(); len(got) != 0 {
		t.Fatalf("the owner waited %v", got)
	}
	if u, _ := e.svc.GetUser(context.Background(), admin.ID); u.Locked(e.clk.t) || u.FailedCount != 0 {
		t.Fatalf("admin locked=%v failed=%d", u.Locked(e.clk.t), u.FailedCount)
	}
	// The other application path is untouched too.
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonOK {
		t.Fatalf("Authenticate of another user: %v", r.Reason)
	}

	// The refusals are audited as rate-limit hits (thinned to one record
	// per second and address, each saying how many it stands for).
	rows := e.outbox(t, m)
	var hits, stands int
	for _, rec := range auditRecords(t, rows, "admin.login") {
		if rec.Reason != "LOGIN_THROTTLED" {
			continue
		}
		hits++
		n, _ := strconv.Atoi(rec.Detail["suppressed"])
		stands += 1 + n
		if rec.Result != "denied" || rec.ClientIP != "203.0.113.9" || rec.Detail["gate"] != "source" || rec.Detail["retry_after_seconds"] == "" {
			t.Fatalf("rate-limit audit %+v", rec)
		}
	}
	if hits == 0 || stands > throttled {
		t.Fatalf("%d rate-limit audit records standing for %d refusals (of %d)", hits, stands, throttled)
	}
}

// TestAdminLoginOfNonAdminCountsNothing: an AdminLogin naming a person who
// is no administrator is answered as for an unknown login name, right or
// wrong password, and counts nothing against that person.
func TestAdminLoginOfNonAdminCountsNothing(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	_, _, _, unknown := w.svc.AdminLogin(from("203.0.113.1"), "nobody", "Whatever-Pass-1")
	for i := range 8 {
		for _, pw := range []string{"First-Pass-1", "Wrong-Pass-1"} {
			_, _, _, err := w.svc.AdminLogin(from(fmt.Sprintf("203.0.113.%d", 10+i)), "mia", pw)
			if err == nil || err.Error() != unknown.Error() {
				t.Fatalf("AdminLogin of a non-admin (%s): %v, want as for an unknown login: %v", pw, err, unknown)
			}
		}
	}
	u, err := w.svc.GetUser(ctx, w.user.ID)
	if err != nil || u.FailedCount != 0 || u.Locked(w.clk.t) {
		t.Fatalf("mia after 16 admin logins: failed=%d locked=%v %v", u.FailedCount, u.Locked(w.clk.t), err)
	}
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonOK {
		t.Fatalf("mia's own login: %v", r.Reason)
	}
}

// TestAppPathSources: through an application, a source is the person's
// address when the application reports it (extend_info client_ip), else
// the application per account; one such source cannot lock the account
// either, and throttling one account does not throttle the application.
func TestAppPathSources(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	app := caller.From(w.ctx).App
	bo, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "bo", DisplayName: "Bo", OrgID: orgs[0].ID, Password: "Bo-Pass-123"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.CreateLink(ctx, bo.ID, app.ID, "b001"); err != nil {
		t.Fatal(err)
	}
	guess := func(ip string) error {
		req := identity.AuthRequest{AppUserID: "m001", Password: "Wrong-Pass-1", AuthType: identity.AuthPassword}
		if ip != "" {
			req.Extend = map[string]string{identity.ClientIPExtend: ip}
		}
		_, err := w.svc.Authenticate(w.ctx, req)
		return err
	}
	for _, ip := range []string{"203.0.113.5", ""} {
		refused := 0
		for range 100 {
			if err := guess(ip); err != nil {
				wantThrottled(t, "guess", err)
				refused++
			}
		}
		if refused != 85 {
			t.Fatalf("source %q: %d of 100 refused, want 85", ip, refused)
		}
	}
	w.clk.waits()
	u, _ := w.svc.GetUser(ctx, w.user.ID)
	if u.Locked(w.clk.t) || u.FailedCount != 4 {
		t.Fatalf("after two sources: locked=%v counted=%d (want 2 per source)", u.Locked(w.clk.t), u.FailedCount)
	}
	// Another person through the same application: not slowed at all.
	res, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "b001", Password: "Bo-Pass-123", AuthType: identity.AuthPassword})
	if err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("another account through the app: %v %v", res, err)
	}
	// The owner from a third address is counted (4 failures and their own
	// check stay under the lock's 5) and gets in.
	if r := w.authFrom(t, "First-Pass-1", "198.51.100.3"); r.Reason != identity.ReasonOK {
		t.Fatalf("owner: %v", r.Reason)
	}
}

// TestSpreadOverManyAddressesIsSlowedPerAccount: an attacker who sends each
// guess from a new address never meets the per-address limit; the
// account's spacing still holds them to one guess per max_delay (30 s),
// and a burst is refused beyond it. The policy here never locks, so the
// spacing alone is at work.
func TestSpreadOverManyAddressesIsSlowedPerAccount(t *testing.T) {
	p := identity.DefaultPolicy()
	p.MaxFailures = 0
	svcs, clk := newInstances(t, 1, identity.Config{Policy: p})
	w := setupOn(t, svcs[0], clk)
	clk.advance = true // each wait moves the clock: the guesses come as fast as allowed
	start := clk.t
	const guesses = 200
	for i := range guesses {
		if r := w.authFrom(t, "Wrong-Pass-1", fmt.Sprintf("10.%d.%d.1", i/250, i%250)); r.Reason != identity.ReasonBadCredentials {
			t.Fatalf("guess %d: %v", i, r.Reason)
		}
	}
	waits := clk.waits()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	if len(waits) != guesses-3 || !slices.Equal(waits[:5], want) {
		t.Fatalf("waits %v..., want %v then 30 s each", waits[:min(8, len(waits))], want)
	}
	for i, d := range waits[5:] {
		if d != 30*time.Second {
			t.Fatalf("wait %d: %v, want 30s", i+5, d)
		}
	}
	// 200 guesses took at least 192 × 30 s: under 3,000 a day.
	if took := clk.t.Sub(start); took < (guesses-8)*30*time.Second {
		t.Fatalf("200 guesses in %v", took)
	}

	// A burst from 20 more addresses: one waits its turn, the rest are
	// refused at once (their turn would be more than 30 s away).
	clk.advance = false
	var mu sync.Mutex
	var admitted, refused int
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", Password: "Wrong-Pass-1",
				AuthType: identity.AuthPassword, Extend: map[string]string{identity.ClientIPExtend: fmt.Sprintf("10.9.%d.1", i)}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				wantThrottled(t, "burst", err)
				refused++
			} else {
				admitted++
			}
		})
	}
	wg.Wait()
	if admitted != 1 || refused != 19 {
		t.Fatalf("burst: %d admitted, %d refused; want 1 and 19", admitted, refused)
	}

	// The owner is slowed like anyone while the attack lasts, then gets in
	// and the account's spacing is forgotten.
	clk.waits()
	clk.t = clk.t.Add(time.Minute)
	if r := w.authFrom(t, "First-Pass-1", "192.0.2.44"); r.Reason != identity.ReasonOK {
		t.Fatalf("owner: %v", r.Reason)
	}
	if r := w.authFrom(t, "Wrong-Pass-1", "192.0.2.45"); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("after the owner's login: %v", r.Reason)
	}
	if got := clk.waits(); len(got) != 0 {
		t.Fatalf("waits after a success: %v", got)
	}
}

// TestLockNeedsSeveralSources: with the default policy (5 counted
// failures, at most 2 per source) the hard lock falls after failures from
// three addresses, not from one or two.
func TestLockNeedsSeveralSources(t *testing.T) {
	w := setup(t)
	for i := range 8 {
		w.authFrom(t, "Wrong-Pass-1", "198.51.100.1")
		if i%2 == 0 {
			w.authFrom(t, "Wrong-Pass-1", "198.51.100.2")
		}
	}
	u, _ := w.svc.GetUser(context.Background(), w.user.ID)
	if u.Locked(w.clk.t) || u.FailedCount != 4 {
		t.Fatalf("two sources: locked=%v counted=%d", u.Locked(w.clk.t), u.FailedCount)
	}
	if r := w.authFrom(t, "Wrong-Pass-1", "198.51.100.3"); r.Reason != identity.ReasonAccountLocked {
		t.Fatalf("fifth counted failure, third source: %v", r.Reason)
	}
	if r := w.authFrom(t, "First-Pass-1", "198.51.100.4"); r.Reason != identity.ReasonAccountLocked {
		t.Fatalf("right password while locked: %v", r.Reason)
	}
}

// TestParallelGuessesCannotOutrunTheLock is the second attack of issue 15:
// wrong passwords and the right one sent at once used to be hashed all,
// the right one succeeding after the lock was set. The count and the lock
// are now decided in the store, a check admitted only while the failures
// plus the checks still running (beyond one per hash worker) stay under
// the threshold. 50 parallel attempts, each from its own address:
//   - all wrong: at most max_failures + hash workers are hashed, the rest
//     refused (locked, or LOGIN_THROTTLED while the running ones decide),
//     and the account ends locked;
//   - one right among them: in the order the attempts were decided, the
//     success never comes after max_failures failures.
func TestParallelGuessesCannotOutrunTheLock(t *testing.T) {
	workers := runtime.GOMAXPROCS(0) // the test hasher's
	for round, right := range []int{-1, -1, 0, 25, 49} {
		e := newEvEnv(t, "")
		w := setupOn(t, e.svc, e.clk)
		m := e.mark(t)
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			throttled int
		)
		for i := range 50 {
			pw := "Wrong-Pass-1"
			if i == right {
				pw = "First-Pass-1"
			}
			wg.Go(func() {
				_, err := e.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", Password: pw, AuthType: identity.AuthPassword,
					Extend: map[string]string{identity.ClientIPExtend: fmt.Sprintf("198.51.100.%d", i+1)}})
				if err != nil {
					wantThrottled(t, "parallel attempt", err)
					mu.Lock()
					throttled++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		// In the order they were decided; every attempt that reached the
		// hash is audited BAD_CREDENTIALS or OK.
		max := e.svc.Policy().MaxFailures
		var bad, ok, locked int
		for _, rec := range auditRecords(t, e.outbox(t, m), "authenticate") {
			switch rec.Reason {
			case "BAD_CREDENTIALS":
				bad++
			case "OK":
				if bad >= max {
					t.Fatalf("round %d: the right password succeeded after %d failures", round, bad)
				}
				ok++
			case "ACCOUNT_LOCKED":
				locked++
			}
		}
		if bad+ok+locked+throttled != 50 || ok > 1 {
			t.Fatalf("round %d: %d wrong, %d right, %d locked, %d throttled of 50", round, bad, ok, locked, throttled)
		}
		u, _ := e.svc.GetUser(context.Background(), w.user.ID)
		if right < 0 {
			if bad > max+workers || bad < max || !u.Locked(e.clk.t) {
				t.Fatalf("50 wrong at once: %d hashed (want %d to %d), locked=%v", bad, max, max+workers, u.Locked(e.clk.t))
			}
		} else if bad > 2*max+workers {
			t.Fatalf("round %d: %d wrong hashed", round, bad)
		}
	}
}
