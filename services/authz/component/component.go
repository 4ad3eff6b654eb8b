// Package component registers the authorization service as a UIAS module:
// its config section, its needs (SQL, NATS, identity's client) and how it
// starts: the index is loaded from the store, then kept fresh by the
// CHANGES stream (authz's own changes, from every replica, and identity's
// org tree and group members).
package component

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/apiid"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/respsign"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/proto/gen/openapi"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/server"
	"github.com/uias/uias/services/authz/sqlstore"
)

// Name is the authz component's name (target, config key, etcd name).
const Name = "authz"

// Handle is what a running authz component exposes to the process owner
// (tests and benchmarks): module.Process.Value("authz").
type Handle struct {
	Service *commands.Service
	Index   *index.Index
	DB      *store.DB
	// Loaded is closed when the index has been loaded from the store and
	// identity's events up to the start have been applied.
	Loaded <-chan struct{}
	// LoadTime is how long loading the index from the store took.
	LoadTime func() time.Duration

	mirrored *atomic.Int64
}

// MirrorSeq is the CHANGES stream sequence of the last identity change that
// may take something away from an administrator (an org or a person moved)
// this replica has applied, or is applying, and
// announces on adminauth.MirrorSubject once applied (0: none since start).
func (h *Handle) MirrorSeq() int64 { return h.mirrored.Load() }

// Module is the authz component's registration.
func Module() module.Module {
	return module.Module{
		Name:    Name,
		Config:  func() config.Section { return Defaults() },
		SQL:     true,
		NATS:    true,
		Uses:    []string{"identity"},
		REST:    rest,
		OpenAPI: openapi.Authz,
		OpenAPISecurity: map[string][]string{
			"AuthzService":      module.AppCredentials,
			"AuthzAdminService": module.AdminCredentials,
		},
		OpenAPISigned: []string{"AuthzService"},
		// The interfaces business systems call (U_API_ID): who holds a
		// permission names people (A2); the answers about one person A1.
		APIIDs: []apiid.Interface{
			{Operation: "AuthzService_Check", Type: apiid.A1, Category: apiid.CategoryAuthz, Seq: 1},
			{Operation: "AuthzService_BatchCheck", Type: apiid.A1, Category: apiid.CategoryAuthz, Seq: 2},
			{Operation: "AuthzService_ListPermissions", Type: apiid.A1, Category: apiid.CategoryAuthz, Seq: 3},
			{Operation: "AuthzService_ListSubjects", Type: apiid.A2, Category: apiid.CategoryAuthz, Seq: 4},
			{Operation: "AuthzService_Explain", Type: apiid.A1, Category: apiid.CategoryAuthz, Seq: 5},
		},
		Init: start,
	}
}

func rest(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	if err := authzv1.RegisterAuthzServiceHandlerClient(ctx, mux, authzv1.NewAuthzServiceClient(conn)); err != nil {
		return err
	}
	return authzv1.RegisterAuthzAdminServiceHandlerClient(ctx, mux, authzv1.NewAuthzAdminServiceClient(conn))
}

