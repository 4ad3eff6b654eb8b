package cas

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// otpSSO answers as identity for "mia" with an authenticator app: the
// password Right-Pass-1, then the code 123456 with the binding Login was
// given (one use).
type otpSSO struct {
	identityv1.SSOServiceClient
	mu       sync.Mutex
	bindings map[string]string // token -> binding
	n        int
	confirms []*identityv1.ConfirmTotpEnrolmentRequest
	removes  int
	enrolled bool
	codes    int // LoginOtp calls
}

func (s *otpSSO) Login(_ context.Context, r *identityv1.SSOLoginRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.GetLogin() != "mia" || r.GetPassword() != "Right-Pass-1" {
		return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_BAD_CREDENTIALS}, nil
	}
	if r.GetOtpBinding() == "" {
		return nil, identityStatus(codes.Internal, "NO_BINDING", "the page sent no binding")
	}
	s.n++
	tok := "otp-token-" + string(rune('a'+s.n))
	s.bindings[tok] = r.GetOtpBinding()
	return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_OTP_REQUIRED, OtpToken: tok}, nil
}

func (s *otpSSO) LoginOtp(_ context.Context, r *identityv1.SSOLoginOtpRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes++
	b, ok := s.bindings[r.GetOtpToken()]
	if !ok || b != r.GetOtpBinding() {
		return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_OTP_EXPIRED}, nil
	}
	if r.GetCode() != "123456" {
		return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_BAD_CREDENTIALS}, nil
	}
	delete(s.bindings, r.GetOtpToken())
	return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_OK, UserId: "u-mia", Login: "mia", OrgId: "o1", SecondFactor: true}, nil
}

var otpTokenField = regexp.MustCompile(`name="otp_token" value="([^"]+)"`)

