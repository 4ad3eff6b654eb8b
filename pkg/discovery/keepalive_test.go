package discovery_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/discovery"
)

// silentProxy forwards TCP connections to target until silence is called;
// from then on it reads what either side sends and forwards nothing, the
// connections left open: a replica hung or cut off by a partition that
// sends no reset.
func silentProxy(t *testing.T, target string) (addr string, silence func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var quiet atomic.Bool
	var mu sync.Mutex
	var conns []net.Conn
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				_ = dst.Close()
				return
			}
			if !quiet.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return lis.Addr().String(), func() { quiet.Store(true) }
}

// TestSilentReplicaDropped: a component's connection to a replica that
// goes silent without closing it is dropped by the client's keepalive: a
// call to it without a deadline ends (UNAVAILABLE) instead of waiting
// forever (discovery.ClientKeepalive; here gRPC's shortest ping interval,
// 10 s, and a 1 s timeout).
func TestSilentReplicaDropped(t *testing.T) {
	ka := discovery.ClientKeepalive
	discovery.ClientKeepalive = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: time.Second, PermitWithoutStream: true}
	defer func() { discovery.ClientKeepalive = ka }()
	cli := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, addr := healthServer(t)
	proxy, silence := silentProxy(t, addr)
	dereg, err := discovery.Register(ctx, cli, "silent", proxy, 5, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dereg(context.Background()) }()
	conn, err := discovery.DialEtcd(ctx, cli, "silent")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := checkPeer(conn); err != nil || got != proxy {
		t.Fatalf("before the silence: peer %q, err %v", got, err)
	}
	silence()
	done := make(chan error, 1)
	go func() {
		_, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		done <- err
	}()
	select {
	case err := <-done:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("a call to a silent replica: %v, want UNAVAILABLE", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("a call without a deadline to a silent replica still waits after 40 s: the connection has no keepalive")
	}
}
