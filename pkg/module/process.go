package module

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/giveway"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/store"
)

// Options are what Start needs besides the registry and the config.
type Options struct {
	Logger *zap.Logger // nil: no logging
	// Out receives one-time notices for the operator (stdout); nil discards.
	Out io.Writer
	// NoAccessLog turns off the access records of API calls (see
	// accessLog); for benchmarks that measure what they cost.
	NoAccessLog bool
}

// Process is a running set of modules.
type Process struct {
	reg     *Registry
	cfg     config.Config
	log     *zap.Logger
	mods    []*Module
	proxies []netip.Prefix
	key     []byte // internal key (origin signatures), nil if none

	runCtx context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	before  []func(context.Context) error // run first on stop (HTTP, etcd deregistration)
	closers []func(context.Context) error // run last, in reverse

	comps map[string]*Component
	// giveWay counts the logins waiting for a hash worker, for the
	// background loops that give way to them (Env.GiveWay).
	giveWay *giveway.Signal
	// values: Component.Value of each started module, for Env.Local
	// (read by other modules at any time, hence apart from comps).
	values sync.Map
	// grpcSrv serves grpc_addr (with TLS when configured); inprocSrv, the
	// same services and interceptors without TLS, serves inproc, the
	// in-memory listener that in-process streams use. direct serves the
	// unary calls of in-process clients without the transport, with the
	// same services and interceptors (grpcx.Direct).
	grpcSrv   *grpc.Server
	inprocSrv *grpc.Server
	health    []*health.Server
	inproc    *grpcx.InprocListener
	direct    *grpcx.Direct
	grpcAddr  string
	httpAddr  string

	etcd      *clientv3.Client
	regs      []*discovery.Registration // etcd registrations (not ready until done)
	wantReg   bool                      // the process registers in etcd
	clientTLS *tls.Config
	conns     conns

	natsOnce sync.Once
	nc       *nats.Conn
	js       jetstream.JetStream
	natsErr  error
	// natsOpts are the client options of the process's connection (in
	// memory to the embedded server, or credentials for nats.url).
	natsOpts []nats.Option

	// access publishes the access records of the calls the process
	// serves (nil: none).
	access    atomic.Pointer[events.Publisher]
	accessOff atomic.Bool // SetAccessLog(false)
	// appMetrics count the calls the process serves per application.
	appMetrics *appMetrics
}

// GRPCAddr is the address the gRPC server listens on ("" if none).
func (p *Process) GRPCAddr() string { return p.grpcAddr }

// HTTPAddr is the address the HTTP server listens on ("" if none).
func (p *Process) HTTPAddr() string { return p.httpAddr }

// ConnectNATS opens a new connection to the process's NATS with the
// process's own options (credentials; in memory to the embedded server,
// which has no network listener) plus opts, for tests and tools that read
// the streams. The caller closes it. It fails when no module of the
// process uses NATS.
func (p *Process) ConnectNATS(opts ...nats.Option) (*nats.Conn, error) {
	if p.natsOpts == nil {
		return nil, errors.New("no module of this process uses NATS")
	}
	return nats.Connect(p.cfg.NATS.URL, append(slices.Clone(p.natsOpts), opts...)...)
}

// Modules returns the names of the running modules in start order.
func (p *Process) Modules() []string {
	out := make([]string, len(p.mods))
	for i, m := range p.mods {
		out[i] = m.Name
	}
	return out
}

// Value returns the Component.Value of running module name (nil if none).
func (p *Process) Value(name string) any {
	if c := p.comps[name]; c != nil {
		return c.Value
	}
	return nil
}

func (p *Process) runs(name string) bool {
	return slices.ContainsFunc(p.mods, func(m *Module) bool { return m.Name == name })
}

func (p *Process) onStop(fn func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closers = append(p.closers, fn)
}