// TestOTPLoginPages: the password of a person with an authenticator app
// opens no session but the code page (both languages); a wrong code is the
// page again; a right one opens a level-2 session that reaches a level-2
// service; the half-done login is of no use in another browser, or with a
// forged token.
func TestOTPLoginPages(t *testing.T) {
	tickets, sso := &certTickets{sessions: map[string]int32{}}, &otpSSO{bindings: map[string]string{}}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso}))
	t.Cleanup(srv.Close)
	strong := "https://strong.example.com/app"
	browser := func() *http.Client { return certBrowser(t, srv, nil) }
	passwordStep := func(c *http.Client, lang string) (string, string) {
		t.Helper()
		_, page := getPage(t, c, srv.URL+"/cas/login?locale="+lang+"&service="+url.QueryEscape("https://weak.example.com/"), lang)
		csrf := csrfField.FindStringSubmatch(page)[1]
		resp := postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "username": {"mia"}, "password": {"Right-Pass-1"},
			"service": {strong}})
		page = body(resp)
		m := otpTokenField.FindStringSubmatch(page)
		intro := "Open your authenticator app"
		if lang != "en" {
			intro = "身份验证器应用"
		}
		if resp.StatusCode != http.StatusOK || m == nil || resp.Header.Get("Location") != "" || !strings.Contains(page, intro) {
			t.Fatalf("password step: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
		if strings.Contains(resp.Header.Get("Set-Cookie"), TGCCookie+"=") {
			t.Fatal("the password step set a session cookie")
		}
		if !strings.Contains(resp.Header.Get("Set-Cookie"), otpCookie+"=") {
			t.Fatal("the code step's browser binding was not set")
		}
		return m[1], csrf
	}
	// A login that asks for no code (here a wrong password) sets no
	// binding cookie.
	{
		c := browser()
		_, page := getPage(t, c, srv.URL+"/cas/login", "en")
		resp := postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrfField.FindStringSubmatch(page)[1]}, "username": {"mia"},
			"password": {"Wrong-Pass-1"}})
		if _ = body(resp); resp.StatusCode != http.StatusUnauthorized || strings.Contains(resp.Header.Get("Set-Cookie"), otpCookie+"=") {
			t.Fatalf("wrong password: %d, cookies %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	}
	// A level-2 application's page links to the password-and-code form,
	// which shows the password form (a password alone cannot reach level 2).
	code, page := getPage(t, browser(), srv.URL+"/cas/login?service="+url.QueryEscape(strong), "en")
	if code != http.StatusForbidden || strings.Contains(page, `name="password"`) ||
		!strings.Contains(page, `href="/cas/login?service=https%3A%2F%2Fstrong.example.com%2Fapp&amp;twofactor=1"`) {
		t.Fatalf("level-2 page: %d\n%s", code, page)
	}
	code, page = getPage(t, browser(), srv.URL+"/cas/login?twofactor=1&service="+url.QueryEscape(strong), "en")
	if code != http.StatusOK || !strings.Contains(page, `name="password"`) || !strings.Contains(page, `name="twofactor" value="1"`) ||
		!strings.Contains(page, "your password followed by the code of your authenticator app") {
		t.Fatalf("level-2 page, password and code: %d\n%s", code, page)
	}
	for _, lang := range []string{"en", "zh-CN"} {
		c := browser()
		tok, csrf := passwordStep(c, lang)
		_, page := getPage(t, c, srv.URL+"/cas/login", lang) // no session was opened
		if !strings.Contains(page, `name="password"`) {
			t.Fatalf("after the password step the login page is not shown:\n%s", page)
		}
		// A wrong code: the code page again, with the same half-done login.
		resp := postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "otp_token": {tok}, "code": {"000000"}, "service": {strong}})
		page = body(resp)
		want := "The code is wrong"
		if lang != "en" {
			want = "动态口令错误"
		}
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, want) || !strings.Contains(page, tok) {
			t.Fatalf("%s wrong code: %d\n%s", lang, resp.StatusCode, page)
		}
		// Not a code (letters, too short or long): the same page, and
		// identity is not asked (it would be no wrong code to count).
		sso.mu.Lock()
		asked := sso.codes
		sso.mu.Unlock()
		for _, bad := range []string{"12a456", "12345", "1234567", "", "１２３４５６"} {
			resp := postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "otp_token": {tok}, "code": {bad}, "service": {strong}})
			if page := body(resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, want) || !strings.Contains(page, tok) {
				t.Fatalf("%s code %q: %d\n%s", lang, bad, resp.StatusCode, page)
			}
		}
		sso.mu.Lock()
		if sso.codes != asked {
			t.Fatalf("malformed codes reached identity: %d calls", sso.codes-asked)
		}
		sso.mu.Unlock()
		// Another browser with the page's values (a copied form) is refused.
		other := browser()
		_, op := getPage(t, other, srv.URL+"/cas/login", lang)
		ocsrf := csrfField.FindStringSubmatch(op)[1]
		resp = postForm(t, other, srv.URL+"/cas/login", url.Values{"csrf": {ocsrf}, "otp_token": {tok}, "code": {"123456"}, "service": {strong}})
		page = body(resp)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" || !strings.Contains(page, `name="password"`) {
			t.Fatalf("another browser: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
		// Without the CSRF token nothing is asked.
		resp = postForm(t, c, srv.URL+"/cas/login", url.Values{"otp_token": {tok}, "code": {"123456"}, "service": {strong}})
		if body(resp); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("no csrf: %d", resp.StatusCode)
		}
		// The right code: a level-2 session and the level-2 service's ticket.
		resp = postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "otp_token": {tok}, "code": {"123456"}, "service": {strong}})
		body(resp)
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), strong+"?ticket=ST-1") {
			t.Fatalf("right code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		tickets.mu.Lock()
		last := tickets.created[len(tickets.created)-1]
		tickets.mu.Unlock()
		if last.GetAuthLevel() != 2 || last.GetUserId() != "u-mia" || last.GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_PASSWORD_OTP {
			t.Fatalf("session created %+v", last)
		}
		// Used: the same half-done login again is expired.
		resp = postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "otp_token": {tok}, "code": {"123456"}})
		page = body(resp)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, `name="password"`) {
			t.Fatalf("used half-done login: %d\n%s", resp.StatusCode, page)
		}
	}
}

// totpSSO is the profile's identity with the authenticator app calls.
type totpSSO struct {
	*profSSO
	o *otpSSO
}

func (s totpSSO) GetOwnProfile(ctx context.Context, r *identityv1.GetOwnProfileRequest, opts ...grpc.CallOption) (*identityv1.OwnProfile, error) {
	p, err := s.profSSO.GetOwnProfile(ctx, r, opts...)
	if err == nil {
		s.o.mu.Lock()
		p.TotpEnrolled = s.o.enrolled
		s.o.mu.Unlock()
	}
	return p, err
}

