package cas

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// External authenticators at the sign-in page (ADR 0045): identity's
// identity.external_authenticators (a face, an SMS code, a token's code,
// checked by a vendor's program over gRPC) are offered as links
// ("Sign in with <label>", /cas/login?external=NAME&…). Their form asks
// the login name and the credential: a code typed in (field
// "credential"), or a blob a vendor's capture integration puts in the
// form (field "credential_b64", base64); with the password as well where
// the authenticator is a second factor, or where the application needs
// level 2 and the authenticator alone gives 1. identity's
// SSOService.ExternalLogin checks them.

// externalRefresh is how long the list of authenticators identity
// answered is used before it is asked again.
const externalRefresh = time.Minute

// externalRetry is how soon identity is asked again after it failed to
// list the authenticators while no list was ever read (after a start).
const externalRetry = 5 * time.Second

// maxExternalCredential bounds a form's credential (identity takes 64
// KiB; base64 of it).
const maxExternalCredential = 4 * 65536 / 3

var externalNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// externalList caches identity's list of external authenticators.
type externalList struct {
	mu   sync.Mutex
	list []*identityv1.ExternalAuthenticatorInfo
	at   time.Time
	ok   bool
	// read: a list was read once (an error keeps it for externalRefresh;
	// before, for externalRetry only).
	read bool
}

