package identity

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/crypto"
)

// Caller authentication errors. Unknown App_ID and wrong secret share one
// message so a caller cannot probe which App_IDs exist.
var (
	errBadAppCredentials = apierr.New(apierr.Unauthenticated, "BAD_APP_CREDENTIALS", "invalid application credentials")
	errAppSuspended      = apierr.New(apierr.PermissionDenied, "APP_SUSPENDED", "application is suspended")
	errIPNotAllowed      = apierr.New(apierr.PermissionDenied, "IP_NOT_ALLOWED", "calls from this address are not allowed for this application")
	errRateLimited       = apierr.New(apierr.ResourceExhausted, "RATE_LIMITED", "rate limit exceeded for this application, retry later").WithMeta("legacy_code", "-6")
	// errOverloaded is a fast refusal when every password-hashing worker and
	// queue slot is taken (memory stays bounded instead of queueing).
	errOverloaded    = apierr.New(apierr.ResourceExhausted, "OVERLOADED", "too many password operations in progress, retry shortly").WithMeta("legacy_code", "-6")
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
// IP allow-list and rate limit, in that order. Failures are audited.
func (s *Service) AuthenticateApp(ctx context.Context, appID, secret string, ip netip.Addr) (*App, error) {
	start := s.now()
	now := start
	if appID == "" || secret == "" || len(appID) > maxIDLen || len(secret) > 256 {
		return nil, s.callerDenied(ctx, appID, errBadAppCredentials, start)
	}
	app, ok := s.apps.get(appID, now)
	if !ok {
		a, err := s.store.GetApp(ctx, appID)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, s.callerDenied(ctx, appID, errBadAppCredentials, start)
		case err != nil:
			return nil, storeErr(err, "application")
		}
		app = a
		s.apps.put(appID, app, now)
	}
	h := crypto.HashToken(secret)
	valid := crypto.EqualHash(h, app.SecretHash)
	if !valid && app.PrevSecretHash != "" && now.Before(app.PrevSecretExpires) {
		valid = crypto.EqualHash(h, app.PrevSecretHash)
	}
	if !valid {
		return nil, s.callerDenied(ctx, appID, errBadAppCredentials, start)
	}
	if app.Status != AppActive {
		return nil, s.callerDenied(ctx, appID, errAppSuspended, start)
	}
	if !ipAllowed(app.IPAllowList, ip) {
		return nil, s.callerDenied(ctx, appID, errIPNotAllowed, start)
	}
	if !s.limiter.allow(app.ID, app.RateLimit, app.RateBurst, now) {
		return nil, s.callerDenied(ctx, appID, errRateLimited, start)
	}
	return app, nil
}

// callerDenied audits a refused caller and returns err. The audit write is
// best effort: if storage is down the refusal still stands.
func (s *Service) callerDenied(ctx context.Context, appID string, err *apierr.Error, start time.Time) error {
	c := *CallerFrom(ctx)
	ev := s.audit(WithCaller(ctx, &c), "caller.denied", "app:"+appID, "", "denied", err.Reason, start,
		map[string]string{"app_id": appID})
	if werr := s.store.AppendEvents(ctx, eventsOf(ev)); werr != nil {
		s.log.Warn("audit write failed for refused caller", zapReason(err.Reason), zapErr(werr))
	} else {
		s.kick()
	}
	return err
}

func ipAllowed(list []string, ip netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, c := range list {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			if a, aerr := netip.ParseAddr(c); aerr == nil && a.Unmap() == ip {
				return true
			}
			continue
		}
		if p.Contains(ip) {
			return true
		}
	}
	return false
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
		return "", time.Time{}, nil, storeErr(err, "user")
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
		return "", time.Time{}, nil, storeErr(err, "token")
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
	if u, ok := s.tokens.get(h, now); ok {
		return u, nil
	}
	t, err := s.store.GetAdminToken(ctx, h)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadAdminToken
	}
	if err != nil {
		return nil, storeErr(err, "token")
	}
	if !now.Before(t.ExpiresAt) {
		return nil, errBadAdminToken
	}
	u, err := s.store.GetUser(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, errBadAdminToken
	}
	if err != nil {
		return nil, storeErr(err, "user")
	}
	if !u.IsAdmin || u.Status != StatusActive || u.Locked(now) {
		return nil, errNotAdmin
	}
	s.tokens.put(h, u, now)
	return u, nil
}
