package identity

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
)

// Administrator and load errors (application caller errors are
// caller.Err*).
var (
	// errOverloaded is the fast refusal of a password check whose projected
	// wait for a hashing worker does not fit identity.max_hash_wait or the
	// caller's deadline (crypto.ErrOverloaded).
	errOverloaded    = apierr.New(apierr.ResourceExhausted, "OVERLOADED", "too many password operations in progress, retry shortly")
	errBadAdminToken = apierr.New(apierr.Unauthenticated, "BAD_ADMIN_TOKEN", "administrator token is missing, invalid or expired; log in again")
	errNotAdmin      = apierr.New(apierr.PermissionDenied, "NOT_ADMIN", "this call requires an administrator")
	errBadAdminLogin = apierr.New(apierr.Unauthenticated, "BAD_ADMIN_LOGIN", "invalid login name or password")
)

// AuthenticateApp checks an application caller: App_ID + App_Secret, status,
// the client certificate of an application bound to one, IP allow-list and
// rate limit, in that order (caller.AppAuthenticator over this component's
// store). Failures are audited.
//
// It checks no request signature: for interfaces that take none (another
// component verifying its caller, CallerService). AuthenticateSignedApp is
// for those that do.
func (s *Service) AuthenticateApp(ctx context.Context, appID, secret string, ip netip.Addr) (*caller.App, error) {
	return s.appAuth.Authenticate(ctx, appID, secret, ip)
}

// AuthenticateSignedApp is AuthenticateApp with the application's request
// signature policy applied to sig (caller.AppAuthenticator.
// AuthenticateSigned); it returns the thumbprint of the key that verified
// the signature ("" unsigned).
func (s *Service) AuthenticateSignedApp(ctx context.Context, appID, secret string, ip netip.Addr, sig caller.SignedRequest) (*caller.App, string, error) {
	return s.appAuth.AuthenticateSigned(ctx, appID, secret, ip, sig)
}

// EnterApp takes a slot of app's concurrency limit for a call (this
// instance's share of MaxConcurrent) and returns the function that gives
// it back when the call ends (nil without a limit); beyond the limit the caller is refused
// CONCURRENCY_LIMITED (audited as a refused caller).
func (s *Service) EnterApp(ctx context.Context, app *caller.App) (leave func(), err error) {
	return s.appAuth.Enter(ctx, app)
}

// AuthorizeApp holds app, authenticated, to its interface grants and
// access period for a call of interface api (caller.APIOf; refusals
// audited as refused callers).
func (s *Service) AuthorizeApp(ctx context.Context, app *caller.App, api string) error {
	return s.appAuth.Authorize(ctx, app, api)
}

// CallerApp is the application as caller authentication sees it.
func (a *App) CallerApp() *caller.App {
	return &caller.App{ID: a.ID, Type: a.Type, Code: a.Code, Active: a.Status == AppActive,
		IPAllowList: a.IPAllowList, RateLimit: a.RateLimit, RateBurst: a.RateBurst, MaxConcurrent: a.MaxConcurrent,
		SecretHash: a.SecretHash, SecretExpires: a.SecretExpires, PrevSecretHash: a.PrevSecretHash, PrevSecretExpires: a.PrevSecretExpires,
		ClientCertSHA256: a.ClientCertSHA256, SigningKeys: a.ParsedSigningKeys(), RequireSignatures: a.RequireSignatures,
		GrantedAPIs: a.GrantedAPIs, AccessFrom: a.AccessFrom, AccessUntil: a.AccessUntil, MinAuthLevel: a.MinAuthLevel,
		SecurityLevel: a.SecurityLevel, LegacyIPOnly: a.LegacyIPOnly,
		NameRelease: a.NameRelease}
}

// appSource is the caller.AppSource of the identity component: its store.
type appSource struct{ s *Service }

