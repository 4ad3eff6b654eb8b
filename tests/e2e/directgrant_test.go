package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// Direct grants of a permission (docs/adr/0018, design 004 §2.1.3.3): an
// administrator grants one permission to a person, or to an org over REST,
// without a role; the application's Check, ListPermissions, ListSubjects
// and Explain answer it; a grant dated in the future does not count yet, an
// expired one no more; a revocation is answered at its revision, also for a
// person whose answer was prepared; bad grants are refused with a sentence
// (gRPC and REST); the grant's changes are audited.
func TestDirectGrants(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "ann", nil, nil)
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	az := authzv1.NewAuthzServiceClient(e.conn)
	authzOA(t, adm, e.adm(), f.appID)
	approve := &authzv1.Permission{App: f.appID, Resource: "docs.contract", Operation: "approve"}
	check := func(person, res, op string, rev int64) bool {
		t.Helper()
		r, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: person, Resource: res, Operation: op, AtLeastRevision: rev})
		if err != nil {
			t.Fatalf("check %s %s: %v", res, op, err)
		}
		return r.GetAllowed()
	}
	if check(f.userID, "docs.contract", "approve", 0) { // prepares ann's answer
		t.Fatal("allowed before any grant")
	}

	// gRPC: a direct grant to a person.
	g, err := adm.CreateGrant(e.adm(), &authzv1.Grant{Permission: approve, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}})
	if err != nil {
		t.Fatal(err)
	}
	if g.GetGrant().GetRoleId() != "" || g.GetGrant().GetPermission().GetOperation() != "approve" {
		t.Fatalf("grant %v", g.GetGrant())
	}
	if !check(f.userID, "docs.contract", "approve", g.GetRevision()) || check(f.userID, "docs.contract", "read", g.GetRevision()) {
		t.Fatal("the direct grant does not allow exactly its permission")
	}
	ps, err := az.ListPermissions(f.ctx(), &authzv1.ListPermissionsRequest{Person: f.userID})
	if err != nil || len(ps.GetPermissions()) != 1 || ps.GetPermissions()[0].GetResource() != "docs.contract" {
		t.Fatalf("permissions %v %v", ps, err)
	}
	ex, err := az.Explain(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.contract", Operation: "approve"})
	if err != nil || !ex.GetAllowed() || ex.GetGrant().GetId() != g.GetGrant().GetId() || len(ex.GetRolePath()) != 0 ||
		ex.GetGrant().GetPermission().GetResource() != "docs.contract" {
		t.Fatalf("explain %v %v", ex, err)
	}
	subs, err := az.ListSubjects(f.ctx(), &authzv1.ListSubjectsRequest{Resource: "docs.contract", Operation: "approve"})
	if err != nil || len(subs.GetSubjects()) != 1 || subs.GetSubjects()[0].GetGrantId() != g.GetGrant().GetId() ||
		subs.GetSubjects()[0].GetRoleId() != "" || subs.GetSubjects()[0].GetPermission().GetOperation() != "approve" {
		t.Fatalf("subjects %v %v", subs, err)
	}

	// REST: to an org (reaching bob two levels below), listed by permission.
	branch, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "branch-d", Name: "Branch D", ParentId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	team, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "team-d1", Name: "Team D1", ParentId: branch.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "bob", DisplayName: "Bob", OrgId: team.GetId(),
		Password: "Str0ng-Pass!42"})
	if err != nil {
		t.Fatal(err)
	}
	admHdr := map[string]string{"Authorization": "Bearer " + e.token}
	readDocs := map[string]any{"app": f.appID, "resource": "docs", "operation": "read"}
	code, out, _ := e.rest("POST", "/v1/authz/grants", admHdr, map[string]any{"permission": readDocs,
		"subject": map[string]any{"kind": "org", "id": branch.GetId()}})
	if code != http.StatusOK {
		t.Fatalf("REST direct grant: %d %v", code, out)
	}
	eventually(t, "an org's direct grant to reach a person below it", func() bool {
		return check(bob.GetId(), "docs.contract", "read", 0) // docs read covers the contract below it
	})
	code, out, _ = e.rest("GET", "/v1/authz/grants?permission.app="+url.QueryEscape(f.appID)+"&permission.resource=docs&permission.operation=read",
		admHdr, nil)
	if code != http.StatusOK || !strings.Contains(fmt.Sprint(out["grants"]), branch.GetId()) || len(out["grants"].([]any)) != 1 {
		t.Fatalf("REST grants of the permission: %d %v", code, out)
	}
	code, out, _ = e.rest("POST", "/v1/authz/check", appHeaders(f), map[string]any{"person": bob.GetId(), "resource": "docs", "operation": "read"})
	if code != http.StatusOK || out["allowed"] != true {
		t.Fatalf("REST check: %d %v", code, out)
	}

	// Validity: not yet in force; then one that ends.
	later := time.Now().Add(time.Hour)
	_, err = adm.CreateGrant(e.adm(), &authzv1.Grant{Permission: &authzv1.Permission{App: f.appID, Resource: "docs.inbox", Operation: "read"},
		Subject: &authzv1.Subject{Kind: "user", Id: f.userID}, ValidFrom: timestamppb.New(later)})
	if err != nil {
		t.Fatal(err)
	}
	ex, err = az.Explain(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read"})
	if err != nil || ex.GetAllowed() || ex.GetReason() != "GRANT_INACTIVE" || len(ex.GetInactive()) != 1 ||
		ex.GetInactive()[0].GetPermission().GetResource() != "docs.inbox" {
		t.Fatalf("explain of a direct grant not yet in force: %v %v", ex, err)
	}
	until := time.Now().Add(3 * time.Second)
	short, err := adm.CreateGrant(e.adm(), &authzv1.Grant{Permission: &authzv1.Permission{App: f.appID, Resource: "docs", Operation: "read"},
		Subject: &authzv1.Subject{Kind: "user", Id: f.userID}, ValidUntil: timestamppb.New(until)})
	if err != nil {
		t.Fatal(err)
	}
	if !check(f.userID, "docs", "read", short.GetRevision()) && time.Now().Before(until) {
		t.Fatal("a direct grant inside its window does not allow")
	}
	eventually(t, "an expired direct grant to stop allowing", func() bool { return !check(f.userID, "docs", "read", 0) })

	// Revoked: refused at the revocation's revision (ann's answer was
	// prepared by the checks above).
	rv, err := adm.RevokeGrant(e.adm(), &authzv1.RevokeGrantRequest{Id: g.GetGrant().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if check(f.userID, "docs.contract", "approve", rv.GetRevision()) {
		t.Fatal("allowed after the revocation")
	}

	// Bad grants, gRPC and REST.
	sub := &authzv1.Subject{Kind: "user", Id: f.userID}
	_, err = adm.CreateGrant(e.adm(), &authzv1.Grant{Subject: sub})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	wantMessage(t, err, "names neither role_id nor permission")
	_, err = adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: "x", Permission: approve, Subject: sub})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	wantMessage(t, err, "names both role_id and permission")
	_, err = adm.CreateGrant(e.adm(), &authzv1.Grant{Permission: &authzv1.Permission{App: f.appID, Resource: "docs.contract", Operation: "sign"}, Subject: sub})
	wantCode(t, err, codes.InvalidArgument, "BAD_AUTHZ_MODEL")
	wantMessage(t, err, `resource "docs.contract" has no operation "sign" (it has: approve, read)`)
	_, err = adm.CreateGrant(e.adm(), &authzv1.Grant{Permission: &authzv1.Permission{App: "uias", Resource: "identity.users", Operation: "write"}, Subject: sub})
	wantCode(t, err, codes.PermissionDenied, "")
	wantMessage(t, err, "come only with the built-in administrator roles")
	code, out, _ = e.rest("POST", "/v1/authz/grants", admHdr, map[string]any{"role_id": "x", "permission": readDocs,
		"subject": map[string]any{"kind": "user", "id": f.userID}})
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["message"]), "names both role_id and permission") {
		t.Fatalf("REST grant of a role and a permission: %d %v", code, out)
	}
	code, out, _ = e.rest("POST", "/v1/authz/grants", admHdr, map[string]any{"permission": map[string]any{"app": f.appID, "resource": "nope", "operation": "read"},
		"subject": map[string]any{"kind": "user", "id": f.userID}})
	if code != http.StatusBadRequest || !containsReason(out, "BAD_AUTHZ_MODEL") || !strings.Contains(fmt.Sprint(out["message"]), `has no resource "nope"`) {
		t.Fatalf("REST grant of an unknown permission: %d %v", code, out)
	}

	// Audited, naming the permission.
	eventually(t, "the direct grant's audit records", func() bool {
		var created, revoked bool
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.authz.grant.") {
			d, _ := ev["detail"].(map[string]any)
			if d["permission"] != f.appID+":docs.contract:approve" || d["grant_id"] != g.GetGrant().GetId() {
				continue
			}
			created = created || ev["api"] == "grant.create"
			revoked = revoked || ev["api"] == "grant.revoke"
		}
		return created && revoked
	})
}

