package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

var oidcFieldRE = regexp.MustCompile(`name="oidc" value="([^"]+)"`)

// oidcLogin fills the login page in body (an OpenID Connect
// authorization's) with login and password.
func (b *browser) oidcLogin(casBase, body, login, password string) (int, string, *url.URL) {
	b.t.Helper()
	m, o := csrfRE.FindStringSubmatch(body), oidcFieldRE.FindStringSubmatch(body)
	if m == nil || o == nil {
		b.t.Fatalf("no login form carrying the authorization request: %s", body)
	}
	return b.post(casBase+"login", url.Values{"username": {login}, "password": {password}, "csrf": {m[1]}, "oidc": {html.UnescapeString(o[1])}})
}

// oauthCode is the error of an oauth2 exchange (its OAuth error code).
func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// TestOIDCWithGoClient: the real Go OpenID Connect client (coreos/go-oidc
// with golang.org/x/oauth2) discovers UIAS, sends a person through the
// login page (authorization code with PKCE), redeems the code, verifies
// the ID token against the published keys and reads the userinfo; a
// second authorization in the same session asks no password. Then the
// failure paths: a replayed code, a wrong secret, a PKCE mismatch, a
// redirect URI not registered or of another client, prompt=none without a
// session, bad tokens, a revoked token, and logout ending the tokens.
func TestOIDCWithGoClient(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	issuer := e.http + "/cas/oidc"
	f := e.seed("oidca", "olivia", nil, nil)
	other := e.seed("oidcb", "oscar", nil, nil)
	logoutTokens := make(chan string, 8)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/backchannel" {
			logoutTokens <- r.PostFormValue("logout_token")
			return
		}
		_, _ = io.WriteString(w, "callback")
	}))
	t.Cleanup(cb.Close)
	otherCB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "other") }))
	t.Cleanup(otherCB.Close)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, s := range []*ticketv1.ServiceDefinition{{AppId: f.appID, Name: "OIDC app", Url: cb.URL + "/callback", LogoutUrl: cb.URL + "/backchannel"},
		{AppId: f.appID, Name: "OIDC app home", Url: cb.URL + "/"},
		{AppId: other.appID, Name: "Other app", Url: otherCB.URL + "/"}} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: s}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	// Without ticket.oidc_issuer the document names the host it was asked
	// at: caches must key it by Host.
	if resp, err := http.Get(issuer + "/.well-known/openid-configuration"); err != nil || resp.Header.Get("Vary") != "Host" {
		t.Fatalf("discovery's Vary: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// claims_supported names every claim integrators.md's table lists
	// (a client that filters claims by it must not drop roles and
	// permissions; acceptc)
	var supported struct {
		Claims []string `json:"claims_supported"`
	}
	if err := provider.Claims(&supported); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"iss", "aud", "azp", "sub", "iat", "exp", "auth_time", "nonce", "sid", "acr", "preferred_username",
		"name", "org_id", "org_name", "app_account", "user_type", "groups", "roles", "permissions"} {
		if !slices.Contains(supported.Claims, c) {
			t.Fatalf("claims_supported %v lacks %q", supported.Claims, c)
		}
	}
	conf := oauth2.Config{ClientID: f.appID, ClientSecret: f.secret, Endpoint: provider.Endpoint(),
		RedirectURL: cb.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "groups"}}
	verifier := provider.Verifier(&oidc.Config{ClientID: f.appID})

	br := newBrowser(t)
	pkce := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-1", oidc.Nonce("n-1"), oauth2.S256ChallengeOption(pkce))
	code, body, at := br.get(authURL)
	if code != http.StatusOK || !strings.HasPrefix(at.String(), issuer+"/authorize") || !strings.Contains(body, "OIDC app") {
		t.Fatalf("authorize without a session: %d at %s\n%s", code, at, body)
	}
	code, body, at = br.oidcLogin(casBase, body, "olivia", f.password)
	if code != http.StatusOK || body != "callback" || at.Path != "/callback" || at.Query().Get("state") != "st-1" ||
		at.Query().Get("iss") != issuer || at.Query().Get("code") == "" {
		t.Fatalf("after login: %d at %s\n%s", code, at, body)
	}
	authCode := at.Query().Get("code")
	tok, err := conf.Exchange(ctx, authCode, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Nonce    string   `json:"nonce"`
		Login    string   `json:"preferred_username"`
		Name     string   `json:"name"`
		Account  string   `json:"app_account"`
		Groups   []string `json:"groups"`
		Acr      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != f.userID || claims.Nonce != "n-1" || claims.Login != "olivia" || claims.Name != "User olivia" ||
		claims.Account != "acct-olivia" || claims.Acr != "1" || claims.AuthTime == 0 {
		t.Fatalf("ID token: sub %s, claims %+v", idt.Subject, claims)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != f.userID {
		t.Fatalf("userinfo: %+v %v", ui, err)
	}

	t.Run("refresh", func(t *testing.T) {
		// The client's token source refreshes an expired access token.
		old := *tok
		old.Expiry = time.Now().Add(-time.Minute)
		nt, err := conf.TokenSource(ctx, &old).Token()
		if err != nil || nt.AccessToken == "" || nt.AccessToken == tok.AccessToken {
			t.Fatalf("refresh: %+v %v", nt, err)
		}
		raw, _ := nt.Extra("id_token").(string)
		if rid, err := verifier.Verify(ctx, raw); err != nil || rid.Subject != f.userID {
			t.Fatalf("refreshed ID token: %v", err)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(nt)); err != nil {
			t.Fatalf("userinfo with the refreshed token: %v", err)
		}
		bad := conf
		bad.ClientID, bad.ClientSecret = other.appID, other.secret
		if _, err := bad.TokenSource(ctx, &old).Token(); oauthCode(err) != "invalid_grant" {
			t.Fatalf("another client's refresh token: %v", err)
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		if _, err := conf.Exchange(ctx, authCode, oauth2.VerifierOption(pkce)); oauthCode(err) != "invalid_grant" {
			t.Fatalf("replayed code: %v", err)
		}
		// The replay ended the tokens the code gave (RFC 9700 §4.5).
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("the access token of a replayed code still answers")
		}
	})
	// A second authorization in the same session: no password.
	nextCode := func(t *testing.T, challenge string) string {
		t.Helper()
		code, body, at := br.get(conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(challenge)))
		if code != http.StatusOK || at.Path != "/callback" || at.Query().Get("code") == "" {
			t.Fatalf("authorization in a live session: %d at %s\n%s", code, at, body)
		}
		return at.Query().Get("code")
	}
	t.Run("wrong secret", func(t *testing.T) {
		c := nextCode(t, pkce)
		bad := conf
		bad.ClientSecret = "not-the-secret"
		if _, err := bad.Exchange(ctx, c, oauth2.VerifierOption(pkce)); oauthCode(err) != "invalid_client" {
			t.Fatalf("wrong secret: %v", err)
		}
		// The code was not used up by a client that failed to authenticate.
		if _, err := conf.Exchange(ctx, c, oauth2.VerifierOption(pkce)); err != nil {
			t.Fatalf("the code after a failed client authentication: %v", err)
		}
	})
	t.Run("PKCE mismatch", func(t *testing.T) {
		c := nextCode(t, pkce)
		if _, err := conf.Exchange(ctx, c, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthCode(err) != "invalid_grant" {
			t.Fatalf("PKCE mismatch: %v", err)
		}
	})
	t.Run("code of another client", func(t *testing.T) {
		c := nextCode(t, pkce)
		oc := conf
		oc.ClientID, oc.ClientSecret = other.appID, other.secret
		if _, err := oc.Exchange(ctx, c, oauth2.VerifierOption(pkce)); oauthCode(err) != "invalid_grant" {
			t.Fatalf("another client's code: %v", err)
		}
	})
	t.Run("code at serviceValidate", func(t *testing.T) {
		c := nextCode(t, pkce)
		_, xml, _ := br.get(casBase + "serviceValidate?service=" + url.QueryEscape(cb.URL+"/callback") + "&ticket=" + c)
		if !strings.Contains(xml, "authenticationFailure") {
			t.Fatalf("an authorization code validated as a service ticket: %s", xml)
		}
	})
	t.Run("redirect_uri not registered or of another client", func(t *testing.T) {
		for _, ru := range []string{"https://evil.example/callback", otherCB.URL + "/cb", cb.URL + "/callback/more", cb.URL + "/callback?next=x"} {
			q := url.Values{"client_id": {f.appID}, "redirect_uri": {ru}, "response_type": {"code"}, "scope": {"openid"}}
			code, body, at := br.get(issuer + "/authorize?" + q.Encode())
			if code < 400 || !strings.HasPrefix(at.String(), issuer) || strings.Contains(body, "other") {
				t.Fatalf("redirect_uri %s: %d at %s\n%s", ru, code, at, body)
			}
		}
		code, _, at := br.get(issuer + "/authorize?response_type=code")
		if code != http.StatusBadRequest || !strings.HasPrefix(at.String(), issuer) {
			t.Fatalf("no client_id: %d at %s", code, at)
		}
		// client_id or redirect_uri twice: which to send an error to? a page
		q := url.Values{"client_id": {f.appID, f.appID}, "redirect_uri": {cb.URL + "/callback"}, "response_type": {"code"}}
		if code, _, at := br.get(issuer + "/authorize?" + q.Encode()); code != http.StatusBadRequest || !strings.HasPrefix(at.String(), issuer) {
			t.Fatalf("client_id twice: %d at %s", code, at)
		}
	})
	t.Run("errors sent back to the client", func(t *testing.T) {
		q := url.Values{"client_id": {f.appID}, "redirect_uri": {cb.URL + "/callback"}, "response_type": {"token"}, "state": {"s3"}}
		_, _, at := br.get(issuer + "/authorize?" + q.Encode())
		if at.Path != "/callback" || at.Query().Get("error") != "unsupported_response_type" || at.Query().Get("state") != "s3" {
			t.Fatalf("response_type=token: at %s", at)
		}
		q.Set("response_type", "code")
		// another parameter twice (RFC 6749 §3.1): invalid_request
		q["nonce"] = []string{"n1", "n2"}
		if _, _, at = br.get(issuer + "/authorize?" + q.Encode()); at.Path != "/callback" || at.Query().Get("error") != "invalid_request" {
			t.Fatalf("nonce twice: at %s", at)
		}
		q.Del("nonce")
		q.Set("code_challenge", "short")
		q.Set("code_challenge_method", "S256")
		if _, _, at = br.get(issuer + "/authorize?" + q.Encode()); at.Query().Get("error") != "invalid_request" {
			t.Fatalf("a bad code_challenge: at %s", at)
		}
		// prompt=none without a session: login_required, no page.
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		q.Set("prompt", "none")
		if _, _, at = newBrowser(t).get(issuer + "/authorize?" + q.Encode()); at.Path != "/callback" || at.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none without a session: at %s", at)
		}
		// prompt=none with a live session: never a page, even when the
		// sign-in is older than max_age, or the hint names another person.
		q.Set("max_age", "0")
		if _, _, at = br.get(issuer + "/authorize?" + q.Encode()); at.Path != "/callback" || at.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none with max_age=0: at %s", at)
		}
		q.Del("max_age")
		q.Set("id_token_hint", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzb21lb25lLWVsc2UifQ.c2ln")
		if _, _, at = br.get(issuer + "/authorize?" + q.Encode()); at.Path != "/callback" || at.Query().Get("error") != "login_required" {
			t.Fatalf("prompt=none with another person's hint: at %s", at)
		}
		// An error for a redirect URI that is not registered exactly is a
		// page, not a redirect.
		q = url.Values{"client_id": {f.appID}, "redirect_uri": {cb.URL + "/callback/x"}, "response_type": {"token"}}
		if code, _, at := br.get(issuer + "/authorize?" + q.Encode()); code < 400 || !strings.HasPrefix(at.String(), issuer) {
			t.Fatalf("an error for a non-exact redirect_uri: %d at %s", code, at)
		}
	})
	t.Run("a re-login keeps the applications signed in", func(t *testing.T) {
		// prompt=login: the password again; the session is replaced, not
		// ended: the client's tokens still answer, no logout token comes,
		// and the new ID token names the same sid.
		tk, err := conf.Exchange(ctx, nextCode(t, pkce), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		code, body, at := br.get(conf.AuthCodeURL("st-5", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("prompt", "login")))
		if code != http.StatusOK || !strings.Contains(body, `name="password"`) {
			t.Fatalf("prompt=login: %d at %s", code, at)
		}
		if _, _, at = br.oidcLogin(casBase, body, "olivia", f.password); at.Query().Get("code") == "" {
			t.Fatalf("after the re-login: at %s", at)
		}
		nt, err := conf.Exchange(ctx, at.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tk)); err != nil {
			t.Fatalf("the token from before the re-login: %v", err)
		}
		select {
		case lt := <-logoutTokens:
			t.Fatalf("a logout token at the re-login: %s", lt)
		case <-time.After(500 * time.Millisecond):
		}
		var a, b struct{ Sid string }
		raw1, _ := tk.Extra("id_token").(string)
		raw2, _ := nt.Extra("id_token").(string)
		t1, err1 := verifier.Verify(ctx, raw1)
		t2, err2 := verifier.Verify(ctx, raw2)
		if err1 != nil || err2 != nil || t1.Claims(&a) != nil || t2.Claims(&b) != nil || a.Sid == "" || a.Sid != b.Sid {
			t.Fatalf("sid before and after the re-login: %q %q (%v %v)", a.Sid, b.Sid, err1, err2)
		}
	})
	post := func(t *testing.T, path string, form url.Values, id, secret string) (int, map[string]any, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, issuer+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out, resp.Header
	}
	t.Run("userinfo without or with a bad token", func(t *testing.T) {
		resp, err := http.Get(issuer + "/userinfo")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// no credentials, no error code (RFC 6750 §3.1)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="uias"` ||
			strings.Contains(string(body), `"error"`) {
			t.Fatalf("userinfo without a token: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "AT-forged", TokenType: "Bearer"})); err == nil {
			t.Fatal("userinfo with a forged token answered")
		}
		// The token in the form of a POST answers; in the header and the
		// form at once (or twice in the form) is invalid_request, 400
		// (RFC 6750 §2, §3.1; acceptc).
		tok, err := conf.Exchange(ctx, nextCode(t, pkce), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			form   url.Values
			header bool
			want   int
		}{
			{url.Values{"access_token": {tok.AccessToken}}, false, http.StatusOK},
			{url.Values{"access_token": {tok.AccessToken}}, true, http.StatusBadRequest},
			{url.Values{"access_token": {tok.AccessToken, tok.AccessToken}}, false, http.StatusBadRequest},
		} {
			req, _ := http.NewRequest(http.MethodPost, issuer+"/userinfo", strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.header {
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || (tc.want == http.StatusBadRequest &&
				(!strings.Contains(string(body), `"invalid_request"`) || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`))) {
				t.Fatalf("userinfo POST %v header %v: %d %v %s", tc.form, tc.header, resp.StatusCode, resp.Header, body)
			}
		}
	})
	t.Run("introspection and revocation", func(t *testing.T) {
		tk, err := conf.Exchange(ctx, nextCode(t, pkce), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		code, out, _ := post(t, "/introspect", url.Values{"token": {tk.AccessToken}}, f.appID, f.secret)
		if code != http.StatusOK || out["active"] != true || out["sub"] != f.userID || out["client_id"] != f.appID || out["username"] != "olivia" {
			t.Fatalf("introspect: %d %v", code, out)
		}
		if code, out, _ = post(t, "/introspect", url.Values{"token": {tk.AccessToken}}, other.appID, other.secret); code != http.StatusOK || out["active"] != false {
			t.Fatalf("introspect by another client: %d %v", code, out)
		}
		if code, out, hd := post(t, "/introspect", url.Values{"token": {tk.AccessToken}}, f.appID, "wrong"); code != http.StatusUnauthorized ||
			out["error"] != "invalid_client" || hd.Get("WWW-Authenticate") == "" {
			t.Fatalf("introspect with a wrong secret: %d %v", code, out)
		}
		// Another client cannot revoke it; its own client can.
		if code, _, _ = post(t, "/revoke", url.Values{"token": {tk.AccessToken}}, other.appID, other.secret); code != http.StatusOK {
			t.Fatalf("revoke by another client: %d", code)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tk)); err != nil {
			t.Fatalf("the token after another client's revocation: %v", err)
		}
		if code, _, _ = post(t, "/revoke", url.Values{"token": {tk.AccessToken}}, f.appID, f.secret); code != http.StatusOK {
			t.Fatalf("revoke: %d", code)
		}
		if code, out, _ = post(t, "/introspect", url.Values{"token": {tk.AccessToken}}, f.appID, f.secret); out["active"] != false {
			t.Fatalf("introspect after revocation: %d %v", code, out)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tk)); err == nil {
			t.Fatal("userinfo answered a revoked token")
		}
		if code, out, _ = post(t, "/token", url.Values{"grant_type": {"password"}}, f.appID, f.secret); code != http.StatusBadRequest || out["error"] != "unsupported_grant_type" {
			t.Fatalf("grant_type=password: %d %v", code, out)
		}
		// a parameter given twice is refused at every back-channel
		// endpoint, as at /authorize (RFC 6749 §3.2), not its first
		// value used (acceptc)
		for _, tc := range []struct {
			path string
			form url.Values
		}{
			{"/introspect", url.Values{"token": {"AT-x", tk.AccessToken}}},
			{"/revoke", url.Values{"token": {"AT-x", tk.AccessToken}}},
			{"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"RT-x", tk.RefreshToken}}},
			{"/token", url.Values{"grant_type": {"refresh_token", "authorization_code"}, "refresh_token": {tk.RefreshToken}}},
		} {
			code, out, _ := post(t, tc.path, tc.form, f.appID, f.secret)
			if desc, _ := out["error_description"].(string); code != http.StatusBadRequest || out["error"] != "invalid_request" || !strings.Contains(desc, "more than once") {
				t.Fatalf("%s with %v: %d %v", tc.path, tc.form, code, out)
			}
		}
	})
	t.Run("logout ends the tokens", func(t *testing.T) {
		var err error
		if tok, err = conf.Exchange(ctx, nextCode(t, pkce), oauth2.VerifierOption(pkce)); err != nil {
			t.Fatal(err)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("userinfo before logout: %v", err)
		}
		// max_age: a sign-in older than it asks for the password again.
		time.Sleep(1100 * time.Millisecond)
		q := url.Values{"client_id": {f.appID}, "redirect_uri": {cb.URL + "/callback"}, "response_type": {"code"}, "max_age": {"1"}}
		if _, body, at := br.get(issuer + "/authorize?" + q.Encode()); !strings.HasPrefix(at.String(), issuer) || !strings.Contains(body, `name="password"`) {
			t.Fatalf("max_age passed: at %s", at)
		}
		// RP-initiated logout: back to a registered URI of the client, with
		// state, only when the client is named.
		q = url.Values{"post_logout_redirect_uri": {cb.URL + "/"}, "state": {"s9"}}
		if code, _, at := newBrowser(t).get(casBase + "logout?" + q.Encode()); code != http.StatusOK || at.Path != "/cas/logout" {
			t.Fatalf("logout without client_id: %d at %s", code, at)
		}
		// The client named by the aud of id_token_hint (as Spring
		// Security sends it), to a URI registered exactly for it only.
		hint := q
		hint.Set("id_token_hint", raw)
		if _, _, at := newBrowser(t).get(casBase + "logout?" + hint.Encode()); at.Path != "/" || at.Query().Get("state") != "s9" {
			t.Fatalf("logout with id_token_hint: at %s", at)
		}
		// from a browser without the session's cookie, the hint's session
		// ended (as Keycloak does; trial11 D11)
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("the session named by id_token_hint lives on after the logout")
		}
		hint.Set("post_logout_redirect_uri", cb.URL+"/elsewhere")
		if _, _, at := newBrowser(t).get(casBase + "logout?" + hint.Encode()); at.Path != "/cas/logout" {
			t.Fatalf("logout to a URI not registered exactly: at %s", at)
		}
		hint.Set("post_logout_redirect_uri", otherCB.URL+"/")
		if _, _, at := newBrowser(t).get(casBase + "logout?" + hint.Encode()); at.Path != "/cas/logout" {
			t.Fatalf("logout to another client's URI: at %s", at)
		}
		q = url.Values{"post_logout_redirect_uri": {cb.URL + "/"}, "state": {"s9"}}
		q.Set("client_id", f.appID)
		if code, _, at := br.get(casBase + "logout?" + q.Encode()); code != http.StatusOK ||
			at.Host != strings.TrimPrefix(cb.URL, "http://") || at.Path != "/" || at.Query().Get("state") != "s9" {
			t.Fatalf("logout: %d at %s", code, at)
		}
		var disc struct {
			EndSession string `json:"end_session_endpoint"`
		}
		if err := provider.Claims(&disc); err != nil || disc.EndSession != casBase+"logout" {
			t.Fatalf("end_session_endpoint %q %v", disc.EndSession, err)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("userinfo answered the token of an ended session")
		}
		if code, out, _ := post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, f.appID, f.secret); code != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("refresh after logout: %d %v", code, out)
		}
		code, out, _ := post(t, "/introspect", url.Values{"token": {tok.AccessToken}}, f.appID, f.secret)
		if code != http.StatusOK || out["active"] != false {
			t.Fatalf("introspect after logout: %d %v", code, out)
		}
		// Back-channel logout: a logout token signed with the published keys,
		// naming the session of the ID token.
		var lt string
		select {
		case lt = <-logoutTokens:
		case <-time.After(10 * time.Second):
			t.Fatal("no back-channel logout token")
		}
		payload, err := oidc.NewRemoteKeySet(ctx, issuer+"/jwks").VerifySignature(ctx, lt)
		if err != nil {
			t.Fatalf("logout token: %v", err)
		}
		var lc struct {
			Iss, Aud, Sub, Sid string
			Nonce              *string
			Events             map[string]any
		}
		if err := json.Unmarshal(payload, &lc); err != nil {
			t.Fatal(err)
		}
		var idc struct{ Sid string }
		_ = idt.Claims(&idc)
		if lc.Iss != issuer || lc.Aud != f.appID || lc.Sub != f.userID || lc.Sid == "" || lc.Sid != idc.Sid || lc.Nonce != nil ||
			lc.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
			t.Fatalf("logout token claims %+v (ID token sid %q)", lc, idc.Sid)
		}
	})
	t.Run("RP-initiated logout by POST", func(t *testing.T) {
		// The end_session_endpoint takes a form POST as well as GET
		// (RP-Initiated Logout 1.0 §2), e.g. from a client's logout
		// button form (acceptc): the session the hint names ends and the
		// browser goes back with state.
		b2 := newBrowser(t)
		v := oauth2.GenerateVerifier()
		_, body, _ := b2.get(conf.AuthCodeURL("st-p", oidc.Nonce("n-p"), oauth2.S256ChallengeOption(v)))
		code, _, at := b2.oidcLogin(casBase, body, "olivia", f.password)
		if code != http.StatusOK || at.Query().Get("code") == "" {
			t.Fatalf("login: %d at %s", code, at)
		}
		tk, err := conf.Exchange(ctx, at.Query().Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		hintRaw, _ := tk.Extra("id_token").(string)
		form := url.Values{"id_token_hint": {hintRaw}, "post_logout_redirect_uri": {cb.URL + "/"}, "state": {"s10"}}
		if code, _, at := newBrowser(t).post(casBase+"logout", form); code != http.StatusOK || at.Path != "/" || at.Query().Get("state") != "s10" {
			t.Fatalf("POST logout: %d at %s", code, at)
		}
		if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tk)); err == nil {
			t.Fatal("the session named by a POSTed id_token_hint lives on")
		}
	})
	eventually(t, "token audit records", func() bool {
		ok, denied := false, false
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.oidc.token") {
			ok = ok || ev["result"] == "success"
			denied = denied || ev["result"] == "denied"
		}
		return ok && denied
	})
}
