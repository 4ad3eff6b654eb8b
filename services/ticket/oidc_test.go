package ticket_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
)

func testIDKeys(t testing.TB) *ticket.IDTokenKeys {
	t.Helper()
	k, err := ticket.NewIDTokenKeys("k2", map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef"),
		"k2": []byte("fedcba9876543210fedcba9876543210")})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clientApps authenticates clients from a table (id -> secret); down
// answers every call with an unavailable identity.
type clientApps struct {
	ticket.LegacyApps
	secrets map[string]string
	down    bool
}

func (c clientApps) VerifyApp(_ context.Context, id, secret, _, _, _ string) error {
	if c.down {
		return apierr.New(apierr.Unavailable, "IDENTITY_UNAVAILABLE", "identity is down")
	}
	if want, ok := c.secrets[id]; !ok || want != secret {
		return apierr.New(apierr.Unauthenticated, "APP_AUTH_FAILED", "wrong App_ID or secret")
	}
	return nil
}

// verifyJWT checks a compact RS256 JWS against a JWKS and returns its claims.
func verifyJWT(t *testing.T, jwks []byte, tok string) map[string]any {
	t.Helper()
	var set struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	b64 := base64.RawURLEncoding
	var hdr struct{ Alg, Kid string }
	hb, _ := b64.DecodeString(parts[0])
	_ = json.Unmarshal(hb, &hdr)
	if hdr.Alg != "RS256" || hdr.Kid != set.Keys[0].Kid {
		t.Fatalf("header %+v, want RS256 with the active key %s", hdr, set.Keys[0].Kid)
	}
	n, _ := b64.DecodeString(set.Keys[0].N)
	e, _ := b64.DecodeString(set.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	sig, _ := b64.DecodeString(parts[2])
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	body, _ := b64.DecodeString(parts[1])
	if err := json.Unmarshal(body, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestIDTokenKeysAreDerivedAlike(t *testing.T) {
	a, b := testIDKeys(t), testIDKeys(t)
	ja, err := a.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jb, _ := b.JWKS()
	if string(ja) != string(jb) {
		t.Fatal("the same ring gives other keys")
	}
	var set struct {
		Keys []struct{ Kid, N string } `json:"keys"`
	}
	_ = json.Unmarshal(ja, &set)
	if len(set.Keys) != 2 || set.Keys[0].Kid == set.Keys[1].Kid || set.Keys[0].N == set.Keys[1].N {
		t.Fatalf("two ring keys, two distinct keys: %s", ja)
	}
	if n, _ := base64.RawURLEncoding.DecodeString(set.Keys[0].N); len(n)*8 != 2048 {
		t.Fatalf("modulus of %d bits", len(n)*8)
	}
	if _, err := ticket.NewIDTokenKeys("missing", map[string][]byte{"k1": make([]byte, 32)}); err == nil {
		t.Fatal("an active key not in the ring was taken")
	}
}

// oidcCB is the exact redirect URI the OpenID Connect tests register for
// app1 (svcA is only under app1's prefix service).
const oidcCB = "https://a.example.com/cb"

func oidcFixture(t *testing.T, cfg ticket.Config) *fixture {
	t.Helper()
	f := newFixture(t, cfg)
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB})
	f.svc.Registry().Invalidate()
	return f
}

func pkce() (verifier, challenge string) {
	verifier = strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// app1 is the OpenID Connect client the tests' code grants are of.
var app1 = ticket.Client{ID: "app1", Secret: "s1"}

// codeGrant signs tgt's person in to app1 (scope): the code's exchange.
func (f *fixture) codeGrant(t *testing.T, tgt, scope string) *ticket.Tokens {
	t.Helper()
	ctx := context.Background()
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
		Binding: ticket.OIDCBinding{ClientID: app1.ID, Scope: scope}})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: app1, Code: code, RedirectURI: oidcCB})
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func TestAuthorizationCodeFlow(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1", "app2": "s2"}}})
	tgt := f.login(t, "u1")
	verifier, challenge := pkce()
	issue := func(t *testing.T) string {
		t.Helper()
		code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
			Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid profile", Nonce: "n1", Challenge: challenge}})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	exchange := func(code, id, secret, verifier string) (*ticket.Tokens, error) {
		return f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: id, Secret: secret}, Code: code,
			RedirectURI: oidcCB, CodeVerifier: verifier, Issuer: "https://sso.example/cas/oidc"})
	}
	code := issue(t)
	toks, err := exchange(code, "app1", "s1", verifier)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := f.svc.JWKS()
	claims := verifyJWT(t, jwks, toks.IDToken)
	if claims["sub"] != "u1" || claims["aud"] != "app1" || claims["nonce"] != "n1" || claims["iss"] != "https://sso.example/cas/oidc" ||
		claims["preferred_username"] != "login-u1" || claims["acr"] != "1" || !strings.HasPrefix(toks.AccessToken, "AT-") {
		t.Fatalf("ID token claims %v, access token %q", claims, toks.AccessToken)
	}
	if toks.ExpiresIn != int64(ticket.DefaultAccessTTL/time.Second) {
		t.Fatalf("expires_in %d", toks.ExpiresIn)
	}
	ui, err := f.svc.UserInfo(ctx, toks.AccessToken)
	if err != nil || !strings.Contains(string(ui), `"sub":"u1"`) {
		t.Fatalf("userinfo: %s %v", ui, err)
	}
	if _, err := exchange(code, "app1", "s1", verifier); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("replayed code: %v", err)
	}
	// The replay ended the tokens the code gave.
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("the access token of a replayed code: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: ticket.Client{ID: "app1", Secret: "s1"}, RefreshToken: toks.RefreshToken}); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("the refresh token of a replayed code: %v", err)
	}
	code = issue(t)
	if toks, err = exchange(code, "app1", "s1", verifier); err != nil {
		t.Fatal(err)
	}
	if !f.audit.find("oidc.token", "success", "OK") || !f.audit.find("oidc.token", "denied", "OAUTH_INVALID_GRANT") {
		t.Errorf("audit: %+v", f.audit.evs)
	}

	// Refusals, each with a fresh code.
	for name, tc := range map[string]struct {
		id, secret, verifier string
		want                 error
	}{
		"wrong secret":       {"app1", "nope", verifier, ticket.ErrInvalidClient},
		"no secret":          {"app1", "", verifier, ticket.ErrInvalidClient},
		"another client":     {"app2", "s2", verifier, ticket.ErrInvalidGrant},
		"no verifier":        {"app1", "s1", "", ticket.ErrInvalidGrant},
		"wrong verifier":     {"app1", "s1", strings.Repeat("w", 50), ticket.ErrInvalidGrant},
		"too short verifier": {"app1", "s1", "v", ticket.ErrInvalidGrant},
	} {
		c := issue(t)
		if _, err := exchange(c, tc.id, tc.secret, tc.verifier); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A forged code: refused before any lookup.
	if _, err := exchange("ST-0000-forged", "app1", "s1", verifier); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("forged code: %v", err)
	}
	// Identity down: a fault, not invalid_client, and the code stays.
	c := issue(t)
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{down: true}})
	if _, err := exchange(c, "app1", "s1", verifier); err == nil || errors.Is(err, ticket.ErrInvalidClient) {
		t.Fatalf("identity down: %v", err)
	}
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	if _, err := exchange(c, "app1", "s1", verifier); err != nil {
		t.Fatalf("the code after identity came back: %v", err)
	}
	// Expired: past oidc_code_ttl (60s by default, not the ST's 10s).
	c = issue(t)
	f.clock.advance(30 * time.Second)
	if _, err := exchange(c, "app1", "s1", verifier); err != nil {
		t.Fatalf("a code of 30s: %v", err)
	}
	c = issue(t)
	f.clock.advance(61 * time.Second)
	if _, err := exchange(c, "app1", "s1", verifier); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("an expired code: %v", err)
	}
	// A code is not a service ticket.
	c = issue(t)
	if v := f.validate(t, c, oidcCB); v.Valid || v.Code != ticket.CodeInvalidTicketSpec {
		t.Fatalf("a code at serviceValidate: %+v", v)
	}
	// Another application's service, or a service ticket at the token
	// endpoint.
	if _, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: "https://b.example.com/cb",
		Binding: ticket.OIDCBinding{ClientID: "app1"}}); !errors.Is(err, ticket.ErrRedirectNotOfClient) {
		t.Fatalf("another application's redirect_uri: %v", err)
	}
	if _, err := exchange(f.st(t, tgt, oidcCB), "app1", "s1", ""); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("a service ticket at the token endpoint: %v", err)
	}
	// Logout ends the access token.
	if _, err := f.svc.DestroySession(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("userinfo after logout: %v", err)
	}
	if j, err := f.svc.Introspect(ctx, ticket.Client{ID: "app1", Secret: "s1"}, toks.AccessToken); err != nil || string(j) != `{"active":false}` {
		t.Fatalf("introspect after logout: %s %v", j, err)
	}
}

