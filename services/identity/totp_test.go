package identity_test

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// TestTOTPVectors: RFC 4226 appendix D (HOTP, 6 digits) and RFC 6238
// appendix B (TOTP, SHA-1, 8 digits, 30 s steps), and the 6-digit code
// of a time is the last 6 digits of the 8-digit one.
func TestTOTPVectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for i, want := range []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"} {
		if got := identity.HOTP(key, uint64(i), 6); got != want {
			t.Errorf("HOTP(%d) = %s, want %s", i, got, want)
		}
	}
	for _, v := range []struct {
		unix int64
		want string
	}{{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"}, {1234567890, "89005924"},
		{2000000000, "69279037"}, {20000000000, "65353130"}} {
		step := identity.TOTPStep(time.Unix(v.unix, 0))
		if got := identity.HOTP(key, uint64(step), 8); got != v.want {
			t.Errorf("TOTP(%d) = %s, want %s", v.unix, got, v.want)
		}
		if got := identity.TOTPCode(key, step); got != v.want[2:] {
			t.Errorf("6-digit TOTP(%d) = %s, want %s", v.unix, got, v.want[2:])
		}
	}
}

// totpEnv is the profile environment with its clock under the test's hand.
type totpEnv struct {
	*profileEnv
}

func newTOTPEnv(t *testing.T, policy identity.Policy) *totpEnv {
	return &totpEnv{newProfileEnv(t, policy)}
}

func (e *totpEnv) now() time.Time {
	e.clk.mu.Lock()
	defer e.clk.mu.Unlock()
	return e.clk.t
}

func (e *totpEnv) advance(d time.Duration) {
	e.clk.mu.Lock()
	defer e.clk.mu.Unlock()
	e.clk.t = e.clk.t.Add(d)
}

// linkedApp creates the application OA and links the profile's person to
// it as account p001 (as admin).
func (e *totpEnv) linkedApp(t *testing.T, admin context.Context) *identity.App {
	t.Helper()
	app, _, err := e.svc.CreateApp(admin, identity.NewApp{Type: "OA", Code: "oa", Name: "OA"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateLink(admin, e.user.ID, app.ID, "p001"); err != nil {
		t.Fatal(err)
	}
	return app
}

// code is the code of key d steps from now.
func (e *totpEnv) code(key []byte, d int64) string {
	return identity.TOTPCode(key, identity.TOTPStep(e.now())+d)
}

// kimPass is the password of kim, the administrator e.kim makes.
const kimPass = "Harbour-Admin-Pass-1"

// kim makes an administrator with a password of their own (kimPass).
func (e *totpEnv) kim(t *testing.T, admin context.Context) *identity.User {
	t.Helper()
	kim, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "kim", DisplayName: "Kim", OrgID: e.org.ID,
		Password: kimPass, IsAdmin: true, OwnPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	return kim
}

// recorded reports whether the outbox holds a record of api with reason
// and result.
func (e *totpEnv) recorded(t *testing.T, api, reason, result string) bool {
	t.Helper()
	for _, d := range auditRecords(t, e.outbox(t, 0), api) {
		if d.Reason == reason && d.Result == result {
			return true
		}
	}
	return false
}

// enrol sets up an authenticator app for the profile's person and returns
// its key; the clock then moves to the next step (the enrolment's code is
// used up).
func (e *totpEnv) enrol(t *testing.T) []byte {
	t.Helper()
	return e.enrolUser(t, e.user.ID, profilePass)
}

// enrolUser sets up an authenticator app for person id (password pass) as
// the profile page does and returns its key; the clock then moves to the
// next step.
func (e *totpEnv) enrolUser(t *testing.T, id, pass string) []byte {
	t.Helper()
	ctx := browserAt("192.0.2.1")
	en, err := e.svc.BeginTOTPEnrolment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ConfirmTOTPEnrolment(ctx, id, pass, en.Token, e.code(key, 0)); err != nil {
		t.Fatal(err)
	}
	e.advance(identity.TOTPPeriod)
	return key
}

func TestTOTPEnrolment(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{})
	ctx := browserAt("192.0.2.1")
	en, err := e.svc.BeginTOTPEnrolment(ctx, e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(en.URI)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/UIAS:pia" {
		t.Fatalf("uri %q: %v", en.URI, err)
	}
	q := u.Query()
	if q.Get("secret") != en.Secret || q.Get("issuer") != "UIAS" || q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Fatalf("uri query %v", q)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if err != nil || len(key) != 20 {
		t.Fatalf("secret %q: %v", en.Secret, err)
	}
	enrolled := func() bool {
		p, err := e.svc.GetOwnProfile(ctx, e.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		return !p.TOTPEnrolledAt.IsZero()
	}
	// A wrong first code saves nothing (and costs no password check).
	wrong := e.code(key, 3)
	_, err = e.svc.ConfirmTOTPEnrolment(ctx, e.user.ID, profilePass, en.Token, wrong)
	wantReason(t, "wrong first code", err, apierr.InvalidArgument, "TOTP_CODE_WRONG")
	// A wrong password neither.
	_, err = e.svc.ConfirmTOTPEnrolment(ctx, e.user.ID, "Wrong-Pass-1", en.Token, e.code(key, 0))
	wantReason(t, "wrong password", err, apierr.FailedPrecondition, "VERIFICATION_FAILED")
	// Another person's token, a forged one.
	other, err := e.svc.CreateUser(func() context.Context { c, _ := adminCtx(t, e.svc, "10.0.0.9", "r-o"); return c }(),
		identity.NewUser{LoginName: "ola", DisplayName: "Ola", OrgID: e.org.ID, Password: profilePass})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ConfirmTOTPEnrolment(ctx, other.ID, profilePass, en.Token, e.code(key, 0))
	wantReason(t, "another person's token", err, apierr.FailedPrecondition, "TOTP_ENROLMENT_EXPIRED")
	_, err = e.svc.ConfirmTOTPEnrolment(ctx, e.user.ID, profilePass, "k1:"+strings.Repeat("A", 40), e.code(key, 0))
	wantReason(t, "forged token", err, apierr.FailedPrecondition, "TOTP_ENROLMENT_EXPIRED")
	if enrolled() {
		t.Fatal("enrolled after refusals")
	}
	m := e.mark(t)
	// The right code (of the step before: a phone a little behind) saves it.
	p, err := e.svc.ConfirmTOTPEnrolment(ctx, e.user.ID, profilePass, en.Token, e.code(key, -1))
	if err != nil || p.TOTPEnrolledAt.IsZero() {
		t.Fatalf("confirm: %+v %v", p, err)
	}
	rows := e.outbox(t, m)
	actor := "user:" + e.user.ID
	if rec := audit(t, rows, "user.totp.enrol"); rec.Actor != actor || rec.Subject != actor || rec.Result != "success" {
		t.Errorf("user.totp.enrol audit %+v", rec)
	}
	// Sealed at rest: the row holds neither the base32 secret nor the key.
	var enc string
	if err := e.db.QueryRowContext(context.Background(), "SELECT secret_enc FROM user_totp WHERE user_id = ?", e.user.ID).Scan(&enc); err != nil {
		t.Fatal(err)
	}
	if enc == "" || strings.Contains(enc, en.Secret) || strings.Contains(enc, string(key)) || !strings.Contains(enc, ":") {
		t.Fatalf("stored secret %q is not sealed", enc)
	}
	if b, err := e.sealer.Open(enc, []byte("user.totp:"+e.user.ID)); err != nil || string(b) != string(key) {
		t.Fatalf("sealed secret opens to %x, %v", b, err)
	}
	e.noneContain(t, "TOTP secret", en.Secret, en.Token)
	for _, l := range e.logs.All() {
		line := l.Message
		for k, v := range l.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		if strings.Contains(line, en.Secret) {
			t.Errorf("log line with the secret: %s", line)
		}
	}
	// Once: another set-up is refused until this one is removed; the
	// token is of no use any more.
	_, err = e.svc.BeginTOTPEnrolment(ctx, e.user.ID)
	wantReason(t, "second enrolment", err, apierr.FailedPrecondition, "TOTP_ALREADY_ENROLLED")
	_, err = e.svc.ConfirmTOTPEnrolment(ctx, e.user.ID, profilePass, en.Token, e.code(key, 0))
	wantReason(t, "token again", err, apierr.FailedPrecondition, "TOTP_ALREADY_ENROLLED")
	// The enrolment's code does not sign in (its step is used).
	res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "b1")
	if err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken == "" || res.User != nil {
		t.Fatalf("password step: %+v %v", res, err)
	}
	res, err = e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, -1), "b1")
	if err != nil || res.Reason != identity.ReasonBadCredentials {
		t.Fatalf("the enrolment's code at login: %+v %v", res, err)
	}
}

