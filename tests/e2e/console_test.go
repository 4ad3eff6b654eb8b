package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/gateway"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// consoleSignIn signs login in on the console's sign-in page (the browser
// at any page) and waits for the answer: the people list, or the
// sign-in page with an error.
func consoleSignIn(b *chromium, base, login, pw string) {
	b.t.Helper()
	b.run("sign-in page as "+login, chromedp.Navigate(base+"login"), chromedp.WaitVisible(chromedp.CSS("#login_name")),
		chromedp.SendKeys(chromedp.CSS("#login_name"), login), chromedp.SendKeys(chromedp.CSS("#password"), pw),
		chromedp.Click(chromedp.CSS("#signin")))
	b.waitFor("answer to the sign-in of "+login, `document.querySelector("#people") != null || document.querySelector("#error") != null ||
		(document.querySelector("h1") != null && document.querySelector("h1").innerText == "People")`)
}

// consoleCookie is the browser's console session cookie (nil: none).
func consoleCookie(b *chromium) *network.Cookie {
	b.t.Helper()
	ctx, c := b.step()
	defer c()
	res, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		b.t.Fatalf("cookies: %v", err)
	}
	for _, ck := range res.Cookies {
		if ck.Name == "uias_console" {
			return ck
		}
	}
	return nil
}

// consoleSignOut signs out with the header's button.
func consoleSignOut(b *chromium) {
	b.t.Helper()
	b.run("sign out", chromedp.Click(chromedp.CSS("#signout")))
	b.waitFor("signed out", `document.querySelector("#done") != null && document.querySelector("#login_name") != null`)
}

