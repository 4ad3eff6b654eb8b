// Package discovery registers gRPC endpoints of UIAS components in etcd and
// dials them through the etcd naming resolver.
//
// Endpoints live under "uias/<component>/<addr>" (go.etcd.io/etcd naming
// endpoints format), attached to a lease that is kept alive while the
// component runs, so a crashed instance disappears after the lease TTL.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Prefix is the etcd key prefix under which components register.
const Prefix = "uias"

// DefaultTTLSeconds is the lease TTL used when Register is given ttl <= 0.
const DefaultTTLSeconds = 10

// RoundRobinServiceConfig is the default service config of DialEtcd.
const RoundRobinServiceConfig = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// Target returns the endpoints target of a component: "uias/<component>".
func Target(component string) string { return Prefix + "/" + component }

// Key returns the etcd key of one endpoint: "uias/<component>/<addr>".
func Key(component, addr string) string { return Target(component) + "/" + addr }

// Register adds addr under "uias/<component>" with an etcd lease of
// ttlSeconds (naming/endpoints format) and keeps the lease alive in the
// background. If the lease is lost (expired while etcd was unreachable, or
// revoked) the endpoint is registered again under a new lease, retrying with
// backoff.
//
// ctx bounds only the initial registration; the registration then lives until
// the returned func is called (or cli is closed). The returned func stops the
// keep-alive, deletes the key and revokes the lease; it is safe to call more
// than once.
func Register(ctx context.Context, cli *clientv3.Client, component, addr string, ttlSeconds int64, log *zap.Logger) (func(context.Context) error, error) {
	r, err := newRegistration(cli, component, addr, ttlSeconds, 0, log)
	if err != nil {
		return nil, err
	}
	lease, err := r.register(ctx)
	if err != nil {
		return nil, err
	}
	r.log.Info("registered in etcd", zap.String("key", r.key), zap.Int64("ttl_seconds", r.ttl))
	r.start(lease)
	return r.deregister, nil
}

// Registration is an endpoint registered in the background by Keep.
type Registration struct{ r *registration }

// Keep registers addr under "uias/<component>" like Register, but in the
// background: it returns at once and tries until it succeeds, each attempt
// bounded by timeout (e.g. etcd.dial_timeout; <= 0: 5 s), with back-off
// between attempts and a warning logged for each failure, so that a process
// started while etcd is unreachable serves its probes (not ready) and joins
// when etcd returns. Then it keeps the lease alive as Register does.
func Keep(cli *clientv3.Client, component, addr string, ttlSeconds int64, timeout time.Duration, log *zap.Logger) (*Registration, error) {
	r, err := newRegistration(cli, component, addr, ttlSeconds, timeout, log)
	if err != nil {
		return nil, err
	}
	r.start(0)
	return &Registration{r}, nil
}

// FirstAttempt is closed when the first attempt to register has ended,
// registered or not (it takes at most the attempt timeout).
func (g *Registration) FirstAttempt() <-chan struct{} { return g.r.first }

// Ready is nil once the endpoint has been registered (it stays nil while
// etcd is away later on: the registration is renewed when etcd returns),
// and an error saying why not before.
func (g *Registration) Ready() error {
	if g.r.ever.Load() {
		return nil
	}
	if err, _ := g.r.lastErr.Load().(error); err != nil {
		return fmt.Errorf("not registered in etcd yet: %w", err)
	}
	return errors.New("not registered in etcd yet")
}

// Deregister stops the keep-alive, deletes the key and revokes the lease
// (each step bounded by ctx and the attempt timeout); safe to call more
// than once.
func (g *Registration) Deregister(ctx context.Context) error { return g.r.deregister(ctx) }

func newRegistration(cli *clientv3.Client, component, addr string, ttlSeconds int64, timeout time.Duration, log *zap.Logger) (*registration, error) {
	if cli == nil {
		return nil, errors.New("discovery: nil etcd client")
	}
	if component == "" || strings.Contains(component, "/") {
		return nil, fmt.Errorf("discovery: invalid component %q", component)
	}
	if addr == "" {
		return nil, errors.New("discovery: empty address")
	}
	if ttlSeconds <= 0 {
		ttlSeconds = DefaultTTLSeconds
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if log == nil {
		log = zap.NewNop()
	}
	em, err := endpoints.NewManager(cli, Target(component))
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return &registration{
		cli:     cli,
		em:      em,
		key:     Key(component, addr),
		addr:    addr,
		ttl:     ttlSeconds,
		timeout: timeout,
		log:     log.With(zap.String("component", component), zap.String("addr", addr)),
		done:    make(chan struct{}),
		first:   make(chan struct{}),
	}, nil
}

type registration struct {
	cli     *clientv3.Client
	em      endpoints.Manager
	key     string
	addr    string
	ttl     int64
	timeout time.Duration // of one attempt
	log     *zap.Logger

	mu    sync.Mutex
	lease clientv3.LeaseID

	ever    atomic.Bool  // registered at least once
	lastErr atomic.Value // error of the last failed attempt

	cancel    context.CancelFunc
	done      chan struct{}
	first     chan struct{} // closed after the first attempt (Keep)
	firstOnce sync.Once
	once      sync.Once
	err       error
}

func (r *registration) start(lease clientv3.LeaseID) {
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run(runCtx, lease)
}

// register grants a lease and puts the endpoint under it.
func (r *registration) register(ctx context.Context) (clientv3.LeaseID, error) {
	grant, err := r.cli.Grant(ctx, r.ttl)
	if err != nil {
		return 0, fmt.Errorf("discovery: grant lease: %w", err)
	}
	err = r.em.AddEndpoint(ctx, r.key, endpoints.Endpoint{Addr: r.addr}, clientv3.WithLease(grant.ID))
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_, _ = r.cli.Revoke(rctx, grant.ID)
		cancel()
		return 0, fmt.Errorf("discovery: add endpoint %s: %w", r.key, err)
	}
	r.mu.Lock()
	r.lease = grant.ID
	r.mu.Unlock()
	r.ever.Store(true)
	return grant.ID, nil
}

