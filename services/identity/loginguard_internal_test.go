package identity

import (
	"fmt"
	"math"
	"net/netip"
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
		w, _, ok := g.admit("k", now, forever)
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
	if _, retry, ok := g.admit("k", now, forever); ok || retry != time.Minute {
		t.Fatalf("16th: ok=%v retry=%v", ok, retry)
	}
	// Half a minute later the charge is 14.5: still counts as 15.
	if _, retry, ok := g.admit("k", now.Add(30*time.Second), forever); ok || retry != 30*time.Second {
		t.Fatalf("after 30s: ok=%v retry=%v", ok, retry)
	}
	if w, _, ok := g.admit("k", now.Add(time.Minute), forever); !ok || w != 16*time.Second {
		t.Fatalf("after a minute: ok=%v wait=%v", ok, w)
	}
	// A wait beyond the caller's deadline is refused and not charged.
	g2 := newSourceGate(DefaultThrottle())
	for range 11 {
		g2.admit("k", now, forever)
	}
	if _, retry, ok := g2.admit("k", now, time.Second); ok || retry != 2*time.Second {
		t.Fatalf("deadline: ok=%v retry=%v", ok, retry)
	}
	if w, _, _ := g2.admit("k", now, forever); w != 2*time.Second {
		t.Fatalf("after a refusal the wait is %v, want 2s (not charged)", w)
	}
	// Refunds take charges back; sources are apart.
	g2.refund("k", now)
	g2.refund("k", now)
	if w, _, _ := g2.admit("k", now, forever); w != time.Second {
		t.Fatalf("after two refunds: %v", w)
	}
	if w, _, _ := g2.admit("other", now, forever); w != 0 {
		t.Fatalf("another source waits %v", w)
	}
}

func TestSourceGateBounded(t *testing.T) {
	th := DefaultThrottle()
	th.MaxSources = 100
	g := newSourceGate(th)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		g.admit(fmt.Sprint(i), now, time.Hour)
	}
	if len(g.m) > 100 {
		t.Fatalf("%d sources tracked, bound 100", len(g.m))
	}
}

func TestLoginSources(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.7":                "ip:192.0.2.7",
		"::ffff:192.0.2.7":         "ip:192.0.2.7",
		"2001:db8:1:2:3:4:5:6":     "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":     "ip:2001:db8:1:2::/64",
		"2001:db8:1:3::1":          "ip:2001:db8:1:3::/64",
		"fe80::1%eth0":             "ip:fe80::/64",
		"2001:db8:1:2:3:4:5:6%eth": "ip:2001:db8:1:2::/64",
	} {
		if got := addressKey(netip.MustParseAddr(ip)); got != want {
			t.Errorf("addressKey(%s) = %s, want %s", ip, got, want)
		}
	}
	if got := addressKey(netip.Addr{}); got != "ip:unknown" {
		t.Errorf("no address: %s", got)
	}
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

func TestDecideAccount(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Service{cfg: Config{Policy: DefaultPolicy(), Throttle: DefaultThrottle()}}
	forever := time.Duration(math.MaxInt64)

	if _, write, _, v := s.decideAccount(LoginGate{LockedUntil: now.Add(time.Second)}, now, forever); v != gateLocked || write {
		t.Fatalf("locked: %v %v", v, write)
	}
	// Counted, no spacing below the source cap + 1.
	w, write, tk, v := s.decideAccount(LoginGate{FailedCount: 1, SourceFailures: 1}, now, forever)
	if v != gateAdmit || !write || !tk.charged || w.FailedCount != 2 || w.SourceFailures != 2 || !w.NextAttemptAt.IsZero() || tk.level != 2 {
		t.Fatalf("second failure: %+v %+v", w, tk)
	}
	// The third counted failure spaces the next check by 1 s.
	w, _, tk, _ = s.decideAccount(LoginGate{FailedCount: 2}, now, forever)
	if !w.NextAttemptAt.Equal(now.Add(time.Second)) || tk.wait != 0 {
		t.Fatalf("third: %+v %+v", w, tk)
	}
	// Waiting for its turn: the next turn is counted from this one's start.
	w, _, tk, _ = s.decideAccount(LoginGate{FailedCount: 3, NextAttemptAt: now.Add(time.Second)}, now, forever)
	if tk.wait != time.Second || !w.NextAttemptAt.Equal(now.Add(3*time.Second)) {
		t.Fatalf("fourth: %+v %+v", w, tk)
	}
	// A source over its cap is not counted and moves nothing.
	if _, write, tk, v := s.decideAccount(LoginGate{FailedCount: 3, SourceFailures: 2, NextAttemptAt: now.Add(time.Second)}, now, forever); write || tk.charged || v != gateAdmit || tk.wait != time.Second {
		t.Fatalf("over cap: write=%v %+v %v", write, tk, v)
	}
	// A turn too far away, or beyond the deadline: refused.
	if _, _, _, v := s.decideAccount(LoginGate{NextAttemptAt: now.Add(31 * time.Second)}, now, forever); v != gateThrottled {
		t.Fatalf("31 s away: %v", v)
	}
	if _, _, _, v := s.decideAccount(LoginGate{NextAttemptAt: now.Add(5 * time.Second)}, now, time.Second); v != gateThrottled {
		t.Fatalf("beyond deadline: %v", v)
	}
	// The fifth counted failure locks: sources and count cleared.
	w, _, tk, _ = s.decideAccount(LoginGate{FailedCount: 4, SourceFailures: 1}, now, forever)
	if !tk.lockSet.Equal(now.Add(15*time.Minute)) || !w.LockedUntil.Equal(tk.lockSet) || w.FailedCount != 0 || !w.ClearSources {
		t.Fatalf("lock: %+v %+v", w, tk)
	}
	// Never locking: counting stops at maxCounted, spacing goes on at 30 s.
	s.cfg.Policy.MaxFailures = 0
	w, write, tk, _ = s.decideAccount(LoginGate{FailedCount: maxCounted, NextAttemptAt: now}, now, forever)
	if !write || tk.charged || w.FailedCount != maxCounted || !w.NextAttemptAt.Equal(now.Add(30*time.Second)) {
		t.Fatalf("ceiling: %+v %+v", w, tk)
	}
}
