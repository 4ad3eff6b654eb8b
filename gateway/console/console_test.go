package console_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/gateway/console"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// fakeAdmin is identity's AdminService as the console sees it: one
// administrator "root" with password "right", whose token is "tok-1"
// until it is revoked; everything else it does not implement panics.
type fakeAdmin struct {
	identityv1.AdminServiceClient
	mu      sync.Mutex
	revoked bool
	calls   []string // "Method token"
	// lockErr is LockUser's answer.
	lockErr error
	otp     bool // the administrator has an authenticator app
	// pwChanged is the person's password change time (ms), moved by
	// ResetPassword.
	pwChanged int64
	// logoutErr is AdminLogout's answer (nil: the token is revoked).
	logoutErr error
	// secretIssued is the application's secret issue time (ms).
	secretIssued int64
	// nested are the calls made as part of a page's call (grpcx.PartOf):
	// they leave no access record of their own.
	nested []string
	// updates are UpdateUser's requests, answered updateErr.
	updates   []*identityv1.UpdateUserRequest
	updateErr error
	// disabledBy: GetUser's person was disabled by this centre (ADR 0048).
	disabledBy string
}

func (f *fakeAdmin) note(ctx context.Context, m string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	md, _ := metadata.FromOutgoingContext(ctx)
	tok := strings.TrimPrefix(strings.Join(md.Get("authorization"), ""), "Bearer ")
	f.calls = append(f.calls, m+" "+tok)
	if grpcx.Serving(ctx) {
		f.nested = append(f.nested, m)
	}
	return tok
}

func (f *fakeAdmin) authed(ctx context.Context, m string) error {
	tok := f.note(ctx, m)
	f.mu.Lock()
	defer f.mu.Unlock()
	if tok != "tok-1" || f.revoked {
		return status.Error(codes.Unauthenticated, "the token has expired or was revoked")
	}
	return nil
}

