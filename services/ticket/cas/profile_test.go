package cas

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// profTickets knows one live session, TGT-live, of person u1 ("pia").
type profTickets struct{ ticketv1.TicketServiceClient }

func (profTickets) GetSession(_ context.Context, r *ticketv1.GetSessionRequest, _ ...grpc.CallOption) (*ticketv1.Session, error) {
	if r.GetTgt() != "TGT-live" {
		return nil, apierr.ToStatus(apierr.New(apierr.NotFound, "SESSION_NOT_FOUND", "no such session"))
	}
	return &ticketv1.Session{Id: "s1", UserId: "u1", Login: "pia", AuthLevel: 1}, nil
}

func (profTickets) MyApplications(context.Context, *ticketv1.MyApplicationsRequest, ...grpc.CallOption) (*ticketv1.MyApplicationsResponse, error) {
	return &ticketv1.MyApplicationsResponse{}, nil
}

func (profTickets) PortalEntries(context.Context, *ticketv1.PortalEntriesRequest, ...grpc.CallOption) (*ticketv1.PortalEntriesResponse, error) {
	return &ticketv1.PortalEntriesResponse{}, nil
}

// profSSO answers identity's profile calls as identity does: the masks
// only, the current password "Right-Pass-1", UpdateUser's e-mail rule.
type profSSO struct {
	identityv1.SSOServiceClient
	mu         sync.Mutex
	updates    []*identityv1.UpdateOwnProfileRequest
	locked     bool
	editable   bool // identity.policy.self_service_display_name
	noPassword bool // a person who signs in only with a certificate
	// unit: the account is a unit's (its code masked); person: identity
	// says it is a person's (else the type is not answered, as an identity
	// that predates it).
	unit, person bool
}

const clearIDNumber = "110101199003071233"

func (s *profSSO) GetOwnProfile(_ context.Context, r *identityv1.GetOwnProfileRequest, _ ...grpc.CallOption) (*identityv1.OwnProfile, error) {
	changed := time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC)
	p := &identityv1.OwnProfile{UserId: r.GetUserId(), Login: "pia", DisplayName: "Pia <Lin>", OrgName: "Harbour Bureau",
		IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumberMask: "110***********1233", PhoneMask: "138****5678",
		Email: "pia@example.org", PasswordChangedAt: timestamppb.New(changed),
		PasswordExpiresAt: timestamppb.New(changed.Add(90 * 24 * time.Hour)), DisplayNameEditable: s.editable, NoPassword: s.noPassword}
	switch {
	case s.unit:
		p.UserType, p.DisplayName, p.IdType, p.IdNumberMask = identityv1.UserType_USER_TYPE_UNIT, "某某航运有限公司",
			identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE, "913*************22"
	case s.person:
		p.UserType = identityv1.UserType_USER_TYPE_PERSON
	}
	return p, nil
}

func (s *profSSO) UpdateOwnProfile(_ context.Context, r *identityv1.UpdateOwnProfileRequest, _ ...grpc.CallOption) (*identityv1.OwnProfile, error) {
	s.mu.Lock()
	s.updates = append(s.updates, r)
	s.mu.Unlock()
	switch {
	case s.locked:
		return nil, identityStatus(codes.FailedPrecondition, "VERIFICATION_FAILED", "current password not accepted: account is locked",
			"verdict", "ACCOUNT_LOCKED")
	case r.GetCurrentPassword() != "Right-Pass-1":
		return nil, identityStatus(codes.FailedPrecondition, "VERIFICATION_FAILED", "current password not accepted: bad credentials",
			"verdict", "BAD_CREDENTIALS")
	case slices.Contains(r.GetUpdateMask(), "email") && !strings.Contains(r.GetEmail(), "@"):
		return nil, apierr.ToStatus(apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, "email is not a valid address").
			WithMeta(apierr.MetaField, "email"))
	}
	return s.GetOwnProfile(context.Background(), &identityv1.GetOwnProfileRequest{UserId: r.GetUserId()})
}

// identityStatus is a refusal as identity's funnel sends it (its reasons
// are registered in identity's process, not in this test's).
func identityStatus(code codes.Code, reason, msg string, meta ...string) error {
	info := &errdetails.ErrorInfo{Reason: reason, Domain: apierr.Domain, Metadata: map[string]string{}}
	for i := 0; i+1 < len(meta); i += 2 {
		info.Metadata[meta[i]] = meta[i+1]
	}
	st, _ := status.New(code, msg).WithDetails(info)
	return st.Err()
}

