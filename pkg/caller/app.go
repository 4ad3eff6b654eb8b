package caller

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/netip"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/cache"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/reqsig"
)

// Limits on presented credentials: longer ones are refused before any
// lookup.
const (
	MaxAppIDLen  = 128
	MaxSecretLen = 256
)

// The reasons of application caller authentication (pkg/apierr table).
func init() {
	apierr.Register(
		apierr.Reason{Name: "BAD_APP_CREDENTIALS", Code: apierr.Unauthenticated,
			Doc: "Missing, unknown or wrong App_ID / App_Secret."},
		apierr.Reason{Name: ReasonAppSecretReplaced, Code: apierr.Unauthenticated,
			Doc: "The App_Secret presented was the application's previous one: a rotation replaced it and its overlap has ended. Use the current secret (do not ask for another rotation: the instances already on the current one would be cut off at the end of the next overlap). Only a caller who presented that secret is told."},
		apierr.Reason{Name: ReasonAppSecretExpired, Code: apierr.Unauthenticated,
			Doc: "The App_Secret presented is right but has expired (its application's secret lifetime, JR/T 0185-2020 7.3.4); an administrator issues a new one (uias ctl app rotate-secret). Only a caller who presented the right secret, and whom the application's status, certificate and IP allow-list admit, is told."},
		apierr.Reason{Name: "APP_SUSPENDED", Code: apierr.PermissionDenied,
			Doc: "The calling application is suspended."},
		apierr.Reason{Name: ReasonAllowListRequired, Code: apierr.PermissionDenied,
			Doc: "The application has no IP allow-list, and this deployment requires one of every application (`identity.policy.require_ip_allow_list`): an administrator sets one; nothing else was checked after the secret, address and certificate."},
		apierr.Reason{Name: "IP_NOT_ALLOWED", Code: apierr.PermissionDenied,
			Doc: "The caller's address is not in the application's IP allow-list."},
		apierr.Reason{Name: "CLIENT_CERT_REQUIRED", Code: apierr.Unauthenticated,
			Doc: "The application is bound to a client certificate and must call over TLS presenting it. Over REST a certificate the edge could not verify (expired, not yet valid, of a CA it does not trust) counts as none (the server log says why); over gRPC such a certificate fails the TLS handshake."},
		apierr.Reason{Name: "RATE_LIMITED", Code: apierr.ResourceExhausted, Legacy: -6,
			Doc: "The application's rate limit is exceeded; retry later (REST: Retry-After)."},
		apierr.Reason{Name: ReasonForeignApp, Code: apierr.PermissionDenied,
			Doc: "The request names another application than the caller: an application authenticates only its own accounts (Authenticate app_type/app_code) and asks only about its own permissions (authz app)."},
	)
}

// ReasonAppSecretExpired: the right App_Secret, past its expiry.
const ReasonAppSecretExpired = "APP_SECRET_EXPIRED"

// ReasonAppSecretReplaced: the application's previous App_Secret, after
// the overlap of the rotation that replaced it.
const ReasonAppSecretReplaced = "APP_SECRET_REPLACED"

// SecretExpired is the refusal of application appID's right secret that
// expired at exp: it says when and what to do (told only to a caller who
// presented the secret, so it reveals nothing to anyone else).
func SecretExpired(appID string, exp time.Time) *apierr.Error {
	return apierr.New(apierr.Unauthenticated, ReasonAppSecretExpired,
		"the application's secret expired at "+exp.UTC().Format(time.RFC3339)+
			"; an administrator issues a new one: uias ctl app rotate-secret "+appID)
}

// ReasonForeignApp: a request of an application names another one.
const ReasonForeignApp = "FOREIGN_APP"

// ForeignApp is the error of an application's request naming another
// application (msg says what it may do instead).
func ForeignApp(msg string) error { return apierr.New(apierr.PermissionDenied, ReasonForeignApp, msg) }

