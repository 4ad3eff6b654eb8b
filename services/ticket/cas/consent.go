package cas

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// OpenID Connect consent (the client's service asks it: consent_required)
// and "My applications" on the profile page (ADR 0036), as Keycloak's
// consent screen and Account Console "Applications": the person sees what
// a client asks for and how long their consent is remembered, allows or
// denies it, and later removes an application's access. Forms carry the
// CSRF token; the person is always the session's, never a form field;
// nothing needs JavaScript.

// consentView is what the consent page shows.
type consentView struct {
	// RenewNonce: the page follows a renew login (loginParams.consentNonce).
	RenewNonce string
	Scopes     []string
	Until      string
	Days       int
	// Granted: what an earlier, unexpired consent covers ("" none).
	Granted string
}

// myAppView is an application on the profile page's "My applications".
type myAppView struct {
	AppID, Name, Account, Scope, GrantedAt, ExpiresAt, SignedInAt string
	// ScopeText: Scope in plain words (texts.scopeTexts).
	ScopeText  string
	Revocable  bool
	RemoveLink string
}

// scopeTexts describes the scopes the consent page lists (others are
// shown as they are).
func (t texts) scopeText(scope string) string {
	switch scope {
	case "openid":
		return t.ScopeOpenID
	case "profile":
		return t.ScopeProfile
	case "groups":
		return t.ScopeGroups
	case casConsentScope:
		return t.ScopeCAS
	}
	return scope
}

// scopeTexts describes a remembered consent's scope in plain words, as
// "My applications" lists it (the CAS consent's own scope as such: review
// sec31c L1).
func (t texts) scopeTexts(scope string) string {
	var out []string
	for _, s := range strings.Fields(scope) {
		out = append(out, t.scopeText(s))
	}
	return strings.Join(out, "; ")
}

// casConsentScope is what a CAS service's consent covers: the ticket
// component's CASConsentScope, a scope of its own that no OpenID Connect
// consent covers nor a client may ask for (review sec31c L1).
const casConsentScope = ticket.CASConsentScope

// casAttrOrder is the order the consent page lists a CAS service's
// attributes in, with the text of each (attributes of one text, groups
// and memberOf, are listed once).
var casAttrOrder = []struct {
	name string
	text func(texts) string
}{
	{"userId", func(t texts) string { return t.AttrUserID }},
	{"login", func(t texts) string { return t.AttrLogin }},
	{"displayName", func(t texts) string { return t.AttrName }},
	{"orgId", func(t texts) string { return t.AttrOrgID }},
	{"orgName", func(t texts) string { return t.AttrOrgName }},
	{"appAccountId", func(t texts) string { return t.AttrAppAccount }},
	{"groups", func(t texts) string { return t.AttrGroups }},
	{"memberOf", func(t texts) string { return t.AttrGroups }},
	{"roles", func(t texts) string { return t.AttrRoles }},
	{"permissions", func(t texts) string { return t.AttrPermissions }},
	{"userType", func(t texts) string { return t.AttrUserType }},
	{"authLevel", func(t texts) string { return t.AttrAuthLevel }},
}

// casReleased is what a CAS service's consent page lists: the attributes
// its validations answer after its release policy (ADR 0037:
// release_attributes, masked_attributes; roles and permissions only when
// the service releases them), in plain words, the masked ones marked; and
// the CAS protocol's own (when and how the person signed in), always
// answered. The policy is the service's, so the page says what the service
// gets, not the fixed scope its consent is recorded under
// (casConsentScope).
// A legacy ssoAuthService service (no policy: refused there) gets the
// account (the linked one, else the login) and, with scheme 1, the linked
// account's password.
func casReleased(t texts, rs *ticketv1.RegisteredService) []string {
	if rs.GetLegacyScheme() != 0 {
		out := []string{t.AttrAppAccount, t.AttrLogin}
		if rs.GetLegacyScheme() == 1 {
			out = append(out, t.AttrLegacyPassword)
		}
		return out
	}
	policy := &ticket.AttributePolicy{Release: rs.GetReleaseAttributes(), Masked: rs.GetMaskedAttributes()}
	var out []string
	for _, a := range casAttrOrder {
		if !policy.Releases(a.name) || a.name == "roles" && !rs.GetReleaseRoles() ||
			a.name == "permissions" && !rs.GetReleasePermissions() {
			continue
		}
		text := a.text(t)
		if slices.Contains(rs.GetMaskedAttributes(), a.name) {
			text += " (" + t.AttrMasked + ")"
		}
		if !slices.Contains(out, text) {
			out = append(out, text)
		}
	}
	return append(out, t.AttrSignIn)
}

