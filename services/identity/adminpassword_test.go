package identity_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// An administrator whose password was set by another administrator (a
// reset, a temporary password) or has expired gets no token until they
// choose their own, which they do in the login itself (as Keycloak's
// "update password" at login): the temporary password shown to whoever
// reset it is never a way into the administration.
func TestAdminLoginMustChangePassword(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	ada, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "ada", DisplayName: "Ada", OrgID: orgs[0].ID,
		Password: "Zeta-Pass-001", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	_, root := adminLogin(t, w.svc, "admin", "Boot-Strap-Pass1")
	_, temp, err := w.svc.ResetPassword(root, ada.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ip := from("192.0.2.9")
	tok, _, _, err := w.svc.AdminLogin(ip, "ada", temp)
	if reasonOf(err) != "PASSWORD_CHANGE_REQUIRED" || tok != "" {
		t.Fatalf("login with a temporary password: %q %v, want PASSWORD_CHANGE_REQUIRED and no token", tok, err)
	}
	// A wrong current password with a new one is a wrong login; a new
	// password the policy or the history refuses leaves the temporary one.
	if _, _, _, err := w.svc.AdminLoginNewPassword(ip, "ada", "Wrong-Pass-77", "Mine-Pass-2024"); reasonOf(err) != "BAD_ADMIN_LOGIN" {
		t.Fatalf("wrong password with a new one: %v", err)
	}
	for pw, want := range map[string]string{"weak": "WEAK_PASSWORD", temp: "PASSWORD_REUSED", "Zeta-Pass-001": "PASSWORD_REUSED"} {
		if tok, _, _, err := w.svc.AdminLoginNewPassword(ip, "ada", temp, pw); reasonOf(err) != want || tok != "" {
			t.Fatalf("new password %q: %q %v, want %s", pw, tok, err, want)
		}
	}
	tok, _, u, err := w.svc.AdminLoginNewPassword(ip, "ada", temp, "Mine-Pass-2024")
	if err != nil || tok == "" || u.MustChange {
		t.Fatalf("login choosing a password: %q %+v %v", tok, u, err)
	}
	if !tokenOK(t, w.svc, tok) {
		t.Fatal("the token issued with the new password is refused")
	}
	if stored, err := w.svc.GetUser(root, ada.ID); err != nil || stored.MustChange {
		t.Fatalf("after the change: %+v %v", stored, err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "ada", temp); reasonOf(err) != "BAD_ADMIN_LOGIN" {
		t.Fatalf("the temporary password after the change: %v", err)
	}
	tok, _, _, err = w.svc.AdminLogin(ip, "ada", "Mine-Pass-2024")
	if err != nil || tok == "" {
		t.Fatalf("login with the chosen password: %v", err)
	}

	// A password of one's own may be replaced at login too.
	if tok, _, _, err := w.svc.AdminLoginNewPassword(ip, "ada", "Mine-Pass-2024", "Mine-Pass-2025"); err != nil || tok == "" {
		t.Fatalf("voluntary change at login: %v", err)
	}

	// An expired password: the same, once the password is proven.
	w.clk.t = w.clk.t.Add(91 * 24 * time.Hour)
	if _, _, _, err := w.svc.AdminLogin(ip, "ada", "Mine-Pass-2025"); reasonOf(err) != "PASSWORD_CHANGE_REQUIRED" {
		t.Fatalf("login with an expired password: %v", err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "ada", "Wrong-Pass-78"); reasonOf(err) != "BAD_ADMIN_LOGIN" {
		t.Fatalf("wrong password of an expired account: %v", err)
	}
	if tok, _, _, err := w.svc.AdminLoginNewPassword(ip, "ada", "Mine-Pass-2025", "Mine-Pass-2026"); err != nil || tok == "" {
		t.Fatalf("login replacing an expired password: %v", err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "ada", "Mine-Pass-2026"); err != nil {
		t.Fatalf("login after replacing an expired password: %v", err)
	}
}

// An administrator who may not change their own password keeps one another
// set (the login says it must change, and issues the token), but an
// expired one is changed at login all the same: with authz deciding,
// nobody else may set an administrator's password.
func TestAdminLoginCannotChangePassword(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if _, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "bo", DisplayName: "Bo", OrgID: orgs[0].ID,
		Password: "Kite-Pass-001", IsAdmin: true, CannotChange: true, MustChange: true, OwnPassword: true}); err != nil {
		t.Fatal(err)
	}
	ip := from("192.0.2.10")
	tok, _, u, err := w.svc.AdminLogin(ip, "bo", "Kite-Pass-001")
	if err != nil || tok == "" || !u.MustChange {
		t.Fatalf("login of a user who cannot change their password: %q %+v %v", tok, u, err)
	}
	if _, _, _, err := w.svc.AdminLoginNewPassword(ip, "bo", "Kite-Pass-001", "Kite-Pass-002"); reasonOf(err) != "CANNOT_CHANGE_PASSWORD" {
		t.Fatalf("new password of a user who cannot change it: %v", err)
	}
	w.clk.t = w.clk.t.Add(91 * 24 * time.Hour)
	if _, _, _, err := w.svc.AdminLogin(ip, "bo", "Kite-Pass-001"); reasonOf(err) != "PASSWORD_CHANGE_REQUIRED" {
		t.Fatalf("expired password of a user who cannot change it: %v", err)
	}
	if tok, _, _, err := w.svc.AdminLoginNewPassword(ip, "bo", "Kite-Pass-001", "Kite-Pass-003"); err != nil || tok == "" {
		t.Fatalf("expired password replaced at login: %v", err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "bo", "Kite-Pass-003"); err != nil {
		t.Fatalf("login after replacing the expired password: %v", err)
	}
}

// The audit record of an administrator's login says what became of it: a
// right password with a change pending is no login until the change is
// made (failure PASSWORD_CHANGE_REQUIRED, or the new password's refusal),
// and the login that makes it is a success saying the password changed.
func TestAdminLoginPasswordChangeAudited(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	ada, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "ada", DisplayName: "Ada", OrgID: orgs[0].ID,
		Password: "Zeta-Pass-001", IsAdmin: true, MustChange: true})
	if err != nil {
		t.Fatal(err)
	}
	ip := from("192.0.2.11")
	mark := e.mark(t)
	_, _, _, err = w.svc.AdminLogin(ip, "ada", "Zeta-Pass-001")
	wantReason := func(what string, err error, reason string) {
		t.Helper()
		if reasonOf(err) != reason {
			t.Fatalf("%s: %v, want %s", what, err, reason)
		}
	}
	wantReason("login with a password to change", err, "PASSWORD_CHANGE_REQUIRED")
	_, _, _, err = w.svc.AdminLoginNewPassword(ip, "ada", "Zeta-Pass-001", "weak")
	wantReason("login choosing a weak password", err, "WEAK_PASSWORD")
	if _, _, _, err := w.svc.AdminLoginNewPassword(ip, "ada", "Zeta-Pass-001", "Mine-Pass-2024"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "ada", "Mine-Pass-2024"); err != nil {
		t.Fatal(err)
	}
	recs := auditRecords(t, e.outbox(t, mark), "admin.login")
	want := []struct{ result, reason, changed string }{
		{"incomplete", "PASSWORD_CHANGE_REQUIRED", ""}, {"incomplete", "WEAK_PASSWORD", ""}, {"success", "OK", "true"}, {"success", "OK", ""}}
	if len(recs) != len(want) {
		t.Fatalf("%d admin.login records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, r := range recs {
		if r.Subject != "user:"+ada.ID || r.Result != want[i].result || r.Reason != want[i].reason || r.Detail["password_changed"] != want[i].changed {
			t.Errorf("record %d: %+v, want %+v", i, r, want[i])
		}
	}
}

// A password someone else set (created with it, set or reset by an
// administrator) lets nobody into the administration until its holder
// replaces it with their own, even one who may not change their password
// (trial5 D23: the system administrator created a person with a password
// they chose, a security auditor then appointed them, and the system
// administrator logged in as the new auditor). A password set by its
// holder, or one they chose at login, is theirs.
func TestAdminLoginNeedsOwnPassword(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	_, root := adminLogin(t, w.svc, "admin", "Boot-Strap-Pass1")
	mal, err := w.svc.CreateUser(root, identity.NewUser{LoginName: "mal", DisplayName: "Mal", OrgID: orgs[0].ID,
		Password: "Mx-Pass-5511", IsAdmin: true, CannotChange: true})
	if err != nil {
		t.Fatal(err)
	}
	if !mal.PasswordByOther {
		t.Fatal("a password given at creation is not marked as set by another")
	}
	ip := from("192.0.2.40")
	tok, _, _, err := w.svc.AdminLogin(ip, "mal", "Mx-Pass-5511")
	if reasonOf(err) != "PASSWORD_CHANGE_REQUIRED" || tok != "" || !strings.Contains(err.Error(), "set by another person") {
		t.Fatalf("login with a password another chose: %q %v", tok, err)
	}
	// the application login with it is not the administration's: it works
	if _, err := w.svc.CreateLink(ctx, mal.ID, caller.From(w.ctx).App.ID, "mal001"); err != nil {
		t.Fatal(err)
	}
	if res, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "mal001", Password: "Mx-Pass-5511",
		AuthType: identity.AuthPassword}); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("application login with a password an administrator set: %+v %v", res, err)
	}
	tok, _, u, err := w.svc.AdminLoginNewPassword(ip, "mal", "Mx-Pass-5511", "Mine-Own-Pass-1")
	if err != nil || tok == "" || u.PasswordByOther {
		t.Fatalf("login choosing a password of one's own: %q %+v %v", tok, u, err)
	}
	if tok, _, _, err := w.svc.AdminLogin(ip, "mal", "Mine-Own-Pass-1"); err != nil || tok == "" {
		t.Fatalf("login with one's own password: %v", err)
	}
	// an administrator setting it again (before the appointment, as the
	// escalation rules allow only then) makes it another's again
	if _, err := w.svc.SetPassword(root, mal.ID, "Mx-Pass-5512", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "mal", "Mx-Pass-5512"); reasonOf(err) != "PASSWORD_CHANGE_REQUIRED" {
		t.Fatalf("login after an administrator set the password: %v", err)
	}
	// a change on the CAS pages (or through an application) proves only the
	// password: one another set stays another's (its creator could make it)
	mo, err := w.svc.CreateUser(root, identity.NewUser{LoginName: "mo", DisplayName: "Mo", OrgID: orgs[0].ID,
		Password: "Mx-Pass-5512", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.svc.SSOChangePassword(browserAt("192.0.2.41"), "mo", "Mx-Pass-5512", "Mx-Pass-5513", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "mo", "Mx-Pass-5513"); reasonOf(err) != "PASSWORD_CHANGE_REQUIRED" {
		t.Fatalf("login after a CAS change of a password another set: %v", err)
	}
	// the appointment replaces it: what its creator knows opens nothing,
	// the activation password (the appointer's) is changed at login
	act, err := w.svc.PrepareAppointment(ctx, mo.ID, identity.RoleSystemAdmin)
	if err != nil || act == "" {
		t.Fatalf("appointment of a person whose password another set: %q %v", act, err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "mo", "Mx-Pass-5513"); reasonOf(err) != "BAD_ADMIN_LOGIN" {
		t.Fatalf("the creator's password after the appointment: %v", err)
	}
	if tok, _, _, err := w.svc.AdminLoginNewPassword(ip, "mo", act, "Mine-Own-Pass-2"); err != nil || tok == "" {
		t.Fatalf("the activation password replaced at login: %v", err)
	}
	if act, err := w.svc.PrepareAppointment(ctx, mo.ID, identity.RoleSystemAdmin); err != nil || act != "" {
		t.Fatalf("appointment of a person whose password is their own: %q %v", act, err)
	}
	// a person without a password gets one to activate
	nopw, err := w.svc.CreateUser(root, identity.NewUser{LoginName: "nopw", DisplayName: "No Password", OrgID: orgs[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if act, err := w.svc.PrepareAppointment(ctx, nopw.ID, identity.RoleSystemAdmin); err != nil || act == "" {
		t.Fatalf("appointment of a person without a password: %q %v", act, err)
	}
	// an administrator setting their own password sets their own
	if _, err := w.svc.SetPassword(root, caller.From(root).Principal, "Boot-Strap-Pass9", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := w.svc.AdminLogin(ip, "admin", "Boot-Strap-Pass9"); err != nil {
		t.Fatalf("login after setting one's own password: %v", err)
	}
}
