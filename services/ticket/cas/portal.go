package cas

import (
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/centre"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// The portal (the applications a signed-in person may enter, and account
// association) and the change-password form.

// portalEntry is an application on the portal page.
type portalEntry struct {
	AppID, Name, Account, Launch string
	Scheme                       int32
	Associable                   bool
}

// session returns the live session of the request's TGC; when there is
// none the browser has been sent to the login page, on a fault the error
// page is written.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) (string, *ticketv1.Session, bool) {
	tgt := tgcOf(r)
	if tgt != "" {
		ctx, cancel := h.ctx(r)
		sess, err := h.o.Tickets.GetSession(ctx, &ticketv1.GetSessionRequest{Tgt: tgt})
		cancel()
		switch {
		case err == nil:
			return tgt, sess, true
		case status.Code(err) != codes.NotFound && status.Code(err) != codes.InvalidArgument:
			h.fault(w, r, err)
			return "", nil, false
		}
		h.clearTGC(w, r)
	}
	// Back here after the login, for a page that asks for it (nextPages).
	to := h.o.Prefix + "login"
	if page := strings.TrimPrefix(r.URL.Path, h.o.Prefix); nextPages[page] {
		to += "?next=" + page
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return "", nil, false
}

// portal is GET /cas/portal.
func (h *Handler) portal(w http.ResponseWriter, r *http.Request) {
	tgt, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	msg := ""
	switch r.URL.Query().Get("done") {
	case "password":
		msg = h.texts(r).PasswordChanged
	case "link":
		msg = h.texts(r).LinkDone
	}
	h.portalPage(w, r, http.StatusOK, tgt, sess, "", msg)
}

func (h *Handler) portalPage(w http.ResponseWriter, r *http.Request, code int, tgt string, sess *ticketv1.Session, errMsg, msg string) {
	ctx, cancel := h.ctx(r)
	res, err := h.o.Tickets.PortalEntries(ctx, &ticketv1.PortalEntriesRequest{Tgt: tgt})
	cancel()
	if err != nil {
		h.fault(w, r, err)
		return
	}
	d := pageData{Wide: true, CSRF: h.csrf(w, r), Action: h.o.Prefix + "portal/link", Username: sess.GetLogin(),
		Error: errMsg, Message: msg, PasswordLink: h.o.Prefix + "password", LogoutLink: h.o.Prefix + "logout",
		ProfileLink: h.o.Prefix + "profile"}
	for _, e := range res.GetEntries() {
		pe := portalEntry{AppID: e.GetAppId(), Name: e.GetName(), Account: e.GetAccount(), Scheme: e.GetLegacyScheme(),
			Associable: e.GetAssociable(), Launch: h.o.Prefix + "login?service=" + url.QueryEscape(e.GetLaunchUrl())}
		d.HasLinked = d.HasLinked || pe.Account != ""
		d.HasAssociable = d.HasAssociable || pe.Associable && pe.Account == ""
		d.Entries = append(d.Entries, pe)
	}
	h.page(w, r, code, "portal", d)
}

// portalLink is POST /cas/portal/link: account association.
func (h *Handler) portalLink(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"portal", h.texts(r).Portal)
		return
	}
	tgt, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	t := h.texts(r)
	if !h.csrfOK(r) {
		h.portalPage(w, r, http.StatusForbidden, tgt, sess, t.LinkCSRF, "")
		return
	}
	app, account, password := r.PostFormValue("app"), strings.TrimSpace(r.PostFormValue("account")), r.PostFormValue("password")
	if app == "" || account == "" || len(app) > 128 || len(account) > 128 || len(password) > 256 {
		h.portalPage(w, r, http.StatusBadRequest, tgt, sess, t.LinkBad, "")
		return
	}
	ctx, cancel := h.ctx(r)
	_, err := h.o.Tickets.AssociateAccount(ctx, &ticketv1.AssociateAccountRequest{Tgt: tgt, AppId: app, Account: account, Password: password})
	cancel()
	if err != nil {
		code, msg := http.StatusBadRequest, ""
		switch reasonOf(err) {
		case "ASSOCIATION_REFUSED":
			code, msg = http.StatusForbidden, t.LinkRefused
		case "ACCOUNT_LINKED_ELSEWHERE":
			code, msg = http.StatusConflict, t.LinkElsewhere
		case "APP_ALREADY_LINKED":
			code, msg = http.StatusConflict, t.LinkAlready
		case "ASSOCIATION_APP_UNAVAILABLE":
			code, msg = http.StatusBadGateway, t.LinkUnavailable
		case "ASSOCIATION_NO_ID_NUMBER":
			code, msg = http.StatusConflict, t.LinkNoIDNumber
		case "ASSOCIATION_NOT_SUPPORTED":
			msg = t.LinkNotSupported
		case "BAD_ASSOCIATION", "BAD_REQUEST":
			msg = t.LinkBad
		case "SESSION_NOT_FOUND":
			h.clearTGC(w, r)
			http.Redirect(w, r, h.o.Prefix+"login", http.StatusSeeOther)
			return
		default:
			h.fault(w, r, err)
			return
		}
		h.portalPage(w, r, code, tgt, sess, msg, "")
		return
	}
	http.Redirect(w, r, h.o.Prefix+"portal?done=link", http.StatusSeeOther)
}

// passwordPage renders the change-password form: signed in (the login is
// the session's) or right after a login that must change the password.
func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request, code int, service, username string, signedIn bool, errMsg, msg string) {
	h.passwordPageOn(w, r, code, service, username, signedIn, errMsg, msg, false)
}

