package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/events"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

const escalationPassword = "Esc4lation-Pass!"

// escalation is the world of the privilege-escalation battery: root >
// east > east1, root > west; unit administrators of east (delegable, may
// hand on "clerk") and of east1 (may hand on "clerk"), a second system
// administrator living in east, a security auditor, and people.
type escalation struct {
	e                          *env
	adm                        authzv1.AuthzAdminServiceClient
	east, east1, west          string
	unitA, sub, sys2, aud, bob string
	carol, dave                string
	clerk, boss                string
	subGrant, audGrant         string
	tokens                     map[string]string
}

func (x *escalation) as(who string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+x.tokens[who])
}

func (x *escalation) asHeader(who string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + x.tokens[who]}
}

func newEscalation(t *testing.T) *escalation {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	x := &escalation{e: e, adm: authzv1.NewAuthzAdminServiceClient(e.conn), tokens: map[string]string{"admin": e.token}}
	org := func(code, parent string) string {
		o, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: code, Name: code, ParentId: parent})
		if err != nil {
			t.Fatalf("create org %s: %v", code, err)
		}
		return o.GetId()
	}
	x.east = org("east", e.root)
	x.east1 = org("east1", x.east)
	x.west = org("west", e.root)
	logins := map[string]string{} // by user id
	user := func(login, orgID string) string {
		u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: login, DisplayName: login, OrgId: orgID,
			Password: escalationPassword, PasswordNeverExpires: true})
		if err != nil {
			t.Fatalf("create user %s: %v", login, err)
		}
		logins[u.GetId()] = login
		return u.GetId()
	}
	x.unitA, x.sub, x.sys2, x.aud = user("unit-a", x.east), user("sub-a1", x.east1), user("sys-two", x.east), user("auditor-1", e.root)
	x.bob, x.carol, x.dave = user("bob", x.east1), user("carol", x.west), user("dave", x.east1)

	// A business application with two roles.
	f := e.seed("oa", "ann", nil, nil)
	x.clerk, x.boss = authzOA(t, x.adm, e.adm(), f.appID)
	grant := func(g *authzv1.Grant) string {
		r, err := x.adm.CreateGrant(e.adm(), g)
		if err != nil {
			t.Fatalf("grant %s to %s: %v", g.GetRoleId(), g.GetSubject().GetId(), err)
		}
		e.noteGrant(logins[g.GetSubject().GetId()], r)
		return r.GetGrant().GetId()
	}
	u := func(id string) *authzv1.Subject { return &authzv1.Subject{Kind: "user", Id: id} }
	grant(&authzv1.Grant{RoleId: "unit_admin", Subject: u(x.unitA), ScopeOrg: x.east, Delegable: true, GrantableRoles: []string{x.clerk}})
	x.subGrant = grant(&authzv1.Grant{RoleId: "unit_admin", Subject: u(x.sub), ScopeOrg: x.east1, GrantableRoles: []string{x.clerk}})
	grant(&authzv1.Grant{RoleId: "system_admin", Subject: u(x.sys2)})
	if r, err := x.adm.CreateGrant(e.aud(), &authzv1.Grant{RoleId: "security_auditor", Subject: u(x.aud)}); err != nil {
		t.Fatalf("the auditor appoints auditor-1: %v", err)
	} else {
		x.audGrant = r.GetGrant().GetId()
		e.noteGrant("auditor-1", r)
	}

	for who, login := range map[string]string{"unitA": "unit-a", "sub": "sub-a1", "sys2": "sys-two", "aud": "auditor-1"} {
		x.login(t, who, login)
	}
	// authz learns where people are from identity's events.
	eventually(t, "authz to know the org tree", func() bool {
		_, err := e.admin.GetUser(x.as("sub"), &identityv1.GetUserRequest{Id: x.bob})
		return err == nil
	})
	return x
}

func (x *escalation) login(t *testing.T, who, login string) {
	t.Helper()
	tok, err := x.e.firstAdminLogin(t, login, escalationPassword)
	if err != nil {
		t.Fatalf("admin login %s: %v", login, err)
	}
	x.tokens[who] = tok
}

// denied checks a refusal: PERMISSION_DENIED with a message saying why.
func denied(t *testing.T, what string, err error, why string) {
	t.Helper()
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != codes.PermissionDenied {
		t.Errorf("%s: want PERMISSION_DENIED, got %v", what, err)
		return
	}
	if !strings.Contains(st.Message(), why) {
		t.Errorf("%s: message %q does not say %q", what, st.Message(), why)
	}
}

// restDenied checks a REST refusal: 403 with the reason and a message.
func restDenied(t *testing.T, what string, code int, out map[string]any, why string) {
	t.Helper()
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out["message"]), why) {
		t.Errorf("REST %s: want 403 saying %q, got %d %v", what, why, code, out)
	}
}

