// Package component registers the ticket service as a UIAS module: its
// config section, its needs (NATS, identity's client) and how it starts.
package component

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/store"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/cas"
	"github.com/uias/uias/services/ticket/kvstore"
	"github.com/uias/uias/services/ticket/server"
	"github.com/uias/uias/services/ticket/sqlstore"
)

// Name is the ticket component's name (target, config key, etcd name).
const Name = "ticket"

// Handle is what a running ticket component exposes to the process owner
// (tests and benchmarks): module.Process.Value("ticket").
type Handle struct {
	Service *ticket.Service
	DB      *store.DB
	Relay   *events.Relay
}

// relayKicking is the service store with the relay kicked after each
// change, so its events leave at once.
type relayKicking struct {
	*sqlstore.Store
	relay *events.Relay
}

func (r relayKicking) CreateService(ctx context.Context, s *ticket.RegisteredService, evs ...events.Event) error {
	defer r.relay.Kick()
	return r.Store.CreateService(ctx, s, evs...)
}

func (r relayKicking) UpdateService(ctx context.Context, s *ticket.RegisteredService, evs ...events.Event) error {
	defer r.relay.Kick()
	return r.Store.UpdateService(ctx, s, evs...)
}

func (r relayKicking) DeleteService(ctx context.Context, id string, evs ...events.Event) error {
	defer r.relay.Kick()
	return r.Store.DeleteService(ctx, id, evs...)
}

func (r relayKicking) PutConsent(ctx context.Context, c *ticket.Consent, evs ...events.Event) error {
	defer r.relay.Kick()
	return r.Store.PutConsent(ctx, c, evs...)
}

// Module is the ticket component's registration.
func Module() module.Module {
	return module.Module{
		Name:    Name,
		Config:  func() config.Section { return Defaults() },
		SQL:     true,
		NATS:    true,
		Uses:    []string{"identity"},
		Calls:   []string{"authz"},
		REST:    rest,
		OpenAPI: ticketOpenAPI,
		Pages:   &module.Pages{Prefix: "/cas/", New: pages},
		OpenAPISecurity: map[string][]string{
			"TicketAdminService":     module.AdminCredentials,
			"ServiceRegistryService": module.AdminCredentials,
			"TicketSessionsService":  module.AdminCredentials,
		},
		Init: start,
	}
}

func rest(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	if err := ticketv1.RegisterTicketAdminServiceHandlerClient(ctx, mux, ticketv1.NewTicketAdminServiceClient(conn)); err != nil {
		return err
	}
	if err := sessionsREST(ctx, mux, conn); err != nil {
		return err
	}
	return ticketv1.RegisterServiceRegistryServiceHandlerClient(ctx, mux, ticketv1.NewServiceRegistryServiceClient(conn))
}

// UserChangesSubject matches identity's CHANGES events of users.
const UserChangesSubject = "uias.changes.identity.user.>"

// LockChangesSubject matches identity's CHANGES events of locks made at a
// centre other than the person's home (identity/replica_lock.go), as that
// centre writes them and as the home applies them.
const LockChangesSubject = "uias.changes.identity.lock.>"

// OrgChangesSubject matches identity's CHANGES events of orgs.
const OrgChangesSubject = "uias.changes.identity.org.>"

// AppChangesSubject matches identity's CHANGES events of applications
// (app.deleted, and app.replica.deleted at a centre holding a replica).
const AppChangesSubject = "uias.changes.identity.app.>"