func TestAccessTokenStoreDown(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	tgt := f.login(t, "u1")
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
		Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid"}})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: "app1", Secret: "s1"}, Code: code, RedirectURI: oidcCB})
	if err != nil {
		t.Fatal(err)
	}
	f.ns.Shutdown()
	_, err = f.svc.UserInfo(ctx, toks.AccessToken)
	if ae, ok := apierr.As(err); !ok || ae.Reason != "TICKET_STORE_UNAVAILABLE" {
		t.Fatalf("userinfo with NATS down: %v, want TICKET_STORE_UNAVAILABLE (not an invalid token)", err)
	}
}

func TestRefreshTokens(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{TGTIdle: 10 * time.Minute, TGTHard: time.Hour})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1", "app2": "s2"}}})
	tgt := f.login(t, "u1")
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
		Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid profile", Nonce: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: "app1", Secret: "s1"}, Code: code, RedirectURI: oidcCB, Issuer: "https://i"})
	if err != nil || !strings.HasPrefix(toks.RefreshToken, ticket.PrefixRT) {
		t.Fatalf("exchange: %+v %v", toks, err)
	}
	refresh := func(id, secret, scope string) (*ticket.Tokens, error) {
		return f.svc.Refresh(ctx, ticket.RefreshRequest{Client: ticket.Client{ID: id, Secret: secret}, RefreshToken: toks.RefreshToken,
			Scope: scope, Issuer: "https://i"})
	}
	for range 1 {
		f.clock.advance(8 * time.Minute)
		nt, err := refresh("app1", "s1", "")
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if nt.AccessToken == toks.AccessToken || nt.RefreshToken != "" || nt.Scope != "openid profile" {
			t.Fatalf("refreshed: %+v", nt)
		}
		jwks, _ := f.svc.JWKS()
		if c := verifyJWT(t, jwks, nt.IDToken); c["sub"] != "u1" || c["nonce"] != nil || c["aud"] != "app1" {
			t.Fatalf("refreshed ID token: %v", c)
		}
		if _, err := f.svc.UserInfo(ctx, nt.AccessToken); err != nil {
			t.Fatalf("userinfo with a refreshed token: %v", err)
		}
	}
	if nt, err := refresh("app1", "s1", "openid"); err != nil || nt.Scope != "openid" {
		t.Fatalf("a narrower scope: %+v %v", nt, err)
	}
	if _, err := refresh("app1", "s1", "openid groups"); !errors.Is(err, ticket.ErrInvalidScope) {
		t.Fatalf("a wider scope: %v", err)
	}
	if _, err := refresh("app2", "s2", ""); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("another client's refresh: %v", err)
	}
	if _, err := refresh("app1", "bad", ""); !errors.Is(err, ticket.ErrInvalidClient) {
		t.Fatalf("a wrong secret: %v", err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.RefreshToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("a refresh token at userinfo: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: ticket.Client{ID: "app1", Secret: "s1"}, RefreshToken: toks.AccessToken}); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("an access token as a refresh token: %v", err)
	}
	// Introspection tells a refresh token; revocation ends it.
	c1 := ticket.Client{ID: "app1", Secret: "s1"}
	if j, err := f.svc.Introspect(ctx, c1, toks.RefreshToken); err != nil || !strings.Contains(string(j), `"token_type":"Refresh"`) {
		t.Fatalf("introspect a refresh token: %s %v", j, err)
	}
	if err := f.svc.Revoke(ctx, ticket.Client{ID: "app2", Secret: "s2"}, toks.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := refresh("app1", "s1", ""); err != nil {
		t.Fatalf("after another client's revocation: %v", err)
	}
	if err := f.svc.Revoke(ctx, c1, toks.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := refresh("app1", "s1", ""); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("a revoked refresh token: %v", err)
	}
	if !f.audit.find("oidc.refresh", "success", "OK") || !f.audit.find("oidc.refresh", "denied", "OAUTH_INVALID_GRANT") {
		t.Errorf("audit: %+v", f.audit.evs)
	}
	// The client's service is checked again at each refresh.
	fresh := func() {
		t.Helper()
		code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
			Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid"}})
		if err != nil {
			t.Fatal(err)
		}
		if toks, err = f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB}); err != nil {
			t.Fatal(err)
		}
	}
	fresh()
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB, MinAuthLevel: 2})
	f.svc.Registry().Invalidate()
	if _, err := refresh("app1", "s1", ""); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("refresh for an application now needing level 2: %v", err)
	}
	_ = f.services.DeleteService(ctx, "oa")
	f.svc.Registry().Invalidate()
	if _, err := refresh("app1", "s1", ""); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("refresh for a deleted service: %v", err)
	}
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB})
	f.svc.Registry().Invalidate()
	if _, err := refresh("app1", "s1", ""); err != nil {
		t.Fatalf("refresh with the service back: %v", err)
	}
	// Refreshing does not keep the session alive: it idles out 10 minutes
	// after the person last used it, and its refresh tokens with it.
	f.clock.advance(11 * time.Minute)
	if _, err := refresh("app1", "s1", ""); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("refresh after the session idled out: %v", err)
	}
	// A session's end ends its refresh tokens.
	tgt = f.login(t, "u1")
	fresh()
	if _, err := f.svc.DestroySession(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if _, err := refresh("app1", "s1", ""); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("refresh after logout: %v", err)
	}
}