// errLoading answers calls that come before the index is loaded.
var errLoading = apierr.ErrUnavailable.WithMessage("the authorization index is still loading; retry shortly")

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
	conn, err := env.Client("identity")
	if err != nil {
		return nil, err
	}
	st := sqlstore.New(db)
	relay := env.Relay(db, js)
	idx := index.New()
	if err := idx.Apply(authz.BuiltinChanges()...); err != nil {
		return nil, fmt.Errorf("authz built-in roles: %w", err)
	}
	homes := centre.FromConfig(env.Config)
	sso := identityv1.NewSSOServiceClient(conn)
	views := identityv1.NewViewServiceClient(conn)
	svc := commands.New(commands.Deps{Store: st, Index: idx, Logger: log, Kick: relay.Kick, MaxWait: cfg.MaxWait,
		Homes: homes, Appoint: func(ctx context.Context, userID, role string) (string, error) {
			res, err := sso.PrepareAppointment(ctx, &identityv1.PrepareAppointmentRequest{UserId: userID, Role: role})
			return res.GetActivationPassword(), err
		}, Exists: func(ctx context.Context, sub authz.Subject) (bool, error) {
			res, err := views.GetViews(ctx, &identityv1.GetViewsRequest{Entity: string(sub.Kind), Ids: []string{sub.ID}})
			return len(res.GetViews()) > 0, err
		}})

	// Changes committed by any replica (this one's too, applied already)
	// reach the index as their events arrive; a gap is read from the store.
	if err := env.Subscribed(nc.Subscribe(commands.ChangesSubjectPrefix+">", func(m *nats.Msg) {
		ch, err := commands.ParseChange(m.Data)
		if err != nil {
			log.Warn("authz change event ignored", zap.Error(err))
			return
		}
		svc.Notify(env.Context(), ch)
	})); err != nil {
		return nil, fmt.Errorf("subscribe to authz changes: %w", err)
	}

	var loaded atomic.Bool
	loadedCh := make(chan struct{})
	var loadTime atomic.Int64
	storeLoaded, identityLoaded := make(chan struct{}), make(chan struct{})
	env.Go(func(ctx context.Context) {
		for delay := 200 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
			t0 := time.Now()
			err := svc.Load(ctx)
			if err == nil {
				loadTime.Store(int64(time.Since(t0)))
				log.Info("authz index loaded", zap.Int64("revision", idx.Revision()), zap.Int("grants", idx.GrantCount()),
					zap.Duration("took", time.Since(t0)))
				close(storeLoaded)
				break
			}
			log.Warn("authz index not loaded, retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
		// The backstop: changes whose events were lost.
		t := time.NewTicker(cfg.CatchUpEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := svc.CatchUp(ctx); err != nil && ctx.Err() == nil {
					log.Warn("authz catch-up failed", zap.Error(err))
				}
			}
		}
	})
	// Identity changes that may take something away are announced once
	// applied: components keeping authz's answers (identity's decision
	// cache) drop them then.
	var mirrored atomic.Int64
	announce := func(seq int64) {
		if err := nc.Publish(adminauth.MirrorSubject, adminauth.MirrorPayload(seq)); err != nil {
			log.Debug("identity change applied, not announced", zap.Int64("seq", seq), zap.Error(err))
		}
	}
	forgetter := newGrantForgetter(svc, func(sub authz.Subject) bool {
		return len(idx.Grants(index.GrantFilter{Subject: &sub})) > 0
	}, log)
	env.Go(func(ctx context.Context) { forgetter.run(ctx, storeLoaded) })
	// Applications deleted in identity lose their model, once the store
	// is loaded (one at a time; a redelivered deletion finds nothing left).
	deletedApps := make(chan identityChange, 64)
	env.Go(func(ctx context.Context) {
		select {
		case <-ctx.Done():
			return
		case <-storeLoaded:
		}
		for {
			select {
			case <-ctx.Done():
				return
			case c := <-deletedApps:
				forgetApp(ctx, svc, log, c)
			}
		}
	})
	appDeleted := func(ctx context.Context, c identityChange) {
		select {
		case deletedApps <- c:
		case <-ctx.Done():
		}
	}
	env.Go(func(ctx context.Context) {
		followIdentity(ctx, js, idx, homes, log, identityLoaded, &mirrored, announce, forgetter.forget, appDeleted)
	})
	if cfg.SoDWatchEvery > 0 {
		// people holding both roles of a pair (commands/sodwatch.go)
		env.Go(func(ctx context.Context) { svc.WatchSeparation(ctx, loadedCh, cfg.SoDWatchEvery) })
	}
	env.Go(func(ctx context.Context) {
		for _, c := range []chan struct{}{storeLoaded, identityLoaded} {
			select {
			case <-ctx.Done():
				return
			case <-c:
			}
		}
		loaded.Store(true)
		close(loadedCh)
	})

	auth := server.NewCallerAuth(identityVerifier{c: identityv1.NewCallerServiceClient(conn), admins: adminauth.New(conn, nil)})
	auth.Share = env.Instances()
	auth.Denied = svc.AuditCallerDenied
	return &module.Component{
		Register: func(g grpc.ServiceRegistrar) {
			server.New(svc).WithResponseSigner(respsign.Remote(conn)).Register(g)
			server.RegisterReplica(g, svc)
		},
		Auth: loadingGate{auth: auth, loaded: &loaded},
		Ready: func(ctx context.Context) error {
			if !loaded.Load() {
				return errLoading
			}
			return db.PingContext(ctx)
		},
		Value: &Handle{Service: svc, Index: idx, DB: db, Loaded: loadedCh,
			LoadTime: func() time.Duration { return time.Duration(loadTime.Load()) }, mirrored: &mirrored},
	}, nil
}

// DecisionGeneration implements adminauth.LocalDecisions: identity's
// decision cache, in the same process, reuses an answer only while the
// index has not changed.
func (h *Handle) DecisionGeneration() uint64 { return h.Index.Generation() }

