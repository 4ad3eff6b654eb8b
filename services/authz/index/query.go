package index

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/uias/uias/services/authz"
)

// DefaultURLOperation is the operation a Check by URL asks for when it
// names none.
const DefaultURLOperation = "access"

// Query is one question: may Person do Operation on Resource of App? A
// query may name a URL (Method and Path) instead of Resource: the most
// specific URL resource of the application matching both answers it.
type Query struct {
	Person    string
	App       string
	Resource  string
	Operation string
	Method    string
	Path      string
}

// resolve finds the resource and operation of q (nil if none).
func (x *Index) resolve(q Query) (*resNode, string) {
	op := q.Operation
	if q.Resource != "" {
		return x.resources[q.App][q.Resource], op
	}
	if op == "" {
		op = DefaultURLOperation
	}
	return x.matchURL(q.App, q.Method, q.Path), op
}

// Check answers q at time now, and the revision it was answered at.
func (x *Index) Check(q Query, now time.Time) (bool, int64) {
	x.rlock()
	defer x.mu.RUnlock()
	return x.checkLocked(q, now.UnixNano()), x.rev
}

func (x *Index) checkLocked(q Query, t int64) bool {
	res, op := x.resolve(q)
	if res == nil {
		return false
	}
	set := res.allowed(op)
	if len(set.ids) == 0 {
		return false
	}
	p := x.people[q.Person]
	if p == nil {
		return false
	}
	e := x.effOf(p)
	if set.meets(e.ids) {
		return true
	}
	return e.timed && x.holdsTimed(p, set, t)
}

// allowed is the set of roles allowing op on n (or on a resource above
// it); empty if n has no operation op.
func (n *resNode) allowed(op string) roleSet {
	for i, o := range n.r.Operations {
		if o == op {
			if i < len(n.allow) {
				return n.allow[i]
			}
			break
		}
	}
	return roleSet{}
}

// effOf returns p's effRoles, preparing them if the kept ones no longer
// hold. Called with the read lock held: concurrent checks of one person may
// prepare them twice, with the same result.
func (x *Index) effOf(p *person) *effRoles {
	if e := p.eff.Load(); e != nil && e.shape == x.shape {
		return e
	}
	if x.disabledLocked(p) {
		e := newEffRoles(0) // holds nothing, timed grants included
		e.shape = x.shape
		p.eff.Store(e)
		return e
	}
	n := len(p.roles)
	timed := len(p.timed) > 0
	for _, gr := range p.groups {
		n += len(gr.roles)
		timed = timed || len(gr.timed) > 0
	}
	for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		n += len(o.roles)
		timed = timed || len(o.timed) > 0
	}
	e := newEffRoles(n)
	e.shape = x.shape
	ids := e.ids[:0]
	ids = append(ids, p.roles...)
	for _, gr := range p.groups {
		ids = append(ids, gr.roles...)
	}
	for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		ids = append(ids, o.roles...)
	}
	if len(ids) > len(p.roles) {
		slices.Sort(ids)
		ids = slices.Compact(ids)
	}
	e.ids, e.timed = slices.Clip(ids), timed
	p.eff.Store(e)
	return e
}

// newEffRoles returns effRoles with room for n ids, in the same block of
// memory as the header when n is small (a check then reads it in one or two
// adjacent cache lines).
func newEffRoles(n int) *effRoles {
	switch {
	case n <= 6:
		b := &struct {
			effRoles
			buf [6]int32
		}{}
		b.ids = b.buf[:0:n]
		return &b.effRoles
	case n <= 14:
		b := &struct {
			effRoles
			buf [14]int32
		}{}
		b.ids = b.buf[:0:n]
		return &b.effRoles
	case n <= 30:
		b := &struct {
			effRoles
			buf [30]int32
		}{}
		b.ids = b.buf[:0:n]
		return &b.effRoles
	case n <= 62:
		b := &struct {
			effRoles
			buf [62]int32
		}{}
		b.ids = b.buf[:0:n]
		return &b.effRoles
	}
	return &effRoles{ids: make([]int32, 0, n)}
}

// holdsTimed reports whether a grant with a validity window (or of a role
// not known yet) reaching p, active at t, has a role in set.
func (x *Index) holdsTimed(p *person, set roleSet, t int64) bool {
	check := func(h *holder) bool {
		for _, gi := range h.timed {
			if g := x.node(gi); set.has(g.role) && g.activeAt(t) {
				return true
			}
		}
		return false
	}
	if check(&p.holder) {
		return true
	}
	for _, gr := range p.groups {
		if check(&gr.holder) {
			return true
		}
	}
	for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		if check(&o.holder) {
			return true
		}
	}
	return false
}