func (p *Process) beforeStop(fn func(context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = append(p.before, fn)
}

// Start resolves cfg.Target against reg, starts the modules in dependency
// order and returns once every listener is up. On error, whatever started
// is stopped again.
func Start(ctx context.Context, reg *Registry, cfg config.Config, o Options) (_ *Process, err error) {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mods, err := reg.Resolve(cfg.Target)
	if err != nil {
		return nil, &config.FieldError{Field: "target", Msg: err.Error()}
	}
	var run config.Run
	for _, m := range mods {
		run.NATS = run.NATS || m.NATS
		run.HTTP = run.HTTP || m.Edge
		run.GRPC = run.GRPC || !m.Edge
	}
	run.Register = run.GRPC
	if err := cfg.ValidateRun(run); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p := &Process{reg: reg, cfg: cfg, log: o.Logger, mods: mods, runCtx: runCtx, cancel: cancel,
		comps: map[string]*Component{}, giveWay: giveway.New(0)}
	defer func() {
		if err != nil {
			_ = p.Stop(context.Background())
		}
	}()
	if p.proxies, err = cfg.TrustedProxyPrefixes(); err != nil {
		return nil, err
	}
	if p.key, err = internalKey(cfg); err != nil {
		return nil, err
	}
	serverTLS, clientTLS, err := LoadTLS(cfg, o.Logger.Named("tls"))
	if err != nil {
		return nil, err
	}
	p.clientTLS = clientTLS
	if err := checkPlaintext(o.Logger, cfg, run, serverTLS != nil); err != nil {
		return nil, err
	}
	if cfg.Discovery == config.DiscoveryEtcd {
		ec, err := EtcdConfig(cfg)
		if err != nil {
			return nil, err
		}
		p.etcd, err = clientv3.New(ec)
		if err != nil {
			return nil, fmt.Errorf("connect etcd: %w", err)
		}
		etcd := p.etcd
		p.onStop(func(context.Context) error { return etcd.Close() })
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.appMetrics = newAppMetrics(metrics, cfg.Metrics.MaxApps)

	// One gRPC server for every module of the process, with the in-process
	// listener that local clients use. Caller auth and admission are routed
	// to the module owning the called service.
	var router router
	if run.GRPC {
		so := grpcx.ServerOptions{Logger: o.Logger, Registry: metrics,
			Auth: &router, Admit: router.admit, OnBadRequest: router.badRequest, OnCall: p.accessRecord(&router),
			TrustedProxies: p.proxies, TLS: serverTLS, InternalKey: p.key,
			Reflection: cfg.ReflectionOn(), Keepalive: grpcx.Keepalive{
				MinPingInterval: cfg.GRPC.KeepaliveMinTime, MaxConnectionIdle: cfg.GRPC.MaxConnectionIdle,
				MaxConnectionAge: cfg.GRPC.MaxConnectionAge, MaxConnectionAgeGrace: cfg.GRPC.MaxConnectionAgeGrace}}
		var hs *health.Server
		p.grpcSrv, hs = grpcx.NewServer(so)
		p.health = append(p.health, hs)
		so.TLS, so.Reflection = nil, false
		p.inprocSrv, hs = grpcx.NewServer(so)
		p.health = append(p.health, hs)
		p.inproc = grpcx.NewInprocListener()
		// In-process clients: unary calls go direct, streams over the
		// in-memory listener (the connection is made at its first use).
		streams, err := grpc.NewClient("passthrough:///uias-inproc",
			grpc.WithContextDialer(p.inproc.Dial),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithChainUnaryInterceptor(grpcx.UnaryClientOrigin(nil)),
			grpc.WithChainStreamInterceptor(grpcx.StreamClientOrigin(nil)))
		if err != nil {
			return nil, fmt.Errorf("in-process client: %w", err)
		}
		p.onStop(func(context.Context) error { return streams.Close() })
		p.direct = grpcx.NewDirect(so, streams)
		healthpb.RegisterHealthServer(p.direct, hs)
	}

	for _, m := range mods {
		env := &Env{Name: m.Name, Log: o.Logger.Named(m.Name), Config: &p.cfg, Metrics: metrics, Out: o.Out, p: p, mod: m}
		c, err := m.Init(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", m.Name, err)
		}
		if c == nil {
			c = &Component{}
		}
		p.comps[m.Name] = c
		if c.Value != nil {
			p.values.Store(m.Name, c.Value)
		}
		if c.Register != nil {
			if p.grpcSrv == nil {
				return nil, fmt.Errorf("start %s: it registers gRPC services but is marked Edge", m.Name)
			}
			before := p.grpcSrv.GetServiceInfo()
			c.Register(registrars{p.grpcSrv, p.inprocSrv, p.direct})
			for svc := range p.grpcSrv.GetServiceInfo() {
				if _, ok := before[svc]; !ok {
					router.add(svc, m.Name, c)
				}
			}
		}
	}

	p.wantReg = cfg.Discovery == config.DiscoveryEtcd && len(router.modules()) > 0
	if p.grpcSrv != nil && run.NATS && !o.NoAccessLog {
		if err := p.startAccessLog(metrics); err != nil {
			return nil, err
		}
	}
	if p.grpcSrv != nil {
		if err := p.serveGRPC(ctx, &router); err != nil {
			return nil, err
		}
	}
	var edge http.Handler
	for _, m := range mods {
		if h := p.comps[m.Name].HTTP; h != nil {
			edge = h
		}
	}
	switch {
	case edge != nil:
		err = p.serveHTTP(cfg.HTTPAddr, edge, serverTLS)
	case cfg.HTTPAddr != "":
		// A process without the edge still exposes metrics and probes.
		err = p.serveHTTP(cfg.HTTPAddr, OpsHandler(metrics, cfg.MetricsOn(), p.Ready), serverTLS)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Discovery == config.DiscoveryEtcd && p.grpcAddr != "" {
		adv := cfg.AdvertiseAddr
		if adv == "" || (adv == cfg.GRPCAddr && strings.HasSuffix(adv, ":0")) {
			adv = p.grpcAddr // the real address when configured with port 0
		}
		// In the background: a process started while etcd is unreachable
		// serves its probes (not ready) and joins when etcd answers.
		for _, name := range router.modules() {
			reg, err := discovery.Keep(p.etcd, name, adv, int64(cfg.Etcd.LeaseTTL), cfg.Etcd.DialTimeout, o.Logger.Named(name))
			if err != nil {
				return nil, fmt.Errorf("register %s in etcd: %w", name, err)
			}
			p.mu.Lock()
			p.regs = append(p.regs, reg)
			p.mu.Unlock()
			// Start returns registered when etcd answers (within
			// etcd.dial_timeout), else not ready.
			select {
			case <-reg.FirstAttempt():
			case <-ctx.Done():
			}
			// Deregister first on stop so callers move away before we go.
			p.beforeStop(reg.Deregister)
		}
	}
	return p, nil
}

// HealthService is the name under which a process's standard gRPC health
// service reports the module name alone ("uias.module.identity"): SERVING
// while the module is ready. The service "" reports the whole process
// (every module ready).
func HealthService(name string) string { return "uias.module." + name }

// How often readiness is checked: until every module has been ready once,
// then after.
const (
	healthEveryAtStart = 100 * time.Millisecond
	healthEvery        = 2 * time.Second
)

// serveGRPC starts the gRPC server on grpc_addr and the in-process
// listener, and keeps the health service in step with the modules' Ready.
func (p *Process) serveGRPC(ctx context.Context, r *router) error {
	lis, err := net.Listen("tcp", p.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC %s: %w", p.cfg.GRPCAddr, err)
	}
	p.grpcAddr = lis.Addr().String()
	setHealth := func() bool {
		all := healthpb.HealthCheckResponse_SERVING
		states := map[string]healthpb.HealthCheckResponse_ServingStatus{} // by module
		for svc, name := range r.owner {
			st, ok := states[name]
			if !ok {
				st = healthpb.HealthCheckResponse_SERVING
				if err := p.ready(p.runCtx, name); err != nil {
					st = healthpb.HealthCheckResponse_NOT_SERVING
				}
				states[name] = st
			}
			if st != healthpb.HealthCheckResponse_SERVING {
				all = healthpb.HealthCheckResponse_NOT_SERVING
			}
			for _, h := range p.health {
				h.SetServingStatus(svc, st)
			}
		}
		for _, h := range p.health {
			// Each module by its own name too (HealthService): the
			// edge's /readyz names the one that is not ready, not every
			// module of the process ("" is the whole process).
			for name, st := range states {
				h.SetServingStatus(HealthService(name), st)
			}
			h.SetServingStatus("", all)
		}
		return all == healthpb.HealthCheckResponse_SERVING
	}
	// Readiness follows the modules (e.g. their storage): health turns
	// NOT_SERVING while one is not ready, so the edge's /readyz and
	// Kubernetes probes take the instance out of rotation. Until every
	// module has been ready once (authz loads its index in the
	// background), it is checked every 100 ms, so the process turns ready
	// as soon as it is; then every 2 s.
	served := setHealth()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			wait := healthEvery
			if !served {
				wait = healthEveryAtStart
			}
			select {
			case <-p.runCtx.Done():
				return
			case <-time.After(wait):
				if setHealth() {
					served = true
				}
			}
		}
	}()
	for _, s := range []struct {
		srv *grpc.Server
		lis net.Listener
	}{{p.grpcSrv, lis}, {p.inprocSrv, p.inproc}} {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := grpcx.Serve(p.runCtx, s.srv, s.lis, stopGrace); err != nil {
				p.log.Error("gRPC server stopped", zap.Error(err))
			}
		}()
	}
	// The direct channel stops with the servers: in-process calls made
	// from then on are answered UNAVAILABLE, and Stop waits for those
	// being served (within the same grace) before the stores close.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-p.runCtx.Done()
		grpcx.StopWithin(p.direct, stopGrace)
	}()
	_ = ctx
	return nil
}

