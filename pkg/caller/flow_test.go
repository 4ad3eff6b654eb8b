package caller_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
)

// An application's limits are its whole: each of n instances applies its
// share (rounded up, never below one call).
func TestShare(t *testing.T) {
	var nilShare caller.Share
	if r, b := nilShare.Rate(10, 20); r != 10 || b != 20 {
		t.Fatalf("no share: %v %v", r, b)
	}
	three := caller.Share(func() int { return 3 })
	if r, b := three.Rate(30, 20); r != 10 || b != 7 {
		t.Fatalf("rate 30 burst 20 over 3: %v %v", r, b)
	}
	if r, b := three.Rate(1, 0); r != 1.0/3 || b != 1 {
		t.Fatalf("rate 1 (burst the rate) over 3: %v %v", r, b)
	}
	if r, b := three.Rate(0, 5); r != 0 || b != 5 {
		t.Fatalf("unlimited stays unlimited: %v %v", r, b)
	}
	for _, c := range []struct{ limit, want int }{{0, 0}, {1, 1}, {3, 1}, {4, 2}, {10, 4}} {
		if got := three.Concurrent(c.limit); got != c.want {
			t.Errorf("max_concurrent %d over 3: %d, want %d", c.limit, got, c.want)
		}
	}
	if got := caller.Share(func() int { return 0 }).Concurrent(5); got != 5 {
		t.Errorf("a count of 0 (etcd not listed yet) is one instance: %d", got)
	}
}

// Concurrency counts calls in and out per key; leaving twice counts once.
func TestConcurrency(t *testing.T) {
	c := caller.NewConcurrency()
	l1, ok1 := c.Enter("a", 2)
	l2, ok2 := c.Enter("a", 2)
	_, ok3 := c.Enter("a", 2)
	if !ok1 || !ok2 || ok3 || c.InFlight("a") != 2 {
		t.Fatalf("two of limit 2 in: %v %v %v, %d in flight", ok1, ok2, ok3, c.InFlight("a"))
	}
	if _, ok := c.Enter("b", 1); !ok {
		t.Fatal("another key is held to its own limit")
	}
	l1()
	l1()
	if c.InFlight("a") != 1 {
		t.Fatalf("after one left (twice): %d in flight", c.InFlight("a"))
	}
	if _, ok := c.Enter("a", 2); !ok {
		t.Fatal("a slot freed is taken again")
	}
	l2()
	if _, ok := c.Enter("z", 0); !ok {
		t.Fatal("no limit refused")
	}
	if c.InFlight("z") != 0 {
		t.Fatal("no limit counted")
	}
}

// The authenticator holds an application to its share of the rate and of
// max_concurrent (JR/T 0185-2020 10.1.2); refusals are reported for audit
// (RATE_LIMITED, CONCURRENCY_LIMITED, RESOURCE_EXHAUSTED, legacy -6).
func TestAppFlowControl(t *testing.T) {
	a := activeApp("a1")
	a.RateLimit, a.RateBurst, a.MaxConcurrent = 4, 4, 4
	r := newRig(t, a)
	var instances atomic.Int64
	instances.Store(2)
	auth, err := caller.NewAppAuthenticator(caller.AuthOptions{Apps: r.src, Now: r.clk.now,
		Share: func() int { return int(instances.Load()) },
		Denied: func(_ context.Context, appID string, err *apierr.Error, _ time.Time) {
			r.refused = append(r.refused, refusal{appID, err.Reason})
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.auth = auth
	ctx, ip := context.Background(), netip.MustParseAddr("192.0.2.7")
	// two instances: a burst of 2 here
	for i := range 2 {
		if _, err := auth.Authenticate(ctx, "a1", secret, ip); err != nil {
			t.Fatalf("call %d within this instance's share refused: %v", i, err)
		}
	}
	_, err = auth.Authenticate(ctx, "a1", secret, ip)
	r.wantRefused(t, err, "RATE_LIMITED", codes.ResourceExhausted, "-6")

	// max_concurrent 4 over two instances: 2 in progress here
	l1, err1 := auth.Enter(ctx, a)
	l2, err2 := auth.Enter(ctx, a)
	if err1 != nil || err2 != nil {
		t.Fatalf("two calls in: %v %v", err1, err2)
	}
	_, err = auth.Enter(ctx, a)
	r.wantRefused(t, err, caller.ReasonConcurrencyLimited, codes.ResourceExhausted, "-6")
	l1()
	l3, err := auth.Enter(ctx, a)
	if err != nil {
		t.Fatalf("a slot given back is taken: %v", err)
	}
	// the other instance gone: this one takes the whole
	instances.Store(1)
	l4, err := auth.Enter(ctx, a)
	if err != nil {
		t.Fatalf("alone, a third call: %v", err)
	}
	for _, l := range []func(){l2, l3, l4} {
		l()
	}
	b := activeApp("b1")
	for range 10 {
		if _, err := auth.Enter(ctx, b); err != nil {
			t.Fatalf("an application without max_concurrent refused: %v", err)
		}
	}
}
