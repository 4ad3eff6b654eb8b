package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/cache"
	"github.com/uias/uias/pkg/caller"
)

// External authenticators (docs/adr/0045-external-authenticators.md): a
// credential of a kind UIAS does not know (a face, an SMS code, a hardware
// token's code) is checked by a separate program a vendor writes, over
// the gRPC contract uias.authn.v1.ExternalAuthenticatorService
// (identity.external_authenticators; package extauth is the client). Only
// the comparison is the authenticator's: the account, its status, org and
// lock, the login gate's counting and spacing, the levels and every audit
// record stay UIAS's, as for a directory's password (credsource.go).

// AuthExternal is Authenticate's auth type 5: an external authenticator's
// credential (with the password where given or required).
const AuthExternal = 5

// ExternalVerdict is an external authenticator's answer.
type ExternalVerdict int

// External verdicts (the contract's Verdict values).
const (
	ExternalUnspecified ExternalVerdict = iota
	ExternalAccepted
	ExternalRejected
	ExternalUnavailable
)

// ExternalQuery is one check asked of an external authenticator.
type ExternalQuery struct {
	UserID, Login, Type string
	// Credential is what the person presented; never logged.
	Credential []byte
	ClientIP   string
	RequestID  string
}

// ExternalAnswer is an external authenticator's verdict: Reason is its
// short code for the audit record, UserID the person it answered about.
type ExternalAnswer struct {
	Verdict ExternalVerdict
	Reason  string
	UserID  string
}

// ExternalAuthenticator asks one external authenticator (package extauth:
// gRPC). An error is no verdict (unreachable, too slow, a gRPC error); it
// never holds the credential. Verify bounds its own time (extauth: the
// authenticator's configured timeout): it is called with a context the
// caller's end does not cancel, so that a verdict is counted even when
// the caller gave up waiting for it.
type ExternalAuthenticator interface {
	Verify(ctx context.Context, q ExternalQuery) (ExternalAnswer, error)
}

// ExternalSource is one configured external authenticator.
type ExternalSource struct {
	// Name is its credential type (Authenticate's external_type, audit
	// records' authenticator).
	Name string
	// Label is the sign-in page's name of it ("Face recognition").
	Label string
	// Level is the authentication level its credential alone reaches
	// (AuthLevelAny or AuthLevelTwoFactor); with the password two factors.
	Level int
	// RequirePassword: its credential is a second factor only (an SMS
	// code): the password must come with it.
	RequirePassword bool
	// Orgs are org codes whose subtrees' people may use it (none: all).
	Orgs []string
	// Auth asks it.
	Auth ExternalAuthenticator
	// Observe, when set, counts each check's outcome ("accepted",
	// "rejected", "unavailable", "mismatch") for the metrics.
	Observe func(outcome string)
}

// Method is the login method of a sign-in with it: "external:NAME",
// with "+password" or "+totp" for a second factor.
func (e *ExternalSource) Method() string { return methodExternal + e.Name }

const methodExternal = "external:"

// ReasonExternalUnavailable: the external authenticator gave no verdict.
const ReasonExternalUnavailable = "EXTERNAL_AUTHENTICATOR_UNAVAILABLE"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonExternalUnavailable, Code: apierr.Unavailable, Legacy: -6,
		Doc: "The external authenticator (identity.external_authenticators: face recognition, an SMS code gateway, a token server, ...) that checks this credential did not answer in time, could not be reached, said it could not decide, or answered about another person. Nothing was decided: it is not a failed login and counts towards no lockout. Retry later; operators see the cause in the identity log."})
}

var errExternalUnavailable = apierr.New(apierr.Unavailable, ReasonExternalUnavailable,
	"the authenticator that checks this credential cannot decide now; try again later")

// externals is the service's configured external authenticators.
type externals struct {
	byName map[string]*ExternalSource
	list   []*ExternalSource
	// ids caches org code -> id (of the codes that name an org).
	ids *cache.TTL[string]
	// silent: the authenticator's last check gave no verdict (set by no
	// verdict, cleared by a verdict); see externalSilent.
	silent map[*ExternalSource]*atomic.Bool
}

func newExternals(list []ExternalSource) *externals {
	x := &externals{byName: map[string]*ExternalSource{}, ids: cache.NewTTL[string](orgCodeTTL, 0),
		silent: map[*ExternalSource]*atomic.Bool{}}
	for i := range list {
		e := &list[i]
		x.byName[e.Name] = e
		x.list = append(x.list, e)
		x.silent[e] = new(atomic.Bool)
	}
	return x
}

