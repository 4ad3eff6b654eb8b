package index

import (
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/services/authz"
)

// AdminQuery asks whether Person may do Operation on Resource of the
// administration application ("uias"), on a target in Orgs (every org the
// action touches; none for a global action: then the org of Target, if
// any) and, if any, on the person Target. SystemAdminFlag: identity says the person carries the legacy
// is_admin flag, which counts as the system_admin role.
type AdminQuery struct {
	Person          string
	Resource        string
	Operation       string
	Orgs            []string
	Target          string
	SystemAdminFlag bool
	// JoinGroup / JoinOrg: the action makes Target a member of the group
	// / moves them to the org (separation of duty is checked for it).
	JoinGroup string
	JoinOrg   string
	// MoveOrg: the action moves this org under JoinOrg (MoveConflict).
	MoveOrg string
	// Listing: a listing that names no org. Scoped grants allow it too,
	// limited to their subtrees (AdminDecision.Scopes).
	Listing bool
	// Probe: a component asks whether the administrator may (to show or
	// hide something), not because they tried: a denial is not audited.
	Probe bool
}

// ConsoleResource is the console every administrator may log in to,
// whatever the scope of their grant.
const ConsoleResource = "system.console"

// AdminDecision answers an AdminQuery: Detail says why not.
type AdminDecision struct {
	Allowed  bool
	Global   bool // allowed by an unscoped grant (or the legacy flag)
	Revision int64
	Detail   string
	// SoD: the membership asked about would give the target both roles of
	// this separation-of-duty pair.
	SoD *authz.Exclusion
	// Scopes: a Listing allowed by scoped grants only is limited to these
	// orgs' subtrees (none nested in another).
	Scopes []string
}

// CheckAdmin answers q at now. A grant with a scope_org allows only inside
// the scope org's subtree (every org of q inside one such grant's scope); a
// global action (no org) needs an unscoped grant. Acting on another person
// who is an administrator needs more: nobody but themselves changes a
// system administrator or a security auditor (reading excepted), nobody
// resets an administrator's password, and a unit administrator is managed
// only by a system administrator or a unit administrator whose scope lies
// strictly above theirs.
func (x *Index) CheckAdmin(q AdminQuery, now time.Time) AdminDecision {
	x.rlock()
	defer x.mu.RUnlock()
	d := AdminDecision{Revision: x.rev}
	res := x.resources[authz.AdminApp][q.Resource]
	if res == nil || !slices.Contains(res.r.Operations, q.Operation) {
		d.Detail = "unknown administrative permission " + quote(q.Resource+"."+q.Operation)
		return d
	}
	t := now.UnixNano()
	allows := func(r int32) bool {
		for n, depth := res, 0; n != nil && depth < maxOrgDepth; n, depth = n.parent, depth+1 {
			if x.permRoles[permKey{n, q.Operation}].has(r) {
				return true
			}
		}
		return false
	}
	var global bool
	var scopes []string
	if q.SystemAdminFlag {
		if r := x.roles[authz.RoleSystemAdmin]; r != nil && allows(r.idx) {
			global = true
		}
	}
	if p := x.people[q.Person]; p != nil {
		x.allGrants(p, func(_ int32, g *grantNode) {
			if !g.activeAt(t) || g.role == 0 || x.roleTab[g.role].direct || !allows(g.role) {
				return // administrator powers come with the built-in roles only, never a direct grant
			}
			if g.scope == 0 {
				global = true
			} else {
				scopes = append(scopes, x.strs[g.scope])
			}
		})
	}
	orgs := q.Orgs
	if len(orgs) == 0 && q.Target != "" {
		// The target person's org, as mirrored from identity.
		if tp := x.people[q.Target]; tp != nil && tp.org != nil {
			orgs = []string{tp.org.id}
		}
	}
	switch {
	case global:
	case len(scopes) == 0:
		d.Detail = "none of your roles allows it"
		return d
	case len(orgs) == 0 && q.Resource == ConsoleResource:
		// Any administrator, scoped or not, may use the console.
	case len(orgs) == 0 && q.Listing && q.Target == "":
		// A listing of everything: only what lies in their subtrees.
		d.Scopes = x.outermostLocked(scopes)
	case len(orgs) == 0:
		d.Detail = "only an administrator of the whole system may do this (it is not inside an org you administer)"
		return d
	default:
		for _, o := range orgs {
			if !x.withinAnyLocked(o, scopes) {
				d.Detail = "the target is outside the org subtree you administer"
				return d
			}
		}
	}
	if q.Target != "" && q.Target != q.Person {
		if why := x.targetRefusalLocked(q, global, scopes, t); why != "" {
			d.Detail = why
			return d
		}
	}
	d.Allowed, d.Global = true, global
	return d
}

