package identity

import (
	"context"
	"errors"
)

// MethodPeer is the method audited for a sign-in on a peer centre's word
// (sign-in across centres, ADR 0030).
const MethodPeer = "peer"

// The audited reasons of a person a peer may not vouch for (sec28b H2);
// the verdict is REASON_PASSWORD_ONLY: sign in here with the password.
const (
	// ReasonPeerNotHome: the person's home centre is not the peer (nor is
	// the peer this level-2 centre's level 1 vouching for its own people).
	ReasonPeerNotHome = "PEER_NOT_HOME"
	// ReasonPeerAdministrator: the person may administer (is_admin or an
	// administrator role): never signed in on a peer's word.
	ReasonPeerAdministrator = "PEER_ADMINISTRATOR"
)

// peerMayVouch reports whether centre peer may vouch here for u: u's home
// centre is peer, or this is a level-2 centre, peer its level-1 centre and
// u homed here (level 1 holds and replicates this centre's people: 004
// §2.1.1, people sign in through level 1). Never in a single centre (no
// homes to tell), never for a person whose home cannot be told.
func (s *Service) peerMayVouch(ctx context.Context, u *User, peer string) (bool, error) {
	if s.homes == nil || peer == "" || peer == s.homes.Self {
		return false, nil
	}
	home, err := s.homeOfUser(ctx, u)
	if err != nil || home == "" {
		return false, err
	}
	return home == peer || (s.homes.Level == 2 && peer == s.homes.Parent && home == s.homes.Self), nil
}

// SSOPeerLogin answers whether the person userID, held here (home or
// replica), may sign in on the word of centre peer, which vouches for a
// sign-in of level (1 any, 2 two factors, 3 certificate): the person must
// exist here, be homed at peer (or, at a level-2 centre, be its own person
// vouched for by its level 1: peerMayVouch), not be an administrator (the
// legacy flag or any administrator role: they sign in here with their own
// password), be active, below no disabled org, not locked here, and level
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
	// Whose word: a peer vouches only for its own people, never for
	// administrators (sec28b H2; ADR 0030 amendment).
	may, err := s.peerMayVouch(ctx, u, peer)
	if err != nil {
		return nil, err
	}
	if !may {
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonPeerNotHome, start, detail))
		return peerRefused(), nil
	}
	admin, err := s.mayAdmin(ctx, u)
	if err != nil {
		return nil, err
	}
	if admin {
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonPeerAdministrator, start, detail))
		return peerRefused(), nil
	}
	if v, audited, err := s.unusable(ctx, u); err != nil {
		return nil, err
	} else if v != 0 {
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", audited, start, detail))
		return ssoVerdict(v), nil
	}
	if need := s.cfg.Policy.PersonLevel(u); need > level {
		return fail(subject, u.OrgID, levelVerdict(need))
	}
	s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "success", "OK", start, detail))
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, Method: MethodPeer, NoPassword: true}, nil
}

// peerRefused is the verdict on a person a peer may not vouch for: a
// password here (REASON_PASSWORD_ONLY), with a sentence saying so.
func peerRefused() *SSOLoginResult {
	return &SSOLoginResult{Reason: ReasonPasswordOnly, Message: peerRefusedMessage}
}

const peerRefusedMessage = "this account signs in at this centre with its own password, not on another centre's word"