// TestRedirectURIsAreExact: a redirect URI must be a registered service URL
// of the client's application exactly (not a URL under a CAS prefix, no
// query), and the token request must name the same one.
func TestRedirectURIsAreExact(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	tgt := f.login(t, "u1")
	for _, ru := range []string{svcA, oidcCB + "/more", oidcCB + "?next=https://evil.example/", "https://A.example.com:443/cb?x"} {
		if _, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: ru,
			Binding: ticket.OIDCBinding{ClientID: "app1"}}); !errors.Is(err, ticket.ErrRedirectNotOfClient) {
			t.Errorf("redirect_uri %s: %v", ru, err)
		}
	}
	// The same URL in another case of scheme and host, with the default
	// port written out, is the same URL.
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: "https://A.Example.com:443/cb",
		Binding: ticket.OIDCBinding{ClientID: "app1"}})
	if err != nil {
		t.Fatalf("the registered URL, written otherwise: %v", err)
	}
	// The token request must name the redirect URI of the authorization
	// request as it was sent.
	if _, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: "app1", Secret: "s1"}, Code: code, RedirectURI: oidcCB}); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("another redirect_uri at the token endpoint: %v", err)
	}
	// A verifier for a code without a challenge: refused (no downgrade).
	code, _, _ = f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB, Binding: ticket.OIDCBinding{ClientID: "app1"}})
	if _, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: "app1", Secret: "s1"}, Code: code, RedirectURI: oidcCB,
		CodeVerifier: strings.Repeat("v", 50)}); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("a verifier for a code without a challenge: %v", err)
	}
	// A code is no legacy ticket either, even if its service became one.
	code, _, _ = f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB, Binding: ticket.OIDCBinding{ClientID: "app1"}})
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB, LegacyScheme: 2})
	f.svc.Registry().Invalidate()
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	if v, err := f.svc.ValidateLegacy(ctx, ticket.LegacyValidate{Ticket: code, AppID: "app1", AppSecret: "s1"}); err != nil || v.Result == ticket.LegacyOK {
		t.Fatalf("a code at the legacy interface: %+v %v", v, err)
	}
}

