// Package component registers the sync component as a UIAS module: its
// config section (the centre's name, level, parent and home subtrees), its
// needs (SQL, NATS, identity's client for administrators) and how it
// starts: the applier of the centre's links and the gRPC service.
package component

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/store"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/server"
	"github.com/uias/uias/services/sync/sqlstore"
)

// Name is the sync component's name (target, config key, etcd name).
const Name = "sync"

// Handle is what a running sync component exposes to the process owner
// (tests and benchmarks): module.Process.Value("sync").
type Handle struct {
	Store   *sqlstore.Store
	DB      *store.DB
	Applier *applier.Applier // nil on a single centre
	// Provision is the provisioning store and engine.
	Provision *Provisioning
}

// Module is the sync component's registration.
func Module() module.Module {
	return module.Module{
		Name:            Name,
		Config:          func() config.Section { return Defaults() },
		SQL:             true,
		NATS:            true,
		Uses:            []string{"identity"},
		Calls:           []string{"authz"},
		REST:            rest,
		OpenAPI:         syncOpenAPI,
		OpenAPISecurity: map[string][]string{"SyncAdminService": module.AdminCredentials, "SyncProvisioningService": module.AdminCredentials},
		Init:            start,
	}
}

func rest(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	if err := syncv1.RegisterSyncAdminServiceHandlerClient(ctx, mux, syncv1.NewSyncAdminServiceClient(conn)); err != nil {
		return err
	}
	return provisionREST(ctx, mux, conn)
}

// Links are the links a centre applies: its own CHANGES, and its parent's
// global data (level 2) or each peer's subtrees (level 1).
func (c *Config) Links() []applier.Link {
	if c.Centre == "" {
		return nil
	}
	links := []applier.Link{applier.LocalLink(c.Centre)}
	if c.Level == 2 {
		return append(links, applier.PeerLink(c.Parent, applier.Down))
	}
	for _, p := range c.Peers {
		links = append(links, applier.PeerLink(p.Name, applier.Up))
	}
	return links
}

func start(ctx context.Context, env *module.Env) (*module.Component, error) {
	cfg := env.Section().(*Config)
	db, err := env.MigratedSQL(ctx, sqlstore.Migrate)
	if err != nil {
		return nil, err
	}
	st := sqlstore.New(db)
	idc, err := env.Client("identity")
	if err != nil {
		return nil, err
	}
	_, js, err := env.NATS()
	if err != nil {
		return nil, err
	}
	// the audit records of administrators' changes, kept with them
	relay := env.Relay(db, js)
	var ap *applier.Applier
	if links := cfg.Links(); len(links) > 0 {
		azc, err := env.Client("authz")
		if err != nil {
			return nil, err
		}
		// Peers' identity changes go into this centre's identity
		// (ReplicaService), so it logs their people in; their authz
		// changes into its authz (AuthzReplicaService), so it checks
		// their permissions. authz first: identity then judges the
		// batch's memberships and moves for separation of duty with the
		// batch's grants (trial10 H3).
		ap = applier.New(js, st, links, applier.Options{Batch: cfg.Batch, Retry: cfg.Retry, SourceRetry: cfg.SourceRetry,
			Logger: env.Log.Named("applier"), Metrics: env.Metrics,
			Targets: []applier.Target{authzReplicas(azc), identityReplicas(idc)}})
		env.Go(ap.Run)
	}
	admins, err := adminauth.FromEnv(env)
	if err != nil {
		return nil, err
	}
	prov, err := startProvision(env, cfg, db, relay, idc)
	if err != nil {
		return nil, err
	}
	register := server.New(cfg.CentreHomes(), cfg.HomeSubtrees, st, ap, relay.Kick).Register
	return &module.Component{
		Register: func(g grpc.ServiceRegistrar) { register(g); prov.server.Register(g) },
		Auth:     server.CallerAuth(admins),
		Ready:    db.PingContext,
		Value:    &Handle{Store: st, DB: db, Applier: ap, Provision: prov},
	}, nil
}

// Settings returns the sync section of cfg (nil if cfg has none).
func Settings(cfg *config.Config) *Config {
	c, _ := cfg.Section(Name).(*Config)
	return c
}
