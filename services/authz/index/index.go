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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	r authz.Role
	// idx: the role's number (its place in Index.roleTab; Check's role
	// sets hold numbers). Never reused: a role deleted and put again gets a
	// new one.
	idx int32
	// gone: deleted (grants may still refer to it until they move to the
	// role put again, or are deleted).
	gone bool
	// direct: not a role of the model but the node of the direct grants
	// of one permission (Index.direct; r holds only that permission, r.ID
	// is ""): Check, ListPermissions, ListSubjects and Explain find direct
	// grants through the same role sets as grants of roles.
	direct bool
	// grants: every grant of the role (ListSubjects, RoleUsers), as grant
	// node numbers; a grant's rpos is its place here.
	grants []int32
}

func (r *roleNode) addGrant(gi int32, g *grantNode) {
	g.rpos = int32(len(r.grants))
	r.grants = append(r.grants, gi)
}

// unlinkRole takes grant gi out of its role's list of grants.
func (x *Index) unlinkRole(gi int32, g *grantNode) {
	if g.role == 0 {
		return
	}
	r := x.roleTab[g.role]
	i := int(g.rpos)
	if i >= len(r.grants) || r.grants[i] != gi {
		return
	}
	last := len(r.grants) - 1
	moved := r.grants[last]
	r.grants[i] = moved
	x.node(moved).rpos = int32(i)
	r.grants = r.grants[:last]
	if r.gone && len(r.grants) == 0 {
		x.roleTab[r.idx] = nil
	}
}

// grantNode is a grant as the index keeps it: without a single Go pointer,
// so that the blocks holding a million of them are never scanned by the
// garbage collector (each GC cycle used to follow some eight pointers a
// grant: its strings, its role, and the grant map's key and value). Its
// role and subject are numbers (Index.roleTab, Index.holderTab), its times
// integers, its id a place in the id blocks (Index.ids), its scope org and
// creator numbers in Index.strs, its grantable roles a number in
// Index.lists. Index.grantOf makes the authz.Grant again, the same as was
// put; a grant this form cannot hold exactly (a time in a zone other than
// UTC or Local, or outside the years 1678-2262; a subject of an unknown
// kind) is kept whole in Index.odd besides.
type grantNode struct {
	from, until int64 // unix nanoseconds; 0 = unbounded
	created     int64 // CreatedAt, unix nanoseconds (zone zoneNone: zero)
	id          idRef
	// role: the role's number (Index.roleTab); 0 for a role not known
	// (yet): Index.pending holds the role id it waits for.
	role int32
	// holder: the subject (Index.holderTab); 0 for a subject of a kind
	// the index does not know.
	holder    int32
	rpos      int32 // place in the role's grants
	scope     int32 // ScopeOrg, in Index.strs (0: "")
	createdBy int32 // in Index.strs
	grantable int32 // in Index.lists (0: nil)
	flags     uint8
	// zones of ValidFrom, ValidUntil, CreatedAt.
	zones [3]uint8
}

const (
	flagDelegable = 1 << iota
	// flagOdd: the grant is kept whole in Index.odd.
	flagOdd
)

// Zones of a grant's times (grantNode.zones).
const (
	zoneNone  = iota // the zero time
	zoneUTC          // UTC (as the JSON "Z" decodes)
	zoneLocal        // time.Local
)

func (g *grantNode) activeAt(now int64) bool {
	return (g.from == 0 || now >= g.from) && (g.until == 0 || now < g.until)
}

// notEndedAt reports whether g is in force at now or will be (a grant
// dated in the future).
func (g *grantNode) notEndedAt(now int64) bool { return g.until == 0 || now < g.until }

// nodeBlock is the number of grant nodes allocated together.
const nodeBlock = 1024

// node returns grant node gi.
func (x *Index) node(gi int32) *grantNode {
	return &x.nodes[gi/nodeBlock][gi%nodeBlock]
}

// newNode returns the number of an unused, zeroed node (never 0).
func (x *Index) newNode() int32 {
	if n := len(x.freeNodes); n > 0 {
		gi := x.freeNodes[n-1]
		x.freeNodes = x.freeNodes[:n-1]
		return gi
	}
	if x.nextNode%nodeBlock == 0 {
		x.nodes = append(x.nodes, new([nodeBlock]grantNode))
	}
	gi := x.nextNode
	x.nextNode++
	return gi
}

