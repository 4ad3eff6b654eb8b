package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/cache"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

func init() {
	apierr.Register(apierr.Reason{Name: "UNKNOWN_METHOD", Code: apierr.Unauthenticated,
		Doc: "A method the identity service does not know how to authenticate callers for."})
}

// Verifier checks the credentials callers present, with identity (which
// owns applications and administrators).
type Verifier interface {
	// VerifyApp checks App_ID + App_Secret from ip with the client
	// certificate fingerprint cert ("" if none).
	VerifyApp(ctx context.Context, appID, secret string, ip netip.Addr, cert string) (*caller.App, error)
	// VerifyAdmin checks an administrator's bearer token and returns the
	// administrator (pkg/adminauth).
	VerifyAdmin(ctx context.Context, token string) (*adminauth.Admin, error)
}

// AppCacheTTL is how long a verified App_ID + App_Secret (from one address
// with one certificate) is believed without asking identity again: a
// suspended application or a rotated secret is refused here at most this
// late.
const AppCacheTTL = 10 * time.Second

// CallerAuth authenticates callers: AuthzService callers by App_ID +
// App_Secret (or an administrator token, for reviews), AuthzAdminService
// callers by an administrator token, both
// checked with identity; a call another component makes on behalf of a
// caller it authenticated (its origin, believed only over a trusted
// channel) is that caller's.
type CallerAuth struct {
	v       Verifier
	apps    *cache.TTL[*caller.App]
	key     []byte
	limiter *caller.RateLimiter
	now     func() time.Time
}

// NewCallerAuth returns the authenticator over v.
func NewCallerAuth(v Verifier) *CallerAuth {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &CallerAuth{v: v, apps: cache.NewTTL[*caller.App](AppCacheTTL, 10000), key: key,
		limiter: caller.NewRateLimiter(), now: time.Now}
}

// AuthenticateCaller implements grpcx.CallerAuth.
func (a *CallerAuth) AuthenticateCaller(ctx context.Context, method string) (context.Context, error) {
	c := &caller.Caller{ClientIP: grpcx.ClientIP(ctx), RequestID: grpcx.RequestID(ctx), ClientCert: grpcx.ClientCertSHA256(ctx)}
	ctx = caller.With(ctx, c)
	o := grpcx.OriginFrom(ctx)
	switch {
	case strings.HasPrefix(method, "/grpc.health.v1.Health/"), strings.HasPrefix(method, "/grpc.reflection."):
		return ctx, nil
	case (method == authzv1.AuthzService_CheckAdmin_FullMethodName || method == authzv1.AuthzService_AppointAdmin_FullMethodName) &&
		grpcx.FromComponent(ctx):
		// A component asking about one of its administrators (the
		// request names them), possibly before it has authenticated
		// them (identity's token checks and AdminLogin).
		c.App, c.Principal = appRef(o.App), o.Principal
		return ctx, nil
	case strings.HasPrefix(method, "/uias.authz.v1.AuthzReplicaService/"):
		// The sync component applying another centre's changes.
		if !grpcx.FromComponent(ctx) {
			return nil, errReplicaComponentsOnly
		}
		return ctx, nil
	case strings.HasPrefix(method, "/uias.authz.v1.AuthzService/"):
		if o.App != "" || o.Principal != "" {
			// A component asking on behalf of its authenticated caller.
			c.App, c.Principal = appRef(o.App), o.Principal
			return ctx, nil
		}
		if tok := grpcx.BearerToken(ctx); tok != "" {
			// An administrator reviewing (uias ctl authz check/explain).
			adm, err := a.v.VerifyAdmin(ctx, tok)
			if err != nil {
				return nil, err
			}
			ctx = adminauth.With(ctx, adm)
			c.Principal, o.Principal = adm.ID, adm.ID
			break
		}
		appID, secret := grpcx.AppCredentials(ctx)
		app, err := a.app(ctx, appID, secret, c.ClientIP, c.ClientCert)
		if err != nil {
			return nil, err
		}
		c.App = app
		o.App = app.ID
	case strings.HasPrefix(method, "/uias.authz.v1.AuthzAdminService/"):
		if o.Principal != "" {
			c.Principal = o.Principal
			return ctx, nil
		}
		adm, err := a.v.VerifyAdmin(ctx, grpcx.BearerToken(ctx))
		if err != nil {
			return nil, err
		}
		ctx = adminauth.With(ctx, adm)
		c.Principal = adm.ID
		o.Principal = adm.ID
	default:
		return nil, apierr.New(apierr.Unauthenticated, "UNKNOWN_METHOD", "unknown method")
	}
	return grpcx.WithOrigin(ctx, o), nil
}

func appRef(id string) *caller.App {
	if id == "" {
		return nil
	}
	return &caller.App{ID: id, Active: true}
}

// app verifies application credentials, from the cache when the same
// credentials from the same address and certificate were verified lately,
// and applies the application's rate limit.
func (a *CallerAuth) app(ctx context.Context, appID, secret string, ip netip.Addr, cert string) (*caller.App, error) {
	if appID == "" || secret == "" || len(appID) > caller.MaxAppIDLen || len(secret) > caller.MaxSecretLen {
		return nil, caller.ErrBadAppCredentials
	}
	m := hmac.New(sha256.New, a.key)
	for _, s := range []string{appID, secret, ip.String(), cert} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	k := hex.EncodeToString(m.Sum(nil))
	now := a.now()
	app, ok := a.apps.Get(k, now)
	if !ok {
		got, err := a.v.VerifyApp(ctx, appID, secret, ip, cert)
		if err != nil {
			return nil, err
		}
		app = got
		a.apps.Put(k, app, now)
	}
	if !a.limiter.Allow(app.ID, app.RateLimit, app.RateBurst, now) {
		return nil, caller.ErrRateLimited
	}
	return app, nil
}