// wantMessage checks a gRPC error's message says part.
func wantMessage(t *testing.T, err error, part string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), part) {
		t.Fatalf("error %v does not say %q", err, part)
	}
}

// A unit administrator grants directly only a permission a role they may
// hand on holds, inside their scope (and revokes only such); a system
// administrator's direct grant of another permission is not theirs to
// revoke.
func TestDirectGrantsDelegated(t *testing.T) {
	x := newEscalation(t) // unit-a: unit administrator of east, may hand on clerk (docs.inbox read)
	e := x.e
	clerk, err := x.adm.GetRole(e.adm(), &authzv1.GetRoleRequest{Id: x.clerk})
	if err != nil {
		t.Fatal(err)
	}
	app := clerk.GetRole().GetApp()
	user := func(id string) *authzv1.Subject { return &authzv1.Subject{Kind: "user", Id: id} }
	inbox := &authzv1.Permission{App: app, Resource: "docs.inbox", Operation: "read"}
	g, err := x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{Permission: inbox, Subject: user(x.bob)})
	if err != nil {
		t.Fatalf("unit administrator's direct grant of a part of clerk: %v", err)
	}
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{Permission: &authzv1.Permission{App: app, Resource: "docs.contract", Operation: "approve"},
		Subject: user(x.bob)})
	denied(t, "a permission of no role they may hand on", err, "directly only a permission held by a role you were given to hand on")
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{Permission: inbox, Subject: user(x.carol)})
	denied(t, "a person outside their scope", err, "outside the org subtree you administer")
	code, out, _ := e.rest("POST", "/v1/authz/grants", x.asHeader("unitA"), map[string]any{
		"permission": map[string]any{"app": app, "resource": "docs.contract", "operation": "approve"},
		"subject":    map[string]any{"kind": "user", "id": x.dave}})
	if code != http.StatusForbidden || !containsReason(out, "ADMIN_NOT_ALLOWED") {
		t.Fatalf("REST: a unit administrator's direct grant outside their roles: %d %v", code, out)
	}
	sys, err := x.adm.CreateGrant(e.adm(), &authzv1.Grant{Permission: &authzv1.Permission{App: app, Resource: "docs", Operation: "read"},
		Subject: user(x.dave)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.adm.RevokeGrant(x.as("unitA"), &authzv1.RevokeGrantRequest{Id: sys.GetGrant().GetId()})
	denied(t, "revoke of a direct grant beyond their roles", err, "revoke directly only a permission")
	if _, err := x.adm.RevokeGrant(x.as("unitA"), &authzv1.RevokeGrantRequest{Id: g.GetGrant().GetId()}); err != nil {
		t.Fatalf("revoke of their own kind of direct grant: %v", err)
	}
}