// externalSilent says whether e gave no verdict at its last check (down,
// overloaded, undecided). While it is, the sign-in page's logins that e
// would not be asked about (an unknown login, a person set to passwords
// only or outside e's orgs) are answered errExternalUnavailable, as a
// person e is asked about is (security review sec31a L2): else the
// page's 503 for the one and 401 for the others would tell which logins
// exist and may use e, for free.
func (s *Service) externalSilent(e *ExternalSource) bool {
	b := s.ext.silent[e]
	return b != nil && b.Load()
}

// ExternalAuthenticators lists the configured external authenticators,
// in their configuration's order (for the sign-in page).
func (s *Service) ExternalAuthenticators() []ExternalSource {
	out := make([]ExternalSource, 0, len(s.ext.list))
	for _, e := range s.ext.list {
		c := *e
		c.Auth, c.Observe = nil, nil
		out = append(out, c)
	}
	return out
}

// externalAllowed says whether u may use e: e lists no orgs, or one of
// them is u's org or above it.
func (s *Service) externalAllowed(ctx context.Context, u *User, e *ExternalSource) (bool, error) {
	if len(e.Orgs) == 0 {
		return true, nil
	}
	if u.OrgID == "" {
		return false, nil
	}
	o, err := s.store.GetOrg(ctx, u.OrgID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	chain := map[string]bool{}
	for _, id := range orgChain(o) {
		chain[id] = true
	}
	now := s.now()
	for _, code := range e.Orgs {
		id, ok := s.ext.ids.Get(code, now)
		if !ok {
			g, err := s.store.GetOrgByCode(ctx, code)
			if errors.Is(err, ErrNotFound) {
				continue // not cached: the org may be created any time
			}
			if err != nil {
				return false, err
			}
			id = g.ID
			s.ext.ids.Put(code, id, now)
		}
		if chain[id] {
			return true, nil
		}
	}
	return false, nil
}

// externalReasonRE is what an authenticator's reason code may be to be
// recorded as it is.
var externalReasonRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

// verifyExternal asks e about u's credential: the answer (accepted or
// rejected, about u), or errExternalUnavailable (logged without the
// credential) when there is no verdict; fault says why for the audit
// record.
func (s *Service) verifyExternal(ctx context.Context, e *ExternalSource, u *User, cred []byte) (ans ExternalAnswer, fault string, err error) {
	c := caller.From(ctx)
	ip := ""
	if c.ClientIP.IsValid() {
		ip = c.ClientIP.String()
	}
	observe := func(outcome string) {
		if e.Observe != nil {
			e.Observe(outcome)
		}
	}
	ans, err = e.Auth.Verify(ctx, ExternalQuery{UserID: u.ID, Login: u.LoginName, Type: e.Name, Credential: cred,
		ClientIP: ip, RequestID: c.RequestID})
	if err != nil {
		observe("unavailable")
		s.log.Warn("external authenticator did not answer", zap.String("authenticator", e.Name), zap.String("user_id", u.ID), zapErr(err))
		return ans, "no_answer", errExternalUnavailable
	}
	if !externalReasonRE.MatchString(ans.Reason) {
		if ans.Reason == "" {
			ans.Reason = "NONE"
		} else {
			ans.Reason = "OTHER"
		}
	}
	switch ans.Verdict {
	case ExternalAccepted, ExternalRejected:
	case ExternalUnavailable:
		observe("unavailable")
		s.log.Warn("external authenticator could not decide", zap.String("authenticator", e.Name), zap.String("user_id", u.ID),
			zap.String("authenticator_reason", ans.Reason))
		return ans, "unavailable", errExternalUnavailable
	default:
		observe("unavailable")
		s.log.Warn("external authenticator answered no verdict", zap.String("authenticator", e.Name), zap.String("user_id", u.ID),
			zap.Int("verdict", int(ans.Verdict)))
		return ans, "no_verdict", errExternalUnavailable
	}
	if subtle.ConstantTimeCompare([]byte(ans.UserID), []byte(u.ID)) != 1 {
		// A verdict about someone else (the vendor's fault, or an answer
		// crossed with another's): no verdict about u.
		observe("mismatch")
		s.log.Error("external authenticator answered about another user than the one asked about; its verdict is ignored",
			zap.String("authenticator", e.Name), zap.String("user_id", u.ID))
		return ans, "user_id_mismatch", errExternalUnavailable
	}
	if ans.Verdict == ExternalAccepted {
		observe("accepted")
	} else {
		observe("rejected")
	}
	return ans, "", nil
}

// checkExternal checks u's credential at e through the login gate, as
// checkFinger a finger: the account's status, org and lock; the source's
// and the account's admission and spacing; then e's verdict. A rejected
// credential is a failed login (counted; the lockout falls as for a wrong
// password); no verdict (e unreachable, slow, undecided, or answering
// about someone else) is errExternalUnavailable, counted nowhere and
// audited result "error". detail (the method, the authenticator) goes into
// the records.
func (s *Service) checkExternal(ctx context.Context, u *User, e *ExternalSource, cred []byte, api string, start time.Time,
	a *loginAttempt, detail map[string]string) (Reason, error) {
	subject := "user:" + u.ID
	if r, err := s.refuseUnusable(ctx, u, api, start, a, detail); err != nil || r != 0 {
		return r, err
	}
	if err := a.admitSource(ctx, subject, u.OrgID, start); err != nil {
		return 0, err
	}
	if r, err := a.admitAccount(ctx, u, start); err != nil || r != 0 {
		a.refund(ctx)
		return r, err
	}
	if err := a.wait(ctx); err != nil {
		return 0, err
	}
	// From here the caller's end does not end the check (sec31a M1): the
	// authenticator is asked under its own timeout only (Verify bounds
	// it), and its verdict is settled even if the caller has left. Else a
	// caller that gives up before a slow rejection (an authenticator that
	// answers a wrong credential later than a right one) would have every
	// wrong guess refunded, and guess without lockout.
	ctx = context.WithoutCancel(ctx)
	ans, fault, err := s.verifyExternal(ctx, e, u, cred)
	if b := s.ext.silent[e]; b != nil {
		b.Store(err != nil)
	}
	if err != nil {
		a.refund(ctx)
		if fault != "" {
			s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "error", ReasonExternalUnavailable, start,
				withDetail(detail, "external_fault", fault)))
		}
		return 0, err
	}
	detail = withDetail(detail, "external_reason", ans.Reason)
	return s.settleVerdict(ctx, u, ans.Verdict == ExternalAccepted, api, start, a, detail)
}

