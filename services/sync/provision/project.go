package provision

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	usync "github.com/uias/uias/services/sync"
)

// Change is one CHANGES event as provisioning reads it.
type Change struct {
	EventID string
	// Subject is uias.changes.<component>.<entity>.<op>.
	Subject string
	Payload []byte
	Seq     uint64
}

// ref is an object a change touches; changed: its own data (or, for a
// group, its members) changed, so it is delivered again while selected.
// An object touched only through a relation (a link, a grant, a
// membership) is delivered when it enters or leaves the selection.
type ref struct {
	kind, id string
	changed  bool
	// roleApp: the object changed for the subscriptions of this
	// application that deliver roles (DeliverRoles): a person whose roles
	// of it changed, a role whose holders changed.
	roleApp string
	// roleApps: more such applications (a person whose roles of several
	// applications changed with a membership or a move).
	roleApps []string
}

// changedFor reports whether r's object is delivered again to s while
// selected.
func (r ref) changedFor(s *Subscription) bool {
	if r.changed {
		return true
	}
	return s.DeliverRoles && ((r.roleApp != "" && s.App == r.roleApp) || slices.Contains(r.roleApps, s.App))
}

// Project applies c to the projection and enqueues, for every immediate
// subscription in subs, a delivery of each object c touches that is in the
// subscription's selection after it (upsert) or was before and is no more
// (delete). It runs inside tx.
func Project(tx Tx, subs []*Subscription, c Change, now time.Time) (int, error) {
	rest, ok := strings.CutPrefix(c.Subject, usync.SubjectPrefix)
	if !ok {
		return 0, nil
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 3 {
		return 0, nil
	}
	kind, op := parts[0]+"."+parts[1], parts[len(parts)-1]
	switch op {
	case "imported":
		return 0, nil // ids only: the engine reads the objects (Engine.imported)
	case "resent":
		return 0, nil // a subtree sent again to the other centres, not to business systems
	}
	var p struct {
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
		// authz changes
		Obj string `json:"obj"`
		// Resent: the local event of an object another centre resent
		// (identity's ResendOrg): delivered only when it is new here or
		// its data changed (review sec14 L1).
		Resent bool `json:"resent"`
	}
	if json.Unmarshal(c.Payload, &p) != nil || p.ID == "" {
		return 0, nil //nolint:nilerr // not a change provisioning understands: skipped, not a failure
	}
	if kind == kindLock {
		// Level 1's disable or enable of a person homed at a level-2
		// centre (ADR 0048; lock.replica.* at the home): a change of the
		// person, kept beside their home's status as disabled_by_centre
		// (the centre, "" once enabled), which ActivePerson reads. Other
		// lock changes (lock.locked, lock.must_change) are not fields of
		// the person a business system keeps (review sec32c M1).
		if op != "disabled" && op != "enabled" {
			return 0, nil
		}
		cur, err := tx.Object(KindUser, p.ID)
		if err != nil {
			return 0, err
		}
		if cur == nil || cur.Deleted {
			return 0, nil // a person provisioning does not hold
		}
		var d struct {
			Centre string `json:"centre"`
		}
		_ = json.Unmarshal(p.Data, &d)
		by := ""
		if op == "disabled" {
			by = d.Centre
			if by == "" {
				by = "level-1"
			}
		}
		kind, op, p.Resent = KindUser, "updated", false
		p.Data, _ = json.Marshal(map[string]string{FieldDisabledByCentre: by})
	}
	var live []*Subscription
	for _, s := range subs {
		if s.Enabled && s.Strategy == Immediate {
			live = append(live, s)
		}
	}
	// match: some subscription delivers changes as they come, so what the
	// change touches is matched before and after it; otherwise the change
	// only updates the projection (no reads for a selection nobody has).
	match := len(live) > 0
	var touched []ref
	var mutate func() error
	if kind == KindUser {
		switch op {
		case "finger_enrolled", "finger_deleted", "certificate_bound", "certificate_unbound", "totp_enrolled", "totp_removed",
			"admin_tokens_revoked":
			// Fingerprints, certificate bindings, authenticator apps and
			// administrator tokens are identity's own (a position, a
			// quality, a thumbprint, a sealed secret, a revocation): not
			// fields of the person a business system keeps.
			return 0, nil
		case "password_changed":
			// Only the person's field, not how the change came about.
			var d struct {
				MustChange *bool `json:"must_change_password"`
			}
			_ = json.Unmarshal(p.Data, &d)
			p.Data = nil
			if d.MustChange != nil {
				p.Data, _ = json.Marshal(map[string]bool{"must_change_password": *d.MustChange})
			}
		}
	}
	switch kind {
	case KindUser, KindOrg, KindGroup:
		changed := true
		if p.Resent && op != "member_added" && op != "member_removed" {
			cur, err := tx.Object(kind, p.ID)
			if err != nil {
				return 0, err
			}
			changed = cur == nil || cur.Deleted || !bytes.Equal(usync.Merge(cur.Data, p.Data), cur.Data)
		}
		touched = append(touched, ref{kind: kind, id: p.ID, changed: changed})
		if match && kind == KindOrg && op != "created" && hasKey(p.Data, "parent_id") {
			// a moved org: the orgs, people and groups below it may enter
			// or leave a selection with it
			below, err := subtree(tx, p.ID, false)
			if err != nil {
				return 0, err
			}
			touched = append(touched, below...)
		}
		switch {
		case kind == KindGroup && (op == "member_added" || op == "member_removed"):
			var d struct {
				UserID string `json:"user_id"`
			}
			_ = json.Unmarshal(p.Data, &d)
			if d.UserID == "" {
				return 0, nil
			}
			// the person first: a person entering the selection with the
			// membership exists at the business system before the group
			// that lists them is written
			touched = append([]ref{{kind: KindUser, id: d.UserID}}, touched...)
			mutate = func() error { return tx.SetMember(p.ID, d.UserID, op == "member_added") }
		default:
			mutate = func() error {
				cur, err := tx.Object(kind, p.ID)
				if err != nil {
					return err
				}
				var prev json.RawMessage
				if cur != nil {
					prev = cur.Data
				}
				data := p.Data
				if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
					data = nil
				}
				return tx.PutObject(Object{Kind: kind, ID: p.ID, Data: usync.Merge(prev, data), Deleted: isDelete(op)})
			}
		}
	case "identity.link":
		var d struct {
			UserID string `json:"user_id"`
			AppID  string `json:"app_id"`
		}
		_ = json.Unmarshal(p.Data, &d)
		if d.UserID == "" {
			return 0, nil
		}
		touched = append(touched, ref{kind: KindUser, id: d.UserID, changed: false})
		mutate = func() error {
			if isDelete(op) {
				_, err := tx.DeleteLink(p.ID)
				return err
			}
			return tx.PutLink(p.ID, d.UserID, d.AppID)
		}
	case KindRole:
		var role struct {
			App         string `json:"app"`
			Code        string `json:"code"`
			Name        string `json:"name"`
			Permissions []struct {
				Resource  string `json:"resource"`
				Operation string `json:"operation"`
			} `json:"permissions"`
			Inherits []string `json:"inherits"`
		}
		// authz carries the role as bytes (base64 in JSON)
		var raw []byte
		if json.Unmarshal(p.Data, &raw) == nil {
			_ = json.Unmarshal(raw, &role)
		} else {
			_ = json.Unmarshal(p.Data, &role)
		}
		del := isDelete(op)
		cur, err := tx.Object(KindRole, p.ID)
		if err != nil {
			return 0, err
		}
		app := role.App
		var data json.RawMessage
		switch {
		case del && cur == nil:
			return 0, nil // a role never seen: nothing was delivered
		case del:
			app, data = cur.Field("app"), cur.Data
		default:
			perms := make([]string, 0, len(role.Permissions))
			for _, pm := range role.Permissions {
				perms = append(perms, pm.Resource+":"+pm.Operation)
			}
			inherits := role.Inherits
			if inherits == nil {
				inherits = []string{}
			}
			data, err = json.Marshal(map[string]any{"app": role.App, "code": role.Code, "name": role.Name, "permissions": perms,
				"inherits": inherits})
			if err != nil {
				return 0, err
			}
		}
		if app == "" {
			// a global role: no application's role, never delivered
			return 0, tx.PutObject(Object{Kind: KindRole, ID: p.ID, Data: data, Deleted: del})
		}
		touched = append(touched, ref{kind: KindRole, id: p.ID, changed: true})
		if match && !del && cur != nil && (cur.Field("code") != role.Code || cur.Field("name") != role.Name) {
			// its holders carry its code and name
			users, err := roleUsers(tx, p.ID, time.Time{})
			if err != nil {
				return 0, err
			}
			for _, u := range users {
				touched = append(touched, ref{kind: KindUser, id: u, roleApp: app})
			}
		}
		mutate = func() error { return tx.PutObject(Object{Kind: KindRole, ID: p.ID, Data: data, Deleted: del}) }
	case "authz.grant":
		var g struct {
			Role    string `json:"role"`
			Subject struct {
				Kind string `json:"kind"`
				ID   string `json:"id"`
			} `json:"subject"`
			ValidFrom  time.Time `json:"valid_from"`
			ValidUntil time.Time `json:"valid_until"`
		}
		// authz carries the grant as bytes (base64 in JSON)
		var raw []byte
		if json.Unmarshal(p.Data, &raw) == nil {
			_ = json.Unmarshal(raw, &g)
		} else {
			_ = json.Unmarshal(p.Data, &g)
		}
		del := op == "delete" || isDelete(op)
		subjKind, subjID, roleID := g.Subject.Kind, g.Subject.ID, g.Role
		if del && match {
			r, k, s, err := tx.Grant(p.ID)
			if err != nil {
				return 0, err
			}
			subjKind, subjID, roleID = k, s, r
		}
		if match {
			// the role's application: its subscriptions that deliver
			// roles get the people reached and the role (its holders)
			// again
			roleApp := ""
			if roleID != "" {
				ro, err := tx.Object(KindRole, roleID)
				if err != nil {
					return 0, err
				}
				roleApp = ro.Field("app")
			}
			users, err := grantUsers(tx, subjKind, subjID)
			if err != nil {
				return 0, err
			}
			for _, u := range users {
				touched = append(touched, ref{kind: KindUser, id: u, roleApp: roleApp})
			}
			if roleApp != "" {
				touched = append(touched, ref{kind: KindRole, id: roleID, roleApp: roleApp})
			}
		}
		mutate = func() error {
			if del {
				_, _, err := tx.DeleteGrant(p.ID)
				return err
			}
			if g.Role == "" || subjKind == "" {
				return nil
			}
			return tx.PutGrant(p.ID, g.Role, subjKind, subjID, Window{From: g.ValidFrom, Until: g.ValidUntil})
		}
	default:
		return 0, nil
	}
	if !match {
		return 0, mutate()
	}
	before, _, err := matchAll(tx, live, touched)
	if err != nil {
		return 0, err
	}
	// a membership or a move changes the roles a person holds through a
	// group's or an org's grant: their roles are compared across the
	// change (review sec27b H2)
	var watch *roleWatch
	if rolesMayChange(live, kind, op, p.Data) {
		if watch, err = watchRoles(tx, touched, now); err != nil {
			return 0, err
		}
	}
	if err := mutate(); err != nil {
		return 0, err
	}
	if watch != nil {
		if touched, err = watch.changed(tx, touched); err != nil {
			return 0, err
		}
	}
	after, objs, err := matchAll(tx, live, touched)
	if err != nil {
		return 0, err
	}
	for i := range before {
		// the roles appended: a role's selection does not change with a
		// membership or a move
		before[i] = append(before[i], after[i][len(before[i]):]...)
	}
	q := &enqueuer{tx: tx, eventID: c.EventID, now: now}
	for i, s := range live {
		var moved []string // people who came into or left the selection
		for j, r := range touched {
			switch {
			case after[i][j] && (r.changedFor(s) || !before[i][j]):
				if err := q.add(s, r.kind, r.id, OpUpsert); err != nil {
					return q.n, err
				}
			case before[i][j] && !after[i][j]:
				if err := q.add(s, r.kind, r.id, s.LeaveOp(objs[j])); err != nil {
					return q.n, err
				}
			default:
				continue
			}
			if r.kind == KindUser && before[i][j] != after[i][j] {
				moved = append(moved, r.id)
			}
		}
		if err := q.groupsOf(s, moved); err != nil {
			return q.n, err
		}
		if err := q.rolesOf(s, moved); err != nil {
			return q.n, err
		}
	}
	return q.n, nil
}

