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
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// consentForm answers the consent page in body with decision (allow,
// deny); without the CSRF token when noCSRF.
func (b *browser) consentForm(casBase, body, decision string, noCSRF bool) (int, string, *url.URL) {
	b.t.Helper()
	m, o := csrfRE.FindStringSubmatch(body), oidcFieldRE.FindStringSubmatch(body)
	if m == nil || o == nil || !strings.Contains(body, `id="consent-allow"`) {
		b.t.Fatalf("not the consent page: %s", body)
	}
	form := url.Values{"decision": {decision}, "oidc": {html.UnescapeString(o[1])}}
	if !noCSRF {
		form.Set("csrf", m[1])
	}
	return b.post(casBase+"oidc/consent", form)
}

// TestSelfServiceConsentAndRemoveAccess (JR/T 0185-2020 9.3.2; ADR 0036),
// over real HTTP with the Go OpenID Connect client: a client whose service
// asks consent (30 days) gets the consent page after the login, listing
// the scopes and the validity period; a form without the CSRF token
// records nothing; Deny sends access_denied back; Allow sends the code,
// and the consent is remembered (no page next time) unless prompt=consent.
// The person's profile page lists the application with its account and
// grant; "Remove access" (confirm, CSRF-checked POST) unlinks the account
// and revokes the grant: the old refresh and access tokens fail at once,
// the next authorization asks consent again, and then the service's
// access rule (an account link) refuses the person. Removing an
// application the person gave nothing answers 404.
func TestSelfServiceConsentAndRemoveAccess(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	issuer := e.http + "/cas/oidc"
	f := e.seed("selfsvc", "sally", nil, nil)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID,
		Name: "Contracts", Url: cb.URL + "/callback", RequireAccountLink: true, ConsentRequired: true,
		ConsentTtlSeconds: 30 * 24 * 3600}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: f.appID, ClientSecret: f.secret, Endpoint: provider.Endpoint(),
		RedirectURL: cb.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile"}}

	br := newBrowser(t)
	code, body, _ := br.get(conf.AuthCodeURL("st-1"))
	if code != http.StatusOK {
		t.Fatalf("authorize: %d\n%s", code, body)
	}
	code, body, _ = br.oidcLogin(casBase, body, "sally", f.password)
	if code != http.StatusOK || !strings.Contains(body, "Allow access?") || !strings.Contains(body, "Contracts") ||
		!strings.Contains(body, "Your login name, name, organisation and account type") || !strings.Contains(body, "(30 days)") {
		t.Fatalf("after the login, the consent page: %d\n%s", code, body)
	}
	consentPage := body
	if code, body, _ := br.consentForm(casBase, consentPage, "allow", true); code != http.StatusForbidden || !strings.Contains(body, "This form expired") {
		t.Fatalf("consent without the CSRF token: %d\n%s", code, body)
	}
	code, _, at := br.consentForm(casBase, consentPage, "deny", false)
	if code != http.StatusOK || at.Path != "/callback" || at.Query().Get("error") != "access_denied" || at.Query().Get("state") != "st-1" {
		t.Fatalf("deny: %d at %s", code, at)
	}
	// Asked again (nothing remembered); allowed.
	code, body, _ = br.get(conf.AuthCodeURL("st-2"))
	if code != http.StatusOK || !strings.Contains(body, "Allow access?") {
		t.Fatalf("after a denial, the consent page again: %d\n%s", code, body)
	}
	code, _, at = br.consentForm(casBase, body, "allow", false)
	if code != http.StatusOK || at.Path != "/callback" || at.Query().Get("code") == "" || at.Query().Get("state") != "st-2" {
		t.Fatalf("allow: %d at %s", code, at)
	}
	tok, err := conf.Exchange(ctx, at.Query().Get("code"))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %+v %v", tok, err)
	}
	// Remembered: the code at once; prompt=consent: the page.
	if code, _, at := br.get(conf.AuthCodeURL("st-3")); code != http.StatusOK || at.Path != "/callback" || at.Query().Get("code") == "" {
		t.Fatalf("a remembered consent: %d at %s", code, at)
	}
	if code, body, _ := br.get(conf.AuthCodeURL("st-4", oauth2.SetAuthURLParam("prompt", "consent"))); code != http.StatusOK ||
		!strings.Contains(body, "Allow access?") {
		t.Fatalf("prompt=consent: %d\n%s", code, body)
	}

	// My applications: the application, its account and the grant.
	code, body, _ = br.get(casBase + "profile")
	if code != http.StatusOK || !strings.Contains(body, "My applications") || !strings.Contains(body, "Office automation selfsvc") ||
		!strings.Contains(body, "acct-sally") || !strings.Contains(body, `data-scope="openid profile">Your user ID (to sign you in); Your login name`) {
		t.Fatalf("profile page: %d\n%s", code, body)
	}
	if code, body, _ := br.post(casBase+"profile/apps/remove", url.Values{"app": {"no-such-app"}, "csrf": {csrfRE.FindStringSubmatch(body)[1]}}); code != http.StatusNotFound {
		t.Fatalf("remove an application given nothing: %d\n%s", code, body)
	}
	code, body, _ = br.get(casBase + "profile/apps/remove?app=" + url.QueryEscape(f.appID))
	if code != http.StatusOK || !strings.Contains(body, "Remove access?") || !strings.Contains(body, "acct-sally") {
		t.Fatalf("confirm page: %d\n%s", code, body)
	}
	if code, _, _ := br.post(casBase+"profile/apps/remove", url.Values{"app": {f.appID}}); code != http.StatusForbidden {
		t.Fatalf("remove without the CSRF token: %d", code)
	}
	code, body, at = br.post(casBase+"profile/apps/remove", url.Values{"app": {f.appID}, "csrf": {csrfRE.FindStringSubmatch(body)[1]}})
	if code != http.StatusOK || at.Path != "/cas/profile" || !strings.Contains(body, "access has been removed") ||
		strings.Contains(body, "acct-sally") {
		t.Fatalf("remove: %d at %s\n%s", code, at, body)
	}
	// The old tokens fail at once.
	old := *tok
	old.Expiry = time.Now().Add(-time.Minute)
	if _, err := conf.TokenSource(ctx, &old).Token(); oauthCode(err) != "invalid_grant" {
		t.Fatalf("the refresh token after the removal: %v", err)
	}
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("the access token after the removal still answers userinfo")
	}
	// Asked again; allowed, the access rule (an account link) refuses.
	code, body, _ = br.get(conf.AuthCodeURL("st-5"))
	if code != http.StatusOK || !strings.Contains(body, "Allow access?") {
		t.Fatalf("after the removal, the consent page: %d\n%s", code, body)
	}
	// The access rule reads the link through the attribute cache, which
	// identity's link.deleted event drops (at once, asynchronously).
	code, body, at = br.consentForm(casBase, body, "allow", false)
	eventually(t, "the access rule to refuse the unlinked person", func() bool {
		if code == http.StatusForbidden && at.Path != "/callback" && strings.Contains(body, "no account") {
			return true
		}
		code, body, at = br.get(conf.AuthCodeURL("st-6"))
		return false
	})
}

