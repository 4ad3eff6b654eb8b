package grpcx

import (
	"context"
	"crypto/tls"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// DefaultMaxRecvMsgSize is the receive limit used when
// ServerOptions.MaxRecvMsgSize is 0.
const DefaultMaxRecvMsgSize = 1 << 20

// CallerAuth decides who is calling; returns ctx carrying the caller (or
// error from apierr). With an error, a non-nil ctx names the caller as far
// as they were authenticated before the refusal (an administrator refused
// the method): the call's access record names them as its actor.
type CallerAuth interface {
	AuthenticateCaller(ctx context.Context, fullMethod string) (context.Context, error)
}

// CallerAuthFunc adapts a function to CallerAuth.
type CallerAuthFunc func(ctx context.Context, fullMethod string) (context.Context, error)

// AuthenticateCaller calls f.
func (f CallerAuthFunc) AuthenticateCaller(ctx context.Context, fullMethod string) (context.Context, error) {
	return f(ctx, fullMethod)
}

// ServerOptions configure NewServer.
type ServerOptions struct {
	Logger         *zap.Logger          // nil => no logging
	Registry       *prometheus.Registry // nil => metrics are not exported
	Auth           CallerAuth           // nil => none
	TrustedProxies []netip.Prefix       // peers allowed to set x-forwarded-for
	TLS            *tls.Config          // nil => plaintext; MinVersion raised to TLS 1.2
	MaxRecvMsgSize int                  // default 1 MiB
	// Admit, when set, is asked about every call before the call gets a
	// goroutine, its request is read or any interceptor runs: a non-nil
	// error (an *apierr.Error) refuses the call at once with that error's
	// status. It sees only the method name; use it to shed load cheaply
	// (the handler must still check, Admit may race). Refusals are counted
	// in the metrics but not logged per call.
	Admit func(fullMethod string) error
	// InternalKey, when set, is the key other UIAS components sign the
	// origin of their calls with (client address, caller): a call whose
	// signature checks is believed about them, as in-process calls always
	// are. Without it only in-process calls are.
	InternalKey []byte
	// OnBadRequest, when set, is told of every request the validation
	// interceptor refuses (it breaks its proto rules or cannot be decoded),
	// with the call's context as caller auth left it and the error (an
	// *apierr.Error, InvalidArgument), before the refusal is sent. Use it
	// to audit what a handler would have audited: the handler never runs.
	OnBadRequest func(ctx context.Context, fullMethod string, err error)
	// OnCall, when set, is told of every finished call except health checks
	// and reflection (the access log of every API call), with the call's
	// context as caller auth left it (the caller known when it passed;
	// else request id and client address only). It runs on the call's
	// goroutine after the answer is decided: it must not block (queue the
	// record and return).
	OnCall func(ctx context.Context, c Call)
	// Reflection registers the gRPC reflection service (which lists every
	// service and message to anyone who asks). Off unless set.
	Reflection bool
	// Keepalive bounds connections; zero fields take the defaults of
	// DefaultKeepalive.
	Keepalive Keepalive
}

// Keepalive are the connection limits of a server.
type Keepalive struct {
	// MinPingInterval is the shortest interval between client pings the
	// server tolerates: a client pinging more often (a ping flood) gets
	// GOAWAY and is disconnected.
	MinPingInterval time.Duration
	// MaxConnectionIdle closes a connection without calls for this long.
	MaxConnectionIdle time.Duration
	// MaxConnectionAge closes a connection after this long (clients
	// reconnect, so load spreads over new instances), after
	// MaxConnectionAgeGrace for calls in flight.
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
	// PingInterval and PingTimeout: the server pings a connection idle for
	// PingInterval and closes it when no answer comes within PingTimeout
	// (dead peers do not hold connections).
	PingInterval time.Duration
	PingTimeout  time.Duration
}

// DefaultKeepalive are the connection limits used for zero fields.
var DefaultKeepalive = Keepalive{
	MinPingInterval:       10 * time.Second,
	MaxConnectionIdle:     15 * time.Minute,
	MaxConnectionAge:      30 * time.Minute,
	MaxConnectionAgeGrace: time.Minute,
	PingInterval:          2 * time.Minute,
	PingTimeout:           20 * time.Second,
}

// withDefaults fills zero fields from DefaultKeepalive.
func (k Keepalive) withDefaults() Keepalive {
	d := DefaultKeepalive
	for _, f := range []struct{ v, def *time.Duration }{
		{&k.MinPingInterval, &d.MinPingInterval}, {&k.MaxConnectionIdle, &d.MaxConnectionIdle},
		{&k.MaxConnectionAge, &d.MaxConnectionAge}, {&k.MaxConnectionAgeGrace, &d.MaxConnectionAgeGrace},
		{&k.PingInterval, &d.PingInterval}, {&k.PingTimeout, &d.PingTimeout},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return k
}

// NewServer builds a *grpc.Server with one interceptor chain (unary and
// stream), in this order:
//
//	recovery -> request id -> client ip -> access -> logging -> metrics ->
//	caller auth -> validation -> error funnel
//
// Recovery turns a panic into codes.Internal (logged with its stack, never
// sent to the client). The request id comes from the "x-request-id" metadata
// when it matches [A-Za-z0-9._-]{1,64}, otherwise a new one is generated; it
// is echoed as a response header. The client ip is the peer address, or the
// rightmost untrusted "x-forwarded-for" entry when the peer is in
// TrustedProxies. Logging writes one line per call (method, code, duration,
// request id, client ip; never payloads). Caller auth is skipped for the
// health service. Validation checks every request (and streamed message)
// against the protovalidate rules of its proto (ValidateRequest); a request
// that breaks them, or that cannot be decoded at all (bad wire format, a
// string that is not UTF-8), gets InvalidArgument with reason BAD_REQUEST,
// legacy code -5 and the field named, never reaching its handler. Every
// error returned by a handler or by caller auth passes through the error
// funnel (apierr.ToStatusLogged: answered by its registered reason; an
// internal error's cause or an unregistered reason is logged with method
// and request id, never sent).
//
// Before all of that, ServerOptions.Admit may refuse a call in the
// transport (see there).
//
// The health service (returned, all services SERVING) is registered, and
// reflection when ServerOptions.Reflection is set. Connections are bounded by
// ServerOptions.Keepalive.
func NewServer(o ServerOptions) (*grpc.Server, *health.Server) {
	maxRecv := o.MaxRecvMsgSize
	if maxRecv <= 0 {
		maxRecv = DefaultMaxRecvMsgSize
	}
	c := newChain(o)
	opts := []grpc.ServerOption{
		grpc.UnaryInterceptor(c.unary),
		grpc.ChainStreamInterceptor(c.stream()...),
		grpc.MaxRecvMsgSize(maxRecv),
		// Calls run on kept goroutines (more spawn when all are busy):
		// a handler does not grow a fresh goroutine's stack every call.
		grpc.NumStreamWorkers(streamWorkers()),
		// Decoding failures are answered by the validation interceptor.
		grpc.ForceServerCodecV2(newRequestCodec()),
	}
	ka := o.Keepalive.withDefaults()
	opts = append(opts,
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             ka.MinPingInterval,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     ka.MaxConnectionIdle,
			MaxConnectionAge:      ka.MaxConnectionAge,
			MaxConnectionAgeGrace: ka.MaxConnectionAgeGrace,
			Time:                  ka.PingInterval,
			Timeout:               ka.PingTimeout,
		}))
	// Admission, and the call's metadata kept for the chain (callMD).
	opts = append(opts, grpc.InTapHandle(c.admission(o.Admit)))
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(ServerTLS(o.TLS))))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	if o.Reflection {
		reflection.Register(srv)
	}
	return srv, hs
}

