// Package gateway serves the UIAS REST/JSON API: it translates HTTP requests
// into gRPC calls to the identity service (grpc-gateway v2), forwards only the
// headers the service understands, decides the client address, limits
// request bodies, records HTTP metrics and exposes /healthz, /readyz,
// /metrics and /openapi.json.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/module"

	// The error details sent by the identity service (ErrorInfo) must be
	// resolvable so error bodies can be marshalled to JSON.
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
)

// DefaultMaxBodyBytes is the request body limit used when Options.MaxBodyBytes
// is zero.
const DefaultMaxBodyBytes int64 = 1 << 20

// readyTimeout bounds the default readiness check.
const readyTimeout = 2 * time.Second

// DefaultRequestTimeout bounds a REST API call: under the HTTP server's
// 30 s write timeout, so that the caller gets an answer.
const DefaultRequestTimeout = 25 * time.Second

// Options configures the gateway handler.
type Options struct {
	// Logger receives request-independent diagnostics; nil means no logging.
	Logger *zap.Logger
	// Backends are the components whose REST routes the edge serves, each
	// with its connection (in-process or etcd-resolved). At least one.
	Backends []Backend
	// Registry receives the HTTP metrics (http_requests_total{route,code} and
	// http_request_duration_seconds{route}). nil means a private registry.
	Registry *prometheus.Registry
	// Gatherer is what /metrics exposes; nil means Registry.
	Gatherer prometheus.Gatherer
	// NoMetrics leaves /metrics out (it answers 404 like any unknown path).
	NoMetrics bool
	// TrustedProxies lists the peers whose X-Forwarded-For header is honoured.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes limits request bodies (413 beyond it); 0 means 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout is the deadline of a REST API call's gRPC call (a
	// caller's Grpc-Timeout header may shorten it): a component that stops
	// answering mid-call gets the caller 504 DEADLINE_EXCEEDED, not a hang.
	// 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// APIDocs describe the REST routes of the backends; New merges them into
	// the OpenAPI 3 document /openapi.json serves (BuildOpenAPI). nil: a
	// document without operations.
	APIDocs []APIDoc
	// Institution is the institution code of the interface ids in
	// /openapi.json (gateway.institution_code).
	Institution string
	// Ready answers /readyz; nil means a gRPC health check on the backends
	// ReadyFor names.
	Ready func(ctx context.Context) error
	// ReadyFor tells which backends (by Name) /readyz waits for: those
	// deployed with or behind this edge. Its error (our own words, shown in
	// the /readyz body) makes /readyz answer 503. nil: every backend.
	ReadyFor func(ctx context.Context) (ReadySet, error)
	// Pages are components' own handlers mounted under their prefixes
	// (module.Pages).
	Pages []Mount
	// ResponseSigner signs the answers to signed requests whose signature
	// the service verified (answers.go): identity's CallerService through
	// the edge's client of identity. nil: such answers are sent unsigned.
	ResponseSigner grpcx.ResponseSigner
}

// Mount is a component's handler served under Prefix (ending in "/").
type Mount struct {
	Prefix  string
	Handler http.Handler
}

