package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestMicroservices runs identity and gateway as separate servers that find
// each other through embedded etcd, with an external NATS configured as
// operators deploy it (deploy/nats: identity runs as its own NATS user that
// may only publish its own events) and (when UIAS_TEST_PG_DSN is set)
// PostgreSQL. Identity is stopped and restarted on another port; the
// gateway finds it again.
func TestMicroservices(t *testing.T) {
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
	auditCount := func() uint64 {
		s, err := setupJS.Stream(ctx, events.StreamAudit)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}

	idCfg := testConfig(filepath.Join(dir, "identity"))
	idCfg.Target = "identity"
	idCfg.Discovery = "etcd"
	idCfg.Etcd.Endpoints = endpoints
	idCfg.Etcd.LeaseTTL = 2
	idCfg.NATS, idCfg.NATS.Embedded = pn.identity, false
	idCfg.HTTPAddr = "127.0.0.1:0" // ops listener: /metrics, /healthz, /readyz
	// A user cache TTL far beyond the test: only the CHANGES event can make
	// one instance see a change made through another.
	identitycomponent.Settings(&idCfg).UserCacheTTL = time.Hour
	// No authz component in this deployment: the legacy is_admin rule.
	identitycomponent.Settings(&idCfg).AdminAuthz = false
	if dsn := os.Getenv("UIAS_TEST_PG_DSN"); dsn != "" {
		idCfg.DB.Driver, idCfg.DB.DSN = "postgres", freshSchemaDSN(t, dsn)
	}
	makeKeyRing(t, idCfg) // outside "all" a replica does not make its own
	gwCfg := idCfg
	gwCfg.Target = "gateway"
	gwCfg.GRPCAddr = ""
	gwCfg.HTTPAddr = "127.0.0.1:0"
	gwCfg.DataDir = filepath.Join(dir, "gateway")

	idApp := startApp(t, idCfg)
	gw := start(t, gwCfg)
	id := &env{t: t, app: idApp}
	id.dial(idApp.GRPCAddr())
	id.login()
	f := id.seed("oa", "leo", nil, nil)

	authREST := func() (int, map[string]any) {
		code, out, _ := gw.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
			"password": f.password, "auth_type": "AUTH_TYPE_PASSWORD"})
		return code, out
	}
	code, out := authREST()
	if code != 200 || out["result_code"] != float64(0) {
		t.Fatalf("through gateway: %d %v", code, out)
	}
	// Identity publishes its audit records with its own NATS credentials.
	eventually(t, "identity's audit records to reach AUDIT", func() bool { return auditCount() >= 2 })
	// The lone identity process exposes its own probes and metrics.
	ops := &env{t: t, http: "http://" + idApp.HTTPAddr()}
	if code, _, _ := ops.rest("GET", "/readyz", nil, nil); code != 200 {
		t.Fatalf("identity /readyz: %d", code)
	}
	if code, out, _ := ops.rest("GET", "/metrics", nil, nil); code != 200 ||
		!strings.Contains(fmt.Sprint(out["_raw"]), `grpc_server_handled_total{grpc_code="OK",grpc_method="/uias.identity.v1.AuthService/Authenticate"}`) {
		t.Fatalf("identity /metrics: %d", code)
	}

	// A second identity instance on the same data: a change made through it
	// reaches the first instance's user cache as a CHANGES event.
	peerApp := startApp(t, idCfg)
	peer := &env{t: t, app: peerApp}
	peer.dial(peerApp.GRPCAddr())
	peer.login()
	if u, err := id.admin.GetUser(id.adm(), &identityv1.GetUserRequest{Id: f.userID}); err != nil || u.Status != identityv1.UserStatus_USER_STATUS_ACTIVE {
		t.Fatalf("get user: %v %v", u, err)
	}
	if _, err := peer.admin.SetUserStatus(peer.adm(), &identityv1.SetUserStatusRequest{Id: f.userID, Status: identityv1.UserStatus_USER_STATUS_DISABLED}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first instance to see a user disabled through the second", func() bool {
		u, err := id.admin.GetUser(id.adm(), &identityv1.GetUserRequest{Id: f.userID})
		return err == nil && u.Status == identityv1.UserStatus_USER_STATUS_DISABLED
	})
	if _, err := peer.admin.SetUserStatus(peer.adm(), &identityv1.SetUserStatusRequest{Id: f.userID, Status: identityv1.UserStatus_USER_STATUS_ACTIVE}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first instance to see the user enabled again", func() bool {
		u, err := id.admin.GetUser(id.adm(), &identityv1.GetUserRequest{Id: f.userID})
		return err == nil && u.Status == identityv1.UserStatus_USER_STATUS_ACTIVE
	})
	sctx, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	if err := peerApp.Stop(sctx); err != nil {
		t.Logf("stop peer: %v", err)
	}
	cancel2()

	// Stop identity; start a new instance on another port with the same data.
	first := idApp.GRPCAddr()
	sctx, cancel2 = context.WithTimeout(context.Background(), 20*time.Second)
	if err := idApp.Stop(sctx); err != nil {
		t.Logf("stop identity: %v", err)
	}
	cancel2()
	code, _ = authREST()
	if code != 503 {
		t.Fatalf("with identity down the gateway should answer 503, got %d", code)
	}
	idApp2 := startApp(t, idCfg)
	if idApp2.GRPCAddr() == first {
		t.Fatalf("restarted on the same address %s", first)
	}
	eventually(t, "gateway to find the new identity instance", func() bool {
		code, out := authREST()
		return code == 200 && out["result_code"] == float64(0)
	})
}

func startApp(t *testing.T, cfg config.Config) *app.App {
	t.Helper()
	return start(t, cfg).app
}

// freshSchemaDSN creates an empty schema in the test PostgreSQL and returns
// a DSN whose search_path points at it, so each test has its own tables.
func freshSchemaDSN(t *testing.T, dsn string) string {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	schema := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", dsn); err == nil {
			_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
			db.Close()
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}
