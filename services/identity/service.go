package identity

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emmansun/gmsm/smx509"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/cache"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/x509cert"
	"github.com/uias/uias/services/identity/finger"
)

// Config tunes the service.
type Config struct {
	Policy Policy
	// TOTPIssuer names the service in people's authenticator apps
	// (identity.totp_issuer; default DefaultTOTPIssuer).
	TOTPIssuer    string
	AdminTokenTTL time.Duration // default 8h
	// AdminTokenIdle ends an admin token unused for this long (default 30m).
	AdminTokenIdle time.Duration
	// Throttle tunes the login gate (loginguard.go).
	Throttle    Throttle
	AppCacheTTL time.Duration // default 5s; how long a changed app may be served stale by another instance
	// UserCacheTTL bounds how long GetUser may serve a user changed by
	// another instance whose CHANGES event did not arrive (default 5s;
	// negative: no user cache).
	UserCacheTTL  time.Duration
	SecretOverlap time.Duration // default rotation overlap, 24h
	// AppSecretLifetime is the server default App_Secret lifetime, for the
	// applications without one of their own (zero: secrets do not
	// expire; at most MaxSecretLifetime). See secretlife.go.
	AppSecretLifetime time.Duration
	// AppSecretLifetimeA2 is the default App_Secret lifetime of A2
	// applications (security_level 2) without one of their own (zero:
	// AppSecretLifetime).
	AppSecretLifetimeA2 time.Duration
	// SigningKeyLifetime and SigningKeyLifetimeA2 are the validity
	// periods of request signing keys registered for A1 and A2
	// applications (zero: keys do not expire). See signing.go.
	SigningKeyLifetime, SigningKeyLifetimeA2 time.Duration
	// AdminReads caps the listings and searches running at once (default
	// DefaultAdminReads: half the CPUs); AdminReadTimeout bounds each,
	// waiting for a slot included (default 5s). See adminreads.go.
	AdminReads       int
	AdminReadTimeout time.Duration
	// FingerFMR is the target false-match rate of a fingerprint decision
	// (default DefaultFingerFMR, 1e-4).
	FingerFMR float64
	// KerberosOrgs limits, per Kerberos realm, the people a ticket of that
	// realm may sign in to those of these org codes' subtrees
	// (identity.kerberos_orgs; review sec27a H2). Empty: no limit (every
	// realm the ticket component accepts maps into all of UIAS's login
	// names). Not empty: a realm not listed signs in no one.
	KerberosOrgs map[string][]string
	// FingerProbeMemory is how long a presented fingerprint record is
	// remembered (default DefaultFingerProbeMemory): presented again
	// within it, it is a replay, refused as a wrong finger (a scanner
	// never captures the same bytes twice).
	FingerProbeMemory time.Duration
	// FingerCache is how many prepared fingerprint templates (decrypted
	// and indexed for matching) are kept in memory, each for at most
	// FingerCacheTTL (default DefaultFingerCache; negative: none). At
	// rest the templates stay sealed; see fingers.go.
	FingerCache int
	// UnsaltedCutover: from then on, a login whose stored hash is an
	// unsalted fast hash (or one wrapped in argon2id) is answered
	// PASSWORD_EXPIRED (zero: never). See passwords.go.
	UnsaltedCutover time.Time
	// PersonalDataAdmins are the login names of the administrators who may
	// export ID numbers and phone numbers in clear (export.go); none by
	// default.
	PersonalDataAdmins []string
	// ImportMaxBytes bounds an import file (default DefaultImportMaxBytes).
	ImportMaxBytes int64
	// ImportLoginShare is the share of the time an import writes while
	// logins wait for a hash worker (default DefaultImportLoginShare; 1: it
	// never pauses).
	// See import.go.
	ImportLoginShare float64
	// AdminTokenCacheTTL is how long what an administrator token resolved
	// to (token row and administrator) is reused (admintokens.go); zero:
	// never, every call reads the store. The component sets it to
	// identity.admin_decision_ttl.
	AdminTokenCacheTTL time.Duration
	// Uniqueness: login names and ID numbers across centres (uniq.go).
	Uniqueness UniquenessConfig
}