// TestStepUpKeepsOIDCClients: a raised session (a certificate or
// authenticator app login over a password session, or a same-person
// re-login) keeps its OpenID Connect sid: the clients' tokens follow it,
// new ID tokens name the same sid, and the final logout's token names it
// too. The old TGT opens nothing.
func TestStepUpKeepsOIDCClients(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	var ended []*ticket.Session
	var mu sync.Mutex
	f.svc.SetEnding(func(s *ticket.Session, _ string) { mu.Lock(); ended = append(ended, s); mu.Unlock() })
	tgt := f.login(t, "u1")
	_ = f.st(t, tgt, svcA)
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
		Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid", Issuer: "https://i"}})
	if err != nil {
		t.Fatal(err)
	}
	c1 := ticket.Client{ID: "app1", Secret: "s1"}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB})
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := f.svc.JWKS()
	sid := verifyJWT(t, jwks, toks.IDToken)["sid"]
	if sid != ticket.SessionID(tgt) {
		t.Fatalf("ID token sid %v", sid)
	}
	// Two raises in a row.
	newTGT, sess, replaced, err := f.svc.RaiseSession(ctx, tgt, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: 2})
	if err != nil || !replaced || sess.OIDCSid() != sid {
		t.Fatalf("raise: %v %v", replaced, err)
	}
	newTGT, sess, replaced, err = f.svc.RaiseSession(ctx, newTGT, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: 1})
	if err != nil || !replaced || sess.OIDCSid() != sid || len(sess.Services) != 2 {
		t.Fatalf("second raise: %v %v, sid %s, services %+v", replaced, err, sess.OIDCSid(), sess.Services)
	}
	mu.Lock()
	if len(ended) != 0 {
		t.Fatalf("a raise logged applications out: %+v", ended)
	}
	mu.Unlock()
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("the access token after the raises: %v", err)
	}
	nt, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: c1, RefreshToken: toks.RefreshToken})
	if err != nil {
		t.Fatalf("refresh after the raises: %v", err)
	}
	if got := verifyJWT(t, jwks, nt.IDToken)["sid"]; got != sid {
		t.Fatalf("refreshed ID token sid %v, want %v", got, sid)
	}
	if _, _, err := f.svc.IssueServiceTicket(ctx, tgt, svcA, false); !errors.Is(err, ticket.ErrSessionNotFound) {
		t.Fatalf("the old TGT issued a ticket: %v", err)
	}
	// The final logout: the logout token names the sid the client knows.
	if _, err := f.svc.DestroySession(ctx, newTGT); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(ended) != 1 {
		t.Fatalf("logout: %+v", ended)
	}
	var use *ticket.ServiceUse
	for i, u := range ended[0].Services {
		if u.Issuer != "" {
			use = &ended[0].Services[i]
		}
		if strings.HasPrefix(u.Ticket, "ST-") && u.Issuer != "" {
			t.Fatalf("a code in the session record: %+v", u)
		}
	}
	if use == nil {
		t.Fatalf("the OpenID Connect use was not carried: %+v", ended[0].Services)
	}
	lt, err := f.svc.LogoutToken(ended[0], *use)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if c := verifyJWT(t, jwks, lt); c["sid"] != sid || c["aud"] != "app1" || c["iss"] != "https://i" {
		t.Fatalf("logout token: %v", c)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("the token after the final logout: %v", err)
	}
}

