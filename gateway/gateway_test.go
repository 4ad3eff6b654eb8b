package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// echoAuth is a stand-in AuthService: Authenticate returns the incoming
// metadata as JSON in the message field, or, when app_user_id is "code:N",
// fails with gRPC code N.
type echoAuth struct {
	identityv1.UnimplementedAuthServiceServer
}

func (echoAuth) Authenticate(ctx context.Context, req *identityv1.AuthenticateRequest) (*identityv1.AuthenticateResponse, error) {
	if c, ok := strings.CutPrefix(req.GetAppUserId(), "bare:"); ok {
		// A status without ErrorInfo, as a foreign peer or the gRPC library
		// would send, naming an internal address.
		n, _ := strconv.Atoi(c)
		return nil, status.Error(codes.Code(n), "backend at 10.9.8.7:5432 exploded")
	}
	if req.GetAppUserId() == "deadline" {
		// the call's deadline, as the service sees it
		dl, ok := ctx.Deadline()
		left := "none"
		if ok {
			left = strconv.Itoa(int(time.Until(dl) / time.Second))
		}
		if err := grpc.SetHeader(ctx, metadata.Pairs("x-left", left)); err != nil {
			return nil, err
		}
		return &identityv1.AuthenticateResponse{}, nil
	}
	if req.GetAppUserId() == "hang" {
		// a component that stops answering mid-call
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if v, ok := strings.CutPrefix(req.GetAppUserId(), "header:"); ok {
		// Response header metadata of the service's own.
		if err := grpc.SetHeader(ctx, metadata.Pairs("x-answer", v)); err != nil {
			return nil, err
		}
	}
	if r, ok := strings.CutPrefix(req.GetAppUserId(), "unauthenticated:"); ok {
		// A service refusing the caller with ErrorInfo reason r.
		st, err := status.New(codes.Unauthenticated, "caller refused ("+r+")").
			WithDetails(&errdetails.ErrorInfo{Reason: r, Domain: apierr.Domain})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	if c, ok := strings.CutPrefix(req.GetAppUserId(), "code:"); ok {
		n, err := strconv.Atoi(c)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, "bad code")
		}
		st := status.New(codes.Code(n), "failure on demand")
		if withDetails, err := st.WithDetails(&errdetails.ErrorInfo{Reason: "ON_DEMAND", Domain: "uias.dev", Metadata: map[string]string{"legacy_code": "-6"}}); err == nil {
			st = withDetails
		}
		return nil, st.Err()
	}
	md, _ := metadata.FromIncomingContext(ctx)
	b, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	return &identityv1.AuthenticateResponse{Message: string(b), ResultCode: 0, Reason: identityv1.Reason_REASON_OK}, nil
}

type env struct {
	url   string
	grpc  *grpc.Server
	reg   *prometheus.Registry
	close func()
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	identityv1.RegisterAuthServiceServer(gs, echoAuth{})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	o := Options{Logger: zaptest.NewLogger(t), Registry: reg, Backends: []Backend{{Name: "identity", Conn: conn, REST: identityREST}}}
	if mod != nil {
		mod(&o)
	}
	h, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	e := &env{url: srv.URL, grpc: gs, reg: reg}
	e.close = func() {
		srv.Close()
		cancel()
		_ = conn.Close()
		gs.Stop()
	}
	t.Cleanup(e.close)
	return e
}

type result struct {
	code   int
	header http.Header
	body   []byte
}

func (e *env) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{code: resp.StatusCode, header: resp.Header, body: b}
}

// echoedMD calls Authenticate and returns the metadata the backend received.
func (e *env) echoedMD(t *testing.T, hdr map[string]string) (metadata.MD, result) {
	t.Helper()
	r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"alice","password":"x"}`), hdr)
	if r.code != http.StatusOK {
		t.Fatalf("status %d, body %s", r.code, r.body)
	}
	var resp struct {
		Message    string `json:"message"`
		ResultCode *int   `json:"result_code"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("response %s: %v", r.body, err)
	}
	if resp.ResultCode == nil {
		t.Errorf("result_code missing from %s (EmitUnpopulated expected)", r.body)
	}
	var md metadata.MD
	if err := json.Unmarshal([]byte(resp.Message), &md); err != nil {
		t.Fatalf("echoed metadata %q: %v", resp.Message, err)
	}
	return md, r
}

func TestHeadersForwarded(t *testing.T) {
	e := newEnv(t, nil)
	md, r := e.echoedMD(t, map[string]string{
		"X-Uias-App-Id":     "app-1",
		"X-Uias-App-Secret": "s3cret",
		"Authorization":     "Bearer tok",
		"X-Request-Id":      "req-42",
		"X-Custom":          "nope",
		"Cookie":            "a=b",
		"Grpc-Metadata-Foo": "bar",
		"X-Forwarded-Host":  "evil.example",
		"Grpc-Timeout":      "1S",
	})
	want := map[string]string{
		"x-uias-app-id":     "app-1",
		"x-uias-app-secret": "s3cret",
		"authorization":     "Bearer tok",
		"x-request-id":      "req-42",
		"x-uias-client-ip":  "127.0.0.1",
		"x-forwarded-for":   "127.0.0.1",
	}
	for k, v := range want {
		if got := md.Get(k); len(got) != 1 || got[0] != v {
			t.Errorf("metadata %s = %q, want [%q]", k, got, v)
		}
	}
	for _, k := range []string{"x-custom", "cookie", "foo", "grpcgateway-foo", "x-forwarded-host", "grpcgateway-cookie"} {
		if got := md.Get(k); len(got) != 0 {
			t.Errorf("metadata %s = %q, want it dropped", k, got)
		}
	}
	// Only the forwarded keys plus gRPC's own transport keys may appear.
	allowed := map[string]bool{":authority": true, "content-type": true, "user-agent": true, "grpc-accept-encoding": true}
	for k := range want {
		allowed[k] = true
	}
	for k := range md {
		if !allowed[k] {
			t.Errorf("unexpected metadata key %q = %q", k, md[k])
		}
	}
	if got := r.header.Get("X-Request-Id"); got != "req-42" {
		t.Errorf("response X-Request-Id = %q, want req-42", got)
	}
}

