package index_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// directIndex is an index with the OA model (a docs module, a contract
// entity below it, a clerk role), identity's mirror (u1 in team below
// branch, u2 in group g1) and nothing granted yet.
type directIndex struct {
	t   *testing.T
	x   *index.Index
	rev int64
}

func newDirectIndex(t *testing.T) *directIndex {
	t.Helper()
	d := &directIndex{t: t, x: index.New()}
	if err := d.x.Apply(authz.BuiltinChanges()...); err != nil {
		t.Fatal(err)
	}
	d.put(authz.ObjResource, index.ResourceID("oa", "docs"), authz.Resource{App: "oa", Code: "docs", Kind: authz.KindModule, Operations: []string{"read"}})
	d.put(authz.ObjResource, index.ResourceID("oa", "docs.contract"), authz.Resource{App: "oa", Code: "docs.contract", Parent: "docs",
		Kind: authz.KindEntity, Operations: []string{"read", "approve"}})
	d.put(authz.ObjRole, "clerk", authz.Role{ID: "clerk", App: "oa", Code: "clerk", Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: "read"}}})
	d.x.SetOrgParent("branch", "")
	d.x.SetOrgParent("team", "branch")
	d.x.SetUserOrg("u1", "team")
	d.x.SetUserOrg("u2", "branch")
	d.x.SetGroupMember("g1", "u2", true)
	return d
}

