// Package index is the in-memory authorization index of one replica: every
// resource, role, exclusion and grant of the authz store (applied change by
// change, in revision order), and a mirror of what identity owns and
// authorization needs (which org each person is in, the org tree, group
// members), fed by identity's CHANGES events. Queries read it under a read
// lock; it does no I/O.
package index

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/uias/uias/services/authz"
)

// maxOrgDepth bounds walks up the org tree (identity forbids cycles; the
// bound keeps a corrupt mirror from looping).
const maxOrgDepth = 64

type permKey struct {
	res *resNode
	op  string
}

type resNode struct {
	r        authz.Resource
	parent   *resNode // resolved at rebuild; nil for a root or a missing parent
	segments []string // of PathPattern, for URL resources
	// allow[i]: the roles allowing r.Operations[i] on this resource or on
	// one above it (derived data: Check's one set to look for).
	allow []roleSet
}

type roleNode struct {
	r   authz.Role
	idx int32
	// grants: every grant of the role (ListSubjects, RoleUsers); a grant's
	// rpos is its place here.
	grants []*grantNode
}

func (r *roleNode) addGrant(g *grantNode) {
	g.rpos = len(r.grants)
	r.grants = append(r.grants, g)
}

func (r *roleNode) removeGrant(g *grantNode) {
	i := g.rpos
	if i >= len(r.grants) || r.grants[i] != g {
		return
	}
	last := len(r.grants) - 1
	r.grants[i] = r.grants[last]
	r.grants[i].rpos = i
	r.grants[last] = nil
	r.grants = r.grants[:last]
}

type grantNode struct {
	g           authz.Grant
	role        *roleNode
	from, until int64 // unix nanoseconds; 0 = unbounded
	rpos        int
}

func (g *grantNode) activeAt(now int64) bool {
	return (g.from == 0 || now >= g.from) && (g.until == 0 || now < g.until)
}

// holder is anything grants are made to: a person, a group, an org.
// Besides its grants it keeps, for Check, the role numbers of its
// grants without a validity window as a sorted slice (compact, so a check
// touches few cache lines) and its other grants apart.
type holder struct {
	grants []*grantNode
	roles  []int32
	timed  []*grantNode
}

// scoped grants (administrator roles over an org subtree) count only for
// CheckAdmin, never for Check: they are in grants only.
func (h *holder) add(g *grantNode) {
	h.grants = append(h.grants, g)
	if g.g.ScopeOrg != "" {
		return
	}
	if g.from != 0 || g.until != 0 || g.role.idx < 0 {
		h.timed = append(h.timed, g)
		return
	}
	i, _ := slices.BinarySearch(h.roles, g.role.idx)
	h.roles = slices.Insert(h.roles, i, g.role.idx)
}

func (h *holder) remove(g *grantNode) {
	if i := slices.Index(h.grants, g); i >= 0 {
		h.grants = slices.Delete(h.grants, i, i+1)
	}
	if g.g.ScopeOrg != "" {
		return
	}
	if i := slices.Index(h.timed, g); i >= 0 {
		h.timed = slices.Delete(h.timed, i, i+1)
		return
	}
	if i, ok := slices.BinarySearch(h.roles, g.role.idx); ok {
		h.roles = slices.Delete(h.roles, i, i+1)
	}
}

type person struct {
	// eff: what Check looks at, prepared on the person's first check and
	// kept while it holds (see effRoles); nil when the person's own grants,
	// groups or org changed. First, so that a check reads one line of the
	// person.
	eff atomic.Pointer[effRoles]
	holder
	org    *org
	groups []*group
	id     string
	// adminFlag: identity's legacy is_admin flag (a system administrator).
	adminFlag bool
}

// effRoles is, for Check, every role reaching a person through a grant
// without a validity window, to the person, a group of theirs, or their org
// or an org above it, as one sorted slice: a check then reads one slice
// instead of walking the person's groups and org chain. It holds while the
// index's shape is the one it was prepared at (shape moves with any change
// of a group's or an org's grants, of the org tree, or of which role a
// grant points at); a change of the person's own grants, groups or org
// drops it. timed: some grant reaching the person has a validity window
// (or a role not known yet); Check then also walks those.
type effRoles struct {
	shape uint64
	ids   []int32
	timed bool
}