// outermostLocked returns scopes without duplicates and without the orgs
// inside another of them.
func (x *Index) outermostLocked(scopes []string) []string {
	var out []string
	for i, s := range scopes {
		keep := true
		for j, o := range scopes {
			if i != j && (o != s && x.withinLocked(s, o) || o == s && j < i) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

// targetRefusalLocked says why the actor may not act on the administrator
// q.Target ("" when they may).
func (x *Index) targetRefusalLocked(q AdminQuery, global bool, scopes []string, t int64) string {
	tp := x.people[q.Target]
	if tp == nil {
		return ""
	}
	var top bool
	var unitScopes []string
	x.allGrants(tp, func(gi int32, g *grantNode) {
		// A grant dated in the future protects its person already: the
		// appointment replaced their password with the appointer's
		// activation password, which nobody else may set again before it
		// starts (the system administrator would, and log in as the
		// auditor appointed when the grant begins).
		if !g.notEndedAt(t) {
			return
		}
		switch x.roleID(gi, g) {
		case authz.RoleSystemAdmin, authz.RoleSecurityAuditor:
			top = true
		case authz.RoleUnitAdmin:
			unitScopes = append(unitScopes, x.strs[g.scope])
		}
	})
	if tp.adminFlag {
		top = true
	}
	if !top && len(unitScopes) == 0 {
		return ""
	}
	if q.Operation == "read" || q.Operation == "unlock" {
		// Unlocking changes nothing but the lock: anyone failing passwords
		// locks an administrator, and a peer undoes it without a token of
		// the locked one.
		return ""
	}
	if q.Operation == "password" {
		return "the password of another administrator is changed only by its holder"
	}
	if top {
		return "a system administrator or security auditor is managed by nobody else (revoke the role first)"
	}
	if global {
		return ""
	}
	for _, us := range unitScopes {
		if us == "" {
			return "this person is a unit administrator above you"
		}
		// Strictly above: the target's scope is below one of the actor's
		// scopes and is not that scope itself.
		ok := false
		for _, s := range scopes {
			if us != s && x.withinLocked(us, s) {
				ok = true
			}
		}
		if !ok {
			return "this person is a unit administrator at your level or above you"
		}
	}
	return ""
}

// withinLocked reports whether org o is scope or below it.
func (x *Index) withinLocked(o, scope string) bool {
	if o == scope {
		return true
	}
	for n, d := x.orgs[o], 0; n != nil && d < maxOrgDepth; n, d = n.parent, d+1 {
		if n.id == scope {
			return true
		}
	}
	return false
}

func (x *Index) withinAnyLocked(o string, scopes []string) bool {
	for _, s := range scopes {
		if x.withinLocked(o, s) {
			return true
		}
	}
	return false
}

// Within reports whether org o is scope or an org below it (as mirrored).
func (x *Index) Within(o, scope string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.withinLocked(o, scope)
}

// AdminGrants returns the active grants reaching person whose role allows
// (uias, resource, op), scoped or not.
func (x *Index) AdminGrants(person, resource, op string, now time.Time) []authz.Grant {
	x.rlock()
	defer x.mu.RUnlock()
	res := x.resources[authz.AdminApp][resource]
	p := x.people[person]
	if res == nil || p == nil {
		return nil
	}
	t := now.UnixNano()
	var out []authz.Grant
	x.allGrants(p, func(gi int32, g *grantNode) {
		if !g.activeAt(t) || g.role == 0 || x.roleTab[g.role].direct {
			return
		}
		for n, depth := res, 0; n != nil && depth < maxOrgDepth; n, depth = n.parent, depth+1 {
			if x.permRoles[permKey{n, op}].has(g.role) {
				out = append(out, x.grantOf(gi))
				return
			}
		}
	})
	return out
}

// SubjectReaches reports whether a grant to s reaches person (s is the
// person, a group of theirs, or their org or an org above it).
func (x *Index) SubjectReaches(s authz.Subject, person string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	switch s.Kind {
	case authz.SubjectUser:
		return s.ID == person
	case authz.SubjectGroup:
		g := x.groups[s.ID]
		return g != nil && g.members[person]
	case authz.SubjectOrg:
		p := x.people[person]
		return p != nil && p.org != nil && x.withinLocked(p.org.id, s.ID)
	}
	return false
}

// SetUserAdminFlag records identity's legacy is_admin flag of person id.
func (x *Index) SetUserAdminFlag(id string, admin bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	defer x.gen.Add(1)
	x.personOf(id).adminFlag = admin
}

// MembershipConflict reports the separation-of-duty pair person would hold
// both roles of after joining group (if not "") and moving to org (if not
// ""): their own grants, their groups' (with group), and the grants of
// their org (org, or the present one) and every org above it. A pair the
// person holds both roles of already is not the change's doing and is
// left out (trial7 L1: a person in a conflict from before the exclusion
// could join no group at all, told the join was at fault).
func (x *Index) MembershipConflict(person, group, orgID string, now time.Time) (authz.Exclusion, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t := now.UnixNano()
	before, after := map[string]bool{}, map[string]bool{}
	p := x.people[person]
	var cur *org
	if p != nil {
		x.addPersonLocked(before, p, t)
		x.addPersonLocked(after, p, t)
		cur = p.org
	}
	if group != "" {
		if g := x.groups[group]; g != nil {
			x.addHeldLocked(after, g.grants, t)
		}
	}
	o := cur
	if orgID != "" {
		o = x.orgs[orgID]
	}
	for d := 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		x.addHeldLocked(after, o.grants, t)
	}
	for d := 0; cur != nil && d < maxOrgDepth; cur, d = cur.parent, d+1 {
		x.addHeldLocked(before, cur.grants, t)
	}
	return x.newPairLocked(before, after)
}

// newPairLocked is the first exclusion (by id) whose roles are both in
// after and not both in before.
func (x *Index) newPairLocked(before, after map[string]bool) (authz.Exclusion, bool) {
	ids := make([]string, 0, len(x.exclusions))
	for id := range x.exclusions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := x.exclusions[id]
		if after[e.RoleA] && after[e.RoleB] && !(before[e.RoleA] && before[e.RoleB]) {
			return *e, true
		}
	}
	return authz.Exclusion{}, false
}

// Membership is a person's groups and org as identity holds them.
type Membership struct {
	Groups []string
	Org    string
}

// SeparationOf is MembershipConflict for memberships given rather than
// the index's mirror of identity: the pair person would hold both roles
// of with the groups and org of after (their own grants, what those
// groups give, what the org and every org above it give) and does not
// with those of before. A change of another centre is judged so, with
// what identity holds, before the index learns of the changes applied
// with it.
func (x *Index) SeparationOf(person string, before, after Membership, now time.Time) (authz.Exclusion, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t := now.UnixNano()
	held := func(m Membership) map[string]bool {
		h := map[string]bool{}
		if p := x.people[person]; p != nil {
			x.addHeldLocked(h, p.grants, t)
		}
		for _, id := range m.Groups {
			if g := x.groups[id]; g != nil {
				x.addHeldLocked(h, g.grants, t)
			}
		}
		for o, d := x.orgs[m.Org], 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
			x.addHeldLocked(h, o.grants, t)
		}
		return h
	}
	return x.newPairLocked(held(before), held(after))
}

