package commands_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/sqlstore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// adminFixture: orgs root > east > east1 > east1a, root > west; people
// sys (system admin by grant), legacy (is_admin flag), aud (security
// auditor), ea (unit admin of east, delegable, may hand on "clerk"),
// e1 (unit admin of east1, not delegable), wa (unit admin of west),
// bob in east1a, carol in west.
type adminFixture struct {
	*fixture
	clerk, boss string
	grants      map[string]string
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), db: db, clock: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}}
	idx := index.New()
	if err := idx.Apply(authz.BuiltinChanges()...); err != nil {
		t.Fatal(err)
	}
	f.svc = commands.New(commands.Deps{Store: sqlstore.New(db), Index: idx, Now: f.clock.now, MaxWait: 200 * time.Millisecond})
	f.must(f.svc.Load(f.ctx))
	for o, p := range map[string]string{"root": "", "east": "root", "east1": "east", "east1a": "east1", "west": "root"} {
		idx.SetOrgParent(o, p)
	}
	for u, o := range map[string]string{"sys": "root", "legacy": "root", "aud": "root", "ea": "east", "e1": "east1",
		"wa": "west", "bob": "east1a", "carol": "west", "dave": "east1"} {
		idx.SetUserOrg(u, o)
	}
	idx.SetUserAdminFlag("legacy", true)
	af := &adminFixture{fixture: f, grants: map[string]string{}}
	f.resource("oa", "oa", "", authz.KindModule, "read", "approve")
	af.clerk = f.role("", "clerk", nil, "oa:oa:read")
	af.boss = f.role("", "boss", nil, "oa:oa:approve")
	g := func(name string, gr authz.Grant) {
		got, _, err := f.svc.CreateGrant(f.ctx, gr)
		f.must(err)
		af.grants[name] = got.ID
	}
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	g("sys", authz.Grant{Role: authz.RoleSystemAdmin, Subject: user("sys")})
	g("aud", authz.Grant{Role: authz.RoleSecurityAuditor, Subject: user("aud")})
	g("ea", authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("ea"), ScopeOrg: "east", Delegable: true, Grantable: []string{af.clerk}})
	g("e1", authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("e1"), ScopeOrg: "east1", Grantable: []string{af.clerk}})
	g("wa", authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("wa"), ScopeOrg: "west", Grantable: []string{af.clerk, af.boss}})
	return af
}

func as(id string) context.Context {
	return caller.With(context.Background(), &caller.Caller{Principal: id})
}

func asLegacy(id string) context.Context {
	return adminauth.With(as(id), &adminauth.Admin{ID: id, SystemAdminFlag: true})
}

func wantDenied(t *testing.T, what string, err error, msgPart string) {
	t.Helper()
	ae, ok := apierr.As(err)
	if !ok || ae.Code != apierr.PermissionDenied || ae.Reason != adminauth.ReasonNotAllowed {
		t.Fatalf("%s: want PERMISSION_DENIED ADMIN_NOT_ALLOWED, got %v", what, err)
	}
	if !strings.Contains(ae.Message, msgPart) {
		t.Fatalf("%s: message %q does not say %q", what, ae.Message, msgPart)
	}
}

