package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	"github.com/uias/uias/pkg/restfile"
	"github.com/uias/uias/pkg/x509cert"
)

// HTTP headers forwarded to the services as the metadata of the same name
// (besides Authorization, which grpc-gateway always forwards as
// "authorization"), and the request id header.
var (
	headerAppID     = http.CanonicalHeaderKey(grpcx.MetadataAppID)     // X-Uias-App-Id
	headerAppSecret = http.CanonicalHeaderKey(grpcx.MetadataAppSecret) // X-Uias-App-Secret
	headerRequestID = http.CanonicalHeaderKey(grpcx.MetadataRequestID) // X-Request-Id
	// A signed request's values (pkg/reqsig): forwarded as they are; what
	// they sign, the HTTP request, the edge hashes (signedRequest).
	headerTimestamp = http.CanonicalHeaderKey(grpcx.MetadataTimestamp) // X-Uias-Timestamp
	headerNonce     = http.CanonicalHeaderKey(grpcx.MetadataNonce)     // X-Uias-Nonce
	headerSignature = http.CanonicalHeaderKey(grpcx.MetadataSignature) // X-Uias-Signature
	// the caller's remark on the call, percent-encoded UTF-8 (audit records keep it)
	headerRemark = http.CanonicalHeaderKey(grpcx.MetadataRemark) // X-Uias-Remark
)

// requestState travels in the request context from the outer middleware to
// the inner handlers, which fill in what they learn.
type requestState struct {
	route        string
	requestID    string
	clientIP     netip.Addr
	bodyTooLarge bool
	badJSON      *badInput         // the request body did not decode (set by jsonMarshaler)
	pathParams   map[string]string // the path parameters of the matched route
	contentType  string            // the request's Content-Type
	notJSON      bool              // a body was to be decoded but its Content-Type is not JSON
	limit        int64             // the request's body limit
}

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "HTTP requests served by the gateway, by route pattern and status code.",
	}, []string{"route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Time to serve HTTP requests, by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	var err error
	if requests, err = registerOrReuse(reg, requests); err != nil {
		return nil, err
	}
	if duration, err = registerOrReuse(reg, duration); err != nil {
		return nil, err
	}
	return &metrics{requests: requests, duration: duration}, nil
}

// registerOrReuse registers c, or returns the identical collector already
// registered (so several gateways may share one registry).
func registerOrReuse[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	return c, nil
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.code = http.StatusOK
		w.wroteHeader = true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wroteHeader {
			w.code = http.StatusOK
			w.wroteHeader = true
		}
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// outer assigns the request id, recovers panics and records metrics for every
// request.
func (g *gateway) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &requestState{route: "unmatched", requestID: requestIDFrom(r.Header.Get(headerRequestID))}
		w.Header().Set(headerRequestID, st.requestID)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(p)
				}
				g.log.Error("panic while serving HTTP request",
					zap.Any("panic", p), zap.String("route", st.route), zap.String("request_id", st.requestID))
				if !sw.wroteHeader {
					s := status.Convert(apierr.ToStatus(errors.New("gateway: handler panicked")))
					writeStatusJSON(sw, apierr.HTTPStatus(s), s)
				}
			}
			code := sw.code
			if !sw.wroteHeader {
				code = http.StatusOK
			}
			g.metrics.requests.WithLabelValues(st.route, strconv.Itoa(code)).Inc()
			g.metrics.duration.WithLabelValues(st.route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	})
}

// fixedRoute labels requests to a non-API endpoint with route.
func fixedRoute(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := stateFrom(r.Context()); st != nil {
			st.route = route
		}
		h.ServeHTTP(w, r)
	})
}

// routeMiddleware labels API requests with the matched path pattern and
// answers for parameters that are not UTF-8 (see badUTF8Param), query
// parameters of a route that takes none (queryRefused) and a body that
// names a path-bound field otherwise (bodyConflict).
func (routes routeRules) routeMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		route := ""
		if pat, ok := runtime.HTTPPattern(r.Context()); ok {
			route = pat.String()
			if st := stateFrom(r.Context()); st != nil {
				st.route = route
				st.pathParams = params
			}
		}
		err := badUTF8Param(r, params)
		if err == nil {
			err = routes.queryRefused(r, route)
		}
		if err == nil {
			err = routes.bodyConflict(r, route, params)
		}
		if err != nil {
			writeStatusJSON(w, http.StatusBadRequest, status.Convert(err))
			return
		}
		next(w, r, params)
	}
}