// addHeldLocked adds to held the roles grants gs give at t (with the roles
// they include). A scoped grant (a unit administrator's) gives its role as
// any other does: separation of duty is about the roles a person holds,
// whatever they reach (HeldRoles; review sec11 S12).
func (x *Index) addHeldLocked(held map[string]bool, gs []int32, t int64) {
	for _, gi := range gs {
		g := x.node(gi)
		if g.until != 0 && g.until <= t {
			continue
		}
		for _, id := range x.closureLocked(x.roleID(gi, g), nil) {
			held[id] = true
		}
	}
}

// addPersonLocked adds to held the roles person p's own grants and their
// groups' give at t.
func (x *Index) addPersonLocked(held map[string]bool, p *person, t int64) {
	x.addHeldLocked(held, p.grants, t)
	for _, g := range p.groups {
		x.addHeldLocked(held, g.grants, t)
	}
}

// MoveConflict reports a separation-of-duty pair a person in org moved (or
// below it) would hold both roles of once moved is placed under
// newParent, and who (the smallest such person id): their own grants,
// their groups', those of their org up to moved, and those of newParent
// and every org above it (trial7 H1: a reorganisation gave the approvers
// of a branch the clerk role of the branch it was moved under). Only the
// exclusions with a role the new orgs above give are looked at; then every
// person of the moved subtree.
//
// It scans every person under the read lock (a writer waiting behind it
// holds up the checks that come after): what an org or group gives is
// judged once per scan, not once per person, and a person with no grants
// and groups of their own costs no allocation (review sec11 S9).
func (x *Index) MoveConflict(moved, newParent string, now time.Time) (authz.Exclusion, string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t := now.UnixNano()
	m, np := x.orgs[moved], x.orgs[newParent]
	if m == nil || np == nil {
		return authz.Exclusion{}, "", false
	}
	sc := x.newScan(t)
	above := map[string]bool{}
	for o, d := np, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
		sc.addHeld(above, o.grants)
	}
	var excl []*authz.Exclusion
	for _, e := range x.exclusions {
		if above[e.RoleA] || above[e.RoleB] {
			excl = append(excl, e)
		}
	}
	if len(excl) == 0 {
		return authz.Exclusion{}, "", false
	}
	slices.SortFunc(excl, func(a, b *authz.Exclusion) int { return strings.Compare(a.ID, b.ID) })
	// below: the roles a person's org and the orgs above it up to moved
	// give (nil for an org outside the subtree), once per org, walking up
	// from it as a check does (maxOrgDepth levels; review sec12 #2)
	below := map[*org]map[string]bool{}
	chainOf := func(start *org) map[string]bool {
		if h, ok := below[start]; ok {
			return h
		}
		var chain []*org
		for o, d := start, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
			chain = append(chain, o)
			if o == m {
				break
			}
		}
		var h map[string]bool
		if len(chain) > 0 && chain[len(chain)-1] == m {
			h = map[string]bool{}
			for _, o := range chain {
				sc.addHeld(h, o.grants)
			}
		}
		below[start] = h
		return h
	}
	var found *authz.Exclusion
	who := ""
	for id, p := range x.people {
		// disabled people count: enabled again, they would hold both
		// (review sec11 S3)
		if p.org == nil || (who != "" && id >= who) {
			continue
		}
		chain := chainOf(p.org)
		if chain == nil {
			continue // not in the moved subtree
		}
		own := sc.personRoles(p)
		has := func(r string) bool { return above[r] || chain[r] || own[r] }
		for _, e := range excl {
			if has(e.RoleA) && has(e.RoleB) {
				found, who = e, id
				break
			}
		}
	}
	if found == nil {
		return authz.Exclusion{}, "", false
	}
	return *found, who, true
}

