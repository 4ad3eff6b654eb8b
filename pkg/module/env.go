package module

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/giveway"
	"github.com/uias/uias/pkg/store"
)

// Env is what a module's Init gets from the process: its logger, settings
// and metrics registry, and on demand its SQL store, NATS, and the gRPC
// clients of the components it uses.
type Env struct {
	// Name is the module's name.
	Name string
	// Log is the process logger named after the module.
	Log *zap.Logger
	// Config is the whole process configuration (platform settings and
	// every section); use Section for the module's own.
	Config *config.Config
	// Metrics is the process's Prometheus registry.
	Metrics *prometheus.Registry
	// Out is the process's standard output, for one-time notices meant for
	// the operator at the terminal (never for secrets of users).
	Out io.Writer

	p   *Process
	mod *Module
}

// Section returns the module's config section (nil if it declares none).
func (e *Env) Section() config.Section { return e.Config.Section(e.Name) }

// Context is done when the process stops; background work started with Go
// gets it too.
func (e *Env) Context() context.Context { return e.p.runCtx }

// Go runs fn in the background until the process stops; Stop waits for it
// (before OnStop functions run).
func (e *Env) Go(fn func(ctx context.Context)) {
	e.p.wg.Add(1)
	go func() {
		defer e.p.wg.Done()
		fn(e.p.runCtx)
	}()
}

// OnStop runs fn when the process stops, after the servers and background
// work have stopped, in reverse order of registration.
func (e *Env) OnStop(fn func(ctx context.Context) error) { e.p.onStop(fn) }

// Runs reports whether module name runs in this process.
func (e *Env) Runs(name string) bool { return e.p.runs(name) }

// Local returns the Component.Value of module name when it runs in this
// process and has started (nil before, or when it runs elsewhere): a
// shortcut one component may offer others of the same process (authz's
// decision generation for pkg/adminauth's cache). Safe at any time.
func (e *Env) Local(name string) any {
	v, _ := e.p.values.Load(name)
	return v
}

// Modules returns every registered module (running here or not), e.g. for
// the edge to register their REST handlers.
func (e *Env) Modules() []*Module { return e.p.reg.Modules() }

// Discovered lists the components that have at least one replica
// registered in etcd now (discovery etcd), sorted; with in-process
// discovery it returns nil. The edge uses it to tell which components are
// deployed behind it.
func (e *Env) Discovered(ctx context.Context) ([]string, error) {
	if e.p.etcd == nil {
		return nil, nil
	}
	return discovery.Components(ctx, e.p.etcd)
}

// Instances returns the number of instances of the module serving now
// (registered in etcd, followed by a watch; with in-process discovery 1):
// what shares an application's rate and concurrency limits among them.
func (e *Env) Instances() func() int {
	if e.p.etcd == nil {
		return func() int { return 1 }
	}
	return discovery.WatchInstances(e.p.runCtx, e.p.etcd, e.Name, e.Log).Count
}

// TrustedProxies are the parsed trusted_proxies.
func (e *Env) TrustedProxies() []netip.Prefix { return slices.Clone(e.p.proxies) }

// SQL opens the module's SQL store (config db.*: one SQLite file per
// component under data_dir, or the shared PostgreSQL database). It is
// closed when the process stops. Run the module's migrations on it.
func (e *Env) SQL(ctx context.Context) (*store.DB, error) {
	if !e.mod.SQL {
		return nil, fmt.Errorf("module %q did not declare SQL", e.Name)
	}
	c := e.Config
	dsn, err := c.OpenDSN(e.Name) // with the password: never log it
	if err != nil {
		return nil, err
	}
	if c.DB.Driver == config.DriverSQLite {
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	db, err := store.Open(ctx, c.DB.Driver, dsn)
	if err != nil {
		return nil, err
	}
	if c.DB.Driver == config.DriverSQLite {
		// Component databases hold password hashes and sealed personal data.
		for _, f := range []string{dsn, dsn + "-wal", dsn + "-shm"} {
			_ = os.Chmod(f, 0o600)
		}
	}
	e.OnStop(func(context.Context) error { return db.Close() })
	return db, nil
}

// MigratedSQL is SQL with the module's migrations (migrate, e.g. its
// sqlstore.Migrate) run on the store; a failure of them names the module.
func (e *Env) MigratedSQL(ctx context.Context, migrate func(context.Context, *store.DB) error) (*store.DB, error) {
	db, err := e.SQL(ctx)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("%s migrations: %w", e.Name, err)
	}
	return db, nil
}

// Relay starts the relay of the module's events outbox in db to js
// (events.NewRelay, logged as "relay"), running until the process stops;
// opts (at most one) tunes it. Should the relay end with an error (it
// cannot run), the error is logged: the module's events then stay in the
// outbox.
func (e *Env) Relay(db *store.DB, js jetstream.JetStream, opts ...events.RelayOptions) *events.Relay {
	var o events.RelayOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.GiveWay == nil {
		o.GiveWay = e.GiveWay()
	}
	if len(o.Subjects) == 0 {
		// components sharing a database (PostgreSQL, or one SQLite file
		// set for all) share its outbox: each relays its own events
		// (what its NATS user may publish; review sec20 L6, sec21 L1)
		o.Subjects = OwnSubjects(e.Name)
	}
	log := e.Log.Named("relay")
	r := events.NewRelay(db, js, log, o)
	e.Go(func(ctx context.Context) {
		if err := r.Run(ctx); err != nil {
			log.Error("outbox relay stopped; events stay in the outbox until the process restarts", zap.Error(err))
		}
	})
	return r
}

