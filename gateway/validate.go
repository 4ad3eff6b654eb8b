package gateway

import (
	"net/http"
	"sort"
	"unicode/utf8"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
)

// The services check every string of every request (pkg/grpcx: protobuf
// decoding verifies UTF-8, protovalidate the rest). A path or query
// parameter that is not UTF-8 once percent-decoded would never get there:
// the gRPC client refuses to encode such a request, an INTERNAL error. So
// the edge answers for it, as the service would: 400, INVALID_ARGUMENT,
// legacy code -5, the parameter named.

// badUTF8Param returns the error for the first path or query parameter of r
// whose name or value is not valid UTF-8, or nil.
func badUTF8Param(r *http.Request, pathParams map[string]string) error {
	names := make([]string, 0, len(pathParams))
	for k := range pathParams {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !utf8.ValidString(pathParams[k]) {
			return notUTF8(k, "path parameter")
		}
	}
	q := r.URL.Query()
	names = names[:0]
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !utf8.ValidString(k) {
			return apierr.ToStatus(grpcx.BadRequest("", "a query parameter name is not valid UTF-8"))
		}
		for _, v := range q[k] {
			if !utf8.ValidString(v) {
				return notUTF8(k, "query parameter")
			}
		}
	}
	return nil
}

func notUTF8(field, what string) error {
	return apierr.ToStatus(grpcx.BadRequest(field, field+" ("+what+") is not valid UTF-8"))
}
