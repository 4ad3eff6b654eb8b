package webhook_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/webhook"
)

// A role gained or lost through a group's membership, a person's move to
// another org or an org's move (a group's or an org's grant reaches the
// person no more, or now) reaches the business system: the person again
// with their current roles, then the role with its current members
// (review sec27b H2). The people stay in the selection throughout.
func TestRolesFollowMembershipAndMoves(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	a := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm roles", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	roleFixture(env)
	env.Change("org", "created", "o2", map[string]any{"code": "sales", "name": "Sales", "parent_id": "o1"})
	env.Change("org", "created", "o3", map[string]any{"code": "desk", "name": "Desk", "parent_id": "o1"})
	env.Change("user", "created", "u3", map[string]any{"login_name": "cy", "org_id": "o3", "status": 1})
	env.Grant("put", "gr2", "r1", "group", "g1") // bob (u2) holds clerk through g1
	env.Grant("put", "gr3", "r1", "org", "o2")   // and whoever is under o2
	from := 0
	// expect waits for, among the deliveries since the last step, the
	// person with roles and then role r1 with members.
	expect := func(what, user, roles, holders string) {
		t.Helper()
		env.Wait(what+": "+user+" "+roles+", r1 "+holders+env.Summary(a.ID), func() bool {
			got := rc.got()
			person := slices.IndexFunc(got[from:], func(b webhook.Body) bool {
				return b.Kind == provision.KindUser && b.ObjectID == user && roleCodes(b) == roles
			})
			if person < 0 {
				return false
			}
			return slices.ContainsFunc(got[from+person:], func(b webhook.Body) bool {
				return b.Kind == provision.KindRole && b.ObjectID == "r1" && members(b) == holders
			})
		})
		from = len(rc.got())
	}
	expect("the group's grant", "u2", "[clerk]", "[u2]")

	env.Change("group", "member_removed", "g1", map[string]any{"user_id": "u2"})
	expect("bob leaves the group", "u2", "[]", "[]")
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u1"})
	expect("ann joins the group", "u1", "[clerk]", "[u1]")
	env.Change("user", "updated", "u2", map[string]any{"org_id": "o2"})
	expect("bob moves under o2", "u2", "[clerk]", "[u1,u2]")
	env.Change("user", "updated", "u2", map[string]any{"org_id": "o1"})
	expect("bob moves back", "u2", "[]", "[u1]")
	env.Change("org", "moved", "o3", map[string]any{"parent_id": "o2"})
	expect("cy's org moves under o2", "u3", "[clerk]", "[u1,u3]")
	env.Change("org", "moved", "o3", map[string]any{"parent_id": "o1"})
	expect("cy's org moves back", "u3", "[]", "[u1]")

	// only the subscription's application's role was delivered
	for _, b := range rc.got() {
		if b.Kind == provision.KindRole && b.ObjectID != "r1" {
			t.Errorf("role %s delivered to crm: %s", b.ObjectID, strings.Join(seen(rc.got()), "; "))
		}
	}
}