// rolesMayChange reports whether a change of kind and op (with data) may
// change the roles people hold while some subscription of live delivers
// roles: a group's membership (the group's grants), a person's move to
// another org, a person disabled or enabled again, or an org's move (the
// grants of the orgs on the path).
func rolesMayChange(live []*Subscription, kind, op string, data json.RawMessage) bool {
	if !slices.ContainsFunc(live, func(s *Subscription) bool { return s.DeliverRoles }) {
		return false
	}
	switch kind {
	case KindGroup:
		return op == "member_added" || op == "member_removed"
	case KindUser:
		// a person disabled or enabled again: a disabled person holds no
		// role at the business system (ActivePerson)
		return op != "created" && (hasKey(data, "org_id") || hasKey(data, "status"))
	case KindOrg:
		return op != "created" && hasKey(data, "parent_id")
	}
	return false
}

// roleWatch keeps the roles (id: application) the people a change touches
// hold before it.
type roleWatch struct {
	at     time.Time
	idx    []int
	before []map[string]string
}

// watchRoles reads the roles of the people in touched.
func watchRoles(tx Tx, touched []ref, at time.Time) (*roleWatch, error) {
	w := &roleWatch{at: at}
	for j, r := range touched {
		if r.kind != KindUser {
			continue
		}
		held, err := heldRoles(tx, r.id, w.at)
		if err != nil {
			return nil, err
		}
		w.idx, w.before = append(w.idx, j), append(w.before, held)
	}
	return w, nil
}

