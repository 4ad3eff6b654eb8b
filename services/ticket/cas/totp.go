package cas

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/totp"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// Authenticator apps (TOTP): the second page of a password login of a
// person who set one up, and setting one up (or removing it) on My
// profile. Identity keeps the secret and checks every code; these pages
// carry only what identity sealed (the half-done login, the enrolment's
// secret) and bind the half-done login to the browser with a cookie of
// their own (otpCookie), whose hash identity sealed into it.

// otpCookie holds the browser's half of a half-done login: the
// otp_token in the page is of use only with it.
const otpCookie = "uias_otp"

// twoFactorLevel is the authentication level of a password login
// completed with an authenticator app's code: two factors (something
// known, something held), as a certificate login.
const twoFactorLevel = 2

// otpBinding returns the hash of the browser's otp cookie and, when it
// has none (or one too short to be ours), sets a new one: only when set
// is called, i.e. when the login asks for a code (a person without an
// authenticator app never gets the cookie).
func (h *Handler) otpBinding(r *http.Request) (binding string, set func(http.ResponseWriter)) {
	if c, err := r.Cookie(otpCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return bindingOf(c.Value), func(http.ResponseWriter) {}
	}
	v := randomToken()
	return bindingOf(v), func(w http.ResponseWriter) {
		http.SetCookie(w, &http.Cookie{Name: otpCookie, Value: v, Path: h.o.Prefix, HttpOnly: true, Secure: module.RequestHTTPS(r),
			SameSite: http.SameSiteStrictMode})
	}
}

// otpBindingOf is the hash of the browser's otp cookie ("" without one).
func otpBindingOf(r *http.Request) string {
	if c, err := r.Cookie(otpCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return bindingOf(c.Value)
	}
	return ""
}

func bindingOf(v string) string {
	s := sha256.Sum256([]byte("uias.otp_binding\x00" + v))
	return hex.EncodeToString(s[:])
}

// otpPage asks for the code of a half-done login.
func (h *Handler) otpPage(w http.ResponseWriter, r *http.Request, code int, p loginParams, rs *ticketv1.RegisteredService, token, errMsg string) {
	d := pageData{CSRF: h.csrf(w, r), Action: h.o.Prefix + "login", Service: p.service, Next: p.next, Renew: p.renew, Method: p.method,
		Error: errMsg, OTPToken: token, TwoFactor: true}
	if rs != nil {
		d.AppName = rs.GetName()
	}
	h.page(w, r, code, "otp", d)
}

// otpLoginPost is POST /cas/login with an otp_token: the code of a
// half-done login. A right code opens a level-2 session.
func (h *Handler) otpLoginPost(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService) {
	t := h.texts(r)
	// Whoever is here signs in with a code: the login page they may be
	// sent back to shows the password form, also for a level-2 application.
	p.twoFactor = true
	token := r.PostFormValue("otp_token")
	code := strings.TrimSpace(r.PostFormValue("code"))
	binding := otpBindingOf(r)
	if len(token) > 2048 || binding == "" {
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.OTPExpired, "")
		return
	}
	if !totp.WellFormed(code) {
		// Not a code (identity would refuse it as a bad request): asked
		// again, not counted as a wrong one.
		h.otpPage(w, r, http.StatusUnauthorized, p, rs, token, t.OTPWrong)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.SSO.LoginOtp(ctx, &identityv1.SSOLoginOtpRequest{OtpToken: token, Code: code, OtpBinding: binding})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.OTPExpired, "")
			return
		}
		h.fault(w, r, err)
		return
	}
	switch res.GetReason() {
	case identityv1.Reason_REASON_OK:
	case identityv1.Reason_REASON_BAD_CREDENTIALS:
		h.otpPage(w, r, http.StatusUnauthorized, p, rs, token, t.OTPWrong)
		return
	case identityv1.Reason_REASON_OTP_EXPIRED:
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.OTPExpired, "")
		return
	case identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW:
		// Set to certificates only since the password step.
		h.loginPage(w, r, http.StatusForbidden, p, rs, personLevelText(t, res), "")
		return
	default:
		// Locked (the codes' failures count) or disabled meanwhile: the
		// password was right, so this is the person; the login page's
		// single answer is kept all the same.
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.BadCredentials, "")
		return
	}
	if res.GetMustChangePassword() {
		h.passwordPage(w, r, http.StatusOK, p.casService(), res.GetLogin(), false, "", t.MustChange)
		return
	}
	if strings.HasPrefix(res.GetMethod(), "external:") {
		// an external authenticator's credential and the code
		h.openExternalSession(ctx, w, r, p, rs, res)
		return
	}
	if _, ok := fingerMethods[res.GetMethod()]; ok {
		// the finger and the code
		h.openFingerSession(ctx, w, r, p, rs, res)
		return
	}
	if res.GetMethod() == methodKerberosTOTP {
		// a Kerberos ticket and the code
		h.raiseSession(ctx, w, r, p, rs, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
			AuthLevel: twoFactorLevel, OrgId: res.GetOrgId(), AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_KERBEROS_OTP,
			PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()}, t.KerberosOtherPerson)
		return
	}
	// As a certificate login: the same person's session is raised (a new
	// TGT taking over its services), another person's is not switched.
	h.raiseSession(ctx, w, r, p, rs, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: twoFactorLevel, OrgId: res.GetOrgId(), AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_PASSWORD_OTP,
		PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()}, t.OtherPerson)
}

