package chaos

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/provision/scimsim"
)

const provToken = "chaos-scim-token-0123456789"

// provisioning: a SCIM business system subscribed to an org (through
// sync-1) while people are created in it through identity-1; meanwhile
// each sync replica is killed with -9 (one of them holds the queue's lease
// and is delivering) and a NATS node is killed. Every acknowledged person
// must reach the SCIM server once: nothing lost, nothing created twice.
func (c *cluster) provisioning(t *testing.T, admin identityv1.AdminServiceClient, adminCtx context.Context, root string) {
	users, groups := scimsim.NewResources(), scimsim.NewResources()
	h, err := scimsim.Handler(users, groups, provToken)
	if err != nil {
		t.Fatal(err)
	}
	// a little slow, so that a queue is being delivered when a fault comes
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		h.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: slow, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	org, err := admin.CreateOrg(adminCtx, &identityv1.CreateOrgRequest{Code: "chaos-prov", Name: "Chaos provisioning", ParentId: root})
	if err != nil {
		t.Fatalf("create org: %v", err)
	}
	crm, err := admin.CreateApp(adminCtx, &identityv1.CreateAppRequest{AppType: "SCIM", AppCode: "chaos-scim", Name: "Chaos SCIM"})
	if err != nil {
		t.Fatalf("create app: %v", err)
	}
	conn, err := grpc.NewClient(c.file("sync-1.grpc"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Subscribing asks identity whether the application exists: right
	// after the etcd outage scenario, sync's first look-up of identity may
	// wait for its etcd client to come back (UNAVAILABLE, a clear retry).
	var sub *syncv1.Subscription
	subscribed := time.Now()
	for {
		sub, err = syncv1.NewSyncProvisioningServiceClient(conn).CreateSubscription(adminCtx, &syncv1.CreateSubscriptionRequest{
			Subscription: &syncv1.Subscription{App: crm.GetApp().GetId(), Name: "Chaos SCIM", Transport: "scim",
				Endpoint: "http://" + l.Addr().String() + "/scim/v2", Secret: provToken, Enabled: true,
				Selection: &syncv1.Selection{Orgs: []string{org.GetId()}}}})
		if status.Code(err) != codes.Unavailable || time.Since(subscribed) > 60*time.Second {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if d := time.Since(subscribed); d > time.Second {
		fmt.Printf("    subscribing took %s (sync reached identity again after the etcd outage)\n", d.Round(100*time.Millisecond))
	}

	// people created one every 100 ms; the acknowledged ones kept
	stop, done := make(chan struct{}), make(chan struct{})
	var acked []string
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(adminCtx, 10*time.Second)
			u, err := admin.CreateUser(ctx, &identityv1.CreateUserRequest{LoginName: fmt.Sprintf("chaosprov%03d", i),
				DisplayName: fmt.Sprintf("Chaos provisioning %d", i), OrgId: org.GetId(), Password: "Str0ng-Pass!42"})
			cancel()
			if err == nil {
				acked = append(acked, u.GetId())
			}
			sleep(100 * time.Millisecond)
		}
	}()
	sleep(3 * time.Second)
	c.sh("kill", "sync-1")
	sleep(5 * time.Second)
	c.sh("start", "sync-1")
	sleep(3 * time.Second)
	c.sh("kill", "nats-2")
	sleep(8 * time.Second)
	c.sh("start", "nats-2")
	sleep(3 * time.Second)
	c.sh("kill", "sync-2")
	sleep(5 * time.Second)
	c.sh("start", "sync-2")
	sleep(2 * time.Second)
	close(stop)
	<-done
	if len(acked) == 0 {
		t.Fatal("no person was created during the faults")
	}
	c.waitReady("sync-1")
	c.waitReady("sync-2")
	c.waitReady("nats-2")
	// a killed lease holder's queue is taken over once its lease expires
	// (sync.provision: 30 s)
	start := time.Now()
	deadline := start.Add(180 * time.Second)
	for {
		n, _, _, _, _ := users.Stats()
		if n >= len(acked) || time.Now().After(deadline) {
			break
		}
		sleep(time.Second)
	}
	n, creates, _, deletes, maxPerID := users.Stats()
	lost := 0
	for _, id := range acked {
		if _, ok := users.ByExternal(id); !ok {
			lost++
		}
	}
	fmt.Printf("chaos provisioning: %d people created (acknowledged) across kill -9 of sync-1 and sync-2 and of nats-2; "+
		"the SCIM server holds %d users after %d creates and %d deletes (at most %d creates per person), %d lost; "+
		"caught up %s after the last fault\n", len(acked), n, creates, deletes, maxPerID, lost, time.Since(start).Round(time.Second))
	if lost > 0 {
		t.Errorf("%d acknowledged people never reached the SCIM server (subscription %s)", lost, sub.GetId())
	}
	if n != len(acked) || creates != len(acked) || deletes != 0 || maxPerID != 1 {
		t.Errorf("at the SCIM server: %d users, %d creates, %d deletes, at most %d creates per person; want %d, %d, 0, 1",
			n, creates, deletes, maxPerID, len(acked), len(acked))
	}
}
