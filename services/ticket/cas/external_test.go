package cas

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// extSSO answers ExternalLogin as identity: code "111" of "ann" right
// (level 1 alone, 2 with the password), "down" no verdict, anything else
// rejected; it keeps the requests.
type extSSO struct {
	identityv1.SSOServiceClient
	got []*identityv1.SSOExternalLoginRequest
}

func (s *extSSO) ExternalLogin(_ context.Context, r *identityv1.SSOExternalLoginRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	s.got = append(s.got, r)
	switch {
	case string(r.GetCredential()) == "down":
		return nil, apierr.ToStatus(apierr.New(apierr.Unavailable, "EXTERNAL_AUTHENTICATOR_UNAVAILABLE", "try later"))
	case r.GetLogin() != "ann" || string(r.GetCredential()) != "111":
		return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_BAD_CREDENTIALS}, nil
	}
	res := &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_OK, UserId: "u-ann", Login: "ann", Method: "external:face",
		AuthLevel: 1}
	if r.GetPassword() != "" {
		res.Method, res.AuthLevel = "external:face+password", 2
	}
	return res, nil
}

// TestExternalForm: the login page links each authenticator; its form
// asks the password where the application needs level 2 and the
// authenticator alone gives 1, or where it is a second factor; a right
// code opens a session at identity's level (AUTH_METHOD_EXTERNAL), a
// wrong one is the single answer (401), no verdict 503; an unknown name
// is the password page.
func TestExternalForm(t *testing.T) {
	tickets := &certTickets{sessions: map[string]int32{}}
	sso := &extSSO{}
	list := []*identityv1.ExternalAuthenticatorInfo{{Name: "face", Label: "Face", Level: 1},
		{Name: "sms", Label: "SMS code", Level: 2, RequirePassword: true}}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso,
		ListExternal: func(context.Context) ([]*identityv1.ExternalAuthenticatorInfo, error) { return list, nil }}))
	t.Cleanup(srv.Close)
	b := certBrowser(t, srv, nil)
	weak, strong := url.QueryEscape("https://weak.example.com/"), url.QueryEscape("https://strong.example.com/")
	_, page := getPage(t, b, srv.URL+"/cas/login?service="+weak, "en")
	if !strings.Contains(page, `id="external-face"`) || !strings.Contains(page, "Sign in with SMS code") {
		t.Fatalf("no links:\n%s", page)
	}
	for _, c := range []struct {
		query    string
		password bool
	}{{"external=face&service=" + weak, false}, {"external=face&service=" + strong, true}, {"external=sms&service=" + weak, true}} {
		_, page = getPage(t, b, srv.URL+"/cas/login?"+c.query, "en")
		if !strings.Contains(page, `id="external-form"`) || strings.Contains(page, `id="password"`) != c.password {
			t.Fatalf("%s: form (password %v):\n%s", c.query, c.password, page)
		}
	}
	if _, page = getPage(t, b, srv.URL+"/cas/login?external=iris", "en"); strings.Contains(page, `id="external-form"`) {
		t.Fatal("a form for an unknown authenticator")
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	post := func(service, cred, pw string) *http.Response {
		v := url.Values{"csrf": {csrf}, "external": {"face"}, "username": {"ann"}, "credential": {cred}, "service": {service}}
		if pw != "" {
			v.Set("password", pw)
		}
		return postForm(t, b, srv.URL+"/cas/login", v)
	}
	if resp := post("https://weak.example.com/", "222", ""); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(body(resp), "do not match") {
		t.Fatalf("wrong code: %d", resp.StatusCode)
	}
	if resp := post("https://weak.example.com/", "down", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("no verdict: %d", resp.StatusCode)
	}
	if resp := post("https://strong.example.com/", "111", ""); resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(body(resp), "requires your password as well") {
		t.Fatalf("level-2 application without the password: %d", resp.StatusCode)
	}
	if resp := post("https://strong.example.com/", "111", "pw"); resp.StatusCode != http.StatusFound ||
		!strings.Contains(resp.Header.Get("Location"), "ticket=ST-1") {
		t.Fatalf("face and password at a level-2 application: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tickets.mu.Lock()
	defer tickets.mu.Unlock()
	if n := len(tickets.created); n != 1 || tickets.created[0].GetAuthLevel() != 2 ||
		tickets.created[0].GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_EXTERNAL {
		t.Fatalf("sessions: %v", tickets.created)
	}
}
