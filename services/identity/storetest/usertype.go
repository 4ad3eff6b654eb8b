package storetest

import (
	"slices"
	"testing"

	"github.com/uias/uias/services/identity"
)

// testUserTypes: a unit's account keeps its type through create, update
// and export (a person's reads 0, as rows from before the column); a
// listing by type alone, in an org, in an org's subtree and with a search
// (both shapes of it) holds the accounts of that type only.
func testUserTypes(t *testing.T, f *fixture) {
	o := f.org("")
	var units, people []string
	for i := range 6 {
		u := f.newUser(o.ID)
		u.LoginName = "shipping-" + u.ID
		if i%2 == 0 {
			u.UserType = identity.UserTypeUnit
			u.IDType = identity.IDTypeUSCC
			units = append(units, u.ID)
		} else {
			people = append(people, u.ID)
		}
		must(t, f.s.CreateUser(f.ctx, u, nil))
	}
	got, err := f.s.GetUser(f.ctx, units[0])
	must(t, err)
	eq(t, "unit's type", got.UserType, identity.UserTypeUnit)
	eq(t, "unit's ID type", got.IDType, identity.IDTypeUSCC)
	got, err = f.s.GetUser(f.ctx, people[0])
	must(t, err)
	eq(t, "person's type", got.UserType, identity.UserType(0))
	// A person given UserTypePerson is stored as every person.
	p := f.newUser(o.ID)
	p.LoginName = "shipping-" + p.ID
	p.UserType = identity.UserTypePerson
	must(t, f.s.CreateUser(f.ctx, p, nil))
	people = append(people, p.ID)

	// The type changes with an update, both ways.
	u, err := f.s.GetUser(f.ctx, people[0])
	must(t, err)
	u.UserType = identity.UserTypeUnit
	must(t, f.s.UpdateUser(f.ctx, u, nil))
	units, people = append(units, u.ID), people[1:]
	u, err = f.s.GetUser(f.ctx, units[1])
	must(t, err)
	u.UserType = 0
	must(t, f.s.UpdateUser(f.ctx, u, nil))
	people, units = append(people, u.ID), slices.Delete(units, 1, 2)
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "type after update", got.UserType, identity.UserType(0))

	slices.Sort(units)
	slices.Sort(people)
	list := func(flt identity.UserFilter) []string {
		t.Helper()
		// Pages of 2 (a search's may end short: login names first).
		var ids []string
		for tok, n := "", 0; ; n++ {
			pg, next, err := f.s.ListUsers(f.ctx, flt, identity.Page{Size: 2, Token: tok})
			must(t, err)
			for _, u := range pg {
				ids = append(ids, u.ID)
			}
			if next == "" || n > 20 {
				break
			}
			tok = next
		}
		slices.Sort(ids)
		return ids
	}
	for _, c := range []struct {
		name string
		flt  identity.UserFilter
	}{
		{"org", identity.UserFilter{OrgID: o.ID}},
		{"subtree", identity.UserFilter{OrgID: o.ID, Subtree: true}},
		{"search", identity.UserFilter{OrgID: o.ID, Query: "shipping"}},
		{"search words", identity.UserFilter{OrgID: o.ID, Query: "hipping-"}},
	} {
		c.flt.UserType = identity.UserTypeUnit
		if ids := list(c.flt); !slices.Equal(ids, units) {
			t.Fatalf("%s: units %v, want %v", c.name, ids, units)
		}
		c.flt.UserType = identity.UserTypePerson
		if ids := list(c.flt); !slices.Equal(ids, people) {
			t.Fatalf("%s: people %v, want %v", c.name, ids, people)
		}
	}
	all, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{UserType: identity.UserTypeUnit}, identity.Page{Size: 100})
	must(t, err)
	for _, u := range all {
		if u.UserType != identity.UserTypeUnit {
			t.Fatalf("unit listing holds %+v", u)
		}
	}

	// The export reads the type.
	types := map[string]identity.UserType{}
	for after := ""; ; {
		batch, err := f.s.ExportUsers(f.ctx, after, 100)
		must(t, err)
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			types[e.User.ID] = e.User.UserType
			after = e.User.ID
		}
	}
	for _, id := range units {
		eq(t, "exported unit's type", types[id], identity.UserTypeUnit)
	}
	for _, id := range people {
		eq(t, "exported person's type", types[id], identity.UserType(0))
	}
}
