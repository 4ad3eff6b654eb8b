package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestGradedAuthentication over the real server (maritime SSO design 004
// §2.1.2.2): a person required to use two factors is refused a password
// alone by Authenticate (gRPC and REST) with one answer whether the
// password was right or not, and at the CAS page after the right
// password, told why (a wrong one is the usual answer); set back to any
// method over REST, the password signs them in; with an authenticator app
// and level 2 again, their password session ends and the page asks for
// the code. An application requiring
// two factors refuses the password alone for everyone; a person required
// to use a certificate is told so at the page.
func TestGradedAuthentication(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("graded", "gia", nil, func(r *identityv1.CreateUserRequest) { r.MinAuthLevel = 2 })
	u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
	if err != nil || u.GetMinAuthLevel() != 2 {
		t.Fatalf("created person's level: %v %v", u, err)
	}

	// Authenticate: the right and a wrong password, one answer (-1).
	right, err := e.authPW(f, f.account, f.password)
	wantResult(t, right, err, -1, identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW)
	wrong, err := e.authPW(f, f.account, "Wr0ng-Pass!42")
	wantResult(t, wrong, err, -1, identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW)
	if right.GetMessage() != wrong.GetMessage() || right.GetUser() != nil || wrong.GetUser() != nil {
		t.Fatalf("the answers differ: %v / %v", right, wrong)
	}
	code, out, _ := e.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"appUserId": f.account, "password": f.password,
		"authType": "AUTH_TYPE_PASSWORD"})
	if code != http.StatusOK || out["reason"] != "REASON_AUTH_LEVEL_TOO_LOW" || fmt.Sprint(out["result_code"]) != "-1" {
		t.Fatalf("REST Authenticate: %d %v", code, out)
	}

	// The CAS page: the right password is refused with the reason, no
	// session; a wrong one is the usual answer.
	br := newBrowser(t)
	_, body, _ := br.get(casBase + "login")
	code, body, _ = br.loginForm(casBase, body, f.login, "Wr0ng-Pass!42")
	if code != http.StatusUnauthorized || strings.Contains(body, "two factors") {
		t.Fatalf("wrong password at the page: %d\n%s", code, body)
	}
	code, body, _ = br.loginForm(casBase, body, f.login, f.password)
	if code != http.StatusForbidden || !strings.Contains(body, "must sign in with two factors or a certificate") || hasCookie(br, casBase, "TGC") {
		t.Fatalf("right password at the page: %d\n%s", code, body)
	}

	// Any method again, set over REST: the password signs in.
	code, out, _ = e.rest(http.MethodPatch, "/v1/users/"+f.userID, map[string]string{"Authorization": "Bearer " + e.token},
		map[string]any{"updateMask": []string{"min_auth_level"}, "minAuthLevel": 1})
	if code != http.StatusOK || fmt.Sprint(out["min_auth_level"]) != "1" {
		t.Fatalf("REST update: %d %v", code, out)
	}
	wantResult(t, mustAuth(e.authPW(f, f.account, f.password)), nil, 0, identityv1.Reason_REASON_OK)
	code, _, at := br.loginForm(casBase, body, f.login, f.password)
	if code != http.StatusOK || at.Path != "/cas/portal" || !hasCookie(br, casBase, "TGC") {
		t.Fatalf("level 1 at the page: %d at %s", code, at)
	}

	// With an authenticator app set up, level 2 again: the page asks for
	// the code after the password, and the code signs in; Authenticate
	// takes the password with the code.
	key, step := profileTOTP(t, br, casBase, f.password)
	setLevel := func(l int32) {
		t.Helper()
		if _, err := e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: f.userID, UpdateMask: []string{"min_auth_level"},
			MinAuthLevel: l}); err != nil {
			t.Fatal(err)
		}
	}
	setLevel(2)
	// The password session opened before does not reach the new level:
	// it ends (ticket follows identity's change event).
	sessions := ticketv1.NewTicketSessionsServiceClient(e.conn)
	eventually(t, "the one-factor session to end", func() bool {
		l, err := sessions.ListSessions(e.adm(), &ticketv1.ListSessionsRequest{UserId: f.userID})
		return err == nil && len(l.GetSessions()) == 0
	})
	b3 := newBrowser(t)
	_, body, _ = b3.get(casBase + "login")
	code, body, _ = b3.loginForm(casBase, body, f.login, f.password)
	tok := hiddenRE("otp_token").FindStringSubmatch(body)
	if code != http.StatusOK || tok == nil || hasCookie(b3, casBase, "TGC") {
		t.Fatalf("level 2 with an app, password step: %d\n%s", code, body)
	}
	code, _, at = b3.post(casBase+"login", url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "otp_token": {htmlUnescape(tok[1])},
		"code": {identity.TOTPCode(key, step)}})
	if code != http.StatusOK || at.Path != "/cas/portal" || !hasCookie(b3, casBase, "TGC") {
		t.Fatalf("level 2 with an app, the code: %d at %s", code, at)
	}
	wantResult(t, mustAuth(e.authPW(f, f.account, f.password)), nil, -1, identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW)
	res, err := e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password,
		AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, Otp: identity.TOTPCode(key, step+1)})
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	setLevel(0)

	// The application requires two factors: the password alone is refused
	// (gRPC and REST), whoever the person, and its CAS service is held to
	// level 2 (a password session gets no ticket; the page asks for more).
	const svcURL = "https://graded.example.com/"
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Graded", Url: svcURL}}); err != nil {
		t.Fatal(err)
	}
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	tgt, _, err := h.Service.CreateSession(context.Background(), ticket.NewSession{UserID: f.userID, Login: f.login, AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Service.IssueServiceTicket(context.Background(), tgt, svcURL, false); err != nil {
		t.Fatalf("a level-1 session before the application's level: %v", err)
	}
	app, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"min_auth_level"}, MinAuthLevel: 2})
	if err != nil || app.GetMinAuthLevel() != 2 {
		t.Fatalf("app level: %v %v", app, err)
	}
	eventually(t, "the application's level to apply", func() bool {
		res, err := e.authPW(f, f.account, f.password)
		return err == nil && res.GetReason() == identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW
	})
	eventually(t, "the application's service to be held to its level", func() bool {
		_, _, err := h.Service.IssueServiceTicket(context.Background(), tgt, svcURL, false)
		return errors.Is(err, ticket.ErrAuthLevelTooLow)
	})
	code, body, _ = newBrowser(t).get(casBase + "login?service=" + url.QueryEscape(svcURL))
	if code != http.StatusForbidden || strings.Contains(body, `name="password"`) || !strings.Contains(body, "twofactor=1") {
		t.Fatalf("the login page of a level-2 application's service: %d\n%s", code, body)
	}
	code, out, _ = e.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"appUserId": "acct-nobody", "password": "x",
		"authType": "AUTH_TYPE_PASSWORD"})
	if code != http.StatusOK || out["reason"] != "REASON_AUTH_LEVEL_TOO_LOW" {
		t.Fatalf("REST Authenticate under the application's level: %d %v", code, out)
	}
	// A level out of range is refused by the request's rules.
	_, err = e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"min_auth_level"}, MinAuthLevel: 4})
	wantCode(t, err, codes.InvalidArgument, "")

	// Certificates only for the application: its service takes a
	// certificate's session only.
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"min_auth_level"},
		MinAuthLevel: 3}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the application's service to take certificates only", func() bool {
		_, body, _ := newBrowser(t).get(casBase + "login?service=" + url.QueryEscape(svcURL))
		return strings.Contains(body, "accepts only a certificate sign-in")
	})

	// A person required to use a certificate: told so after the password.
	if _, err := e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: f.userID, UpdateMask: []string{"min_auth_level"},
		MinAuthLevel: 3}); err != nil {
		t.Fatal(err)
	}
	b2 := newBrowser(t)
	_, body, _ = b2.get(casBase + "login")
	code, body, _ = b2.loginForm(casBase, body, f.login, f.password)
	if code != http.StatusForbidden || !strings.Contains(body, "may sign in with a certificate only") {
		t.Fatalf("certificate-only person at the page: %d\n%s", code, body)
	}
}
