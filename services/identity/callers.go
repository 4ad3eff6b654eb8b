package identity

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
)

// Administrator and load errors (application caller errors are
// caller.Err*).
var (
	// errOverloaded is a fast refusal when every password-hashing worker and
	// queue slot is taken (memory stays bounded instead of queueing).
	errOverloaded    = apierr.New(apierr.ResourceExhausted, "OVERLOADED", "too many password operations in progress, retry shortly")
	errBadAdminToken = apierr.New(apierr.Unauthenticated, "BAD_ADMIN_TOKEN", "administrator token is missing, invalid or expired; log in again")
	errNotAdmin      = apierr.New(apierr.PermissionDenied, "NOT_ADMIN", "this call requires an administrator")
	errBadAdminLogin = apierr.New(apierr.Unauthenticated, "BAD_ADMIN_LOGIN", "invalid login name or password")
)

// AdmitPasswordCall refuses a call that will hash a password (Authenticate,
// ChangePassword, AdminLogin) while every hashing worker and queue slot is
// taken, before anything else is done for it. The transport asks it for
// each such call, so under overload the refusal costs almost nothing.
func (s *Service) AdmitPasswordCall() error {
	if s.hasher.Saturated() {
		return errOverloaded
	}
	return nil
}

// AuthenticateApp checks an application caller: App_ID + App_Secret, status,
// the client certificate of an application bound to one, IP allow-list and
// rate limit, in that order (caller.AppAuthenticator over this component's
// store). Failures are audited.
func (s *Service) AuthenticateApp(ctx context.Context, appID, secret string, ip netip.Addr) (*caller.App, error) {
	return s.appAuth.Authenticate(ctx, appID, secret, ip)
}

// CallerApp is the application as caller authentication sees it.
func (a *App) CallerApp() *caller.App {
	return &caller.App{ID: a.ID, Type: a.Type, Code: a.Code, Active: a.Status == AppActive,
		IPAllowList: a.IPAllowList, RateLimit: a.RateLimit, RateBurst: a.RateBurst,
		SecretHash: a.SecretHash, PrevSecretHash: a.PrevSecretHash, PrevSecretExpires: a.PrevSecretExpires,
		ClientCertSHA256: a.ClientCertSHA256}
}

// appSource is the caller.AppSource of the identity component: its store.
type appSource struct{ s *Service }

func (src appSource) CallerApp(ctx context.Context, appID string) (*caller.App, error) {
	a, err := src.s.store.GetApp(ctx, appID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, caller.ErrUnknownApp
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
func (s *Service) AdminLogin(ctx context.Context, login, password string) (token string, exp time.Time, u *User, err error) {
	start := s.now()
	u, err = s.store.GetUserByLogin(ctx, login)
	if errors.Is(err, ErrNotFound) {
		s.appendAudit(ctx, s.audit(ctx, "admin.login", "login:"+login, "", "failure", "NO_SUCH_USER", start, nil))
		return "", time.Time{}, nil, errBadAdminLogin
	}
	if err != nil {
		return "", time.Time{}, nil, err
	}
	verdict, err := s.checkPassword(ctx, u, password, "admin.login", start)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	if verdict != ReasonOK {
		return "", time.Time{}, nil, errBadAdminLogin
	}
	if !u.IsAdmin {
		s.appendAudit(ctx, s.audit(ctx, "admin.login", "user:"+u.ID, u.OrgID, "denied", "NOT_ADMIN", start, nil))
		return "", time.Time{}, nil, errNotAdmin
	}
	token = crypto.RandomToken(32)
	now := s.now()
	exp = now.Add(s.cfg.AdminTokenTTL)
	if err := s.store.CreateAdminToken(ctx, &AdminToken{Hash: crypto.HashToken(token), UserID: u.ID, ExpiresAt: exp, CreatedAt: now}); err != nil {
		return "", time.Time{}, nil, err
	}
	return token, exp, u, nil
}

// AuthenticateAdmin checks a bearer token and returns its administrator.
func (s *Service) AuthenticateAdmin(ctx context.Context, token string) (*User, error) {
	if token == "" || len(token) > 256 {
		return nil, errBadAdminToken
	}
	h := crypto.HashToken(token)
	now := s.now()
	if u, ok := s.tokens.Get(h, now); ok {
		return u, nil
	}
	t, err := s.store.GetAdminToken(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadAdminToken
	}
	if err != nil {
		return nil, err
	}
	if !now.Before(t.ExpiresAt) {
		return nil, errBadAdminToken
	}
	u, err := s.store.GetUser(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadAdminToken
	}
	if err != nil {
		return nil, err
	}
	if !u.IsAdmin || u.Status != StatusActive || u.Locked(now) {
		return nil, errNotAdmin
	}
	s.tokens.Put(h, u, now)
	return u, nil
}
