package identity

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
)

// Resending a subtree to the other centres (004 §2.1.5.3, "事后同步":
// information is synchronised again after the fact when needed). A change
// another centre left out as a CONFLICT (a login name, org code or
// application code taken there) does not come again by itself once the
// collision is mended there; nor does a person whose creation, with their
// password hash, was left out come back with a later change that does not
// carry the hash. ResendOrg writes, at the subtree's home, "org.resent"
// events that carry the present state of every org, person (password hash,
// sealed personal data with its data keys), account link, finger,
// authenticator app and group with its members of the subtree, in the
// imported events' form (at most importReplicaChunk objects each); another
// centre applies each object as its newest change (expandImported), so
// what it holds is brought up to the home's state, and what it left out
// is applied if it no longer collides. Nothing is removed at the other
// centre (a deletion travels as its own change), and provisioning does
// not deliver resends to business systems.

// ResendResult counts what ResendOrg sent.
type ResendResult struct {
	ResendID                                               string
	Orgs, People, Groups, Links, Fingers, TOTPApps, Events int
}

// resendEventsPerTx bounds the events written per transaction.
const resendEventsPerTx = 50

// ResendOrg sends org id's subtree again to the other centres (see above).
func (s *Service) ResendOrg(ctx context.Context, id string) (ResendResult, error) {
	start := s.now()
	if s.homes == nil {
		return ResendResult{}, ErrNotACentre.WithMessage("this deployment is a single centre (sync.centre is not set): " +
			"there is no other centre to send to")
	}
	root, err := s.store.GetOrg(ctx, id)
	if err != nil {
		return ResendResult{}, err
	}
	if err := s.homes.CheckOrg(root.Path, "org "+root.ID); err != nil {
		return ResendResult{}, err
	}
	// Once begun, a resend is carried to its end, also when the caller
	// stops waiting (ctl's default timeout is 10 s): its passes correct
	// what changed while it read, and one cut short would leave older
	// copies sent (review sec15 M1).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resendTimeout)
	defer cancel()
	res := ResendResult{ResendID: ids.New()}
	rw := &resendWriter{s: s, ctx: ctx, root: root.ID, res: &res}
	// What was sent, by object: a change committed at home while the
	// subtree is read would reach the other centres before the resend's
	// older copy and be undone there (review sec14 H1). After the resend
	// is written the subtree is read again: an object that changed
	// meanwhile is sent again as it is now, one that is gone is sent as
	// deleted, until a pass finds nothing (at most resendPasses).
	sent := map[string][sha256.Size]byte{}
	if err := s.resendWalk(ctx, root, func(key, entity, id string, rec any) error {
		b, _ := json.Marshal(rec)
		sent[key] = sha256.Sum256(b)
		rw.count(entity)
		return rw.add(entity, id, b)
	}); err != nil {
		return ResendResult{}, err
	}
	if err := rw.flush(true); err != nil {
		return ResendResult{}, err
	}
	for pass := 0; ; pass++ {
		if pass == resendPasses {
			s.log.Warn("a resend's subtree kept changing while it was sent: what changed after its last pass travels "+
				"as its own changes", zap.String("resend_id", res.ResendID), zap.String("org_id", root.ID))
			break
		}
		seen := make(map[string]bool, len(sent))
		again := 0
		if err := s.resendWalk(ctx, root, func(key, entity, id string, rec any) error {
			was, ok := sent[key]
			if !ok {
				return nil // new since: its own change follows the resend
			}
			seen[key] = true
			b, _ := json.Marshal(rec)
			if sum := sha256.Sum256(b); sum != was {
				sent[key] = sum
				again++
				return rw.add(entity, id, b)
			}
			return nil
		}); err != nil {
			return ResendResult{}, err
		}
		for _, key := range slices.Sorted(maps.Keys(sent)) {
			if seen[key] {
				continue
			}
			// not in the subtree any more: deleted, or moved out of it
			// (then sent as it is now, never as deleted)
			delete(sent, key)
			again++
			entity, id, rec, err := s.resendObject(ctx, key)
			switch {
			case err != nil:
				return ResendResult{}, err
			case rec == nil:
				err = rw.addGone(key)
			default:
				b, _ := json.Marshal(rec)
				err = rw.add(entity, id, b)
			}
			if err != nil {
				return ResendResult{}, err
			}
		}
		if err := rw.flush(true); err != nil {
			return ResendResult{}, err
		}
		if again == 0 {
			break
		}
	}
	s.appendAudit(ctx, s.audit(ctx, "org.resend", "org:"+root.ID, root.ID, "success", "OK", start, map[string]string{
		"resend_id": res.ResendID, "orgs": strconv.Itoa(res.Orgs), "people": strconv.Itoa(res.People),
		"groups": strconv.Itoa(res.Groups), "account_links": strconv.Itoa(res.Links), "fingers": strconv.Itoa(res.Fingers),
		"authenticator_apps": strconv.Itoa(res.TOTPApps), "events": strconv.Itoa(res.Events)}))
	return res, nil
}

