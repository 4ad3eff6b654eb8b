package index_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// sodIndex: orgs root > east > east1, root > west; roles a, b, c (c given
// to west); people p1 (east1, holding a and b from before the exclusion
// a/b), p2 (east1, holding a), p3 (west, a unit administrator of east who
// also holds a); groups gx (no grant) and gc (giving c); exclusions a/b,
// a/c and unit_admin/a, put straight into the index as data from before
// the checks would have it.
func sodIndex(t *testing.T) *index.Index {
	t.Helper()
	x := index.New()
	chs := authz.BuiltinChanges()
	put := func(obj, id string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		chs = append(chs, authz.Change{Obj: obj, Op: authz.OpPut, ID: id, Data: b})
	}
	for _, r := range []string{"a", "b", "c"} {
		put(authz.ObjRole, r, authz.Role{ID: r, App: "oa", Code: r})
	}
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	for id, g := range map[string]authz.Grant{
		"g1": {Role: "a", Subject: user("p1")}, "g2": {Role: "b", Subject: user("p1")},
		"g3": {Role: "a", Subject: user("p2")}, "g4": {Role: "c", Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "west"}},
		"g5": {Role: "c", Subject: authz.Subject{Kind: authz.SubjectGroup, ID: "gc"}},
		"g6": {Role: authz.RoleUnitAdmin, Subject: user("p3"), ScopeOrg: "east"},
		"g7": {Role: "a", Subject: user("p3")},
	} {
		g.ID = id
		put(authz.ObjGrant, id, g)
	}
	for id, e := range map[string]authz.Exclusion{"x-ab": {RoleA: "a", RoleB: "b"}, "x-ac": {RoleA: "a", RoleB: "c"},
		"x-ua": {RoleA: authz.RoleUnitAdmin, RoleB: "a"}} {
		e.ID, e.Name = id, id
		put(authz.ObjExclusion, id, e)
	}
	if err := x.Apply(chs...); err != nil {
		t.Fatal(err)
	}
	x.SetOrgParent("east", "root")
	x.SetOrgParent("east1", "east")
	x.SetOrgParent("west", "root")
	x.SetUserOrg("p1", "east1")
	x.SetUserOrg("p2", "east1")
	x.SetUserOrg("p3", "west")
	x.SetGroupOrg("gx", "east")
	x.SetGroupOrg("gc", "east")
	return x
}

// A change is judged by the pairs it would break: one a person broke
// already is not the join's doing (trial7 L1); a unit administrator's
// scoped grant gives its role as any grant does (review sec11 S12); an org
// move finds the people of the moved subtree only.
func TestSoDScans(t *testing.T) {
	x := sodIndex(t)
	now := time.Now()
	if e, ok := x.MembershipConflict("p1", "gx", "", now); ok {
		t.Fatalf("p1 joining a group that gives nothing: %v (p1's a/b is from before)", e)
	}
	if e, ok := x.MembershipConflict("p1", "gc", "", now); !ok || e.ID != "x-ac" {
		t.Fatalf("p1 joining the group giving c: %v %v", e, ok)
	}
	if e, ok := x.MembershipConflict("p2", "", "west", now); !ok || e.ID != "x-ac" {
		t.Fatalf("p2 moved to west: %v %v", e, ok)
	}
	if _, ok := x.MembershipConflict("p2", "gx", "", now); ok {
		t.Fatal("p2 joining a group that gives nothing")
	}
	if who, ok := x.HolderOfBoth("a", "b", now); !ok || who != "p1" {
		t.Fatalf("holder of a and b: %q %v", who, ok)
	}
	if who, ok := x.HolderOfBoth(authz.RoleUnitAdmin, "a", now); !ok || who != "p3" {
		t.Fatalf("holder of unit_admin (scoped) and a: %q %v", who, ok)
	}
	if who, ok := x.HolderOfBoth("b", "c", now); ok {
		t.Fatalf("nobody holds b and c, got %q", who)
	}
	if e, who, ok := x.MoveConflict("east1", "west", now); !ok || who != "p1" || e.ID != "x-ac" {
		t.Fatalf("east1 moved under west: %v %q %v", e, who, ok)
	}
	if _, who, ok := x.MoveConflict("east1", "root", now); ok {
		t.Fatalf("east1 moved under root conflicts with nothing, got %q", who)
	}
}
