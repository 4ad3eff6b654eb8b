package identity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
)

// fingerLoginEnv is the profile environment (person pia, password
// profilePass) with fingers enrolled: a right finger is impression(1, n)
// for n > 0 (impression(1, 0) is the enrolled record itself).
func fingerLoginEnv(t *testing.T, policy identity.Policy) (*totpEnv, context.Context) {
	t.Helper()
	e := newTOTPEnv(t, policy)
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin-finger")
	if _, err := e.svc.EnrollFinger(admin, e.user.ID, 2, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	return e, admin
}

// fingerRecord is the detail of the last sso.login record with reason and
// result in the outbox after mark m.
func (e *totpEnv) fingerRecord(t *testing.T, m int64, reason, result string) map[string]string {
	t.Helper()
	var detail map[string]string
	for _, d := range auditRecords(t, e.outbox(t, m), "sso.login") {
		if d.Reason == reason && d.Result == result {
			detail = d.Detail
		}
	}
	if detail == nil {
		t.Fatalf("no sso.login record %s/%s", result, reason)
	}
	return detail
}

func TestSSOFingerLogin(t *testing.T) {
	e, admin := fingerLoginEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	ctx := browserAt("192.0.2.7")
	login := func(name string, record []byte, pw string) *identity.SSOLoginResult {
		t.Helper()
		res, err := e.svc.SSOFingerLogin(ctx, name, record, pw, "browser-1")
		if err != nil {
			t.Fatalf("finger login of %s: %v", name, err)
		}
		if (res.Reason == identity.ReasonOK) != (res.User != nil) {
			t.Fatalf("result %+v", res)
		}
		return res
	}

	// The right finger, another impression: signed in, one factor.
	m := e.mark(t)
	res := login("pia", impression(1, 1), "")
	if res.Reason != identity.ReasonOK || res.User.ID != e.user.ID || res.Method != "finger" || !res.NoPassword {
		t.Fatalf("right finger: %+v", res)
	}
	if d := e.fingerRecord(t, m, "OK", "success"); d["method"] != "finger" {
		t.Fatalf("record of a finger login: %v", d)
	}
	// Another person's finger, the enrolled record itself (a copy, never
	// a capture), an unknown login: one answer.
	m = e.mark(t)
	if r := login("pia", impression(2, 1), "").Reason; r != identity.ReasonBadCredentials {
		t.Fatalf("wrong finger: %v", r)
	}
	if d := e.fingerRecord(t, m, "BAD_CREDENTIALS", "failure"); d["method"] != "finger" {
		t.Fatalf("record of a wrong finger: %v", d)
	}
	m = e.mark(t)
	if r := login("pia", impression(1, 0), "").Reason; r != identity.ReasonBadCredentials {
		t.Fatalf("copied template: %v", r)
	}
	if d := e.fingerRecord(t, m, "BAD_CREDENTIALS", "failure"); d["probe"] == "" {
		t.Fatalf("record of a copied template names it: %v", d)
	}
	m = e.mark(t)
	if r := login("nobody", impression(1, 1), "").Reason; r != identity.ReasonBadCredentials {
		t.Fatalf("unknown login: %v", r)
	}
	e.fingerRecord(t, m, "NO_SUCH_USER", "failure")

	// With the password: two factors, both checked.
	res = login("pia", impression(1, 2), profilePass)
	if res.Reason != identity.ReasonOK || res.Method != "finger+password" || res.NoPassword {
		t.Fatalf("finger and password: %+v", res)
	}
	if r := login("pia", impression(1, 2), "Wrong-Pass-1").Reason; r != identity.ReasonBadCredentials {
		t.Fatalf("finger and wrong password: %v", r)
	}
	if r := login("pia", impression(2, 2), profilePass).Reason; r != identity.ReasonBadCredentials {
		t.Fatalf("wrong finger and right password: %v", r)
	}

	// Not a record: a bad request naming the field.
	_, err := e.svc.SSOFingerLogin(ctx, "pia", []byte("not a record"), "", "browser-1")
	wantReason(t, "unreadable record", err, apierr.InvalidArgument, "FINGER_RECORD_INVALID")

	// Someone without an enrolled finger, and someone set to passwords only.
	other, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "ole", DisplayName: "Ole", OrgID: e.org.ID, Password: profilePass})
	if err != nil {
		t.Fatal(err)
	}
	if r := login("ole", impression(3, 1), "").Reason; r != identity.ReasonNoFingerprint {
		t.Fatalf("nothing enrolled: %v", r)
	}
	if _, err := e.svc.EnrollFinger(admin, other.ID, 1, impression(3, 0)); err != nil {
		t.Fatal(err)
	}
	if r := login("ole", impression(3, 1), "").Reason; r != identity.ReasonOK {
		t.Fatalf("ole's finger: %v", r)
	}
	if _, err := e.svc.UpdateUser(admin, other.ID, identity.UserUpdate{Mask: []string{"password_only"}, PasswordOnly: true}); err != nil {
		t.Fatal(err)
	}
	m = e.mark(t)
	if r := login("ole", impression(3, 1), "").Reason; r != identity.ReasonPasswordOnly {
		t.Fatalf("password only: %v", r)
	}
	e.fingerRecord(t, m, "PASSWORD_ONLY", "failure")
	// A disabled account: refused whatever the finger.
	if _, err := e.svc.SetUserStatus(admin, other.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateUser(admin, other.ID, identity.UserUpdate{Mask: []string{"password_only"}, PasswordOnly: false}); err != nil {
		t.Fatal(err)
	}
	if r := login("ole", impression(3, 1), "").Reason; r != identity.ReasonAccountDisabled {
		t.Fatalf("disabled: %v", r)
	}
}

