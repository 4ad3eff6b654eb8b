package e2e

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/uias/uias/pkg/config"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/finger/synth"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// fingerSet are the synthetic fingers of the fingerprint sign-in tests:
// fingerOf(id, 0) is enrolled, fingerOf(id, n > 0) another impression of
// the same finger (what a reader captures).
var fingerSet = synth.Default(11)

func fingerOf(id, imp int) []byte { return synth.NewFinger(fingerSet, id).Impression(imp) }

// withFingerAgent sets ticket.finger_agent_url.
func withFingerAgent(agent string) func(*config.Config) {
	return func(c *config.Config) { ticketcomponent.Settings(c).FingerAgentURL = agent }
}

// fingerPerson seeds a person with finger 1 enrolled.
func fingerPerson(t *testing.T, e *env, appCode, login string) fixture {
	t.Helper()
	f := e.seed(appCode, login, nil, nil)
	if _, err := identityv1.NewFingerServiceClient(e.conn).EnrollFinger(e.adm(), &identityv1.EnrollFingerRequest{
		UserId: f.userID, Position: 2, Record: fingerOf(1, 0)}); err != nil {
		t.Fatal(err)
	}
	return f
}

var fingerLinkRE = regexp.MustCompile(`href="([^"]+)" id="finger-link"`)

