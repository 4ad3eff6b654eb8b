package module

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
)

const echoMethod = "/uias.test.Echo/Echo"

// echoDesc is a unary test service: it answers SERVING and tells, in
// trailers, what the chain gave its handler.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "uias.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := &healthpb.HealthCheckRequest{}
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				comp := "no"
				if grpcx.FromComponent(ctx) {
					comp = "yes"
				}
				_ = grpc.SetTrailer(ctx, metadata.Pairs("seen-request-id", grpcx.RequestID(ctx),
					"seen-client-ip", grpcx.ClientIP(ctx).String(), "seen-component", comp))
				return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: echoMethod}, h)
		},
	}},
}

// A component's client of another in the same process calls it directly
// (grpcx.Direct), through the process's interceptor chain: the request id
// and the origin travel, the call is counted; remote callers keep the gRPC
// listener, where the origin is not believed.
func TestInProcessClientsGoDirect(t *testing.T) {
	r := &Registry{}
	var conn grpc.ClientConnInterface
	r.Register(Module{Name: "svc", Init: func(context.Context, *Env) (*Component, error) {
		return &Component{Register: func(s grpc.ServiceRegistrar) { s.RegisterService(&echoDesc, struct{}{}) }}, nil
	}})
	r.Register(clientOf("svc", &conn))
	p, err := Start(context.Background(), r, allConfig(t, "127.0.0.1:0"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	if _, ok := conn.(*grpcx.Direct); !ok {
		t.Fatalf("in-process client is a %T, want *grpcx.Direct", conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	call := func(c grpc.ClientConnInterface, ctx context.Context) metadata.MD {
		t.Helper()
		var trailer metadata.MD
		out := &healthpb.HealthCheckResponse{}
		if err := c.Invoke(ctx, echoMethod, &healthpb.HealthCheckRequest{}, out, grpc.Trailer(&trailer)); err != nil {
			t.Fatal(err)
		}
		if out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("reply %v", out)
		}
		return trailer
	}
	edge := grpcx.WithRequestID(grpcx.WithOrigin(ctx, grpcx.Origin{ClientIP: netip.MustParseAddr("192.0.2.7")}), "rid-1")
	tr := call(conn, edge)
	for k, want := range map[string]string{"seen-request-id": "rid-1", "seen-client-ip": "192.0.2.7", "seen-component": "yes"} {
		if got := tr.Get(k); len(got) != 1 || got[0] != want {
			t.Errorf("direct: %s = %q, want %q", k, got, want)
		}
	}
	if resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil ||
		resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health through the direct client: %v %v", resp, err)
	}

	// Over the network the same service answers; an asserted origin
	// without the internal key is not believed.
	remote, err := grpc.NewClient(p.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	tr = call(remote, metadata.AppendToOutgoingContext(ctx, grpcx.MetadataClientIP, "192.0.2.7", "x-forwarded-for", "192.0.2.7"))
	if got := tr.Get("seen-client-ip"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("remote: client ip %q, want 127.0.0.1", got)
	}
	if got := tr.Get("seen-component"); len(got) != 1 || got[0] != "no" {
		t.Errorf("remote: from a component %q", got)
	}

	// Both calls are counted in the process's metrics.
	resp, err := http.Get("http://" + p.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `grpc_server_handled_total{grpc_code="OK",grpc_method="` + echoMethod + `"} 2`; !strings.Contains(string(b), want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// clientOf is a module that keeps the in-process client of module name in
// conn.
func clientOf(name string, conn *grpc.ClientConnInterface) Module {
	return Module{Name: "user", Uses: []string{name}, Init: func(_ context.Context, env *Env) (*Component, error) {
		var err error
		*conn, err = env.Client(name)
		return nil, err
	}}
}

// allConfig is the config of a process running every registered module
// with its data in a temporary directory, gRPC on a free loopback port and
// HTTP on httpAddr ("": none).
func allConfig(t *testing.T, httpAddr string) config.Config {
	cfg := config.Default()
	cfg.Target = config.TargetAll
	cfg.DataDir = t.TempDir()
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", httpAddr, ""
	cfg.Complete()
	return cfg
}