func (d *directIndex) put(obj, id string, v any) {
	d.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		d.t.Fatal(err)
	}
	d.rev++
	if err := d.x.Apply(authz.Change{Rev: d.rev, Obj: obj, Op: authz.OpPut, ID: id, Data: b}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *directIndex) del(obj, id string) {
	d.t.Helper()
	d.rev++
	if err := d.x.Apply(authz.Change{Rev: d.rev, Obj: obj, Op: authz.OpDelete, ID: id}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *directIndex) grant(id string, p authz.Permission, kind authz.SubjectKind, sub string, from, until time.Time) {
	d.t.Helper()
	d.put(authz.ObjGrant, id, authz.Grant{ID: id, Permission: p, Subject: authz.Subject{Kind: kind, ID: sub}, ValidFrom: from, ValidUntil: until})
}

func (d *directIndex) check(person, res, op string, at time.Time) bool {
	ok, _ := d.x.Check(index.Query{Person: person, App: "oa", Resource: res, Operation: op}, at)
	return ok
}

var approve = authz.Permission{App: "oa", Resource: "docs.contract", Operation: "approve"}

// A direct grant of a permission answers every query as a grant of a role
// holding only that permission would: Check (the prepared fast path and
// the timed grants), BatchCheck, ListPermissions, ListSubjects, Explain
// (no role path), to a person, a group's members and an org's subtree; a
// revocation takes it away, also from a person whose answer was prepared.
func TestDirectGrantAnswers(t *testing.T) {
	d := newDirectIndex(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if d.check("u1", "docs.contract", "approve", now) {
		t.Fatal("allowed before any grant")
	}
	d.grant("d1", approve, authz.SubjectUser, "u1", time.Time{}, time.Time{})
	if !d.check("u1", "docs.contract", "approve", now) {
		t.Fatal("a direct grant does not allow its permission")
	}
	if d.check("u1", "docs.contract", "read", now) || d.check("u1", "docs", "read", now) {
		t.Fatal("a direct grant allows more than its permission")
	}
	if got, _ := d.x.BatchCheck([]index.Query{{Person: "u1", App: "oa", Resource: "docs.contract", Operation: "approve"},
		{Person: "u2", App: "oa", Resource: "docs.contract", Operation: "approve"}}, now); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("batch %v", got)
	}
	if ps, _ := d.x.ListPermissions("u1", "oa", now); !slices.Equal(ps, []authz.Permission{approve}) {
		t.Fatalf("permissions %v", ps)
	}
	ex := d.x.Explain(index.Query{Person: "u1", App: "oa", Resource: "docs.contract", Operation: "approve"}, now)
	if !ex.Allowed || ex.Path == nil || ex.Path.Grant.ID != "d1" || ex.Path.Grant.Permission != approve || ex.Path.Grant.Role != "" ||
		len(ex.Path.Roles) != 0 || ex.Path.Permission != approve {
		t.Fatalf("explain %+v %+v", ex, ex.Path)
	}

	// A permission on a resource covers the resources below it, as a
	// role's does; to an org it reaches the org's subtree; to a group its
	// members.
	read := authz.Permission{App: "oa", Resource: "docs", Operation: "read"}
	d.grant("d2", read, authz.SubjectOrg, "branch", time.Time{}, time.Time{})
	if !d.check("u1", "docs.contract", "read", now) || !d.check("u2", "docs", "read", now) {
		t.Fatal("an org's direct grant does not reach its subtree")
	}
	d.grant("d3", approve, authz.SubjectGroup, "g1", time.Time{}, time.Time{})
	if !d.check("u2", "docs.contract", "approve", now) {
		t.Fatal("a group's direct grant does not reach its member")
	}
	subs, _ := d.x.ListSubjects("oa", "docs.contract", "approve", now)
	var got []string
	for _, s := range subs {
		if s.Grant.Permission != approve || s.Grant.Role != "" {
			t.Fatalf("subject %+v", s)
		}
		got = append(got, s.Subject.String()+"/"+s.Grant.ID)
	}
	if !slices.Equal(got, []string{"group:g1/d3", "user:u1/d1"}) {
		t.Fatalf("subjects %v", got)
	}
	if gs := d.x.Grants(index.GrantFilter{Permission: approve}); len(gs) != 2 || gs[0].ID != "d1" || gs[1].ID != "d3" {
		t.Fatalf("grants of the permission %v", gs)
	}
	u1 := authz.Subject{Kind: authz.SubjectUser, ID: "u1"}
	if gs := d.x.Grants(index.GrantFilter{Subject: &u1, Permission: read}); len(gs) != 0 {
		t.Fatalf("u1's own direct grants of docs read: %v", gs)
	}
	if n := d.x.DirectGrants(approve); n != 2 {
		t.Fatalf("DirectGrants %d", n)
	}

	// Revoked: gone at once, though the answer was prepared before.
	d.del(authz.ObjGrant, "d1")
	if d.check("u1", "docs.contract", "approve", now) {
		t.Fatal("a revoked direct grant still allows (prepared answer kept)")
	}
	d.del(authz.ObjGrant, "d2")
	if d.check("u1", "docs.contract", "read", now) {
		t.Fatal("a revoked org direct grant still allows")
	}
	// Granted again: the permission's node is found again.
	d.grant("d1", approve, authz.SubjectUser, "u1", time.Time{}, time.Time{})
	if !d.check("u1", "docs.contract", "approve", now) {
		t.Fatal("a direct grant made again does not allow")
	}
	// Roles and separation of duty see no role in a direct grant.
	if held := d.x.HeldRoles(u1, now); len(held) != 0 {
		t.Fatalf("a direct grant gives roles %v", held)
	}
}

// A direct grant's validity window is kept as a role grant's: not before
// valid_from, not from valid_until on; Explain names the inactive grant.
func TestDirectGrantWindow(t *testing.T) {
	d := newDirectIndex(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d.grant("d1", approve, authz.SubjectUser, "u1", now.Add(time.Hour), now.Add(2*time.Hour))
	if d.check("u1", "docs.contract", "approve", now) {
		t.Fatal("allowed before valid_from")
	}
	ex := d.x.Explain(index.Query{Person: "u1", App: "oa", Resource: "docs.contract", Operation: "approve"}, now)
	if ex.Allowed || ex.Reason != index.WhyGrantInactive || len(ex.Inactive) != 1 || ex.Inactive[0].Permission != approve {
		t.Fatalf("explain before the window: %+v", ex)
	}
	if !d.check("u1", "docs.contract", "approve", now.Add(90*time.Minute)) {
		t.Fatal("not allowed inside the window")
	}
	if ps, _ := d.x.ListPermissions("u1", "oa", now.Add(90*time.Minute)); len(ps) != 1 {
		t.Fatalf("permissions inside the window %v", ps)
	}
	if d.check("u1", "docs.contract", "approve", now.Add(2*time.Hour)) {
		t.Fatal("allowed at valid_until")
	}
	if subs, _ := d.x.ListSubjects("oa", "docs.contract", "approve", now.Add(3*time.Hour)); len(subs) != 0 {
		t.Fatalf("subjects after the window %v", subs)
	}
}

// A replica may hold a direct grant before the resource it names (or keep
// it while the resource is away): it allows nothing until the resource is
// there, then allows at once.
func TestDirectGrantBeforeItsResource(t *testing.T) {
	d := newDirectIndex(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	later := authz.Permission{App: "oa", Resource: "docs.later", Operation: "sign"}
	d.grant("d1", later, authz.SubjectUser, "u1", time.Time{}, time.Time{})
	if d.check("u1", "docs.later", "sign", now) {
		t.Fatal("allowed on a resource not known")
	}
	d.put(authz.ObjResource, index.ResourceID("oa", "docs.later"), authz.Resource{App: "oa", Code: "docs.later", Parent: "docs",
		Kind: authz.KindEntity, Operations: []string{"sign"}})
	if !d.check("u1", "docs.later", "sign", now) {
		t.Fatal("not allowed once the resource came")
	}
}

// Administrator powers come with the built-in roles only: a direct grant
// of a permission of the "uias" application (refused by CreateGrant; here
// as a replica or a hand-edited store might hold one) gives none.
func TestDirectGrantGivesNoAdminPower(t *testing.T) {
	d := newDirectIndex(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d.grant("d1", authz.Permission{App: authz.AdminApp, Resource: "identity.users", Operation: "write"}, authz.SubjectUser, "u1", time.Time{}, time.Time{})
	if dec := d.x.CheckAdmin(index.AdminQuery{Person: "u1", Resource: "identity.users", Operation: "write"}, now); dec.Allowed {
		t.Fatalf("a direct grant made an administrator: %+v", dec)
	}
	if gs := d.x.AdminGrants("u1", "identity.users", "write", now); len(gs) != 0 {
		t.Fatalf("admin grants %v", gs)
	}
}

// RolesAllow: a permission is within roles when one of them holds it, on
// its resource or on one above.
func TestRolesAllow(t *testing.T) {
	d := newDirectIndex(t)
	if !d.x.RolesAllow([]string{"clerk"}, authz.Permission{App: "oa", Resource: "docs.contract", Operation: "read"}) {
		t.Fatal("clerk holds docs read, which covers the contract")
	}
	if d.x.RolesAllow([]string{"clerk"}, approve) || d.x.RolesAllow(nil, authz.Permission{App: "oa", Resource: "docs", Operation: "read"}) {
		t.Fatal("a permission no role of the list holds is within it")
	}
	// a direct grant's node is no role to hand on
	d.grant("d1", approve, authz.SubjectUser, "u1", time.Time{}, time.Time{})
	if d.x.RolesAllow([]string{""}, approve) {
		t.Fatal("a direct grant counted as a role")
	}
}

// Explain names the direct grants allowing a permission among what the
// person lacks, and once they are all revoked says no role holds it.
func TestExplainDirectGrantsRevoked(t *testing.T) {
	d := newDirectIndex(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	q := index.Query{Person: "u2", App: "oa", Resource: "docs.contract", Operation: "approve"}
	d.grant("d1", approve, authz.SubjectUser, "u1", time.Time{}, time.Time{})
	if ex := d.x.Explain(q, now); ex.Reason != index.WhyNotGranted || !strings.Contains(ex.Detail, "a direct grant of oa:docs.contract:approve") {
		t.Fatalf("explain with a direct grant to another: %+v", ex)
	}
	d.del(authz.ObjGrant, "d1")
	if ex := d.x.Explain(q, now); ex.Reason != index.WhyNoRole {
		t.Fatalf("explain once the direct grants are revoked: %+v", ex)
	}
}
