package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
// request. With UIAS_UPDATE_SCREENSHOTS=1 it writes the login page and the
// portal in both languages to docs/screenshots/.
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

	shots := t.TempDir()
	if os.Getenv("UIAS_UPDATE_SCREENSHOTS") != "" {
		shots = "../../docs/screenshots"
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(760, 640),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser (without a deadline: it would
	// stop the browser); every step after it has a generous one.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(bctx, 60*time.Second) }
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, c := step()
		defer c()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	textOf := func(sel string) string {
		t.Helper()
		ctx, c := step()
		defer c()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	location := func() string {
		t.Helper()
		ctx, c := step()
		defer c()
		v, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			png, err := chromedp.CaptureScreenshot()(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name), png, 0o644)
		}
	}
	// waitFor polls a JavaScript predicate until it holds, across the
	// navigations a form submission or redirect makes (a poll the
	// navigation interrupts is started again).
	waitFor := func(what, predicate string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, c := context.WithTimeout(bctx, 10*time.Second)
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](predicate))
			c()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	const appPage = `document.body != null && document.body.innerText.startsWith("user=")`
	var text string

	// The login page in both languages (the switch keeps the choice).
	run("login page in Chinese", chromedp.Navigate(casBase+"login?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#username")),
		shot("login-zh.png"))
	if text = textOf("h1"); text != "登录" {
		t.Fatalf("Chinese login page heading: %q", text)
	}
	run("switch to English", chromedp.Click(chromedp.CSS(`a[hreflang="en"]`)), chromedp.WaitVisible(chromedp.CSS("#username")),
		shot("login-en.png"))
	if text = textOf("h1"); text != "Sign in" {
		t.Fatalf("English login page heading after the switch: %q", text)
	}

	// Application A sends the browser to the login page, which names it.
	run("open A", chromedp.Navigate(appA.srv.URL+"/page"), chromedp.WaitVisible(chromedp.CSS("#password")))
	if text = textOf("main"); !strings.Contains(text, "Application A") {
		t.Fatalf("login page does not name application A: %q", text)
	}
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
	if text = textOf("main"); !strings.Contains(text, "Application A") || !strings.Contains(text, "account acct-wang") {
		t.Fatalf("portal: %q", text)
	}
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
