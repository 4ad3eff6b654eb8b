package identity_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// TestAuthLevelTable: the level of each sign-in method, and a person's
// level (their own, else the policy's, at least 1).
func TestAuthLevelTable(t *testing.T) {
	for _, c := range []struct {
		method string
		want   int
	}{
		{identity.MethodPassword, 1}, {identity.MethodFinger, 1},
		{identity.MethodPasswordTOTP, 2}, {identity.MethodFingerPassword, 2}, {identity.MethodFingerTOTP, 2},
		{identity.MethodKerberos, 1}, {identity.MethodKerberosTOTP, 2},
		{identity.MethodCertificate, 3}, {"", 0}, {"sms", 0},
	} {
		if got := identity.MethodLevel(c.method); got != c.want {
			t.Errorf("MethodLevel(%q) = %d, want %d", c.method, got, c.want)
		}
	}
	for _, c := range []struct {
		policy, person, want int
	}{
		{0, 0, 1}, {1, 0, 1}, {2, 0, 2}, {2, 1, 1}, {0, 2, 2}, {0, 3, 3}, {2, 3, 3},
	} {
		p := identity.Policy{MinAuthLevel: c.policy}
		if got := p.PersonLevel(&identity.User{MinAuthLevel: c.person}); got != c.want {
			t.Errorf("policy %d, person %d: level %d, want %d", c.policy, c.person, got, c.want)
		}
	}
	if identity.ReasonAuthLevelTooLow.LegacyCode() != -1 || identity.ReasonAuthLevelTooLow.String() != "AUTH_LEVEL_TOO_LOW" {
		t.Fatal("AUTH_LEVEL_TOO_LOW is not legacy -1")
	}
}

// levelEnv is the TOTP environment with application OA (account p001 is
// pia) and a way to set pia's level.
type levelEnv struct {
	*totpEnv
	admin context.Context
	app   *identity.App
}

func newLevelEnv(t *testing.T, policy identity.Policy) *levelEnv {
	t.Helper()
	e := newTOTPEnv(t, policy)
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "r-level")
	return &levelEnv{totpEnv: e, admin: admin, app: e.linkedApp(t, admin)}
}

func (e *levelEnv) setLevel(t *testing.T, level int) {
	t.Helper()
	u, err := e.svc.UpdateUser(e.admin, e.user.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: level})
	if err != nil || u.MinAuthLevel != level {
		t.Fatalf("set level %d: %+v %v", level, u, err)
	}
}