// TestRESTDeadline: a REST call whose component stops answering ends with
// 504 DEADLINE_EXCEEDED at the edge's deadline, or the caller's shorter
// Grpc-Timeout; a Grpc-Timeout that is none is refused (trial12 D1, D2).
func TestRESTDeadline(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RequestTimeout = 300 * time.Millisecond })
	call := func(hdr map[string]string) result {
		return e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"hang","password":"x"}`), hdr)
	}
	start := time.Now()
	if r := call(nil); r.code != http.StatusGatewayTimeout {
		t.Fatalf("a hung component: %d %s", r.code, r.body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the edge's deadline took %v", d)
	}
	if r := call(map[string]string{"Grpc-Timeout": "20m"}); r.code != http.StatusGatewayTimeout {
		t.Fatalf("a hung component with Grpc-Timeout: %d %s", r.code, r.body)
	}
	// the caller's deadline reaches the component
	if r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"alice","password":"x"}`),
		map[string]string{"Grpc-Timeout": "1n"}); r.code != http.StatusGatewayTimeout {
		t.Fatalf("Grpc-Timeout 1n: %d %s", r.code, r.body)
	}
	for _, bad := range []string{"3", "S", "3s", "-1S", "123456789S", "1.5S"} {
		r := call(map[string]string{"Grpc-Timeout": bad})
		if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), "Grpc-Timeout") {
			t.Errorf("Grpc-Timeout %q: %d %s", bad, r.code, r.body)
		}
	}
	if r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"alice","password":"x"}`),
		map[string]string{"Grpc-Timeout": "5S"}); r.code != http.StatusOK {
		t.Fatalf("Grpc-Timeout 5S: %d %s", r.code, r.body)
	}
}

// TestFileRouteDeadline: the calls of a backend's file routes (uploads,
// downloads) get restfile.FileTime, not the API calls' deadline (review
// sec21 H1).
func TestFileRouteDeadline(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.RequestTimeout = time.Minute
		o.Backends[0].FileRoutes = []string{"/v1/authenticate"}
	})
	r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"deadline","password":"x"}`), nil)
	left, err := strconv.Atoi(r.header.Get("Grpc-Metadata-X-Left"))
	if r.code != http.StatusOK || err != nil || time.Duration(left)*time.Second < time.Hour {
		t.Fatalf("a file route's deadline: %d left %q", r.code, r.header.Get("Grpc-Metadata-X-Left"))
	}
	e2 := newEnv(t, func(o *Options) { o.RequestTimeout = time.Minute })
	r = e2.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"deadline","password":"x"}`), nil)
	if left, err := strconv.Atoi(r.header.Get("Grpc-Metadata-X-Left")); r.code != http.StatusOK || err != nil || left > 60 {
		t.Fatalf("an API call's deadline: %d left %q", r.code, r.header.Get("Grpc-Metadata-X-Left"))
	}
}

func TestRequestIDGenerated(t *testing.T) {
	e := newEnv(t, nil)
	md, r := e.echoedMD(t, nil)
	id := r.header.Get("X-Request-Id")
	if id == "" {
		t.Fatal("no X-Request-Id in response")
	}
	if got := md.Get("x-request-id"); len(got) != 1 || got[0] != id {
		t.Errorf("backend saw request id %q, response says %q", got, id)
	}
	// A malformed id, or one the gRPC servers would not accept (they would
	// log and audit another serial), is replaced.
	for _, bad := range []string{"bad id with spaces", "a:b/c", strings.Repeat("x", 65)} {
		md, r = e.echoedMD(t, map[string]string{"X-Request-Id": bad})
		if id := r.header.Get("X-Request-Id"); id == "" || id == bad || md.Get("x-request-id")[0] != id {
			t.Errorf("request id %q not replaced: response %q, backend %q", bad, id, md.Get("x-request-id"))
		}
	}
	long := strings.Repeat("y", 64)
	if md, r = e.echoedMD(t, map[string]string{"X-Request-Id": long}); r.header.Get("X-Request-Id") != long || md.Get("x-request-id")[0] != long {
		t.Errorf("64-character id not kept: %q", r.header.Get("X-Request-Id"))
	}
}

func TestForwardedForOnlyFromTrustedPeer(t *testing.T) {
	untrusted := newEnv(t, nil)
	md, _ := untrusted.echoedMD(t, map[string]string{"X-Forwarded-For": "203.0.113.7"})
	if got := md.Get("x-uias-client-ip"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("untrusted peer: x-uias-client-ip = %q, want [127.0.0.1]", got)
	}

	trusted := newEnv(t, func(o *Options) {
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	})
	md, _ = trusted.echoedMD(t, map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.1.2.3"})
	if got := md.Get("x-uias-client-ip"); len(got) != 1 || got[0] != "203.0.113.7" {
		t.Errorf("trusted peer: x-uias-client-ip = %q, want [203.0.113.7]", got)
	}
	md, _ = trusted.echoedMD(t, nil)
	if got := md.Get("x-uias-client-ip"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("trusted peer without header: x-uias-client-ip = %q, want [127.0.0.1]", got)
	}
}

type errorBody struct {
	Code    *int              `json:"code"`
	Message string            `json:"message"`
	Details []json.RawMessage `json:"details"`
}

func TestStatusMapping(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		code codes.Code
		http int
	}{
		{codes.Unauthenticated, 401},
		{codes.PermissionDenied, 403},
		{codes.ResourceExhausted, 429},
		{codes.InvalidArgument, 400},
		{codes.NotFound, 404},
		{codes.AlreadyExists, 409},
		{codes.FailedPrecondition, 400},
		{codes.Unavailable, 503},
		{codes.Internal, 500},
		{codes.DeadlineExceeded, 504},
	}
	for _, c := range cases {
		t.Run(c.code.String(), func(t *testing.T) {
			body := `{"app_user_id":"code:` + strconv.Itoa(int(c.code)) + `"}`
			r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(body), nil)
			if r.code != c.http {
				t.Fatalf("HTTP %d, want %d (body %s)", r.code, c.http, r.body)
			}
			var eb errorBody
			if err := json.Unmarshal(r.body, &eb); err != nil {
				t.Fatalf("error body %s: %v", r.body, err)
			}
			if eb.Code == nil || *eb.Code != int(c.code) || eb.Message != "failure on demand" {
				t.Errorf("error body %s", r.body)
			}
			if len(eb.Details) != 1 || !bytes.Contains(eb.Details[0], []byte("ON_DEMAND")) {
				t.Errorf("details missing ErrorInfo: %s", r.body)
			}
			retry := r.header.Get("Retry-After")
			if c.code == codes.ResourceExhausted && retry != "1" {
				t.Errorf("Retry-After = %q, want 1", retry)
			}
			if c.code != codes.ResourceExhausted && retry != "" {
				t.Errorf("unexpected Retry-After %q", retry)
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Error("error response lacks X-Request-Id")
			}
		})
	}
}

// TestMalformedJSON: a body that is not JSON, or not JSON for the request,
// answers 400 INVALID_JSON in the edge's words (no "proto:" or Go library
// text), naming the field by its proto name, also in ErrorInfo metadata
// "field".
func TestMalformedJSON(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		body, field, msg string
	}{
		{`{"app_user_id": `, "", "not valid JSON: it ends before the JSON value is complete"},
		{`not json`, "", "not valid JSON (error at byte 2)"},
		{`{"app_user_id": "a",}`, "", "not valid JSON (error at byte 21)"},
		{`[]`, "", "it must be a JSON object"},
		{`"text"`, "", "it must be a JSON object"},
		{`{"no_such_field": 1}`, "no_such_field", `unknown field "no_such_field"`},
		{`{"x y\u0001": 1}`, "", `unknown field "x y\x01"`},
		{`{"` + strings.Repeat("n", 100) + `": 1}`, "", `unknown field "` + strings.Repeat("n", 64) + `…"`},
		{`{"app_user_id":123,"password":"p","auth_type":1}`, "app_user_id", "app_user_id must be a JSON string of valid UTF-8"},
		{`{"appUserId":123}`, "app_user_id", "app_user_id must be a JSON string of valid UTF-8"},
		{`{"app_user_id":"a","appUserId":"b"}`, "app_user_id", "app_user_id is given twice"},
		{`{"auth_type":"FINGER"}`, "auth_type", "auth_type must be one of AUTH_TYPE_UNSPECIFIED, AUTH_TYPE_PASSWORD, AUTH_TYPE_FINGERPRINT, AUTH_TYPE_PASSWORD_AND_FINGERPRINT, AUTH_TYPE_CERTIFICATE, AUTH_TYPE_EXTERNAL (or its number)"},
		{`{"auth_type":1.5}`, "auth_type", "auth_type must be one of"},
		{`{"fingerprint_feature":"%%%"}`, "fingerprint_feature", "fingerprint_feature must be base64 text"},
		{`{"extend_info":[1]}`, "extend_info", "extend_info must be a JSON object"},
		{`{"extend_info":{"k":1}}`, "extend_info", `extend_info["k"] must be a JSON string of valid UTF-8`},
	} {
		r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(c.body), map[string]string{"Content-Type": "application/json"})
		got := e.restError(t, r)
		if r.code != http.StatusBadRequest || got.reason != ReasonInvalidJSON || got.legacy != "-5" ||
			!strings.HasPrefix(got.message, "invalid JSON request body: "+c.msg) || got.field != c.field {
			t.Errorf("%s: HTTP %d reason %q legacy %q field %q message %q; want 400 INVALID_JSON -5 field %q message %q",
				c.body, r.code, got.reason, got.legacy, got.field, got.message, c.field, c.msg)
		}
		for _, leak := range []string{"proto:", "protojson", "strconv", "appUserId", "line 1", "syntax error", "json:"} {
			if strings.Contains(got.raw, leak) {
				t.Errorf("%s: the answer shows library text %q: %s", c.body, leak, got.raw)
			}
		}
	}
	// A body that fits is not touched: the service answers.
	r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"appUserId":"a","auth_type":"AUTH_TYPE_PASSWORD","extend_info":{"k":"v"}}`), nil)
	if r.code != http.StatusOK {
		t.Errorf("a good body: HTTP %d %s", r.code, r.body)
	}
}