func TestTOTPEnrolmentExpires(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{})
	ctx := browserAt("192.0.2.1")
	en, err := e.svc.BeginTOTPEnrolment(ctx, e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	e.advance(identity.TOTPEnrolTTL + time.Second)
	_, err = e.svc.ConfirmTOTPEnrolment(ctx, e.user.ID, profilePass, en.Token, e.code(key, 0))
	wantReason(t, "expired enrolment", err, apierr.FailedPrecondition, "TOTP_ENROLMENT_EXPIRED")
}

// TestSSOLoginWithTOTP: the password step of an enrolled person opens
// nothing by itself; the code completes it once; skew of one step either
// way; the half-done login expires, is bound to its browser, and is of one
// use.
func TestSSOLoginWithTOTP(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	key := e.enrol(t)
	ctx := browserAt("192.0.2.7")
	half := func() string {
		t.Helper()
		res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "browser-1")
		if err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken == "" || res.User != nil {
			t.Fatalf("password step: %+v %v", res, err)
		}
		return res.OTPToken
	}
	otp := func(tok, code, binding string) identity.Reason {
		t.Helper()
		res, err := e.svc.SSOLoginOTP(ctx, tok, code, binding)
		if err != nil {
			t.Fatalf("code step: %v", err)
		}
		if (res.Reason == identity.ReasonOK) != (res.User != nil) || res.SecondFactor != (res.Reason == identity.ReasonOK) {
			t.Fatalf("code step result %+v", res)
		}
		return res.Reason
	}
	// A wrong password gives no token; the page without a binding gets
	// the verdict only.
	if res, err := e.svc.SSOLoginBound(ctx, "pia", "Wrong-Pass-1", "browser-1"); err != nil || res.Reason != identity.ReasonBadCredentials || res.OTPToken != "" {
		t.Fatalf("wrong password: %+v %v", res, err)
	}
	if res, err := e.svc.SSOLogin(ctx, "pia", profilePass); err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken != "" || res.User != nil {
		t.Fatalf("unbound login: %+v %v", res, err)
	}

	m := e.mark(t)
	tok := half()
	if r := otp(tok, e.code(key, 0), "browser-2"); r != identity.ReasonOTPExpired {
		t.Fatalf("another browser: %v", r)
	}
	if r := otp(tok, e.code(key, 0), ""); r != identity.ReasonOTPExpired {
		t.Fatalf("no binding: %v", r)
	}
	if r := otp(tok, e.code(key, 0), "browser-1"); r != identity.ReasonOK {
		t.Fatalf("right code: %v", r)
	}
	rows := e.outbox(t, m)
	actor := "user:" + e.user.ID
	var pending, ok int
	for _, r := range rows {
		if r.Subject != "uias.audit.identity.sso.login" {
			continue
		}
		switch {
		case strings.Contains(string(r.Payload), `"result":"pending"`) && strings.Contains(string(r.Payload), "OTP_REQUIRED"):
			pending++
		case strings.Contains(string(r.Payload), `"result":"success"`) && strings.Contains(string(r.Payload), "password+totp") &&
			strings.Contains(string(r.Payload), actor):
			ok++
		}
	}
	if pending != 1 || ok != 1 {
		t.Errorf("sso.login records: %d pending, %d success with password+totp, want 1 and 1", pending, ok)
	}
	// One use: the token again, even with the next code, is expired; the
	// same code with a new token is a replay.
	e.advance(identity.TOTPPeriod)
	if r := otp(tok, e.code(key, 0), "browser-1"); r != identity.ReasonOTPExpired {
		t.Fatalf("token used twice: %v", r)
	}
	tok = half()
	if r := otp(tok, e.code(key, -1), "browser-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("replayed code: %v", r)
	}
	// Skew: one step either way, not two.
	for _, c := range []struct {
		d    int64
		want identity.Reason
	}{{-2, identity.ReasonBadCredentials}, {2, identity.ReasonBadCredentials}, {1, identity.ReasonOK}} {
		tok := half()
		if r := otp(tok, e.code(key, c.d), "browser-1"); r != c.want {
			t.Fatalf("code %+d steps: %v, want %v", c.d, r, c.want)
		}
	}
	// The code of the step before the now-used +1 is refused (steps only
	// rise), the one after it passes.
	e.advance(identity.TOTPPeriod)
	if r := otp(half(), e.code(key, -1), "browser-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("an older step after a later one: %v", r)
	}
	if r := otp(half(), e.code(key, 1), "browser-1"); r != identity.ReasonOK {
		t.Fatalf("next step: %v", r)
	}
	// Expiry.
	tok = half()
	e.advance(identity.OTPLoginTTL + time.Second)
	if r := otp(tok, e.code(key, 0), "browser-1"); r != identity.ReasonOTPExpired {
		t.Fatalf("expired half login: %v", r)
	}
	// Forged.
	if r := otp("k1:AAAA", e.code(key, 0), "browser-1"); r != identity.ReasonOTPExpired {
		t.Fatalf("forged token: %v", r)
	}
}

