package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestBrowserConsoleChinese walks the console in Chinese, as an
// administrator who reads no English would: every refusal starts with
// a Chinese sentence saying what kind of refusal it is (the service's
// own sentence follows it), at the sign-in page, for the system
// administrator and for a unit administrator, and a refused form keeps
// what was typed. It runs the accessibility check on the pages the other
// console tests check in English only.
func TestBrowserConsoleChinese(t *testing.T) {
	chromium := chromiumPath(t)
	x := newEscalation(t)
	e := x.e
	base := e.http + "/console/"
	b := newChromium(t, chromium, 1100, 900)
	run, textOf, waitFor := b.run, b.textOf, b.waitFor
	// refused: the page's error begins with the Chinese lead and holds
	// the service's own sentence.
	refused := func(what, lead string, err error) {
		t.Helper()
		msg := textOf("#error")
		if err == nil || !strings.HasPrefix(msg, lead) || !strings.Contains(msg, statusMessage(err)) {
			t.Fatalf("%s: %q (want %q and the service's %v)", what, msg, lead, err)
		}
	}

	run("sign-in page in Chinese", chromedp.Navigate(base+"login?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#login_name")))
	consoleSignIn(b, base, "admin", "Not-The-Password1")
	_, err := e.admin.AdminLogin(t.Context(), &identityv1.AdminLoginRequest{LoginName: "admin", Password: "Not-The-Password1"})
	refused("wrong password", "未能登录", err)
	b.accessible("Chinese sign-in page with an error", "zh-CN")
	var title string
	b.evalJS("title", `document.title`, &title)
	if title != "错误 – 登录 – UIAS 管理控制台" {
		t.Errorf("the title of the sign-in page with an error: %q", title)
	}

	consoleSignIn(b, base, "admin", adminPassword)
	titles := map[string][]string{}
	for _, p := range []struct{ path, sel, name string }{
		{"people/new", "#login_name", "new person"}, {"people/" + x.bob, "#p-login", "person"}, {"orgs", "#tree", "org tree"},
		{"groups", "#new-group", "groups"}, {"groups/new", "#code", "new group"}, {"apps", "#apps", "applications"},
		{"apps/new", "#app_code", "new application"}, {"services", "main", "services"}, {"certs", "main", "certificates"},
		{"roles", "#roles", "roles"}, {"audit", "#records", "audit log"},
	} {
		run(p.name, chromedp.Navigate(base+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		b.accessible("Chinese "+p.name+" page", "zh-CN")
		var title string
		b.evalJS("title", `document.title`, &title)
		titles[title] = append(titles[title], p.name)
	}
	// Each page's title names it (WCAG 2.4.2): a person with several
	// tabs open, or a screen reader, tells them apart.
	for title, names := range titles {
		if !strings.HasSuffix(title, " – UIAS 管理控制台") || len(names) > 1 {
			t.Errorf("pages %v share the title %q", names, title)
		}
	}

	// Keyboard only: the first Tab reaches a link past the ten links and
	// buttons of the header (WCAG 2.4.1); it shows when focused, and Enter
	// puts the focus on the page's content, so the next Tab is in it.
	run("people", chromedp.Navigate(base+"people"), chromedp.WaitVisible(chromedp.CSS("#q")), chromedp.KeyEvent(kb.Tab))
	var skip struct {
		ID      string
		Visible bool
	}
	b.evalJS("first Tab", `(() => { const a = document.activeElement, r = a.getBoundingClientRect();
		return {ID: a.id, Visible: r.left >= 0 && r.width > 0}; })()`, &skip)
	if skip.ID != "skip" || !skip.Visible || textOf("#skip") != "跳到页面内容" {
		t.Fatalf("the first Tab on the people page: %+v", skip)
	}
	b.accessible("Chinese people page with the skip link focused", "zh-CN")
	run("skip", chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent(kb.Tab))
	var inMain bool
	b.evalJS("Tab after the skip", `document.querySelector("main").contains(document.activeElement) && document.activeElement.id == "q"`, &inMain)
	if !inMain {
		var id string
		b.evalJS("focus", `document.activeElement.id || document.activeElement.tagName`, &id)
		t.Fatalf("the Tab after the skip link: at %q, not the page's first field", id)
	}

	// A login name already taken: the form keeps what was typed.
	run("duplicate person", chromedp.Navigate(base+"people/new"), chromedp.WaitVisible(chromedp.CSS("#login_name")),
		chromedp.SendKeys(chromedp.CSS("#login_name"), "bob"), chromedp.SendKeys(chromedp.CSS("#display_name"), "鲍勃"),
		chromedp.SendKeys(chromedp.CSS("#org_id"), x.east1), chromedp.Click(chromedp.CSS("#create")))
	waitFor("duplicate refused", `document.querySelector("#error") != null`)
	_, err = e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "bob", DisplayName: "鲍勃", OrgId: x.east1})
	refused("duplicate login name", "已有相同的记录", err)
	var kept string
	b.evalJS("the refused form", `document.querySelector("#display_name").value + "|" + document.querySelector("#org_id").value`, &kept)
	if kept != "鲍勃|"+x.east1 {
		t.Fatalf("the refused form lost what was typed: %q", kept)
	}
	b.accessible("Chinese new person page with an error", "zh-CN")
	// An org that does not exist.
	run("unknown org", chromedp.Navigate(base+"people/new"), chromedp.WaitVisible(chromedp.CSS("#login_name")),
		chromedp.SendKeys(chromedp.CSS("#login_name"), "zed"), chromedp.SendKeys(chromedp.CSS("#display_name"), "Zed"),
		chromedp.SendKeys(chromedp.CSS("#org_id"), "no-such-org"), chromedp.Click(chromedp.CSS("#create")))
	waitFor("unknown org refused", `document.querySelector("#error") != null`)
	_, err = e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "zed", DisplayName: "Zed", OrgId: "no-such-org"})
	refused("unknown org", "找不到要操作的对象", err)
	// What the administrator did: they lock and unlock bob, then find
	// it in the audit log by their login name (as in Keycloak's admin
	// events), not only by "user:<id>"; the export link does the same.
	run("lock bob", chromedp.Navigate(base+"people/"+x.bob), chromedp.WaitVisible(chromedp.CSS("#lock")), chromedp.Click(chromedp.CSS("#lock")))
	waitFor("locked", `document.querySelector("#unlock") != null`)
	run("unlock bob", chromedp.Click(chromedp.CSS("#unlock")))
	waitFor("unlocked", `document.querySelector("#lock") != null`)
	var mine string
	eventually(t, "the administrator's lock and unlock in the audit log, by login name", func() bool {
		run("audit by login name", chromedp.Navigate(base+"audit"), chromedp.WaitVisible(chromedp.CSS("#actor")),
			chromedp.SendKeys(chromedp.CSS("#actor"), "admin"), chromedp.SetValue(chromedp.CSS("#api"), "user.locked"),
			chromedp.Click(chromedp.CSS("#run")))
		waitFor("audit answer", `location.search.includes("actor=admin") && document.querySelector("main") != null`)
		b.evalJS("records", `(document.querySelector("#records tbody") || {innerText: ""}).innerText`, &mine)
		return strings.Contains(mine, "user.locked")
	})
	if !strings.Contains(mine, "admin") || strings.Contains(mine, "user.unlocked") {
		t.Fatalf("the administrator's records: %q", mine)
	}
	var typed string
	b.evalJS("actor field", `document.querySelector("#actor").value`, &typed)
	if typed != "admin" {
		t.Fatalf("the actor field after the query: %q", typed)
	}
	b.accessible("Chinese audit log with records", "zh-CN")
	consoleSignOut(b)

	// A unit administrator of east, in Chinese: a person of west and a
	// move of their own person to west are refused in words they read.
	consoleSignIn(b, base, "unit-a", ownPassword(escalationPassword))
	run("carol (west)", chromedp.Navigate(base+"people/"+x.carol), chromedp.WaitVisible(chromedp.CSS("#error")))
	_, err = e.admin.GetUser(x.as("unitA"), &identityv1.GetUserRequest{Id: x.carol})
	refused("unit administrator opening carol", "您的角色不允许此操作", err)
	b.accessible("Chinese refusal page", "zh-CN")
	run("applications", chromedp.Navigate(base+"apps"), chromedp.WaitVisible(chromedp.CSS("#error")))
	_, err = e.admin.ListApps(x.as("unitA"), &identityv1.ListAppsRequest{})
	refused("unit administrator listing applications", "您的角色不允许此操作", err)
	consoleSignOut(b)
}

// statusMessage is the sentence of a service's refusal.
func statusMessage(err error) string { return status.Convert(err).Message() }
