package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

var (
	enterRE  = regexp.MustCompile(`class="enter" href="([^"]+)" aria-label="Enter ([^"]+)"`)
	infoRE   = regexp.MustCompile(`<p class="info" role="status">([^<]*)</p>`)
	linkAppR = regexp.MustCompile(`name="app" value="([^"]+)"`)
)

// TestPortalAssociationAndPassword: after a login without a service the
// portal lists the applications the person may enter; the person links an
// existing account of a scheme-1 application (the application confirms it
// through validatePrincipal, after two failed attempts), enters it and the
// application gets the account and its password; the password is changed
// on the form (signed in, and right after a login that must change it).
func TestPortalAssociationAndPassword(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	stub := newLegacyStub(t, casBase)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	// A CAS application the person is linked to (seed links acct-pia).
	fp := e.seed("pcas", "pia", nil, nil)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: fp.appID, Name: "Mail", Url: stub.srv.URL + "/mail/"}}); err != nil {
		t.Fatal(err)
	}
	// A scheme-1 legacy application that knows pia as "pia-oa".
	ar, err := e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "legacy1", Name: "Old OA",
		IpAllowList: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	oaID := ar.GetApp().GetId()
	oa := &stubApp{appID: oaID, principals: map[string]string{"pia-oa": "11010519491231002X", "other-oa": "110105194912310021"}}
	urlOA := stub.add("oa", oa)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: oaID, Name: "Old OA", Url: urlOA, LegacyScheme: 1}}); err != nil {
		t.Fatal(err)
	}

	br := newBrowser(t)
	_, body, _ := br.get(casBase + "login")
	code, body, at := br.loginForm(casBase, body, "pia", fp.password)
	if code != http.StatusOK || at.Path != "/cas/portal" {
		t.Fatalf("login without a service: %d at %s", code, at)
	}
	m := enterRE.FindAllStringSubmatch(body, -1)
	if len(m) != 1 || m[0][2] != "Mail" || !strings.Contains(body, "account acct-pia") || !strings.Contains(body, "<legend>Old OA</legend>") {
		t.Fatalf("portal: %v\n%s", m, body)
	}
	// Entering Mail from the portal: no password asked.
	_, _, at = br.get(e.http + htmlUnescape(m[0][1]))
	if !strings.HasPrefix(at.String(), stub.srv.URL+"/mail/?ticket=ST-") {
		t.Fatalf("enter Mail: at %s", at)
	}

	link := func(form url.Values) (int, string) {
		t.Helper()
		if form.Get("csrf") == "" {
			form.Del("csrf")
		}
		code, body, _ := br.post(casBase+"portal/link", form)
		return code, body
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	if got := linkAppR.FindStringSubmatch(body); got == nil || got[1] != oaID {
		t.Fatalf("association form: %v", got)
	}
	// Without the CSRF token: refused, nothing asked of the application.
	if code, _ := link(url.Values{"app": {oaID}, "account": {"pia-oa"}, "password": {"oa-pass-1"}}); code != http.StatusForbidden ||
		oa.principalN.Load() != 0 {
		t.Fatalf("association without CSRF: %d (%d calls)", code, oa.principalN.Load())
	}
	// An account that is not hers: the application does not confirm it.
	code, body = link(url.Values{"csrf": {csrf}, "app": {oaID}, "account": {"other-oa"}, "password": {"x"}})
	if code != http.StatusForbidden || !strings.Contains(body, "did not confirm") {
		t.Fatalf("someone else's account: %d %s", code, errorRE.FindString(body))
	}
	// Scheme 1 needs the password.
	if code, _ = link(url.Values{"csrf": {csrf}, "app": {oaID}, "account": {"pia-oa"}}); code != http.StatusBadRequest {
		t.Fatalf("scheme 1 without a password: %d", code)
	}
	// Hers, with the application failing twice first: retried.
	oa.failFirst.Store(2)
	before := oa.principalN.Load()
	code, body = link(url.Values{"csrf": {csrf}, "app": {oaID}, "account": {"pia-oa"}, "password": {"oa-pass-1"}})
	if code != http.StatusOK || !strings.Contains(body, "The account is linked") || oa.principalN.Load()-before != 3 {
		t.Fatalf("association: %d (%d calls) %s", code, oa.principalN.Load()-before, body)
	}
	m = enterRE.FindAllStringSubmatch(body, -1)
	if len(m) != 2 || m[1][2] != "Old OA" || strings.Contains(body, "<legend>Old OA</legend>") {
		t.Fatalf("portal after association: %v", m)
	}
	// Entering it: the application gets the account and its password.
	_, body, _ = br.get(e.http + htmlUnescape(m[1][1]))
	if body != "status=200;result=RPC_OK;username=pia-oa;password=oa-pass-1;loggedIn=true" {
		t.Fatalf("scheme-1 application got %q", body)
	}
	// The account cannot be linked to another person.
	other := e.seed("pcas2", "otto", nil, nil)
	br2 := newBrowser(t)
	_, body, _ = br2.get(casBase + "login")
	_, body, _ = br2.loginForm(casBase, body, "otto", other.password)
	code, body, _ = br2.post(casBase+"portal/link", url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "app": {oaID},
		"account": {"pia-oa"}, "password": {"oa-pass-1"}})
	if code != http.StatusForbidden && code != http.StatusConflict {
		t.Fatalf("another person linking pia's account: %d %s", code, errorRE.FindString(body))
	}

	// A person without an identity document number: the application
	// confirms accounts by it, so it is not asked (no empty userid).
	noID := e.seed("pcas4", "nora", nil, func(r *identityv1.CreateUserRequest) { r.IdType, r.IdNumber = 0, "" })
	brN := newBrowser(t)
	_, body, _ = brN.get(casBase + "login")
	_, body, _ = brN.loginForm(casBase, body, "nora", noID.password)
	before = oa.principalN.Load()
	code, body, _ = brN.post(casBase+"portal/link", url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "app": {oaID},
		"account": {"nora-oa"}, "password": {"oa-pass-1"}})
	if code != http.StatusConflict || !strings.Contains(body, "identity document number is not recorded") || oa.principalN.Load() != before {
		t.Fatalf("association without an ID number: %d (%d calls) %s", code, oa.principalN.Load()-before, errorRE.FindString(body))
	}

	// Change password, signed in.
	_, body, _ = br.get(casBase + "password")
	csrf = csrfRE.FindStringSubmatch(body)[1]
	change := func(old, nw, nw2 string) (int, string, *url.URL) {
		return br.post(casBase+"password", url.Values{"csrf": {csrf}, "old_password": {old}, "new_password": {nw}, "new_password2": {nw2}})
	}
	if code, _, _ := change(fp.password, "N3w-Passw0rd!x", "N3w-Passw0rd!y"); code != http.StatusBadRequest {
		t.Fatalf("mismatched new passwords: %d", code)
	}
	if code, _, _ := change("Wrong-Pass!42", "N3w-Passw0rd!x", "N3w-Passw0rd!x"); code != http.StatusUnauthorized {
		t.Fatalf("wrong current password: %d", code)
	}
	if code, body, _ := change(fp.password, "abc", "abc"); code != http.StatusBadRequest || !strings.Contains(body, "password rules") {
		t.Fatalf("weak new password: %d %s", code, errorRE.FindString(body))
	}
	code, body, at = change(fp.password, "N3w-Passw0rd!x", "N3w-Passw0rd!x")
	if code != http.StatusOK || at.Path != "/cas/portal" || infoRE.FindStringSubmatch(body)[1] != "Your password has been changed." {
		t.Fatalf("change password: %d at %s", code, at)
	}
	br.get(casBase + "logout")
	_, body, _ = br.get(casBase + "login")
	if code, body, at = br.loginForm(casBase, body, "pia", "N3w-Passw0rd!x"); at.Path != "/cas/portal" {
		t.Fatalf("login with the new password: %d at %s: %s", code, at, errorRE.FindString(body))
	}

	// A login that must change its password goes to the form at once.
	mc := e.seed("pcas3", "mia", nil, func(r *identityv1.CreateUserRequest) { r.MustChangePassword = true })
	br3 := newBrowser(t)
	_, body, _ = br3.get(casBase + "login?service=" + url.QueryEscape(stub.srv.URL+"/mail/x"))
	code, body, _ = br3.loginForm(casBase, body, "mia", mc.password)
	if code != http.StatusOK || !strings.Contains(body, "You must change your password") || !strings.Contains(body, `name="new_password"`) {
		t.Fatalf("must change: %d %s", code, body)
	}
	code, body, _ = br3.post(casBase+"password", url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "username": {"mia"},
		"service": {htmlUnescape(serviceRE.FindStringSubmatch(body)[1])}, "old_password": {mc.password},
		"new_password": {"Fr3sh-Passw0rd!"}, "new_password2": {"Fr3sh-Passw0rd!"}})
	if code != http.StatusOK || !strings.Contains(body, "Sign in with the new password") {
		t.Fatalf("after the forced change: %d %s", code, body)
	}
	_, _, at = br3.loginForm(casBase, body, "mia", "Fr3sh-Passw0rd!")
	if !strings.HasPrefix(at.String(), stub.srv.URL+"/mail/x?ticket=ST-") {
		t.Fatalf("login after the forced change: at %s", at)
	}
}
