package e2e

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/events/eventstest"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestEventsSurviveNATSOutage: logins keep working while NATS is down and
// every audit event arrives exactly once after it returns.
func TestEventsSurviveNATSOutage(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	natsDir := filepath.Join(dir, "nats-ext")
	ns := eventstest.NATSIn(t, natsDir, port)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	cfg := testConfig(filepath.Join(dir, "uias"))
	cfg.NATS.URL, cfg.NATS.Embedded = url, false
	e := start(t, cfg)
	e.login()
	f := e.seed("oa", "judy", nil, nil)

	countLogins := func() (ok, failed int, ids map[string]int) {
		ids = map[string]int{}
		for _, ev := range streamEvents(t, url, "AUDIT", "uias.audit.identity.authenticate") {
			ids[ev["_msgid"].(string)]++
			switch ev["result"] {
			case "success":
				ok++
			case "failure":
				failed++
			}
			raw := ev["_raw"].(string)
			if strings.Contains(raw, f.password) || strings.Contains(raw, "Wrong-Pass") {
				t.Fatalf("audit event holds a password: %s", raw)
			}
			for _, k := range []string{"serial", "app_id", "api", "actor", "subject", "result", "client_ip", "time", "duration_ms"} {
				if _, ok := ev[k]; !ok {
					t.Fatalf("audit event lacks %s: %s", k, raw)
				}
			}
		}
		return
	}
	login := func(pw string, want int32) {
		t.Helper()
		res, err := e.authPW(f, f.account, pw)
		if err != nil || res.GetResultCode() != want {
			t.Fatalf("login: %v %v", res, err)
		}
	}
	for i := 0; i < 3; i++ {
		login(f.password, 0)
	}
	eventually(t, "3 login events before the outage", func() bool { ok, _, _ := countLogins(); return ok == 3 })

	ns.Shutdown()
	ns.WaitForShutdown()
	for i := 0; i < 5; i++ {
		login(f.password, 0)
	}
	login("Wrong-Pass-1", -1)
	pending, err := e.app.Relay.Pending(context.Background())
	if err != nil || pending < 6 {
		t.Fatalf("outbox should hold the events while NATS is down: %d %v", pending, err)
	}

	eventstest.NATSIn(t, natsDir, port) // the same store and port: the events wait in the outbox until it is back
	e.app.Relay.Kick()
	eventually(t, "outbox drained", func() bool {
		e.app.Relay.Kick()
		n, err := e.app.Relay.Pending(context.Background())
		return err == nil && n == 0
	})
	eventually(t, "all login events", func() bool { ok, failed, _ := countLogins(); return ok == 8 && failed == 1 })
	_, _, ids := countLogins()
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("event %s delivered %d times", id, n)
		}
	}
	// Changes made through the admin API are on CHANGES, personal data masked.
	changes := streamEvents(t, url, "CHANGES", "uias.changes.identity.user.created")
	if len(changes) == 0 {
		t.Fatal("no user.created change event")
	}
	for _, ev := range changes {
		if raw := ev["_raw"].(string); strings.Contains(raw, "11010519491231002X") || strings.Contains(raw, "13812345678") {
			t.Fatalf("change event holds clear personal data: %s", raw)
		}
	}
}

// TestStorageDown: with the database gone, Authenticate answers
// UNAVAILABLE with legacy code -6 (503 over REST) and the process lives on.
func TestStorageDown(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "ken", nil, nil)
	res, err := e.authPW(f, f.account, f.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	g, err := e.admin.CreateGroup(e.adm(), &identityv1.CreateGroupRequest{Code: "crew", Name: "Crew", OrgId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"status"},
		Status: identityv1.AppStatus_APP_STATUS_SUSPENDED}); err != nil {
		t.Fatal(err)
	}

	if err := e.app.DB.Close(); err != nil {
		t.Fatal(err)
	}
	// The administrator's new writes (reset, rename, delete) say storage is down.
	_, err = e.admin.ResetPassword(e.adm(), &identityv1.ResetPasswordRequest{Id: f.userID})
	wantCode(t, err, codes.Unavailable, "STORAGE_UNAVAILABLE")
	_, err = e.admin.UpdateGroup(e.adm(), &identityv1.UpdateGroupRequest{Id: g.GetId(), Name: "Deck"})
	wantCode(t, err, codes.Unavailable, "STORAGE_UNAVAILABLE")
	_, err = e.admin.DeleteApp(e.adm(), &identityv1.DeleteAppRequest{Id: f.appID})
	wantCode(t, err, codes.Unavailable, "STORAGE_UNAVAILABLE")
	// A fresh secret check needs the database too once the cache expires,
	// so use the REST and gRPC paths right away (the app is cached).
	_, err = e.authPW(f, f.account, f.password)
	st := wantCode(t, err, codes.Unavailable, "STORAGE_UNAVAILABLE")
	if ei := errorInfo(st); ei.GetMetadata()["legacy_code"] != "-6" {
		t.Fatalf("want legacy_code -6: %v", ei)
	}
	if strings.Contains(strings.ToLower(st.Message()), "sql") {
		t.Fatalf("message leaks internals: %q", st.Message())
	}
	code, out, _ := e.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"password": f.password, "auth_type": 1})
	if code != 503 {
		t.Fatalf("REST with storage down: %d %v", code, out)
	}
	// still alive, but not ready: readiness follows storage
	code, _, _ = e.rest("GET", "/healthz", nil, nil)
	if code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	eventually(t, "readyz to report storage down", func() bool {
		code, _, _ := e.rest("GET", "/readyz", nil, nil)
		return code == 503
	})
}

// TestReadyzNamesWhatIsNotReady: in one process (target all) /readyz names
// the component that is not ready, not every component of the process:
// with NATS down ticket (its sessions and tickets are NATS key-value
// buckets) is not serving while identity, which keeps its events in the
// outbox, still is (and logins go on); with identity's database gone,
// identity is not serving and ticket still is.
func TestReadyzNamesWhatIsNotReady(t *testing.T) {
	dir := t.TempDir()
	ns := eventstest.NATSIn(t, filepath.Join(dir, "nats"), -1)
	cfg := testConfig(filepath.Join(dir, "uias"))
	cfg.NATS.URL, cfg.NATS.Embedded = ns.ClientURL(), false
	e := start(t, cfg)
	e.login()
	f := e.seed("oa", "ken", nil, nil)
	readyz := func() (int, string) {
		code, out, _ := e.rest("GET", "/readyz", nil, nil)
		raw, _ := out["_raw"].(string)
		return code, raw
	}
	if code, body := readyz(); code != 200 || !strings.Contains(body, "identity: serving\nticket: serving\n") {
		t.Fatalf("/readyz before: %d %q", code, body)
	}

	ns.Shutdown()
	var body string
	eventually(t, "readyz to report ticket not serving", func() bool {
		var code int
		code, body = readyz()
		return code == 503 && strings.Contains(body, "ticket: not serving")
	})
	for _, c := range []string{"identity", "authz", "audit", "sync"} {
		if !strings.Contains(body, c+": serving\n") {
			t.Errorf("/readyz with NATS down names %s not serving (only ticket is):\n%s", c, body)
		}
	}
	res, err := e.authPW(f, f.account, f.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)

	if err := e.app.DB.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "readyz to report identity not serving", func() bool {
		_, body = readyz()
		return strings.Contains(body, "identity: not serving")
	})
	if !strings.Contains(body, "authz: serving\n") {
		t.Errorf("/readyz with identity's storage down names authz not serving:\n%s", body)
	}
}