func (s totpSSO) BeginTotpEnrolment(context.Context, *identityv1.BeginTotpEnrolmentRequest, ...grpc.CallOption) (*identityv1.TotpEnrolment, error) {
	s.o.mu.Lock()
	enrolled := s.o.enrolled
	s.o.mu.Unlock()
	if enrolled {
		return nil, identityStatus(codes.FailedPrecondition, "TOTP_ALREADY_ENROLLED", "an authenticator app is already set up; remove it first")
	}
	return &identityv1.TotpEnrolment{Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", EnrolmentToken: "k1:sealed-enrolment",
		Uri: "otpauth://totp/UIAS:pia?algorithm=SHA1&digits=6&issuer=UIAS&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}, nil
}

func (s totpSSO) ConfirmTotpEnrolment(ctx context.Context, r *identityv1.ConfirmTotpEnrolmentRequest, _ ...grpc.CallOption) (*identityv1.OwnProfile, error) {
	s.o.mu.Lock()
	s.o.confirms = append(s.o.confirms, r)
	s.o.mu.Unlock()
	switch {
	case r.GetCode() != "123456":
		return nil, identityStatus(codes.InvalidArgument, "TOTP_CODE_WRONG", "the code does not match")
	case r.GetCurrentPassword() != "Right-Pass-1":
		return nil, identityStatus(codes.FailedPrecondition, "VERIFICATION_FAILED", "no", "verdict", "BAD_CREDENTIALS")
	}
	s.o.mu.Lock()
	s.o.enrolled = true
	s.o.mu.Unlock()
	return s.GetOwnProfile(ctx, &identityv1.GetOwnProfileRequest{UserId: r.GetUserId()})
}

func (s totpSSO) RemoveOwnTotp(ctx context.Context, r *identityv1.RemoveOwnTotpRequest, _ ...grpc.CallOption) (*identityv1.OwnProfile, error) {
	if r.GetCurrentPassword() != "Right-Pass-1" {
		return nil, identityStatus(codes.FailedPrecondition, "VERIFICATION_FAILED", "no", "verdict", "BAD_CREDENTIALS")
	}
	if r.GetCode() != "123456" {
		return nil, identityStatus(codes.InvalidArgument, "TOTP_CODE_WRONG", "the code does not match")
	}
	s.o.mu.Lock()
	s.o.enrolled, s.o.removes = false, s.o.removes+1
	s.o.mu.Unlock()
	return s.GetOwnProfile(ctx, &identityv1.GetOwnProfileRequest{UserId: r.GetUserId()})
}

// TestTOTPSetUpPages: My profile offers the set-up; its page draws the QR
// code as inline SVG under the unchanged CSP (no image source at all),
// shows the key, and saves only with the right code and password (the
// same secret shown again after a refusal); the saved profile page holds
// no secret; removal takes the password.
func TestTOTPSetUpPages(t *testing.T) {
	o := &otpSSO{bindings: map[string]string{}}
	sso := totpSSO{profSSO: &profSSO{}, o: o}
	srv := httptest.NewServer(New(Options{Tickets: profTickets{}, SSO: sso}))
	t.Cleanup(srv.Close)
	c := certBrowser(t, srv, nil)
	u, _ := url.Parse(srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: TGCCookie, Value: "TGT-live", Path: "/cas/"}})

	_, page := getPage(t, c, srv.URL+"/cas/profile", "zh-CN")
	if !strings.Contains(page, "设置动态口令") || !strings.Contains(page, `href="/cas/profile/totp"`) {
		t.Fatalf("profile without an app:\n%s", page)
	}
	resp, err := c.Get(srv.URL + "/cas/profile/totp")
	if err != nil {
		t.Fatal(err)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	page = body(resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<svg xmlns="http://www.w3.org/2000/svg" id="totp-qr"`) ||
		!strings.Contains(page, `<path fill="#000" d="M`) || !strings.Contains(page, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP") ||
		strings.Contains(page, "<img") || strings.Contains(page, "data:") {
		t.Fatalf("set-up page: %d\n%s", resp.StatusCode, page)
	}
	if !strings.HasPrefix(csp, "default-src 'none';") || strings.Contains(csp, "img-src") {
		t.Fatalf("CSP changed: %s", csp)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	form := func(code, pw string) url.Values {
		return url.Values{"csrf": {csrf}, "action": {"confirm"}, "enrolment_token": {"k1:sealed-enrolment"}, "code": {code},
			"current_password": {pw}, "secret": {"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"},
			"uri": {"otpauth://totp/UIAS:pia?algorithm=SHA1&digits=6&issuer=UIAS&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}}
	}
	// A wrong code, a wrong password: the same page (the same key) with a sentence.
	for _, tc := range []struct {
		code, pw string
		status   int
		want     string
	}{{"111111", "Right-Pass-1", http.StatusBadRequest, "The code does not match"},
		{"123456", "Wrong-Pass-1", http.StatusUnauthorized, "password"}} {
		resp := postForm(t, c, srv.URL+"/cas/profile/totp", form(tc.code, tc.pw))
		page := body(resp)
		if resp.StatusCode != tc.status || !strings.Contains(page, tc.want) || !strings.Contains(page, `id="totp-qr"`) {
			t.Fatalf("refused set-up (%s): %d\n%s", tc.code, resp.StatusCode, page)
		}
	}
	// No CSRF token: refused before identity.
	f := form("123456", "Right-Pass-1")
	f.Del("csrf")
	if resp := postForm(t, c, srv.URL+"/cas/profile/totp", f); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("no csrf: %d", resp.StatusCode)
	}
	o.mu.Lock()
	n := len(o.confirms)
	o.mu.Unlock()
	if n != 2 {
		t.Fatalf("identity asked %d times, want 2", n)
	}
	resp = postForm(t, c, srv.URL+"/cas/profile/totp", form("123456", "Right-Pass-1"))
	body(resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cas/profile?done=totp" {
		t.Fatalf("set-up: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The set-up page opened again (a bookmark, Back): the profile says an
	// app is set up already (nothing changed meanwhile).
	if code, again := getPage(t, c, srv.URL+"/cas/profile/totp", "en"); code != http.StatusOK ||
		!strings.Contains(again, "An authenticator app is already set up") || strings.Contains(again, "totp-qr") {
		t.Fatalf("set-up page with an app: %d\n%s", code, again)
	}
	_, page = getPage(t, c, srv.URL+"/cas/profile?done=totp", "en")
	if !strings.Contains(page, "Your authenticator app is set up") || !strings.Contains(page, "totp-remove") ||
		strings.Contains(page, "JBSWY3DP") || strings.Contains(page, "totp-qr") {
		t.Fatalf("profile after the set-up:\n%s", page)
	}
	resp = postForm(t, c, srv.URL+"/cas/profile/totp", url.Values{"csrf": {csrf}, "action": {"remove"}, "current_password": {"Wrong-Pass-1"}, "code": {"123456"}})
	if body(resp); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("remove with a wrong password: %d", resp.StatusCode)
	}
	// Both factors: without the code, or with a wrong one, nothing is removed.
	for _, code := range []string{"", "654321"} {
		resp = postForm(t, c, srv.URL+"/cas/profile/totp", url.Values{"csrf": {csrf}, "action": {"remove"}, "current_password": {"Right-Pass-1"}, "code": {code}})
		if b := body(resp); resp.StatusCode != http.StatusBadRequest || o.removes != 0 || !strings.Contains(b, "code") {
			t.Fatalf("remove with code %q: %d", code, resp.StatusCode)
		}
	}
	resp = postForm(t, c, srv.URL+"/cas/profile/totp", url.Values{"csrf": {csrf}, "action": {"remove"}, "current_password": {"Right-Pass-1"}, "code": {"123456"}})
	if body(resp); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/cas/profile?done=totp-removed" || o.removes != 1 {
		t.Fatalf("remove: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestOTPStepUp: a password session (level 1) sent to a level-2
// application without a certificate is offered the password-and-code
// login (renew); its code raises the same person's session to level 2
// (replace_tgt) and the ticket is issued.
func TestOTPStepUp(t *testing.T) {
	tickets, sso := &certTickets{sessions: map[string]int32{"TGT-1": 1}}, &otpSSO{bindings: map[string]string{}}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso}))
	t.Cleanup(srv.Close)
	strong := "https://strong.example.com/app"
	c := certBrowser(t, srv, nil)
	u, _ := url.Parse(srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: TGCCookie, Value: "TGT-1", Path: "/cas/"}})
	code, page := getPage(t, c, srv.URL+"/cas/login?service="+url.QueryEscape(strong), "en")
	link := regexp.MustCompile(`<a href="(/cas/login\?[^"]*twofactor=1[^"]*)">Sign in with your password and authenticator app</a>`).FindStringSubmatch(page)
	if code != http.StatusForbidden || link == nil || !strings.Contains(link[1], "renew=true") {
		t.Fatalf("level-1 session at a level-2 application: %d\n%s", code, page)
	}
	code, page = getPage(t, c, srv.URL+strings.ReplaceAll(link[1], "&amp;", "&"), "en")
	if code != http.StatusOK || !strings.Contains(page, `name="password"`) || !strings.Contains(page, `name="renew" value="true"`) {
		t.Fatalf("step-up form: %d\n%s", code, page)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	resp := postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "username": {"mia"}, "password": {"Right-Pass-1"},
		"service": {strong}, "renew": {"true"}, "twofactor": {"1"}})
	page = body(resp)
	tok := otpTokenField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || tok == nil || !strings.Contains(page, `name="renew" value="true"`) {
		t.Fatalf("password step: %d\n%s", resp.StatusCode, page)
	}
	resp = postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "otp_token": {tok[1]}, "code": {"123456"},
		"service": {strong}, "renew": {"true"}})
	body(resp)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), strong+"?ticket=") {
		t.Fatalf("code: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tickets.mu.Lock()
	last := tickets.created[len(tickets.created)-1]
	tickets.mu.Unlock()
	if last.GetAuthLevel() != 2 || last.GetReplaceTgt() != "TGT-1" {
		t.Fatalf("the session was not raised: %+v", last)
	}
}

// pwSSO answers ChangePassword as identity does for a person with an app
// who is not signed in.
type pwSSO struct {
	identityv1.SSOServiceClient
	mu   sync.Mutex
	reqs []*identityv1.SSOChangePasswordRequest
}

func (s *pwSSO) ChangePassword(_ context.Context, r *identityv1.SSOChangePasswordRequest, _ ...grpc.CallOption) (*identityv1.SSOChangePasswordResponse, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	if r.GetOtp() != "123456" {
		return nil, identityStatus(codes.FailedPrecondition, "VERIFICATION_FAILED", "code required", "verdict", "OTP_REQUIRED")
	}
	return &identityv1.SSOChangePasswordResponse{}, nil
}

// TestPasswordPageAsksForTheCode: without a session the change form has an
// optional code field, passed to identity; identity's OTP_REQUIRED is a
// sentence asking for it.
func TestPasswordPageAsksForTheCode(t *testing.T) {
	sso := &pwSSO{}
	srv := httptest.NewServer(New(Options{Tickets: &certTickets{sessions: map[string]int32{}}, SSO: sso}))
	t.Cleanup(srv.Close)
	c := certBrowser(t, srv, nil)
	code, page := getPage(t, c, srv.URL+"/cas/password", "en")
	if code != http.StatusOK || !strings.Contains(page, `name="code"`) || !strings.Contains(page, "Authenticator app code (if you have set one up)") {
		t.Fatalf("password page: %d\n%s", code, page)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	form := url.Values{"csrf": {csrf}, "username": {"mia"}, "old_password": {"Right-Pass-1"}, "new_password": {"New-Pass-12345"},
		"new_password2": {"New-Pass-12345"}}
	resp := postForm(t, c, srv.URL+"/cas/password", form)
	page = body(resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "enter the code it shows too") {
		t.Fatalf("without the code: %d\n%s", resp.StatusCode, page)
	}
	form.Set("code", " 123456 ")
	resp = postForm(t, c, srv.URL+"/cas/password", form)
	if body(resp); resp.StatusCode == http.StatusUnauthorized || len(sso.reqs) != 2 || sso.reqs[1].GetOtp() != "123456" {
		t.Fatalf("with the code: %d %+v", resp.StatusCode, sso.reqs)
	}
}

// elsewhereSSO answers ChangePassword as identity does at a centre that
// holds the person as a replica.
type elsewhereSSO struct{ identityv1.SSOServiceClient }

func (elsewhereSSO) ChangePassword(context.Context, *identityv1.SSOChangePasswordRequest, ...grpc.CallOption) (*identityv1.SSOChangePasswordResponse, error) {
	return nil, identityStatus(codes.FailedPrecondition, "HOME_CENTRE_ELSEWHERE",
		`user 01a24a-person-id is homed at centre "l2a", not at this centre ("l1")`, "home_centre", "l2a")
}

// TestPasswordPageAtAnotherCentre: a person homed at another centre is
// told to change their password there, naming it (409), not that the new
// password breaks the rules (trial9 D5).
func TestPasswordPageAtAnotherCentre(t *testing.T) {
	srv := httptest.NewServer(New(Options{Tickets: &certTickets{sessions: map[string]int32{}}, SSO: elsewhereSSO{}}))
	t.Cleanup(srv.Close)
	c := certBrowser(t, srv, nil)
	_, page := getPage(t, c, srv.URL+"/cas/password", "en")
	csrf := csrfField.FindStringSubmatch(page)[1]
	resp := postForm(t, c, srv.URL+"/cas/password", url.Values{"csrf": {csrf}, "username": {"mia"}, "old_password": {"Right-Pass-1"},
		"new_password": {"New-Pass-12345"}, "new_password2": {"New-Pass-12345"}})
	page = body(resp)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "managed by another data centre") ||
		!strings.Contains(page, "l2a") || strings.Contains(page, "password rules") || strings.Contains(page, "01a24a-person-id") {
		t.Fatalf("password change at another centre: %d\n%s", resp.StatusCode, page)
	}
}
