package identity

import (
	"context"
	"errors"

	"go.uber.org/zap"
)

// Home centres (pkg/centre): in a multi-centre deployment, orgs, people,
// groups and account links are written at the home centre of their org's
// subtree, and applications at the centre that registered them (App.Home);
// other centres refuse the write with HOME_CENTRE_ELSEWHERE naming the home.
// Deps.Homes nil is a single centre: every write is local.

// ownOrg refuses a write to something in org orgID (what names it) unless
// this centre is the org's home. A missing org is left to the caller's own
// check, which reports it.
func (s *Service) ownOrg(ctx context.Context, orgID, what string) error {
	if s.homes == nil {
		return nil
	}
	o, err := s.store.GetOrg(ctx, orgID)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.homes.CheckOrg(o.Path, what)
}

// homeOfUser is the home centre of u's org ("" in a single centre, or
// when u's org is not held here); a store failure is returned, never
// taken for "no home" (review rr29 A5).
func (s *Service) homeOfUser(ctx context.Context, u *User) (string, error) {
	if s.homes == nil {
		return "", nil
	}
	o, err := s.store.GetOrg(ctx, u.OrgID)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return s.homes.HomeOfPath(o.Path), nil
}

// ownUser refuses a write to user u unless this centre is the home of u's org.
func (s *Service) ownUser(ctx context.Context, u *User) error {
	return s.ownOrg(ctx, u.OrgID, "user "+u.ID)
}

// ownApp refuses a write to application a unless it is homed here: one
// created here is; a replica of another centre's is not.
func (s *Service) ownApp(a *App) error { return s.homes.CheckHome(a.Home, "application "+a.ID) }

// ownGlobal refuses a write to global data (the root org) unless this is
// the level-1 centre.
func (s *Service) ownGlobal(what string) error { return s.homes.CheckGlobal(what) }

// ownOrgOrRoot: a new org under parentID needs the parent's home; the root
// org (no parent) is the level-1 centre's.
func (s *Service) ownOrgOrRoot(ctx context.Context, parentID string) error {
	if parentID == "" {
		return s.ownGlobal("the root org")
	}
	return s.ownOrg(ctx, parentID, "org "+parentID)
}

// elsewhere reports whether person u is homed at another centre.
func (s *Service) elsewhere(ctx context.Context, u *User) bool {
	if s.homes == nil {
		return false
	}
	org := u.OrgID
	if org == "" { // a row read without it (an export's)
		var err error
		if org, err = s.store.UserOrg(ctx, u.ID); err != nil {
			return false
		}
	}
	return s.ownOrg(ctx, org, "user "+u.ID) != nil
}

// logUnreadable logs a sealed value of u that does not open: an error for
// a person of this centre; for one of another centre whose key ring is not
// this centre's, expected (docs: "Sealed data between centres"), so only at
// debug level (trial10 L1: an ERROR line on every login).
func (s *Service) logUnreadable(ctx context.Context, u *User, msg string, err error) {
	if s.elsewhere(ctx, u) {
		s.log.Debug(msg+" (a person of another centre)", zap.String("user_id", u.ID), zap.Error(err))
		return
	}
	s.log.Error(msg, zap.String("user_id", u.ID), zap.Error(err))
}
