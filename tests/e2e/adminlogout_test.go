package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestAdminLogoutAcrossReplicas: two identity instances on the same data,
// each its own NATS user under the deploy/nats permissions, each reusing
// what an administrator token resolved to for identity.admin_decision_ttl
// (here its largest value, 10 s). A token logged out through one instance
// is refused by the other as soon as the logout's CHANGES event
// (uias.changes.identity.admin_token.revoked) reaches it: before the reuse
// that the other instance's last accepted call began could have run out.
func TestAdminLogoutAcrossReplicas(t *testing.T) {
	dir := t.TempDir()
	etcd, endpoints, err := etcdtest.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	pn := startPermNATS(t, filepath.Join(dir, "nats"))
	setupConn, _ := pn.connect(t, pn.setup, "setup")
	setupJS, _ := jetstream.New(setupConn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, setupJS); err != nil { // uias nats setup
		t.Fatal(err)
	}
	const ttl = 10 * time.Second
	cfg := testConfig(filepath.Join(dir, "identity"))
	cfg.Target, cfg.Discovery = "identity", config.DiscoveryEtcd
	cfg.Etcd.Endpoints, cfg.Etcd.LeaseTTL = endpoints, 2
	cfg.NATS, cfg.NATS.Embedded = pn.identity, false
	identitycomponent.Settings(&cfg).AdminDecisionTTL = ttl
	identitycomponent.Settings(&cfg).AdminAuthz = false // no authz here: the legacy is_admin rule
	if dsn := os.Getenv("UIAS_TEST_PG_DSN"); dsn != "" {
		cfg.DB.Driver, cfg.DB.DSN = "postgres", freshSchemaDSN(t, dsn)
	}
	makeKeyRing(t, cfg)
	one := start(t, cfg)
	other := start(t, cfg)
	one.login()
	other.token = one.token

	list := func(e *env) error {
		_, err := e.admin.ListOrgs(e.adm(), &identityv1.ListOrgsRequest{})
		return err
	}
	// The other instance resolves the token and keeps it (every call
	// after the first reuses it).
	var accepted time.Time
	for range 3 {
		if err := list(other); err != nil {
			t.Fatalf("the token on the other instance: %v", err)
		}
		accepted = time.Now()
	}
	if _, err := one.admin.AdminLogout(one.adm(), &identityv1.AdminLogoutRequest{}); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if err := list(one); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("the logged-out token on the instance of the logout: want UNAUTHENTICATED, got %v", err)
	}
	// What the other instance keeps ends, at the latest, ttl after its
	// last accepted call: a refusal before that is the event's doing.
	loggedOut := time.Now()
	for {
		err := list(other)
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if err != nil {
			t.Fatalf("the logged-out token on the other instance: want UNAUTHENTICATED, got %v", err)
		}
		if time.Since(accepted) > ttl-time.Second {
			t.Fatalf("the other instance still accepts the token %v after the logout: its reuse was not ended by the logout's CHANGES event",
				time.Since(loggedOut))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the other instance refused the logged-out token %v after the logout (identity.admin_decision_ttl %v)", time.Since(loggedOut), ttl)
}