type group struct {
	holder
	id      string
	members map[string]bool
	org     *org
}

type org struct {
	holder
	parent *org
	id     string
}

// Index is the replica's view. The zero value is not usable; use New.
type Index struct {
	mu  sync.RWMutex
	rev int64
	// gen moves (under the write lock) with every change of what answers
	// depend on: authz's own changes and identity's mirror alike. A
	// decision computed after reading gen is at least that fresh
	// (adminauth's decision cache in the same process keys on it).
	gen atomic.Uint64

	resources  map[string]map[string]*resNode // app -> code
	urls       map[string][]*resNode
	roles      map[string]*roleNode
	roleByCode map[string]*roleNode // app \x00 code
	nextRole   int32
	exclusions map[string]*authz.Exclusion
	grants     map[string]*grantNode
	// pending: grants whose role node is not the role of their id in
	// roles (unknown when they came, or deleted since): the next derived
	// rebuild points them at the role once it exists.
	pending map[*grantNode]struct{}
	// fresh: a snapshot load into an index without grants is under way
	// (ReserveGrants until SetRevision): the grants it puts are new (the
	// store holds each id once), so a put does not look for an old one.
	fresh bool
	// slab: grant nodes are allocated in blocks (a load makes a million).
	slab []grantNode
	// loadIDs: the ids of grants put by a snapshot load are copied into
	// blocks (loadedID), not kept as a million small strings: fewer
	// objects for every GC cycle to mark.
	loadIDs strings.Builder

	people map[string]*person
	groups map[string]*group
	orgs   map[string]*org

	// shape moves (under the write lock) with every change that may alter
	// the effRoles of people other than one named person: grants to groups
	// and orgs, the org tree, grants moved to another role node.
	shape uint64

	// permRoles: for each (resource, operation) declared in some role, the
	// roles holding it directly or through inheritance. Rebuilt when roles
	// or resources change (derivedDirty), before the next query.
	permRoles    map[permKey]roleSet
	derivedDirty bool
}

// New returns an empty index at revision 0.
func New() *Index {
	return &Index{
		resources: map[string]map[string]*resNode{}, urls: map[string][]*resNode{}, roles: map[string]*roleNode{},
		roleByCode: map[string]*roleNode{}, exclusions: map[string]*authz.Exclusion{}, grants: map[string]*grantNode{},
		pending: map[*grantNode]struct{}{}, people: map[string]*person{}, groups: map[string]*group{},
		orgs: map[string]*org{}, permRoles: map[permKey]roleSet{},
	}
}

// Revision is the revision of the last change applied.
func (x *Index) Revision() int64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.rev
}

// Generation is a number that moves whenever anything a query depends on
// changes (an applied change, a revision set after a load, identity's org
// tree, people's orgs, group members). It is cheap (one atomic load): a
// cache of answers taken at generation g is fresh while Generation() == g.
func (x *Index) Generation() uint64 { return x.gen.Load() }

// ErrGap reports a change that does not follow the index's revision: the
// caller reads the missing changes from the store first.
type ErrGap struct{ Have, Got int64 }

func (e ErrGap) Error() string {
	return fmt.Sprintf("authz index: change of revision %d does not follow revision %d", e.Got, e.Have)
}

// Apply applies changes in order. A change at or below the index's
// revision is skipped (already applied); one beyond the next revision stops
// with ErrGap. Changes with Rev 0 (a snapshot load) are applied as they
// come; SetRevision then fixes the revision.
func (x *Index) Apply(chs ...authz.Change) error {
	ps := make([]Prepared, len(chs))
	for i, c := range chs {
		ps[i] = Prepare(c)
	}
	return x.ApplyPrepared(ps...)
}

// Prepared is a change with its data decoded (Prepare), ready for
// ApplyPrepared: decoding takes no lock, so a load decodes in parallel.
type Prepared struct {
	c authz.Change
	// grant is the grant of a grant put (kept here, not in v: a load
	// prepares a million); v is any other object put: authz.Resource,
	// authz.Role or authz.Exclusion.
	grant authz.Grant
	v     any
	err   error
}