// consent shows the consent page (or, with prompt=none, answers
// consent_required) when the client asks consent that the person has not
// given: shown reports that the answer is written; err a failure for the
// caller's refusal handling. The service's own flag is asked first; any
// (always) asks the ticket component, which knows the client's other
// services (review sec30c M2). With prompt=none and consents that cannot
// be read, the client is answered temporarily_unavailable (review sec30c
// L2).
func (h *Handler) consent(w http.ResponseWriter, r *http.Request, tgt string, p loginParams, rs *ticketv1.RegisteredService, always bool) (bool, error) {
	if !rs.GetConsentRequired() && !always {
		return false, nil
	}
	q := p.oidc
	ctx, cancel := h.ctx(r)
	res, err := h.o.Tickets.ConsentPrompt(ctx, &ticketv1.ConsentRequest{Tgt: tgt, RedirectUri: q.redirectURI, ClientId: q.clientID,
		Scope: q.scope, Force: q.forceConsent})
	cancel()
	if err != nil {
		if p.gateway && consentDown(err) {
			h.oidcBack(w, r, q, oauthError{code: "temporarily_unavailable", desc: "consents cannot be read now; try again later"})
			return true, nil
		}
		return false, err
	}
	if !res.GetNeeded() {
		return false, nil
	}
	if p.gateway {
		h.oidcBack(w, r, q, oauthError{code: "consent_required", desc: "the person has not consented to the scope asked for"})
		return true, nil
	}
	h.consentPage(w, r, http.StatusOK, q, rs.GetName(), res, "")
	return true, nil
}

// consentDown reports whether err is the ticket component's (or its
// consent store's) passing outage.
func consentDown(err error) bool {
	return reasonOf(err) == "CONSENT_UNAVAILABLE" || status.Code(err) == codes.Unavailable
}

// casConsent shows the consent page of a CAS (or ssoAuthService) service
// whose client asks consent that the person has not given (review sec30c
// H1): the same page and record as OpenID Connect's, for casConsentScope.
// With gateway the browser goes back to the service without a ticket, as
// without a session.
func (h *Handler) casConsent(w http.ResponseWriter, r *http.Request, tgt string, p loginParams, service string, rs *ticketv1.RegisteredService) {
	if p.gateway {
		h.backWithout(w, r, p, "consent_required")
		return
	}
	ctx, cancel := h.ctx(r)
	res, err := h.o.Tickets.ConsentPrompt(ctx, &ticketv1.ConsentRequest{Tgt: tgt, RedirectUri: service, ClientId: rs.GetAppId(),
		Scope: casConsentScope, Force: true})
	cancel()
	if err != nil {
		h.fault(w, r, err)
		return
	}
	h.consentPageFor(w, r, http.StatusOK, casConsentScope, "", service, p.consentNonce, rs, res, "")
}

func (h *Handler) consentPage(w http.ResponseWriter, r *http.Request, code int, q *oidcRequest, name string, res *ticketv1.ConsentPromptResponse, errMsg string) {
	// the consent page is not the one forced again once answered; its
	// max_age is checked again when the person answers (review sec30c I2)
	fq := *q
	fq.forceConsent = false
	h.consentPageFor(w, r, code, q.scope, fq.encodeWithMaxAge(), "", "", &ticketv1.RegisteredService{Name: name}, res, errMsg)
}

// consentPageFor is the consent page for scope, answering the OpenID
// Connect request oidc (encoded) or the CAS service (its registration rs:
// the page lists what it releases, casReleased).
// renew is the nonce of the renew login the page follows ("" none).
func (h *Handler) consentPageFor(w http.ResponseWriter, r *http.Request, code int, scope, oidc, service, renew string, rs *ticketv1.RegisteredService, res *ticketv1.ConsentPromptResponse, errMsg string) {
	t := h.texts(r)
	v := &consentView{Days: int(res.GetTtlSeconds() / (24 * 3600)), Granted: res.GetGranted(), RenewNonce: renew}
	if res.GetUntil() != nil {
		v.Until = res.GetUntil().AsTime().UTC().Format(pageTime)
	}
	if scope == "" {
		scope = "openid"
	}
	if service != "" {
		v.Scopes = casReleased(t, rs)
	} else {
		for _, s := range strings.Fields(scope) {
			v.Scopes = append(v.Scopes, t.scopeText(s))
		}
	}
	h.page(w, r, code, "consent", pageData{CSRF: h.csrf(w, r), Action: h.o.Prefix + "oidc/consent", AppName: rs.GetName(),
		OIDC: oidc, Service: service, Consent: v, Error: errMsg})
}

