package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	identitycomponent "github.com/uias/uias/services/identity/component"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// TestBrowserSelfServiceChinese walks the CAS pages in Chinese as a person
// who uses only the keyboard: Tab goes from the login name to the
// password to the button, a wrong password and a locked account read
// the same Chinese sentence, the portal launches a registered service
// (the application validates its ticket), the password form's refusals
// are in Chinese and accessible, and a password past its age leads to the
// change form, after which the new password signs in. Each page's title
// names the page (WCAG 2.4.2), and says when it shows an error.
func TestBrowserSelfServiceChinese(t *testing.T) {
	chromium := chromiumPath(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("ssz", "zhou", nil, nil)
	app := newCASApp(t, casBase)
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "办公系统", Url: app.srv.URL + "/"}}); err != nil {
		t.Fatal(err)
	}
	b := newChromium(t, chromium, 760, 900)
	run, textOf, waitFor := b.run, b.textOf, b.waitFor
	title := func() string {
		var s string
		b.evalJS("title", `document.title`, &s)
		return s
	}
	focused := func() string {
		var s string
		b.evalJS("focus", `document.activeElement.id || document.activeElement.tagName`, &s)
		return s
	}
	signIn := func(login, pw string) {
		t.Helper()
		run("login page", chromedp.Navigate(casBase+"login?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), login), chromedp.SendKeys(chromedp.CSS("#password"), pw+"\r"))
	}

	// Keyboard only: the login name has the focus, Tab reaches the
	// password, then the button; Enter on the button signs in.
	run("login page", chromedp.Navigate(casBase+"login?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#username")))
	if got := title(); got != "登录 – UIAS 统一身份认证" {
		t.Errorf("login page title: %q", got)
	}
	var order []string
	order = append(order, focused())
	run("type the login", chromedp.KeyEvent("zhou"), chromedp.KeyEvent(kb.Tab))
	order = append(order, focused())
	run("type the password", chromedp.KeyEvent("Wrong-Pass-1"), chromedp.KeyEvent(kb.Tab))
	order = append(order, focused())
	if order[0] != "username" || order[1] != "password" || order[2] != "BUTTON" {
		t.Fatalf("focus order on the login page: %v", order)
	}
	run("press the button", chromedp.KeyEvent(kb.Enter))
	waitFor("wrong password", `document.querySelector("#login-error") != null`)
	wrong := textOf("#login-error")
	if wrong != "登录名或密码不正确。" || title() != "错误 – 登录 – UIAS 统一身份认证" {
		t.Fatalf("wrong password: %q, title %q", wrong, title())
	}
	b.accessible("Chinese login page with an error", "zh-CN")
	// A locked account reads the same sentence (nothing told to whoever tries).
	if _, err := e.admin.LockUser(e.adm(), &identityv1.LockUserRequest{Id: f.userID}); err != nil {
		t.Fatal(err)
	}
	signIn("zhou", f.password)
	waitFor("locked", `document.querySelector("#login-error") != null`)
	if got := textOf("#login-error"); got != wrong {
		t.Fatalf("locked account: %q, a wrong password: %q", got, wrong)
	}
	if _, err := e.admin.UnlockUser(e.adm(), &identityv1.UnlockUserRequest{Id: f.userID}); err != nil {
		t.Fatal(err)
	}

	// The portal launches the registered service: the application
	// validates the ticket and knows the person.
	signIn("zhou", f.password)
	waitFor("portal", `document.querySelector("#who") != null`)
	if got := title(); got != "我的应用 – UIAS 统一身份认证" && !strings.HasSuffix(got, " – UIAS 统一身份认证") {
		t.Errorf("portal title: %q", got)
	}
	titles := map[string]string{"portal": title()}
	b.accessible("Chinese portal", "zh-CN")
	run("launch", chromedp.Click(chromedp.CSS(`a.enter`)))
	waitFor("at the application", `document.body != null && document.body.innerText.startsWith("user=")`)
	if got := textOf("body"); !strings.HasPrefix(got, "user=zhou;") {
		t.Fatalf("the portal's launch: %q", got)
	}

	// The password form: a wrong current password, then two new ones that
	// differ; both in Chinese, both accessible.
	// The field the error is about is the one marked invalid, pointing at
	// the error, and has the focus (WCAG 3.3.1).
	for _, c := range []struct{ name, old, n1, n2, want, fields string }{
		{"wrong current password", "Wrong-Old-1", "Zh0u-Changed!1", "Zh0u-Changed!1", "登录名或当前密码不正确。", "old:pw-error/true new:null/null new2:null/null focus:old"},
		{"new passwords differ", f.password, "Zh0u-Changed!1", "Zh0u-Changed!2", "两次输入的新密码不一致。", "old:null/null new:pw-error/true new2:pw-error/true focus:new"},
		{"a rule fails", f.password, "zhou-Changed!1", "zhou-Changed!1", "新密码不符合密码规则： password must not contain the login name", "old:null/null new:pw-error/true new2:pw-error/true focus:new"},
	} {
		run(c.name, chromedp.Navigate(casBase+"password"), chromedp.WaitVisible(chromedp.CSS("#old")),
			chromedp.SendKeys(chromedp.CSS("#old"), c.old), chromedp.SendKeys(chromedp.CSS("#new"), c.n1),
			chromedp.SendKeys(chromedp.CSS("#new2"), c.n2+"\r"))
		waitFor(c.name, `document.querySelector("#pw-error") != null`)
		if got := textOf("#pw-error"); got != c.want {
			t.Fatalf("%s: %q", c.name, got)
		}
		var fields string
		b.evalJS("fields", `["old", "new", "new2"].map(id => { const f = document.getElementById(id);
			return id + ":" + f.getAttribute("aria-describedby") + "/" + f.getAttribute("aria-invalid"); }).join(" ") + " focus:" + document.activeElement.id`, &fields)
		if fields != c.fields {
			t.Errorf("%s: the fields' error state: %s (want %s)", c.name, fields, c.fields)
		}
		if got := title(); got != "错误 – 修改密码 – UIAS 统一身份认证" {
			t.Errorf("%s: title %q", c.name, got)
		}
		b.accessible("Chinese password page: "+c.name, "zh-CN")
	}
	// My profile: the field the refusal is about is marked, has the focus,
	// and what was typed stays.
	for _, c := range []struct{ name, phone, pw, field string }{
		{"wrong current password", "13987654321", "Wrong-Pw-1", "current_password"},
		{"a phone that is not one", "not-a-phone", f.password, "phone"},
	} {
		run(c.name, chromedp.Navigate(casBase+"profile"), chromedp.WaitVisible(chromedp.CSS("#email")),
			chromedp.Clear(chromedp.CSS("#email")), chromedp.SendKeys(chromedp.CSS("#email"), "zhou@example.org"),
			chromedp.SendKeys(chromedp.CSS("#phone"), c.phone), chromedp.SendKeys(chromedp.CSS("#current_password"), c.pw+"\r"))
		waitFor(c.name, `document.querySelector("#profile-error") != null`)
		var st struct{ Invalid, Focus, Email, Phone string }
		b.evalJS("profile fields", `({Invalid: [...document.querySelectorAll('[aria-invalid="true"]')].map(f => f.id + ":" +
			f.getAttribute("aria-describedby")).join(","), Focus: document.activeElement.id,
			Email: document.querySelector("#email").value, Phone: document.querySelector("#phone").value})`, &st)
		if !strings.HasPrefix(st.Invalid, c.field+":") || strings.Contains(st.Invalid, ",") || !strings.Contains(st.Invalid, "profile-error") ||
			st.Focus != c.field || st.Email != "zhou@example.org" || st.Phone != c.phone {
			t.Errorf("%s: %+v (%q)", c.name, st, textOf("#profile-error"))
		}
		b.accessible("Chinese profile: "+c.name, "zh-CN")
	}
	for _, p := range []struct{ path, sel string }{{"password", "#old"}, {"profile", "#p-login"}, {"profile/totp", "#totp-secret"}} {
		run(p.path, chromedp.Navigate(casBase+p.path), chromedp.WaitVisible(chromedp.CSS(p.sel)))
		titles[p.path] = title()
	}
	seen := map[string]string{}
	for page, tt := range titles {
		if other, dup := seen[tt]; dup || !strings.HasSuffix(tt, " – UIAS 统一身份认证") {
			t.Errorf("pages %s and %s: title %q", page, other, tt)
		}
		seen[tt] = page
	}
	run("sign out", chromedp.Navigate(casBase+"logout"))
	waitFor("signed out", `document.querySelector("h1") != null && document.querySelector("h1").innerText == "已退出"`)

	// A password past identity.policy.max_age_days: the right password
	// leads to the change form, which says why; the new one signs in.
	idDB := e.app.Value(identitycomponent.Name).(*identitycomponent.Handle).DB
	old := time.Now().Add(-200 * 24 * time.Hour).UnixMilli()
	g := e.seed("ssy", "qian", nil, nil)
	if _, err := idDB.ExecContext(context.Background(), idDB.Rebind("UPDATE users SET password_changed_at = ? WHERE id = ?"), old, g.userID); err != nil {
		t.Fatal(err)
	}
	signIn("qian", g.password)
	waitFor("change form", `document.querySelector("#new") != null`)
	if got := textOf("main"); !strings.Contains(got, "您的密码已过期，请设置新密码后继续。") {
		t.Fatalf("expired password: %q", got)
	}
	b.accessible("Chinese change form for an expired password", "zh-CN")
	run("choose a new password", chromedp.SendKeys(chromedp.CSS("#old"), g.password), chromedp.SendKeys(chromedp.CSS("#new"), "Harbour-New-Pass!7"),
		chromedp.SendKeys(chromedp.CSS("#new2"), "Harbour-New-Pass!7\r"))
	waitFor("changed", `document.querySelector('p[role="status"]') != null && document.querySelector('p[role="status"]').innerText == "密码已修改，请使用新密码登录。"`)
	signIn("qian", "Harbour-New-Pass!7")
	waitFor("signed in with the new password", `document.querySelector("#who") != null`)
}
