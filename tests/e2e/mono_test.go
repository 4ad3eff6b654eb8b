package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity/finger/synth"
)

// TestMonolithicAuthenticate covers the main job end to end in target all:
// verdicts, caller checks and bad input over gRPC and REST.
func TestMonolithicAuthenticate(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "alice", nil, nil)

	t.Run("success by app account and by login name", func(t *testing.T) {
		for _, id := range []string{f.account, f.login} {
			res, err := e.authPW(f, id, f.password)
			wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
			if res.GetUser().GetId() != f.userID || res.GetUser().GetLoginName() != "alice" || res.GetUser().GetOrgId() != e.root {
				t.Fatalf("user summary: %v", res.GetUser())
			}
			if res.GetSerial() == "" {
				t.Fatal("no serial")
			}
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		res, err := e.authPW(f, f.account, "Wrong-Pass-1")
		wantResult(t, res, err, -1, identityv1.Reason_REASON_BAD_CREDENTIALS)
		if res.GetUser() != nil {
			t.Fatal("failed login must not return the user")
		}
		// a success resets the failure count
		res, err = e.authPW(f, f.account, f.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	})
	t.Run("unknown user", func(t *testing.T) {
		res, err := e.authPW(f, "nobody", "Whatever-1")
		wantResult(t, res, err, -2, identityv1.Reason_REASON_NO_SUCH_USER)
	})
	t.Run("SQL-looking input is only text", func(t *testing.T) {
		for _, id := range []string{"' OR '1'='1", "alice'; DROP TABLE users; --", "%", "_lice"} {
			res, err := e.authPW(f, id, "x' OR '1'='1")
			wantResult(t, res, err, -2, identityv1.Reason_REASON_NO_SUCH_USER)
		}
		res, err := e.authPW(f, f.account, f.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	})
	t.Run("fingerprint answers truthfully", func(t *testing.T) {
		for _, at := range []identityv1.AuthType{identityv1.AuthType_AUTH_TYPE_FINGERPRINT, identityv1.AuthType_AUTH_TYPE_PASSWORD_AND_FINGERPRINT} {
			res, err := e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account,
				Password: f.password, FingerprintFeature: probeRecord, AuthType: at})
			wantResult(t, res, err, -4, identityv1.Reason_REASON_NO_FINGERPRINT)
		}
	})
	t.Run("password-only user: fingerprint is -3, password works", func(t *testing.T) {
		g := e.seed("pwonly", "pat", nil, func(r *identityv1.CreateUserRequest) { r.PasswordOnly = true })
		u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: g.userID})
		if err != nil || !u.GetPasswordOnly() {
			t.Fatalf("GetUser: password_only=%v, %v", u.GetPasswordOnly(), err)
		}
		fingerprint := func(want int32, reason identityv1.Reason) {
			t.Helper()
			for _, at := range []identityv1.AuthType{identityv1.AuthType_AUTH_TYPE_FINGERPRINT, identityv1.AuthType_AUTH_TYPE_PASSWORD_AND_FINGERPRINT} {
				res, err := e.auth.Authenticate(g.ctx(), &identityv1.AuthenticateRequest{AppUserId: g.account,
					Password: g.password, FingerprintFeature: probeRecord, AuthType: at})
				wantResult(t, res, err, want, reason)
				if res.GetUser() != nil {
					t.Fatal("a refused login must not return the user")
				}
			}
		}
		fingerprint(-3, identityv1.Reason_REASON_PASSWORD_ONLY)
		res, err := e.authPW(g, g.account, g.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)

		// Lifting the flag: fingerprint is allowed again, and nothing is enrolled.
		u, err = e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: g.userID,
			UpdateMask: []string{"password_only"}, PasswordOnly: false})
		if err != nil || u.GetPasswordOnly() {
			t.Fatalf("UpdateUser: password_only=%v, %v", u.GetPasswordOnly(), err)
		}
		fingerprint(-4, identityv1.Reason_REASON_NO_FINGERPRINT)
	})
	t.Run("bad request data is -5", func(t *testing.T) {
		// Strings that are not UTF-8 need a raw client: see validation_test.go.
		cases := []*identityv1.AuthenticateRequest{
			{AppUserId: f.account, Password: f.password},                                                             // no auth type
			{AppUserId: "", Password: f.password, AuthType: 1},                                                       // missing user
			{AppUserId: strings.Repeat("a", 4096), Password: f.password, AuthType: 1},                                // oversized
			{AppUserId: f.account, Password: f.password, AuthType: 1, ExtendInfoLegacy: "terminal=T1|broken"},        // malformed extend info
			{AppUserId: f.account, Password: f.password, AuthType: 1, ExtendInfo: map[string]string{"bad key": "1"}}, // bad extend name
			{AppUserId: f.account, Password: f.password, AuthType: 2},                                                // fingerprint missing
			{AppUserId: f.account, Password: strings.Repeat("p", 100000), AuthType: 1},                               // oversized password
		}
		for i, req := range cases {
			_, err := e.auth.Authenticate(f.ctx(), req)
			st := wantCode(t, err, codes.InvalidArgument, "")
			if ei := errorInfo(st); ei == nil || ei.GetMetadata()["legacy_code"] != "-5" {
				t.Fatalf("case %d: want legacy_code -5, got %v", i, ei)
			}
		}
		res, err := e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password,
			AuthType: 1, ExtendInfoLegacy: "terminal=T1|branch=0101|"})
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	})
	t.Run("caller credentials", func(t *testing.T) {
		req := &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password, AuthType: 1}
		_, err := e.auth.Authenticate(appCtx(f.appID, "wrong-secret"), req)
		wantCode(t, err, codes.Unauthenticated, "BAD_APP_CREDENTIALS")
		_, err = e.auth.Authenticate(appCtx("no-such-app", f.secret), req)
		st := wantCode(t, err, codes.Unauthenticated, "BAD_APP_CREDENTIALS")
		if strings.Contains(st.Message(), "no-such-app") {
			t.Fatal("message echoes the App_ID")
		}
		_, err = e.auth.Authenticate(context.Background(), req)
		wantCode(t, err, codes.Unauthenticated, "")
		// an admin token is not an app credential
		_, err = e.auth.Authenticate(e.adm(), req)
		wantCode(t, err, codes.Unauthenticated, "")
	})
	t.Run("an app authenticates only its own accounts", func(t *testing.T) {
		other := e.seed("hr", "bob", nil, nil)
		res, err := e.authPW(f, other.account, other.password)
		wantResult(t, res, err, -2, identityv1.Reason_REASON_NO_SUCH_USER)
		res, err = e.authPW(f, other.login, other.password)
		wantResult(t, res, err, -2, identityv1.Reason_REASON_NO_SUCH_USER)
		_, err = e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppType: "OA", AppCode: "hr",
			AppUserId: other.account, Password: other.password, AuthType: 1})
		wantCode(t, err, codes.PermissionDenied, "FOREIGN_APP")
		res, err = e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppType: "OA", AppCode: "oa",
			AppUserId: f.account, Password: f.password, AuthType: 1})
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	})
	t.Run("IP allow-list", func(t *testing.T) {
		g := e.seed("gated", "carol", &identityv1.CreateAppRequest{IpAllowList: []string{"10.0.0.0/8"}}, nil)
		_, err := e.authPW(g, g.account, g.password)
		wantCode(t, err, codes.PermissionDenied, "IP_NOT_ALLOWED")
		if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: g.appID, UpdateMask: []string{"ip_allow_list"},
			IpAllowList: []string{"10.0.0.0/8", "127.0.0.0/8", "::1/128"}}); err != nil {
			t.Fatal(err)
		}
		res, err := e.authPW(g, g.account, g.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	})
	t.Run("suspended app", func(t *testing.T) {
		s := e.seed("susp", "dave", nil, nil)
		if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: s.appID, UpdateMask: []string{"status"},
			Status: identityv1.AppStatus_APP_STATUS_SUSPENDED}); err != nil {
			t.Fatal(err)
		}
		_, err := e.authPW(s, s.account, s.password)
		wantCode(t, err, codes.PermissionDenied, "APP_SUSPENDED")
	})
	t.Run("rate limit", func(t *testing.T) {
		r := e.seed("limited", "erin", &identityv1.CreateAppRequest{RateLimit: 0.001, RateBurst: 2}, nil)
		for i := 0; i < 2; i++ {
			res, err := e.authPW(r, r.account, r.password)
			wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
		}
		_, err := e.authPW(r, r.account, r.password)
		wantCode(t, err, codes.ResourceExhausted, "RATE_LIMITED")
		code, _, hdr := e.rest("POST", "/v1/authenticate", appHeaders(r), map[string]any{"app_user_id": r.account,
			"password": r.password, "auth_type": "AUTH_TYPE_PASSWORD"})
		if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
			t.Fatalf("REST over limit: %d, Retry-After %q", code, hdr.Get("Retry-After"))
		}
	})
	t.Run("secret rotation keeps the old secret for the overlap", func(t *testing.T) {
		k := e.seed("rot", "frank", nil, nil)
		rot, err := e.admin.RotateAppSecret(e.adm(), &identityv1.RotateAppSecretRequest{Id: k.appID})
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.authPW(k, k.account, k.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
		k2 := k
		k2.secret = rot.GetAppSecret()
		res, err = e.authPW(k2, k.account, k.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
		zero := int64(0)
		rot2, err := e.admin.RotateAppSecret(e.adm(), &identityv1.RotateAppSecretRequest{Id: k.appID, OverlapSeconds: &zero})
		if err != nil {
			t.Fatal(err)
		}
		// without overlap the old secret stops at once; its holder is told
		// it was replaced
		_, err = e.authPW(k2, k.account, k.password)
		wantCode(t, err, codes.Unauthenticated, "APP_SECRET_REPLACED")
		k2.secret = rot2.GetAppSecret()
		res, err = e.authPW(k2, k.account, k.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	})
}

// TestAccountStates covers lockout, disabled, must-change and admin locks.
func TestAccountStates(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "grace", nil, nil)

	t.Run("lockout after repeated failures", func(t *testing.T) {
		// From several addresses (the app reports each person's address):
		// one address alone cannot lock an account.
		from := func(i int, pw string) (*identityv1.AuthenticateResponse, error) {
			return e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, Password: pw,
				AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, ExtendInfo: map[string]string{"client_ip": fmt.Sprintf("198.51.100.%d", i)}})
		}
		for i := 0; i < 4; i++ {
			res, err := from(i, "Wrong-Pass-1")
			wantResult(t, res, err, -1, identityv1.Reason_REASON_BAD_CREDENTIALS)
		}
		res, err := from(4, "Wrong-Pass-1")
		wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_LOCKED)
		// even the right password is refused while locked
		res, err = e.authPW(f, f.account, f.password)
		wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_LOCKED)
		u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
		if err != nil || !u.GetLocked() || u.GetLockedUntil() == nil {
			t.Fatalf("user not shown locked: %v %v", u, err)
		}
		if _, err := e.admin.UnlockUser(e.adm(), &identityv1.UnlockUserRequest{Id: f.userID}); err != nil {
			t.Fatal(err)
		}
		res, err = e.authPW(f, f.account, f.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	})
	t.Run("admin lock and unlock", func(t *testing.T) {
		if _, err := e.admin.LockUser(e.adm(), &identityv1.LockUserRequest{Id: f.userID}); err != nil {
			t.Fatal(err)
		}
		res, err := e.authPW(f, f.account, f.password)
		wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_LOCKED)
		if _, err := e.admin.UnlockUser(e.adm(), &identityv1.UnlockUserRequest{Id: f.userID}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("disabled account", func(t *testing.T) {
		if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: f.userID,
			Status: identityv1.UserStatus_USER_STATUS_DISABLED}); err != nil {
			t.Fatal(err)
		}
		res, err := e.authPW(f, f.account, f.password)
		wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_DISABLED)
		if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: f.userID,
			Status: identityv1.UserStatus_USER_STATUS_ACTIVE}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("must change at next login, then change", func(t *testing.T) {
		if _, err := e.admin.SetPassword(e.adm(), &identityv1.SetPasswordRequest{Id: f.userID, Password: "Reset-Pass-42",
			MustChangePassword: true}); err != nil {
			t.Fatal(err)
		}
		res, err := e.authPW(f, f.account, "Reset-Pass-42")
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
		if !res.GetMustChangePassword() {
			t.Fatal("must_change_password not set")
		}
		_, err = e.auth.ChangePassword(f.ctx(), &identityv1.ChangePasswordRequest{AppUserId: f.account,
			OldPassword: "Reset-Pass-42", NewPassword: "weak"})
		wantCode(t, err, codes.InvalidArgument, "WEAK_PASSWORD")
		_, err = e.auth.ChangePassword(f.ctx(), &identityv1.ChangePasswordRequest{AppUserId: f.account,
			OldPassword: "Reset-Pass-42", NewPassword: "Reset-Pass-42"})
		wantCode(t, err, codes.InvalidArgument, "PASSWORD_REUSED")
		_, err = e.auth.ChangePassword(f.ctx(), &identityv1.ChangePasswordRequest{AppUserId: f.account,
			OldPassword: "Reset-Pass-42", NewPassword: f.password})
		wantCode(t, err, codes.InvalidArgument, "PASSWORD_REUSED")
		if _, err := e.auth.ChangePassword(f.ctx(), &identityv1.ChangePasswordRequest{AppUserId: f.account,
			OldPassword: "Reset-Pass-42", NewPassword: "Brand-New-Pass-7"}); err != nil {
			t.Fatal(err)
		}
		res, err = e.authPW(f, f.account, "Brand-New-Pass-7")
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
		if res.GetMustChangePassword() {
			t.Fatal("must_change_password still set after the change")
		}
	})
	t.Run("user may not change an admin-set password", func(t *testing.T) {
		if _, err := e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: f.userID,
			UpdateMask: []string{"user_cannot_change_password"}, UserCannotChangePassword: true}); err != nil {
			t.Fatal(err)
		}
		_, err := e.auth.ChangePassword(f.ctx(), &identityv1.ChangePasswordRequest{AppUserId: f.account,
			OldPassword: "Brand-New-Pass-7", NewPassword: "Another-Pass-8"})
		wantCode(t, err, codes.FailedPrecondition, "CANNOT_CHANGE_PASSWORD")
	})
}

