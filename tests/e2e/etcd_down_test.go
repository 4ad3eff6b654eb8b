package e2e

import (
	"context"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/gateway"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// microConfigs returns an identity and a gateway config for microservices
// mode against etcd at endpoints and the permissioned NATS pn, with the
// identity key ring made beforehand (as operators must outside "all").
func microConfigs(t *testing.T, dir string, endpoints []string, pn *permNATS) (idCfg, gwCfg config.Config) {
	t.Helper()
	idCfg = testConfig(filepath.Join(dir, "identity"))
	idCfg.Target = "identity"
	idCfg.Discovery = "etcd"
	idCfg.Etcd.Endpoints = endpoints
	idCfg.Etcd.LeaseTTL = 2
	idCfg.Etcd.DialTimeout = time.Second
	idCfg.NATS, idCfg.NATS.Embedded = pn.identity, false
	idCfg.HTTPAddr = "127.0.0.1:0"
	// No authz component in this deployment: the legacy is_admin rule.
	identitycomponent.Settings(&idCfg).AdminAuthz = false
	makeKeyRing(t, idCfg)
	gwCfg = idCfg
	gwCfg.Target = "gateway"
	gwCfg.GRPCAddr = ""
	gwCfg.HTTPAddr = "127.0.0.1:0"
	gwCfg.DataDir = filepath.Join(dir, "gateway")
	return idCfg, gwCfg
}

// httpGet answers the status of GET url, failing the test when no answer
// comes within 10 s (a hang, not a timing expectation).
func httpStatus(t *testing.T, method, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest(method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stopWithin stops a within the shutdown limit of `uias serve` (15 s).
func stopWithin(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.app.Stop(ctx) }()
	select {
	case err := <-done:
		if ctx.Err() != nil {
			t.Fatalf("stop took the whole shutdown limit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stop hangs beyond the shutdown limit")
	}
}

// TestEtcdUnreachableAtStart: a gateway and an identity replica started
// while etcd is unreachable. The gateway answers /readyz and REST calls
// with 503 at once and stops within the shutdown limit; identity serves
// its probes as not ready and keeps trying to register. When etcd comes
// up, identity registers and the gateway routes to it.
func TestEtcdUnreachableAtStart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	endpoints := []string{"http://127.0.0.1:" + itoa(port)}
	pn := startPermNATS(t, filepath.Join(dir, "nats"))
	setupConn, _ := pn.connect(t, pn.setup, "setup")
	setupJS, _ := jetstream.New(setupConn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, setupJS); err != nil {
		t.Fatal(err)
	}
	idCfg, gwCfg := microConfigs(t, dir, endpoints, pn)

	// A gateway that never sees etcd: 503 at once, and it still stops.
	lone := start(t, gwCfg)
	if code := httpStatus(t, "GET", lone.http+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code := httpStatus(t, "GET", lone.http+"/readyz"); code != 503 {
		t.Fatalf("/readyz without etcd: %d, want 503", code)
	}
	if code := httpStatus(t, "POST", lone.http+"/v1/authenticate"); code != 503 {
		t.Fatalf("/v1/authenticate without etcd: %d, want 503", code)
	}
	stopWithin(t, lone)

	gw := start(t, gwCfg)
	id := start(t, idCfg)
	ops := "http://" + id.app.HTTPAddr()
	// and says why (acceptb: it said "a component is unavailable")
	if code, body := httpBody(t, ops+"/readyz"); code != 503 || !strings.Contains(body, "not ready: not registered in etcd yet") {
		t.Fatalf("identity /readyz before it is registered: %d %q, want 503 naming the registration", code, body)
	}
	if code := httpStatus(t, "GET", gw.http+"/readyz"); code != 503 {
		t.Fatalf("gateway /readyz without etcd: %d, want 503", code)
	}

	etcd, _, err := etcdtest.StartOn(filepath.Join(dir, "etcd"), port)
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	eventually(t, "identity to register once etcd is up", func() bool { return httpStatus(t, "GET", ops+"/readyz") == 200 })
	id.login()
	f := id.seed("oa", "etcdlate", nil, nil)
	eventually(t, "the gateway to route to identity", func() bool {
		code, out, _ := gw.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
			"password": f.password, "auth_type": "AUTH_TYPE_PASSWORD"})
		return code == 200 && out["result_code"] == float64(0)
	})
	// Only identity is deployed behind this gateway (no ticket, authz or
	// audit): the gateway becomes ready, waiting for identity alone, and
	// says so.
	var body string
	eventually(t, "the gateway with only identity behind it to be ready", func() bool {
		var code int
		code, body = httpBody(t, gw.http+"/readyz")
		return code == 200
	})
	if !strings.Contains(body, "waits for: identity (") || !strings.Contains(body, "identity: serving") {
		t.Errorf("gateway /readyz body %q does not name identity", body)
	}
	for _, other := range []string{"ticket", "authz", "audit"} {
		if strings.Contains(body, other) {
			t.Errorf("gateway /readyz body %q names %s, which is not deployed", body, other)
		}
	}

	// gateway.backends names the components deployed behind the edge: one
	// that names audit, which is not running, is not ready and says why.
	cfg := withGatewayBackends(gwCfg, "identity", "audit")
	gw2 := start(t, cfg)
	code, body := httpBody(t, gw2.http+"/readyz")
	if code != 503 || !strings.Contains(body, "waits for: identity, audit (configured in gateway.backends)") ||
		!strings.Contains(body, "audit: unavailable") {
		t.Errorf("gateway /readyz with audit configured but absent: %d %q", code, body)
	}
	stopWithin(t, gw2)
	// A name the edge does not serve stops the start with a clear error.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if a, err := app.Start(ctx2, withGatewayBackends(gwCfg, "identity", "nosuch"), app.Options{}); err == nil {
		_ = a.Stop(ctx2)
		t.Error("gateway.backends naming an unknown component started")
	} else if !strings.Contains(err.Error(), "gateway.backends") || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("gateway.backends naming an unknown component: %v", err)
	}
	stopWithin(t, gw)

	// Its database gone, identity's /readyz says so (docs/operators.md,
	// Health), in words, with no driver text.
	if err := id.app.DB.Close(); err != nil {
		t.Fatal(err)
	}
	var idBody string
	eventually(t, "identity /readyz to name its storage", func() bool {
		var code int
		code, idBody = httpBody(t, ops+"/readyz")
		return code == 503
	})
	if idBody != "not ready: identity: storage is unavailable, try again later\n" {
		t.Errorf("identity /readyz with its database closed: %q", idBody)
	}
	stopWithin(t, id)
}

// withGatewayBackends returns cfg with its own gateway section naming
// backends (the sections map is not shared with cfg).
func withGatewayBackends(cfg config.Config, backends ...string) config.Config {
	cfg.Sections = maps.Clone(cfg.Sections)
	cfg.Sections[gateway.Name] = &gateway.Config{Backends: backends}
	return cfg
}

// httpBody answers the status and body of GET url, failing the test when
// no answer comes within 10 s (a hang, not a timing expectation).
func httpBody(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

// makeKeyRing writes a new key ring where cfg's identity looks for it, as
// `uias keys new --out FILE` does.
func makeKeyRing(t *testing.T, cfg config.Config) {
	t.Helper()
	kf := identitycomponent.Settings(&cfg).KeyFile
	if err := os.MkdirAll(filepath.Dir(kf), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, crypto.NewRingJSON(), 0o600); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
}