func (src appSource) CallerApp(ctx context.Context, appID string) (*caller.App, error) {
	a, err := src.s.store.GetApp(ctx, appID)
	switch {
	case errors.Is(err, ErrNotFound):
		// A deleted application: its calls with one of its last secrets
		// are told its service ended (caller.App.Terminated).
		t, terr := src.s.store.AppTombstone(ctx, appID)
		switch {
		case errors.Is(terr, ErrNotFound):
			return nil, caller.ErrUnknownApp
		case terr != nil:
			return nil, terr
		}
		return &caller.App{ID: appID, SecretHash: t.SecretHash, PrevSecretHash: t.PrevSecretHash, Terminated: t.DeletedAt}, nil
	case err != nil:
		return nil, err
	}
	return a.CallerApp(), nil
}

// callerDenied audits a refused application caller. The audit write is
// best effort: if storage is down the refusal still stands.
func (s *Service) callerDenied(ctx context.Context, appID string, err *apierr.Error, start time.Time) {
	ev := s.auditor.CallerDenied(ctx, appID, err.Reason, start)
	if werr := s.store.AppendEvents(ctx, eventsOf(ev)); werr != nil {
		s.log.Warn("audit write failed for refused caller", zapReason(err.Reason), zapErr(werr))
	} else {
		s.kick()
	}
}

// AdminLogin exchanges an administrator's password for a bearer token.
// Only administrators' failures count against their accounts: a login name
// that is unknown or belongs to someone who is no administrator is
// answered alike and counts only against the caller's address
// (loginguard.go). An administrator whose password has expired or must be
// changed gets no token here (PASSWORD_CHANGE_REQUIRED): see
// AdminLoginNewPassword.
func (s *Service) AdminLogin(ctx context.Context, login, password string) (token string, exp time.Time, u *User, err error) {
	return s.AdminLoginNewPassword(ctx, login, password, "")
}

// AdminLoginNewPassword is AdminLogin that also replaces the password with
// newPassword when it is not empty (the policy and the history apply; no
// token when the new one is refused). It is how an administrator whose
// password has expired, or was set by another administrator (MustChange),
// logs in: as Keycloak's "update password" at login, the old password
// proves who they are and the new one is theirs before any token exists.
func (s *Service) AdminLoginNewPassword(ctx context.Context, login, password, newPassword string) (token string, exp time.Time, u *User, err error) {
	return s.AdminLoginOTP(ctx, login, password, newPassword, "")
}

// errOTPRequired answers an administrator's login with the right password
// and no code, when they have an authenticator app.
var errOTPRequired = apierr.New(apierr.FailedPrecondition, ReasonAdminOTPRequired,
	"your account has an authenticator app: log in again with its current code (otp; uias ctl login --otp CODE)")

// errAdminOTPSetup answers an administrator's login with the right
// password when administrators must use an authenticator app and they
// have none.
var errAdminOTPSetup = apierr.New(apierr.FailedPrecondition, ReasonAdminOTPSetup,
	"administrators log in here with an authenticator app and your account has none: set one up on your profile page "+
		"(/cas/profile/totp), then log in with its current code (otp; uias ctl login --otp CODE)")

