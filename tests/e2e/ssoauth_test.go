package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uias/uias/pkg/reqsig"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// legacyXML is the answer of UIAS's ssoAuthService?verb=validateServiceTicket.
type legacyXML struct {
	XMLName  xml.Name `xml:"ssoAuthService"`
	Verb     string   `xml:"verb,attr"`
	Result   string   `xml:"result"`
	Message  string   `xml:"message"`
	Username string   `xml:"username"`
	Password string   `xml:"password"`
	LoggedIn string   `xml:"loggedIn"`
}

// legacyStubApp plays the application side of the legacy interface over
// real HTTP, one application per path ("/<name>/ssoAuthService"): the
// browser arrives at verb=ssoLogin&st=..., the application asks UIAS
// verb=validateServiceTicket (POST, with its App_ID and secret when it has
// them) and shows what UIAS answered; UIAS asks verb=validatePrincipal
// during account association.
type legacyStubApp struct {
	srv     *httptest.Server
	casBase string

	mu    sync.Mutex
	apps  map[string]*stubApp
	lastS map[string]string // last st received per application
}

type stubApp struct {
	appID, secret string
	hold          atomic.Bool // keep the ticket without validating it
	// principals: account -> ID number the application knows it by.
	principals  map[string]string
	principalN  atomic.Int32
	failFirst   atomic.Int32 // answer 503 to this many validatePrincipal calls
	logoutCalls atomic.Int32
}

func newLegacyStub(t *testing.T, casBase string) *legacyStubApp {
	s := &legacyStubApp{casBase: casBase, apps: map[string]*stubApp{}, lastS: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *legacyStubApp) add(name string, a *stubApp) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[name] = a
	return s.srv.URL + "/" + name + "/ssoAuthService"
}

func (s *legacyStubApp) last(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastS[name]
}

func (s *legacyStubApp) serve(w http.ResponseWriter, r *http.Request) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	s.mu.Lock()
	a := s.apps[name]
	s.mu.Unlock()
	if a == nil || rest != "ssoAuthService" {
		http.NotFound(w, r)
		return
	}
	_ = r.ParseForm()
	switch r.Form.Get("verb") {
	case "ssoLogin":
		st := r.Form.Get("st")
		s.mu.Lock()
		s.lastS[name] = st
		s.mu.Unlock()
		if a.hold.Load() {
			fmt.Fprint(w, "held")
			return
		}
		code, ans := legacyValidate(s.casBase, st, a.appID, a.secret)
		fmt.Fprintf(w, "status=%d;result=%s;username=%s;password=%s;loggedIn=%s", code, ans.Result, ans.Username, ans.Password, ans.LoggedIn)
	case "validatePrincipal":
		a.principalN.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded; charset=UTF-8" {
			// the form's charset said, for applications that read GBK by default
			http.Error(w, "POST only, a UTF-8 form", http.StatusMethodNotAllowed)
			return
		}
		if a.failFirst.Load() > 0 {
			a.failFirst.Add(-1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if id, ok := a.principals[r.PostForm.Get("loginid")]; ok && id == r.PostForm.Get("userid") {
			fmt.Fprint(w, "RPC_OK")
			return
		}
		fmt.Fprint(w, "PRINCIPAL_INVALID")
	default:
		if r.Method == http.MethodPost && r.PostForm.Get("logoutRequest") != "" {
			a.logoutCalls.Add(1)
			return
		}
		http.Error(w, "unknown verb", http.StatusBadRequest)
	}
}

