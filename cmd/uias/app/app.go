// Package app wires UIAS components into a running process: every component
// at once (target all, embedded NATS + SQLite, in-process discovery) or one
// component (identity, gateway) against etcd, NATS and PostgreSQL. The serve
// command and the end-to-end tests both start processes through Start.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/uias/uias/gateway"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/discovery"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/sched"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/server"
	"github.com/uias/uias/services/identity/sqlstore"
)

// Options are what Start needs besides the config.
type Options struct {
	Logger *zap.Logger
	// Out receives the one-time bootstrap password notice (stdout).
	Out io.Writer
	// BootstrapPassword is the first administrator's password (from
	// UIAS_BOOTSTRAP_PASSWORD); empty generates one and prints it once.
	BootstrapPassword string
}

// App is a running process.
type App struct {
	log    *zap.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// before run while the servers still run (HTTP shutdown, etcd
	// deregistration); closers run after they stop (connections, storage).
	before   []func(context.Context) error
	closers  []func(context.Context) error
	grpcAddr string
	httpAddr string
	natsURL  string
	health   *health.Server

	// Identity is the identity service when this process runs it.
	Identity *identity.Service
	// Relay is the outbox relay when this process runs identity.
	Relay *events.Relay
	// DB is the identity database when this process runs identity.
	DB *store.DB
}

// GRPCAddr is the address the gRPC server listens on ("" if none).
func (a *App) GRPCAddr() string { return a.grpcAddr }

// HTTPAddr is the address the REST edge listens on ("" if none).
func (a *App) HTTPAddr() string { return a.httpAddr }

// NATSURL is the NATS server in use (embedded or configured).
func (a *App) NATSURL() string { return a.natsURL }

