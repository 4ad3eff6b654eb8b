package identity_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	ulog "github.com/uias/uias/pkg/log"
	"github.com/uias/uias/services/identity"
)

// profileEnv is the real service with a person "pia" (ID number and phone
// recorded) and the logs the service wrote.
type profileEnv struct {
	*evEnv
	logs *observer.ObservedLogs
	user *identity.User
	org  *identity.Org
}

const profilePass = "Harbour-Kite-1234"

func newProfileEnv(t *testing.T, policy identity.Policy) *profileEnv {
	t.Helper()
	return newProfileEnvWith(t, policy, nil)
}

// newProfileEnvWith is newProfileEnv with change applied to the service's
// dependencies last (e.g. a store that fails one operation).
func newProfileEnvWith(t *testing.T, policy identity.Policy, change func(*identity.Deps)) *profileEnv {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	e := newEvEnvWith(t, "", func(d *identity.Deps) {
		d.Logger = zap.New(core)
		d.Config.Policy = policy
		if change != nil {
			change(d)
		}
	})
	if _, _, err := e.svc.Bootstrap(context.Background(), evAdminPass); err != nil {
		t.Fatal(err)
	}
	var admin context.Context
	if policy.AdminRequiresOTP {
		// the bootstrap administrator has no authenticator app to log in
		admin = bootAdminCtx(t, e)
	} else {
		admin, _ = adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	}
	root := evRoot(t, e.svc)
	org, err := e.svc.CreateOrg(admin, "harbour", "Harbour Bureau", root.ID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "pia", DisplayName: "Pia", OrgID: org.ID,
		IDType: identity.IDTypeResidentID, IDNumber: evIDNumber, Phone: evPhone, Email: "pia@example.org", Password: profilePass})
	if err != nil {
		t.Fatal(err)
	}
	return &profileEnv{evEnv: e, logs: logs, user: u, org: org}
}

// bootAdminCtx is the context of a call by the bootstrap administrator,
// made without their login.
func bootAdminCtx(t *testing.T, e *evEnv) context.Context {
	t.Helper()
	var id string
	if err := e.db.QueryRowContext(context.Background(), "SELECT id FROM users WHERE login_name = 'admin'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return caller.With(context.Background(), &caller.Caller{Principal: id, ClientIP: netip.MustParseAddr("10.0.0.9"), RequestID: "req-admin"})
}

// browserAt is the context of the edge's call for the person at address ip.
func browserAt(ip string) context.Context {
	return caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr(ip), RequestID: "req-" + ip})
}

func wantReason(t *testing.T, what string, err error, code apierr.Code, reason string) *apierr.Error {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != code || ae.Reason != reason {
		t.Fatalf("%s: %v, want %v %s", what, err, code, reason)
	}
	return ae
}