// failingProfiles answers no profile (identity down).
type failingProfiles struct{}

func (failingProfiles) Profile(context.Context, string, string) (ticket.Profile, error) {
	return ticket.Profile{}, apierr.New(apierr.Unavailable, "IDENTITY_UNAVAILABLE", "identity is down")
}

// TestProfileOutage: without the person's profile the ID token carries
// what the session knows (no guessed groups) and userinfo fails.
func TestProfileOutage(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	f.svc.SetProfiles(failingProfiles{})
	tgt := f.login(t, "u1")
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
		Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid profile groups"}})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: "app1", Secret: "s1"}, Code: code, RedirectURI: oidcCB})
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := f.svc.JWKS()
	c := verifyJWT(t, jwks, toks.IDToken)
	if _, has := c["groups"]; has || c["preferred_username"] != "login-u1" || c["name"] != nil {
		t.Fatalf("ID token without a profile: %v", c)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err == nil || errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("userinfo without a profile: %v", err)
	}
}

// TestReplayByAnotherClient: a replayed code ends its tokens only when
// its own client presents it again (another client presenting a stolen
// code cannot end them), whether it is used or expired by then; the
// person's record says their tokens ended.
func TestReplayByAnotherClient(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1", "app2": "s2"}}})
	tgt := f.login(t, "u1")
	c1, c2 := ticket.Client{ID: "app1", Secret: "s1"}, ticket.Client{ID: "app2", Secret: "s2"}
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB, Binding: ticket.OIDCBinding{ClientID: "app1"}})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c2, Code: code, RedirectURI: oidcCB}); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("another client's replay: %v", err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("another client's replay ended the tokens: %v", err)
	}
	// Expired by now, presented by its own client: the tokens end.
	f.clock.advance(2 * time.Minute)
	if _, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB}); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("the client's replay of an expired code: %v", err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("the tokens after the replay: %v", err)
	}
	if !f.audit.find("oidc.code.replayed", "success", "CODE_REPLAYED") {
		t.Errorf("no record of the person's ended tokens: %+v", f.audit.evs)
	}
}

// TestRefreshAccessRuleAndProfile: a refresh asks the service's access
// rule again, and fails (nothing spent) when the profile cannot be read.
func TestRefreshAccessRuleAndProfile(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB, RequiredPermission: "docs:read"})
	f.svc.Registry().Invalidate()
	a := &fakeAccess{links: map[string]bool{}, grants: map[string]bool{"u1/app1/docs:read": true}}
	f.svc.SetAccess(a)
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	tgt := f.login(t, "u1")
	c1 := ticket.Client{ID: "app1", Secret: "s1"}
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
		Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid profile"}})
	if err != nil {
		t.Fatalf("code for a permitted person: %v", err)
	}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB})
	if err != nil {
		t.Fatal(err)
	}
	refresh := func() error {
		_, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: c1, RefreshToken: toks.RefreshToken})
		return err
	}
	if err := refresh(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	f.svc.SetProfiles(failingProfiles{})
	if err := refresh(); err == nil || errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("refresh without the profile: %v, want a fault", err)
	}
	f.svc.SetProfiles(nil)
	a.mu.Lock()
	a.grants = map[string]bool{}
	a.mu.Unlock()
	if err := refresh(); !errors.Is(err, ticket.ErrInvalidGrant) {
		t.Fatalf("refresh after the permission was withdrawn: %v", err)
	}
	if !f.audit.find("oidc.refresh", "denied", ticket.ReasonServiceAccessDenied) {
		t.Errorf("audit: %+v", f.audit.evs)
	}
}