// New builds the HTTP handler serving the REST API and the operational
// endpoints. ctx bounds the lifetime of the registered gRPC-gateway handlers.
func New(ctx context.Context, o Options) (http.Handler, error) {
	if len(o.Backends) == 0 {
		return nil, errors.New("gateway: Options.Backends (the components to serve) is required")
	}
	for _, b := range o.Backends {
		if b.Conn == nil || b.REST == nil {
			return nil, fmt.Errorf("gateway: backend %q needs Conn and REST", b.Name)
		}
		for prefix, n := range b.BodyLimits {
			if !strings.HasPrefix(prefix, "/") || n <= 0 {
				return nil, fmt.Errorf("gateway: backend %q: body limit %q: %d must be a path prefix and a positive size", b.Name, prefix, n)
			}
		}
	}
	if o.MaxBodyBytes < 0 {
		return nil, errors.New("gateway: Options.MaxBodyBytes must not be negative")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Gatherer == nil {
		o.Gatherer = o.Registry
	}
	if o.ReadyFor == nil {
		names := make([]string, len(o.Backends))
		for i, b := range o.Backends {
			names[i] = b.Name
		}
		o.ReadyFor = func(context.Context) (ReadySet, error) {
			return ReadySet{Names: names, How: "every component the edge serves"}, nil
		}
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	// Built once here: it depends on which components are served, and a
	// collision or an operation without declared security stops the start.
	info := DefaultOpenAPIInfo
	info.Institution = o.Institution
	apiDoc, err := BuildOpenAPI(info, o.APIDocs...)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}

	g := &gateway{log: o.Logger, opts: o, metrics: m}

	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &jsonMarshaler{JSONPb: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithIncomingHeaderMatcher(incomingHeaderMatcher),
		runtime.WithOutgoingHeaderMatcher(outgoingHeaderMatcher),
		runtime.WithMetadata(g.annotate),
		runtime.WithErrorHandler(g.errorHandler),
		runtime.WithRoutingErrorHandler(g.routingErrorHandler),
		runtime.WithDisableHTTPMethodOverride(),
		strictQuery(),
		runtime.WithMiddlewares(probeMiddleware, findRouteRules().routeMiddleware),
	)
	for _, b := range o.Backends {
		if err := b.REST(ctx, gw, b.Conn); err != nil {
			return nil, fmt.Errorf("gateway: register %s REST routes: %w", b.Name, err)
		}
	}
	mux := http.NewServeMux()
	fixed := map[string]http.Handler{
		"/healthz":      http.HandlerFunc(handleHealthz),
		"/readyz":       http.HandlerFunc(g.handleReadyz),
		"/openapi.json": handleOpenAPI(apiDoc),
	}
	if !o.NoMetrics {
		fixed["/metrics"] = promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
	}
	for path, h := range fixed {
		// GET (and so HEAD) serves; any other method is answered 405
		// with Allow, as the API routes are, not 404 by the API handler.
		mux.Handle("GET "+path, fixedRoute(path, h))
		mux.Handle(path, fixedRoute(path, http.HandlerFunc(onlyGET)))
	}
	mux.Handle("/", g.apiHandler(gw))
	for _, p := range o.Pages {
		if !strings.HasPrefix(p.Prefix, "/") || !strings.HasSuffix(p.Prefix, "/") || p.Handler == nil {
			return nil, fmt.Errorf("gateway: pages prefix %q must start and end with / and have a handler", p.Prefix)
		}
		mux.Handle(p.Prefix, fixedRoute(p.Prefix, g.pagesHandler(p.Handler)))
	}

	return g.outer(g.cleanPaths(mux)), nil
}

// onlyGET answers a fixed GET endpoint asked with another method.
func onlyGET(w http.ResponseWriter, r *http.Request) { methodNotAllowed(w, r, "GET, HEAD") }

// cleanPaths answers a path that is not in canonical form ("/v1//x",
// "/v1/./x", "/v1/../x") with the JSON 404 of an unknown route. Left to
// http.ServeMux, such a path gets a redirect to its cleaned form with an
// empty body, which an API client does not expect (and for a POST may not
// follow).
func (g *gateway) cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; r.Method != http.MethodConnect && p != "*" {
			clean := path.Clean(p)
			if strings.HasSuffix(p, "/") && clean != "/" {
				clean += "/"
			}
			// An empty path: a request target such as "//healthz", which
			// Go reads as an authority.
			if p == "" || clean != p {
				st := g.restStatus(r.Context(), r, status.Error(codes.NotFound, http.StatusText(http.StatusNotFound)))
				writeStatusJSON(w, apierr.HTTPStatus(st), st)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type gateway struct {
	log     *zap.Logger
	opts    Options
	metrics *metrics
}

func handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// ReadySet is what /readyz waits for.
type ReadySet struct {
	// Names are the backends (Backend.Name) that must answer the gRPC
	// health check with SERVING.
	Names []string
	// How says why these (e.g. "configured in gateway.backends"); shown in
	// the /readyz body.
	How string
}

// handleReadyz answers 200 when the backends deployed with or behind the
// edge serve, else 503. The body names them and the state of each (never
// an address or an error text: /readyz is reachable from outside):
//
//	ok
//	waits for: identity, ticket (running in this process or registered in etcd)
//	identity: serving
//	ticket: serving
func (g *gateway) handleReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if g.opts.Ready != nil {
		if err := g.opts.Ready(r.Context()); err != nil {
			g.log.Warn("readiness check failed", zap.Error(err))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: a UIAS service is unavailable"))
			return
		}
		_, _ = w.Write([]byte("ok"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	set, err := g.opts.ReadyFor(ctx)
	if err != nil {
		g.log.Warn("readiness check failed", zap.Error(err))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready\n%s\n", err)
		return
	}
	states, ok := g.backendStates(ctx, set.Names)
	var b strings.Builder
	if ok {
		b.WriteString("ok\n")
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("not ready\n")
	}
	fmt.Fprintf(&b, "waits for: %s (%s)\n", strings.Join(set.Names, ", "), set.How)
	for i, name := range set.Names {
		fmt.Fprintf(&b, "%s: %s\n", name, states[i])
	}
	_, _ = w.Write([]byte(b.String()))
}

// backendStates asks the standard gRPC health service of each named
// backend, all at once, and returns a word for each ("serving", "not
// serving", "unavailable", "not served by this edge") and whether all
// serve. An empty list is not ready.
func (g *gateway) backendStates(ctx context.Context, names []string) ([]string, bool) {
	states := make([]string, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		idx := slices.IndexFunc(g.opts.Backends, func(b Backend) bool { return b.Name == name })
		if idx < 0 {
			states[i] = "not served by this edge"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The component's own health (module.HealthService), not the
			// whole process's: in one process with others, a component
			// not ready (ticket, whose sessions are in NATS, while NATS
			// is down) is named alone. A process of an earlier version
			// knows only "" (NOT_FOUND): asked that instead.
			hc := healthpb.NewHealthClient(g.opts.Backends[idx].Conn)
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: module.HealthService(name)})
			if status.Code(err) == codes.NotFound {
				resp, err = hc.Check(ctx, &healthpb.HealthCheckRequest{})
			}
			switch {
			case err != nil:
				g.log.Warn("readiness: backend health check failed", zap.String("component", name), zap.Error(err))
				states[i] = "unavailable"
			case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
				g.log.Warn("readiness: backend not serving", zap.String("component", name), zap.Stringer("status", resp.GetStatus()))
				states[i] = "not serving"
			default:
				states[i] = "serving"
			}
		}()
	}
	wg.Wait()
	ok := len(names) > 0
	for _, s := range states {
		ok = ok && s == "serving"
	}
	return states, ok
}