// changed marks, after the change, each person whose roles of an
// application changed as changed for that application's subscriptions
// that deliver roles (their roles are delivered again), and appends each
// role gained or lost (its holders changed) after the people, each once.
func (w *roleWatch) changed(tx Tx, touched []ref) ([]ref, error) {
	seen := map[string]bool{}
	var roles []ref
	for k, j := range w.idx {
		now, err := heldRoles(tx, touched[j].id, w.at)
		if err != nil {
			return nil, err
		}
		diff := map[string]string{}
		for id, app := range w.before[k] {
			if _, ok := now[id]; !ok {
				diff[id] = app
			}
		}
		for id, app := range now {
			if _, ok := w.before[k][id]; !ok {
				diff[id] = app
			}
		}
		ids := slices.Sorted(maps.Keys(diff))
		for _, id := range ids {
			app := diff[id]
			if app != touched[j].roleApp && !slices.Contains(touched[j].roleApps, app) {
				touched[j].roleApps = append(touched[j].roleApps, app)
			}
			if !seen[id] {
				seen[id] = true
				roles = append(roles, ref{kind: KindRole, id: id, roleApp: app})
			}
		}
	}
	return append(touched, roles...), nil
}

// heldRoles lists the roles of an application user holds (grants to
// them, their groups, the orgs on their path, in force at at), as id:
// application; none for a person disabled (ActivePerson).
func heldRoles(tx Tx, user string, at time.Time) (map[string]string, error) {
	out := map[string]string{}
	u, err := tx.Object(KindUser, user)
	if err != nil || u == nil || u.Deleted || !ActivePerson(u) {
		return out, err
	}
	path, err := OrgPath(tx, u.Field("org_id"))
	if err != nil {
		return nil, err
	}
	ids, err := rolesOf(tx, user, path, at)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		o, err := tx.Object(KindRole, id)
		if err != nil {
			return nil, err
		}
		if o != nil && !o.Deleted && o.Field("app") != "" {
			out[id] = o.Field("app")
		}
	}
	return out, nil
}

