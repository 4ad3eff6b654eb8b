package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// edgeOver is a REST edge whose identity backend runs behind a grpcx
// server chain, reached either over the in-process listener (as in `all`
// mode before direct calls) or directly (grpcx.Direct).
type edgeOver struct {
	url string
	reg *prometheus.Registry // the gRPC server metrics
}

func newEdgeOver(t testing.TB, direct bool, log *zap.Logger) edgeOver {
	t.Helper()
	reg := prometheus.NewRegistry()
	so := grpcx.ServerOptions{Logger: log, Registry: reg}
	srv, hs := grpcx.NewServer(so)
	identityv1.RegisterAuthServiceServer(srv, echoAuth{})
	lis := grpcx.NewInprocListener()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///uias-inproc", grpc.WithContextDialer(lis.Dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcx.UnaryClientOrigin(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var backend grpc.ClientConnInterface = conn
	if direct {
		d := grpcx.NewDirect(so, conn)
		identityv1.RegisterAuthServiceServer(d, echoAuth{})
		healthpb.RegisterHealthServer(d, hs)
		backend = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h, err := New(ctx, Options{Logger: log, Backends: []Backend{{Name: "identity", Conn: backend, REST: identityREST}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	hsrv := httptest.NewServer(h)
	t.Cleanup(hsrv.Close)
	return edgeOver{url: hsrv.URL, reg: reg}
}

// transportKeys are metadata keys only the gRPC transport adds.
var transportKeys = []string{":authority", "content-type", "user-agent", "grpc-accept-encoding"}

// A REST call answered through the direct channel is the same as over the
// in-process listener: status, headers (X-Request-Id, the forwarded
// request id header), body, the metadata the service sees (request id,
// client address from a trusted proxy, credentials), errors mapped to HTTP
// status and legacy code, validation refusals (-5); the call is counted in
// grpc_server_handled_total.
func TestDirectBackendAnswersAsTheListener(t *testing.T) {
	listener, direct := newEdgeOver(t, false, zaptest.NewLogger(t)), newEdgeOver(t, true, zaptest.NewLogger(t))
	type call struct {
		name, body string
		hdr        map[string]string
		code       int
	}
	calls := []call{
		{"ok", `{"app_user_id":"alice","password":"x"}`, map[string]string{"X-Request-Id": "rid-42", "X-Forwarded-For": "192.0.2.7",
			"X-Uias-App-Id": "app-1", "X-Uias-App-Secret": "s3cret"}, http.StatusOK},
		{"not found", `{"app_user_id":"code:5","password":"x"}`, nil, http.StatusNotFound},
		{"unavailable", `{"app_user_id":"code:14","password":"x"}`, nil, http.StatusServiceUnavailable},
		{"foreign status", `{"app_user_id":"bare:13","password":"x"}`, nil, http.StatusInternalServerError},
		{"control character", `{"app_user_id":"al\u0001ice","password":"x"}`, map[string]string{"X-Request-Id": "rid-43"}, http.StatusBadRequest},
		{"too long", `{"app_code":"` + strings.Repeat("x", 65) + `","app_user_id":"alice","password":"x"}`, nil, http.StatusBadRequest},
	}
	for _, c := range calls {
		var got [2]result
		for i, e := range []edgeOver{listener, direct} {
			got[i] = (&env{url: e.url}).do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(c.body), c.hdr)
		}
		l, d := got[0], got[1]
		if l.code != c.code || d.code != c.code {
			t.Errorf("%s: status listener %d, direct %d, want %d (%s)", c.name, l.code, d.code, c.code, d.body)
		}
		for _, h := range []string{"Content-Type", "Grpc-Metadata-X-Request-Id"} {
			if !slices.Equal(l.header.Values(h), d.header.Values(h)) && c.hdr["X-Request-Id"] != "" {
				t.Errorf("%s: header %s: listener %q, direct %q", c.name, h, l.header.Values(h), d.header.Values(h))
			}
		}
		if rid := c.hdr["X-Request-Id"]; rid != "" && (d.header.Get("X-Request-Id") != rid || d.header.Get("Grpc-Metadata-X-Request-Id") != rid) {
			t.Errorf("%s: request id headers %v", c.name, d.header)
		}
		for k := range joinHeaders(l.header, d.header) {
			if k != "Date" && k != "Content-Length" && k != "X-Request-Id" && k != "Grpc-Metadata-X-Request-Id" && l.header.Get(k) != d.header.Get(k) {
				t.Errorf("%s: header %s: listener %q, direct %q", c.name, k, l.header.Get(k), d.header.Get(k))
			}
		}
		if c.code != http.StatusOK {
			// The same body (status, message, ErrorInfo with reason and
			// legacy code).
			if string(l.body) != string(d.body) {
				t.Errorf("%s: body listener %s, direct %s", c.name, l.body, d.body)
			}
			if c.code == http.StatusBadRequest && !strings.Contains(string(d.body), `"legacy_code":"-5"`) {
				t.Errorf("%s: a refusal without legacy code -5: %s", c.name, d.body)
			}
			continue
		}
		// What the service saw: the same metadata, besides the
		// transport's own keys.
		var seen [2]metadata.MD
		for i, r := range got {
			var resp struct{ Message string }
			if err := json.Unmarshal(r.body, &resp); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(resp.Message), &seen[i]); err != nil {
				t.Fatal(err)
			}
			for _, k := range transportKeys {
				delete(seen[i], k)
			}
		}
		lj, _ := json.Marshal(seen[0])
		dj, _ := json.Marshal(seen[1])
		if string(lj) != string(dj) {
			t.Errorf("%s: metadata seen over the listener %s, directly %s", c.name, lj, dj)
		}
		for k, want := range map[string]string{"x-request-id": "rid-42", "x-uias-client-ip": "192.0.2.7", "x-uias-app-id": "app-1"} {
			if v := seen[1].Get(k); len(v) != 1 || v[0] != want {
				t.Errorf("%s: direct: %s = %q, want %q", c.name, k, v, want)
			}
		}
	}
	for _, e := range []edgeOver{listener, direct} {
		if got := handled(t, e.reg, "/uias.identity.v1.AuthService/Authenticate"); got != float64(len(calls)) {
			t.Errorf("grpc_server_handled_total = %v, want %d", got, len(calls))
		}
	}
}

// handled sums grpc_server_handled_total of method over codes.
func handled(t *testing.T, reg *prometheus.Registry, method string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grpc_method" && l.GetValue() == method {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// BenchmarkRESTBackend is one REST call (Authenticate on the echo stand-in)
// through the edge to a service behind the grpcx chain, over the in-process
// listener or directly: what the hop costs.
func BenchmarkRESTBackend(b *testing.B) {
	for _, direct := range []bool{false, true} {
		name := "listener"
		if direct {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			e := newEdgeOver(b, direct, zap.NewNop())
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			body := `{"app_user_id":"alice","password":"x"}`
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(e.url+"/v1/authenticate", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// joinHeaders is the set of the names of a and b.
func joinHeaders(a, b http.Header) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
