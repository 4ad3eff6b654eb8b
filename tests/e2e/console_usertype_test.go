package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestBrowserConsoleUserType drives headless Chromium through the person
// page's "Account type" form (ADR 0039): making a person with a resident
// ID number a unit without a fitting ID is refused with identity's
// sentence (ID_TYPE_MISMATCH) and changes nothing; with a unified social
// credit code it is taken (identity's record says unit, the code
// masked); back to a person with no ID. The page passes the accessibility
// check in both languages.
func TestBrowserConsoleUserType(t *testing.T) {
	chromium := chromiumPath(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "acme.clerk", DisplayName: "某某航运有限公司", OrgId: e.root,
		IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: "440301198506151238", Password: "First-Pass-123"})
	if err != nil {
		t.Fatal(err)
	}
	base := e.http + "/console/"
	b := newChromium(t, chromium, 1100, 900)
	run, textOf := b.run, b.textOf
	consoleSignIn(b, base, "admin", adminPassword)
	person := base + "people/" + u.GetId()

	run("person page", chromedp.Navigate(person+"?locale=zh-CN"), chromedp.WaitVisible(chromedp.CSS("#change-type")))
	b.accessible("Chinese person page with the account type form", "zh-CN")
	run("person page", chromedp.Navigate(person+"?locale=en"), chromedp.WaitVisible(chromedp.CSS("#change-type")))
	b.accessible("person page with the account type form", "en")
	if got := textOf("#p-usertype"); got != "A person" {
		t.Fatalf("type shown: %q", got)
	}

	// A unit keeping a resident ID number: refused, nothing changed.
	run("make a unit without a code", chromedp.SetValue(chromedp.CSS("#new_user_type"), "unit"), chromedp.Click(chromedp.CSS("#change-type")),
		chromedp.WaitVisible(chromedp.CSS("#error")))
	if msg := textOf("#error"); !strings.Contains(msg, "unified social credit code") {
		t.Fatalf("refusal: %q", msg)
	}
	b.accessible("person page with the type refusal", "en")
	if got, _ := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: u.GetId()}); got.GetUserType() != identityv1.UserType_USER_TYPE_PERSON {
		t.Fatalf("refused change stored: %v", got.GetUserType())
	}

	// With the unit's code: taken.
	run("make a unit with its code", chromedp.Navigate(person+"?locale=en"), chromedp.WaitVisible(chromedp.CSS("#change-type")),
		chromedp.SetValue(chromedp.CSS("#new_user_type"), "unit"), chromedp.SetValue(chromedp.CSS("#new_id_type"), "uscc"),
		chromedp.SetValue(chromedp.CSS("#new_id_number"), "91310115MA01A2B322"), chromedp.Click(chromedp.CSS("#change-type")),
		chromedp.WaitVisible(chromedp.CSS("#done")))
	if d, ty, id := textOf("#done"), textOf("#p-usertype"), textOf("#p-idnumber"); !strings.Contains(d, "account type was changed") ||
		ty != "A unit (company, agency)" || id != "913*************22" {
		t.Fatalf("after the change: %q %q %q", d, ty, id)
	}
	got, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: u.GetId()})
	if err != nil || got.GetUserType() != identityv1.UserType_USER_TYPE_UNIT || got.GetIdType() != identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE {
		t.Fatalf("stored: %v %v", got, err)
	}

	// Back to a person with no ID. The page shows the last change's note
	// (#done), so the form is opened afresh: waiting for #done on this page
	// would return before the submitted form was answered.
	run("back to a person", chromedp.Navigate(person+"?locale=en"), chromedp.WaitVisible(chromedp.CSS("#change-type")),
		chromedp.SetValue(chromedp.CSS("#new_user_type"), "person"), chromedp.SetValue(chromedp.CSS("#new_id_type"), "none"),
		chromedp.Click(chromedp.CSS("#change-type")), chromedp.WaitVisible(chromedp.CSS("#done")))
	if ty := textOf("#p-usertype"); ty != "A person" {
		t.Fatalf("back to a person: %q", ty)
	}
}
