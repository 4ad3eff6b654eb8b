package index

import (
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/services/authz"
)

// Reads for administration and for the write commands' checks. They return
// copies.

// Resource returns the resource app/code.
func (x *Index) Resource(app, code string) (authz.Resource, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.resources[app][code]
	if n == nil {
		return authz.Resource{}, false
	}
	return n.r, true
}

// Resources returns the resources of app sorted by code.
func (x *Index) Resources(app string) []authz.Resource {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]authz.Resource, 0, len(x.resources[app]))
	for _, n := range x.resources[app] {
		out = append(out, n.r)
	}
	slices.SortFunc(out, func(a, b authz.Resource) int { return strings.Compare(a.Code, b.Code) })
	return out
}

// Children reports whether app/code has resources below it.
func (x *Index) Children(app, code string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, n := range x.resources[app] {
		if n.r.Parent == code {
			return true
		}
	}
	return false
}

// Role returns the role id.
func (x *Index) Role(id string) (authz.Role, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.roles[id]
	if n == nil {
		return authz.Role{}, false
	}
	return n.r, true
}

// RoleByCode returns the role app/code (app "" for a global role).
func (x *Index) RoleByCode(app, code string) (authz.Role, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.roleByCode[app+"\x00"+code]
	if n == nil {
		return authz.Role{}, false
	}
	return n.r, true
}

// Roles returns the roles of app ("" and all=false: global roles; all:
// every role), sorted by app then code.
func (x *Index) Roles(app string, all bool) []authz.Role {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []authz.Role
	for _, n := range x.roles {
		if all || n.r.App == app {
			out = append(out, n.r)
		}
	}
	slices.SortFunc(out, func(a, b authz.Role) int {
		if c := strings.Compare(a.App, b.App); c != 0 {
			return c
		}
		return strings.Compare(a.Code, b.Code)
	})
	return out
}

// RoleUsers reports what refers to role id: grants, roles inheriting it,
// exclusions naming it.
func (x *Index) RoleUsers(id string) (grants, seniors, exclusions int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if n := x.roles[id]; n != nil {
		grants = len(n.grants)
	}
	for _, r := range x.roles {
		if slices.Contains(r.r.Inherits, id) {
			seniors++
		}
	}
	for _, e := range x.exclusions {
		if e.RoleA == id || e.RoleB == id {
			exclusions++
		}
	}
	return
}

// DirectGrants reports how many direct grants give permission p.
func (x *Index) DirectGrants(p authz.Permission) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r := x.direct[p]; r != nil {
		return len(r.grants)
	}
	return 0
}

// RolesAllow reports whether one of roles (ids; the caller includes the
// roles they inherit) holds permission p, on its resource or on one above
// it: p is then a part of what granting one of them gives (delegated
// administrators grant directly only such permissions).
func (x *Index) RolesAllow(roles []string, p authz.Permission) bool {
	x.rlock()
	defer x.mu.RUnlock()
	for n, d := x.resources[p.App][p.Resource], 0; n != nil && d < maxOrgDepth; n, d = n.parent, d+1 {
		for _, r := range x.permRoles[permKey{n, p.Operation}].nodes {
			if !r.direct && slices.Contains(roles, r.r.ID) {
				return true
			}
		}
	}
	return false
}

// ResourceUsers reports how many roles name a permission on app/code.
func (x *Index) ResourceUsers(app, code string) int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := 0
	for _, r := range x.roles {
		for _, p := range r.r.Permissions {
			if p.App == app && p.Resource == code {
				n++
				break
			}
		}
	}
	return n
}

// Closure returns the ids of role id and every role it inherits, directly
// or not.
func (x *Index) Closure(id string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.closureLocked(id, nil)
}