// Deps are what the service needs; all required except Kick and Now.
type Deps struct {
	Store  Store
	Hasher *crypto.Hasher
	Sealer *crypto.Sealer
	// Keys manages the data keys behind Sealer (optional: without it the
	// KeyService calls fail; with it Sealer defaults to Keys.Sealer()).
	Keys   *Keys
	Logger *zap.Logger
	Config Config
	// Kick wakes the outbox relay after a write (optional).
	Kick func()
	// Now is the clock (optional, for tests).
	Now func() time.Time
	// Sleep waits d or until ctx ends (optional, for tests); the login
	// gate's delays use it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Homes are the centre settings of a multi-centre deployment
	// (optional: nil is a single centre; see centre.go).
	Homes *centre.Homes
	// Nonces remembers the nonces of signed application calls (optional:
	// nil keeps them in this process; the component gives a JetStream
	// bucket shared by every replica, pkg/caller/natsnonce).
	Nonces caller.NonceStore
	// Share is the number of identity instances serving, which share the
	// applications' rate and concurrency limits (nil: this one alone).
	Share caller.Share
	// Probes remembers the fingerprint records presented, for
	// Config.FingerProbeMemory: one presented again is a replay (optional:
	// nil keeps them in this process; the component gives a JetStream
	// bucket shared by every replica).
	Probes caller.NonceStore
	// PeopleCAs are the CAs of people's certificates (tls.people_ca_file):
	// with Policy.CertIdentityCheck a certificate is bound only when it
	// chains to one of them (optional: nil checks no chain).
	PeopleCAs *x509.CertPool
	// ChallengeCAs are the people's CAs (tls.people_ca_file, else
	// tls.client_ca_file) as the certificate sign-in by challenge trusts
	// them, SM2 CAs included (certchal.go; optional: nil trusts no
	// certificate for it). With Policy.CertIdentityCheck they also check
	// the chain of a certificate bound (for SM2 certificates).
	ChallengeCAs *smx509.CertPool
	// Revocation returns the revocation lists in force (tls.crl_file;
	// optional: nil revokes nothing).
	Revocation func() *x509cert.Revocation
	// CredentialSources are the directories that check the passwords of
	// the people of some org subtrees (identity.ldap_auth; credsource.go;
	// optional: none, every password is UIAS's).
	CredentialSources []DirectorySource
	// ExternalAuthenticators check credentials of kinds UIAS does not
	// know (identity.external_authenticators; external.go; optional).
	ExternalAuthenticators []ExternalSource
}

// Service is the identity domain.
type Service struct {
	store  Store
	hasher *crypto.Hasher
	sealer *crypto.Sealer
	keys   *Keys
	log    *zap.Logger
	// krbUnscoped logs once that identity.kerberos_orgs is empty.
	krbUnscoped sync.Once
	cfg         Config
	kick        func()
	now         func() time.Time

	sleep func(ctx context.Context, d time.Duration) error
	homes *centre.Homes
	// peopleCAs: Deps.PeopleCAs.
	peopleCAs *x509.CertPool
	// challengeCAs, revocation: Deps.ChallengeCAs, Deps.Revocation.
	challengeCAs *smx509.CertPool
	revocation   func() *x509cert.Revocation

	// appAuth authenticates application callers (with its app cache and
	// rate limits).
	appAuth *caller.AppAuthenticator
	// legacyApps are the App_IDs of (app_type, app_code) pairs the legacy
	// authenticate named ("" none; legacyip.go).
	legacyApps *cache.TTL[string]
	// probes remembers the fingerprint records presented (fingers.go)
	probes caller.NonceStore
	// nonces remembers things seen once for minutes (Deps.Nonces): the
	// Kerberos authenticators (kerberos.go).
	nonces caller.NonceStore
	// secrets counts the applications whose secret expires soon
	// (secretlife.go).
	secrets secretCounts
	auditor *audit.Builder
	// sources is the login gate's per-source state; hits thins the audit
	// of refused password checks (loginguard.go).
	sources *sourceGate
	hits    audit.Thinner
	// running lists the password checks admitted in memory (loginguard.go).
	running *runningChecks
	// dummyHash is a password hash of nobody, with the current parameters:
	// verified where there is no real hash to check (an unknown login), so
	// that the answer costs the same as a wrong password and its time does
	// not tell which logins exist.
	dummyHash string
	// users holds users for admin reads (GetUser) only; see usercache.go.
	users *cache.TTL[cachedUser]
	// adminTokens holds what administrator tokens resolved to
	// (admintokens.go).
	adminTokens *adminTokenCache
	// reads admits listings and searches (adminreads.go).
	reads *adminReads
	// matcher decides fingerprint matches (fingers.go); fingers holds
	// enrolled templates prepared for it.
	matcher *finger.Matcher
	fingers *cache.TTL[enrolledFinger]
	// adminGate, when set (authz decides administrators), says whether a
	// person without the legacy is_admin flag may hold an administrator
	// token (callers.go).
	adminGate func(ctx context.Context, u *User) (bool, error)
	// revealGate decides personal data in clear in exports (SetRevealGate).
	revealGate func(ctx context.Context, u *User) (bool, error)
	// separation judges the memberships and moves of other centres
	// (SetSeparationCheck, replica_sod.go).
	separation func(ctx context.Context, q SeparationQuestion) (SeparationAnswer, error)
	// unopened: when each origin's sealed values that do not open here
	// were last warned of (warnUnopened).
	unopened unopenedWarnings
	// appointed, when set, is told of a new is_admin user (MigrateAdmins
	// then makes them a system_admin in authz).
	appointed func()
	// writesAside: the store sets most logins' writes aside
	// (LoginWritesAside), so an import need not shorten its transactions
	// for logins that merely hash.
	writesAside bool
	// creds are the credential sources (credsource.go).
	creds *credSources
	// ext are the external authenticators (external.go).
	ext *externals
	// reservations hold the names and keys level 1 allowed (uniq.go).
	reservations Reservations
	// questionLimits and questionLogs: per asking centre (AnswerPeerClaim).
	questionsMu    sync.Mutex
	questionLimits map[string]*rate.Limiter
	questionLogs   map[string]*rate.Sometimes
}

