package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// TestOIDCWithOpenIDClient: the npm openid-client 6 (the reference client
// of the Node ecosystem, built on oauth4webapi: it checks the discovery
// document, RFC 9207's iss, the ID token's signature and claims, PKCE,
// state and nonce) signs a person in, reads userinfo, refreshes,
// introspects and revokes, and sees a replayed code refused.
func TestOIDCWithOpenIDClient(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: this test drives the npm openid-client with it")
	}
	out, err := exec.Command(filepath.Join("..", "..", "scripts", "oidc-client.sh")).Output()
	if err != nil {
		t.Skipf("openid-client not installed (registry unreachable?): %v", err)
	}
	t.Setenv("OIDC_CLIENT_DIR", strings.TrimSpace(string(out)))
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oidcnode", "nora", nil, nil)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Node app", Url: cb.URL + "/cb"}}); err != nil {
		t.Fatal(err)
	}
	issuer := e.http + "/cas/oidc"
	node := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("node", append([]string{filepath.Join("testdata", "oidc-client.mjs")}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node %s: %v\n%s", args[0], err, stderr.String())
		}
		return out
	}
	var auth struct{ URL, Verifier, State, Nonce string }
	if err := json.Unmarshal(node("authurl", issuer, f.appID, f.secret, cb.URL+"/cb"), &auth); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	code, body, at := br.get(auth.URL)
	if code != http.StatusOK || !strings.Contains(body, "Node app") {
		t.Fatalf("authorize: %d at %s", code, at)
	}
	code, body, at = br.oidcLogin(e.http+"/cas/", body, "nora", f.password)
	if code != http.StatusOK || body != "callback" || at.Query().Get("code") == "" {
		t.Fatalf("after login: %d at %s\n%s", code, at, body)
	}
	var got struct {
		Sub, Login, Name, Aud, Nonce string
		UserinfoSub, RefreshedSub    string
		Active                       bool
		ActiveSub                    string
		RevokedActive                bool
		Replay                       string
	}
	if err := json.Unmarshal(node("callback", issuer, f.appID, f.secret, at.String(), auth.Verifier, auth.State, auth.Nonce), &got); err != nil {
		t.Fatal(err)
	}
	if got.Sub != f.userID || got.Login != "nora" || got.Name != "User nora" || got.Aud != f.appID || got.Nonce != auth.Nonce ||
		got.UserinfoSub != f.userID || got.RefreshedSub != f.userID || !got.Active || got.ActiveSub != f.userID ||
		got.RevokedActive || got.Replay != "invalid_grant" {
		t.Fatalf("openid-client saw %+v", got)
	}
}
