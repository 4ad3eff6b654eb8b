package grpcx

import (
	"context"
	"crypto/tls"
	"net/netip"
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
// error from apierr).
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
}

// NewServer builds a *grpc.Server with one interceptor chain (unary and
// stream), in this order:
//
//	recovery -> request id -> client ip -> logging -> metrics ->
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
// error returned by a handler passes through apierr.ToStatus.
//
// Before all of that, ServerOptions.Admit may refuse a call in the
// transport (see there).
//
// The health service (returned, all services SERVING) and reflection are
// registered.
func NewServer(o ServerOptions) (*grpc.Server, *health.Server) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	maxRecv := o.MaxRecvMsgSize
	if maxRecv <= 0 {
		maxRecv = DefaultMaxRecvMsgSize
	}
	c := &chain{
		log:         log.Named("grpc"),
		trusted:     append([]netip.Prefix(nil), o.TrustedProxies...),
		internalKey: o.InternalKey,
		auth:        o.Auth,
		metrics:     newServerMetrics(o.Registry),
		onBad:       o.OnBadRequest,
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(c.unary()...),
		grpc.ChainStreamInterceptor(c.stream()...),
		grpc.MaxRecvMsgSize(maxRecv),
		// Decoding failures are answered by the validation interceptor.
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	if o.Admit != nil {
		opts = append(opts, grpc.InTapHandle(c.admission(o.Admit)))
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(ServerTLS(o.TLS))))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv, hs
}

// ServerTLS returns a clone of cfg with MinVersion at least TLS 1.2.
func ServerTLS(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}