// AdminLoginOTP is AdminLoginNewPassword with the code of the
// administrator's authenticator app (TOTP), required when they have one:
// the code is checked after the password and before anything else (a
// password change, the token), through the login gate (a wrong or used
// code is a counted failure; the right password alone does not clear the
// failures). Without a code: OTP_REQUIRED, no token.
func (s *Service) AdminLoginOTP(ctx context.Context, login, password, newPassword, otp string) (token string, exp time.Time, u *User, err error) {
	start := s.now()
	a := s.newEarlyAttempt(adminLoginSource(caller.From(ctx).ClientIP), "admin.login")
	if err := a.admitSource(ctx, "login:"+login, "", start); err != nil {
		return "", time.Time{}, nil, err
	}
	u, err = s.store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.refund(ctx)
		return "", time.Time{}, nil, err
	}
	mayAdmin := false
	if err == nil {
		if mayAdmin, err = s.mayAdmin(ctx, u); err != nil {
			a.refund(ctx)
			return "", time.Time{}, nil, err
		}
	}
	if err != nil || !mayAdmin {
		subject, org, reason := "login:"+login, "", "NO_SUCH_USER"
		if u != nil {
			subject, org, reason = "user:"+u.ID, u.OrgID, "NOT_ADMIN"
		}
		if err := a.wait(ctx); err != nil {
			return "", time.Time{}, nil, err
		}
		// As much work as a wrong password (one hash), so that the time
		// of the answer does not tell whether the login exists.
		if err := s.verifyDummy(ctx, password); err != nil {
			return "", time.Time{}, nil, err
		}
		s.appendAudit(ctx, s.audit(ctx, "admin.login", subject, org, "failure", reason, start, nil))
		return "", time.Time{}, nil, errBadAdminLogin
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		a.refund(ctx)
		return "", time.Time{}, nil, err
	}
	// With a change pending (or asked for), the login's audit record waits
	// for its outcome: the password being right is not yet a login. With
	// an authenticator app, the password is the first factor only.
	// A directory's administrator (credsource.go) has no pending change
	// here: the directory owns their password (a new_password is refused).
	if _, err := s.directoryManaged(ctx, u); err != nil {
		a.refund(ctx)
		return "", time.Time{}, nil, err
	}
	changing := u.MustChange || u.PasswordByOther || newPassword != "" || s.cfg.Policy.Expired(u, start)
	// Administrators without an app when every one needs one
	// (identity.policy.admin_requires_otp), or whose own level asks two
	// factors or a certificate (min_auth_level 2 or 3; review sec26 M1:
	// the console has no certificate path, so password and code): the
	// password is a first factor with no second. The policy's default
	// level does not apply here (ADR 0020: an escape hatch, as no
	// administrator would be left who could log in to lower it).
	setup := t == nil && (s.cfg.Policy.AdminRequiresOTP || u.MinAuthLevel >= AuthLevelTwoFactor)
	a.holdRecord, a.partial = changing || t != nil || setup, t != nil || setup
	verdict, err := s.checkPassword(ctx, u, password, "admin.login", start, a)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	if setup && (verdict == ReasonOK || verdict == ReasonPasswordExpired) {
		s.appendAudit(ctx, s.adminLoginRecord(ctx, u, nil, errAdminOTPSetup, start))
		return "", time.Time{}, nil, errAdminOTPSetup
	}
	if t != nil && (verdict == ReasonOK || verdict == ReasonPasswordExpired) {
		if otp == "" {
			s.appendAudit(ctx, s.adminLoginRecord(ctx, u, nil, errOTPRequired, start))
			return "", time.Time{}, nil, errOTPRequired
		}
		if newPassword == "" {
			// A change that must come first is said before the code is
			// checked (and used up): the administrator then gives the new
			// password with the code their app still shows, checked once
			// (review sec28a L4). Without a new password the call changes
			// nothing.
			if _, cerr := s.adminPasswordChange(ctx, u, verdict == ReasonPasswordExpired, "", start); cerr != nil {
				s.appendAudit(ctx, s.adminLoginRecord(ctx, u, nil, cerr, start))
				return "", time.Time{}, nil, cerr
			}
		}
		// The code's own record (admin.login, method password+totp) is
		// the login's: success, or a counted failure.
		b := s.newEarlyAttempt(adminLoginSource(caller.From(ctx).ClientIP), "admin.login")
		r, err := s.checkOTP(ctx, u, t, otp, "admin.login", start, b, map[string]string{"method": "password+totp"})
		if err != nil {
			return "", time.Time{}, nil, err
		}
		if r != ReasonOK {
			return "", time.Time{}, nil, errBadAdminLogin
		}
		a.holdRecord = changing
	}
	if verdict == ReasonOK || verdict == ReasonPasswordExpired {
		// The password was right: what is left is whether it must change.
		changed, cerr := s.adminPasswordChange(ctx, u, verdict == ReasonPasswordExpired, newPassword, start)
		if a.holdRecord {
			s.appendAudit(ctx, s.adminLoginRecord(ctx, u, changed, cerr, start))
		}
		if cerr != nil {
			return "", time.Time{}, nil, cerr
		}
		u, verdict = changed, ReasonOK
	}
	if verdict != ReasonOK {
		// Verdicts given without a hash (disabled, locked, no password
		// set) cost one here: they answer like a wrong password.
		if !a.hashed {
			if err := s.verifyDummy(ctx, password); err != nil {
				return "", time.Time{}, nil, err
			}
		}
		return "", time.Time{}, nil, errBadAdminLogin
	}
	token = crypto.RandomToken(32)
	now := s.now()
	exp = now.Add(s.cfg.AdminTokenTTL)
	if err := s.store.CreateAdminToken(ctx, &AdminToken{Hash: crypto.HashToken(token), UserID: u.ID, ExpiresAt: exp, CreatedAt: now}); err != nil {
		return "", time.Time{}, nil, err
	}
	if err := s.store.DeleteExpiredAdminTokens(ctx, now); err != nil {
		s.log.Warn("expired admin tokens not deleted", zapErr(err))
	}
	return token, exp, u, nil
}

