package cas

import (
	"context"
	"html/template"
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
// and profile: what the service receives, TestConsentCASReleased);
// gateway=true goes back to the service without a ticket;
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
		!strings.Contains(body, "<li>Your login name</li>") || !strings.Contains(body, `name="service" value="`+consentRedirect+`"`) ||
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

// policyTickets is casConsentTickets whose service has the registration rs
// (its release policy).
type policyTickets struct {
	casConsentTickets
	rs *ticketv1.RegisteredService
}

func (c *policyTickets) MatchService(ctx context.Context, r *ticketv1.MatchServiceRequest, o ...grpc.CallOption) (*ticketv1.RegisteredService, error) {
	if _, err := c.casConsentTickets.MatchService(ctx, r, o...); err != nil {
		return nil, err
	}
	return c.rs, nil
}

// TestConsentCASReleased: a CAS service's consent page lists what the
// service receives after its release policy (ADR 0037), in plain words,
// masked attributes marked, roles and permissions only when released; not
// the fixed "login name, name and organisation" of the recorded scope. The
// page shown again (form expired) lists the same.
func TestConsentCASReleased(t *testing.T) {
	base := func() *ticketv1.RegisteredService {
		return &ticketv1.RegisteredService{Id: "sc", AppId: "appc", Name: "Contracts", Url: "https://appc.example.com:443/cb",
			Enabled: true, MinAuthLevel: 1, ConsentRequired: true}
	}
	en := languages["en"]
	all := []string{en.AttrUserID, en.AttrLogin, en.AttrName, en.AttrOrgID, en.AttrOrgName, en.AttrAppAccount, en.AttrGroups,
		en.AttrUserType, en.AttrAuthLevel, en.AttrSignIn}
	limited := base()
	limited.ReleaseAttributes = []string{"login", "displayName", "orgName", "roles", "memberOf"}
	limited.MaskedAttributes = []string{"displayName"}
	limited.ReleaseRoles, limited.ReleasePermissions = true, true
	rolesOff := base()
	rolesOff.ReleaseAttributes = []string{"login", "roles"}
	everything := base()
	everything.ReleaseRoles, everything.ReleasePermissions = true, true
	legacy1 := base()
	legacy1.LegacyScheme = 1
	legacy2 := base()
	legacy2.LegacyScheme = 2
	for _, c := range []struct {
		name      string
		rs        *ticketv1.RegisteredService
		want, not []string
	}{
		{"no policy", base(), all, []string{en.AttrRoles, en.AttrPermissions, en.AttrMasked, en.ScopeProfile}},
		{"policy", limited, []string{en.AttrLogin, en.AttrName + " (" + en.AttrMasked + ")", en.AttrOrgName, en.AttrGroups, en.AttrRoles, en.AttrSignIn},
			[]string{en.AttrUserID, en.AttrOrgID, en.AttrPermissions, en.AttrAuthLevel, en.AttrAppAccount, en.ScopeProfile}},
		{"roles listed, not released", rolesOff, []string{en.AttrLogin, en.AttrSignIn}, []string{en.AttrRoles, en.AttrName}},
		{"roles and permissions released", everything, append([]string{en.AttrRoles, en.AttrPermissions}, all...), []string{en.AttrMasked}},
		{"legacy scheme 1", legacy1, []string{en.AttrAppAccount, en.AttrLogin, en.AttrLegacyPassword}, []string{en.AttrName, en.AttrSignIn}},
		{"legacy scheme 2", legacy2, []string{en.AttrAppAccount, en.AttrLogin}, []string{en.AttrLegacyPassword, en.AttrName}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := New(Options{Tickets: &policyTickets{rs: c.rs}, SSO: &profSSO{}})
			res, body := profileCall(h, http.MethodGet, "/cas/login?service="+url.QueryEscape(consentRedirect), "TGT-live", "en", nil)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, "Allow access?") {
				t.Fatalf("consent page: %d\n%s", res.StatusCode, body)
			}
			check := func(body string) {
				t.Helper()
				for _, w := range c.want {
					if !strings.Contains(body, "<li>"+template.HTMLEscapeString(w)+"</li>") {
						t.Errorf("the page does not list %q\n%s", w, body)
					}
				}
				for _, n := range c.not {
					if strings.Contains(body, template.HTMLEscapeString(n)) {
						t.Errorf("the page lists %q\n%s", n, body)
					}
				}
			}
			check(body)
			// The form expired: the page again (403), the same list.
			res, body = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en",
				url.Values{"service": {consentRedirect}, "decision": {"allow"}, "csrf": {"stale"}})
			if res.StatusCode != http.StatusForbidden {
				t.Fatalf("expired form: %d", res.StatusCode)
			}
			check(body)
		})
	}
	// In Chinese, the masked name says so.
	h := New(Options{Tickets: &policyTickets{rs: limited}, SSO: &profSSO{}})
	_, body := profileCall(h, http.MethodGet, "/cas/login?service="+url.QueryEscape(consentRedirect), "TGT-live", "zh", nil)
	if zh := languages["zh-CN"]; !strings.Contains(body, "<li>"+zh.AttrName+" ("+zh.AttrMasked+")</li>") || strings.Contains(body, zh.AttrUserID) {
		t.Fatalf("Chinese consent page:\n%s", body)
	}
	// The OpenID Connect consent page still lists the scopes asked for.
	h = New(Options{Tickets: &policyTickets{rs: limited}, SSO: &profSSO{}})
	if _, body := profileCall(h, http.MethodGet, authorizePath(""), "TGT-live", "en", nil); !strings.Contains(body, en.ScopeProfile) ||
		strings.Contains(body, en.AttrMasked) {
		t.Fatalf("OpenID Connect consent page:\n%s", body)
	}
}