// forwardedRequestHeaders are the only request headers the API handler keeps;
// everything else is dropped before grpc-gateway sees the request.
var forwardedRequestHeaders = []string{
	"Accept", "Content-Type",
	"Authorization", headerAppID, headerAppSecret,
	headerTimestamp, headerNonce, headerSignature, headerRemark,
}

// apiHandler sanitises the request (headers, client address, body limit)
// before handing it to the grpc-gateway mux.
// pagesHandler serves a component's own handler (module.Pages): the client
// address, the verified client certificate and the request id go into the
// request's context (grpcx origin), so the component's calls carry them;
// bodies are limited like API bodies.
func (g *gateway) pagesHandler(h http.Handler) http.Handler {
	limit := g.opts.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		st.clientIP = clientIP(r, g.opts.TrustedProxies)
		o := grpcx.Origin{ClientIP: st.clientIP}
		if c := x509cert.VerifiedPeer(r.TLS); c != nil {
			o.ClientCert = x509cert.Thumbprint(c.Raw)
		}
		r2 := r.WithContext(grpcx.WithRequestID(grpcx.WithOrigin(r.Context(), o), st.requestID))
		if r.Body != nil && r.Body != http.NoBody {
			r2.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		h.ServeHTTP(w, r2)
	})
}

func (g *gateway) apiHandler(gw http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		limit := g.bodyLimit(r.URL.Path)
		st.limit = limit
		if r.ContentLength > limit {
			s := tooLargeStatus(limit)
			writeStatusJSON(w, apierr.HTTPStatus(s), s)
			return
		}
		st.clientIP = clientIP(r, g.opts.TrustedProxies)
		st.contentType = r.Header.Get("Content-Type")

		// The client address, and the client certificate this server
		// verified (App_ID + certificate), travel with the gRPC call (grpcx
		// origin), signed or in-process, so the services believe them.
		o := grpcx.Origin{ClientIP: st.clientIP}
		if c := x509cert.VerifiedPeer(r.TLS); c != nil {
			o.ClientCert = x509cert.Thumbprint(c.Raw)
		}
		// The call's deadline: the edge's, or the caller's Grpc-Timeout
		// when shorter (the header itself is not forwarded).
		timeout := g.opts.RequestTimeout
		if g.fileRoute(r.URL.Path) {
			// an upload or download runs as long as the file takes
			// (review sec21 H1), a pass over a whole log as long as the
			// log: its answer may be written past the server's write
			// timeout. The read timeout stays until the route's handler
			// has authenticated the call (an upload's lifts it then):
			// lifted here, anyone could hold a connection for hours by
			// not sending a body (review sec22 M1).
			timeout = restfile.FileTime
			restfile.LongerAnswer(w)
		}
		if v := r.Header.Get("Grpc-Timeout"); v != "" {
			d, ok := grpcTimeout(v)
			if !ok {
				writeStatusJSON(w, http.StatusBadRequest, status.Convert(apierr.ToStatus(grpcx.BadRequest("Grpc-Timeout",
					"Grpc-Timeout is not a gRPC timeout: at most 8 digits and a unit H, M, S, m (ms), u (µs) or n (ns), e.g. 3S"))))
				return
			}
			timeout = min(timeout, d)
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		r2 := r.Clone(grpcx.WithRequestID(grpcx.WithOrigin(ctx, o), st.requestID))
		h := make(http.Header, len(forwardedRequestHeaders)+1)
		for _, k := range forwardedRequestHeaders {
			if v, ok := r.Header[k]; ok {
				h[k] = v
			}
		}
		r2.Header = h
		// Host only feeds grpc-gateway's x-forwarded-host metadata, which the
		// identity service does not use.
		r2.Host = ""
		if r.Body != nil && r.Body != http.NoBody {
			r2.Body = &limitedBody{rc: http.MaxBytesReader(w, r.Body, limit), st: st}
		}
		if !oneSignatureValue(w, r) {
			return
		}
		if r.Header.Get(headerSignature) != "" {
			// A signed request: the service verifies the signature over
			// the HTTP request as received here, which the origin asserts.
			target, ok := signedRequest(w, r, r2, st)
			if !ok {
				return
			}
			if g.fileRoute(r.URL.Path) {
				// File routes (uploads, downloads) are not answered
				// signed: their answers are streamed, never held.
				gw.ServeHTTP(w, r2)
				return
			}
			// Its answer is signed over the body sent (answers.go).
			aw := &answerWriter{w: w}
			gw.ServeHTTP(aw, r2)
			aw.finish(r2.Context(), g.opts.ResponseSigner, target, r.Header.Get(headerNonce))
			return
		}
		gw.ServeHTTP(w, r2)
	})
}