func TestAdminCheckScopes(t *testing.T) {
	f := newAdminFixture(t)
	idx := f.svc.Index()
	now := f.clock.now()
	cases := []struct {
		name string
		q    index.AdminQuery
		want bool
	}{
		{"system admin, global", index.AdminQuery{Person: "sys", Resource: "identity.apps", Operation: "write"}, true},
		{"legacy flag is a system admin", index.AdminQuery{Person: "legacy", Resource: "identity.apps", Operation: "write", SystemAdminFlag: true}, true},
		{"flag not asserted", index.AdminQuery{Person: "legacy", Resource: "identity.apps", Operation: "write"}, false},
		{"system admin reads the audit log", index.AdminQuery{Person: "sys", Resource: "audit.records", Operation: "read"}, true},
		{"system admin archives no audit", index.AdminQuery{Person: "sys", Resource: "audit.records", Operation: "archive"}, false},
		{"unit admin reads audit inside", index.AdminQuery{Person: "ea", Resource: "audit.records", Operation: "read", Orgs: []string{"east1a"}}, true},
		{"unit admin reads no audit outside", index.AdminQuery{Person: "ea", Resource: "audit.records", Operation: "read", Orgs: []string{"west"}}, false},
		{"unit admin reads no whole audit log", index.AdminQuery{Person: "ea", Resource: "audit.records", Operation: "read"}, false},
		{"unit admin archives no audit", index.AdminQuery{Person: "ea", Resource: "audit.records", Operation: "archive", Orgs: []string{"east1a"}}, false},
		{"auditor reads audit", index.AdminQuery{Person: "aud", Resource: "audit.records", Operation: "archive"}, true},
		{"auditor changes no user", index.AdminQuery{Person: "aud", Resource: "identity.users", Operation: "write", Orgs: []string{"east"}}, false},
		{"unit admin inside", index.AdminQuery{Person: "ea", Resource: "identity.users", Operation: "write", Orgs: []string{"east1a"}}, true},
		{"unit admin outside", index.AdminQuery{Person: "ea", Resource: "identity.users", Operation: "write", Orgs: []string{"west"}}, false},
		{"unit admin moving out", index.AdminQuery{Person: "ea", Resource: "identity.users", Operation: "write", Orgs: []string{"east1", "west"}}, false},
		{"unit admin above own scope", index.AdminQuery{Person: "ea", Resource: "identity.orgs", Operation: "write", Orgs: []string{"root"}}, false},
		{"unit admin global action", index.AdminQuery{Person: "ea", Resource: "identity.apps", Operation: "write"}, false},
		{"unit admin on sub-unit admin", index.AdminQuery{Person: "ea", Resource: "identity.users", Operation: "lock", Orgs: []string{"east1"}, Target: "e1"}, true},
		{"sub-unit admin on their parent admin", index.AdminQuery{Person: "e1", Resource: "identity.users", Operation: "lock", Orgs: []string{"east1"}, Target: "ea"}, false},
		{"unit admin on system admin", index.AdminQuery{Person: "ea", Resource: "identity.users", Operation: "write", Orgs: []string{"east"}, Target: "sys"}, false},
		{"system admin locks system admin", index.AdminQuery{Person: "sys", Resource: "identity.users", Operation: "lock", Orgs: []string{"root"}, Target: "legacy"}, false},
		{"system admin unlocks system admin", index.AdminQuery{Person: "sys", Resource: "identity.users", Operation: "unlock", Orgs: []string{"root"}, Target: "legacy"}, true},
		{"system admin unlocks the auditor", index.AdminQuery{Person: "sys", Resource: "identity.users", Operation: "unlock", Orgs: []string{"root"}, Target: "aud"}, true},
		{"auditor unlocks nobody", index.AdminQuery{Person: "aud", Resource: "identity.users", Operation: "unlock", Orgs: []string{"root"}, Target: "sys"}, false},
		{"unit admin unlocks outside", index.AdminQuery{Person: "ea", Resource: "identity.users", Operation: "unlock", Orgs: []string{"west"}, Target: "carol"}, false},
		{"password of another admin", index.AdminQuery{Person: "sys", Resource: "identity.users", Operation: "password", Orgs: []string{"east"}, Target: "ea"}, false},
		{"system admin resets a person", index.AdminQuery{Person: "sys", Resource: "identity.users", Operation: "password", Orgs: []string{"east1a"}, Target: "bob"}, true},
		{"nobody", index.AdminQuery{Person: "bob", Resource: "identity.users", Operation: "read", Orgs: []string{"east1a"}}, false},
	}
	for _, c := range cases {
		d := idx.CheckAdmin(c.q, now)
		if d.Allowed != c.want {
			t.Errorf("%s: allowed=%v (%s), want %v", c.name, d.Allowed, d.Detail, c.want)
		}
		if !d.Allowed && d.Detail == "" {
			t.Errorf("%s: a refusal without a reason", c.name)
		}
	}
}