// HolderOfBoth returns a person (the smallest id) who holds both roles a
// and b now, by their own grants, their groups' or their orgs' (a new
// separation-of-duty pair would otherwise start out broken: trial7 M4).
// It scans every person as MoveConflict does.
func (x *Index) HolderOfBoth(a, b string, now time.Time) (string, bool) {
	who := x.HoldersOfBoth(a, b, now)
	if len(who) == 0 {
		return "", false
	}
	return who[0], true
}

// HoldersOfBoth is every person HolderOfBoth would name, by id.
func (x *Index) HoldersOfBoth(a, b string, now time.Time) []string {
	return x.HoldersOfPairs([][2]string{{a, b}}, now)[0]
}

// scan is what a scan over every person (MoveConflict, HolderOfBoth)
// works out once: the roles each role includes, and what each group's
// grants give.
type scan struct {
	x       *Index
	t       int64
	closure map[string][]string
	groups  map[*group]map[string]bool
}

func (x *Index) newScan(t int64) *scan {
	return &scan{x: x, t: t, closure: map[string][]string{}, groups: map[*group]map[string]bool{}}
}

// addHeld is addHeldLocked with the closures kept for the scan.
func (sc *scan) addHeld(held map[string]bool, gs []int32) {
	for _, gi := range gs {
		g := sc.x.node(gi)
		if g.until != 0 && g.until <= sc.t {
			continue
		}
		for _, r := range sc.closureOf(sc.x.roleID(gi, g)) {
			held[r] = true
		}
	}
}