// holds returns the first active grant of p (directly, through a group or
// through the person's org or an org above it) whose role is in set (0 if
// none).
func (x *Index) holds(p *person, set roleSet, t int64) int32 {
	find := func(gs []int32) int32 {
		for _, gi := range gs {
			if g := x.node(gi); set.has(g.role) && g.scope == 0 && g.activeAt(t) {
				return gi
			}
		}
		return 0
	}
	if gi := find(p.grants); gi != 0 {
		return gi
	}
	for _, gr := range p.groups {
		if gi := find(gr.grants); gi != 0 {
			return gi
		}
	}
	for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		if gi := find(o.grants); gi != 0 {
			return gi
		}
	}
	return 0
}

// allGrants calls fn for every grant reaching p (active or not).
func (x *Index) allGrants(p *person, fn func(gi int32, g *grantNode)) {
	each := func(gs []int32) {
		for _, gi := range gs {
			fn(gi, x.node(gi))
		}
	}
	each(p.grants)
	for _, gr := range p.groups {
		each(gr.grants)
	}
	for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		each(o.grants)
	}
}

// Denial reasons of Explain.
const (
	WhyUnknownResource  = "UNKNOWN_RESOURCE"
	WhyUnknownOperation = "UNKNOWN_OPERATION"
	WhyNoRole           = "NO_ROLE"
	WhyNotGranted       = "NOT_GRANTED"
	WhyGrantInactive    = "GRANT_INACTIVE"
	WhyPersonDisabled   = "PERSON_DISABLED"
)

// Path is how a person holds a permission: the grant (to the person, a
// group of theirs, or their org or an org above it), the chain of roles from
// the granted role to the role holding the permission, and the permission
// (on the resource asked about or one above it).
type Path struct {
	Grant      authz.Grant
	Roles      []string
	Permission authz.Permission
}

// Explanation answers Explain.
type Explanation struct {
	Allowed   bool
	Revision  int64
	Resource  string // the resource the query resolved to ("" if none)
	Operation string
	Path      *Path
	// When denied: Reason (Why...) and Detail, a sentence; Inactive lists
	// grants that would allow it outside their validity window.
	Reason   string
	Detail   string
	Inactive []authz.Grant
}

// Explain answers q with the grant path that allows it, or why not.
func (x *Index) Explain(q Query, now time.Time) Explanation {
	x.rlock()
	defer x.mu.RUnlock()
	res, op := x.resolve(q)
	e := Explanation{Revision: x.rev, Operation: op}
	if res == nil {
		e.Reason = WhyUnknownResource
		if q.Resource != "" {
			e.Detail = "the application has no resource " + quote(q.Resource)
		} else {
			e.Detail = "no URL resource of the application matches " + q.Method + " " + quote(q.Path)
		}
		return e
	}
	e.Resource = res.r.Code
	if !slices.Contains(res.r.Operations, op) {
		e.Reason, e.Detail = WhyUnknownOperation, "resource "+quote(res.r.Code)+" has no operation "+quote(op)+
			" (it has: "+strings.Join(res.r.Operations, ", ")+")"
		return e
	}
	t := now.UnixNano()
	p := x.people[q.Person]
	if p != nil && x.disabledLocked(p) {
		e.Reason, e.Detail = WhyPersonDisabled, "the person, or an org above them, is disabled in identity: they hold nothing"
		if p.deleted {
			e.Detail = "the person was deleted in identity: they hold nothing"
		}
		return e
	}
	anyRole := false
	for r, d := res, 0; r != nil && d < maxOrgDepth; r, d = r.parent, d+1 {
		set := x.permRoles[permKey{r, op}]
		if !set.live() {
			continue
		}
		anyRole = true
		if p == nil {
			continue
		}
		if gi := x.holds(p, set, t); gi != 0 {
			e.Allowed = true
			e.Path = &Path{Grant: x.grantOf(gi), Permission: authz.Permission{App: r.r.App, Resource: r.r.Code, Operation: op}}
			if granted := x.roleTab[x.node(gi).role]; !granted.direct {
				e.Path.Roles = x.roleChain(granted, r, op)
			}
			return e
		}
		x.allGrants(p, func(gi int32, g *grantNode) {
			if set.has(g.role) && !g.activeAt(t) {
				e.Inactive = append(e.Inactive, x.grantOf(gi))
			}
		})
	}
	switch {
	case !anyRole:
		e.Reason, e.Detail = WhyNoRole, "no role holds "+quote(op)+" on "+quote(res.r.Code)+" or a resource above it"
	case len(e.Inactive) > 0:
		e.Reason, e.Detail = WhyGrantInactive, "the person holds a role or permission allowing it only through grants not in force now"
	default:
		var names []string
		for r, d := res, 0; r != nil && d < maxOrgDepth; r, d = r.parent, d+1 {
			for _, role := range x.permRoles[permKey{r, op}].nodes {
				switch {
				case role.direct && len(role.grants) == 0:
					// every direct grant of it revoked
				case role.direct:
					names = append(names, "a direct grant of "+role.r.Permissions[0].String())
				default:
					names = append(names, role.r.Code)
				}
			}
		}
		sort.Strings(names)
		names = slices.Compact(names)
		if len(names) > 10 {
			names = append(names[:10], "...")
		}
		e.Reason, e.Detail = WhyNotGranted, "the person holds none of the roles or direct grants allowing it ("+strings.Join(names, ", ")+")"
	}
	return e
}

