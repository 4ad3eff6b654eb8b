package index_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/dataset"
	"github.com/uias/uias/services/authz/index"
)

// Check answers from what it prepares per person (the roles reaching them
// through their grants, groups and orgs); Explain walks the grants every
// time. After every kind of change (grants to people, groups and orgs,
// time-boxed grants, revocations, people moving between orgs and groups,
// orgs moving in the tree, roles deleted and put again, direct grants of a
// permission made and revoked), with every person's prepared roles warm
// before the change, both answer alike.
func TestCheckFollowsEveryChange(t *testing.T) {
	size := dataset.Small
	size.DirectGrants = 300
	d := dataset.Generate(size, 21, 1500)
	x, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Now()
	rev := x.Revision()
	apply := func(c authz.Change) {
		t.Helper()
		rev++
		c.Rev = rev
		if err := x.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	putJSON := func(obj, id string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		apply(authz.Change{Obj: obj, Op: authz.OpPut, ID: id, Data: b})
	}
	compare := func(step int, what string) {
		t.Helper()
		for _, c := range d.Checks {
			got, _ := x.Check(c.Query(), now)
			want := x.Explain(c.Query(), now).Allowed
			if got != want {
				t.Fatalf("step %d (%s): %+v: Check %v, Explain %v", step, what, c, got, want)
			}
		}
	}
	groups := make([]string, 0, len(d.GroupUsers))
	for g := range d.GroupUsers {
		groups = append(groups, g)
	}
	s := d.Size
	grants := len(d.Grants) // ids 0..grants-1: the role grants, then the direct ones
	deleted := map[int]authz.Role{}
	compare(0, "start")
	for step := 1; step <= 120; step++ {
		var what string
		switch k := rng.IntN(12); k {
		case 0, 1:
			what = "revoke"
			apply(authz.Change{Obj: authz.ObjGrant, Op: authz.OpDelete, ID: dataset.GrantID(rng.IntN(grants))})
		case 2, 3:
			g := authz.Grant{ID: dataset.GrantID(grants), Role: dataset.RoleID(rng.IntN(s.Roles))}
			grants++
			switch rng.IntN(3) {
			case 0:
				g.Subject = authz.Subject{Kind: authz.SubjectUser, ID: dataset.PersonID(rng.IntN(s.People))}
			case 1:
				g.Subject = authz.Subject{Kind: authz.SubjectGroup, ID: groups[rng.IntN(len(groups))]}
			default:
				g.Subject = authz.Subject{Kind: authz.SubjectOrg, ID: dataset.OrgID(rng.IntN(s.Orgs))}
			}
			if rng.IntN(2) == 0 { // in force now, or not yet, or no longer
				g.ValidFrom = now.Add(time.Duration(rng.IntN(3)-2) * time.Hour)
				g.ValidUntil = g.ValidFrom.Add(time.Duration(1+rng.IntN(2)) * time.Hour)
			}
			what = fmt.Sprintf("grant to %s (window %v)", g.Subject, !g.ValidFrom.IsZero())
			putJSON(authz.ObjGrant, g.ID, g)
		case 4:
			what = "group member"
			g := groups[rng.IntN(len(groups))]
			x.SetGroupMember(g, dataset.PersonID(rng.IntN(s.People)), rng.IntN(2) == 0)
		case 5:
			what = "person moves"
			x.SetUserOrg(dataset.PersonID(rng.IntN(s.People)), dataset.OrgID(rng.IntN(s.Orgs)))
		case 6:
			what = "org moves"
			o := 1 + rng.IntN(s.Orgs-1)
			x.SetOrgParent(dataset.OrgID(o), dataset.OrgID(rng.IntN(o))) // a lower number: no cycle
		case 7:
			what = "role deleted"
			i := rng.IntN(s.Roles)
			if _, ok := deleted[i]; !ok {
				deleted[i] = d.Roles[i]
				apply(authz.Change{Obj: authz.ObjRole, Op: authz.OpDelete, ID: d.Roles[i].ID})
			}
		case 8:
			what = "role put again"
			for i, r := range deleted {
				putJSON(authz.ObjRole, r.ID, r)
				delete(deleted, i)
				break
			}
		case 9:
			what = "person disabled or enabled"
			x.SetPersonDisabled(dataset.PersonID(rng.IntN(s.People)), rng.IntN(2) == 0)
		case 10:
			what = "org disabled or enabled"
			x.SetOrgDisabled(dataset.OrgID(rng.IntN(s.Orgs)), rng.IntN(3) == 0)
		case 11:
			// a permission some check asks about, granted directly
			c := d.Checks[rng.IntN(len(d.Checks))]
			g := authz.Grant{ID: dataset.GrantID(grants), Permission: authz.Permission{App: c.App, Resource: c.Resource, Operation: c.Operation}}
			grants++
			switch rng.IntN(3) {
			case 0:
				g.Subject = authz.Subject{Kind: authz.SubjectUser, ID: c.Person}
			case 1:
				g.Subject = authz.Subject{Kind: authz.SubjectGroup, ID: groups[rng.IntN(len(groups))]}
			default:
				g.Subject = authz.Subject{Kind: authz.SubjectOrg, ID: dataset.OrgID(rng.IntN(s.Orgs))}
			}
			if rng.IntN(2) == 0 {
				g.ValidFrom = now.Add(time.Duration(rng.IntN(3)-2) * time.Hour)
				g.ValidUntil = g.ValidFrom.Add(time.Duration(1+rng.IntN(2)) * time.Hour)
			}
			what = fmt.Sprintf("direct grant to %s (window %v)", g.Subject, !g.ValidFrom.IsZero())
			putJSON(authz.ObjGrant, g.ID, g)
		}
		compare(step, what)
	}
}

// A check allocates nothing once the person's roles are prepared.
func TestCheckAllocatesNothing(t *testing.T) {
	d := dataset.Generate(dataset.Small, 3, 500)
	x, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	qs := make([]index.Query, len(d.Checks))
	for i, c := range d.Checks {
		qs[i] = c.Query()
		x.Check(qs[i], now)
	}
	i := 0
	if n := testing.AllocsPerRun(2000, func() {
		x.Check(qs[i%len(qs)], now)
		i++
	}); n != 0 {
		t.Errorf("Check allocates %.2f times per call", n)
	}
}

// A person disabled in identity, or below a disabled org, holds nothing:
// Check, Explain (PERSON_DISABLED) and ListPermissions agree, and enabling
// again gives back what their grants give.
func TestDisabledPersonHoldsNothing(t *testing.T) {
	d := dataset.Generate(dataset.Small, 22, 500)
	x, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var q index.Query
	for _, c := range d.Checks {
		if ok, _ := x.Check(c.Query(), now); ok {
			q = c.Query()
			break
		}
	}
	if q.Person == "" {
		t.Fatal("no allowed check in the data set")
	}
	holds := func() (bool, string, int) {
		ok, _ := x.Check(q, now)
		perms, _ := x.ListPermissions(q.Person, q.App, now)
		return ok, x.Explain(q, now).Reason, len(perms)
	}
	if ok, why, n := holds(); !ok || why != "" || n == 0 {
		t.Fatalf("before: check %v, explain %q, %d permissions", ok, why, n)
	}
	x.SetPersonDisabled(q.Person, true)
	if ok, why, n := holds(); ok || why != index.WhyPersonDisabled || n != 0 {
		t.Fatalf("person disabled: check %v, explain %q, %d permissions", ok, why, n)
	}
	x.SetPersonDisabled(q.Person, false)
	if ok, _, _ := holds(); !ok {
		t.Fatal("person enabled again: not allowed")
	}
	org := d.UserOrg[q.Person]
	x.SetOrgDisabled(org, true)
	if ok, why, n := holds(); ok || why != index.WhyPersonDisabled || n != 0 {
		t.Fatalf("org disabled: check %v, explain %q, %d permissions", ok, why, n)
	}
	x.SetOrgDisabled(org, false)
	if ok, _, _ := holds(); !ok {
		t.Fatal("org enabled again: not allowed")
	}
}
