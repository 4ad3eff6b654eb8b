package identity_test

import (
	"context"
	"encoding/base32"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/ldapauth"
	"github.com/uias/uias/services/identity/ldapauth/ldaptest"
	"github.com/uias/uias/services/identity/sqlstore"
)

const (
	annDirPW  = "Ann-Dir-Pass-1"
	doraDirPW = "Dora-Dir-Pass-1"
)

// dirWorld is a service whose org "sz" (and its subtree) signs in against
// a real slapd (identity.ldap_auth "corp"): ann (in sz/sz-ops, linked to
// app oa as a001) and zed (in sz, unknown to the directory) have no
// password in UIAS; mia (root org, m001) keeps her local one.
type dirWorld struct {
	*evEnv
	srv      *ldaptest.Server
	ctx      context.Context // app oa
	ann, zed *identity.User
	mia      *identity.User
}

func newDirWorld(t *testing.T) *dirWorld {
	t.Helper()
	srv := ldaptest.Start(t, ldaptest.Person{UID: "ann", Password: annDirPW}, ldaptest.Person{UID: "dora", Password: doraDirPW})
	src, err := ldapauth.Open(ldapauth.Config{Name: "corp", URL: srv.URL, CAFile: srv.CAFile,
		BindDNTemplate: "uid={login}," + ldaptest.People, Orgs: []string{"sz"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEvEnvWith(t, "", func(d *identity.Deps) {
		d.CredentialSources = []identity.DirectorySource{{Source: src, Orgs: []string{"sz"}}}
	})
	ctx := context.Background()
	if _, _, err := e.svc.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
		t.Fatal(err)
	}
	orgs, _, err := e.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if err != nil || len(orgs) != 1 {
		t.Fatalf("orgs: %v %v", orgs, err)
	}
	sz, err := e.svc.CreateOrg(ctx, "sz", "Shenzhen", orgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := e.svc.CreateOrg(ctx, "sz-ops", "Shenzhen operations", sz.ID)
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := e.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "oa", Name: "OA"})
	if err != nil {
		t.Fatal(err)
	}
	w := &dirWorld{evEnv: e, srv: srv, ctx: caller.With(ctx, &caller.Caller{App: app.CallerApp(), RequestID: "r1"})}
	for _, p := range []struct {
		u             **identity.User
		login, org    string
		pw, account   string
		wantCreateErr string
	}{
		{&w.ann, "ann", ops.ID, "", "a001", ""},
		{&w.zed, "zed", sz.ID, "", "z001", ""},
		{&w.mia, "mia", orgs[0].ID, "First-Pass-1", "m001", ""},
	} {
		u, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: p.login, DisplayName: p.login, OrgID: p.org, Password: p.pw})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateLink(ctx, u.ID, app.ID, p.account); err != nil {
			t.Fatal(err)
		}
		*p.u = u
	}
	return w
}

func (w *dirWorld) auth(t *testing.T, account, pw, ip string) (*identity.AuthResult, error) {
	t.Helper()
	return w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: account, Password: pw, AuthType: identity.AuthPassword,
		Extend: map[string]string{identity.ClientIPExtend: ip}})
}