// roleChain returns role ids from granted down to the role that holds
// (res, op) itself.
func (x *Index) roleChain(granted *roleNode, res *resNode, op string) []string {
	var path []string
	seen := map[*roleNode]bool{}
	var dfs func(n *roleNode) bool
	dfs = func(n *roleNode) bool {
		if n == nil || seen[n] || len(path) > 64 {
			return false
		}
		seen[n] = true
		path = append(path, n.r.ID)
		for _, p := range n.r.Permissions {
			if p.App == res.r.App && p.Resource == res.r.Code && p.Operation == op {
				return true
			}
		}
		for _, j := range n.r.Inherits {
			if dfs(x.roles[j]) {
				return true
			}
		}
		path = path[:len(path)-1]
		return false
	}
	dfs(granted)
	return path
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return "\"" + s + "\""
}

// ListPermissions returns every permission person holds in app at now
// (what the application needs to draw its menus): each (resource,
// operation) allowed, including resources covered through a permission on
// a resource above them, sorted by resource and operation.
func (x *Index) ListPermissions(person, app string, now time.Time) ([]authz.Permission, int64) {
	x.rlock()
	defer x.mu.RUnlock()
	return x.listPermissionsLocked(person, app, now), x.rev
}

// ListPermissionsAndRoles returns ListPermissions and ListRoles of person
// in app at now, both at the one revision returned.
func (x *Index) ListPermissionsAndRoles(person, app string, now time.Time) ([]authz.Permission, []authz.Role, int64) {
	x.rlock()
	defer x.mu.RUnlock()
	return x.listPermissionsLocked(person, app, now), x.listRolesLocked(person, app, now), x.rev
}

