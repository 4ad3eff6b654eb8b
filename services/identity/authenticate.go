package identity

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/totp"
	"github.com/uias/uias/services/identity/finger"
)

// Reason is why an authentication ended as it did (values match the proto).
type Reason int

// Reason values.
const (
	ReasonOK              Reason = 1
	ReasonBadCredentials  Reason = 2
	ReasonNoSuchUser      Reason = 3
	ReasonPasswordOnly    Reason = 4
	ReasonNoFingerprint   Reason = 5
	ReasonBadRequest      Reason = 6
	ReasonSystemError     Reason = 7
	ReasonAccountLocked   Reason = 8
	ReasonAccountDisabled Reason = 9
	ReasonPasswordExpired Reason = 10
	ReasonOTPRequired     Reason = 11
	ReasonNoOTP           Reason = 12
	ReasonOTPExpired      Reason = 13
	// ReasonAuthLevelTooLow: the login's method does not reach the level
	// the application or the person requires (levels.go).
	ReasonAuthLevelTooLow Reason = 14
	// ReasonExternalNotAllowed: the external authenticator named is not
	// open to the person (their org is not among its orgs; external.go).
	ReasonExternalNotAllowed Reason = 15
)

var reasonNames = map[Reason]string{
	ReasonOK: "OK", ReasonBadCredentials: "BAD_CREDENTIALS", ReasonNoSuchUser: "NO_SUCH_USER",
	ReasonPasswordOnly: "PASSWORD_ONLY", ReasonNoFingerprint: "NO_FINGERPRINT", ReasonBadRequest: "BAD_REQUEST",
	ReasonSystemError: "SYSTEM_ERROR", ReasonAccountLocked: "ACCOUNT_LOCKED",
	ReasonAccountDisabled: "ACCOUNT_DISABLED", ReasonPasswordExpired: "PASSWORD_EXPIRED",
	ReasonOTPRequired: "OTP_REQUIRED", ReasonNoOTP: "NO_OTP", ReasonOTPExpired: "OTP_EXPIRED",
	ReasonAuthLevelTooLow: "AUTH_LEVEL_TOO_LOW", ReasonExternalNotAllowed: "EXTERNAL_NOT_ALLOWED",
}

func (r Reason) String() string { return reasonNames[r] }

// LegacyCode is the result code of the fingerprint identity server interface.
// -99 (client-side communication error) is never produced by the server.
func (r Reason) LegacyCode() int32 {
	switch r {
	case ReasonOK:
		return 0
	case ReasonNoSuchUser:
		return -2
	case ReasonPasswordOnly, ReasonExternalNotAllowed:
		return -3
	case ReasonNoFingerprint:
		return -4
	case ReasonBadRequest:
		return -5
	case ReasonSystemError:
		return -6
	}
	return -1
}

var reasonMessages = map[Reason]string{
	ReasonOK: "authenticated", ReasonBadCredentials: "verification failed",
	ReasonNoSuchUser: "no such user for this application", ReasonPasswordOnly: "user is set to password-only authentication",
	ReasonNoFingerprint: "no fingerprint enrolled for this user", ReasonAccountLocked: "account is locked",
	ReasonAccountDisabled: "account is disabled", ReasonPasswordExpired: "password has expired; change it first",
	ReasonOTPRequired: "password accepted; the authenticator app code is required next",
	ReasonNoOTP:       "no authenticator app enrolled for this user (or none usable at this centre)",
	ReasonOTPExpired:  "the sign-in has expired or was already completed; sign in again",
	ReasonAuthLevelTooLow: "this way of signing in does not reach the required authentication level " +
		"(two factors or a certificate)",
	ReasonExternalNotAllowed: "this way of signing in is not open to this user",
}

// Auth types.
const (
	AuthPassword            = 1
	AuthFingerprint         = 2
	AuthPasswordFingerprint = 3
)