// TestWWWAuthenticate: every 401 carries an RFC 7235 challenge for the
// scheme whose credentials were refused (RFC 6750 for admin tokens), not
// the status message; other answers carry none.
func TestWWWAuthenticate(t *testing.T) {
	e := newEnv(t, nil)
	// RFC 7235: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ],
	// auth-param = token BWS "=" BWS ( token / quoted-string ).
	const token = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
	param := token + `=(?:` + token + `|"[^"\\]*")`
	chal := token + "(?: " + param + "(?:, " + param + ")*)?"
	valid := regexp.MustCompile("^" + chal + "(?:, " + chal + ")*$")
	app := map[string]string{"X-Uias-App-Id": "a1", "X-Uias-App-Secret": "s"}
	bearer := map[string]string{"Authorization": "Bearer expired"}
	for _, c := range []struct {
		reason string
		hdr    map[string]string
		want   string
	}{
		{"BAD_APP_CREDENTIALS", app, `UIAS-App realm="uias"`},
		{"BAD_APP_CREDENTIALS", nil, `UIAS-App realm="uias"`},
		{"CLIENT_CERT_REQUIRED", app, `UIAS-App realm="uias"`},
		{"BAD_ADMIN_TOKEN", nil, `Bearer realm="uias"`},
		{"BAD_ADMIN_TOKEN", bearer, `Bearer realm="uias", error="invalid_token"`},
		{"BAD_ADMIN_LOGIN", nil, `Bearer realm="uias"`},
		{"UNAUTHENTICATED", bearer, `Bearer realm="uias", error="invalid_token"`},
		{"UNAUTHENTICATED", app, `UIAS-App realm="uias"`},
		{"UNKNOWN_METHOD", nil, `Bearer realm="uias", UIAS-App realm="uias"`},
	} {
		r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"unauthenticated:`+c.reason+`"}`), c.hdr)
		got := r.header.Values("Www-Authenticate")
		if r.code != http.StatusUnauthorized || len(got) != 1 || got[0] != c.want || !valid.MatchString(got[0]) {
			t.Errorf("%s with %v: HTTP %d, WWW-Authenticate %q; want %q", c.reason, c.hdr, r.code, got, c.want)
		}
		if e.restError(t, r).reason != c.reason {
			t.Errorf("%s: body %s", c.reason, r.body)
		}
	}
	for _, body := range []string{`{"app_user_id":"code:7"}`, `{"app_user_id":"a"}`, `[]`} {
		if r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(body), bearer); r.header.Get("Www-Authenticate") != "" {
			t.Errorf("%s: HTTP %d with WWW-Authenticate %q", body, r.code, r.header.Get("Www-Authenticate"))
		}
	}
}

// TestFixedEndpointsWrongMethod: /healthz, /readyz, /metrics and
// /openapi.json answer another method than GET (HEAD) with 405, Allow and
// the JSON error body, as the API routes do; GET and HEAD still serve.
func TestFixedEndpointsWrongMethod(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			if r := e.do(t, m, p, nil, nil); r.code != http.StatusOK {
				t.Errorf("%s %s: HTTP %d", m, p, r.code)
			}
		}
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			r := e.do(t, m, p, strings.NewReader(`{}`), nil)
			got := e.restError(t, r)
			if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" || got.reason != ReasonMethodNotAllowed ||
				got.message != "method "+m+" is not allowed on this path; allowed: GET, HEAD" ||
				!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: HTTP %d Allow %q %s", m, p, r.code, r.header.Get("Allow"), r.body)
			}
		}
	}
	// Without metrics, /metrics is an unknown path for every method.
	e = newEnv(t, func(o *Options) { o.NoMetrics = true })
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if r := e.do(t, m, "/metrics", nil, nil); r.code != http.StatusNotFound || e.restError(t, r).reason != "NOT_FOUND" {
			t.Errorf("%s /metrics without metrics: HTTP %d %s", m, r.code, r.body)
		}
	}
}

// TestUncleanPaths: a path that is not in canonical form answers the JSON
// 404 of an unknown route, not a redirect with an empty body.
func TestUncleanPaths(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "//v1/authenticate"},
		{http.MethodPost, "/v1//authenticate"},
		{http.MethodPost, "/v1/./authenticate"},
		{http.MethodPost, "/v1/x/../authenticate"},
		{http.MethodGet, "//healthz"},
		{http.MethodGet, "/healthz//"},
		{http.MethodGet, "/openapi.json/."},
		{http.MethodGet, "http://x//healthz"},
	} {
		r := rawRequest(t, e.url, c.method, c.path, `{"app_user_id":"a"}`)
		got := e.restError(t, r)
		if r.code != http.StatusNotFound || got.reason != "NOT_FOUND" || r.header.Get("Location") != "" ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: HTTP %d Location %q %s", c.method, c.path, r.code, r.header.Get("Location"), r.body)
		}
	}
	// Clean paths are served as before.
	if r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"a"}`), nil); r.code != http.StatusOK {
		t.Errorf("clean path: HTTP %d %s", r.code, r.body)
	}
}

