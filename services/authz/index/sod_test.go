package index_test

import (
	"encoding/json"
	"fmt"
	"slices"
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
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	x := modelIndex(t, map[string]authz.Grant{
		"g1": {Role: "a", Subject: user("p1")}, "g2": {Role: "b", Subject: user("p1")},
		"g3": {Role: "a", Subject: user("p2")}, "g4": {Role: "c", Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "west"}},
		"g5": {Role: "c", Subject: authz.Subject{Kind: authz.SubjectGroup, ID: "gc"}},
		"g6": {Role: authz.RoleUnitAdmin, Subject: user("p3"), ScopeOrg: "east"},
		"g8": {Role: "a", Subject: user("p0")},
		"g7": {Role: "a", Subject: user("p3")},
	}, map[string]authz.Exclusion{"x-ab": {RoleA: "a", RoleB: "b"}, "x-ac": {RoleA: "a", RoleB: "c"},
		"x-ua": {RoleA: authz.RoleUnitAdmin, RoleB: "a"}})
	x.SetOrgParent("east", "root")
	x.SetOrgParent("east1", "east")
	x.SetOrgParent("west", "root")
	x.SetUserOrg("p0", "east") // outside east1, holding a
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
	// every pair in one walk agrees with the pairs one by one (review
	// sec15 L4)
	pairs := [][2]string{{"a", "b"}, {authz.RoleUnitAdmin, "a"}, {"b", "c"}, {"a", "c"}}
	all := x.HoldersOfPairs(pairs, now)
	for i, p := range pairs {
		if one := x.HoldersOfBoth(p[0], p[1], now); !slices.Equal(all[i], one) {
			t.Fatalf("holders of %v: %v in one walk, %v alone", p, all[i], one)
		}
	}
	if len(all[0]) == 0 || len(all[2]) != 0 {
		t.Fatalf("holders in one walk: %v", all)
	}
	// p0 (east, holding a) is outside the moved subtree: not named
	if e, who, ok := x.MoveConflict("east1", "west", now); !ok || who != "p1" || e.ID != "x-ac" {
		t.Fatalf("east1 moved under west: %v %q %v", e, who, ok)
	}
	if _, who, ok := x.MoveConflict("east1", "root", now); ok {
		t.Fatalf("east1 moved under root conflicts with nothing, got %q", who)
	}
}

// The scans agree with a check however deep the org tree and whatever
// order they meet people in (review sec12 #2: a memo of the parent's
// answer counted other levels past maxOrgDepth, so a person was missed or
// named by the order of a map): o0 > o1 > ... > o80, role a given to o0,
// role b to y (in o30: a is 30 levels up) and to x (in o80: a is past the
// levels a check walks, so x does not hold a).
func TestSoDScansDeepTree(t *testing.T) {
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	x := modelIndex(t, map[string]authz.Grant{"g1": {Role: "a", Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "o0"}},
		"g2": {Role: "b", Subject: user("y")}, "g3": {Role: "b", Subject: user("x")},
		"g4": {Role: "c", Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "np"}}},
		map[string]authz.Exclusion{"x-bc": {RoleA: "b", RoleB: "c"}})
	for i := 1; i <= 80; i++ {
		x.SetOrgParent(fmt.Sprintf("o%d", i), fmt.Sprintf("o%d", i-1))
	}
	x.SetUserOrg("y", "o30")
	x.SetUserOrg("x", "o80")
	now := time.Now()
	if held := x.HeldRoles(user("x"), now); held["a"] {
		t.Fatal("the check's own walk reaches a from o80")
	}
	for range 50 { // people come in a map's order: many scans
		if who, ok := x.HolderOfBoth("a", "b", now); !ok || who != "y" {
			t.Fatalf("holder of a and b: %q %v, want y", who, ok)
		}
		// o1 moved under np (which gives c): y, 29 levels below o1,
		// breaks b/c; x, 79 below, is past the levels a check walks
		if _, who, ok := x.MoveConflict("o1", "np", now); !ok || who != "y" {
			t.Fatalf("o1 moved under np: %q %v, want y", who, ok)
		}
	}
}

// modelIndex is an index of the built-in model, roles a, b and c (of
// application oa), and grants and exclusions put straight in (data from
// before the checks would have it; ids filled in from the keys).
func modelIndex(t *testing.T, grants map[string]authz.Grant, excl map[string]authz.Exclusion) *index.Index {
	t.Helper()
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
	for id, g := range grants {
		g.ID = id
		put(authz.ObjGrant, id, g)
	}
	for id, e := range excl {
		e.ID, e.Name = id, id
		put(authz.ObjExclusion, id, e)
	}
	x := index.New()
	if err := x.Apply(chs...); err != nil {
		t.Fatal(err)
	}
	return x
}