// TestOwnProfileShowsMaskedOnly: the profile holds the login, names, the
// org's name, the ID type, the ID number and phone masked (never in
// clear), the e-mail and the password's dates.
func TestOwnProfileShowsMaskedOnly(t *testing.T) {
	e := newProfileEnv(t, identity.Policy{})
	p, err := e.svc.GetOwnProfile(browserAt("192.0.2.1"), e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	u := p.User
	if u.LoginName != "pia" || u.DisplayName != "Pia" || p.OrgName != "Harbour Bureau" || u.IDType != identity.IDTypeResidentID ||
		u.IDNumberMask != ulog.MaskIDNumber(evIDNumber) || u.PhoneMask != ulog.MaskPhone(evPhone) || u.Email != "pia@example.org" {
		t.Fatalf("profile: %+v org %q", u, p.OrgName)
	}
	if u.PasswordChangedAt.IsZero() || !p.PasswordExpiresAt.Equal(u.PasswordChangedAt.Add(identity.DefaultPolicy().MaxAge)) {
		t.Fatalf("password dates: changed %v expires %v", u.PasswordChangedAt, p.PasswordExpiresAt)
	}
	if p.DisplayNameEditable {
		t.Fatal("display name editable by default")
	}
	if strings.Contains(u.IDNumberMask, evIDNumber[6:14]) || strings.Contains(u.PhoneMask, evPhone[3:7]) {
		t.Fatalf("masks show the middle: %q %q", u.IDNumberMask, u.PhoneMask)
	}
}

// TestUpdateOwnProfile: with the current password, the person changes
// their e-mail and phone; the change is written as UpdateUser writes it
// (CHANGES user.updated, phone masked) with the person as the actor,
// audited as user.update_self; no phone reaches the logs or the events
// in clear.
func TestUpdateOwnProfile(t *testing.T) {
	e := newProfileEnv(t, identity.Policy{})
	m := e.mark(t)
	p, err := e.svc.UpdateOwnProfile(browserAt("192.0.2.1"), e.user.ID, profilePass,
		identity.UserUpdate{Mask: []string{"email", "phone"}, Email: "pia.new@example.org", Phone: evPhone2})
	if err != nil {
		t.Fatal(err)
	}
	if p.User.Email != "pia.new@example.org" || p.User.PhoneMask != ulog.MaskPhone(evPhone2) || p.OrgName != "Harbour Bureau" {
		t.Fatalf("after the change: %+v", p.User)
	}
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin2")
	got, err := e.svc.GetUser(admin, e.user.ID)
	if err != nil || got.Email != "pia.new@example.org" || got.PhoneMask != ulog.MaskPhone(evPhone2) || got.DisplayName != "Pia" {
		t.Fatalf("the administrator sees %+v %v", got, err)
	}
	rows := e.outbox(t, m)
	actor := "user:" + e.user.ID
	d := wantChange(t, rows, "user", "updated", e.user.ID, actor)
	if d["email"] != "pia.new@example.org" || d["phone"] != ulog.MaskPhone(evPhone2) || len(d) != 2 {
		t.Errorf("user.updated data %v", d)
	}
	rec := audit(t, rows, "user.update_self")
	if rec.Actor != actor || rec.Subject != actor || rec.Org != e.org.ID || rec.Result != "success" || rec.ClientIP != "192.0.2.1" {
		t.Errorf("user.update_self audit %+v", rec)
	}
	if v := audit(t, rows, "sso.profile.verify"); v.Result != "success" || v.Subject != actor {
		t.Errorf("password check audit %+v", v)
	}
	e.noneContain(t, "phone", evPhone2, evPhone, evIDNumber)
	for _, l := range e.logs.All() {
		line := l.Message
		for k, v := range l.ContextMap() {
			line += " " + k + "=" + strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(toString(v)), "\n", " "), "\t", " ")
		}
		if strings.Contains(line, evPhone2) || strings.Contains(line, evPhone) || strings.Contains(line, evIDNumber) || strings.Contains(line, profilePass) {
			t.Errorf("log line with personal data: %s", line)
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// TestUpdateOwnProfileRefusals: fields are checked with UpdateUser's rules
// before the password (a typing error costs no login attempt); the
// administrator's fields are refused; a wrong password is a failed login
// counted by the same gate, up to the lock, after which even the right
// password is refused.
func TestUpdateOwnProfileRefusals(t *testing.T) {
	e := newProfileEnv(t, identity.Policy{})
	ctx := browserAt("192.0.2.1")
	update := func(ctx context.Context, pw string, up identity.UserUpdate) error {
		_, err := e.svc.UpdateOwnProfile(ctx, e.user.ID, pw, up)
		return err
	}
	m := e.mark(t)
	// The same rules as UpdateUser, named by field.
	for _, tc := range []struct {
		up    identity.UserUpdate
		field string
	}{
		{identity.UserUpdate{Mask: []string{"email"}, Email: "not-an-address"}, "email"},
		{identity.UserUpdate{Mask: []string{"phone", "email"}, Phone: "138_1234_5678", Email: "ok@example.org"}, "phone"},
	} {
		ae := wantReason(t, tc.field, update(ctx, profilePass, tc.up), apierr.InvalidArgument, apierr.ReasonBadRequest)
		if ae.Meta[apierr.MetaField] != tc.field {
			t.Errorf("%s: meta %v", tc.field, ae.Meta)
		}
		admin, _ := adminCtx(t, e.svc, "10.0.0.9", "req-x")
		_, adminErr := e.svc.UpdateUser(admin, e.user.ID, tc.up)
		if reasonOf(adminErr) != ae.Reason || adminErr.Error() != ae.Error() {
			t.Errorf("%s: the administrator gets %v, the person %v", tc.field, adminErr, ae)
		}
	}
	// The administrator's fields, and the display name by default.
	for _, f := range []string{"display_name", "id_number", "id_type", "org_id", "login_name", "must_change_password"} {
		wantReason(t, f, update(ctx, profilePass, identity.UserUpdate{Mask: []string{"email", f}, Email: "x@example.org",
			DisplayName: "Other", IDNumber: "110101199003071234"}), apierr.PermissionDenied, "SELF_SERVICE_FIELD")
	}
	wantReason(t, "empty mask", update(ctx, profilePass, identity.UserUpdate{}), apierr.InvalidArgument, apierr.ReasonBadRequest)
	if n := countPrefix(e.outbox(t, m), "uias.audit.identity.sso.profile.verify"); n != 0 {
		t.Fatalf("refused fields cost %d password checks", n)
	}

	// Wrong passwords: refused and counted. One address counts at most
	// SourceFailures (2) against the account; the lock (5) needs three.
	good := identity.UserUpdate{Mask: []string{"email"}, Email: "pia2@example.org"}
	ips := []string{"198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.2", "198.51.100.3"}
	for i, ip := range ips {
		err := update(browserAt(ip), "Wrong-Pass-99", good)
		ae := wantReason(t, "wrong password", err, apierr.FailedPrecondition, "VERIFICATION_FAILED")
		want := identity.ReasonBadCredentials.String()
		if i == len(ips)-1 {
			want = identity.ReasonAccountLocked.String() // the fifth counted failure locks
		}
		if ae.Meta["verdict"] != want {
			t.Fatalf("attempt %d: verdict %q, want %q", i+1, ae.Meta["verdict"], want)
		}
	}
	// The login page's check sees the same lock.
	if res, err := e.svc.SSOLogin(browserAt("203.0.113.7"), "pia", profilePass); err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("login after the failed profile changes: %+v %v", res, err)
	}
	ae := wantReason(t, "locked", update(browserAt("203.0.113.8"), profilePass, good), apierr.FailedPrecondition, "VERIFICATION_FAILED")
	if ae.Meta["verdict"] != identity.ReasonAccountLocked.String() {
		t.Fatalf("locked account: verdict %q", ae.Meta["verdict"])
	}
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "req-y")
	if u, _ := e.svc.GetUser(admin, e.user.ID); u.Email != "pia@example.org" {
		t.Fatalf("refused changes were written: %q", u.Email)
	}
	// Disabled: refused too.
	if _, err := e.svc.UnlockUser(admin, e.user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetUserStatus(admin, e.user.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	ae = wantReason(t, "disabled", update(browserAt("203.0.113.9"), profilePass, good), apierr.FailedPrecondition, "VERIFICATION_FAILED")
	if ae.Meta["verdict"] != identity.ReasonAccountDisabled.String() {
		t.Fatalf("disabled account: verdict %q", ae.Meta["verdict"])
	}
}

// TestUpdateOwnDisplayNameByPolicy: identity.policy.self_service_display_name
// lets the person change their display name (UpdateUser's rule: not empty).
func TestUpdateOwnDisplayNameByPolicy(t *testing.T) {
	pol := identity.DefaultPolicy()
	pol.SelfServiceDisplayName = true
	e := newProfileEnv(t, pol)
	ctx := browserAt("192.0.2.1")
	if p, err := e.svc.GetOwnProfile(ctx, e.user.ID); err != nil || !p.DisplayNameEditable {
		t.Fatalf("editable: %+v %v", p, err)
	}
	wantReason(t, "empty", func() error {
		_, err := e.svc.UpdateOwnProfile(ctx, e.user.ID, profilePass, identity.UserUpdate{Mask: []string{"display_name"}})
		return err
	}(), apierr.InvalidArgument, apierr.ReasonBadRequest)
	p, err := e.svc.UpdateOwnProfile(ctx, e.user.ID, profilePass, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Pia Lin"})
	if err != nil || p.User.DisplayName != "Pia Lin" {
		t.Fatalf("display name: %+v %v", p, err)
	}
	wantReason(t, "id number", func() error {
		_, err := e.svc.UpdateOwnProfile(ctx, e.user.ID, profilePass, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: "x"})
		return err
	}(), apierr.PermissionDenied, "SELF_SERVICE_FIELD")
}

// TestUpdateOwnProfileHomeCentreOnly: a centre that holds the person as a
// replica refuses the change (HOME_CENTRE_ELSEWHERE naming the home), as
// it refuses UpdateUser, before any password check.
func TestUpdateOwnProfileHomeCentreOnly(t *testing.T) {
	tb := newTwoBureaus(t)
	newSvc, a := tb.newSvc, tb.a
	u := tb.person(t, "in-a", a.ID, false)
	l1 := newSvc(&centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{a.ID: "l2a"}})
	_, err := l1.UpdateOwnProfile(browserAt("192.0.2.1"), u.ID, "Wrong-Pass-99", identity.UserUpdate{Mask: []string{"email"}, Email: "a@example.org"})
	ae := wantReason(t, "replica", err, apierr.FailedPrecondition, centre.ReasonElsewhere)
	if !strings.Contains(ae.Message, `homed at centre "l2a"`) {
		t.Fatalf("message %q", ae.Message)
	}
	l2 := newSvc(&centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: map[string]string{a.ID: "l2a"}})
	if _, err := l2.UpdateOwnProfile(browserAt("192.0.2.1"), u.ID, "Mx-Pass-5511", identity.UserUpdate{Mask: []string{"email"}, Email: "a@example.org"}); err != nil {
		t.Fatalf("at home: %v", err)
	}
}

