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
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// down is a ticket component whose store is unavailable (NATS down): every
// call answers UNAVAILABLE TICKET_STORE_UNAVAILABLE, as the real one does
// within ticket.store_timeout.
type down struct{ ticketv1.TicketServiceClient }

func unavailable() error {
	return apierr.ToStatus(apierr.New(apierr.Unavailable, "TICKET_STORE_UNAVAILABLE", "the ticket store is unavailable, retry later"))
}

func (down) ValidateServiceTicket(context.Context, *ticketv1.ValidateServiceTicketRequest, ...grpc.CallOption) (*ticketv1.ValidateServiceTicketResponse, error) {
	return nil, unavailable()
}
func (down) MatchService(context.Context, *ticketv1.MatchServiceRequest, ...grpc.CallOption) (*ticketv1.RegisteredService, error) {
	return &ticketv1.RegisteredService{Name: "App"}, nil
}
func (down) GetSession(context.Context, *ticketv1.GetSessionRequest, ...grpc.CallOption) (*ticketv1.Session, error) {
	return nil, unavailable()
}
func (down) IssueProxyTicket(context.Context, *ticketv1.IssueProxyTicketRequest, ...grpc.CallOption) (*ticketv1.IssueProxyTicketResponse, error) {
	return nil, unavailable()
}

type noSSO struct{ identityv1.SSOServiceClient }

func TestStoreDownIsInternalErrorAndAPage(t *testing.T) {
	h := New(Options{Tickets: down{}, SSO: noSSO{}})
	call := func(path string, cookie *http.Cookie) (int, string) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		b, _ := io.ReadAll(w.Result().Body)
		return w.Code, string(b)
	}
	for _, p := range []string{"/cas/serviceValidate?service=https://a/&ticket=ST-1", "/cas/p3/proxyValidate?service=https://a/&ticket=ST-1",
		"/cas/proxy?pgt=PGT-1&targetService=https://a/"} {
		if _, body := call(p, nil); !strings.Contains(body, `code="INTERNAL_ERROR"`) {
			t.Errorf("%s: %s", p, body)
		}
	}
	if _, body := call("/cas/validate?service=https://a/&ticket=ST-1", nil); body != "no\n\n" {
		t.Errorf("validate: %q", body)
	}
	code, body := call("/cas/login?service=https://a/", &http.Cookie{Name: TGCCookie, Value: "TGT-x"})
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "try again") {
		t.Errorf("login page with the store down: %d %s", code, body)
	}
}

func (down) ValidateLegacyTicket(context.Context, *ticketv1.ValidateLegacyTicketRequest, ...grpc.CallOption) (*ticketv1.ValidateLegacyTicketResponse, error) {
	return nil, unavailable()
}

// TestLegacyStoreDown: the legacy interface answers RPC_INTERNAL_ERROR with
// 503 when the ticket store is down, and nothing of the cause.
func TestLegacyStoreDown(t *testing.T) {
	h := New(Options{Tickets: down{}, SSO: noSSO{}})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		var r *http.Request
		if method == http.MethodGet {
			r = httptest.NewRequest(method, "/cas/ssoAuthService?verb=validateServiceTicket&st=ST-1", nil)
		} else {
			r = httptest.NewRequest(method, "/cas/ssoAuthService", strings.NewReader("verb=validateServiceTicket&st=ST-1"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		b, _ := io.ReadAll(w.Result().Body)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(string(b), "<result>RPC_INTERNAL_ERROR</result>") ||
			!strings.Contains(string(b), "<loggedIn>false</loggedIn>") || strings.Contains(string(b), "TICKET_STORE") {
			t.Errorf("%s with the store down: %d %s", method, w.Code, b)
		}
	}
}
