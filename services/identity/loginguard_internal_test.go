package identity

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func TestThrottleDelay(t *testing.T) {
	th := DefaultThrottle()
	for n, want := range map[int]time.Duration{
		1: 0, 10: 0, 11: time.Second, 12: 2 * time.Second, 15: 16 * time.Second,
		16: th.MaxDelay + 1, 1000: th.MaxDelay + 1,
	} {
		if got := th.delay(n, 10); got != want {
			t.Errorf("delay(%d) = %v, want %v", n, got, want)
		}
	}
	if got := (Throttle{}).withDefaults(); got != th {
		t.Errorf("zero throttle = %+v", got)
	}
}

func TestSourceGate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newSourceGate(DefaultThrottle())
	forever := time.Duration(math.MaxInt64)
	var waits []time.Duration
	for range 15 {
		w, _, ok := g.admit("k", now, forever, true)
		if !ok {
			t.Fatal("refused early")
		}
		waits = append(waits, w)
	}
	if fmt.Sprint(waits[9:]) != "[0s 1s 2s 4s 8s 16s]" {
		t.Fatalf("waits %v", waits)
	}
	// The 16th would wait 32 s: refused, told to come back when one
	// failure has decayed (a minute).
	if _, retry, ok := g.admit("k", now, forever, true); ok || retry != time.Minute {
		t.Fatalf("16th: ok=%v retry=%v", ok, retry)
	}
	// Half a minute later the charge is 14.5: still counts as 15.
	if _, retry, ok := g.admit("k", now.Add(30*time.Second), forever, true); ok || retry != 30*time.Second {
		t.Fatalf("after 30s: ok=%v retry=%v", ok, retry)
	}
	if w, _, ok := g.admit("k", now.Add(time.Minute), forever, true); !ok || w != 16*time.Second {
		t.Fatalf("after a minute: ok=%v wait=%v", ok, w)
	}
	// A wait beyond the caller's deadline is refused and not charged.
	g2 := newSourceGate(DefaultThrottle())
	for range 11 {
		g2.admit("k", now, forever, true)
	}
	if _, retry, ok := g2.admit("k", now, time.Second, true); ok || retry != 2*time.Second {
		t.Fatalf("deadline: ok=%v retry=%v", ok, retry)
	}
	if w, _, _ := g2.admit("k", now, forever, true); w != 2*time.Second {
		t.Fatalf("after a refusal the wait is %v, want 2s (not charged)", w)
	}
	// Refunds take charges back; sources are apart.
	g2.refund("k", now)
	g2.refund("k", now)
	if w, _, _ := g2.admit("k", now, forever, true); w != time.Second {
		t.Fatalf("after two refunds: %v", w)
	}
	if w, _, _ := g2.admit("other", now, forever, true); w != 0 {
		t.Fatalf("another source waits %v", w)
	}
}

func TestSourceGateBounded(t *testing.T) {
	th := DefaultThrottle()
	th.MaxSources = 100
	g := newSourceGate(th)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		g.admit(fmt.Sprint(i), now, time.Hour, true)
	}
	if len(g.m) > 100 {
		t.Fatalf("%d sources tracked, bound 100", len(g.m))
	}
}

func TestLoginSources(t *testing.T) {
	if s := appLoginSource("A", map[string]string{ClientIPExtend: "192.0.2.9"}, "u1"); s.gate != "app:A/ip:192.0.2.9" || s.account != s.gate {
		t.Errorf("reported address: %+v", s)
	}
	for _, ext := range []map[string]string{nil, {ClientIPExtend: "not an address"}} {
		if s := appLoginSource("A", ext, "u1"); s.gate != "app:A/user:u1" || s.account != "app:A" {
			t.Errorf("no address (%v): %+v", ext, s)
		}
	}
	if sourceID("ip:192.0.2.7") == sourceID("ip:192.0.2.8") || len(sourceID("x")) != 24 {
		t.Error("sourceID")
	}
}

func TestSourceCap(t *testing.T) {
	for _, c := range []struct{ max, src, want int }{
		{5, 2, 2}, {5, 0, 2}, {5, 9, 4}, {2, 2, 1}, {0, 3, 3}, {0, 0, 2}, {1, 2, 1},
	} {
		if got := (Policy{MaxFailures: c.max, SourceFailures: c.src}).sourceCap(); got != c.want {
			t.Errorf("cap(max %d, source %d) = %d, want %d", c.max, c.src, got, c.want)
		}
	}
}

// A source's checks through an application count when they fail.
func TestSourceGateCountsFailures(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newSourceGate(DefaultThrottle())
	for range 100 {
		if w, _, ok := g.admit("k", now, time.Hour, false); !ok || w != 0 {
			t.Fatal("checks not yet failed slowed down")
		}
	}
	for range 11 {
		g.fail("k", now)
	}
	if w, _, ok := g.admit("k", now, time.Hour, false); !ok || w != 2*time.Second {
		t.Fatalf("after 11 failures: %v %v", w, ok)
	}
}