// stopGrace bounds how long a stopping process waits for the calls it is
// serving (gRPC and direct) before it cancels them.
const stopGrace = 10 * time.Second

func (p *Process) ready(ctx context.Context, name string) error {
	if err := p.registered(); err != nil {
		return err
	}
	c := p.comps[name]
	if c == nil || c.Ready == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Ready(rctx)
}

// registered is nil once every etcd registration of the process is done.
func (p *Process) registered() error {
	p.mu.Lock()
	regs := p.regs
	p.mu.Unlock()
	if len(regs) == 0 && p.wantReg {
		return errors.New("not registered in etcd yet")
	}
	for _, r := range regs {
		if err := r.Ready(); err != nil {
			return err
		}
	}
	return nil
}

// Ready reports whether every module of the process is ready (and, with
// etcd discovery, registered).
func (p *Process) Ready(ctx context.Context) error {
	if err := p.registered(); err != nil {
		return notReady{what: "not registered in etcd yet (etcd does not answer, or the registration is being retried: see the log)", err: err}
	}
	var errs []error
	for _, m := range p.mods {
		if err := p.ready(ctx, m.Name); err != nil {
			errs = append(errs, notReady{what: m.Name + ": " + readyWords(err), err: err})
		}
	}
	return errors.Join(errs...)
}