// AuthRequest is one Authenticate call.
type AuthRequest struct {
	AppType, AppCode string
	AppUserID        string
	Password         string
	Fingerprint      []byte
	AuthType         int
	Extend           map[string]string
	ExtendLegacy     string
	// OTP is the authenticator app's code, checked after the password
	// (auth type 1 only); empty: the password alone.
	OTP string
	// Challenge, Certificate (DER or PEM), Chain and Signature are the
	// answer to a challenge of auth type 4 (AuthCertificate).
	Challenge   string
	Certificate []byte
	Chain       [][]byte
	Signature   []byte
	// ExternalType names an external authenticator and
	// ExternalCredential is what the person presented to it (auth type 5,
	// AuthExternal; external.go).
	ExternalType       string
	ExternalCredential []byte

	// ext is the authenticator ExternalType names (validateAuth).
	ext *ExternalSource

	// short: the call's auth type does not reach the person's level
	// (levels.go): its credentials are checked and counted all the same,
	// and whatever their verdict the answer is ReasonAuthLevelTooLow.
	short bool

	probe *finger.Template // Fingerprint, parsed by validateAuth
	// probeErr: why Fingerprint of an auth type 2 call is unusable (it
	// is missing, or not a minutiae record); answered unless the
	// application's fingerprint bypass is on (a broken reader sends
	// nothing usable: the password decides then).
	probeErr error
}

// AuthResult is the verdict. Errors (bad request, system fault, refused
// caller) are returned as errors instead.
type AuthResult struct {
	Reason     Reason
	Message    string
	User       *User
	MustChange bool
	Serial     string
	Extend     map[string]string
}

// validateAuth checks what the request's proto rules cannot: which
// credentials the auth type needs, and the legacy extend info (parsed, then
// merged into the structured map).
func (s *Service) validateAuth(req *AuthRequest) error {
	switch req.AuthType {
	case AuthPassword:
		if req.Password == "" {
			return badField("password", "password is required for auth type 1 (password)")
		}
		if req.OTP != "" && len(strings.TrimSpace(req.OTP)) > 8 {
			return badField("otp", "otp is the authenticator app's 6-digit code")
		}
	case AuthFingerprint:
		if len(req.Fingerprint) == 0 {
			if req.Password == "" {
				// the bypass is not known yet: say both (trial8 D7)
				return badField("fingerprint_feature", "fingerprint_feature is required for auth type 2 (fingerprint); "+
					"password instead while the application's fingerprint bypass is on")
			}
			req.probeErr = badField("fingerprint_feature", "fingerprint_feature is required for auth type 2 (fingerprint) unless the application's fingerprint bypass is on")
		}
	case AuthPasswordFingerprint:
		if req.Password == "" || len(req.Fingerprint) == 0 {
			field := "password"
			if req.Password != "" {
				field = "fingerprint_feature"
			}
			return badField(field, "password and fingerprint_feature are both required for auth type 3")
		}
	case AuthCertificate:
		switch {
		case req.Challenge == "":
			return badField("challenge", "challenge is required for auth type 4 (certificate): get one from /v1/authenticate:challenge")
		case len(req.Certificate) == 0:
			return badField("certificate", "certificate is required for auth type 4 (certificate)")
		case len(req.Signature) == 0:
			return badField("signature", "signature (of the challenge, by the certificate's key) is required for auth type 4 (certificate)")
		case req.Password != "" || len(req.Fingerprint) > 0:
			return badField("auth_type", "auth type 4 (certificate) takes no password nor fingerprint_feature")
		}
	case AuthExternal:
		if err := s.validateExternal(req); err != nil {
			return err
		}
	default:
		return badField("auth_type", "auth_type must be 1 (password), 2 (fingerprint), 3 (both), 4 (certificate) or 5 (external)")
	}
	if req.AuthType != AuthExternal && (req.ExternalType != "" || len(req.ExternalCredential) > 0) {
		return badField("external_type", "external_type and external_credential go with auth type 5 (external) only")
	}
	if req.AuthType != AuthCertificate && (req.Challenge != "" || len(req.Certificate) > 0 || len(req.Signature) > 0 || len(req.Chain) > 0) {
		return badField("certificate", "challenge, certificate, chain and signature go with auth type 4 (certificate) only")
	}
	if req.OTP != "" && req.AuthType != AuthPassword {
		return badField("otp", "otp goes with auth type 1 (password) only")
	}
	if req.OTP != "" && !totp.WellFormed(req.OTP) {
		// A malformed value is the integrator's mistake, not a guess:
		// told as such, never checked nor counted.
		return badField("otp", "otp is the app's 6-digit code (digits only; spaces are ignored)")
	}
	if req.AuthType != AuthPassword && len(req.Fingerprint) > 0 {
		_, t, err := parseFingerRecord(req.Fingerprint, "fingerprint_feature", finger.MinMinutiae)
		switch {
		case err == nil:
			req.probe = t
		case req.AuthType == AuthFingerprint && req.Password != "":
			req.probeErr = err // decided once the application's bypass is known
		default:
			return err
		}
	}
	legacy, err := ParseExtendInfo(req.ExtendLegacy)
	if err != nil {
		return err
	}
	if len(legacy) > 0 {
		merged := make(map[string]string, len(legacy)+len(req.Extend))
		for k, v := range legacy {
			merged[k] = v
		}
		for k, v := range req.Extend {
			merged[k] = v
		}
		if err := checkExtend(merged); err != nil {
			return err
		}
		req.Extend = merged
	}
	return nil
}