// timeOf encodes t as unix nanoseconds and a zone; ok is false when that
// would not make t again exactly.
func timeOf(t time.Time) (ns int64, zone uint8, ok bool) {
	if t.IsZero() {
		return 0, zoneNone, true
	}
	switch t.Location() {
	case time.UTC:
		zone = zoneUTC
	case time.Local:
		zone = zoneLocal
	default:
		return 0, 0, false
	}
	ns = t.UnixNano()
	// ==, not Equal: the same instant is not enough, the grant read back
	// must be the same value (location, no monotonic reading).
	return ns, zone, t == makeTime(ns, zone) //nolint:staticcheck // QF1009: exact value wanted
}

func makeTime(ns int64, zone uint8) time.Time {
	switch zone {
	case zoneUTC:
		return time.Unix(0, ns).UTC()
	case zoneLocal:
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// holder is anything grants are made to: a person, a group, an org.
// Besides its grants it keeps, for Check, the role numbers of its
// grants without a validity window as a sorted slice (compact, so a check
// touches few cache lines) and its other grants apart. Grants are node
// numbers (Index.node).
type holder struct {
	grants []int32
	roles  []int32
	timed  []int32
	kind   authz.SubjectKind
	id     string
	slot   int32 // place in Index.holderTab
}

// scoped grants (administrator roles over an org subtree) count only for
// CheckAdmin, never for Check: they are in grants only.
func (h *holder) add(gi int32, g *grantNode) {
	h.grants = append(h.grants, gi)
	if g.scope != 0 {
		return
	}
	if g.from != 0 || g.until != 0 || g.role == 0 {
		h.timed = append(h.timed, gi)
		return
	}
	i, _ := slices.BinarySearch(h.roles, g.role)
	h.roles = slices.Insert(h.roles, i, g.role)
}

func (h *holder) remove(gi int32, g *grantNode) {
	if i := slices.Index(h.grants, gi); i >= 0 {
		h.grants = slices.Delete(h.grants, i, i+1)
	}
	if g.scope != 0 {
		return
	}
	if i := slices.Index(h.timed, gi); i >= 0 {
		h.timed = slices.Delete(h.timed, i, i+1)
		return
	}
	if i, ok := slices.BinarySearch(h.roles, g.role); ok {
		h.roles = slices.Delete(h.roles, i, i+1)
	}
}

// holderRef is an entry of Index.holderTab: the holder and, for a person,
// the person (whose prepared roles a change of their grants drops).
type holderRef struct {
	h *holder
	p *person
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
	// adminFlag: identity's legacy is_admin flag (a system administrator).
	adminFlag bool
	// disabled in identity: the person holds nothing (disabledLocked).
	disabled bool
	// centreDisabled: disabled by the level-1 centre (identity's
	// lock.disabled, ADR 0048), beside their home's status: the person
	// holds nothing while either disables them (disabledLocked).
	centreDisabled bool
	// deleted in identity (ForgetPerson): the person holds nothing, also
	// while their grants, deleted with them, are still here (the store
	// not reached yet, or held as another centre's replica).
	deleted bool
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
	members map[string]bool
	org     *org
}

type org struct {
	holder
	parent *org
	// disabled in identity: nobody below it holds anything.
	disabled bool
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
	// roleTab: the role nodes by number (roleNode.idx; nil at 0 and for a
	// deleted role no grant refers to any more).
	roleTab []*roleNode
	// direct: the nodes of direct grants, one per permission granted
	// directly (made at its first grant, kept while the index lives: few,
	// and a permission granted again finds its node).
	direct     map[authz.Permission]*roleNode
	exclusions map[string]*authz.Exclusion
	// grants: grant node numbers by grant id.
	grants grantTable
	// nodes: the grant nodes, in blocks of nodeBlock (pointer-free: the GC
	// does not scan them); nextNode the first never used, freeNodes those
	// of deleted grants. Node 0 is never used.
	nodes     []*[nodeBlock]grantNode
	nextNode  int32
	freeNodes []int32
	// ids: the grants' ids; strs: the scope orgs and creators, each once
	// (strIdx finds them); lists: the grantable role lists, each once.
	ids     idStore
	strs    []string
	strIdx  map[string]int32
	lists   [][]string
	listIdx map[string]int32
	// holderTab: every holder (person, group, org) by number.
	holderTab []holderRef
	// odd: grants the node cannot hold exactly, whole (flagOdd).
	odd map[int32]authz.Grant
	// pending: grants whose role node is not the role of their id in
	// roles (unknown when they came, or deleted since), with that id: the
	// next derived rebuild points them at the role once it exists.
	pending map[int32]string
	// fresh: a snapshot load into an index without grants is under way
	// (ReserveGrants until SetRevision): the grants it puts are new (the
	// store holds each id once), so a put does not look for an old one.
	fresh bool

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
		roleByCode: map[string]*roleNode{}, direct: map[authz.Permission]*roleNode{}, exclusions: map[string]*authz.Exclusion{}, grants: newGrantTable(),
		pending: map[int32]string{}, people: map[string]*person{}, groups: map[string]*group{},
		orgs: map[string]*org{}, permRoles: map[permKey]roleSet{},
		roleTab: []*roleNode{nil}, nextNode: 1, nodes: []*[nodeBlock]grantNode{new([nodeBlock]grantNode)},
		strs: []string{""}, strIdx: map[string]int32{"": 0}, lists: [][]string{nil}, listIdx: map[string]int32{},
		holderTab: []holderRef{{}}, odd: map[int32]authz.Grant{}, ids: newIDStore(),
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
	x.fresh = x.grants.n == 0
	x.grants.grow(x.grants.n + n)
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
			x.putGrant(p.grant)
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
		x.roleTab = append(x.roleTab, n)
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
	n.gone = true
	for _, gi := range n.grants {
		x.pending[gi] = n.r.ID
	}
	if len(n.grants) == 0 {
		x.roleTab[n.idx] = nil
	}
	x.derivedDirty = true
}

// holderOfGrant returns the holder of grants to s (made if new), with
// the person for a person; nil for a subject of an unknown kind.
func (x *Index) holderOfGrant(s authz.Subject) (*holder, *person) {
	switch s.Kind {
	case authz.SubjectUser:
		p := x.personOf(s.ID)
		return &p.holder, p
	case authz.SubjectGroup:
		return &x.groupOf(s.ID).holder, nil
	case authz.SubjectOrg:
		return &x.orgOf(s.ID).holder, nil
	}
	return nil, nil
}

// newHolder numbers h (of a person p or not) in holderTab.
func (x *Index) newHolder(h *holder, p *person, kind authz.SubjectKind, id string) {
	h.kind, h.id, h.slot = kind, id, int32(len(x.holderTab))
	x.holderTab = append(x.holderTab, holderRef{h: h, p: p})
}

func (x *Index) personOf(id string) *person {
	p := x.people[id]
	if p == nil {
		p = &person{}
		x.newHolder(&p.holder, p, authz.SubjectUser, id)
		x.people[id] = p
	}
	return p
}

func (x *Index) groupOf(id string) *group {
	g := x.groups[id]
	if g == nil {
		g = &group{members: map[string]bool{}}
		x.newHolder(&g.holder, nil, authz.SubjectGroup, id)
		x.groups[id] = g
	}
	return g
}

func (x *Index) orgOf(id string) *org {
	o := x.orgs[id]
	if o == nil {
		o = &org{}
		x.newHolder(&o.holder, nil, authz.SubjectOrg, id)
		x.orgs[id] = o
	}
	return o
}

// intern returns the number of s in strs, adding it if new.
func (x *Index) intern(s string) int32 {
	if i, ok := x.strIdx[s]; ok {
		return i
	}
	i := int32(len(x.strs))
	x.strs = append(x.strs, s)
	x.strIdx[s] = i
	return i
}

// internList returns the number of l in lists (0 for nil), adding it if
// new. Grants of one list share one slice, as they shared its strings.
func (x *Index) internList(l []string) int32 {
	if l == nil {
		return 0
	}
	var k strings.Builder
	for _, s := range l {
		k.WriteString(strconv.Itoa(len(s)))
		k.WriteByte(':')
		k.WriteString(s)
	}
	if i, ok := x.listIdx[k.String()]; ok {
		return i
	}
	i := int32(len(x.lists))
	x.lists = append(x.lists, l)
	x.listIdx[k.String()] = i
	return i
}

func (x *Index) putGrant(g authz.Grant) {
	if !x.fresh {
		x.deleteGrant(g.ID)
	}
	gi := x.newNode()
	n := x.node(gi)
	var role *roleNode
	if g.Direct() {
		role = x.directRole(g.Permission)
		n.role = role.idx
		g.Permission = role.r.Permissions[0] // one copy for all its grants
	} else if role = x.roles[g.Role]; role == nil {
		// The store refuses grants of unknown roles; a grant whose role is
		// not (yet) known is kept out of queries.
		x.pending[gi] = g.Role
	} else {
		n.role = role.idx
		g.Role = role.r.ID // one copy of the id for all its grants
	}
	h, p := x.holderOfGrant(g.Subject)
	if h != nil {
		n.holder = h.slot
		g.Subject.ID = h.id // one copy of the id for all the holder's grants
	}
	if !g.ValidFrom.IsZero() {
		n.from = g.ValidFrom.UnixNano()
	}
	if !g.ValidUntil.IsZero() {
		n.until = g.ValidUntil.UnixNano()
	}
	n.id = x.ids.put(g.ID)
	n.scope = x.intern(g.ScopeOrg)
	n.createdBy = x.intern(g.CreatedBy)
	n.grantable = x.internList(g.Grantable)
	if g.Delegable {
		n.flags |= flagDelegable
	}
	var okF, okU, okC bool
	_, n.zones[0], okF = timeOf(g.ValidFrom)
	_, n.zones[1], okU = timeOf(g.ValidUntil)
	n.created, n.zones[2], okC = timeOf(g.CreatedAt)
	// a grant delegable beyond one level is rare (a few administrators):
	// kept whole rather than widening every node
	if !okF || !okU || !okC || h == nil || g.DelegationDepth != 0 {
		n.flags |= flagOdd
		x.odd[gi] = g
	}
	x.grants.put(g.ID, gi, x)
	if h != nil {
		h.add(gi, n)
		x.holderChanged(p)
	}
	if role != nil {
		role.addGrant(gi, n)
	}
}

// directRole returns the node of the direct grants of p, made if new.
func (x *Index) directRole(p authz.Permission) *roleNode {
	if r := x.direct[p]; r != nil {
		return r
	}
	x.nextRole++
	r := &roleNode{idx: x.nextRole, direct: true, r: authz.Role{App: p.App, Permissions: []authz.Permission{p}}}
	x.roleTab = append(x.roleTab, r)
	x.direct[p] = r
	x.derivedDirty = true
	return r
}

// directOf returns the permission grant node n gives directly (zero for a
// grant of a role).
func (x *Index) directOf(n *grantNode) authz.Permission {
	if n.role != 0 {
		if r := x.roleTab[n.role]; r != nil && r.direct {
			return r.r.Permissions[0]
		}
	}
	return authz.Permission{}
}

// grantOf returns grant gi as it was put.
func (x *Index) grantOf(gi int32) authz.Grant {
	n := x.node(gi)
	if n.flags&flagOdd != 0 {
		return x.odd[gi]
	}
	h := x.holderTab[n.holder].h
	return authz.Grant{
		ID: x.ids.get(n.id), Role: x.roleID(gi, n), Permission: x.directOf(n), Subject: authz.Subject{Kind: h.kind, ID: h.id},
		ValidFrom: makeTime(n.from, n.zones[0]), ValidUntil: makeTime(n.until, n.zones[1]),
		ScopeOrg: x.strs[n.scope], Delegable: n.flags&flagDelegable != 0, Grantable: x.lists[n.grantable],
		CreatedAt: makeTime(n.created, n.zones[2]), CreatedBy: x.strs[n.createdBy],
	}
}

// grantID is the id of grant gi.
func (x *Index) grantID(gi int32) string { return x.ids.get(x.node(gi).id) }

// roleID is the role id of grant gi ("" for a direct grant).
func (x *Index) roleID(gi int32, n *grantNode) string {
	if n.role == 0 {
		return x.pending[gi]
	}
	return x.roleTab[n.role].r.ID // "" for a direct grant's node
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
	gi := x.grants.remove(id, x)
	if gi == 0 {
		return
	}
	n := x.node(gi)
	if n.holder != 0 {
		hr := x.holderTab[n.holder]
		hr.h.remove(gi, n)
		x.holderChanged(hr.p)
	}
	x.unlinkRole(gi, n)
	delete(x.pending, gi)
	if n.flags&flagOdd != 0 {
		delete(x.odd, gi)
	}
	x.ids.drop(n.id)
	*n = grantNode{}
	x.freeNodes = append(x.freeNodes, gi)
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

// ForgetOrg records that org id was deleted (it was empty): it leaves the
// tree, so that no scope covers it and Mirrored no longer holds it for a
// subject identity knows (review sec11 S4: a grant to a deleted org was
// accepted and stayed).
func (x *Index) ForgetOrg(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	if o := x.orgs[id]; o != nil {
		o.parent, o.disabled = nil, true
		x.shape++
	}
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

// ForgetPerson drops what the index mirrors of person id, deleted in
// identity: their org, group memberships and legacy flag; and they hold
// nothing from then on (Check, ListPermissions, Explain), before their
// grants, which go with them (commands.DeleteGrantsOf), leave the index.
func (x *Index) ForgetPerson(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	p := x.personOf(id) // kept, deleted, for grants loaded later
	p.eff.Store(nil)
	for _, g := range p.groups {
		delete(g.members, id)
	}
	p.groups, p.org, p.adminFlag, p.disabled, p.centreDisabled, p.deleted = nil, nil, false, false, false, true
}

// PersonCreated records that person id exists in identity (user.created):
// one forgotten before holds again what is granted to them.
func (x *Index) PersonCreated(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.people[id]
	if !ok || !p.deleted {
		return
	}
	defer x.gen.Add(1)
	p.deleted = false
	p.eff.Store(nil)
}

// SetPersonDisabled records whether person id is disabled in identity
// (they cannot log in): a disabled person holds nothing here either, so a
// business system checking a session it already holds stops serving them.
func (x *Index) SetPersonDisabled(id string, disabled bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	p := x.personOf(id)
	p.disabled = disabled
	p.eff.Store(nil)
}

// SetPersonCentreDisabled records whether the level-1 centre disables
// person id (identity's lock.disabled and lock.enabled, ADR 0048): kept
// beside their home's status (SetPersonDisabled), which neither sets nor
// clears it; the person holds nothing while either disables them.
func (x *Index) SetPersonCentreDisabled(id string, disabled bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	p := x.personOf(id)
	p.centreDisabled = disabled
	p.eff.Store(nil)
}

// SetOrgDisabled records whether org id is disabled in identity: the
// people of its subtree hold nothing here.
func (x *Index) SetOrgDisabled(id string, disabled bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	x.orgOf(id).disabled = disabled
	x.shape++
}

// disabledLocked reports whether p, or an org above them, is disabled, or
// p was deleted.
func (x *Index) disabledLocked(p *person) bool {
	if p.disabled || p.centreDisabled || p.deleted {
		return true
	}
	for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		if o.disabled {
			return true
		}
	}
	return false
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

// ForgetGroup drops group id, deleted in identity: its members leave it
// (grants to it stay, to be revoked, and reach nobody).
func (x *Index) ForgetGroup(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	g, ok := x.groups[id]
	if !ok {
		return
	}
	for u := range g.members {
		if p := x.people[u]; p != nil {
			p.eff.Store(nil)
			if i := slices.Index(p.groups, g); i >= 0 {
				p.groups = slices.Delete(p.groups, i, i+1)
			}
		}
	}
	clear(g.members)
	g.org = nil
	x.shape++
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
	for gi, want := range x.pending {
		r := x.roles[want]
		if r == nil {
			continue
		}
		if g := x.node(gi); r.idx != g.role {
			x.unlinkRole(gi, g)
			var h *holder
			if g.holder != 0 {
				h = x.holderTab[g.holder].h
				h.remove(gi, g)
			}
			g.role = r.idx
			if h != nil {
				h.add(gi, g)
			}
			r.addGrant(gi, g)
			if g.flags&flagOdd != 0 {
				o := x.odd[gi]
				o.Role = r.r.ID
				x.odd[gi] = o
			}
			x.shape++
		}
		delete(x.pending, gi)
	}
	raw := make(map[permKey][]*roleNode, len(x.permRoles))
	for _, r := range x.roles {
		for _, p := range x.effectivePermsLocked(r) {
			raw[p] = append(raw[p], r)
		}
	}
	// A direct grant's node holds its permission (once its resource is
	// known: a replica may get the grant before the resource).
	for _, r := range x.direct {
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

// live reports whether s holds a role, or the node of a permission granted
// directly now (one whose direct grants were all revoked allows nobody).
func (s roleSet) live() bool {
	for _, r := range s.nodes {
		if !r.direct || len(r.grants) > 0 {
			return true
		}
	}
	return false
}

// has reports whether role number idx is in s (0, no role, never is).
func (s roleSet) has(idx int32) bool {
	_, ok := slices.BinarySearch(s.ids, idx)
	return ok && idx > 0
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

// Mirrored reports whether identity's events placed sub in the mirror (a
// person or a group with an org, an org with a parent). false says
// nothing for sure: identity is then asked (a new subject whose event is
// on its way, the root org).
func (x *Index) Mirrored(sub authz.Subject) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	switch sub.Kind {
	case authz.SubjectUser:
		p := x.people[sub.ID]
		return p != nil && p.org != nil
	case authz.SubjectGroup:
		g := x.groups[sub.ID]
		return g != nil && g.org != nil
	case authz.SubjectOrg:
		o := x.orgs[sub.ID]
		return o != nil && o.parent != nil
	}
	return false
}

// PersonActive reports whether identity has person id enabled, in an org
// none of whose orgs above is disabled.
func (x *Index) PersonActive(id string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	p := x.people[id]
	if p == nil || p.disabled || p.centreDisabled || p.org == nil {
		return false
	}
	for o, d := p.org, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		if o.disabled {
			return false
		}
	}
	return true
}