// TestOTPWrongCodesLock: a wrong code is a counted failed login, a right
// password in between does not clear the count, and the policy's lock
// falls.
func TestOTPWrongCodesLock(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{MaxFailures: 3, SourceFailures: 1, LockDuration: time.Hour})
	key := e.enrol(t)
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		ctx := browserAt(ip)
		res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "b")
		if err != nil || res.Reason != identity.ReasonOTPRequired {
			t.Fatalf("round %d password step: %+v %v", i, res, err)
		}
		res, err = e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, 5), "b")
		want := identity.ReasonBadCredentials
		if i == 2 {
			want = identity.ReasonAccountLocked
		}
		if err != nil || res.Reason != want {
			t.Fatalf("round %d wrong code: %+v %v, want %v", i, res, err, want)
		}
		admin, _ := adminCtx(t, e.svc, "10.0.0.9", "r")
		u, err := e.svc.GetUser(admin, e.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 && u.FailedCount != i+1 {
			t.Fatalf("round %d: failed count %d, want %d (a right password must not clear it)", i, u.FailedCount, i+1)
		}
		if i == 2 && !u.Locked(e.now()) {
			t.Fatalf("not locked after 3 wrong codes: %+v", u)
		}
	}
	// Locked: the right code does not pass either.
	ctx := browserAt("198.51.100.4")
	res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "b")
	if err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("locked password step: %+v %v", res, err)
	}
}

