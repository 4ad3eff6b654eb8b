package cas

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// consentTickets is the ticket component for the consent and "My
// applications" pages: TGT-live is u1's session; the client appc's service
// asks consent; u1 gave appc access (consent "openid profile") and has a
// linked account in appl.
type consentTickets struct {
	profTickets
	mu      sync.Mutex
	granted string // the remembered scope
	answers []*ticketv1.AnswerConsentRequest
	revoked []string
	issued  int
}

const consentRedirect = "https://appc.example.com/cb"

func (c *consentTickets) MatchService(_ context.Context, r *ticketv1.MatchServiceRequest, _ ...grpc.CallOption) (*ticketv1.RegisteredService, error) {
	if r.GetService() != consentRedirect {
		return nil, apierr.ToStatus(apierr.New(apierr.PermissionDenied, "SERVICE_NOT_REGISTERED", "not registered"))
	}
	return &ticketv1.RegisteredService{Id: "sc", AppId: "appc", Name: "Contracts", Url: "https://appc.example.com:443/cb", Enabled: true,
		MinAuthLevel: 1, ConsentRequired: true}, nil
}

func (c *consentTickets) ConsentPrompt(_ context.Context, r *ticketv1.ConsentRequest, _ ...grpc.CallOption) (*ticketv1.ConsentPromptResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	covered := c.granted != ""
	for _, s := range strings.Fields(r.GetScope()) {
		covered = covered && strings.Contains(" "+c.granted+" ", " "+s+" ")
	}
	return &ticketv1.ConsentPromptResponse{Needed: r.GetForce() || !covered, ServiceName: "Contracts", TtlSeconds: 30 * 24 * 3600,
		Until: timestamppb.New(time.Date(2027, 1, 6, 11, 0, 0, 0, time.UTC)), Granted: c.granted}, nil
}

func (c *consentTickets) AnswerConsent(_ context.Context, r *ticketv1.AnswerConsentRequest, _ ...grpc.CallOption) (*ticketv1.AnswerConsentResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers = append(c.answers, r)
	if r.GetAllow() {
		c.granted = r.GetRequest().GetScope()
	}
	return &ticketv1.AnswerConsentResponse{Scope: c.granted}, nil
}

func (c *consentTickets) IssueAuthorizationCode(context.Context, *ticketv1.IssueAuthorizationCodeRequest, ...grpc.CallOption) (*ticketv1.IssueAuthorizationCodeResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.issued++
	return &ticketv1.IssueAuthorizationCodeResponse{Code: "ST-code"}, nil
}