// oidcConsent is POST <prefix>oidc/consent: the person's answer.
func (h *Handler) oidcConsent(w http.ResponseWriter, r *http.Request) {
	t := h.texts(r)
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"login", t.SignIn)
		return
	}
	if r.PostForm.Get("oidc") == "" && r.PostForm.Get("service") != "" {
		h.casConsentAnswer(w, r)
		return
	}
	ov, err := url.ParseQuery(r.PostForm.Get("oidc"))
	if err != nil || ov.Get("client_id") == "" || ov.Get("redirect_uri") == "" {
		h.message(w, r, http.StatusBadRequest, true, t.BadServiceHead, t.OIDCMissing, "", "")
		return
	}
	rs, ok := h.match(w, r, ov.Get("redirect_uri"))
	if !ok {
		return
	}
	q, perr := parseOIDC(ov, true)
	// (Whether the client asks consent is the ticket component's: any of
	// its services may.)
	if rs.GetAppId() != q.clientID || perr != nil {
		h.message(w, r, http.StatusBadRequest, true, t.BadServiceHead, t.BadService, "", "")
		return
	}
	tgt, sess, ok := h.session(w, r)
	if !ok {
		return
	}
	decision := r.PostForm.Get("decision")
	if !h.csrfOK(r) || (decision != "allow" && decision != "deny") {
		// the page again, with a fresh token: nothing was recorded
		ctx, cancel := h.ctx(r)
		res, err := h.o.Tickets.ConsentPrompt(ctx, &ticketv1.ConsentRequest{Tgt: tgt, RedirectUri: q.redirectURI, ClientId: q.clientID,
			Scope: q.scope, Force: true})
		cancel()
		if err != nil {
			h.fault(w, r, err)
			return
		}
		h.consentPage(w, r, http.StatusForbidden, q, rs.GetName(), res, t.ConsentCSRF)
		return
	}
	ctx, cancel := h.ctx(r)
	_, err = h.o.Tickets.AnswerConsent(ctx, &ticketv1.AnswerConsentRequest{Allow: decision == "allow",
		Request: &ticketv1.ConsentRequest{Tgt: tgt, RedirectUri: q.redirectURI, ClientId: q.clientID, Scope: q.scope}})
	cancel()
	if err != nil {
		if reasonOf(err) == "SESSION_NOT_FOUND" {
			h.clearTGC(w, r)
			h.loginPage(w, r, http.StatusOK, loginParams{service: q.redirectURI, oidc: q}, rs, "", "")
			return
		}
		h.fault(w, r, err)
		return
	}
	if decision == "deny" {
		h.o.Log.Info("OpenID Connect consent denied by the person", zap.String("client_id", q.clientID))
		h.oidcBack(w, r, q, oauthError{code: "access_denied", desc: "the person did not consent"})
		return
	}
	// The request's max_age weighs on the session as the code is issued
	// (a page left open past it signs in again; review sec30c I2).
	p := loginParams{service: q.redirectURI, oidc: q}
	if !h.oidcSessionOK(w, r, p, rs, sess) {
		return
	}
	h.sendToService(w, r, tgt, p, rs, false)
}

// casConsentAnswer is the person's answer on a CAS service's consent page
// (review sec30c H1): allowed, the service's ticket; denied, back to the
// service without one.
func (h *Handler) casConsentAnswer(w http.ResponseWriter, r *http.Request) {
	service := r.PostForm.Get("service")
	rs, ok := h.match(w, r, service)
	if !ok {
		return
	}
	tgt, _, ok := h.session(w, r)
	if !ok {
		return
	}
	p := loginParams{service: service}
	decision := r.PostForm.Get("decision")
	if !h.csrfOK(r) || (decision != "allow" && decision != "deny") {
		ctx, cancel := h.ctx(r)
		res, err := h.o.Tickets.ConsentPrompt(ctx, &ticketv1.ConsentRequest{Tgt: tgt, RedirectUri: service, ClientId: rs.GetAppId(),
			Scope: casConsentScope, Force: true})
		cancel()
		if err != nil {
			h.fault(w, r, err)
			return
		}
		h.consentPageFor(w, r, http.StatusForbidden, casConsentScope, "", service, renewNonce(r), rs, res, h.texts(r).ConsentCSRF)
		return
	}
	ctx, cancel := h.ctx(r)
	_, err := h.o.Tickets.AnswerConsent(ctx, &ticketv1.AnswerConsentRequest{Allow: decision == "allow",
		Request: &ticketv1.ConsentRequest{Tgt: tgt, RedirectUri: service, ClientId: rs.GetAppId(), Scope: casConsentScope}})
	cancel()
	switch {
	case reasonOf(err) == "SESSION_NOT_FOUND":
		h.clearTGC(w, r)
		h.loginPage(w, r, http.StatusOK, p, rs, "", "")
	case err != nil:
		h.fault(w, r, err)
	case decision == "deny":
		h.o.Log.Info("CAS consent denied by the person", zap.String("app_id", rs.GetAppId()))
		h.backWithout(w, r, p, "access_denied")
	default:
		p.consentNonce = renewNonce(r)
		h.sendToService(w, r, tgt, p, rs, false)
	}
}

