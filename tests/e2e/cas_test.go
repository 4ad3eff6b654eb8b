package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	cas "gopkg.in/cas.v2"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// casApp is a test application protected by the real Go CAS client
// (gopkg.in/cas.v2 v2.2.3, which validates at /serviceValidate whatever
// its URL scheme says; UIAS releases attributes there too by default).
type casApp struct {
	srv     *httptest.Server
	logouts atomic.Int32
}

func newCASApp(t *testing.T, casBase string) *casApp {
	t.Helper()
	u, _ := url.Parse(casBase)
	client := cas.NewClient(&cas.Options{URL: u})
	a := &casApp{}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cas.IsAuthenticated(r) {
			cas.RedirectToLogin(w, r)
			return
		}
		attrs := cas.Attributes(r)
		fmt.Fprintf(w, "user=%s;displayName=%s;appAccountId=%s;orgName=%s", cas.Username(r),
			attrs.Get("displayName"), attrs.Get("appAccountId"), attrs.Get("orgName"))
	})
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.FormValue("logoutRequest") != "" {
			a.logouts.Add(1)
		}
		client.Handle(app).ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar}}
}

func (b *browser) get(u string) (int, string, *url.URL) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Request.URL
}

func (b *browser) post(u string, form url.Values) (int, string, *url.URL) {
	b.t.Helper()
	resp, err := b.c.PostForm(u, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Request.URL
}

var (
	csrfRE    = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	serviceRE = regexp.MustCompile(`name="service" value="([^"]+)"`)
	nextRE    = regexp.MustCompile(`name="next" value="([a-z]+)"`)
	errorRE   = regexp.MustCompile(`<p class="error"[^>]*>([^<]*)</p>`)
)

// loginForm fills the login page in body with login and password.
func (b *browser) loginForm(casBase, body, login, password string) (int, string, *url.URL) {
	b.t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no login form: %s", body)
	}
	form := url.Values{"username": {login}, "password": {password}, "csrf": {m[1]}}
	if s := serviceRE.FindStringSubmatch(body); s != nil {
		form.Set("service", htmlUnescape(s[1]))
	}
	if s := nextRE.FindStringSubmatch(body); s != nil {
		form.Set("next", s[1])
	}
	return b.post(casBase+"login", form)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// TestCASWithGoClient: the real Go CAS client protects two applications;
// a person signs in once at UIAS, enters both, gets the attributes, and
// one logout reaches both (single logout).
func TestCASWithGoClient(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("casa", "casey", nil, nil)
	appA, appB := newCASApp(t, casBase), newCASApp(t, casBase)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for name, a := range map[string]*casApp{"A": appA, "B": appB} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
			AppId: f.appID, Name: "Test app " + name, Url: a.srv.URL + "/"}}); err != nil {
			t.Fatal(err)
		}
	}

	br := newBrowser(t)
	code, body, at := br.get(appA.srv.URL + "/page")
	if code != http.StatusOK || !strings.HasPrefix(at.String(), casBase+"login?service=") || !strings.Contains(body, "Test app A") {
		t.Fatalf("app A without a session: %d at %s\n%s", code, at, body)
	}
	// Unknown login and wrong password: the same answer.
	_, wrong, _ := br.loginForm(casBase, body, "casey", "Wrong-Pass!42")
	_, unknown, _ := br.loginForm(casBase, body, "nobody-here", "Wrong-Pass!42")
	mw, mu := errorRE.FindStringSubmatch(wrong), errorRE.FindStringSubmatch(unknown)
	if mw == nil || mu == nil || mw[1] != mu[1] {
		t.Fatalf("wrong password and unknown login answer differently: %v / %v", mw, mu)
	}
	code, body, at = br.loginForm(casBase, body, "casey", f.password)
	if code != http.StatusOK || !strings.HasPrefix(at.String(), appA.srv.URL+"/page") {
		t.Fatalf("after login: %d at %s\n%s", code, at, body)
	}
	if want := "user=casey;displayName=User casey;appAccountId=acct-casey;orgName="; !strings.HasPrefix(body, want) {
		t.Fatalf("app A sees %q, want %q...", body, want)
	}
	// The ticket in the URL was used up by the client's validation.
	st := at.Query().Get("ticket")
	if st != "" {
		_, xml, _ := br.get(casBase + "serviceValidate?service=" + url.QueryEscape(appA.srv.URL+"/page") + "&ticket=" + st)
		if !strings.Contains(xml, `code="INVALID_TICKET"`) {
			t.Fatalf("replayed ticket: %s", xml)
		}
	}
	// App B: no password asked.
	code, body, at = br.get(appB.srv.URL + "/")
	if code != http.StatusOK || !strings.HasPrefix(body, "user=casey;") {
		t.Fatalf("app B in the same session: %d at %s\n%s", code, at, body)
	}
	// Logout at UIAS: both applications get the back-channel request and
	// drop their sessions.
	code, body, _ = br.get(casBase + "logout")
	if code != http.StatusOK {
		t.Fatalf("logout: %d %s", code, body)
	}
	eventually(t, "logout requests at A and B", func() bool { return appA.logouts.Load() >= 1 && appB.logouts.Load() >= 1 })
	code, body, at = br.get(appA.srv.URL + "/page")
	if !strings.HasPrefix(at.String(), casBase+"login?service=") || !strings.Contains(body, `name="password"`) {
		t.Fatalf("app A after single logout: %d at %s\n%s", code, at, body)
	}
	eventually(t, "logout delivery records", func() bool {
		n := 0
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.logout.delivery") {
			if ev["result"] == "success" {
				n++
			}
		}
		return n >= 2
	})
	_ = context.Background()
}