// minStreamWorkers is the fewest goroutines a server keeps for its calls.
// A call that finds them all busy runs on a fresh goroutine, whose stack
// grows (copied at each doubling) through the chain and the handler: with
// 4 per CPU, 50 callers of cheap calls on 2 CPUs had most calls spawn one,
// and stack growth took ~5% of a ticket pair's CPU. An idle worker costs
// its stack (a few KiB) and no CPU.
const minStreamWorkers = 64

// streamWorkers is how many goroutines a server keeps for its calls.
func streamWorkers() uint32 { return uint32(max(minStreamWorkers, 4*runtime.GOMAXPROCS(0))) }

// newChain is the interceptor state of a server with options o.
func newChain(o ServerOptions) *chain {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	var verifyConn func(tls.ConnectionState) error
	if o.TLS != nil {
		verifyConn = o.TLS.VerifyConnection
	}
	return &chain{
		verifyConn:  verifyConn,
		log:         log.Named("grpc"),
		trusted:     append([]netip.Prefix(nil), o.TrustedProxies...),
		internalKey: o.InternalKey,
		auth:        o.Auth,
		metrics:     newServerMetrics(o.Registry),
		onBad:       o.OnBadRequest,
		onCall:      o.OnCall,
	}
}

// TLS12CipherSuites are the only cipher suites UIAS accepts for TLS 1.2:
// ECDHE key exchange (forward secrecy) with an AEAD cipher (AES-GCM or
// ChaCha20-Poly1305). No CBC, no RSA key exchange, no 3DES or RC4. The TLS
// 1.3 suites are all AEAD (and not configurable in Go).
var TLS12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerTLS returns a clone of cfg with MinVersion at least TLS 1.2 and, for
// TLS 1.2, only the suites of TLS12CipherSuites (those of cfg.CipherSuites
// among them, if any).
func ServerTLS(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	var suites []uint16
	for _, s := range c.CipherSuites {
		if slices.Contains(TLS12CipherSuites, s) {
			suites = append(suites, s)
		}
	}
	if len(suites) == 0 {
		suites = slices.Clone(TLS12CipherSuites)
	}
	c.CipherSuites = suites
	return c
}