func TestAdminGrantEscalations(t *testing.T) {
	f := newAdminFixture(t)
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	grant := func(ctx context.Context, g authz.Grant) error {
		_, _, err := f.svc.CreateGrant(ctx, g)
		return err
	}
	// Allowed paths first.
	f.must(grant(as("ea"), authz.Grant{Role: f.clerk, Subject: user("bob")}))
	f.must(grant(as("ea"), authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("dave"), ScopeOrg: "east1a", Grantable: []string{f.clerk}}))
	f.must(grant(as("sys"), authz.Grant{Role: f.boss, Subject: user("carol")}))
	f.must(grant(asLegacy("legacy"), authz.Grant{Role: f.clerk, Subject: user("carol")}))

	for _, c := range []struct {
		name string
		ctx  context.Context
		g    authz.Grant
		msg  string
	}{
		{"unit admin grants a role not handed to them", as("ea"), authz.Grant{Role: f.boss, Subject: user("bob")}, "hand on"},
		{"unit admin grants themselves a role", as("ea"), authz.Grant{Role: f.clerk, Subject: user("ea")}, "themselves"},
		{"unit admin makes themselves system admin", as("ea"), authz.Grant{Role: authz.RoleSystemAdmin, Subject: user("ea")}, "themselves"},
		{"unit admin appoints a system admin", as("ea"), authz.Grant{Role: authz.RoleSystemAdmin, Subject: user("bob")}, "hand on"},
		{"unit admin grants outside the subtree", as("ea"), authz.Grant{Role: f.clerk, Subject: user("carol")}, "outside"},
		{"unit admin grants to an org above", as("ea"), authz.Grant{Role: f.clerk, Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "root"}}, "themselves"},
		{"unit admin grants to the west org", as("ea"), authz.Grant{Role: f.clerk, Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "west"}}, "outside"},
		{"sub-unit admin appoints (not delegable)", as("e1"), authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("bob"), ScopeOrg: "east1a", Grantable: []string{f.clerk}}, "delegable"},
		{"unit admin appoints at their own level", as("ea"), authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("bob"), ScopeOrg: "east", Grantable: []string{f.clerk}}, "delegable"},
		{"unit admin appoints with more roles", as("ea"), authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("bob"), ScopeOrg: "east1a", Grantable: []string{f.clerk, f.boss}}, "delegable"},
		{"unit admin appoints a delegable admin", as("ea"), authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("bob"), ScopeOrg: "east1a", Delegable: true, Grantable: []string{f.clerk}}, "delegable"},
		{"auditor grants", as("aud"), authz.Grant{Role: f.clerk, Subject: user("bob")}, "grants"},
		{"system admin grants themselves", as("sys"), authz.Grant{Role: f.clerk, Subject: user("sys")}, "themselves"},
		{"system admin grants to the org they are in", as("sys"), authz.Grant{Role: f.clerk, Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "root"}}, "themselves"},
		{"a person with no role grants", as("bob"), authz.Grant{Role: f.clerk, Subject: user("dave")}, "none of your roles"},
	} {
		err := grant(c.ctx, c.g)
		wantDenied(t, c.name, err, c.msg)
	}
	// An auditor appointing an auditor who is a unit admin: the built-in
	// separation of duty refuses it.
	if err := grant(as("aud"), authz.Grant{Role: authz.RoleSecurityAuditor, Subject: user("wa")}); !isReason(err, authz.ReasonSoDConflict) {
		t.Fatalf("auditor + unit admin: %v", err)
	}
	// Revoking: a unit admin revokes what they could grant, not a peer's admin grant.
	if _, err := f.svc.RevokeGrant(as("e1"), f.grants["ea"]); err == nil {
		t.Fatal("a sub-unit admin revoked their parent admin's grant")
	}
	if _, err := f.svc.RevokeGrant(as("wa"), f.grants["e1"]); err == nil {
		t.Fatal("a west admin revoked an east admin's grant")
	}
	// After revocation the power is gone at once.
	if _, err := f.svc.RevokeGrant(as("sys"), f.grants["ea"]); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, "revoked unit admin", grant(as("ea"), authz.Grant{Role: f.clerk, Subject: user("dave")}), "none of your roles")
	// Time-boxed: an expired admin grant allows nothing.
	g, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: authz.RoleUnitAdmin, Subject: user("carol"), ScopeOrg: "west",
		Grantable: []string{f.clerk}, ValidUntil: f.clock.now().Add(time.Hour)})
	f.must(err)
	_ = g
	if d := f.svc.Index().CheckAdmin(index.AdminQuery{Person: "carol", Resource: "identity.users", Operation: "write", Orgs: []string{"west"}}, f.clock.now()); !d.Allowed {
		t.Fatalf("time-boxed unit admin within window: %s", d.Detail)
	}
	f.clock.add(2 * time.Hour)
	if d := f.svc.Index().CheckAdmin(index.AdminQuery{Person: "carol", Resource: "identity.users", Operation: "write", Orgs: []string{"west"}}, f.clock.now()); d.Allowed {
		t.Fatal("expired unit admin grant still allows")
	}
}

