package e2e

import (
	"encoding/base32"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

var (
	totpSecretRE = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	hiddenRE     = func(name string) *regexp.Regexp { return regexp.MustCompile(`name="` + name + `" value="([^"]+)"`) }
)

// TestTOTPSecondFactor over the real server: a person sets up an
// authenticator app on My profile (a wrong first code refused, the right
// one with the password saves it; the key is not on the page after);
// the administrator sees it; a password login then asks for the code
// and opens no session before it; a wrong code is refused, the right one
// signs in; the same code is refused again, a half-done login is of no use
// in another browser; Authenticate checks password and code; the
// administrator's reset over REST lets the password alone sign in again.
func TestTOTPSecondFactor(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("totp", "tia", nil, nil)

	br := newBrowser(t)
	_, body, _ := br.get(casBase + "profile")
	if code, _, at := br.loginForm(casBase, body, "tia", f.password); code != http.StatusOK || at.Path != "/cas/profile" {
		t.Fatalf("first login: %d at %s", code, at)
	}
	code, body, _ := br.get(casBase + "profile/totp")
	m := totpSecretRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil || !strings.Contains(body, `<svg xmlns="http://www.w3.org/2000/svg" id="totp-qr"`) {
		t.Fatalf("set-up page: %d\n%s", code, body)
	}
	secret := m[1]
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	// Codes are of 30-second steps; the steps used below must not cross
	// one: start at the beginning of one.
	if into := time.Now().Unix() % 30; into > 20 {
		time.Sleep(time.Duration(31-into) * time.Second)
	}
	step := identity.TOTPStep(time.Now())
	codeAt := func(d int64) string { return identity.TOTPCode(key, step+d) }
	form := url.Values{"csrf": {csrfRE.FindStringSubmatch(body)[1]}, "action": {"confirm"},
		"enrolment_token": {htmlUnescape(hiddenRE("enrolment_token").FindStringSubmatch(body)[1])},
		"secret":          {secret}, "uri": {htmlUnescape(hiddenRE("uri").FindStringSubmatch(body)[1])}, "current_password": {f.password}}
	form.Set("code", codeAt(5))
	code, body, _ = br.post(casBase+"profile/totp", form)
	if code != http.StatusBadRequest || !strings.Contains(body, "The code does not match") || !strings.Contains(body, secret) {
		t.Fatalf("wrong first code: %d\n%s", code, body)
	}
	u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
	if err != nil || u.GetTotpEnrolled() {
		t.Fatalf("enrolled after a wrong code: %v %v", u, err)
	}
	form.Set("code", codeAt(-1))
	code, body, at := br.post(casBase+"profile/totp", form)
	if code != http.StatusOK || at.Path != "/cas/profile" || !strings.Contains(body, "Your authenticator app is set up") ||
		strings.Contains(body, secret) || profileFields(body)["totp"] == "" {
		t.Fatalf("set-up: %d at %s\n%s", code, at, body)
	}
	u, err = e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
	if err != nil || !u.GetTotpEnrolled() || u.GetTotpEnrolledAt() == nil {
		t.Fatalf("the administrator does not see the app: %v %v", u, err)
	}
	br.get(casBase + "logout")

	// The password alone opens nothing; the code page follows.
	passwordStep := func(b *browser) (string, string) {
		t.Helper()
		_, body, _ := b.get(casBase + "login")
		code, body, at := b.loginForm(casBase, body, "tia", f.password)
		tok := hiddenRE("otp_token").FindStringSubmatch(body)
		if code != http.StatusOK || at.Path != "/cas/login" || tok == nil || !strings.Contains(body, "Authenticator app code") {
			t.Fatalf("password step: %d at %s\n%s", code, at, body)
		}
		if hasCookie(b, casBase, "TGC") {
			t.Fatal("a session cookie after the password alone")
		}
		return htmlUnescape(tok[1]), csrfRE.FindStringSubmatch(body)[1]
	}
	b2 := newBrowser(t)
	tok, csrf := passwordStep(b2)
	code, body, _ = b2.post(casBase+"login", url.Values{"csrf": {csrf}, "otp_token": {tok}, "code": {codeAt(7)}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "The code is wrong") {
		t.Fatalf("wrong code: %d\n%s", code, body)
	}
	// Another browser with the page's values: refused, back to the login.
	b3 := newBrowser(t)
	_, b3body, _ := b3.get(casBase + "login")
	code, body, _ = b3.post(casBase+"login", url.Values{"csrf": {csrfRE.FindStringSubmatch(b3body)[1]}, "otp_token": {tok}, "code": {codeAt(0)}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "Your sign-in has expired") {
		t.Fatalf("half-done login in another browser: %d\n%s", code, body)
	}
	code, body, at = b2.post(casBase+"login", url.Values{"csrf": {csrf}, "otp_token": {tok}, "code": {codeAt(0)}})
	if code != http.StatusOK || at.Path != "/cas/portal" || !hasCookie(b2, casBase, "TGC") {
		t.Fatalf("right code: %d at %s\n%s", code, at, body)
	}
	// The same code again: refused (a replay).
	b4 := newBrowser(t)
	tok, csrf = passwordStep(b4)
	if code, body, _ = b4.post(casBase+"login", url.Values{"csrf": {csrf}, "otp_token": {tok}, "code": {codeAt(0)}}); code != http.StatusUnauthorized {
		t.Fatalf("replayed code: %d\n%s", code, body)
	}

	// Authenticate: password alone as before; with the code, both checked.
	wantResult(t, mustAuth(e.authPW(f, f.account, f.password)), nil, 0, identityv1.Reason_REASON_OK)
	otp := func(c string) (*identityv1.AuthenticateResponse, error) {
		return e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password,
			AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, Otp: c})
	}
	res, err := otp(codeAt(0))
	wantResult(t, res, err, -1, identityv1.Reason_REASON_BAD_CREDENTIALS)
	res, err = otp(codeAt(1))
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)

	// The administrator's reset over REST; the password alone signs in.
	rc, rb, _ := e.rest(http.MethodPost, "/v1/users/"+f.userID+":resetTotp", map[string]string{"Authorization": "Bearer " + e.token}, "{}")
	if rc != http.StatusOK || rb["totpEnrolled"] == true {
		t.Fatalf("REST reset: %d %v", rc, rb)
	}
	rc, rb, _ = e.rest(http.MethodPost, "/v1/users/"+f.userID+":resetTotp", map[string]string{"Authorization": "Bearer " + e.token}, "{}")
	if rc != http.StatusNotFound {
		t.Fatalf("REST reset without an app: %d %v", rc, rb)
	}
	b5 := newBrowser(t)
	_, body, _ = b5.get(casBase + "login")
	if code, _, at := b5.loginForm(casBase, body, "tia", f.password); code != http.StatusOK || at.Path != "/cas/portal" {
		t.Fatalf("password login after the reset: %d at %s", code, at)
	}
}

// mustAuth passes an Authenticate answer on as wantResult takes it.
func mustAuth(res *identityv1.AuthenticateResponse, err error) *identityv1.AuthenticateResponse {
	if err != nil {
		return &identityv1.AuthenticateResponse{ResultCode: -99, Message: err.Error()}
	}
	return res
}

// hasCookie says whether the browser holds cookie name for base.
func hasCookie(b *browser, base, name string) bool {
	u, _ := url.Parse(base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}