// rawRequest sends method with the request target exactly as given (an
// http.Client would rewrite "//x" as an absolute URL) and reads the answer.
func rawRequest(t *testing.T, base, method, target, body string) result {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: uias\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, target, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{code: resp.StatusCode, header: resp.Header, body: b}
}

// TestBodyContentType: a body is read as JSON only when it says so (or
// says nothing); anything else answers 415 with the JSON error body, before
// the service is called.
func TestBodyContentType(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"app_user_id":"a"}`
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8", "application/merge-patch+json"} {
		if r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(body), map[string]string{"Content-Type": ct}); r.code != http.StatusOK {
			t.Errorf("Content-Type %q: HTTP %d %s", ct, r.code, r.body)
		}
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1", "text/json+", "a/b/c", "multipart/form-data; boundary=x"} {
		r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(body), map[string]string{"Content-Type": ct})
		got := e.restError(t, r)
		if r.code != http.StatusUnsupportedMediaType || got.reason != ReasonUnsupportedType || got.legacy != "-5" ||
			got.message != "the request body must be JSON in UTF-8: send it with Content-Type: application/json (no charset, or charset=utf-8)" {
			t.Errorf("Content-Type %q: HTTP %d %s", ct, r.code, r.body)
		}
	}
	// A request without a body is an empty request whatever its type says
	// (some clients send a form type on every POST).
	if r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(""), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); r.code == http.StatusUnsupportedMediaType {
		t.Errorf("an empty body with a form type: HTTP %d %s", r.code, r.body)
	}
	// A route without a body does not look at it.
	if r := e.do(t, http.MethodGet, "/healthz", nil, map[string]string{"Content-Type": "text/plain"}); r.code != http.StatusOK {
		t.Errorf("GET with text/plain: HTTP %d", r.code)
	}
}

// TestNoTransportHeaders: the gRPC transport's own response metadata
// (content-type application/grpc) is not forwarded as Grpc-Metadata-*; a
// service's own header metadata still is.
func TestNoTransportHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{`{"app_user_id":"header:42"}`, `{"app_user_id":"code:5"}`} {
		r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(body), nil)
		for k := range r.header {
			if k == "Grpc-Metadata-Content-Type" || strings.HasPrefix(k, "Grpc-Metadata-Grpc-") {
				t.Errorf("%s: header %s: %q", body, k, r.header.Values(k))
			}
		}
		if strings.Contains(body, "header:") && r.header.Get("Grpc-Metadata-X-Answer") != "42" {
			t.Errorf("%s: the service's header metadata is not forwarded: %v", body, r.header)
		}
	}
}

// TestBadParameters: a path or query parameter grpc-gateway cannot parse
// answers 400 BAD_REQUEST naming the field, without strconv's words.
func TestBadParameters(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		rest := o.Backends[0].REST
		o.Backends[0].REST = func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			if err := identityv1.RegisterFingerServiceHandlerClient(ctx, mux, identityv1.NewFingerServiceClient(conn)); err != nil {
				return err
			}
			return rest(ctx, mux, conn)
		}
	})
	for _, c := range []struct {
		method, path, field, msg string
	}{
		{http.MethodGet, "/v1/users?page_size=abc", "page_size", "page_size (query parameter) must be an integer from -2147483648 to 2147483647"},
		{http.MethodGet, "/v1/users?pageSize=99999999999", "page_size", "page_size (query parameter) must be an integer from"},
		{http.MethodGet, "/v1/users?page_size=1&page_size=2", "page_size", "page_size (query parameter) is given more than once"},
		{http.MethodGet, "/v1/users?include_descendants=perhaps", "include_descendants", "include_descendants (query parameter) must be true or false"},
		{http.MethodGet, "/v1/users?status=GONE", "status", "status (query parameter) must be one of"},
		{http.MethodGet, "/v1/users?query[x]=1", "query", `query is not a map: query parameter "query[x]" is not valid`},
		{http.MethodGet, "/v1/users?page_size=abc&status=GONE", "page_size", "page_size (query parameter) must be"},
		{http.MethodDelete, "/v1/users/u1/fingers/thumb", "position", "position (path parameter) must be an integer from"},
	} {
		r := e.do(t, c.method, c.path, nil, nil)
		got := e.restError(t, r)
		if r.code != http.StatusBadRequest || got.reason != "BAD_REQUEST" || got.legacy != "-5" ||
			!strings.HasPrefix(got.message, c.msg) || got.field != c.field {
			t.Errorf("%s %s: HTTP %d reason %q legacy %q field %q message %q; want 400 BAD_REQUEST -5 field %q message %q",
				c.method, c.path, r.code, got.reason, got.legacy, got.field, got.message, c.field, c.msg)
		}
		for _, leak := range []string{"strconv", "parsing", "type mismatch", "ParseInt"} {
			if strings.Contains(got.raw, leak) {
				t.Errorf("%s: the answer shows library text %q: %s", c.path, leak, got.raw)
			}
		}
	}
	// A query parameter that names no field is refused, naming it and
	// what the call takes (a misspelt filter was dropped without a word);
	// good ones reach the service (here: not implemented).
	r := e.do(t, http.MethodGet, "/v1/users?page_size=5&utm_source=x", nil, nil)
	if got := e.restError(t, r); r.code != http.StatusBadRequest || got.reason != "BAD_REQUEST" || got.legacy != "-5" ||
		got.message != `query parameter "utm_source" does not name a field of the request; it takes page_size, page_token, org_id, query, status, include_descendants, password_expired, user_type` {
		t.Errorf("unknown parameter: HTTP %d %s", r.code, got.raw)
	}
	// a call whose path binds every field takes none (grpc-gateway does
	// not read its query)
	for _, path := range []string{"/v1/users/u1?fields=all", "/v1/users/u1?id=u2"} {
		r = e.do(t, http.MethodGet, path, nil, nil)
		if got := e.restError(t, r); r.code != http.StatusBadRequest || got.reason != "BAD_REQUEST" || got.legacy != "-5" ||
			!strings.HasSuffix(got.message, `is not taken: this call takes no query parameters`) {
			t.Errorf("%s: HTTP %d %s", path, r.code, got.raw)
		}
	}
	// a body naming a path-bound field otherwise was answered as if it
	// said the path's (review sec10 L3); the same value, or none, passes
	for _, c := range []struct{ path, body, field string }{
		{"/v1/users/u1", `{"id":"u2","display_name":"X"}`, "id"},
		{"/v1/users/u1/fingers", `{"userId":"u2","position":1}`, "user_id"},
		{"/v1/users/u1/fingers", `{"user_id":"u2","position":1}`, "user_id"},
	} {
		method := http.MethodPost
		if !strings.Contains(c.path, "fingers") {
			method = http.MethodPatch
		}
		r = e.do(t, method, c.path, strings.NewReader(c.body), nil)
		if got := e.restError(t, r); r.code != http.StatusBadRequest || got.reason != "BAD_REQUEST" || got.field != c.field ||
			!strings.Contains(got.message, "differs from the path's") {
			t.Errorf("%s %s: HTTP %d %s", c.path, c.body, r.code, got.raw)
		}
	}
	for _, body := range []string{`{"id":"u1","display_name":"X"}`, `{"display_name":"X"}`, `{"id":null}`} {
		r = e.do(t, http.MethodPatch, "/v1/users/u1", strings.NewReader(body), nil)
		if got := e.restError(t, r); r.code != http.StatusNotImplemented {
			t.Errorf("body %s agreeing with the path: HTTP %d %s", body, r.code, got.raw)
		}
	}
	for _, ok := range []string{"/v1/users?page_size=5&org_id=o1", "/v1/users?pageSize=5", "/v1/users/u1"} {
		r = e.do(t, http.MethodGet, ok, nil, nil)
		if got := e.restError(t, r); r.code != http.StatusNotImplemented {
			t.Errorf("good parameters %s: HTTP %d %s", ok, r.code, got.raw)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1024 })
	big := `{"app_user_id":"` + strings.Repeat("a", 4096) + `"}`

	// Declared length beyond the limit.
	r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(big), nil)
	if r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("with Content-Length: HTTP %d, want 413 (%s)", r.code, r.body)
	}
	// Chunked body (length unknown up front).
	r = e.do(t, http.MethodPost, "/v1/authenticate", io.MultiReader(strings.NewReader(big)), nil)
	if r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: HTTP %d, want 413 (%s)", r.code, r.body)
	}
	// A route with path variables reads its body first (the check against
	// the path's fields): the limit still answers 413, not a cut body's 400.
	r = e.do(t, http.MethodPatch, "/v1/users/u1", io.MultiReader(strings.NewReader(`{"id":"u1","display_name":"`+strings.Repeat("a", 4096)+`"}`)), nil)
	if r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("a route with path variables: HTTP %d, want 413 (%s)", r.code, r.body)
	}
	if !strings.Contains(string(r.body), "too large") {
		t.Errorf("413 body %s", r.body)
	}
	// Within the limit still works.
	if _, r := e.echoedMD(t, nil); r.code != http.StatusOK {
		t.Errorf("small body: HTTP %d", r.code)
	}
}

func TestOpenAPI(t *testing.T) {
	e := newEnv(t, withIdentityDoc)
	r := e.do(t, http.MethodGet, "/openapi.json", nil, nil)
	if r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("HTTP %d, Content-Type %q", r.code, r.header.Get("Content-Type"))
	}
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if _, ok := doc.Paths["/v1/authenticate"]; !ok {
		t.Error("openapi.json lacks /v1/authenticate")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t, nil)
	if r := e.do(t, http.MethodGet, "/healthz", nil, nil); r.code != 200 || string(r.body) != "ok" {
		t.Errorf("/healthz: %d %q", r.code, r.body)
	}
	if r := e.do(t, http.MethodGet, "/readyz", nil, nil); r.code != 200 || !strings.HasPrefix(string(r.body), "ok\n") ||
		!strings.Contains(string(r.body), "waits for: identity (") || !strings.Contains(string(r.body), "identity: serving") {
		t.Errorf("/readyz with backend up: %d %q", r.code, r.body)
	}

	e.grpc.Stop()

	r := e.do(t, http.MethodGet, "/readyz", nil, nil)
	if r.code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with backend stopped: %d %q", r.code, r.body)
	}
	if strings.Contains(string(r.body), "127.0.0.1") || strings.Contains(string(r.body), "dial") {
		t.Errorf("/readyz leaks internals: %q", r.body)
	}
	if r := e.do(t, http.MethodGet, "/healthz", nil, nil); r.code != 200 {
		t.Errorf("/healthz with backend stopped: %d", r.code)
	}
	// API calls fail with 503 without naming internal addresses.
	r = e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{}`), nil)
	if r.code != http.StatusServiceUnavailable {
		t.Errorf("API with backend stopped: %d %s", r.code, r.body)
	}
	if strings.Contains(string(r.body), "127.0.0.1") {
		t.Errorf("API error leaks address: %s", r.body)
	}
}

