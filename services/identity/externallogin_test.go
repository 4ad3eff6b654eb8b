package identity_test

import (
	"encoding/base32"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
)

// TestSSOExternalLogin: the sign-in page's login with an external
// authenticator: the face alone is level 1, with the password level 2
// (method external:face+password); an unknown login is a wrong credential
// without asking the authenticator; an org not listed is
// EXTERNAL_NOT_ALLOWED; a person of level 2 is told their level after the
// right face only; the authenticator down is UNAVAILABLE.
func TestSSOExternalLogin(t *testing.T) {
	w := newExtWorld(t, 0)
	ctx := from("203.0.113.5")
	res, err := w.svc.SSOExternalLogin(ctx, "ann", "face", []byte(extCode), "", "")
	if err != nil || res.Reason != identity.ReasonOK || res.Level != 1 || res.Method != "external:face" || !res.NoPassword ||
		res.User == nil || res.User.ID != w.ann.ID {
		t.Fatalf("face: %+v %v", res, err)
	}
	if c := w.face.Calls(); len(c) != 1 || c[0].ClientIP != "203.0.113.5" {
		t.Fatalf("calls: %+v", c)
	}
	res, err = w.svc.SSOExternalLogin(ctx, "ann", "face", []byte(extCode), extAnnPass, "")
	if err != nil || res.Reason != identity.ReasonOK || res.Level != 2 || res.Method != "external:face+password" || res.NoPassword {
		t.Fatalf("face and password: %+v %v", res, err)
	}
	res, err = w.svc.SSOExternalLogin(ctx, "ann", "face", []byte("face:wrong"), "", "")
	if err != nil || res.Reason != identity.ReasonBadCredentials || res.User != nil {
		t.Fatalf("wrong face: %+v %v", res, err)
	}
	n := len(w.face.Calls())
	res, err = w.svc.SSOExternalLogin(ctx, "nobody", "face", []byte(extCode), "", "")
	if err != nil || res.Reason != identity.ReasonBadCredentials || len(w.face.Calls()) != n {
		t.Fatalf("unknown login: %+v %v (%d calls, were %d)", res, err, len(w.face.Calls()), n)
	}
	res, err = w.svc.SSOExternalLogin(ctx, "bob", "face", []byte(extCode), "", "")
	if err != nil || res.Reason != identity.ReasonExternalNotAllowed || len(w.face.Calls()) != n {
		t.Fatalf("org not listed: %+v %v", res, err)
	}
	_, err = w.svc.SSOExternalLogin(ctx, "ann", "iris", []byte(extCode), "", "")
	wantReason(t, "unknown type", err, apierr.InvalidArgument, apierr.ReasonBadRequest)
	admin, _ := adminCtx(t, w.svc, "10.0.0.9", "r-admin")
	if _, err := w.svc.UpdateUser(admin, w.ann.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 2}); err != nil {
		t.Fatal(err)
	}
	if res, err = w.svc.SSOExternalLogin(ctx, "ann", "face", []byte(extCode), "", ""); err != nil ||
		res.Reason != identity.ReasonAuthLevelTooLow || res.RequiredLevel != 2 {
		t.Fatalf("level-2 person, face alone: %+v %v", res, err)
	}
	if res, err = w.svc.SSOExternalLogin(ctx, "ann", "token", []byte("482913"), "", ""); err != nil ||
		res.Reason != identity.ReasonOK || res.Level != 2 {
		t.Fatalf("level-2 person, token: %+v %v", res, err)
	}
	w.face.Stop()
	_, err = w.svc.SSOExternalLogin(ctx, "ann", "face", []byte(extCode), extAnnPass, "")
	wantReason(t, "down", err, apierr.Unavailable, identity.ReasonExternalUnavailable)
}

// TestSSOExternalLoginAsksTOTP: a person with an authenticator app who
// signs in with the face alone is asked the app's code next (the factor
// they chose is not skipped); the code completes a level-2 login of
// method external:face+totp that is not the password's.
func TestSSOExternalLoginAsksTOTP(t *testing.T) {
	w := newExtWorld(t, 0)
	ctx := browserAt("192.0.2.1")
	en, err := w.svc.BeginTOTPEnrolment(ctx, w.ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { w.clk.mu.Lock(); defer w.clk.mu.Unlock(); return w.clk.t }
	if _, err := w.svc.ConfirmTOTPEnrolment(ctx, w.ann.ID, extAnnPass, en.Token, identity.TOTPCode(key, identity.TOTPStep(now()))); err != nil {
		t.Fatal(err)
	}
	w.clk.mu.Lock()
	w.clk.t = w.clk.t.Add(identity.TOTPPeriod)
	w.clk.mu.Unlock()
	res, err := w.svc.SSOExternalLogin(ctx, "ann", "face", []byte(extCode), "", "browser-1")
	if err != nil || res.Reason != identity.ReasonOTPRequired || res.OTPToken == "" || res.User != nil {
		t.Fatalf("face of a person with an app: %+v %v", res, err)
	}
	done, err := w.svc.SSOLoginOTP(ctx, res.OTPToken, identity.TOTPCode(key, identity.TOTPStep(now())), "browser-1")
	if err != nil || done.Reason != identity.ReasonOK || done.Method != "external:face+totp" || done.Level != 2 || !done.NoPassword {
		t.Fatalf("the code after the face: %+v %v", done, err)
	}
}