// run keeps the lease alive and re-registers when it is lost (or registers
// first when lease is 0).
func (r *registration) run(ctx context.Context, lease clientv3.LeaseID) {
	defer close(r.done)
	defer r.firstOnce.Do(func() { close(r.first) })
	first := lease == 0
	for {
		if lease != 0 {
			ch, err := r.cli.KeepAlive(ctx, lease)
			if err == nil {
				for range ch { // drain until the keep-alive stops
				}
			}
			if ctx.Err() != nil || r.cli.Ctx().Err() != nil {
				return
			}
			// The keep-alive gives up when etcd has not answered for a TTL,
			// but after an outage the lease usually still exists (etcd
			// extends leases when it comes back): keep it, and with it the
			// key, rather than let it expire while a new one is granted
			// (callers would see no endpoint in between).
			if r.stillAlive(ctx, lease) {
				continue
			}
			if ctx.Err() != nil || r.cli.Ctx().Err() != nil {
				return
			}
			r.log.Warn("etcd lease lost; registering again", zap.Error(err))
		}
		backoff := 200 * time.Millisecond
		for {
			regCtx, cancel := context.WithTimeout(ctx, r.timeout)
			var err error
			lease, err = r.register(regCtx)
			cancel()
			r.firstOnce.Do(func() { close(r.first) })
			if err == nil {
				break
			}
			if ctx.Err() != nil || r.cli.Ctx().Err() != nil {
				return
			}
			r.lastErr.Store(err)
			msg := "etcd re-registration failed"
			if first {
				msg = "etcd unreachable: not registered (not ready) yet; retrying"
			}
			r.log.Warn(msg, zap.Error(err), zap.Duration("attempt_timeout", r.timeout), zap.Duration("retry_in", backoff))
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
		if first {
			r.log.Info("registered in etcd", zap.String("key", r.key), zap.Int64("ttl_seconds", r.ttl))
			first = false
		} else {
			r.log.Info("registered in etcd again", zap.String("key", r.key))
		}
	}
}

// stillAlive tries to renew lease until etcd answers: true if the lease
// still exists, false if etcd says it does not (or ctx ends).
func (r *registration) stillAlive(ctx context.Context, lease clientv3.LeaseID) bool {
	backoff := 200 * time.Millisecond
	for {
		kctx, cancel := context.WithTimeout(ctx, r.timeout)
		_, err := r.cli.KeepAliveOnce(kctx, lease)
		cancel()
		switch {
		case err == nil:
			r.log.Info("etcd reachable again; registration kept", zap.String("key", r.key))
			return true
		case errors.Is(err, rpctypes.ErrLeaseNotFound) || ctx.Err() != nil || r.cli.Ctx().Err() != nil:
			return false
		}
		r.log.Warn("etcd unreachable; keeping the registration until it answers", zap.Error(err), zap.Duration("retry_in", backoff))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (r *registration) deregister(ctx context.Context) error {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.done:
		case <-ctx.Done():
			r.err = ctx.Err()
			return
		}
		r.mu.Lock()
		lease := r.lease
		r.mu.Unlock()
		if lease == 0 {
			return // never registered
		}
		dctx, cancel := context.WithTimeout(ctx, r.timeout)
		defer cancel()
		var errs []error
		if err := r.em.DeleteEndpoint(dctx, r.key); err != nil {
			errs = append(errs, fmt.Errorf("discovery: delete %s: %w", r.key, err))
		}
		if _, err := r.cli.Revoke(dctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			errs = append(errs, fmt.Errorf("discovery: revoke lease: %w", err))
		}
		r.err = errors.Join(errs...)
		if r.err == nil {
			r.log.Info("deregistered from etcd", zap.String("key", r.key))
		}
	})
	return r.err
}

// DialEtcd returns a client connection to "etcd:///uias/<component>", resolved
// through etcd (it follows registrations as they come and go, see
// etcdBuilder) with round_robin load balancing. Transport credentials
// default to insecure; pass grpc.WithTransportCredentials in opts to
// override (later options win). The connection is lazy: ctx is only
// checked, no I/O happens until the first call. While etcd has never
// answered, calls fail at once with UNAVAILABLE; once it has, the last
// known endpoints keep serving while it is away.
func DialEtcd(ctx context.Context, cli *clientv3.Client, component string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return DialEtcdLog(ctx, cli, component, nil, opts...)
}