// TestAuditorsAppointAuditors: the system administrator neither appoints
// a stand-in auditor nor removes the auditor to take the account over;
// auditors appoint and remove auditors, and the last one stays. Only while
// there is no auditor at all does a system administrator appoint the first.
func TestAuditorsAppointAuditors(t *testing.T) {
	f := newAdminFixture(t)
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	auditor := func(id string) authz.Grant { return authz.Grant{Role: authz.RoleSecurityAuditor, Subject: user(id)} }
	reads := func(id string) bool {
		return f.svc.Index().CheckAdmin(index.AdminQuery{Person: id, Resource: "audit.records", Operation: "read"}, f.clock.now()).Allowed
	}
	const only = "only by a security auditor"
	_, _, err := f.svc.CreateGrant(as("sys"), auditor("dave"))
	wantDenied(t, "system admin appoints a stand-in auditor", err, only)
	_, _, err = f.svc.CreateGrant(asLegacy("legacy"), auditor("dave"))
	wantDenied(t, "legacy-flag admin appoints an auditor", err, only)
	_, err = f.svc.RevokeGrant(as("sys"), f.grants["aud"])
	wantDenied(t, "system admin removes the auditor", err, only)
	_, _, err = f.svc.CreateGrant(as("ea"), auditor("bob"))
	wantDenied(t, "unit admin appoints an auditor", err, only)
	if reads("dave") || !reads("aud") {
		t.Fatal("a refused appointment or removal changed who reads the audit log")
	}

	// The auditor appoints a second one, who may remove the first; the
	// last one's grant stays.
	g, _, err := f.svc.CreateGrant(as("aud"), auditor("dave"))
	f.must(err)
	if !reads("dave") {
		t.Fatal("the appointed auditor does not read the audit log")
	}
	_, _, err = f.svc.CreateGrant(as("aud"), authz.Grant{Role: f.clerk, Subject: user("bob")})
	wantDenied(t, "auditor grants a business role", err, "none of your roles")
	if _, err := f.svc.RevokeGrant(as("dave"), f.grants["aud"]); err != nil {
		t.Fatalf("an auditor removes another: %v", err)
	}
	_, err = f.svc.RevokeGrant(as("dave"), g.ID)
	wantDenied(t, "the last auditor resigns", err, "last security auditor")
	if !reads("dave") {
		t.Fatal("the last auditor lost the role")
	}

	// No auditor at all (removed without an acting administrator, as
	// before the first-start auditor existed): a system administrator
	// appoints the first.
	if _, err := f.svc.RevokeGrant(context.Background(), g.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.CreateGrant(as("ea"), auditor("bob"))
	wantDenied(t, "unit admin appoints the first auditor", err, "")
	if _, _, err := f.svc.CreateGrant(as("sys"), auditor("bob")); err != nil {
		t.Fatalf("system admin appoints the first auditor: %v", err)
	}
	_, _, err = f.svc.CreateGrant(as("sys"), auditor("dave"))
	wantDenied(t, "system admin appoints a second auditor", err, only)
}

func TestAdminModelIsBuiltIn(t *testing.T) {
	f := newAdminFixture(t)
	sys := as("sys")
	_, _, err := f.svc.PutResource(sys, authz.Resource{App: authz.AdminApp, Code: "x", Kind: authz.KindModule, Operations: []string{"read"}})
	wantDenied(t, "resource of uias", err, "built in")
	_, _, err = f.svc.UpdateRole(sys, authz.Role{ID: authz.RoleSystemAdmin, Code: authz.RoleSystemAdmin})
	wantDenied(t, "update system_admin", err, "cannot be changed")
	_, err = f.svc.DeleteRole(sys, authz.RoleSecurityAuditor)
	wantDenied(t, "delete security_auditor", err, "cannot be deleted")
	_, _, err = f.svc.CreateRole(sys, authz.Role{Code: "super", Permissions: []authz.Permission{{App: authz.AdminApp, Resource: "audit.records", Operation: "read"}}})
	wantDenied(t, "role with audit read", err, "built-in administrator roles")
	_, _, err = f.svc.CreateRole(sys, authz.Role{Code: "super2", Inherits: []string{authz.RoleSystemAdmin}})
	wantDenied(t, "role inheriting system_admin", err, "may not include")
	_, err = f.svc.DeleteExclusion(sys, "builtin-sys-aud")
	wantDenied(t, "delete built-in exclusion", err, "built in")
	_, _, err = f.svc.CreateRole(as("ea"), authz.Role{Code: "mine"})
	wantDenied(t, "unit admin creates a role", err, "none of your roles")
	_, _, err = f.svc.CreateRole(as("aud"), authz.Role{Code: "mine"})
	wantDenied(t, "auditor creates a role", err, "none of your roles")
	if _, _, err := f.svc.CreateRole(sys, authz.Role{Code: "fine"}); err != nil {
		t.Fatal(err)
	}
}

func isReason(err error, reason string) bool {
	ae, ok := apierr.As(err)
	return ok && ae.Reason == reason
}

func TestMembershipSoD(t *testing.T) {
	f := newAdminFixture(t)
	idx := f.svc.Index()
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	// a pair somebody holds both roles of already is refused, naming them
	// (trial7 M4)
	g1, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.clerk, Subject: user("dave")})
	f.must(err)
	g2, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.boss, Subject: user("dave")})
	f.must(err)
	_, _, err = f.svc.CreateExclusion(as("sys"), authz.Exclusion{RoleA: f.clerk, RoleB: f.boss, Name: "maker-checker"})
	if ae, ok := apierr.As(err); !ok || ae.Reason != "SOD_CONFLICT" || !strings.Contains(ae.Message, "person dave holds both roles") {
		t.Fatalf("an exclusion somebody breaks already: %v", err)
	}
	for _, g := range []string{g1.ID, g2.ID} {
		_, err := f.svc.RevokeGrant(as("sys"), g)
		f.must(err)
	}
	_, _, err = f.svc.CreateExclusion(as("sys"), authz.Exclusion{RoleA: f.clerk, RoleB: f.boss, Name: "maker-checker"})
	f.must(err)
	idx.SetGroupOrg("approvers", "east1")
	_, _, err = f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.boss, Subject: authz.Subject{Kind: authz.SubjectGroup, ID: "approvers"}})
	f.must(err)
	_, _, err = f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.boss, Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "west"}})
	f.must(err)
	_, _, err = f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.clerk, Subject: user("bob")})
	f.must(err)
	now := f.clock.now()
	if e, ok := idx.MembershipConflict("bob", "approvers", "", now); !ok || e.Name != "maker-checker" {
		t.Fatalf("bob joining approvers: %v %v", e, ok)
	}
	if _, ok := idx.MembershipConflict("bob", "", "west", now); !ok {
		t.Fatal("bob moving to west")
	}
	if _, ok := idx.MembershipConflict("bob", "", "east", now); ok {
		t.Fatal("bob moving to east conflicts with nothing")
	}
	// a unit administrator's scoped grant gives its role too: an exclusion
	// naming it, somebody breaks already (review sec11 S12)
	_, _, err = f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.clerk, Subject: user("ea")})
	f.must(err)
	_, _, err = f.svc.CreateExclusion(as("sys"), authz.Exclusion{RoleA: authz.RoleUnitAdmin, RoleB: f.clerk, Name: "no-clerk-admins"})
	if ae, ok := apierr.As(err); !ok || ae.Reason != "SOD_CONFLICT" || !strings.Contains(ae.Message, "person ea holds both roles") {
		t.Fatalf("an exclusion a unit administrator breaks already: %v", err)
	}
	if _, ok := idx.MembershipConflict("dave", "approvers", "", now); ok {
		t.Fatal("dave holds no clerk role")
	}
	// Over CheckAdmin (as other components ask): allowed, with the conflict.
	d, err := f.svc.CheckAdmin(as("sys"), index.AdminQuery{Person: "sys", Resource: "identity.groups", Operation: "write",
		Target: "bob", JoinGroup: "approvers"}, 0)
	if err != nil || !d.Allowed || d.SoD == nil {
		t.Fatalf("CheckAdmin membership: %+v %v", d, err)
	}
	// An org moved, everyone in it with it (trial7 H1): east1, where bob
	// (clerk) is below, under west (whose people are bosses) conflicts;
	// under root, or west under root, not.
	if e, who, ok := idx.MoveConflict("east1", "west", now); !ok || who != "bob" || e.Name != "maker-checker" {
		t.Fatalf("east1 moved under west: %v %q %v", e, who, ok)
	}
	if _, _, ok := idx.MoveConflict("east1", "root", now); ok {
		t.Fatal("east1 moved under root conflicts with nothing")
	}
	// a disabled person counts: enabled again they would hold both
	// (review sec11 S3)
	idx.SetPersonDisabled("bob", true)
	if _, who, ok := idx.MoveConflict("east1", "west", now); !ok || who != "bob" {
		t.Fatal("a disabled person below the moved org was left out")
	}
	idx.SetPersonDisabled("bob", false)
	if _, _, ok := idx.MoveConflict("east1a", "east", now); ok {
		t.Fatal("east1a moved under east conflicts with nothing")
	}
	d, err = f.svc.CheckAdmin(as("sys"), index.AdminQuery{Person: "sys", Resource: "identity.orgs", Operation: "write",
		Orgs: []string{"east", "west"}, MoveOrg: "east1", JoinOrg: "west"}, 0)
	if err != nil || !d.Allowed || d.SoD == nil {
		t.Fatalf("CheckAdmin org move: %+v %v", d, err)
	}
}