// TestReadyzWaitsOnlyForDeployed: /readyz waits for the backends ReadyFor
// names (those deployed behind the edge), not for every component whose
// REST routes the edge serves, and its body says which and how each is.
func TestReadyzWaitsOnlyForDeployed(t *testing.T) {
	// audit's routes are served, but nothing answers behind them.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close()
	auditConn, err := grpc.NewClient(deadAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = auditConn.Close() })
	noREST := func(context.Context, *runtime.ServeMux, grpc.ClientConnInterface) error { return nil }
	for _, tc := range []struct {
		name     string
		set      ReadySet
		err      error
		code     int
		contains []string
		absent   []string
	}{
		{name: "only identity deployed", set: ReadySet{Names: []string{"identity"}, How: "test"}, code: 200,
			contains: []string{"ok\n", "waits for: identity (test)", "identity: serving"}, absent: []string{"audit"}},
		{name: "audit deployed but down", set: ReadySet{Names: []string{"identity", "audit"}, How: "test"}, code: 503,
			contains: []string{"not ready\n", "waits for: identity, audit (test)", "identity: serving", "audit: unavailable"}},
		{name: "unknown component", set: ReadySet{Names: []string{"sync"}, How: "test"}, code: 503,
			contains: []string{"sync: not served by this edge"}},
		{name: "nothing found", err: errors.New("no UIAS component with REST routes is registered in etcd yet"), code: 503,
			contains: []string{"not ready\nno UIAS component with REST routes is registered in etcd yet"}},
		{name: "empty set", set: ReadySet{How: "test"}, code: 503, contains: []string{"not ready\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				o.Backends = append(o.Backends, Backend{Name: "audit", Conn: auditConn, REST: noREST})
				o.ReadyFor = func(context.Context) (ReadySet, error) { return tc.set, tc.err }
			})
			r := e.do(t, http.MethodGet, "/readyz", nil, nil)
			if r.code != tc.code {
				t.Errorf("/readyz: %d %q, want %d", r.code, r.body, tc.code)
			}
			for _, c := range tc.contains {
				if !strings.Contains(string(r.body), c) {
					t.Errorf("/readyz body %q lacks %q", r.body, c)
				}
			}
			for _, c := range append(tc.absent, deadAddr, "127.0.0.1", "connection refused") {
				if strings.Contains(string(r.body), c) {
					t.Errorf("/readyz body %q contains %q", r.body, c)
				}
			}
		})
	}
}

