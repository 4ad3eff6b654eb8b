package e2e

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// TestCertificateRequiredService: graded authentication's certificate
// level. A service registered with certificate_required is entered with a
// certificate login only: its login page offers nothing else (403 without
// a certificate), and a level-2 session of another method (a finger and
// the password) reaches an ordinary level-2 service but not it; the
// certificate login does.
func TestCertificateRequiredService(t *testing.T) {
	p := newCertPKI(t)
	e := startTLS(t, p, withFingerAgent("http://127.0.0.1:15270/capture"))
	casBase := e.http + "/cas/"
	f := fingerPerson(t, e, "certonly", "cody")
	certOnly, strong := "https://certonly.example.com/", "https://strong.example.com/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, d := range []*ticketv1.ServiceDefinition{
		{AppId: f.appID, Name: "Vault", Url: certOnly, CertificateRequired: true},
		{AppId: f.appID, Name: "Strong app", Url: strong, MinAuthLevel: 2},
	} {
		r, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d})
		if err != nil || r.GetMinAuthLevel() != 2 {
			t.Fatalf("create %s: %v %v", d.GetName(), r, err)
		}
	}
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Url: "https://c2.example.com/", MinAuthLevel: 1, CertificateRequired: true}}); err == nil ||
		!strings.Contains(err.Error(), "min_auth_level 2") {
		t.Fatalf("certificate required at level 1: %v", err)
	}
	now := time.Now()
	cody, _, _ := p.issue(t, "Cody", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: cody.Certificate[0]}); err != nil {
		t.Fatal(err)
	}
	const certOnlyText = "This application accepts only a certificate sign-in."

	// Without a certificate the page offers nothing for it.
	br := newCertBrowser(t, p, nil)
	code, page, _ := br.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(certOnly), nil)
	if code != http.StatusForbidden || !strings.Contains(page, certOnlyText) || strings.Contains(page, `id="password"`) ||
		strings.Contains(page, "twofactor-link") || strings.Contains(page, "finger-link") {
		t.Fatalf("login page of a certificate-only service: %d\n%s", code, page)
	}
	// A finger and the password: level 2, the strong service's ticket.
	_, page, _ = br.do(http.MethodGet, casBase+"login?finger=1&service="+url.QueryEscape(strong), nil)
	code, page, loc := br.do(http.MethodPost, casBase+"login", url.Values{"csrf": {csrfRE.FindStringSubmatch(page)[1]}, "finger": {"1"},
		"service": {strong}, "username": {"cody"}, "password": {f.password},
		"fingerprint": {base64.StdEncoding.EncodeToString(fingerOf(1, 1))}})
	if code != http.StatusFound || !strings.HasPrefix(loc, strong+"?ticket=ST-") {
		t.Fatalf("finger and password at the level-2 service: %d to %q\n%s", code, loc, page)
	}
	// ... which is not the certificate the vault needs: no ticket, a page.
	code, page, loc = br.do(http.MethodGet, casBase+"login?service="+url.QueryEscape(certOnly), nil)
	if code != http.StatusForbidden || loc != "" || !strings.Contains(page, certOnlyText) {
		t.Fatalf("finger session at the certificate-only service: %d to %q\n%s", code, loc, page)
	}
	// The certificate login enters it.
	cb := newCertBrowser(t, p, &cody)
	code, page, loc = cb.certLogin(casBase, certOnly)
	if code != http.StatusFound || !strings.HasPrefix(loc, certOnly+"?ticket=ST-") {
		t.Fatalf("certificate login at the certificate-only service: %d to %q\n%s", code, loc, page)
	}
	st := strings.TrimPrefix(loc, certOnly+"?ticket=")
	if vc, answer, _ := cb.do(http.MethodGet, casBase+"p3/serviceValidate?service="+url.QueryEscape(certOnly)+"&ticket="+url.QueryEscape(st), nil); vc != http.StatusOK ||
		!strings.Contains(answer, "<cas:user>cody</cas:user>") {
		t.Fatalf("validation: %d\n%s", vc, answer)
	}
}
