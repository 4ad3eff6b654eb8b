package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// certPKI is a test CA (the people's certificates and the server's), its
// PEM file for tls.client_ca_file.
type certPKI struct {
	ca     *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
	dir    string
}

func newCertPKI(t *testing.T) *certPKI {
	t.Helper()
	return newNamedCertPKI(t, "UIAS e2e people CA")
}

// newNamedCertPKI is newCertPKI with the CA's common name.
func newNamedCertPKI(t *testing.T, cn string) *certPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &certPKI{ca: ca, key: key, dir: t.TempDir(), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// revocationList writes the CA's CRL listing certs (revoked at at) to a
// file of its folder and returns its name (for tls.crl_file).
func (p *certPKI) revocationList(t *testing.T, at time.Time, certs ...tls.Certificate) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: leaf.SerialNumber, RevocationTime: at})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: at,
		NextUpdate: time.Now().Add(7 * 24 * time.Hour), RevokedCertificateEntries: entries}, p.ca, p.key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(p.dir, "ca.crl")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// issue makes a certificate for cn valid from nb to na (server: for
// 127.0.0.1 and localhost), writing its files when server.
func (p *certPKI) issue(t *testing.T, cn string, server bool, nb, na time.Time) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	if !server {
		return pair, "", ""
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(p.dir, cn+".pem"), filepath.Join(p.dir, cn+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pair, certFile, keyFile
}

// startTLS starts a monolith serving gRPC and HTTPS with the PKI's server
// certificate and tls.client_ca_file, and dials its gRPC port over TLS.
func startTLS(t *testing.T, p *certPKI, mods ...func(*config.Config)) *env {
	t.Helper()
	cfg := testConfig(t.TempDir())
	_, certFile, keyFile := p.issue(t, "uias", true, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile = certFile, keyFile, p.caFile
	for _, m := range mods {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{Logger: zaptest.NewLogger(t, zaptestLevel()), BootstrapPassword: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = a.Stop(sctx)
	})
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: p.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e := &env{t: t, app: a, conn: conn, http: "https://" + a.HTTPAddr(),
		auth: identityv1.NewAuthServiceClient(conn), admin: identityv1.NewAdminServiceClient(conn)}
	e.login()
	return e
}

// certBrowser is a browser over HTTPS trusting the PKI, presenting cert
// (none when nil), with cookies, not following redirects.
type certBrowser struct {
	t *testing.T
	c *http.Client
}

func newCertBrowser(t *testing.T, p *certPKI, cert *tls.Certificate) *certBrowser {
	tc := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	jar, _ := cookiejar.New(nil)
	return &certBrowser{t: t, c: &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *certBrowser) do(method, u string, form url.Values) (int, string, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept-Language", "en")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), resp.Header.Get("Location")
}

// certLogin opens the login page for service and presses "Sign in with
// your certificate".
func (b *certBrowser) certLogin(casBase, service string) (int, string, string) {
	b.t.Helper()
	code, page, _ := b.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(service), nil)
	if !strings.Contains(page, `id="cert-login"`) {
		b.t.Fatalf("the login page offers no certificate login: %d\n%s", code, page)
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token:\n%s", page)
	}
	return b.do(http.MethodPost, casBase+"login", url.Values{"certificate": {"1"}, "csrf": {m[1]}, "service": {service}})
}

// TestCertificateLogin: the X.509 certificate login over real HTTPS with
// tls.client_ca_file. A person's bound certificate signs them in at level
// 2 and reaches a min_auth_level 2 service (the ticket validates, with the
// authLevel attribute 2) and a level-1 one; a password session is asked
// for the certificate there, and refused without one; an unbound
// certificate and a disabled account are refused; one certificate is one
// person's; the logins are audited as sso.login with method certificate.
func TestCertificateLogin(t *testing.T) {
	p := newCertPKI(t)
	e := startTLS(t, p)
	casBase := e.http + "/cas/"
	f := e.seed("certapp", "cora", nil, nil)
	weak, strong := "https://weak.example.com/app/", "https://strong.example.com/app/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, d := range []*ticketv1.ServiceDefinition{
		{AppId: f.appID, Name: "Weak app", Url: weak},
		{AppId: f.appID, Name: "Strong app", Url: strong, MinAuthLevel: 2},
	} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	cora, _, _ := p.issue(t, "Cora 110105194912310020", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	stranger, _, _ := p.issue(t, "Stranger", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	dora, _, _ := p.issue(t, "Dora", false, now.Add(-time.Hour), now.Add(24*time.Hour))

	// Bind Cora's certificate; it cannot be bound to anyone else.
	bound, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: cora.Certificate[0]})
	if err != nil {
		t.Fatal(err)
	}
	if bound.GetNotAfter() == nil || len(bound.GetSha256()) != 64 {
		t.Fatalf("bound %v", bound)
	}
	d := e.seed("certapp2", "dora", nil, nil)
	_, err = e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: d.userID, Sha256: bound.GetSha256()})
	wantCode(t, err, codes.AlreadyExists, "CERTIFICATE_BOUND")

	// Cora signs in with her certificate and enters the level-2 service.
	br := newCertBrowser(t, p, &cora)
	code, page, loc := br.certLogin(casBase, strong)
	if code != http.StatusFound || !strings.HasPrefix(loc, strong+"?ticket=ST-") {
		t.Fatalf("certificate login for the level-2 service: %d to %q\n%s", code, loc, page)
	}
	st := strings.TrimPrefix(loc, strong+"?ticket=")
	vc, answer, _ := br.do(http.MethodGet, casBase+"p3/serviceValidate?service="+url.QueryEscape(strong)+"&ticket="+url.QueryEscape(st), nil)
	if vc != http.StatusOK || !strings.Contains(answer, "<cas:user>cora</cas:user>") || !strings.Contains(answer, "<cas:authLevel>2</cas:authLevel>") {
		t.Fatalf("validation of the level-2 ticket: %d\n%s", vc, answer)
	}
	// The level-2 session enters the level-1 service without a new login.
	if code, _, loc := br.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(weak), nil); code != http.StatusFound || !strings.HasPrefix(loc, weak+"?ticket=ST-") {
		t.Fatalf("level-2 session at the level-1 service: %d to %q", code, loc)
	}

	// A password session (no certificate) is refused at the level-2
	// service with a page saying why.
	pw := newCertBrowser(t, p, nil)
	_, page, _ = pw.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(weak), nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil || strings.Contains(page, "cert-login") {
		t.Fatalf("login page without a certificate:\n%s", page)
	}
	if code, _, loc := pw.do(http.MethodPost, casBase+"login", url.Values{"username": {"cora"}, "password": {f.password},
		"csrf": {m[1]}, "service": {weak}}); code != http.StatusFound || !strings.HasPrefix(loc, weak+"?ticket=") {
		t.Fatalf("password login: %d to %q", code, loc)
	}
	code, page, loc = pw.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(strong), nil)
	if code != http.StatusForbidden || loc != "" || !strings.Contains(page, "requires signing in with a certificate (level 2)") {
		t.Fatalf("password session at the level-2 service: %d to %q\n%s", code, loc, page)
	}
	// With her certificate in the browser, the same password session is
	// asked for it (step-up) and then let in.
	step := newCertBrowser(t, p, &cora)
	_, page, _ = step.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(weak), nil)
	m = csrfRE.FindStringSubmatch(page)
	step.do(http.MethodPost, casBase+"login", url.Values{"username": {"cora"}, "password": {f.password}, "csrf": {m[1]}, "service": {weak}})
	code, page, _ = step.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(strong), nil)
	if code != http.StatusOK || !strings.Contains(page, "Sign in with your certificate to continue.") || strings.Contains(page, `name="password"`) {
		t.Fatalf("step-up page: %d\n%s", code, page)
	}
	if code, _, loc := step.certLogin(casBase, strong); code != http.StatusFound || !strings.HasPrefix(loc, strong+"?ticket=ST-") {
		t.Fatalf("after the step-up: %d to %q", code, loc)
	}

	// An unbound certificate is refused.
	code, page, loc = newCertBrowser(t, p, &stranger).certLogin(casBase, strong)
	if code != http.StatusUnauthorized || loc != "" || !strings.Contains(page, "This certificate is not registered to any account.") {
		t.Fatalf("unbound certificate: %d to %q\n%s", code, loc, page)
	}
	// A disabled account is refused.
	if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: d.userID, Certificate: dora.Certificate[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: d.userID, Status: identityv1.UserStatus_USER_STATUS_DISABLED}); err != nil {
		t.Fatal(err)
	}
	code, page, loc = newCertBrowser(t, p, &dora).certLogin(casBase, weak)
	if code != http.StatusUnauthorized || loc != "" || !strings.Contains(page, "Your account is disabled.") {
		t.Fatalf("disabled account: %d to %q\n%s", code, loc, page)
	}
	// Unbound, Cora's certificate signs no one in.
	if _, err := e.admin.UnbindUserCertificate(e.adm(), &identityv1.UnbindUserCertificateRequest{UserId: f.userID, Sha256: bound.GetSha256()}); err != nil {
		t.Fatal(err)
	}
	if code, page, _ := newCertBrowser(t, p, &cora).certLogin(casBase, weak); code != http.StatusUnauthorized ||
		!strings.Contains(page, "not registered") {
		t.Fatalf("after unbinding: %d\n%s", code, page)
	}
	// ... and the sessions it opened end (identity's
	// user.certificate_unbound): the old TGC gets no ticket for the level-2
	// service any more.
	for deadline := time.Now().Add(15 * time.Second); ; {
		code, _, loc := br.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(strong), nil)
		if !strings.Contains(loc, "ticket=") {
			if code != http.StatusOK {
				t.Fatalf("the unbound certificate's session at the level-2 service: %d to %q", code, loc)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unbound certificate's session still gets tickets: %d to %q", code, loc)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Audited as logins with the method; nothing of the subject.
	want := map[string]bool{
		"success OK " + f.userID:                         false,
		"failure CERTIFICATE_NOT_REGISTERED certificate": false,
		"failure ACCOUNT_DISABLED " + d.userID:           false,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[string]bool{}
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.identity.sso.login") {
			det, _ := ev["detail"].(map[string]any)
			if det["method"] != "certificate" {
				continue
			}
			if s := fmt.Sprint(ev); strings.Contains(s, "110105194912310020") || strings.Contains(s, "Cora ") {
				t.Fatalf("the certificate's subject in an audit record: %s", s)
			}
			subject := strings.TrimPrefix(fmt.Sprint(ev["subject"]), "user:")
			seen[fmt.Sprintf("%v %v %s", ev["result"], ev["reason"], subject)] = true
		}
		missing := []string{}
		for k := range want {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records missing %v; seen %v", missing, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCertificateStepUpKeepsApplications: a person signed in with a
// password steps up with their certificate for a level-2 service. The
// session is raised, not logged out: the application they entered with the
// password gets no logoutRequest, the old TGC opens nothing (a new TGT, no
// session fixation), the new session is level 2 and still lists that
// application, and the final logout reaches it.
func TestCertificateStepUpKeepsApplications(t *testing.T) {
	p := newCertPKI(t)
	e := startTLS(t, p)
	casBase := e.http + "/cas/"
	f := e.seed("stepapp", "stella", nil, nil)
	var logouts atomic.Int32
	slo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.FormValue("logoutRequest") != "" {
			logouts.Add(1)
		}
	}))
	t.Cleanup(slo.Close)
	weak, strong := "https://weak.example.com/app/", "https://strong.example.com/app/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, d := range []*ticketv1.ServiceDefinition{
		{AppId: f.appID, Name: "Weak app", Url: weak, LogoutUrl: slo.URL + "/weak"},
		{AppId: f.appID, Name: "Strong app", Url: strong, MinAuthLevel: 2, LogoutUrl: slo.URL + "/strong"},
	} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	stella, _, _ := p.issue(t, "Stella", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: stella.Certificate[0]}); err != nil {
		t.Fatal(err)
	}

	// A password login enters the level-1 application.
	br := newCertBrowser(t, p, &stella)
	_, page, _ := br.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(weak), nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form:\n%s", page)
	}
	if code, _, loc := br.do(http.MethodPost, casBase+"login", url.Values{"username": {"stella"}, "password": {f.password},
		"csrf": {m[1]}, "service": {weak}}); code != http.StatusFound || !strings.HasPrefix(loc, weak+"?ticket=") {
		t.Fatalf("password login: %d to %q", code, loc)
	}
	casURL, _ := url.Parse(casBase)
	tgc := func() string {
		for _, c := range br.c.Jar.Cookies(casURL) {
			if c.Name == "TGC" {
				return c.Value
			}
		}
		return ""
	}
	old := tgc()
	if old == "" {
		t.Fatal("no TGC after the password login")
	}

	// Step-up with the certificate for the level-2 application.
	if code, page, loc := br.certLogin(casBase, strong); code != http.StatusFound || !strings.HasPrefix(loc, strong+"?ticket=ST-") {
		t.Fatalf("step-up: %d to %q\n%s", code, loc, page)
	}
	raised := tgc()
	if raised == "" || raised == old {
		t.Fatal("the step-up kept the old TGT")
	}
	// The old TGC opens nothing.
	thief := newCertBrowser(t, p, nil)
	thief.c.Jar.SetCookies(casURL, []*http.Cookie{{Name: "TGC", Value: old, Path: "/cas/"}})
	if code, _, loc := thief.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(weak), nil); code != http.StatusOK || loc != "" {
		t.Fatalf("the old TGC after the step-up: %d to %q", code, loc)
	}
	// The raised session is level 2 and lists both applications.
	sessions := ticketv1.NewTicketAdminServiceClient(e.conn)
	list, err := sessions.ListUserSessions(e.adm(), &ticketv1.ListUserSessionsRequest{UserId: f.userID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetAuthLevel() != 2 ||
		!slices.Contains(list.GetSessions()[0].GetServices(), weak) || !slices.Contains(list.GetSessions()[0].GetServices(), strong) {
		t.Fatalf("sessions after the step-up: %v", list.GetSessions())
	}
	// No application was told of a logout (single logout is sent in the
	// background: give it time to show).
	time.Sleep(1500 * time.Millisecond)
	if n := logouts.Load(); n != 0 {
		t.Fatalf("the step-up sent %d logoutRequests", n)
	}

	// The final logout reaches both applications.
	if code, _, _ := br.do(http.MethodGet, casBase+"logout", nil); code != http.StatusOK {
		t.Fatalf("logout: %d", code)
	}
	for deadline := time.Now().Add(15 * time.Second); logouts.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the final logout reached %d of the 2 applications", logouts.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCertificateLoginComponentsOnly: SSOService.CertificateLogin is the
// CAS page's call: anyone else calling it over gRPC (anonymous, an
// application with its App_ID and secret, an administrator, a person's
// certificate on the gRPC connection), even with the edge's client
// certificate header forged, is refused PERMISSION_DENIED
// SSO_COMPONENTS_ONLY, and signs no one in.
func TestCertificateLoginComponentsOnly(t *testing.T) {
	p := newCertPKI(t)
	e := startTLS(t, p)
	f := e.seed("forgeapp", "fred", nil, nil)
	now := time.Now()
	fred, _, _ := p.issue(t, "Fred", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	bound, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: fred.Certificate[0]})
	if err != nil {
		t.Fatal(err)
	}
	forge := func(ctx context.Context) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "x-uias-client-cert", bound.GetSha256())
	}
	req := &identityv1.CertificateLoginRequest{Certificate: fred.Certificate[0]}
	sso := identityv1.NewSSOServiceClient(e.conn)
	for name, ctx := range map[string]context.Context{
		"anonymous":     forge(context.Background()),
		"application":   forge(f.ctx()),
		"administrator": forge(e.adm()),
	} {
		res, err := sso.CertificateLogin(ctx, req)
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("%s: %v %v", name, res, err)
		}
		wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
	}
	// The person's own certificate on the gRPC connection (mTLS against
	// tls.client_ca_file) makes no component either.
	conn, err := grpc.NewClient(e.app.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: p.pool, ServerName: "localhost", MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{fred}})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = identityv1.NewSSOServiceClient(conn).CertificateLogin(forge(context.Background()), req)
	wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
}