// rolesOf enqueues, after the people themselves, an upsert of each role
// of s's application held by the people who came into or left s's
// selection (when s delivers roles): the business system keeps the
// holders of a role (LDAP's ou=roles, the webhook's members).
func (q *enqueuer) rolesOf(s *Subscription, people []string) error {
	if !s.DeliverRoles || len(people) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, u := range people {
		rs, err := UserRoles(q.tx, u, s.App, q.now)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if seen[r.ID] {
				continue
			}
			seen[r.ID] = true
			if err := q.add(s, KindRole, r.ID, OpUpsert); err != nil {
				return err
			}
		}
	}
	return nil
}

// enqueuer enqueues the deliveries of one change (or one edit of a
// selection) and counts those added.
type enqueuer struct {
	tx      Tx
	eventID string
	batchID string
	now     time.Time
	n       int
	// groups caches the group ids of people and the groups read.
	groups map[string][]string
	objs   map[string]*Object
}

func (q *enqueuer) add(s *Subscription, kind, id, op string) error {
	return q.addEvent(s, kind, id, op, q.eventID)
}

// addEvent is add with the delivery's event id.
func (q *enqueuer) addEvent(s *Subscription, kind, id, op, eventID string) error {
	added, err := q.tx.Enqueue(Delivery{Subscription: s.ID, App: s.App, EventID: eventID, Kind: kind, ObjectID: id, Op: op,
		BatchID: q.batchID, CreatedAt: q.now})
	if added {
		q.n++
	}
	return err
}