// legacyValidate asks UIAS validateServiceTicket as an application does
// (POST; App_ID and secret in the form when given).
func legacyValidate(casBase, st, appID, secret string) (int, legacyXML) {
	form := url.Values{"verb": {"validateServiceTicket"}, "st": {st}}
	if secret != "" {
		form.Set("appId", appID)
		form.Set("appSecret", secret)
	}
	resp, err := http.PostForm(casBase+"ssoAuthService", form)
	if err != nil {
		return 0, legacyXML{Result: "TRANSPORT: " + err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out legacyXML
	if err := xml.Unmarshal(body, &out); err != nil {
		out.Result = "UNPARSABLE: " + string(body)
	}
	return resp.StatusCode, out
}

func legacyGet(t *testing.T, u string) (int, legacyXML, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out legacyXML
	if err := xml.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: not XML: %s", u, body)
	}
	return resp.StatusCode, out, string(body)
}

// TestLegacySSOAuthService: the legacy ssoAuthService interface over real
// HTTP with a stub application: the browser is sent to the application's
// ssoLogin with an ST, the application validates it and gets the person's
// account; every refusal has its code, HTTP status and message.
func TestLegacySSOAuthService(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	stub := newLegacyStub(t, casBase)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	register := func(appID, name, u string, scheme int32, requireSecret bool) {
		t.Helper()
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
			AppId: appID, Name: name, Url: u, LegacyScheme: scheme, LegacyRequireSecret: requireSecret}}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	// A: on the allow-list (the stub calls from 127.0.0.1), scheme 2.
	fa := e.seed("lga", "lena", &identityv1.CreateAppRequest{IpAllowList: []string{"127.0.0.1"}}, nil)
	appA := &stubApp{appID: fa.appID}
	urlA := stub.add("a", appA)
	register(fa.appID, "Legacy OA", urlA, 2, false)
	register(fa.appID, "CAS side of A", stub.srv.URL+"/cas-a/", 0, false)

	br := newBrowser(t)
	code, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(urlA))
	if code != http.StatusOK || !strings.Contains(body, "Legacy OA") {
		t.Fatalf("login page for a legacy service: %d %s", code, body)
	}
	code, body, at := br.loginForm(casBase, body, "lena", fa.password)
	if code != http.StatusOK || !strings.HasPrefix(at.String(), urlA+"?verb=ssoLogin&st=ST-") {
		t.Fatalf("after login: %d at %s: %s", code, at, body)
	}
	if want := "status=200;result=RPC_OK;username=acct-lena;password=;loggedIn=true"; body != want {
		t.Fatalf("the application got %q, want %q", body, want)
	}
	st := stub.last("a")

	// Replayed: the ticket was used up.
	code, ans := legacyValidate(casBase, st, "", "")
	if code != http.StatusOK || ans.Result != "RPC_INVALID_TICKET" || ans.LoggedIn != "false" || ans.Username != "" ||
		!strings.Contains(ans.Message, "not recognized") {
		t.Fatalf("replayed ticket: %d %+v", code, ans)
	}
	// Malformed calls.
	for _, c := range []struct {
		query  string
		status int
		result string
	}{
		{"verb=validateServiceTicket", 400, "RPC_INVALID_REQUEST"},
		{"st=" + st, 400, "RPC_INVALID_REQUEST"},
		{"verb=ssoLogin&st=" + st, 400, "RPC_UNKNOWN_VERB"},
		{"verb=validateServiceTicket&st=abc", 200, "RPC_INVALID_TICKET"},
		{"verb=validateServiceTicket&st=ST-" + strings.Repeat("A", 2000), 400, "RPC_INVALID_REQUEST"},
		{"verb=validateServiceTicket&st=" + forge(st), 200, "RPC_INVALID_TICKET"},
		{"verb=validateServiceTicket&st=%3Cx%3E", 200, "RPC_INVALID_TICKET"},
	} {
		code, ans, raw := legacyGet(t, casBase+"ssoAuthService?"+c.query)
		if code != c.status || ans.Result != c.result || ans.Message == "" || strings.Contains(raw, "<x>") {
			t.Errorf("%s: %d %s, want %d %s", c.query, code, raw, c.status, c.result)
		}
	}

	// A CAS ticket is not a legacy ticket (and is used up by the attempt).
	_, _, at = br.get(casBase + "login?service=" + url.QueryEscape(stub.srv.URL+"/cas-a/"))
	casST := at.Query().Get("ticket")
	if !strings.HasPrefix(casST, "ST-") {
		t.Fatalf("no CAS ticket: %s", at)
	}
	if code, ans := legacyValidate(casBase, casST, "", ""); code != 200 || ans.Result != "RPC_INVALID_SERVICE" {
		t.Fatalf("CAS ticket at the legacy interface: %d %+v", code, ans)
	}

	// B: the caller's address is not on B's allow-list.
	fb := e.seed("lgb", "bert", &identityv1.CreateAppRequest{IpAllowList: []string{"10.9.9.9"}}, nil)
	linkTo(t, e, fa.userID, fb.appID, "lena-at-b")
	urlB := stub.add("b", &stubApp{appID: fb.appID})
	register(fb.appID, "Legacy B", urlB, 2, false)
	_, body, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlB))
	if !strings.HasPrefix(body, "status=403;result=RPC_CALLER_NOT_ALLOWED;username=;") {
		t.Fatalf("caller off the allow-list: %s", body)
	}

	// C: no allow-list; its service requires App_ID + secret.
	fc := e.seed("lgc", "carl", nil, nil)
	linkTo(t, e, fa.userID, fc.appID, "lena-at-c")
	appC := &stubApp{appID: fc.appID}
	urlC := stub.add("c", appC)
	register(fc.appID, "Legacy C", urlC, 2, true)
	_, body, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlC))
	if !strings.HasPrefix(body, "status=403;result=RPC_CALLER_NOT_ALLOWED;") {
		t.Fatalf("no secret where one is required: %s", body)
	}
	appC.secret = "wrong-secret"
	_, body, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlC))
	if !strings.HasPrefix(body, "status=403;result=RPC_CALLER_NOT_ALLOWED;") {
		t.Fatalf("wrong secret: %s", body)
	}
	appC.secret = fc.secret
	_, body, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlC))
	if body != "status=200;result=RPC_OK;username=lena-at-c;password=;loggedIn=true" {
		t.Fatalf("with App_ID and secret: %s", body)
	}
	// Another application's credentials do not validate C's ticket.
	appC.hold.Store(true)
	_, _, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlC))
	if code, ans := legacyValidate(casBase, stub.last("c"), fa.appID, fa.secret); code != 403 || ans.Result != "RPC_CALLER_NOT_ALLOWED" {
		t.Fatalf("A's credentials for C's ticket: %d %+v", code, ans)
	}
	// C's own App_ID with a wrong secret: the message says so, not
	// something about addresses (trial11 D8)
	_, _, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlC))
	if code, ans := legacyValidate(casBase, stub.last("c"), fc.appID, "wrong-secret"); code != 403 ||
		ans.Result != "RPC_CALLER_NOT_ALLOWED" || !strings.Contains(ans.Message, "App_ID or App_Secret is wrong") {
		t.Fatalf("C's App_ID with a wrong secret: %d %+v", code, ans)
	}

	// E and F: on the allow-list, but E must sign its requests and F is
	// bound to a client certificate: neither is answered to an address
	// alone, with or without its secret (gap2 G2: the person's account
	// went to any host of the allowed network)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, err := reqsig.PublicKeyPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	fe := e.seed("lge", "erin", &identityv1.CreateAppRequest{IpAllowList: []string{"127.0.0.1"}, SigningKeys: [][]byte{[]byte(pub)},
		RequireSignedRequests: true}, nil)
	ff := e.seed("lgf", "finn", &identityv1.CreateAppRequest{IpAllowList: []string{"127.0.0.1"},
		ClientCertSha256: strings.Repeat("ab", 32)}, nil)
	for _, f := range []struct {
		fx   fixture
		name string
	}{{fe, "e"}, {ff, "f"}} {
		linkTo(t, e, fa.userID, f.fx.appID, "lena-at-"+f.name)
		app := &stubApp{appID: f.fx.appID}
		u := stub.add(f.name, app)
		register(f.fx.appID, "Legacy "+f.name, u, 1, false)
		for _, secret := range []string{"", f.fx.secret} {
			app.secret = secret
			_, body, _ = br.get(casBase + "login?service=" + url.QueryEscape(u))
			if !strings.HasPrefix(body, "status=403;result=RPC_CALLER_NOT_ALLOWED;username=;password=;") {
				t.Fatalf("%s (secret %t): %s", f.name, secret != "", body)
			}
		}
	}

	// G: one call a minute: the second validation in a row is refused as
	// the caller's (too many calls), not a fault to retry (review sec22 M3)
	fg := e.seed("lgg", "gus", &identityv1.CreateAppRequest{IpAllowList: []string{"127.0.0.1"}, RateLimit: 1.0 / 60, RateBurst: 1}, nil)
	linkTo(t, e, fa.userID, fg.appID, "lena-at-g")
	appG := &stubApp{appID: fg.appID}
	urlG := stub.add("g", appG)
	register(fg.appID, "Legacy G", urlG, 2, false)
	if _, body, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlG)); body != "status=200;result=RPC_OK;username=lena-at-g;password=;loggedIn=true" {
		t.Fatalf("G's first validation: %s", body)
	}
	appG.hold.Store(true)
	_, _, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlG))
	if code, ans := legacyValidate(casBase, stub.last("g"), "", ""); code != 403 || ans.Result != "RPC_CALLER_NOT_ALLOWED" ||
		!strings.Contains(ans.Message, "too many calls") {
		t.Fatalf("G's second validation within its rate: %d %+v", code, ans)
	}

	// D: the person has no account linked there.
	fd := e.seed("lgd", "dora", &identityv1.CreateAppRequest{IpAllowList: []string{"127.0.0.0/8"}}, nil)
	urlD := stub.add("d", &stubApp{appID: fd.appID})
	register(fd.appID, "Legacy D", urlD, 2, false)
	_, body, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlD))
	if !strings.HasPrefix(body, "status=200;result=RPC_NO_ACCOUNT;username=;") {
		t.Fatalf("no linked account: %s", body)
	}

	// A ticket of a session that has ended is refused.
	appA.hold.Store(true)
	_, _, _ = br.get(casBase + "login?service=" + url.QueryEscape(urlA))
	held := stub.last("a")
	if held == st || held == "" {
		t.Fatal("no new ticket for A")
	}
	if code, _, _ := br.get(casBase + "logout"); code != http.StatusOK {
		t.Fatalf("logout: %d", code)
	}
	if code, ans := legacyValidate(casBase, held, "", ""); code != 200 || ans.Result != "RPC_INVALID_TICKET" || ans.LoggedIn != "false" {
		t.Fatalf("ticket of an ended session: %d %+v", code, ans)
	}

	// Every validation is audited, with the interface named.
	eventually(t, "legacy validation audit records", func() bool {
		ok, refused := 0, 0
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.") {
			if !strings.Contains(fmt.Sprint(ev["_raw"]), "ssoAuthService") {
				continue
			}
			switch ev["result"] {
			case "success":
				ok++
			default:
				refused++
			}
		}
		return ok >= 2 && refused >= 6
	})
}

