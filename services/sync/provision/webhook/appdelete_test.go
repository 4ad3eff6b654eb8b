package webhook_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// TestDeletedAppLosesItsSubscriptions: identity's app.deleted, projected
// from the CHANGES stream, removes the application's subscriptions with
// their queues (nothing more is delivered to it), while another
// application's subscription keeps receiving changes.
func TestDeletedAppLosesItsSubscriptions(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	gone, kept := &receiver{}, &receiver{}
	srvGone, srvKept := httptest.NewServer(gone), httptest.NewServer(kept)
	defer srvGone.Close()
	defer srvKept.Close()
	env.Start()
	sel := provision.Selection{Orgs: []string{"o1"}}
	a := env.Subscribe(&provision.Subscription{App: "app-old", Name: "old", Selection: sel, Transport: provision.Webhook,
		Endpoint: srvGone.URL, Secret: secret})
	a2 := env.Subscribe(&provision.Subscription{App: "app-old", Name: "old 2", Selection: sel, Transport: provision.Webhook,
		Endpoint: srvGone.URL, Secret: secret})
	b := env.Subscribe(&provision.Subscription{App: "app-new", Name: "new", Selection: sel, Transport: provision.Webhook,
		Endpoint: srvKept.URL, Secret: secret})

	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Wait("the org delivered to all three", func() bool {
		return env.Count(a.ID, provision.Delivered) == 1 && env.Count(a2.ID, provision.Delivered) == 1 &&
			env.Count(b.ID, provision.Delivered) == 1
	})
	env.Change("app", "deleted", "app-old", map[string]any{"app_type": "OA", "app_code": "old"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1", "status": 1})
	env.Wait("the person delivered to the other application", func() bool { return env.Count(b.ID, provision.Delivered) == 2 })

	ctx := context.Background()
	for _, id := range []string{a.ID, a2.ID} {
		if _, err := env.Store.GetSubscription(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a subscription of the deleted application: %v", err)
		}
		if n := env.Count(id, provision.Pending); n != 0 {
			t.Fatalf("%d deliveries queued for a deleted application's subscription", n)
		}
	}
	if left, _ := env.Store.ListSubscriptions(ctx, "app-old"); len(left) != 0 {
		t.Fatalf("subscriptions of the deleted application: %v", left)
	}
	if n := len(gone.got()); n != 2 {
		t.Fatalf("the deleted application received %d deliveries, want only the 2 before", n)
	}
}