// TestAuthenticateWithOTP: an application checks password and code.
func TestAuthenticateWithOTP(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "r-app")
	app := e.linkedApp(t, admin)
	other, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "ola", DisplayName: "Ola", OrgID: e.org.ID, Password: profilePass})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateLink(admin, other.ID, app.ID, "o001"); err != nil {
		t.Fatal(err)
	}
	actx := caller.With(context.Background(), &caller.Caller{App: app.CallerApp(), RequestID: "r1"})
	auth := func(acct, pw, otp string) identity.Reason {
		t.Helper()
		res, err := e.svc.Authenticate(actx, identity.AuthRequest{AppUserID: acct, Password: pw, AuthType: identity.AuthPassword, OTP: otp})
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		return res.Reason
	}
	// Before enrolment: a code is NO_OTP (after the password).
	if r := auth("p001", profilePass, "123456"); r != identity.ReasonNoOTP {
		t.Fatalf("code without enrolment: %v", r)
	}
	key := e.enrol(t)
	for _, c := range []struct {
		name     string
		pw, code string
		want     identity.Reason
	}{
		{"password alone (unchanged)", profilePass, "", identity.ReasonOK},
		{"password and code", profilePass, e.code(key, 0), identity.ReasonOK},
		{"the code again", profilePass, e.code(key, 0), identity.ReasonBadCredentials},
		{"a wrong code", profilePass, e.code(key, 4), identity.ReasonBadCredentials},
		{"a wrong password with the next code", "Wrong-Pass-1", e.code(key, 1), identity.ReasonBadCredentials},
		{"then the next code", profilePass, e.code(key, 1), identity.ReasonOK},
	} {
		if r := auth("p001", c.pw, c.code); r != c.want {
			t.Fatalf("%s: %v, want %v", c.name, r, c.want)
		}
	}
	if r := auth("o001", profilePass, "123456"); r != identity.ReasonNoOTP {
		t.Fatalf("another person without enrolment: %v", r)
	}
	_, err = e.svc.Authenticate(actx, identity.AuthRequest{AppUserID: "p001", Password: profilePass, Fingerprint: []byte{1},
		AuthType: identity.AuthPasswordFingerprint, OTP: "123456"})
	if reasonOf(err) != apierr.ReasonBadRequest {
		t.Fatalf("otp with a fingerprint auth type: %v", err)
	}
	// A malformed code is a bad request naming otp (-5), never a counted guess.
	for _, bad := range []string{"12345", "abcdef", "1234567"} {
		_, err = e.svc.Authenticate(actx, identity.AuthRequest{AppUserID: "p001", Password: profilePass, AuthType: identity.AuthPassword, OTP: bad})
		if ae, ok := apierr.As(err); !ok || ae.Reason != apierr.ReasonBadRequest || ae.Meta[apierr.MetaField] != "otp" {
			t.Fatalf("otp %q: %v", bad, err)
		}
	}
}

// TestTOTPRemoveAndReset: the person removes their app with the password;
// an administrator resets it; audited; the password alone signs in again.
func TestTOTPRemoveAndReset(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{})
	ctx := browserAt("192.0.2.1")
	key := e.enrol(t)
	_, err := e.svc.RemoveOwnTOTP(ctx, e.user.ID, "Wrong-Pass-1", e.code(key, 0))
	wantReason(t, "remove with a wrong password", err, apierr.FailedPrecondition, "VERIFICATION_FAILED")
	// Both factors: the password alone, or with a wrong code, removes nothing.
	_, err = e.svc.RemoveOwnTOTP(ctx, e.user.ID, profilePass, "")
	wantReason(t, "remove without the code", err, apierr.InvalidArgument, "TOTP_CODE_WRONG")
	_, err = e.svc.RemoveOwnTOTP(ctx, e.user.ID, profilePass, e.code(key, 6))
	wantReason(t, "remove with a wrong code", err, apierr.InvalidArgument, "TOTP_CODE_WRONG")
	if _, at, err := e.svc.UserWithTOTP(context.Background(), e.user.ID); err != nil || at.IsZero() { // cached
		t.Fatalf("enrolled at %v %v", at, err)
	}
	m := e.mark(t)
	p, err := e.svc.RemoveOwnTOTP(ctx, e.user.ID, profilePass, e.code(key, 0))
	if err != nil || !p.TOTPEnrolledAt.IsZero() {
		t.Fatalf("remove: %+v %v", p, err)
	}
	if rec := audit(t, e.outbox(t, m), "user.totp.remove"); rec.Actor != "user:"+e.user.ID {
		t.Errorf("user.totp.remove audit %+v", rec)
	}
	_, err = e.svc.RemoveOwnTOTP(ctx, e.user.ID, profilePass, e.code(key, 1))
	wantReason(t, "remove none", err, apierr.NotFound, "TOTP_NOT_ENROLLED")

	admin, adm := adminCtx(t, e.svc, "10.0.0.9", "r-reset")
	// The administrator's read (GetUser) is served from the user cache,
	// which holds the enrolment with the user: enrolling, removing and
	// resetting drop it, so the read never shows the state before.
	enrolledAt := func(when string, want bool) {
		t.Helper()
		_, at, err := e.svc.UserWithTOTP(admin, e.user.ID)
		if err != nil || at.IsZero() == want {
			t.Fatalf("%s: enrolled at %v %v, want enrolled %v", when, at, err, want)
		}
	}
	enrolledAt("after removal", false)
	e.enrol(t)
	enrolledAt("enrolled again", true)
	m = e.mark(t)
	if _, err := e.svc.ResetUserTOTP(admin, e.user.ID); err != nil {
		t.Fatal(err)
	}
	if rec := audit(t, e.outbox(t, m), "user.totp.reset"); rec.Actor != "user:"+adm.ID || rec.Subject != "user:"+e.user.ID || rec.Result != "success" {
		t.Errorf("user.totp.reset audit %+v", rec)
	}
	enrolledAt("after reset", false)
	_, err = e.svc.ResetUserTOTP(admin, e.user.ID)
	wantReason(t, "reset none", err, apierr.NotFound, "TOTP_NOT_ENROLLED")
	if res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "b"); err != nil || res.Reason != identity.ReasonOK || res.User == nil {
		t.Fatalf("password login after reset: %+v %v", res, err)
	}
}