func TestReadyCustom(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Ready = func(context.Context) error { return io.ErrUnexpectedEOF }
	})
	r := e.do(t, http.MethodGet, "/readyz", nil, nil)
	if r.code != http.StatusServiceUnavailable || strings.Contains(string(r.body), "EOF") {
		t.Errorf("/readyz: %d %q", r.code, r.body)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.echoedMD(t, nil)
	e.do(t, http.MethodGet, "/no/such/route", nil, nil)
	r := e.do(t, http.MethodGet, "/metrics", nil, nil)
	if r.code != 200 {
		t.Fatalf("/metrics: %d", r.code)
	}
	body := string(r.body)
	for _, want := range []string{
		`http_requests_total{code="200",route="/v1/authenticate"} 1`,
		`http_requests_total{code="404",route="unmatched"} 1`,
		`http_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestAdminRoutesRegistered(t *testing.T) {
	// The test backend has no AdminService, so a routed admin call reaches
	// gRPC and comes back Unimplemented (501), not a routing 404.
	e := newEnv(t, nil)
	r := e.do(t, http.MethodGet, "/v1/orgs/abc", nil, nil)
	if r.code != http.StatusNotImplemented {
		t.Errorf("GET /v1/orgs/abc: %d %s", r.code, r.body)
	}
}

func TestNewRequiresBackends(t *testing.T) {
	if _, err := New(context.Background(), Options{}); err == nil {
		t.Error("New without backends succeeded")
	}
	if _, err := New(context.Background(), Options{Backends: []Backend{{Name: "x"}}}); err == nil {
		t.Error("New with a backend without connection succeeded")
	}
}

func identityREST(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
	if err := identityv1.RegisterAuthServiceHandlerClient(ctx, mux, identityv1.NewAuthServiceClient(conn)); err != nil {
		return err
	}
	if err := identityv1.RegisterResponseKeyServiceHandlerClient(ctx, mux, identityv1.NewResponseKeyServiceClient(conn)); err != nil {
		return err
	}
	return identityv1.RegisterAdminServiceHandlerClient(ctx, mux, identityv1.NewAdminServiceClient(conn))
}

// restError is a REST error answer, decoded.
type restError struct {
	code    int
	body    errorBody
	reason  string
	legacy  string
	message string
	field   string // ErrorInfo metadata "field"
	raw     string
}

func (e *env) restError(t *testing.T, r result) restError {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	out := restError{code: r.code, body: eb, message: eb.Message, raw: string(r.body)}
	for _, d := range eb.Details {
		var info struct {
			Type     string            `json:"@type"`
			Reason   string            `json:"reason"`
			Domain   string            `json:"domain"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal(d, &info); err == nil && info.Domain == apierr.Domain {
			out.reason, out.legacy, out.field = info.Reason, info.Metadata[apierr.MetaLegacyCode], info.Metadata["field"]
		}
	}
	return out
}

