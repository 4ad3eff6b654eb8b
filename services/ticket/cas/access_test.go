package cas

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apierr"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	_ "github.com/uias/uias/services/ticket" // registers SERVICE_ACCESS_DENIED, as in the process
)

// refusing is a ticket component whose services' access rule refuses the
// person: the session is live, IssueServiceTicket answers PERMISSION_DENIED
// SERVICE_ACCESS_DENIED with the missing part in the ErrorInfo metadata.
type refusing struct {
	ticketv1.TicketServiceClient
	missing string
}

func (refusing) MatchService(context.Context, *ticketv1.MatchServiceRequest, ...grpc.CallOption) (*ticketv1.RegisteredService, error) {
	return &ticketv1.RegisteredService{Name: "Ruled", RequiredPermission: "docs:read"}, nil
}

func (refusing) GetSession(context.Context, *ticketv1.GetSessionRequest, ...grpc.CallOption) (*ticketv1.Session, error) {
	return &ticketv1.Session{Id: "s1", Login: "hank"}, nil
}

func (r refusing) IssueServiceTicket(context.Context, *ticketv1.IssueServiceTicketRequest, ...grpc.CallOption) (*ticketv1.IssueServiceTicketResponse, error) {
	return nil, apierr.ToStatus(apierr.New(apierr.PermissionDenied, "SERVICE_ACCESS_DENIED", "you may not use this application").
		WithMeta("missing", r.missing))
}

// TestAccessDeniedPage: a signed-in person refused by a service's access
// rule gets a 403 page saying so in plain words, in both languages, naming
// what they lack (from the metadata), with a link to the portal; the
// session cookie is kept; with gateway the browser goes back without a
// ticket.
func TestAccessDeniedPage(t *testing.T) {
	call := func(h *Handler, path, lang string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.AddCookie(&http.Cookie{Name: TGCCookie, Value: "TGT-live"})
		if lang != "" {
			r.Header.Set("Accept-Language", lang)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct {
		missing, lang string
		want          []string
	}{
		{"account_link", "en", []string{"Access to this application denied", "You are signed in, but you may not use this application.",
			"You have no account in it."}},
		{"permission", "en", []string{"You are signed in, but you may not use this application.", "You have not been granted access to it."}},
		{"account_link", "zh-CN", []string{"无权访问该应用", "您已登录，但无权使用该应用。", "您在该应用中没有账号"}},
		{"permission", "zh-CN,zh;q=0.9", []string{"您已登录，但无权使用该应用。", "您未被授予使用该应用的权限"}},
	} {
		h := New(Options{Tickets: refusing{missing: tc.missing}, SSO: noSSO{}})
		w := call(h, "/cas/login?service=https://ruled.example.com/", tc.lang)
		b, _ := io.ReadAll(w.Result().Body)
		body := string(b)
		if w.Code != http.StatusForbidden {
			t.Errorf("%s/%s: status %d, want 403", tc.missing, tc.lang, w.Code)
		}
		for _, s := range tc.want {
			if !strings.Contains(body, s) {
				t.Errorf("%s/%s: the page lacks %q:\n%s", tc.missing, tc.lang, s, body)
			}
		}
		if !strings.Contains(body, `href="/cas/portal"`) {
			t.Errorf("%s/%s: no link to the portal:\n%s", tc.missing, tc.lang, body)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == TGCCookie {
				t.Errorf("%s/%s: the session cookie was touched: %+v", tc.missing, tc.lang, c)
			}
		}
		if loc := w.Header().Get("Location"); loc != "" {
			t.Errorf("%s/%s: redirected to %s", tc.missing, tc.lang, loc)
		}
	}
	// CAS gateway: never a page; back to the service without a ticket.
	h := New(Options{Tickets: refusing{missing: "permission"}, SSO: noSSO{}})
	w := call(h, "/cas/login?gateway=true&service=https://ruled.example.com/?ticket=ST-old", "")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://ruled.example.com/" {
		t.Errorf("gateway: %d to %q", w.Code, w.Header().Get("Location"))
	}
}

// A page answering the login form (the service in the POST body, as after
// signing in) switches language to the same page, service included (a
// user's trial found the link leading to the portal instead).
func TestLanguageSwitchKeepsTheFormsService(t *testing.T) {
	h := New(Options{Tickets: refusing{missing: "permission"}, SSO: noSSO{}})
	r := httptest.NewRequest(http.MethodPost, "/cas/login", strings.NewReader("service=https%3A%2F%2Fruled.example.com%2F&username=hank&password=secret"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := r.ParseForm(); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.page(w, r, http.StatusForbidden, "message", pageData{Heading: "Denied", Message: "no"})
	b, _ := io.ReadAll(w.Result().Body)
	body := string(b)
	if !strings.Contains(body, "service=https%3A%2F%2Fruled.example.com%2F") || !strings.Contains(body, "locale=") {
		t.Fatalf("the language switch lost the service:\n%s", body)
	}
	if strings.Contains(body, "secret") || strings.Contains(body, "username=") {
		t.Fatalf("the language switch carries the form's other fields:\n%s", body)
	}
}