// TestProxyAfterRaise: a proxy-granting ticket of a session that a raise
// replaced still issues proxy tickets (it follows the new session), and
// none once the person has logged out.
func TestProxyAfterRaise(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ticket.Config{})
	tgt := f.login(t, "u1")
	st := f.st(t, tgt, svcA)
	v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA, IssuePGT: true, PGTURL: "https://a.example.com/pgt"})
	if err != nil || !v.Valid || v.PGT == "" {
		t.Fatalf("validate with a PGT: %+v %v", v, err)
	}
	if pt, code, msg, err := f.svc.IssueProxyTicket(ctx, v.PGT, "https://backend.example.com/api"); err != nil || pt == "" {
		t.Fatalf("proxy ticket before the raise: %q %s %s %v", pt, code, msg, err)
	}
	newTGT, _, replaced, err := f.svc.RaiseSession(ctx, tgt, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: 2})
	if err != nil || !replaced {
		t.Fatalf("raise: %v %v", replaced, err)
	}
	pt, code, msg, err := f.svc.IssueProxyTicket(ctx, v.PGT, "https://backend.example.com/api")
	if err != nil || pt == "" {
		t.Fatalf("proxy ticket after the raise: %q %s %s %v", pt, code, msg, err)
	}
	if pv, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: pt, Service: "https://backend.example.com/api", AllowProxy: true}); err != nil || !pv.Valid {
		t.Fatalf("the proxy ticket after the raise: %+v %v", pv, err)
	}
	if _, err := f.svc.DestroySession(ctx, newTGT); err != nil {
		t.Fatal(err)
	}
	if pt, _, _, err := f.svc.IssueProxyTicket(ctx, v.PGT, "https://backend.example.com/api"); err != nil || pt != "" {
		t.Fatalf("proxy ticket after logout: %q %v", pt, err)
	}
}

// TestGrantEndsEveryToken: the tokens of a code's grant, those a refresh
// gave included, end together when the code is replayed by its client or
// its refresh token revoked (RFC 6749 §4.1.2, RFC 7009 §2.1); revoking an
// access token ends that one alone (sec19 N4, L9).
func TestGrantEndsEveryToken(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	tgt := f.login(t, "u1")
	c1 := ticket.Client{ID: "app1", Secret: "s1"}
	grant := func(t *testing.T) (code string, toks *ticket.Tokens, refreshed string) {
		t.Helper()
		code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB, Binding: ticket.OIDCBinding{ClientID: "app1"}})
		if err != nil {
			t.Fatal(err)
		}
		if toks, err = f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB}); err != nil {
			t.Fatal(err)
		}
		nt, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: c1, RefreshToken: toks.RefreshToken})
		if err != nil {
			t.Fatal(err)
		}
		return code, toks, nt.AccessToken
	}
	live := func(tok string) bool {
		j, err := f.svc.Introspect(ctx, c1, tok)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(j), `"active":true`)
	}

	t.Run("replay", func(t *testing.T) {
		code, toks, refreshed := grant(t)
		if !live(refreshed) || !live(toks.AccessToken) || !live(toks.RefreshToken) {
			t.Fatal("tokens not active before the replay")
		}
		if _, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB}); !errors.Is(err, ticket.ErrInvalidGrant) {
			t.Fatalf("replayed code: %v", err)
		}
		for name, tok := range map[string]string{"first access": toks.AccessToken, "refreshed access": refreshed, "refresh": toks.RefreshToken} {
			if live(tok) {
				t.Errorf("the %s token lives after the code's replay", name)
			}
		}
		if _, err := f.svc.UserInfo(ctx, refreshed); !errors.Is(err, ticket.ErrInvalidToken) {
			t.Fatalf("userinfo with a refreshed token after the replay: %v", err)
		}
	})
	t.Run("revoke access token", func(t *testing.T) {
		_, toks, refreshed := grant(t)
		if err := f.svc.Revoke(ctx, c1, toks.AccessToken); err != nil {
			t.Fatal(err)
		}
		if live(toks.AccessToken) || !live(refreshed) || !live(toks.RefreshToken) {
			t.Fatal("revoking an access token: want that one ended, the others alive")
		}
	})
	t.Run("revoke refresh token", func(t *testing.T) {
		_, toks, refreshed := grant(t)
		if err := f.svc.Revoke(ctx, c1, toks.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if live(toks.AccessToken) || live(refreshed) || live(toks.RefreshToken) {
			t.Fatal("revoking a refresh token left tokens of its grant alive")
		}
		if _, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: c1, RefreshToken: toks.RefreshToken}); !errors.Is(err, ticket.ErrInvalidGrant) {
			t.Fatalf("a revoked refresh token: %v", err)
		}
	})
}

// heldStore holds the first call of the method named at until released.
type heldStore struct {
	ticket.Store
	at      string
	reached chan struct{}
	release chan struct{}
	held    chan struct{}
}

func (h *heldStore) hold(name string) {
	if name != h.at {
		return
	}
	select {
	case h.held <- struct{}{}: // the first call only
		close(h.reached)
		<-h.release
	default:
	}
}

func (h *heldStore) PutCodeGrant(ctx context.Context, key string, g *ticket.CodeGrant, ttl time.Duration) error {
	if g.UserID != "" { // the exchange's grant, not a replay's mark
		h.hold("PutCodeGrant")
	}
	return h.Store.PutCodeGrant(ctx, key, g, ttl)
}

