package e2e

import (
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestBrowserConsoleCertificates drives headless Chromium through the
// console's certificates (the maritime design 2.1.6.2 证书管理; ADR 0041):
// the CA's certificates pasted on the bulk page, tried (dry run) then
// bound to the people they name, one line each; the person's page lists
// the binding and unbinds it; a certificate pasted on the person's page
// is bound to them; text that holds no certificate is refused with a
// sentence.
func TestBrowserConsoleCertificates(t *testing.T) {
	chromium := chromiumPath(t)
	people := newNamedCertPKI(t, "UIAS e2e console people's CA")
	cfg := testConfig(t.TempDir())
	id := identitycomponent.Settings(&cfg)
	id.Policy.CertIdentityCheck, id.CertChallengeCAFile = true, people.caFile
	e := start(t, cfg)
	e.login()
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "zhang.wei", DisplayName: "张伟", OrgId: e.root,
		IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: "440301198506151238", Password: "First-Pass-123"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pemOf := func(cn string) string {
		c, _, _ := people.issue(t, cn, false, now.Add(-time.Hour), now.Add(24*time.Hour))
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
	}
	zhangPEM, nobodyPEM := pemOf("张伟 440301198506151238"), pemOf("赵六 440301197001017899")

	base := e.http + "/console/"
	b := newChromium(t, chromium, 1100, 900)
	run, textOf := b.run, b.textOf
	consoleSignIn(b, base, "admin", adminPassword)

	// Bulk: a dry run, then for real.
	run("certificates page", chromedp.Navigate(base+"certs?locale=en"), chromedp.WaitVisible(chromedp.CSS("#certificates")),
		chromedp.SetValue(chromedp.CSS("#certificates"), zhangPEM+nobodyPEM), chromedp.Click(chromedp.CSS("#bind-certs")),
		chromedp.WaitVisible(chromedp.CSS("#cert-lines")))
	if s, lines := textOf("#certs-summary"), textOf("#cert-lines"); !strings.Contains(s, "Would be bound: 1 / 2") ||
		!strings.Contains(lines, "would be bound") || !strings.Contains(lines, "names no registered person") {
		t.Fatalf("dry run: %q\n%s", s, lines)
	}
	if cs, _ := e.admin.ListUserCertificates(e.adm(), &identityv1.ListUserCertificatesRequest{UserId: u.GetId()}); len(cs.GetCertificates()) != 0 {
		t.Fatalf("a dry run bound %v", cs)
	}
	run("bind for real", chromedp.SetValue(chromedp.CSS("#certificates"), zhangPEM+nobodyPEM), chromedp.Click(chromedp.CSS("#dry_run")),
		chromedp.Click(chromedp.CSS("#bind-certs")))
	b.waitFor("the binding's answer", `(document.querySelector("#certs-summary")?.textContent || "").includes("Bound:")`)
	if s := textOf("#certs-summary"); !strings.Contains(s, "Bound: 1 / 2") {
		t.Fatalf("bulk binding: %q\n%s", s, textOf("#cert-lines"))
	}
	b.accessible("console certificates page", "en")

	// The person's page lists it; unbind it.
	run("person's certificates", chromedp.Navigate(base+"people/"+u.GetId()+"?locale=en"), chromedp.WaitVisible(chromedp.CSS("#person-certs")))
	if !strings.Contains(textOf("#person-certs"), "Unbind") {
		t.Fatalf("person's certificates: %s", textOf("#person-certs"))
	}
	run("unbind", chromedp.Click(chromedp.CSS("#person-certs button")), chromedp.WaitVisible(chromedp.CSS("#no-certs")))
	if d := textOf("#done"); !strings.Contains(d, "unbound") {
		t.Fatalf("after unbinding: %q", d)
	}
	// Bind by pasting it on the person's page; junk is refused.
	run("bind on the page", chromedp.SetValue(chromedp.CSS("#certificate"), zhangPEM), chromedp.Click(chromedp.CSS("#bind-cert")))
	// the page before showed the unbinding's note and #person-certs: wait for the new page's note
	b.waitFor("the binding's answer", `(document.querySelector("#done")?.textContent || "").includes("was bound")`)
	if d := textOf("#done"); !strings.Contains(d, "was bound") {
		t.Fatalf("after binding: %q", d)
	}
	run("junk", chromedp.SetValue(chromedp.CSS("#certificate"), "not a certificate"), chromedp.Click(chromedp.CSS("#bind-cert")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := textOf("#error"); !strings.Contains(msg, "No PEM certificate") {
		t.Fatalf("junk: %q", msg)
	}
	run("two at once", chromedp.Navigate(base+"people/"+u.GetId()+"?locale=en"), chromedp.WaitVisible(chromedp.CSS("#certificate")),
		chromedp.SetValue(chromedp.CSS("#certificate"), zhangPEM+nobodyPEM), chromedp.Click(chromedp.CSS("#bind-cert")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := textOf("#error"); !strings.Contains(msg, "Paste one certificate") {
		t.Fatalf("two certificates pasted: %q", msg)
	}
	// Bound again to the same person from the bulk page: told, not bound twice.
	run("bulk again", chromedp.Navigate(base+"certs?locale=en"), chromedp.WaitVisible(chromedp.CSS("#certificates")),
		chromedp.SetValue(chromedp.CSS("#certificates"), zhangPEM), chromedp.Click(chromedp.CSS("#dry_run")),
		chromedp.Click(chromedp.CSS("#bind-certs")), chromedp.WaitVisible(chromedp.CSS("#cert-lines")))
	if lines := textOf("#cert-lines"); !strings.Contains(lines, "bound already") {
		t.Fatalf("bound again: %s", lines)
	}
}