var _ adminauth.LocalDecisions = (*Handle)(nil)

// loadingGate refuses calls (UNAVAILABLE) until the index is loaded.
type loadingGate struct {
	auth   *server.CallerAuth
	loaded *atomic.Bool
}

func (g loadingGate) AuthenticateCaller(ctx context.Context, method string) (context.Context, error) {
	ctx, err := g.auth.AuthenticateCaller(ctx, method)
	if err == nil && !g.loaded.Load() && !isHealth(method) {
		// refused after all: the slot of the caller's concurrency limit
		// the inner check took is given back (review sec27b H1)
		grpcx.EndCall(ctx)
		return nil, errLoading
	}
	return ctx, err
}

func isHealth(m string) bool {
	return len(m) > 17 && m[:17] == "/grpc.health.v1.H"
}

// followIdentity mirrors identity's org tree and group members from the
// CHANGES stream, from its start (an ordered consumer: in order, no state on
// the server); loaded is closed once the events present at the start are
// applied. It retries until the stream exists. Once loaded, a change that
// may take something away from an administrator is recorded in mirrored
// (before the index changes) and announced (after). homes (nil: a single
// centre) place other centres' subtrees (replica_parents.go). forget (nil:
// none) is handed the subject of a user.deleted or group.deleted once the
// mirror has applied it, before the announcement: its grants go too
// (forget.go); appDeleted (nil: none) the change of an app.deleted: the
// application's model goes (forgetApp).
func followIdentity(ctx context.Context, js jetstream.JetStream, idx *index.Index, homes *centre.Homes, log *zap.Logger, loaded chan struct{},
	mirrored *atomic.Int64, announce func(seq int64), forget func(ctx context.Context, sub authz.Subject, why forgetCause),
	appDeleted func(context.Context, identityChange)) {
	var once atomic.Bool
	markLoaded := func() {
		if once.CompareAndSwap(false, true) {
			close(loaded)
		}
	}
	for delay := 200 * time.Millisecond; ctx.Err() == nil; delay = min(2*delay, 5*time.Second) {
		err := func() error {
			cons, err := js.OrderedConsumer(ctx, events.StreamChanges, jetstream.OrderedConsumerConfig{
				FilterSubjects: identitySubjects, DeliverPolicy: jetstream.DeliverAllPolicy})
			if err != nil {
				return err
			}
			info, err := cons.Info(ctx)
			if err != nil {
				return err
			}
			if info.NumPending == 0 {
				markLoaded()
			}
			done := make(chan struct{})
			places := newReplicaParents(homes) // the consumer reads from the start
			cc, err := cons.Consume(func(m jetstream.Msg) {
				md, mdErr := m.Metadata()
				if isIdentitySubject(m.Subject()) {
					if c, ok := parseIdentityEvent(m.Data()); ok {
						places.place(m.Subject(), &c)
						tell := mdErr == nil && once.Load() && c.narrows()
						if tell {
							mirrored.Store(int64(md.Sequence.Stream))
						}
						c.apply(idx)
						if sub, ok := c.deletedSubject(); ok && forget != nil {
							forget(ctx, sub, forgetCause{event: c.entity + "." + c.op, actor: c.actor})
						}
						if tell {
							announce(int64(md.Sequence.Stream))
						}
						if c.deletedApp() != "" && appDeleted != nil {
							appDeleted(ctx, c)
						}
					}
				}
				if mdErr == nil && md.NumPending == 0 {
					markLoaded()
				}
			}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrNoHeartbeat) {
					log.Debug("identity changes consumer interrupted", zap.Error(err))
				}
			}))
			if err != nil {
				return err
			}
			defer cc.Stop()
			select {
			case <-ctx.Done():
			case <-done:
			}
			return nil
		}()
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("identity changes not followed yet, retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// forgetApp removes the model of the application c deleted (ForgetApp),
// as the administrator who deleted it; a failure is logged (the
// application's roles then grant nothing anyway: it can no longer call).
func forgetApp(ctx context.Context, svc *commands.Service, log *zap.Logger, c identityChange) {
	ctx = caller.WithActor(ctx, c.actor)
	rev, n, err := svc.ForgetApp(ctx, c.deletedApp())
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("the model of a deleted application not removed", zap.String("app", c.deletedApp()), zap.Error(err))
		}
		return
	}
	if n > 0 {
		log.Info("removed the model of a deleted application", zap.String("app", c.deletedApp()), zap.Int("changes", n),
			zap.Int64("revision", rev))
	}
}
