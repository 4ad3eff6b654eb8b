package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/cas/casxml"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestCASProtocol checks the CAS endpoints one by one: error codes,
// formats, the login page's refusals and cookies, proxying with an HTTPS
// pgtUrl callback whose certificate is verified.
func TestCASProtocol(t *testing.T) {
	// The pgtUrl callback: an HTTPS server whose CA the ticket component
	// trusts through ticket.outbound_ca_file.
	var mu sync.Mutex
	pgts := map[string]string{} // IOU -> PGT
	cb := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if iou := r.URL.Query().Get("pgtIou"); iou != "" {
			pgts[iou] = r.URL.Query().Get("pgtId")
		}
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(http.StatusInternalServerError) // took the PGT, failed after
		}
	}))
	defer cb.Close()
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	untrusted.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	untrusted.StartTLS()
	defer untrusted.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cb.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	tc := *ticketcomponent.Defaults()
	tc.OutboundCAFile = caFile
	cfg.Sections[ticketcomponent.Name] = &tc
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("proto", "pat", nil, nil)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	const svc = "https://app.example.com/"
	var proxying *ticketv1.RegisteredService
	for _, d := range []*ticketv1.ServiceDefinition{
		{AppId: f.appID, Name: "Proxying app", Url: svc, AllowProxy: true},
		{AppId: f.appID, Name: "Callback", Url: cb.URL + "/"},
		{AppId: f.appID, Name: "Untrusted callback", Url: untrusted.URL + "/"},
		{AppId: f.appID, Name: "Backend", Url: "https://backend.example.com/"},
		{AppId: f.appID, Name: "Strong app", Url: "https://strong.example.com/", MinAuthLevel: 2},
	} {
		rs, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetAllowProxy() {
			proxying = rs
		}
	}
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	ctx := context.Background()
	// pat is in two groups: released as groups and memberOf.
	for _, code := range []string{"finance", "approvers"} {
		g, err := e.admin.CreateGroup(e.adm(), &identityv1.CreateGroupRequest{Code: code, Name: "Group " + code, OrgId: e.root})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.admin.AddGroupMember(e.adm(), &identityv1.GroupMemberRequest{GroupId: g.GetId(), UserId: f.userID}); err != nil {
			t.Fatal(err)
		}
	}
	tgt, _, _ := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "pat", AuthLevel: 1})
	issue := func(service string) string {
		t.Helper()
		st, _, err := h.Service.IssueServiceTicket(ctx, tgt, service, false)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	br := newBrowser(t)
	get := func(path string) string {
		t.Helper()
		_, body, _ := br.get(casBase + path)
		// Every XML answer of the validation and proxy endpoints is
		// checked against the CAS 3.0 schema.
		if !strings.HasPrefix(path, "validate?") && !strings.Contains(strings.ToLower(path), "format=json") {
			if err := casxml.Check([]byte(body)); err != nil {
				t.Errorf("%s: not valid against the CAS 3.0 schema: %v\n%s", path, err, body)
			}
		}
		return body
	}
	q := url.QueryEscape

	// CAS 1.0.
	st := issue(svc)
	if got := get("validate?service=" + q(svc) + "&ticket=" + st); got != "yes\npat\n" {
		t.Errorf("validate: %q", got)
	}
	if got := get("validate?service=" + q(svc) + "&ticket=" + st); got != "no\n\n" {
		t.Errorf("validate replay: %q", got)
	}
	// CAS 2.0/3.0 error codes, XML and JSON.
	for name, tc := range map[string]struct{ path, code string }{
		"no ticket":      {"serviceValidate?service=" + q(svc), "INVALID_REQUEST"},
		"no service":     {"serviceValidate?ticket=" + issue(svc), "INVALID_REQUEST"},
		"forged":         {"serviceValidate?service=" + q(svc) + "&ticket=ST-0123456789abcdef0123456789abcdef-1-2-c1-7331-" + strings.Repeat("0", 64), "INVALID_TICKET"},
		"malformed":      {"p3/serviceValidate?service=" + q(svc) + "&ticket=ST-%3Cscript%3E", "INVALID_TICKET"},
		"wrong service":  {"serviceValidate?service=" + q("https://backend.example.com/") + "&ticket=" + issue(svc), "INVALID_SERVICE"},
		"forged pt":      {"serviceValidate?service=" + q(svc) + "&ticket=PT-abc", "INVALID_TICKET"},
		"renew":          {"serviceValidate?renew=true&service=" + q(svc) + "&ticket=" + issue(svc), "INVALID_TICKET_SPEC"},
		"no proxy right": {"serviceValidate?service=" + q("https://backend.example.com/") + "&pgtUrl=" + q(cb.URL+"/pgt") + "&ticket=" + issue("https://backend.example.com/"), "UNAUTHORIZED_SERVICE_PROXY"},
		"bad callback":   {"serviceValidate?service=" + q(svc) + "&pgtUrl=" + q("https://evil.example/pgt") + "&ticket=" + issue(svc), "INVALID_PROXY_CALLBACK"},
	} {
		body := get(tc.path)
		if !strings.Contains(body, `<cas:authenticationFailure code="`+tc.code+`">`) || strings.Contains(body, "<script>") {
			t.Errorf("%s: %s", name, body)
		}
	}
	var js map[string]map[string]map[string]any
	if err := json.Unmarshal([]byte(get("p3/serviceValidate?format=JSON&service="+q(svc)+"&ticket="+issue(svc))), &js); err != nil {
		t.Fatal(err)
	}
	okJSON := js["serviceResponse"]["authenticationSuccess"]
	if g := fmt.Sprint(okJSON["attributes"].(map[string]any)["memberOf"]); g != "[approvers finance]" {
		t.Errorf("memberOf: %s", g)
	}
	if body := get("p3/serviceValidate?service=" + q(svc) + "&ticket=" + issue(svc)); !strings.Contains(body,
		"<cas:groups>approvers</cas:groups>\n      <cas:groups>finance</cas:groups>") || !strings.Contains(body, "<cas:memberOf>finance</cas:memberOf>") {
		t.Errorf("groups in XML: %s", body)
	}
	if okJSON["user"] != "pat" || okJSON["attributes"].(map[string]any)["appAccountId"].([]any)[0] != "acct-pat" {
		t.Errorf("JSON success: %v", js)
	}
	_ = json.Unmarshal([]byte(get("serviceValidate?format=json&service="+q(svc)+"&ticket=ST-x")), &js)
	if js["serviceResponse"]["authenticationFailure"]["code"] != "INVALID_TICKET" {
		t.Errorf("JSON failure: %v", js)
	}

	// Proxy: the PGT reaches the verified HTTPS callback, the PT the backend.
	body := get("p3/serviceValidate?service=" + q(svc) + "&pgtUrl=" + q(cb.URL+"/pgt") + "&ticket=" + issue(svc))
	iou := between(body, "<cas:proxyGrantingTicket>", "</cas:proxyGrantingTicket>")
	mu.Lock()
	pgt := pgts[iou]
	mu.Unlock()
	if !strings.HasPrefix(iou, "PGTIOU-") || !strings.HasPrefix(pgt, "PGT-") {
		t.Fatalf("pgtUrl callback: iou %q pgt %q\n%s", iou, pgt, body)
	}
	// A callback whose certificate does not verify gets nothing.
	body = get("p3/serviceValidate?service=" + q(svc) + "&pgtUrl=" + q(untrusted.URL+"/pgt") + "&ticket=" + issue(svc))
	if !strings.Contains(body, "authenticationSuccess") || strings.Contains(body, "proxyGrantingTicket") {
		t.Errorf("untrusted callback got a PGT: %s", body)
	}
	body = get("proxy?pgt=" + pgt + "&targetService=" + q("https://backend.example.com/"))
	pt := between(body, "<cas:proxyTicket>", "</cas:proxyTicket>")
	if !strings.HasPrefix(pt, "PT-") {
		t.Fatalf("proxy: %s", body)
	}
	if body := get("serviceValidate?service=" + q("https://backend.example.com/") + "&ticket=" + pt); !strings.Contains(body, `code="INVALID_TICKET_SPEC"`) {
		t.Errorf("PT at serviceValidate: %s", body)
	}
	// That refusal used the PT up (CAS 3.0 §3.1.1).
	if body := get("proxyValidate?service=" + q("https://backend.example.com/") + "&ticket=" + pt); !strings.Contains(body, `code="INVALID_TICKET"`) {
		t.Errorf("PT refused at serviceValidate, then at proxyValidate: %s", body)
	}
	body = get("proxy?pgt=" + pgt + "&targetService=" + q("https://backend.example.com/"))
	pt = between(body, "<cas:proxyTicket>", "</cas:proxyTicket>")
	body = get("proxyValidate?service=" + q("https://backend.example.com/") + "&ticket=" + pt)
	if !strings.Contains(body, "<cas:user>pat</cas:user>") || !strings.Contains(body, "<cas:proxy>"+cb.URL+"/pgt</cas:proxy>") {
		t.Errorf("proxyValidate: %s", body)
	}
	// A callback that took the PGT but did not answer 200: the PGT was
	// not issued (CAS 3.0 §2.5.4), so it proxies nothing.
	body = get("p3/serviceValidate?service=" + q(svc) + "&pgtUrl=" + q(cb.URL+"/pgt/fail") + "&ticket=" + issue(svc))
	if !strings.Contains(body, "authenticationSuccess") || strings.Contains(body, "proxyGrantingTicket") {
		t.Errorf("failed callback: %s", body)
	}
	mu.Lock()
	var failedPGT string
	for _, p := range pgts {
		if p != pgt {
			failedPGT = p
		}
	}
	mu.Unlock()
	if body := get("proxy?pgt=" + failedPGT + "&targetService=" + q("https://backend.example.com/")); failedPGT == "" ||
		!strings.Contains(body, `<cas:proxyFailure code="INVALID_TICKET">`) {
		t.Errorf("the PGT of a failed callback (%q): %s", failedPGT, body)
	}
	// Over gRPC an application may validate, but never get a PGT in the
	// answer (it would skip the pgtUrl): refused, the ticket not used.
	tickets := ticketv1.NewTicketServiceClient(e.conn)
	st = issue(svc)
	_, err := tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st, Service: svc, IssuePgt: true, PgtUrl: cb.URL + "/pgt"})
	wantCode(t, err, codes.PermissionDenied, "COMPONENTS_ONLY")
	if v, err := tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st, Service: svc}); err != nil || !v.GetValid() || v.GetPgt() != "" {
		t.Errorf("the ticket after the refused issue_pgt: %v %v", v, err)
	}
	for name, tc := range map[string]struct{ path, code string }{
		"no pgt":       {"proxy?targetService=" + q(svc), "INVALID_REQUEST"},
		"unknown pgt":  {"proxy?pgt=PGT-nope&targetService=" + q(svc), "INVALID_TICKET"},
		"unregistered": {"proxy?pgt=" + pgt + "&targetService=" + q("https://evil.example/"), "UNAUTHORIZED_SERVICE"},
	} {
		if body := get(tc.path); !strings.Contains(body, `<cas:proxyFailure code="`+tc.code+`">`) {
			t.Errorf("proxy %s: %s", name, body)
		}
	}

	// A service no longer allowed to proxy: its PGTs issue nothing more
	// (as when it is deleted, disabled or its application suspended).
	if _, err := registry.UpdateService(e.adm(), &ticketv1.UpdateServiceRequest{Id: proxying.GetId(),
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Proxying app", Url: svc}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the PGT of a service no longer proxying refused", func() bool {
		return strings.Contains(get("proxy?pgt="+pgt+"&targetService="+q("https://backend.example.com/")), `<cas:proxyFailure code="INVALID_TICKET">`)
	})
	if _, err := registry.UpdateService(e.adm(), &ticketv1.UpdateServiceRequest{Id: proxying.GetId(),
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Proxying app", Url: svc, AllowProxy: true}}); err != nil {
		t.Fatal(err)
	}

	// The login page: an unregistered service gets an error page, never a redirect.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(casBase + "login?service=" + q("https://app.example.com.evil.example/"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" || !strings.Contains(string(page), "not registered") {
		t.Errorf("unregistered service: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	// gateway=true without a session: straight back, no ticket.
	resp, _ = noRedirect.Get(casBase + "login?gateway=true&service=" + q(svc))
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != svc {
		t.Errorf("gateway: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Chinese by Accept-Language.
	req, _ := http.NewRequest(http.MethodGet, casBase+"login?service="+q(svc), nil)
	req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
	resp, _ = noRedirect.Do(req)
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `lang="zh-CN"`) || !strings.Contains(string(page), "登录名") || !strings.Contains(string(page), "Proxying app") {
		t.Errorf("zh-CN login page: %s", page)
	}
	// A POST without the CSRF token is refused.
	resp, _ = noRedirect.PostForm(casBase+"login", url.Values{"username": {"pat"}, "password": {f.password}, "service": {svc}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without CSRF: %d", resp.StatusCode)
	}
	// Login: TGC cookie flags; method=POST answers a form, no JavaScript.
	_, body, _ = br.get(casBase + "login?method=POST&service=" + q(svc))
	form := url.Values{"username": {"pat"}, "password": {f.password}, "csrf": {csrfRE.FindStringSubmatch(body)[1]},
		"service": {svc}, "method": {"POST"}}
	resp, err = br.c.PostForm(casBase+"login", form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	// The form submits itself, by the one script the page's nonce allows.
	if !strings.Contains(string(page), `<form method="post" action="https://app.example.com/" id="cas-post">`) || !strings.Contains(string(page), `name="ticket" value="ST-`) ||
		strings.Count(string(page), "<script") != 1 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'nonce-") {
		t.Errorf("method=POST: %s", page)
	}
	var tgc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "TGC" {
			tgc = c
		}
	}
	if tgc == nil || !tgc.HttpOnly || tgc.SameSite != http.SameSiteLaxMode || tgc.Path != "/cas/" || !strings.HasPrefix(tgc.Value, "TGT-") {
		t.Errorf("TGC cookie: %+v", tgc)
	}
	// A level-2 application: refused with a page that says why.
	resp, _ = br.c.Get(casBase + "login?service=" + q("https://strong.example.com/"))
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(page), "level 2") {
		t.Errorf("level-2 app: %d %s", resp.StatusCode, page)
	}
	// Logout redirects only to registered services.
	br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = br.c.Get(casBase + "logout?service=" + q("https://evil.example/"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Errorf("logout to an unregistered service: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = br.c.Get(casBase + "logout?service=" + q(svc))
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != svc {
		t.Errorf("logout to a registered service: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// CAS 2.0 "url": the signed-out page links back to a registered
	// service, never to another URL.
	code, page2, _ := br.get(casBase + "logout?locale=en&url=" + q(svc))
	if code != http.StatusOK || !strings.Contains(page2, `href="`+svc+`"`) || !strings.Contains(page2, "Back to the application") {
		t.Errorf("logout with url of a registered service: %d %s", code, page2)
	}
	code, page2, _ = br.get(casBase + "logout?locale=en&url=" + q("https://evil.example/"))
	if code != http.StatusOK || strings.Contains(page2, `href="https://evil.example`) || strings.Contains(page2, "Back to the application") {
		t.Errorf("logout with url of an unregistered service: %d %s", code, page2)
	}
}

// selfSigned is a certificate for 127.0.0.1 that nobody trusts.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "untrusted"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func between(s, a, b string) string {
	_, rest, ok := strings.Cut(s, a)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, b)
	return v
}
