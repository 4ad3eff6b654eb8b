package commands_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/sqlstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	db    *store.DB
	clock *clock
	svc   *commands.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), db: db, clock: &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}}
	f.svc = f.replica()
	return f
}

// replica starts another service (another replica) on the same database.
func (f *fixture) replica() *commands.Service {
	f.t.Helper()
	s := commands.New(commands.Deps{Store: sqlstore.New(f.db), Index: index.New(), Now: f.clock.now, MaxWait: 200 * time.Millisecond})
	if err := s.Load(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) resource(app, code, parent string, kind authz.ResourceKind, ops ...string) {
	f.t.Helper()
	_, _, err := f.svc.PutResource(f.ctx, authz.Resource{App: app, Code: code, Parent: parent, Kind: kind, Operations: ops})
	f.must(err)
}

func (f *fixture) role(app, code string, inherits []string, perms ...string) string {
	f.t.Helper()
	r := authz.Role{App: app, Code: code, Inherits: inherits}
	for _, p := range perms {
		parts := strings.Split(p, ":") // app:resource:op
		r.Permissions = append(r.Permissions, authz.Permission{App: parts[0], Resource: parts[1], Operation: parts[2]})
	}
	got, _, err := f.svc.CreateRole(f.ctx, r)
	f.must(err)
	return got.ID
}

func (f *fixture) grant(role string, kind authz.SubjectKind, id string) (authz.Grant, int64) {
	f.t.Helper()
	g, rev, err := f.svc.CreateGrant(f.ctx, authz.Grant{Role: role, Subject: authz.Subject{Kind: kind, ID: id}})
	f.must(err)
	return g, rev
}

func (f *fixture) check(svc *commands.Service, person, app, res, op string) bool {
	f.t.Helper()
	ok, _, err := svc.Check(f.ctx, index.Query{Person: person, App: app, Resource: res, Operation: op}, 0)
	f.must(err)
	return ok
}

func reasonOf(err error) string {
	if ae, ok := apierr.As(err); ok {
		return ae.Reason
	}
	return fmt.Sprint(err)
}

// The OA model of docs/integrators.md: a module with menus and an approval
// entity, a URL resource.
func (f *fixture) oa() (clerk, approver, head string) {
	f.resource("oa", "docs", "", authz.KindModule, "read", "write", "approve")
	f.resource("oa", "docs.inbox", "docs", authz.KindMenu, "read")
	f.resource("oa", "docs.contract", "docs", authz.KindEntity, "read", "write", "approve")
	_, _, err := f.svc.PutResource(f.ctx, authz.Resource{App: "oa", Code: "api.contract", Parent: "docs", Kind: authz.KindURL,
		Operations: []string{"access"}, Method: "get", PathPattern: "/api/contracts/{id}"})
	f.must(err)
	clerk = f.role("oa", "clerk", nil, "oa:docs.inbox:read", "oa:docs.contract:write", "oa:api.contract:access")
	approver = f.role("oa", "approver", nil, "oa:docs.contract:approve")
	head = f.role("oa", "head", []string{clerk, approver}, "oa:docs:read")
	return
}

func TestCheckRolesInheritanceAndResourceTree(t *testing.T) {
	f := newFixture(t)
	clerk, _, head := f.oa()
	f.grant(clerk, authz.SubjectUser, "ann")
	f.grant(head, authz.SubjectUser, "bob")
	for _, c := range []struct {
		person, res, op string
		want            bool
	}{
		{"ann", "docs.inbox", "read", true},
		{"ann", "docs.contract", "write", true},
		{"ann", "docs.contract", "approve", false},
		{"ann", "docs.contract", "read", false}, // only the inbox menu
		{"ann", "docs", "read", false},
		{"bob", "docs.contract", "approve", true}, // inherited from approver
		{"bob", "docs.inbox", "read", true},
		{"bob", "docs.contract", "read", true}, // docs:read covers the resources below
		{"bob", "docs.contract", "delete", false},
		{"bob", "nope", "read", false},
		{"carl", "docs.inbox", "read", false},
	} {
		if got := f.check(f.svc, c.person, "oa", c.res, c.op); got != c.want {
			t.Errorf("%s %s %s = %v, want %v", c.person, c.op, c.res, got, c.want)
		}
	}
	// Another application's resource of the same code is another resource.
	if f.check(f.svc, "bob", "crm", "docs", "read") {
		t.Error("bob reads crm/docs")
	}
}

func TestCheckByURL(t *testing.T) {
	f := newFixture(t)
	clerk, _, _ := f.oa()
	f.grant(clerk, authz.SubjectUser, "ann")
	_, _, err := f.svc.PutResource(f.ctx, authz.Resource{App: "oa", Code: "api.any", Kind: authz.KindURL,
		Operations: []string{"access"}, PathPattern: "/api/**"})
	f.must(err)
	q := func(person, method, path string) bool {
		ok, _, err := f.svc.Check(f.ctx, index.Query{Person: person, App: "oa", Method: method, Path: path}, 0)
		f.must(err)
		return ok
	}
	if !q("ann", "GET", "/api/contracts/17") {
		t.Error("GET /api/contracts/17 refused")
	}
	// Another method or a longer path falls to the catch-all, which ann
	// does not hold.
	if q("ann", "DELETE", "/api/contracts/17") || q("ann", "GET", "/api/contracts/17/x") {
		t.Error("URL check matched the wrong resource")
	}
	e, err := f.svc.Explain(f.ctx, index.Query{Person: "ann", App: "oa", Method: "POST", Path: "/api/contracts/1"}, 0)
	f.must(err)
	if e.Allowed || e.Resource != "api.any" || e.Reason != index.WhyNoRole {
		t.Errorf("explain POST: %+v", e)
	}
	e, _ = f.svc.Explain(f.ctx, index.Query{Person: "ann", App: "oa", Method: "GET", Path: "/other"}, 0)
	if e.Reason != index.WhyUnknownResource {
		t.Errorf("explain /other: %+v", e)
	}
}

func TestGroupAndOrgSubtreeGrants(t *testing.T) {
	f := newFixture(t)
	clerk, approver, _ := f.oa()
	x := f.svc.Index()
	// root > branch-a > team-a1; root > branch-b
	x.SetOrgParent("root", "")
	x.SetOrgParent("branch-a", "root")
	x.SetOrgParent("team-a1", "branch-a")
	x.SetOrgParent("branch-b", "root")
	x.SetUserOrg("ann", "team-a1")
	x.SetUserOrg("bob", "branch-b")
	x.SetGroupMember("reviewers", "bob", true)
	f.grant(clerk, authz.SubjectOrg, "branch-a")
	f.grant(approver, authz.SubjectGroup, "reviewers")
	if !f.check(f.svc, "ann", "oa", "docs.inbox", "read") {
		t.Error("an org grant does not reach the org's subtree")
	}
	if f.check(f.svc, "bob", "oa", "docs.inbox", "read") {
		t.Error("an org grant reaches another branch")
	}
	if !f.check(f.svc, "bob", "oa", "docs.contract", "approve") {
		t.Error("a group grant does not reach its member")
	}
	// Moves (identity events) are followed.
	x.SetUserOrg("ann", "branch-b")
	x.SetGroupMember("reviewers", "bob", false)
	if f.check(f.svc, "ann", "oa", "docs.inbox", "read") || f.check(f.svc, "bob", "oa", "docs.contract", "approve") {
		t.Error("a moved person keeps what they had")
	}
	x.SetOrgParent("branch-b", "branch-a") // the org moves under branch-a
	if !f.check(f.svc, "ann", "oa", "docs.inbox", "read") {
		t.Error("an org moved under a granted org does not inherit")
	}
	subs, _, err := f.svc.ListSubjects(f.ctx, "oa", "docs.inbox", "read", 0)
	f.must(err)
	if len(subs) != 1 || subs[0].Subject != (authz.Subject{Kind: authz.SubjectOrg, ID: "branch-a"}) {
		t.Errorf("ListSubjects: %+v", subs)
	}
}

func TestTimeBoxedGrants(t *testing.T) {
	f := newFixture(t)
	clerk, _, _ := f.oa()
	now := f.clock.now()
	_, _, err := f.svc.CreateGrant(f.ctx, authz.Grant{Role: clerk, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "ann"},
		ValidFrom: now.Add(time.Hour), ValidUntil: now.Add(2 * time.Hour)})
	f.must(err)
	if f.check(f.svc, "ann", "oa", "docs.inbox", "read") {
		t.Error("allowed before valid_from")
	}
	e, _ := f.svc.Explain(f.ctx, index.Query{Person: "ann", App: "oa", Resource: "docs.inbox", Operation: "read"}, 0)
	if e.Reason != index.WhyGrantInactive || len(e.Inactive) != 1 {
		t.Errorf("explain before: %+v", e)
	}
	f.clock.add(90 * time.Minute)
	if !f.check(f.svc, "ann", "oa", "docs.inbox", "read") {
		t.Error("refused inside the window")
	}
	f.clock.add(time.Hour)
	if f.check(f.svc, "ann", "oa", "docs.inbox", "read") {
		t.Error("allowed after valid_until")
	}
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: clerk, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "ann"},
		ValidUntil: f.clock.now().Add(-time.Minute)})
	if reasonOf(err) != authz.ReasonBadModel {
		t.Errorf("grant ending in the past: %v", err)
	}
}