func (e *levelEnv) failedCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.db.QueryRowContext(context.Background(), "SELECT failed_count FROM users WHERE id = ?", e.user.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// auth is Authenticate of account p001 by application app.
func (e *levelEnv) auth(t *testing.T, app *identity.App, req identity.AuthRequest) *identity.AuthResult {
	t.Helper()
	ctx := caller.With(context.Background(), &caller.Caller{App: app.CallerApp(), RequestID: "r-auth"})
	req.AppUserID = "p001"
	res, err := e.svc.Authenticate(ctx, req)
	if err != nil {
		t.Fatalf("authenticate %+v: %v", req, err)
	}
	if (res.Reason == identity.ReasonOK) != (res.User != nil) {
		t.Fatalf("result %+v", res)
	}
	return res
}

// TestAuthenticatePersonLevel: a person required to use two factors is
// refused a password alone with one answer whether the password was right
// or not; the wrong one still counts towards the lockout and the right
// one clears nothing; the password with the code signs them in; a person
// required to use a certificate is refused every auth type.
func TestAuthenticatePersonLevel(t *testing.T) {
	e := newLevelEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	pw := func(p, otp string) identity.AuthRequest {
		return identity.AuthRequest{Password: p, AuthType: identity.AuthPassword, OTP: otp}
	}
	if r := e.auth(t, e.app, pw(profilePass, "")).Reason; r != identity.ReasonOK {
		t.Fatalf("level 1: %v", r)
	}
	e.setLevel(t, identity.AuthLevelTwoFactor)

	m := e.mark(t)
	before := e.failedCount(t)
	wrong := e.auth(t, e.app, pw("Wrong-Pass-1", ""))
	if wrong.Reason != identity.ReasonAuthLevelTooLow || e.failedCount(t) != before+1 {
		t.Fatalf("wrong password: %+v, failures %d -> %d", wrong, before, e.failedCount(t))
	}
	right := e.auth(t, e.app, pw(profilePass, ""))
	if right.Reason != wrong.Reason || right.Message != wrong.Message || right.User != nil || right.MustChange != wrong.MustChange {
		t.Fatalf("the right password's answer %+v differs from the wrong one's %+v", right, wrong)
	}
	if n := e.failedCount(t); n != before+1 {
		t.Fatalf("the right password changed the failures: %d, want %d", n, before+1)
	}
	if !e.recorded(t, "authenticate", "BAD_CREDENTIALS", "failure") {
		t.Fatal("the wrong password is not recorded as such")
	}
	var refused bool
	for _, d := range auditRecords(t, e.outbox(t, m), "authenticate") {
		refused = refused || d.Reason == "AUTH_LEVEL_TOO_LOW" && d.Result == "failure"
		if d.Result == "success" {
			t.Fatalf("a refused call recorded a success: %+v", d)
		}
	}
	if !refused {
		t.Fatal("the right password's refusal is not recorded")
	}
	// A finger alone (one factor) is refused too; the finger with the
	// password (two) is checked as usual.
	if _, err := e.svc.EnrollFinger(e.admin, e.user.ID, 2, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  identity.AuthRequest
		want identity.Reason
	}{
		{"a finger alone", identity.AuthRequest{Fingerprint: impression(1, 1), AuthType: identity.AuthFingerprint}, identity.ReasonAuthLevelTooLow},
		{"a wrong finger alone", identity.AuthRequest{Fingerprint: impression(2, 1), AuthType: identity.AuthFingerprint}, identity.ReasonAuthLevelTooLow},
		{"finger and password", identity.AuthRequest{Fingerprint: impression(1, 2), Password: profilePass, AuthType: identity.AuthPasswordFingerprint},
			identity.ReasonOK},
		// the password with a code, but no app yet: checked, NO_OTP
		{"password and a code without an app", pw(profilePass, "123456"), identity.ReasonNoOTP},
	} {
		if r := e.auth(t, e.app, c.req).Reason; r != c.want {
			t.Fatalf("%s: %v, want %v", c.name, r, c.want)
		}
	}
	key := e.enrol(t)
	if r := e.auth(t, e.app, pw(profilePass, e.code(key, 0))).Reason; r != identity.ReasonOK {
		t.Fatalf("password and code: %v", r)
	}

	// Certificates only: nothing Authenticate takes reaches it, and the
	// code is not even checked (a wrong one is not counted as a code).
	e.setLevel(t, identity.AuthLevelCertificate)
	for _, req := range []identity.AuthRequest{pw(profilePass, ""), pw(profilePass, e.code(key, 1)), pw(profilePass, "000000"),
		{Fingerprint: impression(1, 3), Password: profilePass, AuthType: identity.AuthPasswordFingerprint}} {
		if r := e.auth(t, e.app, req).Reason; r != identity.ReasonAuthLevelTooLow {
			t.Fatalf("certificate-only person, auth type %d: %v", req.AuthType, r)
		}
	}
	if r := e.auth(t, e.app, pw(profilePass, e.code(key, 1))).Reason; r != identity.ReasonAuthLevelTooLow {
		t.Fatalf("the code again: %v", r)
	}
	// Back to the policy's default (1): the password alone again.
	e.setLevel(t, identity.AuthLevelDefault)
	if r := e.auth(t, e.app, pw(profilePass, "")).Reason; r != identity.ReasonOK {
		t.Fatalf("level back to the default: %v", r)
	}
}

// TestAuthenticatePolicyLevel: the policy's level applies to everyone
// whose own is 0; a person's own 1 lowers it for them.
func TestAuthenticatePolicyLevel(t *testing.T) {
	e := newLevelEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40, MinAuthLevel: identity.AuthLevelTwoFactor})
	req := identity.AuthRequest{Password: profilePass, AuthType: identity.AuthPassword}
	if r := e.auth(t, e.app, req).Reason; r != identity.ReasonAuthLevelTooLow {
		t.Fatalf("policy level 2, password alone: %v", r)
	}
	e.setLevel(t, identity.AuthLevelAny)
	if r := e.auth(t, e.app, req).Reason; r != identity.ReasonOK {
		t.Fatalf("own level 1 under policy 2: %v", r)
	}
}

