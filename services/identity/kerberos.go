package identity

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	ulog "github.com/uias/uias/pkg/log"
)

// kerberosRefusals are the CAS page's own refusals of a verified Kerberos
// principal (the ticket component's reasons) that identity audits.
var kerberosRefusals = map[string]bool{"KERBEROS_REPLAY": true, "KERBEROS_REALM_NOT_ACCEPTED": true, "KERBEROS_PRINCIPAL_UNMAPPED": true}

// MethodKerberos is a login with the Windows domain's Kerberos ticket
// (SPNEGO on the CAS login page; ADR 0022): level 1, as a password.
const MethodKerberos = "kerberos"

// ReasonKerberosOutOfScope is the audited reason of a Kerberos sign-in of
// a person outside the org subtrees the principal's realm may sign in
// (identity.kerberos_orgs).
const ReasonKerberosOutOfScope = "KERBEROS_PERSON_OUT_OF_SCOPE"

// kerberosReplayMemory is how long a Kerberos authenticator is remembered:
// its ctime is accepted within 5 minutes of the clock either way.
const kerberosReplayMemory = 10*time.Minute + time.Second

// Reasons and errors of the shared Kerberos replay check.
const (
	ReasonKerberosReplayed         = "KERBEROS_AUTHENTICATOR_REPLAYED"
	ReasonKerberosCheckUnavailable = "KERBEROS_CHECK_UNAVAILABLE"
)

var (
	// ErrKerberosReplayed: the authenticator was presented before, at this
	// or another edge replica.
	ErrKerberosReplayed = apierr.New(apierr.Unauthenticated, ReasonKerberosReplayed,
		"this Windows sign-in was used before; sign in again")
	// ErrKerberosCheckUnavailable: the authenticator could not be checked
	// against those presented before.
	ErrKerberosCheckUnavailable = apierr.New(apierr.Unavailable, ReasonKerberosCheckUnavailable,
		"Windows sign-in cannot be checked now; sign in with the password, or try again later")
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonKerberosReplayed, Code: apierr.Unauthenticated,
			Doc: "SSOService.KerberosLogin (the CAS page's Windows sign-in): the Kerberos authenticator was presented before, at this or another edge replica (a replayed SPNEGO token); nobody is signed in, and the attempt counts at the browser's address."},
		apierr.Reason{Name: ReasonKerberosCheckUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "SSOService.KerberosLogin: the Kerberos authenticator could not be checked against those presented before (the shared store, NATS JetStream, is unreachable): refused rather than taken unchecked. Sign in with the password, or retry later."},
	)
}