// AuditBadAuthenticate records an Authenticate refused as malformed before
// it reached the service (by its proto rules; see server.BadRequestAudit):
// a failed login, reason BAD_REQUEST, as when Authenticate refuses one.
func (s *Service) AuditBadAuthenticate(ctx context.Context) {
	s.appendAudit(ctx, s.audit(ctx, "authenticate", "", "", "failure", "BAD_REQUEST", s.now(), nil))
}

// Authenticate checks a person on behalf of the calling application.
func (s *Service) Authenticate(ctx context.Context, req AuthRequest) (*AuthResult, error) {
	start := s.now()
	c := caller.From(ctx)
	if c.App == nil {
		return nil, caller.ErrBadAppCredentials
	}
	if err := s.validateAuth(&req); err != nil {
		s.appendAudit(ctx, s.audit(ctx, "authenticate", "", "", "failure", "BAD_REQUEST", start, nil))
		return nil, err
	}
	ctx, c = withPersonIP(ctx, c, req.Extend)
	if (req.AppType != "" || req.AppCode != "") && (req.AppType != c.App.Type || req.AppCode != c.App.Code) {
		s.appendAudit(ctx, s.audit(ctx, "authenticate", "", "", "denied", caller.ReasonForeignApp, start, nil))
		return nil, caller.ForeignApp("an application may only authenticate its own accounts")
	}
	if need, have := c.App.MinAuthLevel, req.authLevel(); have < need {
		// The application's minimum: a property of the call, not of the
		// person, answered before any account is looked at.
		s.appendAudit(ctx, s.audit(ctx, "authenticate", claimedAccount(req.AppUserID), "", "failure", ReasonAuthLevelTooLow.String(),
			start, levelDetail("app", need, have)))
		return &AuthResult{Reason: ReasonAuthLevelTooLow, Message: reasonMessages[ReasonAuthLevelTooLow], Serial: c.RequestID,
			Extend: req.Extend}, nil
	}
	if req.probeErr != nil {
		// No usable finger in an auth type 2 call: only the application's
		// emergency bypass (the password instead) takes it.
		b, err := s.store.GetFingerBypass(ctx, c.App.ID)
		if err != nil {
			return nil, err
		}
		if !b.Enabled {
			s.appendAudit(ctx, s.audit(ctx, "authenticate", "", "", "failure", "BAD_REQUEST", start, nil))
			return nil, req.probeErr
		}
	}
	res := &AuthResult{Serial: c.RequestID, Extend: req.Extend}
	finish := func(r Reason, u *User) (*AuthResult, error) {
		res.Reason, res.Message, res.User = r, reasonMessages[r], u
		return res, nil
	}

	link, err := s.store.FindLink(ctx, c.App.ID, req.AppUserID)
	if errors.Is(err, ErrNotFound) {
		s.appendAudit(ctx, s.audit(ctx, "authenticate", claimedAccount(req.AppUserID), "", "failure", ReasonNoSuchUser.String(), start, nil))
		return finish(ReasonNoSuchUser, nil)
	}
	if err != nil {
		return nil, err
	}
	u, err := s.store.GetUser(ctx, link.UserID)
	if errors.Is(err, ErrNotFound) {
		s.appendAudit(ctx, s.audit(ctx, "authenticate", claimedAccount(req.AppUserID), "", "failure", ReasonNoSuchUser.String(), start, nil))
		return finish(ReasonNoSuchUser, nil)
	}
	if err != nil {
		return nil, err
	}
	if link.Status != StatusActive {
		s.appendAudit(ctx, s.audit(ctx, "authenticate", "user:"+u.ID, u.OrgID, "failure", ReasonAccountDisabled.String(), start, nil))
		return finish(ReasonAccountDisabled, nil)
	}

	if req.AuthType != AuthPassword && u.PasswordOnly {
		// Fingerprint (alone or with the password) or a certificate is
		// not allowed for this person: -3, whatever is enrolled.
		s.appendAudit(ctx, s.audit(ctx, "authenticate", "user:"+u.ID, u.OrgID, "failure", ReasonPasswordOnly.String(), start, nil))
		return finish(ReasonPasswordOnly, nil)
	}
	// The person's minimum: the credentials are still checked (a wrong
	// one counts towards the lockout; a right one clears nothing), and
	// the answer is the same whichever they were (ADR 0020).
	need, have := s.cfg.Policy.PersonLevel(u), req.authLevel()
	req.short = have < need
	var r Reason
	if req.AuthType == AuthCertificate {
		r, err = s.authenticateCert(ctx, c, &req, u, start)
	} else if req.AuthType == AuthExternal {
		r, err = s.authenticateExternal(ctx, c, &req, u, start)
	} else if req.AuthType != AuthPassword {
		r, err = s.authenticateFinger(ctx, c, &req, u, start)
	} else if req.OTP != "" || s.cfg.Policy.AuthenticateRequiresOTP {
		r, err = s.authenticateOTP(ctx, c, &req, u, start, "authenticate")
	} else {
		r, err = s.checkPassword(ctx, u, req.Password, "authenticate", start,
			s.newAttempt(appLoginSource(c.App.ID, req.Extend, u.ID), "authenticate").shortOf(req.short))
	}
	if err != nil {
		return nil, err
	}
	if req.short && r != ReasonAccountDisabled && r != ReasonNoFingerprint && r != ReasonExternalNotAllowed {
		// Every verdict of the credential (right, wrong, expired, the
		// lock a wrong one set) is this one; a disabled account and a
		// person without fingers are told before any credential is
		// compared, as for anyone.
		r = ReasonAuthLevelTooLow
	}
	if r != ReasonOK {
		return finish(r, nil)
	}
	res.MustChange = u.MustChange
	// The name as the application's setting releases it (ADR 0037).
	return finish(ReasonOK, releasedTo(u, c.App.NameRelease))
}

