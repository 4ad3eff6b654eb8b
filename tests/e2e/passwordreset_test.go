package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestResetPasswordREST: an administrator resets a person's password over
// REST; the answer holds a temporary password that logs in once and must
// be changed, the old password no longer works and the person's SSO
// session ends. Without a token, or for nobody, the edge says so.
func TestResetPasswordREST(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("rst", "rita", nil, nil)
	h, ok := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in target all")
	}
	ctx := context.Background()
	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "rita", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + e.token, "Content-Type": "application/json"}
	path := "/v1/users/" + f.userID + ":resetPassword"

	if code, body, _ := e.rest(http.MethodPost, path, map[string]string{"Content-Type": "application/json"}, "{}"); code != http.StatusUnauthorized {
		t.Fatalf("reset without a token: %d %v", code, body)
	}
	if code, body, _ := e.rest(http.MethodPost, "/v1/users/nobody:resetPassword", bearer, "{}"); code != http.StatusNotFound {
		t.Fatalf("reset of nobody: %d %v", code, body)
	}
	code, body, _ := e.rest(http.MethodPost, path, bearer, "{}")
	if code != http.StatusOK {
		t.Fatalf("reset: %d %v", code, body)
	}
	pw, _ := body["temporary_password"].(string)
	user, _ := body["user"].(map[string]any)
	if len(pw) < 16 || user["id"] != f.userID || user["must_change_password"] != true {
		t.Fatalf("reset answer: %v", body)
	}
	if res, err := e.authPW(f, f.account, f.password); err != nil || res.GetResultCode() != -1 {
		t.Fatalf("old password after a reset: %v %v", res, err)
	}
	res, err := e.authPW(f, f.account, pw)
	if err != nil || res.GetResultCode() != 0 || !res.GetMustChangePassword() {
		t.Fatalf("temporary password: %v %v", res, err)
	}
	eventually(t, "the session to end after the reset", func() bool {
		_, err := h.Service.GetSession(ctx, tgt)
		return err != nil
	})

	// The expiry shows on the person, and the listing of expired passwords
	// answers (nobody's has expired).
	code, body, _ = e.rest(http.MethodGet, "/v1/users/"+f.userID, bearer, nil)
	if code != http.StatusOK || body["password_expire_time"] == nil || body["password_expired"] != false {
		t.Fatalf("person after a reset: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodGet, "/v1/users?password_expired=true", bearer, nil)
	if users, _ := body["users"].([]any); code != http.StatusOK || len(users) != 0 {
		t.Fatalf("expired passwords: %d %v", code, body)
	}
}

// TestAdminLoginNewPasswordREST: an administrator created with a password
// that must be changed (as a system administrator appoints one, with a
// temporary password) gets no token with it over REST (400
// PASSWORD_CHANGE_REQUIRED, saying what to do) and chooses their own in the
// login body (new_password), which answers the token; the first password
// is then refused.
func TestAdminLoginNewPasswordREST(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	const temp = "Heron-Pass-2024"
	if _, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "nadia", DisplayName: "Nadia", OrgId: e.root,
		Password: temp, MustChangePassword: true, IsAdmin: true}); err != nil {
		t.Fatal(err)
	}
	plain := map[string]string{"Content-Type": "application/json"}
	login := func(fields map[string]string) (int, map[string]any) {
		code, body, _ := e.rest(http.MethodPost, "/v1/admin/login", plain, fields)
		return code, body
	}
	code, body := login(map[string]string{"login_name": "nadia", "password": temp})
	if msg, _ := body["message"].(string); code != http.StatusBadRequest || !containsReason(body, "PASSWORD_CHANGE_REQUIRED") ||
		!strings.Contains(msg, "new_password") || body["token"] != nil {
		t.Fatalf("login with a temporary password: %d %v", code, body)
	}
	if code, body = login(map[string]string{"login_name": "nadia", "password": temp, "new_password": "short"}); code != http.StatusBadRequest ||
		!containsReason(body, "WEAK_PASSWORD") {
		t.Fatalf("login choosing a weak password: %d %v", code, body)
	}
	code, body = login(map[string]string{"login_name": "nadia", "password": temp, "new_password": "Osprey-Pass-2025"})
	if tok, _ := body["token"].(string); code != http.StatusOK || tok == "" || body["must_change_password"] == true {
		t.Fatalf("login choosing a password: %d %v", code, body)
	}
	if code, body = login(map[string]string{"login_name": "nadia", "password": temp}); code != http.StatusUnauthorized {
		t.Fatalf("the temporary password after the change: %d %v", code, body)
	}
	if code, body = login(map[string]string{"login_name": "nadia", "password": "Osprey-Pass-2025"}); code != http.StatusOK {
		t.Fatalf("login with the chosen password: %d %v", code, body)
	}
}
