package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
)

// restMethods are the methods a REST route can have (google.api.http).
var restMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// probeKey marks a request that is replayed through the grpc-gateway mux only
// to learn whether a route exists for its method and path; its value is a
// *bool set when one does.
type probeKey struct{}

// probeMiddleware is the outermost grpc-gateway middleware: a probe stops
// here, before anything reaches a service.
func probeMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if hit, ok := r.Context().Value(probeKey{}).(*bool); ok {
			*hit = true
			return
		}
		next(w, r, params)
	}
}

// routingErrorHandler answers a known path with a method it does not serve
// with 405, an Allow header and the usual JSON error body (grpc-gateway's
// default would be 501). Other routing errors keep the default handling.
func (g *gateway) routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if _, probing := r.Context().Value(probeKey{}).(*bool); probing {
		return
	}
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	methodNotAllowed(w, r, strings.Join(allowedMethods(mux, r), ", "))
}

// methodNotAllowed answers 405 with Allow and the usual JSON error body.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed string) {
	w.Header().Set("Allow", allowed)
	st := status.Convert(apierr.ToStatus(apierr.New(apierr.Unimplemented, ReasonMethodNotAllowed,
		fmt.Sprintf("method %s is not allowed on this path; allowed: %s", r.Method, allowed))))
	writeStatusJSON(w, apierr.HTTPStatus(st), st)
}

// allowedMethods lists the methods mux routes r's path for, by replaying a
// bodiless probe request per method (stopped by probeMiddleware), so the
// answer follows grpc-gateway's own matching.
func allowedMethods(mux http.Handler, r *http.Request) []string {
	var allowed []string
	for _, method := range restMethods {
		hit := false
		ctx := context.WithValue(r.Context(), probeKey{}, &hit)
		probe := (&http.Request{
			Method: method,
			URL:    &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath},
			Header: http.Header{},
			Body:   http.NoBody,
		}).WithContext(ctx)
		mux.ServeHTTP(discardResponse{}, probe)
		if hit {
			allowed = append(allowed, method)
		}
	}
	return allowed
}

// discardResponse is the response writer of probes.
type discardResponse struct{}

func (discardResponse) Header() http.Header         { return http.Header{} }
func (discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (discardResponse) WriteHeader(int)             {}