// notReady is why a process is not ready: what says it in words fit for
// a caller of /readyz (never the cause's text: a driver's error may name
// hosts, files or users), err is the cause, for the log.
type notReady struct {
	what string
	err  error
}

func (e notReady) Error() string { return e.what + ": " + e.err.Error() }
func (e notReady) Unwrap() error { return e.err }

// readyWords says why a module is not ready: the caller-facing message of
// its error once classified (storage unavailable, an index loading, the
// ticket store unavailable), else that it is not ready.
func readyWords(err error) string {
	if e, ok := apierr.As(store.Classify(err)); ok && e.Message != "" {
		return e.Message
	}
	return "not ready (see its log)"
}

// NotReadyWords is err of Process.Ready in words for /readyz ("; "
// between the parts), never the causes' text.
func NotReadyWords(err error) string {
	var parts []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var nr notReady
		if errors.As(err, &nr) {
			parts = append(parts, nr.what)
			return
		}
		parts = append(parts, "a component is unavailable")
	}
	walk(err)
	return strings.Join(parts, "; ")
}

// serveHTTP listens on addr and serves h (with TLS when given) until Stop.
func (p *Process) serveHTTP(addr string, h http.Handler, serverTLS *tls.Config) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen HTTP %s: %w", addr, err)
	}
	p.httpAddr = lis.Addr().String()
	srv := NewHTTPServer(p.httpAddr, SecurityHeaders(h, p.proxies))
	// net/http's own messages as JSON lines like every other: a refused
	// TLS handshake (an expired or unknown client certificate, a
	// plain-HTTP request to the HTTPS port) at info, the client's fault,
	// which an operator helping someone whose certificate is refused looks
	// for; anything else (a handler's panic, an accept error) at warn.
	srv.ErrorLog = log.New(httpErrorLog{p.log.Named("http")}, "", 0)
	serve := srv.Serve
	if serverTLS != nil {
		edge, pool, check := edgeTLS(serverTLS)
		if pool != nil {
			srv.Handler = SecurityHeaders(verifyPeers(h, pool, check, time.Now, p.log.Named("http")), p.proxies)
			srv.ConnContext = peerConnContext
		}
		srv.TLSConfig = edge
		serve = func(l net.Listener) error { return srv.ServeTLS(l, "", "") }
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("HTTP server stopped", zap.Error(err))
		}
	}()
	p.beforeStop(srv.Shutdown)
	return nil
}

// httpErrorLog writes net/http's error log lines to a zap logger, TLS
// handshake errors at info, the rest at warn.
type httpErrorLog struct{ log *zap.Logger }