// PrepareAppointment readies person id for an administrator role (authz
// asks it before granting one): a password someone else set, or none at
// all, is replaced by a random temporary one, returned (shown once, to the
// appointer, who hands it over) — the one the person's creator chose no
// longer works, so a system administrator cannot act as the auditor the
// security auditor appoints (three-administrator separation); the person
// chooses their own at their first administrator login (the new one stays
// marked as set by another until then). A password of the person's own is
// left as it is (""). At another centre than the person's home only a
// unit administrator (role) is appointed (see below).
//
// Every administrator token the person holds (at this centre) is revoked
// first: rights granted anew are used from a new login, never by a token
// issued before (one kept from an earlier appointment, powerless since
// that role was revoked, would otherwise work again at once; trial5 D22).
func (s *Service) PrepareAppointment(ctx context.Context, id, role string) (string, error) {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return "", err
	}
	if err := s.ownUser(ctx, u); err != nil {
		// Only the home knows for sure whose password it is (a replica
		// may lag behind a reset; review sec9 L4): an administrator is
		// appointed at their home, but for a unit administrator, whom
		// level 1 appoints over a unit of a level-2 centre (004
		// §2.1.6.2.1; trial10 H1). This centre sets them no password:
		// their first administrator login replaces one another set, at
		// their home centre (adminPasswordChange).
		if role != RoleUnitAdmin {
			return "", err
		}
		return "", s.revokeUserTokens(ctx, u, "APPOINTMENT", start)
	}
	if err := s.revokeUserTokens(ctx, u, "APPOINTMENT", start); err != nil {
		return "", err
	}
	if u.PasswordHash != "" && !u.PasswordByOther {
		return "", nil
	}
	// A directory's password (credsource.go) is the person's own: none
	// is set.
	if src, err := s.sourceOf(ctx, u); err != nil || src != nil {
		return "", err
	}
	pw, err := s.cfg.Policy.Temporary(u.LoginName)
	if err != nil {
		return "", err
	}
	if err := s.setPassword(ctx, u, pw, PasswordSet{MustChange: !u.CannotChange, ByOther: true}, false, "user.appointment_password",
		start, ""); err != nil {
		return "", err
	}
	return pw, nil
}

// adminPasswordChange is the part of an administrator's login that follows
// a right password: an expired password, or one another administrator set
// (MustChange), is replaced by newPassword before a token is issued, and
// without one the login ends in PASSWORD_CHANGE_REQUIRED; a newPassword
// given otherwise replaces the password too. A person who may not change
// their own password (CannotChange) keeps one another set (the response
// says it must change), but an expired one is changed all the same: with
// authz deciding, nobody else may set an administrator's password. The
// change is made at the person's home centre only. It returns the user as
// the token is issued for.
//
// A password someone else set (PasswordByOther: an administrator's
// create, set or reset) is replaced first whatever the flags say: an
// administrator's password is theirs alone, or whoever chose it (the
// system administrator who created the person a security auditor then
// appointed) could act as them, and nobody but the holder may change it
// once they administer.
func (s *Service) adminPasswordChange(ctx context.Context, u *User, expired bool, newPassword string, start time.Time) (*User, error) {
	after, err := s.adminPasswordChangeHere(ctx, u, expired, newPassword, start)
	if e, ok := apierr.As(err); ok && e.Reason == "PASSWORD_CHANGE_REQUIRED" {
		if herr, ok := apierr.As(s.ownUser(ctx, u)); ok && herr.Reason == centre.ReasonElsewhere {
			// the change can be made at the person's home centre only: say
			// where, before they try here in vain (review sec8 R8)
			return nil, e.WithMessage(e.Message + "; the change is made at your home centre only (" + herr.Message + ")")
		}
	}
	return after, err
}

