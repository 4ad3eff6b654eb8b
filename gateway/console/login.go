package console

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/module"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// loginForm is the sign-in page's state.
type loginForm struct {
	Login string
	// AskOTP, AskNew: the service asked for the authenticator code, or for
	// a new password (the first login of an appointed administrator, an
	// expired password).
	AskOTP, AskNew bool
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		http.Redirect(w, r, h.o.Prefix+"people", http.StatusSeeOther)
		return
	}
	h.toLogin(w, r, "")
}

// loginCSRFToken is the sign-in form's token (double submit: a cookie of
// its own, before there is a session).
func (h *Handler) loginCSRFToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCSRF); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	t := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCSRF, Value: t, Path: h.o.Prefix, HttpOnly: true, Secure: module.RequestHTTPS(r),
		SameSite: http.SameSiteStrictMode})
	return t
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	d := h.data(r, nil, "")
	d.CSRF = h.loginCSRFToken(w, r)
	switch r.URL.Query().Get("why") {
	case "expired":
		d.Error = d.T("expired")
	case "cookies":
		d.Error = d.T("cookies")
	case "out":
		d.Done = d.T("signedOut")
	case "outUnconfirmed":
		d.Error = d.T("signedOutUnconfirmed")
	}
	d.Page = loginForm{}
	h.render(w, r, http.StatusOK, "login", d)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	d := h.data(r, nil, "")
	if err := r.ParseForm(); err != nil {
		h.forbidden(w, r, "form")
		return
	}
	c, err := r.Cookie(loginCSRF)
	if err != nil || len(c.Value) < 32 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		h.forbidden(w, r, "csrf")
		return
	}
	d.CSRF = c.Value
	f := loginForm{Login: strings.TrimSpace(r.PostForm.Get("login_name")), AskOTP: r.PostForm.Get("otp") != "",
		AskNew: r.PostForm.Get("new_password") != ""}
	d.Page = f
	newPW := r.PostForm.Get("new_password")
	if newPW != r.PostForm.Get("new_password2") {
		d.Error = d.T("mismatch")
		h.render(w, r, http.StatusBadRequest, "login", d)
		return
	}
	ctx, cancel := h.ctx(r, nil)
	defer cancel()
	res, err := h.o.Admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: f.Login, Password: r.PostForm.Get("password"),
		NewPassword: newPW, Otp: strings.TrimSpace(r.PostForm.Get("otp"))})
	if err != nil {
		st := status.Convert(err)
		switch apierr.Info(st).GetReason() {
		case reasonTOTPCodeRequired:
			f.AskOTP = true
			d.Error = d.T("needOTP")
		case reasonPasswordChangeRequired:
			f.AskNew = true
			d.Error = d.T("needNew") + " " + st.Message()
		default:
			d.Error = message(st, &d)
		}
		d.Page = f
		code := apierr.HTTPStatus(st)
		if code < 400 {
			code = http.StatusBadGateway
		}
		h.render(w, r, code, "login", d)
		return
	}
	if old, err := r.Cookie(sessionCookie); err == nil && old.Value != "" && old.Value != res.GetToken() {
		// signing in over a session ends it: its token is revoked, not
		// left valid until its idle limit (best effort)
		octx, ocancel := h.ctx(r, &session{token: old.Value})
		_, _ = h.o.Admin.AdminLogout(octx, &identityv1.AdminLogoutRequest{})
		ocancel()
	}
	// A browser-session cookie (no Expires): closing the browser ends the
	// console session; the token's own limits still hold (review sec28a L3).
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: res.GetToken(), Path: h.o.Prefix, HttpOnly: true,
		Secure: module.RequestHTTPS(r), SameSite: http.SameSiteStrictMode})
	// the sign-in form's token has served its purpose
	http.SetCookie(w, &http.Cookie{Name: loginCSRF, Value: "", Path: h.o.Prefix, MaxAge: -1, HttpOnly: true,
		Secure: module.RequestHTTPS(r), SameSite: http.SameSiteStrictMode})
	h.checkBackup(w, r, res.GetToken())
	done := ""
	if res.GetMustChangePassword() {
		done = "mustChange"
	}
	h.redirectDone(w, r, "people", done)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	// An expired token is signed out already; the cookie goes either way.
	_, err := h.o.Admin.AdminLogout(ctx, &identityv1.AdminLogoutRequest{})
	h.clearSession(w, r)
	if err != nil && status.Code(err) != codes.Unauthenticated {
		// the token may still be valid until its idle limit: say so
		// (review sec28a I1)
		h.o.Log.Warn("console sign-out: the token was not revoked", zap.Error(err))
		h.toLogin(w, r, "outUnconfirmed")
		return
	}
	h.toLogin(w, r, "out")
}