func (w *dirWorld) failed(t *testing.T, u *identity.User) int {
	t.Helper()
	got, err := w.svc.GetUser(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.FailedCount
}

// The people of the directory's subtree sign in with its password (the
// application's Authenticate and the sign-in page), wrong passwords count
// towards the lockout as local ones do, and the lock holds against the
// right one; people elsewhere keep their local hash.
func TestDirectoryPasswordSignIn(t *testing.T) {
	w := newDirWorld(t)
	m := w.mark(t)
	if r, err := w.auth(t, "a001", annDirPW, "198.51.100.1"); err != nil || r.Reason != identity.ReasonOK || r.MustChange {
		t.Fatalf("directory password: %+v %v", r, err)
	}
	recs := auditRecords(t, w.outbox(t, m), "authenticate")
	if len(recs) != 1 || recs[0].Result != "success" {
		t.Fatalf("audit of the sign-in: %+v", recs)
	}
	if r, err := w.svc.SSOLogin(from("198.51.100.9"), "ann", annDirPW); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("sign-in page: %+v %v", r, err)
	}
	// A person of the subtree the directory does not know.
	if r, err := w.auth(t, "z001", annDirPW, "198.51.100.1"); err != nil || r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("unknown to the directory: %+v %v", r, err)
	}
	// Local people are untouched: mia's hash decides, not the directory.
	if r, err := w.auth(t, "m001", "First-Pass-1", "198.51.100.1"); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("local person: %+v %v", r, err)
	}
	if r, _ := w.auth(t, "m001", annDirPW, "198.51.100.1"); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("local person with a directory password: %+v", r)
	}

	// Wrong passwords: counted (two per source), locked at the fifth.
	for i := range 4 {
		if r, err := w.auth(t, "a001", "Wrong-Pass-1", fmt.Sprintf("203.0.113.%d", i/2+1)); err != nil ||
			r.Reason != identity.ReasonBadCredentials {
			t.Fatalf("wrong password %d: %+v %v", i, r, err)
		}
	}
	if n := w.failed(t, w.ann); n != 4 {
		t.Fatalf("counted failures %d, want 4", n)
	}
	if r, _ := w.auth(t, "a001", "Wrong-Pass-1", "203.0.113.9"); r.Reason != identity.ReasonAccountLocked {
		t.Fatalf("fifth failure: %v", r.Reason)
	}
	if r, _ := w.auth(t, "a001", annDirPW, "203.0.113.10"); r.Reason != identity.ReasonAccountLocked {
		t.Fatalf("right directory password while locked: %v", r.Reason)
	}
	if _, err := w.svc.UnlockUser(context.Background(), w.ann.ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.auth(t, "a001", annDirPW, "203.0.113.10"); r.Reason != identity.ReasonOK {
		t.Fatalf("after the unlock: %v", r.Reason)
	}
	// The empty password is never sent (an anonymous bind would succeed):
	// a wrong password, counted.
	if r, err := w.svc.SSOLogin(from("198.51.100.9"), "ann", ""); err != nil || r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("empty password: %+v %v", r, err)
	}
	if n := w.failed(t, w.ann); n != 1 {
		t.Fatalf("empty password counted %d", n)
	}

	// The source each person uses, as GetUser answers it.
	for u, want := range map[*identity.User]string{w.ann: "ldap:corp", w.zed: "ldap:corp", w.mia: "local"} {
		if got, err := w.svc.CredentialSourceOf(context.Background(), u); err != nil || got != want {
			t.Fatalf("%s: credential source %q %v, want %q", u.LoginName, got, err, want)
		}
	}
}

// The directory down: no verdict (UNAVAILABLE CREDENTIAL_SOURCE_UNAVAILABLE,
// legacy -6) on every path, nothing counted, an audit record of the error;
// local people still sign in.
func TestDirectoryDown(t *testing.T) {
	w := newDirWorld(t)
	w.srv.Stop()
	before := w.failed(t, w.ann)
	m := w.mark(t)
	for i := range 6 {
		_, err := w.auth(t, "a001", "Any-Pass-1", fmt.Sprintf("203.0.113.%d", i+1))
		wantReason(t, "Authenticate", err, apierr.Unavailable, identity.ReasonCredentialSourceUnavailable)
		if apierr.LegacyCode(err) != -6 {
			t.Fatalf("legacy code %d", apierr.LegacyCode(err))
		}
	}
	_, err := w.svc.SSOLogin(from("198.51.100.9"), "ann", annDirPW)
	wantReason(t, "SSOLogin", err, apierr.Unavailable, identity.ReasonCredentialSourceUnavailable)
	if n := w.failed(t, w.ann); n != before {
		t.Fatalf("failures counted while the directory was down: %d, was %d", n, before)
	}
	recs := auditRecords(t, w.outbox(t, m), "authenticate")
	if len(recs) != 6 || recs[0].Result != "error" || recs[0].Reason != identity.ReasonCredentialSourceUnavailable ||
		recs[0].Detail["credential_source"] != "corp" {
		t.Fatalf("audit records: %+v", recs)
	}
	if r, err := w.auth(t, "m001", "First-Pass-1", "198.51.100.1"); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("local person with the directory down: %+v %v", r, err)
	}
}