func start(ctx context.Context, env *module.Env) (*module.Component, error) {
	cfg := env.Section().(*Config)
	log := env.Log
	nc, js, err := env.NATS()
	if err != nil {
		return nil, err
	}
	ring, err := crypto.LoadRing(cfg.RingSource(env.Config))
	if err != nil {
		return nil, fmt.Errorf("ticket: key ring (the deployment's, as identity reads it, or ticket.key_file): %w", err)
	}
	signer, signingKey, err := ticketSigner(ring)
	if err != nil {
		return nil, fmt.Errorf("ticket: key ring: %w", err)
	}
	if ring.Legacy != nil || len(ring.Signing.Keys) == 0 {
		log.Warn("the key ring has no signing keys (version 1): tickets are signed with a key derived from the master key; add a signing set")
	}
	idConn, err := env.Client("identity")
	if err != nil {
		return nil, err
	}
	db, err := env.MigratedSQL(ctx, sqlstore.Migrate)
	if err != nil {
		return nil, err
	}
	services := sqlstore.New(db)
	relay := env.Relay(db, js)
	registry := ticket.NewRegistry(relayKicking{services, relay}, cfg.RegistryRefresh, nil)
	var watchLogged time.Time
	store := kvstore.New(js, kvstore.Options{Replicas: cfg.KVReplicas, Timeout: cfg.StoreTimeout,
		SessionCache: cfg.SessionCache, WatchError: func(err error) {
			// At most one line a minute while NATS is away.
			if time.Since(watchLogged) > time.Minute {
				watchLogged = time.Now()
				log.Warn("the index of live sessions lost its watch of the sessions bucket; watching again", zap.Error(err))
			}
		}})
	// The live sessions, in memory for TicketSessionsService.ListSessions.
	env.Go(store.WatchSessions)
	idKeys, err := idTokenKeys(cfg, ring)
	if err != nil {
		return nil, fmt.Errorf("ticket: ID token keys: %w", err)
	}
	if cfg.OIDCKeyFile == "" {
		log.Info("OpenID Connect ID tokens are signed with a key derived from the key ring; set ticket.oidc_key_file for keys of their own")
	}
	aq := newAuditSink(js, log.Named("audit"))
	env.Go(aq.run)
	svc, err := ticket.New(ticket.Deps{Store: store, MAC: signer, Audit: aq, Logger: log, Registry: registry,
		Config: ticket.Config{STTTL: cfg.STTTL, PTTTL: cfg.PTTTL, TGTIdle: cfg.TGTIdle, TGTHard: cfg.TGTHard,
			PGTTTL: cfg.PGTTTL, Centre: cfg.Centre, TouchAfter: cfg.SessionTouch, CodeTTL: cfg.OIDCCodeTTL, AccessTTL: cfg.AccessTokenTTL,
			ServicesDefaultLinked: cfg.ServicesDefaultAccess == ServicesLinked},
		IDTokens: idKeys, Nonces: peerTokens(js, cfg)})
	if err != nil {
		return nil, err
	}
	client, err := outboundClient(cfg)
	if err != nil {
		return nil, err
	}
	peers, err := peerSettings(cfg)
	if err != nil {
		return nil, err
	}
	svc.SetPeers(peers)
	if peers.Key != nil {
		log.Info("sign-in across centres: this centre vouches for its people to its peers",
			zap.String("peer_key_id", ticket.PeerKeyID(peers.Key.Public().(ed25519.PublicKey))), zap.Int("peers", len(peers.Peers)))
	}
	svc.SetEnding(newSingleLogout(env.Context(), svc, client, aq, log.Named("slo")).ended)
	credSealer, err := credentialSealer(ring)
	if err != nil {
		return nil, fmt.Errorf("ticket: key ring: %w", err)
	}
	svc.SetConsents(relayKicking{services, relay})
	svc.SetLegacy(ticket.LegacyDeps{
		Apps:        identityApps{callers: identityv1.NewCallerServiceClient(idConn), sso: identityv1.NewSSOServiceClient(idConn)},
		Principals:  principalClient{client: client, attempts: 3, wait: 200 * time.Millisecond},
		Credentials: services, Sealer: credSealer})
	// A person disabled, locked or deleted, whose password changed or one of
	// whose certificates was unbound loses their sessions at once; so does
	// a person homed at another centre and locked here (lock.locked), or
	// locked at a centre holding them as a replica and applied here, their
	// home (lock.replica.locked; trial9 D2). One instance of the component
	// handles each event (queue group).
	for _, subject := range []string{UserChangesSubject, LockChangesSubject} {
		if err := env.Subscribed(nc.QueueSubscribe(subject, "uias-ticket", func(m *nats.Msg) {
			endSessionsOnChange(env.Context(), svc, log, m.Subject, m.Data)
			endSessionsBelowLevel(env.Context(), svc, log, m.Subject, m.Data)
		})); err != nil {
			return nil, fmt.Errorf("subscribe to %s: %w", subject, err)
		}
	}
	// An org disabled: the people below it lose their sessions (one
	// instance handles each event).
	sso := identityv1.NewSSOServiceClient(idConn)
	if err := env.Subscribed(nc.QueueSubscribe(OrgChangesSubject, "uias-ticket", func(m *nats.Msg) {
		endSessionsOnOrgDisabled(env.Context(), svc, sso, log, m.Subject, m.Data)
	})); err != nil {
		return nil, fmt.Errorf("subscribe to org changes: %w", err)
	}
	// What those events missed (an instance stopped or cut off when they
	// were published) is caught up by a sweep.
	if cfg.InactiveSweep > 0 {
		env.Go(func(ctx context.Context) { sweepInactive(ctx, svc, sso, log.Named("sweep"), cfg.InactiveSweep) })
	}
	// An application deleted in identity loses its CAS services (one
	// instance handles each event).
	if err := env.Subscribed(nc.QueueSubscribe(AppChangesSubject, "uias-ticket", func(m *nats.Msg) {
		deleteAppServices(env.Context(), svc, log, m.Subject, m.Data)
	})); err != nil {
		return nil, fmt.Errorf("subscribe to application changes: %w", err)
	}
	// A suspended application's services take no tickets; every instance
	// follows the applications' status.
	apps := newAppStatus(svc.Registry())
	if err := env.Subscribed(nc.Subscribe(AppChangesSubject, apps.onChange)); err != nil {
		return nil, fmt.Errorf("subscribe to application changes: %w", err)
	}
	// Their levels are read before serving when identity answers within
	// a few seconds; until they are read the services of applications
	// issue nothing (APP_SETTINGS_UNAVAILABLE; review sec26 M3).
	appViews := identityv1.NewViewServiceClient(idConn)
	firstCtx, cancelFirst := context.WithTimeout(env.Context(), appStatusFirstWait)
	if err := apps.refresh(firstCtx, svc, appViews, log.Named("apps")); err != nil {
		log.Warn("the applications' sign-in levels were not read from identity at the start: their services issue no tickets until they are (trying every 2 s)",
			zap.Error(err))
	}
	cancelFirst()
	env.Go(func(ctx context.Context) {
		apps.run(ctx, svc, appViews, log.Named("apps"))
	})
	// The attributes validations release, cached on every instance and
	// dropped by identity's CHANGES events.
	attrs := newAttributeCache(identityv1.NewSSOServiceClient(idConn), cfg.AttributeCache)
	attrSubs, err := attrs.subscribe(nc)
	if err != nil {
		return nil, fmt.Errorf("subscribe to identity changes: %w", err)
	}
	// Services' access rules: account links as validations read them,
	// permissions from authz (asked only for services with a rule).
	svc.SetProfiles(profiles{attrs: attrs})
	rules := accessRules{attrs: attrs}
	var model server.Model
	if azConn, err := env.Client("authz"); err == nil {
		rules.authz = authzv1.NewAuthzServiceClient(azConn)
		model = server.AuthzModel{Admin: authzv1.NewAuthzAdminServiceClient(azConn)}
		// Roles and permissions released at validation (ADR 0019).
		svc.SetRelease(authzRelease{authz: rules.authz})
	} else {
		log.Warn("the authz component is not reachable: services whose access rule names a permission issue no ticket, "+
			"and validations of services releasing roles or permissions fail", zap.Error(err))
	}
	svc.SetAccess(rules)
	env.OnStop(func(context.Context) error {
		for _, s := range attrSubs {
			_ = s.Unsubscribe()
		}
		return nil
	})
	log.Info("ticket service", zap.String("centre", cfg.Centre), zap.Duration("st_ttl", cfg.STTTL),
		zap.Duration("tgt_idle", cfg.TGTIdle), zap.Duration("tgt_hard", cfg.TGTHard), zap.String("signing_key", signingKey))
	admins, err := adminauth.FromEnv(env)
	if err != nil {
		return nil, err
	}
	return &module.Component{
		Register: func(g grpc.ServiceRegistrar) {
			server.New(svc, admins, server.IdentityApps{Apps: identityv1.NewAdminServiceClient(idConn)}).WithAttributes(attrs).
				WithModel(model).Register(g)
			server.NewSessions(svc, admins, server.IdentityOrgs{Admin: identityv1.NewAdminServiceClient(idConn), SSO: identityv1.NewSSOServiceClient(idConn)}).Register(g)
		},
		Auth: server.CallerAuth{Admins: admins},
		Ready: func(ctx context.Context) error {
			return errors.Join(store.Ping(ctx), services.Ping(ctx))
		},
		Value: &Handle{Service: svc, DB: db, Relay: relay},
	}, nil
}