// grpcTimeout parses a Grpc-Timeout header value (gRPC over HTTP/2:
// TimeoutValue of at most 8 digits, TimeoutUnit).
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 || strings.ContainsAny(v[:len(v)-1], "+-") {
		return 0, false
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond,
		'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// oneSignatureValue refuses (400, false) a request whose signature headers
// (X-Uias-Signature, -Timestamp, -Nonce) are given more than once or
// with characters other than printable ASCII: the edge, which hashes a
// signed request's body, and the service, which reads the headers as
// gRPC metadata (grpc-gateway drops values it cannot pass), must see the
// same signature or none.
func oneSignatureValue(w http.ResponseWriter, r *http.Request) bool {
	for _, k := range []string{headerSignature, headerTimestamp, headerNonce} {
		vs := r.Header.Values(k)
		bad := len(vs) > 1
		for _, v := range vs {
			for i := 0; i < len(v) && !bad; i++ {
				bad = v[i] < ' ' || v[i] > '~'
			}
		}
		if bad {
			s := status.Convert(apierr.ToStatus(apierr.New(apierr.InvalidArgument, "BAD_REQUEST",
				k+" must be given once, in printable ASCII").WithMeta(apierr.MetaField, k)))
			writeStatusJSON(w, apierr.HTTPStatus(s), s)
			return false
		}
	}
	return true
}

// maxSignedBody is the largest body of a signed request (held in memory
// to be hashed before the call).
const maxSignedBody = 1 << 20

// signedRequest reads r2's body (within its limit) to hash it, puts it
// back, and sets r2's origin's HTTPRequest: the method, the request target
// as received (r.RequestURI) and the body's SHA-256 (pkg/reqsig). A body
// over the limit is answered here; false: the request was answered. The
// signed target line is returned (its answer's is the same).
func signedRequest(w http.ResponseWriter, r, r2 *http.Request, st *requestState) (string, bool) {
	refuse := func(s *status.Status) (string, bool) {
		writeStatusJSON(w, apierr.HTTPStatus(s), s)
		return "", false
	}
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] > '~' {
			return refuse(status.Convert(apierr.ToStatus(apierr.New(apierr.InvalidArgument, "BAD_REQUEST",
				"a signed request's target must be printable ASCII (percent-encode the rest)"))))
		}
	}
	var body []byte
	if r2.Body != nil && r2.Body != http.NoBody {
		// The body is held to be hashed before the call: a signed one is
		// at most maxSignedBody, whatever the route's limit (imports).
		b, err := io.ReadAll(io.LimitReader(r2.Body, min(st.limit, maxSignedBody)+1))
		switch {
		case err != nil && st.bodyTooLarge:
			return refuse(tooLargeStatus(st.limit))
		case err != nil:
			return refuse(status.Convert(apierr.ToStatus(apierr.New(apierr.InvalidArgument, "BAD_REQUEST", "the request body could not be read"))))
		case int64(len(b)) > min(st.limit, maxSignedBody):
			return refuse(tooLargeStatus(min(st.limit, maxSignedBody)))
		}
		body = b
		r2.Body = io.NopCloser(bytes.NewReader(b))
	}
	sum := sha256.Sum256(body)
	o := grpcx.OriginFrom(r2.Context())
	line := reqsig.HTTPTarget(r.Method, target)
	o.HTTPRequest = line + " " + hex.EncodeToString(sum[:])
	*r2 = *r2.WithContext(grpcx.WithOrigin(r2.Context(), o))
	return line, true
}