// ---- My profile: setting up and removing the app ----

// totpView is the set-up page's new secret.
type totpView struct {
	Secret, URI, Token string
	// QRPath draws the QR code's dark modules in a QRSize × QRSize SVG
	// (inline: the pages' CSP allows no images, not even data: URLs).
	QRPath string
	QRSize int
}

// qrPath is the SVG path of the QR code of text, and its size in modules
// (with the 4-module quiet zone).
func qrPath(text string) (string, int, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", 0, err
	}
	bm := q.Bitmap()
	var b strings.Builder
	for y, row := range bm {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	return b.String(), len(bm), nil
}

// totpForm is GET /cas/profile/totp: a new secret to set up.
func (h *Handler) totpForm(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	ctx, cancel := h.ctx(r)
	en, err := h.o.SSO.BeginTotpEnrolment(ctx, &identityv1.BeginTotpEnrolmentRequest{UserId: sess.GetUserId()})
	cancel()
	if err != nil {
		h.totpRefused(w, r, sess, err)
		return
	}
	h.totpPage(w, r, http.StatusOK, sess, &totpView{Secret: en.GetSecret(), URI: en.GetUri(), Token: en.GetEnrolmentToken()}, "")
}

func (h *Handler) totpPage(w http.ResponseWriter, r *http.Request, code int, sess *ticketv1.Session, v *totpView, errMsg string) {
	var err error
	if v.QRPath, v.QRSize, err = qrPath(v.URI); err != nil {
		h.fault(w, r, err)
		return
	}
	h.page(w, r, code, "totp", pageData{Wide: true, CSRF: h.csrf(w, r), Action: h.o.Prefix + "profile/totp", Username: sess.GetLogin(),
		Error: errMsg, TOTP: v, PortalLink: h.o.Prefix + "portal", ProfileLink: h.o.Prefix + "profile", LogoutLink: h.o.Prefix + "logout"})
}

