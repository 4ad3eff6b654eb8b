// Package component registers the identity service as a UIAS module: its
// config section, its needs (SQL, NATS) and how it starts.
package component

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/apiid"
	"github.com/uias/uias/pkg/caller/natsnonce"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/reqsig"
	"github.com/uias/uias/pkg/respsign"
	"github.com/uias/uias/pkg/sched"
	"github.com/uias/uias/pkg/store"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/filesrest"
	"github.com/uias/uias/services/identity/legacy"
	"github.com/uias/uias/services/identity/server"
	"github.com/uias/uias/services/identity/sqlstore"
	"github.com/uias/uias/services/identity/uniqpeer"
)

// Name is the identity component's name (target, config key, etcd name).
const Name = "identity"

// Handle is what a running identity component exposes to the process owner
// (tests and benchmarks): module.Process.Value("identity").
type Handle struct {
	Service *identity.Service
	Relay   *events.Relay
	DB      *store.DB
	// Admins decides administrator calls with authz (nil with
	// identity.admin_authz off).
	Admins *adminauth.Verifier
}

// Module is the identity component's registration.
func Module() module.Module {
	return module.Module{
		Name:    Name,
		Config:  func() config.Section { return Defaults() },
		SQL:     true,
		NATS:    true,
		REST:    rest,
		OpenAPI: identityOpenAPI,
		// As server.CallerAuth demands: AuthService callers present
		// application credentials, AdminService callers an administrator
		// token, except AdminLogin.
		OpenAPISecurity: map[string][]string{
			"AuthService":      module.AppCredentials,
			"DirectoryService": module.AppCredentials,
			"AdminService":     module.AdminCredentials,
			"FingerService":    module.AdminCredentials,
			"ImportService":    module.AdminCredentials,
			"ExportService":    module.AdminCredentials,
		},
		OpenAPIPublic: []string{"AdminService_AdminLogin", "ImportService_Template", "ResponseKeyService_ListResponseSigningKeys"},
		OpenAPISigned: []string{"AuthService", "DirectoryService"},
		// The interfaces business systems call (U_API_ID): a person's
		// credentials or data are A2, the answer keys and the org list A1.
		APIIDs: []apiid.Interface{
			{Operation: "AuthService_Authenticate", Type: apiid.A2, Category: apiid.CategoryIdentity, Seq: 1},
			{Operation: "AuthService_ChangePassword", Type: apiid.A2, Category: apiid.CategoryIdentity, Seq: 2},
			{Operation: "ResponseKeyService_ListResponseSigningKeys", Type: apiid.A1, Category: apiid.CategoryIdentity, Seq: 3},
			{Operation: "DirectoryService_GetPerson", Type: apiid.A2, Category: apiid.CategoryIdentity, Seq: 4},
			{Operation: "DirectoryService_ListPeople", Type: apiid.A2, Category: apiid.CategoryIdentity, Seq: 5},
			{Operation: "DirectoryService_ListOrgs", Type: apiid.A1, Category: apiid.CategoryIdentity, Seq: 6},
			// a random challenge for Authenticate with a certificate
			{Operation: "AuthService_GetCertificateChallenge", Type: apiid.A1, Category: apiid.CategoryIdentity, Seq: 7},
		},
		// identity holds the key ring: the edge asks it to sign the REST
		// answers to signed calls.
		ResponseSigner: respsign.Remote,
		// Uploads are streamed to the service (which enforces
		// identity.import_max_bytes).
		BodyLimits: map[string]int64{filesrest.ImportPrefix: filesrest.MaxUploadBytes},
		FileRoutes: []string{filesrest.ImportPrefix, filesrest.ExportPrefix},
		// Authenticate over Hessian 2.0 and SOAP 1.1 for older systems.
		Pages: &module.Pages{Prefix: legacy.Prefix, New: legacyPages},
		// A login cut off by a replica's crash is tried on another one (a
		// repeated attempt is a new attempt, as when a person presses again).
		Retry: []string{identityv1.AuthService_Authenticate_FullMethodName},
		// The authz component decides administrator calls; it asks
		// identity about tokens in turn.
		Calls: []string{"authz"},
		Init:  start,
	}
}