func (s *Service) adminPasswordChangeHere(ctx context.Context, u *User, expired bool, newPassword string, start time.Time) (*User, error) {
	switch {
	case u.PasswordByOther && newPassword == "":
		return nil, apierr.New(apierr.FailedPrecondition, "PASSWORD_CHANGE_REQUIRED",
			"your password was set by another person: an administrator logs in with a password of their own only; "+
				"log in again giving a new password (new_password)")
	case u.PasswordByOther:
		// changed below, CannotChange or not
	case u.CannotChange && !expired && newPassword != "":
		return nil, apierr.New(apierr.FailedPrecondition, "CANNOT_CHANGE_PASSWORD",
			"you may not change your own password (user_cannot_change_password), and nobody else may change an administrator's: "+
				"it stands until it expires, when you choose a new one at login")
	case u.CannotChange && !expired, !expired && !u.MustChange && newPassword == "":
		return u, nil
	case newPassword == "" && expired:
		return nil, apierr.New(apierr.FailedPrecondition, "PASSWORD_CHANGE_REQUIRED",
			"your password has expired: log in again giving a new password (new_password) to replace it")
	case newPassword == "":
		return nil, apierr.New(apierr.FailedPrecondition, "PASSWORD_CHANGE_REQUIRED",
			"your password must be changed first (it was set for you: a temporary or reset password): "+
				"log in again giving a new password of your own (new_password)")
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	if err := s.setPassword(ctx, u, newPassword, PasswordSet{}, true, "password.change", start, ""); err != nil {
		return nil, err
	}
	after := *u
	after.MustChange, after.PasswordByOther, after.PasswordChangedAt = false, false, s.now()
	return &after, nil
}

// adminLoginRecord is the audit record of an administrator's right
// password whose outcome waited for a password change (holdRecord):
// success when the token follows (changed is the user then); incomplete,
// with the reason, when the change is still to be made (required, or the
// new password refused: the password was right, so it is no failed
// login); failure when the system failed.
func (s *Service) adminLoginRecord(ctx context.Context, u, changed *User, err error, start time.Time) events.Event {
	if err == nil {
		return s.audit(ctx, "admin.login", "user:"+u.ID, u.OrgID, audit.ResultSuccess, ReasonOK.String(), start,
			map[string]string{"must_change_password": fmtBool(changed.MustChange), "password_changed": fmtBool(changed != u)})
	}
	result, reason := audit.ResultFailure, "ERROR"
	if ae, ok := apierr.As(err); ok && ae.Reason != "" {
		reason = ae.Reason
		if ae.Code == apierr.FailedPrecondition || ae.Code == apierr.InvalidArgument {
			result = audit.ResultIncomplete
		}
	}
	return s.audit(ctx, "admin.login", "user:"+u.ID, u.OrgID, result, reason, start, nil)
}

// verifyDummy verifies password against the dummy hash: the cost of a
// password check where there is no hash to check. Only overload and an
// ended context are errors.
func (s *Service) verifyDummy(ctx context.Context, password string) error {
	_, _, err := s.hasher.Verify(ctx, s.dummyHash, password)
	switch {
	case errors.Is(err, crypto.ErrOverloaded):
		return errOverloaded
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	}
	return nil
}

// AuthenticateAdmin checks a bearer token and returns its administrator.
// The token row and its administrator are read from the store, or reused
// from the last AdminTokenCacheTTL (admintokens.go: a logout or a change
// of the person through this instance ends the reuse at once; through
// another instance the TTL bounds it). A token is valid until its hard
// limit (AdminTokenTTL) while it is used at least every AdminTokenIdle.
// Refusals are audited (admin.auth). The administrator returned may be
// shared with other calls (the reused one): read it, never change it.
func (s *Service) AuthenticateAdmin(ctx context.Context, token string) (*User, error) {
	start := s.now()
	if token == "" {
		return nil, s.tokenRefused(ctx, "", "", "NO_TOKEN", errBadAdminToken, start)
	}
	if len(token) > 256 {
		return nil, s.tokenRefused(ctx, "", "", "MALFORMED_TOKEN", errBadAdminToken, start)
	}
	var hb [crypto.TokenHashLen]byte
	hk := crypto.AppendHashToken(hb[:0], token)
	now := start
	t, u, cached := s.adminTokens.get(hk, now)
	var h string // the hash as a string, made when needed
	if !cached {
		h = string(hk)
		r := s.adminTokens.shared(ctx, h, s.users, func(gen cacheGen) tokenRead {
			return s.readAdminToken(ctx, h, gen, now)
		})
		if r.err != nil && ctx.Err() == nil && (errors.Is(r.err, context.Canceled) || errors.Is(r.err, context.DeadlineExceeded)) {
			// the read this call waited for ended with its caller's context
			r = s.readAdminToken(ctx, h, s.adminTokens.generation(s.users), now)
		}
		switch {
		case r.err == nil:
			t, u = *r.t, r.u
		case errors.Is(r.err, ErrNotFound) && !r.userErr:
			// Never issued, revoked (logout, password change, disable, lock,
			// change of admin rights) or deleted after it expired.
			return nil, s.tokenRefused(ctx, "", "", "UNKNOWN_TOKEN", errBadAdminToken, start)
		case errors.Is(r.err, ErrNotFound):
			return nil, s.tokenRefused(ctx, "user:"+r.t.UserID, "", "NO_SUCH_USER", errBadAdminToken, start)
		default:
			return nil, r.err
		}
	}
	subject := "user:" + t.UserID
	if !now.Before(t.ExpiresAt) {
		return nil, s.tokenRefused(ctx, subject, "", "TOKEN_EXPIRED", errBadAdminToken, start)
	}
	if !now.Before(t.LastUsedAt.Add(s.cfg.AdminTokenIdle)) {
		return nil, s.tokenRefused(ctx, subject, "", "TOKEN_IDLE", errBadAdminToken, start)
	}
	// Disabling a user or taking their admin rights deletes their tokens;
	// this is the belt to those braces. An automatic lockout (failed
	// logins by anyone) does not end a session: the token holder proved
	// the password before.
	mayAdmin, err := s.mayAdmin(ctx, u)
	if err != nil {
		return nil, err
	}
	if !mayAdmin || !u.Enabled() {
		return nil, s.tokenRefused(ctx, subject, u.OrgID, "NOT_ADMIN", errNotAdmin, start)
	}
	if now.Sub(t.LastUsedAt) >= s.tokenTouchEvery() {
		if h == "" {
			h = string(hk)
		}
		if err := s.store.TouchAdminToken(ctx, h, now); err != nil {
			s.log.Warn("admin token use not recorded", zap.String("user_id", u.ID), zapErr(err))
		} else {
			s.adminTokens.touched(h, now)
		}
	}
	return u, nil
}

// readAdminToken reads token h and its administrator from the store and
// caches them (unless something was dropped since gen).
func (s *Service) readAdminToken(ctx context.Context, h string, gen cacheGen, now time.Time) tokenRead {
	t, err := s.store.GetAdminToken(ctx, h)
	if err != nil {
		return tokenRead{err: err}
	}
	u, err := s.store.GetUser(ctx, t.UserID)
	if err != nil {
		return tokenRead{t: t, err: err, userErr: true}
	}
	s.adminTokens.put(t, u, gen, s.users, now)
	return tokenRead{t: t, u: u}
}

// SetAdminGate makes gate decide who, besides holders of the legacy
// is_admin flag, may hold an administrator token (the authz component: any
// administrator role, scoped or not). Without a gate only is_admin users
// may.
func (s *Service) SetAdminGate(gate func(ctx context.Context, u *User) (bool, error)) {
	s.adminGate = gate
}

// mayAdmin reports whether u may hold an administrator token.
func (s *Service) mayAdmin(ctx context.Context, u *User) (bool, error) {
	if u.IsAdmin || s.adminGate == nil {
		return u.IsAdmin, nil
	}
	return s.adminGate(ctx, u)
}

// tokenTouchEvery is how often a token's last use is written: a token may
// expire up to this much before AdminTokenIdle after its true last use.
func (s *Service) tokenTouchEvery() time.Duration {
	return min(s.cfg.AdminTokenIdle/10, time.Minute)
}

// tokenRefused audits a refused administrator token and returns err.
func (s *Service) tokenRefused(ctx context.Context, subject, org, reason string, err error, start time.Time) error {
	s.appendAudit(ctx, s.audit(ctx, "admin.auth", subject, org, "denied", reason, start, nil))
	return err
}

// revokeUserTokens revokes every administrator token of userID held at
// this centre: the store's rows, what this instance keeps of them, and
// (through the admin_token.revoked CHANGES event) what the other
// instances keep (ForgetRevokedTokens). The user.admin_tokens_revoked
// change travels to the centres holding the person as a replica, which
// revoke the tokens the person holds there issued before it (ApplyReplica).
// It is audited (admin.tokens_revoked, with why).
func (s *Service) revokeUserTokens(ctx context.Context, u *User, why string, start time.Time) error {
	defer s.adminTokens.dropUser(u.ID) // after the delete, as AdminLogout
	evs := eventsOf(s.audit(ctx, "admin.tokens_revoked", "user:"+u.ID, u.OrgID, "success", why, start, nil))
	evs = append(evs, s.change(ctx, adminTokenEntity, "revoked", u.ID, map[string]any{"user_id": u.ID}),
		s.changeWith(ctx, "user", "admin_tokens_revoked", u.ID, map[string]any{"reason": why},
			tokensRecord{NotBefore: s.now().UTC()}))
	if err := s.store.DeleteUserAdminTokens(ctx, u.ID, evs); err != nil {
		return err
	}
	s.kick()
	return nil
}

// AdminLogout revokes token, the caller's own (already authenticated).
func (s *Service) AdminLogout(ctx context.Context, token string) error {
	start := s.now()
	subject := ""
	if p := caller.From(ctx).Principal; p != "" {
		subject = "user:" + p
	}
	h := crypto.HashToken(token)
	// after the delete: a concurrent call that read the token before it
	// does not cache it (adminTokenCache.put)
	defer s.adminTokens.dropToken(h)
	evs := eventsOf(s.audit(ctx, "admin.logout", subject, "", "success", "OK", start, nil))
	if t, err := s.store.GetAdminToken(ctx, h); err == nil {
		// The other instances drop what they keep of this administrator's
		// tokens (ForgetRevokedTokens) instead of reusing it until
		// identity.admin_decision_ttl ends. (Without the event, when the
		// read fails, the TTL still bounds it.)
		evs = append(evs, s.change(ctx, adminTokenEntity, "revoked", t.UserID, map[string]any{"user_id": t.UserID}))
	}
	err := s.store.DeleteAdminToken(ctx, h, evs)
	if errors.Is(err, ErrNotFound) {
		// Revoked meanwhile (a concurrent logout): the outcome stands.
		return nil
	}
	if err != nil {
		return err
	}
	s.kick()
	return nil
}

// AuditRefusedAdminCall records an administrator call the service refused
// (bad request, permission, precondition, conflict); the transport reports
// them (server.AuditedAdminService). reason is the error's reason.
func (s *Service) AuditRefusedAdminCall(ctx context.Context, method, reason string) {
	s.appendAudit(ctx, s.audit(ctx, "admin.refused", "", "", "denied", reason, s.now(),
		map[string]string{"method": method}))
}
