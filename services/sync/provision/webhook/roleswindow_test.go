package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/webhook"
)

// A grant's validity window is respected: a grant not yet in force gives
// no role, the role arrives when the window starts and leaves when it ends
// (the engine's sweep of the windows crossed), as authz computes it
// (review sec27b M2). The engine's clock is moved, not waited for.
func TestRolesFollowGrantWindows(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	env := provtest.New(t, provision.Options{Dial: dial(), Now: clock})
	rc := &receiver{}
	// The clock's offset when each delivery arrived (by delivery id): a
	// person's roles are computed as the delivery is made, so a delivery
	// of an earlier event made after the clock moved carries the roles in
	// force then.
	var atMu sync.Mutex
	arrivedAt := map[string]time.Duration{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		off := time.Duration(offset.Load())
		body, _ := io.ReadAll(r.Body)
		var b webhook.Body
		if json.Unmarshal(body, &b) == nil {
			atMu.Lock()
			arrivedAt[b.Delivery] = off
			atMu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	env.Start()
	a := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm roles", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	roleFixture(env)
	start := time.Now()
	env.GrantDuring("gr1", "r1", "user", "u1", start.Add(time.Hour), start.Add(2*time.Hour)) // ann: clerk in an hour, for an hour
	env.GrantDuring("gr2", "r1", "user", "u2", time.Time{}, start.Add(3*time.Hour))          // bob: clerk for three hours
	from := 0
	expect := func(what, user, roles, holders string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		env.Wait(what+": "+user+" "+roles+", r1 "+holders, func() bool {
			got := rc.got()
			if time.Now().After(deadline) {
				var detail []string
				for _, b := range got[from:] {
					detail = append(detail, b.ObjectID+" roles "+roleCodes(b)+" members "+members(b))
				}
				t.Fatalf("%s: %v%s", what, detail, env.Summary(a.ID))
			}
			person := slices.IndexFunc(got[from:], func(b webhook.Body) bool {
				return b.Kind == provision.KindUser && b.ObjectID == user && roleCodes(b) == roles
			})
			return person >= 0 && slices.ContainsFunc(got[from+person:], func(b webhook.Body) bool {
				return b.Kind == provision.KindRole && b.ObjectID == "r1" && members(b) == holders
			})
		})
		from = len(rc.got())
	}
	expect("a grant not yet in force, and one in force", "u1", "[]", "[u2]")
	offset.Store(int64(time.Hour + time.Second))
	expect("ann's window starts", "u1", "[clerk]", "[u1,u2]")
	offset.Store(int64(2*time.Hour + time.Second))
	expect("ann's window ends", "u1", "[]", "[u2]")
	offset.Store(int64(3*time.Hour + time.Second))
	expect("bob's grant ends", "u2", "[]", "[]")
	n := len(rc.got())
	for _, b := range rc.got() {
		atMu.Lock()
		off := arrivedAt[b.Delivery]
		atMu.Unlock()
		if b.Kind == provision.KindUser && b.ObjectID == "u1" && roleCodes(b) == "[clerk]" && (off < time.Hour || off >= 2*time.Hour) {
			t.Errorf("ann got clerk outside her window (the clock %v on): %+v", off, b)
		}
	}
	// a sweep of the same windows again (another process, a restart
	// before the cursor moved) adds nothing
	var again int
	if err := env.Store.InTx(context.Background(), func(tx provision.Tx) error {
		subs, err := tx.Subscriptions()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(subs, func(s *provision.Subscription) bool {
			return s.ID == a.ID && s.Enabled && s.DeliverRoles && s.Strategy == provision.Immediate
		}) {
			t.Fatalf("the subscription as the sweep reads it: %+v", subs)
		}
		again, err = provision.SweepGrantWindows(tx, subs, time.Time{}, clock())
		return err
	}); err != nil || again != 0 {
		t.Fatalf("the windows swept again added %d deliveries (%v)", again, err)
	}
	if got := rc.got(); len(got) != n {
		t.Fatalf("more deliveries after the windows: %v", seen(got[n:]))
	}
}