// New validates deps and builds the service.
func New(d Deps) (*Service, error) {
	var errs []error
	if d.Sealer == nil && d.Keys != nil {
		d.Sealer = d.Keys.Sealer()
	}
	if d.Store == nil {
		errs = append(errs, errors.New("identity: Store is required"))
	}
	if d.Hasher == nil {
		errs = append(errs, errors.New("identity: Hasher is required"))
	}
	if d.Sealer == nil {
		errs = append(errs, errors.New("identity: Sealer is required"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("identity: Logger is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := d.Config
	if c.Policy == (Policy{}) {
		c.Policy = DefaultPolicy()
	}
	if c.AdminTokenTTL <= 0 {
		c.AdminTokenTTL = 8 * time.Hour
	}
	if c.AppCacheTTL <= 0 {
		c.AppCacheTTL = 5 * time.Second
	}
	if c.AdminTokenIdle <= 0 {
		c.AdminTokenIdle = 30 * time.Minute
	}
	c.Throttle = c.Throttle.withDefaults()
	if c.Uniqueness.Wait <= 0 {
		c.Uniqueness.Wait = 2 * time.Second
	}
	if c.Uniqueness.Hold <= 0 {
		c.Uniqueness.Hold = 10 * time.Minute
	}
	if c.Uniqueness.PeerRate <= 0 {
		c.Uniqueness.PeerRate = 20
	}
	if c.Uniqueness.PeerBurst <= 0 {
		c.Uniqueness.PeerBurst = 200
	}
	if c.FingerFMR == 0 {
		c.FingerFMR = DefaultFingerFMR
	}
	if c.FingerProbeMemory <= 0 {
		c.FingerProbeMemory = DefaultFingerProbeMemory
	}
	matcher, err := finger.NewMatcher(c.FingerFMR)
	if err != nil {
		return nil, fmt.Errorf("identity: finger_fmr: %w", err)
	}
	if c.UserCacheTTL == 0 {
		c.UserCacheTTL = 5 * time.Second
	}
	if c.SecretOverlap <= 0 {
		c.SecretOverlap = 24 * time.Hour
	}
	if c.ImportMaxBytes <= 0 {
		c.ImportMaxBytes = DefaultImportMaxBytes
	}
	if c.ImportLoginShare <= 0 || c.ImportLoginShare > 1 {
		c.ImportLoginShare = DefaultImportLoginShare
	}
	s := &Service{store: d.Store, hasher: d.Hasher, sealer: d.Sealer, keys: d.Keys, log: d.Logger, cfg: c,
		kick: d.Kick, now: d.Now, sleep: d.Sleep, homes: d.Homes, peopleCAs: d.PeopleCAs, challengeCAs: d.ChallengeCAs, revocation: d.Revocation, sources: newSourceGate(c.Throttle), running: newRunningChecks(),
		reads: newAdminReads(c.AdminReads, c.AdminReadTimeout), matcher: matcher}
	s.secrets.recount = make(chan struct{}, 1)
	s.creds = newCredSources(d.CredentialSources)
	s.ext = newExternals(d.ExternalAuthenticators)
	if s.kick == nil {
		s.kick = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.sleep == nil {
		s.sleep = sleepCtx
	}
	s.reads.now, s.reads.sleep = s.now, s.sleep
	if s.hasher != nil {
		s.reads.contended = func() bool { return s.hasher.Contended(ImportWaitWindow) }
	}
	s.auditor = audit.NewBuilder("identity", s.now)
	appAuth, err := caller.NewAppAuthenticator(caller.AuthOptions{Apps: appSource{s}, CacheTTL: c.AppCacheTTL,
		Now: s.now, Denied: s.callerDenied, Nonces: d.Nonces, Share: d.Share, RequireAllowList: c.Policy.RequireIPAllowList})
	if err != nil {
		return nil, err
	}
	s.appAuth = appAuth
	s.legacyApps = cache.NewTTL[string](cmp.Or(c.AppCacheTTL, legacyAppTTL), 0)
	s.nonces = d.Nonces
	if s.nonces == nil {
		s.nonces = caller.NewMemoryNonces(s.now)
	}
	s.probes = d.Probes
	if s.probes == nil {
		s.probes = caller.NewMemoryNonces(s.now)
	}
	s.reservations = c.Uniqueness.Reservations
	if s.reservations == nil {
		s.reservations = newMemReservations(c.Uniqueness.Hold, s.now)
	}
	s.users = cache.NewTTL[cachedUser](c.UserCacheTTL, 0)
	switch {
	case c.FingerCache == 0:
		s.fingers = cache.NewTTL[enrolledFinger](FingerCacheTTL, DefaultFingerCache)
	case c.FingerCache > 0:
		s.fingers = cache.NewTTL[enrolledFinger](FingerCacheTTL, c.FingerCache)
	default:
		s.fingers = cache.NewTTL[enrolledFinger](0, 0) // caches nothing
	}
	s.adminTokens = newAdminTokenCache(c.AdminTokenCacheTTL)
	s.store = userCachingStore{Store: d.Store, c: s.users, tokens: s.adminTokens}
	// Asked of the store itself: the caching layer hides it.
	if a, ok := d.Store.(LoginWritesAside); ok {
		s.writesAside = a.LoginWritesAside()
	}
	p := d.Hasher.Params()
	salt, key := make([]byte, p.SaltLen), make([]byte, p.KeyLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go >= 1.24)
	_, _ = rand.Read(key)
	s.dummyHash = crypto.EncodePHC(p, salt, key)
	return s, nil
}

// Policy returns the account policy in force.
func (s *Service) Policy() Policy { return s.cfg.Policy }

// changesSubjectPrefix starts the subject of every identity CHANGES event.
const changesSubjectPrefix = "uias.changes.identity."

// change builds a CHANGES event for entity/op; data must hold no secrets and
// only masked personal data.
func (s *Service) change(ctx context.Context, entity, op, id string, data any) events.Event {
	return s.changeWith(ctx, entity, op, id, data, nil)
}

// changeWith is change with the replica part rep (replica.go) when not nil:
// the only place a hash may travel.
func (s *Service) changeWith(ctx context.Context, entity, op, id string, data, rep any) events.Event {
	p := map[string]any{
		"entity": entity, "op": op, "id": id, "actor": caller.From(ctx).Actor(),
		"time": s.now().UTC(), "data": data,
	}
	if rep != nil {
		p["replica"] = rep
	}
	payload, _ := json.Marshal(p)
	return events.Event{ID: ids.New(), Subject: changesSubjectPrefix + entity + "." + op,
		Type: "identity." + entity + "." + op, Time: s.now().UTC(), Payload: payload}
}

// audit builds an AUDIT event of the caller in ctx.
func (s *Service) audit(ctx context.Context, api, subject, org, result, reason string, start time.Time, detail map[string]string) events.Event {
	return s.auditor.Event(ctx, audit.Action{API: api, Subject: subject, Org: org, Result: result, Reason: reason,
		Start: start, Detail: detail})
}

func userView(u *User) map[string]any {
	v := map[string]any{
		"login_name": u.LoginName, "display_name": u.DisplayName, "org_id": u.OrgID,
		"status": u.Status, "id_type": u.IDType, "id_number": u.IDNumberMask, "phone": u.PhoneMask,
		"email": u.Email, "feature_code": u.FeatureCode, "is_admin": u.IsAdmin, "password_only": u.PasswordOnly,
	}
	if u.UserType.Norm() == UserTypeUnit {
		// A unit's account (2) says so; a person's view is as before.
		v["user_type"] = UserTypeUnit
	}
	return v
}

func appView(a *App) map[string]any {
	return map[string]any{"app_type": a.Type, "app_code": a.Code, "name": a.Name,
		"status": a.Status, "ip_allow_list": a.IPAllowList, "rate_limit": a.RateLimit, "rate_burst": a.RateBurst, "max_concurrent": a.MaxConcurrent,
		"client_cert_sha256": a.ClientCertSHA256, "secret_lifetime_seconds": int64(a.SecretLifetime / time.Second),
		"require_signed_requests": a.RequireSignatures, "signing_keys": len(a.SigningKeys), "granted_apis": a.GrantedAPIs,
		"access_from": optionalTime(a.AccessFrom), "access_until": optionalTime(a.AccessUntil),
		"security_level": max(a.SecurityLevel, 1), "min_auth_level": a.MinAuthLevel,
		"name_release": nameReleaseWord(a.NameRelease)}
}

// optionalTime is t for an event's data, nil when zero (unset).
func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func fmtBool(b bool) string { return fmt.Sprintf("%t", b) }
