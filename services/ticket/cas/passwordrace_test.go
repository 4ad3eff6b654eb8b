package cas

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// racedSSO signs "mia" in with Right-Pass-1, as identity answered before her
// password was changed.
type racedSSO struct{ identityv1.SSOServiceClient }

func (racedSSO) Login(_ context.Context, r *identityv1.SSOLoginRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	if r.GetLogin() != "mia" || r.GetPassword() != "Right-Pass-1" {
		return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_BAD_CREDENTIALS}, nil
	}
	return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_OK, UserId: "u-mia", Login: "mia", OrgId: "o1",
		PasswordChangedAt: timestamppb.Now()}, nil
}

// replacedTickets refuses every session: the password its login checked
// was changed meanwhile.
type replacedTickets struct{ certTickets }

func (*replacedTickets) CreateSession(context.Context, *ticketv1.CreateSessionRequest, ...grpc.CallOption) (*ticketv1.CreateSessionResponse, error) {
	return nil, apierr.ToStatus(apierr.New(apierr.FailedPrecondition, "PASSWORD_CHANGED_DURING_LOGIN",
		"the password was changed while signing in: sign in with the new password"))
}

// TestLoginRacingPasswordChangePage: a login whose password was replaced
// while it ran gets no session and a page saying to sign in with the new
// password (409, both languages), not "try again later".
func TestLoginRacingPasswordChangePage(t *testing.T) {
	srv := httptest.NewServer(New(Options{Tickets: &replacedTickets{certTickets{sessions: map[string]int32{}}}, SSO: racedSSO{}}))
	t.Cleanup(srv.Close)
	for lang, want := range map[string]string{"en": "Sign in with the new password", "zh-CN": "请使用新密码登录"} {
		c := certBrowser(t, srv, nil)
		_, page := getPage(t, c, srv.URL+"/cas/login?locale="+lang, lang)
		resp := postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]},
			"username": {"mia"}, "password": {"Right-Pass-1"}, "service": {"https://weak.example.com/"}})
		page = body(resp)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(page, want) ||
			strings.Contains(resp.Header.Get("Set-Cookie"), TGCCookie+"=") || strings.Contains(page, "PASSWORD_CHANGED") {
			t.Errorf("%s: %d %q\n%s", lang, resp.StatusCode, resp.Header.Values("Set-Cookie"), page)
		}
	}
}
