package cas

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apierr"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// casConsentTickets refuses a service ticket of appc CONSENT_REQUIRED
// until the person allowed casConsentScope; down: consents cannot be read.
type casConsentTickets struct {
	consentTickets
	down bool
	sts  int
}

func (c *casConsentTickets) IssueServiceTicket(_ context.Context, r *ticketv1.IssueServiceTicketRequest, _ ...grpc.CallOption) (*ticketv1.IssueServiceTicketResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.granted != casConsentScope {
		return nil, apierr.ToStatus(apierr.New(apierr.FailedPrecondition, "CONSENT_REQUIRED", "consent"))
	}
	c.sts++
	return &ticketv1.IssueServiceTicketResponse{Ticket: "ST-cas"}, nil
}

func (c *casConsentTickets) ConsentPrompt(ctx context.Context, r *ticketv1.ConsentRequest, o ...grpc.CallOption) (*ticketv1.ConsentPromptResponse, error) {
	if c.down {
		return nil, apierr.ToStatus(apierr.New(apierr.Unavailable, "CONSENT_UNAVAILABLE", "down"))
	}
	return c.consentTickets.ConsentPrompt(ctx, r, o...)
}

// TestConsentCASLogin (review sec30c H1): a CAS login to a service of a
// client asking consent shows the same consent page (the person's identity
// and profile); gateway=true goes back to the service without a ticket;
// Allow records it and sends the ticket, Deny goes back without one.
func TestConsentCASLogin(t *testing.T) {
	tk := &casConsentTickets{}
	h := New(Options{Tickets: tk, SSO: &profSSO{}})
	login := "/cas/login?service=" + url.QueryEscape(consentRedirect)

	res, _ := profileCall(h, http.MethodGet, login+"&gateway=true", "TGT-live", "en", nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != consentRedirect || tk.sts != 0 {
		t.Fatalf("gateway without consent: %d %q, want back without a ticket", res.StatusCode, loc)
	}
	res, body := profileCall(h, http.MethodGet, login, "TGT-live", "en", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Allow access?") || !strings.Contains(body, "Contracts") ||
		!strings.Contains(body, "Your login name, name and organisation") || !strings.Contains(body, `name="service" value="`+consentRedirect+`"`) ||
		strings.Contains(body, `name="oidc"`) || tk.sts != 0 {
		t.Fatalf("CAS consent page: %d sts=%d\n%s", res.StatusCode, tk.sts, body)
	}
	form := url.Values{"service": {consentRedirect}, "decision": {"deny"}, "csrf": {testCSRF}}
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en", form)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != consentRedirect || tk.sts != 0 || tk.granted != "" {
		t.Fatalf("deny: %d %q", res.StatusCode, loc)
	}
	form.Set("csrf", "")
	form.Set("decision", "allow")
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en", form)
	if res.StatusCode != http.StatusForbidden || tk.granted != "" {
		t.Fatalf("allow without CSRF: %d granted=%q", res.StatusCode, tk.granted)
	}
	form.Set("csrf", testCSRF)
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en", form)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode/100 != 3 || loc.Query().Get("ticket") != "ST-cas" || tk.granted != casConsentScope ||
		tk.answers[len(tk.answers)-1].GetRequest().GetClientId() != "appc" {
		t.Fatalf("allow: %d %s granted=%q", res.StatusCode, loc, tk.granted)
	}
	// A form for a service that is not registered: refused.
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en",
		url.Values{"service": {"https://evil.example.com/"}, "decision": {"allow"}, "csrf": {testCSRF}})
	if res.StatusCode/100 == 3 {
		t.Fatalf("consent for an unregistered service: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestConsentPromptNoneDown (review sec30c L2): prompt=none with the
// consents unreadable answers the client temporarily_unavailable.
func TestConsentPromptNoneDown(t *testing.T) {
	tk := &casConsentTickets{down: true}
	h := New(Options{Tickets: tk, SSO: &profSSO{}})
	res, _ := profileCall(h, http.MethodGet, authorizePath("&prompt=none"), "TGT-live", "en", nil)
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), consentRedirect+"?") ||
		loc.Query().Get("error") != "temporarily_unavailable" || loc.Query().Get("state") != "st1" {
		t.Fatalf("prompt=none, consents down: %d %s", res.StatusCode, loc)
	}
	// Without prompt=none: a page, never a code.
	if res, _ := profileCall(h, http.MethodGet, authorizePath(""), "TGT-live", "en", nil); res.StatusCode/100 == 3 || tk.issued != 0 {
		t.Fatalf("consents down: %d issued=%d", res.StatusCode, tk.issued)
	}
}

// TestConsentMaxAge (review sec30c I2): the consent form carries max_age,
// checked again on Allow: a sign-in older than it signs in again, no code.
func TestConsentMaxAge(t *testing.T) {
	tk := &consentTickets{}
	h := New(Options{Tickets: tk, SSO: &profSSO{}})
	res, body := profileCall(h, http.MethodGet, authorizePath("&max_age=3000000000"), "TGT-live", "en", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Allow access?") || !strings.Contains(body, "max_age=3000000000") {
		t.Fatalf("consent page with max_age: %d\n%s", res.StatusCode, body)
	}
	oidc := url.Values{"client_id": {"appc"}, "redirect_uri": {consentRedirect}, "scope": {"openid profile"}, "state": {"st1"},
		"max_age": {"60"}}.Encode()
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en",
		url.Values{"oidc": {oidc}, "decision": {"allow"}, "csrf": {testCSRF}})
	if res.StatusCode/100 == 3 || tk.issued != 0 {
		t.Fatalf("allow past max_age: %d %s issued=%d", res.StatusCode, res.Header.Get("Location"), tk.issued)
	}
}

// TestDiscoveryPromptConsent (review sec30c I1): discovery lists the
// prompt values answered, consent included.
func TestDiscoveryPromptConsent(t *testing.T) {
	h := New(Options{Tickets: &consentTickets{}, SSO: &profSSO{}})
	res, body := profileCall(h, http.MethodGet, "/cas/oidc/.well-known/openid-configuration", "", "en", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"prompt_values_supported":["none","login","consent"]`) {
		t.Fatalf("discovery: %d\n%s", res.StatusCode, body)
	}
}