// A check names one permission: a resource with its operation, or a URL;
// anything else is a bad request naming the field (not a silent false).
func TestCheckNamesAPermission(t *testing.T) {
	f := newAdminFixture(t)
	ctx := context.Background()
	for name, c := range map[string]struct {
		q     index.Query
		field string
	}{
		"no operation":       {index.Query{Person: "bob", App: "oa", Resource: "oa"}, "operation"},
		"resource and a URL": {index.Query{Person: "bob", App: "oa", Resource: "oa", Operation: "read", Method: "POST", Path: "/x"}, "resource"},
		"nothing":            {index.Query{Person: "bob", App: "oa"}, "resource"},
		// a path that resolves elsewhere than it reads (trial7 H2)
		"dot segment":       {index.Query{Person: "bob", App: "oa", Path: "/pub/../api/admin/users"}, "path"},
		"encoded dots":      {index.Query{Person: "bob", App: "oa", Path: "/pub/%2E%2e/api/admin/users"}, "path"},
		"encoded slash":     {index.Query{Person: "bob", App: "oa", Path: "/pub/..%2fapi"}, "path"},
		"trailing dots":     {index.Query{Person: "bob", App: "oa", Path: "/api/contracts/.."}, "path"},
		"no leading slash":  {index.Query{Person: "bob", App: "oa", Path: "api/contracts/42"}, "path"},
		"empty segment":     {index.Query{Person: "bob", App: "oa", Path: "/pub//x"}, "path"},
		"backslash":         {index.Query{Person: "bob", App: "oa", Path: "/pub/..\\api"}, "path"},
		"query in the path": {index.Query{Person: "bob", App: "oa", Path: "/api/x?y=1"}, "path"},
		// what routers read otherwise (review sec11 S1)
		"dot-semicolon":      {index.Query{Person: "bob", App: "oa", Path: "/pub/..;/api/admin/users"}, "path"},
		"path parameter":     {index.Query{Person: "bob", App: "oa", Path: "/api/admin;x/users"}, "path"},
		"encoded semicolon":  {index.Query{Person: "bob", App: "oa", Path: "/api/admin%3b/users"}, "path"},
		"encoded letter":     {index.Query{Person: "bob", App: "oa", Path: "/api/%61dmin/users"}, "path"},
		"double encoding":    {index.Query{Person: "bob", App: "oa", Path: "/pub/%252e%252e/api"}, "path"},
		"overlong dots":      {index.Query{Person: "bob", App: "oa", Path: "/pub/%c0%ae%c0%ae/api/admin"}, "path"},
		"fullwidth dots":     {index.Query{Person: "bob", App: "oa", Path: "/pub/\uff0e\uff0e/api/admin"}, "path"},
		"malformed encoding": {index.Query{Person: "bob", App: "oa", Path: "/pub/%zz"}, "path"},
		"not UTF-8":          {index.Query{Person: "bob", App: "oa", Path: "/pub/\xff"}, "path"},
	} {
		_, _, err := f.svc.Check(ctx, c.q, 0)
		ae, ok := apierr.As(err)
		if !ok || ae.Code != apierr.InvalidArgument || ae.Meta[apierr.MetaField] != c.field {
			t.Errorf("%s: %v, want INVALID_ARGUMENT on %s", name, err, c.field)
		}
		if _, err := f.svc.Explain(ctx, c.q, 0); err == nil {
			t.Errorf("%s: Explain answered", name)
		}
		_, _, err = f.svc.BatchCheck(ctx, []index.Query{{Person: "bob", App: "oa", Resource: "oa", Operation: "read"}, c.q}, 0)
		if ae, ok := apierr.As(err); !ok || ae.Meta[apierr.MetaField] != "checks[1]."+c.field {
			t.Errorf("%s in a batch: %v", name, err)
		}
	}
	if _, _, err := f.svc.Check(ctx, index.Query{Person: "bob", App: "oa", Resource: "oa", Operation: "read"}, 0); err != nil {
		t.Fatalf("a well-formed check: %v", err)
	}
	for _, p := range []string{"/x", "/", "/api/contracts/42/", "/pub/a.b/..c/x%20y", "/docs/%E6%96%87%E4%BB%B6", "/docs/文件", "/api/x%3Fy"} {
		if _, _, err := f.svc.Check(ctx, index.Query{Person: "bob", App: "oa", Path: p}, 0); err != nil {
			t.Fatalf("a URL check of %s: %v", p, err)
		}
	}
}