func (l httpErrorLog) Write(b []byte) (int, error) {
	msg := strings.TrimSpace(string(b))
	if strings.Contains(msg, "TLS handshake error") {
		l.log.Info(msg)
	} else {
		l.log.Warn(msg)
	}
	return len(b), nil
}

// NewHTTPServer returns an http.Server for h with conservative limits.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// registrars registers a component's services on each of its elements
// (the servers and the direct channel of the process), the same
// implementation on all.
type registrars []grpc.ServiceRegistrar

// RegisterService implements grpc.ServiceRegistrar.
func (rs registrars) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, r := range rs {
		r.RegisterService(desc, impl)
	}
}

// client returns the (cached) connection to component name: the direct
// in-process channel when it runs in this process (unary calls skip the
// gRPC transport; streams use the in-memory listener), else a connection
// through etcd.
func (p *Process) client(name string) (grpc.ClientConnInterface, error) {
	if p.runs(name) && p.direct != nil {
		return p.direct, nil
	}
	p.conns.mu.Lock()
	defer p.conns.mu.Unlock()
	if conn := p.conns.remote[name]; conn != nil {
		return conn, nil
	}
	if p.etcd == nil {
		return nil, fmt.Errorf("component %q does not run in this process and discovery is not etcd", name)
	}
	creds := insecure.NewCredentials()
	if p.clientTLS != nil {
		creds = credentials.NewTLS(p.clientTLS)
	}
	var extra []string
	if m := p.reg.Lookup(name); m != nil {
		extra = m.Retry
	}
	conn, err := discovery.DialEtcdLog(p.runCtx, p.etcd, name, p.log.Named("discovery"), grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(discovery.RetryServiceConfig(retryable(name, extra))),
		grpc.WithChainUnaryInterceptor(grpcx.UnaryClientOrigin(p.key)),
		grpc.WithChainStreamInterceptor(grpcx.StreamClientOrigin(p.key)))
	if err != nil {
		return nil, fmt.Errorf("dial %s through etcd: %w", name, err)
	}
	if p.conns.remote == nil {
		p.conns.remote = map[string]*grpc.ClientConn{}
	}
	p.conns.remote[name] = conn
	p.onStop(func(context.Context) error { return conn.Close() })
	return conn, nil
}

// Stop shuts everything down gracefully: HTTP and etcd registrations first,
// then the gRPC server and background work, then what modules registered
// with OnStop, connections, storage and NATS (in reverse order of start).
func (p *Process) Stop(ctx context.Context) error {
	var errs []error
	for _, h := range p.health {
		h.Shutdown() // probes see NOT_SERVING while we drain
	}
	p.mu.Lock()
	before := p.before
	p.before = nil
	p.mu.Unlock()
	for _, c := range before {
		errs = append(errs, c(ctx))
	}
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	closers := p.closers
	p.closers = nil
	p.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i](ctx))
	}
	return errors.Join(errs...)
}

// internalKey reads the key components sign the origin of their calls with
// (UIAS_INTERNAL_KEY, or the file internal_key_file).
func internalKey(cfg config.Config) ([]byte, error) {
	if cfg.InternalKey != "" {
		return []byte(cfg.InternalKey), nil
	}
	if cfg.InternalKeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.InternalKeyFile)
	if err != nil {
		return nil, fmt.Errorf("internal key: %w", err)
	}
	k := strings.TrimSpace(string(b))
	if len(k) < 16 {
		return nil, &config.FieldError{Field: "internal_key_file", Msg: "the key must be at least 16 characters"}
	}
	return []byte(k), nil
}

// router sends caller authentication, admission and bad-request reports of
// a call to the module that owns the called service.
type router struct {
	owner map[string]string // service -> module
	comp  map[string]*Component
}

func (r *router) add(service, module string, c *Component) {
	if r.owner == nil {
		r.owner, r.comp = map[string]string{}, map[string]*Component{}
	}
	r.owner[service], r.comp[service] = module, c
}