// TestFingerSignIn: the sign-in page offers the fingerprint form when a
// capture agent is configured; a person signs in with their login name and
// a finger (level 1), or a finger and the password (level 2, what a
// level-2 application needs); every refusal is a page that says what to
// do, and a finger that does not match counts as a wrong password would.
func TestFingerSignIn(t *testing.T) {
	const agent = "http://127.0.0.1:15270/capture"
	cfg := testConfig(t.TempDir())
	withFingerAgent(agent)(&cfg)
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := fingerPerson(t, e, "fin", "fiona")
	const svc, strong = "https://fin.example.com/", "https://strong-fin.example.com/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, d := range []*ticketv1.ServiceDefinition{{AppId: f.appID, Name: "Finance", Url: svc},
		{AppId: f.appID, Name: "Strong finance", Url: strong, MinAuthLevel: 2}} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d}); err != nil {
			t.Fatal(err)
		}
	}
	br := newBrowser(t)
	br.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), e.http) {
			return http.ErrUseLastResponse // the service: its ticket is read from Location
		}
		return nil
	}

	// The password page links to the finger form, which asks the agent
	// (the Content-Security-Policy lets its script reach that origin only).
	code, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(svc))
	m := fingerLinkRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		t.Fatalf("login page without the finger link: %d %s", code, body)
	}
	resp, err := br.c.Get(e.http + htmlUnescape(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body = string(page)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="finger-form"`) || !strings.Contains(body, `data-agent="`+agent+`"`) ||
		strings.Contains(body, `id="password"`) {
		t.Fatalf("finger form: %d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src http://127.0.0.1:15270") {
		t.Fatalf("CSP does not let the page ask the agent: %q", csp)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]

	post := func(service, login string, record []byte, password string) (int, string, string) {
		t.Helper()
		form := url.Values{"csrf": {csrf}, "finger": {"1"}, "service": {service}, "username": {login}}
		if record != nil {
			form.Set("fingerprint", base64.StdEncoding.EncodeToString(record))
		}
		if password != "" {
			form.Set("password", password)
		}
		resp, err := br.c.PostForm(casBase+"login", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Location")
	}
	pageError := func(body string) string {
		if m := errorRE.FindStringSubmatch(body); m != nil {
			return htmlUnescape(m[1])
		}
		return ""
	}
	validate := func(service, location string) map[string]any {
		t.Helper()
		u, err := url.Parse(location)
		if err != nil || !strings.HasPrefix(location, service) || u.Query().Get("ticket") == "" {
			t.Fatalf("not sent to %s with a ticket: %q", service, location)
		}
		_, out, _ := br.get(casBase + "p3/serviceValidate?format=JSON&service=" + url.QueryEscape(service) + "&ticket=" + u.Query().Get("ticket"))
		var js map[string]map[string]map[string]any
		if err := json.Unmarshal([]byte(out), &js); err != nil {
			t.Fatalf("validation: %s", out)
		}
		ok := js["serviceResponse"]["authenticationSuccess"]
		if ok == nil || ok["user"] != "fiona" {
			t.Fatalf("validation: %s", out)
		}
		return ok["attributes"].(map[string]any)
	}
	const failed = "The login name and finger do not match, or no finger is enrolled for you. Try again, or sign in with your password."

	// Refusals: another finger, an unknown login, the enrolled record
	// itself (a copy), no finger read, not a record, no CSRF token.
	for name, tc := range map[string]struct {
		login  string
		record []byte
		code   int
		msg    string
	}{
		"other finger":  {"fiona", fingerOf(2, 1), http.StatusUnauthorized, failed},
		"unknown login": {"nobody", fingerOf(1, 1), http.StatusUnauthorized, failed},
		"copy":          {"fiona", fingerOf(1, 0), http.StatusUnauthorized, failed},
		"nothing read":  {"fiona", nil, http.StatusBadRequest, "No finger was read. Place your finger on the reader and try again."},
		"not a record":  {"fiona", []byte("FMR\x00 20\x00garbage-garbage-garbage"), http.StatusBadRequest, "What the fingerprint reader sent could not be read. Try again; if it keeps failing, sign in with your password."},
	} {
		code, body, loc := post(svc, tc.login, tc.record, "")
		if code != tc.code || pageError(body) != tc.msg || loc != "" || !strings.Contains(body, `id="finger-form"`) {
			t.Errorf("%s: %d %q %q", name, code, pageError(body), loc)
		}
	}
	form := url.Values{"finger": {"1"}, "service": {svc}, "username": {"fiona"}, "fingerprint": {base64.StdEncoding.EncodeToString(fingerOf(1, 1))}}
	if resp, err := br.c.PostForm(casBase+"login", form); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("no CSRF token: %v %v", resp, err)
	}

	// The right finger: level 1, method recorded.
	code, _, loc := post(svc, "fiona", fingerOf(1, 1), "")
	if code != http.StatusFound && code != http.StatusSeeOther {
		t.Fatalf("right finger: %d", code)
	}
	if a := validate(svc, loc); fmt.Sprint(a["authLevel"]) != "[1]" && fmt.Sprint(a["authLevel"]) != "1" {
		t.Fatalf("finger alone: level %v", a["authLevel"])
	}
	sessions, err := ticketv1.NewTicketSessionsServiceClient(e.conn).ListSessions(e.adm(), &ticketv1.ListSessionsRequest{UserId: f.userID})
	if err != nil || len(sessions.GetSessions()) != 1 || sessions.GetSessions()[0].GetSession().GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_FINGERPRINT {
		t.Fatalf("session of a finger: %v %v", sessions, err)
	}

	// A level-2 application: the finger alone is not enough (the form asks
	// for the password); with it, level 2.
	code, body, _ = post(strong, "fiona", fingerOf(1, 2), "")
	if code != http.StatusUnauthorized || pageError(body) != "This application requires your password as well as your finger." ||
		!strings.Contains(body, `id="password"`) {
		t.Fatalf("level 2 with a finger alone: %d %q", code, pageError(body))
	}
	if code, body, _ = post(strong, "fiona", fingerOf(1, 2), "Wrong-Pass-1!"); code != http.StatusUnauthorized ||
		pageError(body) != "The login name, finger or password is not correct." {
		t.Fatalf("finger and wrong password: %d %q", code, pageError(body))
	}
	code, _, loc = post(strong, "fiona", fingerOf(1, 3), f.password)
	if a := validate(strong, loc); code != http.StatusFound && code != http.StatusSeeOther || fmt.Sprint(a["authLevel"]) != "[2]" && fmt.Sprint(a["authLevel"]) != "2" {
		t.Fatalf("finger and password: %d level %v", code, a["authLevel"])
	}

	// With an authenticator app set up, the finger alone asks for its
	// code, and the two are level 2.
	key, step := profileTOTP(t, br, casBase, f.password)
	br.get(casBase + "logout")
	_, body, _ = br.get(casBase + "login?finger=1&service=" + url.QueryEscape(strong))
	csrf = csrfRE.FindStringSubmatch(body)[1]
	code, body, _ = post(svc, "fiona", fingerOf(1, 5), "")
	tok := hiddenRE("otp_token").FindStringSubmatch(body)
	if code != http.StatusOK || tok == nil || hasCookie(br, casBase, "TGC") {
		t.Fatalf("finger of a person with an app: %d %s", code, body)
	}
	resp, err = br.c.PostForm(casBase+"login", url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "otp_token": {htmlUnescape(tok[1])},
		"service": {svc}, "code": {identity.TOTPCode(key, step)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := validate(svc, resp.Header.Get("Location")); fmt.Sprint(a["authLevel"]) != "[2]" && fmt.Sprint(a["authLevel"]) != "2" {
		t.Fatalf("finger and code: level %v", a["authLevel"])
	}
	sessions, err = ticketv1.NewTicketSessionsServiceClient(e.conn).ListSessions(e.adm(), &ticketv1.ListSessionsRequest{UserId: f.userID})
	if err != nil || len(sessions.GetSessions()) != 1 || sessions.GetSessions()[0].GetSession().GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_FINGERPRINT_OTP {
		t.Fatalf("session of a finger and a code: %v %v", sessions, err)
	}
}

// profileTOTP sets up an authenticator app on My profile for the person
// signed in at br (password): its key, and the code step after the one
// the set-up used.
func profileTOTP(t *testing.T, br *browser, casBase, password string) ([]byte, int64) {
	t.Helper()
	code, body, _ := br.get(casBase + "profile/totp")
	m := totpSecretRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		t.Fatalf("set-up page: %d %s", code, body)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	step := identity.TOTPStep(time.Now())
	form := url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "action": {"confirm"},
		"enrolment_token": {htmlUnescape(hiddenRE("enrolment_token").FindStringSubmatch(body)[1])}, "secret": {m[1]},
		"uri": {htmlUnescape(hiddenRE("uri").FindStringSubmatch(body)[1])}, "current_password": {password},
		"code": {identity.TOTPCode(key, step-1)}}
	if code, body, _ := br.post(casBase+"profile/totp", form); code != http.StatusOK || !strings.Contains(body, "Your authenticator app is set up") {
		t.Fatalf("set-up: %d %s", code, body)
	}
	return key, step
}

// TestFingerSignInOff: without a capture agent the page offers no finger,
// and a finger posted anyway is refused with a page saying so.
func TestFingerSignInOff(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	fingerPerson(t, e, "fin", "fiona")
	br := newBrowser(t)
	code, body, _ := br.get(casBase + "login?finger=1")
	if code != http.StatusOK || strings.Contains(body, `id="finger-form"`) || strings.Contains(body, `id="finger-link"`) || !strings.Contains(body, `id="password"`) {
		t.Fatalf("login page without an agent: %d %s", code, body)
	}
	form := url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "finger": {"1"}, "username": {"fiona"},
		"fingerprint": {base64.StdEncoding.EncodeToString(fingerOf(1, 1))}}
	code, body, _ = br.post(casBase+"login", form)
	if m := errorRE.FindStringSubmatch(body); code != http.StatusBadRequest || m == nil ||
		m[1] != "Fingerprint sign-in is not offered here. Sign in with your password." {
		t.Fatalf("finger without an agent: %d %s", code, body)
	}
}

// TestBrowserFingerSignIn drives headless Chromium through a fingerprint
// sign-in: application A sends the browser to the sign-in page, whose link
// opens the finger form; the page's script asks the capture agent (here a
// loopback stand-in for the reader's program, which cannot run here: it
// answers a synthetic capture) for the record and posts it. A reader that
// does not answer is said so on the page, which stays usable; then the
// finger signs the person in and A receives its ticket. The finger form
// passes the accessibility checks. With UIAS_UPDATE_SCREENSHOTS=1 it
// writes the finger form to docs/screenshots/.
func TestBrowserFingerSignIn(t *testing.T) {
	chromium := chromiumPath(t)
	var down atomic.Bool
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Content-Type", "application/json")
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"no finger on the reader"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"record": base64.StdEncoding.EncodeToString(fingerOf(1, 4))})
	}))
	t.Cleanup(agent.Close)
	cfg := testConfig(t.TempDir())
	withFingerAgent(agent.URL + "/capture")(&cfg)
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := fingerPerson(t, e, "brf", "fiona")
	appA := newCASApp(t, casBase)
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Application A", Url: appA.srv.URL + "/"}}); err != nil {
		t.Fatal(err)
	}

	b := newChromium(t, chromium, 760, 760)
	run, textOf, shot, waitFor, accessible := b.run, b.textOf, b.shot, b.waitFor, b.accessible
	run("open A", chromedp.Navigate(appA.srv.URL+"/page?locale=en"), chromedp.WaitVisible(chromedp.CSS("#finger-link")))
	run("finger form", chromedp.Click(chromedp.CSS("#finger-link")), chromedp.WaitVisible(chromedp.CSS("#finger-read")))
	if text := textOf("main"); !strings.Contains(text, "Application A") || !strings.Contains(text, "place your finger on the reader") {
		t.Fatalf("finger form: %q", text)
	}
	accessible("English finger form", "en")
	run("screenshot", shot("login-finger-en.png"))

	down.Store(true)
	run("read, reader down", chromedp.SendKeys(chromedp.CSS("#username"), "fiona"), chromedp.Click(chromedp.CSS("#finger-read")))
	waitFor("reader's error shown", `!document.getElementById("finger-status").hidden`)
	if text := textOf("#finger-status"); !strings.Contains(text, "The fingerprint reader did not answer") || !strings.Contains(text, "no finger on the reader") {
		t.Fatalf("reader down: %q", text)
	}
	down.Store(false)
	run("read", chromedp.Click(chromedp.CSS("#finger-read")))
	waitFor("at A", `document.body != null && document.body.innerText.startsWith("user=")`)
	if text := textOf("body"); !strings.HasPrefix(text, "user=fiona") {
		t.Fatalf("A after the finger: %q", text)
	}
}