// Start brings up the components of cfg.Target and returns once they listen.
func Start(ctx context.Context, cfg config.Config, o Options) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a := &App{log: o.Logger, cancel: cancel}
	defer func() {
		if err != nil {
			_ = a.Stop(context.Background())
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	proxies, err := prefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	serverTLS, clientTLS, err := loadTLS(cfg)
	if err != nil {
		return nil, err
	}
	// Internal gRPC hops use TLS whenever the listeners do.
	dialCreds := insecure.NewCredentials()
	if clientTLS != nil {
		dialCreds = credentials.NewTLS(clientTLS)
	}

	var etcd *clientv3.Client
	if cfg.Target != "all" {
		etcd, err = clientv3.New(clientv3.Config{Endpoints: cfg.Etcd.Endpoints, DialTimeout: cfg.Etcd.DialTimeout, Logger: zap.NewNop()})
		if err != nil {
			return nil, fmt.Errorf("connect etcd: %w", err)
		}
		a.closers = append(a.closers, func(context.Context) error { return etcd.Close() })
	}

	var identityConn *grpc.ClientConn
	if cfg.Target == "all" || cfg.Target == "identity" {
		if err := a.startIdentity(ctx, runCtx, cfg, o, reg, proxies, etcd, serverTLS); err != nil {
			return nil, err
		}
		identityConn, err = discovery.DialDirect(a.grpcAddr, grpc.WithTransportCredentials(dialCreds),
			grpc.WithChainUnaryInterceptor(grpcx.UnaryClientRequestID()))
		if err != nil {
			return nil, err
		}
	}
	if cfg.Target == "all" || cfg.Target == "gateway" {
		if identityConn == nil {
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			identityConn, err = discovery.DialEtcd(dctx, etcd, "identity", grpc.WithTransportCredentials(dialCreds),
				grpc.WithChainUnaryInterceptor(grpcx.UnaryClientRequestID()))
			dcancel()
			if err != nil {
				return nil, fmt.Errorf("dial identity through etcd: %w", err)
			}
		}
		conn := identityConn
		a.closers = append(a.closers, func(context.Context) error { return conn.Close() })
		if err := a.startGateway(ctx, cfg, o, reg, proxies, conn, serverTLS); err != nil {
			return nil, err
		}
	} else if identityConn != nil {
		_ = identityConn.Close()
	}
	return a, nil
}

func (a *App) startIdentity(ctx, runCtx context.Context, cfg config.Config, o Options, reg *prometheus.Registry,
	proxies []netip.Prefix, etcd *clientv3.Client, serverTLS *tls.Config) error {
	log := o.Logger.Named("identity")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// NATS: embedded in monolithic mode unless a URL is given.
	natsURL := cfg.NATS.URL
	if natsURL == "" {
		ns, err := events.StartEmbeddedNATS(filepath.Join(cfg.DataDir, "nats"), "127.0.0.1", -1)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, func(context.Context) error { ns.Shutdown(); ns.WaitForShutdown(); return nil })
		natsURL = ns.ClientURL()
	}
	a.natsURL = natsURL
	nc, err := nats.Connect(natsURL, nats.Name("uias-identity"), nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		return fmt.Errorf("connect NATS: %w", err)
	}
	a.closers = append(a.closers, func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	// Streams are ensured in the background: if NATS is down at start,
	// identity still serves and the outbox holds events until it is back.
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for delay := 200 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
			sctx, c := context.WithTimeout(runCtx, 5*time.Second)
			err := events.EnsureStreams(sctx, js)
			c()
			if err == nil || runCtx.Err() != nil {
				return
			}
			log.Warn("JetStream streams not ready, retrying", zap.Error(err))
			select {
			case <-runCtx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()

	driver, dsn := cfg.DB.Driver, cfg.DB.DSN
	if driver == "" {
		driver = "sqlite"
	}
	if driver == "sqlite" && dsn == "" {
		dsn = filepath.Join(cfg.DataDir, "identity.db")
	}
	db, err := store.Open(ctx, driver, dsn)
	if err != nil {
		return err
	}
	a.DB = db
	if driver == "sqlite" {
		// The database holds password hashes and sealed personal data.
		for _, f := range []string{dsn, dsn + "-wal", dsn + "-shm"} {
			_ = os.Chmod(f, 0o600)
		}
	}
	a.closers = append(a.closers, func(context.Context) error { return db.Close() })
	if err := sqlstore.Migrate(ctx, db); err != nil {
		return fmt.Errorf("identity migrations: %w", err)
	}
	keyFile := cfg.Identity.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "keyring.json")
	}
	keys, active, err := crypto.LoadOrCreateKeyFile(keyFile)
	if err != nil {
		return fmt.Errorf("key ring: %w", err)
	}
	sealer, err := crypto.NewSealer(keys, active)
	if err != nil {
		return fmt.Errorf("key ring: %w", err)
	}
	hasher := crypto.NewHasher(crypto.HasherConfig{Params: cfg.Identity.Argon2, Workers: cfg.Identity.HashWorkers, Queue: cfg.Identity.HashQueue})
	log.Info("password hashing", zap.String("argon2id", crypto.Argon2Implementation),
		zap.Uint32("memory_kib", hasher.Params().MemoryKiB), zap.Int("workers", hasher.Workers()), zap.Int("queue", hasher.QueueLen()))
	setSchedPolicy(cfg.Identity.SchedPolicy, log)

	relay := events.NewRelay(db, js, log.Named("relay"), events.RelayOptions{})
	a.Relay = relay
	a.wg.Add(1)
	go func() { defer a.wg.Done(); _ = relay.Run(runCtx) }()

	svc, err := identity.New(identity.Deps{Store: sqlstore.New(db), Hasher: hasher, Sealer: sealer, Logger: log,
		Kick: relay.Kick, Config: identity.Config{Policy: policyOf(cfg), AdminTokenTTL: cfg.Admin.TokenTTL,
			UserCacheTTL: userCacheTTL(cfg.Identity.UserCacheTTL)}})
	if err != nil {
		return err
	}
	a.Identity = svc
	// Changes made through other instances drop users from this one's
	// caches as soon as their CHANGES events arrive (the cache TTL covers a
	// NATS outage). Own events arrive too; dropping again is harmless.
	sub, err := nc.Subscribe(identity.UserChangesSubject, func(m *nats.Msg) { svc.ForgetChangedUser(m.Data) })
	if err != nil {
		return fmt.Errorf("subscribe to user changes: %w", err)
	}
	a.closers = append(a.closers, func(context.Context) error { return sub.Unsubscribe() })
	created, generated, err := svc.Bootstrap(ctx, o.BootstrapPassword)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if created {
		log.Info("created root org and system administrator \"admin\"")
		if generated != "" {
			fmt.Fprintf(o.Out, "\nUIAS first start: system administrator login \"admin\", password: %s\n"+
				"This password is shown once. Set UIAS_BOOTSTRAP_PASSWORD to choose it instead.\n\n", generated)
		}
	}

	gs, health := grpcx.NewServer(grpcx.ServerOptions{Logger: log, Registry: reg, Auth: server.CallerAuth{Svc: svc},
		TrustedProxies: proxies, TLS: serverTLS, Admit: server.Admit(svc)})
	server.New(svc).Register(gs)
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC %s: %w", cfg.GRPCAddr, err)
	}
	a.grpcAddr = lis.Addr().String()
	a.health = health
	ready := func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return db.PingContext(pctx)
	}
	// Readiness follows storage: health turns NOT_SERVING while the
	// database does not answer, so the gateway's /readyz and Kubernetes
	// probes take the instance out of rotation.
	setHealth := func() {
		st := healthpb.HealthCheckResponse_SERVING
		if err := ready(runCtx); err != nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, name := range []string{"", "uias.identity.v1.AuthService", "uias.identity.v1.AdminService"} {
			health.SetServingStatus(name, st)
		}
	}
	setHealth()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				setHealth()
			}
		}
	}()
	if cfg.Target == config.TargetIdentity && cfg.HTTPAddr != "" {
		// A lone identity process still exposes metrics and probes.
		if err := a.serveHTTP(cfg.HTTPAddr, opsHandler(reg, ready), serverTLS); err != nil {
			return err
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := grpcx.Serve(runCtx, gs, lis, 10*time.Second); err != nil {
			log.Error("gRPC server stopped", zap.Error(err))
		}
	}()
	if etcd != nil {
		adv := cfg.AdvertiseAddr
		if adv == "" || (adv == cfg.GRPCAddr && strings.HasSuffix(adv, ":0")) {
			adv = a.grpcAddr // the real address when configured with port 0
		}
		unreg, err := discovery.Register(ctx, etcd, "identity", adv, int64(cfg.Etcd.LeaseTTL), log)
		if err != nil {
			return fmt.Errorf("register in etcd: %w", err)
		}
		// Deregister first on stop so callers move away before we go.
		a.before = append(a.before, unreg)
	}
	return nil
}

