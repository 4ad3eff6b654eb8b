package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
)

// Error reasons of the REST edge itself.
const (
	ReasonRequestTooLarge    = "REQUEST_TOO_LARGE"
	ReasonInvalidJSON        = "INVALID_JSON"
	ReasonServiceUnreachable = "SERVICE_UNREACHABLE"
	ReasonMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	ReasonUnsupportedType    = "UNSUPPORTED_CONTENT_TYPE"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonRequestTooLarge, Code: apierr.InvalidArgument, Legacy: -5, HTTP: http.StatusRequestEntityTooLarge,
			Doc: "REST: the request body is over the limit (1 MiB by default)."},
		apierr.Reason{Name: ReasonInvalidJSON, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "REST: the request body is not valid JSON for the request (syntax error, not an object, unknown field, wrong type); metadata `field` holds the field's proto name when one field is at fault."},
		apierr.Reason{Name: ReasonServiceUnreachable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "REST: the edge cannot reach the service behind it (the message names it: \"identity service unavailable, try again later\"); retry with back-off."},
		apierr.Reason{Name: ReasonUnsupportedType, Code: apierr.InvalidArgument, Legacy: -5, HTTP: http.StatusUnsupportedMediaType,
			Doc: "REST: the request has a body whose Content-Type is not JSON; send application/json (or no Content-Type)."},
		apierr.Reason{Name: ReasonMethodNotAllowed, Code: apierr.Unimplemented, HTTP: http.StatusMethodNotAllowed,
			Doc: "REST: the path exists but not with this HTTP method (the Allow header lists those it has)."},
	)
}

// jsonMarshaler is runtime.JSONPb with request-body decode errors reworded so
// a client sees that its JSON was at fault, and noted in the request state so
// the error handler answers them as INVALID_JSON.
type jsonMarshaler struct {
	*runtime.JSONPb
}

// Marshal is JSONPb's Marshal without its copy of a message's JSON into a
// second buffer (the bytes are protojson's with the same options, as
// before).
func (m *jsonMarshaler) Marshal(v any) ([]byte, error) {
	if p, ok := v.(proto.Message); ok {
		return m.MarshalOptions.Marshal(p)
	}
	return m.JSONPb.Marshal(v)
}

// NewDecoder decodes request bodies like the JSONPb decoder; a body that
// does not fit the request is noted in the request state (badJSON, with
// the field at fault) and answered in the edge's own words.
func (m *jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	jd := json.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error {
		lb, _ := r.(*limitedBody)
		// A body of another Content-Type is refused (415) once there is
		// one: a bodiless POST or DELETE is an empty request whatever its
		// type says.
		typeOK := lb == nil || jsonContentType(lb.st.contentType)
		err := decodeBody(jd, typeOK, func(raw []byte) error {
			if p, ok := v.(proto.Message); ok {
				return unmarshalBody(m.UnmarshalOptions, raw, p)
			}
			return m.Unmarshal(raw, v)
		})
		if errors.Is(err, errNotJSON) {
			lb.st.notJSON = true
			return err
		}
		if err == nil || errors.Is(err, io.EOF) {
			return err
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		var b *badInput
		if !errors.As(err, &b) {
			b = &badInput{msg: "it does not fit the request"}
		}
		if lb, ok := r.(*limitedBody); ok {
			lb.st.badJSON = b
		}
		return errors.New("invalid JSON request body: " + b.msg)
	})
}

// jsonContentType reports whether a request body with Content-Type ct is
// read as JSON: none given, application/json or application/*+json, in
// UTF-8.
func jsonContentType(ct string) bool {
	if strings.TrimSpace(ct) == "" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// errorHandler turns errors into HTTP responses. The status and body come
// from the gRPC status and its ErrorInfo only (apierr.HTTPStatus: the
// registered reason's HTTP status, else the code's default), never from
// message text; 429 responses carry Retry-After. The body is grpc-gateway's
// (code, message, details).
func (g *gateway) errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := g.restStatus(ctx, r, err)
	code := apierr.HTTPStatus(st)
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfter(st))
	}
	if code == http.StatusUnauthorized {
		// grpc-gateway would send the status message as WWW-Authenticate,
		// which is no RFC 7235 challenge; challengeWriter puts ours in.
		w = challengeWriter{ResponseWriter: w, challenge: challenge(apierr.Info(st).GetReason(), r.Header)}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: code, Err: st.Err()})
}

// The authentication schemes of the REST edge, for WWW-Authenticate
// (RFC 7235): administrators send a bearer token (RFC 6750), applications
// their App_ID and App_Secret in X-Uias-App-Id and X-Uias-App-Secret, the
// scheme called UIAS-App (docs/integrators.md).
const (
	realm           = `realm="uias"`
	bearerChallenge = "Bearer " + realm
	appChallenge    = "UIAS-App " + realm
)

