package identity

import (
	"context"
	"errors"

	ulog "github.com/uias/uias/pkg/log"
)

// MethodKerberos is a login with the Windows domain's Kerberos ticket
// (SPNEGO on the CAS login page; ADR 0022): level 1, as a password.
const MethodKerberos = "kerberos"

// SSOKerberosLogin signs a person in on the single sign-on pages with the
// Kerberos ticket their browser presented (SPNEGO, "already logged on to
// the AD domain": maritime SSO design 004 §2.1.4.1). The ticket component
// verified the ticket with its keytab, checked the client's realm and
// mapped the principal to login; only UIAS components reach this (the
// SSOService rule), as CertLogin.
//
// The checks are CertLogin's: an account with that login name, active, its
// org enabled, not locked, not password-only; then the person's level: a
// Kerberos login is level 1, so a person whose level is 2 or 3 is refused
// ReasonAuthLevelTooLow (with RequiredLevel). An unknown login is
// ReasonBadCredentials. Every call is audited as sso.login with method
// "kerberos" and the principal (masked as a claimed account is), counted
// against the browser's address (taken back on success) so that a stream
// of refused principals is throttled; the account's lockout count is not
// touched (the KDC checked the password, not us).
func (s *Service) SSOKerberosLogin(ctx context.Context, login, principal string) (*SSOLoginResult, error) {
	start := s.now()
	const api = "sso.login"
	detail := map[string]string{"method": MethodKerberos, "principal": ulog.MaskText(principal)}
	fail := func(subject, org string, r Reason, audited Reason) (*SSOLoginResult, error) {
		s.appendAudit(ctx, s.audit(ctx, api, subject, org, "failure", audited.String(), start, detail))
		return ssoVerdict(r), nil
	}
	a := s.newEarlyAttempt(ssoLoginSource(ctx), api)
	if err := a.admitSource(ctx, "kerberos", "", start); err != nil {
		return nil, err
	}
	if err := a.wait(ctx); err != nil {
		return nil, err
	}
	u, err := s.store.GetUserByLogin(ctx, login)
	if errors.Is(err, ErrNotFound) {
		return fail(claimedAccount(login), "", ReasonBadCredentials, ReasonNoSuchUser)
	}
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	subject := "user:" + u.ID
	if u.Status != StatusActive {
		return fail(subject, u.OrgID, ReasonAccountDisabled, ReasonAccountDisabled)
	}
	if u.OrgID != "" {
		d, err := s.store.DisabledInOrgChain(ctx, u.OrgID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			a.refund(ctx)
			return nil, err
		}
		if d != "" {
			return fail(subject, u.OrgID, ReasonAccountDisabled, ReasonAccountDisabled)
		}
	}
	if u.Locked(s.now()) {
		return fail(subject, u.OrgID, ReasonAccountLocked, ReasonAccountLocked)
	}
	if u.PasswordOnly {
		return fail(subject, u.OrgID, ReasonPasswordOnly, ReasonPasswordOnly)
	}
	if need := s.cfg.Policy.PersonLevel(u); need > MethodLevel(MethodKerberos) {
		a.refund(ctx)
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAuthLevelTooLow.String(), start, detail))
		return levelVerdict(need), nil
	}
	a.refund(ctx)
	s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "success", "OK", start, detail))
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, Method: MethodKerberos, NoPassword: true}, nil
}
