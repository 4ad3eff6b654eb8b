package grpcx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
)

// healthPrefix is the method prefix of the standard health service. Health
// checks bypass CallerAuth (probes carry no credentials) and are logged at
// debug level.
const healthPrefix = "/grpc.health.v1.Health/"

// errPanic is what the recovery interceptor hands to the error funnel; its
// text never reaches the client (apierr.ToStatus maps it to Internal).
var errPanic = errors.New("grpcx: handler panicked")

// chain holds the state shared by the interceptors of one server.
type chain struct {
	log         *zap.Logger
	trusted     []netip.Prefix
	auth        CallerAuth
	internalKey []byte
	metrics     *serverMetrics
	onBad       func(ctx context.Context, fullMethod string, err error)
	onCall      func(ctx context.Context, c Call)
	// verifyConn is the TLS config's VerifyConnection (e.g. the revocation
	// lists of tls.crl_file), asked again on every call of a connection
	// with a verified client certificate: one revoked after the
	// connection opened counts as none from then on.
	verifyConn func(tls.ConnectionState) error
}

// unary is the unary chain as one interceptor: the stream chain's steps
// (recovery, request id, client ip, access, logging, metrics, caller auth,
// validation, error funnel) in that order, without a closure and a frame
// per step and with one clock reading for the access record, the log
// line and the metrics (every call of every server passes here).
func (c *chain) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, c.recovered(info.FullMethod, r)
		}
	}()
	return c.unaryCall(ctx, req, info.FullMethod, handler)
}

// unaryCall is unary inside recovery: request id, client ip, then the
// call timed for the access record, the log line and the metrics.
func (c *chain) unaryCall(ctx context.Context, req any, method string, handler grpc.UnaryHandler) (resp any, err error) {
	md := callMD(ctx) // read only
	id := requestIDOf(md)
	ctx = WithRequestID(ctx, id)
	setRequestIDHeader(ctx, id)
	ctx = c.withOriginOf(ctx, md)
	var st *callState
	if c.onCall != nil && !skipAccess(method) {
		ctx, st = c.startCall(ctx, md)
	}
	start := time.Now()
	completed := false
	defer func() {
		d := time.Since(start)
		code := callCode(err, completed)
		c.metrics.observeServed(method, code, d)
		c.logCall(ctx, method, code, d, !completed)
		if st != nil {
			c.endCall(ctx, st, method, start, d, err, completed)
		}
	}()
	resp, err = c.unaryServe(ctx, req, method, handler)
	completed = true
	return resp, err
}

// unaryServe is caller auth, validation and the error funnel around the
// handler.
func (c *chain) unaryServe(ctx context.Context, req any, method string, handler grpc.UnaryHandler) (any, error) {
	ctx, err := c.authenticate(ctx, method)
	if err != nil {
		return nil, err
	}
	if end := callEndOf(ctx); end != nil {
		defer end()
	}
	if err := c.checkRequest(ctx, method, req); err != nil {
		return nil, err
	}
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, c.toStatus(ctx, method, err)
	}
	return resp, nil
}

func (c *chain) stream() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		c.streamRecovery,
		c.streamRequestID,
		c.streamClientIP,
		c.streamAccess,
		c.streamLogging,
		c.streamMetrics,
		c.streamAuth,
		c.streamValidation,
		c.streamErrorFunnel,
	}
}

// ctxStream overrides the context of a server stream.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

func withStreamContext(ss grpc.ServerStream, ctx context.Context) grpc.ServerStream {
	if cs, ok := ss.(*ctxStream); ok {
		return &ctxStream{ServerStream: cs.ServerStream, ctx: ctx}
	}
	return &ctxStream{ServerStream: ss, ctx: ctx}
}

// ---- recovery ----

func (c *chain) recovered(method string, r any) error {
	c.log.Error("grpc handler panic",
		zap.String("method", method),
		zap.String("panic", fmt.Sprint(r)),
		zap.ByteString("stack", debug.Stack()))
	return apierr.ToStatus(errPanic)
}

func (c *chain) streamRecovery(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = c.recovered(info.FullMethod, r)
		}
	}()
	return handler(srv, ss)
}

// ---- request id ----

func incomingRequestID(ctx context.Context) string {
	return requestIDOf(callMD(ctx))
}

// headerMDs are the one-key metadata setRequestIDHeader hands to
// grpc.SetHeader, reused: the server's streams (the transport's,
// Direct's, grpc-gateway's) merge what they are given into a map of their
// own and keep nothing of it.
var headerMDs = sync.Pool{New: func() any { return metadata.MD{MetadataRequestID: make([]string, 1)} }}