// checkPassword runs the shared password verification: status, lock, the
// login gate (loginguard.go), hash, failure counting and lockout, expiry,
// rehash. It writes the audit event (with the gate's update, in one
// transaction) itself. a is the check's way through the gate.
func (s *Service) checkPassword(ctx context.Context, u *User, password, api string, start time.Time, a *loginAttempt) (Reason, error) {
	now := s.now()
	subject := "user:" + u.ID
	if r, err := s.refuseUnusable(ctx, u, api, start, a, a.detail); err != nil || r != 0 {
		return r, err
	}
	// A directory's person (credsource.go): the directory compares the
	// password instead of the hash, everything else as below.
	src, err := s.directoryManaged(ctx, u)
	if err != nil {
		a.refund(ctx)
		return 0, err
	}
	// A check whose hash could not start within its budget now is refused
	// here, before the gate's store writes (the account's count and its
	// refund): in a login storm most checks are refused, and each refusal
	// then costs a few reads instead of two write transactions queued
	// behind the served logins' writes. The hash's own admission below
	// still decides for the checks let through.
	if src == nil && s.hasher != nil && hashNeedsWorker(u.PasswordHash) && !s.hasher.Admits(ctx) {
		a.refund(ctx)
		return 0, errOverloaded
	}
	// The gate: the source's delay (or refusal), then the account's count,
	// spacing and lock, decided in one step before the hash.
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
	// Only here does the verdict need a hash, and only here may hashing
	// capacity refuse the call: every verdict above (and unknown accounts,
	// disabled links, fingerprint verdicts before) is answered whatever the
	// load. The hasher refuses at once (OVERLOADED) when the projected wait
	// for a worker does not fit identity.max_hash_wait or the deadline.
	var v hashVerdict
	dirExpired := false
	switch {
	case src != nil:
		ok, err := s.checkAtSource(ctx, src, u, password)
		var as *sourceAccountState
		if errors.As(err, &as) && as.reason() == ReasonPasswordExpired {
			// The right password, expired at the directory (AD answers
			// 532/773 only to the right one): as a local expired one (the
			// person changes it at the directory).
			a.hashed, v, dirExpired = true, hashVerdict{ok: true}, true
			break
		}
		if as != nil {
			// The directory's own refusal of the account (locked out,
			// disabled): its verdict, audited, not counted here (the
			// directory counts its own).
			a.refund(ctx)
			r := as.reason()
			s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", r.String(), start,
				withDetail(withDetail(a.detail, "credential_source", src.Name()), "directory_state", as.state)))
			return r, nil //nolint:nilerr // the directory's verdict on the account, not a fault
		}
		if err != nil {
			// No verdict: not a failed login, nothing counted.
			a.refund(ctx)
			if errors.Is(err, errSourceUnavailable) {
				s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "error", ReasonCredentialSourceUnavailable, start,
					withDetail(a.detail, "credential_source", src.Name())))
			}
			return 0, err
		}
		a.hashed, v = true, hashVerdict{ok: ok}
	case u.PasswordHash != "":
		var err error
		v, err = s.verifyHash(ctx, u.PasswordHash, password)
		a.hashed = err == nil
		if errors.Is(err, crypto.ErrOverloaded) {
			a.refund(ctx)
			return 0, errOverloaded
		}
		if err != nil && ctx.Err() != nil {
			a.refund(ctx)
			return 0, ctx.Err()
		}
		if err != nil {
			s.log.Error("stored password hash unreadable", zap.String("user_id", u.ID), zapErr(err))
			v = hashVerdict{}
		}
	}
	if !v.ok {
		ev := s.audit(ctx, api, subject, u.OrgID, "failure", ReasonBadCredentials.String(), start, a.detail)
		locked, err := a.failed(ctx, u, eventsOf(ev), start)
		if err != nil {
			return 0, err
		}
		if locked {
			return ReasonAccountLocked, nil
		}
		return ReasonBadCredentials, nil
	}
	// The password was right: the gate forgets the failures, also when
	// the password has expired (the person proved it; ChangePassword
	// follows). If the account was locked while the hash ran, the lock
	// stands.
	evLocked := func() []events.Event {
		return eventsOf(s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAccountLocked.String(), start, a.detail))
	}
	if s.cfg.Policy.Expired(u, now) || s.unsaltedExpired(v, now) || dirExpired {
		ev := s.audit(ctx, api, subject, u.OrgID, "failure", ReasonPasswordExpired.String(), start, a.detail)
		r, err := a.succeeded(ctx, u, "", a.record(ev), evLocked)
		if err != nil || r != ReasonOK {
			return r, err
		}
		return ReasonPasswordExpired, nil
	}
	newHash := ""
	switch {
	case v.legacy:
		// A hash of another scheme is replaced at once (waiting for a
		// worker within the usual budget; if none frees up, the next
		// login tries again).
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			newHash = h
		}
	case v.rehash:
		// Upgrading the stored hash may wait for a quieter login: it never
		// queues behind other calls' hashes.
		if h, err := s.hasher.HashIfIdle(ctx, password); err == nil {
			newHash = h
		}
	}
	okDetail := map[string]string{"must_change_password": fmtBool(u.MustChange)}
	maps.Copy(okDetail, a.detail)
	ev := s.audit(ctx, api, subject, u.OrgID, "success", ReasonOK.String(), start, okDetail)
	switch {
	case a.short:
		// A right password that cannot sign the person in (their level).
		ev = s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAuthLevelTooLow.String(), start, a.detail)
	case a.partial:
		// The password was the first of two factors: the login is not
		// done (nor counted a success) until the code.
		pending := map[string]string{"method": "password"}
		if m := a.detail["method"]; m != "" {
			pending["method"] = m // the finger and the password (fingerlogin.go)
		}
		if n := a.detail["authenticator"]; n != "" {
			pending["authenticator"] = n // an external authenticator's (external.go)
		}
		reason := ReasonOTPRequired.String()
		if a.pending != "" {
			reason = a.pending
		}
		ev = s.audit(ctx, api, subject, u.OrgID, "pending", reason, start, pending)
	}
	return a.succeeded(ctx, u, newHash, a.record(ev), evLocked)
}

