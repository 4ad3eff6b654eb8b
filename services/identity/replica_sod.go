package identity

import (
	"context"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/audit"
)

// Separation of duty for the changes of other centres (review sec13 M2).
// An administrator's membership, person move or org move here is held to
// the separation-of-duty pairs by authz before it is written (the admin
// guard's CheckAdmin). A change of another centre is judged by its home
// against that centre's pairs and grants: a person added there to a group
// to which this centre's grants give one role of a pair, while another of
// this centre's grants gives them the other, would hold both here. Before
// ApplyReplica writes such a change it asks the separation check (authz's
// CheckReplicaSeparation, with the person's groups and org as this
// batch leaves them), and a change that would give a person both roles of
// a pair they do not already hold both of is not applied here: a group
// membership or an org move is left out (CONFLICT, a skipped change in
// sync), a person's move leaves them in their org here while the rest of
// the change applies; each is logged and audited (admin.membership,
// denied, SOD_CONFLICT, detail.home_centre).

// SeparationQuestion asks whether a change of another centre would give
// a person both roles of a separation-of-duty pair here: Person joins
// JoinGroup or moves to JoinOrg (Groups and Org: theirs here before it),
// or MoveOrg moves under JoinOrg.
type SeparationQuestion struct {
	Person    string
	Groups    []string
	Org       string
	JoinGroup string
	JoinOrg   string
	MoveOrg   string
}

// SeparationAnswer: Conflict, when not "", says which pair; Person is who
// would hold both roles of it.
type SeparationAnswer struct {
	Conflict string
	Person   string
}

// SetSeparationCheck makes check judge the memberships and moves of other
// centres before ApplyReplica applies them (authz's
// CheckReplicaSeparation). Without one they are applied unjudged (a
// deployment without the authz component). An error of check fails the
// batch, which sync applies again later.
func (s *Service) SetSeparationCheck(check func(ctx context.Context, q SeparationQuestion) (SeparationAnswer, error)) {
	s.separation = check
}

// replicaSeparation asks the separation check q for a change of origin;
// on a conflict it logs it and adds its audit record to w's events. It
// answers whether the change is refused.
func (s *Service) replicaSeparation(ctx context.Context, origin string, q SeparationQuestion, w *ReplicaWrite) (bool, error) {
	if s.separation == nil {
		return false, nil
	}
	start := s.now()
	a, err := s.separation(ctx, q)
	if err != nil || a.Conflict == "" {
		return false, err
	}
	detail := map[string]string{"home_centre": origin, "why": a.Conflict}
	subject, api := "user:"+a.Person, "admin.membership"
	switch {
	case q.MoveOrg != "":
		detail["org"], detail["parent"] = q.MoveOrg, q.JoinOrg
	case q.JoinGroup != "":
		detail["group"] = q.JoinGroup
	default:
		detail["org"] = q.JoinOrg
	}
	s.log.Warn("a change of another centre would give a person both roles of a separation-of-duty pair here: not applied",
		zap.String("origin", origin), zap.String("user_id", a.Person), zap.String("group_id", q.JoinGroup),
		zap.String("org_id", q.JoinOrg), zap.String("moved_org_id", q.MoveOrg), zap.String("pair", a.Conflict))
	w.Events = append(w.Events, s.auditor.Event(ctx, audit.Action{API: api, Subject: subject, Result: audit.ResultDenied,
		Reason: "SOD_CONFLICT", Start: start, Detail: detail}))
	return true, nil
}

// replicaGroupsOf returns the groups person id is in here as the batch's
// changes before this one leave them (sorted), and the set to update.
func (s *Service) replicaGroupsOf(ctx context.Context, id string, b *replicaBatch) ([]string, map[string]bool, error) {
	m, ok := b.members[id]
	if !ok {
		gs, err := s.store.UserGroups(ctx, id)
		if err != nil && !isNotFound(err) {
			return nil, nil, err
		}
		m = make(map[string]bool, len(gs))
		for _, g := range gs {
			m[g.ID] = true
		}
		b.members[id] = m
	}
	out := make([]string, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	slices.Sort(out)
	return out, m, nil
}

// replicaMembership judges w, a member_add or member_remove of group
// groupID from origin, and keeps the batch's view of the member's groups.
func (s *Service) replicaMembership(ctx context.Context, origin, groupID string, w *ReplicaWrite, b *replicaBatch) error {
	if s.separation == nil {
		return nil
	}
	groups, m, err := s.replicaGroupsOf(ctx, w.Member, b)
	if err != nil {
		return err
	}
	if w.Op == ReplicaMemberRemove {
		delete(m, groupID)
		return nil
	}
	org, held, err := s.replicaPersonOrg(ctx, w.Member, b)
	if err != nil || !held {
		return err
	}
	refused, err := s.replicaSeparation(ctx, origin, SeparationQuestion{Person: w.Member, Groups: groups, Org: org, JoinGroup: groupID}, w)
	switch {
	case err != nil:
		return err
	case refused:
		w.Op = ReplicaRefuse
	default:
		m[groupID] = true
	}
	return nil
}

// replicaPersonOrg is the org of person id here as the batch leaves it
// (held false: no such person here).
func (s *Service) replicaPersonOrg(ctx context.Context, id string, b *replicaBatch) (string, bool, error) {
	if org, ok := b.users[id]; ok {
		return org, true, nil
	}
	org, err := s.store.UserOrg(ctx, id)
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	b.users[id] = org
	return org, true, nil
}

// replicaMemberSet is the membership of group groupID a resend of origin
// sets here: members, less those whose joining would break a pair here
// (judged as a member_add each, refused ones audited); the batch's view of
// each person's groups follows.
func (s *Service) replicaMemberSet(ctx context.Context, origin, groupID string, members []string, appendOnly bool,
	gw *ReplicaWrite, b *replicaBatch) (keep, added, removed []string, err error) {
	cur := map[string]bool{}
	g, err := s.store.GetGroup(ctx, groupID)
	switch {
	case err == nil:
		for _, m := range g.MemberIDs {
			cur[m] = true
		}
	case !isNotFound(err):
		return nil, nil, nil, err
	}
	keep = make([]string, 0, len(members))
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m] {
			continue
		}
		seen[m] = true
		if cur[m] && appendOnly && b.unset[groupID][m] {
			// removed by the group's first part in this batch, back now
			delete(b.unset[groupID], m)
			added = append(added, m)
			keep = append(keep, m)
			continue
		}
		if !cur[m] {
			if _, held, err := s.replicaPersonOrg(ctx, m, b); err != nil {
				return nil, nil, nil, err
			} else if !held {
				continue // not held here (the home's only)
			}
			if s.separation != nil {
				w := ReplicaWrite{Op: ReplicaMemberAdd, Member: m}
				if err := s.replicaMembership(ctx, origin, groupID, &w, b); err != nil {
					return nil, nil, nil, err
				}
				gw.Events = append(gw.Events, w.Events...)
				if w.Op == ReplicaRefuse {
					continue
				}
			}
			added = append(added, m)
		}
		keep = append(keep, m)
	}
	for _, m := range slices.Sorted(maps.Keys(cur)) {
		if !seen[m] && !appendOnly {
			removed = append(removed, m)
			if b.unset == nil {
				b.unset = map[string]map[string]bool{}
			}
			if b.unset[groupID] == nil {
				b.unset[groupID] = map[string]bool{}
			}
			b.unset[groupID][m] = true
			if gs, ok := b.members[m]; ok {
				delete(gs, groupID)
			}
		}
	}
	return keep, added, removed, nil
}