// resendPasses bounds the passes that send again what changed while a
// resend was read; resendTimeout the whole resend.
const (
	resendPasses  = 5
	resendTimeout = 30 * time.Minute
)

// Bounds of one resend event: importReplicaChunk objects and
// resendEventBytes of them (NATS refuses a message over its max_payload,
// 1 MiB by default, and the outbox would stop at it: review sec14 H2); a
// group's members travel resendMembersPerItem at a time.
// (Variables so that tests may lower them.)
var (
	resendEventBytes     = 256 << 10
	resendMembersPerItem = 4000
)

// resendWalk calls emit for every object of root's subtree homed here, in
// the order a centre applies them: orgs (parents first), each person with
// their account links, fingers and authenticator app, then groups with
// their members. key names the object (kind and id) across walks.
func (s *Service) resendWalk(ctx context.Context, root *Org, emit func(key, entity, id string, rec any) error) error {
	orgs := map[string]bool{root.ID: true}
	subtree := []*Org{root}
	if err := eachPage(ctx, func(p Page) ([]*Org, string, error) {
		return s.store.ListOrgs(ctx, OrgFilter{ParentID: root.ID, Subtree: true}, p)
	}, func(o *Org) {
		if !orgs[o.ID] && s.homes.Owns(o.Path) {
			orgs[o.ID] = true
			subtree = append(subtree, o)
		}
	}); err != nil {
		return err
	}
	for _, o := range subtree {
		if err := emit("org:"+o.ID, "org", o.ID, orgReplica(o)); err != nil {
			return err
		}
	}
	for token := ""; ; {
		people, next, err := s.store.ListUsers(ctx, UserFilter{OrgID: root.ID, Subtree: true}, Page{Size: 500, Token: token})
		if err != nil {
			return err
		}
		for _, u := range people {
			if orgs[u.OrgID] {
				if err := s.resendPerson(ctx, u, emit); err != nil {
					return err
				}
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	var groups []string
	if err := eachPage(ctx, func(p Page) ([]*Group, string, error) {
		return s.store.ListGroups(ctx, GroupFilter{Within: []string{root.ID}}, p)
	}, func(g *Group) {
		if orgs[g.OrgID] {
			groups = append(groups, g.ID)
		}
	}); err != nil {
		return err
	}
	for _, gid := range groups {
		g, err := s.store.GetGroup(ctx, gid)
		if isNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		r := groupReplica(g)
		members := append([]string{}, g.MemberIDs...)
		r.Members = &members
		if err := emit("group:"+g.ID, "group", g.ID, r); err != nil {
			return err
		}
	}
	return nil
}

// resendPerson emits person u, with their account links, fingers and
// authenticator app.
func (s *Service) resendPerson(ctx context.Context, u *User, emit func(key, entity, id string, rec any) error) error {
	if err := emit("user:"+u.ID, "user", u.ID, s.withSealed(userReplica(u, true), u)); err != nil {
		return err
	}
	var links []*AccountLink
	if err := eachPage(ctx, func(p Page) ([]*AccountLink, string, error) {
		return s.store.ListLinks(ctx, LinkFilter{UserID: u.ID}, p)
	}, func(l *AccountLink) { links = append(links, l) }); err != nil {
		return err
	}
	for _, l := range links {
		if err := emit("link:"+l.ID+"/"+u.ID, "link", l.ID, linkReplica(l)); err != nil {
			return err
		}
	}
	fs, err := s.store.ListFingers(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if err := emit(fmt.Sprintf("finger:%s/%d", u.ID, f.Position), "finger", u.ID, s.fingerReplicaOf(f)); err != nil {
			return err
		}
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	if t != nil {
		return emit("totp:"+u.ID, "totp", u.ID, s.totpReplicaOf(t))
	}
	return nil
}

// resendObject reads the object key names as it is now (rec nil: it is
// gone), for one that left the subtree while a resend read it.
func (s *Service) resendObject(ctx context.Context, key string) (entity, id string, rec any, err error) {
	kind, id, _ := strings.Cut(key, ":")
	gone := func(err error) (string, string, any, error) {
		if isNotFound(err) {
			return kind, id, nil, nil
		}
		return "", "", nil, err
	}
	switch kind {
	case "org":
		o, err := s.store.GetOrg(ctx, id)
		if err != nil {
			return gone(err)
		}
		return kind, id, orgReplica(o), nil
	case "user":
		u, err := s.store.GetUser(ctx, id)
		if err != nil {
			return gone(err)
		}
		return kind, id, s.withSealed(userReplica(u, true), u), nil
	case "group":
		g, err := s.store.GetGroup(ctx, id)
		if err != nil {
			return gone(err)
		}
		r := groupReplica(g)
		members := append([]string{}, g.MemberIDs...)
		r.Members = &members
		return kind, id, r, nil
	case "link":
		link, _, _ := strings.Cut(id, "/")
		l, err := s.store.GetLink(ctx, link)
		if err != nil {
			return gone(err)
		}
		return kind, link, linkReplica(l), nil
	case "finger":
		user, pos, _ := strings.Cut(id, "/")
		fs, err := s.store.ListFingers(ctx, user)
		if err != nil {
			return gone(err)
		}
		for _, f := range fs {
			if strconv.Itoa(f.Position) == pos {
				return kind, user, s.fingerReplicaOf(f), nil
			}
		}
		return kind, id, nil, nil
	case "totp":
		t, err := s.getTOTP(ctx, id)
		if err != nil || t == nil {
			return kind, id, nil, err
		}
		return kind, id, s.totpReplicaOf(t), nil
	}
	return kind, id, nil, nil
}

// goneItem is the Rec of a resend item of entity "gone": an object sent
// earlier in the resend and deleted at home since, as the change that
// deletes it at another centre (expandImported).
type goneItem struct {
	Entity string         `json:"entity"`
	Op     string         `json:"op"`
	Data   map[string]any `json:"data,omitempty"`
}

// resendWriter writes the items of a resend as events (bounded by count
// and bytes) and the events resendEventsPerTx a transaction.
type resendWriter struct {
	s     *Service
	ctx   context.Context
	root  string
	res   *ResendResult
	items []importedItem
	bytes int
	evs   []events.Event
	// in: the objects of items (an object's second item in one event
	// would share its version and be STALE: review sec15 M1)
	in map[string]bool
}

// count counts an object of entity in the result.
func (w *resendWriter) count(entity string) {
	switch entity {
	case "org":
		w.res.Orgs++
	case "user":
		w.res.People++
	case "link":
		w.res.Links++
	case "finger":
		w.res.Fingers++
	case "totp":
		w.res.TOTPApps++
	case "group":
		w.res.Groups++
	}
}

// add adds an object; a group with many members goes as several items
// (the first sets the members, the others add to them).
func (w *resendWriter) add(entity, id string, rec []byte) error {
	if entity == "group" {
		var g groupRecord
		if json.Unmarshal(rec, &g) == nil && g.Members != nil && len(*g.Members) > resendMembersPerItem {
			all := *g.Members
			for from := 0; from < len(all); from += resendMembersPerItem {
				part := all[from:min(from+resendMembersPerItem, len(all))]
				g.Members, g.MembersAppend = &part, from > 0
				if from > 0 {
					// another event: the group's items of one event would
					// share a version, and the later be STALE
					w.cut()
				}
				b, _ := json.Marshal(g)
				if err := w.item(importedItem{Entity: entity, ID: id, Rec: b}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return w.item(importedItem{Entity: entity, ID: id, Rec: rec})
}

// addGone adds the deletion of the object key names.
func (w *resendWriter) addGone(key string) error {
	kind, id, _ := strings.Cut(key, ":")
	g := goneItem{Entity: kind, Op: "deleted"}
	switch kind {
	case "finger":
		user, pos, _ := strings.Cut(id, "/")
		n, _ := strconv.Atoi(pos)
		id, g = user, goneItem{Entity: "user", Op: "finger_deleted", Data: map[string]any{"position": n}}
	case "totp":
		g = goneItem{Entity: "user", Op: "totp_removed"}
	case "link":
		link, user, _ := strings.Cut(id, "/")
		id, g.Data = link, map[string]any{"user_id": user}
	}
	b, _ := json.Marshal(g)
	return w.item(importedItem{Entity: "gone", ID: id, Rec: b})
}

func (w *resendWriter) item(it importedItem) error {
	obj := it.Entity + ":" + it.ID
	if len(w.items) > 0 && (len(w.items) >= importReplicaChunk || w.bytes+len(it.Rec) > resendEventBytes || w.in[obj]) {
		w.cut()
	}
	if w.in == nil {
		w.in = map[string]bool{}
	}
	w.in[obj] = true
	w.items = append(w.items, it)
	w.bytes += len(it.Rec) + len(it.ID) + 32
	return w.flush(false)
}

// cut makes the items so far one event.
func (w *resendWriter) cut() {
	if len(w.items) == 0 {
		return
	}
	objects := make([]string, len(w.items))
	for i, it := range w.items {
		objects[i] = it.Entity + ":" + it.ID
	}
	w.evs = append(w.evs, w.s.changeWith(w.ctx, "org", "resent", w.res.ResendID,
		map[string]any{"resend_id": w.res.ResendID, "org_id": w.root, "objects": objects}, importedReplica{Items: w.items}))
	w.items, w.bytes = nil, 0
	clear(w.in)
}

// flush writes the events made when there are resendEventsPerTx of them,
// or all (with the items not yet an event) when all.
func (w *resendWriter) flush(all bool) error {
	if all {
		w.cut()
	}
	if len(w.evs) >= resendEventsPerTx || all && len(w.evs) > 0 {
		if err := w.s.store.AppendEvents(w.ctx, w.evs); err != nil {
			return err
		}
		w.res.Events += len(w.evs)
		w.evs = nil
		w.s.kick()
	}
	return nil
}
