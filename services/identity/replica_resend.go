package identity

import (
	"context"
	"encoding/json"
	"strconv"

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
		return ResendResult{}, ErrNotACentre
	}
	root, err := s.store.GetOrg(ctx, id)
	if err != nil {
		return ResendResult{}, err
	}
	if err := s.homes.CheckOrg(root.Path, "org "+root.ID); err != nil {
		return ResendResult{}, err
	}
	res := ResendResult{ResendID: ids.New()}
	var items []importedItem
	add := func(entity, id string, rec any) {
		b, _ := json.Marshal(rec)
		items = append(items, importedItem{Entity: entity, ID: id, Rec: b})
	}
	// orgs, parents first (the listing is by path)
	add("org", root.ID, orgReplica(root))
	res.Orgs++
	orgs := map[string]bool{root.ID: true}
	if err := eachPage(ctx, func(p Page) ([]*Org, string, error) {
		return s.store.ListOrgs(ctx, OrgFilter{ParentID: root.ID, Subtree: true}, p)
	}, func(o *Org) {
		if !orgs[o.ID] && s.homes.Owns(o.Path) {
			orgs[o.ID] = true
			add("org", o.ID, orgReplica(o))
			res.Orgs++
		}
	}); err != nil {
		return ResendResult{}, err
	}
	// people, with what is theirs
	var people []*User
	if err := eachPage(ctx, func(p Page) ([]*User, string, error) {
		return s.store.ListUsers(ctx, UserFilter{OrgID: root.ID, Subtree: true}, p)
	}, func(u *User) {
		if orgs[u.OrgID] {
			people = append(people, u)
		}
	}); err != nil {
		return ResendResult{}, err
	}
	for _, u := range people {
		add("user", u.ID, s.withSealed(userReplica(u, true), u))
		res.People++
	}
	for _, u := range people {
		if err := eachPage(ctx, func(p Page) ([]*AccountLink, string, error) {
			return s.store.ListLinks(ctx, LinkFilter{UserID: u.ID}, p)
		}, func(l *AccountLink) {
			add("link", l.ID, linkReplica(l))
			res.Links++
		}); err != nil {
			return ResendResult{}, err
		}
		fs, err := s.store.ListFingers(ctx, u.ID)
		if err != nil {
			return ResendResult{}, err
		}
		for _, f := range fs {
			add("finger", u.ID, s.fingerReplicaOf(f))
			res.Fingers++
		}
		t, err := s.getTOTP(ctx, u.ID)
		if err != nil {
			return ResendResult{}, err
		}
		if t != nil {
			add("totp", u.ID, s.totpReplicaOf(t))
			res.TOTPApps++
		}
	}
	// groups with their members (after the people)
	var groups []string
	if err := eachPage(ctx, func(p Page) ([]*Group, string, error) {
		return s.store.ListGroups(ctx, GroupFilter{Within: []string{root.ID}}, p)
	}, func(g *Group) {
		if orgs[g.OrgID] {
			groups = append(groups, g.ID)
		}
	}); err != nil {
		return ResendResult{}, err
	}
	for _, gid := range groups {
		g, err := s.store.GetGroup(ctx, gid)
		if err != nil {
			return ResendResult{}, err
		}
		r := groupReplica(g)
		members := append([]string{}, g.MemberIDs...)
		r.Members = &members
		add("group", g.ID, r)
		res.Groups++
	}
	// the events, importReplicaChunk objects each
	var evs []events.Event
	for from := 0; from < len(items); from += importReplicaChunk {
		chunk := items[from:min(from+importReplicaChunk, len(items))]
		ids := make([]string, len(chunk))
		for i, it := range chunk {
			ids[i] = it.Entity + ":" + it.ID
		}
		evs = append(evs, s.changeWith(ctx, "org", "resent", res.ResendID,
			map[string]any{"resend_id": res.ResendID, "org_id": root.ID, "objects": ids}, importedReplica{Items: chunk}))
	}
	res.Events = len(evs)
	for from := 0; from < len(evs); from += resendEventsPerTx {
		if err := s.store.AppendEvents(ctx, evs[from:min(from+resendEventsPerTx, len(evs))]); err != nil {
			return ResendResult{}, err
		}
		s.kick()
	}
	s.appendAudit(ctx, s.audit(ctx, "org.resend", "org:"+root.ID, root.ID, "success", "OK", start, map[string]string{
		"resend_id": res.ResendID, "orgs": strconv.Itoa(res.Orgs), "people": strconv.Itoa(res.People),
		"groups": strconv.Itoa(res.Groups), "account_links": strconv.Itoa(res.Links), "fingers": strconv.Itoa(res.Fingers),
		"authenticator_apps": strconv.Itoa(res.TOTPApps), "events": strconv.Itoa(res.Events)}))
	return res, nil
}