func TestSeparationOfDuty(t *testing.T) {
	f := newFixture(t)
	clerk, approver, head := f.oa()
	_, _, err := f.svc.CreateExclusion(f.ctx, authz.Exclusion{RoleA: clerk, RoleB: approver, Name: "maker-checker"})
	if reasonOf(err) != authz.ReasonSoDConflict {
		t.Fatalf("exclusion of two roles that head includes: %v", err)
	}
	// Take the approver out of head, then the pair may be declared.
	_, _, err = f.svc.UpdateRole(f.ctx, authz.Role{ID: head, App: "oa", Code: "head", Inherits: []string{clerk},
		Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: "read"}}})
	f.must(err)
	_, _, err = f.svc.CreateExclusion(f.ctx, authz.Exclusion{RoleA: clerk, RoleB: approver, Name: "maker-checker"})
	f.must(err)
	x := f.svc.Index()
	x.SetOrgParent("root", "")
	x.SetOrgParent("branch-a", "root")
	x.SetUserOrg("ann", "branch-a")
	x.SetGroupMember("g", "carl", true)

	f.grant(clerk, authz.SubjectUser, "ann")
	for _, c := range []struct {
		name string
		g    authz.Grant
	}{
		{"the other half to the same person", authz.Grant{Role: approver, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "ann"}}},
		{"the other half to their org", authz.Grant{Role: approver, Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "branch-a"}}},
		{"a role including the other half... (head includes clerk) to the approver", authz.Grant{}},
	} {
		if c.g.Role == "" {
			f.grant(approver, authz.SubjectUser, "dave")
			c.g = authz.Grant{Role: head, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "dave"}}
		}
		_, _, err := f.svc.CreateGrant(f.ctx, c.g)
		if reasonOf(err) != authz.ReasonSoDConflict {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// A group grant counts each member's own roles.
	f.grant(approver, authz.SubjectUser, "carl")
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: clerk, Subject: authz.Subject{Kind: authz.SubjectGroup, ID: "g"}})
	if reasonOf(err) != authz.ReasonSoDConflict || !strings.Contains(err.Error(), "maker-checker") {
		t.Errorf("group grant: %v", err)
	}
	// An expired grant does not count.
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: approver, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "erin"},
		ValidUntil: f.clock.now().Add(time.Minute)})
	f.must(err)
	f.clock.add(2 * time.Minute)
	f.grant(clerk, authz.SubjectUser, "erin")
	// A role may not come to include both halves.
	_, _, err = f.svc.UpdateRole(f.ctx, authz.Role{ID: head, App: "oa", Code: "head", Inherits: []string{clerk, approver}})
	if reasonOf(err) != authz.ReasonSoDConflict {
		t.Errorf("role including both: %v", err)
	}
}