func TestDecideAccount(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Service{cfg: Config{Policy: DefaultPolicy(), Throttle: DefaultThrottle()}} // slack 1 (no hasher)
	forever := time.Duration(math.MaxInt64)

	if _, write, _, v := s.decideAccount(LoginGate{LockedUntil: now.Add(time.Second)}, now, forever); v != gateLocked || write {
		t.Fatalf("locked: %v %v", v, write)
	}
	// Counted: a pending slot and the source's count; no spacing while the
	// count is within what one source may add.
	w, write, tk, v := s.decideAccount(LoginGate{FailedCount: 1, SourceFailures: 1}, now, forever)
	if v != gateAdmit || !write || !tk.counted || w.FailedCount != 1 || w.SourceFailures != 2 || w.Pending != 1 ||
		!w.PendingAt.Equal(now) || !w.NextAttemptAt.IsZero() {
		t.Fatalf("second check: %+v %+v", w, tk)
	}
	// With two failures counted the next check spaces the one after by 1 s.
	w, _, tk, _ = s.decideAccount(LoginGate{FailedCount: 2}, now, forever)
	if !w.NextAttemptAt.Equal(now.Add(time.Second)) || tk.wait != 0 {
		t.Fatalf("third: %+v %+v", w, tk)
	}
	// Waiting for its turn: the next turn is counted from this one's start.
	w, _, tk, _ = s.decideAccount(LoginGate{FailedCount: 3, NextAttemptAt: now.Add(time.Second)}, now, forever)
	if tk.wait != time.Second || !w.NextAttemptAt.Equal(now.Add(3*time.Second)) {
		t.Fatalf("fourth: %+v %+v", w, tk)
	}
	// A source over its budget is not counted and writes nothing.
	if _, write, tk, v := s.decideAccount(LoginGate{FailedCount: 3, SourceFailures: 2, NextAttemptAt: now.Add(time.Second)}, now, forever); write || tk.counted || v != gateAdmit || tk.wait != time.Second {
		t.Fatalf("over budget: write=%v %+v %v", write, tk, v)
	}
	// A turn too far away, or beyond the deadline: refused.
	if _, _, _, v := s.decideAccount(LoginGate{NextAttemptAt: now.Add(31 * time.Second)}, now, forever); v != gateThrottled {
		t.Fatalf("31 s away: %v", v)
	}
	if _, _, _, v := s.decideAccount(LoginGate{NextAttemptAt: now.Add(5 * time.Second)}, now, time.Second); v != gateThrottled {
		t.Fatalf("beyond deadline: %v", v)
	}
	// Failures plus running checks beyond the slack reach the threshold:
	// the running ones decide first.
	if _, _, tk, v := s.decideAccount(LoginGate{FailedCount: 3, Pending: 3, PendingAt: now}, now, forever); v != gateThrottled || tk.wait != time.Second {
		t.Fatalf("threshold reached by running checks: %v %+v", v, tk)
	}
	if _, _, _, v := s.decideAccount(LoginGate{FailedCount: 3, Pending: 2, PendingAt: now}, now, forever); v != gateAdmit {
		t.Fatalf("one under the threshold: %v", v)
	}
	// A check admitted while others run keeps the pending period's start.
	if w, _, _, _ := s.decideAccount(LoginGate{Pending: 1, PendingAt: now.Add(-10 * time.Second)}, now, forever); w.Pending != 2 ||
		!w.PendingAt.Equal(now.Add(-10*time.Second)) {
		t.Fatalf("admitted while one runs: %+v", w)
	}
	// Running checks admitted over a minute ago are deemed lost.
	if w, _, _, v := s.decideAccount(LoginGate{FailedCount: 3, Pending: 9, PendingAt: now.Add(-2 * time.Minute)}, now, forever); v != gateAdmit || w.Pending != 1 {
		t.Fatalf("stale running checks: %v %+v", v, w)
	}

	// Deciding failures: counted; the fifth locks and clears the count.
	w, lock := s.decideFailure(LoginGate{FailedCount: 3, Pending: 2, SourceFailures: 1}, now)
	if !lock.IsZero() || w.FailedCount != 4 || w.Pending != 1 || w.SourceFailures != 1 {
		t.Fatalf("fourth failure: %+v", w)
	}
	w, lock = s.decideFailure(LoginGate{FailedCount: 4, Pending: 2}, now)
	if !lock.Equal(now.Add(15*time.Minute)) || !w.LockedUntil.Equal(lock) || w.FailedCount != 0 || !w.ClearSources || w.Pending != 1 {
		t.Fatalf("fifth failure: %+v %v", w, lock)
	}
	// A failure decided while locked does not count towards the next lock.
	w, lock = s.decideFailure(LoginGate{LockedUntil: now.Add(time.Minute), Pending: 1}, now)
	if !lock.IsZero() || w.FailedCount != 0 || w.Pending != 0 {
		t.Fatalf("failure while locked: %+v", w)
	}
	// Never locking: counting stops at maxCounted; the spacing goes on.
	s.cfg.Policy.MaxFailures = 0
	w, write, tk, _ = s.decideAccount(LoginGate{FailedCount: maxCounted, NextAttemptAt: now}, now, forever)
	if !write || tk.counted || w.FailedCount != maxCounted || !w.NextAttemptAt.Equal(now.Add(30*time.Second)) {
		t.Fatalf("ceiling: %+v %+v", w, tk)
	}
}

