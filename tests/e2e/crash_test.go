package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events/eventstest"
)

// twoReplicas runs two `uias serve --target=identity` processes on one
// database (PostgreSQL when UIAS_TEST_PG_DSN is set, else one SQLite file)
// registered in an embedded etcd and publishing to an embedded NATS, and a
// gateway in this process. It returns the replicas, the gateway and a
// seeded fixture.
func twoReplicas(t *testing.T, users int) (a, b *proc, gw *env, fs []fixture) {
	t.Helper()
	dir := t.TempDir()
	etcd, endpoints, err := etcdtest.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	ns := eventstest.NATSIn(t, filepath.Join(dir, "nats"), freePort(t))
	data := filepath.Join(dir, "identity")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	newKeyRing(t, data)
	// identity runs without the authz component here: administrators
	// are decided by the legacy is_admin flag.
	penv := cheapEnv("UIAS_ETCD_LEASE_TTL=2", "UIAS_ETCD_DIAL_TIMEOUT=2s", "UIAS_ADMIN_AUTHZ=false")
	if dsn := os.Getenv("UIAS_TEST_PG_DSN"); dsn != "" {
		penv = append(penv, "UIAS_DB_DRIVER=postgres", "UIAS_DB_DSN="+freshSchemaDSN(t, dsn))
	}
	args := identityArgs(data, endpoints, ns.ClientURL())
	a = startProc(t, penv, args...)
	addrA := a.waitStdout("gRPC listening on ")
	b = startProc(t, penv, args...) // after A: A bootstraps the database
	b.waitStdout("gRPC listening on ")

	gwCfg := testConfig(filepath.Join(dir, "gateway"))
	gwCfg.Target, gwCfg.Discovery, gwCfg.GRPCAddr = "gateway", "etcd", ""
	gwCfg.Etcd.Endpoints = endpoints
	gwCfg.NATS.Embedded = false
	gw = start(t, gwCfg)
	id := &env{t: t}
	id.dial(addrA)
	id.login()
	// One account per caller: a crash leaves the checks it was running
	// counted on their accounts for a minute (identity's login gate), which
	// would throttle one account shared by every caller.
	for i := range users {
		fs = append(fs, id.seed(fmt.Sprintf("oa%d", i), fmt.Sprintf("crash%d", i), nil, nil))
	}
	return a, b, gw, fs
}

// restError is the JSON error body of the REST edge.
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Reason   string            `json:"reason"`
		Metadata map[string]string `json:"metadata"`
	} `json:"details"`
}

// TestReplicaCrashRESTBody: identity replicas killed with SIGKILL under
// REST load. The calls that fail get the documented body (503,
// SERVICE_UNREACHABLE, "identity service unavailable, try again later"),
// never the transport's text (it used to be "error reading from server:
// connection reset by peer"). A 429 OVERLOADED from the replica still
// alive (the machine too busy to hash in time) is the other documented
// answer and allowed.
func TestReplicaCrashRESTBody(t *testing.T) {
	a, b, gw, fs := twoReplicas(t, 20)
	bodyOf := func(f fixture) []byte {
		b, _ := json.Marshal(map[string]any{"app_user_id": f.account, "password": f.password, "auth_type": "AUTH_TYPE_PASSWORD"})
		return b
	}
	eventually(t, "the gateway to reach identity", func() bool {
		code, _, _ := gw.rest("POST", "/v1/authenticate", appHeaders(fs[0]), bodyOf(fs[0]))
		return code == 200
	})

	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		bodies     = map[string]int{} // failed answers: status + body
		stop       atomic.Bool
		wg         sync.WaitGroup
	)
	for _, f := range fs {
		body := bodyOf(f)
		wg.Go(func() {
			for !stop.Load() {
				code, out, _ := gw.rest("POST", "/v1/authenticate", appHeaders(f), body)
				if code == 200 {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				raw, _ := json.Marshal(out)
				mu.Lock()
				bodies[fmt.Sprintf("%d %s", code, raw)]++
				mu.Unlock()
			}
		})
	}
	// Both replicas die, one after the other, under load: every way a call
	// can break (in flight, on a dead connection, with nothing left) occurs.
	waitCount := func(n int64) {
		for base := ok.Load() + failed.Load(); ok.Load()+failed.Load() < base+n; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCount(100)
	a.signal(syscall.SIGKILL)
	waitCount(200)
	b.signal(syscall.SIGKILL)
	waitCount(200)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d ok, %d failed", ok.Load(), failed.Load())
	if failed.Load() == 0 {
		t.Fatal("no call failed: nothing was left to serve them?")
	}
	for k, n := range bodies {
		code, raw, _ := strings.Cut(k, " ")
		var e restError
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			t.Fatalf("%d answers %s: not an error body", n, k)
		}
		reason := ""
		if len(e.Details) > 0 {
			reason = e.Details[0].Reason
		}
		// On a loaded machine the surviving replica may refuse a password
		// check it cannot hash in time: that documented answer (429
		// OVERLOADED) is not a crash leaking through, so it is allowed.
		if code == "429" && reason == "OVERLOADED" && e.Message == "too many password operations in progress, retry shortly" {
			continue
		}
		if code != "503" || reason != "SERVICE_UNREACHABLE" || e.Message != "identity service unavailable, try again later" {
			t.Errorf("%d answers %s; want 503 SERVICE_UNREACHABLE \"identity service unavailable, try again later\"", n, k)
		}
	}
}