func TestModelRules(t *testing.T) {
	f := newFixture(t)
	clerk, approver, head := f.oa()
	bad := func(name string, err error, reason string) {
		t.Helper()
		if reasonOf(err) != reason {
			t.Errorf("%s: %v, want %s", name, err, reason)
		}
	}
	_, _, err := f.svc.PutResource(f.ctx, authz.Resource{App: "oa", Code: "x", Parent: "missing", Kind: authz.KindMenu, Operations: []string{"read"}})
	bad("unknown parent", err, authz.ReasonBadModel)
	_, _, err = f.svc.PutResource(f.ctx, authz.Resource{App: "oa", Code: "docs", Parent: "docs.inbox", Kind: authz.KindModule, Operations: []string{"read"}})
	bad("resource below itself", err, authz.ReasonBadModel)
	_, _, err = f.svc.PutResource(f.ctx, authz.Resource{App: "oa", Code: "u", Kind: authz.KindURL, Operations: []string{"access"}})
	bad("URL without pattern", err, authz.ReasonBadModel)
	_, _, err = f.svc.PutResource(f.ctx, authz.Resource{App: "oa", Code: "docs.contract", Parent: "docs", Kind: authz.KindEntity, Operations: []string{"read"}})
	bad("dropping an operation a role holds", err, authz.ReasonInUse)
	_, err = f.svc.DeleteResource(f.ctx, "oa", "docs")
	bad("deleting a resource with children", err, authz.ReasonInUse)
	_, err = f.svc.DeleteResource(f.ctx, "oa", "docs.inbox")
	bad("deleting a resource a role uses", err, authz.ReasonInUse)
	_, err = f.svc.DeleteResource(f.ctx, "oa", "nope")
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleting a missing resource: %v", err)
	}
	_, _, err = f.svc.CreateRole(f.ctx, authz.Role{App: "oa", Code: "clerk"})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate role code: %v", err)
	}
	_, _, err = f.svc.CreateRole(f.ctx, authz.Role{App: "crm", Code: "x", Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: "read"}}})
	bad("application role with another application's permission", err, authz.ReasonBadModel)
	_, _, err = f.svc.CreateRole(f.ctx, authz.Role{App: "oa", Code: "x", Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: "fly"}}})
	bad("unknown operation", err, authz.ReasonBadModel)
	_, _, err = f.svc.CreateRole(f.ctx, authz.Role{App: "crm", Code: "x", Inherits: []string{clerk}})
	bad("application role inheriting another application's role", err, authz.ReasonBadModel)
	_, _, err = f.svc.UpdateRole(f.ctx, authz.Role{ID: clerk, App: "oa", Code: "clerk", Inherits: []string{head}})
	bad("inheritance cycle", err, authz.ReasonBadModel)
	// A global role may hold any application's permissions.
	global := f.role("", "auditor", []string{approver}, "oa:docs:read")
	_, err = f.svc.DeleteRole(f.ctx, approver)
	bad("deleting an inherited role", err, authz.ReasonInUse)
	g, _ := f.grant(global, authz.SubjectUser, "zoe")
	if !f.check(f.svc, "zoe", "oa", "docs.contract", "approve") {
		t.Error("global role")
	}
	_, err = f.svc.DeleteRole(f.ctx, global)
	bad("deleting a granted role", err, authz.ReasonInUse)
	_, err = f.svc.RevokeGrant(f.ctx, g.ID)
	f.must(err)
	if f.check(f.svc, "zoe", "oa", "docs.contract", "approve") {
		t.Error("revoked grant still allows")
	}
	_, err = f.svc.DeleteRole(f.ctx, global)
	f.must(err)
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: global, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "zoe"}})
	bad("grant of a deleted role", err, authz.ReasonBadModel)
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: clerk, Subject: authz.Subject{Kind: "robot", ID: "r"}})
	bad("unknown subject kind", err, authz.ReasonBadModel)
}

