package e2e

import (
	"encoding/base32"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/uias/uias/services/identity"
)

// TestBrowserConsoleAuthenticator: the system administrator sets up an
// authenticator app on "My profile"; the console's sign-in then asks for
// its code (the password alone opens nothing) and signs in with it.
func TestBrowserConsoleAuthenticator(t *testing.T) {
	chromium := chromiumPath(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"

	// Set up the app as TestTOTPSecondFactor does, for admin.
	br := newBrowser(t)
	_, body, _ := br.get(casBase + "profile")
	if code, _, at := br.loginForm(casBase, body, "admin", adminPassword); code != http.StatusOK || at.Path != "/cas/profile" {
		t.Fatalf("admin's profile sign-in: %d at %s", code, at)
	}
	_, body, _ = br.get(casBase + "profile/totp")
	m := totpSecretRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("set-up page: %s", body)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	// Codes are of 30-second steps; the two used below must not cross one.
	if into := time.Now().Unix() % 30; into > 15 {
		time.Sleep(time.Duration(31-into) * time.Second)
	}
	step := identity.TOTPStep(time.Now())
	codeAt := func(d int64) string { return identity.TOTPCode(key, step+d) }
	form := url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "action": {"confirm"},
		"enrolment_token": {htmlUnescape(hiddenRE("enrolment_token").FindStringSubmatch(body)[1])},
		"secret":          {m[1]}, "uri": {htmlUnescape(hiddenRE("uri").FindStringSubmatch(body)[1])}, "current_password": {adminPassword},
		"code": {codeAt(-1)}}
	if code, body, _ := br.post(casBase+"profile/totp", form); code != http.StatusOK || !strings.Contains(body, "Your authenticator app is set up") {
		t.Fatalf("set-up: %d %s", code, body)
	}

	b := newChromium(t, chromium, 900, 700)
	base := e.http + "/console/"
	consoleSignIn(b, base, "admin", adminPassword)
	if msg := b.textOf("#error"); !strings.Contains(msg, "authenticator app") {
		t.Fatalf("the password alone: %q", msg)
	}
	var required bool
	b.evalJS("code field", `document.querySelector("#otp").required`, &required)
	if !required {
		t.Fatal("the code field is not required after the service asked for it")
	}
	b.run("password and code", chromedp.SendKeys(chromedp.CSS("#password"), adminPassword),
		chromedp.SendKeys(chromedp.CSS("#otp"), codeAt(0)), chromedp.Click(chromedp.CSS("#signin")))
	b.waitFor("signed in with the code", `document.querySelector("#people") != null`)
}
