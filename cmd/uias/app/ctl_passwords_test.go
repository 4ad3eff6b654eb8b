package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/store"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// ageUsersPassword makes login's password a year old, as if set then (the
// store's clock cannot be moved under a running server; ListUsers reads
// the store, so no cache stands in the way).
func ageUsersPassword(t *testing.T, dataDir, login string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "*.db"))
	ctx := context.Background()
	for _, f := range files {
		db, err := store.Open(ctx, "sqlite", f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.ExecContext(ctx, "UPDATE users SET password_changed_at = ? WHERE login_name = ?",
			store.UnixMS(time.Now().AddDate(-1, 0, 0)), login)
		_ = db.Close()
		if err == nil {
			if n, _ := res.RowsAffected(); n == 1 {
				return
			}
		}
	}
	t.Fatalf("no users table with %s under %s (%v)", login, dataDir, files)
}

// The account policy of the maritime SSO design (004, 2.1.6.3): reset
// several users' passwords; find those whose password has expired and
// enable, disable or reset them.
func TestCtlPasswordPolicyCommands(t *testing.T) {
	cfg := quickConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{Out: &bytes.Buffer{}, BootstrapPassword: readmeAdminPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = a.Stop(sctx)
	})
	c := newCtl(t, a)
	c.run(readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin")
	var orgs identityv1.ListOrgsResponse
	c.jsonOut(&orgs, "", "org", "list")
	root := orgs.GetOrgs()[0].GetId()
	oa, bob := appWithUser(t, c, root, "bob", "B001", readmeUserPassword)
	appID, secret := oa.GetApp().GetId(), oa.GetAppSecret()
	var carol identityv1.User
	c.jsonOut(&carol, "Kestrel-Pass-2024\n", "user", "create", "--login", "carol", "--name", "Carol", "--org", root, "--password-stdin")
	var l identityv1.AccountLink
	c.jsonOut(&l, "", "link", "create", "--user", carol.GetId(), "--app", appID, "--account", "C001")

	// Nobody's password has expired yet; a user's expiry is shown.
	var list identityv1.ListUsersResponse
	c.jsonOut(&list, "", "user", "list", "--password-expired")
	if len(list.GetUsers()) != 0 {
		t.Fatalf("expired passwords on a fresh server: %v", userLogins(list.GetUsers()))
	}
	if out := c.run("", "user", "get", bob.GetId()); !strings.Contains(out, "Password expires:") || strings.Contains(out, "(expired)") {
		t.Errorf("user get: %s", out)
	}

	// reset-password of several users: a table of temporary passwords,
	// each usable once and to be changed; an unknown ID is reported and
	// the others are done (exit 3).
	r := c.exec("", "user", "reset-password", bob.GetId(), "no-such-user", carol.GetId())
	if r.code != 3 || !strings.Contains(r.stderr, "no-such-user") || !strings.Contains(r.stderr, "1 of 3 failed") {
		t.Fatalf("reset-password with an unknown ID: %+v", r)
	}
	temp := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		f := strings.Fields(line)
		temp[f[1]] = f[len(f)-1]
	}
	if len(temp) != 2 || temp["bob"] == "" || temp["carol"] == "" || temp["bob"] == temp["carol"] {
		t.Fatalf("reset-password table:\n%s", r.stdout)
	}
	wantAuth(t, "old password after a reset", a, appID, secret, "B001", readmeUserPassword, identityv1.Reason_REASON_BAD_CREDENTIALS)
	for account, login := range map[string]string{"B001": "bob", "C001": "carol"} {
		res, err := ctlAuthenticate(t, a, appID, secret, account, temp[login])
		wantReason(t, "temporary password of "+login, res, err, identityv1.Reason_REASON_OK)
		if !res.GetMustChangePassword() {
			t.Errorf("%s's temporary password need not be changed", login)
		}
	}
	// -o json: {"results": [{user, temporary_password}]}.
	r = c.exec("", "user", "reset-password", bob.GetId(), "-o", "json")
	var js struct {
		Results []struct {
			User struct {
				ID                 string `json:"id"`
				MustChangePassword bool   `json:"must_change_password"`
			} `json:"user"`
			TemporaryPassword string `json:"temporary_password"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || r.code != 0 || len(js.Results) != 1 ||
		js.Results[0].User.ID != bob.GetId() || !js.Results[0].User.MustChangePassword || js.Results[0].TemporaryPassword == temp["bob"] {
		t.Fatalf("reset-password -o json: %v %+v", err, r)
	}

	// Bob's password grows old: he is listed, get says so, and
	// --password-expired resets just him.
	ageUsersPassword(t, cfg.DataDir, "bob")
	c.jsonOut(&list, "", "user", "list", "--password-expired")
	if ls := userLogins(list.GetUsers()); len(ls) != 1 || ls[0] != "bob" {
		t.Fatalf("user list --password-expired: %v", ls)
	}
	c.jsonOut(&list, "", "user", "list", "--password-expired", "--org", root, "--status", "active")
	if ls := userLogins(list.GetUsers()); len(ls) != 1 || ls[0] != "bob" {
		t.Fatalf("user list --password-expired --org --status active: %v", ls)
	}
	if out := c.run("", "user", "get", bob.GetId()); !strings.Contains(out, "(expired)") {
		t.Errorf("user get of an expired password: %s", out)
	}
	wantAuth(t, "expired password", a, appID, secret, "B001", js.Results[0].TemporaryPassword, identityv1.Reason_REASON_PASSWORD_EXPIRED)

	// A reset of a disabled user says the password waits for the user to
	// be enabled.
	c.run("", "user", "disable", carol.GetId())
	if r := c.exec("", "user", "reset-password", carol.GetId()); r.code != 0 || !strings.Contains(r.stderr, "note: carol is disabled") {
		t.Fatalf("reset of a disabled user: %+v", r)
	}
	c.run("", "user", "enable", carol.GetId())

	// Disable and enable several users at once.
	r = c.exec("", "user", "disable", bob.GetId(), carol.GetId(), "-o", "json")
	if r.code != 0 || strings.Count(r.stdout, "USER_STATUS_DISABLED") != 2 {
		t.Fatalf("user disable of two users: %+v", r)
	}
	c.jsonOut(&list, "", "user", "list", "--status", "disabled")
	if ls := userLogins(list.GetUsers()); len(ls) != 2 {
		t.Fatalf("disabled users: %v", ls)
	}
	if r := c.exec("", "user", "enable", bob.GetId(), carol.GetId()); r.code != 0 || strings.Count(r.stdout, "active") != 2 {
		t.Fatalf("user enable of two users: %+v", r)
	}

	r = c.exec("", "user", "reset-password", "--password-expired")
	if r.code != 0 || !strings.Contains(r.stdout, "bob") || strings.Contains(r.stdout, "carol") {
		t.Fatalf("reset-password --password-expired: %+v", r)
	}
	c.jsonOut(&list, "", "user", "list", "--password-expired")
	if len(list.GetUsers()) != 0 {
		t.Fatalf("expired after the reset: %v", userLogins(list.GetUsers()))
	}
	if r := c.exec("", "user", "reset-password", "--password-expired"); r.code != 0 || !strings.Contains(r.stderr, "No user's password has expired") {
		t.Fatalf("reset-password --password-expired with none: %+v", r)
	}

	// Usage: IDs or --password-expired, not both; --org only with it; a
	// bad --status.
	for _, args := range [][]string{
		{"user", "reset-password"},
		{"user", "reset-password", bob.GetId(), "--password-expired"},
		{"user", "reset-password", bob.GetId(), "--org", root},
		{"user", "disable"},
	} {
		c.fail(2, "", args...)
	}
	if stderr := c.fail(2, "", "user", "list", "--status", "gone"); !strings.Contains(stderr, "--status must be active or disabled") {
		t.Errorf("bad --status: %q", stderr)
	}
	// An administrator whose password was reset gets no token with it: the
	// login says how to choose their own, which they do as they log in.
	var me identityv1.ListUsersResponse
	c.jsonOut(&me, "", "user", "list", "--query", "admin")
	var adminID string
	for _, u := range me.GetUsers() {
		if u.GetLoginName() == "admin" {
			adminID = u.GetId()
		}
	}
	r = c.exec("", "user", "reset-password", adminID, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || r.code != 0 || len(js.Results) != 1 {
		t.Fatalf("reset of one's own password: %v %+v", err, r)
	}
	temp1 := js.Results[0].TemporaryPassword
	r = c.exec(temp1+"\n", "login", "--user", "admin", "--password-stdin")
	if r.code != 1 || !strings.Contains(r.stderr, "must be changed first") ||
		!strings.Contains(r.stderr, "no token was saved") || !strings.Contains(r.stderr, "--new-password-stdin") {
		t.Fatalf("login with a temporary password: %+v", r)
	}
	// The reset ended the earlier token, and the refused login saved none.
	if r := c.exec("", "user", "get", adminID); r.code == 0 {
		t.Fatalf("a command after the refused login: %+v", r)
	}
	if stderr := c.fail(2, temp1+"\n", "login", "--user", "admin", "--password-stdin", "--new-password-stdin"); !strings.Contains(stderr, "new password expected on line 2") {
		t.Errorf("--new-password-stdin without a second line: %q", stderr)
	}
	if r := c.exec(temp1+"\nweak\n", "login", "--user", "admin", "--password-stdin", "--new-password-stdin"); r.code != 1 ||
		!strings.Contains(r.stderr, "InvalidArgument") {
		t.Fatalf("login choosing a weak password: %+v", r)
	}
	r = c.exec(temp1+"\nChosen-Head-Pass-9\n", "login", "--user", "admin", "--password-stdin", "--new-password-stdin")
	if r.code != 0 || !strings.Contains(r.stderr, "Your password was changed") || !strings.Contains(r.stdout, "Logged in as admin") {
		t.Fatalf("login choosing a password: %+v", r)
	}
	if out := c.run("", "user", "get", adminID); !strings.Contains(out, "admin") {
		t.Errorf("user get after choosing a password: %s", out)
	}
	if r := c.exec(temp1+"\n", "login", "--user", "admin", "--password-stdin"); r.code != 1 {
		t.Fatalf("the temporary password after the change: %+v", r)
	}
	if r := c.exec("Chosen-Head-Pass-9\n", "login", "--user", "admin", "--password-stdin"); r.code != 0 || r.stderr != "" {
		t.Fatalf("login with a chosen password: %+v", r)
	}

	// One unknown ID alone is a plain not found (exit 1).
	if stderr := c.fail(1, "", "user", "reset-password", "no-such-user"); !strings.Contains(stderr, "not found") {
		t.Errorf("reset-password of an unknown user: %q", stderr)
	}
}
