package grpcx

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// BenchmarkUnaryChain is one call through a server's unary interceptor
// chain (caller auth, an access hook that keeps nothing, metrics, logging
// at error level) with a handler that does nothing: what the chain itself
// costs every call, with -benchmem its allocations.
func BenchmarkUnaryChain(b *testing.B) {
	c := &chain{log: zap.NewNop(), metrics: newServerMetrics(prometheus.NewRegistry()),
		auth: CallerAuthFunc(func(ctx context.Context, _ string) (context.Context, error) {
			return context.WithValue(ctx, benchCallerKey{}, "app:x"), nil
		}),
		onCall: func(context.Context, Call) {}}
	// as a server's: the transport stream (grpc.SetHeader) and the peer
	ctx := grpc.NewContextWithServerTransportStream(
		peer.NewContext(metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-request-id", "rid-1")),
			&peer.Peer{Addr: InprocAddr{}}), benchStream{})
	info := &grpc.UnaryServerInfo{FullMethod: "/uias.test.Test/Check"}
	req := &healthpb.HealthCheckRequest{Service: "x"}
	handler := func(ctx context.Context, req any) (any, error) { return req, nil }
	call := benchChain(c)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := call(ctx, req, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}

type benchCallerKey struct{}

// benchStream is a server transport stream that keeps nothing.
type benchStream struct{}

func (benchStream) Method() string               { return "/uias.test.Test/Check" }
func (benchStream) SetHeader(metadata.MD) error  { return nil }
func (benchStream) SendHeader(metadata.MD) error { return nil }
func (benchStream) SetTrailer(metadata.MD) error { return nil }

func benchChain(c *chain) grpc.UnaryServerInterceptor { return c.unary }