// externals is identity's list of external authenticators (the last one
// read, asked again after externalRefresh; none until one answer came).
// identity is asked under a context the page's request does not cancel
// (sec31a L3): a browser that drops its connection must not fail the
// read and leave every page without the authenticators until the next.
func (h *Handler) externals(ctx context.Context) []*identityv1.ExternalAuthenticatorInfo {
	if h.o.ListExternal == nil {
		return nil
	}
	x := &h.ext
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.ok && h.o.Now().Sub(x.at) < externalRefresh {
		return x.list
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	list, err := h.o.ListExternal(ctx)
	if err != nil {
		if status.Code(err) != codes.Unimplemented {
			h.o.Log.Warn("CAS page: the external authenticators could not be listed", zap.Error(err))
		}
		// Asked again after the refresh, not at every page; sooner while
		// no list was ever read (identity starting with ticket).
		x.at, x.ok = h.o.Now(), true
		if !x.read && status.Code(err) != codes.Unimplemented {
			x.at = x.at.Add(externalRetry - externalRefresh)
		}
		return x.list
	}
	x.list, x.at, x.ok, x.read = list, h.o.Now(), true, true
	return x.list
}

// externalNamed is the authenticator name names (nil: none).
func (h *Handler) externalNamed(ctx context.Context, name string) *identityv1.ExternalAuthenticatorInfo {
	if name == "" {
		return nil
	}
	for _, e := range h.externals(ctx) {
		if e.GetName() == name {
			return e
		}
	}
	return nil
}

// externalLink is the login page's link to an authenticator's form.
type externalLink struct {
	Name, Text, Href string
}

// externalNeedsPassword: the form of e asks the password too (a second
// factor, or the application's level 2 that e alone does not reach).
func externalNeedsPassword(e *identityv1.ExternalAuthenticatorInfo, rs *ticketv1.RegisteredService) bool {
	return e.GetRequirePassword() || rs.GetMinAuthLevel() >= twoFactorLevel && e.GetLevel() < twoFactorLevel
}

// externalForm sets up d, the login page of p: the authenticator's form
// (reports true) when p names one (external=NAME), else the links to
// each form.
func (h *Handler) externalForm(r *http.Request, p loginParams, rs *ticketv1.RegisteredService, d *pageData) bool {
	ctx, cancel := h.ctx(r)
	defer cancel()
	list := h.externals(ctx)
	if len(list) == 0 || rs.GetCertificateRequired() {
		return false
	}
	q := p.query()
	if p.renew {
		q.Set("renew", "true")
	}
	if e := h.externalNamed(ctx, p.external); e != nil {
		if p.twoFactor {
			q.Set("twofactor", "1")
		}
		d.External, d.ExternalLabel = e.GetName(), e.GetLabel()
		d.ExternalPassword = externalNeedsPassword(e, rs)
		d.PasswordLoginLink, d.CertLogin = h.o.Prefix+"login?"+q.Encode(), false
		if rs != nil {
			d.AppName = rs.GetName()
		}
		return true
	}
	t := h.texts(r)
	for _, e := range list {
		q.Set("external", e.GetName())
		d.ExternalLinks = append(d.ExternalLinks, externalLink{Name: e.GetName(), Text: strings.ReplaceAll(t.ExternalLink, "%s", e.GetLabel()),
			Href: h.o.Prefix + "login?" + q.Encode()})
	}
	return false
}

// externalCredential is the form's credential: the base64 blob of a
// vendor's capture (credential_b64), else the code typed in.
func externalCredential(r *http.Request) ([]byte, bool) {
	if raw := r.PostFormValue("credential_b64"); strings.TrimSpace(raw) != "" {
		if len(raw) > maxExternalCredential {
			return nil, false
		}
		return fingerRecord(raw)
	}
	c := strings.TrimSpace(r.PostFormValue("credential"))
	return []byte(c), c != "" && len(c) <= 1024
}

// externalLoginPost is POST /cas/login with external=NAME: the login
// name and the credential (and the password where the form asked for
// it). Refusals are one answer, as for passwords and fingers (which
// account exists, may use the authenticator or is locked is not told),
// except an authenticator that gave no verdict (503, "try again later").
func (h *Handler) externalLoginPost(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService) {
	t := h.texts(r)
	ctx, cancel := h.ctx(r)
	defer cancel()
	e := h.externalNamed(ctx, p.external)
	if e == nil {
		p.external = ""
		h.loginPage(w, r, http.StatusBadRequest, p, rs, t.ExternalOff, "")
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	if username == "" || len(username) > 128 || len(password) > 1024 {
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.ExternalFailed, username)
		return
	}
	cred, ok := externalCredential(r)
	if !ok {
		h.loginPage(w, r, http.StatusBadRequest, p, rs, t.ExternalNone, username)
		return
	}
	if rs.GetCertificateRequired() {
		p.external = ""
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, "", "")
		return
	}
	if externalNeedsPassword(e, rs) && password == "" {
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.ExternalNeedPassword, username)
		return
	}
	binding, setBinding := h.otpBinding(r)
	res, err := h.o.SSO.ExternalLogin(ctx, &identityv1.SSOExternalLoginRequest{Login: username, Type: e.GetName(), Credential: cred,
		Password: password, OtpBinding: binding})
	if err != nil {
		switch {
		case status.Code(err) == codes.InvalidArgument:
			h.loginPage(w, r, http.StatusBadRequest, p, rs, t.ExternalNone, username)
		case reasonOf(err) == "EXTERNAL_AUTHENTICATOR_UNAVAILABLE":
			h.o.Log.Info("CAS page: an external authenticator gave no verdict", zap.String("authenticator", e.GetName()))
			h.loginPage(w, r, http.StatusServiceUnavailable, p, rs, t.ExternalUnavailable, username)
		default:
			h.fault(w, r, err)
		}
		return
	}
	if !h.loginDone(w, r, p, rs, res, setBinding, username, t.ExternalFailed) {
		return
	}
	h.openExternalSession(ctx, w, r, p, rs, res)
}

// openExternalSession opens the session of an external authenticator's
// login res at the level identity says it reached, as the other logins
// do: the same person's session is raised, another person's is not
// switched.
func (h *Handler) openExternalSession(ctx context.Context, w http.ResponseWriter, r *http.Request, p loginParams,
	rs *ticketv1.RegisteredService, res *identityv1.SSOLoginResponse) {
	level := res.GetAuthLevel()
	if !strings.HasPrefix(res.GetMethod(), "external:") || level < 1 || level > twoFactorLevel {
		h.fault(w, r, errUnknownMethod)
		return
	}
	h.raiseSession(ctx, w, r, p, rs, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: level, OrgId: res.GetOrgId(), AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_EXTERNAL,
		PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()}, h.texts(r).OtherPerson)
}
