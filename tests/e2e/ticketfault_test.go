package e2e

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// faultLegacyMessage is what the legacy interface tells an application
// when UIAS cannot answer.
const faultLegacyMessage = "the single sign-on service is unavailable, retry later"

// noInternals fails when an answer shows anything of the cause of a fault.
func noInternals(t *testing.T, what, body string) {
	t.Helper()
	for _, s := range []string{"rpc error", "Unavailable", "UNAVAILABLE", "identity", "nats", "NATS", "dial",
		"TICKET_STORE", "connection", "goroutine"} {
		if strings.Contains(body, s) {
			t.Errorf("%s shows %q: %s", what, s, body)
		}
	}
}

// legacyAsk posts validateServiceTicket as an application does, with a
// client that gives up after a minute (a hang fails the test).
func legacyAsk(t *testing.T, casBase, st string) (int, legacyXML, string) {
	t.Helper()
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.PostForm(casBase+"ssoAuthService", url.Values{"verb": {"validateServiceTicket"}, "st": {st}})
	if err != nil {
		t.Fatalf("validateServiceTicket: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans legacyXML
	if err := xml.Unmarshal(body, &ans); err != nil {
		ans.Result = "UNPARSABLE"
	}
	return resp.StatusCode, ans, string(body)
}

// ssoTickets signs a person in at the CAS login page for a legacy service
// (whose stub application keeps the ticket) and then, without a password,
// for a CAS service; it returns both tickets.
func ssoTickets(t *testing.T, br *browser, casBase string, stub *legacyStubApp, legacyURL, casURL, login, password string) (string, string) {
	t.Helper()
	_, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(legacyURL))
	code, body, at := br.loginForm(casBase, body, login, password)
	if code != http.StatusOK || !strings.HasPrefix(at.String(), legacyURL+"?verb=ssoLogin&st=ST-") || body != "held" {
		t.Fatalf("login for the legacy service: %d at %s: %s", code, at, body)
	}
	_, _, at = br.get(casBase + "login?service=" + url.QueryEscape(casURL))
	casST := at.Query().Get("ticket")
	if !strings.HasPrefix(casST, "ST-") {
		t.Fatalf("no CAS ticket without a password: %s", at)
	}
	return stub.last("a"), casST
}

// TestTicketWithIdentityDown: identity in one process, the ticket component
// and the edge in another (found through etcd). With identity stopped, an
// application asking the legacy ssoAuthService gets RPC_INTERNAL_ERROR
// with HTTP 503 and nothing else (no account, no password, no cause),
// promptly; a CAS validation still validates (it needs no identity) and
// answers without the person's attributes, as documented.
func TestTicketWithIdentityDown(t *testing.T) {
	const internalKey = "0123456789abcdef-ticket-iddown"
	dir := t.TempDir()
	etcd, endpoints, err := etcdtest.Start(filepath.Join(dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	ns, err := events.StartEmbeddedNATS(filepath.Join(dir, "nats"), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	idCfg := testConfig(filepath.Join(dir, "identity"))
	idCfg.Target, idCfg.Discovery = "identity", config.DiscoveryEtcd
	idCfg.Etcd.Endpoints, idCfg.Etcd.LeaseTTL = endpoints, 2
	idCfg.NATS.URL, idCfg.NATS.Embedded = ns.ClientURL(), false
	idCfg.InternalKey = internalKey
	// No authz component in this deployment: the legacy is_admin rule.
	identitycomponent.Settings(&idCfg).AdminAuthz = false
	idCfg.Complete()
	makeKeyRing(t, idCfg)
	id := start(t, idCfg)
	id.login()
	f := id.seed("lgd", "dora", &identityv1.CreateAppRequest{IpAllowList: []string{"127.0.0.1"}}, nil)

	edgeCfg := idCfg
	edgeCfg.Target = "ticket,gateway"
	edgeCfg.DataDir = filepath.Join(dir, "edge")
	edge := start(t, edgeCfg)
	casBase := edge.http + "/cas/"
	stub := newLegacyStub(t, casBase)
	app := &stubApp{appID: f.appID}
	app.hold.Store(true)
	legacyURL := stub.add("a", app)
	casURL := stub.srv.URL + "/cas-a/"
	registry := ticketv1.NewServiceRegistryServiceClient(edge.conn)
	for _, d := range []*ticketv1.ServiceDefinition{
		{AppId: f.appID, Name: "Legacy OA", Url: legacyURL, LegacyScheme: 1},
		{AppId: f.appID, Name: "CAS side", Url: casURL},
	} {
		if _, err := registry.CreateService(id.adm(), &ticketv1.CreateServiceRequest{Service: d}); err != nil {
			t.Fatalf("register %s: %v", d.GetName(), err)
		}
	}
	br := newBrowser(t)
	br.c.Timeout = 90 * time.Second
	legacyST, casST := ssoTickets(t, br, casBase, stub, legacyURL, casURL, "dora", f.password)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := id.app.Stop(ctx); err != nil {
		t.Fatalf("stop identity: %v", err)
	}

	code, ans, raw := legacyAsk(t, casBase, legacyST)
	if code != http.StatusServiceUnavailable || ans.Result != "RPC_INTERNAL_ERROR" || ans.Message != faultLegacyMessage ||
		ans.Username != "" || ans.Password != "" || ans.LoggedIn != "false" {
		t.Fatalf("legacy validation with identity down: %d %s", code, raw)
	}
	noInternals(t, "the legacy answer", raw)

	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(casURL) + "&ticket=" + casST)
	if err != nil {
		t.Fatalf("p3/serviceValidate: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "<cas:user>dora</cas:user>") || strings.Contains(string(body), "<cas:displayName>") {
		t.Fatalf("CAS validation with identity down: %d %s", resp.StatusCode, body)
	}
}

// TestTicketWithNATSDown: UIAS in one process on an external NATS server
// that stops. A CAS validation answers INTERNAL_ERROR, the legacy
// interface RPC_INTERNAL_ERROR with 503, the login page an error page with
// 503, all promptly and showing nothing of the cause. When NATS is back
// (restarted on its store), the person's session is still there: the login
// page issues a new ticket without a password, and it validates.
func TestTicketWithNATSDown(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	natsDir := filepath.Join(dir, "nats-ext")
	ns, err := events.StartEmbeddedNATS(natsDir, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	cfg := testConfig(filepath.Join(dir, "uias"))
	cfg.NATS.URL, cfg.NATS.Embedded = "nats://127.0.0.1:"+strconv.Itoa(port), false
	e := start(t, cfg)
	e.login()
	f := e.seed("lgn", "nina", &identityv1.CreateAppRequest{IpAllowList: []string{"127.0.0.1"}}, nil)
	casBase := e.http + "/cas/"
	stub := newLegacyStub(t, casBase)
	app := &stubApp{appID: f.appID}
	app.hold.Store(true)
	legacyURL := stub.add("a", app)
	casURL := stub.srv.URL + "/cas-a/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, d := range []*ticketv1.ServiceDefinition{
		{AppId: f.appID, Name: "Legacy OA", Url: legacyURL, LegacyScheme: 2},
		{AppId: f.appID, Name: "CAS side", Url: casURL},
	} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d}); err != nil {
			t.Fatalf("register %s: %v", d.GetName(), err)
		}
	}
	br := newBrowser(t)
	br.c.Timeout = 90 * time.Second
	legacyST, casST := ssoTickets(t, br, casBase, stub, legacyURL, casURL, "nina", f.password)

	// A probe: a session that has recorded the service, so that issuing
	// from it writes nothing and fails only once this instance knows NATS
	// is gone.
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	probe, _, err := h.Service.CreateSession(context.Background(), ticket.NewSession{UserID: f.userID, Login: "nina", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Service.IssueServiceTicket(context.Background(), probe, casURL, false); err != nil {
		t.Fatal(err)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	// The process learns of the loss when its client reads the close, a
	// moment after the server is gone: a guarded ticket validated before
	// that is answered from this instance's memory (ADR 0006), as it would
	// be a moment before the outage. What follows is about NATS known to
	// be down.
	eventually(t, "the process to notice that NATS is gone", func() bool {
		_, _, err := h.Service.IssueServiceTicket(context.Background(), probe, casURL, false)
		return err != nil
	})

	validate := func(st string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 90 * time.Second}
		resp, err := c.Get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(casURL) + "&ticket=" + st)
		if err != nil {
			t.Fatalf("p3/serviceValidate: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if _, body := validate(casST); !strings.Contains(body, `code="INTERNAL_ERROR"`) {
		t.Fatalf("CAS validation with NATS down: %s", body)
	} else {
		noInternals(t, "the CAS answer", body)
	}
	code, ans, raw := legacyAsk(t, casBase, legacyST)
	if code != http.StatusServiceUnavailable || ans.Result != "RPC_INTERNAL_ERROR" || ans.Message != faultLegacyMessage ||
		ans.Username != "" || ans.LoggedIn != "false" {
		t.Fatalf("legacy validation with NATS down: %d %s", code, raw)
	}
	noInternals(t, "the legacy answer", raw)
	code, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(casURL))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "try again") {
		t.Fatalf("login page with NATS down: %d %s", code, body)
	}
	noInternals(t, "the login page", body)

	// NATS back on its store: the session is still there.
	ns, err = events.StartEmbeddedNATS(natsDir, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	var st string
	for {
		_, _, at := br.get(casBase + "login?service=" + url.QueryEscape(casURL))
		if st = at.Query().Get("ticket"); strings.HasPrefix(st, "ST-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ticket after NATS came back: at %s", at)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, body := validate(st); !strings.Contains(body, "<cas:user>nina</cas:user>") {
		t.Fatalf("ticket after NATS came back: %s", body)
	}
}
