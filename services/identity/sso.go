package identity

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
)

// SSOLoginResult is the verdict of a single sign-on login.
type SSOLoginResult struct {
	Reason  Reason
	Message string
	User    *User // set when Reason is ReasonOK
	// OTPToken is the half-done login with Reason ReasonOTPRequired
	// (SSOLoginBound; for SSOLoginOTP).
	OTPToken string
	// SecondFactor: the login was completed with the authenticator app's
	// code (SSOLoginOTP).
	SecondFactor bool
	// Method is how the person proved who they are (with ReasonOK):
	// "password", "password+totp", "finger", "finger+password",
	// "finger+totp", "kerberos", "kerberos+totp".
	Method string
	// NoPassword: the login did not use the password (a finger, with or
	// without the code): a password that must be changed or has expired
	// is not asked for here.
	NoPassword bool
	// RequiredLevel is the person's level with ReasonAuthLevelTooLow
	// (AuthLevelTwoFactor, AuthLevelCertificate).
	RequiredLevel int
	// Level is the level the login reached (with ReasonOK) where it is
	// not its method's alone: an external authenticator's (external.go);
	// 0 otherwise (MethodLevel of Method).
	Level int
}

// levelVerdict is a sign-in page's login refused for the person's level
// need, after their right credential.
func levelVerdict(need int) *SSOLoginResult {
	r := ssoVerdict(ReasonAuthLevelTooLow)
	r.RequiredLevel = need
	return r
}

// ssoVerdict is a sign-in page's login answered r (not signed in).
func ssoVerdict(r Reason) *SSOLoginResult {
	return &SSOLoginResult{Reason: r, Message: reasonMessages[r]}
}

// SSOLogin checks a person's central login name and password for the
// single sign-on login page (the ticket component's CAS login). It shares
// Authenticate's checks (status, org, lock, login gate, hash, lockout,
// expiry) and is throttled per client address. An unknown login is
// answered like a wrong password, after the same work (one hash).
//
// A person with an authenticator app enrolled is not signed in by a
// password alone: see SSOLoginBound (which a page that asks for the code
// calls); here the right password of such a person answers
// ReasonOTPRequired without a token.
func (s *Service) SSOLogin(ctx context.Context, login, password string) (*SSOLoginResult, error) {
	return s.ssoLogin(ctx, login, password, "", false)
}

func (s *Service) ssoLogin(ctx context.Context, login, password, binding string, bound bool) (*SSOLoginResult, error) {
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
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	a.partial = t != nil
	// The person's level: a password reaches it only with the code (when
	// they have an app, asked next) and never a certificate's. Told only
	// after the right password: the page must not tell anyone who types
	// a login name how that person signs in.
	need := s.cfg.Policy.PersonLevel(u)
	short := need >= AuthLevelCertificate || need == AuthLevelTwoFactor && t == nil
	a.shortOf(short)
	r, err := s.checkPassword(ctx, u, password, "sso.login", start, a)
	if err != nil {
		return nil, err
	}
	if short && (r == ReasonOK || r == ReasonPasswordExpired) {
		return levelVerdict(need), nil
	}
	if t != nil && r == ReasonOK {
		res := &SSOLoginResult{Reason: ReasonOTPRequired, Message: reasonMessages[ReasonOTPRequired]}
		if bound {
			if res.OTPToken, err = s.otpLoginToken(u, t, binding, ""); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	if r != ReasonOK {
		if !a.hashed && (r == ReasonAccountLocked || r == ReasonAccountDisabled) {
			// Refused before the password was checked (checkPassword took
			// the source's count back). The login page answers these as an
			// unknown login, so they cost what one costs: counted at the
			// source and its wait, then one hash. Neither the answer's time
			// nor the source's throttling then tells that the account
			// exists.
			if err := a.admitSource(ctx, "login:"+login, "", start); err != nil {
				return nil, err
			}
			if err := a.wait(ctx); err != nil {
				return nil, err
			}
		}
		if !a.hashed {
			if err := s.verifyDummy(ctx, password); err != nil {
				return nil, err
			}
		}
		return &SSOLoginResult{Reason: r, Message: reasonMessages[r]}, nil
	}
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, Method: MethodPassword}, nil
}

// PersonAttributes are what a ticket validation releases to an application.
type PersonAttributes struct {
	User         *User
	OrgName      string
	AppAccountID string
	Groups       []string
}

// MaxUserGroups bounds the groups a ticket validation releases.
const MaxUserGroups = 200

// SSOAttributes returns the attributes of user id for application appID
// (one read of the store: a ticket validation asks it every time).
func (s *Service) SSOAttributes(ctx context.Context, id, appID string) (*PersonAttributes, error) {
	return s.store.SSOAttributes(ctx, id, appID)
}

// ssoLoginSource is the source of an SSO login: the browser's address, as
// the edge decided it.
func ssoLoginSource(ctx context.Context) loginSource {
	return adminLoginSource(caller.From(ctx).ClientIP)
}

func init() {
	apierr.Register(
		apierr.Reason{Name: "ACCOUNT_LINKED_ELSEWHERE", Code: apierr.AlreadyExists,
			Doc: "Account association: the application account is already linked to another person."},
		apierr.Reason{Name: "APP_ALREADY_LINKED", Code: apierr.FailedPrecondition,
			Doc: "Account association: the person is already linked to another account of this application; an administrator removes that link first."},
	)
}

var (
	errLinkedElsewhere = apierr.New(apierr.AlreadyExists, "ACCOUNT_LINKED_ELSEWHERE", "this account is already linked to another person")
	errAppLinked       = apierr.New(apierr.FailedPrecondition, "APP_ALREADY_LINKED", "you are already linked to another account of this application")
)

// CheckAppAddress checks a legacy-interface caller that presents no
// App_Secret (caller.AppAuthenticator.AuthenticateAddress): the
// application must exist and be active, ip must be on its IP allow-list,
// which must not be empty, its bound client certificate (if any) must be
// the call's (caller.From(ctx).ClientCert), it must not require signed
// requests, and the call counts against its rate limit. Refusals are
// audited like identity's own caller refusals.
func (s *Service) CheckAppAddress(ctx context.Context, appID string, ip netip.Addr) error {
	_, err := s.appAuth.AuthenticateAddress(ctx, appID, ip)
	return err
}

// PersonLink is an active account link with its application's name.
type PersonLink struct {
	AppID, AppName, Account string
}

// PersonLinks lists the active account links of user id (the portal).
func (s *Service) PersonLinks(ctx context.Context, id string) ([]PersonLink, error) {
	if _, err := s.GetUser(ctx, id); err != nil {
		return nil, err
	}
	var out []PersonLink
	p := Page{Size: 200}
	for {
		links, next, err := s.store.ListLinks(ctx, LinkFilter{UserID: id}, p)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			if l.Status != StatusActive {
				continue
			}
			a, err := s.store.GetApp(ctx, l.AppID)
			if err != nil || a.Status != AppActive {
				continue
			}
			out = append(out, PersonLink{AppID: l.AppID, AppName: a.Name, Account: l.AppAccountID})
		}
		if next == "" || len(out) >= 1000 {
			return out, nil
		}
		p.Token = next
	}
}

