package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// casReview is a running UIAS with a CAS service (and a level-2 one) and a
// person who can sign in.
type casReview struct {
	e       *env
	casBase string
	f       fixture
	svc     string // a registered CAS service
	strong  string // a registered service asking for level 2
	h       *ticketcomponent.Handle
}

func newCASReview(t *testing.T, trustProxy bool) *casReview {
	t.Helper()
	cfg := testConfig(t.TempDir())
	if trustProxy {
		cfg.TrustedProxies = []string{"127.0.0.1/32"}
	}
	e := start(t, cfg)
	e.login()
	c := &casReview{e: e, casBase: e.http + "/cas/", svc: "https://app.example.com/app/", strong: "https://strong.example.com/"}
	c.f = e.seed("rev", "rita", nil, nil)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, d := range []*ticketv1.ServiceDefinition{
		{AppId: c.f.appID, Name: "Review app", Url: c.svc},
		{AppId: c.f.appID, Name: "Strong app", Url: c.strong, MinAuthLevel: 2},
	} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d}); err != nil {
			t.Fatal(err)
		}
	}
	c.h = e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	return c
}

// noFollow is a client that does not follow redirects, with no cookies.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (c *casReview) do(t *testing.T, method, u string, tgc string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tgc != "" {
		req.AddCookie(&http.Cookie{Name: "TGC", Value: tgc})
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func (c *casReview) session(t *testing.T) string {
	t.Helper()
	tgt, _, err := c.h.Service.CreateSession(context.Background(), ticket.NewSession{UserID: c.f.userID, Login: c.f.login, AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

// TestLoginPageHidesAccountStatus: a wrong password for a locked or a
// disabled account gets the answer an unknown login gets (the page never
// tells that an account exists).
func TestLoginPageHidesAccountStatus(t *testing.T) {
	c := newCASReview(t, false)
	e := c.e
	locked := e.seed("revl", "lara", nil, nil)
	disabled := e.seed("revd", "dave", nil, nil)
	if _, err := e.admin.LockUser(e.adm(), &identityv1.LockUserRequest{Id: locked.userID, DurationSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: disabled.userID,
		Status: identityv1.UserStatus_USER_STATUS_DISABLED}); err != nil {
		t.Fatal(err)
	}
	answer := func(login, password string) (int, string) {
		br := newBrowser(t)
		_, page, _ := br.get(c.casBase + "login?service=" + url.QueryEscape(c.svc))
		code, body, _ := br.loginForm(c.casBase, page, login, password)
		m := errorRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("%s: no error on the page (%d): %s", login, code, body)
		}
		if strings.Contains(body, `value="`+login+`"`) {
			t.Errorf("%s: the page keeps the login name, which an unknown login's does not", login)
		}
		return code, m[1]
	}
	wantCode, want := answer("nobody-here", "Wrong-Pass!42")
	for _, tc := range []struct{ name, login, password string }{
		{"locked, wrong password", "lara", "Wrong-Pass!42"},
		{"disabled, wrong password", "dave", "Wrong-Pass!42"},
		{"locked, right password", "lara", locked.password},
		{"disabled, right password", "dave", disabled.password},
		{"active, wrong password", "rita", "Wrong-Pass!42"},
	} {
		if code, got := answer(tc.login, tc.password); code != wantCode || got != want {
			t.Errorf("%s: %d %q, want %d %q (an unknown login's answer)", tc.name, code, got, wantCode, want)
		}
	}
}

// TestCASRequestForms: HEAD never uses a ticket up, other methods of the
// validation and logout endpoints are 405 with Allow, a service URL's own
// ticket parameter is replaced, method=POST submits itself (by a script
// the page's policy allows), and an over-long st at ssoAuthService is a
// malformed call.
func TestCASRequestForms(t *testing.T) {
	c := newCASReview(t, false)
	ctx := context.Background()
	tgt := c.session(t)
	issue := func() string {
		st, _, err := c.h.Service.IssueServiceTicket(ctx, tgt, c.svc, false)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	q := url.QueryEscape
	// HEAD: 405, the ticket still good.
	for _, path := range []string{"serviceValidate", "proxyValidate", "p3/serviceValidate", "p3/proxyValidate", "validate"} {
		st := issue()
		u := c.casBase + path + "?service=" + q(c.svc) + "&ticket=" + st
		if resp := c.do(t, http.MethodHead, u, "", nil); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
			t.Errorf("HEAD %s: %d Allow %q, want 405 GET", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
		v, err := c.h.Service.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: c.svc, AllowProxy: true})
		if err != nil || !v.Valid {
			t.Errorf("the ticket after HEAD %s: %+v %v", path, v, err)
		}
	}
	if resp := c.do(t, http.MethodHead, c.casBase+"ssoAuthService?verb=validateServiceTicket&st="+issue(), "", nil); resp.StatusCode != http.StatusMethodNotAllowed ||
		resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("HEAD ssoAuthService: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if resp := c.do(t, http.MethodHead, c.casBase+"logout", tgt, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD logout: %d", resp.StatusCode)
	}
	if _, err := c.h.Service.GetSession(ctx, tgt); err != nil {
		t.Fatalf("the session after HEAD logout: %v", err)
	}
	// Other methods: 405 with Allow; unknown paths stay 404.
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPost, "serviceValidate", "GET"},
		{http.MethodPost, "p3/serviceValidate", "GET"},
		{http.MethodPut, "logout", "GET, POST"}, // POST: RP-Initiated Logout 1.0 §2 (acceptc)
		{http.MethodPut, "login", "GET, POST"},
		{http.MethodDelete, "ssoAuthService", "GET, POST"},
	} {
		resp := c.do(t, tc.method, c.casBase+tc.path, "", nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
	}
	if resp := c.do(t, http.MethodPost, c.casBase+"nothing-here", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST to an unknown path: %d", resp.StatusCode)
	}
	// A service URL that carries a ticket parameter gets one ticket, the new one.
	for _, svc := range []string{c.svc + "?ticket=ST-old", c.svc + "?a=1&ticket=ST-old&b=2", c.svc + "?tick%65t=ST-old"} {
		resp := c.do(t, http.MethodGet, c.casBase+"login?service="+q(svc), tgt, nil)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("login with %s: %d %v", svc, resp.StatusCode, err)
		}
		tickets := loc.Query()["ticket"]
		if len(tickets) != 1 || !strings.HasPrefix(tickets[0], "ST-") || tickets[0] == "ST-old" {
			t.Errorf("service %s: sent to %s, want one new ticket", svc, loc)
		}
		if strings.Contains(svc, "a=1") && (loc.Query().Get("a") != "1" || loc.Query().Get("b") != "2") {
			t.Errorf("service %s: its other parameters lost: %s", svc, loc)
		}
		// The ticket validates for the URL the browser reached, less its
		// ticket parameter (what a CAS client rebuilds).
		reached, _, _ := strings.Cut(loc.String(), "ticket="+tickets[0])
		reached = strings.TrimRight(reached, "?&")
		if body := readAll(t, c.do(t, http.MethodGet, c.casBase+"serviceValidate?service="+q(reached)+"&ticket="+tickets[0], "", nil)); !strings.Contains(body, "authenticationSuccess") {
			t.Errorf("service %s: the ticket does not validate for %s: %s", svc, reached, body)
		}
	}
	// method=POST: the form submits itself; the policy allows that script only.
	resp := c.do(t, http.MethodGet, c.casBase+"login?method=POST&service="+q(c.svc+"?ticket=ST-old"), tgt, nil)
	body := readAll(t, resp)
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(resp.Header.Get("Content-Security-Policy"))
	if resp.StatusCode != http.StatusOK || nonce == nil ||
		!strings.Contains(body, `<script nonce="`+nonce[1]+`">document.getElementById("cas-post").submit();</script>`) ||
		!strings.Contains(body, `<button type="submit"`) {
		t.Errorf("method=POST page (%d, CSP %q): %s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), body)
	}
	if !strings.Contains(body, `action="`+c.svc+`"`) {
		t.Errorf("method=POST form action keeps the old ticket: %s", body)
	}
	// ssoAuthService: a st longer than a ticket can be is a malformed call.
	resp = c.do(t, http.MethodGet, c.casBase+"ssoAuthService?verb=validateServiceTicket&st=ST-"+strings.Repeat("a", 300), "", nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "<result>RPC_INVALID_REQUEST</result>") {
		t.Errorf("over-long st: %d %s", resp.StatusCode, body)
	}
}