// reasonErr is a status as the services' funnel makes it.
func reasonErr(c codes.Code, reason, msg string) error {
	st, err := status.New(c, msg).WithDetails(&errdetails.ErrorInfo{Domain: apierr.Domain, Reason: reason})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func (f *fakeAdmin) AdminLogin(ctx context.Context, in *identityv1.AdminLoginRequest, _ ...grpc.CallOption) (*identityv1.AdminLoginResponse, error) {
	f.note(ctx, "AdminLogin")
	if in.GetLoginName() != "root" || in.GetPassword() != "right" {
		return nil, status.Error(codes.Unauthenticated, "the login name or password is not correct")
	}
	if f.otp && in.GetOtp() != "123456" {
		return nil, reasonErr(codes.FailedPrecondition, "TOTP_CODE_REQUIRED", "your authenticator app's code is required")
	}
	f.mu.Lock()
	f.revoked = false
	f.mu.Unlock()
	return &identityv1.AdminLoginResponse{Token: "tok-1"}, nil
}

func (f *fakeAdmin) AdminLogout(ctx context.Context, _ *identityv1.AdminLogoutRequest, _ ...grpc.CallOption) (*identityv1.AdminLogoutResponse, error) {
	if err := f.authed(ctx, "AdminLogout"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if f.logoutErr != nil {
		f.mu.Unlock()
		return nil, f.logoutErr
	}
	f.revoked = true
	f.mu.Unlock()
	return &identityv1.AdminLogoutResponse{}, nil
}

func (f *fakeAdmin) ListUsers(ctx context.Context, _ *identityv1.ListUsersRequest, _ ...grpc.CallOption) (*identityv1.ListUsersResponse, error) {
	if err := f.authed(ctx, "ListUsers"); err != nil {
		return nil, err
	}
	return &identityv1.ListUsersResponse{Users: []*identityv1.User{{Id: "u1", LoginName: "wang", DisplayName: "Wang <b>",
		IdNumberMasked: "110***********002X", PhoneMasked: "138****5678"}}, NextPageToken: "p2"}, nil
}

func (f *fakeAdmin) ListUserCertificates(ctx context.Context, in *identityv1.ListUserCertificatesRequest, _ ...grpc.CallOption) (*identityv1.ListUserCertificatesResponse, error) {
	if err := f.authed(ctx, "ListUserCertificates"); err != nil {
		return nil, err
	}
	return &identityv1.ListUserCertificatesResponse{}, nil
}

func (f *fakeAdmin) GetUser(ctx context.Context, in *identityv1.GetUserRequest, _ ...grpc.CallOption) (*identityv1.User, error) {
	if err := f.authed(ctx, "GetUser"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := &identityv1.User{Id: in.GetId(), LoginName: "wang", DisplayName: "Wang"}
	if f.pwChanged != 0 {
		u.PasswordChangedAt = timestamppb.New(time.UnixMilli(f.pwChanged))
	}
	if f.disabledBy != "" {
		u.DisabledByCentre, u.DisabledByCentreActor = f.disabledBy, "user:adm1"
		u.DisabledByCentreTime = timestamppb.New(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC))
	}
	return u, nil
}

// TestPersonDisabledByCentre: the person page shows a disable by level 1
// (who and when) beside the home's status, in both languages.
func TestPersonDisabledByCentre(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	b.signIn()
	if _, page := b.do("GET", "/console/people/u1", nil, nil); strings.Contains(page, "p-disabled-centre") {
		t.Fatalf("a person not disabled by a centre shows one:\n%s", page)
	}
	f.mu.Lock()
	f.disabledBy = "l1"
	f.mu.Unlock()
	_, page := b.do("GET", "/console/people/u1", nil, nil)
	if !strings.Contains(page, "Disabled by centre") || !regexp.MustCompile(`id="p-disabled-centre">l1 \(user:adm1, [^)]*2026[^)]*\)`).MatchString(page) {
		t.Fatalf("the person page does not show level 1's disable:\n%s", page)
	}
	if _, page := b.do("GET", "/console/people/u1?locale=zh-CN", nil, nil); !strings.Contains(page, "由中心停用") {
		t.Fatalf("the person page in Chinese:\n%s", page)
	}
}

func (f *fakeAdmin) LockUser(ctx context.Context, _ *identityv1.LockUserRequest, _ ...grpc.CallOption) (*identityv1.User, error) {
	if err := f.authed(ctx, "LockUser"); err != nil {
		return nil, err
	}
	return &identityv1.User{}, f.lockErr
}

func (f *fakeAdmin) ResetPassword(ctx context.Context, in *identityv1.ResetPasswordRequest, _ ...grpc.CallOption) (*identityv1.ResetPasswordResponse, error) {
	if err := f.authed(ctx, "ResetPassword"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if t := in.GetIfPasswordChangedAt(); t != nil && t.AsTime().UnixMilli() != f.pwChanged {
		f.mu.Unlock()
		return nil, reasonErr(codes.FailedPrecondition, "PASSWORD_CHANGED_SINCE", "the password was changed after the page was shown")
	}
	f.pwChanged = time.Now().UnixMilli() + int64(len(f.calls)) // a new change time each reset
	f.mu.Unlock()
	return &identityv1.ResetPasswordResponse{User: &identityv1.User{Id: in.GetId(), DisplayName: "Wang"}, TemporaryPassword: "Tmp-Once-42"}, nil
}

func (f *fakeAdmin) called(m string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, m+" ") {
			out = append(out, c)
		}
	}
	return out
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsole(t *testing.T, f *fakeAdmin) *browser {
	t.Helper()
	srv := httptest.NewServer(console.New(console.Options{Admin: f}))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, string(raw)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func formToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the page: %s", page)
	}
	return m[1]
}

// signIn signs root in and returns the people page.
func (b *browser) signIn() string {
	b.t.Helper()
	_, page := b.do("GET", "/console/login", nil, nil)
	res, _ := b.do("POST", "/console/login", url.Values{"csrf": {formToken(b.t, page)}, "login_name": {"root"}, "password": {"right"}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/people" {
		b.t.Fatalf("sign-in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, page = b.do("GET", "/console/people", nil, nil)
	if res.StatusCode != http.StatusOK {
		b.t.Fatalf("people page after sign-in: %d %s", res.StatusCode, page)
	}
	return page
}

// TestSignIn: the sign-in page carries a strict policy and a form token;
// a wrong password shows the service's sentence (401) and sets no session;
// the right one sets the token in an HttpOnly, SameSite=Strict cookie on
// /console/ (never in the URL) and opens the people list with the masked
// ID numbers and phones, escaped; an unsigned visit goes to sign-in.
func TestSignIn(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	res, _ := b.do("GET", "/console/people", nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login" {
		t.Fatalf("unsigned people page: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, page := b.do("GET", "/console/login", nil, nil)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		strings.Contains(csp, "script-src") {
		t.Fatalf("sign-in page policy: %q", csp)
	}
	if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("sign-in page headers: %v", res.Header)
	}
	tok := formToken(t, page)
	res, page = b.do("POST", "/console/login", url.Values{"csrf": {tok}, "login_name": {"root"}, "password": {"wrong"}}, nil)
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "the login name or password is not correct") ||
		!strings.Contains(page, `value="root"`) {
		t.Fatalf("wrong password: %d %s", res.StatusCode, page)
	}
	for _, c := range res.Cookies() {
		if c.Name == "uias_console" {
			t.Fatalf("a failed sign-in set a session: %+v", c)
		}
	}
	res, _ = b.do("POST", "/console/login", url.Values{"csrf": {tok}, "login_name": {"root"}, "password": {"right"}}, nil)
	if res.StatusCode != http.StatusSeeOther || strings.Contains(res.Header.Get("Location"), "tok-1") {
		t.Fatalf("sign-in: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "uias_console" {
			session = c
		}
	}
	if session == nil || session.Value != "tok-1" || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode ||
		session.Path != "/console/" || session.Secure {
		t.Fatalf("session cookie: %+v", session)
	}
	_, page = b.do("GET", "/console/people", nil, nil)
	if !strings.Contains(page, "138****5678") || !strings.Contains(page, "110***********002X") || !strings.Contains(page, "Wang &lt;b&gt;") ||
		!strings.Contains(page, `href="/console/people?page=p2"`) {
		t.Fatalf("people page: %s", page)
	}
	if got := f.called("ListUsers"); len(got) != 1 || got[0] != "ListUsers tok-1" {
		t.Fatalf("the list is asked with the administrator's token: %v", got)
	}
}

// TestSignInOTP: an administrator with an authenticator app is asked for
// its code, and signs in with it.
func TestSignInOTP(t *testing.T) {
	b := newConsole(t, &fakeAdmin{otp: true})
	_, page := b.do("GET", "/console/login", nil, nil)
	tok := formToken(t, page)
	res, page := b.do("POST", "/console/login", url.Values{"csrf": {tok}, "login_name": {"root"}, "password": {"right"}}, nil)
	if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusPreconditionFailed || !strings.Contains(page, "authenticator app") ||
		!regexp.MustCompile(`id="otp"[^>]*required`).MatchString(page) {
		t.Fatalf("without the code: %d %s", res.StatusCode, page)
	}
	res, _ = b.do("POST", "/console/login", url.Values{"csrf": {tok}, "login_name": {"root"}, "password": {"right"}, "otp": {"123456"}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("with the code: %d", res.StatusCode)
	}
}

// TestForms: every POST needs the session's form token (missing or wrong:
// 403, nothing called) and the console's own origin (another site's page:
// 403); the sign-in form its own token. The service's refusal is shown
// in its words with its status.
func TestForms(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	_, page := b.do("GET", "/console/login", nil, nil)
	if res, _ := b.do("POST", "/console/login", url.Values{"login_name": {"root"}, "password": {"right"}}, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without the form token: %d", res.StatusCode)
	}
	if res, _ := b.do("POST", "/console/login", url.Values{"csrf": {formToken(t, page) + "x"}, "login_name": {"root"}, "password": {"right"}}, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in with a wrong form token: %d", res.StatusCode)
	}
	page = b.signIn()
	tok := formToken(t, page)
	for name, tc := range map[string]struct {
		form url.Values
		hdr  map[string]string
	}{
		"no token":       {url.Values{}, nil},
		"wrong token":    {url.Values{"csrf": {tok[:len(tok)-1] + "A"}}, nil},
		"other site":     {url.Values{"csrf": {tok}}, map[string]string{"Origin": "https://evil.example"}},
		"cross-site tag": {url.Values{"csrf": {tok}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		"same-site tag":  {url.Values{"csrf": {tok}}, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": b.base}},
		"null origin":    {url.Values{"csrf": {tok}}, map[string]string{"Origin": "null"}},
	} {
		res, body := b.do("POST", "/console/people/u1/lock", tc.form, tc.hdr)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "did not come from this console") {
			t.Errorf("%s: %d %s", name, res.StatusCode, body)
		}
	}
	if got := f.called("LockUser"); len(got) != 0 {
		t.Fatalf("a refused form reached the service: %v", got)
	}
	res, _ := b.do("POST", "/console/people/u1/lock", url.Values{"csrf": {tok}}, map[string]string{"Origin": b.base, "Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/people/u1?done=lock" {
		t.Fatalf("lock: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// behind a proxy that rewrites Host the browser's same-origin mark holds
	res, _ = b.do("POST", "/console/people/u1/lock", url.Values{"csrf": {tok}},
		map[string]string{"Origin": "https://uias.example.org", "Sec-Fetch-Site": "same-origin"})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("lock through a proxy: %d", res.StatusCode)
	}
	_, page = b.do("GET", "/console/people/u1?done=lock", nil, nil)
	if !strings.Contains(page, "The account is locked.") {
		t.Fatalf("after the lock: %s", page)
	}
	f.lockErr = reasonErr(codes.PermissionDenied, "ADMIN_NOT_ALLOWED", "wang is outside the orgs you administer")
	res, page = b.do("POST", "/console/people/u1/lock", url.Values{"csrf": {tok}}, nil)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(page, "wang is outside the orgs you administer") {
		t.Fatalf("refused lock: %d %s", res.StatusCode, page)
	}
	res, page = b.do("POST", "/console/people/u1/reset-password", url.Values{"csrf": {tok}}, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="one-time">Tmp-Once-42<`) || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("reset password: %d %s", res.StatusCode, page)
	}
	if res, _ := b.do("POST", "/console/people/u1/explode", url.Values{"csrf": {tok}}, nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown action: %d", res.StatusCode)
	}
}

// TestSignOut: signing out revokes the token (AdminLogout) and clears the
// cookie; a token the service no longer accepts (expired elsewhere) sends
// back to the sign-in page, which says why.
func TestSignOut(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	tok := formToken(t, b.signIn())
	res, _ := b.do("POST", "/console/logout", url.Values{"csrf": {tok}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login?why=out" {
		t.Fatalf("sign-out: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := f.called("AdminLogout"); len(got) != 1 || got[0] != "AdminLogout tok-1" {
		t.Fatalf("sign-out revokes the token: %v", got)
	}
	if res, _ := b.do("GET", "/console/people", nil, nil); res.Header.Get("Location") != "/console/login" {
		t.Fatalf("after sign-out: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Signed in again, the token revoked behind the console's back.
	b.signIn()
	if got := f.called("AdminLogout"); len(got) != 1 {
		t.Fatalf("a sign-in without a session revokes nothing: %v", got)
	}
	f.mu.Lock()
	f.revoked = true
	f.mu.Unlock()
	res, _ = b.do("GET", "/console/people", nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/login?why=expired" {
		t.Fatalf("expired session: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, page := b.do("GET", "/console/login?why=expired", nil, nil)
	if !strings.Contains(page, "Your session has ended. Please sign in again.") {
		t.Fatalf("sign-in page after expiry: %s", page)
	}
}

// TestLanguage: ?locale=zh-CN gives the Chinese page, and the choice
// stays (a cookie) on the next page.
func TestLanguage(t *testing.T) {
	b := newConsole(t, &fakeAdmin{})
	_, page := b.do("GET", "/console/login?locale=zh-CN", nil, nil)
	if !strings.Contains(page, `<html lang="zh-CN">`) || !strings.Contains(page, "<h1>登录</h1>") {
		t.Fatalf("Chinese sign-in page: %s", page)
	}
	_, page = b.do("GET", "/console/login", nil, nil)
	if !strings.Contains(page, `<html lang="zh-CN">`) {
		t.Fatalf("the language choice is not kept: %s", page)
	}
}

// fakeAuditLog answers GetArchiveStatus: allowed (the auditor) or not,
// and a backup due or not.
type fakeAuditLog struct {
	auditv1.AuditLogServiceClient
	allowed, due bool
	last         *timestamppb.Timestamp
	calls        int
}

func (f *fakeAuditLog) GetArchiveStatus(_ context.Context, in *auditv1.GetArchiveStatusRequest, _ ...grpc.CallOption) (*auditv1.ArchiveStatus, error) {
	f.calls++
	if !in.GetIfAllowed() {
		return nil, status.Error(codes.PermissionDenied, "only the security auditor")
	}
	st := &auditv1.ArchiveStatus{Allowed: f.allowed, BackupDue: f.due && f.allowed}
	if f.last != nil {
		st.LastBackup = &auditv1.ArchiveRun{Time: f.last}
	}
	return st, nil
}

// TestBackupReminder: the auditor sees the backup reminder on every page
// while a backup is due (saying when the last one was, or that there
// was none); nobody else, and nobody when none is due. It is asked at
// sign-in (and on the audit page), not on every page: each ask is an
// audit record.
func TestBackupReminder(t *testing.T) {
	last := timestamppb.New(time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC))
	for name, tc := range map[string]struct {
		log  *fakeAuditLog
		want string
	}{
		"auditor, never backed up": {&fakeAuditLog{allowed: true, due: true}, "the audit log has never been backed up"},
		"auditor, last long ago":   {&fakeAuditLog{allowed: true, due: true, last: last}, "last backed up on 2026-10-01"},
		"auditor, not due":         {&fakeAuditLog{allowed: true, last: last}, ""},
		"another administrator":    {&fakeAuditLog{due: true}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(console.New(console.Options{Admin: &fakeAdmin{}, AuditLog: tc.log}))
			t.Cleanup(srv.Close)
			jar, _ := cookiejar.New(nil)
			b := &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
			page := b.signIn()
			_, page2 := b.do("GET", "/console/people/u1", nil, nil)
			if tc.log.calls != 1 {
				t.Fatalf("archive status asked %d times for a sign-in and two pages", tc.log.calls)
			}
			if tc.want != "" && !strings.Contains(page2, tc.want) {
				t.Fatalf("the second page lost the reminder: %s", page2)
			}
			banner := regexp.MustCompile(`<p class="banner" role="status" id="backup">([^<]*)</p>`).FindStringSubmatch(page)
			switch {
			case tc.want == "" && banner != nil:
				t.Fatalf("a reminder: %s", banner[1])
			case tc.want != "" && (banner == nil || !strings.Contains(banner[1], tc.want)):
				t.Fatalf("reminder %v, want %q", banner, tc.want)
			}
		})
	}
}

// fakeQuery is audit's query service: it keeps the last request, or
// fails with err.
type fakeQuery struct {
	auditv1.AuditQueryServiceClient
	last *auditv1.QueryRecordsRequest
	err  error
}

func (f *fakeQuery) QueryRecords(_ context.Context, in *auditv1.QueryRecordsRequest, _ ...grpc.CallOption) (*auditv1.QueryRecordsResponse, error) {
	f.last = in
	if f.err != nil {
		return nil, f.err
	}
	return &auditv1.QueryRecordsResponse{Records: []*auditv1.Record{{Api: "admin.login", Result: "failure", Actor: "user:u1",
		ActorName: "root", Description: "Administrator sign-in <failed>"}}, NextPageToken: "n2"}, nil
}

// TestAuditPage: the filters reach QueryRecords (times as UTC, the page's
// language for the descriptions); a malformed time is refused on the page
// (400) before any call; audit down shows the console's sentence (503),
// not the transport's; audit not deployed says so.
func TestAuditPage(t *testing.T) {
	q := &fakeQuery{}
	srv := httptest.NewServer(console.New(console.Options{Admin: &fakeAdmin{}, AuditQuery: q}))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	b.signIn()
	res, page := b.do("GET", "/console/audit?from=2026-12-01T08:00&to=2026-12-02T00:00&api=admin.login&result=failure&text=wang&locale=zh-CN", nil, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Administrator sign-in &lt;failed&gt;") || !strings.Contains(page, "root (user:u1)") ||
		!strings.Contains(page, "page=n2") {
		t.Fatalf("audit page: %d %s", res.StatusCode, page)
	}
	want := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	if l := q.last; !l.GetStartTime().AsTime().Equal(want) || l.GetEndTime().AsTime().Day() != 2 || l.GetApi() != "admin.login" ||
		l.GetResult() != "failure" || l.GetText() != "wang" || l.GetLanguage() != "zh-CN" {
		t.Fatalf("query: %v", l)
	}
	q.last = nil
	res, page = b.do("GET", "/console/audit?from=yesterday&locale=en", nil, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "A time is not in the form 2026-12-31T23:59.") || q.last != nil {
		t.Fatalf("bad time: %d %s", res.StatusCode, page)
	}
	q.err = status.Error(codes.Unavailable, "dial tcp 10.0.0.7:9090: connection refused")
	res, page = b.do("GET", "/console/audit", nil, nil)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "The service is unavailable.") || strings.Contains(page, "10.0.0.7") {
		t.Fatalf("audit down: %d %s", res.StatusCode, page)
	}

	none := newConsole(t, &fakeAdmin{})
	none.signIn()
	res, page = none.do("GET", "/console/audit", nil, nil)
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "The audit log is not available behind this console.") {
		t.Fatalf("no audit: %d %s", res.StatusCode, page)
	}
}

// A reset is posted with the page's mark of the password it replaces: the
// first post resets and shows the temporary password; the same post again
// (a reload of the answer) resets nothing and says why, so the password
// just handed over keeps working (review sec28a L1).
func TestResetNotRepeatedByReload(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	b.signIn()
	_, page := b.do("GET", "/console/people/u1", nil, nil)
	stamp := regexp.MustCompile(`name="password_stamp" value="([^"]+)"`).FindStringSubmatch(page)
	if stamp == nil {
		t.Fatalf("no password stamp on the person page:\n%s", page)
	}
	form := url.Values{"csrf": {formToken(t, page)}, "password_stamp": {stamp[1]}}
	res, p := b.do("POST", "/console/people/u1/reset-password", form, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(p, "Tmp-Once-42") {
		t.Fatalf("reset: %d", res.StatusCode)
	}
	res, p = b.do("POST", "/console/people/u1/reset-password", form, nil)
	if res.StatusCode != http.StatusBadRequest || strings.Contains(p, "Tmp-Once-42") || !strings.Contains(p, "nothing was reset") {
		t.Fatalf("the reload: %d\n%s", res.StatusCode, p)
	}
	// identity decides (the condition travels with the one call): no
	// read of the person of the console's own before a reset
	if got := f.called("ResetPassword"); len(got) != 2 {
		t.Fatalf("ResetPassword calls: %v", got)
	}
	// in Chinese, the console's own sentence
	form.Set("locale", "zh-CN")
	_, p = b.do("POST", "/console/people/u1/reset-password?locale=zh-CN", form, nil)
	if !strings.Contains(p, "未重置") {
		t.Fatalf("the reload in Chinese:\n%s", p)
	}
}

// Two session cookies (one set for the parent domain by a sibling site
// shadows the console's own): no session is taken from the request; it
// goes to sign-in with the reason (review sec28a L2). The session cookie
// is a browser-session cookie (no Expires, no Max-Age): closing the
// browser ends it (L3).
func TestSessionCookieHardening(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	b.signIn()
	before := len(f.called("ListUsers"))
	req, _ := http.NewRequest("GET", b.base+"/console/people", nil)
	req.Header.Set("Cookie", "uias_console=tossed-by-sibling; uias_console=tok-1")
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=cookies") {
		t.Fatalf("two session cookies: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if n := len(f.called("ListUsers")) - before; n != 0 {
		t.Fatalf("a page was served on one of two cookies (%d ListUsers)", n)
	}
	_, page := b.do("GET", "/console/login?why=cookies", nil, nil)
	if !strings.Contains(page, "several console session cookies") {
		t.Fatalf("sign-in page:\n%s", page)
	}
	_, page = b.do("GET", "/console/login", nil, nil)
	res, _ = b.do("POST", "/console/login", url.Values{"csrf": {formToken(t, page)}, "login_name": {"root"}, "password": {"right"}}, nil)
	found := false
	for _, c := range res.Cookies() {
		if c.Name == "uias_console" && c.Value != "" {
			found = true
			if !c.Expires.IsZero() || c.MaxAge != 0 {
				t.Fatalf("session cookie outlives the browser: %+v", c)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
}

// A page's own call leaves its access record; the calls that only dress it
// (the people's org names, the state shown after a refusal) are made as
// part of it, so one page view is one record in the audit log, not one per
// org (review sec28a M2).
func TestSecondaryCallsArePartOfThePage(t *testing.T) {
	f := &fakeAdmin{lockErr: reasonErr(codes.PermissionDenied, "ADMIN_NOT_ALLOWED", "not yours")}
	b := newConsole(t, f)
	page := b.signIn()
	if f.called("ListUsers") == nil {
		t.Fatal("no people listed")
	}
	b.do("POST", "/console/people/u1/lock", url.Values{"csrf": {formToken(t, page)}}, nil)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.nested {
		if m == "ListUsers" || m == "LockUser" || m == "AdminLogin" {
			t.Fatalf("a page's own call %s was marked part of another: %v", m, f.nested)
		}
	}
	if !slices.Contains(f.nested, "GetUser") {
		t.Fatalf("the person shown after the refusal was read as a call of its own: %v (calls %v)", f.nested, f.calls)
	}
}

// A sign-out whose revocation the server did not confirm clears the
// cookie all the same and says that the token may still be valid, never
// "signed out" (review sec28a I1).
func TestSignOutUnconfirmed(t *testing.T) {
	f := &fakeAdmin{logoutErr: status.Error(codes.Unavailable, "identity down")}
	b := newConsole(t, f)
	page := b.signIn()
	res, _ := b.do("POST", "/console/logout", url.Values{"csrf": {formToken(t, page)}}, nil)
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "why=outUnconfirmed") {
		t.Fatalf("sign-out: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	_, p := b.do("GET", "/console/login?why=outUnconfirmed", nil, nil)
	if !strings.Contains(p, "stays valid until its time limit") || strings.Contains(p, "You have signed out.") {
		t.Fatalf("page:\n%s", p)
	}
}

func (f *fakeAdmin) CreateApp(ctx context.Context, in *identityv1.CreateAppRequest, _ ...grpc.CallOption) (*identityv1.CreateAppResponse, error) {
	if err := f.authed(ctx, "CreateApp"); err != nil {
		return nil, err
	}
	if in.GetAppCode() == "taken" {
		return nil, reasonErr(codes.AlreadyExists, "APP_EXISTS", "an application with this type and code exists already")
	}
	f.mu.Lock()
	f.calls = append(f.calls, "CreateApp.ips "+strings.Join(in.GetIpAllowList(), ","))
	f.mu.Unlock()
	f.mu.Lock()
	f.secretIssued = 1_700_000_000_000
	f.mu.Unlock()
	return &identityv1.CreateAppResponse{App: &identityv1.App{Id: "APP-1", AppType: in.GetAppType(), AppCode: in.GetAppCode(), Name: in.GetName(),
		IpAllowList: in.GetIpAllowList(), SecretIssueTime: timestamppb.New(time.UnixMilli(1_700_000_000_000))}, AppSecret: "sec-Once-1"}, nil
}

func (f *fakeAdmin) RotateAppSecret(ctx context.Context, in *identityv1.RotateAppSecretRequest, _ ...grpc.CallOption) (*identityv1.CreateAppResponse, error) {
	if err := f.authed(ctx, "RotateAppSecret"); err != nil {
		return nil, err
	}
	if in.GetOverlapSeconds() != 0 || in.OverlapSeconds != nil {
		return nil, status.Error(codes.InvalidArgument, "the console asks for the default overlap")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := in.GetIfSecretIssuedAt(); t != nil && t.AsTime().UnixMilli() != f.secretIssued {
		return nil, reasonErr(codes.FailedPrecondition, "SECRET_ROTATED_SINCE", "issued again since")
	}
	f.secretIssued++
	return &identityv1.CreateAppResponse{App: &identityv1.App{Id: in.GetId(), Name: "Mail", SecretIssueTime: timestamppb.New(time.UnixMilli(f.secretIssued))},
		AppSecret: fmt.Sprintf("sec-Once-%d", f.secretIssued-1_700_000_000_000+1)}, nil
}

func (f *fakeAdmin) ListApps(ctx context.Context, _ *identityv1.ListAppsRequest, _ ...grpc.CallOption) (*identityv1.ListAppsResponse, error) {
	if err := f.authed(ctx, "ListApps"); err != nil {
		return nil, err
	}
	return &identityv1.ListAppsResponse{}, nil
}

// TestAppCreateAndRotate: an administrator registers an application from
// the console and sees its App_Secret once, on the answer to the form
// (not redirected: the secret is in no URL, and a reload of the app's
// page shows it no more); a refusal keeps the form filled and says why;
// a secret rotation shows the new secret once. Every call carries the
// administrator's token.
func TestAppCreateAndRotate(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	b.signIn()
	_, list := b.do("GET", "/console/apps", nil, nil)
	if !strings.Contains(list, `href="/console/apps/new"`) {
		t.Fatalf("no new-application link: %s", list)
	}
	_, form := b.do("GET", "/console/apps/new", nil, nil)
	tok := formToken(t, form)
	res, page := b.do("POST", "/console/apps", url.Values{"csrf": {tok}, "app_type": {"WEB"}, "app_code": {"taken"}, "name": {"Mail"},
		"ip_allow_list": {"192.0.2.0/24"}}, nil)
	if res.StatusCode != http.StatusConflict || !strings.Contains(page, "exists already") || !strings.Contains(page, `value="taken"`) ||
		!strings.Contains(page, "192.0.2.0/24") {
		t.Fatalf("refused create: %d %s", res.StatusCode, page)
	}
	res, page = b.do("POST", "/console/apps", url.Values{"csrf": {tok}, "app_type": {"WEB"}, "app_code": {"mail"}, "name": {"Mail"},
		"ip_allow_list": {"192.0.2.0/24\n198.51.100.7, 203.0.113.0/28"}}, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="app-secret">sec-Once-1<`) || !strings.Contains(page, "APP-1") ||
		!strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("create: %d %v %s", res.StatusCode, res.Header, page)
	}
	if got := f.called("CreateApp.ips"); len(got) != 1 || got[0] != "CreateApp.ips 192.0.2.0/24,198.51.100.7,203.0.113.0/28" {
		t.Fatalf("allow-list sent: %v", got)
	}
	if calls := f.called("CreateApp"); len(calls) != 2 || calls[1] != "CreateApp tok-1" {
		t.Fatalf("CreateApp calls: %v", calls)
	}
	stamp := regexp.MustCompile(`name="secret_stamp" value="([^"]+)"`).FindStringSubmatch(page)
	if stamp == nil {
		t.Fatalf("no secret stamp on the app page: %s", page)
	}
	rotate := url.Values{"csrf": {tok}, "secret_stamp": {stamp[1]}}
	res, page = b.do("POST", "/console/apps/APP-1/rotate", rotate, nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, `id="app-secret">sec-Once-2<`) || strings.Contains(page, "sec-Once-1") {
		t.Fatalf("rotate: %d %s", res.StatusCode, page)
	}
	// the same form again (a double click, a reload): no second secret
	res, page = b.do("POST", "/console/apps/APP-1/rotate", rotate, nil)
	if res.StatusCode == http.StatusOK || strings.Contains(page, "app-secret") || !strings.Contains(page, "no other secret was issued") {
		t.Fatalf("rotation repeated: %d %s", res.StatusCode, page)
	}
	// without the form token nothing is created
	n := len(f.called("CreateApp"))
	res, _ = b.do("POST", "/console/apps", url.Values{"app_type": {"WEB"}, "app_code": {"x"}, "name": {"X"}}, nil)
	if res.StatusCode != http.StatusForbidden || len(f.called("CreateApp")) != n {
		t.Fatalf("create without the form token: %d", res.StatusCode)
	}
}

func (f *fakeAdmin) GetApp(ctx context.Context, in *identityv1.GetAppRequest, _ ...grpc.CallOption) (*identityv1.App, error) {
	if err := f.authed(ctx, "GetApp"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &identityv1.App{Id: in.GetId(), Name: "Mail", SecretIssueTime: timestamppb.New(time.UnixMilli(f.secretIssued))}, nil
}

// A bulk certificate upload over the bound is answered 413 saying so, not
// "form could not be read" (review sec30c L4); nothing is called.
func TestCertUploadTooLarge(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	page := b.signIn()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", formToken(t, page))
	fw, _ := mw.CreateFormFile("file", "bundle.pem")
	_, _ = fw.Write(bytes.Repeat([]byte("A"), 6<<20))
	_ = mw.Close()
	req, _ := http.NewRequest("POST", b.base+"/console/certs", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "larger than 4 MiB") {
		t.Fatalf("a 6 MiB upload: %d\n%s", res.StatusCode, raw)
	}
	if len(f.called("BindCertificates")) != 0 {
		t.Fatal("an upload over the bound reached identity")
	}
}