// passwordPageOn is passwordPage; errorOnNew: the error is about the new
// password (the two differ, a rule failed), so the new password's fields
// are the ones marked invalid and pointed at the error, not the current one.
func (h *Handler) passwordPageOn(w http.ResponseWriter, r *http.Request, code int, service, username string, signedIn bool, errMsg, msg string,
	errorOnNew bool) {
	h.page(w, r, code, "password", pageData{CSRF: h.csrf(w, r), Action: h.o.Prefix + "password", Service: service,
		Username: username, SignedIn: signedIn, Error: errMsg, Message: msg, PortalLink: h.o.Prefix + "portal", ErrorOnNew: errorOnNew})
}

// liveLogin returns the login of the request's live session ("" when
// there is none); ok is false when the error page was written.
func (h *Handler) liveLogin(w http.ResponseWriter, r *http.Request) (string, bool) {
	sess, ok := h.liveSession(w, r)
	return sess.GetLogin(), ok
}

// liveSession is liveLogin's session (nil without one).
func (h *Handler) liveSession(w http.ResponseWriter, r *http.Request) (*ticketv1.Session, bool) {
	tgt := tgcOf(r)
	if tgt == "" {
		return nil, true
	}
	ctx, cancel := h.ctx(r)
	sess, err := h.o.Tickets.GetSession(ctx, &ticketv1.GetSessionRequest{Tgt: tgt})
	cancel()
	switch {
	case err == nil:
		return sess, true
	case status.Code(err) == codes.NotFound || status.Code(err) == codes.InvalidArgument:
		return nil, true
	}
	h.fault(w, r, err)
	return nil, false
}

// passwordForm is GET /cas/password.
func (h *Handler) passwordForm(w http.ResponseWriter, r *http.Request) {
	login, ok := h.liveLogin(w, r)
	if !ok {
		return
	}
	svc := r.URL.Query().Get("service")
	if _, ok := h.match(w, r, svc); !ok {
		return
	}
	h.passwordPage(w, r, http.StatusOK, svc, login, login != "", "", "")
}

// passwordPost is POST /cas/password.
func (h *Handler) passwordPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"password", h.texts(r).ChangePassword)
		return
	}
	t := h.texts(r)
	svc := r.PostFormValue("service")
	rs, ok := h.match(w, r, svc)
	if !ok {
		return
	}
	sess, ok := h.liveSession(w, r)
	if !ok {
		return
	}
	login := sess.GetLogin()
	signedIn := login != ""
	if !signedIn {
		login = strings.TrimSpace(r.PostFormValue("username"))
	}
	if !h.csrfOK(r) {
		h.passwordPage(w, r, http.StatusForbidden, svc, login, signedIn, t.CSRF, "")
		return
	}
	old, nw, nw2 := r.PostFormValue("old_password"), r.PostFormValue("new_password"), r.PostFormValue("new_password2")
	if login == "" || old == "" || nw == "" || len(login) > 128 || len(old) > 1024 || len(nw) > 1024 {
		h.passwordPage(w, r, http.StatusBadRequest, svc, login, signedIn, t.VerificationFailed, "")
		return
	}
	if nw != nw2 {
		h.passwordPageOn(w, r, http.StatusBadRequest, svc, login, signedIn, t.PasswordMismatch, "", true)
		return
	}
	ctx, cancel := h.ctx(r)
	// Signed in: this session stays, the person's others end.
	// Not signed in, a person with an authenticator app gives its code
	// too (identity asks for it; the field is empty for everyone else).
	_, err := h.o.SSO.ChangePassword(ctx, &identityv1.SSOChangePasswordRequest{Login: login, OldPassword: old, NewPassword: nw,
		KeepSession: sess.GetId(), Otp: strings.TrimSpace(r.PostFormValue("code"))})
	cancel()
	if err != nil {
		reason := reasonOf(err)
		switch {
		case reason == "VERIFICATION_FAILED" && verdictOf(err) == "OTP_REQUIRED":
			h.passwordPage(w, r, http.StatusUnauthorized, svc, login, signedIn, t.PasswordNeedOTP, "")
		case reason == "VERIFICATION_FAILED" && verdictOf(err) == "AUTH_LEVEL_TOO_LOW":
			// the password was right; the person's level asks more: sign
			// in first (the page says how)
			h.passwordPage(w, r, http.StatusForbidden, svc, login, signedIn, t.PersonLevelTwoFactor, "")
		case reason == "VERIFICATION_FAILED":
			h.passwordPage(w, r, http.StatusUnauthorized, svc, login, signedIn, t.VerificationFailed, "")
		case reason == "CANNOT_CHANGE_PASSWORD":
			h.passwordPage(w, r, http.StatusForbidden, svc, login, signedIn, t.CannotChange, "")
		case reason == centre.ReasonElsewhere:
			// homed at another centre: the change is made there (it was
			// shown as a password rule failing; trial9 D5)
			msg := t.PasswordElsewhere
			if ae, ok := apierr.FromStatus(err); ok && ae.Meta[centre.MetaHome] != "" {
				msg += " " + ae.Meta[centre.MetaHome]
			}
			h.passwordPage(w, r, http.StatusConflict, svc, login, signedIn, msg, "")
		case status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.FailedPrecondition:
			// The password policy's refusal says which rule failed.
			h.passwordPageOn(w, r, http.StatusBadRequest, svc, login, signedIn, t.PolicyFailed+" "+status.Convert(err).Message(), "", true)
		default:
			h.fault(w, r, err)
		}
		return
	}
	if signedIn {
		http.Redirect(w, r, h.o.Prefix+"portal?done=password", http.StatusSeeOther)
		return
	}
	h.loginPage(w, r, http.StatusOK, loginParams{service: svc}, rs, "", login, t.PasswordChangedSignIn)
}