func (r *router) modules() []string {
	var out []string
	for _, m := range r.owner {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// ownerOf names the module owning the service of fullMethod ("" if none).
func (r *router) ownerOf(fullMethod string) string {
	svc, _, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return ""
	}
	return r.owner[svc]
}

func (r *router) lookup(fullMethod string) *Component {
	svc, _, ok := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	if !ok {
		return nil
	}
	return r.comp[svc]
}

// AuthenticateCaller implements grpcx.CallerAuth.
func (r *router) AuthenticateCaller(ctx context.Context, fullMethod string) (context.Context, error) {
	if c := r.lookup(fullMethod); c != nil && c.Auth != nil {
		return c.Auth.AuthenticateCaller(ctx, fullMethod)
	}
	return ctx, nil
}

// badRequest tells the owning module of a call refused as malformed.
func (r *router) badRequest(ctx context.Context, fullMethod string, err error) {
	if c := r.lookup(fullMethod); c != nil && c.OnBadRequest != nil {
		c.OnBadRequest(ctx, fullMethod, err)
	}
}

func (r *router) admit(fullMethod string) error {
	if c := r.lookup(fullMethod); c != nil && c.Admit != nil {
		return c.Admit(fullMethod)
	}
	return nil
}

// readPrefixes start the names of methods that only read.
var readPrefixes = []string{"Get", "List", "Prove", "Verify", "WhoAmI", "Match", "Check", "BatchCheck", "Explain", "Query"}

// retryable lists the methods of component name (services of the proto
// package uias.<name>.v1) that the edge may try again on another replica:
// reads, methods marked idempotent, and extra.
func retryable(name string, extra []string) []string {
	out := slices.Clone(extra)
	pkg := protoreflect.FullName("uias." + name + ".v1")
	protoregistry.GlobalFiles.RangeFilesByPackage(pkg, func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				if md.IsStreamingClient() || md.IsStreamingServer() {
					continue
				}
				full := "/" + string(sd.FullName()) + "/" + string(md.Name())
				ok := slices.ContainsFunc(readPrefixes, func(p string) bool { return strings.HasPrefix(string(md.Name()), p) })
				if o, _ := md.Options().(*descriptorpb.MethodOptions); o != nil &&
					o.GetIdempotencyLevel() != descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN {
					ok = true
				}
				if ok && !slices.Contains(out, full) {
					out = append(out, full)
				}
			}
		}
		return true
	})
	return out
}

// accessDrain bounds how long a stopping process keeps publishing the
// access records still queued.
const accessDrain = 3 * time.Second

// startAccessLog starts the publisher of the access records: every API call
// the process serves yields one record on AUDIT (uias.audit.<component>.access,
// pkg/audit.AccessEvent), queued in memory and published in batches of
// packs (up to events.MaxPack records per message) so that no call waits
// for NATS and a record costs NATS and the audit component a fraction of
// a message.
func (p *Process) startAccessLog(metrics prometheus.Registerer) error {
	_, js, err := p.natsConn()
	if err != nil {
		return err
	}
	pub := events.NewPublisher(js, events.PublisherOptions{Name: "access", Pack: events.MaxPack,
		Logger: p.log.Named("access"), Metrics: metrics})
	ctx, cancel := context.WithCancel(context.Background())
	go pub.Run(ctx, accessDrain)
	p.access.Store(pub)
	// Closers run after the servers stopped (every call is queued by
	// then) and, registered after the NATS connection, before it closes.
	p.onStop(func(context.Context) error {
		cancel()
		<-pub.Done()
		return nil
	})
	return nil
}

// SetAccessLog switches the access records of the calls this process
// serves on (the default, unless Options.NoAccessLog) or off, at once
// (benchmarks measure what they cost: `uias bench --only access`).
func (p *Process) SetAccessLog(on bool) { p.accessOff.Store(!on) }

// accessRecord is the servers' OnCall: it counts every call made from
// outside to a service of a module of the process in the per-application
// metrics (appMetrics) and queues the access record of every
// call made from outside (not nested in a call of another component, which
// has its own record) to a service of a module of the process: the record
// its handler handed when it did (audit.AccessOf), else the usual one.
func (p *Process) accessRecord(r *router) func(ctx context.Context, c grpcx.Call) {
	return func(ctx context.Context, c grpcx.Call) {
		if c.Nested {
			audit.NotKept(c)
			return
		}
		name := r.ownerOf(c.Method)
		if name != "" && p.appMetrics != nil {
			p.appMetrics.observe(ctx, &c)
		}
		pub := p.access.Load()
		if pub == nil || p.accessOff.Load() {
			name = ""
		}
		if name == "" {
			audit.NotKept(c) // a record the handler handed goes out its component's way
			return
		}
		pub.AddLater(audit.AccessOf(ctx, name, c))
	}
}
