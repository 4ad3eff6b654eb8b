package provision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/webhook"
)

const secret = "whsec-0123456789abcdef"

func dial() map[string]provision.Dialer {
	return map[string]provision.Dialer{provision.Webhook: webhook.New}
}

func users(env *provtest.Env, n int) {
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ"})
	for i := range n {
		env.Change("user", "created", fmt.Sprintf("u%03d", i), map[string]any{"login_name": fmt.Sprintf("p%03d", i), "org_id": "o1"})
	}
}

// Item 6: a business system that never answers does not hold back another.
func TestHangingSystemDoesNotHoldBackHealthyOne(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial(), Timeout: 300 * time.Millisecond, MaxAttempts: 1000})
	release := make(chan struct{})
	var hung atomic.Int64
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	defer close(release)
	var ok atomic.Int64
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ok.Add(1) }))
	defer healthy.Close()
	env.Start()
	sel := provision.Selection{Orgs: []string{"o1"}}
	slow := env.Subscribe(&provision.Subscription{App: "slow", Name: "slow", Selection: sel, Transport: provision.Webhook,
		Endpoint: hanging.URL, Secret: secret})
	fast := env.Subscribe(&provision.Subscription{App: "fast", Name: "fast", Selection: sel, Transport: provision.Webhook,
		Endpoint: healthy.URL, Secret: secret})
	users(env, 30)
	env.Wait("the healthy system to get all 31", func() bool { return env.Count(fast.ID, provision.Delivered) == 31 })
	env.Wait("the hanging system to be tried twice", func() bool { return hung.Load() >= 2 })
	if n := env.Count(slow.ID, provision.Delivered); n != 0 {
		t.Fatalf("the hanging system got %d deliveries", n)
	}
	env.Wait("a recorded timeout", func() bool {
		ds := env.Deliveries(slow.ID)
		return len(ds) > 0 && ds[0].Attempts >= 1
	})
	d := env.Deliveries(slow.ID)[0]
	if !strings.Contains(d.LastError, "timeout") || !strings.Contains(d.LastError, "no answer within 300ms") {
		t.Fatalf("last error of the hanging system: %q", d.LastError)
	}
	st, err := (&provision.Service{Store: env.Store}).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Subscription.ID == slow.ID && (s.Pending != 31 || s.Oldest.IsZero() || s.LastError == "") {
			t.Fatalf("status of the hanging subscription %+v", s)
		}
		if s.Subscription.ID == fast.ID && (s.Pending != 0 || s.Lag(time.Now()) != 0) {
			t.Fatalf("status of the healthy subscription %+v", s)
		}
	}
}

// Item 6: 500s and closed connections are retried, recorded with a clear
// last error, dead-lettered with an alert, and retried on demand.
func TestFailuresAreRecordedDeadLetteredAndRetried(t *testing.T) {
	var mu sync.Mutex
	var alerts []provision.Delivery
	env := provtest.New(t, provision.Options{Dial: dial(), MaxAttempts: 3,
		Alert: func(_ context.Context, _ *provision.Subscription, d provision.Delivery) {
			mu.Lock()
			alerts = append(alerts, d)
			mu.Unlock()
		}})
	var mode atomic.Value
	mode.Store("500")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "500":
			http.Error(w, "database is down", http.StatusInternalServerError)
		case "close":
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			_ = c.Close()
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "x", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Wait("a dead letter", func() bool { return env.Count(sub.ID, provision.Dead) == 1 })
	d := env.Deliveries(sub.ID)[0]
	if d.Attempts != 3 || !strings.Contains(d.LastError, "HTTP 500") || !strings.Contains(d.LastError, "database is down") {
		t.Fatalf("dead letter %+v", d)
	}
	mu.Lock()
	if len(alerts) != 1 || alerts[0].Seq != d.Seq || alerts[0].Status != provision.Dead {
		t.Fatalf("alerts %+v", alerts)
	}
	mu.Unlock()

	mode.Store("close")
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1"})
	env.Wait("a second dead letter", func() bool { return env.Count(sub.ID, provision.Dead) == 2 })
	d = env.Deliveries(sub.ID)[1]
	if !strings.Contains(d.LastError, "EOF") && !strings.Contains(d.LastError, "connection reset") {
		t.Fatalf("closed connection recorded as %q", d.LastError)
	}

	mode.Store("ok")
	n, err := (&provision.Service{Store: env.Store, Engine: env.Engine()}).Retry(context.Background(), provision.DeliveryFilter{App: "app1"})
	if err != nil || n != 2 {
		t.Fatalf("retry %d %v", n, err)
	}
	env.Wait("both delivered after the retry", func() bool { return env.Count(sub.ID, provision.Delivered) == 2 })
	rows, err := env.Store.Report(context.Background(), "app1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || len(rows) != 1 || rows[0].Delivered != 2 || rows[0].Failed != 6 || rows[0].Dead != 0 {
		t.Fatalf("report %+v %v", rows, err)
	}
}