// Prepare decodes c.
func Prepare(c authz.Change) Prepared {
	var p Prepared
	(*Decoder)(nil).PrepareInto(&p, c)
	return p
}

// PrepareInto decodes c into p (which it overwrites), with d's strings. The
// prepared change does not refer to c.Data: the caller may reuse it.
func (d *Decoder) PrepareInto(p *Prepared, c authz.Change) {
	*p = Prepared{c: c}
	p.c.Data = nil
	if c.Op != authz.OpPut {
		return
	}
	switch c.Obj {
	case authz.ObjResource:
		var r authz.Resource
		p.err = json.Unmarshal(c.Data, &r)
		p.v = r
	case authz.ObjRole:
		var r authz.Role
		p.err = json.Unmarshal(c.Data, &r)
		p.v = r
	case authz.ObjGrant:
		p.err = decodeGrantInto(&p.grant, c.Data, c.ID, d)
	case authz.ObjExclusion:
		var e authz.Exclusion
		p.err = json.Unmarshal(c.Data, &e)
		p.v = e
	default:
		p.err = fmt.Errorf("unknown change %s.%s", c.Obj, c.Op)
	}
}

// ApplyPrepared is Apply of prepared changes.
func (x *Index) ApplyPrepared(ps ...Prepared) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	for i := range ps {
		c := ps[i].c
		if c.Rev != 0 {
			x.fresh = false
			if c.Rev <= x.rev {
				continue
			}
			if c.Rev != x.rev+1 {
				return ErrGap{Have: x.rev, Got: c.Rev}
			}
		}
		if err := x.applyLocked(&ps[i]); err != nil {
			return fmt.Errorf("authz index: revision %d: %w", c.Rev, err)
		}
		if c.Rev != 0 {
			x.rev = c.Rev
		}
	}
	return nil
}

// ReserveGrants makes room for n more grants (a snapshot load knows how
// many come): the grant map is sized once instead of growing step by step.
func (x *Index) ReserveGrants(n int) {
	if n <= 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.fresh = len(x.grants) == 0
	m := make(map[string]*grantNode, len(x.grants)+n)
	for k, v := range x.grants {
		m[k] = v
	}
	x.grants = m
}

// SetRevision sets the revision after a snapshot load.
func (x *Index) SetRevision(rev int64) {
	x.mu.Lock()
	x.fresh = false
	x.rev = rev
	x.gen.Add(1)
	x.mu.Unlock()
}

func (x *Index) applyLocked(p *Prepared) error {
	if p.err != nil {
		return p.err
	}
	c := p.c
	switch c.Op {
	case authz.OpPut:
		if c.Obj == authz.ObjGrant {
			g := p.grant
			if c.Rev == 0 {
				g.ID = x.loadedID(g.ID)
			}
			x.putGrant(g)
			return nil
		}
		switch v := p.v.(type) {
		case authz.Resource:
			x.putResource(v)
		case authz.Role:
			x.putRole(v)
		case authz.Grant:
			x.putGrant(v)
		case authz.Exclusion:
			x.exclusions[v.ID] = &v
		default:
			return fmt.Errorf("unknown change %s.%s", c.Obj, c.Op)
		}
	case authz.OpDelete:
		switch c.Obj {
		case authz.ObjResource:
			x.deleteResource(c.ID)
		case authz.ObjRole:
			x.deleteRole(c.ID)
		case authz.ObjGrant:
			x.deleteGrant(c.ID)
		case authz.ObjExclusion:
			delete(x.exclusions, c.ID)
		default:
			return fmt.Errorf("unknown change %s.%s", c.Obj, c.Op)
		}
	default:
		return fmt.Errorf("unknown change %s.%s", c.Obj, c.Op)
	}
	return nil
}

// ResourceID is the store id of the resource app/code (codes hold no '/').
func ResourceID(app, code string) string { return app + "/" + code }

// SplitResourceID splits a ResourceID.
func SplitResourceID(id string) (app, code string) {
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return "", id
	}
	return id[:i], id[i+1:]
}

