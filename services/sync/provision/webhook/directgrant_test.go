package webhook_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// A direct grant of a permission (authz, docs/adr/0018) gives no role: a
// selection by role neither gains nor loses anyone by it, its events (put
// and revoke) are taken without a failure, and the changes after them are
// delivered as before.
func TestDirectGrantSelectsNobodyByRole(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	byRole := env.Subscribe(&provision.Subscription{App: "app7", Name: "role", Selection: provision.Selection{Roles: []string{"clerk"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "org_id": "o1"})
	env.DirectGrant("put", "dg1", "app7:docs:read", "user", "u1")
	env.DirectGrant("put", "dg2", "app7:docs:read", "org", "o1")
	env.DirectGrant("delete", "dg1", "", "", "")
	env.Grant("put", "gr1", "clerk", "user", "u2") // after them: still delivered
	env.Wait("the role grant's delivery"+env.Summary(byRole.ID), func() bool { return env.Count(byRole.ID, provision.Delivered) == 1 })
	var got []string
	for _, d := range env.Deliveries(byRole.ID) {
		got = append(got, d.Kind[len("identity."):]+" "+d.ObjectID+" "+d.Op)
	}
	if strings.Join(got, ",") != "user u2 upsert" {
		t.Fatalf("deliveries: %v", got)
	}
}