// DialEtcdLog is DialEtcd with a logger for the resolver's reports (etcd
// unreachable, watch restarted); nil discards them.
func DialEtcdLog(ctx context.Context, cli *clientv3.Client, component string, log *zap.Logger, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cli == nil {
		return nil, errors.New("discovery: nil etcd client")
	}
	if log == nil {
		log = zap.NewNop()
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithResolvers(etcdBuilder{cli: cli, log: log}),
		grpc.WithDefaultServiceConfig(RoundRobinServiceConfig),
		grpc.WithKeepaliveParams(ClientKeepalive),
	}
	conn, err := grpc.NewClient("etcd:///"+Target(component), append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("discovery: dial %s: %w", component, err)
	}
	return conn, nil
}

// ClientKeepalive is how a component's connection to another finds a
// replica that went silent (a hung process, a partition that sends no
// reset): it pings after a minute without reads and drops the connection
// when no answer comes within 20 s, so calls go to the other replicas and
// one without a deadline does not wait forever. The servers tolerate
// pings every 10 s (grpc.keepalive_min_time, at most 1 m).
var ClientKeepalive = keepalive.ClientParameters{Time: time.Minute, Timeout: 20 * time.Second, PermitWithoutStream: true}

// DialDirect returns a client connection to a fixed address: "host:port"
// (resolved with the default dns resolver) or any gRPC target URI
// ("passthrough:///...", "unix:///..."). Transport credentials default to insecure; pass
// grpc.WithTransportCredentials in opts to override.
func DialDirect(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	conn, err := grpc.NewClient(addr, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("discovery: dial %s: %w", addr, err)
	}
	return conn, nil
}

// RetryServiceConfig is RoundRobinServiceConfig with a retry policy for
// methods (full names, "/pkg.Service/Method"): a call that fails with
// UNAVAILABLE before any answer arrived (the replica crashed or went away
// mid-call) is tried again, on another replica, up to 3 attempts in all.
// Give it only methods that are safe to repeat.
func RetryServiceConfig(methods []string) string {
	type name struct {
		Service string `json:"service"`
		Method  string `json:"method"`
	}
	var names []name
	for _, m := range methods {
		svc, meth, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		if ok {
			names = append(names, name{svc, meth})
		}
	}
	if len(names) == 0 {
		return RoundRobinServiceConfig
	}
	cfg := map[string]any{
		"loadBalancingConfig": []any{map[string]any{"round_robin": map[string]any{}}},
		"methodConfig": []any{map[string]any{
			"name": names,
			"retryPolicy": map[string]any{
				"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "0.5s", "backoffMultiplier": 2,
				"retryableStatusCodes": []string{"UNAVAILABLE"},
			},
		}},
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}

// Components lists the components that have at least one endpoint
// registered in etcd now (keys "uias/<component>/<addr>"), sorted.
func Components(ctx context.Context, cli *clientv3.Client) ([]string, error) {
	if cli == nil {
		return nil, errors.New("discovery: nil etcd client")
	}
	resp, err := cli.Get(ctx, Prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("discovery: list components: %w", err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		name, addr, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), Prefix+"/"), "/")
		if !ok || name == "" || addr == "" || slices.Contains(out, name) {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

// Instances counts the endpoints registered under "uias/<component>" now,
// followed by an etcd watch in the background until ctx ends: Count is
// what it last saw (at least 1, the caller itself being one of them
// whether or not its own registration shows yet). A lost watch is
// re-established after a fresh listing; while etcd cannot be reached the
// last count stays.
type Instances struct {
	n atomic.Int64
}

// Count is the number of instances last seen (at least 1).
func (i *Instances) Count() int {
	if i == nil {
		return 1
	}
	return int(max(1, i.n.Load()))
}

// WatchInstances starts counting component's instances in cli.
func WatchInstances(ctx context.Context, cli *clientv3.Client, component string, log *zap.Logger) *Instances {
	i := &Instances{}
	i.n.Store(1)
	prefix := Target(component) + "/"
	go func() {
		for ctx.Err() == nil {
			resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			if err != nil {
				if ctx.Err() == nil {
					log.Debug("counting instances", zap.String("component", component), zap.Error(err))
				}
				sleep(ctx, 2*time.Second)
				continue
			}
			keys := map[string]bool{}
			for _, kv := range resp.Kvs {
				keys[string(kv.Key)] = true
			}
			i.n.Store(int64(len(keys)))
			wctx, cancel := context.WithCancel(ctx)
			for wr := range cli.Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(),
				clientv3.WithRev(resp.Header.Revision+1)) {
				if wr.Err() != nil {
					break
				}
				for _, ev := range wr.Events {
					if ev.Type == clientv3.EventTypeDelete {
						delete(keys, string(ev.Kv.Key))
					} else {
						keys[string(ev.Kv.Key)] = true
					}
				}
				i.n.Store(int64(len(keys)))
			}
			cancel()
			sleep(ctx, 500*time.Millisecond)
		}
	}()
	return i
}
