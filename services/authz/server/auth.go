package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
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
	// certificate fingerprint cert ("" if none) and the call's request
	// signature sig (none: an unsigned call), and that the application
	// may call interface api (caller.APIOf) now; it returns the
	// thumbprint of the key that verified a signed call.
	VerifyApp(ctx context.Context, appID, secret string, ip netip.Addr, cert string, sig caller.SignedRequest, api string) (*caller.App, string, error)
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
	key     credKeyPrefix
	limiter *caller.RateLimiter
	flows   *caller.Concurrency
	now     func() time.Time
	// Share is the number of authz instances serving, which share the
	// applications' rate and concurrency limits (nil: this one alone).
	Share caller.Share
	// Denied, when set, is told of every caller refused by those limits
	// here (to audit it as caller.denied).
	Denied func(ctx context.Context, appID string, err *apierr.Error, start time.Time)
}

// refuse tells Denied of err and returns it.
func (a *CallerAuth) refuse(ctx context.Context, appID string, err *apierr.Error, start time.Time) error {
	if a.Denied != nil {
		a.Denied(ctx, appID, err, start)
	}
	return err
}

// NewCallerAuth returns the authenticator over v.
func NewCallerAuth(v Verifier) *CallerAuth {
	var key credKeyPrefix
	_, _ = rand.Read(key[:])
	return &CallerAuth{v: v, apps: cache.NewTTL[*caller.App](AppCacheTTL, 10000), key: key,
		limiter: caller.NewRateLimiter(), flows: caller.NewConcurrency(), now: time.Now}
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
		if method == authzv1.AuthzService_AppointAdmin_FullMethodName && c.App == nil && c.Principal == "" {
			// For nobody: identity's own appointments (the first start's
			// administrators, legacy flags, identity.personal_data_admins),
			// which identity records as "system:appointments"; the grant's
			// records here say the same, not "anonymous" (a caller nobody
			// authenticated).
			c.System = "appointments"
		}
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
			c.Principal, o.Principal, c.PrincipalLogin = adm.ID, adm.ID, adm.Login
			break
		}
		appID, secret := grpcx.AppCredentials(ctx)
		sig := grpcx.RequestSignature(ctx, method)
		app, key, err := a.app(ctx, appID, secret, c.ClientIP, c.ClientCert, sig, caller.APIOf(method))
		if err != nil {
			return nil, err
		}
		// Last: a slot of the application's concurrency limit, given
		// back when the call ends.
		leave, ok := a.flows.Enter(app.ID, a.Share.Concurrent(app.MaxConcurrent))
		if !ok {
			// refused after its credentials checked: the caller returned
			// names it (access record, per-application metrics)
			c.App = app
			return ctx, a.refuse(ctx, app.ID, caller.ErrConcurrencyLimited, a.now())
		}
		if leave != nil {
			ctx = grpcx.WithCallEnd(ctx, leave)
		}
		c.App, c.SignedKey = app, key
		if key != "" {
			c.Signed = &sig
			grpcx.SignedCall(ctx, app.ID, sig) // its answer is signed
		}
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
		c.Principal, c.PrincipalLogin = adm.ID, adm.Login
		o.Principal = adm.ID
	default:
		return nil, apierr.New(apierr.Unauthenticated, "UNKNOWN_METHOD", "unknown method")
	}
	return grpcx.WithOrigin(ctx, o), nil
}

// credKey is the cache key of credentials: SHA-256 of this process's
// random key followed by the application, the secret, the address and the
// certificate, so the cache holds no secret and no one without the key can
// make two credentials meet. The input is built on the stack: no
// allocation but the key's string (once per call: it was a dozen with an
// HMAC object and hex).
func (a *CallerAuth) credKey(appID, secret string, ip netip.Addr, cert string) string {
	var buf [len(credKeyPrefix{}) + caller.MaxAppIDLen + caller.MaxSecretLen + 16 + 64 + 4]byte
	b := append(buf[:0], a.key[:]...)
	b = append(b, appID...)
	b = append(b, 0)
	b = append(b, secret...)
	b = append(b, 0, byte(ip.BitLen()/8))
	ip16 := ip.As16()
	b = append(b, ip16[:]...)
	b = append(b, cert...)
	sum := sha256.Sum256(b)
	return string(sum[:])
}

// credKeyPrefix is the random key of credKey.
type credKeyPrefix = [32]byte

func appRef(id string) *caller.App {
	if id == "" {
		return nil
	}
	return &caller.App{ID: id, Active: true}
}

// app verifies application credentials, from the cache when the same
// credentials from the same address and certificate were verified lately,
// and applies the application's rate limit. A signed call (sig) is
// verified by identity every time (its nonce is spent there) and never
// cached; an unsigned call of an application that requires signatures is
// refused by identity, so never cached either.
//
// The application's interface grants and access period hold for every
// call: identity checks them for the call it verifies, and a call served
// from the cache is checked here; one they refuse is asked of identity,
// which refuses it again and records the refusal.
func (a *CallerAuth) app(ctx context.Context, appID, secret string, ip netip.Addr, cert string, sig caller.SignedRequest, api string) (*caller.App, string, error) {
	if appID == "" || secret == "" || len(appID) > caller.MaxAppIDLen || len(secret) > caller.MaxSecretLen {
		return nil, "", caller.ErrBadAppCredentials
	}
	now := a.now()
	if sig.Attempted() {
		app, key, err := a.v.VerifyApp(ctx, appID, secret, ip, cert, sig, api)
		if err != nil {
			return nil, "", err
		}
		if rate, burst := a.Share.Rate(app.RateLimit, app.RateBurst); !a.limiter.Allow(app.ID, rate, burst, now) {
			return nil, "", a.refuse(ctx, app.ID, caller.ErrRateLimited, now)
		}
		return app, key, nil
	}
	k := a.credKey(appID, secret, ip, cert)
	app, ok := a.apps.Get(k, now)
	if ok && app.Permits(api, now) != nil {
		ok = false
	}
	if !ok {
		got, _, err := a.v.VerifyApp(ctx, appID, secret, ip, cert, sig, api)
		if err != nil {
			return nil, "", err
		}
		app = got
		a.apps.Put(k, app, now)
	}
	if rate, burst := a.Share.Rate(app.RateLimit, app.RateBurst); !a.limiter.Allow(app.ID, rate, burst, now) {
		return nil, "", a.refuse(ctx, app.ID, caller.ErrRateLimited, now)
	}
	return app, "", nil
}