// TestReencryptTOTPSecrets: a key rotation's re-encryption moves the
// authenticator app secrets to the new data key (counted in Remaining),
// and with the old key retired the app still signs in.
func TestReencryptTOTPSecrets(t *testing.T) {
	k := newKeyed(t)
	svc, _ := k.instance(t)
	w := setupOn(t, svc, nil)
	ctx := caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr("192.0.2.5"), RequestID: "r-k"})
	en, err := svc.BeginTOTPEnrolment(ctx, w.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if _, err := svc.ConfirmTOTPEnrolment(ctx, w.user.ID, "First-Pass-1", en.Token,
		identity.TOTPCode(key, identity.TOTPStep(time.Now())-1)); err != nil {
		t.Fatal(err)
	}
	st, err := svc.RotateKeys(context.Background())
	if err != nil || st.ActiveKeyID != "d2" || st.OnOlderKeys != 1 {
		t.Fatalf("after rotate: %+v %v (want the secret on an older key)", st, err)
	}
	r, err := svc.ReencryptData(context.Background(), 0)
	if err != nil || r.Reencrypted != 1 || r.Failed != 0 || r.Remaining != 0 {
		t.Fatalf("re-encrypt: %+v %v", r, err)
	}
	var enc string
	if err := k.db.QueryRowContext(context.Background(), "SELECT secret_enc FROM user_totp").Scan(&enc); err != nil || !strings.HasPrefix(enc, "d2:") {
		t.Fatalf("secret sealed as %.3q, %v", enc, err)
	}
	if _, err := k.db.ExecContext(context.Background(), "DELETE FROM data_keys WHERE id = 'd1'"); err != nil {
		t.Fatal(err)
	}
	fresh, _ := k.instance(t)
	res, err := fresh.SSOLoginBound(ctx, "mia", "First-Pass-1", "b")
	if err != nil || res.Reason != identity.ReasonOTPRequired {
		t.Fatalf("password step: %+v %v", res, err)
	}
	res, err = fresh.SSOLoginOTP(ctx, res.OTPToken, identity.TOTPCode(key, identity.TOTPStep(time.Now())+1), "b")
	if err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("code with the old key retired: %+v %v", res, err)
	}
}

// TestAuthenticateRequiresOTPPolicy: with identity.policy.
// authenticate_requires_otp a password Authenticate of a person with an
// app needs the code (OTP_REQUIRED without it, after a right password);
// a person without an app is checked on the password alone.
func TestAuthenticateRequiresOTPPolicy(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40, AuthenticateRequiresOTP: true})
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "r-app")
	app := e.linkedApp(t, admin)
	actx := caller.With(context.Background(), &caller.Caller{App: app.CallerApp(), RequestID: "r1"})
	auth := func(pw, otp string) identity.Reason {
		t.Helper()
		res, err := e.svc.Authenticate(actx, identity.AuthRequest{AppUserID: "p001", Password: pw, AuthType: identity.AuthPassword, OTP: otp})
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		if (res.Reason == identity.ReasonOK) != (res.User != nil) {
			t.Fatalf("result %+v", res)
		}
		return res.Reason
	}
	if r := auth(profilePass, ""); r != identity.ReasonOK {
		t.Fatalf("no app, password alone: %v", r)
	}
	key := e.enrol(t)
	for _, c := range []struct {
		name     string
		pw, code string
		want     identity.Reason
	}{
		{"password alone", profilePass, "", identity.ReasonOTPRequired},
		{"a wrong password alone", "Wrong-Pass-1", "", identity.ReasonBadCredentials},
		{"password and code", profilePass, e.code(key, 0), identity.ReasonOK},
	} {
		if r := auth(c.pw, c.code); r != c.want {
			t.Fatalf("%s: %v, want %v", c.name, r, c.want)
		}
	}
	if identity.ReasonOTPRequired.LegacyCode() != -1 {
		t.Fatal("OTP_REQUIRED is not legacy -1")
	}
	// The application's fingerprint bypass takes the password instead of
	// a finger: a password alone, so it asks for the code too (it was a
	// way around the policy).
	if _, err := e.svc.SetFingerprintBypass(admin, app.ID, true, "scanners down"); err != nil {
		t.Fatal(err)
	}
	bypass := func(pw string) identity.Reason {
		t.Helper()
		res, err := e.svc.Authenticate(actx, identity.AuthRequest{AppUserID: "p001", Password: pw, AuthType: identity.AuthFingerprint})
		if err != nil {
			t.Fatalf("authenticate (bypass): %v", err)
		}
		if res.User != nil && res.Reason != identity.ReasonOK {
			t.Fatalf("result %+v", res)
		}
		return res.Reason
	}
	m := e.mark(t)
	if r := bypass(profilePass); r != identity.ReasonOTPRequired {
		t.Fatalf("bypass, enrolled, password alone: %v, want OTP_REQUIRED", r)
	}
	if rec := audit(t, e.outbox(t, m), "authenticate.finger_bypass"); rec.Result != "pending" || rec.Reason != "OTP_REQUIRED" {
		t.Errorf("bypass record %+v", rec)
	}
	if r := bypass("Wrong-Pass-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("bypass, wrong password: %v", r)
	}
	if r := auth(profilePass, e.code(key, 1)); r != identity.ReasonOK {
		t.Fatalf("password and code after the bypass's refusal: %v", r)
	}
}