// totpPost is POST /cas/profile/totp: confirm a set-up (action=confirm)
// or remove the app (action=remove), with the current password.
func (h *Handler) totpPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"profile", h.texts(r).ProfileHead)
		return
	}
	_, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	t := h.texts(r)
	password := r.PostFormValue("current_password")
	remove := r.PostFormValue("action") == "remove"
	// The set-up page again after a refusal: the same secret (the person
	// may have scanned it already). Only what identity made comes back
	// here; a forged one is shown only to whoever forged it, and identity
	// saves nothing but the secret sealed in the token.
	v := &totpView{Secret: r.PostFormValue("secret"), URI: r.PostFormValue("uri"), Token: r.PostFormValue("enrolment_token")}
	again := func(code int, msg string) {
		if remove || !strings.HasPrefix(v.URI, "otpauth://totp/") || len(v.URI) > 1024 || len(v.Secret) > 128 {
			h.profilePage(w, r, code, sess, nil, msg, "")
			return
		}
		h.totpPage(w, r, code, sess, v, msg)
	}
	if !h.csrfOK(r) {
		again(http.StatusForbidden, t.ProfileCSRF)
		return
	}
	if password == "" || len(password) > 1024 {
		again(http.StatusUnauthorized, t.ProfileNeedPassword)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	var err error
	if remove {
		code := strings.TrimSpace(r.PostFormValue("code"))
		if code == "" || len(code) > 16 {
			again(http.StatusBadRequest, t.TOTPCodeWrong)
			return
		}
		_, err = h.o.SSO.RemoveOwnTotp(ctx, &identityv1.RemoveOwnTotpRequest{UserId: sess.GetUserId(), CurrentPassword: password, Code: code})
	} else {
		code := strings.TrimSpace(r.PostFormValue("code"))
		if code == "" || len(code) > 16 || v.Token == "" || len(v.Token) > 2048 {
			again(http.StatusBadRequest, t.TOTPCodeWrong)
			return
		}
		_, err = h.o.SSO.ConfirmTotpEnrolment(ctx, &identityv1.ConfirmTotpEnrolmentRequest{UserId: sess.GetUserId(),
			CurrentPassword: password, EnrolmentToken: v.Token, Code: code})
	}
	if err == nil {
		done := "totp"
		if remove {
			done = "totp-removed"
		}
		http.Redirect(w, r, h.o.Prefix+"profile?done="+done, http.StatusSeeOther)
		return
	}
	if status.Code(err) == codes.NotFound && reasonOf(err) != "TOTP_NOT_ENROLLED" {
		h.profileFault(w, r, err)
		return
	}
	code, msg := http.StatusBadRequest, ""
	var meta map[string]string
	if ae, ok := apierr.FromStatus(err); ok && ae != nil {
		meta = ae.Meta
	}
	switch reasonOf(err) {
	case "VERIFICATION_FAILED":
		switch meta["verdict"] {
		case "ACCOUNT_LOCKED":
			code, msg = http.StatusForbidden, t.CertLocked
		case "ACCOUNT_DISABLED":
			code, msg = http.StatusForbidden, t.CertDisabled
		default:
			code, msg = http.StatusUnauthorized, t.ProfileWrongPassword
		}
	case "TOTP_CODE_WRONG":
		msg = t.TOTPCodeWrong
	case "TOTP_ENROLMENT_EXPIRED":
		h.profilePage(w, r, http.StatusBadRequest, sess, nil, t.TOTPEnrolExpired, "")
		return
	case "TOTP_ALREADY_ENROLLED", "TOTP_NOT_ENROLLED":
		h.profilePage(w, r, http.StatusConflict, sess, nil, t.TOTPChanged, "")
		return
	case "NO_OWN_PASSWORD":
		code, msg = http.StatusForbidden, t.ProfileNoPassword
	case "HOME_CENTRE_ELSEWHERE":
		code, msg = http.StatusConflict, t.ProfileElsewhere
	default:
		h.fault(w, r, err)
		return
	}
	again(code, msg)
}

// totpRefused answers a set-up that cannot start.
func (h *Handler) totpRefused(w http.ResponseWriter, r *http.Request, sess *ticketv1.Session, err error) {
	t := h.texts(r)
	switch reasonOf(err) {
	case "TOTP_ALREADY_ENROLLED":
		// Opened again (a bookmark, Back): nothing changed meanwhile.
		h.profilePage(w, r, http.StatusOK, sess, nil, "", t.TOTPAlready)
	case "NO_OWN_PASSWORD":
		h.profilePage(w, r, http.StatusForbidden, sess, nil, t.ProfileNoPassword, "")
	case "HOME_CENTRE_ELSEWHERE":
		h.profilePage(w, r, http.StatusConflict, sess, nil, t.ProfileElsewhere, "")
	default:
		h.profileFault(w, r, err)
	}
}

// verdictOf is the verdict metadata of identity's VERIFICATION_FAILED.
func verdictOf(err error) string {
	if ae, ok := apierr.FromStatus(err); ok && ae != nil {
		return ae.Meta["verdict"]
	}
	return ""
}