func (x *Index) putResource(r authz.Resource) {
	app := x.resources[r.App]
	if app == nil {
		app = map[string]*resNode{}
		x.resources[r.App] = app
	}
	n := app[r.Code]
	if n == nil {
		n = &resNode{}
		app[r.Code] = n
	}
	n.r = r
	n.segments = nil
	if r.Kind == authz.KindURL && r.PathPattern != "" {
		n.segments = splitPath(r.PathPattern)
	}
	x.reindexURLs(r.App)
	x.derivedDirty = true
}

func (x *Index) deleteResource(id string) {
	app, code := SplitResourceID(id)
	if _, ok := x.resources[app][code]; !ok {
		return
	}
	delete(x.resources[app], code)
	if len(x.resources[app]) == 0 {
		delete(x.resources, app)
	}
	x.reindexURLs(app)
	x.derivedDirty = true
}

func (x *Index) reindexURLs(app string) {
	var out []*resNode
	for _, n := range x.resources[app] {
		if n.segments != nil {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *resNode) int { return strings.Compare(a.r.Code, b.r.Code) })
	if len(out) == 0 {
		delete(x.urls, app)
		return
	}
	x.urls[app] = out
}

func (x *Index) putRole(r authz.Role) {
	n := x.roles[r.ID]
	if n == nil {
		x.nextRole++
		n = &roleNode{idx: x.nextRole}
		x.roles[r.ID] = n
	} else {
		delete(x.roleByCode, n.r.App+"\x00"+n.r.Code)
	}
	n.r = r
	x.roleByCode[r.App+"\x00"+r.Code] = n
	x.derivedDirty = true
}

func (x *Index) deleteRole(id string) {
	n := x.roles[id]
	if n == nil {
		return
	}
	delete(x.roles, id)
	delete(x.roleByCode, n.r.App+"\x00"+n.r.Code)
	for _, g := range n.grants {
		x.pending[g] = struct{}{}
	}
	x.derivedDirty = true
}

func (x *Index) holderOf(s authz.Subject) *holder {
	h, _, _ := x.holderOfGrant(s)
	return h
}

// holderOfGrant is holderOf, and for a person the person, whose prepared
// roles a change of their grants drops, and the holder's id as the index
// keeps it.
func (x *Index) holderOfGrant(s authz.Subject) (*holder, *person, string) {
	switch s.Kind {
	case authz.SubjectUser:
		p := x.personOf(s.ID)
		return &p.holder, p, p.id
	case authz.SubjectGroup:
		g := x.groupOf(s.ID)
		return &g.holder, nil, g.id
	case authz.SubjectOrg:
		o := x.orgOf(s.ID)
		return &o.holder, nil, o.id
	}
	return nil, nil, ""
}

func (x *Index) personOf(id string) *person {
	p := x.people[id]
	if p == nil {
		p = &person{id: id}
		x.people[id] = p
	}
	return p
}

func (x *Index) groupOf(id string) *group {
	g := x.groups[id]
	if g == nil {
		g = &group{id: id, members: map[string]bool{}}
		x.groups[id] = g
	}
	return g
}

func (x *Index) orgOf(id string) *org {
	o := x.orgs[id]
	if o == nil {
		o = &org{id: id}
		x.orgs[id] = o
	}
	return o
}

func (x *Index) putGrant(g authz.Grant) {
	if !x.fresh {
		x.deleteGrant(g.ID)
	}
	role := x.roles[g.Role]
	if role == nil {
		// The store refuses grants of unknown roles; a grant whose role is
		// not (yet) known is kept out of queries.
		role = &roleNode{r: authz.Role{ID: g.Role}, idx: -1}
	} else {
		g.Role = role.r.ID // one copy of the id for all its grants
	}
	if len(x.slab) == 0 {
		x.slab = make([]grantNode, 1024)
	}
	n := &x.slab[0]
	x.slab = x.slab[1:]
	h, p, id := x.holderOfGrant(g.Subject)
	if h != nil {
		g.Subject.ID = id // one copy of the id for all the holder's grants
	}
	*n = grantNode{g: g, role: role}
	if role.idx < 0 {
		x.pending[n] = struct{}{}
	}
	if !g.ValidFrom.IsZero() {
		n.from = g.ValidFrom.UnixNano()
	}
	if !g.ValidUntil.IsZero() {
		n.until = g.ValidUntil.UnixNano()
	}
	x.grants[g.ID] = n
	if h != nil {
		h.add(n)
		x.holderChanged(p)
	}
	role.addGrant(n)
}