// Every REST error carries an ErrorInfo, including the edge's own (body too
// large, bad JSON, unreachable service, routing) and foreign statuses, and
// its HTTP status follows from code + ErrorInfo alone.
func TestEdgeErrorsCarryInfo(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 1024; o.Logger = zap.New(core) })
	json400 := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id": 5}`), nil)
	big := e.do(t, http.MethodPost, "/v1/authenticate", io.MultiReader(strings.NewReader(`{"app_user_id":"`+strings.Repeat("a", 4096)+`"}`)), nil)
	route := e.do(t, http.MethodGet, "/v1/no-such-thing", nil, nil)
	method := e.do(t, http.MethodGet, "/v1/authenticate", nil, nil)
	foreign := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"bare:13"}`), nil)
	foreignArg := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"bare:3"}`), nil)
	// With ErrorInfo, UNAVAILABLE is a service's answer and kept as it is.
	answered := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"code:14"}`), nil)
	// A bare UNAVAILABLE is as good as no answer at all (see below).
	bareUnavailable := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"bare:14"}`), nil)
	e.grpc.Stop()
	down := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{}`), nil)

	cases := []struct {
		name   string
		r      result
		http   int
		reason string
		legacy string
		msg    string // substring
	}{
		{"bad JSON", json400, 400, ReasonInvalidJSON, "-5", "invalid JSON request body"},
		{"body too large", big, 413, ReasonRequestTooLarge, "-5", "too large"},
		{"unknown route", route, 404, "NOT_FOUND", "", "Not Found"},
		{"wrong method", method, 405, ReasonMethodNotAllowed, "", "allowed: POST"},
		{"foreign internal", foreign, 500, apierr.ReasonInternal, "-6", "internal error"},
		{"foreign invalid argument", foreignArg, 400, "INVALID_ARGUMENT", "-5", "exploded"},
		{"service answered unavailable", answered, 503, "ON_DEMAND", "-6", "failure on demand"},
		{"bare unavailable", bareUnavailable, 503, ReasonServiceUnreachable, "-6", "service unavailable"},
		{"service down", down, 503, ReasonServiceUnreachable, "-6", "service unavailable"},
	}
	for _, c := range cases {
		got := e.restError(t, c.r)
		if got.code != c.http || got.reason != c.reason || got.legacy != c.legacy || !strings.Contains(got.message, c.msg) {
			t.Errorf("%s: HTTP %d reason %q legacy %q message %q; want %d %q %q %q (%s)", c.name, got.code, got.reason,
				got.legacy, got.message, c.http, c.reason, c.legacy, c.msg, got.raw)
		}
		if c.reason != "INVALID_ARGUMENT" && (strings.Contains(got.raw, "10.9.8.7") || strings.Contains(got.raw, "127.0.0.1")) {
			t.Errorf("%s: body leaks an address: %s", c.name, got.raw)
		}
	}
	// What was hidden is in the log.
	if logs.FilterMessage("service unreachable").Len() < 2 {
		t.Errorf("unreachable service not logged: %v", logs.All())
	}
	if logs.FilterMessageSnippet("10.9.8.7").Len() != 1 {
		t.Errorf("foreign internal failure not logged: %v", logs.All())
	}
}

// The default HTTP status of every gRPC code is grpc-gateway's.
func TestHTTPStatusOfCodeMatchesRuntime(t *testing.T) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if got, want := apierr.HTTPStatusOfCode(c), runtime.HTTPStatusFromCode(c); got != want {
			t.Errorf("%v: apierr %d, runtime %d", c, got, want)
		}
	}
}

// Retry-After follows the service's retry_after_seconds (a throttled
// login), else 1; nonsense falls back to 1.
func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]string{"": "1", "17": "17", "0": "1", "-3": "1", "x": "1", "999999": "1"} {
		st := status.New(codes.ResourceExhausted, "slow down")
		md := map[string]string{"legacy_code": "-6"}
		if v != "" {
			md["retry_after_seconds"] = v
		}
		st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: "LOGIN_THROTTLED", Domain: "uias.dev", Metadata: md})
		if got := retryAfter(st); got != want {
			t.Errorf("retry_after_seconds %q: Retry-After %q, want %q", v, got, want)
		}
	}
}

// TestBodyLimitsByPrefix: a backend raises the body limit for its routes
// under a prefix (file uploads); other routes keep the edge's limit, and a
// body over the raised limit is refused naming that limit.
func TestBodyLimitsByPrefix(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.MaxBodyBytes = 1024
		b := &o.Backends[0]
		b.BodyLimits = map[string]int64{"/v1/upload/": 8192}
		rest := b.REST
		b.REST = func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			if err := mux.HandlePath(http.MethodPost, "/v1/upload/{name}", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
				n, err := io.Copy(io.Discard, r.Body)
				if err != nil {
					var mbe *http.MaxBytesError
					if errors.As(err, &mbe) {
						http.Error(w, fmt.Sprintf("too large after %d bytes", n), http.StatusRequestEntityTooLarge)
						return
					}
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				fmt.Fprintf(w, "%d", n)
			}); err != nil {
				return err
			}
			return rest(ctx, mux, conn)
		}
	})
	body := strings.Repeat("x", 4096)
	if r := e.do(t, http.MethodPost, "/v1/upload/a", strings.NewReader(body), nil); r.code != http.StatusOK || string(r.body) != "4096" {
		t.Fatalf("4 KiB under an 8 KiB prefix limit: HTTP %d %s", r.code, r.body)
	}
	if r := e.do(t, http.MethodPost, "/v1/upload/a", io.MultiReader(strings.NewReader(body+body+body)), nil); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("12 KiB chunked: HTTP %d %s", r.code, r.body)
	}
	r := e.do(t, http.MethodPost, "/v1/upload/a", strings.NewReader(body+body+body), nil)
	if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "8192 bytes") {
		t.Fatalf("12 KiB declared: HTTP %d %s", r.code, r.body)
	}
	big := `{"app_user_id":"` + body + `"}`
	if r := e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(big), nil); r.code != http.StatusRequestEntityTooLarge ||
		!strings.Contains(string(r.body), "1024 bytes") {
		t.Fatalf("other route keeps the edge's limit: HTTP %d %s", r.code, r.body)
	}
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := New(context.Background(), Options{Backends: []Backend{{Name: "x", Conn: conn, REST: identityREST,
		BodyLimits: map[string]int64{"v1/": 10}}}}); err == nil {
		t.Fatal("a body limit prefix without a leading / was accepted")
	}
}