// challenge is the WWW-Authenticate value of a 401 with ErrorInfo reason
// and request headers h: the scheme the refused credentials belong to
// (a bearer token that was sent is invalid_token), both when the reason
// and the headers do not tell.
func challenge(reason string, h http.Header) string {
	sentToken := h.Get("Authorization") != ""
	sentApp := h.Get(headerAppID) != "" || h.Get(headerAppSecret) != ""
	switch {
	case reason == "BAD_APP_CREDENTIALS" || reason == "CLIENT_CERT_REQUIRED" || reason == caller.ReasonAppSecretExpired ||
		reason == caller.ReasonAppSecretReplaced:
		return appChallenge
	case reason == "BAD_ADMIN_LOGIN":
		return bearerChallenge // the login that hands out the token
	case (reason == "BAD_ADMIN_TOKEN" || !sentApp) && sentToken:
		return bearerChallenge + `, error="invalid_token"`
	case reason == "BAD_ADMIN_TOKEN":
		return bearerChallenge
	case sentApp:
		return appChallenge
	}
	return bearerChallenge + ", " + appChallenge
}

// challengeWriter sets WWW-Authenticate when the status is written.
type challengeWriter struct {
	http.ResponseWriter
	challenge string
}

func (w challengeWriter) WriteHeader(code int) {
	w.Header().Set("WWW-Authenticate", w.challenge)
	w.ResponseWriter.WriteHeader(code)
}

func (w challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// retryAfter is the Retry-After of a 429: the ErrorInfo metadata
// retry_after_seconds when the service gives one (a throttled login), else 1.
func retryAfter(st *status.Status) string {
	if v := apierr.Info(st).GetMetadata()["retry_after_seconds"]; v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 86400 {
			return strconv.Itoa(n)
		}
	}
	return "1"
}

// restStatus is the status answered for err, always with an ErrorInfo:
//   - what the edge itself noted about the request (body too large, body
//     not valid JSON);
//   - a status with a UIAS ErrorInfo: the answer of a service's error
//     funnel, sent as it is;
//   - UNAVAILABLE without ErrorInfo: no service answered (every UIAS answer
//     carries an ErrorInfo), so this is the edge's own call failing in the
//     transport; its text, which names internal addresses, is logged only;
//   - anything else (grpc-gateway's routing and parameter errors, other
//     client-side failures) through the error funnel, which keeps
//     caller-caused messages and hides server-side ones.
func (g *gateway) restStatus(ctx context.Context, r *http.Request, err error) *status.Status {
	if rs := stateFrom(r.Context()); rs != nil {
		switch {
		case rs.bodyTooLarge && rs.limit > 0:
			return tooLargeStatus(rs.limit)
		case rs.bodyTooLarge:
			return tooLargeStatus(g.opts.MaxBodyBytes)
		case rs.notJSON:
			return status.Convert(apierr.ToStatus(apierr.New(apierr.InvalidArgument, ReasonUnsupportedType,
				"the request body must be JSON in UTF-8: send it with Content-Type: application/json (no charset, or charset=utf-8)")))
		case rs.badJSON != nil:
			e := apierr.New(apierr.InvalidArgument, ReasonInvalidJSON, "invalid JSON request body: "+rs.badJSON.msg)
			if rs.badJSON.field != "" {
				e = e.WithMeta(grpcx.MetaField, rs.badJSON.field)
			}
			return status.Convert(apierr.ToStatus(e))
		}
	}
	var custom *runtime.HTTPStatusError
	if errors.As(err, &custom) {
		err = custom.Err
	}
	s := status.Convert(err)
	if apierr.Info(s) != nil {
		return s
	}
	// No service answers INVALID_ARGUMENT without an ErrorInfo: this is
	// grpc-gateway refusing a path or query parameter, in its words. Say
	// which in ours.
	if s.Code() == codes.InvalidArgument {
		if md := rpcInput(ctx); md != nil {
			var params map[string]string
			if rs := stateFrom(r.Context()); rs != nil {
				params = rs.pathParams
			}
			if b := paramProblem(md, params, r.URL.Query()); b != nil {
				return status.Convert(apierr.ToStatus(grpcx.BadRequest(b.field, b.msg)))
			}
		}
	}
	if s.Code() == codes.Unavailable {
		g.log.Warn("service unreachable", zap.String("route", routeOf(r)), zap.String("error", s.Message()))
		return status.Convert(apierr.ToStatus(apierr.New(apierr.Unavailable, ReasonServiceUnreachable, unreachableMessage(ctx))))
	}
	return status.Convert(apierr.ToStatusLogged(g.log.With(zap.String("route", routeOf(r))), err))
}

// unreachableMessage is the message of SERVICE_UNREACHABLE: it names the
// component of the called method ("identity service unavailable, try again
// later"), taken from its proto package uias.<component>.v1, never from the
// transport error (which names internal addresses).
func unreachableMessage(ctx context.Context) string {
	if m, ok := runtime.RPCMethod(ctx); ok {
		svc, _, _ := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		if parts := strings.Split(svc, "."); len(parts) >= 3 && parts[0] == "uias" && componentRE.MatchString(parts[1]) {
			return parts[1] + " service unavailable, try again later"
		}
	}
	return "service unavailable, try again later"
}

var componentRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func routeOf(r *http.Request) string {
	if rs := stateFrom(r.Context()); rs != nil && rs.route != "" {
		return rs.route
	}
	return "unmatched"
}

func tooLargeStatus(limit int64) *status.Status {
	return status.Convert(apierr.ToStatus(apierr.New(apierr.InvalidArgument, ReasonRequestTooLarge,
		fmt.Sprintf("request body too large: the limit is %d bytes", limit))))
}
