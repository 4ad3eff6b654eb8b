package identity

import (
	"context"
	"errors"
)

// MethodPeer is the method audited for a sign-in on a peer centre's word
// (sign-in across centres, ADR 0030).
const MethodPeer = "peer"

// SSOPeerLogin answers whether the person userID, held here (home or
// replica), may sign in on the word of centre peer, which vouches for a
// sign-in of level (1 any, 2 two factors, 3 certificate): the person must
// exist here, be active, below no disabled org, not locked here, and level
// must reach their own (Policy.PersonLevel). Audited as sso.login with
// method "peer"; nothing is counted (no credential was tried here).
func (s *Service) SSOPeerLogin(ctx context.Context, userID string, level int, peer string) (*SSOLoginResult, error) {
	start := s.now()
	const api = "sso.login"
	detail := map[string]string{"method": MethodPeer, "peer": peer}
	fail := func(subject, org string, r *SSOLoginResult) (*SSOLoginResult, error) {
		s.appendAudit(ctx, s.audit(ctx, api, subject, org, "failure", r.Reason.String(), start, detail))
		return r, nil
	}
	subject := "user:" + userID
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return fail(subject, "", ssoVerdict(ReasonNoSuchUser))
	}
	if err != nil {
		return nil, err
	}
	if u.Status != StatusActive {
		return fail(subject, u.OrgID, ssoVerdict(ReasonAccountDisabled))
	}
	if u.OrgID != "" {
		d, err := s.store.DisabledInOrgChain(ctx, u.OrgID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if d != "" {
			return fail(subject, u.OrgID, ssoVerdict(ReasonAccountDisabled))
		}
	}
	if u.Locked(s.now()) {
		return fail(subject, u.OrgID, ssoVerdict(ReasonAccountLocked))
	}
	if need := s.cfg.Policy.PersonLevel(u); need > level {
		return fail(subject, u.OrgID, levelVerdict(need))
	}
	s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "success", "OK", start, detail))
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, Method: MethodPeer, NoPassword: true}, nil
}