func legacyPages(_ context.Context, env module.PagesEnv) (http.Handler, error) {
	conn, err := env.Client(Name)
	if err != nil {
		return nil, err
	}
	return legacy.New(conn, env.Log), nil
}

func rest(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	if err := identityv1.RegisterAuthServiceHandlerClient(ctx, mux, identityv1.NewAuthServiceClient(conn)); err != nil {
		return err
	}
	if err := identityv1.RegisterDirectoryServiceHandlerClient(ctx, mux, identityv1.NewDirectoryServiceClient(conn)); err != nil {
		return err
	}
	if err := identityv1.RegisterResponseKeyServiceHandlerClient(ctx, mux, identityv1.NewResponseKeyServiceClient(conn)); err != nil {
		return err
	}
	if err := identityv1.RegisterFingerServiceHandlerClient(ctx, mux, identityv1.NewFingerServiceClient(conn)); err != nil {
		return err
	}
	if err := identityv1.RegisterAdminServiceHandlerClient(ctx, mux, identityv1.NewAdminServiceClient(conn)); err != nil {
		return err
	}
	// Upload, template and download of import and export files.
	return filesrest.Register(mux, conn)
}

func start(ctx context.Context, env *module.Env) (*module.Component, error) {
	cfg := env.Section().(*Config)
	log := env.Log
	nc, js, err := env.NATS()
	if err != nil {
		return nil, err
	}
	db, err := env.MigratedSQL(ctx, sqlstore.Migrate)
	if err != nil {
		return nil, err
	}
	// The events of logins that write nothing else go to an outbox file
	// of their own (SQLite): they do not take the database's write lock.
	logins, err := sqlstore.OpenLoginOutbox(ctx, db)
	if err != nil {
		return nil, err
	}
	if logins != nil {
		env.OnStop(func(context.Context) error { return logins.Close() })
	}
	st := sqlstore.New(db, sqlstore.WithLogger(log), sqlstore.WithLoginOutbox(logins),
		sqlstore.WithImportCache(cfg.ImportCacheMiB))
	// Registered after the database's own close, so it runs first.
	env.OnStop(func(context.Context) error { return st.Close() })
	keys, answers, err := openKeys(ctx, cfg, st, log, env.Config.Target == config.TargetAll)
	if err != nil {
		return nil, err
	}
	// Rotations made through other instances reach this one's sealer
	// (values sealed with an unknown key also trigger a reload).
	env.Go(func(ctx context.Context) {
		t := time.NewTicker(keyReloadEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := keys.Reload(ctx); err != nil && ctx.Err() == nil {
					log.Warn("data keys not reloaded", zap.Error(err))
				}
			}
		}
	})
	// The libargon2 build hashes on threads of its own at a lower priority
	// (C code cannot give up its CPU to the process's other work; the
	// kernel takes it from a niced thread); a pure-Go hash yields its
	// processor often by itself (docs/adr/0005-hash-threads.md).
	hasher := crypto.NewHasher(crypto.HasherConfig{Params: cfg.Argon2, Workers: cfg.HashWorkers,
		Queue: cfg.HashQueue, MaxWait: cfg.MaxHashWait, OwnThreads: crypto.Argon2Cgo,
		// Background loops of the process give way to the logins waiting.
		Waiters: env.GiveWay()})
	env.OnStop(func(context.Context) error { hasher.Close(); return nil })
	if env.Metrics != nil {
		if err := registerHasherMetrics(env.Metrics, hasher); err != nil {
			return nil, err
		}
	}
	log.Info("password hashing", zap.String("argon2id", crypto.Argon2Implementation),
		zap.Uint32("memory_kib", hasher.Params().MemoryKiB), zap.Int("workers", hasher.Workers()),
		zap.Duration("max_wait", hasher.MaxWait()), zap.Duration("hash_time", hasher.HashTime()))
	setSchedPolicy(schedPolicy(cfg.SchedPolicy), log)

	cutover, err := parseCutover(cfg.UnsaltedCutover) // validated
	if err != nil {
		return nil, err
	}
	// The relay's deletes run as the store's writes (during an import:
	// on its connection, in turn). It drains the login outbox too.
	relay := env.Relay(db, js, events.RelayOptions{Write: st.WriteTx, Also: []*store.DB{logins}})

	var peopleCAs *x509.CertPool
	if cfg.Policy.CertIdentityCheck {
		if peopleCAs, err = peopleCAPool(env.Config); err != nil {
			return nil, err
		}
	}
	// The certificate sign-in by challenge (ADR 0033): its CAs (SM2 ones
	// too) and their revocation lists (identity.cert_challenge_crl_file,
	// else tls.crl_file; SM2-signed ones verified, failing closed).
	challengeCAs, challengeCACerts, err := challengeCAPool(cfg, env.Config)
	if err != nil {
		return nil, err
	}
	if cfg.Policy.CertAutoBind && peopleCAs == nil && challengeCAs == nil {
		// it would bind nothing, silently (review sec30a I5)
		return nil, &config.FieldError{Field: Name + ".policy.cert_auto_bind",
			Msg: "needs a people's CA: identity.cert_challenge_ca_file, tls.people_ca_file or tls.client_ca_file"}
	}
	if challengeCAs != nil && cfg.CertChallengeCAFile == "" && env.Config.TLS.PeopleCAFile == "" {
		log.Warn("the certificate sign-in by challenge trusts tls.client_ca_file (the applications' and components' CAs) "+
			"as people's CAs: set identity.cert_challenge_ca_file or tls.people_ca_file to keep them apart (ADR 0033)",
			zap.String("client_ca_file", env.Config.TLS.ClientCAFile))
	}
	revocation, err := challengeRevocation(cfg, env.Config, challengeCAs != nil, challengeCACerts, log)
	if err != nil {
		return nil, err
	}
	creds, err := credentialSources(cfg, log)
	if err != nil {
		return nil, err
	}
	var observeExt func(name, outcome string)
	if env.Metrics != nil && len(cfg.ExternalAuthenticators) > 0 {
		if observeExt, err = registerExternalMetrics(env.Metrics); err != nil {
			return nil, err
		}
	}
	externals, closeExternals, err := externalAuthenticators(cfg, log, observeExt)
	if err != nil {
		return nil, err
	}
	env.OnStop(func(context.Context) error { closeExternals(); return nil })
	krbOrgs, err := kerberosOrgs(cfg.KerberosOrgs) // validated
	if err != nil {
		return nil, err
	}
	homes := centre.FromConfig(env.Config)
	uniq, err := uniquenessOf(cfg, homes, nc, js, log)
	if err == nil && env.Metrics != nil && homes != nil && homes.Level == 1 {
		uniq.Observe, err = registerUniquenessMetrics(env.Metrics)
	}
	if err != nil {
		return nil, err
	}
	svc, err := identity.New(identity.Deps{Store: st, Hasher: hasher, Keys: keys, Logger: log, PeopleCAs: peopleCAs,
		ChallengeCAs: challengeCAs, Revocation: revocation,
		Kick: relay.Kick, Config: identity.Config{Policy: policyOf(cfg.Policy), AdminTokenTTL: cfg.AdminTokenTTL,
			AdminTokenIdle: cfg.AdminTokenIdle, Throttle: throttleOf(cfg.LoginThrottle),
			UserCacheTTL: userCacheTTL(cfg.UserCacheTTL), AdminReads: cfg.AdminReads,
			AdminReadTimeout: cfg.AdminReadTimeout, FingerFMR: cfg.FingerFMR, FingerCache: fingerCache(cfg.FingerTemplateCache),
			UnsaltedCutover: cutover, PersonalDataAdmins: cfg.PersonalDataAdmins, ImportMaxBytes: cfg.ImportMaxBytes,
			ImportLoginShare: cfg.ImportLoginShare, AdminTokenCacheTTL: cfg.AdminDecisionTTL,
			AppSecretLifetime: cfg.AppSecretLifetime, AppSecretLifetimeA2: cfg.AppSecretLifetimeA2,
			SigningKeyLifetime: cfg.SigningKeyLifetime, SigningKeyLifetimeA2: cfg.SigningKeyLifetimeA2, TOTPIssuer: cfg.TOTPIssuer,
			FingerProbeMemory: cfg.FingerProbeMemory, KerberosOrgs: krbOrgs, Uniqueness: uniq},
		Homes: homes,
		// identity.ldap_auth (credsource.go)
		CredentialSources: creds,
		// identity.external_authenticators (external.go)
		ExternalAuthenticators: externals,
		// Signed requests' nonces, shared by every replica (fail closed
		// when NATS is down: caller.ReasonReplayUnavailable).
		Nonces: natsnonce.New(js, natsnonce.Options{Replicas: cfg.NonceKVReplicas}),
		// The fingerprint records presented (replays refused), shared too.
		Probes: natsnonce.New(js, natsnonce.Options{Replicas: cfg.NonceKVReplicas, Bucket: "UIAS_FINGER_PROBES",
			TTL: cfg.FingerProbeMemory, Description: "UIAS digests of the fingerprint records presented (replay protection)"}),
		// The applications' rate and concurrency limits are shared by the
		// identity instances serving (pkg/caller flow.go).
		Share: env.Instances()})
	if err != nil {
		return nil, err
	}
	if answers.SM2() {
		// SM2 answers to the applications that sign with SM2 (ADR 0043).
		answers.AlgorithmOf(svc.AnswerAlgorithm)
	}
	env.Go(func(ctx context.Context) { svc.RunWrapUnsalted(ctx, float64(cfg.UnsaltedWrapRate), time.Hour) })
	// A warning per application whose secret expires within 14 days, at
	// start and then daily; the gauges' counts every 5 minutes and after
	// each secret change made here (identity/secretlife.go).
	env.Go(func(ctx context.Context) { svc.RunSecretExpiryWarnings(ctx, 24*time.Hour, 5*time.Minute, time.Minute) })
	if env.Metrics != nil {
		if err := registerSecretMetrics(env.Metrics, svc); err != nil {
			return nil, err
		}
	}
	// Level 1 answers the level-2 centres' questions about uniqueness
	// (identity/uniq.go) over the leaf link.
	if homes != nil && homes.Level == 1 {
		if err := env.Subscribed(uniqpeer.Serve(nc, svc, log, uniqpeer.Options{Timeout: cfg.Uniqueness.Wait,
			Concurrent: cfg.Uniqueness.PeerConcurrent, Observe: uniq.Observe})); err != nil {
			return nil, fmt.Errorf("serve the questions of other centres about uniqueness: %w", err)
		}
	}
	// The ID keys of people stored before them (one account per person),
	// in the background: the start does not wait for them, nor fail.
	env.Go(svc.RunBackfillIDKeys)
	// Changes made through other instances drop users from this one's
	// caches as soon as their CHANGES events arrive (the cache TTL covers a
	// NATS outage). Own events arrive too; dropping again is harmless.
	if err := env.Subscribed(nc.Subscribe(identity.UserChangesSubject, func(m *nats.Msg) { svc.ForgetChangedUser(m.Data) })); err != nil {
		return nil, fmt.Errorf("subscribe to user changes: %w", err)
	}
	// A logout through another instance ends this one's reuse of the
	// token at once (identity.admin_decision_ttl bounds it with NATS away).
	if err := env.Subscribed(nc.Subscribe(identity.AdminTokenChangesSubject, func(m *nats.Msg) { svc.ForgetRevokedTokens(m.Data) })); err != nil {
		return nil, fmt.Errorf("subscribe to administrator token changes: %w", err)
	}
	boot, err := svc.BootstrapAdmins(ctx, identity.FirstAdmins{AdminPassword: cfg.BootstrapPassword,
		AuditorPassword: cfg.BootstrapAuditorPassword})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if boot.Created {
		log.Info("created root org, system administrator \"admin\" and security auditor \"auditor\"")
		printFirstPasswords(env, boot)
	}
	warnMissingOrgs(ctx, log, svc, cfg)
	if len(cfg.LDAPAuth) > 0 {
		// Local hashes of people a directory now covers (an org moved, a
		// wider ldap_auth, an earlier version) go, in the background.
		env.Go(func(ctx context.Context) {
			n, err := svc.ClearDirectoryHashes(ctx, "")
			switch {
			case err != nil && ctx.Err() == nil:
				log.Warn("local password hashes of people a directory covers not all removed; the next start tries again", zap.Error(err))
			case n > 0:
				log.Info("removed the local password hashes of people whose passwords a directory checks", zap.Int("people", n))
			}
		})
	}
	guard, err := adminGuard(cfg, env, svc)
	if err != nil {
		return nil, err
	}
	return &module.Component{
		Register: server.New(svc).WithGuard(guard).WithResponseSigner(answers).Register,
		Auth:     server.CallerAuth{Svc: svc},
		// A malformed Authenticate is refused before its handler, and
		// still audited as a failed login.
		OnBadRequest: server.BadRequestAudit(svc),
		Ready:        db.PingContext,
		Value:        &Handle{Service: svc, Relay: relay, DB: db, Admins: guard.Verifier()},
	}, nil
}

