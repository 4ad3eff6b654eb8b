package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

var profileFieldRE = regexp.MustCompile(`<dd id="p-([a-z]+)">([^<]*)</dd>`)

// profileFields reads the values the profile page shows, by their ids.
func profileFields(body string) map[string]string {
	out := map[string]string{}
	for _, m := range profileFieldRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = htmlUnescape(m[2])
	}
	return out
}

// TestProfileSelfService: a person signs in at the real server, opens
// "My profile" from the portal (ID number and phone masked only), is
// refused a wrong password and a bad e-mail with sentences, changes
// their e-mail and phone with the current password, and the
// administrator's GetUser shows the change; the change is audited as
// user.update_self with the person as the actor. SSOService is not
// callable from outside UIAS.
func TestProfileSelfService(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("prof", "pia", nil, func(r *identityv1.CreateUserRequest) { r.Email = "pia@example.org" })
	idNumber := seedIDNumber(0)

	br := newBrowser(t)
	// Without a session: the login page, and back to the profile after it.
	_, body, at := br.get(casBase + "profile")
	if at.Path != "/cas/login" || at.Query().Get("next") != "profile" {
		t.Fatalf("profile without a session: at %s", at)
	}
	code, body, at := br.loginForm(casBase, body, "pia", f.password)
	if code != http.StatusOK || at.Path != "/cas/profile" || profileFields(body)["login"] != "pia" {
		t.Fatalf("after the login from the profile: %d at %s", code, at)
	}
	if code, body, _ = br.get(casBase + "portal"); code != http.StatusOK || !strings.Contains(body, `<a href="/cas/profile">My profile</a>`) {
		t.Fatalf("portal: %d", code)
	}
	code, body, _ = br.get(casBase + "profile")
	got := profileFields(body)
	if code != http.StatusOK || got["login"] != "pia" || got["name"] != "User pia" || got["idtype"] != "Resident identity card" ||
		got["email"] != "pia@example.org" || got["phone"] != "138****5678" || !strings.HasPrefix(got["idnumber"], idNumber[:3]) ||
		!strings.Contains(got["idnumber"], "*") || got["org"] == "" || !strings.HasSuffix(got["pwchanged"], " UTC") ||
		!strings.HasSuffix(got["pwexpires"], " UTC") || !strings.Contains(body, `href="/cas/portal"`) {
		t.Fatalf("profile page: %d %v", code, got)
	}
	if strings.Contains(body, idNumber) || strings.Contains(body, "13812345678") {
		t.Fatal("the profile page shows the ID number or phone in clear")
	}
	if strings.Contains(body, `name="display_name"`) {
		t.Fatal("display name editable without identity.policy.self_service_display_name")
	}
	// The page in Chinese.
	if _, zh, _ := br.get(casBase + "profile?locale=zh-CN"); !strings.Contains(zh, "<h1>我的资料</h1>") || !strings.Contains(zh, "居民身份证") {
		t.Fatal("Chinese profile page")
	}
	br.get(casBase + "profile?locale=en")
	csrf := csrfRE.FindStringSubmatch(body)[1]
	save := func(v url.Values) (int, string, *url.URL) {
		t.Helper()
		return br.post(casBase+"profile", v)
	}
	form := func(email, phone, pw string) url.Values {
		return url.Values{"csrf": {csrf}, "email": {email}, "phone": {phone}, "current_password": {pw}}
	}
	// Refusals: forged form, wrong password (a counted failed login),
	// bad e-mail (UpdateUser's rule); nothing is changed.
	if code, _, _ := save(url.Values{"csrf": {"forged-forged-forged-forged-forged"}, "email": {"x@example.org"},
		"current_password": {f.password}}); code != http.StatusForbidden {
		t.Fatalf("forged form: %d", code)
	}
	code, body, _ = save(form("pia.new@example.org", "13987654321", "Wrong-Pass-99"))
	if code != http.StatusUnauthorized || errorRE.FindStringSubmatch(body)[1] != "The current password is not correct. Nothing was changed." {
		t.Fatalf("wrong password: %d %s", code, errorRE.FindString(body))
	}
	code, body, _ = save(form("pia-at-example", "13987654321", f.password))
	if code != http.StatusBadRequest || !strings.Contains(errorRE.FindStringSubmatch(body)[1], "The e-mail address is not valid.") ||
		!strings.Contains(body, `value="pia-at-example"`) {
		t.Fatalf("bad e-mail: %d %s", code, errorRE.FindString(body))
	}
	code, body, _ = save(form("pia@example.org", "138_1234", f.password))
	if code != http.StatusBadRequest || !strings.Contains(errorRE.FindStringSubmatch(body)[1], "The mobile phone number is not valid.") {
		t.Fatalf("bad phone: %d %s", code, errorRE.FindString(body))
	}
	u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
	if err != nil || u.GetEmail() != "pia@example.org" || u.GetPhoneMasked() != "138****5678" {
		t.Fatalf("refused changes were written: %v %v", u, err)
	}

	// The change.
	code, body, at = save(form("pia.new@example.org", "13987654321", f.password))
	got = profileFields(body)
	if code != http.StatusOK || at.Path != "/cas/profile" || infoRE.FindStringSubmatch(body)[1] != "Your profile has been saved." ||
		got["email"] != "pia.new@example.org" || got["phone"] != "139****4321" {
		t.Fatalf("change: %d at %s %v", code, at, got)
	}
	u, err = e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
	if err != nil || u.GetEmail() != "pia.new@example.org" || u.GetPhoneMasked() != "139****4321" || u.GetDisplayName() != "User pia" {
		t.Fatalf("the administrator sees %v %v", u, err)
	}
	// Still signed in; the password still works (a wrong one above was
	// a counted failure, the right one since cleared it).
	if res, err := e.authPW(f, f.account, f.password); err != nil || res.GetReason() != identityv1.Reason_REASON_OK {
		t.Fatalf("authenticate after the change: %v %v", res, err)
	}

	// Audited with the person as the actor.
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := q.QueryRecords(e.aud(), &auditv1.QueryRecordsRequest{Api: "user.update_self", Subject: "user:" + f.userID})
		if err == nil && len(res.GetRecords()) == 1 {
			r := res.GetRecords()[0]
			if r.GetActor() != "user:"+f.userID || r.GetResult() != "success" {
				t.Fatalf("audit record %v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no user.update_self record: %v %v", res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SSOService is for UIAS components only, whatever token comes along.
	sso := identityv1.NewSSOServiceClient(e.conn)
	for _, ctx := range []context.Context{context.Background(), e.adm()} {
		_, err := sso.UpdateOwnProfile(ctx, &identityv1.UpdateOwnProfileRequest{UserId: f.userID, CurrentPassword: f.password,
			UpdateMask: []string{"email"}, Email: "evil@example.org"})
		wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
		_, err = sso.GetOwnProfile(ctx, &identityv1.GetOwnProfileRequest{UserId: f.userID})
		wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
	}
	// Signed out: the profile is the login page again.
	br.get(casBase + "logout")
	if _, _, at := br.get(casBase + "profile"); at.Path != "/cas/login" {
		t.Fatalf("profile after sign-out: at %s", at)
	}
}