func TestListPermissionsDrawsMenus(t *testing.T) {
	f := newFixture(t)
	_, _, head := f.oa()
	f.grant(head, authz.SubjectUser, "bob")
	ps, rev, err := f.svc.ListPermissions(f.ctx, "bob", "oa", 0)
	f.must(err)
	var got []string
	for _, p := range ps {
		got = append(got, p.Resource+":"+p.Operation)
	}
	want := []string{"api.contract:access", "docs:read", "docs.contract:approve", "docs.contract:read", "docs.contract:write", "docs.inbox:read"}
	if !slices.Equal(got, want) || rev != f.svc.Index().Revision() {
		t.Errorf("ListPermissions = %v at %d, want %v", got, rev, want)
	}
	e, err := f.svc.Explain(f.ctx, index.Query{Person: "bob", App: "oa", Resource: "docs.contract", Operation: "approve"}, 0)
	f.must(err)
	if !e.Allowed || e.Path == nil || len(e.Path.Roles) != 2 || e.Path.Roles[0] != head || e.Path.Permission.Resource != "docs.contract" {
		t.Errorf("explain: %+v", e)
	}
}

// Two replicas on one store: a write on one is seen by the other once it
// catches up; a demanded revision makes it catch up at once; a revision
// never issued is refused after the wait.
func TestRevisionsAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	clerk, _, _ := f.oa()
	other := f.replica()
	_, rev := f.grant(clerk, authz.SubjectUser, "ann")
	if ok, r, _ := f.svc.Check(f.ctx, index.Query{Person: "ann", App: "oa", Resource: "docs.inbox", Operation: "read"}, rev); !ok || r != rev {
		t.Fatalf("own replica: %v at %d, want true at %d", ok, r, rev)
	}
	// The other replica has not heard of it (no events in this test) ...
	if f.check(other, "ann", "oa", "docs.inbox", "read") {
		t.Fatal("the other replica knew without catching up")
	}
	// ... but a check demanding the revision waits for it.
	ok, r, err := other.Check(f.ctx, index.Query{Person: "ann", App: "oa", Resource: "docs.inbox", Operation: "read"}, rev)
	if err != nil || !ok || r < rev {
		t.Fatalf("other replica at least %d: %v at %d, %v", rev, ok, r, err)
	}
	_, _, err = other.Check(f.ctx, index.Query{Person: "ann", App: "oa", Resource: "docs.inbox", Operation: "read"}, rev+100)
	if reasonOf(err) != authz.ReasonRevisionNotReached || apierr.CodeOf(err) != apierr.FailedPrecondition {
		t.Fatalf("future revision: %v", err)
	}
	// Writes through both replicas interleave without losing any: each is
	// checked against the latest state (a stale replica catches up first).
	for i := range 5 {
		f.grant(clerk, authz.SubjectUser, fmt.Sprint("p", i))
		if _, _, err := other.CreateGrant(f.ctx, authz.Grant{Role: clerk, Subject: authz.Subject{Kind: authz.SubjectUser, ID: fmt.Sprint("q", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	f.must(f.svc.CatchUp(f.ctx))
	f.must(other.CatchUp(f.ctx))
	if a, b := f.svc.Index().GrantCount(), other.Index().GrantCount(); a != 11 || b != 11 {
		t.Fatalf("grants: %d and %d, want 11", a, b)
	}
	// A restarted replica loads the same state.
	third := f.replica()
	if third.Index().Revision() != f.svc.Index().Revision() || !f.check(third, "q4", "oa", "docs.inbox", "read") {
		t.Fatal("reloaded replica differs")
	}
}

// Changes arriving as events: in order they apply, a gap is read from the
// store, a repeat is ignored.
func TestNotify(t *testing.T) {
	f := newFixture(t)
	clerk, _, _ := f.oa()
	other := f.replica()
	start := other.Index().Revision()
	g1, _ := f.grant(clerk, authz.SubjectUser, "ann")
	f.grant(clerk, authz.SubjectUser, "bob")
	chs, err := sqlstore.New(f.db).ChangesSince(f.ctx, start, 10)
	f.must(err)
	if len(chs) != 2 {
		t.Fatalf("%d changes", len(chs))
	}
	other.Notify(f.ctx, chs[1]) // a gap: read from the store
	if other.Index().Revision() != chs[1].Rev || !f.check(other, "ann", "oa", "docs.inbox", "read") {
		t.Fatal("gap not filled")
	}
	other.Notify(f.ctx, chs[0]) // a repeat
	if _, ok := other.Index().Grant(g1.ID); !ok || other.Index().GrantCount() != 2 {
		t.Fatal("repeat changed the index")
	}
}

// ListPermissionsAndRoles answers the application's roles a person holds:
// granted to them, their group or an org above them, the juniors of those,
// in force now; not another application's nor a global role.
func TestListPermissionsAndRoles(t *testing.T) {
	f := newFixture(t)
	clerk, approver, head := f.oa()
	f.resource("crm", "leads", "", authz.KindModule, "read")
	crm := f.role("crm", "sales", nil, "crm:leads:read")
	global := f.role("", "reader", nil, "oa:docs:read")
	x := f.svc.Index()
	x.SetOrgParent("root", "")
	x.SetOrgParent("branch", "root")
	x.SetUserOrg("ann", "branch")
	x.SetGroupMember("reviewers", "ann", true)
	f.grant(crm, authz.SubjectUser, "ann")
	f.grant(global, authz.SubjectUser, "ann")
	f.grant(approver, authz.SubjectGroup, "reviewers")
	f.grant(clerk, authz.SubjectOrg, "root")
	codes := func(person string) ([]string, []string) {
		t.Helper()
		ps, roles, rev, err := f.svc.ListPermissionsAndRoles(f.ctx, person, "oa", 0)
		f.must(err)
		if rev != f.svc.Index().Revision() {
			t.Errorf("revision %d, want %d", rev, f.svc.Index().Revision())
		}
		var rs, pp []string
		for _, r := range roles {
			if r.App != "oa" || r.ID == "" || len(r.Permissions) != 0 {
				t.Errorf("role %+v", r)
			}
			rs = append(rs, r.Code)
		}
		for _, p := range ps {
			pp = append(pp, p.Resource+":"+p.Operation)
		}
		return rs, pp
	}
	rs, ps := codes("ann")
	if want := []string{"approver", "clerk"}; !slices.Equal(rs, want) {
		t.Errorf("roles through a group and an org above = %v, want %v (not crm's sales, not the global reader)", rs, want)
	}
	if !slices.Contains(ps, "docs:read") || !slices.Contains(ps, "docs.contract:approve") || slices.Contains(ps, "leads:read") {
		t.Errorf("permissions = %v: want the global role's oa permission, not crm's", ps)
	}
	// A senior role lists the juniors it inherits.
	f.grant(head, authz.SubjectUser, "bob")
	if rs, _ := codes("bob"); !slices.Equal(rs, []string{"approver", "clerk", "head"}) {
		t.Errorf("inherited roles = %v", rs)
	}
	// Outside its window a grant gives nothing.
	now := f.clock.now()
	_, _, err := f.svc.CreateGrant(f.ctx, authz.Grant{Role: head, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "cy"},
		ValidFrom: now.Add(time.Hour)})
	f.must(err)
	if rs, ps := codes("cy"); len(rs) != 0 || len(ps) != 0 {
		t.Errorf("before valid_from: %v %v", rs, ps)
	}
	f.clock.add(2 * time.Hour)
	if rs, _ := codes("cy"); len(rs) != 3 {
		t.Errorf("inside the window: %v", rs)
	}
	// A person unknown to authz holds nothing.
	if rs, ps := codes("nobody"); rs != nil || ps != nil {
		t.Errorf("unknown person: %v %v", rs, ps)
	}
}
