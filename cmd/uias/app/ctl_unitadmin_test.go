package app_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// `uias ctl` as a unit administrator: "user list" without --org lists the
// people of their subtree (not an error, not everyone), and "link delete"
// works inside it and is refused outside it with a sentence.
func TestCtlUnitAdminListsTheirSubtree(t *testing.T) {
	a, c, root := ctlSetup(t)
	var east, west identityv1.Org
	c.jsonOut(&east, "", "org", "create", "--code", "east", "--name", "East", "--parent", root.GetId())
	c.jsonOut(&west, "", "org", "create", "--code", "west", "--name", "West", "--parent", root.GetId())
	var pat, bob, carol identityv1.User
	c.jsonOut(&pat, readmeUserPassword+"\n", "user", "create", "--login", "pat", "--name", "Pat", "--org", east.GetId(), "--password-stdin")
	c.jsonOut(&bob, "", "user", "create", "--login", "bob", "--name", "Bob", "--org", east.GetId())
	c.jsonOut(&carol, "", "user", "create", "--login", "carol", "--name", "Carol", "--org", west.GetId())
	var app identityv1.CreateAppResponse
	c.jsonOut(&app, "", "app", "create", "--type", "OA", "--code", "oa", "--name", "OA")
	var lb, lc identityv1.AccountLink
	c.jsonOut(&lb, "", "link", "create", "--user", bob.GetId(), "--app", app.GetApp().GetId(), "--account", "B-OA")
	c.jsonOut(&lc, "", "link", "create", "--user", carol.GetId(), "--app", app.GetApp().GetId(), "--account", "C-OA")
	var g authzv1.GrantResponse
	c.jsonOut(&g, "", "authz", "grant", "--role", "unit_admin", "--user", pat.GetId(), "--scope-org", east.GetId())

	u := newCtl(t, a)
	deadline := time.Now().Add(30 * time.Second)
	// the appointment replaced the password the system administrator set
	// with an activation password; pat chooses their own at their first login
	if g.GetActivationPassword() == "" {
		t.Fatalf("the appointment of pat gave no activation password: %v", &g)
	}
	for u.exec(g.GetActivationPassword()+"\n"+readmeUserPassword+"-own\n", "login", "--user", "pat", "--password-stdin",
		"--new-password-stdin").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the unit administrator never logged in")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var list identityv1.ListUsersResponse
	for { // authz learns who lives where from identity's events
		u.jsonOut(&list, "", "user", "list")
		if ls := userLogins(list.GetUsers()); slices.Equal(ls, []string{"bob", "pat"}) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("unit administrator's user list: %v, want bob and pat", ls)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var links identityv1.ListAccountLinksResponse
	u.jsonOut(&links, "", "link", "list")
	if len(links.GetLinks()) != 1 || links.GetLinks()[0].GetId() != lb.GetId() {
		t.Fatalf("unit administrator's link list: %v", links.GetLinks())
	}
	if errs := u.fail(1, "", "link", "delete", lc.GetId()); !strings.Contains(errs, "outside the org subtree you administer") {
		t.Fatalf("link delete outside the subtree: %s", errs)
	}
	u.run("", "link", "delete", lb.GetId())
	c.jsonOut(&links, "", "link", "list")
	if len(links.GetLinks()) != 1 || links.GetLinks()[0].GetId() != lc.GetId() {
		t.Fatalf("links left: %v", links.GetLinks())
	}
}