// TestAuthenticateAppLevel: an application's minimum refuses the auth
// types below it before any account is looked at (nothing counted, the
// same answer for an account that does not exist); the call that reaches
// it is checked as usual; level 3 closes Authenticate.
func TestAuthenticateAppLevel(t *testing.T) {
	e := newLevelEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	app, err := e.svc.UpdateApp(e.admin, e.app.ID, identity.AppUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: identity.AuthLevelTwoFactor})
	if err != nil || app.MinAuthLevel != identity.AuthLevelTwoFactor {
		t.Fatalf("app level: %+v %v", app, err)
	}
	key := e.enrol(t)
	m := e.mark(t)
	before := e.failedCount(t)
	for _, p := range []string{profilePass, "Wrong-Pass-1"} {
		if r := e.auth(t, app, identity.AuthRequest{Password: p, AuthType: identity.AuthPassword}).Reason; r != identity.ReasonAuthLevelTooLow {
			t.Fatalf("password alone: %v", r)
		}
	}
	ctx := caller.With(context.Background(), &caller.Caller{App: app.CallerApp(), RequestID: "r-none"})
	if res, err := e.svc.Authenticate(ctx, identity.AuthRequest{AppUserID: "nobody", Password: "x", AuthType: identity.AuthPassword}); err != nil ||
		res.Reason != identity.ReasonAuthLevelTooLow {
		t.Fatalf("unknown account: %+v %v", res, err)
	}
	if n := e.failedCount(t); n != before {
		t.Fatalf("refusals by the application's level counted: %d -> %d", before, n)
	}
	var recs int
	for _, d := range auditRecords(t, e.outbox(t, m), "authenticate") {
		if d.Reason != "AUTH_LEVEL_TOO_LOW" || d.Detail["min_auth_level_of"] != "app" || d.Detail["min_auth_level"] != "2" {
			t.Fatalf("record %+v", d)
		}
		recs++
	}
	if recs != 3 {
		t.Fatalf("%d records, want 3", recs)
	}
	if r := e.auth(t, app, identity.AuthRequest{Password: profilePass, AuthType: identity.AuthPassword, OTP: e.code(key, 0)}).Reason; r != identity.ReasonOK {
		t.Fatalf("password and code: %v", r)
	}
	app, err = e.svc.UpdateApp(e.admin, e.app.ID, identity.AppUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: identity.AuthLevelCertificate})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.auth(t, app, identity.AuthRequest{Password: profilePass, AuthType: identity.AuthPassword, OTP: e.code(key, 1)}).Reason; r != identity.ReasonAuthLevelTooLow {
		t.Fatalf("level 3 application: %v", r)
	}
	if _, err := e.svc.UpdateApp(e.admin, e.app.ID, identity.AppUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 4}); reasonOf(err) != apierr.ReasonBadRequest {
		t.Fatalf("level 4: %v", err)
	}
}

// TestSSOLoginPersonLevel: at the sign-in pages a person required to use
// two factors is asked for the code when they have an app, and refused
// with the reason (after the right password only) when they have none; a
// person required to use a certificate is refused the password, also
// with an app, and a half-done login finished after the change.
func TestSSOLoginPersonLevel(t *testing.T) {
	e := newLevelEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	ctx := browserAt("192.0.2.7")
	login := func(p string) *identity.SSOLoginResult {
		t.Helper()
		res, err := e.svc.SSOLoginBound(ctx, "pia", p, "browser-1")
		if err != nil {
			t.Fatal(err)
		}
		if (res.Reason == identity.ReasonOK) != (res.User != nil) {
			t.Fatalf("result %+v", res)
		}
		return res
	}
	e.setLevel(t, identity.AuthLevelTwoFactor)
	before := e.failedCount(t)
	if r := login("Wrong-Pass-1"); r.Reason != identity.ReasonBadCredentials || r.RequiredLevel != 0 {
		t.Fatalf("wrong password: %+v", r)
	}
	if e.failedCount(t) != before+1 {
		t.Fatal("the wrong password was not counted")
	}
	if r := login(profilePass); r.Reason != identity.ReasonAuthLevelTooLow || r.RequiredLevel != 2 || r.OTPToken != "" {
		t.Fatalf("right password, no app: %+v", r)
	}
	if e.failedCount(t) != before+1 {
		t.Fatal("the refused right password changed the failures")
	}
	if !e.recorded(t, "sso.login", "AUTH_LEVEL_TOO_LOW", "failure") {
		t.Fatal("refusal not recorded")
	}
	key := e.enrol(t)
	res := login(profilePass)
	if res.Reason != identity.ReasonOTPRequired || res.OTPToken == "" {
		t.Fatalf("with an app: %+v", res)
	}
	ok, err := e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, 0), "browser-1")
	if err != nil || ok.Reason != identity.ReasonOK || ok.Method != identity.MethodPasswordTOTP {
		t.Fatalf("the code: %+v %v", ok, err)
	}

	half := login(profilePass).OTPToken
	e.setLevel(t, identity.AuthLevelCertificate)
	if r, err := e.svc.SSOLoginOTP(ctx, half, e.code(key, 1), "browser-1"); err != nil || r.Reason != identity.ReasonAuthLevelTooLow || r.RequiredLevel != 3 {
		t.Fatalf("code after the change to certificates: %+v %v", r, err)
	}
	if r := login(profilePass); r.Reason != identity.ReasonAuthLevelTooLow || r.RequiredLevel != 3 || r.OTPToken != "" {
		t.Fatalf("certificate-only, right password: %+v", r)
	}
	if r := login("Wrong-Pass-1"); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("certificate-only, wrong password: %+v", r)
	}
}