// errChangeNeedsOTP refuses AuthService.ChangePassword for a person with an
// authenticator app.
var errChangeNeedsOTP = apierr.New(apierr.FailedPrecondition, ReasonChangeNeedsOTP,
	"this person signs in with an authenticator app: the password is changed at the sign-in page (/cas/password), "+
		"which asks for the app's code, not through an application")

// ReasonChangeNeedsOTP: an application's ChangePassword for a person with
// an authenticator app.
const ReasonChangeNeedsOTP = "PASSWORD_CHANGE_NEEDS_OTP"

// ChangePassword lets a person change their own password through the
// calling application, with the current password (also when it expired).
func (s *Service) ChangePassword(ctx context.Context, appUserID, oldPassword, newPassword string) error {
	start := s.now()
	c := caller.From(ctx)
	if c.App == nil {
		return caller.ErrBadAppCredentials
	}
	link, err := s.store.FindLink(ctx, c.App.ID, appUserID)
	if errors.Is(err, ErrNotFound) {
		return apierr.New(apierr.NotFound, "NOT_FOUND", "account not found")
	}
	if err != nil {
		return err
	}
	u, err := s.store.GetUser(ctx, link.UserID)
	if err != nil {
		return err
	}
	// A directory's password is changed there: refused before the old
	// one is checked (credsource.go).
	if err := s.refuseDirectoryPassword(ctx, u); err != nil {
		return err
	}
	if u.CannotChange {
		return apierr.New(apierr.FailedPrecondition, "CANNOT_CHANGE_PASSWORD", "this user's password can only be changed by an administrator")
	}
	// A person with an authenticator app changes their password where the
	// code is asked (the sign-in pages): the old password alone must not
	// replace it (and end their sessions) here.
	if t, err := s.getTOTP(ctx, u.ID); err != nil {
		return err
	} else if t != nil {
		return errChangeNeedsOTP
	}
	// Nor a person whose level the password alone does not reach (review
	// sec26 L2).
	if s.cfg.Policy.PersonLevel(u) >= AuthLevelTwoFactor {
		return errChangeNeedsLevel
	}
	r, err := s.checkPassword(ctx, u, oldPassword, "password.change.verify", start,
		s.newAttempt(appLoginSource(c.App.ID, nil, u.ID), "password.change.verify"))
	if err != nil {
		return err
	}
	if r != ReasonOK && r != ReasonPasswordExpired {
		return apierr.New(apierr.FailedPrecondition, "VERIFICATION_FAILED", "current password not accepted: "+reasonMessages[r])
	}
	if err := s.setPassword(ctx, u, newPassword, PasswordSet{ByOther: u.PasswordByOther}, true, "password.change", start, ""); err != nil {
		return err
	}
	return nil
}