// pages builds the CAS handler in the edge's process.
func pages(_ context.Context, env module.PagesEnv) (http.Handler, error) {
	tc, err := env.Client(Name)
	if err != nil {
		return nil, err
	}
	ic, err := env.Client("identity")
	if err != nil {
		return nil, err
	}
	cfg, _ := env.Config.Section(Name).(*Config)
	if cfg == nil {
		cfg = Defaults()
	}
	client, err := outboundClient(cfg)
	if err != nil {
		return nil, err
	}
	people, err := module.PeopleCAs(*env.Config)
	if err != nil {
		return nil, err
	}
	kerberos, err := cfg.kerberos()
	if err != nil {
		return nil, err
	}
	sso := identityv1.NewSSOServiceClient(ic)
	// identity.external_authenticators, offered by the login page
	listExternal := func(ctx context.Context) ([]*identityv1.ExternalAuthenticatorInfo, error) {
		res, err := sso.ExternalAuthenticators(ctx, &identityv1.ExternalAuthenticatorsRequest{})
		return res.GetAuthenticators(), err
	}
	return cas.New(cas.Options{Tickets: ticketv1.NewTicketServiceClient(tc), SSO: sso, ListExternal: listExternal,
		Log: env.Log, Prefix: "/cas/", Client: client, CAS2Attributes: cfg.CAS2Attributes, PeopleCAs: people, FingerAgent: cfg.FingerAgentURL,
		OIDCIssuer: cfg.OIDCIssuer, Kerberos: kerberos, Centre: cfg.Centre, Peers: peerPages(cfg), PeerProbe: cfg.PeerProbe, Go: env.Go,
		USBKey: cfg.USBKey, USBKeyScript: cfg.USBKeyScript, USBKeyScriptIntegrity: cfg.USBKeyScriptIntegrity, USBKeyConnect: cfg.USBKeyConnect}), nil
}