// UIAS never sets a directory's password: the person's own change (through
// an application or the sign-in page), an administrator's set and reset, a
// new person created with one, and an import bringing a hash.
func TestDirectoryPasswordNotSetHere(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	const refused = identity.ReasonPasswordManagedByDirectory
	wantReason(t, "ChangePassword", w.svc.ChangePassword(w.ctx, "a001", annDirPW, "New-Pass-123"), apierr.FailedPrecondition, refused)
	wantReason(t, "SSOChangePassword", w.svc.SSOChangePassword(from("198.51.100.9"), "ann", annDirPW, "New-Pass-123", "", ""),
		apierr.FailedPrecondition, refused)
	_, err := w.svc.SetPassword(ctx, w.ann.ID, "New-Pass-123", false)
	wantReason(t, "SetPassword", err, apierr.FailedPrecondition, refused)
	_, _, err = w.svc.ResetPassword(ctx, w.zed.ID, nil)
	wantReason(t, "ResetPassword", err, apierr.FailedPrecondition, refused)
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "newbie", DisplayName: "N", OrgID: w.zed.OrgID, Password: "New-Pass-123"})
	wantReason(t, "CreateUser with a password", err, apierr.FailedPrecondition, refused)
	// An import: a hash for a person of the subtree is a row error; one
	// without a hash, and a local person's hash, are written.
	rows := []map[string]string{
		{"login_name": "imp1", "display_name": "I1", "org_code": "sz-ops", "password_hash": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="},
		{"login_name": "imp2", "display_name": "I2", "org_code": "sz-ops"},
		{"login_name": "imp3", "display_name": "I3", "org_code": "sz", "password_hash": "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="},
	}
	root, err := w.svc.GetOrg(ctx, w.mia.OrgID)
	if err != nil {
		t.Fatal(err)
	}
	rows[2]["org_code"] = root.Code
	i := 0
	rep, err := w.svc.Import(ctx, identity.ImportOptions{Kind: "users", ImportID: "dir-1"}, func() (*identity.ImportRow, bool, error) {
		if i == len(rows) {
			return nil, false, nil
		}
		i++
		return &identity.ImportRow{Row: i + 1, Fields: rows[i-1]}, true, nil
	})
	if err != nil || rep.Written != 2 || rep.Failed != 1 || rep.Errors[0].Row != 2 || rep.Errors[0].Field != "password_hash" ||
		rep.Errors[0].Reason != refused {
		t.Fatalf("import: %+v %v", rep, err)
	}
	// and her directory password still works; mia's own is still hers to change
	if r, err := w.auth(t, "a001", annDirPW, "198.51.100.1"); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("after the refusals: %+v %v", r, err)
	}
	if err := w.svc.ChangePassword(w.ctx, "m001", "First-Pass-1", "Second-Pass-2"); err != nil {
		t.Fatalf("local person's change: %v", err)
	}
}

// An administrator of the directory's subtree logs in with the directory's
// password: a must_change_password an administrator set does not hold the
// token back (the directory owns the password), and a new password given
// at login is refused.
func TestDirectoryAdministratorLogin(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	dora, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "dora", DisplayName: "Dora", OrgID: w.zed.OrgID,
		IsAdmin: true, MustChange: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, u, err := w.svc.AdminLogin(from("198.51.100.20"), "dora", doraDirPW)
	if err != nil || tok == "" || u.ID != dora.ID {
		t.Fatalf("administrator login: %q %v", tok, err)
	}
	if _, _, _, err := w.svc.AdminLogin(from("198.51.100.20"), "dora", "Wrong-Pass-1"); reasonOf(err) != "BAD_ADMIN_LOGIN" {
		t.Fatalf("wrong password: %v", err)
	}
	_, _, _, err = w.svc.AdminLoginNewPassword(from("198.51.100.20"), "dora", doraDirPW, "New-Pass-123")
	wantReason(t, "new password at login", err, apierr.FailedPrecondition, identity.ReasonPasswordManagedByDirectory)
}

