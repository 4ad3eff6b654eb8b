package cas

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// levelSSO answers as identity for people whose own level a password
// does not reach: "two" (two factors, no app), "cert" (certificates
// only), with the password Right-Pass-1; other passwords are wrong.
type levelSSO struct{ identityv1.SSOServiceClient }

func (levelSSO) Login(_ context.Context, r *identityv1.SSOLoginRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	if r.GetPassword() != "Right-Pass-1" {
		return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_BAD_CREDENTIALS}, nil
	}
	level := map[string]int32{"two": 2, "cert": 3}[r.GetLogin()]
	return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW, RequiredAuthLevel: level}, nil
}

// TestPersonLevelRefusals: the right password of a person whose own level
// it does not reach opens no session; the page says what they must use
// instead (two factors, or a certificate), in both languages; a wrong
// password is the usual single answer.
func TestPersonLevelRefusals(t *testing.T) {
	tickets := &certTickets{sessions: map[string]int32{}}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: levelSSO{}}))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		login, pw, lang, want string
		code                  int
	}{
		{"two", "Right-Pass-1", "en", "must sign in with two factors or a certificate", http.StatusForbidden},
		{"cert", "Right-Pass-1", "en", "may sign in with a certificate only", http.StatusForbidden},
		{"two", "Right-Pass-1", "zh-CN", "您的账号要求双因素或数字证书登录", http.StatusForbidden},
		{"cert", "Right-Pass-1", "zh-CN", "您的账号只能使用数字证书登录", http.StatusForbidden},
		{"two", "Wrong-Pass-1", "en", "The login name or password is not correct.", http.StatusUnauthorized},
	} {
		b := certBrowser(t, srv, nil)
		_, page := getPage(t, b, srv.URL+"/cas/login?locale="+c.lang, c.lang)
		resp := postForm(t, b, srv.URL+"/cas/login", url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]}, "username": {c.login},
			"password": {c.pw}, "service": {"https://weak.example.com/"}})
		page = body(resp)
		if resp.StatusCode != c.code || !strings.Contains(page, c.want) {
			t.Fatalf("%s/%s/%s: %d\n%s", c.login, c.pw, c.lang, resp.StatusCode, page)
		}
		if strings.Contains(resp.Header.Get("Set-Cookie"), TGCCookie+"=") || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: a session or a redirect after a refusal", c.login)
		}
	}
	tickets.mu.Lock()
	defer tickets.mu.Unlock()
	if len(tickets.sessions) != 0 {
		t.Fatalf("sessions opened: %v", tickets.sessions)
	}
}