// TestReplicaOfAuthenticatorApp: an app set up at the person's home centre
// reaches the centre holding their replica (sealed as the home stored it),
// where the password alone then asks for the code; its removal reaches it
// too; the replica centre sets up none for the person.
func TestReplicaOfAuthenticatorApp(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-t", "Bureau T", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	svc2 := l2.with(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := l1.with(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "pilot", DisplayName: "Pilot", OrgID: bureau.ID,
		Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	br := browserAt("192.0.2.44")
	en, err := svc2.BeginTOTPEnrolment(br, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if _, err := svc2.ConfirmTOTPEnrolment(br, u.ID, "Harbour-Pass-1", en.Token, identity.TOTPCode(key, identity.TOTPStep(time.Now()))); err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	res, err := svc1.SSOLoginBound(br, "pilot", "Harbour-Pass-1", "b")
	if err != nil || res.Reason != identity.ReasonOTPRequired || res.User != nil {
		t.Fatalf("password login at the replica centre: %+v %v", res, err)
	}
	var enc2, enc1 string
	_ = l2.db.QueryRowContext(ctx, "SELECT secret_enc FROM user_totp WHERE user_id = ?", u.ID).Scan(&enc2)
	_ = l1.db.QueryRowContext(ctx, "SELECT secret_enc FROM user_totp WHERE user_id = ?", u.ID).Scan(&enc1)
	if enc1 == "" || enc1 != enc2 {
		t.Fatalf("replica's sealed secret %q, home's %q", enc1, enc2)
	}
	_, err = svc1.BeginTOTPEnrolment(br, u.ID)
	wantReason(t, "set-up at the replica centre", err, apierr.FailedPrecondition, "HOME_CENTRE_ELSEWHERE")

	admin2b, _ := adminCtx(t, svc2, "10.0.0.2", "l2b")
	if _, err := svc2.ResetUserTOTP(admin2b, u.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if res, err := svc1.SSOLoginBound(br, "pilot", "Harbour-Pass-1", "b"); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("password login at the replica centre after the reset: %+v %v", res, err)
	}
}

// TestSSOChangePasswordWithTOTP: a person with an app who is not signed in
// changes the password only with the app's code too (the password alone
// would replace the password); signed in (a session kept), the password
// suffices as before.
func TestSSOChangePasswordWithTOTP(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{MinLength: 8, MaxFailures: 50, SourceFailures: 40})
	key := e.enrol(t)
	ctx := browserAt("192.0.2.9")
	err := e.svc.SSOChangePassword(ctx, "pia", profilePass, "Brand-New-Pass-77", "", "")
	if ae := wantReason(t, "no code", err, apierr.FailedPrecondition, "VERIFICATION_FAILED"); ae.Meta["verdict"] != "OTP_REQUIRED" {
		t.Fatalf("verdict %v", ae.Meta)
	}
	err = e.svc.SSOChangePassword(ctx, "pia", profilePass, "Brand-New-Pass-77", "", e.code(key, 4))
	if ae := wantReason(t, "wrong code", err, apierr.FailedPrecondition, "VERIFICATION_FAILED"); ae.Meta["verdict"] != "BAD_CREDENTIALS" {
		t.Fatalf("verdict %v", ae.Meta)
	}
	if res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "b"); err != nil || res.Reason != identity.ReasonOTPRequired {
		t.Fatalf("the password was changed without the code: %+v %v", res, err)
	}
	if err := e.svc.SSOChangePassword(ctx, "pia", profilePass, "Brand-New-Pass-77", "", e.code(key, 0)); err != nil {
		t.Fatalf("with the code: %v", err)
	}
	// Signed in: the session's holder needs no code.
	if err := e.svc.SSOChangePassword(ctx, "pia", "Brand-New-Pass-77", "Other-New-Pass-88", "session-1", ""); err != nil {
		t.Fatalf("signed in: %v", err)
	}
	if res, err := e.svc.SSOLoginBound(ctx, "pia", "Other-New-Pass-88", "b"); err != nil || res.Reason != identity.ReasonOTPRequired {
		t.Fatalf("login with the new password: %+v %v", res, err)
	}
}

// An administrator with an authenticator app logs in with password and
// code: the password alone gets no token (TOTP_CODE_REQUIRED, checked
// before a password change too), a wrong or used code is refused like a
// wrong password and counted, the right code gets the token.
func TestAdminLoginWithAuthenticatorApp(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{})
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "r-a")
	kim := e.kim(t, admin)
	ctx := browserAt("192.0.2.7")
	// Without an app: the password alone, as before.
	if tok, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", ""); err != nil || tok == "" {
		t.Fatalf("without an app: %v", err)
	}
	key := e.enrolUser(t, kim.ID, kimPass)

	_, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", "")
	wantReason(t, "password alone", err, apierr.FailedPrecondition, identity.ReasonAdminOTPRequired)
	// Nor does a new password go in without the code.
	_, _, _, err = e.svc.AdminLoginOTP(ctx, "kim", kimPass, "Harbour-Admin-Pass-2", "")
	wantReason(t, "password change without the code", err, apierr.FailedPrecondition, identity.ReasonAdminOTPRequired)
	_, _, _, err = e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", e.code(key, 4))
	wantReason(t, "wrong code", err, apierr.Unauthenticated, "BAD_ADMIN_LOGIN")
	if u, _ := e.svc.GetUser(context.Background(), kim.ID); u.FailedCount == 0 {
		t.Fatal("a wrong code was not counted")
	}
	code := e.code(key, 0)
	tok, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", code)
	if err != nil || tok == "" {
		t.Fatalf("password and code: %v", err)
	}
	_, _, _, err = e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", code)
	wantReason(t, "the same code again", err, apierr.Unauthenticated, "BAD_ADMIN_LOGIN")
	// A wrong password with a right code: refused before the code.
	e.advance(identity.TOTPPeriod)
	_, _, _, err = e.svc.AdminLoginOTP(ctx, "kim", "Wrong-Pass-9", "", e.code(key, 0))
	wantReason(t, "wrong password, right code", err, apierr.Unauthenticated, "BAD_ADMIN_LOGIN")
	// The audit says what happened: incomplete for the missing code.
	if !e.recorded(t, "admin.login", identity.ReasonAdminOTPRequired, "incomplete") {
		t.Fatal("no incomplete admin.login record for the missing code")
	}
}

