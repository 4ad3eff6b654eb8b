package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/reqsig"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestAppInterfaceGrants: an application granted authz checks only is
// refused Authenticate (gRPC and REST) and authz's ListSubjects, also when
// its credentials were just verified for a check (authz's cache), each
// refusal saying what it is granted; granted authenticate later, it
// authenticates. An access period that has ended refuses every call, one
// not yet begun too.
func TestAppInterfaceGrants(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("grants", "gus", &identityv1.CreateAppRequest{GrantedApis: []string{"authz.check"}}, nil)
	az := authzv1.NewAuthzServiceClient(e.conn)
	authzOA(t, authzv1.NewAuthzAdminServiceClient(e.conn), e.adm(), f.appID)

	_, err := e.authPW(f, f.account, f.password)
	st := wantCode(t, err, codes.PermissionDenied, "API_NOT_GRANTED")
	if !strings.Contains(st.Message(), `"authenticate"`) || !strings.Contains(st.Message(), "authz.check") {
		t.Fatalf("refusal: %q", st.Message())
	}
	code, out, _ := e.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"appUserId": f.account, "password": f.password})
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out), "API_NOT_GRANTED") {
		t.Fatalf("REST Authenticate: %d %v", code, out)
	}
	if _, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read"}); err != nil {
		t.Fatalf("a granted check: %v", err)
	}
	// The OpenID Connect token endpoint answers invalid_client (its
	// documented error) saying why, not "present the App_ID and secret"
	// to a client whose secret is right (acceptc); its description keeps
	// to RFC 6749's characters (no double quotes). A wrong secret still
	// learns nothing of the grants.
	for _, tc := range []struct{ secret, want, not string }{
		{f.secret, "not granted the 'oidc' interface", `"`},
		{"wrong-" + f.secret, "present the application's App_ID and secret", "granted"},
	} {
		if code, out := tokenRefusal(t, e, f.appID, tc.secret); code != http.StatusUnauthorized || out["error"] != "invalid_client" ||
			!strings.Contains(out["error_description"], tc.want) || strings.Contains(out["error_description"], tc.not) {
			t.Fatalf("token endpoint, secret %q: %d %v", tc.secret, code, out)
		}
	}
	// An application that must sign is told that the token endpoint
	// cannot take signatures, not asked for signature headers.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, err := reqsig.PublicKeyPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	fs := e.seed("grants-signer", "sid", &identityv1.CreateAppRequest{SigningKeys: [][]byte{[]byte(pub)}, RequireSignedRequests: true}, nil)
	if code, out := tokenRefusal(t, e, fs.appID, fs.secret); code != http.StatusUnauthorized || out["error"] != "invalid_client" ||
		!strings.Contains(out["error_description"], "cannot take") || strings.Contains(out["error_description"], "X-Uias-Signature") {
		t.Fatalf("token endpoint, an application that must sign: %d %v", code, out)
	}
	// The credentials are in authz's cache now; the grant still holds.
	_, err = az.ListSubjects(f.ctx(), &authzv1.ListSubjectsRequest{Resource: "docs.inbox", Operation: "read"})
	wantCode(t, err, codes.PermissionDenied, "API_NOT_GRANTED")

	// Granted authenticate as well: it authenticates.
	app, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"granted_apis"},
		GrantedApis: []string{"authz.check", "authenticate"}})
	if err != nil || len(app.GetGrantedApis()) != 2 {
		t.Fatalf("grant: %v %v", app, err)
	}
	wantResult(t, mustAuth(e.authPW(f, f.account, f.password)), nil, 0, identityv1.Reason_REASON_OK)
	// Unknown interfaces are refused, naming the field.
	_, err = e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"granted_apis"},
		GrantedApis: []string{"everything"}})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")

	// The access period ended yesterday: every call is refused.
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"access_until"},
		AccessUntil: timestamppb.New(time.Now().Add(-24 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	_, err = e.authPW(f, f.account, f.password)
	wantCode(t, err, codes.PermissionDenied, "APP_ACCESS_EXPIRED")
	eventually(t, "authz to refuse an ended access period", func() bool {
		_, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read"})
		return err != nil && strings.Contains(err.Error(), "access ended")
	})
	// A period that begins tomorrow, with no end.
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"access_until", "access_from"},
		AccessFrom: timestamppb.New(time.Now().Add(24 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	_, err = e.authPW(f, f.account, f.password)
	wantCode(t, err, codes.PermissionDenied, "APP_ACCESS_NOT_BEGUN")
	got, err := e.admin.GetApp(e.adm(), &identityv1.GetAppRequest{Id: f.appID})
	if err != nil || got.GetAccessFrom() == nil || got.GetAccessUntil() != nil {
		t.Fatalf("period: %v %v", got, err)
	}
}

// tokenRefusal posts a refresh_token grant of an unknown token to the
// OpenID Connect token endpoint as appID with secret (HTTP Basic).
func tokenRefusal(t *testing.T, e *env, appID, secret string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http+"/cas/oidc/token",
		strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"RT-x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
