package identity

import (
	"context"
	"errors"
)

// SSOExternalLogin signs a person in on the single sign-on pages with an
// external authenticator's credential: login is the person's central
// login name, typ the authenticator (ExternalSource.Name), cred what they
// presented; with password not empty (required where the authenticator
// is RequirePassword) the password is checked first (two factors).
//
// The checks are Authenticate's auth type 5 with the sign-in page's
// rules, as SSOFingerLogin's: throttled per browser address; an unknown
// login is answered ReasonBadCredentials without asking the authenticator
// (a password given is hashed all the same); a person set to passwords
// only (ReasonPasswordOnly) or whose org the authenticator is not open to
// (ReasonExternalNotAllowed) is refused before it is asked — while the
// authenticator gives no verdict (externalSilent) these three are
// answered errExternalUnavailable instead when no password is given, as a
// person it is asked about (sec31a L2); a rejected
// credential counts towards the lockout; no verdict is
// errExternalUnavailable. A person with an authenticator app enrolled who
// gave no password is asked its code next (ReasonOTPRequired with the
// half-done login bound to binding; SSOLoginOTP completes it,
// "external:NAME+totp"). The person's level is told after the right
// credentials only (levelVerdict). A login answers Level, the level it
// reached. Audited as sso.login with detail method and authenticator.
func (s *Service) SSOExternalLogin(ctx context.Context, login, typ string, cred []byte, password, binding string) (*SSOLoginResult, error) {
	start := s.now()
	const api = "sso.login"
	e := s.ext.byName[typ]
	switch {
	case e == nil:
		s.appendAudit(ctx, s.audit(ctx, api, claimedAccount(login), "", "failure", "BAD_REQUEST", start,
			map[string]string{"method": "external"}))
		return nil, badField("type", "names no external authenticator configured here")
	case len(cred) == 0:
		return nil, badField("credential", "the credential is required")
	case e.RequirePassword && password == "":
		return nil, badField("password", "the authenticator %q is a second factor: the password is required with it", e.Name)
	}
	method := e.Method()
	if password != "" {
		method += "+password"
	}
	detail := map[string]string{"method": method, "authenticator": e.Name}
	a := s.newEarlyAttempt(ssoLoginSource(ctx), api)
	if err := a.admitSource(ctx, "login:"+login, "", start); err != nil {
		return nil, err
	}
	u, err := s.store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.refund(ctx)
		return nil, err
	}
	// silent: without a password (which decides first for a person e is
	// asked about), a login e would not be asked about is answered as one
	// it is asked about while e gives no verdict (externalSilent).
	silent := password == "" && s.externalSilent(e)
	if err != nil {
		// No account: the authenticator is not asked (there is nobody to
		// ask about); a password is hashed as for a known login.
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
		if password != "" {
			if err := s.verifyDummy(ctx, password); err != nil {
				return nil, err
			}
		}
		if silent {
			a.refund(ctx)
			s.appendAudit(ctx, s.audit(ctx, api, claimedAccount(login), "", "failure", ReasonNoSuchUser.String(), start,
				withDetail(detail, "answered", ReasonExternalUnavailable)))
			return nil, errExternalUnavailable
		}
		s.appendAudit(ctx, s.audit(ctx, api, claimedAccount(login), "", "failure", ReasonNoSuchUser.String(), start, detail))
		return ssoVerdict(ReasonBadCredentials), nil
	}
	refuse := func(r Reason) (*SSOLoginResult, error) {
		a.refund(ctx)
		if silent {
			s.appendAudit(ctx, s.audit(ctx, api, "user:"+u.ID, u.OrgID, "failure", r.String(), start,
				withDetail(detail, "answered", ReasonExternalUnavailable)))
			return nil, errExternalUnavailable
		}
		s.appendAudit(ctx, s.audit(ctx, api, "user:"+u.ID, u.OrgID, "failure", r.String(), start, detail))
		return ssoVerdict(r), nil
	}
	if u.PasswordOnly {
		return refuse(ReasonPasswordOnly)
	}
	if ok, err := s.externalAllowed(ctx, u, e); err != nil {
		a.refund(ctx)
		return nil, err
	} else if !ok {
		return refuse(ReasonExternalNotAllowed)
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	need := s.cfg.Policy.PersonLevel(u)
	have := externalLevel(e, password != "" || t != nil)
	short := have < need
	if password != "" {
		a.detail, a.pending = detail, "EXTERNAL_REQUIRED"
		a.partial = true
		r, err := s.checkPassword(ctx, u, password, api, start, a.shortOf(short))
		switch {
		case err != nil:
			return nil, err
		case short && (r == ReasonOK || r == ReasonPasswordExpired):
			return levelVerdict(need), nil
		case r != ReasonOK:
			return ssoVerdict(r), nil
		}
		a = s.newEarlyAttempt(ssoLoginSource(ctx), api)
	}
	a.partial = t != nil && password == ""
	r, err := s.checkExternal(ctx, u, e, cred, api, start, a.shortOf(short), detail)
	if err != nil {
		return nil, err
	}
	if r != ReasonOK && silent && s.externalSilent(e) {
		// Refused before e was asked (locked, disabled, ...: a verdict
		// would have cleared silent) while e gives no verdict: answered
		// as one it is asked about (recorded with the refusal's reason).
		return nil, errExternalUnavailable
	}
	switch {
	case short && r == ReasonOK:
		return levelVerdict(need), nil
	case r == ReasonOK && a.partial:
		res := ssoVerdict(ReasonOTPRequired)
		if binding != "" {
			if res.OTPToken, err = s.otpLoginToken(u, t, binding, e.Method()); err != nil {
				return nil, err
			}
		}
		return res, nil
	case r != ReasonOK:
		return ssoVerdict(r), nil
	}
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, Method: method,
		NoPassword: password == "", Level: have}, nil
}

// externalOTPLevel is the level of a login with an external
// authenticator's credential and the authenticator app's code.
const externalOTPLevel = AuthLevelTwoFactor