// With identity.policy.admin_requires_otp an administrator without an
// authenticator app gets no token for the right password
// (ADMIN_TOTP_SETUP_REQUIRED, recorded as incomplete, failures not
// cleared); a wrong password stays a wrong password; once they set up an
// app on their profile, password and code log them in.
func TestAdminLoginRequiresAuthenticatorApp(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{AdminRequiresOTP: true})
	kim := e.kim(t, bootAdminCtx(t, e.evEnv))
	ctx := browserAt("192.0.2.7")
	_, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", "Wrong-Pass-9", "", "")
	wantReason(t, "wrong password", err, apierr.Unauthenticated, "BAD_ADMIN_LOGIN")
	tok, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", "")
	wantReason(t, "an administrator without an app", err, apierr.FailedPrecondition, identity.ReasonAdminOTPSetup)
	if tok != "" {
		t.Fatal("a token for the password alone")
	}
	if ae, _ := apierr.As(err); ae == nil || !strings.Contains(ae.Message, "/cas/profile/totp") {
		t.Fatalf("the refusal does not say where to set up an app: %v", err)
	}
	if u, _ := e.svc.GetUser(context.Background(), kim.ID); u.FailedCount == 0 {
		t.Fatal("the right password without the second factor cleared the failed count")
	}
	// the profile page's set-up (the portal's sign-in is the password alone)
	key := e.enrolUser(t, kim.ID, kimPass)
	_, _, _, err = e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", "")
	wantReason(t, "password alone after the set-up", err, apierr.FailedPrecondition, identity.ReasonAdminOTPRequired)
	if tok, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", e.code(key, 0)); err != nil || tok == "" {
		t.Fatalf("password and code: %v", err)
	}
	if !e.recorded(t, "admin.login", identity.ReasonAdminOTPSetup, "incomplete") {
		t.Fatal("no incomplete admin.login record for the missing authenticator app")
	}
}

// Someone who knows the password cannot guess codes at length: past
// MaxTOTPCodeFailures codes without a right one (from any address, with
// the login gate's own lockout far away), codes are refused for
// TOTPCodeBlock(1), the right one included; parallel guesses count as they
// are admitted; a right code after the block resets the count, and each
// further block is twice as long.
func TestTOTPCodeGuessesAreBlocked(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{MaxFailures: 1000, SourceFailures: 1000})
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "r-app")
	app := e.linkedApp(t, admin)
	key := e.enrol(t)
	// An application's ChangePassword does not replace an enrolled
	// person's password with the old one alone.
	cctx := caller.With(context.Background(), &caller.Caller{App: app.CallerApp(), RequestID: "rc"})
	wantReason(t, "ChangePassword", e.svc.ChangePassword(cctx, "p001", profilePass, "Another-Pass-Word-9"),
		apierr.FailedPrecondition, identity.ReasonChangeNeedsOTP)
	n := 0
	auth := func(pw, otp string) identity.Reason {
		t.Helper()
		n++
		actx := caller.With(context.Background(), &caller.Caller{App: app.CallerApp(), RequestID: fmt.Sprint("r", n),
			ClientIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(n)})})
		res, err := e.svc.Authenticate(actx, identity.AuthRequest{AppUserID: "p001", Password: pw, AuthType: identity.AuthPassword, OTP: otp})
		if err != nil {
			t.Fatalf("authenticate: %v", err)
		}
		return res.Reason
	}
	for i := range identity.MaxTOTPCodeFailures {
		if r := auth(profilePass, e.code(key, 5)); r != identity.ReasonBadCredentials {
			t.Fatalf("wrong code %d: %v", i, r)
		}
		// A password-only success (allowed by default) clears the login
		// gate's failures, not the app's count.
		if r := auth(profilePass, ""); r != identity.ReasonOK {
			t.Fatalf("password only: %v", r)
		}
	}
	if r := auth(profilePass, e.code(key, 0)); r != identity.ReasonAccountLocked {
		t.Fatalf("the right code past the limit: %v, want ACCOUNT_LOCKED", r)
	}
	e.advance(identity.TOTPCodeBlock(1) + time.Second)
	if r := auth(profilePass, e.code(key, 0)); r != identity.ReasonOK {
		t.Fatalf("the right code after the block: %v", r)
	}
	// Reset: a full run again; parallel guesses count as they come in.
	e.advance(identity.TOTPPeriod)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[identity.Reason]int{}
	for i := range 20 {
		wg.Go(func() {
			actx := caller.With(context.Background(), &caller.Caller{App: app.CallerApp(), RequestID: fmt.Sprint("p", i),
				ClientIP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})})
			res, err := e.svc.Authenticate(actx, identity.AuthRequest{AppUserID: "p001", Password: profilePass,
				AuthType: identity.AuthPassword, OTP: e.code(key, 7)})
			if err != nil {
				t.Errorf("parallel: %v", err)
				return
			}
			mu.Lock()
			got[res.Reason]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if got[identity.ReasonBadCredentials] > identity.MaxTOTPCodeFailures || got[identity.ReasonOK] != 0 {
		t.Fatalf("20 parallel wrong codes: %v (at most %d checked)", got, identity.MaxTOTPCodeFailures)
	}
	if identity.TOTPCodeBlock(2) != 2*identity.TOTPCodeBlock(1) || identity.TOTPCodeBlock(30) != 24*time.Hour {
		t.Fatalf("blocks %v %v", identity.TOTPCodeBlock(2), identity.TOTPCodeBlock(30))
	}
}

// admitDown is the store with its count of authenticator codes failing as
// storage that is down does (while down is set).
type admitDown struct {
	identity.Store
	down *atomic.Bool
}

