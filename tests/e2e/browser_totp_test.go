package e2e

import (
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/uias/uias/services/identity"
)

// TestBrowserAuthenticatorApp drives headless Chromium through setting up
// an authenticator app on My profile (the QR code is drawn under the
// pages' unchanged Content-Security-Policy: inline SVG, no image) and a
// sign-in with the password and the app's code; the set-up and code pages
// pass the accessibility checks in both languages. With
// UIAS_UPDATE_SCREENSHOTS=1 it writes the set-up and code pages to
// docs/screenshots/.
func TestBrowserAuthenticatorApp(t *testing.T) {
	chromium := chromiumPath(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("brt", "zhao", nil, nil)

	b := newChromium(t, chromium, 760, 900)
	run, textOf, shot, waitFor, evalJS, accessible := b.run, b.textOf, b.shot, b.waitFor, b.evalJS, b.accessible

	// Sign in from My profile, then open the set-up page from it.
	run("profile", chromedp.Navigate(casBase+"login?locale=zh-CN&next=profile"), chromedp.WaitVisible(chromedp.CSS("#username")))
	run("sign in", chromedp.SendKeys(chromedp.CSS("#username"), "zhao"), chromedp.SendKeys(chromedp.CSS("#password"), f.password+"\r"))
	waitFor("at the profile", `document.getElementById("totp-setup") != null`)
	run("set-up page", chromedp.Click(chromedp.CSS("#totp-setup")), chromedp.WaitVisible(chromedp.CSS("#totp-secret")),
		shot("totp-setup-zh.png"))
	if text := textOf("h1"); text != "设置动态口令" {
		t.Fatalf("Chinese set-up page heading: %q", text)
	}
	accessible("Chinese set-up page", "zh-CN")
	run("in English", chromedp.Click(chromedp.CSS(`a[hreflang="en"]`)), chromedp.WaitReady(`html[lang="en"]`), chromedp.WaitVisible(chromedp.CSS("#totp-secret")))
	accessible("English set-up page", "en")
	// The QR code is drawn: the SVG has its size and a path of modules.
	var qr struct {
		Width, Height float64
		Modules       int
	}
	evalJS("QR code", `(() => { const s = document.getElementById("totp-qr"); const r = s.getBoundingClientRect();
		return {Width: r.width, Height: r.height, Modules: (s.querySelector("path").getAttribute("d").match(/M/g) || []).length}; })()`, &qr)
	if qr.Width < 200 || qr.Height < 200 || qr.Modules < 100 {
		t.Fatalf("QR code not drawn: %+v", qr)
	}
	run("screenshot", shot("totp-setup-en.png"))
	secret := textOf("#totp-secret")
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimSpace(secret))
	if err != nil {
		t.Fatalf("key %q: %v", secret, err)
	}
	if into := time.Now().Unix() % 30; into > 20 {
		time.Sleep(time.Duration(31-into) * time.Second)
	}
	base := identity.TOTPStep(time.Now())
	run("confirm", chromedp.SendKeys(chromedp.CSS("#code"), identity.TOTPCode(key, base-1)),
		chromedp.SendKeys(chromedp.CSS("#current_password"), f.password+"\r"))
	waitFor("saved", `document.getElementById("p-totp") != null`)
	if text := textOf("main"); strings.Contains(text, secret) || !strings.Contains(text, "Your authenticator app is set up") {
		t.Fatalf("profile after the set-up: %q", text)
	}

	// Sign out; the password then asks for the code.
	run("sign out", chromedp.Navigate(casBase+"logout"), chromedp.Navigate(casBase+"login?locale=en"),
		chromedp.WaitVisible(chromedp.CSS("#username")))
	run("password", chromedp.SendKeys(chromedp.CSS("#username"), "zhao"), chromedp.SendKeys(chromedp.CSS("#password"), f.password+"\r"))
	waitFor("code page", `document.querySelector('input[name="otp_token"]') != null`)
	run("code page", shot("totp-code-en.png"))
	accessible("English code page", "en")
	run("code", chromedp.SendKeys(chromedp.CSS("#code"), identity.TOTPCode(key, base)+"\r"))
	waitFor("portal", `document.getElementById("who") != null && location.pathname == "/cas/portal"`)
	if text := textOf("#who"); text != "zhao" {
		t.Fatalf("signed in as %q", text)
	}
}