// TestCrashedReplicaChecksStopCounting: a replica that crashed mid-check
// leaves its counted checks pending on the account. They stop counting
// within pendingStale even while other replicas keep checking passwords
// on the account (a busy shared account), instead of for as long as it
// stays busy.
func TestCrashedReplicaChecksStopCounting(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Service{cfg: Config{Policy: DefaultPolicy(), Throttle: DefaultThrottle()}} // slack 1 (no hasher)
	forever := time.Duration(math.MaxInt64)
	var g LoginGate
	admit := func(now time.Time) (accountTicket, gateVerdict) {
		w, write, tk, v := s.decideAccount(g, now, forever)
		if write {
			g = LoginGate{FailedCount: w.FailedCount, NextAttemptAt: w.NextAttemptAt, LockedUntil: w.LockedUntil,
				Pending: w.Pending, PendingAt: w.PendingAt}
		}
		return tk, v
	}
	// The crashed replica: three checks admitted, never settled.
	for range 3 {
		if tk, v := admit(t0); v != gateAdmit || !tk.counted {
			t.Fatalf("crashed replica's check: %v %+v", v, tk)
		}
	}
	// The others: a check every 5 s, each settled with the right password
	// (succeeded: the account's count is cleared, its own slot given back).
	reset := time.Time{}
	for now := t0.Add(5 * time.Second); now.Before(t0.Add(3 * time.Minute)); now = now.Add(5 * time.Second) {
		tk, v := admit(now)
		if v != gateAdmit || !tk.counted {
			t.Fatalf("%s after the crash: %v %+v", now.Sub(t0), v, tk)
		}
		if g.Pending == 1 && reset.IsZero() {
			reset = now
		}
		g = LoginGate{LockedUntil: g.LockedUntil, Pending: max(g.Pending-1, 0), PendingAt: g.PendingAt}
	}
	if reset.IsZero() {
		t.Fatalf("the crashed replica's 3 checks still count after 3 minutes of a busy account (pending %d)", g.Pending)
	}
	if d := reset.Sub(t0); d > pendingStale+5*time.Second {
		t.Fatalf("the crashed replica's checks counted for %s (pendingStale %s)", d, pendingStale)
	}
	if g.Pending != 0 {
		t.Fatalf("pending %d after every live check settled", g.Pending)
	}
}

// TestRunningChecks: one in-memory check an account; none while a check
// of the account is in its admission transaction here (which learns
// whether one runs); entries go when their checks end; the map is bounded
// and, full, lists nothing more in memory until the unlisted admissions
// end.
func TestRunningChecks(t *testing.T) {
	r := newRunningChecks()
	if !r.claim("a") || r.claim("a") {
		t.Fatal("one in-memory check an account")
	}
	held, done := r.admitting("a")
	if !held {
		t.Fatal("an admission beside the in-memory check does not see it")
	}
	r.release("a")
	if r.claim("a") {
		t.Fatal("claimed while an admission of the account runs")
	}
	done()
	if len(r.m) != 0 {
		t.Fatalf("%d entries after every check ended", len(r.m))
	}
	if held, done := r.admitting("b"); held {
		t.Fatal("held without an in-memory check")
	} else {
		done()
	}

	for i := range maxRunningChecks {
		if !r.claim(fmt.Sprint(i)) {
			t.Fatalf("claim %d refused below the bound", i)
		}
	}
	if r.claim("x") || len(r.m) != maxRunningChecks {
		t.Fatalf("claimed beyond the bound (%d entries)", len(r.m))
	}
	held, done = r.admitting("x") // unlisted: the map is full
	if held || len(r.m) != maxRunningChecks {
		t.Fatalf("unlisted admission: held=%v, %d entries", held, len(r.m))
	}
	r.release("0")
	if r.claim("y") {
		t.Fatal("claimed while an unlisted admission runs")
	}
	done()
	if !r.claim("y") {
		t.Fatal("not claimed after the unlisted admission ended")
	}
	for i := range maxRunningChecks {
		r.release(fmt.Sprint(i))
	}
	r.release("y")
	if len(r.m) != 0 || r.unlisted != 0 {
		t.Fatalf("%d entries, %d unlisted after every check ended", len(r.m), r.unlisted)
	}
}