// LinkAccount links user id to account in application appID, after the
// application confirmed the account (account association, done by the
// person at the portal). Linking the same account again returns the link.
func (s *Service) LinkAccount(ctx context.Context, id, appID, account string) (*AccountLink, error) {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.GetApp(ctx, appID); err != nil {
		return nil, err
	}
	if l, err := s.store.FindLink(ctx, appID, account); err == nil && l.AppAccountID == account {
		if l.UserID == id {
			return l, nil
		}
		return nil, errLinkedElsewhere
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	mine, _, err := s.store.ListLinks(ctx, LinkFilter{UserID: id, AppID: appID}, Page{Size: 1})
	if err != nil {
		return nil, err
	}
	if len(mine) > 0 {
		return nil, errAppLinked
	}
	l := &AccountLink{ID: ids.New(), UserID: id, AppID: appID, AppAccountID: account, Status: StatusActive, CreatedAt: start}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.CreateLink(ctx, l, evs) },
		s.replicaChange(ctx, "link", "created", l.ID, map[string]any{"user_id": id, "app_id": appID, "app_account_id": account}, linkReplica(l)),
		s.audit(ctx, "link.associate", "user:"+id, u.OrgID, "success", "OK", start, map[string]string{"app_id": appID}))
	if errors.Is(err, ErrConflict) {
		return nil, errLinkedElsewhere
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// UnlinkAccount removes user id's own link with application appID (the
// person at their profile page; the caller in ctx is the person).
// NOT_FOUND when they have none.
func (s *Service) UnlinkAccount(ctx context.Context, id, appID string) error {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return err
	}
	mine, _, err := s.store.ListLinks(ctx, LinkFilter{UserID: id, AppID: appID}, Page{Size: 1})
	if err != nil {
		return err
	}
	if len(mine) == 0 {
		return ErrNotFound.WithMessage("you have no account linked with this application")
	}
	l := mine[0]
	return s.write(ctx, func(evs []events.Event) error { return s.store.DeleteLink(ctx, l.ID, evs) },
		s.change(ctx, "link", "deleted", l.ID, map[string]any{"user_id": id, "app_id": appID}),
		s.audit(ctx, "link.unlink", "user:"+id, u.OrgID, "success", "OK", start, map[string]string{"app_id": appID}))
}

// PersonIDNumber returns the identity document number of user id in clear
// ("" when none is recorded), for an application's validatePrincipal.
func (s *Service) PersonIDNumber(ctx context.Context, id string) (string, error) {
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return "", err
	}
	n, _, err := s.openPersonal(ctx, u)
	return n, err
}

