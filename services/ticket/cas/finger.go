package cas

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// Fingerprint sign-in. A browser cannot read a fingerprint reader: the
// reader's own program on the person's computer (the capture agent,
// ticket.finger_agent_url) does, and answers the page's request
//
//	GET <finger_agent_url>  ->  200 {"record": "<base64 minutiae record>"}
//
// (or another status with {"error": "<text>"}) with CORS headers that let
// the sign-in page's origin read it. The page puts the record in its form
// and posts it with the login name (and, for an application of level 2,
// the password); identity's SSOService.FingerLogin checks them.

// fingerLevel is the authentication level of a login with a finger and a
// second factor (the password, or the authenticator app's code); a finger
// alone is level 1, as a password alone.
const fingerLevel = 2

// maxFingerRecord bounds the base64 record a form may carry (identity
// takes records of up to 64 KiB).
const maxFingerRecord = 4 * 65536 / 3

// agentOrigin is the origin of the capture agent's URL (the page's
// Content-Security-Policy lets its script ask it, and nothing else).
func agentOrigin(agent string) string {
	u, err := url.Parse(agent)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// fingerRecord decodes the record of the form (standard or URL base64,
// with or without padding; spaces and line breaks ignored).
func fingerRecord(v string) ([]byte, bool) {
	v = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, v)
	v = strings.TrimRight(v, "=")
	v = strings.NewReplacer("-", "+", "_", "/").Replace(v)
	b, err := base64.RawStdEncoding.DecodeString(v)
	return b, err == nil && len(b) > 0
}

var (
	errHalfLogin     = errors.New("identity asked for a code without a half-done login")
	errUnknownMethod = errors.New("identity answered a login method this page does not know")
)

// fingerMethods are the sessions' methods of a finger's logins, by
// identity's method.
var fingerMethods = map[string]ticketv1.AuthMethod{
	"finger":          ticketv1.AuthMethod_AUTH_METHOD_FINGERPRINT,
	"finger+password": ticketv1.AuthMethod_AUTH_METHOD_FINGERPRINT_PASSWORD,
	"finger+totp":     ticketv1.AuthMethod_AUTH_METHOD_FINGERPRINT_OTP,
}

// fingerLoginPost is POST /cas/login with finger=1: the login name and the
// capture agent's record (and the password, when the page asked for it).
// Refusals are one answer, as for passwords (which account exists, has a
// finger enrolled or is locked is not told), except a record that is not
// one (the reader's fault, not the person's) and a missing one.
func (h *Handler) fingerLoginPost(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService) {
	t := h.texts(r)
	p.finger = true
	if h.o.FingerAgent == "" {
		p.finger = false
		h.loginPage(w, r, http.StatusBadRequest, p, rs, t.FingerOff, "")
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	raw := r.PostFormValue("fingerprint")
	if username == "" || len(username) > 128 || len(password) > 1024 {
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.FingerFailed, username)
		return
	}
	if strings.TrimSpace(raw) == "" {
		h.loginPage(w, r, http.StatusBadRequest, p, rs, t.FingerNone, username)
		return
	}
	record, ok := fingerRecord(raw)
	if !ok || len(raw) > maxFingerRecord {
		h.loginPage(w, r, http.StatusBadRequest, p, rs, t.FingerUnreadable, username)
		return
	}
	if rs.GetCertificateRequired() {
		// Only a certificate reaches it: the login page says so.
		p.finger = false
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, "", "")
		return
	}
	if rs.GetMinAuthLevel() >= fingerLevel && password == "" {
		// A finger alone cannot reach the application's level (the page
		// asks for the password too; a person with an authenticator app
		// would be asked its code, but the page cannot know who has one).
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.FingerNeedPassword, username)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	binding, setBinding := h.otpBinding(r)
	res, err := h.o.SSO.FingerLogin(ctx, &identityv1.SSOFingerLoginRequest{Login: username, Fingerprint: record,
		Password: password, OtpBinding: binding})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			h.loginPage(w, r, http.StatusBadRequest, p, rs, t.FingerUnreadable, username)
			return
		}
		h.fault(w, r, err)
		return
	}
	failed := t.FingerFailed
	if password != "" {
		failed = t.FingerPasswordFailed
	}
	if !h.loginDone(w, r, p, rs, res, setBinding, username, failed) {
		return
	}
	h.openFingerSession(ctx, w, r, p, rs, res)
}

// openFingerSession opens the session of a finger's login res (level 1
// alone, 2 with a second factor) as the other logins do: the same
// person's session is raised, another person's is not switched.
func (h *Handler) openFingerSession(ctx context.Context, w http.ResponseWriter, r *http.Request, p loginParams,
	rs *ticketv1.RegisteredService, res *identityv1.SSOLoginResponse) {
	method, ok := fingerMethods[res.GetMethod()]
	if !ok {
		h.fault(w, r, errUnknownMethod)
		return
	}
	level := int32(1)
	if method != ticketv1.AuthMethod_AUTH_METHOD_FINGERPRINT {
		level = fingerLevel
	}
	h.raiseSession(ctx, w, r, p, rs, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: level, OrgId: res.GetOrgId(), AuthMethod: method, PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()}, h.texts(r).OtherPerson)
}

// fingerForm sets up d, the login page of p, for fingerprint sign-in:
// the fingerprint form itself (reports true) when p asks for it (finger=1),
// else the password form's link to it.
func (h *Handler) fingerForm(r *http.Request, p loginParams, rs *ticketv1.RegisteredService, d *pageData) bool {
	q := p.query()
	if p.renew {
		q.Set("renew", "true")
	}
	if !p.finger {
		q.Set("finger", "1")
		d.FingerLink = h.o.Prefix + "login?" + q.Encode()
		return false
	}
	if p.twoFactor {
		q.Set("twofactor", "1")
	}
	d.Finger, d.FingerAgent, d.PasswordLoginLink = true, h.o.FingerAgent, h.o.Prefix+"login?"+q.Encode()
	d.CertLogin = false
	if rs != nil {
		d.AppName = rs.GetName()
		if rs.GetMinAuthLevel() >= fingerLevel {
			d.FingerPassword = true
			if d.Message == "" {
				d.Message = h.texts(r).FingerLevelTwo
			}
		}
	}
	return true
}

// loginDone answers the sign-in page for a login by finger or by an
// external authenticator that did not end in a session (the app's code
// still to come, a password to change, a level too low, a refusal: failed
// is the page's text for it) and reports whether res is a finished login
// whose session may now be opened.
func (h *Handler) loginDone(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService,
	res *identityv1.SSOLoginResponse, setBinding func(http.ResponseWriter), username, failed string) bool {
	t := h.texts(r)
	switch res.GetReason() {
	case identityv1.Reason_REASON_OK:
	case identityv1.Reason_REASON_OTP_REQUIRED:
		// The first factor was right; the authenticator app's code
		// completes the login.
		if res.GetOtpToken() == "" {
			h.fault(w, r, errHalfLogin)
			return false
		}
		setBinding(w)
		h.otpPage(w, r, http.StatusOK, p, rs, res.GetOtpToken(), "")
		return false
	case identityv1.Reason_REASON_PASSWORD_EXPIRED:
		h.passwordPage(w, r, http.StatusOK, p.casService(), username, false, "", t.Expired)
		return false
	case identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW:
		h.loginPage(w, r, http.StatusForbidden, p, rs, personLevelText(t, res), username)
		return false
	default:
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, failed, username)
		return false
	}
	if res.GetMustChangePassword() {
		h.passwordPage(w, r, http.StatusOK, p.casService(), username, false, "", t.MustChange)
		return false
	}
	return true
}