// setPassword checks policy (and history when checkHistory), hashes and stores.
//
// The CHANGES event ends the person's SSO sessions (ticket), all but
// keepSession when it is not empty.
func (s *Service) setPassword(ctx context.Context, u *User, pw string, set PasswordSet, checkHistory bool, api string, start time.Time,
	keepSession string) error {
	mustChange := set.MustChange
	// A password is written at the person's home centre only, whoever
	// changes it: one changed elsewhere (a person's own change through an
	// application or the sign-in pages connected to level 1) would work
	// there alone, the home keeping the old one (trial8 D1).
	if err := s.ownUser(ctx, u); err != nil {
		return err
	}
	// Nor is a directory's password set here (credsource.go), by anyone.
	if err := s.refuseDirectoryPassword(ctx, u); err != nil {
		return err
	}
	if err := s.cfg.Policy.CheckPassword(pw, u.LoginName); err != nil {
		return err
	}
	if checkHistory && s.cfg.Policy.History > 0 {
		hist, err := s.store.PasswordHistory(ctx, u.ID, s.cfg.Policy.History)
		if err != nil {
			return err
		}
		if u.PasswordHash != "" {
			hist = append(hist, u.PasswordHash)
		}
		for _, h := range hist {
			if v, err := s.verifyHash(ctx, h, pw); err == nil && v.ok {
				return apierr.New(apierr.InvalidArgument, "PASSWORD_REUSED",
					"password was used recently; choose one not among the last passwords")
			} else if errors.Is(err, crypto.ErrOverloaded) {
				return errOverloaded
			}
		}
	}
	h, err := s.hasher.Hash(ctx, pw)
	if errors.Is(err, crypto.ErrOverloaded) {
		return errOverloaded
	}
	if err != nil {
		return err
	}
	at := s.now()
	if prev := u.PasswordChangedAt.Truncate(time.Millisecond); !at.Truncate(time.Millisecond).After(prev) {
		// Each password's time is after the one before (to the stored
		// millisecond), also on a clock that stepped back: the sessions
		// opened with the earlier one end (review sec24 L1).
		at = prev.Add(time.Millisecond)
	}
	after := *u
	after.PasswordHash, after.PasswordChangedAt, after.MustChange, after.UpdatedAt = h, at, mustChange, at
	after.PasswordByOther = set.ByOther
	evs := []events.Event{
		s.audit(ctx, api, "user:"+u.ID, u.OrgID, "success", "OK", start, map[string]string{"must_change_password": fmtBool(mustChange),
			"set_by_other": fmtBool(set.ByOther)}),
		s.replicaChange(ctx, "user", "password_changed", u.ID, passwordChanged(mustChange, keepSession, at),
			userReplica(&after, true)),
	}
	keep := s.cfg.Policy.History
	if keep < 1 {
		keep = 1
	}
	if err := s.store.SetPassword(ctx, u.ID, h, at, set, keep, evs); err != nil {
		return err
	}
	s.kick()
	return nil
}

