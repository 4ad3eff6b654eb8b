// Package app is the UIAS process: the registry of every component, and
// Start, which runs the components of a target (all of them with embedded
// NATS + SQLite, or some of them against etcd, NATS and PostgreSQL). The
// serve command, the benchmarks and the end-to-end tests all start
// processes through it.
package app

import (
	"context"
	"flag"
	"io"
	"maps"

	"go.uber.org/zap"

	"github.com/uias/uias/gateway"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/store"
	auditcomponent "github.com/uias/uias/services/audit/component"
	authzcomponent "github.com/uias/uias/services/authz/component"
	"github.com/uias/uias/services/identity"
	identitycomponent "github.com/uias/uias/services/identity/component"
	synccomponent "github.com/uias/uias/services/sync/component"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// Registry returns the registry of every UIAS component. Adding a
// component is one line here (see docs/adr/0002-component-modules.md).
func Registry() *module.Registry {
	r := &module.Registry{}
	r.Register(identitycomponent.Module())
	r.Register(ticketcomponent.Module())
	r.Register(auditcomponent.Module())
	r.Register(authzcomponent.Module())
	r.Register(synccomponent.Module())
	r.Register(gateway.Module())
	return r
}

// DefaultConfig is the default configuration with every component's section.
func DefaultConfig() config.Config { return config.Default(Registry().Sections()...) }

// LoadConfig loads the configuration with every component's section (see
// config.Load).
func LoadConfig(path string, env func(string) (string, bool), fs *flag.FlagSet, args []string) (config.Config, error) {
	return config.Load(path, env, fs, args, Registry().Sections()...)
}

// Options are what Start needs besides the config.
type Options struct {
	Logger *zap.Logger
	// Out receives the one-time bootstrap password notice (stdout).
	Out io.Writer
	// Registry is the set of components; nil means Registry(). Tests add
	// their own components to it.
	Registry *module.Registry
	// BootstrapPassword, when set, replaces identity.BootstrapPassword
	// (UIAS_BOOTSTRAP_PASSWORD) of cfg: the first administrator's password
	// on an empty database.
	BootstrapPassword string
	// NoAccessLog turns off the access records of API calls (benchmarks
	// measuring what they cost; see module.Options).
	NoAccessLog bool
}

// App is a running process.
type App struct {
	*module.Process

	// Identity is the identity service when this process runs it.
	Identity *identity.Service
	// Relay is the identity outbox relay when this process runs identity.
	Relay *events.Relay
	// DB is the identity database when this process runs identity.
	DB *store.DB
}

// Start brings up the components of cfg.Target and returns once they listen.
func Start(ctx context.Context, cfg config.Config, o Options) (*App, error) {
	reg := o.Registry
	if reg == nil {
		reg = Registry()
	}
	if idc := identitycomponent.Settings(&cfg); idc != nil && o.BootstrapPassword != "" {
		c := *idc
		c.BootstrapPassword = o.BootstrapPassword
		sections := maps.Clone(cfg.Sections)
		sections[identitycomponent.Name] = &c
		cfg.Sections = sections
	}
	p, err := module.Start(ctx, reg, cfg, module.Options{Logger: o.Logger, Out: o.Out, NoAccessLog: o.NoAccessLog})
	if err != nil {
		return nil, err
	}
	a := &App{Process: p}
	if h, ok := p.Value(identitycomponent.Name).(*identitycomponent.Handle); ok {
		a.Identity, a.Relay, a.DB = h.Service, h.Relay, h.DB
	}
	return a, nil
}
