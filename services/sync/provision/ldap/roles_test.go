package ldap_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/ldap"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// TestRolesInOpenLDAP: with deliver_roles, the application's roles become
// groupOfNames entries under ou=roles whose members are the selected
// people who hold them (granted to them or to their org); a grant, a
// revocation, a person leaving the selection and a role's removal change
// them; another application's roles never appear.
func TestRolesInOpenLDAP(t *testing.T) {
	url := startSlapd(t)
	d := openDir(t, url)
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "mail", Name: "directory", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.LDAP, Endpoint: url, Secret: rootPW,
		Settings: map[string]string{"base_dn": base, "bind_dn": rootDN}})
	settled := func() bool {
		for _, dl := range env.Deliveries(sub.ID) {
			if dl.Status != provision.Delivered {
				return false
			}
		}
		return true
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		env.Wait(what+env.Summary(sub.ID), func() bool { return settled() && cond() })
	}
	ann, bob := "uid=ann,ou=people,"+base, "uid=bob,ou=people,"+base
	clerk, admin := "cn=clerk,ou=roles,"+base, "cn=mailadmin,ou=roles,"+base
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o1"})
	env.Role("put", "r1", "mail", "clerk", "Mail clerk", "inbox:read")
	env.Role("put", "r2", "mail", "mailadmin", "Mail administrator", "inbox:admin")
	env.Role("put", "r9", "erp", "buyer", "Buyer", "po:write")
	env.Grant("put", "gr1", "r1", "org", "o1")
	env.Grant("put", "gr2", "r2", "user", "u1")
	env.Grant("put", "gr9", "r9", "user", "u1")
	wait("the roles", func() bool {
		return slices.Equal(d.members(clerk, "member"), lowerSorted(ann, bob)) && slices.Equal(d.members(admin, "member"), lowerSorted(ann))
	})
	if e := d.entry(clerk, "description", "businessCategory"); e.GetAttributeValue("description") != "Mail clerk" ||
		e.GetAttributeValue("businessCategory") != "uias:r1" {
		t.Fatalf("the role's entry: %v", e)
	}
	if got := d.dns("ou=roles,"+base, "(objectClass=*)"); !slices.Equal(got, lowerSorted(admin, clerk)) {
		t.Fatalf("ou=roles holds %v", got)
	}
	// revoked: the last holder leaves (the placeholder member stays)
	env.Grant("delete", "gr2", "", "", "")
	wait("the revocation", func() bool { return slices.Equal(d.members(admin, "member"), []string{""}) })
	// a person who leaves the selection leaves the roles
	env.Change("user", "updated", "u2", map[string]any{"org_id": "elsewhere"})
	wait("bob's departure", func() bool { return slices.Equal(d.members(clerk, "member"), lowerSorted(ann)) })
	// a role deleted in UIAS is deleted in the directory
	env.Role("delete", "r2", "", "", "")
	wait("the removal", func() bool { return d.entry(admin) == nil })
	if got := d.dns("ou=roles,"+base, "(objectClass=*)"); !slices.Equal(got, lowerSorted(clerk)) {
		t.Fatalf("ou=roles holds %v", got)
	}
	// deliver_roles turned off: the roles written are removed
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	cur, err := env.Store.GetSubscription(context.Background(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur.DeliverRoles, cur.Secret = false, ""
	if _, err := svc.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	wait("the roles' removal", func() bool { return d.entry(clerk) == nil })
	if e := d.entry(ann, "uid"); e == nil {
		t.Fatal("ann's entry went with the roles")
	}
}

// lowerSorted is the DNs as dir.members returns them.
func lowerSorted(ss ...string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	slices.Sort(out)
	return out
}

// TestRolesFollowMembershipInOpenLDAP: a role held through a group's or an
// org's grant leaves (or joins) ou=roles with the membership or the move
// that ends (or starts) it, the people staying in the selection (review
// sec27b H2).
func TestRolesFollowMembershipInOpenLDAP(t *testing.T) {
	url := startSlapd(t)
	d := openDir(t, url)
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "mail", Name: "directory", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.LDAP, Endpoint: url, Secret: rootPW,
		Settings: map[string]string{"base_dn": base, "bind_dn": rootDN}})
	wait := func(what string, cond func() bool) {
		t.Helper()
		env.Wait(what+env.Summary(sub.ID), func() bool {
			for _, dl := range env.Deliveries(sub.ID) {
				if dl.Status != provision.Delivered {
					return false
				}
			}
			return cond()
		})
	}
	ann, bob, cy := "uid=ann,ou=people,"+base, "uid=bob,ou=people,"+base, "uid=cy,ou=people,"+base
	clerk, admin := "cn=clerk,ou=roles,"+base, "cn=mailadmin,ou=roles,"+base
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ"})
	env.Change("org", "created", "o2", map[string]any{"code": "it", "name": "IT", "parent_id": "o1"})
	env.Change("org", "created", "o3", map[string]any{"code": "ops", "name": "Ops", "parent_id": "o1"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o2"})
	env.Change("user", "created", "u3", map[string]any{"login_name": "cy", "display_name": "Cy", "org_id": "o3"})
	env.Change("group", "created", "g1", map[string]any{"code": "desk", "name": "Desk", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u1"})
	env.Role("put", "r1", "mail", "clerk", "Mail clerk", "inbox:read")
	env.Role("put", "r2", "mail", "mailadmin", "Mail administrator", "inbox:admin")
	env.Grant("put", "gr1", "r1", "group", "g1")
	env.Grant("put", "gr2", "r2", "org", "o2")
	wait("the roles", func() bool {
		return slices.Equal(d.members(clerk, "member"), lowerSorted(ann)) && slices.Equal(d.members(admin, "member"), lowerSorted(bob))
	})
	env.Change("group", "member_removed", "g1", map[string]any{"user_id": "u1"})
	wait("ann leaves the group", func() bool { return slices.Equal(d.members(clerk, "member"), []string{""}) })
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u2"})
	wait("bob joins the group", func() bool { return slices.Equal(d.members(clerk, "member"), lowerSorted(bob)) })
	env.Change("user", "updated", "u2", map[string]any{"org_id": "o1"})
	wait("bob leaves o2", func() bool { return slices.Equal(d.members(admin, "member"), []string{""}) })
	env.Change("org", "moved", "o3", map[string]any{"parent_id": "o2"})
	wait("cy's org moves under o2", func() bool { return slices.Equal(d.members(admin, "member"), lowerSorted(cy)) })
	env.Change("org", "moved", "o3", map[string]any{"parent_id": "o1"})
	wait("cy's org moves back", func() bool { return slices.Equal(d.members(admin, "member"), []string{""}) })
	if e := d.entry(cy, "uid"); e == nil {
		t.Fatal("cy's entry is gone: cy never left the selection")
	}
	// a person disabled in UIAS holds no role in the directory (an
	// inetOrgPerson entry has no disabled state an application would
	// read); enabled again, the roles come back (docs/adr/0044)
	env.Change("user", "status_changed", "u2", map[string]any{"status": 2})
	wait("bob disabled", func() bool { return slices.Equal(d.members(clerk, "member"), []string{""}) })
	if e := d.entry(bob, "uid"); e == nil {
		t.Fatal("bob's entry is gone: a disabled person stays in the selection")
	}
	env.Change("user", "status_changed", "u2", map[string]any{"status": 1})
	wait("bob enabled again", func() bool { return slices.Equal(d.members(clerk, "member"), lowerSorted(bob)) })
}