// limitedBody notes in the request state when the body limit was hit, so the
// error handler can answer 413 instead of a decode error.
type limitedBody struct {
	rc io.ReadCloser
	st *requestState
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		b.st.bodyTooLarge = true
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// incomingHeaderMatcher maps the application credential headers to metadata
// and drops every other header (Authorization is forwarded by grpc-gateway
// itself; the request id and client address are set by annotate).
func incomingHeaderMatcher(key string) (string, bool) {
	switch key {
	case headerAppID:
		return grpcx.MetadataAppID, true
	case headerAppSecret:
		return grpcx.MetadataAppSecret, true
	case headerTimestamp:
		return grpcx.MetadataTimestamp, true
	case headerNonce:
		return grpcx.MetadataNonce, true
	case headerSignature:
		return grpcx.MetadataSignature, true
	case headerRemark:
		return grpcx.MetadataRemark, true
	}
	return "", false
}

// outgoingHeaderMatcher forwards a service's response header metadata as
// Grpc-Metadata-<key> (grpc-gateway's default, e.g. the request id), but
// not what the gRPC transport itself puts there (content-type
// application/grpc, grpc-* keys): a REST client has no use for it.
func outgoingHeaderMatcher(key string) (string, bool) {
	if key == "content-type" || strings.HasPrefix(key, "grpc-") {
		return "", false
	}
	return runtime.MetadataHeaderPrefix + key, true
}

// annotate adds the gateway-decided metadata; it replaces anything
// grpc-gateway derived under the same keys.
func (g *gateway) annotate(ctx context.Context, r *http.Request) metadata.MD {
	st := stateFrom(r.Context())
	if st == nil {
		return nil
	}
	md := metadata.Pairs(grpcx.MetadataRequestID, st.requestID)
	if st.clientIP.IsValid() {
		// grpc-gateway adds the TCP peer as x-forwarded-for; replace it with
		// the decided address (servers believe it only from trusted proxies;
		// they believe x-uias-client-ip only from the edge itself).
		md.Set(grpcx.MetadataClientIP, st.clientIP.String())
		md.Set(grpcx.MetadataForwardedFor, st.clientIP.String())
	}
	return md
}

// requestIDFrom returns v when it is acceptable as a request id by the same
// rule as the gRPC servers (grpcx.ValidRequestID: 1-64 of [A-Za-z0-9._-]),
// so the id a client sent is the one every component logs and audits as the
// serial; otherwise a new random one.
func requestIDFrom(v string) string {
	if grpcx.ValidRequestID(v) {
		return v
	}
	return grpcx.NewRequestID()
}

// clientIP is the TCP peer of r, or, when the peer is a trusted proxy, the
// rightmost X-Forwarded-For address that is not itself a trusted proxy (the
// leftmost if all are trusted). An unparsable entry stops the walk.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseAddr(r.RemoteAddr)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip := parseAddr(strings.TrimSpace(hops[i]))
		if !ip.IsValid() {
			break
		}
		client = ip
		if !inPrefixes(ip, trusted) {
			break
		}
	}
	return client
}

func parseAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().WithZone("")
	}
	return netip.Addr{}
}

func inPrefixes(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// writeStatusJSON writes s in the same JSON shape grpc-gateway uses for
// errors: {"code": ..., "message": ..., "details": [...]}.
func writeStatusJSON(w http.ResponseWriter, httpStatus int, s *status.Status) {
	body, err := protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}.Marshal(s.Proto())
	if err != nil {
		body = []byte(`{"code": 13, "message": "failed to marshal error message", "details": []}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// fileRoute reports whether path is under a backend's file route
// (module.Module.FileRoutes).
func (g *gateway) fileRoute(path string) bool {
	for _, b := range g.opts.Backends {
		for _, prefix := range b.FileRoutes {
			if strings.HasPrefix(path, prefix) {
				return true
			}
		}
	}
	return false
}

// bodyLimit is the body limit of a request to path: the limit of the
// longest backend prefix (module.Module.BodyLimits) path starts with, else
// Options.MaxBodyBytes.
func (g *gateway) bodyLimit(path string) int64 {
	limit, best := g.opts.MaxBodyBytes, -1
	for _, b := range g.opts.Backends {
		for prefix, n := range b.BodyLimits {
			if len(prefix) > best && strings.HasPrefix(path, prefix) {
				limit, best = n, len(prefix)
			}
		}
	}
	return limit
}