func (s admitDown) AdmitTOTPCode(ctx context.Context, userID string, now time.Time, max int, block func(int) time.Duration) (bool, time.Time, error) {
	if s.down.Load() {
		return false, time.Time{}, store.ErrUnavailable.WithCause(errors.New("sql: database is closed"))
	}
	return s.Store.AdmitTOTPCode(ctx, userID, now, max, block)
}

// With the code count's storage down, a code is neither checked nor
// counted: the sign-in answers STORAGE_UNAVAILABLE (no verdict, no
// session), and once storage is back the same right code signs in.
func TestOTPCodeCountStorageDown(t *testing.T) {
	var down atomic.Bool
	e := &totpEnv{newProfileEnvWith(t, identity.Policy{}, func(d *identity.Deps) {
		d.Store = admitDown{Store: d.Store, down: &down}
	})}
	key := e.enrol(t)
	ctx := browserAt("192.0.2.1")
	res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "b")
	if err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken == "" {
		t.Fatalf("password step: %+v %v", res, err)
	}
	down.Store(true)
	_, err = e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, 0), "b")
	wantReason(t, "code with storage down", err, apierr.Unavailable, store.ReasonUnavailable)
	if strings.Contains(apierr.ToStatus(err).Error(), "sql") {
		t.Errorf("the answer names internals: %v", apierr.ToStatus(err))
	}
	down.Store(false)
	got, err := e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, 0), "b")
	if err != nil || got.Reason != identity.ReasonOK || got.User == nil {
		t.Fatalf("the same code once storage is back: %+v %v", got, err)
	}
}

// A code that is not 6 digits at the sign-in pages' second step is a bad
// request naming the field, not a wrong code: it neither counts towards
// the app's block nor uses up the half-done login.
func TestSSOLoginOTPMalformedCode(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{})
	key := e.enrol(t)
	ctx := browserAt("192.0.2.1")
	res, err := e.svc.SSOLoginBound(ctx, "pia", profilePass, "b")
	if err != nil || res.Reason != identity.ReasonOTPRequired {
		t.Fatalf("password step: %+v %v", res, err)
	}
	for range identity.MaxTOTPCodeFailures + 1 {
		for _, bad := range []string{"12a456", "12345", "1234567", ""} {
			_, err := e.svc.SSOLoginOTP(ctx, res.OTPToken, bad, "b")
			wantReason(t, "code "+bad, err, apierr.InvalidArgument, apierr.ReasonBadRequest)
			if ae, _ := apierr.As(err); ae == nil || ae.Meta[apierr.MetaField] != "code" {
				t.Fatalf("code %q: %v, want the field code named", bad, err)
			}
		}
	}
	if got, err := e.svc.SSOLoginOTP(ctx, res.OTPToken, e.code(key, 0), "b"); err != nil || got.Reason != identity.ReasonOK {
		t.Fatalf("the right code after malformed ones: %+v %v", got, err)
	}
}

// An administrator whose own level asks two factors (or a certificate)
// logs in to the console with password and code, as with
// admin_requires_otp (review sec26 M1): the password alone is no login.
func TestAdminLoginHeldToOwnLevel(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{})
	boot := bootAdminCtx(t, e.evEnv)
	kim := e.kim(t, boot)
	ctx := browserAt("192.0.2.7")
	for _, level := range []int{identity.AuthLevelTwoFactor, identity.AuthLevelCertificate} {
		if _, err := e.svc.UpdateUser(boot, kim.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: level}); err != nil {
			t.Fatal(err)
		}
		tok, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", "")
		wantReason(t, "level without an app", err, apierr.FailedPrecondition, identity.ReasonAdminOTPSetup)
		if tok != "" {
			t.Fatal("a token for the password alone")
		}
	}
	key := e.enrolUser(t, kim.ID, kimPass)
	_, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", "")
	wantReason(t, "password alone with an app", err, apierr.FailedPrecondition, identity.ReasonAdminOTPRequired)
	if tok, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", kimPass, "", e.code(key, 0)); err != nil || tok == "" {
		t.Fatalf("password and code: %v", err)
	}
}

// An administrator with an authenticator app whose password must change
// (reset by another) is told so after the password and before the code is
// checked: the code still on their app then signs them in with the new
// password, checked once; nothing is counted (review sec28a L4).
func TestAdminOTPThenPasswordChange(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{})
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "r-a")
	kim := e.kim(t, admin)
	key := e.enrolUser(t, kim.ID, kimPass)
	_, tmp, err := e.svc.ResetPassword(admin, kim.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browserAt("192.0.2.7")
	code := e.code(key, 0)
	_, _, _, err = e.svc.AdminLoginOTP(ctx, "kim", tmp, "", code)
	wantReason(t, "password and code, no new password", err, apierr.FailedPrecondition, "PASSWORD_CHANGE_REQUIRED")
	tok, _, _, err := e.svc.AdminLoginOTP(ctx, "kim", tmp, "Harbour-Admin-Pass-2", code)
	if err != nil || tok == "" {
		t.Fatalf("the same code with the new password: %v", err)
	}
	if u, err := e.svc.GetUser(context.Background(), kim.ID); err != nil || u.FailedCount != 0 {
		t.Fatalf("counted: %+v %v", u, err)
	}
	// a wrong code with the new password is still refused and counted
	_, _, _, err = e.svc.AdminLoginOTP(ctx, "kim", "Harbour-Admin-Pass-2", "", "000000")
	if err == nil {
		t.Fatal("a wrong code signed in")
	}
}
