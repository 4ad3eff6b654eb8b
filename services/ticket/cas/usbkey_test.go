package cas

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// usbSSO hands out challenges and answers a USB key login by its
// challenge: "good" signs mia in, the others are the verdicts they name.
type usbSSO struct {
	identityv1.SSOServiceClient
	mu     sync.Mutex
	logins []*identityv1.CertificateLoginRequest
	down   bool
	// throttled: identity's login gate refuses the challenge.
	throttled bool
}

func (s *usbSSO) IssueCertificateChallenge(context.Context, *identityv1.CertificateChallengeRequest, ...grpc.CallOption) (*identityv1.CertificateChallenge, error) {
	if s.down {
		return nil, apierr.ToStatus(apierr.New(apierr.Unavailable, "UNAVAILABLE", "identity down"))
	}
	if s.throttled {
		return nil, apierr.ToStatus(apierr.New(apierr.ResourceExhausted, "LOGIN_THROTTLED", "too many").WithMeta("retry_after_seconds", "17"))
	}
	return &identityv1.CertificateChallenge{Challenge: "good"}, nil
}

func (s *usbSSO) CertificateLogin(_ context.Context, r *identityv1.CertificateLoginRequest, _ ...grpc.CallOption) (*identityv1.CertificateLoginResponse, error) {
	s.mu.Lock()
	s.logins = append(s.logins, r)
	s.mu.Unlock()
	if r.GetChallenge() == "unavailable" {
		return nil, apierr.ToStatus(apierr.New(apierr.Unavailable, "CERTIFICATE_CHECK_UNAVAILABLE", "down"))
	}
	res := map[string]identityv1.CertificateLoginResult{
		"good":     identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_OK,
		"expired":  identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_EXPIRED,
		"replayed": identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_REPLAYED,
		"badsig":   identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_SIGNATURE_INVALID,
		"untrust":  identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_UNTRUSTED,
		"revoked":  identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_REVOKED,
		"unbound":  identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_NOT_REGISTERED,
		"locked":   identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_LOCKED,
	}[r.GetChallenge()]
	out := &identityv1.CertificateLoginResponse{Result: res}
	if res == identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_OK {
		out.UserId, out.Login, out.OrgId = "u-mia", "mia", "o1"
	}
	return out, nil
}

func usbBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestUSBKeyPage: with ticket.usb_key the login page (over plain HTTP, as
// behind a proxy that terminates TLS) offers the USB key, hands out
// challenges, and posts the answer to identity: the certificate and
// signature decoded, the challenge as it came; success opens a level-2
// certificate session that reaches a level-2 application; each refusal
// is the login page with its sentence; the form needs its CSRF token.
func TestUSBKeyPage(t *testing.T) {
	tickets, sso := &certTickets{sessions: map[string]int32{}}, &usbSSO{}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso, USBKey: true, USBKeyScript: "/static/usbkey.js",
		USBKeyConnect: []string{"ws://127.0.0.1:4006"}}))
	t.Cleanup(srv.Close)
	off := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso}))
	t.Cleanup(off.Close)
	strong := "https://strong.example.com/app"

	// Off (the default): no option, no challenge.
	if _, page := getPage(t, usbBrowser(), off.URL+"/cas/login", "en"); strings.Contains(page, "usbkey-form") {
		t.Fatalf("USB key offered while off:\n%s", page)
	}
	if code, _ := getPage(t, usbBrowser(), off.URL+"/cas/cert/challenge", ""); code != http.StatusNotFound {
		t.Fatalf("challenge while off: %d", code)
	}

	br := usbBrowser()
	for lang, want := range map[string]string{"en": "Sign in with your USB key", "zh-CN": "使用USB Key登录"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/cas/login?usbkey=1&service="+url.QueryEscape(strong), nil)
		req.Header.Set("Accept-Language", lang)
		resp, err := br.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page := body(resp)
		// A level-2 application: the USB key reaches it, the page is no
		// refusal.
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, want) || !strings.Contains(page, `data-challenge="/cas/cert/challenge"`) ||
			!strings.Contains(page, `<script src="/static/usbkey.js" nonce=`) || !strings.Contains(page, "window.uiasSignChallenge") {
			t.Fatalf("%s: %d\n%s", lang, resp.StatusCode, page)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' ws://127.0.0.1:4006") {
			t.Fatalf("CSP %q", csp)
		}
	}
	resp, err := br.Get(srv.URL + "/cas/cert/challenge")
	if err != nil {
		t.Fatal(err)
	}
	var ch map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil || resp.StatusCode != http.StatusOK || ch["challenge"] != "good" ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("challenge: %d %v %v", resp.StatusCode, ch, err)
	}
	resp.Body.Close()

	_, page := getPage(t, br, srv.URL+"/cas/login?usbkey=1&service="+url.QueryEscape(strong), "en")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token:\n%s", page)
	}
	cert, sig := []byte("certificate DER"), []byte{1, 2, 3, 0xff}
	form := func(challenge string) url.Values {
		return url.Values{"usbkey": {"1"}, "service": {strong}, "csrf": {m[1]}, "cert_challenge": {challenge},
			"cert_certificate": {base64.StdEncoding.EncodeToString(cert)}, "cert_signature": {base64.RawURLEncoding.EncodeToString(sig)}}
	}

	// Without the token: refused, identity not asked.
	v := form("good")
	v.Set("csrf", "forged-token-forged-token-forged-token")
	if resp := postForm(t, br, srv.URL+"/cas/login", v); resp.StatusCode != http.StatusForbidden || len(sso.logins) != 0 {
		t.Fatalf("forged CSRF token: %d, %d identity calls", resp.StatusCode, len(sso.logins))
	}

	// Each refusal: the page with its sentence, 401.
	for challenge, want := range map[string]string{
		"expired": "took too long", "replayed": "took too long", "badsig": "does not match its certificate",
		"untrust": "not issued by a certificate authority", "revoked": "has been revoked", "unbound": "not registered to any account",
		"locked": "locked",
	} {
		resp := postForm(t, br, srv.URL+"/cas/login", form(challenge))
		if b := body(resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(b, want) {
			t.Errorf("%s: %d\n%s", challenge, resp.StatusCode, b)
		}
	}
	// Identity cannot check: the fault page (503), no session.
	if resp := postForm(t, br, srv.URL+"/cas/login", form("unavailable")); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("unavailable: %d", resp.StatusCode)
	}
	// Not base64: 400, identity not asked.
	n := len(sso.logins)
	v = form("good")
	v.Set("cert_signature", "not base64 !!")
	if resp := postForm(t, br, srv.URL+"/cas/login", v); resp.StatusCode != http.StatusBadRequest || len(sso.logins) != n {
		t.Fatalf("malformed: %d", resp.StatusCode)
	}
	if len(tickets.created) != 0 {
		t.Fatalf("a session after refusals: %v", tickets.created)
	}

	resp = postForm(t, br, srv.URL+"/cas/login", form("good"))
	b := body(resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != strong+"?ticket=ST-1" {
		t.Fatalf("USB key login: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), b)
	}
	last := sso.logins[len(sso.logins)-1]
	if string(last.GetCertificate()) != string(cert) || string(last.GetSignature()) != string(sig) || last.GetChallenge() != "good" {
		t.Fatalf("identity got %v", last)
	}
	if len(tickets.created) != 1 || tickets.created[0].GetAuthLevel() != certLevel || tickets.created[0].GetUserId() != "u-mia" ||
		tickets.created[0].GetAuthMethod().String() != "AUTH_METHOD_CERTIFICATE" {
		t.Fatalf("sessions created: %v", tickets.created)
	}

	// The challenge when identity is down: 503 with a sentence.
	sso.down = true
	resp, err = br.Get(srv.URL + "/cas/cert/challenge")
	if err != nil {
		t.Fatal(err)
	}
	if b := body(resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, "error") {
		t.Fatalf("challenge while identity is down: %d %s", resp.StatusCode, b)
	}
}

// TestUSBKeyStepUp: a person signed in with a password (level 1) who opens
// a level-2 application is shown the login page with the USB key (a
// step-up, as with a TLS certificate); its sign-in raises their session
// (the new TGT replaces theirs) and reaches the application.
func TestUSBKeyStepUp(t *testing.T) {
	tickets, sso := &certTickets{sessions: map[string]int32{"TGT-1": 1}}, &usbSSO{}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso, USBKey: true}))
	t.Cleanup(srv.Close)
	strong := "https://strong.example.com/app"
	br := usbBrowser()
	u, _ := url.Parse(srv.URL + "/cas/")
	br.Jar.SetCookies(u, []*http.Cookie{{Name: TGCCookie, Value: "TGT-1", Path: "/cas/"}})
	code, page := getPage(t, br, srv.URL+"/cas/login?service="+url.QueryEscape(strong), "en")
	if code != http.StatusOK || !strings.Contains(page, `id="usbkey-link"`) || strings.Contains(page, `id="usbkey-form"`) {
		t.Fatalf("step-up page: %d\n%s", code, page)
	}
	code, page = getPage(t, br, srv.URL+"/cas/login?usbkey=1&service="+url.QueryEscape(strong), "en")
	m := csrfField.FindStringSubmatch(page)
	if code != http.StatusOK || !strings.Contains(page, `id="usbkey-form"`) || m == nil {
		t.Fatalf("step-up page: %d\n%s", code, page)
	}
	resp := postForm(t, br, srv.URL+"/cas/login", url.Values{"usbkey": {"1"}, "service": {strong}, "csrf": {m[1]}, "cert_challenge": {"good"},
		"cert_certificate": {base64.StdEncoding.EncodeToString([]byte("der"))}, "cert_signature": {base64.StdEncoding.EncodeToString([]byte("sig"))}})
	body(resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != strong+"?ticket=ST-1" {
		t.Fatalf("step-up: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(tickets.created) != 1 || tickets.created[0].GetReplaceTgt() != "TGT-1" || tickets.created[0].GetAuthLevel() != certLevel {
		t.Fatalf("sessions: %v", tickets.created)
	}
}

// TestUSBKeyScriptOnlyOnItsStep (sec29a M2): the vendor's script is not on
// the password page (only a link to the USB key step is), the step has no
// password field and loads the script with its SRI hash, and the CSP's
// connect-src does not add the script's origin.
func TestUSBKeyScriptOnlyOnItsStep(t *testing.T) {
	const script, sri = "https://vendor.example/usbkey.js", "sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"
	tickets, sso := &certTickets{sessions: map[string]int32{}}, &usbSSO{}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso, USBKey: true, USBKeyScript: script, USBKeyScriptIntegrity: sri,
		USBKeyConnect: []string{"ws://127.0.0.1:4006"}}))
	t.Cleanup(srv.Close)
	br := usbBrowser()
	for _, path := range []string{"/cas/login", "/cas/login?twofactor=1", "/cas/login?renew=true&service=" + url.QueryEscape("https://app.example.com/")} {
		resp, err := br.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		page := body(resp)
		if !strings.Contains(page, `name="password"`) || strings.Contains(page, "vendor.example") || strings.Contains(page, "usbkey-form") ||
			!strings.Contains(page, `id="usbkey-link"`) || !strings.Contains(page, "usbkey=1") {
			t.Fatalf("%s: the password page\n%s", path, page)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(csp, "vendor.example") || !strings.Contains(csp, "connect-src 'self' ws://127.0.0.1:4006") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
	}
	resp, err := br.Get(srv.URL + "/cas/login?usbkey=1")
	if err != nil {
		t.Fatal(err)
	}
	page := body(resp)
	csp := resp.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if m == nil || strings.Contains(csp, "vendor.example") {
		t.Fatalf("CSP %q", csp)
	}
	if !strings.Contains(page, `<script src="`+script+`" integrity="`+strings.ReplaceAll(sri, "+", "&#43;")+`" crossorigin="anonymous" nonce="`+m[1]+`">`) ||
		strings.Contains(page, `name="password"`) || !strings.Contains(page, `id="usbkey-form"`) || !strings.Contains(page, `id="password-login-link"`) {
		t.Fatalf("the USB key step:\n%s", page)
	}
}