// TestCASGateway: with renew, gateway is ignored (the login page, not a
// ticket); with a session too weak for the service, gateway goes back to
// the service without a ticket instead of showing an error page.
func TestCASGateway(t *testing.T) {
	c := newCASReview(t, false)
	tgt := c.session(t)
	q := url.QueryEscape
	resp := c.do(t, http.MethodGet, c.casBase+"login?gateway=true&renew=true&service="+q(c.svc), tgt, nil)
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="password"`) {
		t.Errorf("gateway with renew and a session: %d %s, want the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = c.do(t, http.MethodGet, c.casBase+"login?gateway=true&renew=true&service="+q(c.svc), "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("gateway with renew, no session: %d %s, want the login page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = c.do(t, http.MethodGet, c.casBase+"login?gateway=true&service="+q(c.strong+"x?ticket=ST-old"), tgt, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != c.strong+"x" {
		t.Errorf("gateway, session below the service's level: %d to %q, want 303 to %s without a ticket", resp.StatusCode, loc, c.strong+"x")
	}
	// Without gateway the same session still gets the page saying why.
	resp = c.do(t, http.MethodGet, c.casBase+"login?service="+q(c.strong), tgt, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("no gateway, session below the level: %d", resp.StatusCode)
	}
}

// TestCookiesSecureBehindTLSProxy: behind a trusted TLS-terminating proxy
// (X-Forwarded-Proto: https) the TGC and the form's CSRF cookie are
// Secure, as the answer's Strict-Transport-Security says it is HTTPS;
// from the same proxy over plain HTTP, and from an untrusted peer, not.
func TestCookiesSecureBehindTLSProxy(t *testing.T) {
	c := newCASReview(t, true)
	br := newBrowser(t)
	_, page, _ := br.get(c.casBase + "login")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no login form")
	}
	login := func(proto string) *http.Response {
		form := url.Values{"username": {c.f.login}, "password": {c.f.password}, "csrf": {m[1]}, "service": {c.svc}}
		req, _ := http.NewRequest(http.MethodPost, c.casBase+"login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: "uias_csrf", Value: m[1]})
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	cookie := func(resp *http.Response, name string) *http.Cookie {
		for _, ck := range resp.Cookies() {
			if ck.Name == name {
				return ck
			}
		}
		t.Fatalf("no %s cookie: %v", name, resp.Header.Values("Set-Cookie"))
		return nil
	}
	resp := login("https")
	if resp.Header.Get("Strict-Transport-Security") == "" || !cookie(resp, "TGC").Secure {
		t.Errorf("over https at the proxy: HSTS %q, TGC %v", resp.Header.Get("Strict-Transport-Security"), cookie(resp, "TGC"))
	}
	if resp := login("http"); cookie(resp, "TGC").Secure {
		t.Error("over http at the proxy: the TGC is Secure (the browser would not send it back)")
	}
	resp = c.do(t, http.MethodGet, c.casBase+"login", "", map[string]string{"X-Forwarded-Proto": "https"})
	if ck := cookie(resp, "uias_csrf"); !ck.Secure {
		t.Errorf("csrf cookie over https at the proxy: %v", ck)
	}
	resp = c.do(t, http.MethodGet, c.casBase+"logout", "", map[string]string{"X-Forwarded-Proto": "https"})
	if ck := cookie(resp, "TGC"); !ck.Secure {
		t.Errorf("TGC cleared at logout over https at the proxy: %v", ck)
	}
}

// TestCookiesNotSecureFromUntrustedPeer: X-Forwarded-Proto from a peer
// that is not a trusted proxy is not believed.
func TestCookiesNotSecureFromUntrustedPeer(t *testing.T) {
	c := newCASReview(t, false)
	resp := c.do(t, http.MethodGet, c.casBase+"login", "", map[string]string{"X-Forwarded-Proto": "https"})
	for _, ck := range resp.Cookies() {
		if ck.Secure {
			t.Errorf("cookie %s Secure on a plain HTTP request from an untrusted peer", ck.Name)
		}
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS on a plain HTTP request from an untrusted peer")
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// TestCASUndecodableQuery: a validation or proxy request whose query
// string does not decode (a '%' not followed by two hex digits, as in a
// service URL sent unencoded) is INVALID_REQUEST saying so, in XML and
// JSON, and leaves the ticket unused (it was answered "ticket and service
// are required" although both were sent).
func TestCASUndecodableQuery(t *testing.T) {
	c := newCASReview(t, false)
	ctx := context.Background()
	tgt := c.session(t)
	st, _, err := c.h.Service.IssueServiceTicket(ctx, tgt, c.svc, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"serviceValidate?service=" + c.svc + "%zz&ticket=" + st, `<cas:authenticationFailure code="INVALID_REQUEST">the query string is not valid URL encoding`},
		{"p3/serviceValidate?ticket=" + st + "&service=" + c.svc + "100%", `<cas:authenticationFailure code="INVALID_REQUEST">the query string is not valid URL encoding`},
		{"p3/proxyValidate?format=JSON&service=%E4%B8&ticket=" + st + "&x=%", `{"serviceResponse":{"authenticationFailure":{"code":"INVALID_REQUEST","description":"the query string is not valid URL encoding`},
		{"proxy?pgt=PGT-1&targetService=" + c.svc + "%g1", `<cas:proxyFailure code="INVALID_REQUEST">the query string is not valid URL encoding`},
	} {
		resp := c.do(t, http.MethodGet, c.casBase+tc.path, "", nil)
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, tc.want) {
			t.Errorf("GET /cas/%s: %d %s", tc.path, resp.StatusCode, body)
		}
	}
	// nothing was looked up: the ticket still validates
	body := readAll(t, c.do(t, http.MethodGet, c.casBase+"serviceValidate?service="+url.QueryEscape(c.svc)+"&ticket="+st, "", nil))
	if !strings.Contains(body, "authenticationSuccess") {
		t.Errorf("the ticket after the undecodable requests: %s", body)
	}
}

// TestCASDisabledServiceNamed: a ticket of a service an administrator has
// since disabled is refused INVALID_SERVICE with a message that names the
// disabling (it said only "no longer registered, or its application is
// suspended", neither of which was true), and the login page refuses the
// service without a redirect.
func TestCASDisabledServiceNamed(t *testing.T) {
	c := newCASReview(t, false)
	ctx := context.Background()
	registry := ticketv1.NewServiceRegistryServiceClient(c.e.conn)
	svc := "https://off.example.com/app/"
	def := &ticketv1.ServiceDefinition{AppId: c.f.appID, Name: "Soon off", Url: svc}
	rs, err := registry.CreateService(c.e.adm(), &ticketv1.CreateServiceRequest{Service: def})
	if err != nil {
		t.Fatal(err)
	}
	tgt := c.session(t)
	st, _, err := c.h.Service.IssueServiceTicket(ctx, tgt, svc, false)
	if err != nil {
		t.Fatal(err)
	}
	def.Disabled = true
	if _, err := registry.UpdateService(c.e.adm(), &ticketv1.UpdateServiceRequest{Id: rs.GetId(), Service: def}); err != nil {
		t.Fatal(err)
	}
	body := readAll(t, c.do(t, http.MethodGet, c.casBase+"serviceValidate?service="+url.QueryEscape(svc)+"&ticket="+st, "", nil))
	if !strings.Contains(body, `code="INVALID_SERVICE"`) || !strings.Contains(body, "is disabled") {
		t.Errorf("a ticket of a disabled service: %s", body)
	}
	if resp := c.do(t, http.MethodGet, c.casBase+"login?service="+url.QueryEscape(svc), tgt, nil); resp.StatusCode != http.StatusForbidden ||
		resp.Header.Get("Location") != "" {
		t.Errorf("login for a disabled service: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestPortalLaunchDefaultPort: an https service registered without a port
// (kept as https://host:443/path/) is launched from the portal at the URL a
// browser shows, without ":443", and its ticket validates for the URL the
// application's CAS client rebuilds (it was INVALID_SERVICE: issued for
// https://host:443/app/, validated for https://host/app/, so every portal
// launch into such an application failed). Another port is still another
// service.
func TestPortalLaunchDefaultPort(t *testing.T) {
	c := newCASReview(t, false)
	e := c.e
	ctx := context.Background()
	f := e.seed("por", "paula", nil, nil)
	const svc = "https://portal-app.example.com/app/"
	rs, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Portal app", Url: svc}})
	if err != nil {
		t.Fatal(err)
	}
	if rs.GetUrl() != "https://portal-app.example.com:443/app/" {
		t.Logf("the registry keeps %q", rs.GetUrl())
	}
	tgt, _, err := c.h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: f.login, AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	portal := readAll(t, c.do(t, http.MethodGet, c.casBase+"portal", tgt, nil))
	m := regexp.MustCompile(`href="/cas/login\?service=([^"]+)"`).FindStringSubmatch(portal)
	if m == nil {
		t.Fatalf("no launch link on the portal: %s", portal)
	}
	launch, err := url.QueryUnescape(m[1])
	if err != nil || launch != svc {
		t.Fatalf("the portal launches %q (%v), want %q", launch, err, svc)
	}
	resp := c.do(t, http.MethodGet, c.casBase+"login?service="+url.QueryEscape(launch), tgt, nil)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("ticket") == "" {
		t.Fatalf("launch: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	validate := func(st, service string) string {
		t.Helper()
		return readAll(t, c.do(t, http.MethodGet, c.casBase+"serviceValidate?service="+url.QueryEscape(service)+"&ticket="+st, "", nil))
	}
	if body := validate(loc.Query().Get("ticket"), svc); !strings.Contains(body, "authenticationSuccess") {
		t.Errorf("the portal's ticket for %s: %s", svc, body)
	}
	// a ticket issued for the URL with ":443" validates for the one without, and the reverse
	for _, tc := range []struct{ issued, presented string }{
		{"https://portal-app.example.com:443/app/", svc},
		{svc, "https://PORTAL-app.example.com:443/app/"},
	} {
		st, _, err := c.h.Service.IssueServiceTicket(ctx, tgt, tc.issued, false)
		if err != nil {
			t.Fatal(err)
		}
		if body := validate(st, tc.presented); !strings.Contains(body, "authenticationSuccess") {
			t.Errorf("issued for %s, validated for %s: %s", tc.issued, tc.presented, body)
		}
	}
	st, _, err := c.h.Service.IssueServiceTicket(ctx, tgt, svc, false)
	if err != nil {
		t.Fatal(err)
	}
	if body := validate(st, "https://portal-app.example.com:8443/app/"); !strings.Contains(body, `code="INVALID_SERVICE"`) {
		t.Errorf("another port: %s", body)
	}
}