// printFirstPasswords shows the generated first passwords once, on the
// process's output (never in the log).
func printFirstPasswords(env *module.Env, b identity.Bootstrapped) {
	if b.AdminPassword != "" {
		fmt.Fprintf(env.Out, "\nUIAS first start: system administrator login %q, password: %s\n"+
			"This password is shown once. Set UIAS_BOOTSTRAP_PASSWORD to choose it instead.\n\n", identity.BootstrapAdminLogin, b.AdminPassword)
	}
	if b.AuditorPassword != "" {
		fmt.Fprintf(env.Out, "\nUIAS first start: security auditor login %q, password: %s\n"+
			"Give it to the security auditor, not to the system administrator. This password is shown once. "+
			"Set UIAS_BOOTSTRAP_AUDITOR_PASSWORD to choose it instead.\n\n", identity.BootstrapAuditorLogin, b.AuditorPassword)
	}
}

// keyReloadEvery is how often an instance rereads the data keys.
const keyReloadEvery = 30 * time.Second

// openKeys loads the key ring (UIAS_KEYRING, else the key file) and checks
// it against the database. A new ring file is made only in target "all" and
// for a database that holds no data yet: with data, a missing ring stops the
// start (a new one would make the stored personal data unreadable, and the
// next update of a person would erase it); outside "all" (microservices
// mode, replicas sharing one database) it stops the start too, since a ring
// made by one replica would be unknown to the others.
//
// It also derives the keys that sign UIAS's answers to signed calls
// (reqsig.ResponseKeyPurpose; docs/adr/0016-signed-answers.md).
func openKeys(ctx context.Context, cfg *Config, st *sqlstore.Store, log *zap.Logger, all bool) (*identity.Keys, *reqsig.ResponseSigner, error) {
	hasData, err := identity.HasKeyedData(ctx, st, st)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring: read the database: %w", err)
	}
	ring, err := crypto.LoadRing(crypto.RingSource{Env: cfg.KeyRing, File: cfg.KeyFile, AllowOpenFile: cfg.KeyFileAllowOpenMode})
	switch {
	case errors.Is(err, crypto.ErrNoRing) && hasData:
		return nil, nil, fmt.Errorf("key ring: %w, but the database already holds encrypted data: "+
			"restore the key ring this database was set up with (the backup of %s, or its Secret via UIAS_KEYRING); "+
			"UIAS does not make a new ring for existing data, which would make it unreadable. Nothing was changed",
			err, cfg.KeyFile)
	case errors.Is(err, crypto.ErrNoRing) && !all:
		return nil, nil, fmt.Errorf("key ring: %w (%s does not exist and UIAS_KEYRING is not set). Outside target \"all\" "+
			"every identity replica must use the same ring, so none is made here: create one once with "+
			"\"uias keys new --out %s\" (or \"uias keys new\" for the JSON to keep in a Secret, given to every replica "+
			"as UIAS_KEYRING) and give every replica the same one", err, cfg.KeyFile, cfg.KeyFile)
	case errors.Is(err, crypto.ErrNoRing):
		if ring, err = crypto.NewRingFile(cfg.KeyFile); err != nil {
			return nil, nil, fmt.Errorf("key ring: %w", err)
		}
		log.Warn("created a new key ring for a new database; back it up, or better keep it in a Secret (docs/operators.md)",
			zap.String("key_file", cfg.KeyFile))
	case errors.Is(err, crypto.ErrKeyFileOpen):
		return nil, nil, fmt.Errorf("key ring: %w (identity.key_file_allow_open_mode)", err)
	case err != nil:
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	keys, err := identity.OpenKeys(ctx, st, ring, hasData, log)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	rk, err := ring.Ed25519(reqsig.ResponseKeyPurpose)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	answers, err := reqsig.NewResponseSigner(rk.Active, rk.Keys)
	if err != nil {
		return nil, nil, fmt.Errorf("key ring: %w", err)
	}
	sm2Active := ""
	if cfg.ResponseSigningSM2 {
		// SM2 offered beside Ed25519 (docs/adr/0043-sm2-signatures.md).
		sk, err := ring.SM2(reqsig.ResponseKeyPurpose)
		if err != nil {
			return nil, nil, fmt.Errorf("key ring: %w", err)
		}
		if _, err := answers.WithSM2(sk.Active, sk.Keys); err != nil {
			return nil, nil, fmt.Errorf("key ring: %w", err)
		}
		sm2Active = sk.Active
	}
	log.Info("key ring loaded", zap.String("source", ring.Source), zap.String("master_key", ring.Master.Active),
		zap.String("data_key", keys.Sealer().ActiveKeyID()), zap.String("response_signing_key", rk.Active),
		zap.String("response_signing_key_sm2", sm2Active))
	return keys, answers, nil
}