// Caller authentication errors. Unknown App_ID and wrong secret share one
// error so a caller cannot probe which App_IDs exist.
var (
	ErrBadAppCredentials = apierr.New(apierr.Unauthenticated, "BAD_APP_CREDENTIALS", "invalid application credentials")
	ErrAppSuspended      = apierr.New(apierr.PermissionDenied, "APP_SUSPENDED", "application is suspended")
	ErrIPNotAllowed      = apierr.New(apierr.PermissionDenied, "IP_NOT_ALLOWED", "calls from this address are not allowed for this application")
	// ErrAllowListRequired refuses an application without an IP
	// allow-list where the deployment requires one.
	ErrAllowListRequired = apierr.New(apierr.PermissionDenied, ReasonAllowListRequired,
		"this application has no IP allow-list, which this deployment requires: an administrator sets one (uias ctl app update APP_ID --allow CIDR, repeatable)")
	ErrClientCert  = apierr.New(apierr.Unauthenticated, "CLIENT_CERT_REQUIRED", "this application must call over TLS with its registered client certificate")
	ErrRateLimited = apierr.New(apierr.ResourceExhausted, "RATE_LIMITED", "rate limit exceeded for this application, retry later")
)

// ErrUnknownApp is what an AppSource returns (wrapped or bare) when no
// application has the App_ID. Callers never see it: it becomes
// ErrBadAppCredentials.
var ErrUnknownApp = errors.New("no such application")

// App is an application as caller authentication and the components see
// it. Secrets are SHA-256 hashes (crypto.HashToken); the previous secret
// stays valid until PrevSecretExpires. Values handed out by an
// AppAuthenticator are shared: do not modify them.
type App struct {
	ID   string // App_ID
	Type string // app_type and app_code: the application in the legacy API
	Code string
	// Active is false for a suspended application (and for any status the
	// source does not know: callers are refused unless it says active).
	Active      bool
	IPAllowList []string // addresses and CIDR prefixes; empty: any address
	RateLimit   float64  // calls per second; <= 0: unlimited
	RateBurst   int      // bucket size; < 1: RateLimit (at least 1)
	SecretHash  string
	// SecretExpires is when the current secret stops working (zero:
	// never): past it the right secret is refused with SecretExpired.
	SecretExpires     time.Time
	PrevSecretHash    string
	PrevSecretExpires time.Time
	// ClientCertSHA256, when set, binds the application to a client
	// certificate (App_ID + certificate): calls must come with the verified
	// client certificate of this fingerprint (Caller.ClientCert).
	ClientCertSHA256 string
	// SigningKeys are the application's request signing keys (at most
	// reqsig.MaxKeys); RequireSignatures: every call must be signed (with
	// one of them).
	SigningKeys       []*reqsig.Key
	RequireSignatures bool
	// Terminated is when the application was deleted (zero: it was not):
	// a caller presenting one of its last secrets (SecretHash,
	// PrevSecretHash) is told its service ended (AppTerminated), any other
	// refused as for an unknown App_ID.
	Terminated time.Time
	// GrantedAPIs are the interfaces the application may call (APIs;
	// empty: every one); AccessFrom and AccessUntil bound when it may call
	// (zero: open). Permits checks them (grants.go).
	GrantedAPIs             []string
	AccessFrom, AccessUntil time.Time
	// MaxConcurrent bounds the application's calls in progress (0: no
	// bound; flow.go), across the instances that share it.
	MaxConcurrent int
	// MinAuthLevel is the lowest authentication level the application's
	// Authenticate calls must reach (identity's graded authentication,
	// ADR 0020; 0: any).
	MinAuthLevel int
	// SecurityLevel is the application's interface level: 2 for A2 (JR/T
	// 0185-2020 6.2), else A1.
	SecurityLevel int
	// LegacyIPOnly: the application may call the legacy Hessian/SOAP
	// authenticate identified by Type and Code and its address alone
	// (AuthenticateLegacyAddress).
	LegacyIPOnly bool
	// NameRelease is what the identity component's Authenticate answers of
	// the person's name to the application ("": in clear; "masked";
	// "omitted"). Other components do not read it.
	NameRelease string
}

// CertMatches reports whether a call with the client certificate of
// fingerprint fp may act as the application: always for an application not
// bound to a certificate, else when fp is its certificate's (compared in
// constant time).
func (a *App) CertMatches(fp string) bool {
	return a.ClientCertSHA256 == "" || subtle.ConstantTimeCompare([]byte(fp), []byte(a.ClientCertSHA256)) == 1
}

