// Package dataset generates the authorization data set of the benchmarks
// (issue 10 item 7): people in an org tree, applications with resource
// trees, roles with inheritance, and grants to people, groups and orgs;
// and checks to ask of it. Generation is deterministic for a seed. The
// peers module (bench/authzpeers) loads the same data into casbin and
// OpenFGA.
package dataset

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/uias/uias/services/authz"
)

// Size is the shape of a data set.
type Size struct {
	People, Orgs, Groups, Apps int
	// Modules per application, each with ResourcesPerModule resources
	// below it (menus and entities).
	Modules, ResourcesPerModule int
	Roles, Grants               int
	// PermsPerRole permissions each role holds; a fifth of the roles also
	// inherit one or two junior roles of their application.
	PermsPerRole int
	// DirectGrants: grants of one permission directly (no role), besides
	// Grants; 0 in Full and Small, whose data the peers (bench/authzpeers,
	// which know only grants of roles) load too.
	DirectGrants int
}

// Full is the size issue 10 names: 100k people, 10k roles, 1 M grants, an
// org tree of 10k nodes.
var Full = Size{People: 100_000, Orgs: 10_000, Groups: 1_000, Apps: 10, Modules: 10, ResourcesPerModule: 9,
	Roles: 10_000, Grants: 1_000_000, PermsPerRole: 5}

// Small is Full scaled down for tests.
var Small = Size{People: 1_000, Orgs: 100, Groups: 20, Apps: 3, Modules: 4, ResourcesPerModule: 4,
	Roles: 100, Grants: 10_000, PermsPerRole: 4}

// Operations of every resource.
var Operations = []string{"read", "write", "approve", "delete"}

// Data is a generated data set.
type Data struct {
	Size       Size
	Resources  []authz.Resource
	Roles      []authz.Role
	Grants     []authz.Grant
	OrgParent  map[string]string // org id -> parent ("" for the root)
	UserOrg    map[string]string
	GroupUsers map[string][]string
	Checks     []Check
}

// Check is one question and its answer in the data set.
type Check struct {
	Person, App, Resource, Operation string
}

// App, org, person, group and role names.
func AppID(i int) string      { return fmt.Sprintf("app%02d", i) }
func OrgID(i int) string      { return fmt.Sprintf("org%05d", i) }
func PersonID(i int) string   { return fmt.Sprintf("u%06d", i) }
func GroupID(i int) string    { return fmt.Sprintf("g%04d", i) }
func RoleID(i int) string     { return fmt.Sprintf("r%05d", i) }
func GrantID(i int) string    { return fmt.Sprintf("gr%07d", i) }
func moduleCode(m int) string { return fmt.Sprintf("m%02d", m) }
func resCode(m, r int) string { return fmt.Sprintf("m%02d.r%02d", m, r) }

// Generate builds a data set of size s from seed, with nChecks checks
// (about half of them allowed).
func Generate(s Size, seed uint64, nChecks int) *Data {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d := &Data{Size: s, OrgParent: map[string]string{}, UserOrg: map[string]string{}, GroupUsers: map[string][]string{}}
	// An 8-ary org tree.
	for i := range s.Orgs {
		p := ""
		if i > 0 {
			p = OrgID((i - 1) / 8)
		}
		d.OrgParent[OrgID(i)] = p
	}
	for i := range s.People {
		d.UserOrg[PersonID(i)] = OrgID(rng.IntN(s.Orgs))
	}
	for i := range s.People {
		if rng.IntN(4) == 0 { // a quarter of the people are in one group
			g := GroupID(rng.IntN(s.Groups))
			d.GroupUsers[g] = append(d.GroupUsers[g], PersonID(i))
		}
	}
	type perm = struct{ app, res, op string }
	var perms [][]perm // per app
	for a := range s.Apps {
		app := AppID(a)
		var ps []perm
		for m := range s.Modules {
			d.Resources = append(d.Resources, authz.Resource{App: app, Code: moduleCode(m), Kind: authz.KindModule, Operations: Operations})
			for r := range s.ResourcesPerModule {
				kind := authz.KindEntity
				if r%3 == 0 {
					kind = authz.KindMenu
				}
				d.Resources = append(d.Resources, authz.Resource{App: app, Code: resCode(m, r), Parent: moduleCode(m), Kind: kind, Operations: Operations})
				for _, op := range Operations {
					ps = append(ps, perm{app, resCode(m, r), op})
				}
			}
			// Module-wide permissions are rarer: one op per module.
			ps = append(ps, perm{app, moduleCode(m), Operations[m%len(Operations)]})
		}
		perms = append(perms, ps)
	}
	rolesOfApp := make([][]int, s.Apps)
	for i := range s.Roles {
		a := i % s.Apps
		app := AppID(a)
		r := authz.Role{ID: RoleID(i), App: app, Code: fmt.Sprintf("role%05d", i)}
		seen := map[perm]bool{}
		for len(r.Permissions) < s.PermsPerRole {
			p := perms[a][rng.IntN(len(perms[a]))]
			if !seen[p] {
				seen[p] = true
				r.Permissions = append(r.Permissions, authz.Permission{App: p.app, Resource: p.res, Operation: p.op})
			}
		}
		if prev := rolesOfApp[a]; len(prev) > 0 && rng.IntN(5) == 0 {
			for k := 0; k < 1+rng.IntN(2); k++ {
				j := RoleID(prev[rng.IntN(len(prev))])
				if len(r.Inherits) == 0 || r.Inherits[0] != j {
					r.Inherits = append(r.Inherits, j)
				}
			}
		}
		rolesOfApp[a] = append(rolesOfApp[a], i)
		d.Roles = append(d.Roles, r)
	}
	groups := make([]string, 0, len(d.GroupUsers))
	for g := range s.Groups {
		if len(d.GroupUsers[GroupID(g)]) > 0 {
			groups = append(groups, GroupID(g))
		}
	}
	// Grants carry what a write records (when and by which of a few
	// administrators), as the store holds them.
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range s.Grants {
		g := authz.Grant{ID: GrantID(i), Role: RoleID(rng.IntN(s.Roles)),
			CreatedAt: created.Add(time.Duration(i) * 7919 * time.Millisecond), CreatedBy: fmt.Sprintf("admin%02d", i%20)}
		switch x := rng.IntN(100); {
		case x < 2 && len(groups) > 0:
			g.Subject = authz.Subject{Kind: authz.SubjectGroup, ID: groups[rng.IntN(len(groups))]}
		case x < 3:
			// Org grants go to the deeper half of the tree, so that one
			// does not reach everyone.
			g.Subject = authz.Subject{Kind: authz.SubjectOrg, ID: OrgID(s.Orgs/2 + rng.IntN(s.Orgs-s.Orgs/2))}
		default:
			g.Subject = authz.Subject{Kind: authz.SubjectUser, ID: PersonID(rng.IntN(s.People))}
		}
		d.Grants = append(d.Grants, g)
	}
	// Checks: half ask for a permission of a role the person was granted
	// directly (allowed), half for a random one (mostly denied).
	byPerson := map[string][]int{}
	for i, g := range d.Grants {
		if g.Subject.Kind == authz.SubjectUser && len(byPerson[g.Subject.ID]) < 8 {
			byPerson[g.Subject.ID] = append(byPerson[g.Subject.ID], i)
		}
	}
	for len(d.Checks) < nChecks {
		person := PersonID(rng.IntN(s.People))
		if len(d.Checks)%2 == 0 && len(byPerson[person]) > 0 {
			role := d.Roles[roleIndex(d.Grants[byPerson[person][rng.IntN(len(byPerson[person]))]].Role)]
			p := role.Permissions[rng.IntN(len(role.Permissions))]
			d.Checks = append(d.Checks, Check{Person: person, App: p.App, Resource: p.Resource, Operation: p.Operation})
			continue
		}
		a := rng.IntN(s.Apps)
		p := perms[a][rng.IntN(len(perms[a]))]
		d.Checks = append(d.Checks, Check{Person: person, App: p.app, Resource: p.res, Operation: p.op})
	}
	d.direct(s, seed, perms, groups, nChecks, created)
	return d
}

