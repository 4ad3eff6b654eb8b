package scim_test

import (
	"context"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// Turning deliver_roles off withdraws the roles it delivered: each selected
// person is written again with an empty roles attribute (SCIM has no role
// resource whose deletion would do it), and stays otherwise as it was;
// turning it on again gives them back (review sec27b M1).
func TestSCIMRolesWithdrawnWhenTurnedOff(t *testing.T) {
	users, groups := newHandler(), newHandler()
	srv := startSCIM(t, users, groups, nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "hr", Name: "HR", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1", "status": 1})
	env.Role("put", "r1", "hr", "clerk", "HR clerk", "leave:approve")
	env.Grant("put", "gr1", "r1", "user", "u1")
	env.Wait("the grant"+env.Summary(sub.ID), func() bool { return env.Count(sub.ID, provision.Delivered) == 5 })
	if ann, _ := users.ByExternal("u1"); rolesOf(ann.Attributes) != "[clerk/HR clerk/hr]" {
		t.Fatalf("setup: %s", rolesOf(ann.Attributes))
	}
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	set := func(on bool, want int) {
		t.Helper()
		cur, err := env.Store.GetSubscription(context.Background(), sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		cur.DeliverRoles, cur.Secret = on, ""
		if _, err := svc.Update(context.Background(), cur); err != nil {
			t.Fatal(err)
		}
		env.Wait("the edit"+env.Summary(sub.ID), func() bool { return env.Count(sub.ID, provision.Delivered) == want })
	}
	set(false, 7) // ann again, the role's removal (nothing to remove in SCIM)
	ann, ok := users.ByExternal("u1")
	if r := rolesOf(ann.Attributes); !ok || r != "" {
		t.Fatalf("deliver_roles turned off, yet ann still holds %q at the SCIM server", r)
	}
	if ann.Attributes["userName"] != "ann" || ann.Attributes["active"] != true {
		t.Fatalf("ann's other attributes changed with the roles: %v", ann.Attributes)
	}
	// later writes carry no roles attribute: nothing comes back
	env.Change("user", "updated", "u1", map[string]any{"display_name": "Ann B"})
	env.Wait("the rename"+env.Summary(sub.ID), func() bool { return env.Count(sub.ID, provision.Delivered) == 8 })
	if ann, _ = users.ByExternal("u1"); rolesOf(ann.Attributes) != "" || ann.Attributes["displayName"] != "Ann B" {
		t.Fatalf("after the rename: roles %q, %v", rolesOf(ann.Attributes), ann.Attributes)
	}
	set(true, 10) // ann with her roles, then the role
	if ann, _ = users.ByExternal("u1"); rolesOf(ann.Attributes) != "[clerk/HR clerk/hr]" {
		t.Fatalf("turned on again: %s", rolesOf(ann.Attributes))
	}
}
