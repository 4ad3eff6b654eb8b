package module

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
)

// appAuth authenticates the application named in the "x-app" metadata;
// "bad" is refused.
var appAuth = grpcx.CallerAuthFunc(func(ctx context.Context, _ string) (context.Context, error) {
	v := metadata.ValueFromIncomingContext(ctx, "x-app")
	switch {
	case len(v) == 0:
		return ctx, nil // a call of no application
	case v[0] == "bad":
		return nil, caller.ErrBadAppCredentials
	}
	return caller.With(ctx, &caller.Caller{App: &caller.App{ID: v[0], Active: true}}), nil
})

// Every call the process serves is counted per calling application in
// uias_app_calls_total and uias_app_call_duration_seconds on /metrics:
// authenticated App_IDs up to metrics.max_apps, later ones as "other",
// calls refused by caller authentication as "unauthenticated", calls of no
// application as "none"; calls nested in another call and health checks
// are not counted again.
func TestAppMetricsPerApplication(t *testing.T) {
	r := &Registry{}
	var conn grpc.ClientConnInterface
	r.Register(Module{Name: "svc", Init: func(context.Context, *Env) (*Component, error) {
		return &Component{Auth: appAuth, Register: func(s grpc.ServiceRegistrar) { s.RegisterService(&echoDesc, struct{}{}) }}, nil
	}})
	r.Register(clientOf("svc", &conn))
	cfg := allConfig(t, "127.0.0.1:0")
	cfg.Metrics.MaxApps = 2
	p, err := Start(context.Background(), r, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(app string, nested bool) error {
		c := ctx
		if app != "" {
			c = metadata.AppendToOutgoingContext(c, "x-app", app)
		}
		if nested {
			c = grpcx.PartOf(c)
		}
		return conn.Invoke(c, echoMethod, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	}
	for _, app := range []string{"app-a", "app-a", "app-b", "app-c", "app-d", ""} {
		if err := call(app, false); err != nil {
			t.Fatalf("call as %q: %v", app, err)
		}
	}
	if err := call("bad", false); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("bad credentials: %v, want Unauthenticated", err)
	}
	if err := call("app-a", true); err != nil { // part of a call already counted
		t.Fatal(err)
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get("http://" + p.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	for _, want := range []string{
		`uias_app_calls_total{app_id="app-a",code="OK",method="` + echoMethod + `"} 2`,
		`uias_app_calls_total{app_id="app-b",code="OK",method="` + echoMethod + `"} 1`,
		`uias_app_calls_total{app_id="other",code="OK",method="` + echoMethod + `"} 2`,
		`uias_app_calls_total{app_id="none",code="OK",method="` + echoMethod + `"} 1`,
		`uias_app_calls_total{app_id="unauthenticated",code="Unauthenticated",method="` + echoMethod + `"} 1`,
		`uias_app_call_duration_seconds_count{app_id="app-a",method="` + echoMethod + `"} 2`,
		`uias_app_call_duration_seconds_bucket{app_id="other",method="` + echoMethod + `",le="+Inf"} 2`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, never := range []string{`app_id="app-c"`, `app_id="app-d"`, `app_id="bad"`, `grpc.health`} {
		if strings.Contains(appLines(page), never) {
			t.Errorf("/metrics labels %s in the application metrics", never)
		}
	}
}

// appLines are the uias_app_* lines of a metrics page.
func appLines(page string) string {
	var out []string
	for l := range strings.Lines(page) {
		if strings.HasPrefix(l, "uias_app_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// metrics.max_apps outside 1..MaxMetricsMaxApps is refused at start,
// naming the setting.
func TestAppMetricsMaxAppsValidated(t *testing.T) {
	for _, n := range []int{0, -1, 100001} {
		cfg := allConfig(t, "")
		cfg.Metrics.MaxApps = n
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "metrics.max_apps") {
			t.Errorf("max_apps %d: %v, want an error naming metrics.max_apps", n, err)
		}
	}
}

// Concurrent first calls of many applications agree on the cap: exactly
// max App_IDs are labelled, every call is counted once.
func TestAppMetricsCapConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newAppMetrics(reg, 10)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 50 {
				id := string(rune('A'+g)) + string(rune('a'+i%25))
				ctx := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: id}})
				m.observe(ctx, &grpcx.Call{Method: echoMethod, Code: codes.OK, Duration: time.Millisecond})
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got := testutil.ToFloat64(m.calls.WithLabelValues(AppOther, echoMethod, "OK")); got != 200-testLabelled(t, reg, 10) {
		t.Errorf("other: %v", got)
	}
}

// testLabelled checks that n App_IDs (besides the fixed values) are
// labelled and returns the calls counted under them.
func testLabelled(t *testing.T, reg *prometheus.Registry, n int) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	apps, sum := 0, 0.0
	for _, mf := range mfs {
		if mf.GetName() != "uias_app_calls_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "app_id" && l.GetValue() != AppOther {
					apps++
					sum += s.GetCounter().GetValue()
				}
			}
		}
	}
	if apps != n {
		t.Errorf("%d App_IDs labelled, want %d", apps, n)
	}
	return sum
}

