package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// chromiumPath finds (or, as root, installs) Chromium through the
// project's script; the browser test skips without one.
func chromiumPath(t *testing.T) string {
	t.Helper()
	args := []string{}
	if os.Getenv("UIAS_UPDATE_SCREENSHOTS") != "" {
		args = append(args, "--cjk")
	}
	out, err := exec.Command("../../scripts/chromium.sh", args...).Output()
	if err != nil {
		t.Skipf("no Chromium for the browser test (scripts/chromium.sh: %v)", err)
	}
	return strings.TrimSpace(string(out))
}

// TestBrowserSingleSignOn drives headless Chromium through the single
// sign-on pages with two applications protected by the Go CAS client: it
// opens application A, signs in on the login page, returns to A with a
// ticket A validated, enters B without a password, changes the password
// on the form, and signs out; both applications receive the logout
// request. On the way it opens "My profile" from the portal and changes
// the e-mail and phone. With UIAS_UPDATE_SCREENSHOTS=1 it writes the login
// page, the portal and the profile in both languages to docs/screenshots/.
func TestBrowserSingleSignOn(t *testing.T) {
	chromium := chromiumPath(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("brw", "wang", nil, nil)
	appA, appB := newCASApp(t, casBase), newCASApp(t, casBase)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for name, a := range map[string]*casApp{"A": appA, "B": appB} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
			AppId: f.appID, Name: "Application " + name, Url: a.srv.URL + "/"}}); err != nil {
			t.Fatal(err)
		}
	}

	b := newChromium(t, chromium, 760, 640)
	run, textOf, location, shot, waitFor, evalJS, accessible := b.run, b.textOf, b.location, b.shot, b.waitFor, b.evalJS, b.accessible
	const appPage = `document.body != null && document.body.innerText.startsWith("user=")`
	var text string

	// The login page in both languages (the switch keeps the choice).
	run("login page in Chinese", chromedp.Navigate(casBase+"login?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#username")),
		shot("login-zh.png"))
	if text = textOf("h1"); text != "登录" {
		t.Fatalf("Chinese login page heading: %q", text)
	}
	accessible("Chinese login page", "zh-CN")
	run("switch to English", chromedp.Click(chromedp.CSS(`a[hreflang="en"]`)), chromedp.WaitReady(`html[lang="en"]`), chromedp.WaitVisible(chromedp.CSS("#username")),
		shot("login-en.png"))
	if text = textOf("h1"); text != "Sign in" {
		t.Fatalf("English login page heading after the switch: %q", text)
	}
	accessible("English login page", "en")

	// Application A sends the browser to the login page, which names it.
	run("open A", chromedp.Navigate(appA.srv.URL+"/page"), chromedp.WaitVisible(chromedp.CSS("#password")))
	if text = textOf("main"); !strings.Contains(text, "Application A") {
		t.Fatalf("login page does not name application A: %q", text)
	}
	// A wrong password: the error is announced (role alert), and both
	// fields point at it and are marked invalid.
	run("wrong password", chromedp.SendKeys(chromedp.CSS("#username"), "wang"), chromedp.SendKeys(chromedp.CSS("#password"), "Not-The-Password1\r"))
	waitFor("error shown", `document.querySelector('p.error[role="alert"]') != null`)
	var errState struct {
		Text, Live string
		Fields     []string
	}
	evalJS("error state", `(() => {
		const e = document.querySelector('p.error[role="alert"]');
		return {Text: e.innerText, Live: e.id,
			Fields: ["username", "password"].map(id => { const f = document.getElementById(id);
				return f.getAttribute("aria-describedby") + "/" + f.getAttribute("aria-invalid"); })};
	})()`, &errState)
	if errState.Text == "" || errState.Live != "login-error" || len(errState.Fields) != 2 ||
		errState.Fields[0] != "login-error/true" || errState.Fields[1] != "login-error/true" {
		t.Fatalf("error announcement on the login page: %+v", errState)
	}
	accessible("login page with an error", "en")
	// Keyboard only: type, then Enter submits the form.
	run("sign in", chromedp.SendKeys(chromedp.CSS("#username"), "wang"), chromedp.SendKeys(chromedp.CSS("#password"), f.password+"\r"))
	waitFor("back at A", appPage)
	if text, url := textOf("body"), location(); !strings.HasPrefix(text, "user=wang;displayName=User wang;appAccountId=acct-wang") ||
		!strings.HasPrefix(url, appA.srv.URL+"/page") {
		t.Fatalf("back at A: %q at %s", text, url)
	}
	// Application B: no password asked.
	run("open B", chromedp.Navigate(appB.srv.URL+"/"))
	waitFor("at B", appPage)
	if text = textOf("body"); !strings.HasPrefix(text, "user=wang;") {
		t.Fatalf("B in the same session: %q", text)
	}
	// The portal lists the application, in both languages.
	run("portal", chromedp.Navigate(casBase+"portal?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#who")), shot("portal-zh.png"),
		chromedp.Navigate(casBase+"portal?locale=en"), chromedp.WaitVisible(chromedp.CSS("#who")), shot("portal-en.png"))
	// A and B are services of one application: the portal lists it once,
	// under the name of the service registered first (ids are ordered by
	// the millisecond, so either may be).
	if text = textOf("main"); !(strings.Contains(text, "Application A") || strings.Contains(text, "Application B")) ||
		!strings.Contains(text, "account acct-wang") {
		t.Fatalf("portal: %q", text)
	}
	accessible("English portal", "en")
	// My profile, from the portal: the ID number and phone masked; the
	// person changes the e-mail and phone with the current password.
	run("profile", chromedp.Click(chromedp.CSS(`a[href="/cas/profile"]`)), chromedp.WaitVisible(chromedp.CSS("#p-login")),
		shot("profile-en.png"))
	if text = textOf("#p-phone"); text != "138****5678" {
		t.Fatalf("profile phone: %q", text)
	}
	if text = textOf("main"); strings.Contains(text, seedIDNumber(0)) || strings.Contains(text, "13812345678") {
		t.Fatalf("profile shows personal data in clear: %q", text)
	}
	accessible("English profile", "en")
	run("profile in Chinese", chromedp.Navigate(casBase+"profile?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#p-login")),
		shot("profile-zh.png"))
	if text = textOf("h1"); text != "我的资料" {
		t.Fatalf("Chinese profile heading: %q", text)
	}
	accessible("Chinese profile", "zh-CN")
	run("change profile", chromedp.Navigate(casBase+"profile?locale=en"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.Clear(chromedp.CSS("#email")), chromedp.SendKeys(chromedp.CSS("#email"), "wang@example.org"),
		chromedp.SendKeys(chromedp.CSS("#phone"), "13987654321"), chromedp.SendKeys(chromedp.CSS("#current_password"), f.password),
		chromedp.Submit(chromedp.CSS("#current_password")))
	waitFor("profile saved", `document.querySelector('p[role="status"]') != null`)
	if text = textOf(`p[role="status"]`); text != "Your profile has been saved." {
		t.Fatalf("after the profile change: %q", text)
	}
	if p, m := textOf("#p-phone"), textOf("#p-email"); p != "139****4321" || m != "wang@example.org" {
		t.Fatalf("profile after the change: %q %q", p, m)
	}
	run("back to the portal", chromedp.Click(chromedp.CSS(`a[href="/cas/portal"]`)), chromedp.WaitVisible(chromedp.CSS("#who")))
	// Change the password on the form.
	run("change password", chromedp.Click(chromedp.CSS(`a[href="/cas/password"]`)), chromedp.WaitVisible(chromedp.CSS("#old")),
		chromedp.SendKeys(chromedp.CSS("#old"), f.password), chromedp.SendKeys(chromedp.CSS("#new"), "Br0wser-Changed!1"),
		chromedp.SendKeys(chromedp.CSS("#new2"), "Br0wser-Changed!1"), chromedp.Submit(chromedp.CSS("#new2")))
	waitFor("password changed", `document.querySelector('p[role="status"]') != null`)
	if text = textOf(`p[role="status"]`); text != "Your password has been changed." {
		t.Fatalf("after the change: %q", text)
	}
	// Sign out: both applications get the back-channel logout request.
	run("sign out", chromedp.Click(chromedp.CSS(`a[href="/cas/logout"]`)))
	waitFor("signed out", `document.querySelector("h1") != null && document.querySelector("h1").innerText == "Signed out"`)
	eventually(t, "logout requests at A and B", func() bool { return appA.logouts.Load() >= 1 && appB.logouts.Load() >= 1 })
	// A asks for a login again, and the new password works.
	run("A after logout", chromedp.Navigate(appA.srv.URL+"/page"), chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#username"), "wang"), chromedp.SendKeys(chromedp.CSS("#password"), "Br0wser-Changed!1\r"))
	waitFor("back at A with the new password", appPage)
	if text = textOf("body"); !strings.HasPrefix(text, "user=wang;") {
		t.Fatalf("sign in with the new password: %q", text)
	}
}

// accessibilityJS reports the page's language and title, the text drawn
// below the WCAG 2.1 AA contrast minimum (each as "text: ratio"), and the
// controls reached with Tab that show no focus outline.
const accessibilityJS = `(() => {
	const rgb = c => { const m = c.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
	const hex = h => "rgb(" + [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)).join(",") + ")";
	const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
		return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
	const bg = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
		if (c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
	const low = [];
	for (const el of document.querySelectorAll("body *")) {
		const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== "");
		const st = getComputedStyle(el);
		if (!own || st.visibility === "hidden" || st.display === "none" || el.getClientRects().length === 0) continue;
		const l1 = lum(rgb(st.color)), l2 = lum(bg(el));
		const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
		const large = size >= 24 || (bold && size >= 18.66);
		if (ratio < (large ? 3 : 4.5)) low.push(el.innerText.trim().slice(0, 30) + ": " + ratio.toFixed(2));
	}
	// The focus outline the page's style sheet gives each control: at
	// least 2px, and 3:1 against the background it is drawn on, outside
	// the control (a headless browser
	// without window focus applies no :focus style, so the rules are read).
	const focusRules = [];
	for (const sh of document.styleSheets) for (const r of sh.cssRules) {
		if (r.selectorText && r.selectorText.includes(":focus")) focusRules.push(r);
	}
	const noFocus = [];
	for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden])")) {
		const ok = focusRules.some(r => r.selectorText.split(",").some(sel => sel.includes(":focus") &&
				el.matches(sel.replace(/:focus(-visible)?/g, "").trim() || "*")) &&
			r.style.outlineStyle !== "" && r.style.outlineStyle !== "none" && parseFloat(r.style.outlineWidth) >= 2 &&
			(() => { const l1 = lum(rgb(r.style.outlineColor.startsWith("#") ? hex(r.style.outlineColor) : r.style.outlineColor)), l2 = lum(bg(el.parentElement));
				return (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05) >= 3; })());
		if (!ok) noFocus.push(el.tagName + (el.id ? "#" + el.id : "") + " " + (el.innerText || el.name || "").trim().slice(0, 20));
	}
	return {Lang: document.documentElement.lang, Title: document.title, LowContrast: low, NoFocus: noFocus};
})()`