// A person without a password (who signs in only with a certificate) has
// nothing to re-enter: their own change is refused at once with
// NO_OWN_PASSWORD, costs no password check and counts no failure; the
// profile says they have no password.
func TestUpdateOwnProfileWithoutPassword(t *testing.T) {
	e := newProfileEnv(t, identity.Policy{})
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	u, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "dave", DisplayName: "Dave", OrgID: e.org.ID})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.GetOwnProfile(context.Background(), u.ID)
	if err != nil || p.User.PasswordHash != "" {
		t.Fatalf("profile: %+v %v", p, err)
	}
	m := e.mark(t)
	for range 3 {
		_, err := e.svc.UpdateOwnProfile(browserAt("192.0.2.7"), u.ID, "anything", identity.UserUpdate{Mask: []string{"email"}, Email: "d@example.org"})
		wantReason(t, "no password", err, apierr.FailedPrecondition, "NO_OWN_PASSWORD")
	}
	if n := countPrefix(e.outbox(t, m), "uias.audit.identity.sso.profile.verify"); n != 0 {
		t.Fatalf("%d password checks for a person without a password", n)
	}
	got, err := e.svc.GetUser(admin, u.ID)
	if err != nil || got.FailedCount != 0 || got.Email != "" {
		t.Fatalf("after the refusals: %+v %v", got, err)
	}
}
