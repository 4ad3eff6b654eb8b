package cas

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

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

// lockedTickets refuses every session: the account was locked while its
// login ran.
type lockedTickets struct{ certTickets }

func (*lockedTickets) CreateSession(context.Context, *ticketv1.CreateSessionRequest, ...grpc.CallOption) (*ticketv1.CreateSessionResponse, error) {
	return nil, apierr.ToStatus(apierr.New(apierr.FailedPrecondition, "ACCOUNT_CHANGED_DURING_LOGIN",
		"the account was locked or disabled while signing in: no session was opened"))
}

// stateSSO signs "mia" in as racedSSO does, answering her account's state
// time.
type stateSSO struct{ racedSSO }

var miaState = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func (s stateSSO) Login(ctx context.Context, r *identityv1.SSOLoginRequest, o ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	res, err := s.racedSSO.Login(ctx, r, o...)
	if res != nil && res.GetReason() == identityv1.Reason_REASON_OK {
		res.StateChangedAt = timestamppb.New(miaState)
	}
	return res, err
}

// TestLoginRacingLockPage: a login whose account was locked or disabled
// while it ran gets no session and a page saying so (409, both languages),
// not "try again later"; a login hands identity's state time to the
// session (ADR 0047).
func TestLoginRacingLockPage(t *testing.T) {
	srv := httptest.NewServer(New(Options{Tickets: &lockedTickets{certTickets{sessions: map[string]int32{}}}, SSO: stateSSO{}}))
	t.Cleanup(srv.Close)
	for lang, want := range map[string]string{"en": "locked or disabled while you were signing in", "zh-CN": "已被锁定或停用"} {
		c := certBrowser(t, srv, nil)
		_, page := getPage(t, c, srv.URL+"/cas/login?locale="+lang, lang)
		resp := postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]},
			"username": {"mia"}, "password": {"Right-Pass-1"}, "service": {"https://weak.example.com/"}})
		page = body(resp)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(page, want) ||
			strings.Contains(resp.Header.Get("Set-Cookie"), TGCCookie+"=") || strings.Contains(page, "ACCOUNT_CHANGED") {
			t.Errorf("%s: %d %q\n%s", lang, resp.StatusCode, resp.Header.Values("Set-Cookie"), page)
		}
	}

	tickets := &certTickets{sessions: map[string]int32{}}
	ok := httptest.NewServer(New(Options{Tickets: tickets, SSO: stateSSO{}}))
	t.Cleanup(ok.Close)
	c := certBrowser(t, ok, nil)
	_, page := getPage(t, c, ok.URL+"/cas/login", "en")
	body(postForm(t, c, ok.URL+"/cas/login", url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]},
		"username": {"mia"}, "password": {"Right-Pass-1"}, "service": {"https://weak.example.com/"}}))
	if len(tickets.created) != 1 || !tickets.created[0].GetStateChangedAt().AsTime().Equal(miaState) {
		t.Fatalf("sessions created: %v", tickets.created)
	}
}