// closureOf is closureLocked, worked out once per role in the scan.
func (sc *scan) closureOf(id string) []string {
	cl, ok := sc.closure[id]
	if !ok {
		cl = sc.x.closureLocked(id, nil)
		sc.closure[id] = cl
	}
	return cl
}

// personRoles is what person p's own grants and their groups' give (nil,
// with no allocation, when they have neither).
func (sc *scan) personRoles(p *person) map[string]bool {
	if len(p.grants) == 0 && len(p.groups) == 0 {
		return nil
	}
	own := map[string]bool{}
	sc.addHeld(own, p.grants)
	for _, g := range p.groups {
		gh, ok := sc.groups[g]
		if !ok {
			gh = map[string]bool{}
			sc.addHeld(gh, g.grants)
			sc.groups[g] = gh
		}
		for r := range gh {
			own[r] = true
		}
	}
	return own
}

// MoveUnknown reports whether a move of org moved under newParent cannot
// be judged yet: there are exclusions, and the mirror has not heard of
// one of the two orgs (identity's event is on its way: an org just
// created; review sec11 S6).
func (x *Index) MoveUnknown(moved, newParent string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.exclusions) > 0 && (x.orgs[moved] == nil || x.orgs[newParent] == nil)
}

// HoldersOfPairs is HoldersOfBoth for several pairs of roles in one walk
// over the people under one read lock (the separation watch asks every
// exclusion at once; review sec15 L4): holders[i] are the people holding
// both roles of pairs[i], by id. More than 64 roles in the pairs are asked
// pair by pair.
func (x *Index) HoldersOfPairs(pairs [][2]string, now time.Time) [][]string {
	bit := map[string]uint64{}
	for _, p := range pairs {
		for _, r := range p {
			if _, ok := bit[r]; !ok {
				bit[r] = 1 << len(bit)
			}
		}
	}
	out := make([][]string, len(pairs))
	if len(bit) > 64 {
		for i, p := range pairs {
			out[i] = x.HoldersOfBoth(p[0], p[1], now) // two roles: one walk each
		}
		return out
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	sc := x.newScan(now.UnixNano())
	// the roles of the pairs a role includes, by role number (as
	// holdersOfBoth); known: worked out
	byNum := make([]uint64, len(x.roleTab))
	known := make([]bool, len(x.roleTab))
	roleBits := func(gi int32, g *grantNode) uint64 {
		if g.role > 0 && int(g.role) < len(byNum) && known[g.role] {
			return byNum[g.role]
		}
		var v uint64
		for _, r := range sc.closureOf(x.roleID(gi, g)) {
			v |= bit[r]
		}
		if g.role > 0 && int(g.role) < len(byNum) {
			byNum[g.role], known[g.role] = v, true
		}
		return v
	}
	gives := func(gs []int32) uint64 {
		var v uint64
		for _, gi := range gs {
			g := x.node(gi)
			if g.until != 0 && g.until <= sc.t {
				continue
			}
			v |= roleBits(gi, g)
		}
		return v
	}
	ownBits, orgBits := map[*org]uint64{}, map[*org]uint64{}
	ofOrg := func(start *org) uint64 {
		if start == nil {
			return 0
		}
		if v, ok := orgBits[start]; ok {
			return v
		}
		var v uint64
		for o, d := start, 0; o != nil && d < maxOrgDepth; o, d = o.parent, d+1 {
			ov, ok := ownBits[o]
			if !ok {
				ov = gives(o.grants)
				ownBits[o] = ov
			}
			v |= ov
		}
		orgBits[start] = v
		return v
	}
	groupBits := map[*group]uint64{}
	masks := make([]uint64, len(pairs))
	for i, p := range pairs {
		masks[i] = bit[p[0]] | bit[p[1]]
	}
	for id, p := range x.people { // disabled people count too (review sec11 S3)
		v := ofOrg(p.org) | gives(p.grants)
		for _, g := range p.groups {
			gv, ok := groupBits[g]
			if !ok {
				gv = gives(g.grants)
				groupBits[g] = gv
			}
			v |= gv
		}
		if v == 0 {
			continue
		}
		for i, m := range masks {
			if v&m == m {
				out[i] = append(out[i], id)
			}
		}
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out
}