// The last system administrator's grant stays (trial7 H4): nobody could
// appoint one again (the security auditor appoints auditors only, unit
// administrators below their scope), so people, applications and roles
// would be managed by nobody for good. With another appointed first, one
// may go.
func TestLastSystemAdminStays(t *testing.T) {
	f := newAdminFixture(t)
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	_, err := f.svc.RevokeGrant(as("sys"), f.grants["sys"])
	wantDenied(t, "the last system administrator resigns", err, "last system administrator")
	// another whose grant ends, or who is disabled, will not administer
	// (review sec11 S2)
	ending, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: authz.RoleSystemAdmin, Subject: user("carol"),
		ValidUntil: f.clock.now().Add(24 * time.Hour)})
	f.must(err)
	_, err = f.svc.RevokeGrant(as("sys"), f.grants["sys"])
	wantDenied(t, "the last lasting system administrator resigns", err, "last system administrator")
	_, err = f.svc.RevokeGrant(as("sys"), ending.ID)
	f.must(err)
	g, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: authz.RoleSystemAdmin, Subject: user("dave")})
	f.must(err)
	f.svc.Index().SetPersonDisabled("dave", true)
	_, err = f.svc.RevokeGrant(as("sys"), f.grants["sys"])
	wantDenied(t, "the last enabled system administrator resigns", err, "last system administrator")
	f.svc.Index().SetPersonDisabled("dave", false)
	if _, err := f.svc.RevokeGrant(as("dave"), f.grants["sys"]); err != nil {
		t.Fatalf("a system administrator removes another, one staying: %v", err)
	}
	_, err = f.svc.RevokeGrant(as("dave"), g.ID)
	wantDenied(t, "the last system administrator resigns", err, "appoint another system administrator first")
}

// A group's grant reaches its members wherever they are: a unit
// administrator grants to a group only when every member is in their
// scope, not because the group is homed there (trial7 H3).
func TestUnitAdminGrantsToGroupsOfTheirScope(t *testing.T) {
	f := newAdminFixture(t)
	idx := f.svc.Index()
	group := authz.Subject{Kind: authz.SubjectGroup, ID: "proj"}
	idx.SetGroupOrg("proj", "east1")
	idx.SetGroupMember("proj", "bob", true)   // east1a: in ea's scope
	idx.SetGroupMember("proj", "carol", true) // west: outside
	_, _, err := f.svc.CreateGrant(as("ea"), authz.Grant{Role: f.clerk, Subject: group})
	wantDenied(t, "unit admin grants to a group with a member outside", err, "a group's members too")
	idx.SetGroupMember("proj", "carol", false)
	if _, _, err := f.svc.CreateGrant(as("ea"), authz.Grant{Role: f.clerk, Subject: group}); err != nil {
		t.Fatalf("unit admin grants to a group of their scope: %v", err)
	}
	// the system administrator grants to any group
	idx.SetGroupMember("proj", "carol", true)
	sg, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.clerk, Subject: group, ValidUntil: f.clock.now().Add(time.Hour)})
	if err != nil {
		t.Fatalf("system admin grants to a group: %v", err)
	}
	// nor does the unit administrator revoke a grant to it while it has a
	// member outside their scope (review sec11 S7)
	_, err = f.svc.RevokeGrant(as("ea"), sg.ID)
	wantDenied(t, "unit admin revokes a grant to a group with a member outside", err, "a group's members too")
	idx.SetGroupMember("proj", "carol", false)
	if _, err := f.svc.RevokeGrant(as("ea"), sg.ID); err != nil {
		t.Fatalf("unit admin revokes a grant to a group of their scope: %v", err)
	}
}

