package apierr

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
)

// Reason declares one error reason: what every error carrying it answers.
// Reasons are the contract with callers (docs/integrators.md lists them all,
// generated from this table); a reason's code and legacy code do not change
// once published.
type Reason struct {
	// Name is the ErrorInfo reason: UPPER_SNAKE_CASE, at most 63 characters.
	Name string
	// Code is the gRPC code of the status.
	Code Code
	// Legacy is the legacy result code sent as ErrorInfo metadata
	// legacy_code (e.g. -5 bad request data, -6 system error); 0 means none.
	Legacy int
	// HTTP is the REST status when it differs from the code's default
	// (HTTPStatusOfCode); 0 means the default.
	HTTP int
	// Doc says when the reason is answered, in one line for integrators.
	Doc string
}

// HTTPStatus returns the REST status of r.
func (r Reason) HTTPStatus() int {
	if r.HTTP != 0 {
		return r.HTTP
	}
	return HTTPStatusOfCode(r.Code.GRPCCode())
}

var reasonName = regexp.MustCompile(`^[A-Z][A-Z0-9_]{1,61}[A-Z0-9]$`)

// registry is the one table of reasons. It is filled by Register calls at
// package initialisation (this package's generic reasons first, then every
// package that declares its own), so it is complete before any request.
var registry = struct {
	sync.RWMutex
	m map[string]Reason
}{m: map[string]Reason{}}

// Register adds reasons to the table. Call it from an init function of the
// package whose errors use them (or explicitly before the first error is
// answered). Registering the same declaration twice is allowed; registering a
// name with a different declaration, a malformed name, an unknown code or an
// HTTP status outside 400..599 panics: these are programming errors that
// must fail at start-up, not at the first error.
func Register(rs ...Reason) {
	registry.Lock()
	defer registry.Unlock()
	for _, r := range rs {
		if err := r.check(); err != nil {
			panic("apierr.Register: " + err.Error())
		}
		if old, ok := registry.m[r.Name]; ok {
			if old != r {
				panic(fmt.Sprintf("apierr.Register: reason %s registered twice with different declarations (%+v and %+v)", r.Name, old, r))
			}
			continue
		}
		registry.m[r.Name] = r
	}
}

func (r Reason) check() error {
	if !reasonName.MatchString(r.Name) || strings.Contains(r.Name, "__") {
		return fmt.Errorf("reason %q is not UPPER_SNAKE_CASE of at most 63 characters", r.Name)
	}
	if _, ok := codeInfo[r.Code]; !ok {
		return fmt.Errorf("reason %s has unknown code %d", r.Name, int(r.Code))
	}
	if r.HTTP != 0 && (r.HTTP < 400 || r.HTTP > 599) {
		return fmt.Errorf("reason %s: HTTP status %d is not an error status", r.Name, r.HTTP)
	}
	if strings.TrimSpace(r.Doc) == "" {
		return fmt.Errorf("reason %s has no Doc (it is listed in the integrators' guide)", r.Name)
	}
	return nil
}

// Lookup returns the declaration of a registered reason.
func Lookup(name string) (Reason, bool) {
	registry.RLock()
	defer registry.RUnlock()
	r, ok := registry.m[name]
	return r, ok
}

// Reasons returns every registered reason, sorted by name.
func Reasons() []Reason {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]Reason, 0, len(registry.m))
	for _, r := range registry.m {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Reason) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// genericReason returns the reason named after code c (e.g. NOT_FOUND), used
// for errors that carry a code but no reason of their own.
func genericReason(c Code) Reason {
	r, ok := Lookup(c.String())
	if !ok {
		r, _ = Lookup(ReasonInternal)
	}
	return r
}

// The generic reasons: one per code, for errors that name no reason of their
// own (errors from the gRPC library, context errors, an *Error without a
// Reason) and for the funnel's own answers (INTERNAL); and BAD_REQUEST, the
// reason of malformed requests in every component.
func init() {
	Register(
		Reason{Name: "INVALID_ARGUMENT", Code: InvalidArgument, Legacy: -5,
			Doc: "Malformed request (also REST path or query parameters the REST edge cannot parse)."},
		Reason{Name: ReasonBadRequest, Code: InvalidArgument, Legacy: -5,
			Doc: "Malformed request: a field missing, too long, not valid UTF-8, with control characters or breaking its rule (e.g. auth_type, extend info), or a gRPC message that is not valid protobuf. The message starts with the field's name and never echoes a password; metadata `field` holds the field's proto name when one field is at fault."},
		Reason{Name: "NOT_FOUND", Code: NotFound,
			Doc: "The addressed object does not exist (the message names it); also an unknown REST route."},
		Reason{Name: "ALREADY_EXISTS", Code: AlreadyExists,
			Doc: "An object with the same unique key exists (the message names the key)."},
		Reason{Name: "FAILED_PRECONDITION", Code: FailedPrecondition,
			Doc: "The object is not in a state that allows the call."},
		Reason{Name: "PERMISSION_DENIED", Code: PermissionDenied,
			Doc: "The caller may not make this call."},
		Reason{Name: "UNAUTHENTICATED", Code: Unauthenticated,
			Doc: "The caller is not authenticated."},
		Reason{Name: "RESOURCE_EXHAUSTED", Code: ResourceExhausted,
			Doc: "A limit was hit that has no reason of its own."},
		Reason{Name: "UNAVAILABLE", Code: Unavailable, Legacy: -6,
			Doc: "A service is temporarily unavailable; retry with back-off."},
		Reason{Name: ReasonInternal, Code: Internal, Legacy: -6,
			Doc: "Unexpected failure; the details are only in the server log."},
		Reason{Name: "DEADLINE_EXCEEDED", Code: DeadlineExceeded,
			Doc: "The call's deadline passed before it finished (a client maps this to -99)."},
		Reason{Name: "CANCELED", Code: Canceled,
			Doc: "The caller canceled the call."},
		Reason{Name: "UNIMPLEMENTED", Code: Unimplemented,
			Doc: "The method is not served here."},
	)
}

// HTTPStatusOfCode is the default REST status of a gRPC code (the mapping of
// google.rpc.Code to HTTP, as grpc-gateway's runtime.HTTPStatusFromCode).
func HTTPStatusOfCode(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499 // client closed request
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