// TestSSOFingerLoginPersonLevel: a finger alone does not reach two
// factors for a person without an app (refused after the match; a wrong
// finger is a wrong finger); the finger with the password does; a
// certificate-only person is refused both.
func TestSSOFingerLoginPersonLevel(t *testing.T) {
	e, admin := fingerLoginEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	if _, err := e.svc.UpdateUser(admin, e.user.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 2}); err != nil {
		t.Fatal(err)
	}
	ctx := browserAt("192.0.2.8")
	login := func(rec []byte, pw string) *identity.SSOLoginResult {
		t.Helper()
		res, err := e.svc.SSOFingerLogin(ctx, "pia", rec, pw, "browser-1")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if r := login(impression(1, 1), ""); r.Reason != identity.ReasonAuthLevelTooLow || r.RequiredLevel != 2 {
		t.Fatalf("finger alone: %+v", r)
	}
	if r := login(impression(2, 1), ""); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("wrong finger alone: %+v", r)
	}
	if r := login(impression(1, 2), profilePass); r.Reason != identity.ReasonOK || r.Method != identity.MethodFingerPassword {
		t.Fatalf("finger and password: %+v", r)
	}
	if _, err := e.svc.UpdateUser(admin, e.user.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 3}); err != nil {
		t.Fatal(err)
	}
	if r := login(impression(1, 3), profilePass); r.Reason != identity.ReasonAuthLevelTooLow || r.RequiredLevel != 3 {
		t.Fatalf("certificate-only, finger and password: %+v", r)
	}
}

// TestPersonLevelSettings: the level is set on create and update, shown,
// and checked: 0 to 3, and never 3 with password-only.
func TestPersonLevelSettings(t *testing.T) {
	e := newLevelEnv(t, identity.Policy{})
	u, err := e.svc.CreateUser(e.admin, identity.NewUser{LoginName: "lev", DisplayName: "Lev", OrgID: e.org.ID, MinAuthLevel: 3})
	if err != nil || u.MinAuthLevel != 3 {
		t.Fatalf("create: %+v %v", u, err)
	}
	if got, err := e.svc.GetUser(e.admin, u.ID); err != nil || got.MinAuthLevel != 3 {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := e.svc.UpdateUser(e.admin, u.ID, identity.UserUpdate{Mask: []string{"password_only"}, PasswordOnly: true}); reasonOf(err) != apierr.ReasonBadRequest {
		t.Fatalf("password-only for a certificate-only person: %v", err)
	}
	if _, err := e.svc.CreateUser(e.admin, identity.NewUser{LoginName: "lev2", DisplayName: "Lev", OrgID: e.org.ID, MinAuthLevel: 3,
		PasswordOnly: true}); reasonOf(err) != apierr.ReasonBadRequest {
		t.Fatalf("create certificate-only and password-only: %v", err)
	}
	if _, err := e.svc.UpdateUser(e.admin, u.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 5}); reasonOf(err) != apierr.ReasonBadRequest {
		t.Fatalf("level 5: %v", err)
	}
	if got, err := e.svc.UpdateUser(e.admin, u.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 2}); err != nil ||
		got.MinAuthLevel != 2 {
		t.Fatalf("update to 2: %+v %v", got, err)
	}
	var created bool
	for _, d := range auditRecords(t, e.outbox(t, 0), "user.create") {
		created = created || d.Detail["login"] == "lev" && d.Detail["min_auth_level"] == "3"
	}
	if !created {
		t.Fatal("the level set on create is not in its record")
	}
	var updated bool
	for _, d := range auditRecords(t, e.outbox(t, 0), "user.update") {
		updated = updated || d.Detail["min_auth_level"] != ""
	}
	if !updated {
		t.Fatal("a level change is not in its record")
	}
}