// CheckSecret checks secret at now (compared in constant time): nil when
// it is the current secret before SecretExpires or the previous one before
// PrevSecretExpires;
// SecretExpired when it is the current secret past its expiry,
// APP_SECRET_REPLACED when it is the previous one past its overlap (only a
// caller holding the secret learns either); ErrBadAppCredentials otherwise.
func (a *App) CheckSecret(secret string, now time.Time) *apierr.Error {
	current, previous, replaced := a.matchSecret(secret, now)
	switch {
	case previous:
		return nil
	case replaced:
		// The previous secret after its overlap: its holder is told that
		// it was replaced (a caller without it learns nothing).
		return apierr.New(apierr.Unauthenticated, ReasonAppSecretReplaced,
			"this App_Secret was replaced by a newer one and stopped working at "+
				a.PrevSecretExpires.UTC().Format(time.RFC3339)+"; use the application's current secret (ask your UIAS administrator)")
	case !current:
		return ErrBadAppCredentials
	case !a.SecretExpires.IsZero() && !now.Before(a.SecretExpires):
		return SecretExpired(a.ID, a.SecretExpires)
	}
	return nil
}

// matchSecret tells whether secret is the current secret, or else the
// previous one within its overlap, or the previous one after it.
func (a *App) matchSecret(secret string, now time.Time) (current, previous, replaced bool) {
	h := crypto.HashToken(secret)
	if crypto.EqualHash(h, a.SecretHash) {
		return true, false, false
	}
	if a.PrevSecretHash == "" || !crypto.EqualHash(h, a.PrevSecretHash) {
		return false, false, false
	}
	return false, now.Before(a.PrevSecretExpires), !now.Before(a.PrevSecretExpires)
}

// ReasonAllowListRequired: ErrAllowListRequired's reason.
const ReasonAllowListRequired = "IP_ALLOW_LIST_REQUIRED"

// AllowsIP reports whether the allow-list admits ip (see IPAllowed).
func (a *App) AllowsIP(ip netip.Addr) bool { return IPAllowed(a.IPAllowList, ip) }

// AppSource finds applications by App_ID for caller authentication.
type AppSource interface {
	// CallerApp returns the application appID, or an error wrapping
	// ErrUnknownApp when there is none. Any other error is returned to the
	// caller as it is: make it an *apierr.Error that leaks nothing.
	CallerApp(ctx context.Context, appID string) (*App, error)
}

// AppSourceFunc adapts a function to AppSource.
type AppSourceFunc func(ctx context.Context, appID string) (*App, error)

// CallerApp calls f.
func (f AppSourceFunc) CallerApp(ctx context.Context, appID string) (*App, error) {
	return f(ctx, appID)
}

// AuthOptions configure an AppAuthenticator.
type AuthOptions struct {
	Apps AppSource // required
	// CacheTTL is how long a looked-up application is reused (default 5s):
	// a change made through another instance is seen after at most this
	// long, unless this instance is told (Forget).
	CacheTTL time.Duration
	CacheMax int              // entries (default cache.DefaultMax)
	Now      func() time.Time // the clock (default time.Now)
	// Denied, when set, is told of every refused caller (to audit it)
	// before the refusal is returned; it should not block for long.
	Denied func(ctx context.Context, appID string, err *apierr.Error, start time.Time)
	// Nonces remembers the nonces of signed calls (default: a
	// MemoryNonces of this process; give a shared one, natsnonce, where
	// several replicas serve).
	Nonces NonceStore
	// Share is the number of instances sharing the applications' rate
	// and concurrency limits (nil: this one alone; flow.go).
	Share Share
	// RequireAllowList refuses the calls of an application without an IP
	// allow-list (ErrAllowListRequired; identity.policy.require_ip_allow_list:
	// the fingerprint server design's interface security is the address
	// check).
	RequireAllowList bool
}

// AppAuthenticator authenticates application callers. Its rate limits
// count the calls it sees (per process). Safe for concurrent use.
type AppAuthenticator struct {
	apps    AppSource
	cache   *cache.TTL[*App]
	limiter *RateLimiter
	now     func() time.Time
	denied  func(ctx context.Context, appID string, err *apierr.Error, start time.Time)
	nonces  NonceStore
	share   Share
	// requireAllowList: AuthOptions.RequireAllowList.
	requireAllowList bool
	flows            *Concurrency
}