func (c *consentTickets) MyApplications(context.Context, *ticketv1.MyApplicationsRequest, ...grpc.CallOption) (*ticketv1.MyApplicationsResponse, error) {
	granted := timestamppb.New(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	return &ticketv1.MyApplicationsResponse{Applications: []*ticketv1.MyApplication{
		{AppId: "appc", Name: "Contracts", Scope: "openid profile", GrantedAt: granted, ExpiresAt: timestamppb.New(granted.AsTime().Add(720 * time.Hour)), Revocable: true},
		{AppId: "appl", Name: "Ledger <old>", Account: "pia01"},
		{AppId: "appk", Name: "Kiosk", Scope: "cas", GrantedAt: granted, ExpiresAt: timestamppb.New(granted.AsTime().Add(720 * time.Hour)), Revocable: true},
	}}, nil
}

func (c *consentTickets) RevokeMyApplication(_ context.Context, r *ticketv1.RevokeMyApplicationRequest, _ ...grpc.CallOption) (*ticketv1.RevokeMyApplicationResponse, error) {
	if r.GetAppId() != "appc" && r.GetAppId() != "appl" && r.GetAppId() != "appk" {
		return nil, apierr.ToStatus(apierr.New(apierr.NotFound, "MY_APPLICATION_NOT_FOUND", "none"))
	}
	c.mu.Lock()
	c.revoked = append(c.revoked, r.GetAppId())
	c.mu.Unlock()
	return &ticketv1.RevokeMyApplicationResponse{}, nil
}

func authorizePath(extra string) string {
	return "/cas/oidc/authorize?response_type=code&client_id=appc&scope=openid+profile&state=st1&redirect_uri=" +
		url.QueryEscape(consentRedirect) + extra
}

// TestConsentPage: a client whose service asks consent gets the consent
// page (scopes, validity period) instead of a code; Allow records it and
// sends the code; Deny answers access_denied; a remembered consent skips
// the page; prompt=consent forces it; prompt=none without consent answers
// consent_required; a form without the CSRF token records nothing.
func TestConsentPage(t *testing.T) {
	tk := &consentTickets{}
	h := New(Options{Tickets: tk, SSO: &profSSO{}})

	res, body := profileCall(h, http.MethodGet, authorizePath(""), "TGT-live", "en", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Allow access?") || !strings.Contains(body, "Contracts") ||
		!strings.Contains(body, "Your login name, name, organisation and account type") || !strings.Contains(body, "2027-01-06 11:00 UTC") ||
		!strings.Contains(body, "30 days") || tk.issued != 0 {
		t.Fatalf("consent page: %d issued=%d\n%s", res.StatusCode, tk.issued, body)
	}
	res, body = profileCall(h, http.MethodGet, authorizePath(""), "TGT-live", "zh-CN", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "是否授权") || !strings.Contains(body, "有效期至") {
		t.Fatalf("consent page in Chinese: %d\n%s", res.StatusCode, body)
	}
	oidc := url.Values{"client_id": {"appc"}, "redirect_uri": {consentRedirect}, "scope": {"openid profile"}, "state": {"st1"}}.Encode()

	// Without the CSRF token: the page again (403), nothing recorded.
	res, body = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en", url.Values{"oidc": {oidc}, "decision": {"allow"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "This form expired") || len(tk.answers) != 0 {
		t.Fatalf("consent without CSRF: %d answers=%d\n%s", res.StatusCode, len(tk.answers), body)
	}
	// Deny: access_denied to the redirect URI, with the state.
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en",
		url.Values{"oidc": {oidc}, "decision": {"deny"}, "csrf": {testCSRF}})
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), consentRedirect+"?") ||
		loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st1" || tk.issued != 0 {
		t.Fatalf("deny: %d %s", res.StatusCode, loc)
	}
	// Allow: recorded, and the code sent.
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en",
		url.Values{"oidc": {oidc}, "decision": {"allow"}, "csrf": {testCSRF}})
	loc, _ = url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || loc.Query().Get("code") != "ST-code" || tk.issued != 1 ||
		len(tk.answers) != 2 || !tk.answers[1].GetAllow() || tk.answers[1].GetRequest().GetTgt() != "TGT-live" {
		t.Fatalf("allow: %d %s issued=%d", res.StatusCode, loc, tk.issued)
	}
	// Remembered: no page.
	res, _ = profileCall(h, http.MethodGet, authorizePath(""), "TGT-live", "en", nil)
	if loc, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("remembered consent: %d %s", res.StatusCode, loc)
	}
	// prompt=consent: the page again.
	res, body = profileCall(h, http.MethodGet, authorizePath("&prompt=consent"), "TGT-live", "en", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Allow access?") {
		t.Fatalf("prompt=consent: %d", res.StatusCode)
	}
	// prompt=none and a wider scope: consent_required, never a page.
	res, _ = profileCall(h, http.MethodGet, strings.Replace(authorizePath("&prompt=none"), "openid+profile", "openid+groups", 1), "TGT-live", "en", nil)
	if loc, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != http.StatusFound || loc.Query().Get("error") != "consent_required" {
		t.Fatalf("prompt=none without consent: %d %s", res.StatusCode, loc)
	}
	// A consent form for another redirect URI: refused, never a redirect.
	bad := url.Values{"client_id": {"appc"}, "redirect_uri": {"https://evil.example.com/cb"}}.Encode()
	res, _ = profileCall(h, http.MethodPost, "/cas/oidc/consent", "TGT-live", "en", url.Values{"oidc": {bad}, "decision": {"allow"}, "csrf": {testCSRF}})
	if res.StatusCode == http.StatusFound || res.StatusCode == http.StatusOK {
		t.Fatalf("consent for an unregistered redirect URI: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestMyApplications: the profile page lists the person's applications
// with what they granted and since when; "Remove access" asks to confirm,
// then removes it (CSRF checked; an unknown application: 404).
func TestMyApplications(t *testing.T) {
	tk := &consentTickets{}
	h := New(Options{Tickets: tk, SSO: &profSSO{}})
	res, body := profileCall(h, http.MethodGet, "/cas/profile", "TGT-live", "en", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "My applications") || !strings.Contains(body, "Contracts") ||
		!strings.Contains(body, "Your user ID (to sign you in); Your login name, name, organisation and account type") ||
		!strings.Contains(body, "2026-12-01 09:00 UTC") ||
		!strings.Contains(body, "Ledger &lt;old&gt;") || !strings.Contains(body, "pia01") ||
		!strings.Contains(body, `href="/cas/profile/apps/remove?app=appc"`) {
		t.Fatalf("my applications: %d\n%s", res.StatusCode, body)
	}
	res, body = profileCall(h, http.MethodGet, "/cas/profile/apps/remove?app=appl", "TGT-live", "en", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Remove access?") || !strings.Contains(body, "pia01") {
		t.Fatalf("confirm: %d\n%s", res.StatusCode, body)
	}
	res, body = profileCall(h, http.MethodPost, "/cas/profile/apps/remove", "TGT-live", "en", url.Values{"app": {"appc"}})
	if res.StatusCode != http.StatusForbidden || len(tk.revoked) != 0 || !strings.Contains(body, "This form expired") {
		t.Fatalf("remove without CSRF: %d %v", res.StatusCode, tk.revoked)
	}
	res, _ = profileCall(h, http.MethodPost, "/cas/profile/apps/remove", "TGT-live", "en", url.Values{"app": {"appc"}, "csrf": {testCSRF}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/cas/profile?done=app-removed" || len(tk.revoked) != 1 {
		t.Fatalf("remove: %d %s %v", res.StatusCode, res.Header.Get("Location"), tk.revoked)
	}
	res, body = profileCall(h, http.MethodPost, "/cas/profile/apps/remove", "TGT-live", "en", url.Values{"app": {"nosuch"}, "csrf": {testCSRF}})
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "You have given no access") {
		t.Fatalf("remove an unknown application: %d\n%s", res.StatusCode, body)
	}
	res, _ = profileCall(h, http.MethodGet, "/cas/profile/apps/remove?app=nosuch", "TGT-live", "en", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("confirm an unknown application: %d", res.StatusCode)
	}
	// Without a session: the login page.
	res, _ = profileCall(h, http.MethodPost, "/cas/profile/apps/remove", "", "en", url.Values{"app": {"appc"}, "csrf": {testCSRF}})
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/cas/login") {
		t.Fatalf("remove without a session: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

// Review sec31c L1: the CAS consent (its own scope, "cas") is listed under
// "My applications" in plain words, in both languages, never as the raw
// scope, and the person may remove it; the CAS consent page records that
// scope.
func TestMyApplicationsCASConsent(t *testing.T) {
	if casConsentScope != "cas" {
		t.Fatalf("casConsentScope %q", casConsentScope)
	}
	tk := &consentTickets{}
	h := New(Options{Tickets: tk, SSO: &profSSO{}})
	for lang, want := range map[string]string{
		"en":    "Single sign-on to the application, with the details about you that its consent page listed",
		"zh-CN": "单点登录该应用，并向其提供同意页所列的您的信息",
	} {
		res, body := profileCall(h, http.MethodGet, "/cas/profile", "TGT-live", lang, nil)
		i := strings.Index(body, `id="myapp-appk"`)
		if res.StatusCode != http.StatusOK || i < 0 {
			t.Fatalf("%s: %d\n%s", lang, res.StatusCode, body)
		}
		item := body[i:]
		item = item[:strings.Index(item, "</li>")]
		if !strings.Contains(item, `data-scope="cas">`+want+"</span>") || !strings.Contains(item, `href="/cas/profile/apps/remove?app=appk"`) {
			t.Fatalf("%s: the CAS consent as listed:\n%s", lang, item)
		}
	}
	res, _ := profileCall(h, http.MethodPost, "/cas/profile/apps/remove", "TGT-live", "en", url.Values{"app": {"appk"}, "csrf": {testCSRF}})
	if res.StatusCode != http.StatusSeeOther || len(tk.revoked) != 1 || tk.revoked[0] != "appk" {
		t.Fatalf("remove the CAS consent: %d %v", res.StatusCode, tk.revoked)
	}
}