// externalLevel is the level a login with e reaches: its own, two factors
// with a second one (the password, the authenticator app's code).
func externalLevel(e *ExternalSource, second bool) int {
	if second {
		return max(e.Level, AuthLevelTwoFactor)
	}
	return e.Level
}

// validateExternal checks an auth type 5 request (validateAuth): a known
// authenticator, a credential, the password where it is required.
func (s *Service) validateExternal(req *AuthRequest) error {
	if req.ExternalType == "" {
		return badField("external_type", "external_type (the authenticator's name) is required for auth type 5 (external)")
	}
	e := s.ext.byName[req.ExternalType]
	if e == nil {
		return badField("external_type", "external_type %q names no external authenticator configured here", req.ExternalType)
	}
	if len(req.ExternalCredential) == 0 {
		return badField("external_credential", "external_credential is required for auth type 5 (external)")
	}
	if e.RequirePassword && req.Password == "" {
		return badField("password", "the authenticator %q is a second factor: password is required with it", e.Name)
	}
	if len(req.Fingerprint) > 0 {
		return badField("fingerprint_feature", "auth type 5 (external) takes no fingerprint_feature")
	}
	req.ext = e
	return nil
}

// authenticateExternal answers auth type 5 for u (not password-only): the
// authenticator must be open to u's org; with a password, the password
// first (as with a code: a wrong one is counted and the authenticator not
// asked), then the authenticator's verdict.
func (s *Service) authenticateExternal(ctx context.Context, c *caller.Caller, req *AuthRequest, u *User, start time.Time) (Reason, error) {
	const api = "authenticate"
	e := req.ext
	detail := map[string]string{"auth_type": strconv.Itoa(AuthExternal), "authenticator": e.Name, "method": e.Method()}
	ok, err := s.externalAllowed(ctx, u, e)
	if err != nil {
		return 0, err
	}
	if !ok {
		s.appendAudit(ctx, s.audit(ctx, api, "user:"+u.ID, u.OrgID, "failure", ReasonExternalNotAllowed.String(), start, detail))
		return ReasonExternalNotAllowed, nil
	}
	src := appLoginSource(c.App.ID, req.Extend, u.ID)
	if req.Password != "" {
		detail["method"] = e.Method() + "+password"
		a := s.newAttempt(src, api).shortOf(req.short)
		a.partial, a.detail, a.pending = true, detail, "EXTERNAL_REQUIRED"
		r, err := s.checkPassword(ctx, u, req.Password, api, start, a)
		if err != nil || r != ReasonOK || req.short {
			// short: the authenticator would not reach the person's level
			// either: not asked (as a code after the password).
			return r, err
		}
	}
	return s.checkExternal(ctx, u, e, req.ExternalCredential, api, start, s.newAttempt(src, api).shortOf(req.short), detail)
}