// NewAppAuthenticator returns an authenticator over o.Apps.
func NewAppAuthenticator(o AuthOptions) (*AppAuthenticator, error) {
	if o.Apps == nil {
		return nil, errors.New("caller: AuthOptions.Apps is required")
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Nonces == nil {
		o.Nonces = NewMemoryNonces(o.Now)
	}
	return &AppAuthenticator{apps: o.Apps, cache: cache.NewTTL[*App](o.CacheTTL, o.CacheMax),
		limiter: NewRateLimiter(), now: o.Now, denied: o.Denied, nonces: o.Nonces, share: o.Share, flows: NewConcurrency(),
		requireAllowList: o.RequireAllowList}, nil
}

// Authenticate checks an application caller: App_ID + App_Secret, status,
// the client certificate of an application bound to one (the Caller of
// ctx), IP allow-list and rate limit, in that order, and returns the
// application. Refusals are ErrBadAppCredentials, ErrAppSuspended,
// ErrClientCert, ErrIPNotAllowed, SecretExpired (the right secret,
// expired: told only after it was verified and the caller passed the
// checks above) or ErrRateLimited (and are told to Denied); a failed
// lookup returns the source's error.
//
// It checks no request signature: it is for interfaces that take none
// (a component verifying its own caller's credentials with identity).
// AuthenticateSigned is for those that do.
func (a *AppAuthenticator) Authenticate(ctx context.Context, appID, secret string, ip netip.Addr) (*App, error) {
	app, _, err := a.authenticate(ctx, appID, secret, ip, nil)
	return app, err
}

// AuthenticateSigned is Authenticate for an interface that takes signed
// requests: after the checks of Authenticate (the rate limit included:
// a verification costs CPU), the application's signature policy applies
// to sig (the zero value: an unsigned call). An application that requires
// signatures is refused an unsigned call (SIGNATURE_REQUIRED); a signature
// is verified with any of its keys (BAD_SIGNATURE), its timestamp must be
// within reqsig.MaxSkew (STALE_SIGNATURE) and, last, its nonce new
// (REPLAYED_REQUEST; REPLAY_CHECK_UNAVAILABLE when the nonce store cannot
// tell). A signed call of an application without keys is refused
// (BAD_SIGNATURE): a signature is never ignored. It returns the
// thumbprint of the key that verified the signature ("" unsigned).
func (a *AppAuthenticator) AuthenticateSigned(ctx context.Context, appID, secret string, ip netip.Addr, sig SignedRequest) (*App, string, error) {
	return a.authenticate(ctx, appID, secret, ip, &sig)
}

// authenticate is Authenticate, and with sig (not nil) AuthenticateSigned.
func (a *AppAuthenticator) authenticate(ctx context.Context, appID, secret string, ip netip.Addr, sig *SignedRequest) (*App, string, error) {
	start := a.now()
	now := start
	if appID == "" || secret == "" || len(appID) > MaxAppIDLen || len(secret) > MaxSecretLen {
		return nil, "", a.refuse(ctx, appID, ErrBadAppCredentials, start)
	}
	app, err := a.lookup(ctx, appID, start)
	if err != nil {
		return nil, "", err
	}
	if !app.Terminated.IsZero() {
		// A deleted application: told so only with one of its last
		// secrets (review sec24 L4).
		h := crypto.HashToken(secret)
		if subtle.ConstantTimeCompare([]byte(h), []byte(app.SecretHash)) == 1 ||
			app.PrevSecretHash != "" && subtle.ConstantTimeCompare([]byte(h), []byte(app.PrevSecretHash)) == 1 {
			return nil, "", a.refuse(ctx, appID, AppTerminated(app.Terminated), start)
		}
		return nil, "", a.refuse(ctx, appID, ErrBadAppCredentials, start)
	}
	// An expired secret is said last of the checks that concern the
	// caller: someone holding an old secret (found in a backup) learns
	// that it was right only from where the application may call.
	expired := app.CheckSecret(secret, now)
	if expired != nil && expired.Reason != ReasonAppSecretExpired && expired.Reason != ReasonAppSecretReplaced {
		return nil, "", a.refuse(ctx, appID, expired, start)
	}
	if !app.Active {
		return nil, "", a.refuse(ctx, appID, ErrAppSuspended, start)
	}
	if !app.CertMatches(From(ctx).ClientCert) {
		return nil, "", a.refuse(ctx, appID, ErrClientCert, start)
	}
	if !app.AllowsIP(ip) {
		return nil, "", a.refuse(ctx, appID, ErrIPNotAllowed, start)
	}
	if a.requireAllowList && len(app.IPAllowList) == 0 {
		return nil, "", a.refuse(ctx, appID, ErrAllowListRequired, start)
	}
	if expired != nil {
		return nil, "", a.refuse(ctx, appID, expired, start)
	}
	// The rate limit before the signature: a signature's verification
	// costs CPU (an RSA key's ~1 ms), which a holder of the App_Secret
	// sending garbage signatures spends only within the application's
	// limit.
	if rate, burst := a.share.Rate(app.RateLimit, app.RateBurst); !a.limiter.Allow(app.ID, rate, burst, now) {
		return nil, "", a.refuse(ctx, appID, ErrRateLimited, start)
	}
	var key string
	if sig != nil && (sig.Attempted() || app.RequireSignatures) {
		var serr *apierr.Error
		if key, serr = a.checkSignature(app, sig, now); serr != nil {
			return nil, "", a.refuse(ctx, appID, serr, start)
		}
	}
	if key != "" {
		// Last: only a call that is otherwise accepted spends its nonce.
		if nerr := a.checkNonce(ctx, app.ID, sig.Nonce); nerr != nil {
			return nil, "", a.refuse(ctx, appID, nerr, start)
		}
	}
	return app, key, nil
}

// lookup returns the application appID (cached), or refuses the caller
// with ErrBadAppCredentials when there is none.
func (a *AppAuthenticator) lookup(ctx context.Context, appID string, now time.Time) (*App, error) {
	if app, ok := a.cache.Get(appID, now); ok {
		return app, nil
	}
	got, err := a.apps.CallerApp(ctx, appID)
	switch {
	case errors.Is(err, ErrUnknownApp), err == nil && got == nil:
		return nil, a.refuse(ctx, appID, ErrBadAppCredentials, now)
	case err != nil:
		return nil, err
	}
	a.cache.Put(appID, got, now)
	return got, nil
}

// AuthenticateAddress checks a caller of a legacy interface that presents
// no App_Secret (ssoAuthService's address-only validation): the
// application must exist and be active, its bound client certificate (if
// any) must be the call's (From(ctx).ClientCert), ip must be on its IP
// allow-list, which must not be empty (an empty list, which lets any
// address in when a secret is presented, lets none in here), it must not
// require signed requests (a legacy caller cannot sign: gap2 G2, such an
// application's accounts were answered to any host of its network), and
// the call counts against its rate limit.
func (a *AppAuthenticator) AuthenticateAddress(ctx context.Context, appID string, ip netip.Addr) (*App, error) {
	start := a.now()
	if appID == "" || len(appID) > MaxAppIDLen {
		return nil, a.refuse(ctx, appID, ErrBadAppCredentials, start)
	}
	app, err := a.lookup(ctx, appID, start)
	if err != nil {
		return nil, err
	}
	switch {
	case !app.Terminated.IsZero():
		// no secret to show it is the application's: as unknown
		return nil, a.refuse(ctx, appID, ErrBadAppCredentials, start)
	case !app.Active:
		return nil, a.refuse(ctx, appID, ErrAppSuspended, start)
	case !app.CertMatches(From(ctx).ClientCert):
		return nil, a.refuse(ctx, appID, ErrClientCert, start)
	case len(app.IPAllowList) == 0 || !app.AllowsIP(ip):
		return nil, a.refuse(ctx, appID, ErrIPNotAllowed, start)
	case app.RequireSignatures:
		return nil, a.refuse(ctx, appID, errLegacyUnsigned, start)
	}
	if err := app.Permits(APISSO, start); err != nil {
		return nil, a.refuse(ctx, appID, err, start)
	}
	if rate, burst := a.share.Rate(app.RateLimit, app.RateBurst); !a.limiter.Allow(app.ID, rate, burst, start) {
		return nil, a.refuse(ctx, appID, ErrRateLimited, start)
	}
	return app, nil
}

// AuthenticateLegacyAddress checks a caller of the legacy Hessian/SOAP
// authenticate that presents no App_ID and secret and was identified by
// its app_type and app_code as application appID (the fingerprint server
// design's interface, 002 4.3.1, whose security is the address check,
// 3.4.2), for a call of interface api. The application must have opted in
// (LegacyIPOnly; else, as for a caller without credentials,
// BAD_APP_CREDENTIALS), ip must be on its IP allow-list, which must not be
// empty; it must be active, bound to no client certificate (its calls
// carry its App_ID and secret over TLS with it: one the edge verified
// does not stand in for them), neither A2 nor requiring signed requests
// (a legacy call cannot be signed), granted api within its access period;
// and the call counts against its rate limit. The address is checked
// first: a caller from elsewhere learns nothing of the application (the
// answers are one legacy code anyway; the audit record says which check
// refused). Refusals are told to Denied.
func (a *AppAuthenticator) AuthenticateLegacyAddress(ctx context.Context, appID string, ip netip.Addr, api string) (*App, error) {
	start := a.now()
	if appID == "" || len(appID) > MaxAppIDLen {
		return nil, a.refuse(ctx, appID, ErrBadAppCredentials, start)
	}
	app, err := a.lookup(ctx, appID, start)
	if err != nil {
		return nil, err
	}
	switch {
	case !app.Terminated.IsZero(), !app.LegacyIPOnly:
		return nil, a.refuse(ctx, appID, errNotIPOnly, start)
	case len(app.IPAllowList) == 0 || !app.AllowsIP(ip):
		return nil, a.refuse(ctx, appID, ErrIPNotAllowed, start)
	case !app.Active:
		return nil, a.refuse(ctx, appID, ErrAppSuspended, start)
	case app.ClientCertSHA256 != "":
		return nil, a.refuse(ctx, appID, errLegacyCertBound, start)
	case app.RequireSignatures || app.SecurityLevel >= 2:
		return nil, a.refuse(ctx, appID, errLegacyUnsigned, start)
	}
	if err := app.Permits(api, start); err != nil {
		return nil, a.refuse(ctx, appID, err, start)
	}
	if rate, burst := a.share.Rate(app.RateLimit, app.RateBurst); !a.limiter.Allow(app.ID, rate, burst, start) {
		return nil, a.refuse(ctx, appID, ErrRateLimited, start)
	}
	return app, nil
}

// errNotIPOnly refuses a legacy call without App_ID and secret for an
// application that has not opted in to being identified by its address
// (or that was deleted): as a call without credentials.
var errNotIPOnly = apierr.New(apierr.Unauthenticated, "BAD_APP_CREDENTIALS",
	"no App_ID and App_Secret, and the application does not accept calls identified by app_type, app_code and address alone (legacy_ip_only)")

// errLegacyCertBound refuses a legacy call without App_ID and secret for
// an application bound to a client certificate.
var errLegacyCertBound = apierr.New(apierr.Unauthenticated, "CLIENT_CERT_REQUIRED",
	"this application is bound to a client certificate: it calls with its App_ID and secret over TLS with that certificate")

// Authorize holds an authenticated application to its grants and access
// period for a call of interface api (App.Permits); a refusal is told to
// Denied as the other caller refusals are.
func (a *AppAuthenticator) Authorize(ctx context.Context, app *App, api string) error {
	start := a.now()
	if err := app.Permits(api, start); err != nil {
		return a.refuse(ctx, app.ID, err, start)
	}
	return nil
}

// errLegacyUnsigned refuses an application that requires signed requests
// on an interface that cannot carry a signature.
var errLegacyUnsigned = apierr.New(apierr.Unauthenticated, ReasonSignatureRequired,
	"this application must sign its requests, which this interface cannot carry: call the REST or gRPC API with signed requests")

func (a *AppAuthenticator) refuse(ctx context.Context, appID string, err *apierr.Error, start time.Time) error {
	if a.denied != nil {
		a.denied(ctx, appID, err, start)
	}
	return err
}

// Forget drops appID from the cache, so the next call looks it up (after
// this instance changed it).
func (a *AppAuthenticator) Forget(appID string) { a.cache.Drop(appID) }