func (a *App) startGateway(ctx context.Context, cfg config.Config, o Options, reg *prometheus.Registry,
	proxies []netip.Prefix, conn *grpc.ClientConn, serverTLS *tls.Config) error {
	h, err := gateway.New(ctx, gateway.Options{Logger: o.Logger.Named("gateway"), Identity: conn, Registry: reg,
		TrustedProxies: proxies})
	if err != nil {
		return err
	}
	return a.serveHTTP(cfg.HTTPAddr, h, serverTLS)
}

// serveHTTP listens on addr and serves h (with TLS when given) until Stop.
func (a *App) serveHTTP(addr string, h http.Handler, serverTLS *tls.Config) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen HTTP %s: %w", addr, err)
	}
	a.httpAddr = lis.Addr().String()
	srv := gateway.NewHTTPServer(a.httpAddr, h)
	serve := srv.Serve
	if serverTLS != nil {
		srv.TLSConfig = serverTLS
		serve = func(l net.Listener) error { return srv.ServeTLS(l, "", "") }
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("HTTP server stopped", zap.Error(err))
		}
	}()
	a.before = append(a.before, srv.Shutdown)
	return nil
}

// Stop shuts everything down gracefully: HTTP and discovery first, then the
// gRPC server and relay, then connections, storage and NATS (in reverse
// order of start).
func (a *App) Stop(ctx context.Context) error {
	var errs []error
	if a.health != nil {
		a.health.Shutdown() // probes see NOT_SERVING while we drain
	}
	for _, c := range a.before {
		errs = append(errs, c(ctx))
	}
	a.cancel()
	a.wg.Wait()
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i](ctx))
	}
	a.before, a.closers = nil, nil
	return errors.Join(errs...)
}

func prefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", c, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// setSchedPolicy applies identity.sched_policy to the whole process. It is
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

func policyOf(cfg config.Config) identity.Policy {
	p := cfg.Policy
	return identity.Policy{MinLength: p.MinLength, RequireClasses: p.RequireClasses, History: p.History,
		MaxFailures: p.MaxFailures, LockDuration: time.Duration(p.LockMinutes) * time.Minute,
		MaxAge: time.Duration(p.MaxAgeDays) * 24 * time.Hour}
}

// loadTLS builds the server TLS config (TLS 1.2 at least) from the
// configured certificate, and the client config internal hops use to dial
// it: trusting tls.client_ca_file when set (which also verifies client
// certificates), else the system roots plus our own certificate.
func loadTLS(cfg config.Config) (server, client *tls.Config, err error) {
	if cfg.TLS.CertFile == "" {
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.TLS.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("TLS client CA %s: no PEM certificates found", cfg.TLS.ClientCAFile)
		}
		server.ClientCAs, server.ClientAuth = pool, tls.VerifyClientCertIfGiven
		roots = pool
	} else {
		for _, der := range cert.Certificate {
			if c, err := x509.ParseCertificate(der); err == nil {
				roots.AddCert(c)
			}
		}
	}
	client = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{cert}}
	// Internal hops dial an etcd target ("uias/identity") or a wildcard
	// listen address, neither of which names the peer. UIAS components share
	// a certificate name: verify the peer against the first DNS name of our
	// own certificate (e.g. uias.internal) when it has one.
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil && len(leaf.DNSNames) > 0 {
		client.ServerName = leaf.DNSNames[0]
	}
	return server, client, nil
}

// opsHandler serves /metrics, /healthz and /readyz for a process without
// the REST edge.
func opsHandler(reg *prometheus.Registry, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			http.Error(w, "not ready: storage unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// userCacheTTL maps the config (0 = no cache) to identity.Config (0 = default, negative = none).
func userCacheTTL(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