// TestLevelsReplicated: a person's and an application's levels travel to
// the centres holding their replicas, where Authenticate holds them too.
func TestLevelsReplicated(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-a", "Bureau A", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	svc2 := l2.with(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := l1.with(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})
	const pw = "Bureau-Pass-1"
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "sailor", DisplayName: "Sailor", OrgID: bureau.ID, Password: pw,
		MinAuthLevel: identity.AuthLevelTwoFactor})
	if err != nil {
		t.Fatal(err)
	}
	app, secret, err := svc2.CreateApp(admin2, identity.NewApp{Type: "OA", Code: "harbour", Name: "Harbour", MinAuthLevel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.CreateLink(admin2, u.ID, app.ID, "acct-sailor"); err != nil {
		t.Fatal(err)
	}
	apply := func() {
		t.Helper()
		cs, _, _ := l2.changes(t, 0)
		if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
			t.Fatal(err)
		}
	}
	apply()
	rep, err := sqlstore.New(l1.db).GetUser(ctx, u.ID)
	if err != nil || rep.MinAuthLevel != identity.AuthLevelTwoFactor {
		t.Fatalf("replica person: %+v %v", rep, err)
	}
	repApp, err := sqlstore.New(l1.db).GetApp(ctx, app.ID)
	if err != nil || repApp.MinAuthLevel != 2 {
		t.Fatalf("replica application: %+v %v", repApp, err)
	}
	// A later change of each travels too.
	if _, err := svc2.UpdateUser(admin2, u.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.UpdateApp(admin2, app.ID, identity.AppUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 1}); err != nil {
		t.Fatal(err)
	}
	apply()
	if rep, err = sqlstore.New(l1.db).GetUser(ctx, u.ID); err != nil || rep.MinAuthLevel != identity.AuthLevelCertificate {
		t.Fatalf("replica person after the change: %+v %v", rep, err)
	}
	ca, err := svc1.AuthenticateApp(ctx, app.ID, secret, netip.MustParseAddr("10.0.0.9"))
	if err != nil || ca.MinAuthLevel > 1 {
		t.Fatalf("replica application at level 1: %+v %v", ca, err)
	}
	actx := caller.With(ctx, &caller.Caller{App: ca, ClientIP: netip.MustParseAddr("10.0.0.9"), RequestID: "r"})
	res, err := svc1.Authenticate(actx, identity.AuthRequest{AppUserID: "acct-sailor", Password: pw, AuthType: identity.AuthPassword})
	if err != nil || res.Reason != identity.ReasonAuthLevelTooLow {
		t.Fatalf("certificate-only person at level 1: %+v %v", res, err)
	}
}

// A person whose level the password alone does not reach does not change
// it with the password alone (review sec26 L2): the page, not signed in,
// refuses after the right password (verdict AUTH_LEVEL_TOO_LOW), a wrong
// one stays a wrong one, signed in (a session of their level) it is
// changed; an application's ChangePassword refuses.
func TestPasswordChangeHeldToLevel(t *testing.T) {
	e := newLevelEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	e.setLevel(t, identity.AuthLevelCertificate)
	ctx := browserAt("192.0.2.7")
	err := e.svc.SSOChangePassword(ctx, "pia", profilePass, "Brand-New-Pass-9", "", "")
	if ae, ok := apierr.As(err); !ok || ae.Reason != "VERIFICATION_FAILED" || ae.Meta["verdict"] != "AUTH_LEVEL_TOO_LOW" {
		t.Fatalf("the password alone: %v", err)
	}
	err = e.svc.SSOChangePassword(ctx, "pia", "Wrong-Pass-1", "Brand-New-Pass-9", "", "")
	if ae, ok := apierr.As(err); !ok || ae.Reason != "VERIFICATION_FAILED" || ae.Meta["verdict"] == "AUTH_LEVEL_TOO_LOW" {
		t.Fatalf("a wrong password: %v", err)
	}
	app := caller.With(context.Background(), &caller.Caller{App: e.app.CallerApp(), RequestID: "r-change"})
	if err := e.svc.ChangePassword(app, "p001", profilePass, "Brand-New-Pass-9"); reasonOf(err) != "VERIFICATION_FAILED" {
		t.Fatalf("through the application: %v", err)
	}
	if err := e.svc.SSOChangePassword(ctx, "pia", profilePass, "Brand-New-Pass-9", "session-1", ""); err != nil {
		t.Fatalf("signed in: %v", err)
	}
}
