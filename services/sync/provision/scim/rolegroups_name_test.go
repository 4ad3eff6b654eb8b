package scim_test

import (
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// TestRoleGroupsRefuseGroupNamedLikeRole: with roles_as=groups, a UIAS
// group whose name starts with the roles' prefix is not delivered (a dead
// letter saying why), so the business system's Group named like the role
// holds the role's holders only (review sec31c M2); an empty prefix is
// refused at subscription.
func TestRoleGroupsRefuseGroupNamedLikeRole(t *testing.T) {
	users, groups := newHandler(), newHandler()
	srv := startSCIM(t, users, groups, nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	sel := provision.Selection{Orgs: []string{"o1"}}
	sub := env.Subscribe(&provision.Subscription{App: "hr", Name: "HR", Selection: sel, DeliverRoles: true,
		Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token,
		Settings: map[string]string{provision.SettingRolesAs: provision.RolesAsGroups}})
	roleGroupsFixture(env)
	env.Change("group", "created", "g9", map[string]any{"code": "x", "name": "role:clerk", "org_id": "o1"})
	env.Change("group", "member_added", "g9", map[string]any{"user_id": "u2"})
	env.Grant("put", "gr1", "r1", "user", "u1")
	deadline := time.Now().Add(20 * time.Second)
	for !settled(env, sub.ID) || !strings.Contains(roleGroupState(users, groups, "role:clerk"), "ann") {
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %s\n%s", roleGroupState(users, groups, "role:"), env.Summary(sub.ID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := roleGroupState(users, groups, "role:clerk"); got != "role:clerk=[ann]" {
		t.Errorf("Groups named role:clerk at the business system = %s, want only the role's, with ann", got)
	}
	if s := env.Summary(sub.ID); !strings.Contains(s, "identity.group g9 upsert dead") ||
		!strings.Contains(s, `starts with the roles' Group prefix`) {
		t.Errorf("the group named like a role was not refused with its reason:\n%s", s)
	}

	bad := &provision.Subscription{App: "hr", Name: "HR2", Selection: sel, DeliverRoles: true, Strategy: sub.Strategy,
		Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token,
		Settings: map[string]string{provision.SettingRolesAs: provision.RolesAsGroups, provision.SettingRoleGroupPrefix: ""}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "role_group_prefix") {
		t.Errorf("an empty role_group_prefix: %v, want refused", err)
	}
}