// schedPolicy resolves "auto", the default, to inherit, whatever else the
// process runs: SCHED_BATCH slows every other component while hashes run,
// and for an identity process alone it measured no gain in login
// throughput nor in the latency of cheap calls (docs/adr/0004-sched-policy.md).
// An explicit setting always wins.
func schedPolicy(p string) string {
	if p == SchedAuto {
		return sched.PolicyInherit
	}
	return p
}

// setSchedPolicy applies the scheduling policy to the whole process. It is
// not fatal when it fails: the process then runs under the policy it was
// started with, which is correct, only slower under a login storm.
func setSchedPolicy(policy string, log *zap.Logger) {
	if policy != sched.PolicyBatch {
		log.Info("cpu scheduling left as started", zap.String("sched_policy", policy))
		return
	}
	n, err := sched.Batch()
	switch {
	case errors.Is(err, sched.ErrUnsupported):
		log.Info("cpu scheduling left as started: SCHED_BATCH exists only on Linux")
	case err != nil:
		log.Warn("cpu scheduling: could not switch to SCHED_BATCH; running as started (password hashes are preempted more under load)",
			zap.Error(err))
	default:
		log.Info("cpu scheduling", zap.String("policy", "SCHED_BATCH"), zap.Int("threads", n))
	}
}

