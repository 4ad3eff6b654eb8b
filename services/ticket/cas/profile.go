package cas

import (
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// "My profile": the signed-in person's own account (login name, names,
// org, ID number and phone masked, e-mail, password dates) and the form
// that changes their e-mail and phone (and display name where identity's
// policy allows it) after they re-enter their password. The person is the
// session's, never a form field.

// profileView is what the profile page shows.
type profileView struct {
	Login, DisplayName, OrgName, IDType, IDNumber, Phone, Email string
	// AccountType: person or unit, read only ("": identity did not say);
	// Unit: the name and code rows are labelled a unit's (ADR 0039).
	AccountType                      string
	Unit                             bool
	PasswordChanged, PasswordExpires string
	// ErrorField is the form field the page's error is about ("": the
	// error is about none in particular): it is marked invalid and points
	// at the error.
	ErrorField   string
	NameEditable bool
	// NoPassword: the person has no password to re-enter: no form, a
	// sentence saying the administrator changes their details
	NoPassword bool
	// the form's values (the person's input again after a refusal)
	FormName, FormEmail, FormPhone string
	// TOTPSince: when the person set up an authenticator app ("": none).
	TOTPSince string
	// Apps: "My applications" (AppsUnavailable: not read now).
	Apps            []myAppView
	AppsUnavailable bool
}

// profileForm is what the person typed into the form.
type profileForm struct {
	name, email, phone, password string
}

// profile is GET /cas/profile.
func (h *Handler) profile(w http.ResponseWriter, r *http.Request) {
	_, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	msg := ""
	switch r.URL.Query().Get("done") {
	case "profile":
		msg = h.texts(r).ProfileSaved
	case "totp":
		msg = h.texts(r).TOTPSaved
	case "totp-removed":
		msg = h.texts(r).TOTPRemoved
	case "app-removed":
		msg = h.texts(r).MyAppRemoved
	}
	h.profilePage(w, r, http.StatusOK, sess, nil, "", msg)
}

// profilePage renders the profile of the session's person; form, when
// not nil, is the person's refused input, shown again.
func (h *Handler) profilePage(w http.ResponseWriter, r *http.Request, code int, sess *ticketv1.Session, form *profileForm, errMsg, msg string) {
	ctx, cancel := h.ctx(r)
	p, err := h.o.SSO.GetOwnProfile(ctx, &identityv1.GetOwnProfileRequest{UserId: sess.GetUserId()})
	cancel()
	if err != nil {
		h.profileFault(w, r, err)
		return
	}
	t := h.texts(r)
	v := &profileView{Login: p.GetLogin(), DisplayName: p.GetDisplayName(), OrgName: p.GetOrgName(), IDType: t.idType(p.GetIdType()),
		IDNumber: p.GetIdNumberMask(), Phone: p.GetPhoneMask(), Email: p.GetEmail(), NameEditable: p.GetDisplayNameEditable(),
		PasswordChanged: t.NotRecorded, PasswordExpires: t.Never, FormName: p.GetDisplayName(), FormEmail: p.GetEmail(),
		NoPassword: p.GetNoPassword()}
	switch p.GetUserType() {
	case identityv1.UserType_USER_TYPE_PERSON:
		v.AccountType = t.AccountPerson
	case identityv1.UserType_USER_TYPE_UNIT:
		v.AccountType, v.Unit = t.AccountUnit, true
	}
	if v.NoPassword {
		v.PasswordExpires = t.NotRecorded
	}
	if v.IDNumber == "" {
		v.IDNumber = t.NotRecorded
	}
	if v.Phone == "" {
		v.Phone = t.NotRecorded
	}
	if v.Email == "" {
		v.Email = t.NotRecorded
	}
	if p.GetPasswordChangedAt() != nil {
		v.PasswordChanged = p.GetPasswordChangedAt().AsTime().UTC().Format(pageTime)
	}
	if p.GetPasswordExpiresAt() != nil {
		v.PasswordExpires = p.GetPasswordExpiresAt().AsTime().UTC().Format(pageTime)
	}
	if p.GetTotpEnrolled() {
		v.TOTPSince = t.NotRecorded
		if at := p.GetTotpEnrolledAt(); at != nil {
			v.TOTPSince = at.AsTime().UTC().Format(pageTime)
		}
	}
	if form != nil {
		v.FormName, v.FormEmail, v.FormPhone = form.name, form.email, form.phone
	}
	switch errMsg {
	case t.ProfileBadEmail:
		v.ErrorField = "email"
	case t.ProfileBadPhone:
		v.ErrorField = "phone"
	case t.ProfileBadName:
		v.ErrorField = "display_name"
	case t.ProfileNeedPassword, t.ProfileWrongPassword:
		v.ErrorField = "current_password"
	}
	apps, ok := h.myApps(r, tgcOf(r))
	v.Apps, v.AppsUnavailable = apps, !ok
	h.page(w, r, code, "profile", pageData{Wide: true, CSRF: h.csrf(w, r), Action: h.o.Prefix + "profile", Username: sess.GetLogin(),
		Error: errMsg, Message: msg, Profile: v, PortalLink: h.o.Prefix + "portal", PasswordLink: h.o.Prefix + "password",
		LogoutLink: h.o.Prefix + "logout"})
}

// pageTime is how the pages show a time (UTC, said so).
const pageTime = "2006-01-02 15:04 UTC"

// idType is the name of an ID type in the page's language.
func (t texts) idType(it identityv1.IdType) string {
	switch it {
	case identityv1.IdType_ID_TYPE_RESIDENT_ID:
		return t.IDResident
	case identityv1.IdType_ID_TYPE_PASSPORT:
		return t.IDPassport
	case identityv1.IdType_ID_TYPE_MILITARY:
		return t.IDMilitary
	case identityv1.IdType_ID_TYPE_OTHER:
		return t.IDOther
	case identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE:
		return t.IDUSCC
	case identityv1.IdType_ID_TYPE_ORGANIZATION_CODE:
		return t.IDOrgCode
	}
	return t.NotRecorded
}

// profileFault answers a failed read of the profile: a person who no
// longer exists signs in again (the login page tells them); the rest is
// the error page.
func (h *Handler) profileFault(w http.ResponseWriter, r *http.Request, err error) {
	if status.Code(err) == codes.NotFound {
		h.clearTGC(w, r)
		http.Redirect(w, r, h.o.Prefix+"login", http.StatusSeeOther)
		return
	}
	h.fault(w, r, err)
}

// profilePost is POST /cas/profile: the person's changes.
func (h *Handler) profilePost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"profile", h.texts(r).ProfileHead)
		return
	}
	_, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	t := h.texts(r)
	f := &profileForm{name: strings.TrimSpace(r.PostFormValue("display_name")), email: strings.TrimSpace(r.PostFormValue("email")),
		phone: strings.TrimSpace(r.PostFormValue("phone")), password: r.PostFormValue("current_password")}
	if !h.csrfOK(r) {
		h.profilePage(w, r, http.StatusForbidden, sess, f, t.ProfileCSRF, "")
		return
	}
	// What changed: the page shows the current display name and e-mail
	// in the form; the phone field is empty unless a new number is typed
	// (the current one is shown masked only).
	ctx, cancel := h.ctx(r)
	cur, err := h.o.SSO.GetOwnProfile(ctx, &identityv1.GetOwnProfileRequest{UserId: sess.GetUserId()})
	cancel()
	if err != nil {
		h.profileFault(w, r, err)
		return
	}
	req := &identityv1.UpdateOwnProfileRequest{UserId: sess.GetUserId(), CurrentPassword: f.password,
		DisplayName: f.name, Email: f.email, Phone: f.phone}
	if _, sent := r.PostForm["display_name"]; sent && cur.GetDisplayNameEditable() && f.name != cur.GetDisplayName() {
		req.UpdateMask = append(req.UpdateMask, "display_name")
	}
	if _, sent := r.PostForm["email"]; sent && f.email != cur.GetEmail() {
		req.UpdateMask = append(req.UpdateMask, "email")
	}
	if f.phone != "" {
		req.UpdateMask = append(req.UpdateMask, "phone")
	}
	switch {
	case len(req.UpdateMask) == 0:
		h.profilePage(w, r, http.StatusBadRequest, sess, f, t.ProfileNothing, "")
		return
	case len(f.name) > 256:
		h.profilePage(w, r, http.StatusBadRequest, sess, f, t.ProfileBadName, "")
		return
	case len(f.email) > 254:
		h.profilePage(w, r, http.StatusBadRequest, sess, f, t.ProfileBadEmail, "")
		return
	case len(f.phone) > 32:
		h.profilePage(w, r, http.StatusBadRequest, sess, f, t.ProfileBadPhone, "")
		return
	case f.password == "" || len(f.password) > 1024:
		h.profilePage(w, r, http.StatusUnauthorized, sess, f, t.ProfileNeedPassword, "")
		return
	}
	ctx, cancel = h.ctx(r)
	_, err = h.o.SSO.UpdateOwnProfile(ctx, req)
	cancel()
	if err == nil {
		http.Redirect(w, r, h.o.Prefix+"profile?done=profile", http.StatusSeeOther)
		return
	}
	if status.Code(err) == codes.NotFound {
		h.profileFault(w, r, err)
		return
	}
	code, msg := http.StatusBadRequest, ""
	var reason string
	var meta map[string]string
	if ae, ok := apierr.FromStatus(err); ok && ae != nil {
		reason, meta = ae.Reason, ae.Meta
	}
	switch reason {
	case "VERIFICATION_FAILED":
		// Only the session's holder gets here: saying that their own
		// account is locked or disabled tells no one else anything.
		switch meta["verdict"] {
		case "ACCOUNT_LOCKED":
			code, msg = http.StatusForbidden, t.CertLocked
		case "ACCOUNT_DISABLED":
			code, msg = http.StatusForbidden, t.CertDisabled
		default:
			code, msg = http.StatusUnauthorized, t.ProfileWrongPassword
		}
	case apierr.ReasonBadRequest:
		msg = map[string]string{"email": t.ProfileBadEmail, "phone": t.ProfileBadPhone, "display_name": t.ProfileBadName}[meta[apierr.MetaField]]
		if msg == "" {
			msg = t.ProfileBad
		}
	case "SELF_SERVICE_FIELD":
		code, msg = http.StatusForbidden, t.ProfileNotYours
	case "NO_OWN_PASSWORD":
		code, msg = http.StatusForbidden, t.ProfileNoPassword
	case "HOME_CENTRE_ELSEWHERE":
		code, msg = http.StatusConflict, t.ProfileElsewhere
	default:
		h.fault(w, r, err)
		return
	}
	h.profilePage(w, r, code, sess, f, msg, "")
}
