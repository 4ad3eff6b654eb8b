package e2e

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/identity/extauth"
	"github.com/uias/uias/services/identity/extauth/extauthtest"
)

var externalLinkRE = regexp.MustCompile(`href="([^"]+)" class="external-link" id="external-face"`)

// TestExternalAuthenticator: identity.external_authenticators "face"
// (level 1, a real gRPC server over TLS with a test CA) and "sms" (level
// 2, a second factor: the password comes with it; plain text on
// loopback). A business system's Authenticate over gRPC and REST, and a
// person at the CAS login page, sign in with them; a rejected credential
// is a wrong password (counted), an unknown type INVALID_ARGUMENT, a
// level-2 application refuses the face alone, and with the authenticator
// stopped every path answers "unavailable" (gRPC UNAVAILABLE
// EXTERNAL_AUTHENTICATOR_UNAVAILABLE, legacy -6; REST 503; the page 503),
// never a wrong credential.
func TestExternalAuthenticator(t *testing.T) {
	face := extauthtest.Start(t, extauthtest.Options{TLS: true})
	sms := extauthtest.Start(t, extauthtest.Options{})
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).ExternalAuthenticators = []extauth.Config{
		{Name: "face", Label: "Face recognition", Address: face.Addr, CAFile: face.CAFile, Level: 1},
		{Name: "sms", Label: "SMS code", Address: sms.Addr, Plaintext: true, Level: 2, RequirePassword: true},
	}
	identitycomponent.Settings(&cfg).Policy.MaxFailures, identitycomponent.Settings(&cfg).Policy.SourceFailures = 2, 1
	e := start(t, cfg)
	e.login()
	f := e.seed("facea", "faye", nil, nil)
	g := e.seed("facec", "gale", nil, nil)
	face.Enrol(g.userID, "face-match-3")
	strong := e.seed("faceb", "faye2", &identityv1.CreateAppRequest{MinAuthLevel: 2}, nil)
	face.Enrol(f.userID, "face-match-1")
	face.Enrol(strong.userID, "face-match-2")
	sms.Enrol(f.userID, "604211")

	ext := func(fx fixture, typ, cred, pw string) (*identityv1.AuthenticateResponse, error) {
		return e.auth.Authenticate(fx.ctx(), &identityv1.AuthenticateRequest{AppUserId: fx.account, Password: pw,
			AuthType: identityv1.AuthType_AUTH_TYPE_EXTERNAL, ExternalType: typ, ExternalCredential: []byte(cred)})
	}
	// gRPC
	res, err := ext(f, "face", "face-match-1", "")
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	if res.GetUser().GetId() != f.userID {
		t.Fatalf("user: %v", res.GetUser())
	}
	if c := face.Calls(); len(c) != 1 || c[0].UserID != f.userID || c[0].Login != "faye" || c[0].Type != "face" || c[0].RequestID == "" {
		t.Fatalf("what the authenticator got: %+v", c)
	}
	res, err = ext(f, "face", "face-of-another", "")
	wantResult(t, res, err, -1, identityv1.Reason_REASON_BAD_CREDENTIALS)
	// rejected credentials count as wrong passwords: two (from two
	// addresses: one alone never locks an account) lock gale
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		res, err = e.auth.Authenticate(g.ctx(), &identityv1.AuthenticateRequest{AppUserId: g.account,
			AuthType: identityv1.AuthType_AUTH_TYPE_EXTERNAL, ExternalType: "face", ExternalCredential: []byte("face-of-another"),
			ExtendInfo: map[string]string{"client_ip": ip}})
		if err != nil || res.GetResultCode() != -1 {
			t.Fatalf("rejected: %v %v", res, err)
		}
	}
	if u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: g.userID}); err != nil || !u.GetLocked() {
		t.Fatalf("two rejected credentials did not lock the account: %v %v", u, err)
	}
	res, err = ext(g, "face", "face-match-3", "")
	wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_LOCKED)
	_, err = ext(f, "iris", "x", "")
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	_, err = ext(f, "sms", "604211", "")
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	res, err = ext(f, "sms", "604211", f.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	// the level-2 application: the face alone is short; with the password
	// it is two factors
	res, err = ext(strong, "face", "face-match-2", "")
	wantResult(t, res, err, -1, identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW)
	res, err = ext(strong, "face", "face-match-2", strong.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)

	// REST
	code, out, _ := e.rest(http.MethodPost, "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"auth_type": "AUTH_TYPE_EXTERNAL", "external_type": "face",
		"external_credential": base64.StdEncoding.EncodeToString([]byte("face-match-1"))})
	if code != http.StatusOK || out["result_code"] != float64(0) {
		t.Fatalf("REST authenticate: %d %v", code, out)
	}
	code, out, _ = e.rest(http.MethodPost, "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"auth_type": "AUTH_TYPE_EXTERNAL", "external_type": "nope", "external_credential": "eA=="})
	if code != http.StatusBadRequest {
		t.Fatalf("REST unknown type: %d %v", code, out)
	}

	// The CAS page: the password form links to the face form.
	casBase := e.http + "/cas/"
	a := newCASApp(t, casBase)
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Face app", Url: a.srv.URL + "/"}}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	_, page, _ := br.get(a.srv.URL + "/page")
	m := externalLinkRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "Sign in with Face recognition") || !strings.Contains(page, `id="external-sms"`) {
		t.Fatalf("login page without the authenticators' links:\n%s", page)
	}
	code, form, _ := br.get(e.http + htmlUnescape(m[1]))
	if code != http.StatusOK || !strings.Contains(form, `id="external-form"`) || !strings.Contains(form, `name="external" value="face"`) ||
		strings.Contains(form, `id="password"`) {
		t.Fatalf("face form: %d\n%s", code, form)
	}
	post := func(body, login, cred, blob string) (int, string, *url.URL) {
		t.Helper()
		v := url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "external": {"face"}, "username": {login}}
		if s := serviceRE.FindStringSubmatch(body); s != nil {
			v.Set("service", htmlUnescape(s[1]))
		}
		if cred != "" {
			v.Set("credential", cred)
		}
		if blob != "" {
			v.Set("credential_b64", blob)
		}
		return br.post(casBase+"login", v)
	}
	code, wrong, _ := post(form, "faye", "face-of-another", "")
	if code != http.StatusUnauthorized || errorRE.FindStringSubmatch(wrong) == nil || !strings.Contains(wrong, `id="external-form"`) {
		t.Fatalf("rejected face at the page: %d\n%s", code, wrong)
	}
	// the vendor's blob (base64) instead of a typed code
	code, body, at := post(wrong, "faye", "", base64.StdEncoding.EncodeToString([]byte("face-match-1")))
	if code != http.StatusOK || !strings.HasPrefix(at.String(), a.srv.URL+"/page") || !strings.HasPrefix(body, "user=faye;") {
		t.Fatalf("face at the CAS page: %d at %s\n%s", code, at, body)
	}

	// The authenticator down: unavailable everywhere, nothing counted.
	face.Stop()
	for range 3 {
		_, err = ext(f, "face", "face-match-1", "")
		st := wantCode(t, err, codes.Unavailable, "EXTERNAL_AUTHENTICATOR_UNAVAILABLE")
		if errorInfo(st).GetMetadata()["legacy_code"] != "-6" || strings.Contains(st.Message(), "face-match") {
			t.Fatalf("unavailable: %v", st)
		}
	}
	code, out, _ = e.rest(http.MethodPost, "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"auth_type": "AUTH_TYPE_EXTERNAL", "external_type": "face",
		"external_credential": base64.StdEncoding.EncodeToString([]byte("face-match-1"))})
	if code != http.StatusServiceUnavailable {
		t.Fatalf("REST with the authenticator down: %d %v", code, out)
	}
	br = newBrowser(t)
	_, page, _ = br.get(casBase + "login?external=face")
	if code, body, _ := post(page, "faye", "face-match-1", ""); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "does not answer") {
		t.Fatalf("CAS page with the authenticator down: %d\n%s", code, body)
	}
	if u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID}); err != nil || u.GetLocked() {
		t.Fatalf("failures counted while the authenticator was down: %v %v", u, err)
	}
}