// TestDirectoryPersonSelfService: a directory person (no hash here, her
// password the directory's) confirms her own changes with that password:
// the profile page's contact fields and the authenticator app's
// enrolment (a level-2 directory person needs it to sign in at all); a
// wrong directory password is refused as a failed check. A person with no
// password anywhere is still NO_OWN_PASSWORD (review sec27a M3).
func TestDirectoryPersonSelfService(t *testing.T) {
	w := newDirWorld(t)
	ctx := browserAt("192.0.2.10")
	if r, err := w.svc.SSOLogin(ctx, "ann", annDirPW); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("directory sign-in: %+v %v", r, err)
	}
	if _, err := w.svc.UpdateOwnProfile(ctx, w.ann.ID, "Wrong-Dir-Pass-1", identity.UserUpdate{Mask: []string{"email"}, Email: "ann@example.org"}); reasonOf(err) != "VERIFICATION_FAILED" {
		t.Fatalf("wrong directory password: %v", err)
	}
	p, err := w.svc.UpdateOwnProfile(ctx, w.ann.ID, annDirPW, identity.UserUpdate{Mask: []string{"email"}, Email: "ann@example.org"})
	if err != nil || p.User.Email != "ann@example.org" {
		t.Fatalf("profile change with the directory password: %+v %v", p, err)
	}
	en, err := w.svc.BeginTOTPEnrolment(ctx, w.ann.ID)
	if err != nil {
		t.Fatalf("a directory person cannot begin an authenticator app: %v", err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if err != nil {
		t.Fatal(err)
	}
	code := identity.TOTPCode(key, identity.TOTPStep(w.clk.t))
	if _, err := w.svc.ConfirmTOTPEnrolment(ctx, w.ann.ID, annDirPW, en.Token, code); err != nil {
		t.Fatalf("confirm with the directory password: %v", err)
	}
	if r, err := w.svc.SSOLogin(ctx, "ann", annDirPW); err != nil || r.Reason != identity.ReasonOTPRequired {
		t.Fatalf("after the enrolment: %+v %v", r, err)
	}
	// No password anywhere (root org, no directory, no hash).
	cy, err := w.svc.CreateUser(context.Background(), identity.NewUser{LoginName: "cy", DisplayName: "Cy", OrgID: w.mia.OrgID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.BeginTOTPEnrolment(ctx, cy.ID); reasonOf(err) != "NO_OWN_PASSWORD" {
		t.Fatalf("no password anywhere: %v", err)
	}
}

// TestDirectoryMoveDropsLocalHash: a person moved into a directory subtree
// loses the local hash (audited user.clear_password, the replicas told):
// moved out again, the old password no longer signs in (review sec27a M2).
// A person whose org is moved under the subtree loses it with the move;
// ClearDirectoryHashes (run at identity's start) removes hashes kept from
// before.
func TestDirectoryMoveDropsLocalHash(t *testing.T) {
	w := newDirWorld(t)
	ctx := browserAt("192.0.2.11")
	admin := context.Background()
	root := w.mia.OrgID
	m := w.mark(t)
	if _, err := w.svc.UpdateUser(admin, w.mia.ID, identity.UserUpdate{Mask: []string{"org_id"}, OrgID: w.zed.OrgID}); err != nil {
		t.Fatal(err)
	}
	if u, err := w.svc.GetUser(admin, w.mia.ID); err != nil || u.PasswordHash != "" {
		t.Fatalf("moved in, hash kept: %v", err)
	}
	recs := auditRecords(t, w.outbox(t, m), "user.clear_password")
	if len(recs) != 1 || recs[0].Detail["reason"] != "DIRECTORY" || recs[0].Detail["credential_source"] != "ldap:corp" {
		t.Fatalf("audit: %+v", recs)
	}
	if _, err := w.svc.UpdateUser(admin, w.mia.ID, identity.UserUpdate{Mask: []string{"org_id"}, OrgID: root}); err != nil {
		t.Fatal(err)
	}
	if r, err := w.svc.SSOLogin(ctx, "mia", "First-Pass-1"); err != nil || r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("moved out again, the old local password: %+v %v", r, err)
	}
	// An org moved under the subtree: its people's hashes go with the
	// move, audited, and the old password signs in nowhere.
	yard, err := w.svc.CreateOrg(admin, "yard", "Yard", root)
	if err != nil {
		t.Fatal(err)
	}
	yan, err := w.svc.CreateUser(admin, identity.NewUser{LoginName: "yan", DisplayName: "Yan", OrgID: yard.ID, Password: "Quay-Local-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	m = w.mark(t)
	if _, err := w.svc.MoveOrg(admin, yard.ID, w.zed.OrgID); err != nil {
		t.Fatal(err)
	}
	if u, _ := w.svc.GetUser(admin, yan.ID); u.PasswordHash != "" {
		t.Fatal("an org moved under a directory kept its people's hashes")
	}
	if recs := auditRecords(t, w.outbox(t, m), "user.clear_password"); len(recs) != 1 || recs[0].Subject != "user:"+yan.ID {
		t.Fatalf("audit of the org move's clearing: %+v", recs)
	}
	if _, err := w.svc.MoveOrg(admin, yard.ID, root); err != nil {
		t.Fatal(err)
	}
	if r, err := w.svc.SSOLogin(ctx, "yan", "Quay-Local-Pass-1"); err != nil || r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("org moved out again, the old local password: %+v %v", r, err)
	}
	// A hash kept from before (an earlier version, a wider ldap_auth): the
	// sweep of every directory subtree removes it, once.
	if _, err := w.db.ExecContext(admin, "UPDATE users SET password_hash = 'kept-from-before' WHERE id = ?", w.ann.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := w.svc.ClearDirectoryHashes(admin, ""); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if u, _ := w.svc.GetUser(admin, w.ann.ID); u.PasswordHash != "" {
		t.Fatal("the sweep kept the hash")
	}
	if n, err := w.svc.ClearDirectoryHashes(admin, ""); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
}

// TestDirectoryAccountStates: Active Directory's "locked out" and
// "disabled" refusals are answered as such and not counted towards UIAS's
// lock (the directory counts its own); its "password expired" / "must
// change" (answered only to the right password) is an expired password
// (review sec27a L1).
func TestDirectoryAccountStates(t *testing.T) {
	world := func(code string) (*evEnv, *identity.User) {
		src, err := ldapauth.Open(ldapauth.Config{Name: "ad", URL: "ldap://" + ldaptest.ADServer(t, code), StartTLS: new(false),
			BindDNTemplate: "{login}@corp.example.com", Orgs: []string{"sz"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		e := newEvEnvWith(t, "", func(d *identity.Deps) {
			d.CredentialSources = []identity.DirectorySource{{Source: src, Orgs: []string{"sz"}}}
		})
		ctx := context.Background()
		if _, _, err := e.svc.Bootstrap(ctx, "Boot-Strap-Pass1"); err != nil {
			t.Fatal(err)
		}
		sz, err := e.svc.CreateOrg(ctx, "sz", "Shenzhen", evRoot(t, e.svc).ID)
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "ann", DisplayName: "Ann", OrgID: sz.ID})
		if err != nil {
			t.Fatal(err)
		}
		return e, u
	}
	ctx := browserAt("192.0.2.12")
	e, ann := world("775")
	m := e.mark(t)
	for range 6 {
		if r, err := e.svc.SSOLogin(ctx, "ann", annDirPW); err != nil || r.Reason == identity.ReasonOK {
			t.Fatalf("locked at the directory: %+v %v", r, err)
		}
	}
	if u, err := e.svc.GetUser(context.Background(), ann.ID); err != nil || u.FailedCount != 0 || !u.LockedUntil.IsZero() {
		t.Fatalf("counted: %+v %v", u, err)
	}
	recs := auditRecords(t, e.outbox(t, m), "sso.login")
	if len(recs) == 0 || recs[0].Reason != "ACCOUNT_LOCKED" || recs[0].Detail["directory_state"] != "locked" {
		t.Fatalf("audit: %+v", recs)
	}
	e, _ = world("532")
	if r, err := e.svc.SSOLogin(ctx, "ann", annDirPW); err != nil || r.Reason != identity.ReasonPasswordExpired {
		t.Fatalf("expired at the directory: %+v %v", r, err)
	}
	e, _ = world("533")
	if r, err := e.svc.SSOLogin(ctx, "ann", annDirPW); err != nil || r.Reason == identity.ReasonOK {
		t.Fatalf("disabled at the directory: %+v %v", r, err)
	}
}

// TestDirectoryClearedHashReachesOtherCentres: a level-2 centre whose
// subtree "dir" signs in against a directory; an org of its people with
// local passwords, replicated to level 1 (where the password signs in), is
// moved under "dir": the cleared hashes travel, and level 1 no longer
// takes the old password either (review sec27a M2).
func TestDirectoryClearedHashReachesOtherCentres(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Person{UID: "ann", Password: annDirPW})
	src, err := ldapauth.Open(ldapauth.Config{Name: "corp", URL: srv.URL, CAFile: srv.CAFile,
		BindDNTemplate: "uid={login}," + ldaptest.People, Orgs: []string{"dir"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-d")
	homes := &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: map[string]string{bureau.ID: "l2a"}}
	svc2 := testService(t, identity.Deps{Store: sqlstore.New(l2.db), Homes: homes, Keys: l2.keys,
		Sleep:             func(context.Context, time.Duration) error { return nil },
		CredentialSources: []identity.DirectorySource{{Source: src, Orgs: []string{"dir"}}}})
	dir, err := svc2.CreateOrg(admin2, "dir", "Directory people", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	yard, err := svc2.CreateOrg(admin2, "yard-d", "Yard", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "yen", DisplayName: "Yen", OrgID: yard.ID, Password: "Quay-Local-Pass-2"}); err != nil {
		t.Fatal(err)
	}
	cs, mark, _ := l2.changes(t, 0)
	if _, err := l1.svc.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	at := browserAt("192.0.2.13")
	if r, err := l1.svc.SSOLogin(at, "yen", "Quay-Local-Pass-2"); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("the replicated password at level 1: %+v %v", r, err)
	}
	if _, err := svc2.MoveOrg(admin2, yard.ID, dir.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, mark)
	if _, err := l1.svc.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if r, err := l1.svc.SSOLogin(at, "yen", "Quay-Local-Pass-2"); err != nil || r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("the cleared password at level 1: %+v %v", r, err)
	}
}