// The same grant twice is refused: revoking "the" grant would leave the
// other, and the permission with it (trial7 M3). Another period, scope or
// subject is another grant.
func TestSameGrantTwice(t *testing.T) {
	f := newAdminFixture(t)
	bob := authz.Subject{Kind: authz.SubjectUser, ID: "bob"}
	g, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.boss, Subject: bob})
	f.must(err)
	_, _, err = f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.boss, Subject: bob})
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.AlreadyExists || !strings.Contains(ae.Message, g.ID) {
		t.Fatalf("the same grant again: %v", err)
	}
	until := f.clock.now().Add(time.Hour)
	if _, _, err := f.svc.CreateGrant(as("sys"), authz.Grant{Role: f.boss, Subject: bob, ValidUntil: until}); err != nil {
		t.Fatalf("the role for another period: %v", err)
	}
}

// A unit administrator reads the grants, permissions and subjects of
// their subtrees only; a system administrator, the security auditor and
// business systems read all (trial7 M1).
func TestReadScope(t *testing.T) {
	f := newAdminFixture(t)
	admin := func(id string) context.Context { return adminauth.With(as(id), &adminauth.Admin{ID: id}) }
	for _, who := range []context.Context{admin("sys"), admin("aud"), context.Background()} {
		if f.svc.ReadScope(who) != nil {
			t.Fatal("an unscoped reader is scoped")
		}
	}
	keep := f.svc.ReadScope(admin("ea"))
	if keep == nil {
		t.Fatal("a unit administrator reads everything")
	}
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	for sub, want := range map[authz.Subject]bool{user("bob"): true, user("carol"): false, user("sys"): false,
		{Kind: authz.SubjectOrg, ID: "east1"}: true, {Kind: authz.SubjectOrg, ID: "west"}: false, user("nobody"): false} {
		if keep(sub) != want {
			t.Errorf("unit admin of east reads %v: %v, want %v", sub, !want, want)
		}
	}
	if err := f.svc.MayReadPerson(admin("ea"), "permissions.list", "carol"); !isReason(err, "ADMIN_NOT_ALLOWED") {
		t.Fatalf("a unit administrator reads the permissions of a person of another branch: %v", err)
	}
	// the refusal is audited (review sec11 S11)
	var audited bool
	for _, p := range f.outbox("uias.audit.authz.") {
		audited = audited || strings.Contains(p, `"api":"permissions.list"`) && strings.Contains(p, `"subject":"user:carol"`) &&
			strings.Contains(p, `"result":"denied"`) && strings.Contains(p, `"reason":"ADMIN_NOT_ALLOWED"`)
	}
	if !audited {
		t.Fatalf("the refused read is not audited: %v", f.outbox("uias.audit.authz."))
	}
	if err := f.svc.MayReadPerson(admin("ea"), "check", "bob"); err != nil {
		t.Fatalf("a unit administrator reads a person of their branch: %v", err)
	}
	gs, _, _, err := f.svc.ListGrants(index.GrantFilter{}, 0, "", keep)
	f.must(err)
	for _, g := range gs {
		if !keep(g.Subject) {
			t.Fatalf("listed outside the scope: %+v", g)
		}
	}
	if len(gs) == 0 {
		t.Fatal("the unit administrator's own subtree's grants are not listed")
	}
}

