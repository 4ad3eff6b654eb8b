package e2e

import (
	"net/http"
	"testing"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestDelegationChain: multi-level delegated administration (004 §2.1.3.3
// 「通过一步步的权限传递，可以实现多级授权」). The system administrator
// appoints a unit administrator of east able to delegate three levels
// (REST); each appointee hands on one level fewer (gRPC, REST), and the
// last level appoints nobody. Over-reaching and malformed depths are
// refused with the right code and a sentence.
func TestDelegationChain(t *testing.T) {
	x := newEscalation(t)
	e := x.e
	east1x, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "east1x", Name: "east1x", ParentId: x.east1})
	if err != nil {
		t.Fatal(err)
	}
	logins := map[string]string{}
	person := func(login, org string) string {
		u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: login, DisplayName: login, OrgId: org,
			Password: escalationPassword, PasswordNeverExpires: true})
		if err != nil {
			t.Fatalf("create %s: %v", login, err)
		}
		logins[u.GetId()] = login
		return u.GetId()
	}
	chief, dep2, dep1, clerkPerson := person("chief", x.east), person("dep-two", x.east1), person("dep-one", east1x.GetId()), person("clerk-x", east1x.GetId())
	appointREST := func(who, as, user, scope string, depth int) (int, map[string]any) {
		t.Helper()
		body := map[string]any{"role_id": "unit_admin", "subject": map[string]any{"kind": "user", "id": user},
			"scope_org": scope, "delegable": true, "grantable_roles": []string{x.clerk}}
		if depth > 0 {
			body["delegation_depth"] = depth
		}
		h := map[string]string{"Authorization": "Bearer " + e.token}
		if as != "admin" {
			h = x.asHeader(as)
		}
		code, out, _ := e.rest("POST", "/v1/authz/grants", h, body)
		if code == http.StatusOK {
			if g, ok := out["grant"].(map[string]any); !ok || g["delegation_depth"] == nil && depth > 1 {
				t.Errorf("%s: the answer does not carry the depth: %v", who, out)
			}
			if pw, ok := out["activation_password"].(string); ok && pw != "" {
				e.appointed.Store(logins[user], pw)
			}
		}
		return code, out
	}

	// A malformed depth is a 400 before anything is written.
	if code, out := appointREST("depth 9", "admin", chief, x.east, 9); code != http.StatusBadRequest {
		t.Fatalf("delegation_depth 9: want 400, got %d %v", code, out)
	}
	if code, out := appointREST("chief", "admin", chief, x.east, 3); code != http.StatusOK {
		t.Fatalf("appoint chief: %d %v", code, out)
	}
	x.login(t, "chief", "chief")

	// chief (3) cannot hand on 3; hands on 2 over gRPC.
	u := func(id string) *authzv1.Subject { return &authzv1.Subject{Kind: "user", Id: id} }
	_, err = x.adm.CreateGrant(x.as("chief"), &authzv1.Grant{RoleId: "unit_admin", Subject: u(dep2), ScopeOrg: x.east1,
		Delegable: true, DelegationDepth: 3, GrantableRoles: []string{x.clerk}})
	denied(t, "hand on as many levels as held", err, "fewer levels")
	r, err := x.adm.CreateGrant(x.as("chief"), &authzv1.Grant{RoleId: "unit_admin", Subject: u(dep2), ScopeOrg: x.east1,
		Delegable: true, DelegationDepth: 2, GrantableRoles: []string{x.clerk}})
	if err != nil {
		t.Fatalf("chief appoints dep-two: %v", err)
	}
	e.noteGrant("dep-two", r)
	x.login(t, "dep2", "dep-two")

	// dep-two (2) appoints dep-one delegable one level (REST).
	if code, out := appointREST("dep-one", "dep2", dep1, east1x.GetId(), 0); code != http.StatusOK {
		t.Fatalf("dep-two appoints dep-one: %d %v", code, out)
	}
	x.login(t, "dep1", "dep-one")
	// dep-one (1) appoints nobody delegable, and nobody at its own level.
	code, out := appointREST("dep-one appoints delegable", "dep1", clerkPerson, east1x.GetId(), 0)
	restDenied(t, "a one-level admin appoints a delegable admin", code, out, "delegable")
	// dep-one grants what they were given to hand on.
	if _, err := x.adm.CreateGrant(x.as("dep1"), &authzv1.Grant{RoleId: x.clerk, Subject: u(clerkPerson)}); err != nil {
		t.Fatalf("dep-one grants the clerk role: %v", err)
	}
	// Depth without delegable is refused with a sentence.
	_, err = x.adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: "unit_admin", Subject: u(x.dave), ScopeOrg: x.east1,
		DelegationDepth: 2, GrantableRoles: []string{x.clerk}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("depth without delegable: %v", err)
	}
	// The chain reads back with its depths.
	res, err := x.adm.ListGrants(e.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: chief})
	if err != nil || len(res.GetGrants()) != 1 || res.GetGrants()[0].GetDelegationDepth() != 3 {
		t.Fatalf("chief's grants: %v %v", res.GetGrants(), err)
	}
}