func (h *heldStore) PutAccessToken(ctx context.Context, key string, t *ticket.AccessToken, ttl time.Duration) error {
	h.hold("PutAccessToken")
	return h.Store.PutAccessToken(ctx, key, t, ttl)
}

// TestReplayRacingExchange: a code presented again by its client while
// its first exchange is under way ends what that exchange gives, whether
// the replay comes before the exchange has recorded its grant (the
// exchange is refused) or while it makes the tokens (they are dead on
// arrival) (sec19 N3).
func TestReplayRacingExchange(t *testing.T) {
	for _, at := range []string{"PutCodeGrant", "PutAccessToken"} {
		t.Run(at, func(t *testing.T) {
			ctx := context.Background()
			h := &heldStore{at: at, reached: make(chan struct{}), release: make(chan struct{}), held: make(chan struct{}, 1)}
			f := newFixtureWith(t, ticket.Config{}, func(s ticket.Store) ticket.Store { h.Store = s; return h })
			register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB})
			f.svc.Registry().Invalidate()
			f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
			tgt := f.login(t, "u1")
			c1 := ticket.Client{ID: "app1", Secret: "s1"}
			code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB, Binding: ticket.OIDCBinding{ClientID: "app1"}})
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				toks *ticket.Tokens
				err  error
			}
			first := make(chan result, 1)
			go func() {
				toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB})
				first <- result{toks, err}
			}()
			<-h.reached
			if _, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: c1, Code: code, RedirectURI: oidcCB}); !errors.Is(err, ticket.ErrInvalidGrant) {
				t.Fatalf("the replay: %v", err)
			}
			close(h.release)
			r := <-first
			switch {
			case r.err != nil && !errors.Is(r.err, ticket.ErrInvalidGrant):
				t.Fatalf("the first exchange: %v", r.err)
			case r.err == nil:
				for _, tok := range []string{r.toks.AccessToken, r.toks.RefreshToken} {
					if j, err := f.svc.Introspect(ctx, c1, tok); err != nil || !strings.Contains(string(j), `"active":false`) {
						t.Fatalf("a token of the raced exchange: %s %v", j, err)
					}
				}
				if _, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: c1, RefreshToken: r.toks.RefreshToken}); !errors.Is(err, ticket.ErrInvalidGrant) {
					t.Fatalf("refresh with the raced exchange's token: %v", err)
				}
			}
			if at == "PutCodeGrant" && r.err == nil {
				t.Fatal("the exchange raced before its grant was recorded answered tokens")
			}
			if !f.audit.find("oidc.code.replayed", "success", "CODE_REPLAYED") {
				t.Errorf("no record of the person's ended tokens: %+v", f.audit.evs)
			}
		})
	}
}

// TestEndSessionOfIDToken: RP-initiated logout without the session's
// cookie ends the session an ID token signed here names, expired or not;
// a token of another client, forged or not of this deployment ends
// nothing (trial11 D11).
func TestEndSessionOfIDToken(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	tgt := f.login(t, "u1")
	toks := f.codeGrant(t, tgt, "openid")
	parts := strings.Split(toks.IDToken, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1","sid":"x","aud":"app1"}`)) + "." + parts[2]
	other, err := ticket.NewIDTokenKeys("k", map[string][]byte{"k": []byte("another deployment's seed, 32 bytes")})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Sign(map[string]any{"sub": "u1", "sid": ticket.SessionID(tgt), "aud": "app1"})
	// signed here, but a back-channel logout token, or with no audience
	// (review sec20 L1)
	logoutToken, _ := testIDKeys(t).SignTyped("logout+jwt", map[string]any{"sub": "u1", "sid": ticket.SessionID(tgt), "aud": "app1"})
	noAud, _ := testIDKeys(t).Sign(map[string]any{"sub": "u1", "sid": ticket.SessionID(tgt)})
	for name, hint := range map[string]string{"garbage": "x.y.z", "forged claims": forged, "another deployment's key": foreign,
		"a logout token": logoutToken, "no audience": noAud} {
		if _, err := f.svc.EndSessionOfIDToken(ctx, hint, ""); !errors.Is(err, ticket.ErrInvalidToken) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := f.svc.EndSessionOfIDToken(ctx, toks.IDToken, "app2"); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("another client's ID token: %v", err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("the session ended by a refused hint: %v", err)
	}
	f.clock.advance(70 * time.Minute) // the ID token has expired: still a hint
	if ok, err := f.svc.EndSessionOfIDToken(ctx, toks.IDToken, "app1"); err != nil || !ok {
		t.Fatalf("logout by the ID token: %v %v", ok, err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("the access token after the logout: %v", err)
	}
	if ok, err := f.svc.EndSessionOfIDToken(ctx, toks.IDToken, ""); err != nil || ok {
		t.Fatalf("the same logout again: %v %v", ok, err)
	}
	// the store down: a fault, not "no session"
	other2 := f.codeGrant(t, f.login(t, "u2"), "openid")
	f.ns.Shutdown()
	if ok, err := f.svc.EndSessionOfIDToken(ctx, other2.IDToken, ""); ok || err == nil || errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("logout by an ID token with NATS down: %v %v, want a store fault", ok, err)
	}
}

// TestGrantOutlivesItsTokens: the grant lives as long as a token of it
// may: an access token a refresh gave after a raise (the session's hard
// expiry later) stays active until its own expiry (review sec20 L4).
func TestGrantOutlivesItsTokens(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{TGTIdle: time.Hour, TGTHard: 4 * time.Second, AccessTTL: time.Hour})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	tgt := f.login(t, "u1")
	c1 := app1
	toks := f.codeGrant(t, tgt, "openid")
	time.Sleep(2 * time.Second) // the records' TTLs run on the real clock
	if _, _, replaced, err := f.svc.RaiseSession(ctx, tgt, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: 2}); err != nil || !replaced {
		t.Fatalf("raise: %v %v", replaced, err)
	}
	nt, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: c1, RefreshToken: toks.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past the first session's hard expiry
	if j, err := f.svc.Introspect(ctx, c1, nt.AccessToken); err != nil || !strings.Contains(string(j), `"active":true`) {
		t.Fatalf("the access token a refresh gave after the raise (expires_in %d s): %s %v", nt.ExpiresIn, j, err)
	}
}

