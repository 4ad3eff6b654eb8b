package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// recorder is a gRPC backend that serves no service: it records the method
// and metadata of every call that reaches it and answers Unimplemented.
type recorder struct {
	mu    sync.Mutex
	calls []recordedCall
}

type recordedCall struct {
	method string
	md     metadata.MD
}

func (rec *recorder) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	rec.mu.Lock()
	rec.calls = append(rec.calls, recordedCall{method: method, md: md})
	rec.mu.Unlock()
	return status.Error(codes.Unimplemented, "recorded")
}

// take returns and forgets the calls recorded so far.
func (rec *recorder) take() []recordedCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c := rec.calls
	rec.calls = nil
	return c
}

// newRecordingGateway serves the gateway with identity's REST routes over
// real HTTP, in front of a recorder reached over real gRPC; mod may change
// the options.
func newRecordingGateway(t *testing.T, mod func(*Options)) (string, *recorder) {
	t.Helper()
	rec := &recorder{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.UnknownServiceHandler(rec.handle))
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := Options{Logger: zaptest.NewLogger(t), Ready: func(context.Context) error { return nil },
		Backends: []Backend{{Name: "identity", Conn: conn, REST: identityREST}}}
	if mod != nil {
		mod(&o)
	}
	h, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		_ = conn.Close()
		gs.Stop()
	})
	return srv.URL, rec
}

func httpDo(t *testing.T, method, url string, body string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
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
	return resp, b
}

func TestMethodNotAllowed(t *testing.T) {
	url, rec := newRecordingGateway(t, nil)
	for _, c := range []struct {
		method, path, allow string
	}{
		{http.MethodGet, "/v1/authenticate", "POST"},
		{http.MethodPut, "/v1/orgs/o1", "GET, PATCH, DELETE"},
		{http.MethodDelete, "/v1/users", "GET, POST"},
		{http.MethodGet, "/v1/password:change", "POST"},
		{http.MethodOptions, "/v1/links/l1", "DELETE"},
		{http.MethodPut, "/v1/apps/a1", "GET, PATCH, DELETE"},
	} {
		resp, body := httpDo(t, c.method, url+c.path, "", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: HTTP %d %s, want 405", c.method, c.path, resp.StatusCode, body)
			continue
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: headers %v", c.method, c.path, resp.Header)
		}
		var e struct {
			Code    *int   `json:"code"`
			Message string `json:"message"`
			Details []any  `json:"details"`
		}
		if err := json.Unmarshal(body, &e); err != nil || e.Code == nil || e.Details == nil {
			t.Errorf("%s %s: body %s is not the JSON error shape (%v)", c.method, c.path, body, err)
			continue
		}
		if codes.Code(*e.Code) != codes.Unimplemented || !strings.Contains(e.Message, c.method) || !strings.Contains(e.Message, c.allow) {
			t.Errorf("%s %s: code %d message %q", c.method, c.path, *e.Code, e.Message)
		}
	}
	if calls := rec.take(); len(calls) != 0 {
		t.Errorf("answering 405 called the backend: %v", calls)
	}

	// Unknown paths stay 404; served ones still work.
	if resp, body := httpDo(t, http.MethodGet, url+"/v1/nothing-here", "", nil); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Allow") != "" {
		t.Errorf("unknown path: HTTP %d Allow %q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	if resp, body := httpDo(t, http.MethodPost, url+"/v1/authenticate", "{}", nil); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("POST /v1/authenticate: HTTP %d %s", resp.StatusCode, body)
	}
	if calls := rec.take(); len(calls) != 1 {
		t.Errorf("the backend saw %d calls, want 1", len(calls))
	}
}