// listRolesLocked returns the roles of app person holds at now: the roles of
// their grants in force (directly, through a group, or through their org
// or an org above it; not the administrator grants scoped to an org), and
// the junior roles those inherit, that belong to app (a global role, or
// another application's, is not listed even when it holds permissions in
// app: ListPermissions has those), sorted by code, without their
// permissions and inherited roles (ListPermissionsAndRoles).
func (x *Index) listRolesLocked(person, app string, now time.Time) []authz.Role {
	p := x.people[person]
	if p == nil || x.disabledLocked(p) || app == "" {
		return nil
	}
	t := now.UnixNano()
	seen := map[*roleNode]bool{}
	var out []authz.Role
	var walk func(n *roleNode, depth int)
	walk = func(n *roleNode, depth int) {
		if n == nil || seen[n] || depth > 64 {
			return
		}
		seen[n] = true
		// A node without an id is no role of the model (a direct grant of
		// a permission is kept as one, G13): never listed as a role.
		if !n.gone && n.r.App == app && n.r.ID != "" {
			out = append(out, authz.Role{ID: n.r.ID, App: n.r.App, Code: n.r.Code, Name: n.r.Name})
		}
		for _, j := range n.r.Inherits {
			walk(x.roles[j], depth+1)
		}
	}
	x.allGrants(p, func(_ int32, g *grantNode) {
		if !g.activeAt(t) || g.scope != 0 || g.role == 0 {
			return
		}
		walk(x.roleTab[g.role], 0)
	})
	slices.SortFunc(out, func(a, b authz.Role) int {
		if c := strings.Compare(a.Code, b.Code); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (x *Index) listPermissionsLocked(person, app string, now time.Time) []authz.Permission {
	p := x.people[person]
	if p == nil || x.disabledLocked(p) {
		return nil
	}
	t := now.UnixNano()
	held := map[permKey]bool{}
	seenRole := map[int32]bool{}
	x.allGrants(p, func(_ int32, g *grantNode) {
		if !g.activeAt(t) || g.scope != 0 || seenRole[g.role] || g.role == 0 {
			return
		}
		seenRole[g.role] = true
		for _, pk := range x.effectivePermsLocked(x.roleTab[g.role]) {
			if pk.res.r.App == app {
				held[pk] = true
			}
		}
	})
	var out []authz.Permission
	if len(held) == 0 {
		return nil
	}
	for _, n := range x.resources[app] {
		for _, op := range n.r.Operations {
			for r, d := n, 0; r != nil && d < maxOrgDepth; r, d = r.parent, d+1 {
				if held[permKey{r, op}] {
					out = append(out, authz.Permission{App: app, Resource: n.r.Code, Operation: op})
					break
				}
			}
		}
	}
	sortPerms(out)
	return out
}

func sortPerms(ps []authz.Permission) {
	slices.SortFunc(ps, func(a, b authz.Permission) int {
		if c := strings.Compare(a.Resource, b.Resource); c != 0 {
			return c
		}
		return strings.Compare(a.Operation, b.Operation)
	})
}

// SubjectGrant is one answer of ListSubjects: a subject holding a grant
// whose role allows the operation, or a direct grant of a permission that
// does (Grant.Permission).
type SubjectGrant struct {
	Subject authz.Subject
	Grant   authz.Grant
}

// ListSubjects returns who may do op on resource of app at now: the
// subjects (people, groups, orgs with their subtrees) holding an active
// grant of a role that allows it, sorted by subject then grant id.
func (x *Index) ListSubjects(app, resource, op string, now time.Time) ([]SubjectGrant, int64) {
	x.rlock()
	defer x.mu.RUnlock()
	res := x.resources[app][resource]
	if res == nil || !slices.Contains(res.r.Operations, op) {
		return nil, x.rev
	}
	t := now.UnixNano()
	seen := map[int32]bool{}
	var out []SubjectGrant
	for r, d := res, 0; r != nil && d < maxOrgDepth; r, d = r.parent, d+1 {
		for _, role := range x.permRoles[permKey{r, op}].nodes {
			for _, gi := range role.grants {
				if !seen[gi] && x.node(gi).activeAt(t) {
					seen[gi] = true
					g := x.grantOf(gi)
					out = append(out, SubjectGrant{Subject: g.Subject, Grant: g})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b SubjectGrant) int {
		if c := strings.Compare(a.Subject.String(), b.Subject.String()); c != 0 {
			return c
		}
		return strings.Compare(a.Grant.ID, b.Grant.ID)
	})
	return out, x.rev
}

// ---- URL matching ----

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return []string{}
	}
	return strings.Split(p, "/")
}

// matchURL returns the most specific URL resource of app whose method and
// pattern match (most literal segments, then longest pattern, then code).
func (x *Index) matchURL(app, method, path string) *resNode {
	segs := splitPath(path)
	var best *resNode
	bestLit, bestLen := -1, -1
	for _, n := range x.urls[app] {
		if n.r.Method != "" && n.r.Method != "*" && !strings.EqualFold(n.r.Method, method) {
			continue
		}
		lit, ok := matchSegments(n.segments, segs)
		if !ok {
			continue
		}
		if lit > bestLit || (lit == bestLit && len(n.segments) > bestLen) {
			best, bestLit, bestLen = n, lit, len(n.segments)
		}
	}
	return best
}

// matchSegments matches a pattern ("*" or "{name}" = one segment, a final
// "**" = zero or more) and returns the number of literal segments matched.
func matchSegments(pat, segs []string) (int, bool) {
	lit := 0
	for i, p := range pat {
		if p == "**" && i == len(pat)-1 {
			return lit, true
		}
		if i >= len(segs) {
			return 0, false
		}
		switch {
		case p == "*" || (strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}")):
		case p == segs[i]:
			lit++
		default:
			return 0, false
		}
	}
	return lit, len(pat) == len(segs)
}

// BatchCheck answers every query at one revision (one read lock).
func (x *Index) BatchCheck(qs []Query, now time.Time) ([]bool, int64) {
	x.rlock()
	defer x.mu.RUnlock()
	out := make([]bool, len(qs))
	for i, q := range qs {
		out[i] = x.checkLocked(q, now.UnixNano())
	}
	return out, x.rev
}