// outboundClient makes the component's outbound HTTPS calls (pgtUrl
// callbacks, single-logout requests): certificates verified against the
// system roots plus ticket.outbound_ca_file, TLS 1.2 or later, no
// redirects followed, 10s per call.
func outboundClient(cfg *Config) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.OutboundCAFile != "" {
		pem, err := os.ReadFile(cfg.OutboundCAFile)
		if err != nil {
			return nil, fmt.Errorf("ticket.outbound_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ticket.outbound_ca_file %s: no PEM certificate", cfg.OutboundCAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// endSessionsOnChange ends the sessions of a person whose account was
// disabled, locked or deleted, whose password was changed or reset, or one
// of whose certificates was unbound (identity's CHANGES events).
func endSessionsOnChange(ctx context.Context, svc *ticket.Service, log *zap.Logger, subject string, data []byte) {
	reason := EndReason(subject, data)
	if reason == "" {
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Data struct {
			// password_changed_at: when the new password was set
			// (user.password_changed): sessions whose login saw it stay.
			PasswordChangedAt time.Time `json:"password_changed_at"`
			// keep_session: the session a person changed their password
			// in stays (user.password_changed of the SSO pages).
			KeepSession string `json:"keep_session"`
			// state_at: when the account was locked or disabled
			// (user.locked, user.status_changed, lock.locked of this
			// centre): sessions whose login saw that state or a later
			// one stay (ADR 0047).
			StateAt time.Time `json:"state_at"`
			// local_state_at: this centre's own state time of a change
			// applied as a replica, when identity's write set one
			// (level 1's disable at the person's home, ADR 0048).
			LocalStateAt time.Time `json:"local_state_at"`
		} `json:"data"`
		// Origin: the change was applied here as a replica of another
		// centre's (its state time is not this centre's; identity leaves
		// it out, and an older one's is ignored).
		Origin string `json:"origin"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.ID == "" {
		return
	}
	if reason == "USER_LOCKED" || reason == "USER_DISABLED" {
		state := ev.Data.StateAt
		if ev.Origin != "" {
			state = ev.Data.LocalStateAt
		}
		endSessionsOnState(ctx, svc, log, ev.ID, reason, state)
		return
	}
	keep, password := "", time.Time{}
	if reason == "PASSWORD_CHANGED" {
		keep, password = ev.Data.KeepSession, ev.Data.PasswordChangedAt
		// Noted first: a login racing the change that stores its session
		// after the sessions are listed below sees the note and is refused.
		if !password.IsZero() {
			if err := svc.NotePassword(ctx, ev.ID, password); err != nil {
				log.Warn("a password change was not noted for the logins in flight", zap.Error(err))
			}
		}
	}
	sweep := func() {
		n, err := svc.EndUserSessionsBefore(ctx, ev.ID, keep, reason, password)
		loggedEnded(log, reason, n, err)
	}
	sweep()
	if reason == "PASSWORD_CHANGED" && !password.IsZero() {
		// Once more a little later: a session a replica of a replicated
		// bucket had not shown the listing yet, or one a racing login
		// stored when the note above could not be written, ends too
		// (review sec25 M1, L1). Sessions of the new password stay.
		later(ctx, sweep)
	}
}

// loggedEnded logs what a sweep of a changed user's sessions did: n
// sessions ended, or the failure (no session at all is not one).
func loggedEnded(log *zap.Logger, reason string, n int, err error) {
	if err != nil && !errors.Is(err, ticket.ErrNoSuchUserSession) {
		log.Warn("sessions of a changed user not ended", zap.String("reason", reason), zap.Error(err))
		return
	}
	if n > 0 {
		log.Info("ended the sessions of a changed user", zap.String("reason", reason), zap.Int("sessions", n))
	}
}

// endSessionsOnState ends, for a lock or disable of person id at identity's
// state time state, the sessions whose login saw an earlier state of the
// account (zero state, an event of an earlier version or of another
// centre: every session). The time is noted first, as a password change's:
// a login racing the lock that stores its session after the listing sees
// the note and is refused; a second sweep a little later ends what a
// lagging replica of the bucket did not list. A session opened after a
// later unlock or enable stays, however late this event arrives.
func endSessionsOnState(ctx context.Context, svc *ticket.Service, log *zap.Logger, id, reason string, state time.Time) {
	if !state.IsZero() {
		if err := svc.NoteState(ctx, id, state); err != nil {
			log.Warn("a lock or disable was not noted for the logins in flight", zap.Error(err))
		}
	}
	sweep := func() {
		n, err := svc.EndUserSessionsBeforeState(ctx, id, reason, state)
		loggedEnded(log, reason, n, err)
	}
	sweep()
	if !state.IsZero() {
		later(ctx, sweep)
	}
}

// passwordResweep is how long after a change its sessions are looked for
// again (longer than a login takes and a replica lags).
var passwordResweep = 10 * time.Second

// later runs sweep once more passwordResweep from now, unless ctx ends.
func later(ctx context.Context, sweep func()) {
	d := passwordResweep
	go func() {
		select {
		case <-time.After(d):
			sweep()
		case <-ctx.Done():
		}
	}()
}

// ReasonLevelRaised is the session.end reason of a session below the
// level its person was just set to (identity's min_auth_level).
const ReasonLevelRaised = "AUTH_LEVEL_RAISED"

// endSessionsBelowLevel ends, when a person's own level was raised to 2
// or 3 (user.updated naming min_auth_level, here or as a replica), their
// sessions that do not reach it: graded authentication holds at once, not
// at their next login (as CAS asks an SSO session for the factor a
// principal's MFA trigger needs). A level lowered, or set back to the
// policy's (0), ends nothing.
func endSessionsBelowLevel(ctx context.Context, svc *ticket.Service, log *zap.Logger, subject string, data []byte) {
	if !strings.HasSuffix(subject, ".user.updated") && !strings.HasSuffix(subject, ".user.replica.updated") {
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Data struct {
			MinAuthLevel *int `json:"min_auth_level"`
		} `json:"data"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.ID == "" || ev.Data.MinAuthLevel == nil || *ev.Data.MinAuthLevel < 2 {
		return
	}
	sweep := func() {
		n, err := svc.EndUserSessionsBelow(ctx, ev.ID, *ev.Data.MinAuthLevel, ReasonLevelRaised)
		if err != nil && !errors.Is(err, ticket.ErrNoSuchUserSession) {
			log.Warn("sessions below a person's raised level not ended", zap.Error(err))
			return
		}
		if n > 0 {
			log.Info("ended the sessions below a person's raised level", zap.Int("sessions", n))
		}
	}
	sweep()
	// Once more a little later: a login that checked the person's old
	// level and stores its session after this sweep ends too (review
	// sec26 L1), as a session a lagging replica did not list.
	later(ctx, sweep)
}

// endSessionsOnOrgDisabled ends, when an org was disabled (CHANGES
// org.status_changed to a status other than active, here or as a
// replica), the sessions of the people who may therefore no longer sign
// in: identity tells which of the people with live sessions are below a
// disabled org.
func endSessionsOnOrgDisabled(ctx context.Context, svc *ticket.Service, sso identityv1.SSOServiceClient, log *zap.Logger, subject string, data []byte) {
	if !strings.HasSuffix(subject, ".status_changed") {
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Data struct {
			Status int `json:"status"`
		} `json:"data"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.ID == "" || ev.Data.Status == 1 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	n, err := svc.EndSessionsOfInactive(ctx, inactivePeople(sso), "ORG_DISABLED")
	if err != nil {
		log.Warn("sessions below a disabled org not all ended", zap.String("org_id", ev.ID), zap.Error(err))
	}
	if n > 0 {
		log.Info("ended the sessions of the people below a disabled org", zap.String("org_id", ev.ID), zap.Int("sessions", n))
	}
}

// inactivePeople asks identity which of ids may no longer sign in.
func inactivePeople(sso identityv1.SSOServiceClient) func(context.Context, []string) ([]string, error) {
	return func(ctx context.Context, ids []string) ([]string, error) {
		res, err := sso.InactivePeople(ctx, &identityv1.InactivePeopleRequest{UserIds: ids})
		return res.GetUserIds(), err
	}
}

// ReasonNoLongerActive is the session.end reason of the sessions the
// sweep ends (Config.InactiveSweep): the person may no longer sign in, a
// change whose event this instance did not get.
const ReasonNoLongerActive = "NO_LONGER_ACTIVE"

// sweepInactive ends, every interval (the first time after a tenth of it,
// when identity has had time to start), the sessions of the people who
// may no longer sign in, until ctx ends.
func sweepInactive(ctx context.Context, svc *ticket.Service, sso identityv1.SSOServiceClient, log *zap.Logger, interval time.Duration) {
	wait := interval / 10
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = interval
		sctx, cancel := context.WithTimeout(ctx, min(interval, 5*time.Minute))
		n, err := svc.EndSessionsOfInactive(sctx, inactivePeople(sso), ReasonNoLongerActive)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("sweep of the sessions of inactive people not finished; next in "+interval.String(), zap.Error(err))
		case n > 0:
			log.Info("ended the sessions of people who may no longer sign in (missed change events)", zap.Int("sessions", n))
		}
	}
}

// EndReason is the reason a user CHANGES event ends the person's sessions
// ("" when it does not): user.disabled, user.locked, user.deleted,
// user.status_changed to a status other than active, and
// user.password_changed (an administrator's reset or the person's own
// change: whoever knew the old password is signed out everywhere), and
// user.certificate_unbound (a lost or revoked certificate is unbound: the
// sessions it opened must end; sessions do not record which certificate,
// if any, opened them, so all of the person's sessions end).
func EndReason(subject string, data []byte) string {
	op := subject[strings.LastIndexByte(subject, '.')+1:]
	switch op {
	case "disabled":
		return "USER_DISABLED"
	case "locked":
		if strings.Contains(subject, ".identity.lock.") {
			// a lock from another centre that ended before it arrived (a
			// cut link) ends nothing (review sec13 L2)
			var ev struct {
				Data struct {
					LockedUntil time.Time `json:"locked_until"`
				} `json:"data"`
			}
			if json.Unmarshal(data, &ev) == nil && !ev.Data.LockedUntil.IsZero() && !ev.Data.LockedUntil.After(time.Now()) {
				return ""
			}
		}
		return "USER_LOCKED"
	case "deleted":
		return "USER_DELETED"
	case "password_changed":
		return "PASSWORD_CHANGED"
	case "certificate_unbound":
		return "CERTIFICATE_UNBOUND"
	case "status_changed":
		var ev struct {
			Data struct {
				Status int `json:"status"`
			} `json:"data"`
		}
		if json.Unmarshal(data, &ev) == nil && ev.Data.Status != 1 {
			return "USER_DISABLED"
		}
	}
	return ""
}

// deleteAppServices removes the CAS services of an application deleted in
// identity (CHANGES app.deleted); other application events are ignored.
func deleteAppServices(ctx context.Context, svc *ticket.Service, log *zap.Logger, subject string, data []byte) {
	if !strings.HasSuffix(subject, ".deleted") {
		return
	}
	var ev struct {
		Entity string `json:"entity"`
		ID     string `json:"id"`
		Actor  string `json:"actor"`
	}
	if json.Unmarshal(data, &ev) != nil || ev.Entity != "app" || ev.ID == "" {
		return
	}
	// The services' records name the administrator who deleted the
	// application, as identity's event does.
	n, err := svc.DeleteAppServices(caller.WithActor(ctx, ev.Actor), ev.ID, ticket.CauseAppDeleted)
	if err != nil {
		log.Warn("services of a deleted application not all removed", zap.String("app_id", ev.ID), zap.Error(err))
		return
	}
	if n > 0 {
		log.Info("removed the services of a deleted application", zap.String("app_id", ev.ID), zap.Int("services", n))
	}
}
