package audit_test

import (
	"context"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
)

// BenchmarkAccessEvent builds the access record of a typical Check call
// (what the access publisher's goroutine does for every API call).
func BenchmarkAccessEvent(b *testing.B) {
	ctx := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "bench-app-0001"},
		RequestID: "0193a8c2f1e07d4c9b2a5e6f7d8c9b0a", ClientIP: netip.MustParseAddr("127.0.0.1")})
	a := audit.NewAccess(ctx, "authz", grpcx.Call{Method: "/uias.authz.v1.AuthzService/Check",
		Start: time.Now(), Duration: 1234 * time.Microsecond, Code: codes.OK})
	b.ReportAllocs()
	c0 := cpuTime()
	for b.Loop() {
		_ = a.Event()
	}
	// CPU time of the process per record: a loaded machine disturbs it
	// less than ns/op.
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