// loadedID returns a copy of the id of a grant put by a snapshot load
// (changes without a revision) in the current block of loadIDs, which a
// load fills with a few thousand ids each: a million grants then hold their
// ids in a few hundred objects instead of a million, which every GC cycle
// would mark one by one. A block lives while one of its ids does; only
// loads fill blocks (a live change keeps its own string), so the ids of
// grants deleted since waste at most the load's blocks.
func (x *Index) loadedID(id string) string {
	const block = 64 << 10
	if len(id) > 256 {
		return id
	}
	if x.loadIDs.Cap()-x.loadIDs.Len() < len(id) {
		x.loadIDs = strings.Builder{}
		x.loadIDs.Grow(block)
	}
	n := x.loadIDs.Len()
	x.loadIDs.WriteString(id)
	// the builder's string shares its buffer, which only grows in place
	// (never past the capacity reserved above): earlier ids stay valid
	return x.loadIDs.String()[n:]
}

// holderChanged drops what Check prepared from the grants of a holder:
// person p's, or (p nil) a group's or an org's, which may reach anyone.
func (x *Index) holderChanged(p *person) {
	if p != nil {
		p.eff.Store(nil)
		return
	}
	x.shape++
}

func (x *Index) deleteGrant(id string) {
	n := x.grants[id]
	if n == nil {
		return
	}
	delete(x.grants, id)
	if h, p, _ := x.holderOfGrant(n.g.Subject); h != nil {
		h.remove(n)
		x.holderChanged(p)
	}
	n.role.removeGrant(n)
	delete(x.pending, n)
}

// ---- identity mirror ----

// SetOrgParent records that org id sits under parent ("" for a root).
func (x *Index) SetOrgParent(id, parent string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	o := x.orgOf(id)
	x.shape++
	if parent == "" {
		o.parent = nil
		return
	}
	o.parent = x.orgOf(parent)
}

// SetUserOrg records the org of person id.
func (x *Index) SetUserOrg(id, orgID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	p := x.personOf(id)
	p.eff.Store(nil)
	if orgID == "" {
		p.org = nil
		return
	}
	p.org = x.orgOf(orgID)
}

// SetGroupMember adds or removes person user from group id.
func (x *Index) SetGroupMember(id, user string, member bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	g := x.groupOf(id)
	p := x.personOf(user)
	p.eff.Store(nil)
	i := slices.Index(p.groups, g)
	switch {
	case member && i < 0:
		p.groups = append(p.groups, g)
		g.members[user] = true
	case !member && i >= 0:
		p.groups = slices.Delete(p.groups, i, i+1)
		delete(g.members, user)
	}
}

// SetGroupOrg records the org of group id.
func (x *Index) SetGroupOrg(id, orgID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	g := x.groupOf(id)
	if orgID == "" {
		g.org = nil
		return
	}
	g.org = x.orgOf(orgID)
}

// GroupOrg returns the org of a group as mirrored ("" if unknown).
func (x *Index) GroupOrg(id string) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if g := x.groups[id]; g != nil && g.org != nil {
		return g.org.id
	}
	return ""
}

// OrgAncestors returns org id and its ancestors, nearest first.
func (x *Index) OrgAncestors(id string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	for o, d := x.orgs[id], 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		out = append(out, o.id)
	}
	if len(out) == 0 && id != "" {
		out = []string{id}
	}
	return out
}

// UserOrg returns the org of a person as mirrored ("" if unknown).
func (x *Index) UserOrg(id string) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if p := x.people[id]; p != nil && p.org != nil {
		return p.org.id
	}
	return ""
}

// ---- derived data ----