// TestUSBKeyChallengeThrottled: identity's login gate refusing a
// challenge (LOGIN_THROTTLED, the browser's address) is 429 with
// Retry-After and a JSON error the page shows, in the page's language;
// never cached; identity down is still 503.
func TestUSBKeyChallengeThrottled(t *testing.T) {
	// identity's reason (registered by identity's package, not linked here)
	if _, ok := apierr.Lookup("LOGIN_THROTTLED"); !ok {
		apierr.Register(apierr.Reason{Name: "LOGIN_THROTTLED", Code: apierr.ResourceExhausted, Legacy: -6, Doc: "identity's"})
	}
	sso := &usbSSO{throttled: true}
	srv := httptest.NewServer(New(Options{Tickets: &certTickets{sessions: map[string]int32{}}, SSO: sso, USBKey: true}))
	t.Cleanup(srv.Close)
	for lang, want := range map[string]string{"en": languages["en"].Throttled, "zh-CN": languages["zh-CN"].Throttled} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/cas/cert/challenge", nil)
		req.Header.Set("Accept-Language", lang)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var js map[string]string
		err = json.NewDecoder(resp.Body).Decode(&js)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "17" ||
			resp.Header.Get("Cache-Control") != "no-store" || js["error"] != want || js["retry_after_seconds"] != "17" || js["challenge"] != "" {
			t.Fatalf("%s: %d %v %v %v", lang, resp.StatusCode, resp.Header, js, err)
		}
	}
	sso.throttled, sso.down = false, true
	resp, err := http.Get(srv.URL + "/cas/cert/challenge")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("identity down: %d", resp.StatusCode)
	}
}