// setRequestIDHeader sets the request id as the call's response header.
func setRequestIDHeader(ctx context.Context, id string) {
	md := headerMDs.Get().(metadata.MD)
	v := md[MetadataRequestID]
	v[0] = id
	_ = grpc.SetHeader(ctx, md)
	v[0] = ""
	headerMDs.Put(md)
}

// requestIDOf is incomingRequestID from the call's metadata.
func requestIDOf(md metadata.MD) string {
	if v := md.Get(MetadataRequestID); len(v) > 0 && ValidRequestID(v[0]) {
		return v[0]
	}
	return NewRequestID()
}

func (c *chain) streamRequestID(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	id := incomingRequestID(ss.Context())
	_ = ss.SetHeader(metadata.Pairs(MetadataRequestID, id))
	return handler(srv, withStreamContext(ss, WithRequestID(ss.Context(), id)))
}

// ---- client ip ----

// clientIPOf is the client address of the call with metadata md: the one
// the channel asserts (o, when ok: in-process, or signed with the internal
// key), else the peer, or for a peer in TrustedProxies the rightmost
// untrusted X-Forwarded-For hop.
func (c *chain) clientIPOf(ctx context.Context, md metadata.MD, o Origin, ok bool) netip.Addr {
	if ok && o.ClientIP.IsValid() {
		return o.ClientIP
	}
	var peerIP netip.Addr
	if p, ok := peer.FromContext(ctx); ok {
		peerIP = AddrFromNet(p.Addr)
	}
	return ResolveClientIP(peerIP, md.Get(MetadataForwardedFor), c.trusted)
}

// withOrigin puts the client address, and the origin a trusted channel
// asserts, into ctx. The client certificate is the one the trusted channel
// asserts (the edge's client's, possibly none), else that of the call's own
// TLS connection.
func (c *chain) withOrigin(ctx context.Context) context.Context {
	return c.withOriginOf(ctx, callMD(ctx))
}

// withOriginOf is withOrigin with the call's metadata given.
func (c *chain) withOriginOf(ctx context.Context, md metadata.MD) context.Context {
	o, ok := originOf(ctx, md, c.internalKey)
	ip := c.clientIPOf(ctx, md, o, ok)
	if ok {
		o.ClientIP = ip
		return WithOrigin(context.WithValue(ctx, componentKey{}, true), o)
	}
	if cert := c.peerCertNow(ctx); cert != "" {
		return WithOrigin(ctx, Origin{ClientIP: ip, ClientCert: cert})
	}
	return WithClientIP(ctx, ip)
}

// peerCertNow is peerCert, unless the connection's verified chains no
// longer pass verifyConn (revoked since the handshake).
func (c *chain) peerCertNow(ctx context.Context) string {
	cert := peerCert(ctx)
	if cert == "" || c.verifyConn == nil {
		return cert
	}
	p, _ := peer.FromContext(ctx)
	ti, _ := p.AuthInfo.(credentials.TLSInfo)
	if err := c.verifyConn(tls.ConnectionState{VerifiedChains: ti.State.VerifiedChains}); err != nil {
		c.log.Debug("client certificate no longer accepted on its connection; the call continues without it",
			zap.String("sha256", cert), zap.Error(err))
		return ""
	}
	return cert
}

func (c *chain) streamClientIP(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, withStreamContext(ss, c.withOrigin(ss.Context())))
}

// ---- logging ----

// callCode is the code reported for a finished call; a call that did not
// complete (the handler panicked) is reported as Internal.
func callCode(err error, completed bool) codes.Code {
	if !completed {
		return codes.Internal
	}
	return status.Code(err)
}

func (c *chain) logCall(ctx context.Context, method string, code codes.Code, d time.Duration, panicked bool) {
	lvl := zapcore.InfoLevel
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		lvl = zapcore.ErrorLevel
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		lvl = zapcore.WarnLevel
	}
	if lvl == zapcore.InfoLevel && strings.HasPrefix(method, healthPrefix) {
		lvl = zapcore.DebugLevel
	}
	ce := c.log.Check(lvl, "grpc call")
	if ce == nil {
		return
	}
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", code.String()),
		zap.Duration("duration", d),
		zap.String("request_id", RequestID(ctx)),
	}
	if ip := ClientIP(ctx); ip.IsValid() {
		fields = append(fields, zap.String("client_ip", ip.String()))
	} else {
		fields = append(fields, zap.String("client_ip", ""))
	}
	if panicked {
		fields = append(fields, zap.Bool("panicked", true))
	}
	ce.Write(fields...)
}

