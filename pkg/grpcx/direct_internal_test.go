package grpcx

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

// BenchmarkDirectCallContext is what a direct call's context costs: made
// (the caller's deadline and cancellation), entered in the calls Stop
// cancels, taken out and released, from parallel callers with contexts of
// their own (BenchmarkDirectInvoke measures the whole call).
func BenchmarkDirectCallContext(b *testing.B) {
	d := NewDirect(ServerOptions{Logger: zap.NewNop(), Registry: prometheus.NewRegistry()}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		md := metadata.MD{}
		for pb.Next() {
			st := &directStream{method: "/m/m"}
			_, end := serverContext(ctx, md, st)
			d.running[rand.Uint32()%runningShards].add(&st.run)
			st.run.remove()
			end()
		}
	})
}
