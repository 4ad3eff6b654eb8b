package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/uias/uias/services/identity/finger"
)

// methodFinger is the finger as a login's method (audit detail, the
// half-done login's first factor).
const methodFinger = "finger"

// SSOFingerLogin signs a person in on the single sign-on pages with a
// finger: record is the capture agent's minutiae record (ISO/IEC 19794-2
// or ANSI/INCITS 378, one view) of a finger of the person whose central
// login name is login. With password not empty the password is checked
// too (a two-factor login: the finger first, then the password, which
// decides and counts as at the password login).
//
// It shares Authenticate's fingerprint checks: the account's status, org
// and lock, the login gate (a finger that does not match counts towards
// the lockout like a wrong password), the copied-template refusal (the
// stored record itself is never a capture), and fingers that do not open
// at this centre are none. A person set to passwords only
// (ReasonPasswordOnly) and one without an enrolled finger
// (ReasonNoFingerprint) are refused without counting. An unknown login
// costs what a known one does (a match; a hash with a password), and is
// answered ReasonBadCredentials. Throttled per browser address as the
// password login.
//
// A person with an authenticator app enrolled is not signed in by the
// finger, nor by the finger and the password: a match answers
// ReasonOTPRequired with the half-done login (bound to binding, as
// SSOLoginBound), which SSOLoginOTP completes ("finger+totp"). Audited as
// sso.login with detail method "finger" or "finger+password".
func (s *Service) SSOFingerLogin(ctx context.Context, login string, record []byte, password, binding string) (*SSOLoginResult, error) {
	start := s.now()
	const api = "sso.login"
	method := methodFinger
	if password != "" {
		method = methodFinger + "+password"
	}
	_, probe, err := parseFingerRecord(record, "fingerprint", finger.MinMinutiae)
	if err != nil {
		s.appendAudit(ctx, s.audit(ctx, api, claimedAccount(login), "", "failure", "BAD_REQUEST", start,
			map[string]string{"method": method}))
		return nil, err
	}
	a := s.newEarlyAttempt(ssoLoginSource(ctx), api)
	// cover does the work of a check that was not made (an unknown login,
	// an account refused before its finger was compared): counted at the
	// source and its wait, one match, one hash with a password, so that
	// neither the answer's time nor the throttling tells which it was.
	cover := func() error {
		if err := a.admitSource(ctx, "login:"+login, "", start); err != nil {
			return err
		}
		if err := a.wait(ctx); err != nil {
			return err
		}
		s.matcher.Match([]*finger.Template{probe}, []*finger.Template{probe})
		if password != "" {
			return s.verifyDummy(ctx, password)
		}
		return nil
	}
	if err := a.admitSource(ctx, "login:"+login, "", start); err != nil {
		return nil, err
	}
	u, err := s.store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.refund(ctx)
		return nil, err
	}
	if err != nil {
		if err := cover(); err != nil {
			return nil, err
		}
		s.appendAudit(ctx, s.audit(ctx, api, claimedAccount(login), "", "failure", ReasonNoSuchUser.String(), start,
			map[string]string{"method": method}))
		return ssoVerdict(ReasonBadCredentials), nil
	}
	detail := map[string]string{"method": method}
	r, err := s.fingerLoginCheck(ctx, u, probe, sha256.Sum256(record), password, binding, start, a, detail)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Reason == ReasonOK || r.Reason == ReasonOTPRequired || a.hashed:
	case a.userID == "":
		// Refused before the finger was compared (no gate passed): the
		// work of a check, as for an unknown login.
		if err := cover(); err != nil {
			return nil, err
		}
	case password != "":
		// A finger that did not match, with a password: the password is
		// hashed all the same, so that the time does not tell a known
		// login from an unknown one, nor a matching finger (whose
		// password is checked) from another (review sec23 M1).
		if err := s.verifyDummy(ctx, password); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// fingerLoginCheck is SSOFingerLogin's check of u.
func (s *Service) fingerLoginCheck(ctx context.Context, u *User, probe *finger.Template, probeSum [sha256.Size]byte,
	password, binding string, start time.Time, a *loginAttempt, detail map[string]string) (*SSOLoginResult, error) {
	const api = "sso.login"
	if u.PasswordOnly {
		a.refund(ctx)
		s.appendAudit(ctx, s.audit(ctx, api, "user:"+u.ID, u.OrgID, "failure", ReasonPasswordOnly.String(), start, detail))
		return ssoVerdict(ReasonPasswordOnly), nil
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	v, err := s.fingerVerdict(ctx, u, probe, probeSum)
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	switch v {
	case reasonFingersUnusable:
		v, detail["fingers"] = ReasonNoFingerprint, "none opens at this centre"
	case reasonFingerCopied:
		v, detail["probe"] = ReasonBadCredentials, "the record of an enrolled finger (a copy, not a capture)"
	case reasonFingerReplayed:
		v, detail["probe"] = ReasonBadCredentials, "a record presented before (a replay, not a capture)"
	}
	if v == ReasonNoFingerprint {
		a.refund(ctx)
		s.appendAudit(ctx, s.audit(ctx, api, "user:"+u.ID, u.OrgID, "failure", ReasonNoFingerprint.String(), start, detail))
		return ssoVerdict(ReasonNoFingerprint), nil
	}
	// The person's level: the finger with the password or the code (asked
	// next) reaches two factors, the finger alone one; none a
	// certificate's. Told only after the matching finger (and the right
	// password with it).
	need := s.cfg.Policy.PersonLevel(u)
	have := AuthLevelAny
	if password != "" || t != nil {
		have = AuthLevelTwoFactor
	}
	short := have < need
	var r Reason
	if v == ReasonOK && password != "" {
		// Both: the finger matched; the password decides (and counts). A
		// person who enrolled an authenticator app is asked its code
		// after them too: the factor they chose is not skipped because a
		// finger came with the password (review sec23 M3).
		a.detail = detail
		a.partial = t != nil
		r, err = s.checkPassword(ctx, u, password, api, start, a.shortOf(short))
	} else {
		a.partial = t != nil && password == ""
		r, err = s.checkFinger(ctx, u, v == ReasonOK, api, start, a.shortOf(short), detail)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case short && (r == ReasonOK || r == ReasonPasswordExpired):
		return levelVerdict(need), nil
	case r == ReasonOK && a.partial:
		res := ssoVerdict(ReasonOTPRequired)
		if binding != "" {
			first := methodFinger
			if password != "" {
				first = MethodFingerPassword
			}
			if res.OTPToken, err = s.otpLoginToken(u, t, binding, first); err != nil {
				return nil, err
			}
		}
		return res, nil
	case r == ReasonPasswordExpired:
		// The finger and the right (expired) password: the person changes
		// it next, as after a password login.
		return ssoVerdict(r), nil
	case r != ReasonOK:
		return ssoVerdict(r), nil
	}
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, Method: detail["method"],
		NoPassword: password == ""}, nil
}
