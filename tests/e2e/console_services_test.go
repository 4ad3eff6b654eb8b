package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// TestBrowserConsoleServices drives headless Chromium through the
// console's services (the business systems registered for single sign-on;
// 004 §2.1.6.4 信息系统管理): the list, a service's page, and its settings
// saved through ticket's registry — closed to people without a link,
// consent asked and remembered 30 days, the name released masked; a bad
// number of days is refused with a sentence and changes nothing.
func TestBrowserConsoleServices(t *testing.T) {
	chromium := chromiumPath(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("svcapp", "svc.person", nil, nil)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	svc, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Office automation", Url: "https://oa.example.com/"}})
	if err != nil {
		t.Fatal(err)
	}
	base := e.http + "/console/"
	b := newChromium(t, chromium, 1100, 900)
	run, textOf := b.run, b.textOf
	consoleSignIn(b, base, "admin", adminPassword)

	run("services", chromedp.Navigate(base+"services?locale=en"), chromedp.WaitVisible(chromedp.CSS("#services")))
	if list := textOf("#services"); !strings.Contains(list, "Office automation") || !strings.Contains(list, "anyone signed in") {
		t.Fatalf("services list: %s", list)
	}
	b.accessible("console services page", "en")
	run("open", chromedp.Click(chromedp.CSS("#services a")), chromedp.WaitVisible(chromedp.CSS("#service-name")),
		chromedp.Click(chromedp.CSS("#require_link")), chromedp.Click(chromedp.CSS("#consent_required")),
		chromedp.SetValue(chromedp.CSS("#consent_days"), "30"),
		chromedp.SetValue(chromedp.CSS("#release_attributes"), "login, displayName"),
		chromedp.SetValue(chromedp.CSS("#masked_attributes"), "displayName"),
		chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#done")))
	got, err := registry.GetService(e.adm(), &ticketv1.GetServiceRequest{Id: svc.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if !got.GetRequireAccountLink() || !got.GetConsentRequired() || got.GetConsentTtlSeconds() != 30*86400 || !got.GetEnabled() ||
		strings.Join(got.GetReleaseAttributes(), ",") != "login,displayName" || strings.Join(got.GetMaskedAttributes(), ",") != "displayName" ||
		got.GetUrl() != svc.GetUrl() || got.GetName() != svc.GetName() {
		t.Fatalf("saved service: %+v", got)
	}
	// the form shows what was saved
	if v := textOf("#service-name"); v != "Office automation" {
		t.Fatalf("service page after saving: %q", v)
	}
	// a refusal: bad days (the console's own), then a masked attribute not released (the registry's sentence)
	run("bad days", chromedp.SetValue(chromedp.CSS("#consent_days"), "forever"), chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := textOf("#error"); !strings.Contains(msg, "0 to 3650") {
		t.Fatalf("bad days: %q", msg)
	}
	run("reload", chromedp.Navigate(base+"services/"+svc.GetId()+"?locale=en"), chromedp.WaitVisible(chromedp.CSS("#save")),
		chromedp.SetValue(chromedp.CSS("#release_attributes"), "login"), chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := textOf("#error"); msg == "" {
		t.Fatal("masking an attribute not released: no refusal shown")
	}
	if again, _ := registry.GetService(e.adm(), &ticketv1.GetServiceRequest{Id: svc.GetId()}); strings.Join(again.GetReleaseAttributes(), ",") != "login,displayName" {
		t.Fatalf("a refused save changed the service: %+v", again)
	}
}