// failGrantDelete fails the first DeleteCodeGrant (a store timeout).
type failGrantDelete struct {
	ticket.Store
	failed bool
}

func (s *failGrantDelete) DeleteCodeGrant(ctx context.Context, key string) error {
	if !s.failed {
		s.failed = true
		return ticket.ErrConflict // any store error
	}
	return s.Store.DeleteCodeGrant(ctx, key)
}

// TestRevokeRetryEndsTheGrant: a revocation of a refresh token whose grant
// could not be ended fails, and the client's retry ends it (review sec20
// L3).
func TestRevokeRetryEndsTheGrant(t *testing.T) {
	ctx := context.Background()
	w := &failGrantDelete{}
	f := newFixtureWith(t, ticket.Config{}, func(s ticket.Store) ticket.Store { w.Store = s; return w })
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB})
	f.svc.Registry().Invalidate()
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	tgt := f.login(t, "u1")
	c1 := app1
	toks := f.codeGrant(t, tgt, "")
	if err := f.svc.Revoke(ctx, c1, toks.RefreshToken); err == nil {
		t.Fatal("a revocation whose grant was not ended answered success")
	}
	if err := f.svc.Revoke(ctx, c1, toks.RefreshToken); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if j, err := f.svc.Introspect(ctx, c1, toks.AccessToken); err != nil || !strings.Contains(string(j), `"active":false`) {
		t.Fatalf("the grant's access token after the retried revocation: %s %v", j, err)
	}
}

// TestTokensEndWithTheirApplication: suspending the client's application
// ends its access and refresh tokens at once (userinfo, introspection),
// resuming it brings back those not expired, and deleting it ends them for
// good (JR/T 0185-2020 9.2.1; gap2 G11: a suspended or deleted client
// kept reading the person's claims until the token expired). A userinfo
// call's record names the client and the person (gap2 G17).
func TestTokensEndWithTheirApplication(t *testing.T) {
	ctx := context.Background()
	f := oidcFixture(t, ticket.Config{})
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	toks := f.codeGrant(t, f.login(t, "u1"), "")
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range f.audit.evs {
		if ev.API == "oidc.userinfo" && ev.AppID == "app1" && ev.Subject == "user:u1" && ev.Result == "success" {
			found = true
		}
	}
	if !found {
		t.Errorf("no oidc.userinfo record naming the client and the person: %+v", f.audit.evs)
	}
	suspended := true
	f.svc.Registry().SetSuspended(func(app string) bool { return suspended && app == "app1" })
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("userinfo of a suspended application's token: %v", err)
	}
	suspended = false
	f.svc.Registry().Invalidate()
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("userinfo once the application is active again: %v", err)
	}
	if _, err := f.svc.DeleteAppServices(ctx, "app1", ticket.CauseAppDeleted); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !errors.Is(err, ticket.ErrInvalidToken) {
		t.Fatalf("userinfo of a deleted application's token: %v", err)
	}
	out, err := f.svc.Introspect(ctx, app1, toks.RefreshToken)
	if err != nil || string(out) != `{"active":false}` {
		t.Fatalf("introspection of a deleted application's refresh token: %s %v", out, err)
	}
}