// forge alters one character of a ticket's signature.
func forge(st string) string {
	b := []byte(st)
	i := len(b) - 1
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func linkTo(t *testing.T, e *env, userID, appID, account string) {
	t.Helper()
	if _, err := e.admin.CreateAccountLink(e.adm(), &identityv1.CreateAccountLinkRequest{UserId: userID, AppId: appID,
		AppAccountId: account}); err != nil {
		t.Fatalf("link: %v", err)
	}
}

// TestLegacySSOAuthServiceBasicAuth: an application presenting its App_ID
// and App_Secret by HTTP Basic, as the Hessian and SOAP transports of the
// same edge take them, is served (it was refused as if it had sent nothing,
// "not on the application's IP allow-list"); a wrong Basic secret is told
// so; a caller that sends nothing is told how to send them.
func TestLegacySSOAuthServiceBasicAuth(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	stub := newLegacyStub(t, casBase)
	f := e.seed("lbas", "bea", nil, nil) // no IP allow-list: only the secret admits the caller
	app := &stubApp{appID: f.appID}
	app.hold.Store(true)
	u := stub.add("basic", app)
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Legacy Basic", Url: u, LegacyScheme: 2}}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	_, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(u))
	if code, body, _ := br.loginForm(casBase, body, "bea", f.password); code != http.StatusOK || body != "held" {
		t.Fatalf("login to the legacy service: %d %s", code, body)
	}
	ticketOf := func() string {
		t.Helper()
		if _, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(u)); body != "held" {
			t.Fatalf("no ticket handed to the application: %s", body)
		}
		return stub.last("basic")
	}
	validate := func(st, user, pass string, basic bool) (int, legacyXML) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, casBase+"ssoAuthService",
			strings.NewReader(url.Values{"verb": {"validateServiceTicket"}, "st": {st}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var ans legacyXML
		if err := xml.Unmarshal(raw, &ans); err != nil {
			t.Fatalf("not XML: %s", raw)
		}
		return resp.StatusCode, ans
	}

	if code, ans := validate(ticketOf(), f.appID, f.secret, true); code != http.StatusOK || ans.Result != "RPC_OK" ||
		ans.Username != "acct-bea" || ans.LoggedIn != "true" {
		t.Errorf("App_ID and secret by HTTP Basic: %d %+v", code, ans)
	}
	if code, ans := validate(ticketOf(), f.appID, "wrong-secret", true); code != http.StatusForbidden ||
		ans.Result != "RPC_CALLER_NOT_ALLOWED" || !strings.Contains(ans.Message, "App_ID or App_Secret is wrong") {
		t.Errorf("wrong secret by HTTP Basic: %d %+v", code, ans)
	}
	if code, ans := validate(ticketOf(), "", "", false); code != http.StatusForbidden || ans.Result != "RPC_CALLER_NOT_ALLOWED" ||
		!strings.Contains(ans.Message, "IP allow-list") || !strings.Contains(ans.Message, "no App_ID and App_Secret were presented") ||
		!strings.Contains(ans.Message, "HTTP Basic") {
		t.Errorf("no credentials, no allow-list: %d %+v", code, ans)
	}
}