// ClosureOf is Closure for a role not yet stored: r as it would be.
func (x *Index) ClosureOf(r authz.Role) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := []string{r.ID}
	for _, j := range r.Inherits {
		if j == r.ID {
			continue
		}
		out = append(out, x.closureLocked(j, map[string]bool{r.ID: true})...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (x *Index) closureLocked(id string, seen map[string]bool) []string {
	if id == "" {
		return nil // a direct grant: no role
	}
	if seen == nil {
		seen = map[string]bool{}
	}
	var out []string
	var walk func(id string, depth int)
	walk = func(id string, depth int) {
		if seen[id] || depth > 64 {
			return
		}
		seen[id] = true
		out = append(out, id)
		if n := x.roles[id]; n != nil {
			for _, j := range n.r.Inherits {
				walk(j, depth+1)
			}
		}
	}
	walk(id, 0)
	slices.Sort(out)
	return out
}

// Grant returns grant id.
func (x *Index) Grant(id string) (authz.Grant, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	gi := x.grants.get(id, x)
	if gi == 0 {
		return authz.Grant{}, false
	}
	return x.grantOf(gi), true
}

// GrantFilter selects grants: by subject, by role or by permission
// granted directly (at most one of the two), or all.
type GrantFilter struct {
	Subject    *authz.Subject
	Role       string
	Permission authz.Permission
}

// matches reports whether grant gi is of f's role or permission (either,
// when f names neither).
func (f GrantFilter) matches(x *Index, gi int32) bool {
	n := x.node(gi)
	switch {
	case f.Role != "":
		return x.roleID(gi, n) == f.Role
	case !f.Permission.IsZero():
		return x.directOf(n) == f.Permission
	}
	return true
}

// Grants returns the grants matching f, sorted by id.
func (x *Index) Grants(f GrantFilter) []authz.Grant {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []authz.Grant
	switch {
	case f.Subject != nil:
		var h *holder
		switch f.Subject.Kind {
		case authz.SubjectUser:
			if p := x.people[f.Subject.ID]; p != nil {
				h = &p.holder
			}
		case authz.SubjectGroup:
			if g := x.groups[f.Subject.ID]; g != nil {
				h = &g.holder
			}
		case authz.SubjectOrg:
			if o := x.orgs[f.Subject.ID]; o != nil {
				h = &o.holder
			}
		}
		if h != nil {
			for _, gi := range h.grants {
				if f.matches(x, gi) {
					out = append(out, x.grantOf(gi))
				}
			}
		}
	case f.Role != "" || !f.Permission.IsZero():
		n := x.roles[f.Role]
		if f.Role == "" {
			n = x.direct[f.Permission]
		}
		if n != nil {
			for _, gi := range n.grants {
				out = append(out, x.grantOf(gi))
			}
		}
	default:
		out = make([]authz.Grant, 0, x.grants.n)
		x.grants.each(func(gi int32) { out = append(out, x.grantOf(gi)) })
	}
	slices.SortFunc(out, func(a, b authz.Grant) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// GrantCount is the number of grants held.
func (x *Index) GrantCount() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.grants.n
}

// Exclusions returns the separation-of-duty pairs sorted by id.
func (x *Index) Exclusions() []authz.Exclusion {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]authz.Exclusion, 0, len(x.exclusions))
	for _, e := range x.exclusions {
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b authz.Exclusion) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// HeldRoles returns the ids of the roles (with every role they inherit)
// that subject s holds at now or will hold later through grants not yet
// expired: for a person, their own grants, their groups' and their orgs'
// up the tree; for a group, its own; for an org, its own and those of the
// orgs above it. Separation-of-duty checks use it.
func (x *Index) HeldRoles(s authz.Subject, now time.Time) map[string]bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t := now.UnixNano()
	out := map[string]bool{}
	add := func(gs []int32) { x.addHeldLocked(out, gs, t) }
	upOrgs := func(o *org) {
		for d := 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
			add(o.grants)
		}
	}
	switch s.Kind {
	case authz.SubjectUser:
		if p := x.people[s.ID]; p != nil {
			add(p.grants)
			for _, g := range p.groups {
				add(g.grants)
			}
			upOrgs(p.org)
		}
	case authz.SubjectGroup:
		if g := x.groups[s.ID]; g != nil {
			add(g.grants)
		}
	case authz.SubjectOrg:
		upOrgs(x.orgs[s.ID])
	}
	return out
}

// GroupMembers returns the members of group id as mirrored, sorted.
func (x *Index) GroupMembers(id string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	g := x.groups[id]
	if g == nil {
		return nil
	}
	out := make([]string, 0, len(g.members))
	for m := range g.members {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// PeopleUnder returns the people whose org is id or an org below it.
func (x *Index) PeopleUnder(id string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	target := x.orgs[id]
	if target == nil {
		return nil
	}
	var out []string
	for pid, p := range x.people {
		for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
			if o == target {
				out = append(out, pid)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}