// OwnSubjects are the subject prefixes of the events a component named
// name writes to its outbox: its changes and its audit records.
func OwnSubjects(name string) []string {
	return []string{"uias.changes." + name + ".", "uias.audit." + name + "."}
}

// GiveWay is the process's signal of logins waiting for a password hash
// worker (the identity component's hasher counts them into it): loops
// whose work can wait a few seconds without loss pause on it (Pause,
// bounded by giveway.DefaultMaxPause a round). The module's relay (Relay)
// already does. Nil (never pauses) in a Process built by hand in tests.
func (e *Env) GiveWay() *giveway.Signal { return e.p.giveWay }

// Subscribed ends sub when the process stops (OnStop), or returns err when
// the subscription failed:
//
//	if err := env.Subscribed(nc.Subscribe(subject, fn)); err != nil { ... }
func (e *Env) Subscribed(sub *nats.Subscription, err error) error {
	if err != nil {
		return err
	}
	e.OnStop(func(context.Context) error { return sub.Unsubscribe() })
	return nil
}

// NATS returns the process's NATS connection and JetStream context (the
// embedded server in monolithic mode, nats.url otherwise), shared by the
// modules of the process. The UIAS streams are ensured in the background:
// if NATS is down at start the process still serves.
func (e *Env) NATS() (*nats.Conn, jetstream.JetStream, error) {
	if !e.mod.NATS {
		return nil, nil, fmt.Errorf("module %q did not declare NATS", e.Name)
	}
	return e.p.natsConn()
}

// Client returns a connection to component name, which the module must
// declare in Uses or Calls (or be the edge): in-process when name runs in this
// process, else through etcd (etcd:///uias/<name>). The request id,
// deadline and the origin of the call (client address, caller) travel with
// every call. The connection is lazy and closed when the process stops.
func (e *Env) Client(name string) (grpc.ClientConnInterface, error) {
	if !slices.Contains(e.p.reg.uses(e.mod), name) && !slices.Contains(e.mod.Calls, name) {
		return nil, fmt.Errorf("module %q asks for the client of %q without declaring it in Uses", e.Name, name)
	}
	return e.p.client(name)
}

// natsConn starts the embedded server (once) or connects to nats.url.
func (p *Process) natsConn() (*nats.Conn, jetstream.JetStream, error) {
	p.natsOnce.Do(func() { p.nc, p.js, p.natsErr = p.connectNATS() })
	return p.nc, p.js, p.natsErr
}

// connectNATS starts the embedded server, which takes no network
// connections (this process connects in memory), or connects to nats.url
// with the process's credentials.
func (p *Process) connectNATS() (*nats.Conn, jetstream.JetStream, error) {
	reconnect := []nats.Option{nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.ReconnectWait(500 * time.Millisecond)}
	if p.cfg.NATS.URL == "" {
		if !p.cfg.NATS.Embedded {
			return nil, nil, errors.New("nats.url is not set")
		}
		ns, err := events.StartInProcessNATS(filepath.Join(p.cfg.DataDir, "nats"))
		if err != nil {
			return nil, nil, err
		}
		p.onStop(func(context.Context) error { ns.Shutdown(); ns.WaitForShutdown(); return nil })
		p.natsOpts = []nats.Option{nats.InProcessServer(ns), nats.Name("uias-" + p.cfg.Target)}
	} else {
		opts, err := NATSOptions(p.cfg.NATS, p.cfg.Target)
		if err != nil {
			return nil, nil, err
		}
		p.natsOpts = opts
	}
	log := p.log.Named("nats")
	url := p.cfg.Redacted().NATS.URL // no credentials in logs
	notes := []nats.Option{
		nats.ConnectHandler(func(*nats.Conn) { log.Info("NATS connected", zap.String("url", url)) }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("NATS connected again", zap.String("url", url)) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost; reconnecting (events wait in the outbox meanwhile)", zap.String("url", url), zap.Error(err))
			}
		}),
	}
	nc, err := nats.Connect(p.cfg.NATS.URL, append(append(slices.Clone(p.natsOpts), reconnect...), notes...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect NATS: %w", err)
	}
	if p.cfg.NATS.URL != "" && !nc.IsConnected() {
		log.Warn("NATS unreachable: serving without it and retrying; events wait in the outbox until it answers",
			zap.String("url", url))
	}
	p.onStop(func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, fmt.Errorf("JetStream: %w", err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for delay := 200 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
			sctx, c := context.WithTimeout(p.runCtx, 5*time.Second)
			err := events.EnsureStreams(sctx, js)
			c()
			if err == nil || p.runCtx.Err() != nil {
				return
			}
			if errors.Is(err, events.ErrStreamsNotAllowed) {
				// Not retried quickly: an operator has to act.
				delay = max(delay, time.Minute)
			}
			log.Warn("JetStream streams not ready, retrying", zap.Error(err))
			select {
			case <-p.runCtx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	return nc, js, nil
}

// conns caches the client connections of a process.
type conns struct {
	mu     sync.Mutex
	remote map[string]*grpc.ClientConn // components running elsewhere
}