// TestBrowserConsentAndMyApplications: the consent page and "My
// applications" in headless Chromium, keyboard and mouse as a person uses
// them: sign in, the consent page (accessible, the period shown), Deny
// (back with access_denied), Allow (back with a code), remembered the
// next time; the profile lists the application, Remove access with its
// confirm step empties the list, and the next authorization asks again.
func TestBrowserConsentAndMyApplications(t *testing.T) {
	chromium := chromiumPath(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("brwconsent", "carol", nil, nil)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID,
		Name: "Contracts", Url: cb.URL + "/callback", ConsentRequired: true, ConsentTtlSeconds: 30 * 24 * 3600}}); err != nil {
		t.Fatal(err)
	}
	authorize := casBase + "oidc/authorize?" + url.Values{"response_type": {"code"}, "client_id": {f.appID},
		"redirect_uri": {cb.URL + "/callback"}, "scope": {"openid profile"}, "state": {"s1"}}.Encode()

	b := newChromium(t, chromium, 760, 720)
	run, textOf, location, waitFor, accessible := b.run, b.textOf, b.location, b.waitFor, b.accessible
	const atCallback = `document.body != null && document.body.innerText.startsWith("callback")`
	run("authorize", chromedp.Navigate(authorize+"&locale=en"), chromedp.WaitVisible(chromedp.CSS("#username")))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#username"), "carol"), chromedp.SendKeys(chromedp.CSS("#password"), f.password+"\r"))
	waitFor("the consent page", `document.getElementById("consent-allow") != null`)
	if text := textOf("main"); !strings.Contains(text, "Contracts") || !strings.Contains(text, "Your login name, name, organisation and account type") ||
		!strings.Contains(textOf("#consent-until"), "(30 days)") {
		t.Fatalf("consent page: %q", text)
	}
	accessible("consent page", "en")
	run("deny", chromedp.Click(chromedp.CSS("#consent-deny")))
	waitFor("back at the client", atCallback)
	if u, _ := url.Parse(location()); u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "s1" {
		t.Fatalf("after deny: %s", u)
	}
	run("authorize again", chromedp.Navigate(authorize), chromedp.WaitVisible(chromedp.CSS("#consent-allow")))
	run("allow", chromedp.Click(chromedp.CSS("#consent-allow")))
	waitFor("back at the client", atCallback)
	if u, _ := url.Parse(location()); u.Query().Get("code") == "" {
		t.Fatalf("after allow: %s", u)
	}
	run("remembered", chromedp.Navigate(authorize))
	waitFor("back at the client without a page", atCallback)
	if u, _ := url.Parse(location()); u.Query().Get("code") == "" {
		t.Fatalf("remembered consent: %s", u)
	}

	run("profile", chromedp.Navigate(casBase+"profile?locale=en"), chromedp.WaitVisible(chromedp.CSS("#myapps")))
	if text := textOf("#myapps"); !strings.Contains(text, "acct-carol") ||
		!strings.Contains(text, "Your login name, name, organisation and account type") {
		t.Fatalf("my applications: %q", text)
	}
	accessible("profile with my applications", "en")
	run("remove access", chromedp.Click(chromedp.CSS(`a[id^="remove-"]`)), chromedp.WaitVisible(chromedp.CSS("#remove-confirm")))
	accessible("remove access confirm page", "en")
	run("confirm", chromedp.Click(chromedp.CSS("#remove-confirm")))
	waitFor("the profile again", `document.querySelector("p.info[role=status]") != null`)
	if text := textOf("main"); strings.Contains(text, "acct-carol") || !strings.Contains(text, "access has been removed") {
		t.Fatalf("after removal: %q", text)
	}
	run("asked again", chromedp.Navigate(authorize), chromedp.WaitVisible(chromedp.CSS("#consent-allow")))
}