// InactivePeople returns which of ids may no longer sign in: no such
// person, an account not active or locked now (an administrator's lock,
// the login gate's while it lasts), or a disabled org at or above theirs.
// The org chains are read once per org. A lock whose event the ticket
// component missed (or one that named too early a state time before
// review sec32a M1) would otherwise leave sessions until their hard
// expiry: ticket.inactive_sweep catches those up (ADR 0047).
func (s *Service) InactivePeople(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	orgs := map[string]bool{} // org id -> disabled in its chain
	now := s.now()
	for _, id := range ids {
		u, err := s.store.GetUser(ctx, id)
		if errors.Is(err, ErrNotFound) {
			out = append(out, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		if !u.Enabled() || u.Locked(now) {
			out = append(out, id)
			continue
		}
		if u.OrgID == "" {
			continue
		}
		off, seen := orgs[u.OrgID]
		if !seen {
			d, err := s.store.DisabledInOrgChain(ctx, u.OrgID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, err
			}
			off = d != ""
			orgs[u.OrgID] = off
		}
		if off {
			out = append(out, id)
		}
	}
	return out, nil
}

// errChangeNeedsLevel refuses a password change by the password alone of a
// person whose level asks more (a second factor or a certificate).
var errChangeNeedsLevel = apierr.New(apierr.FailedPrecondition, "VERIFICATION_FAILED",
	"your sign-in level asks more than the password: sign in first (certificate, or password and code), then change it on your profile, "+
		"or ask an administrator").WithMeta("verdict", ReasonAuthLevelTooLow.String())

// errVerification refuses a password change whose current password (or
// login) is not accepted; the same for an unknown login.
func errVerification(r Reason) *apierr.Error {
	return apierr.New(apierr.FailedPrecondition, "VERIFICATION_FAILED", "current password not accepted: "+reasonMessages[r])
}

// SSOChangePassword changes a person's password on the single sign-on
// pages. The current password is checked as SSOLogin checks it (throttled
// per client address; an unknown login answered like a wrong password
// after the same work); an expired current password is accepted (the
// point is to replace it). The person's SSO sessions end but keepSession
// (the one they changed it in, when not empty).
//
// A person with an authenticator app who is not signed in (keepSession
// empty) must give its code (otp) too: the password alone does not
// replace the password (it would sign the owner out everywhere and lock
// them out of their account without the phone).
func (s *Service) SSOChangePassword(ctx context.Context, login, oldPassword, newPassword, keepSession, otp string) error {
	start := s.now()
	a := s.newEarlyAttempt(ssoLoginSource(ctx), "sso.password.change.verify")
	if err := a.admitSource(ctx, "login:"+login, "", start); err != nil {
		return err
	}
	u, err := s.store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.refund(ctx)
		return err
	}
	if err != nil {
		if err := a.wait(ctx); err != nil {
			return err
		}
		if err := s.verifyDummy(ctx, oldPassword); err != nil {
			return err
		}
		s.appendAudit(ctx, s.audit(ctx, "sso.password.change.verify", claimedAccount(login), "", "failure", ReasonNoSuchUser.String(), start, nil))
		return errVerification(ReasonBadCredentials)
	}
	var t *UserTOTP
	if keepSession == "" {
		if t, err = s.getTOTP(ctx, u.ID); err != nil {
			a.refund(ctx)
			return err
		}
		a.partial = t != nil
	}
	r, err := s.checkPassword(ctx, u, oldPassword, "sso.password.change.verify", start, a)
	if err != nil {
		return err
	}
	if r != ReasonOK && r != ReasonPasswordExpired {
		if !a.hashed {
			if err := s.verifyDummy(ctx, oldPassword); err != nil {
				return err
			}
		}
		return errVerification(r)
	}
	if t != nil {
		const api = "sso.password.change.verify"
		if strings.TrimSpace(otp) == "" {
			return apierr.New(apierr.FailedPrecondition, "VERIFICATION_FAILED", "the authenticator app's code is required with the current password").
				WithMeta("verdict", ReasonOTPRequired.String())
		}
		r, err := s.checkOTP(ctx, u, t, otp, api, start, s.newEarlyAttempt(ssoLoginSource(ctx), api),
			map[string]string{"method": "password+totp"})
		if err != nil {
			return err
		}
		if r != ReasonOK {
			return errVerification(r).WithMeta("verdict", r.String())
		}
	}
	if u.CannotChange {
		return apierr.New(apierr.FailedPrecondition, "CANNOT_CHANGE_PASSWORD", "this user's password can only be changed by an administrator")
	}
	// A person whose level the password alone does not reach changes it
	// signed in (a session of their level) or with their authenticator
	// app's code: the password alone would sign them out everywhere,
	// certificate sessions included (review sec26 L2). Told only after the
	// right password, as the sign-in page tells a level.
	if keepSession == "" && t == nil && s.cfg.Policy.PersonLevel(u) >= AuthLevelTwoFactor {
		s.appendAudit(ctx, s.audit(ctx, "sso.password.change.verify", "user:"+u.ID, u.OrgID, "failure", ReasonAuthLevelTooLow.String(), start, nil))
		return errChangeNeedsLevel
	}
	c := *caller.From(ctx)
	c.Principal, c.PrincipalLogin = u.ID, u.LoginName
	return s.setPassword(caller.With(ctx, &c), u, newPassword, PasswordSet{ByOther: u.PasswordByOther}, true, "sso.password.change", start,
		keepSession)
}
