package identity

import (
	"context"
	"errors"

	"github.com/uias/uias/pkg/caller"
)

// SSOLoginResult is the verdict of a single sign-on login.
type SSOLoginResult struct {
	Reason  Reason
	Message string
	User    *User // set when Reason is ReasonOK
}

// SSOLogin checks a person's central login name and password for the
// single sign-on login page (the ticket component's CAS login). It shares
// Authenticate's checks (status, org, lock, login gate, hash, lockout,
// expiry) and is throttled per client address. An unknown login is
// answered like a wrong password, after the same work (one hash).
func (s *Service) SSOLogin(ctx context.Context, login, password string) (*SSOLoginResult, error) {
	start := s.now()
	a := s.newEarlyAttempt(ssoLoginSource(ctx), "sso.login")
	if err := a.admitSource(ctx, "login:"+login, "", start); err != nil {
		return nil, err
	}
	u, err := s.store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.refund(ctx)
		return nil, err
	}
	if err != nil {
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
		if err := s.verifyDummy(ctx, password); err != nil {
			return nil, err
		}
		s.appendAudit(ctx, s.audit(ctx, "sso.login", claimedAccount(login), "", "failure", ReasonNoSuchUser.String(), start, nil))
		return &SSOLoginResult{Reason: ReasonBadCredentials, Message: reasonMessages[ReasonBadCredentials]}, nil
	}
	r, err := s.checkPassword(ctx, u, password, "sso.login", start, a)
	if err != nil {
		return nil, err
	}
	if r != ReasonOK {
		if !a.hashed {
			if err := s.verifyDummy(ctx, password); err != nil {
				return nil, err
			}
		}
		return &SSOLoginResult{Reason: r, Message: reasonMessages[r]}, nil
	}
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u}, nil
}

// PersonAttributes are what a ticket validation releases to an application.
type PersonAttributes struct {
	User         *User
	OrgName      string
	AppAccountID string
	Groups       []string
}

// SSOAttributes returns the attributes of user id for application appID.
func (s *Service) SSOAttributes(ctx context.Context, id, appID string) (*PersonAttributes, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &PersonAttributes{User: u}
	if u.OrgID != "" {
		if o, err := s.store.GetOrg(ctx, u.OrgID); err == nil {
			out.OrgName = o.Name
		}
	}
	if appID != "" {
		links, _, err := s.store.ListLinks(ctx, LinkFilter{UserID: id, AppID: appID}, Page{Size: 1})
		if err != nil {
			return nil, err
		}
		if len(links) > 0 && links[0].Status == StatusActive {
			out.AppAccountID = links[0].AppAccountID
		}
	}
	return out, nil
}

// ssoLoginSource is the source of an SSO login: the browser's address, as
// the edge decided it.
func ssoLoginSource(ctx context.Context) loginSource {
	return adminLoginSource(caller.From(ctx).ClientIP)
}