func (s *profSSO) calls() []*identityv1.UpdateOwnProfileRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

const testCSRF = "0123456789abcdef0123456789abcdef-token"

// profileCall makes one request to h with the session cookie (unless
// tgt is ""), the CSRF cookie and the page language lang.
func profileCall(h http.Handler, method, path, tgt, lang string, form url.Values) (*http.Response, string) {
	var r *http.Request
	if method == http.MethodPost {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	if tgt != "" {
		r.AddCookie(&http.Cookie{Name: TGCCookie, Value: tgt})
	}
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: testCSRF})
	if lang != "" {
		r.Header.Set("Accept-Language", lang)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Result(), string(b)
}

// TestProfilePage: the signed-in person sees their account with the ID
// number and phone masked (never in clear), in both languages, under the
// pages' Content-Security-Policy, with links to the portal and back;
// without a session the browser goes to the login page.
func TestProfilePage(t *testing.T) {
	h := New(Options{Tickets: profTickets{}, SSO: &profSSO{}})
	for _, tgt := range []string{"", "TGT-gone"} {
		res, _ := profileCall(h, http.MethodGet, "/cas/profile", tgt, "en", nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/cas/login?next=profile" {
			t.Fatalf("without a session (%q): %d %s", tgt, res.StatusCode, res.Header.Get("Location"))
		}
	}
	// The login page keeps where to return; a signed-in browser returns
	// there. Only the pages that ask for it: no open redirect.
	if _, body := profileCall(h, http.MethodGet, "/cas/login?next=profile", "", "en", nil); !strings.Contains(body, `<input type="hidden" name="next" value="profile">`) {
		t.Errorf("the login page lost next=profile:\n%s", body)
	}
	for next, want := range map[string]string{"profile": "/cas/profile", "https://evil.example/": "/cas/portal",
		"//evil.example": "/cas/portal", "portal": "/cas/portal", "logout": "/cas/portal"} {
		res, _ := profileCall(h, http.MethodGet, "/cas/login?next="+url.QueryEscape(next), "TGT-live", "en", nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
			t.Errorf("signed in, next=%s: %d %s, want %s", next, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{"en", []string{"<h1>My profile</h1>", `<dd id="p-login">pia</dd>`, `<dd id="p-name">Pia &lt;Lin&gt;</dd>`,
			`<dd id="p-org">Harbour Bureau</dd>`, `<dd id="p-idtype">Resident identity card</dd>`,
			`<dd id="p-idnumber">110***********1233</dd>`, `<dd id="p-phone">138****5678</dd>`, `<dd id="p-email">pia@example.org</dd>`,
			`<dd id="p-pwchanged">2026-11-01 08:30 UTC</dd>`, `<dd id="p-pwexpires">2027-01-30 08:30 UTC</dd>`,
			"can only be changed by your administrator", `name="current_password"`, `href="/cas/portal"`, "Save changes"}},
		{"zh-CN,zh;q=0.9", []string{"<h1>我的资料</h1>", "居民身份证", `<dd id="p-idnumber">110***********1233</dd>`, "所属单位",
			"修改联系方式", "保存修改", "只能由管理员修改"}},
	} {
		res, body := profileCall(h, http.MethodGet, "/cas/profile", "TGT-live", tc.lang, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", tc.lang, res.StatusCode)
		}
		for _, s := range tc.want {
			if !strings.Contains(body, s) {
				t.Errorf("%s: the page lacks %q:\n%s", tc.lang, s, body)
			}
		}
		if strings.Contains(body, clearIDNumber) || strings.Contains(body, "13812345678") {
			t.Errorf("%s: clear personal data on the page", tc.lang)
		}
		// The display name is not editable by default: no field for it.
		if strings.Contains(body, `name="display_name"`) {
			t.Errorf("%s: display name field without the policy", tc.lang)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none'; style-src 'nonce-") || strings.Contains(csp, "unsafe") ||
			strings.Contains(body, "<script") || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v, or a script on the page", tc.lang, res.Header)
		}
	}
	// The portal links to the profile.
	if _, body := profileCall(h, http.MethodGet, "/cas/portal", "TGT-live", "en", nil); !strings.Contains(body, `<a href="/cas/profile">My profile</a>`) {
		t.Errorf("portal without a link to the profile:\n%s", body)
	}
	if _, body := profileCall(h, http.MethodGet, "/cas/profile?done=profile", "TGT-live", "en", nil); !strings.Contains(body, "Your profile has been saved.") {
		t.Errorf("saved message missing")
	}
	// A person without a password: no form (nothing to re-enter), a
	// sentence saying the administrator changes the details.
	h = New(Options{Tickets: profTickets{}, SSO: &profSSO{noPassword: true}})
	for lang, want := range map[string]string{"en": "You sign in without a password", "zh-CN": "您未设置登录密码"} {
		res, body := profileCall(h, http.MethodGet, "/cas/profile", "TGT-live", lang, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, want) || strings.Contains(body, `name="current_password"`) ||
			strings.Contains(body, `href="/cas/password"`) {
			t.Errorf("%s, no password: %d\n%s", lang, res.StatusCode, body)
		}
	}
}

// TestProfilePost: the form changes the e-mail and phone of the session's
// person (never a person named in the form) with the current password and
// the CSRF token; refusals are sentences on the page, in both languages.
func TestProfilePost(t *testing.T) {
	sso := &profSSO{}
	h := New(Options{Tickets: profTickets{}, SSO: sso})
	form := func(kv ...string) url.Values {
		v := url.Values{"csrf": {testCSRF}, "email": {"pia.new@example.org"}, "phone": {"13987654321"},
			"current_password": {"Right-Pass-1"}, "user_id": {"someone-else"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	// Wrong CSRF token: 403, nothing asked of identity.
	res, body := profileCall(h, http.MethodPost, "/cas/profile", "TGT-live", "en", form("csrf", "forged-forged-forged-forged-forged"))
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "This form expired") || len(sso.calls()) != 0 {
		t.Fatalf("wrong CSRF: %d (%d calls) %s", res.StatusCode, len(sso.calls()), body)
	}
	// No session: to the login page.
	if res, _ := profileCall(h, http.MethodPost, "/cas/profile", "", "en", form()); res.StatusCode != http.StatusSeeOther || len(sso.calls()) != 0 {
		t.Fatalf("without a session: %d", res.StatusCode)
	}
	for _, tc := range []struct {
		name, lang string
		form       url.Values
		code       int
		want       string
		calls      int
	}{
		{"wrong password", "en", form("current_password", "Wrong-Pass-9"), http.StatusUnauthorized,
			"The current password is not correct. Nothing was changed.", 1},
		{"wrong password zh", "zh-CN", form("current_password", "Wrong-Pass-9"), http.StatusUnauthorized, "当前密码不正确，资料未修改。", 1},
		{"bad e-mail", "en", form("email", "pia-at-example"), http.StatusBadRequest, "The e-mail address is not valid.", 1},
		{"bad e-mail zh", "zh-CN", form("email", "pia-at-example"), http.StatusBadRequest, "电子邮箱格式不正确", 1},
		{"no password", "en", form("current_password", ""), http.StatusUnauthorized, "Enter your current password to save the changes.", 0},
		{"nothing changed", "en", form("email", "pia@example.org", "phone", ""), http.StatusBadRequest, "Nothing was changed.", 0},
		{"phone too long", "en", form("phone", strings.Repeat("1", 33)), http.StatusBadRequest, "The mobile phone number is not valid.", 0},
	} {
		before := len(sso.calls())
		res, body := profileCall(h, http.MethodPost, "/cas/profile", "TGT-live", tc.lang, tc.form)
		if res.StatusCode != tc.code || !strings.Contains(body, `role="alert" id="profile-error">`+tc.want) {
			t.Errorf("%s: %d, want %d with %q:\n%s", tc.name, res.StatusCode, tc.code, tc.want, body)
		}
		if n := len(sso.calls()) - before; n != tc.calls {
			t.Errorf("%s: %d calls to identity, want %d", tc.name, n, tc.calls)
		}
		// The person's input is shown again, never the password.
		if strings.Contains(body, "Wrong-Pass-9") || strings.Contains(body, "Right-Pass-1") {
			t.Errorf("%s: the password is on the page", tc.name)
		}
	}
	// Right: identity gets the session's person and the changed fields.
	res, _ = profileCall(h, http.MethodPost, "/cas/profile", "TGT-live", "en", form())
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/cas/profile?done=profile" {
		t.Fatalf("change: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	calls := sso.calls()
	last := calls[len(calls)-1]
	if last.GetUserId() != "u1" || !slices.Equal(last.GetUpdateMask(), []string{"email", "phone"}) ||
		last.GetEmail() != "pia.new@example.org" || last.GetPhone() != "13987654321" || last.GetDisplayName() != "" && slices.Contains(last.GetUpdateMask(), "display_name") {
		t.Fatalf("the change identity got: %v", last)
	}
	// Only the e-mail: the phone stays (empty field).
	profileCall(h, http.MethodPost, "/cas/profile", "TGT-live", "en", form("phone", ""))
	if calls = sso.calls(); !slices.Equal(calls[len(calls)-1].GetUpdateMask(), []string{"email"}) {
		t.Fatalf("e-mail only: %v", calls[len(calls)-1].GetUpdateMask())
	}
	// A locked account: said so, in plain words.
	sso.locked = true
	res, body = profileCall(h, http.MethodPost, "/cas/profile", "TGT-live", "en", form())
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "Your account is locked.") {
		t.Fatalf("locked: %d %s", res.StatusCode, body)
	}
	// HEAD is GET; PUT is not allowed.
	if res, _ := profileCall(h, http.MethodPut, "/cas/profile", "TGT-live", "en", nil); res.StatusCode != http.StatusMethodNotAllowed ||
		res.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("PUT: %d %s", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestProfileDisplayNameByPolicy: where identity lets people change their
// display name, the form has the field and a changed name is sent.
func TestProfileDisplayNameByPolicy(t *testing.T) {
	sso := &profSSO{editable: true}
	h := New(Options{Tickets: profTickets{}, SSO: sso})
	_, body := profileCall(h, http.MethodGet, "/cas/profile", "TGT-live", "en", nil)
	if !strings.Contains(body, `name="display_name" value="Pia &lt;Lin&gt;"`) || strings.Contains(body, "login name, name, organisation") {
		t.Fatalf("editable display name:\n%s", body)
	}
	res, _ := profileCall(h, http.MethodPost, "/cas/profile", "TGT-live", "en", url.Values{"csrf": {testCSRF}, "display_name": {"Pia Lin"},
		"email": {"pia@example.org"}, "phone": {""}, "current_password": {"Right-Pass-1"}})
	calls := sso.calls()
	if res.StatusCode != http.StatusSeeOther || len(calls) != 1 || !slices.Equal(calls[0].GetUpdateMask(), []string{"display_name"}) ||
		calls[0].GetDisplayName() != "Pia Lin" {
		t.Fatalf("display name change: %d %v", res.StatusCode, calls)
	}
}

// TestProfileAccountType (ADR 0039): "My profile" shows the account's
// type read only: a unit's page labels its name and code a unit's and
// shows the code masked (its type: unified social credit code), as a
// person's shows their ID number; a person's says Person; an identity that
// does not answer the type shows no row. Nothing on the page changes it.
func TestProfileAccountType(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sso       *profSSO
		lang      string
		want, not []string
	}{
		{"unit", &profSSO{unit: true}, "en", []string{`<dt>Account type</dt><dd id="p-usertype">Unit (organisation)</dd>`,
			`<dt>Unit name</dt><dd id="p-name">某某航运有限公司</dd>`, `<dd id="p-idtype">Unified social credit code</dd>`,
			`<dt>Unit code</dt><dd id="p-idnumber">913*************22</dd>`}, []string{"<dt>ID number</dt>", `name="user_type"`}},
		{"unit zh", &profSSO{unit: true}, "zh-CN", []string{`<dt>账号类型</dt><dd id="p-usertype">单位</dd>`, "<dt>单位名称</dt>",
			"<dt>单位代码</dt>", "统一社会信用代码"}, nil},
		{"person", &profSSO{person: true}, "en", []string{`<dd id="p-usertype">Person</dd>`, "<dt>Name</dt>", "<dt>ID number</dt>"},
			[]string{"Unit code", "Unit name"}},
		{"not answered", &profSSO{}, "en", []string{"<dt>ID number</dt>"}, []string{"p-usertype", "Account type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Options{Tickets: profTickets{}, SSO: tc.sso})
			res, body := profileCall(h, http.MethodGet, "/cas/profile", "TGT-live", tc.lang, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("profile: %d", res.StatusCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("the page lacks %q\n%s", w, body)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("the page has %q", n)
				}
			}
		})
	}
}