// groupsOf enqueues, after the people themselves, an upsert of each
// selected group of the people who came into or left s's selection: a
// business system that keeps a group's members (LDAP, SCIM) gets them at
// once, not at the group's next write. (A group delivered by the same
// change already is not enqueued twice.)
func (q *enqueuer) groupsOf(s *Subscription, people []string) error {
	if len(people) == 0 {
		return nil
	}
	if q.groups == nil {
		q.groups, q.objs = map[string][]string{}, map[string]*Object{}
	}
	seen := map[string]bool{}
	for _, u := range people {
		gs, ok := q.groups[u]
		if !ok {
			var err error
			if gs, err = q.tx.GroupsOf(u); err != nil {
				return err
			}
			q.groups[u] = gs
		}
		for _, g := range gs {
			if seen[g] {
				continue
			}
			seen[g] = true
			o, ok := q.objs[g]
			if !ok {
				var err error
				if o, err = q.tx.Object(KindGroup, g); err != nil {
					return err
				}
				q.objs[g] = o
			}
			in, err := GroupMatches(q.tx, s, o, Filter{})
			if err != nil {
				return err
			}
			if in {
				if err := q.add(s, KindGroup, g, OpUpsert); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// grantUsers lists the users a grant to (kind, id) reaches: the user, a
// group's members, or the people of an org's whole subtree.
func grantUsers(tx Tx, kind, id string) ([]string, error) {
	switch kind {
	case "user":
		return []string{id}, nil
	case "group":
		return tx.Members(id)
	case "org":
		refs, err := subtree(tx, id, true)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(refs))
		for i, r := range refs {
			out[i] = r.id
		}
		return out, nil
	}
	return nil, nil
}

// roleUsers lists the people role reaches through its grants (to them,
// to their groups, to an org above them) in force at at (zero: all), each
// once, by id.
func roleUsers(tx Tx, role string, at time.Time) ([]string, error) {
	subjects, err := tx.GrantsOfRole(role, at)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sub := range subjects {
		kind, id, _ := strings.Cut(sub, ":")
		us, err := grantUsers(tx, kind, id)
		if err != nil {
			return nil, err
		}
		out = append(out, us...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// RoleHolders lists the people in s's selection who hold role at at (the
// members of its delivery), by id.
func RoleHolders(tx Tx, s *Subscription, role string, at time.Time) ([]Member, error) {
	users, err := roleUsers(tx, role, at)
	if err != nil {
		return nil, err
	}
	out := []Member{}
	for _, id := range users {
		u, err := tx.Object(KindUser, id)
		if err != nil {
			return nil, err
		}
		if !ActivePerson(u) {
			continue // disabled: no role's member at the business system
		}
		ok, err := UserMatches(tx, s, u, Filter{})
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Member{ID: id, Login: u.Field("login_name")})
		}
	}
	return out, nil
}

// subtree lists what sits below org (its own people and groups included):
// the orgs, then the people, then the groups (so that members exist before
// their groups are delivered); only the people when usersOnly.
func subtree(tx Tx, org string, usersOnly bool) ([]ref, error) {
	var orgs, users, groups []ref
	seen := map[string]bool{org: true}
	for queue := []string{org}; len(queue) > 0; queue = queue[1:] {
		kids, err := tx.Children(queue[0])
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			switch k.Kind {
			case KindOrg:
				if !seen[k.ID] {
					seen[k.ID] = true
					queue = append(queue, k.ID)
					orgs = append(orgs, ref{kind: KindOrg, id: k.ID, changed: false})
				}
			case KindUser:
				users = append(users, ref{kind: KindUser, id: k.ID, changed: false})
			case KindGroup:
				groups = append(groups, ref{kind: KindGroup, id: k.ID, changed: false})
			}
		}
	}
	if usersOnly {
		return users, nil
	}
	return append(append(orgs, users...), groups...), nil
}

// hasKey reports whether data is a JSON object with key.
func hasKey(data json.RawMessage, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// matchAll reports, for each subscription and each ref, whether the
// object is in the selection; it returns the objects read too.
func matchAll(tx Tx, subs []*Subscription, refs []ref) ([][]bool, []*Object, error) {
	out := make([][]bool, len(subs))
	objs := make([]*Object, len(refs))
	for j, r := range refs {
		o, err := tx.Object(r.kind, r.id)
		if err != nil {
			return nil, nil, err
		}
		objs[j] = o
	}
	for i, s := range subs {
		out[i] = make([]bool, len(refs))
		for j := range refs {
			ok, err := Matches(tx, s, objs[j], Filter{})
			if err != nil {
				return nil, nil, err
			}
			out[i][j] = ok
		}
	}
	return out, objs, nil
}

// kindsOf is the kinds of objects s delivers, in the order a batch
// delivers them: orgs, then people, then groups (their members exist
// before them), then, when s delivers roles, roles (their holders too).
func kindsOf(s *Subscription) []string {
	if s.DeliverRoles {
		return []string{KindOrg, KindUser, KindGroup, KindRole}
	}
	return []string{KindOrg, KindUser, KindGroup}
}

// batchKinds lists the kinds of objects a batch of s narrowed by f
// delivers: those of s (kindsOf), or, for a batch of the roles
// (Filter.RolesOnly), the roles, or the people where the business system
// keeps the roles on them (RolesOnPeople), nothing when s delivers no
// roles.
func batchKinds(s *Subscription, f Filter) []string {
	switch {
	case !f.RolesOnly:
		return kindsOf(s)
	case !s.DeliverRoles:
		return nil
	case RolesOnPeople(s):
		return []string{KindUser}
	}
	return []string{KindRole}
}

func isDelete(op string) bool {
	switch op {
	case "deleted", "delete", "removed":
		return true
	}
	return false
}

// EnqueueSelection enqueues, in tx, an upsert of every object of the
// subscription's selection that passes f (orgs, then people, then groups,
// so that members exist before their groups), as batch batchID. It returns
// how many deliveries it added.
func EnqueueSelection(tx Tx, s *Subscription, f Filter, batchID string, now time.Time) (int, error) {
	n := 0
	for _, kind := range batchKinds(s, f) {
		after := ""
		for {
			objs, err := tx.Objects(kind, after, 500)
			if err != nil {
				return n, err
			}
			for i := range objs {
				ok, err := Matches(tx, s, &objs[i], f)
				if err != nil {
					return n, err
				}
				if !ok {
					continue
				}
				added, err := tx.Enqueue(Delivery{Subscription: s.ID, App: s.App, EventID: "batch:" + batchID, Kind: kind,
					ObjectID: objs[i].ID, Op: OpUpsert, BatchID: batchID, CreatedAt: now})
				if err != nil {
					return n, err
				}
				if added {
					n++
				}
			}
			if len(objs) < 500 {
				break
			}
			after = objs[len(objs)-1].ID
		}
	}
	return n, nil
}

// rolesOffSuffix ends the event id of the deliveries of people an edit
// turning deliver_roles off makes: they carry no roles ([]), so that a
// business system that keeps the roles on the person (SCIM's roles,
// replaced whole) drops them (review sec27b M1).
const rolesOffSuffix = ":roles-off"

// withdrawn is the event id of an edit's person delivery: eventID, with
// rolesOffSuffix when the edit turns deliver_roles off.
func withdrawn(sub, old *Subscription, eventID string) string {
	if old.DeliverRoles && !sub.DeliverRoles {
		return eventID + rolesOffSuffix
	}
	return eventID
}

// WithdrawsRoles reports whether d is the delivery of a person by an edit
// that turned deliver_roles off: it carries the person with no roles.
func WithdrawsRoles(d *Delivery) bool {
	return d.Kind == KindUser && d.Op != OpDelete && strings.HasPrefix(d.EventID, "edit:") &&
		strings.HasSuffix(d.EventID, rolesOffSuffix)
}

// EnqueueEdit enqueues, in tx, what an edit of a subscription's selection
// (from old to sub) changes at the business system, as batch batchID: an
// upsert of each object that came into the selection, the removal of each
// that left it (sub.LeaveOp: deleted, or a person disabled), and an upsert
// of each group still selected that a person came into or left with the
// edit (its members changed there). Orgs first, then people, then groups,
// so that members exist before their groups. It returns how many
// deliveries it added.
func EnqueueEdit(tx Tx, old, sub *Subscription, batchID string, now time.Time) (int, error) {
	q := &enqueuer{tx: tx, eventID: "edit:" + batchID, batchID: batchID, now: now}
	moved := map[string]bool{}
	kinds := kindsOf(sub)
	if old.DeliverRoles && !sub.DeliverRoles {
		kinds = kindsOf(old) // its roles are removed
	}
	for _, kind := range kinds {
		after := ""
		for {
			objs, err := tx.Objects(kind, after, 500)
			if err != nil {
				return q.n, err
			}
			for i := range objs {
				o := &objs[i]
				was, err := Matches(tx, old, o, Filter{})
				if err != nil {
					return q.n, err
				}
				is, err := Matches(tx, sub, o, Filter{})
				if err != nil {
					return q.n, err
				}
				op := ""
				switch {
				case is && !was:
					op = OpUpsert
				case was && !is:
					op = sub.LeaveOp(o)
				case is && kind == KindGroup && len(moved) > 0:
					members, err := tx.Members(o.ID)
					if err != nil {
						return q.n, err
					}
					if slices.ContainsFunc(members, func(u string) bool { return moved[u] }) {
						op = OpUpsert
					}
				case is && kind == KindUser && old.DeliverRoles != sub.DeliverRoles:
					// still selected: its roles come with it, or are
					// withdrawn (review sec27b M1)
					if err := q.addEvent(sub, kind, o.ID, OpUpsert, withdrawn(sub, old, q.eventID)); err != nil {
						return q.n, err
					}
					continue
				case is && kind == KindRole && len(moved) > 0:
					holders, err := roleUsers(tx, o.ID, time.Time{})
					if err != nil {
						return q.n, err
					}
					if slices.ContainsFunc(holders, func(u string) bool { return moved[u] }) {
						op = OpUpsert
					}
				}
				if op == "" {
					continue
				}
				eventID := q.eventID
				if kind == KindUser {
					moved[o.ID] = true
					eventID = withdrawn(sub, old, q.eventID)
				}
				if err := q.addEvent(sub, kind, o.ID, op, eventID); err != nil {
					return q.n, err
				}
			}
			if len(objs) < 500 {
				break
			}
			after = objs[len(objs)-1].ID
		}
	}
	return q.n, nil
}