// TestSSOFingerLoginLocks: wrong fingers count towards the lockout as wrong
// passwords do; then even the right finger is refused.
func TestSSOFingerLoginLocks(t *testing.T) {
	e, _ := fingerLoginEnv(t, identity.Policy{MaxFailures: 3, SourceFailures: 2, LockDuration: time.Hour})
	var last identity.Reason
	for i := range 3 {
		res, err := e.svc.SSOFingerLogin(browserAt(fmt.Sprintf("192.0.2.%d", 10+i)), "pia", impression(10+i, 1), "", "b")
		if err != nil {
			t.Fatal(err)
		}
		last = res.Reason
	}
	if last != identity.ReasonAccountLocked {
		t.Fatalf("after 3 wrong fingers: %v, want locked", last)
	}
	res, err := e.svc.SSOFingerLogin(browserAt("192.0.2.20"), "pia", impression(1, 1), "", "b")
	if err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("right finger on a locked account: %+v %v", res, err)
	}
}

// TestSSOFingerLoginWithTOTP: a person with an authenticator app signs in
// with the finger and the code (the finger alone is half a login); with
// the finger and the password they are asked the code too: the factor
// they chose is not skipped (review sec23 M3).
func TestSSOFingerLoginWithTOTP(t *testing.T) {
	e, _ := fingerLoginEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	key := e.enrol(t)
	ctx := browserAt("192.0.2.9")
	m := e.mark(t)
	res, err := e.svc.SSOFingerLogin(ctx, "pia", impression(1, 1), "", "browser-1")
	if err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken == "" || res.User != nil {
		t.Fatalf("finger step: %+v %v", res, err)
	}
	if d := e.fingerRecord(t, m, "OTP_REQUIRED", "pending"); d["method"] != "finger" {
		t.Fatalf("pending record: %v", d)
	}
	done, err := e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, 0), "browser-1")
	if err != nil || done.Reason != identity.ReasonOK || !done.SecondFactor || done.Method != "finger+totp" || !done.NoPassword {
		t.Fatalf("code step: %+v %v", done, err)
	}
	if d := e.fingerRecord(t, m, "OK", "success"); d["method"] != "finger+totp" {
		t.Fatalf("record of finger and code: %v", d)
	}
	// Without a binding (a page that cannot ask for the code): the verdict only.
	if res, err := e.svc.SSOFingerLogin(ctx, "pia", impression(1, 2), "", ""); err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken != "" {
		t.Fatalf("unbound finger step: %+v %v", res, err)
	}
	m = e.mark(t)
	res, err = e.svc.SSOFingerLogin(ctx, "pia", impression(1, 3), profilePass, "browser-1")
	if err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken == "" || res.User != nil {
		t.Fatalf("finger and password of a person with an app: %+v %v", res, err)
	}
	if d := e.fingerRecord(t, m, "OTP_REQUIRED", "pending"); d["method"] != "finger+password" {
		t.Fatalf("pending record of finger and password: %v", d)
	}
	e.advance(identity.TOTPPeriod)
	done, err = e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, 0), "browser-1")
	if err != nil || done.Reason != identity.ReasonOK || done.Method != "finger+totp" || done.NoPassword {
		t.Fatalf("code after finger and password: %+v %v (the session carries the password: a change ends it)", done, err)
	}
	// A password login is still "password+totp".
	pw, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "browser-1")
	if err != nil || pw.Reason != identity.ReasonOTPRequired {
		t.Fatal(pw, err)
	}
	e.advance(identity.TOTPPeriod)
	done, err = e.svc.SSOLoginOTP(ctx, pw.OTPToken, e.code(key, 0), "browser-1")
	if err != nil || done.Method != "password+totp" || done.NoPassword {
		t.Fatalf("password and code: %+v %v", done, err)
	}
}