// kerberosMayHold says whether a verified principal (name@REALM) may sign
// in u: only when u's org is in the subtree of one of its realm's org
// codes in identity.kerberos_orgs (a realm not listed: no one; a code that
// names no org here: no one of it; no entry at all: no one, logged once:
// a domain's administrators name its accounts, so a realm is never taken
// to hold every person with its login names; ADR 0022 amendment 2).
func (s *Service) kerberosMayHold(ctx context.Context, principal string, u *User) (bool, error) {
	if len(s.cfg.KerberosOrgs) == 0 {
		s.krbUnscoped.Do(func() {
			s.log.Error("a Kerberos (Windows) sign-in was refused: identity.kerberos_orgs lists no realm; " +
				"list REALM=org_code entries for the subtrees each realm may sign in (the root org's code for all)")
		})
		return false, nil
	}
	i := strings.LastIndexByte(principal, '@')
	if i < 0 || u.OrgID == "" {
		return false, nil
	}
	codes := s.cfg.KerberosOrgs[principal[i+1:]]
	if len(codes) == 0 {
		return false, nil
	}
	o, err := s.store.GetOrg(ctx, u.OrgID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	chain := orgChain(o)
	for _, code := range codes {
		id, err := s.orgIDOf(ctx, code)
		if err != nil {
			return false, err
		}
		if id != "" && slices.Contains(chain, id) {
			return true, nil
		}
	}
	return false, nil
}

// MissingOrgCodes are the codes of codes that name no org here (for the
// start's warnings about identity.kerberos_orgs and ldap_auth[].orgs).
func (s *Service) MissingOrgCodes(ctx context.Context, codes []string) ([]string, error) {
	var out []string
	for _, c := range codes {
		id, err := s.orgIDOf(ctx, c)
		if err != nil {
			return nil, err
		}
		if id == "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// MethodKerberosTOTP is a Kerberos ticket and then the authenticator
// app's code (SSOLoginOTP): level 2, as the password and the code.
const MethodKerberosTOTP = MethodKerberos + "+totp"

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
//
// refusal, when not empty, is the page's own refusal of the verified
// principal (one of kerberosRefusals: a replayed token, a realm not
// accepted, no login name): it is audited with that reason and counted the
// same way, and answered ReasonBadCredentials; no account is looked at.
//
// A person who enrolled an authenticator app is not signed in by the
// ticket alone (one factor: the domain password, or a stolen ticket
// cache), as not by a password or a finger alone (review sec27a H3): the
// ticket answers ReasonOTPRequired with OTPToken, the half-done login
// bound to binding (as SSOLoginBound's; none without a binding), which
// SSOLoginOTP completes ("kerberos+totp", level 2: a person whose level is
// 2 may then sign in this way, as with a finger and the code). The ticket
// step is audited "pending" OTP_REQUIRED.
func (s *Service) SSOKerberosLogin(ctx context.Context, login, principal, refusal, binding, authenticator string) (*SSOLoginResult, error) {
	start := s.now()
	const api = "sso.login"
	if refusal != "" && !kerberosRefusals[refusal] {
		return nil, badField("refusal", "refusal must be KERBEROS_REPLAY, KERBEROS_REALM_NOT_ACCEPTED or KERBEROS_PRINCIPAL_UNMAPPED")
	}
	if refusal == "" && login == "" {
		return nil, badField("login", "login is required (the login name the principal maps to)")
	}
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
	if refusal != "" {
		s.appendAudit(ctx, s.audit(ctx, api, claimedAccount(principal), "", "failure", refusal, start, detail))
		return ssoVerdict(ReasonBadCredentials), nil
	}
	if authenticator != "" {
		// The page's replay cache is its process's; this one is every
		// edge replica's (the shared nonce bucket): a token captured at
		// one replica is refused at the others (review sec27a L4).
		err := s.nonces.Remember(ctx, "krb."+authenticator[:32], kerberosReplayMemory)
		if errors.Is(err, caller.ErrNonceSeen) {
			s.appendAudit(ctx, s.audit(ctx, api, claimedAccount(principal), "", "failure", ReasonKerberosReplayed, start, detail))
			return nil, ErrKerberosReplayed // counted at the browser's address, as the page's own replays
		}
		if err != nil {
			a.refund(ctx)
			s.log.Warn("Kerberos replay check", zapErr(err))
			return nil, ErrKerberosCheckUnavailable
		}
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
	in, err := s.kerberosMayHold(ctx, principal, u)
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	if !in {
		// A person the realm may not sign in (identity.kerberos_orgs): the
		// answer of an unknown login, not counted (the KDC vouched for
		// the principal; the operator's scope refused it).
		a.refund(ctx)
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonKerberosOutOfScope, start, detail))
		return ssoVerdict(ReasonBadCredentials), nil
	}
	if v, audited, err := s.unusable(ctx, u); err != nil {
		a.refund(ctx)
		return nil, err
	} else if v != 0 {
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", audited, start, detail))
		return ssoVerdict(v), nil
	}
	if u.PasswordOnly {
		return fail(subject, u.OrgID, ReasonPasswordOnly, ReasonPasswordOnly)
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	have := MethodLevel(MethodKerberos)
	if t != nil {
		have = MethodLevel(MethodKerberosTOTP)
	}
	if need := s.cfg.Policy.PersonLevel(u); need > have {
		a.refund(ctx)
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAuthLevelTooLow.String(), start, detail))
		return levelVerdict(need), nil
	}
	a.refund(ctx)
	if t != nil {
		// The ticket was the first of two factors: not done until the code.
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "pending", ReasonOTPRequired.String(), start, detail))
		res := ssoVerdict(ReasonOTPRequired)
		if binding != "" {
			if res.OTPToken, err = s.otpLoginToken(u, t, binding, MethodKerberos); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "success", "OK", start, detail))
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, Method: MethodKerberos, NoPassword: true}, nil
}
