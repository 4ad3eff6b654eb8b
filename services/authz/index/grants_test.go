package index_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// The index keeps a grant in a compact form without pointers (numbers for
// its role, subject and strings, integers for its times). Every read gives
// back the grant as encoding/json decodes what was put, field for field:
// times in UTC, in a fixed zone and beyond the years unix nanoseconds
// reach, the epoch itself, grantable lists nil, empty or not, subjects of a
// kind the index does not know, roles put after their grants, ids long and
// short, and nodes reused after deletes.
func TestGrantsComeBackAsPut(t *testing.T) {
	x := index.New()
	if err := x.Apply(authz.BuiltinChanges()...); err != nil {
		t.Fatal(err)
	}
	rev := int64(0)
	put := func(obj, id string, v any) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rev++
		if err := x.Apply(authz.Change{Rev: rev, Obj: obj, Op: authz.OpPut, ID: id, Data: b}); err != nil {
			t.Fatal(err)
		}
	}
	del := func(obj, id string) {
		t.Helper()
		rev++
		if err := x.Apply(authz.Change{Rev: rev, Obj: obj, Op: authz.OpDelete, ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	put(authz.ObjResource, index.ResourceID("oa", "menu"), authz.Resource{App: "oa", Code: "menu", Kind: authz.KindModule, Operations: []string{"read"}})
	put(authz.ObjRole, "r1", authz.Role{ID: "r1", App: "oa", Code: "r1", Permissions: []authz.Permission{{App: "oa", Resource: "menu", Operation: "read"}}})

	utc := time.Date(2026, 3, 4, 5, 6, 7, 891, time.UTC)
	east := time.FixedZone("", 8*3600)
	odd := time.FixedZone("", 5*3600+1800)
	grants := []authz.Grant{
		{ID: "g-plain", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u1"}, CreatedAt: utc, CreatedBy: "admin1"},
		{ID: "g-window", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectGroup, ID: "gr1"}, ValidFrom: utc.Add(-time.Hour), ValidUntil: utc.Add(time.Hour)},
		{ID: "g-east", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u1"}, ValidFrom: utc.In(east), CreatedAt: utc.In(odd)},
		{ID: "g-far", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "o1"}, ValidUntil: time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "g-past", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectOrg, ID: "o1"}, ValidFrom: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ID: "g-epoch", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u2"}, ValidUntil: time.Unix(0, 0).UTC()},
		{ID: "g-admin", Role: authz.RoleUnitAdmin, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u2"}, ScopeOrg: "o1", Delegable: true, Grantable: []string{"r1", authz.RoleUnitAdmin}},
		{ID: "g-admin2", Role: authz.RoleUnitAdmin, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u3"}, ScopeOrg: "o1", Grantable: []string{"r1", authz.RoleUnitAdmin}},
		{ID: "g-kind", Role: "r1", Subject: authz.Subject{Kind: "robot", ID: "r2d2"}, CreatedBy: "admin1"},
		{ID: "g-later", Role: "r-later", Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u1"}, CreatedBy: "admin2"},
		{ID: "g-" + strings.Repeat("x", 5000), Role: "r1", Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u3"}},
		{ID: "g-escaped\u00e9\"", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u\u00e9"}},
		// direct grants of a permission (plain, timed in a fixed zone, to an unknown kind)
		{ID: "g-direct", Permission: authz.Permission{App: "oa", Resource: "menu", Operation: "read"}, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u5"}, CreatedBy: "admin1"},
		{ID: "g-direct-east", Permission: authz.Permission{App: "oa", Resource: "menu", Operation: "read"}, Subject: authz.Subject{Kind: authz.SubjectGroup, ID: "gr1"}, ValidUntil: utc.In(east)},
		{ID: "g-direct-kind", Permission: authz.Permission{App: "oa", Resource: "gone", Operation: "x"}, Subject: authz.Subject{Kind: "robot", ID: "r2d2"}},
	}
	for _, g := range grants {
		put(authz.ObjGrant, g.ID, g)
	}
	// An empty grantable list (not written by json.Marshal: by hand).
	rev++
	if err := x.Apply(authz.Change{Rev: rev, Obj: authz.ObjGrant, Op: authz.OpPut, ID: "g-empty",
		Data: []byte(`{"id":"g-empty","role":"r1","subject":{"kind":"user","id":"u4"},"grantable":[]}`)}); err != nil {
		t.Fatal(err)
	}
	want := map[string]authz.Grant{}
	decoded := func(g authz.Grant) authz.Grant {
		b, _ := json.Marshal(g)
		var out authz.Grant
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, g := range grants {
		want[g.ID] = decoded(g)
	}
	want["g-empty"] = authz.Grant{ID: "g-empty", Role: "r1", Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u4"}, Grantable: []string{}}

	check := func(stage string) {
		t.Helper()
		for id, w := range want {
			got, ok := x.Grant(id)
			if !ok {
				t.Fatalf("%s: grant %.20s missing", stage, id)
			}
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("%s: grant %.20s:\n got %#v\nwant %#v", stage, id, got, w)
			}
		}
		all := x.Grants(index.GrantFilter{})
		if len(all) != len(want) {
			t.Fatalf("%s: %d grants, want %d", stage, len(all), len(want))
		}
		for _, g := range all {
			if !reflect.DeepEqual(g, want[g.ID]) {
				t.Fatalf("%s: listed grant %.20s differs: %#v", stage, g.ID, g)
			}
		}
		u1 := authz.Subject{Kind: authz.SubjectUser, ID: "u1"}
		var ids []string
		for _, g := range x.Grants(index.GrantFilter{Subject: &u1}) {
			if !reflect.DeepEqual(g, want[g.ID]) {
				t.Fatalf("%s: u1's grant %.20s differs", stage, g.ID)
			}
			ids = append(ids, g.ID)
		}
		var wantIDs []string
		for id, g := range want {
			if g.Subject == u1 {
				wantIDs = append(wantIDs, id)
			}
		}
		slices.Sort(wantIDs)
		if !slices.Equal(ids, wantIDs) {
			t.Fatalf("%s: u1's grants %v, want %v", stage, ids, wantIDs)
		}
	}
	check("put")
	now := utc

	// A role put after its grant: the grant counts from then on, and
	// reads the same.
	q := index.Query{Person: "u1", App: "oa", Resource: "menu", Operation: "read"}
	del(authz.ObjGrant, "g-plain")
	del(authz.ObjGrant, "g-east")
	delete(want, "g-plain")
	delete(want, "g-east")
	if ok, _ := x.Check(q, now); ok {
		t.Fatal("u1 allowed by a grant of a role not known yet")
	}
	put(authz.ObjRole, "r-later", authz.Role{ID: "r-later", App: "oa", Code: "later", Permissions: []authz.Permission{{App: "oa", Resource: "menu", Operation: "read"}}})
	if ok, _ := x.Check(q, now); !ok {
		t.Fatal("u1 not allowed once the role of their grant exists")
	}
	check("role put after its grant")

	// Nodes of deleted grants are reused; the ids put again read back.
	for i := range 3 {
		for _, id := range []string{"g-window", "g-far", "g-epoch", "g-kind", "g-direct", "g-direct-east"} {
			del(authz.ObjGrant, id)
			if _, ok := x.Grant(id); ok {
				t.Fatalf("round %d: grant %s still there", i, id)
			}
			put(authz.ObjGrant, id, grants[slices.IndexFunc(grants, func(g authz.Grant) bool { return g.ID == id })])
		}
		check("puts after deletes")
	}
	// A role deleted and put again: its grants follow it.
	put(authz.ObjRole, "r1", authz.Role{ID: "r1", App: "oa", Code: "r1", Permissions: []authz.Permission{{App: "oa", Resource: "menu", Operation: "read"}}})
	del(authz.ObjRole, "r1")
	check("role deleted")
	if n, _, _ := x.RoleUsers("r1"); n != 0 {
		t.Fatalf("deleted role has %d grants", n)
	}
	put(authz.ObjRole, "r1", authz.Role{ID: "r1", App: "oa", Code: "r1", Permissions: []authz.Permission{{App: "oa", Resource: "menu", Operation: "read"}}})
	if ok, _ := x.Check(index.Query{Person: "u3", App: "oa", Resource: "menu", Operation: "read"}, now); !ok {
		t.Fatal("u3 not allowed after the role was put again")
	}
	check("role put again")
	if n, _, _ := x.RoleUsers("r1"); n != 8 {
		t.Fatalf("role r1 has %d grants, want 8", n)
	}
	if got := x.GrantCount(); got != len(want) {
		t.Fatalf("GrantCount %d, want %d", got, len(want))
	}
}
