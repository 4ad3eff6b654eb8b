package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/module"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// The echo component exists only in this test: it proves that a component
// is added by one registration (no edit to pkg/, the gateway, the config or
// the app), and shows what reaches a component: its own settings, the
// client address and whether the call came in-process.

const echoMethod = "/uias.testing.v1.Echo/Echo"

// echoConfig is the echo component's own config section.
type echoConfig struct {
	Prefix string `yaml:"prefix"`
}

func (c *echoConfig) Bind(b *config.Binder) {
	b.String(&c.Prefix, "UIAS_ECHO_PREFIX", "echo-prefix", "echo prefix")
}
func (c *echoConfig) Complete(*config.Config)         {}
func (c *echoConfig) Validate(p *config.Config) error { return nil }

// echoReply is what the echo service saw.
type echoReply struct {
	Msg       string `json:"msg"`
	ClientIP  string `json:"client_ip"`
	InProcess bool   `json:"in_process"`
	RequestID string `json:"request_id"`
}

func echoHandler(prefix string) func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) {
			r := echoReply{Msg: prefix + req.(*wrapperspb.StringValue).GetValue(), InProcess: grpcx.InProcess(ctx),
				RequestID: grpcx.RequestID(ctx)}
			if ip := grpcx.ClientIP(ctx); ip.IsValid() {
				r.ClientIP = ip.String()
			}
			b, _ := json.Marshal(r)
			return wrapperspb.String(string(b)), nil
		}
		if ic == nil {
			return h(ctx, in)
		}
		return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: echoMethod}, h)
	}
}

func echoModule() module.Module {
	return module.Module{
		Name:   "echo",
		Config: func() config.Section { return &echoConfig{Prefix: "echo:"} },
		REST: func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
			return mux.HandlePath("GET", "/v1/testing/echo/{msg}", func(w http.ResponseWriter, r *http.Request, p map[string]string) {
				out := new(wrapperspb.StringValue)
				if err := conn.Invoke(r.Context(), echoMethod, wrapperspb.String(p["msg"]), out); err != nil {
					http.Error(w, status.Convert(err).Message(), http.StatusBadGateway)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(out.GetValue()))
			})
		},
		Init: func(_ context.Context, env *module.Env) (*module.Component, error) {
			prefix := env.Section().(*echoConfig).Prefix
			desc := &grpc.ServiceDesc{ServiceName: "uias.testing.v1.Echo", HandlerType: (*any)(nil),
				Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: echoHandler(prefix)}}}
			return &module.Component{Register: func(s grpc.ServiceRegistrar) { s.RegisterService(desc, struct{}{}) }}, nil
		},
	}
}

func echoRegistry() *module.Registry {
	reg := app.Registry()
	reg.Register(echoModule())
	return reg
}

func startWith(t *testing.T, cfg config.Config, reg *module.Registry) *app.App {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{Logger: zaptest.NewLogger(t, zaptestLevel()), BootstrapPassword: adminPassword, Registry: reg})
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Target, err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = a.Stop(sctx)
	})
	return a
}

func echoGRPC(t *testing.T, addr, msg string, md ...string) (echoReply, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, echoMethod, wrapperspb.String(msg), out); err != nil {
		return echoReply{}, err
	}
	var r echoReply
	if err := json.Unmarshal([]byte(out.GetValue()), &r); err != nil {
		t.Fatal(err)
	}
	return r, nil
}

func echoREST(t *testing.T, httpAddr, msg string, hdr map[string]string) echoReply {
	t.Helper()
	e := &env{t: t, http: "http://" + httpAddr}
	code, out, _ := e.rest("GET", "/v1/testing/echo/"+msg, hdr, nil)
	if code != 200 {
		t.Fatalf("REST echo: %d %v", code, out)
	}
	raw, _ := json.Marshal(out)
	var r echoReply
	_ = json.Unmarshal(raw, &r)
	return r
}