// BenchmarkAppMetrics is what counting a call per application costs (a
// known application and method, its series made): with -benchmem it
// allocates nothing.
func BenchmarkAppMetrics(b *testing.B) {
	m := newAppMetrics(prometheus.NewRegistry(), 0)
	ctx := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "01HAPPBENCH"}})
	c := &grpcx.Call{Method: echoMethod, Code: codes.OK, Duration: 3 * time.Millisecond}
	m.observe(ctx, c)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m.observe(ctx, c)
	}
}

// BenchmarkAppMetricsCall is an in-process call of an application through
// the process's whole chain (caller auth, the access hook without a
// publisher, the method metrics) with the per-application metrics
// ("with") and without them ("without"): the ratio is what they add to a
// call.
func BenchmarkAppMetricsCall(b *testing.B) {
	r := &Registry{}
	var conn grpc.ClientConnInterface
	r.Register(Module{Name: "svc", Init: func(context.Context, *Env) (*Component, error) {
		return &Component{Auth: appAuth, Register: func(s grpc.ServiceRegistrar) { s.RegisterService(&echoDesc, struct{}{}) }}, nil
	}})
	r.Register(clientOf("svc", &conn))
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "", ""
	cfg.Complete()
	p, err := Start(context.Background(), r, cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Stop(context.Background()) })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-app", "01HAPPBENCH")
	in, out := &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}
	m := p.appMetrics
	for _, with := range []bool{false, true, false, true} {
		name := "without"
		if with {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			p.appMetrics = nil
			if with {
				p.appMetrics = m
			}
			b.ReportAllocs()
			for range b.N {
				if err := conn.Invoke(ctx, echoMethod, in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	p.appMetrics = m
}

// The app_id of a call: the application caller auth established, else the
// one its handler named (grpcx.NameApp), unless caller auth refused it;
// else none.
func TestAppLabel(t *testing.T) {
	withApp := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "by-auth"}})
	for _, tc := range []struct {
		ctx   context.Context
		call  grpcx.Call
		want  string
		isApp bool
	}{
		{withApp, grpcx.Call{App: "named"}, "by-auth", true},
		{withApp, grpcx.Call{Refused: true}, "by-auth", true},
		{context.Background(), grpcx.Call{App: "named"}, "named", true},
		{context.Background(), grpcx.Call{App: "named", Refused: true}, AppUnauthenticated, false},
		{context.Background(), grpcx.Call{Refused: true}, AppUnauthenticated, false},
		{context.Background(), grpcx.Call{}, AppNone, false},
	} {
		if got, isApp := appLabel(tc.ctx, &tc.call); got != tc.want || isApp != tc.isApp {
			t.Errorf("%+v: %q %v, want %q %v", tc.call, got, isApp, tc.want, tc.isApp)
		}
	}
}