// TestAdminAPI covers admin authentication and CRUD failure paths.
func TestAdminAPI(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	_, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "admin", Password: "nope-Nope-1"})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_LOGIN")
	_, err = e.admin.ListUsers(context.Background(), &identityv1.ListUsersRequest{})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_TOKEN")
	e.login()

	child, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "hq", Name: "Head office", ParentId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "hq", Name: "dup", ParentId: e.root})
	wantCode(t, err, codes.AlreadyExists, "")
	_, err = e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "x", Name: "second root"})
	wantCode(t, err, codes.InvalidArgument, "")
	_, err = e.admin.GetOrg(e.adm(), &identityv1.GetOrgRequest{Id: "missing"})
	wantCode(t, err, codes.NotFound, "NOT_FOUND")
	grand, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "hq-it", Name: "IT", ParentId: child.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.MoveOrg(e.adm(), &identityv1.MoveOrgRequest{Id: child.GetId(), NewParentId: grand.GetId()})
	wantCode(t, err, codes.FailedPrecondition, "ORG_CYCLE")

	// non-admin users cannot use the admin API: their AdminLogin is
	// answered as for an unknown login name (and counts nothing against
	// them), even with the right password
	f := e.seed("oa", "henry", nil, nil)
	_, err = e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "henry", Password: f.password})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_LOGIN")

	// pagination and filters
	for i := 0; i < 7; i++ {
		if _, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: fmt.Sprintf("page%d", i),
			DisplayName: "Pager", OrgId: child.GetId()}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	tok := ""
	for {
		page, err := e.admin.ListUsers(e.adm(), &identityv1.ListUsersRequest{OrgId: child.GetId(), PageSize: 3, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.GetUsers() {
			seen = append(seen, u.GetLoginName())
		}
		if tok = page.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(seen) != 7 {
		t.Fatalf("paged users: %v", seen)
	}
	_, err = e.admin.ListUsers(e.adm(), &identityv1.ListUsersRequest{PageSize: 100000})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")

	// personal data is masked in every answer
	u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u.GetIdNumberMasked(), "19491231") || !strings.Contains(u.GetIdNumberMasked(), "*") ||
		strings.Contains(u.GetPhoneMasked(), "1234") || u.GetFeatureCode() == "" {
		t.Fatalf("personal data not masked: %q %q", u.GetIdNumberMasked(), u.GetPhoneMasked())
	}
	_, err = e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "bad-id", DisplayName: "x", OrgId: e.root,
		IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: "110105194912310021"})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	_, err = e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "bad", Name: "x",
		IpAllowList: []string{"not-a-cidr"}})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")

	// groups
	g, err := e.admin.CreateGroup(e.adm(), &identityv1.CreateGroupRequest{Code: "ops", Name: "Ops", OrgId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	g, err = e.admin.AddGroupMember(e.adm(), &identityv1.GroupMemberRequest{GroupId: g.GetId(), UserId: f.userID})
	if err != nil || len(g.GetMemberIds()) != 1 {
		t.Fatalf("add member: %v %v", g, err)
	}
	g, err = e.admin.RemoveGroupMember(e.adm(), &identityv1.GroupMemberRequest{GroupId: g.GetId(), UserId: f.userID})
	if err != nil || len(g.GetMemberIds()) != 0 {
		t.Fatalf("remove member: %v %v", g, err)
	}
}

// TestRESTEdge covers the grpc-gateway edge: status mapping and documents.
func TestRESTEdge(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "ivy", nil, nil)
	body := map[string]any{"app_user_id": f.account, "password": f.password, "auth_type": "AUTH_TYPE_PASSWORD",
		"extend_info_legacy": "terminal=T1"}

	hdr := appHeaders(f)
	hdr["X-Request-Id"] = "teller-7.2026-11-23_0001"
	code, out, rh := e.rest("POST", "/v1/authenticate", hdr, body)
	if code != 200 || out["result_code"] != float64(0) || out["reason"] != "REASON_OK" {
		t.Fatalf("REST authenticate: %d %v", code, out)
	}
	// The caller's request id is the serial in the answer and the header.
	if out["serial"] != "teller-7.2026-11-23_0001" || rh.Get("X-Request-Id") != "teller-7.2026-11-23_0001" {
		t.Fatalf("serial %v, X-Request-Id %q", out["serial"], rh.Get("X-Request-Id"))
	}
	body["password"] = "Wrong-Pass-1"
	code, out, _ = e.rest("POST", "/v1/authenticate", appHeaders(f), body)
	if code != 200 || out["result_code"] != float64(-1) {
		t.Fatalf("REST wrong password: %d %v", code, out)
	}
	code, _, _ = e.rest("POST", "/v1/authenticate", map[string]string{"X-Uias-App-Id": f.appID, "X-Uias-App-Secret": "bad"}, body)
	if code != http.StatusUnauthorized {
		t.Fatalf("REST wrong secret: %d", code)
	}
	code, out, _ = e.rest("POST", "/v1/authenticate", appHeaders(f), `{"app_user_id": `)
	if code != http.StatusBadRequest {
		t.Fatalf("REST malformed JSON: %d %v", code, out)
	}
	code, out, _ = e.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"password": f.password, "auth_type": 1, "extend_info_legacy": "oops"})
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["message"]), "extend info") {
		t.Fatalf("REST malformed extend info: %d %v", code, out)
	}
	code, _, _ = e.rest("POST", "/v1/authenticate", appHeaders(f), strings.Repeat("x", 2<<20))
	if code != http.StatusRequestEntityTooLarge && code != http.StatusBadRequest {
		t.Fatalf("REST oversized body: %d", code)
	}
	// admin over REST with a bearer token
	code, out, _ = e.rest("GET", "/v1/users/"+f.userID, map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != 200 || out["login_name"] != "ivy" {
		t.Fatalf("REST get user: %d %v", code, out)
	}
	code, _, _ = e.rest("GET", "/v1/users/"+f.userID, nil, nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("REST admin without token: %d", code)
	}
	code, _, _ = e.rest("GET", "/v1/users/missing", map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusNotFound {
		t.Fatalf("REST missing user: %d", code)
	}
	// Readiness is eventual: authz loads its index in the background and
	// the process turns ready within 100 ms of the last module (on a
	// loaded machine, after the calls above have already been served).
	eventually(t, "/readyz to answer 200", func() bool {
		code, _, _ := e.rest("GET", "/readyz", nil, nil)
		return code == 200
	})
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		code, out, _ := e.rest("GET", p, nil, nil)
		if code != 200 {
			t.Fatalf("%s: %d %v", p, code, out)
		}
		if p == "/openapi.json" && !strings.Contains(fmt.Sprint(out["paths"]), "/v1/authenticate") {
			t.Fatalf("openapi lacks /v1/authenticate")
		}
	}
	_ = status.Code
}

// probeRecord is a well-formed finger minutiae record (an impression of a
// synthetic finger): a malformed one would be answered -5 before any
// account check.
var probeRecord = synth.NewFinger(synth.Default(1), 0).Impression(1)