// TestCertificateLoginPeopleCA: with tls.people_ca_file (and tls.crl_file), a person signs in
// with a certificate of the people's CA; a certificate of the CA of
// tls.client_ca_file (the applications' and components' CA), verified by
// TLS and bound to a person all the same, is not offered as a login and
// signs no one in.
func TestCertificateLoginPeopleCA(t *testing.T) {
	p := newNamedCertPKI(t, "UIAS e2e components CA")
	people := newNamedCertPKI(t, "UIAS e2e people's USB key CA")
	// A key reported lost: its CA's revocation list (tls.crl_file) names it.
	now := time.Now()
	lost, _, _ := people.issue(t, "Petra lost key", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	revokedAt := now.Add(-10 * time.Minute).UTC().Truncate(time.Second)
	crl := people.revocationList(t, revokedAt, lost)
	e := startTLS(t, p, func(c *config.Config) { c.TLS.PeopleCAFile, c.TLS.CRLFile = people.caFile, crl })
	casBase := e.http + "/cas/"
	f := e.seed("peopleapp", "petra", nil, nil)
	svc := "https://people.example.com/app/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "People app", Url: svc}}); err != nil {
		t.Fatal(err)
	}
	good, _, _ := people.issue(t, "Petra", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	wrong, _, _ := p.issue(t, "Petra elsewhere", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	for _, c := range []tls.Certificate{good, wrong} {
		if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: c.Certificate[0]}); err != nil {
			t.Fatal(err)
		}
	}
	// The browsers trust the server (the components' CA) either way.
	browser := func(c *tls.Certificate) *certBrowser {
		b := newCertBrowser(t, p, c)
		return b
	}
	if code, page, loc := browser(&good).certLogin(casBase, svc); code != http.StatusFound || !strings.HasPrefix(loc, svc+"?ticket=ST-") {
		t.Fatalf("certificate of the people's CA: %d to %q\n%s", code, loc, page)
	}
	b := browser(&wrong)
	code, page, _ := b.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(svc), nil)
	if code != http.StatusOK || strings.Contains(page, `id="cert-login"`) {
		t.Fatalf("certificate of the components' CA offered as a login: %d\n%s", code, page)
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token:\n%s", page)
	}
	code, page, loc := b.do(http.MethodPost, casBase+"login", url.Values{"certificate": {"1"}, "csrf": {m[1]}, "service": {svc}})
	if code != http.StatusUnauthorized || loc != "" || !strings.Contains(page, "did not present a client certificate") {
		t.Fatalf("certificate of the components' CA posted: %d to %q\n%s", code, loc, page)
	}
	// A certificate the edge does not accept (expired, of a CA it does not
	// trust) no longer fails the TLS handshake: the login page says why,
	// offers the password form and no certificate login, and posting the
	// certificate button gets the same sentence; the password still works
	// on that connection. The certificate counts as not presented.
	expired, _, _ := people.issue(t, "Petra expired", false, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	stranger := newNamedCertPKI(t, "Some other CA")
	unknown, _, _ := stranger.issue(t, "Petra stranger", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	for _, c := range []tls.Certificate{expired, lost} {
		if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: c.Certificate[0]}); err != nil {
			t.Fatal(err)
		}
	}
	expiredLeaf, err := x509.ParseCertificate(expired.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert tls.Certificate
		want string
	}{
		"expired":    {expired, "presented a certificate that expired on " + expiredLeaf.NotAfter.UTC().Format("2006-01-02 15:04 UTC")},
		"unknown CA": {unknown, "not issued by a certificate authority this service trusts"},
		"revoked":    {lost, "presented a certificate that its certificate authority revoked on " + revokedAt.Format("2006-01-02 15:04 UTC")},
	} {
		// Presented whatever CAs the server names (a browser whose person
		// picks it, or a key that is the only one).
		b := newCertBrowser(t, p, nil)
		b.c.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &tc.cert, nil
		}
		code, page, _ := b.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(svc), nil)
		if code != http.StatusOK || !strings.Contains(page, tc.want) || !strings.Contains(page, "Sign in with your password") ||
			strings.Contains(page, `id="cert-login"`) || !strings.Contains(page, `name="password"`) {
			t.Fatalf("%s certificate: %d\n%s", name, code, page)
		}
		m := csrfRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s: no CSRF token:\n%s", name, page)
		}
		code, page, loc := b.do(http.MethodPost, casBase+"login", url.Values{"certificate": {"1"}, "csrf": {m[1]}, "service": {svc}})
		if code != http.StatusUnauthorized || loc != "" || !strings.Contains(page, tc.want) {
			t.Fatalf("%s certificate posted: %d to %q\n%s", name, code, loc, page)
		}
		m = csrfRE.FindStringSubmatch(page)
		code, _, loc = b.do(http.MethodPost, casBase+"login", url.Values{"username": {"petra"}, "password": {f.password},
			"csrf": {m[1]}, "service": {svc}})
		if code != http.StatusFound || !strings.HasPrefix(loc, svc+"?ticket=ST-") {
			t.Fatalf("%s certificate, password login: %d to %q", name, code, loc)
		}
	}
	// The same CAs and lists hold for the sign-in by challenge (ADR 0033;
	// identity.cert_challenge_ca_file unset: tls.people_ca_file): an
	// application's Authenticate with auth type 4 signs Petra in with her
	// key, refuses the lost (revoked) key and the key of the components' CA.
	for name, tc := range map[string]struct {
		cert   tls.Certificate
		reason string
	}{"good": {good, ""}, "revoked": {lost, "CERTIFICATE_REVOKED"}, "components' CA": {wrong, "CERTIFICATE_UNTRUSTED"}} {
		ch, err := e.auth.GetCertificateChallenge(f.ctx(), &identityv1.GetCertificateChallengeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(ch.GetChallenge()))
		sig, err := ecdsa.SignASN1(rand.Reader, tc.cert.PrivateKey.(*ecdsa.PrivateKey), sum[:])
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, AuthType: identityv1.AuthType_AUTH_TYPE_CERTIFICATE,
			Challenge: ch.GetChallenge(), Certificate: tc.cert.Certificate[0], Signature: sig})
		if tc.reason == "" {
			wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
			continue
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("%s: %v %v", name, res, err)
		}
		wantCode(t, err, codes.Unauthenticated, tc.reason)
	}
}
