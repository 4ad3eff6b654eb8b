package e2e

import (
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

var consentServiceRE = regexp.MustCompile(`name="service" value="([^"]*)"`)

// TestSelfServiceConsentCAS (review sec30c H1): a client asking consent is
// not reached over CAS without it. /cas/login?service=<its URL>&gateway=true
// in a live session goes back without a ticket; without gateway the same
// consent page is shown; Allow sends a ticket that validates. The page lists
// what the service's release policy lets it receive (the name masked, no
// user ID), and the validation answers just that.
func TestSelfServiceConsentCAS(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("selfcas", "carla", nil, nil)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	svc := cb.URL + "/callback"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID,
		Name: "Contracts", Url: svc, ConsentRequired: true, ReleaseAttributes: []string{"login", "displayName"},
		MaskedAttributes: []string{"displayName"}}}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	login := casBase + "login?service=" + url.QueryEscape(svc)
	code, body, _ := br.get(login)
	if code != http.StatusOK {
		t.Fatalf("login page: %d\n%s", code, body)
	}
	code, body, _ = br.loginForm(casBase, body, "carla", f.password)
	if code != http.StatusOK || !strings.Contains(body, "Allow access?") || !strings.Contains(body, "<li>Your login name</li>") ||
		!strings.Contains(body, "<li>Your name (masked: only its first character is shown)</li>") ||
		strings.Contains(body, "Your user ID") || strings.Contains(body, "organisation") {
		t.Fatalf("after the CAS login, the consent page: %d\n%s", code, body)
	}
	consentPage := body
	// The bypass: gateway=true in the live session gives no ticket.
	code, _, at := br.get(login + "&gateway=true")
	if code != http.StatusOK || at.Path != "/callback" || at.Query().Get("ticket") != "" {
		t.Fatalf("gateway without consent: %d at %s", code, at)
	}
	m, s := csrfRE.FindStringSubmatch(consentPage), consentServiceRE.FindStringSubmatch(consentPage)
	if m == nil || s == nil {
		t.Fatalf("no consent form for the service: %s", consentPage)
	}
	code, _, at = br.post(casBase+"oidc/consent", url.Values{"decision": {"allow"}, "service": {html.UnescapeString(s[1])}, "csrf": {m[1]}})
	st := at.Query().Get("ticket")
	if code != http.StatusOK || at.Path != "/callback" || st == "" {
		t.Fatalf("allow: %d at %s", code, at)
	}
	code, body, _ = br.get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(svc) + "&ticket=" + url.QueryEscape(st))
	if code != http.StatusOK || !strings.Contains(body, "authenticationSuccess") || !strings.Contains(body, "<cas:login>carla</cas:login>") ||
		!strings.Contains(body, "<cas:displayName>") || strings.Contains(body, "<cas:userId>") || strings.Contains(body, "<cas:orgName>") {
		t.Fatalf("validate: %d\n%s", code, body)
	}
	// Remembered: gateway now gives a ticket.
	if code, _, at := br.get(login + "&gateway=true"); code != http.StatusOK || at.Query().Get("ticket") == "" {
		t.Fatalf("gateway with consent: %d at %s", code, at)
	}
}

// TestSelfServiceConsentCASRenew: a CAS login with renew=true to a client
// asking consent goes through the consent page and still sends a ticket
// from that new login: validation with renew=true accepts it and answers
// isFromNewLogin true. A ticket of the same session without a new login
// (the next one, consent remembered) is refused by a renew validation.
func TestSelfServiceConsentCASRenew(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("selfrenew", "rita", nil, nil)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	svc := cb.URL + "/callback"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID,
		Name: "Contracts", Url: svc, ConsentRequired: true}}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	code, body, _ := br.get(casBase + "login?renew=true&service=" + url.QueryEscape(svc))
	if code != http.StatusOK || !strings.Contains(body, `name="renew" value="true"`) {
		t.Fatalf("renew login page: %d\n%s", code, body)
	}
	code, body, _ = br.loginForm(casBase, body, "rita", f.password)
	if code != http.StatusOK || !strings.Contains(body, "Allow access?") {
		t.Fatalf("after the renew login, the consent page: %d\n%s", code, body)
	}
	m, s := csrfRE.FindStringSubmatch(body), consentServiceRE.FindStringSubmatch(body)
	if m == nil || s == nil {
		t.Fatalf("no consent form: %s", body)
	}
	// The page carries the renew login's nonce: only its Allow takes the
	// new login (review sec31c M1).
	n := regexp.MustCompile(`name="renew_nonce" value="([^"]+)"`).FindStringSubmatch(body)
	if n == nil {
		t.Fatalf("the consent page after a renew login has no renew_nonce: %s", body)
	}
	code, _, at := br.post(casBase+"oidc/consent", url.Values{"decision": {"allow"}, "service": {html.UnescapeString(s[1])}, "csrf": {m[1]},
		"renew_nonce": {n[1]}})
	st := at.Query().Get("ticket")
	if code != http.StatusOK || st == "" {
		t.Fatalf("allow: %d at %s", code, at)
	}
	validate := func(st string) string {
		t.Helper()
		_, body, _ := br.get(casBase + "p3/serviceValidate?renew=true&service=" + url.QueryEscape(svc) + "&ticket=" + url.QueryEscape(st))
		return body
	}
	if body := validate(st); !strings.Contains(body, "authenticationSuccess") || !strings.Contains(body, "<cas:isFromNewLogin>true</cas:isFromNewLogin>") {
		t.Fatalf("renew validation of the ticket after the consent page:\n%s", body)
	}
	// The next ticket (consent remembered, no new login): refused with renew.
	_, _, at = br.get(casBase + "login?service=" + url.QueryEscape(svc))
	if st2 := at.Query().Get("ticket"); st2 == "" || !strings.Contains(validate(st2), "INVALID_TICKET_SPEC") {
		t.Fatalf("a ticket without a new login, validated with renew: at %s", at)
	}
}