// appendAudit writes a standalone audit event; if storage is down the event
// is logged (without personal data) and the call's outcome stands.
func (s *Service) appendAudit(ctx context.Context, ev events.Event) {
	if err := s.store.AppendEvents(ctx, eventsOf(ev)); err != nil {
		s.log.Warn("audit event not stored", zap.String("subject", ev.Subject), zapErr(err))
		return
	}
	s.kick()
}

func eventsOf(evs ...events.Event) []events.Event { return evs }

func zapErr(err error) zap.Field   { return zap.Error(err) }
func zapReason(r string) zap.Field { return zap.String("reason", r) }

// passwordChanged is the data of a user.password_changed event: at is
// when the password was set, as stored (to the millisecond) and as the
// sign-in pages' logins answer it (password_changed_at): the ticket
// component ends the sessions opened before it.
func passwordChanged(mustChange bool, keepSession string, at time.Time) map[string]any {
	d := map[string]any{"must_change_password": mustChange, "password_changed_at": at.UTC().Truncate(time.Millisecond)}
	if keepSession != "" {
		d["keep_session"] = keepSession
	}
	return d
}

// unusable says whether u may not sign in at all, however they prove who
// they are: the verdict (ReasonAccountDisabled for the account or its
// org up the chain, ReasonAccountLocked; 0: usable) and the reason to
// audit (ACCOUNT_DISABLED, ORG_DISABLED, ACCOUNT_LOCKED). Every sign-in
// path (password, code, fingerprint, Kerberos, peer) asks it, so they
// refuse and audit alike.
func (s *Service) unusable(ctx context.Context, u *User) (Reason, string, error) {
	if !u.Enabled() {
		return ReasonAccountDisabled, ReasonAccountDisabled.String(), nil
	}
	if u.OrgID != "" {
		// A disabled org disables the accounts of its whole subtree.
		d, err := s.store.DisabledInOrgChain(ctx, u.OrgID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return 0, "", err
		}
		if d != "" {
			return ReasonAccountDisabled, "ORG_DISABLED", nil
		}
	}
	if u.Locked(s.now()) {
		return ReasonAccountLocked, ReasonAccountLocked.String(), nil
	}
	return 0, "", nil
}

// refuseUnusable answers a check of u's credentials (password, code,
// fingerprint) that cannot be one because the account is unusable: a's
// admission is taken back and the refusal audited under api with detail;
// (0, nil) for an account that may sign in.
func (s *Service) refuseUnusable(ctx context.Context, u *User, api string, start time.Time, a *loginAttempt, detail map[string]string) (Reason, error) {
	v, audited, err := s.unusable(ctx, u)
	if err != nil || v == 0 {
		if err != nil {
			a.refund(ctx)
		}
		return 0, err
	}
	a.refund(ctx)
	s.appendAudit(ctx, s.audit(ctx, api, "user:"+u.ID, u.OrgID, "failure", audited, start, detail))
	return v, nil
}