// A grant to a subject identity does not know is refused, naming it (a
// login name typed for an id made a grant to nobody; trial7 M2); the
// mirror's subjects are not asked about; identity not answering lets the
// grant be made.
func TestGrantToNobody(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	idx := index.New()
	if err := idx.Apply(authz.BuiltinChanges()...); err != nil {
		t.Fatal(err)
	}
	idx.SetOrgParent("east", "root")
	idx.SetUserOrg("bob", "east")
	var asked []string
	down, refusing := false, false
	svc := commands.New(commands.Deps{Store: sqlstore.New(db), Index: idx, MaxWait: 200 * time.Millisecond,
		Exists: func(_ context.Context, sub authz.Subject) (bool, error) {
			asked = append(asked, sub.String())
			switch {
			case refusing:
				return false, status.Error(codes.PermissionDenied, "the caller is not a UIAS component")
			case down:
				return false, status.Error(codes.Unavailable, "identity down")
			}
			return sub.ID == "carol", nil
		}})
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutResource(ctx, authz.Resource{App: "oa", Code: "oa", Kind: authz.KindModule, Operations: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	r, _, err := svc.CreateRole(ctx, authz.Role{App: "oa", Code: "clerk", Permissions: []authz.Permission{{App: "oa", Resource: "oa", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	user := func(id string) authz.Grant {
		return authz.Grant{Role: r.ID, Subject: authz.Subject{Kind: authz.SubjectUser, ID: id}}
	}
	_, _, err = svc.CreateGrant(ctx, user("alice"))
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.NotFound || !strings.Contains(ae.Message, `identity has no user "alice"`) {
		t.Fatalf("a grant to nobody: %v", err)
	}
	for _, id := range []string{"bob", "carol"} {
		if _, _, err := svc.CreateGrant(ctx, user(id)); err != nil {
			t.Fatalf("a grant to %s: %v", id, err)
		}
	}
	if !slices.Equal(asked, []string{"user:alice", "user:carol"}) {
		t.Fatalf("identity asked about %v (bob is in the mirror)", asked)
	}
	_, _, err = svc.CreateGrant(ctx, authz.Grant{Role: authz.RoleUnitAdmin, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "bob"},
		ScopeOrg: "ghostorg", Grantable: []string{r.ID}})
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.NotFound || !strings.Contains(ae.Message, `identity has no org "ghostorg"`) {
		t.Fatalf("a unit administrator of an org nobody has: %v", err)
	}
	asked = asked[:len(asked)-1]
	down = true
	if _, _, err := svc.CreateGrant(ctx, user("dan")); err != nil {
		t.Fatalf("identity not answering: %v", err)
	}
	// identity refusing the question (authz not taken for a component)
	// refuses the grant: the check would never run otherwise (review
	// sec11 S10)
	refusing = true
	_, _, err = svc.CreateGrant(ctx, user("erin"))
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.Unavailable || !strings.Contains(ae.Message, "the grant is not made") {
		t.Fatalf("identity refusing the question: %v", err)
	}
}

// ResendRoles writes every role of the application again, unchanged: one
// role change each in CHANGES (what sync's projection learns roles from),
// audited role.resend; other applications' roles are not sent; a unit
// administrator and the auditor are refused; an application without
// roles sends none; no application named is a bad request.
func TestResendRoles(t *testing.T) {
	f := newAdminFixture(t)
	sys := as("sys")
	for _, r := range []authz.Resource{{App: "crm", Code: "deals", Kind: authz.KindModule, Operations: []string{"read", "write"}},
		{App: "oa2", Code: "docs", Kind: authz.KindModule, Operations: []string{"read"}}} {
		if _, _, err := f.svc.PutResource(sys, r); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, code := range []string{"seller", "manager"} {
		r, _, err := f.svc.CreateRole(sys, authz.Role{App: "crm", Code: code, Name: code,
			Permissions: []authz.Permission{{App: "crm", Resource: "deals", Operation: "read"}}})
		f.must(err)
		ids = append(ids, r.ID)
	}
	if _, _, err := f.svc.CreateRole(sys, authz.Role{App: "oa2", Code: "reader"}); err != nil {
		t.Fatal(err)
	}
	before := len(f.outbox("uias.changes.authz.role."))
	beforeRoles, _ := f.svc.Roles("crm", false)
	n, rev, err := f.svc.ResendRoles(sys, "crm")
	if err != nil || n != 2 || rev <= 0 {
		t.Fatalf("resend: %d %d %v", n, rev, err)
	}
	sent := f.outbox("uias.changes.authz.role.")[before:]
	if len(sent) != 2 {
		t.Fatalf("%d role changes written, want 2: %v", len(sent), sent)
	}
	for _, id := range ids {
		if !strings.Contains(sent[0], id) && !strings.Contains(sent[1], id) {
			t.Fatalf("role %s not sent: %v", id, sent)
		}
	}
	if after, _ := f.svc.Roles("crm", false); !reflect.DeepEqual(after, beforeRoles) {
		t.Fatalf("the roles changed: %+v, were %+v", after, beforeRoles)
	}
	if recs := f.outbox("uias.audit.authz.role.resend"); len(recs) != 2 {
		t.Fatalf("%d role.resend audit records, want 2", len(recs))
	}
	_, _, err = f.svc.ResendRoles(as("ea"), "crm")
	wantDenied(t, "unit admin resends", err, "")
	_, _, err = f.svc.ResendRoles(as("aud"), "crm")
	wantDenied(t, "auditor resends", err, "")
	if n, _, err := f.svc.ResendRoles(sys, "nothing-here"); err != nil || n != 0 {
		t.Fatalf("an application without roles: %d %v", n, err)
	}
	if _, _, err := f.svc.ResendRoles(sys, ""); apierr.CodeOf(err) != apierr.InvalidArgument && apierr.CodeOf(err) != apierr.FailedPrecondition {
		t.Fatalf("no application: %v", err)
	}
}