// TestBrowserConsole drives headless Chromium through the management
// console (/console/) against a whole monolithic UIAS: a wrong password
// and a locked administrator are refused with the service's sentence; the
// system administrator finds, creates, edits, locks, unlocks, disables and
// resets a person (the one-time password shown once), creates and renames
// an org, queries the audit log, and signs out, after which the pages ask
// for a sign-in again. A unit administrator sees their subtree only and
// is refused a person outside it in identity's words; the security
// auditor reads but is refused a change. Forms without the session's
// token, with a wrong one, or posted from another site are refused (403)
// and change nothing.
func TestBrowserConsole(t *testing.T) {
	chromium := chromiumPath(t)
	x := newEscalation(t)
	e := x.e
	base := e.http + "/console/"
	b := newChromium(t, chromium, 1100, 900)
	run, textOf, waitFor := b.run, b.textOf, b.waitFor
	errorText := func() string { t.Helper(); return textOf("#error") }

	// Sign-in refusals: a wrong password, a locked administrator.
	consoleSignIn(b, base, "admin", "Not-The-Password1")
	if msg := errorText(); msg == "" || b.location() != base+"login" {
		t.Fatalf("wrong password: %q at %s", msg, b.location())
	}
	b.accessible("console sign-in page with an error", "en")
	if _, err := e.admin.LockUser(e.adm(), &identityv1.LockUserRequest{Id: x.sub}); err != nil {
		t.Fatal(err)
	}
	consoleSignIn(b, base, "sub-a1", ownPassword(escalationPassword))
	// identity answers a locked account like a wrong password (it tells
	// nothing to whoever tries): the console shows its sentence
	_, refusal := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "sub-a1", Password: ownPassword(escalationPassword)})
	if msg := errorText(); refusal == nil || msg == "" || !strings.Contains(refusal.Error(), msg) {
		t.Fatalf("locked administrator: %q, the service says %v", msg, refusal)
	}

	// The system administrator: the people list, in both languages. The
	// token is in an HttpOnly, SameSite=Strict cookie, not in the URL.
	consoleSignIn(b, base, "admin", adminPassword)
	session := consoleCookie(b)
	if session == nil || session.Value == "" || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict ||
		session.Path != "/console/" || strings.Contains(b.location(), session.Value) {
		t.Fatalf("session cookie: %+v at %s", session, b.location())
	}
	run("people in Chinese", chromedp.Navigate(base+"people?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#people")),
		b.shot("console-people-zh.png"))
	if h := textOf("h1"); h != "人员" {
		t.Fatalf("Chinese people page: %q", h)
	}
	b.accessible("Chinese people page", "zh-CN")
	run("people in English", chromedp.Navigate(base+"people?locale=en"), chromedp.WaitVisible(chromedp.CSS("#people")))
	b.accessible("English people page", "en")

	// Create a person on the form; the list masks the ID number and phone.
	run("new person", chromedp.Click(chromedp.CSS("#new-person")), chromedp.WaitVisible(chromedp.CSS("#login_name")),
		chromedp.SendKeys(chromedp.CSS("#login_name"), "li.na"), chromedp.SendKeys(chromedp.CSS("#display_name"), "Li Na"),
		chromedp.SendKeys(chromedp.CSS("#org_id"), x.east1), chromedp.SetValue(chromedp.CSS("#id_type"), "resident"),
		chromedp.SendKeys(chromedp.CSS("#id_number"), seedIDNumber(77)), chromedp.SendKeys(chromedp.CSS("#phone"), "13912345678"),
		chromedp.SendKeys(chromedp.CSS("#password"), "Li-Na-Start-9x"), chromedp.Click(chromedp.CSS("#create")))
	waitFor("person created", `document.querySelector("#done") != null && document.querySelector("#p-login") != null`)
	if l, p, id := textOf("#p-login"), textOf("#p-phone"), textOf("#p-idnumber"); l != "li.na" || p != "139****5678" ||
		strings.Contains(id, seedIDNumber(77)) || id == "" {
		t.Fatalf("created person: %q %q %q", l, p, id)
	}
	// A unit's account: its type on the form, its code masked, its type on
	// its page.
	run("new unit", chromedp.Navigate(base+"people/new"), chromedp.WaitVisible(chromedp.CSS("#login_name")),
		chromedp.SendKeys(chromedp.CSS("#login_name"), "acme.shipping"), chromedp.SendKeys(chromedp.CSS("#display_name"), "某某航运有限公司"),
		chromedp.SendKeys(chromedp.CSS("#org_id"), x.east1), chromedp.SetValue(chromedp.CSS("#user_type"), "unit"),
		chromedp.SetValue(chromedp.CSS("#id_type"), "uscc"), chromedp.SendKeys(chromedp.CSS("#id_number"), "91310115MA01A2B322"),
		chromedp.Click(chromedp.CSS("#create")))
	waitFor("unit created", `document.querySelector("#done") != null && document.querySelector("#p-usertype") != null`)
	if l, ty, id := textOf("#p-login"), textOf("#p-usertype"), textOf("#p-idnumber"); l != "acme.shipping" ||
		!strings.Contains(ty, "unit") && !strings.Contains(ty, "单位") || id != "913*************22" {
		t.Fatalf("created unit: %q %q %q", l, ty, id)
	}
	// A refused creation keeps the form and says why (the login is taken).
	run("duplicate person", chromedp.Navigate(base+"people/new"), chromedp.WaitVisible(chromedp.CSS("#login_name")),
		chromedp.SendKeys(chromedp.CSS("#login_name"), "li.na"), chromedp.SendKeys(chromedp.CSS("#display_name"), "Li Na 2"),
		chromedp.SendKeys(chromedp.CSS("#org_id"), x.east1), chromedp.Click(chromedp.CSS("#create")))
	waitFor("duplicate refused", `document.querySelector("#error") != null`)
	if msg := errorText(); msg == "" {
		t.Fatalf("duplicate login: %q", msg)
	}

	// Search, open, edit, lock, unlock, disable, reset the password.
	run("search", chromedp.Navigate(base+"people"), chromedp.WaitVisible(chromedp.CSS("#q")),
		chromedp.SendKeys(chromedp.CSS("#q"), "li.na"), chromedp.Click(chromedp.CSS("#search")))
	waitFor("search result", `location.search.includes("q=li.na") && document.querySelector("#people a") != null && document.querySelector("#people").innerText.includes("li.na")`)
	if row := textOf("#people tbody"); !strings.Contains(row, "139****5678") || strings.Contains(row, "13912345678") || !strings.Contains(row, "\teast1\t") {
		t.Fatalf("search row: %q", row)
	}
	run("open", chromedp.Click(chromedp.CSS("#people a")), chromedp.WaitVisible(chromedp.CSS("#p-login")),
		chromedp.Clear(chromedp.CSS("#display_name")), chromedp.SendKeys(chromedp.CSS("#display_name"), "Li Na (HR)"),
		chromedp.Click(chromedp.CSS("#save")))
	waitFor("edited", `document.querySelector("#done") != null && document.querySelector("#person-name").innerText == "Li Na (HR)"`)
	run("lock", chromedp.Click(chromedp.CSS("#lock")))
	waitFor("locked", `document.querySelector("#unlock") != null`)
	if v := textOf("#p-locked"); v != "yes" {
		t.Fatalf("locked: %q", v)
	}
	run("unlock", chromedp.Click(chromedp.CSS("#unlock")))
	waitFor("unlocked", `document.querySelector("#lock") != null`)
	run("disable", chromedp.Click(chromedp.CSS("#disable")))
	waitFor("disabled", `document.querySelector("#enable") != null`)
	if v := textOf("#p-status"); v != "Disabled" {
		t.Fatalf("disabled: %q", v)
	}
	run("enable", chromedp.Click(chromedp.CSS("#enable")))
	waitFor("enabled", `document.querySelector("#disable") != null`)
	run("reset password", chromedp.Click(chromedp.CSS("#reset-password")))
	waitFor("one-time password", `document.querySelector("#one-time") != null`)
	if pw := textOf("#one-time"); len(pw) < 8 {
		t.Fatalf("one-time password: %q", pw)
	}
	run("screenshot console-person-en.png", b.shot("console-person-en.png"))
	b.accessible("person page with a one-time password", "en")
	u, err := e.admin.ListUsers(e.adm(), &identityv1.ListUsersRequest{Query: "li.na"})
	if err != nil || len(u.GetUsers()) != 1 {
		t.Fatalf("li.na over gRPC: %v %v", u, err)
	}
	if got := u.GetUsers()[0]; got.GetDisplayName() != "Li Na (HR)" || got.GetLocked() || !got.GetMustChangePassword() ||
		got.GetStatus() != identityv1.UserStatus_USER_STATUS_ACTIVE {
		t.Fatalf("li.na after the console's changes: %v", got)
	}
	liID := u.GetUsers()[0].GetId()
	// Reloading the person does not show the password again.
	run("reload person", chromedp.Navigate(base+"people/"+liID), chromedp.WaitVisible(chromedp.CSS("#p-login")))
	if strings.Contains(textOf("main"), "Temporary password") {
		t.Fatal("the one-time password is shown again")
	}

	// An unknown person: identity's sentence.
	run("unknown person", chromedp.Navigate(base+"people/no-such-person"), chromedp.WaitVisible(chromedp.CSS("#error")))
	_, refusal = e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: "no-such-person"})
	if msg := errorText(); refusal == nil || msg == "" || !strings.Contains(refusal.Error(), msg) {
		t.Fatalf("unknown person: %q, the service says %v", msg, refusal)
	}

	// Forms: without the token, with a wrong one → 403, nothing changed.
	for name, tamper := range map[string]chromedp.Action[chromedp.Void]{
		"wrong token": chromedp.SetAttributeValue(chromedp.CSS(`form[action$="/lock"] input[name="csrf"]`), "value", "not-the-token"),
		"no token":    chromedp.RemoveAttribute(chromedp.CSS(`form[action$="/lock"] input[name="csrf"]`), "name"),
	} {
		run(name, chromedp.Navigate(base+"people/"+liID), chromedp.WaitVisible(chromedp.CSS("#lock")), tamper, chromedp.Click(chromedp.CSS("#lock")))
		waitFor(name+" refused", `document.querySelector("#error") != null`)
		if msg := errorText(); !strings.Contains(msg, "did not come from this console") {
			t.Fatalf("%s: %q", name, msg)
		}
	}
	// Another site's page posting to the console (the cookie is
	// SameSite=Strict, and the console refuses cross-site posts).
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><form method="post" action="%speople/%s/lock"><input name="csrf" value="x"><button id="go">go</button></form>`, base, liID)
	}))
	defer other.Close()
	run("cross-site post", chromedp.Navigate(other.URL), chromedp.WaitVisible(chromedp.CSS("#go")), chromedp.Click(chromedp.CSS("#go")))
	waitFor("cross-site refused", `document.querySelector("#error") != null`)
	if msg := errorText(); !strings.Contains(msg, "did not come from this console") {
		t.Fatalf("cross-site post: %q", msg)
	}
	if g, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: liID}); err != nil || g.GetLocked() {
		t.Fatalf("a refused form locked li.na: %v %v", g, err)
	}

	// Orgs: create under east, rename.
	run("orgs", chromedp.Navigate(base+"orgs?org="+x.east), chromedp.WaitVisible(chromedp.CSS("#tree")),
		chromedp.SendKeys(chromedp.CSS("#new-code"), "east2"), chromedp.SendKeys(chromedp.CSS("#new-name"), "East Two"),
		chromedp.Click(chromedp.CSS("#create-org")))
	waitFor("org created", `document.querySelector("#done") != null && document.querySelector("#sel-name") != null`)
	run("rename org", chromedp.Clear(chromedp.CSS("#rename-name")), chromedp.SendKeys(chromedp.CSS("#rename-name"), "East Second"),
		chromedp.Click(chromedp.CSS("#rename")))
	waitFor("org renamed", `document.querySelector("#sel-name") != null && document.querySelector("#sel-name").innerText == "East Second"`)
	if tree := textOf("#tree"); !strings.Contains(tree, "East Second") || !strings.Contains(tree, "west") {
		t.Fatalf("org tree: %q", tree)
	}
	run("move org under west", chromedp.SetValue(chromedp.CSS("#move-parent"), x.west), chromedp.Click(chromedp.CSS("#move")))
	waitFor("org moved", `location.search.includes("done=orgMove")`)
	if l, err := e.admin.ListOrgs(e.adm(), &identityv1.ListOrgsRequest{ParentId: x.west}); err != nil || len(l.GetOrgs()) != 1 ||
		l.GetOrgs()[0].GetName() != "East Second" {
		t.Fatalf("orgs under west after the move: %v %v", l, err)
	}
	run("screenshot console-orgs-en.png", b.shot("console-orgs-en.png"))
	b.accessible("org tree", "en")

	// Audit: the administrators' sign-ins, with their description.
	run("audit", chromedp.Navigate(base+"audit"), chromedp.WaitVisible(chromedp.CSS("#api")),
		chromedp.SendKeys(chromedp.CSS("#api"), "admin.login"), chromedp.SetValue(chromedp.CSS("#result"), "failure"),
		chromedp.Click(chromedp.CSS("#run")))
	waitFor("audit records", `location.search.includes("api=admin.login") && document.querySelector("#records") != null`)
	rows := strings.Split(strings.TrimSpace(textOf("#records tbody")), "\n")
	for _, row := range rows {
		if !strings.Contains(row, "admin.login") || !strings.Contains(row, "failure") || !strings.Contains(row, "admin") {
			t.Fatalf("audit records of failed administrator sign-ins: %q", rows)
		}
	}
	if len(rows) < 2 { // the wrong password, the locked administrator
		t.Fatalf("audit records of failed administrator sign-ins: %q", rows)
	}
	run("screenshot console-audit-en.png", b.shot("console-audit-en.png"))
	b.accessible("audit log page", "en")
	// The page's download link: the same records as a CSV file, through
	// the administrator's session; without the session, the sign-in page.
	var href string
	b.evalJS("export link", `document.querySelector("#export-csv").href`, &href)
	if !strings.Contains(href, "format=csv") || !strings.Contains(href, "api=admin.login") || !strings.Contains(href, "result=failure") {
		t.Fatalf("export link %q", href)
	}
	exportReq, err := http.NewRequest(http.MethodGet, href, nil)
	if err != nil {
		t.Fatal(err)
	}
	exportReq.AddCookie(&http.Cookie{Name: "uias_console", Value: consoleCookie(b).Value})
	exportRes, err := http.DefaultClient.Do(exportReq)
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(exportRes.Body)
	exportRes.Body.Close()
	if exportRes.StatusCode != http.StatusOK || !strings.Contains(exportRes.Header.Get("Content-Disposition"), "attachment") ||
		strings.Count(string(csvBody), "admin.login") < 2 || strings.Contains(string(csvBody), ",success,") {
		t.Fatalf("CSV export: %d %v\n%s", exportRes.StatusCode, exportRes.Header, csvBody)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if anon, err := noFollow.Get(href); err != nil || anon.StatusCode != http.StatusSeeOther || !strings.Contains(anon.Header.Get("Location"), "login") {
		t.Fatalf("export without a session: %v %v", anon, err)
	} else {
		anon.Body.Close()
	}

	// Roles: grant the application's clerk role to li.na on her page,
	// then revoke it.
	run("grant clerk", chromedp.Navigate(base+"people/"+liID), chromedp.WaitVisible(chromedp.CSS("#role_id")),
		chromedp.SetValue(chromedp.CSS("#role_id"), x.clerk), chromedp.Click(chromedp.CSS("#grant")))
	waitFor("granted", `location.search.includes("done=grant") && document.querySelector("#grants") != null`)
	if g := textOf("#grants"); !strings.Contains(g, x.clerk) {
		t.Fatalf("li.na's grants: %q", g)
	}
	grants := authzv1.NewAuthzAdminServiceClient(e.conn)
	if l, err := grants.ListGrants(e.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: liID}); err != nil ||
		len(l.GetGrants()) != 1 || l.GetGrants()[0].GetRoleId() != x.clerk {
		t.Fatalf("li.na's grants over gRPC: %v %v", l, err)
	}
	run("revoke clerk", chromedp.Click(chromedp.CSS(`#grants button`)))
	waitFor("revoked", `location.search.includes("done=revoke")`)
	if l, err := grants.ListGrants(e.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: liID}); err != nil || len(l.GetGrants()) != 0 {
		t.Fatalf("li.na's grants after the revocation: %v %v", l, err)
	}
	run("roles page", chromedp.Navigate(base+"roles"), chromedp.WaitVisible(chromedp.CSS("#roles")))
	if rl := textOf("#roles"); !strings.Contains(rl, x.clerk) || !strings.Contains(rl, "unit_admin") {
		t.Fatalf("roles page: %q", rl)
	}
	b.accessible("roles page", "en")

	// Applications: suspend and resume one.
	run("apps", chromedp.Navigate(base+"apps"), chromedp.WaitVisible(chromedp.CSS("#apps")),
		chromedp.Click(chromedp.CSS("#apps a")), chromedp.WaitVisible(chromedp.CSS("#suspend")), chromedp.Click(chromedp.CSS("#suspend")))
	waitFor("suspended", `document.querySelector("#resume") != null`)
	b.accessible("application page", "en")
	appID := strings.TrimPrefix(b.location(), base+"apps/")
	appID, _, _ = strings.Cut(appID, "?")
	if a, err := e.admin.GetApp(e.adm(), &identityv1.GetAppRequest{Id: appID}); err != nil || a.GetStatus() != identityv1.AppStatus_APP_STATUS_SUSPENDED {
		t.Fatalf("the application after suspend: %v %v", a, err)
	}
	run("resume", chromedp.Click(chromedp.CSS("#resume")))
	waitFor("resumed", `document.querySelector("#suspend") != null`)
	if a, err := e.admin.GetApp(e.adm(), &identityv1.GetAppRequest{Id: appID}); err != nil || a.GetStatus() != identityv1.AppStatus_APP_STATUS_ACTIVE {
		t.Fatalf("the application after resume: %v %v", a, err)
	}

	// Register an application: its App_Secret is shown once and works;
	// a secret rotation shows a new one, and both work during the overlap.
	run("new app", chromedp.Navigate(base+"apps"), chromedp.WaitVisible(chromedp.CSS("#new-app")), chromedp.Click(chromedp.CSS("#new-app")),
		chromedp.WaitVisible(chromedp.CSS("#app_code")), chromedp.SetValue(chromedp.CSS("#app_type"), "WEB"),
		chromedp.SendKeys(chromedp.CSS("#app_code"), "console-made"), chromedp.SendKeys(chromedp.CSS("#name"), "Made in the console"),
		chromedp.Click(chromedp.CSS("#create")))
	waitFor("the new app's secret", `document.querySelector("#app-secret") != null`)
	b.accessible("application created", "en")
	newApp, secret := textOf("#app-id"), textOf("#app-secret")
	appWorks := func(what, id, secret string) {
		t.Helper()
		// an unknown person: answered (not refused as a caller)
		res, err := e.auth.Authenticate(appCtx(id, secret), &identityv1.AuthenticateRequest{AppUserId: "nobody-here", Password: "x",
			AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
		if err != nil || res.GetResultCode() == 0 {
			t.Fatalf("%s: the application's credentials: %v %v", what, res, err)
		}
	}
	appWorks("created in the console", newApp, secret)
	_, err = e.auth.Authenticate(appCtx(newApp, secret+"x"), &identityv1.AuthenticateRequest{AppUserId: "nobody-here", Password: "x",
		AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
	wantCode(t, err, codes.Unauthenticated, "BAD_APP_CREDENTIALS")
	run("rotate", chromedp.Click(chromedp.CSS("#rotate")))
	waitFor("the rotated secret", `document.querySelector("#app-secret") != null && document.querySelector("#app-secret").textContent != `+
		strconv.Quote(secret))
	appWorks("rotated", newApp, textOf("#app-secret"))
	appWorks("the old secret during the overlap", newApp, secret)
	run("reload", chromedp.Navigate(base+"apps/"+newApp), chromedp.WaitVisible(chromedp.CSS("#app-name")))
	var shown bool
	b.evalJS("secret on the app's page", `document.querySelector("#app-secret") != null`, &shown)
	if shown {
		t.Fatalf("the secret is shown again on the app's page")
	}

	// Groups: create one in east1, add li.na by login name (a name nobody
	// has is refused in the console's words), rename, remove, delete.
	run("new group", chromedp.Navigate(base+"groups"), chromedp.WaitVisible(chromedp.CSS("#new-group")),
		chromedp.Click(chromedp.CSS("#new-group")), chromedp.WaitVisible(chromedp.CSS("#code")),
		chromedp.SendKeys(chromedp.CSS("#code"), "harbour-duty"), chromedp.SendKeys(chromedp.CSS("#name"), "Harbour duty"),
		chromedp.SendKeys(chromedp.CSS("#org_id"), x.east1), chromedp.Click(chromedp.CSS("#create")))
	waitFor("group created", `document.querySelector("#done") != null && document.querySelector("#group-id") != null`)
	b.accessible("group page", "en")
	groupID := textOf("#group-id")
	run("add nobody", chromedp.SendKeys(chromedp.CSS("#person"), "no.such.person"), chromedp.Click(chromedp.CSS("#add-member")))
	waitFor("unknown person refused", `document.querySelector("#error") != null`)
	if msg := errorText(); !strings.Contains(msg, "No person has that ID or login name") {
		t.Fatalf("adding an unknown person: %q", msg)
	}
	run("add li.na", chromedp.Navigate(base+"groups/"+groupID), chromedp.WaitVisible(chromedp.CSS("#person")),
		chromedp.SendKeys(chromedp.CSS("#person"), "li.na"), chromedp.Click(chromedp.CSS("#add-member")))
	waitFor("member added", `document.querySelector("#members") != null && document.querySelector("#members").innerText.includes("li.na")`)
	if g, err := e.admin.GetGroup(e.adm(), &identityv1.GetGroupRequest{Id: groupID}); err != nil || !slices.Equal(g.GetMemberIds(), []string{liID}) ||
		g.GetOrgId() != x.east1 {
		t.Fatalf("the group after adding li.na: %v %v", g, err)
	}
	run("rename group", chromedp.SetValue(chromedp.CSS("#group_name"), "Harbour watch"), chromedp.Click(chromedp.CSS("#rename")))
	waitFor("renamed", `document.querySelector("#group-name") != null && document.querySelector("#group-name").innerText == "Harbour watch"`)
	run("list groups", chromedp.Navigate(base+"groups?org="+x.east1), chromedp.WaitVisible(chromedp.CSS("#groups")))
	if l := textOf("#groups"); !strings.Contains(l, "Harbour watch") || !strings.Contains(l, "harbour-duty") {
		t.Fatalf("groups list: %q", l)
	}
	run("remove li.na", chromedp.Navigate(base+"groups/"+groupID), chromedp.WaitVisible(chromedp.CSS("#members")),
		chromedp.Click(chromedp.CSS("#members button")))
	waitFor("member removed", `document.querySelector("#done") != null && document.querySelector("#members") == null`)
	run("delete group", chromedp.Click(chromedp.CSS("#delete-group")))
	waitFor("deleted", `location.pathname.endsWith("/groups") && document.querySelector("#done") != null`)
	if _, err := e.admin.GetGroup(e.adm(), &identityv1.GetGroupRequest{Id: groupID}); status.Code(err) != codes.NotFound {
		t.Fatalf("the deleted group: %v", err)
	}

	// Appoint li.na unit administrator of east1 on her page: the
	// activation password is shown once; at her first sign-in the
	// console asks her to choose her own, and she sees east1's people.
	run("appoint li.na", chromedp.Navigate(base+"people/"+liID), chromedp.WaitVisible(chromedp.CSS("#role_id")),
		chromedp.SetValue(chromedp.CSS("#role_id"), "unit_admin"), chromedp.SendKeys(chromedp.CSS("#scope_org"), x.east1),
		chromedp.Click(chromedp.CSS("#grant")))
	waitFor("activation password", `document.querySelector("#one-time") != null`)
	activation := textOf("#one-time")
	if len(activation) < 8 || !strings.Contains(textOf("main"), "Activation password") {
		t.Fatalf("appointment: %q in %q", activation, textOf("main"))
	}
	// Signing in over a session ends that session (its token revoked).
	adminSession := consoleCookie(b)
	consoleSignIn(b, base, "li.na", activation)
	if msg := errorText(); !strings.Contains(msg, "Choose a new password") {
		t.Fatalf("first sign-in with the activation password: %q", msg)
	}
	run("choose a password", chromedp.SendKeys(chromedp.CSS("#password"), activation),
		chromedp.SendKeys(chromedp.CSS("#new_password"), "Li-Na-Own-Pass-7"), chromedp.SendKeys(chromedp.CSS("#new_password2"), "Li-Na-Own-Pass-7"),
		chromedp.Click(chromedp.CSS("#signin")))
	waitFor("li.na signed in", `document.querySelector("#people") != null`)
	if list := textOf("#people tbody"); !strings.Contains(list, "bob") || strings.Contains(list, "unit-a") || strings.Contains(list, "carol") {
		t.Fatalf("li.na's people (east1): %q", list)
	}
	if _, err := e.admin.ListUsers(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminSession.Value),
		&identityv1.ListUsersRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("the session signed in over: %v", err)
	}
	consoleSignOut(b)
	consoleSignIn(b, base, "li.na", "Li-Na-Own-Pass-7")
	waitFor("li.na with her own password", `document.querySelector("#people") != null`)
	consoleSignOut(b)
	consoleSignIn(b, base, "admin", adminPassword)
	session = consoleCookie(b)

	// The token revoked elsewhere (as when it expires): the next page is
	// the sign-in page, saying why.
	if _, err := e.admin.AdminLogout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+session.Value),
		&identityv1.AdminLogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	run("people with an ended session", chromedp.Navigate(base+"people"), chromedp.WaitVisible(chromedp.CSS("#login_name")))
	if msg := errorText(); msg != "Your session has ended. Please sign in again." {
		t.Fatalf("after the token's end: %q", msg)
	}
	if c := consoleCookie(b); c != nil {
		t.Fatalf("the ended session's cookie is kept: %+v", c)
	}

	// Sign out: the token is revoked, the pages ask for a sign-in again.
	consoleSignIn(b, base, "admin", adminPassword)
	session = consoleCookie(b)
	consoleSignOut(b)
	if _, err := e.admin.ListUsers(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+session.Value),
		&identityv1.ListUsersRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("the token after sign-out: %v", err)
	}
	run("people after sign-out", chromedp.Navigate(base+"people"), chromedp.WaitVisible(chromedp.CSS("#login_name")))

	// A unit administrator of east: their subtree only.
	consoleSignIn(b, base, "unit-a", ownPassword(escalationPassword))
	if list := textOf("#people tbody"); !strings.Contains(list, "bob") || !strings.Contains(list, "li.na") || strings.Contains(list, "carol") {
		t.Fatalf("unit administrator's people: %q", list)
	}
	run("carol (west)", chromedp.Navigate(base+"people/"+x.carol), chromedp.WaitVisible(chromedp.CSS("#error")))
	_, refusal = e.admin.GetUser(x.as("unitA"), &identityv1.GetUserRequest{Id: x.carol})
	if msg := errorText(); refusal == nil || msg == "" || !strings.Contains(refusal.Error(), msg) {
		t.Fatalf("unit administrator opening carol: %q, the service says %v", msg, refusal)
	}
	// nor may they create a person in west
	run("unit-a creates in west", chromedp.Navigate(base+"people/new"), chromedp.WaitVisible(chromedp.CSS("#login_name")),
		chromedp.SendKeys(chromedp.CSS("#login_name"), "wu"), chromedp.SendKeys(chromedp.CSS("#display_name"), "Wu"),
		chromedp.SendKeys(chromedp.CSS("#org_id"), x.west), chromedp.SendKeys(chromedp.CSS("#password"), "Wu-Start-Pass-9x"),
		chromedp.Click(chromedp.CSS("#create")))
	waitFor("creation in west refused", `document.querySelector("#error") != null`)
	_, refusal = e.admin.CreateUser(x.as("unitA"), &identityv1.CreateUserRequest{LoginName: "wu", DisplayName: "Wu", OrgId: x.west,
		Password: "Wu-Start-Pass-9x"})
	if msg := errorText(); refusal == nil || msg == "" || !strings.Contains(refusal.Error(), msg) {
		t.Fatalf("unit administrator creating in west: %q, the service says %v", msg, refusal)
	}
	var kept string
	b.evalJS("the refused form", `document.querySelector("#login_name").value`, &kept)
	if kept != "wu" {
		t.Fatalf("the refused form lost the login name: %q", kept)
	}
	run("orgs of unit-a", chromedp.Navigate(base+"orgs"), chromedp.WaitVisible(chromedp.CSS("#tree")))
	if tree := textOf("#tree"); !strings.Contains(tree, "east1") || strings.Contains(tree, "west") {
		t.Fatalf("unit administrator's tree: %q", tree)
	}
	consoleSignOut(b)

	// The security auditor reads, and is refused a change.
	consoleSignIn(b, base, "auditor-1", ownPassword(escalationPassword))
	run("auditor opens li.na", chromedp.Navigate(base+"people/"+liID), chromedp.WaitVisible(chromedp.CSS("#lock")),
		chromedp.Click(chromedp.CSS("#lock")))
	waitFor("auditor refused", `document.querySelector("#error") != null`)
	_, refusal = e.admin.LockUser(x.as("aud"), &identityv1.LockUserRequest{Id: liID})
	if msg := errorText(); refusal == nil || msg == "" || !strings.Contains(refusal.Error(), msg) {
		t.Fatalf("auditor locking: %q, the service says %v", msg, refusal)
	}
	run("auditor's audit page", chromedp.Navigate(base+"audit"), chromedp.WaitVisible(chromedp.CSS("#records")))
	consoleSignOut(b)
}

// TestConsoleOff: gateway.console false leaves /console/ unserved (404),
// the REST API as it was.
func TestConsoleOff(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Sections = maps.Clone(cfg.Sections)
	cfg.Sections[gateway.Name] = &gateway.Config{Console: false}
	e := start(t, cfg)
	for _, path := range []string{"/console/", "/console/login"} {
		if code, body := httpBody(t, e.http+path); code != http.StatusNotFound {
			t.Fatalf("%s with the console off: %d %s", path, code, body)
		}
	}
	if code, _ := httpBody(t, e.http+"/openapi.json"); code != http.StatusOK {
		t.Fatalf("/openapi.json with the console off: %d", code)
	}
}
