package discovery_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/uias/uias/pkg/discovery"
	"github.com/uias/uias/pkg/discovery/etcdtest"
)

func startEtcd(t *testing.T) *clientv3.Client {
	t.Helper()
	e, eps, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// healthServer runs a gRPC server with only the health service on a random
// loopback port.
func healthServer(t *testing.T) (*grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv, lis.Addr().String()
}

// waitFor polls check until it returns true or the generous deadline passes.
func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkPeer calls health Check and returns the address of the server reached.
func checkPeer(conn *grpc.ClientConn) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var p peer.Peer
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
	if err != nil {
		return "", err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", nil
	}
	return p.Addr.String(), nil
}

func keyLease(t *testing.T, cli *clientv3.Client, key string) (clientv3.LeaseID, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0, false
	}
	return clientv3.LeaseID(resp.Kvs[0].Lease), true
}

func TestRegisterDialFollowsEndpoints(t *testing.T) {
	cli := startEtcd(t)
	log := zaptest.NewLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	srv1, addr1 := healthServer(t)
	dereg1, err := discovery.Register(ctx, cli, "identity", addr1, 5, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keyLease(t, cli, "uias/identity/"+addr1); !ok {
		t.Fatal("endpoint key not in etcd")
	}

	conn, err := discovery.DialEtcd(ctx, cli, "identity")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := checkPeer(conn); err != nil || got != addr1 {
		t.Fatalf("first server: peer %q, err %v", got, err)
	}

	// Replace the server: deregister and stop the first, register a second.
	if err := dereg1(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dereg1(ctx); err != nil {
		t.Fatalf("second deregister: %v", err)
	}
	if _, ok := keyLease(t, cli, "uias/identity/"+addr1); ok {
		t.Fatal("endpoint key still in etcd after deregister")
	}
	srv1.Stop()
	_, addr2 := healthServer(t)
	if addr2 == addr1 {
		t.Fatal("second server got the same address")
	}
	dereg2, err := discovery.Register(ctx, cli, "identity", addr2, 5, log)
	if err != nil {
		t.Fatal(err)
	}
	defer dereg2(context.Background())
	waitFor(t, "the connection to reach the second server", func() bool {
		got, err := checkPeer(conn)
		return err == nil && got == addr2
	})

	// A lost lease (revoked behind the registration's back) is re-registered.
	key2 := "uias/identity/" + addr2
	lease, ok := keyLease(t, cli, key2)
	if !ok {
		t.Fatal("second endpoint not in etcd")
	}
	if _, err := cli.Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "re-registration under a new lease", func() bool {
		l, ok := keyLease(t, cli, key2)
		return ok && l != lease
	})
	waitFor(t, "calls to succeed after re-registration", func() bool {
		got, err := checkPeer(conn)
		return err == nil && got == addr2
	})

	// Two instances: round robin reaches both.
	_, addr3 := healthServer(t)
	dereg3, err := discovery.Register(ctx, cli, "identity", addr3, 5, log)
	if err != nil {
		t.Fatal(err)
	}
	defer dereg3(context.Background())
	seen := map[string]bool{}
	waitFor(t, "round robin to reach both instances", func() bool {
		if got, err := checkPeer(conn); err == nil {
			seen[got] = true
		}
		return seen[addr2] && seen[addr3]
	})

	// Direct dialing bypasses etcd.
	direct, err := discovery.DialDirect(addr3)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if got, err := checkPeer(direct); err != nil || got != addr3 {
		t.Fatalf("direct: peer %q, err %v", got, err)
	}
}

func TestRegisterRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := discovery.Register(ctx, nil, "identity", "127.0.0.1:1", 5, nil); err == nil {
		t.Error("nil client accepted")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, tc := range [][2]string{{"", "127.0.0.1:1"}, {"a/b", "127.0.0.1:1"}, {"identity", ""}} {
		if _, err := discovery.Register(ctx, cli, tc[0], tc[1], 5, nil); err == nil {
			t.Errorf("Register(%q, %q) accepted", tc[0], tc[1])
		}
	}
}

// TestComponents lists the components with an endpoint in etcd, once each,
// and forgets one when its last endpoint is deregistered.
func TestComponents(t *testing.T) {
	cli := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if got, err := discovery.Components(ctx, cli); err != nil || len(got) != 0 {
		t.Fatalf("empty etcd: %v, %v", got, err)
	}
	var deregs []func(context.Context) error
	for _, r := range []struct{ name, addr string }{{"identity", "127.0.0.1:1"}, {"identity", "127.0.0.1:2"}, {"audit", "127.0.0.1:3"}} {
		d, err := discovery.Register(ctx, cli, r.name, r.addr, 30, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		deregs = append(deregs, d)
	}
	// A key under the prefix that is not an endpoint is not a component.
	if _, err := cli.Put(ctx, "uias/stray", "x"); err != nil {
		t.Fatal(err)
	}
	got, err := discovery.Components(ctx, cli)
	if err != nil || strings.Join(got, ",") != "audit,identity" {
		t.Fatalf("components: %v, %v; want audit,identity", got, err)
	}
	if err := deregs[2](ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := discovery.Components(ctx, cli); err != nil || strings.Join(got, ",") != "identity" {
		t.Fatalf("after audit left: %v, %v; want identity", got, err)
	}
}

// The instances of a component are counted as they register and leave
// (what shares an application's rate and concurrency limits), never
// below one; other components do not count.
func TestWatchInstances(t *testing.T) {
	cli := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inst := discovery.WatchInstances(ctx, cli, "identity", zap.NewNop())
	if n := inst.Count(); n != 1 {
		t.Fatalf("none registered: %d, want 1 (this one)", n)
	}
	var deregs []func(context.Context) error
	for _, r := range []struct{ name, addr string }{{"identity", "127.0.0.1:1"}, {"identity", "127.0.0.1:2"}, {"identity", "127.0.0.1:3"}, {"authz", "127.0.0.1:4"}} {
		d, err := discovery.Register(ctx, cli, r.name, r.addr, 30, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		deregs = append(deregs, d)
	}
	waitFor(t, "three identity instances", func() bool { return inst.Count() == 3 })
	if err := deregs[0](ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two after one left", func() bool { return inst.Count() == 2 })
	for _, d := range deregs[1:3] {
		if err := d(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "one (itself) after all left", func() bool { return inst.Count() == 1 })
	var none *discovery.Instances
	if none.Count() != 1 {
		t.Fatal("a nil counter is one instance")
	}
}