func policyOf(p PolicyDefaults) identity.Policy {
	return identity.Policy{MinLength: p.MinLength, RequireClasses: p.RequireClasses, History: p.History,
		MaxFailures: p.MaxFailures, SourceFailures: p.SourceFailures, LockDuration: time.Duration(p.LockMinutes) * time.Minute,
		MaxAge: time.Duration(p.MaxAgeDays) * 24 * time.Hour, SharedIDNumbers: !p.UniqueIDNumber,
		SelfServiceDisplayName: p.SelfServiceDisplayName, AuthenticateRequiresOTP: p.AuthenticateRequiresOTP,
		AdminRequiresOTP: p.AdminRequiresOTP, CertIdentityCheck: p.CertIdentityCheck, CertAutoBind: p.CertAutoBind, MinAuthLevel: p.MinAuthLevel,
		RequireIPAllowList: p.RequireIPAllowList}
}

func throttleOf(t LoginThrottle) identity.Throttle {
	return identity.Throttle{AddressFailures: t.AddressFailures, BaseDelay: t.BaseDelay, MaxDelay: t.MaxDelay, Decay: t.Decay}
}

// userCacheTTL maps the config (0 = no cache) to identity.Config (0 = default, negative = none).
func userCacheTTL(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// fingerCache maps finger_template_cache (0: none) to identity's
// FingerCache (0: the default; negative: none).
func fingerCache(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// adminGuard makes the authz component decide administrator calls
// (identity.admin_authz, default on): the guard of every admin RPC, and the
// gate of administrator tokens for people appointed by a grant.
func adminGuard(cfg *Config, env *module.Env, svc *identity.Service) (*server.Guard, error) {
	if !cfg.AdminAuthz {
		env.Log.Warn("identity.admin_authz is off: every is_admin administrator may do everything (for deployments without the authz component only)")
		return nil, nil
	}
	conn, err := env.Client("authz")
	if err != nil {
		return nil, err
	}
	v := adminauth.New(nil, conn)
	// Allowed answers are reused for admin_decision_ttl; when authz runs in
	// this process any change of its index ends the reuse at once.
	cache := adminauth.CacheOptions{TTL: cfg.AdminDecisionTTL}
	if env.Runs("authz") {
		cache.Local = func() adminauth.LocalDecisions {
			l, _ := env.Local("authz").(adminauth.LocalDecisions)
			return l
		}
	}
	v.CacheDecisions(cache)
	if !env.Runs("authz") {
		// authz in other processes: its change events end kept answers
		// at once (a revocation), and so does its word that it applied an
		// identity change taking something away; the TTL bounds the rest.
		nc, _, err := env.NATS()
		if err != nil {
			return nil, err
		}
		if err := env.Subscribed(v.WatchRevisions(nc)); err != nil {
			return nil, fmt.Errorf("subscribe to authz changes: %w", err)
		}
		// An org or a person moved ends kept answers once an authz
		// replica has applied it.
		if err := env.Subscribed(v.WatchMirror(nc)); err != nil {
			return nil, fmt.Errorf("subscribe to %s: %w", adminauth.MirrorSubject, err)
		}
	}
	svc.SetAdminGate(func(ctx context.Context, u *identity.User) (bool, error) {
		err := v.Authorize(ctx, &adminauth.Admin{ID: u.ID, OrgID: u.OrgID}, adminauth.ConsoleLogin, "")
		if ae, ok := apierr.As(err); ok && ae.Reason == adminauth.ReasonNotAllowed {
			return false, nil
		}
		return err == nil, err
	})
	// Personal data in clear in exports: authz's identity.personal reveal
	// (the personal_data_admin role). The deprecated setting's logins are
	// appointed to that role (below, with the other appointments).
	svc.SetRevealGate(func(ctx context.Context, u *identity.User) (bool, error) {
		err := v.Authorize(ctx, &adminauth.Admin{ID: u.ID, OrgID: u.OrgID}, adminauth.PersonalReveal, "")
		if ae, ok := apierr.As(err); ok && ae.Reason == adminauth.ReasonNotAllowed {
			return false, nil
		}
		return err == nil, err
	})
	// The memberships and moves of other centres are held to this
	// centre's separation-of-duty pairs before they are applied
	// (identity/replica_sod.go).
	rep := authzv1.NewAuthzReplicaServiceClient(conn)
	svc.SetSeparationCheck(func(ctx context.Context, q identity.SeparationQuestion) (identity.SeparationAnswer, error) {
		r, err := rep.CheckReplicaSeparation(ctx, &authzv1.CheckReplicaSeparationRequest{Person: q.Person, Groups: q.Groups,
			Org: q.Org, JoinGroup: q.JoinGroup, JoinOrg: q.JoinOrg, MoveOrg: q.MoveOrg})
		if err != nil {
			return identity.SeparationAnswer{}, apierr.ErrUnavailable.WithMessage(
				"authz did not judge another centre's membership or move for separation of duty (the batch is applied again later): " +
					status.Convert(err).Message())
		}
		if !r.GetConflict() {
			return identity.SeparationAnswer{}, nil
		}
		return identity.SeparationAnswer{Conflict: r.GetMessage(), Person: r.GetPerson()}, nil
	})
	if len(cfg.PersonalDataAdmins) > 0 {
		n, err := svc.AppointPersonalDataAdmins(env.Context(), cfg.PersonalDataAdmins)
		if err != nil {
			return nil, fmt.Errorf("identity.personal_data_admins: %w", err)
		}
		env.Log.Warn("identity.personal_data_admins is deprecated: the people it names are given the personal_data_admin role "+
			"in authz (which now decides personal data in clear); remove the setting and grant or revoke that role instead",
			zap.Int("named", len(cfg.PersonalDataAdmins)), zap.Int("appointed", n))
	}
	// The legacy is_admin flag and the first start's security auditor
	// become grants (identity.MigrateAdmins): at start (retried until
	// authz answers), after a user is created with the flag, and every
	// few minutes (flags written by replication or an import).
	az := authzv1.NewAuthzServiceClient(conn)
	kick := make(chan struct{}, 1)
	svc.OnAppointment(func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	env.Go(func(ctx context.Context) {
		svc.RunAppointments(ctx, func(ctx context.Context, userID, role string) error {
			_, err := az.AppointAdmin(ctx, &authzv1.AppointAdminRequest{Person: userID, Role: role})
			if status.Code(err) == codes.FailedPrecondition {
				return fmt.Errorf("%w: %s", identity.ErrNotAppointable, status.Convert(err).Message())
			}
			return err
		}, kick, appointEvery)
	})
	return &server.Guard{Svc: svc, Authz: v}, nil
}

// appointEvery is how often identity looks for administrators still to
// appoint in authz.
const appointEvery = 5 * time.Minute

// warnMissingOrgs warns, at the start, of each org code of
// identity.kerberos_orgs and ldap_auth[].orgs that names no org here
// (review sec27a L2). Not an error: on a first start only the root org
// exists, and the orgs may come later (created, imported, replicated). A
// missing code of kerberos_orgs signs in no one of it (fails closed); one
// of ldap_auth leaves its people's passwords with UIAS until the org
// exists.
func warnMissingOrgs(ctx context.Context, log *zap.Logger, svc *identity.Service, cfg *Config) {
	check := func(field string, codes []string, effect string) {
		missing, err := svc.MissingOrgCodes(ctx, codes)
		if err != nil {
			log.Warn("org codes of "+field+" not checked", zap.Error(err))
			return
		}
		for _, c := range missing {
			log.Error(field+" names an org code that does not exist here: "+effect, zap.String("org_code", c))
		}
	}
	var krb []string
	for _, e := range cfg.KerberosOrgs {
		if _, code, ok := strings.Cut(e, "="); ok {
			krb = append(krb, code)
		}
	}
	check("identity.kerberos_orgs", krb, "Kerberos tickets sign in no one of it until it exists")
	for i, l := range cfg.LDAPAuth {
		check(fmt.Sprintf("identity.ldap_auth[%d].orgs", i), l.Orgs,
			"its people's passwords are checked by UIAS, not by the directory, until it exists")
	}
}

// uniquenessOf is identity.uniqueness for this centre: a level-2 centre
// asks level 1 over NATS; level 1 keeps its reservations in JetStream; a
// single centre checks nothing across centres.
func uniquenessOf(cfg *Config, homes *centre.Homes, nc *nats.Conn, js jetstream.JetStream, log *zap.Logger) (identity.UniquenessConfig, error) {
	u := identity.UniquenessConfig{RefuseUnreachable: cfg.Uniqueness.PeerUnreachable == "refuse",
		Wait: cfg.Uniqueness.Wait, Hold: cfg.Uniqueness.Hold,
		PeerRate: cfg.Uniqueness.PeerRate, PeerBurst: cfg.Uniqueness.PeerBurst}
	if homes == nil {
		return u, nil
	}
	switch {
	case !cfg.Uniqueness.IDNumbers:
		// The centre keeps its people's ID numbers from level 1: no centres
		// key is computed, stored or sent (review sec29b M3).
		log.Info("identity.uniqueness.id_numbers is false: ID numbers are compared within this centre only, login names across centres")
	case cfg.Uniqueness.KeyFile != "":
		k, err := readCentresKey(cfg.Uniqueness.KeyFile, cfg.KeyFileAllowOpenMode)
		if err != nil {
			return u, fmt.Errorf("identity.uniqueness.key_file: %w", err)
		}
		u.CentresKey = k
	default:
		log.Warn("identity.uniqueness.key_file is not set: ID numbers are compared within this centre only, login names across centres")
	}
	switch homes.Level {
	case 1:
		u.Reservations = uniqpeer.NewReservations(js, cfg.Uniqueness.Hold, cfg.NonceKVReplicas)
	case 2:
		u.Peer = uniqpeer.NewClient(nc, homes.Self)
	}
	return u, nil
}