func (c *chain) streamLogging(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	completed := false
	defer func() {
		c.logCall(ss.Context(), info.FullMethod, callCode(err, completed), time.Since(start), !completed)
	}()
	err = handler(srv, ss)
	completed = true
	return err
}

// ---- metrics ----

func (c *chain) streamMetrics(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	completed := false
	defer func() {
		c.metrics.observeServed(info.FullMethod, callCode(err, completed), time.Since(start))
	}()
	err = handler(srv, ss)
	completed = true
	return err
}

// ---- caller auth ----

type callEndKey struct{}

// WithCallEnd returns ctx carrying end, which the server runs when the call
// ends (its handler returned, or it was refused after the caller was
// authenticated): a CallerAuth that takes something for the call (a slot
// of the caller's concurrency limit) gives it back there. One per call:
// a later WithCallEnd replaces an earlier.
func WithCallEnd(ctx context.Context, end func()) context.Context {
	return context.WithValue(ctx, callEndKey{}, end)
}

func callEndOf(ctx context.Context) func() {
	f, _ := ctx.Value(callEndKey{}).(func())
	return f
}

// EndCall runs the call end ctx carries (WithCallEnd), if any: for a
// CallerAuth that refuses a call after an inner one took something for it
// (a CallerAuth returning an error with its context has it run by the
// server; one returning a nil context must run it itself).
func EndCall(ctx context.Context) {
	if end := callEndOf(ctx); end != nil {
		end()
	}
}

func (c *chain) authenticate(ctx context.Context, method string) (context.Context, error) {
	if c.auth == nil || strings.HasPrefix(method, healthPrefix) {
		return ctx, nil
	}
	nctx, err := c.auth.AuthenticateCaller(ctx, method)
	if err != nil {
		noteRefused(ctx)
		if nctx != nil {
			EndCall(nctx)         // refused after all: what was taken for it is given back
			noteAuthed(ctx, nctx) // the refused caller, as far as known, for the access record
		}
		return nil, c.toStatus(ctx, method, err)
	}
	if nctx == nil {
		nctx = ctx
	}
	rctx, err := withRemark(nctx)
	if err != nil {
		if end := callEndOf(nctx); end != nil {
			end() // the call ends here
		}
		noteAuthed(ctx, nctx)
		return nil, c.toStatus(ctx, method, err)
	}
	noteAuthed(ctx, rctx)
	return rctx, nil
}

func (c *chain) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := c.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if end := callEndOf(ctx); end != nil {
		defer end()
	}
	return handler(srv, withStreamContext(ss, ctx))
}

// ---- validation ----

// checkRequest answers for a request message before its handler sees it:
// undecodable (see requestCodec) or breaking its proto rules
// (ValidateRequest) is a bad request (InvalidArgument, legacy code -5, the
// field named, reported to ServerOptions.OnBadRequest); rules that cannot be
// evaluated are a server fault, logged.
func (c *chain) checkRequest(ctx context.Context, method string, m any) error {
	err := undecodableError(m)
	if err == nil {
		err = ValidateRequest(m)
	}
	if err == nil {
		return nil
	}
	if apierr.CodeOf(err) != apierr.InvalidArgument {
		c.log.Error("request validation could not run", zap.String("method", method), zap.Error(err))
	} else if c.onBad != nil {
		c.onBad(ctx, method, err)
	}
	return apierr.ToStatus(err)
}

// validatingStream checks every received message.
type validatingStream struct {
	grpc.ServerStream
	chain  *chain
	method string
}

func (s validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.chain.checkRequest(s.Context(), s.method, m)
}

func (c *chain) streamValidation(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, validatingStream{ServerStream: ss, chain: c, method: info.FullMethod})
}

// ---- error funnel ----

// toStatus passes err through the error funnel (apierr), which logs what the
// answer hides (an internal error's cause, an unregistered reason) with the
// method and request id.
func (c *chain) toStatus(ctx context.Context, method string, err error) error {
	return apierr.ToStatusLogged(c.log.With(zap.String("method", method), zap.String("request_id", RequestID(ctx))), err)
}

func (c *chain) streamErrorFunnel(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := handler(srv, ss); err != nil {
		return c.toStatus(ss.Context(), info.FullMethod, err)
	}
	return nil
}