// TestDeadLettersRetriedByTimer: with DeadLetterRetry a dead letter goes
// back in its queue on its own that long after it died, for one attempt,
// and again after each death, until the business system takes it (the
// maritime design's "retried by timer until the sync succeeds"); each
// death alerts, and the dead letter says when it is retried.
func TestDeadLettersRetriedByTimer(t *testing.T) {
	var calls atomic.Int64
	var mu sync.Mutex
	var callsAtDeath []int64
	env := provtest.New(t, provision.Options{Dial: dial(), MaxAttempts: 2, DeadLetterRetry: 400 * time.Millisecond,
		Alert: func(context.Context, *provision.Subscription, provision.Delivery) {
			mu.Lock()
			callsAtDeath = append(callsAtDeath, calls.Load())
			mu.Unlock()
		}})
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !up.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "x", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	start := time.Now()
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Wait("a dead letter", func() bool { return env.Count(sub.ID, provision.Dead) == 1 })
	d := env.Deliveries(sub.ID)[0]
	if d.NextAt.Before(start.Add(400 * time.Millisecond)) {
		t.Fatalf("a dead letter's automatic retry is due at %s, want 400 ms after it died", d.NextAt)
	}
	// dead again after its automatic retry, of one attempt: a second alert
	env.Wait("the dead letter tried again on its own", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(callsAtDeath) >= 2
	})
	mu.Lock()
	if callsAtDeath[0] != 2 || callsAtDeath[1] != 3 {
		t.Errorf("calls at each death %v, want 2 (a whole round) then 3 (one attempt of the automatic retry)", callsAtDeath)
	}
	mu.Unlock()
	up.Store(true)
	env.Wait("the dead letter delivered once the system is back, without a retry by hand",
		func() bool { return env.Count(sub.ID, provision.Delivered) == 1 })
	if n := env.Count(sub.ID, provision.Dead); n != 0 {
		t.Fatalf("%d dead letters left", n)
	}
}

func TestScheduledBatch(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	env.Start()
	users(env, 3)
	env.Wait("the projection", func() bool {
		c, _ := env.Store.Cursor(context.Background())
		return c == 4
	})
	// batch strategy: changes are not delivered; the schedule delivers the
	// whole selection (its first run is due at once)
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "nightly", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret, Strategy: provision.Batch, BatchEvery: time.Hour})
	env.Wait("the scheduled batch", func() bool { return env.Count(sub.ID, provision.Delivered) == 4 })
	env.Change("user", "created", "u999", map[string]any{"login_name": "late", "org_id": "o1"})
	// the next batch is an hour away: the change waits for it
	s, _ := env.Store.GetSubscription(context.Background(), sub.ID)
	if s.LastBatchAt.IsZero() {
		t.Fatal("the batch time was not recorded")
	}
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	env.Wait("the projection of the late change", func() bool {
		c, _ := env.Store.Cursor(context.Background())
		return c == 5
	})
	if n := len(env.Deliveries(sub.ID)); n != 4 {
		t.Fatalf("a batch-only subscription got a change delivered at once (%d deliveries)", n)
	}
	_, n, _, err := svc.StartBatch(context.Background(), "app1", "", provision.Filter{Org: "o1"})
	if err != nil || n != 5 {
		t.Fatalf("on-demand batch %d %v", n, err)
	}
	env.Wait("the on-demand batch", func() bool { return env.Count(sub.ID, provision.Delivered) == 9 })
	if _, _, _, err := svc.StartBatch(context.Background(), "nobody", "", provision.Filter{}); err == nil ||
		!strings.Contains(err.Error(), "no enabled subscription") {
		t.Fatalf("batch of an app without subscriptions: %v", err)
	}
}