// TestPrivilegeEscalationBattery tries every escalation path the issue
// names over gRPC and REST: each is refused with PERMISSION_DENIED and a
// message a person understands, changes nothing, and leaves an audit
// record.
func TestPrivilegeEscalationBattery(t *testing.T) {
	x := newEscalation(t)
	e := x.e
	ctx := context.Background()
	u := func(id string) *authzv1.Subject { return &authzv1.Subject{Kind: "user", Id: id} }
	kinds := 0
	try := func(what, why string, err error) {
		t.Helper()
		kinds++
		denied(t, what, err, why)
	}

	// The allowed paths work (else the refusals prove nothing).
	if _, err := e.admin.CreateUser(x.as("unitA"), &identityv1.CreateUserRequest{LoginName: "eve", DisplayName: "Eve", OrgId: x.east1,
		Password: escalationPassword}); err != nil {
		t.Fatalf("unit admin creates a user inside: %v", err)
	}
	if _, err := x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: x.clerk, Subject: u(x.bob)}); err != nil {
		t.Fatalf("unit admin hands on a role: %v", err)
	}
	if _, err := e.admin.LockUser(x.as("unitA"), &identityv1.LockUserRequest{Id: x.sub, DurationSeconds: 60}); err != nil {
		t.Fatalf("unit admin locks the sub-unit admin below: %v", err)
	}
	if _, err := e.admin.UnlockUser(x.as("unitA"), &identityv1.UnlockUserRequest{Id: x.sub}); err != nil {
		t.Fatal(err)
	}
	x.login(t, "sub", "sub-a1") // locking ended their session

	// 1-6: the org subtree.
	_, err := e.admin.CreateUser(x.as("unitA"), &identityv1.CreateUserRequest{LoginName: "mallory", DisplayName: "M", OrgId: x.west,
		Password: escalationPassword})
	try("unit admin creates a user outside their subtree", "outside the org subtree", err)
	_, err = e.admin.UpdateUser(x.as("unitA"), &identityv1.UpdateUserRequest{Id: x.bob, UpdateMask: []string{"org_id"}, OrgId: x.west})
	try("unit admin moves a user out of their subtree", "outside the org subtree", err)
	_, err = e.admin.MoveOrg(x.as("unitA"), &identityv1.MoveOrgRequest{Id: x.east1, NewParentId: x.west})
	try("unit admin moves an org out of their subtree", "outside the org subtree", err)
	_, err = e.admin.MoveOrg(x.as("unitA"), &identityv1.MoveOrgRequest{Id: x.east, NewParentId: x.west})
	try("unit admin moves their own org", "outside the org subtree", err)
	_, err = e.admin.CreateOrg(x.as("unitA"), &identityv1.CreateOrgRequest{Code: "above", Name: "Above", ParentId: e.root})
	try("unit admin creates an org above their subtree", "outside the org subtree", err)
	_, err = e.admin.SetOrgStatus(x.as("unitA"), &identityv1.SetOrgStatusRequest{Id: x.east, Status: identityv1.Status_STATUS_DISABLED})
	try("unit admin disables their own org", "outside the org subtree", err)
	_, err = e.admin.AddGroupMember(x.as("unitA"), &identityv1.GroupMemberRequest{GroupId: mustGroup(t, e, x.east), UserId: x.carol})
	try("unit admin pulls a person from outside into a group", "outside the org subtree", err)
	_, err = e.admin.ListUsers(x.as("unitA"), &identityv1.ListUsersRequest{OrgId: x.west})
	try("unit admin lists the people of another branch", "outside the org subtree", err)

	// 9-13: administrators above or beside them.
	_, err = e.admin.LockUser(x.as("unitA"), &identityv1.LockUserRequest{Id: x.sys2, DurationSeconds: 60})
	try("unit admin locks a system administrator", "system administrator", err)
	_, err = e.admin.UpdateUser(x.as("unitA"), &identityv1.UpdateUserRequest{Id: x.sys2, UpdateMask: []string{"display_name"}, DisplayName: "x"})
	try("unit admin edits a system administrator", "system administrator", err)
	_, err = e.admin.SetPassword(x.as("unitA"), &identityv1.SetPasswordRequest{Id: x.sub, Password: "Taken-0ver-Pass!"})
	try("unit admin resets another admin's password", "password of another administrator", err)
	_, err = e.admin.SetPassword(x.as("admin"), &identityv1.SetPasswordRequest{Id: x.sys2, Password: "Taken-0ver-Pass!"})
	try("system admin resets another system admin's password", "password of another administrator", err)
	_, err = e.admin.LockUser(x.as("sub"), &identityv1.LockUserRequest{Id: x.unitA, DurationSeconds: 60})
	try("sub-unit admin locks the admin above", "outside the org subtree", err)

	// 14-17: global actions.
	_, err = e.admin.CreateApp(x.as("unitA"), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "rogue", Name: "Rogue"})
	try("unit admin creates an application", "none of your roles", err)
	_, err = identityv1.NewKeyServiceClient(e.conn).RotateKeys(x.as("unitA"), &identityv1.RotateKeysRequest{})
	try("unit admin rotates the keys", "none of your roles", err)
	_, err = x.adm.CreateRole(x.as("unitA"), &authzv1.Role{Code: "mine"})
	try("unit admin creates a role", "none of your roles", err)
	_, err = x.adm.PutResource(x.as("admin"), &authzv1.Resource{App: "uias", Code: "audit.delete", Kind: "entity", Operations: []string{"delete"}})
	try("system admin adds an operation to the administration namespace", "built in", err)

	// 18-20: the auditor changes nothing.
	_, err = e.admin.UpdateUser(x.as("aud"), &identityv1.UpdateUserRequest{Id: x.bob, UpdateMask: []string{"display_name"}, DisplayName: "x"})
	try("auditor changes a user", "none of your roles", err)
	_, err = x.adm.CreateGrant(x.as("aud"), &authzv1.Grant{RoleId: x.clerk, Subject: u(x.dave)})
	try("auditor grants a role", "none of your roles", err)
	_, err = e.admin.CreateApp(x.as("aud"), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "rogue2", Name: "Rogue"})
	try("auditor creates an application", "none of your roles", err)

	// 21-29: grants.
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: x.boss, Subject: u(x.dave)})
	try("unit admin grants a role they may not hand on", "hand on", err)
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: x.clerk, Subject: u(x.unitA)})
	try("unit admin grants themselves a role", "themselves", err)
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: "system_admin", Subject: u(x.unitA)})
	try("unit admin makes themselves system administrator", "themselves", err)
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: "system_admin", Subject: u(x.dave)})
	try("unit admin appoints a system administrator", "hand on", err)
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: x.clerk, Subject: u(x.carol)})
	try("unit admin grants outside their subtree", "outside the org subtree", err)
	_, err = x.adm.CreateGrant(x.as("sub"), &authzv1.Grant{RoleId: "unit_admin", Subject: u(x.dave), ScopeOrg: x.east1, GrantableRoles: []string{x.clerk}})
	try("sub-unit admin (not delegable) appoints an admin", "delegable", err)
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: "unit_admin", Subject: u(x.dave), ScopeOrg: x.east1,
		Delegable: true, GrantableRoles: []string{x.clerk}})
	try("unit admin appoints a delegable admin (a third level)", "delegable", err)
	_, err = x.adm.CreateGrant(x.as("unitA"), &authzv1.Grant{RoleId: "unit_admin", Subject: u(x.dave), ScopeOrg: x.east1,
		GrantableRoles: []string{x.clerk, x.boss}})
	try("unit admin appoints an admin with more than they hold", "delegable", err)
	_, err = x.adm.CreateGrant(x.as("sys2"), &authzv1.Grant{RoleId: "security_auditor", Subject: u(x.sys2)})
	try("system admin makes themselves auditor", "themselves", err)
	_, err = x.adm.CreateGrant(x.as("admin"), &authzv1.Grant{RoleId: "security_auditor", Subject: u(x.dave)})
	try("system admin appoints a stand-in auditor", "only by a security auditor", err)
	_, err = x.adm.RevokeGrant(x.as("admin"), &authzv1.RevokeGrantRequest{Id: x.audGrant})
	try("system admin removes an auditor (to take the account over)", "only by a security auditor", err)
	_, err = x.adm.CreateRole(x.as("admin"), &authzv1.Role{Code: "super", Inherits: []string{"system_admin"}})
	try("a role including system_admin", "may not include", err)
	_, err = x.adm.CreateRole(x.as("admin"), &authzv1.Role{Code: "reader", Permissions: []*authzv1.Permission{{App: "uias", Resource: "audit.records", Operation: "read"}}})
	try("a role with the auditor's permission", "built-in administrator roles", err)
	_, err = x.adm.DeleteExclusion(x.as("admin"), &authzv1.DeleteExclusionRequest{Id: "builtin-sys-aud"})
	try("removing the separation of the three administrators", "built in", err)

	// 33: both halves of an exclusive pair (SoD is FAILED_PRECONDITION).
	_, err = x.adm.CreateGrant(x.as("aud"), &authzv1.Grant{RoleId: "security_auditor", Subject: u(x.unitA)})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "mutually exclusive") {
		t.Errorf("unit admin made auditor too: %v", err)
	}
	kinds++

	// 34-35: acting outside the grant's time box, and after revocation
	// with a token taken before it.
	from := timestamppb.New(time.Now().Add(time.Hour))
	if _, err := x.adm.CreateGrant(x.as("admin"), &authzv1.Grant{RoleId: "unit_admin", Subject: u(x.carol), ScopeOrg: x.west,
		ValidFrom: from, GrantableRoles: []string{x.clerk}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: "carol", Password: escalationPassword})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("admin login before the grant is in force: %v", err)
	}
	kinds++
	if _, err := x.adm.RevokeGrant(x.as("admin"), &authzv1.RevokeGrantRequest{Id: x.subGrant}); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.LockUser(x.as("sub"), &identityv1.LockUserRequest{Id: x.bob, DurationSeconds: 60})
	try("replaying an admin token after the grant was revoked", "", err)

	// The same refusals over REST: 403 with the sentence.
	code, out, _ := e.rest("POST", "/v1/users", x.asHeader("unitA"), map[string]any{"login_name": "mallory2", "display_name": "M",
		"org_id": x.west, "password": escalationPassword})
	restDenied(t, "create a user outside", code, out, "outside the org subtree")
	code, out, _ = e.rest("POST", "/v1/authz/grants", x.asHeader("unitA"), map[string]any{"role_id": "system_admin",
		"subject": map[string]any{"kind": "user", "id": x.unitA}})
	restDenied(t, "grant themselves system_admin", code, out, "themselves")
	code, out, _ = e.rest("POST", "/v1/apps", x.asHeader("aud"), map[string]any{"app_type": "OA", "app_code": "rogue3", "name": "R"})
	restDenied(t, "auditor creates an app", code, out, "none of your roles")
	code, out, _ = e.rest("POST", "/v1/authz/grants", x.asHeader("unitA"), map[string]any{"role_id": x.boss,
		"subject": map[string]any{"kind": "user", "id": x.dave}})
	restDenied(t, "grant a role not handed on", code, out, "hand on")

	// Separation of duty holds for memberships too: joining a group, or
	// moving to an org, that would give someone both roles of a pair.
	if _, err := x.adm.CreateExclusion(x.as("admin"), &authzv1.Exclusion{RoleA: x.clerk, RoleB: x.boss, Name: "maker-checker"}); err != nil {
		t.Fatal(err)
	}
	approvers := mustGroup(t, e, x.east1)
	if _, err := x.adm.CreateGrant(x.as("admin"), &authzv1.Grant{RoleId: x.boss, Subject: &authzv1.Subject{Kind: "group", Id: approvers}}); err != nil {
		t.Fatal(err)
	}
	if _, err := x.adm.CreateGrant(x.as("admin"), &authzv1.Grant{RoleId: x.boss, Subject: &authzv1.Subject{Kind: "org", Id: x.west}}); err != nil {
		t.Fatal(err)
	}
	// bob holds clerk (granted above by unitA).
	_, err = e.admin.AddGroupMember(x.as("admin"), &identityv1.GroupMemberRequest{GroupId: approvers, UserId: x.bob})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "maker-checker") {
		t.Errorf("joining a group that gives both roles: %v", err)
	}
	_, err = e.admin.UpdateUser(x.as("admin"), &identityv1.UpdateUserRequest{Id: x.bob, UpdateMask: []string{"org_id"}, OrgId: x.west})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "mutually exclusive") {
		t.Errorf("moving to an org that gives both roles: %v", err)
	}
	if _, err := e.admin.AddGroupMember(x.as("admin"), &identityv1.GroupMemberRequest{GroupId: approvers, UserId: x.dave}); err != nil {
		t.Errorf("dave holds no clerk role and may join: %v", err)
	}

	if kinds < 20 {
		t.Fatalf("only %d kinds of escalation tried", kinds)
	}
	// Nothing changed: bob is still in east1, no app "rogue".
	b, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: x.bob})
	if err != nil || b.GetOrgId() != x.east1 {
		t.Errorf("bob moved: %v %v", b, err)
	}
	// Every refusal is audited (identity's admin.refused, authz's
	// admin.denied and refused writes).
	eventually(t, "the refusals in the audit log", func() bool {
		n := 0
		for _, ev := range appEvents(t, e.app, events.StreamAudit, "uias.audit.") {
			if ev["reason"] == "ADMIN_NOT_ALLOWED" {
				n++
			}
		}
		return n >= kinds
	})
}

func mustGroup(t *testing.T, e *env, orgID string) string {
	t.Helper()
	g, err := e.admin.CreateGroup(e.adm(), &identityv1.CreateGroupRequest{Code: "grp-" + orgID[len(orgID)-6:], Name: "G", OrgId: orgID})
	if err != nil {
		t.Fatal(err)
	}
	return g.GetId()
}
