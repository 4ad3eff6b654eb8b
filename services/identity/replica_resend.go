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
	// Objects are sent in the order a centre applies them (an org before
	// what is in it, a person before what is theirs, groups last), written
	// as they are read: importReplicaChunk objects an event,
	// resendEventsPerTx events a transaction, so that a large subtree holds
	// a few chunks in memory, not the subtree.
	var (
		items []importedItem
		evs   []events.Event
	)
	flush := func(all bool) error {
		for len(items) >= importReplicaChunk || all && len(items) > 0 {
			chunk := items[:min(importReplicaChunk, len(items))]
			objects := make([]string, len(chunk))
			for i, it := range chunk {
				objects[i] = it.Entity + ":" + it.ID
			}
			evs = append(evs, s.changeWith(ctx, "org", "resent", res.ResendID,
				map[string]any{"resend_id": res.ResendID, "org_id": root.ID, "objects": objects}, importedReplica{Items: chunk}))
			items = items[len(chunk):]
		}
		if len(evs) >= resendEventsPerTx || all && len(evs) > 0 {
			if err := s.store.AppendEvents(ctx, evs); err != nil {
				return err
			}
			res.Events += len(evs)
			evs = nil
			s.kick()
		}
		return nil
	}
	add := func(entity, id string, rec any) error {
		b, _ := json.Marshal(rec)
		items = append(items, importedItem{Entity: entity, ID: id, Rec: b})
		return flush(false)
	}
	// orgs, parents first (the listing is by path)
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
		return ResendResult{}, err
	}
	for _, o := range subtree {
		if err := add("org", o.ID, orgReplica(o)); err != nil {
			return ResendResult{}, err
		}
		res.Orgs++
	}
	// people, each with what is theirs
	for token := ""; ; {
		people, next, err := s.store.ListUsers(ctx, UserFilter{OrgID: root.ID, Subtree: true}, Page{Size: 500, Token: token})
		if err != nil {
			return ResendResult{}, err
		}
		for _, u := range people {
			if orgs[u.OrgID] {
				if err := s.resendPerson(ctx, u, add, &res); err != nil {
					return ResendResult{}, err
				}
			}
		}
		if next == "" {
			break
		}
		token = next
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
		if err := add("group", g.ID, r); err != nil {
			return ResendResult{}, err
		}
		res.Groups++
	}
	if err := flush(true); err != nil {
		return ResendResult{}, err
	}
	s.appendAudit(ctx, s.audit(ctx, "org.resend", "org:"+root.ID, root.ID, "success", "OK", start, map[string]string{
		"resend_id": res.ResendID, "orgs": strconv.Itoa(res.Orgs), "people": strconv.Itoa(res.People),
		"groups": strconv.Itoa(res.Groups), "account_links": strconv.Itoa(res.Links), "fingers": strconv.Itoa(res.Fingers),
		"authenticator_apps": strconv.Itoa(res.TOTPApps), "events": strconv.Itoa(res.Events)}))
	return res, nil
}

// resendPerson adds person u to a resend, with their account links,
// fingers and authenticator app.
func (s *Service) resendPerson(ctx context.Context, u *User, add func(entity, id string, rec any) error, res *ResendResult) error {
	if err := add("user", u.ID, s.withSealed(userReplica(u, true), u)); err != nil {
		return err
	}
	res.People++
	var links []*AccountLink
	if err := eachPage(ctx, func(p Page) ([]*AccountLink, string, error) {
		return s.store.ListLinks(ctx, LinkFilter{UserID: u.ID}, p)
	}, func(l *AccountLink) { links = append(links, l) }); err != nil {
		return err
	}
	for _, l := range links {
		if err := add("link", l.ID, linkReplica(l)); err != nil {
			return err
		}
		res.Links++
	}
	fs, err := s.store.ListFingers(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, f := range fs {
		if err := add("finger", u.ID, s.fingerReplicaOf(f)); err != nil {
			return err
		}
		res.Fingers++
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	if t != nil {
		if err := add("totp", u.ID, s.totpReplicaOf(t)); err != nil {
			return err
		}
		res.TOTPApps++
	}
	return nil
}