// An edit of a subscription whose business system hangs mid-delivery
// holds no other subscription: the edited worker finishes its delivery
// outside the engine's lock while another subscription is created and
// delivered; once the hanging system answers, each of its deliveries was
// sent once (the edited worker's replacement starts after it ended).
func TestEditOfHangingSubscriptionHoldsNoOther(t *testing.T) {
	// A delivery timeout longer than any wait of the test: before the
	// fix, the engine waited for it while holding its lock.
	env := provtest.New(t, provision.Options{Dial: dial(), Timeout: 10 * time.Minute})
	release := make(chan struct{})
	var mu sync.Mutex
	sent := map[string]int{}
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b webhook.Body
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		sent[b.Delivery]++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hanging.Close()
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	var fastGot atomic.Int64
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fastGot.Add(1) }))
	defer healthy.Close()
	requests := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range sent {
			n += c
		}
		return n
	}

	env.Start()
	sel := provision.Selection{Orgs: []string{"o1"}}
	slow := env.Subscribe(&provision.Subscription{App: "slow", Name: "slow", Selection: sel, Transport: provision.Webhook,
		Endpoint: hanging.URL, Secret: secret})
	users(env, 2)
	env.Wait("the hanging system to receive its first delivery", func() bool { return requests() == 1 })
	env.Wait("the projection", func() bool {
		c, _ := env.Store.Cursor(context.Background())
		return c == 3
	})

	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	s, err := env.Store.GetSubscription(context.Background(), slow.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.Name, s.Secret = "slow renamed", ""
	if _, err := svc.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	fast := env.Subscribe(&provision.Subscription{App: "fast", Name: "fast", Selection: sel, Transport: provision.Webhook,
		Endpoint: healthy.URL, Secret: secret})
	// Its initial batch: the org and both people.
	env.Wait("the new subscription's deliveries while the edited one hangs", func() bool {
		return env.Count(fast.ID, provision.Delivered) == 3
	})
	if n := requests(); n != 1 {
		t.Fatalf("the hanging system got %d requests while it hung, want 1", n)
	}

	close(release)
	released = true
	env.Wait("the hanging system's deliveries", func() bool { return env.Count(slow.ID, provision.Delivered) == 3 })
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 3 {
		t.Fatalf("the hanging system got deliveries %v, want 3", sent)
	}
	for d, n := range sent {
		if n != 1 {
			t.Fatalf("delivery %s sent %d times%s", d, n, env.Summary(slow.ID))
		}
	}
}

// A subtree resent to the other centres (identity's org.resent) is not
// delivered to business systems: the next change still is.
func TestResendIsNotProvisioned(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer srv.Close()
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "x", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	users(env, 1)
	env.Wait("the org and the person", func() bool { return env.Count(sub.ID, provision.Delivered) == 2 })
	// (named by the org itself, so that as any other change of it it
	// would be delivered)
	env.Change("org", "resent", "o1", map[string]any{"resend_id": "rs1", "org_id": "o1", "objects": []string{"org:o1", "user:u000"}})
	env.Change("user", "updated", "u000", map[string]any{"display_name": "Ann"})
	env.Wait("the update", func() bool { return env.Count(sub.ID, provision.Delivered) == 3 })
	if n := len(env.Deliveries(sub.ID)); n != 3 || got.Load() != 3 {
		t.Fatalf("%d deliveries, %d requests: the resend was delivered", n, got.Load())
	}
	// At a centre receiving the resend: an object it holds unchanged is
	// not delivered again, a new one is (review sec14 L1).
	env.ResentReplica("user", "u000", map[string]any{"display_name": "Ann"})
	env.ResentReplica("user", "u777", map[string]any{"login_name": "newcomer", "org_id": "o1"})
	env.Change("user", "updated", "u000", map[string]any{"display_name": "Ann B"})
	env.Wait("the newcomer and the next update", func() bool { return env.Count(sub.ID, provision.Delivered) >= 5 })
	var ann, newcomer int
	for _, d := range env.Deliveries(sub.ID) {
		switch d.ObjectID {
		case "u000":
			ann++
		case "u777":
			newcomer++
		}
	}
	if ann != 3 || newcomer != 1 {
		t.Fatalf("deliveries of u000 %d (want 3: created, updated twice), of the newcomer %d", ann, newcomer)
	}
}
