package app_test

import (
	"strings"
	"testing"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// `uias ctl authz grant --permission APP:RESOURCE:OPERATION` grants one
// permission directly (no role): the grant shows it, "authz grants
// --permission" lists it, "authz check" answers it, "authz revoke" takes
// it away; a command line naming both or neither of --role and
// --permission, or a malformed permission, is a usage error, and an
// operation the resource does not have is refused with a sentence.
func TestCtlDirectGrant(t *testing.T) {
	_, c, root := ctlSetup(t)
	var app identityv1.CreateAppResponse
	c.jsonOut(&app, "", "app", "create", "--type", "OA", "--code", "oa", "--name", "OA")
	appID := app.GetApp().GetId()
	var ann identityv1.User
	c.jsonOut(&ann, "", "user", "create", "--login", "ann", "--name", "Ann", "--org", root.GetId())
	c.run("", "authz", "resource-put", "--app", appID, "--code", "docs", "--kind", "module", "--ops", "read,sign")
	perm := appID + ":docs:sign"

	var g authzv1.GrantResponse
	c.jsonOut(&g, "", "authz", "grant", "--permission", perm, "--user", ann.GetId())
	if g.GetGrant().GetRoleId() != "" || g.GetGrant().GetPermission().GetOperation() != "sign" || g.GetGrant().GetPermission().GetApp() != appID {
		t.Fatalf("grant %v", &g)
	}
	if out := c.run("", "authz", "grants", "--permission", perm); !strings.Contains(out, g.GetGrant().GetId()) ||
		!strings.Contains(out, "perm:"+perm) || !strings.Contains(out, "user:"+ann.GetId()) {
		t.Fatalf("authz grants --permission:\n%s", out)
	}
	var list authzv1.ListGrantsResponse
	c.jsonOut(&list, "", "authz", "grants", "--user", ann.GetId())
	if len(list.GetGrants()) != 1 || list.GetGrants()[0].GetPermission().GetResource() != "docs" {
		t.Fatalf("ann's grants: %v", list.GetGrants())
	}
	var res authzv1.CheckResponse
	c.jsonOut(&res, "", "authz", "check", "--app", appID, "--person", ann.GetId(), "--resource", "docs", "--operation", "sign")
	if !res.GetAllowed() {
		t.Fatal("the direct grant does not allow")
	}
	if out := c.run("", "authz", "subjects", "--app", appID, "--resource", "docs", "--operation", "sign"); !strings.Contains(out, "perm:"+perm) {
		t.Fatalf("authz subjects:\n%s", out)
	}
	if out := c.run("", "authz", "explain", "--app", appID, "--person", ann.GetId(), "--resource", "docs", "--operation", "sign"); !strings.Contains(out, "(direct grant)") {
		t.Fatalf("authz explain:\n%s", out)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--role", "r1", "--permission", perm}, "name exactly one of --role and --permission"},
		{nil, "name exactly one of --role and --permission"},
		{[]string{"--permission", appID + ":docs"}, "want APP:RESOURCE:OPERATION"},
		{[]string{"--permission", appID + "::sign"}, "want APP:RESOURCE:OPERATION"},
	} {
		args := append(append([]string{"authz", "grant"}, bad.args...), "--user", ann.GetId())
		if errs := c.fail(2, "", args...); !strings.Contains(errs, bad.want) {
			t.Errorf("%v: %s", bad.args, errs)
		}
	}
	if errs := c.fail(1, "", "authz", "grant", "--permission", appID+":docs:approve", "--user", ann.GetId()); !strings.Contains(errs, `has no operation "approve"`) {
		t.Fatalf("an operation the resource does not have: %s", errs)
	}

	c.run("", "authz", "revoke", g.GetGrant().GetId())
	c.jsonOut(&res, "", "authz", "check", "--app", appID, "--person", ann.GetId(), "--resource", "docs", "--operation", "sign")
	if res.GetAllowed() {
		t.Fatal("allowed after the revocation")
	}
}

// `uias ctl authz roles-resend --app APP` sends every role of the
// application again, unchanged (role provisioning turned on after an
// upgrade): it answers how many; the roles are as they were; without
// --app it is a usage error.
func TestCtlRolesResend(t *testing.T) {
	_, c, _ := ctlSetup(t)
	var app identityv1.CreateAppResponse
	c.jsonOut(&app, "", "app", "create", "--type", "OA", "--code", "oa", "--name", "OA")
	appID := app.GetApp().GetId()
	c.run("", "authz", "resource-put", "--app", appID, "--code", "docs", "--kind", "module", "--ops", "read")
	c.run("", "authz", "role-create", "--app", appID, "--code", "clerk", "--name", "Clerk", "--perm", appID+":docs:read")
	c.run("", "authz", "role-create", "--app", appID, "--code", "head", "--name", "Head")
	var before, after authzv1.ListRolesResponse
	c.jsonOut(&before, "", "authz", "roles", "--app", appID)
	var r authzv1.ResendRolesResponse
	c.jsonOut(&r, "", "authz", "roles-resend", "--app", appID)
	if r.GetRoles() != 2 || r.GetRevision() <= before.GetRevision() {
		t.Fatalf("resend: %v (roles at revision %d)", &r, before.GetRevision())
	}
	if out := c.run("", "authz", "roles-resend", "--app", appID); !strings.Contains(out, "roles sent again") || !strings.Contains(out, "2") {
		t.Fatalf("table:\n%s", out)
	}
	c.jsonOut(&after, "", "authz", "roles", "--app", appID)
	if len(after.GetRoles()) != 2 || after.GetRoles()[0].GetCode() != before.GetRoles()[0].GetCode() ||
		len(after.GetRoles()[0].GetPermissions()) != len(before.GetRoles()[0].GetPermissions()) {
		t.Fatalf("roles changed: %v, were %v", after.GetRoles(), before.GetRoles())
	}
	if errs := c.fail(2, "", "authz", "roles-resend"); !strings.Contains(errs, "--app is required") {
		t.Fatalf("without --app: %s", errs)
	}
}
