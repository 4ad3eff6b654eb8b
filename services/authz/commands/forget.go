package commands

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// ReasonSubjectDeleted is the reason of the audit record of a grant
// deleted because its subject (a person or a group) was deleted in
// identity (API grant.revoke, detail "cause": the identity event).
const ReasonSubjectDeleted = "SUBJECT_DELETED"

// forgetBatch bounds the grants deleted in one transaction.
const forgetBatch = 500

// DeleteGrantsOf deletes the grants of sub, a person or group deleted in
// identity (cause: the identity event, "user.deleted" or "group.deleted"),
// as RevokeGrant would one by one: each is a grant delete change with its
// CHANGES event (which other replicas, other centres and sync follow) and
// an audit record (grant.revoke, reason SUBJECT_DELETED, the cause in
// detail), by the caller in ctx. Left out are the grants held here as
// replicas of another centre (their home centre deletes them and the
// deletion arrives over sync) and the last security auditor's grants
// (nobody removes the last auditor; see auditors). It is idempotent: run
// again, or on several replicas at once, it deletes what is left, nothing
// when nothing is. It returns how many grants it deleted.
func (s *Service) DeleteGrantsOf(ctx context.Context, sub authz.Subject, cause string) (int, error) {
	if sub.ID == "" || (sub.Kind != authz.SubjectUser && sub.Kind != authz.SubjectGroup && sub.Kind != authz.SubjectOrg) {
		return 0, badModel("only a person's, a group's or an org's grants go with them")
	}
	deleted := 0
	for attempt := 0; attempt < writeAttempts; {
		if err := s.CatchUp(ctx); err != nil {
			return deleted, err
		}
		s.catchMu.Lock()
		expect := s.idx.Revision()
		ids, err := s.grantsToForget(ctx, sub)
		if err != nil || len(ids) == 0 {
			s.catchMu.Unlock()
			return deleted, err
		}
		if len(ids) > forgetBatch {
			ids = ids[:forgetBatch]
		}
		start := s.now()
		chs, err := s.st.DeleteGrantsOf(ctx, expect, sub, ids, func(ch authz.Change) []events.Event {
			return []events.Event{s.changeEvent(ctx, ch), s.auditor.Event(ctx, audit.Action{API: "grant.revoke",
				Subject: "grant:" + ch.ID, Result: audit.ResultSuccess, Reason: ReasonSubjectDeleted, Start: start,
				Detail: map[string]string{"revision": fmt.Sprint(ch.Rev), "cause": cause, "subject": sub.String()}})}
		})
		if errors.Is(err, authz.ErrStale) {
			s.catchMu.Unlock()
			attempt++
			continue
		}
		if err != nil {
			s.catchMu.Unlock()
			return deleted, err
		}
		var aerr error
		if len(chs) > 0 {
			aerr = s.idx.Apply(chs...)
		}
		s.catchMu.Unlock()
		if aerr != nil {
			s.log.Warn("authz index: own change not applied", zap.Error(aerr))
		}
		if len(chs) == 0 {
			// The index named grants the store does not hold as the
			// subject's at the same revision: nothing more to do here.
			return deleted, nil
		}
		deleted += len(chs)
		s.signal()
		s.kick()
	}
	return deleted, authz.ErrStale
}

// grantsToForget returns the ids of the grants of sub DeleteGrantsOf
// deletes (see there), from the index; called with catchMu held.
func (s *Service) grantsToForget(ctx context.Context, sub authz.Subject) ([]string, error) {
	gs := s.idx.Grants(index.GrantFilter{Subject: &sub})
	if len(gs) == 0 {
		return nil, nil
	}
	keepAuditor := false
	if sub.Kind == authz.SubjectUser {
		others := s.auditors("")
		delete(others, sub.ID)
		keepAuditor = len(others) == 0
	}
	rs, _ := s.st.(authz.ReplicaStore)
	ids := make([]string, 0, len(gs))
	for _, g := range gs {
		if keepAuditor && g.Role == authz.RoleSecurityAuditor {
			s.log.Warn("grant of the last security auditor kept although the person was deleted: appoint another security auditor, then revoke it",
				zap.String("grant", g.ID), zap.String("subject", sub.String()))
			continue
		}
		if rs != nil && s.homes != nil {
			if origin, held, err := rs.ReplicaOrigin(ctx, authz.ObjGrant, g.ID); err != nil {
				return nil, err
			} else if held {
				s.log.Debug("grant of a deleted subject held as a replica: its home centre deletes it",
					zap.String("grant", g.ID), zap.String("home", origin))
				continue
			}
		}
		ids = append(ids, g.ID)
	}
	return ids, nil
}