// direct adds s.DirectGrants direct grants of a permission (drawn from
// their own random stream: the rest of the data set is as without them)
// and, for a quarter of nChecks at most, checks asking for a permission
// granted directly to the person.
func (d *Data) direct(s Size, seed uint64, perms [][]struct{ app, res, op string }, groups []string, nChecks int, created time.Time) {
	if s.DirectGrants <= 0 {
		return
	}
	rng := rand.New(rand.NewPCG(seed^0xd12ec7, seed))
	var checks []Check
	for i := range s.DirectGrants {
		a := rng.IntN(s.Apps)
		p := perms[a][rng.IntN(len(perms[a]))]
		g := authz.Grant{ID: GrantID(s.Grants + i), Permission: authz.Permission{App: p.app, Resource: p.res, Operation: p.op},
			CreatedAt: created.Add(time.Duration(i) * 7919 * time.Millisecond), CreatedBy: "admin00"}
		switch x := rng.IntN(100); {
		case x < 5 && len(groups) > 0:
			g.Subject = authz.Subject{Kind: authz.SubjectGroup, ID: groups[rng.IntN(len(groups))]}
		case x < 8:
			g.Subject = authz.Subject{Kind: authz.SubjectOrg, ID: OrgID(s.Orgs/2 + rng.IntN(s.Orgs-s.Orgs/2))}
		default:
			g.Subject = authz.Subject{Kind: authz.SubjectUser, ID: PersonID(rng.IntN(s.People))}
			if len(checks) < nChecks/4 {
				checks = append(checks, Check{Person: g.Subject.ID, App: p.app, Resource: p.res, Operation: p.op})
			}
		}
		d.Grants = append(d.Grants, g)
	}
	d.Checks = append(d.Checks, checks...)
}

func roleIndex(id string) int {
	var i int
	_, _ = fmt.Sscanf(id, "r%05d", &i)
	return i
}

// RenameApps replaces the data set's application ids (AppID(i)) by the
// ids in to (of applications registered in identity, whose credentials
// then ask each its own checks: an application is answered about itself
// only). Ids not in to stay.
func (d *Data) RenameApps(to map[string]string) {
	name := func(s string) string {
		if n, ok := to[s]; ok {
			return n
		}
		return s
	}
	for i := range d.Resources {
		d.Resources[i].App = name(d.Resources[i].App)
	}
	for i := range d.Roles {
		d.Roles[i].App = name(d.Roles[i].App)
		for j := range d.Roles[i].Permissions {
			d.Roles[i].Permissions[j].App = name(d.Roles[i].Permissions[j].App)
		}
	}
	for i := range d.Grants {
		if d.Grants[i].Direct() {
			d.Grants[i].Permission.App = name(d.Grants[i].Permission.App)
		}
	}
	for i := range d.Checks {
		d.Checks[i].App = name(d.Checks[i].App)
	}
}