// A component registered from a test runs in target all beside identity
// and the edge, with its own settings, over gRPC and REST; the edge reaches
// it in-process (no TCP hop) and hands it the client address it decided.
func TestTestComponentInAll(t *testing.T) {
	reg := echoRegistry()
	cfg, err := config.Load("", func(k string) (string, bool) {
		v, ok := map[string]string{"UIAS_ECHO_PREFIX": "env:"}[k]
		return v, ok
	}, nil, nil, reg.Sections()...)
	if err != nil {
		t.Fatal(err)
	}
	base := testConfig(t.TempDir())
	base.Sections["echo"] = cfg.Sections["echo"]
	a := startWith(t, base, reg)
	// echo (which uses identity) starts after identity, the edge last;
	// other registered components may start in between
	mods := a.Modules()
	if i, e := slices.Index(mods, "identity"), slices.Index(mods, "echo"); i < 0 || e < i || mods[len(mods)-1] != "gateway" {
		t.Fatalf("modules in start order: %s", strings.Join(mods, ","))
	}

	r, err := echoGRPC(t, a.GRPCAddr(), "hi")
	if err != nil {
		t.Fatal(err)
	}
	if r.Msg != "env:hi" || r.InProcess || r.ClientIP != "127.0.0.1" {
		t.Fatalf("gRPC echo: %+v", r)
	}
	rr := echoREST(t, a.HTTPAddr(), "there", map[string]string{"X-Request-Id": "req-echo-1"})
	if rr.Msg != "env:there" || !rr.InProcess || rr.ClientIP != "127.0.0.1" || rr.RequestID != "req-echo-1" {
		t.Fatalf("REST echo: %+v", rr)
	}
	// No proxy is trusted by default: a forwarded address is ignored on
	// both transports, and a direct gRPC caller cannot claim to be the edge.
	if rr := echoREST(t, a.HTTPAddr(), "x", map[string]string{"X-Forwarded-For": "192.0.2.7"}); rr.ClientIP != "127.0.0.1" {
		t.Fatalf("REST X-Forwarded-For believed: %+v", rr)
	}
	for _, md := range [][]string{{"x-forwarded-for", "192.0.2.7"}, {grpcx.MetadataClientIP, "192.0.2.7"},
		{grpcx.MetadataClientIP, "192.0.2.7", grpcx.MetadataOriginSig, "forged"}} {
		if r, err := echoGRPC(t, a.GRPCAddr(), "x", md...); err != nil || r.ClientIP != "127.0.0.1" {
			t.Fatalf("gRPC %v believed: %+v %v", md, r, err)
		}
	}
}

// An application whose allow-list admits only 192.0.2.7 cannot be used from
// loopback by claiming that address in X-Forwarded-For (REST or gRPC) or in
// the edge's own metadata.
func TestClientIPCannotBeForged(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "ip-user", &identityv1.CreateAppRequest{IpAllowList: []string{"192.0.2.7/32"}}, nil)
	body := map[string]any{"app_user_id": f.account, "password": f.password, "auth_type": "AUTH_TYPE_PASSWORD"}
	hdr := appHeaders(f)
	hdr["X-Forwarded-For"] = "192.0.2.7"
	code, out, _ := e.rest("POST", "/v1/authenticate", hdr, body)
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out), "IP_NOT_ALLOWED") {
		t.Fatalf("REST with forged X-Forwarded-For: %d %v", code, out)
	}
	for _, md := range [][]string{{"x-forwarded-for", "192.0.2.7"}, {grpcx.MetadataClientIP, "192.0.2.7"}} {
		ctx := metadata.AppendToOutgoingContext(appCtx(f.appID, f.secret), md...)
		_, err := e.auth.Authenticate(ctx, &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password,
			AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("gRPC with %v: %v", md, err)
		}
	}
}

// Microservices mode: the echo component alone in one process, the edge in
// another; they find each other through etcd. With the internal key the
// edge's view of the client address (here behind a trusted proxy) is
// believed; without it the component sees the edge's own address.
func TestTestComponentAlone(t *testing.T) {
	dir := t.TempDir()
	etcd, endpoints, err := etcdtest.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	ns := eventstest.NATSIn(t, filepath.Join(dir, "nats"), -1)
	reg := echoRegistry()

	for _, key := range []string{"", "0123456789abcdef-internal"} {
		t.Run(fmt.Sprintf("key=%v", key != ""), func(t *testing.T) {
			mk := func(target string) config.Config {
				c := config.Default(reg.Sections()...)
				c.Target, c.DataDir = target, filepath.Join(t.TempDir(), target)
				c.GRPCAddr, c.HTTPAddr, c.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
				c.Etcd.Endpoints, c.Etcd.LeaseTTL = endpoints, 2
				c.NATS.URL, c.NATS.Embedded, c.Discovery = ns.ClientURL(), false, config.DiscoveryEtcd
				c.Log.Level = "error"
				c.InternalKey = key
				c.Complete()
				return c
			}
			echo := startWith(t, mk("echo"), reg)
			if got := strings.Join(echo.Modules(), ","); got != "echo" {
				t.Fatalf("modules: %s", got)
			}
			if r, err := echoGRPC(t, echo.GRPCAddr(), "direct"); err != nil || r.Msg != "echo:direct" {
				t.Fatalf("gRPC echo alone: %+v %v", r, err)
			}
			gwCfg := mk("gateway")
			gwCfg.GRPCAddr = ""
			gwCfg.TrustedProxies = []string{"127.0.0.0/8"}
			gw := startWith(t, gwCfg, reg)
			var r echoReply
			eventually(t, "the edge to reach echo through etcd", func() bool {
				e := &env{t: t, http: "http://" + gw.HTTPAddr()}
				code, out, _ := e.rest("GET", "/v1/testing/echo/far", map[string]string{"X-Forwarded-For": "192.0.2.7"}, nil)
				raw, _ := json.Marshal(out)
				_ = json.Unmarshal(raw, &r)
				return code == 200
			})
			want := "127.0.0.1"
			if key != "" {
				want = "192.0.2.7"
			}
			if r.Msg != "echo:far" || r.InProcess || r.ClientIP != want {
				t.Fatalf("REST echo through etcd: %+v, want client %s", r, want)
			}
		})
	}
}