// myApps reads the person's applications for the profile page (nil and
// false when the ticket component does not answer: the page says so).
func (h *Handler) myApps(r *http.Request, tgt string) ([]myAppView, bool) {
	ctx, cancel := h.ctx(r)
	res, err := h.o.Tickets.MyApplications(ctx, &ticketv1.MyApplicationsRequest{Tgt: tgt})
	cancel()
	if err != nil {
		h.o.Log.Warn("profile: the person's applications were not read", zap.Error(err))
		return nil, false
	}
	var out []myAppView
	for _, a := range res.GetApplications() {
		v := myAppView{AppID: a.GetAppId(), Name: a.GetName(), Account: a.GetAccount(), Scope: a.GetScope(), Revocable: a.GetRevocable(),
			ScopeText:  h.texts(r).scopeTexts(a.GetScope()),
			RemoveLink: h.o.Prefix + "profile/apps/remove?app=" + url.QueryEscape(a.GetAppId())}
		if a.GetGrantedAt() != nil {
			v.GrantedAt = a.GetGrantedAt().AsTime().UTC().Format(pageTime)
		}
		if a.GetExpiresAt() != nil {
			v.ExpiresAt = a.GetExpiresAt().AsTime().UTC().Format(pageTime)
		}
		if a.GetSignedInAt() != nil {
			v.SignedInAt = a.GetSignedInAt().AsTime().UTC().Format(pageTime)
		}
		out = append(out, v)
	}
	return out, true
}

// appRemoveForm is GET /cas/profile/apps/remove?app=ID: the confirm step.
func (h *Handler) appRemoveForm(w http.ResponseWriter, r *http.Request) {
	tgt, _, ok := h.session(w, r)
	if !ok {
		return
	}
	h.appRemovePage(w, r, http.StatusOK, tgt, r.URL.Query().Get("app"), "")
}

func (h *Handler) appRemovePage(w http.ResponseWriter, r *http.Request, code int, tgt, appID, errMsg string) {
	t := h.texts(r)
	apps, ok := h.myApps(r, tgt)
	if !ok {
		h.message(w, r, http.StatusServiceUnavailable, true, t.ErrorHead, t.TryLater, h.o.Prefix+"profile", t.ProfileHead)
		return
	}
	for i := range apps {
		if apps[i].AppID == appID {
			h.page(w, r, code, "appremove", pageData{CSRF: h.csrf(w, r), Action: h.o.Prefix + "profile/apps/remove",
				AppName: apps[i].Name, MyApp: &apps[i], Error: errMsg, ProfileLink: h.o.Prefix + "profile"})
			return
		}
	}
	h.message(w, r, http.StatusNotFound, true, t.MyAppsHead, t.MyAppNotFound, h.o.Prefix+"profile", t.ProfileHead)
}

// appRemovePost is POST /cas/profile/apps/remove: the person removes an
// application's access (their own: the session's person).
func (h *Handler) appRemovePost(w http.ResponseWriter, r *http.Request) {
	t := h.texts(r)
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"profile", t.ProfileHead)
		return
	}
	tgt, _, ok := h.session(w, r)
	if !ok {
		return
	}
	appID := r.PostForm.Get("app")
	if len(appID) > 128 || appID == "" {
		h.message(w, r, http.StatusBadRequest, true, t.MyAppsHead, t.MyAppNotFound, h.o.Prefix+"profile", t.ProfileHead)
		return
	}
	if !h.csrfOK(r) {
		h.appRemovePage(w, r, http.StatusForbidden, tgt, appID, t.ProfileCSRF)
		return
	}
	ctx, cancel := h.ctx(r)
	_, err := h.o.Tickets.RevokeMyApplication(ctx, &ticketv1.RevokeMyApplicationRequest{Tgt: tgt, AppId: appID})
	cancel()
	switch reasonOf(err) {
	case "":
		http.Redirect(w, r, h.o.Prefix+"profile?done=app-removed", http.StatusSeeOther)
	case "MY_APPLICATION_NOT_FOUND", "BAD_REQUEST":
		h.message(w, r, http.StatusNotFound, true, t.MyAppsHead, t.MyAppNotFound, h.o.Prefix+"profile", t.ProfileHead)
	case "SESSION_NOT_FOUND":
		h.clearTGC(w, r)
		http.Redirect(w, r, h.o.Prefix+"login", http.StatusSeeOther)
	default:
		h.fault(w, r, err)
	}
}

// renewNonce is the renew login's nonce the consent form sent back (""
// none or not one the edge makes: randomToken's 32 characters).
func renewNonce(r *http.Request) string {
	n := r.PostForm.Get("renew_nonce")
	if len(n) != 32 {
		return ""
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return n
}
