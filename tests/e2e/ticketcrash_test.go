package e2e

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestTicketReplicaKilled: two ticket replicas (processes of the real
// binary) on one NATS JetStream and one registry store; replica A starts a
// session and issues service tickets. B validates one of them once (it
// asks A, which keeps its tickets in memory, through NATS; a replay is
// refused). A is killed with SIGKILL before the other is validated: B
// refuses that ticket as INVALID_TICKET (it went with A; the application's
// next redirect to the login gets a new one), still knows the session,
// kept in NATS, and issues and validates from it: a replica killed
// mid-flow loses no session.
func TestTicketReplicaKilled(t *testing.T) {
	const internalKey = "0123456789abcdef-ticket-crash"
	dir := t.TempDir()
	etcd, endpoints, err := etcdtest.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	ns, err := events.StartEmbeddedNATS(filepath.Join(dir, "nats"), "127.0.0.1", freePort(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)

	// Identity in this process; the ticket replicas find it through etcd.
	idCfg := testConfig(filepath.Join(dir, "identity"))
	idCfg.Target, idCfg.Discovery = "identity", config.DiscoveryEtcd
	idCfg.Etcd.Endpoints, idCfg.Etcd.LeaseTTL = endpoints, 2
	idCfg.NATS.URL, idCfg.NATS.Embedded = ns.ClientURL(), false
	idCfg.InternalKey = internalKey
	// No authz component in this deployment: the legacy is_admin rule.
	identitycomponent.Settings(&idCfg).AdminAuthz = false
	idCfg.Complete()
	makeKeyRing(t, idCfg)
	e := start(t, idCfg)
	e.login()
	f := e.seed("crash", "kira", nil, nil)

	// The replicas share the key ring (ticket signatures) and one registry
	// store (their data directory).
	tdir := filepath.Join(dir, "ticket")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		t.Fatal(err)
	}
	ring, err := os.ReadFile(identitycomponent.Settings(&idCfg).KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tdir, "keyring.json"), ring, 0o600); err != nil {
		t.Fatal(err)
	}
	penv := cheapEnv("UIAS_INTERNAL_KEY="+internalKey, "UIAS_ETCD_LEASE_TTL=2", "UIAS_ETCD_DIAL_TIMEOUT=2s")
	args := []string{"serve", "--target=ticket", "--data-dir=" + tdir, "--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0",
		"--etcd-endpoints=" + endpoints[0], "--nats-url=" + ns.ClientURL()}
	a := startProc(t, penv, args...)
	addrA := a.waitStdout("gRPC listening on ")
	b := startProc(t, penv, args...) // after A: A migrated the store
	addrB := b.waitStdout("gRPC listening on ")

	// Dial each replica as a UIAS component does (origin signed with the
	// internal key): session calls are for components only.
	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithChainUnaryInterceptor(grpcx.UnaryClientOrigin([]byte(internalKey))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	connA, connB := dial(addrA), dial(addrB)
	ctx := grpcx.WithOrigin(context.Background(), grpcx.Origin{ClientIP: netip.MustParseAddr("127.0.0.1")})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	const svc = "https://crash.example.com/app/"
	adm := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token)
	if _, err := ticketv1.NewServiceRegistryServiceClient(connB).CreateService(adm, &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Crash app", Url: svc}}); err != nil {
		t.Fatalf("register through B: %v", err)
	}
	ta, tb := ticketv1.NewTicketServiceClient(connA), ticketv1.NewTicketServiceClient(connB)
	cs, err := ta.CreateSession(ctx, &ticketv1.CreateSessionRequest{UserId: f.userID, Login: "kira", AuthLevel: 1})
	if err != nil {
		t.Fatalf("session on A: %v", err)
	}
	st, err := ta.IssueServiceTicket(ctx, &ticketv1.IssueServiceTicketRequest{Tgt: cs.GetTgt(), Service: svc, FromNewLogin: true})
	if err != nil {
		t.Fatalf("ticket from A: %v", err)
	}
	v, err := tb.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st.GetTicket(), Service: svc})
	if err != nil || !v.GetValid() || v.GetLogin() != "kira" || v.GetUserId() != f.userID || !v.GetFromNewLogin() {
		t.Fatalf("A's ticket validated on B: %v %v", v, err)
	}
	for _, c := range []ticketv1.TicketServiceClient{ta, tb} {
		v, err = c.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st.GetTicket(), Service: svc})
		if err != nil || v.GetValid() || v.GetCode() != ticketv1.CasCode_CAS_CODE_INVALID_TICKET {
			t.Fatalf("A's ticket replayed: %v %v", v, err)
		}
	}
	lost, err := ta.IssueServiceTicket(ctx, &ticketv1.IssueServiceTicketRequest{Tgt: cs.GetTgt(), Service: svc})
	if err != nil {
		t.Fatalf("ticket from A: %v", err)
	}

	a.signal(syscall.SIGKILL)
	if _, ok := a.exited(30 * time.Second); !ok {
		t.Fatal("replica A did not die")
	}
	// Once NATS has seen A go (until then B's question may wait for A and
	// fail as unavailable), the ticket A kept is unknown.
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err = tb.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: lost.GetTicket(), Service: svc})
		if err == nil && !v.GetValid() && v.GetCode() == ticketv1.CasCode_CAS_CODE_INVALID_TICKET {
			break
		}
		if err == nil && v.GetValid() || time.Now().After(deadline) {
			t.Fatalf("the ticket of the killed replica, on B: %v %v", v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sess, err := tb.GetSession(ctx, &ticketv1.GetSessionRequest{Tgt: cs.GetTgt()})
	if err != nil || sess.GetUserId() != f.userID || len(sess.GetServices()) != 1 {
		t.Fatalf("A's session on B: %v %v", sess, err)
	}
	st2, err := tb.IssueServiceTicket(ctx, &ticketv1.IssueServiceTicketRequest{Tgt: cs.GetTgt(), Service: svc})
	if err != nil {
		t.Fatalf("ticket from B in A's session: %v", err)
	}
	if v, err := tb.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st2.GetTicket(), Service: svc}); err != nil || !v.GetValid() {
		t.Fatalf("B's ticket: %v %v", v, err)
	}
}
