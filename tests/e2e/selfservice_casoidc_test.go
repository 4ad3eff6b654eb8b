package e2e

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// TestSelfServiceConsentCASAndOIDCApart (review sec31c L1), over real HTTP:
// the CAS consent and the OpenID Connect consent of one application are
// two. A person who allowed the OpenID Connect page ("openid profile") is
// still shown the CAS page, which lists more (groups, account type), and a
// CAS gateway login goes back without a ticket until they allow it; a
// person who allowed the CAS page is still shown the OpenID Connect page.
// An OpenID Connect client asking the scope "cas" is answered
// invalid_scope. "My applications" words both consents (en, zh-CN), and
// "Remove access" removes both: the CAS page is shown again. A request
// without scope asks consent to openid: the CAS consent does not cover it.
func TestSelfServiceConsentCASAndOIDCApart(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("casoidc", "carmen", nil, nil)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	svc := cb.URL + "/callback"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID,
		Name: "Contracts", Url: svc, ConsentRequired: true}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.http+"/cas/oidc")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: f.appID, ClientSecret: f.secret, Endpoint: provider.Endpoint(), RedirectURL: svc,
		Scopes: []string{oidc.ScopeOpenID, "profile"}}
	login := casBase + "login?service=" + url.QueryEscape(svc)
	casPage := func(body string) bool {
		return strings.Contains(body, "Allow access?") && strings.Contains(body, "<li>The groups you belong to</li>") &&
			strings.Contains(body, "<li>Whether your account is a person&#39;s or a unit&#39;s</li>") &&
			consentServiceRE.MatchString(body) && !oidcFieldRE.MatchString(body)
	}

	br := newBrowser(t)
	// OpenID Connect first: its page, allowed.
	code, body, _ := br.get(conf.AuthCodeURL("st-1"))
	if code != http.StatusOK {
		t.Fatalf("authorize: %d\n%s", code, body)
	}
	code, body, _ = br.oidcLogin(casBase, body, "carmen", f.password)
	if code != http.StatusOK || !strings.Contains(body, "Your login name, name, organisation and account type") ||
		strings.Contains(body, "The groups you belong to") {
		t.Fatalf("the OpenID Connect consent page: %d\n%s", code, body)
	}
	code, _, at := br.consentForm(casBase, body, "allow", false)
	if code != http.StatusOK || at.Path != "/callback" || at.Query().Get("code") == "" {
		t.Fatalf("allow (OpenID Connect): %d at %s", code, at)
	}
	// The OpenID Connect consent does not let a CAS ticket through.
	if code, _, at := br.get(login + "&gateway=true"); code != http.StatusOK || at.Path != "/callback" || at.Query().Get("ticket") != "" {
		t.Fatalf("CAS gateway with only the OpenID Connect consent: %d at %s", code, at)
	}
	code, body, _ = br.get(login)
	if code != http.StatusOK || !casPage(body) {
		t.Fatalf("CAS login with only the OpenID Connect consent, want the CAS page: %d\n%s", code, body)
	}
	st := br.allowCAS(casBase, body)
	code, body, _ = br.get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(svc) + "&ticket=" + url.QueryEscape(st))
	if code != http.StatusOK || !strings.Contains(body, "<cas:login>carmen</cas:login>") {
		t.Fatalf("validate: %d\n%s", code, body)
	}
	// Both remembered: no page either way.
	if code, _, at := br.get(login + "&gateway=true"); code != http.StatusOK || at.Query().Get("ticket") == "" {
		t.Fatalf("CAS gateway with the CAS consent: %d at %s", code, at)
	}
	if code, _, at := br.get(conf.AuthCodeURL("st-2")); code != http.StatusOK || at.Query().Get("code") == "" {
		t.Fatalf("OpenID Connect with its consent: %d at %s", code, at)
	}
	// The CAS consent's scope is not an OpenID Connect client's to ask.
	code, _, at = br.get(conf.AuthCodeURL("st-3", oauth2.SetAuthURLParam("scope", "openid cas")))
	if code != http.StatusOK || at.Path != "/callback" || at.Query().Get("error") != "invalid_scope" || at.Query().Get("code") != "" ||
		!strings.Contains(at.Query().Get("error_description"), "CAS services") {
		t.Fatalf("scope cas over OpenID Connect: %d at %s", code, at)
	}

	// My applications, in words, in both languages.
	for locale, want := range map[string]string{
		"zh-CN": "单点登录该应用，并向其提供同意页所列的您的信息; 您的用户标识（用于登录）; 您的登录名、姓名、所属单位和账号类型",
		"en": "Single sign-on to the application, with the details about you that its consent page listed; " +
			"Your user ID (to sign you in); Your login name, name, organisation and account type",
	} {
		code, body, _ = br.get(casBase + "profile?locale=" + locale)
		if code != http.StatusOK || !strings.Contains(html.UnescapeString(body), `data-scope="cas openid profile">`+want+"</span>") {
			t.Fatalf("my applications (%s): %d\n%s", locale, code, body)
		}
	}
	_, body, _ = br.get(casBase + "profile?locale=en")
	code, body, at = br.post(casBase+"profile/apps/remove", url.Values{"app": {f.appID}, "csrf": {csrfRE.FindStringSubmatch(body)[1]}})
	if code != http.StatusOK || at.Path != "/cas/profile" || !strings.Contains(body, "access has been removed") {
		t.Fatalf("remove: %d at %s\n%s", code, at, body)
	}
	// Removed: the CAS page again; allowed, the OpenID Connect page is
	// still shown (a CAS consent grants no OpenID Connect scope).
	if code, _, at := br.get(login + "&gateway=true"); code != http.StatusOK || at.Query().Get("ticket") != "" {
		t.Fatalf("CAS gateway after the removal: %d at %s", code, at)
	}
	code, body, _ = br.get(login)
	if code != http.StatusOK || !casPage(body) {
		t.Fatalf("CAS login after the removal, want the CAS page: %d\n%s", code, body)
	}
	br.allowCAS(casBase, body)
	code, body, _ = br.get(conf.AuthCodeURL("st-4"))
	if code != http.StatusOK || !strings.Contains(body, "Allow access?") || !oidcFieldRE.MatchString(body) ||
		!strings.Contains(body, "Your login name, name, organisation and account type") {
		t.Fatalf("OpenID Connect with only the CAS consent, want its page: %d\n%s", code, body)
	}
	// No scope at all (a plain OAuth request) asks consent to openid
	// (review sec32a L1): the CAS consent does not cover it, and Allow
	// records openid, which then does.
	noScope := conf.AuthCodeURL("st-5", oauth2.SetAuthURLParam("scope", ""))
	code, body, _ = br.get(noScope)
	if code != http.StatusOK || !strings.Contains(body, "Allow access?") || !oidcFieldRE.MatchString(body) ||
		!strings.Contains(body, "Your user ID (to sign you in)") {
		t.Fatalf("OAuth without scope with only the CAS consent, want the OpenID Connect page: %d\n%s", code, body)
	}
	code, _, at = br.consentForm(casBase, body, "allow", false)
	if code != http.StatusOK || at.Path != "/callback" || at.Query().Get("code") == "" {
		t.Fatalf("allow (no scope): %d at %s", code, at)
	}
	if code, _, at := br.get(noScope); code != http.StatusOK || at.Path != "/callback" || at.Query().Get("code") == "" {
		t.Fatalf("OAuth without scope after its Allow, want a code without the page: %d at %s", code, at)
	}
}

// allowCAS answers Allow on the CAS consent page in body and returns the
// service ticket the browser was sent back with.
func (b *browser) allowCAS(casBase, body string) string {
	b.t.Helper()
	m, s := csrfRE.FindStringSubmatch(body), consentServiceRE.FindStringSubmatch(body)
	if m == nil || s == nil {
		b.t.Fatalf("not the CAS consent page: %s", body)
	}
	code, _, at := b.post(casBase+"oidc/consent", url.Values{"decision": {"allow"}, "service": {html.UnescapeString(s[1])}, "csrf": {m[1]}})
	st := at.Query().Get("ticket")
	if code != http.StatusOK || at.Path != "/callback" || st == "" {
		b.t.Fatalf("allow (CAS): %d at %s", code, at)
	}
	return st
}
