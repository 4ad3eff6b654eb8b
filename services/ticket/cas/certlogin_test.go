package cas

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// testPKI is a CA and the client certificates it issues, made in the test.
type testPKI struct {
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	pool  *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test people CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{ca: ca, caKey: key, pool: pool}
}

// client issues a client certificate signed by the CA (or self-signed
// when selfSigned), with its key.
func (p *testPKI) client(t *testing.T, cn string, selfSigned bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	parent, signer := p.ca, p.caKey
	if selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// certTickets is a ticket component with two services: "weak" (level 1)
// and "strong" (level 2); sessions are "TGT-1" (password) and those it
// creates.
type certTickets struct {
	ticketv1.TicketServiceClient
	mu       sync.Mutex
	sessions map[string]int32  // TGT -> level
	owners   map[string]string // TGT -> person (login), when not mia
	created  []*ticketv1.CreateSessionRequest
	getErr   error // GetSession fails so (the ticket component unreachable)
}

func (c *certTickets) MatchService(_ context.Context, r *ticketv1.MatchServiceRequest, _ ...grpc.CallOption) (*ticketv1.RegisteredService, error) {
	if strings.Contains(r.GetService(), "strong") {
		return &ticketv1.RegisteredService{Name: "Strong app", MinAuthLevel: 2}, nil
	}
	return &ticketv1.RegisteredService{Name: "Weak app", MinAuthLevel: 1}, nil
}

func (c *certTickets) GetSession(_ context.Context, r *ticketv1.GetSessionRequest, _ ...grpc.CallOption) (*ticketv1.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.getErr != nil {
		return nil, c.getErr
	}
	l, ok := c.sessions[r.GetTgt()]
	if !ok {
		return nil, apierr.ToStatus(apierr.New(apierr.NotFound, "SESSION_NOT_FOUND", "no session"))
	}
	owner := "mia"
	if o, ok := c.owners[r.GetTgt()]; ok {
		owner = o
	}
	return &ticketv1.Session{Id: "s", AuthLevel: l, UserId: "u-" + owner, Login: owner}, nil
}

func (c *certTickets) CreateSession(_ context.Context, r *ticketv1.CreateSessionRequest, _ ...grpc.CallOption) (*ticketv1.CreateSessionResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.created = append(c.created, r)
	tgt := "TGT-new"
	c.sessions[tgt] = r.GetAuthLevel()
	return &ticketv1.CreateSessionResponse{Tgt: tgt}, nil
}

func (c *certTickets) DestroySession(context.Context, *ticketv1.DestroySessionRequest, ...grpc.CallOption) (*ticketv1.DestroySessionResponse, error) {
	return &ticketv1.DestroySessionResponse{}, nil
}

func (c *certTickets) IssueServiceTicket(_ context.Context, r *ticketv1.IssueServiceTicketRequest, _ ...grpc.CallOption) (*ticketv1.IssueServiceTicketResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.Contains(r.GetService(), "strong") && c.sessions[r.GetTgt()] < 2 {
		return nil, apierr.ToStatus(apierr.New(apierr.FailedPrecondition, "AUTH_LEVEL_TOO_LOW", "this application requires a stronger login"))
	}
	return &ticketv1.IssueServiceTicketResponse{Ticket: "ST-1"}, nil
}

// certSSO answers a certificate login by the certificate's common name.
type certSSO struct {
	identityv1.SSOServiceClient
	mu    sync.Mutex
	calls [][]byte
}

func (s *certSSO) CertificateLogin(_ context.Context, r *identityv1.CertificateLoginRequest, _ ...grpc.CallOption) (*identityv1.CertificateLoginResponse, error) {
	s.mu.Lock()
	s.calls = append(s.calls, r.GetCertificate())
	s.mu.Unlock()
	c, err := x509.ParseCertificate(r.GetCertificate())
	if err != nil {
		return nil, err
	}
	res := map[string]identityv1.CertificateLoginResult{
		"mia":      identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_OK,
		"stranger": identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_NOT_REGISTERED,
		"old":      identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_EXPIRED,
		"locked":   identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_LOCKED,
		"disabled": identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_DISABLED,
	}[c.Subject.CommonName]
	out := &identityv1.CertificateLoginResponse{Result: res}
	if res == identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_OK {
		out.UserId, out.Login, out.OrgId = "u-mia", "mia", "o1"
	}
	return out, nil
}

// certServer serves h over real TLS on loopback, asking for client
// certificates verified against the PKI's CA (as the edge does with
// tls.client_ca_file).
func certServer(t *testing.T, h http.Handler, p *testPKI) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{ClientCAs: p.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// certBrowser is a browser of srv presenting cert (none when nil), with
// cookies, not following redirects.
func certBrowser(t *testing.T, srv *httptest.Server, cert *tls.Certificate) *http.Client {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: tr, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func getPage(t *testing.T, c *http.Client, u, lang string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func postForm(t *testing.T, c *http.Client, u string, v url.Values) *http.Response {
	t.Helper()
	resp, err := c.Post(u, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestCertificateLoginPage: over real TLS, a browser presenting a
// certificate the server verified is offered the certificate login (both
// languages); posting it (with the form's CSRF token) sends that very
// certificate to identity and opens a level-2 session that reaches a
// level-2 service; without a token, nothing is asked.
func TestCertificateLoginPage(t *testing.T) {
	p := newTestPKI(t)
	tickets, sso := &certTickets{sessions: map[string]int32{"TGT-1": 1}}, &certSSO{}
	srv := certServer(t, New(Options{Tickets: tickets, SSO: sso}), p)
	mia := p.client(t, "mia", false)
	strong := "https://strong.example.com/app"

	// No certificate: no certificate button.
	plain := certBrowser(t, srv, nil)
	if code, page := getPage(t, plain, srv.URL+"/cas/login", "en"); code != http.StatusOK || strings.Contains(page, "cert-login") ||
		!strings.Contains(page, `name="password"`) {
		t.Fatalf("without a certificate: %d\n%s", code, page)
	}
	// A certificate from another CA is not verified: not offered either.
	rogue := p.client(t, "mia", true)
	if _, page := getPage(t, certBrowser(t, srv, &rogue), srv.URL+"/cas/login", "en"); strings.Contains(page, "cert-login") {
		t.Fatalf("a certificate of another CA was offered:\n%s", page)
	}

	br := certBrowser(t, srv, &mia)
	for lang, want := range map[string]string{"en": "Sign in with your certificate", "zh-CN": "使用数字证书登录"} {
		code, page := getPage(t, br, srv.URL+"/cas/login?service="+url.QueryEscape(strong), lang)
		if code != http.StatusOK || !strings.Contains(page, want) || !strings.Contains(page, `id="cert-login"`) {
			t.Fatalf("%s: the certificate login is not offered: %d\n%s", lang, code, page)
		}
		// A level-2 application: the password form is of no use there.
		if strings.Contains(page, `name="password"`) {
			t.Fatalf("%s: a password form for a level-2 application:\n%s", lang, page)
		}
	}
	_, page := getPage(t, br, srv.URL+"/cas/login?service="+url.QueryEscape(strong), "en")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token:\n%s", page)
	}

	// Without the token: refused, identity not asked.
	resp := postForm(t, br, srv.URL+"/cas/login", url.Values{"certificate": {"1"}, "service": {strong}, "csrf": {"forged-token-forged-token-forged-token"}})
	if resp.StatusCode != http.StatusForbidden || len(sso.calls) != 0 {
		t.Fatalf("forged CSRF token: %d, %d identity calls", resp.StatusCode, len(sso.calls))
	}
	body(resp)

	resp = postForm(t, br, srv.URL+"/cas/login", url.Values{"certificate": {"1"}, "service": {strong}, "csrf": {m[1]}})
	b := body(resp)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != strong+"?ticket=ST-1" {
		t.Fatalf("certificate login: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), b)
	}
	if len(sso.calls) != 1 || !bytes.Equal(sso.calls[0], mia.Certificate[0]) {
		t.Fatalf("identity got %d calls, not with the presented certificate", len(sso.calls))
	}
	if len(tickets.created) != 1 || tickets.created[0].GetAuthLevel() != 2 || tickets.created[0].GetUserId() != "u-mia" {
		t.Fatalf("sessions created: %v", tickets.created)
	}
	// The level-2 session enters a level-1 application too.
	resp, err := br.Get(srv.URL + "/cas/login?service=" + url.QueryEscape("https://weak.example.com/"))
	if err != nil {
		t.Fatal(err)
	}
	body(resp)
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "ticket=ST-1") {
		t.Fatalf("level-2 session at a level-1 application: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCertificateLoginRefusals: each refusal says what is wrong, in the
// page's language, without a session.
func TestCertificateLoginRefusals(t *testing.T) {
	p := newTestPKI(t)
	tickets, sso := &certTickets{sessions: map[string]int32{}}, &certSSO{}
	srv := certServer(t, New(Options{Tickets: tickets, SSO: sso}), p)
	for _, tc := range []struct{ cn, lang, want string }{
		{"stranger", "en", "This certificate is not registered to any account."},
		{"stranger", "zh-CN", "该证书没有登记到任何账号"},
		{"old", "en", "Your certificate has expired or is not valid yet."},
		{"locked", "en", "Your account is locked."},
		{"disabled", "zh-CN", "您的账号已被停用"},
		{"", "en", "Your browser did not present a client certificate."},
	} {
		var c *http.Client
		if tc.cn == "" {
			c = certBrowser(t, srv, nil)
		} else {
			cert := p.client(t, tc.cn, false)
			c = certBrowser(t, srv, &cert)
		}
		_, page := getPage(t, c, srv.URL+"/cas/login", tc.lang)
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no form", tc.cn)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/cas/login",
			strings.NewReader(url.Values{"certificate": {"1"}, "csrf": {m[1]}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept-Language", tc.lang)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := body(resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(b, tc.want) {
			t.Errorf("%s/%s: %d, want 401 saying %q:\n%s", tc.cn, tc.lang, resp.StatusCode, tc.want, b)
		}
		for _, ck := range resp.Cookies() {
			if ck.Name == TGCCookie && ck.Value != "" {
				t.Errorf("%s: a session cookie after a refusal", tc.cn)
			}
		}
	}
	if len(tickets.created) != 0 {
		t.Fatalf("sessions created after refusals: %v", tickets.created)
	}
}

// TestLevelTwoStepUp: a password session at a level-2 application: with a
// certificate the page asks for it (CAS renew-like step-up) instead of
// refusing; without one it says the application needs a certificate
// login. A level-2 application without a session and without a
// certificate says so too, with no password form.
func TestLevelTwoStepUp(t *testing.T) {
	p := newTestPKI(t)
	tickets := &certTickets{sessions: map[string]int32{"TGT-1": 1}}
	srv := certServer(t, New(Options{Tickets: tickets, SSO: &certSSO{}}), p)
	strong := srv.URL + "/cas/login?service=" + url.QueryEscape("https://strong.example.com/")
	u, _ := url.Parse(srv.URL + "/cas/")
	withSession := func(c *http.Client) *http.Client {
		c.Jar.SetCookies(u, []*http.Cookie{{Name: TGCCookie, Value: "TGT-1", Path: "/cas/"}})
		return c
	}
	mia := p.client(t, "mia", false)

	code, page := getPage(t, withSession(certBrowser(t, srv, &mia)), strong, "en")
	if code != http.StatusOK || !strings.Contains(page, `id="cert-login"`) || !strings.Contains(page, "Sign in with your certificate to continue.") ||
		strings.Contains(page, `name="password"`) {
		t.Fatalf("step-up with a certificate: %d\n%s", code, page)
	}
	for lang, want := range map[string]string{"en": "requires signing in with a certificate (level 2)", "zh-CN": "要求使用数字证书（二级）登录"} {
		code, page = getPage(t, withSession(certBrowser(t, srv, nil)), strong, lang)
		if code != http.StatusForbidden || !strings.Contains(page, want) || strings.Contains(page, "cert-login") {
			t.Fatalf("%s: password session without a certificate: %d\n%s", lang, code, page)
		}
		code, page = getPage(t, certBrowser(t, srv, nil), strong, lang)
		if code != http.StatusForbidden || !strings.Contains(page, want) || strings.Contains(page, `name="password"`) {
			t.Fatalf("%s: no session, no certificate: %d\n%s", lang, code, page)
		}
	}
	if len(tickets.created) != 0 {
		t.Fatalf("sessions created: %v", tickets.created)
	}
}

// TestCertificateOfAnotherPerson: a browser signed in as bob presenting
// mia's certificate is not switched to mia silently (as Keycloak's
// "already authenticated as a different user"): a page says who is signed
// in and to sign out first, in both languages; no session is made.
func TestCertificateOfAnotherPerson(t *testing.T) {
	p := newTestPKI(t)
	tickets := &certTickets{sessions: map[string]int32{"TGT-bob": 1}, owners: map[string]string{"TGT-bob": "bob"}}
	srv := certServer(t, New(Options{Tickets: tickets, SSO: &certSSO{}}), p)
	u, _ := url.Parse(srv.URL + "/cas/")
	mia := p.client(t, "mia", false)
	for lang, want := range map[string]string{"en": "You are signed in as bob, and this certificate belongs to someone else",
		"zh-CN": "您当前以 bob 的身份登录"} {
		c := certBrowser(t, srv, &mia)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: TGCCookie, Value: "TGT-bob", Path: "/cas/"}})
		// (renew: the form, though a session exists)
		_, page := getPage(t, c, srv.URL+"/cas/login?renew=true", lang)
		m := csrfField.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no form:\n%s", lang, page)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/cas/login",
			strings.NewReader(url.Values{"certificate": {"1"}, "csrf": {m[1]}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept-Language", lang)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := body(resp)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(b, want) || !strings.Contains(b, `href="/cas/logout"`) {
			t.Errorf("%s: %d\n%s", lang, resp.StatusCode, b)
		}
	}
	// The session cannot be asked: a fault page, never a switch.
	c := certBrowser(t, srv, &mia)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: TGCCookie, Value: "TGT-bob", Path: "/cas/"}})
	_, page := getPage(t, c, srv.URL+"/cas/login?renew=true", "en")
	m := csrfField.FindStringSubmatch(page)
	tickets.mu.Lock()
	tickets.getErr = apierr.ToStatus(apierr.ErrUnavailable)
	tickets.mu.Unlock()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/cas/login",
		strings.NewReader(url.Values{"certificate": {"1"}, "csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(resp); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("session unreachable: %d\n%s", resp.StatusCode, b)
	}
	if len(tickets.created) != 0 {
		t.Fatalf("sessions created: %v", tickets.created)
	}
}