// ensureDerived rebuilds permRoles if roles or resources changed. Called
// with the write lock held.
func (x *Index) ensureDerivedLocked() {
	if !x.derivedDirty {
		return
	}
	for _, app := range x.resources {
		for _, n := range app {
			n.parent = nil
			if n.r.Parent != "" {
				n.parent = app[n.r.Parent]
			}
		}
	}
	// Grants whose role arrived after them (or was deleted and put
	// again) point at placeholders.
	for g := range x.pending {
		r := x.roles[g.g.Role]
		if r == nil {
			continue
		}
		if r != g.role {
			g.role.removeGrant(g)
			h := x.holderOf(g.g.Subject)
			h.remove(g)
			g.role = r
			g.g.Role = r.r.ID
			h.add(g)
			r.addGrant(g)
			x.shape++
		}
		delete(x.pending, g)
	}
	raw := make(map[permKey][]*roleNode, len(x.permRoles))
	for _, r := range x.roles {
		for _, p := range x.effectivePermsLocked(r) {
			raw[p] = append(raw[p], r)
		}
	}
	pr := make(map[permKey]roleSet, len(raw))
	for k, set := range raw {
		slices.SortFunc(set, func(a, b *roleNode) int { return int(a.idx - b.idx) })
		set = slices.Compact(set)
		ids := make([]int32, len(set))
		for i, r := range set {
			ids[i] = r.idx
		}
		pr[k] = roleSet{nodes: set, ids: ids}
	}
	x.permRoles = pr
	for _, app := range x.resources {
		for _, n := range app {
			n.allow = make([]roleSet, len(n.r.Operations))
			for i, op := range n.r.Operations {
				var ids []int32
				for r, d := n, 0; r != nil && d < maxOrgDepth; r, d = r.parent, d+1 {
					ids = append(ids, pr[permKey{r, op}].ids...)
				}
				slices.Sort(ids)
				n.allow[i] = roleSet{ids: slices.Compact(ids)}
			}
		}
	}
	x.derivedDirty = false
}

// effectivePermsLocked lists the permissions of r and of every role it
// inherits (each once), resolved to resource nodes.
func (x *Index) effectivePermsLocked(r *roleNode) []permKey {
	var out []permKey
	seen := map[*roleNode]bool{}
	var walk func(n *roleNode, depth int)
	walk = func(n *roleNode, depth int) {
		if n == nil || seen[n] || depth > 64 {
			return
		}
		seen[n] = true
		for _, p := range n.r.Permissions {
			if res := x.resources[p.App][p.Resource]; res != nil {
				out = append(out, permKey{res, p.Operation})
			}
		}
		for _, j := range n.r.Inherits {
			walk(x.roles[j], depth+1)
		}
	}
	walk(r, 0)
	return out
}

// rlock takes the read lock with the derived data up to date.
func (x *Index) rlock() {
	x.mu.RLock()
	if !x.derivedDirty {
		return
	}
	x.mu.RUnlock()
	x.mu.Lock()
	x.ensureDerivedLocked()
	x.mu.Unlock()
	x.mu.RLock()
	// A change may have slipped in between; queries then see the previous
	// derived data for one call at most, which is consistent with its own
	// revision only after the next rebuild. Rebuild again if so.
	for x.derivedDirty {
		x.mu.RUnlock()
		x.mu.Lock()
		x.ensureDerivedLocked()
		x.mu.Unlock()
		x.mu.RLock()
	}
}

// Rebuild brings the derived data up to date now (e.g. after a snapshot
// load, so that the first query does not pay for it).
func (x *Index) Rebuild() {
	x.mu.Lock()
	x.ensureDerivedLocked()
	x.mu.Unlock()
}

// roleSet is the roles holding a permission, sorted by number.
type roleSet struct {
	nodes []*roleNode
	ids   []int32
}

func (s roleSet) has(r *roleNode) bool {
	_, ok := slices.BinarySearch(s.ids, r.idx)
	return ok && r.idx >= 0
}

// meets reports whether sorted ids and s share a role: a merge of the two
// sorted slices, or binary searches of the shorter in the much longer.
func (s roleSet) meets(ids []int32) bool {
	a, b := ids, s.ids
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(a) == 0 || a[len(a)-1] < b[0] || b[len(b)-1] < a[0] {
		return false
	}
	if len(a)*8 < len(b) {
		for _, v := range a {
			if _, ok := slices.BinarySearch(b, v); ok {
				return true
			}
		}
		return false
	}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch av, bv := a[i], b[j]; {
		case av == bv:
			return true
		case av < bv:
			i++
		default:
			j++
		}
	}
	return false
}
