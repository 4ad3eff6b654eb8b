// Package console is the graphical management console served by the REST
// edge under /console/: server-rendered pages (html/template, no script)
// through which administrators manage people and orgs and read the audit
// log. It holds no authority of its own: every page calls the components'
// administrator RPCs with the signed-in administrator's bearer token, so
// what a person sees and may change (a unit administrator's subtree, the
// auditor's read-only access, a subtree homed at another centre) is what
// the services decide, and their refusals are shown as the services word
// them (docs/adr/0028-management-console.md).
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/pagelang"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

//go:embed templates/*.html
var templateFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return ""
		}
		return t.AsTime().UTC().Format("2006-01-02 15:04:05Z")
	},
	"node": func(prefix string, n *orgNode, sel *identityv1.Org) any {
		return struct {
			P   string
			N   *orgNode
			Sel *identityv1.Org
		}{prefix, n, sel}
	},
	"results":       func() []string { return []string{"success", "failure", "denied", "incomplete"} },
	"passwordStamp": passwordStamp,
	"join":          func(v []string) string { return strings.Join(v, ", ") },
	"secretStamp":   secretStamp,
}).ParseFS(templateFiles, "templates/*.html"))

// Prefix is the console's path on the edge.
const Prefix = "/console/"

// Cookie names. The session cookie holds the administrator's bearer token
// (HttpOnly, SameSite=Strict, Secure under TLS, path /console/): the
// console keeps no state, so any edge replica serves any page.
const (
	sessionCookie = "uias_console"
	loginCSRF     = "uias_console_csrf"
	langCookie    = "uias_console_lang"
)

// Options configures the console.
type Options struct {
	// Admin is identity's AdminService (sign-in, people, orgs).
	Admin identityv1.AdminServiceClient
	// AuditQuery and AuditLog are audit's services (the audit page, the
	// backup reminder); nil: the audit page says it is unavailable.
	AuditQuery auditv1.AuditQueryServiceClient
	AuditLog   auditv1.AuditLogServiceClient
	// AuditReport exports records as files (the audit page's downloads);
	// nil: they say the audit log is unavailable.
	AuditReport auditv1.AuditReportServiceClient
	// Authz is authz's AuthzAdminService (roles and grants); nil: those
	// sections say they are unavailable.
	Authz authzv1.AuthzAdminServiceClient
	// Registry is ticket's ServiceRegistryService (the services pages);
	// nil: they say the single sign-on component is unavailable.
	Registry ticketv1.ServiceRegistryServiceClient
	Log      *zap.Logger
	// Prefix is where the console is mounted ("/console/").
	Prefix string
	// CallTimeout bounds each call to a component (default 15s).
	CallTimeout time.Duration
}

// Handler serves the console.
type Handler struct {
	o   Options
	mux *http.ServeMux
}

// csp allows the page's own style element (its nonce) and nothing else:
// no script, no frames, forms only to the console itself.
const csp = "default-src 'none'; style-src 'nonce-%s'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New returns the console handler.
func New(o Options) *Handler {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Prefix == "" {
		o.Prefix = "/console/"
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 15 * time.Second
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	p := o.Prefix
	h.mux.HandleFunc("GET "+p+"{$}", h.home)
	h.mux.HandleFunc("GET "+p+"login", h.loginPage)
	h.mux.HandleFunc("POST "+p+"login", h.login)
	h.mux.HandleFunc("POST "+p+"logout", h.signed(h.logout))
	h.mux.HandleFunc("GET "+p+"people", h.signed(h.people))
	h.mux.HandleFunc("GET "+p+"people/new", h.signed(h.newPerson))
	h.mux.HandleFunc("POST "+p+"people", h.signed(h.createPerson))
	h.mux.HandleFunc("GET "+p+"people/{id}", h.signed(h.person))
	h.mux.HandleFunc("POST "+p+"people/{id}/{action}", h.signed(h.personAction))
	h.mux.HandleFunc("GET "+p+"orgs", h.signed(h.orgs))
	h.mux.HandleFunc("POST "+p+"orgs", h.signed(h.createOrg))
	h.mux.HandleFunc("POST "+p+"orgs/{id}/{action}", h.signed(h.orgAction))
	h.mux.HandleFunc("GET "+p+"audit", h.signed(h.audit))
	h.mux.HandleFunc("GET "+p+"audit/export", h.signed(h.auditExport))
	h.mux.HandleFunc("GET "+p+"apps", h.signed(h.apps))
	h.mux.HandleFunc("GET "+p+"apps/new", h.signed(h.newApp))
	h.mux.HandleFunc("POST "+p+"apps", h.signed(h.createApp))
	h.mux.HandleFunc("GET "+p+"apps/{id}", h.signed(h.app))
	h.mux.HandleFunc("POST "+p+"apps/{id}/{action}", h.signed(h.appAction))
	h.mux.HandleFunc("GET "+p+"roles", h.signed(h.roles))
	h.mux.HandleFunc("GET "+p+"groups", h.signed(h.groups))
	h.mux.HandleFunc("GET "+p+"groups/new", h.signed(h.newGroup))
	h.mux.HandleFunc("POST "+p+"groups", h.signed(h.createGroup))
	h.mux.HandleFunc("GET "+p+"groups/{id}", h.signed(h.group))
	h.mux.HandleFunc("POST "+p+"groups/{id}/{action}", h.signed(h.groupAction))
	h.mux.HandleFunc("POST "+p+"people/{id}/roles/{action}", h.signed(h.grantAction))
	h.mux.HandleFunc("POST "+p+"people/{id}/certs/{action}", h.signed(h.certAction))
	h.mux.HandleFunc("GET "+p+"certs", h.signed(h.certsPage))
	h.mux.HandleFunc("GET "+p+"services", h.signed(h.services))
	h.mux.HandleFunc("GET "+p+"services/{id}", h.signed(h.service))
	h.mux.HandleFunc("POST "+p+"services/{id}/{action}", h.signed(h.serviceAction))
	h.mux.HandleFunc("POST "+p+"certs", h.signed(h.bindCerts))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer browsers send
	// "Origin: null" with form posts, which sameOrigin could not tell
	// from another site's
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method == http.MethodPost && !sameOrigin(r) {
		h.forbidden(w, r, "csrf")
		return
	}
	h.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a POST another site's page sent: by the browser's
// Sec-Fetch-Site (every current browser sends it; it holds behind a proxy
// that rewrites Host), else by Origin (or Referer) against the request's
// host. A request with none of them (not a browser) passes: it cannot
// carry the session's form token anyway.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// session is the signed-in administrator of one request.
type session struct {
	token string
	csrf  string
}

// ctx is the request's context carrying the administrator's token, bounded
// by the call timeout.
func (h *Handler) ctx(r *http.Request, s *session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), h.o.CallTimeout)
	if s == nil || s.token == "" {
		return ctx, cancel
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.token), cancel
}

// exportCtx is ctx for a file download: as long as the request lasts (a
// large export takes longer than a page's call), the client's leaving
// ends it.
func (h *Handler) exportCtx(r *http.Request, s *session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.token), cancel
}

// partCtx is ctx for a page's secondary calls (org names, a person's
// roles, the state shown after a refusal, the backup reminder): the
// page's own call carries the access record; theirs would only repeat it
// in the audit log (grpcx.PartOf; review sec28a M2).
func (h *Handler) partCtx(r *http.Request, s *session) (context.Context, context.CancelFunc) {
	ctx, cancel := h.ctx(r, s)
	return grpcx.PartOf(ctx), cancel
}

// csrfFor is the session's form token: an HMAC of a fixed label keyed by
// the bearer token, which no other site can compute (it never sees the
// cookie) and which tells nothing about the token.
func csrfFor(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("uias console form"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signed serves fn to a signed-in administrator, checking every POST's
// form token (constant time); others go to the sign-in page.
func (h *Handler) signed(fn func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(sessionCookie)
		if err != nil || c.Value == "" {
			h.toLogin(w, r, "")
			return
		}
		if n := countCookies(r, sessionCookie); n > 1 {
			// Another cookie of the name, set for a parent domain by a
			// sibling site, would shadow the console's own (browsers send
			// both; which is first is theirs to choose): no session is
			// taken from such a request (review sec28a L2).
			h.o.Log.Warn("console request with several session cookies refused (one may have been set by another site of the domain)",
				zap.Int("cookies", n))
			h.clearSession(w, r)
			h.toLogin(w, r, "cookies")
			return
		}
		s := &session{token: c.Value, csrf: csrfFor(c.Value)}
		if r.Method == http.MethodPost {
			parse := r.ParseForm
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				// the bulk certificate upload: bounded, held in memory
				r.Body = http.MaxBytesReader(w, r.Body, maxCertUpload+1<<20)
				parse = func() error { return r.ParseMultipartForm(maxCertUpload + 1<<20) }
			}
			if err := parse(); err != nil {
				if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
					// an upload over the bound: say so (review sec30c L4)
					d := h.data(r, nil, "")
					d.Error = d.T("certsTooBig")
					h.render(w, r, http.StatusRequestEntityTooLarge, "message", d)
					return
				}
				h.forbidden(w, r, "form")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
				h.forbidden(w, r, "csrf")
				return
			}
		}
		fn(w, r, s)
	}
}

func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, why string) {
	u := h.o.Prefix + "login"
	if why != "" {
		u += "?why=" + why
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request, what string) {
	d := h.data(r, nil, "")
	d.Error = d.T("csrf")
	if what == "form" {
		d.Error = d.T("badForm")
	}
	h.render(w, r, http.StatusForbidden, "message", d)
}

// failed answers a service's refusal: an expired or revoked token goes
// back to the sign-in page (the cookie cleared); anything else shows the
// service's own message on page name with d.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, err error, name string, d *pageData) {
	if code, ok := h.refusal(w, r, err, d); ok {
		h.render(w, r, code, name, *d)
	}
}

// refusal puts the service's refusal into d.Error and returns the page's
// HTTP status; for an expired or revoked token it clears the session,
// sends the browser to the sign-in page and returns false.
func (h *Handler) refusal(w http.ResponseWriter, r *http.Request, err error, d *pageData) (int, bool) {
	st := statusOf(err)
	if st.Code() == codes.Unauthenticated {
		h.clearSession(w, r)
		h.toLogin(w, r, "expired")
		return 0, false
	}
	d.Error = message(st, d)
	code := http.StatusBadGateway
	if c := apierr.HTTPStatus(st); c >= 400 {
		code = c
	}
	return code, true
}

// message is what a person reads for a refusal: the service's sentence
// (they are written for people, in English), or a line of the console's
// own when the service could not be reached. On a page in another
// language the service's sentence follows a lead in that language that
// says what kind of refusal it is (by its gRPC code), so that a Chinese
// page never shows an English sentence alone.
func message(st *status.Status, d *pageData) string {
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return d.T("unavailable")
	case codes.Unknown, codes.Internal:
		return d.T("internal")
	}
	if ae, ok := apierr.FromStatus(st.Err()); ok {
		if key, ok := reasonTexts[ae.Reason]; ok {
			return d.T(key)
		}
	}
	key, ok := refusedTexts[st.Code()]
	if !ok {
		key = "refusedOther"
	}
	if lead := d.T(key); lead != "" {
		return lead + " " + st.Message()
	}
	return st.Message()
}

// refusedTexts are the leads of the services' refusals, by gRPC code.
var refusedTexts = map[codes.Code]string{
	codes.PermissionDenied:   "refusedDenied",
	codes.NotFound:           "refusedNotFound",
	codes.AlreadyExists:      "refusedExists",
	codes.InvalidArgument:    "refusedInput",
	codes.OutOfRange:         "refusedInput",
	codes.FailedPrecondition: "refusedState",
	codes.Aborted:            "refusedState",
	codes.Unauthenticated:    "refusedLogin",
	codes.ResourceExhausted:  "refusedBusy",
}

// The services' reasons the console acts on or words itself. They are
// identity's (the gateway does not import the services): tests/reasons
// checks that each is registered (ReasonsHandled), so a rename there
// fails the build's tests, not a sign-in prompt (review rr29 C2).
const (
	reasonTOTPCodeRequired       = "TOTP_CODE_REQUIRED"
	reasonPasswordChangeRequired = "PASSWORD_CHANGE_REQUIRED"
	reasonPasswordChangedSince   = "PASSWORD_CHANGED_SINCE"
	reasonSecretRotatedSince     = "SECRET_ROTATED_SINCE"
)

// ReasonsHandled lists the reasons the console acts on by name.
func ReasonsHandled() []string {
	return []string{reasonTOTPCodeRequired, reasonPasswordChangeRequired, reasonPasswordChangedSince, reasonSecretRotatedSince}
}

// reasonTexts are the refusals the console words itself (in the page's
// language), by reason: those a console form provokes by design.
var reasonTexts = map[string]string{
	reasonPasswordChangedSince: "resetStale",  // a reload of a reset's answer
	reasonSecretRotatedSince:   "rotateStale", // a double click, a reload of a rotation's answer
}

func (h *Handler) clearSession(w http.ResponseWriter, r *http.Request) {
	for _, name := range []string{sessionCookie, backupCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: h.o.Prefix, MaxAge: -1, HttpOnly: true,
			Secure: module.RequestHTTPS(r), SameSite: http.SameSiteStrictMode})
	}
}

// countCookies counts r's cookies named name.
func countCookies(r *http.Request, name string) int {
	n := 0
	for _, c := range r.Cookies() {
		if c.Name == name {
			n++
		}
	}
	return n
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pageData is what every page template gets.
type pageData struct {
	Lang, OtherLang, Nonce, Prefix string
	SwitchQuery                    template.URL
	// CSRF is the form token of every form on the page.
	CSRF string
	// Who is the signed-in administrator's login name ("" on the sign-in page).
	Signed       bool
	Nav          string
	Error, Done  string
	BackupReport string
	Page         any
	// Heading names the page in its title (set by render from the page's
	// template), so that each page's title says which page it is.
	Heading string
}

// pageHeadings are the text keys that name each page template in the
// page's title; a person's, application's, group's or service's page is
// named by its list.
var pageHeadings = map[string]string{
	"login": "signIn", "people": "people", "person": "people", "newperson": "newPerson", "orgs": "orgs",
	"groups": "groups", "group": "groups", "newgroup": "newGroup", "apps": "apps", "app": "apps", "newapp": "newApp",
	"services": "services", "service": "services", "certs": "certs", "roles": "roles", "audit": "audit",
}

// T is the page's text for key in its language.
func (d pageData) T(key string) string {
	if s, ok := texts[d.Lang][key]; ok {
		return s
	}
	return texts["en"][key]
}

// data starts a page's data; s nil on the sign-in page.
func (h *Handler) data(r *http.Request, s *session, nav string) pageData {
	d := pageData{Lang: language(r), Prefix: h.o.Prefix, Nav: nav, Signed: s != nil}
	d.OtherLang = "en"
	if d.Lang == "en" {
		d.OtherLang = "zh-CN"
	}
	if s != nil {
		d.CSRF = s.csrf
		if c, err := r.Cookie(backupCookie); err == nil {
			d.BackupReport = backupReport(&d, c.Value)
		}
	}
	q := r.URL.Query()
	q.Set("locale", d.OtherLang)
	d.SwitchQuery = template.URL("?" + q.Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	if done := q.Get("done"); done != "" {
		if _, ok := texts["en"]["done."+done]; ok {
			d.Done = d.T("done." + done)
		}
	}
	return d
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, name string, d pageData) {
	if r.URL.Query().Get("locale") != "" {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: d.Lang, Path: h.o.Prefix, MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: module.RequestHTTPS(r), SameSite: http.SameSiteStrictMode})
	}
	d.Nonce = randomToken()
	if key, ok := pageHeadings[name]; ok {
		d.Heading = d.T(key)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", fmt.Sprintf(csp, d.Nonce))
	w.WriteHeader(code)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		h.o.Log.Warn("render console page", zap.String("page", name), zap.Error(err))
	}
}

// language picks the page language: ?locale=, then the switch's cookie,
// then Accept-Language (pkg/pagelang).
func language(r *http.Request) string { return pagelang.Of(r, langCookie) }

// redirectDone sends the browser to path with a "done" note (Post,
// Redirect, Get: a reload repeats nothing).
func (h *Handler) redirectDone(w http.ResponseWriter, r *http.Request, path, done string) {
	u := h.o.Prefix + path
	if done != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "done=" + url.QueryEscape(done)
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// backupCookie keeps the backup reminder between pages: "never", or the
// date of the last backup, while one is due. It is read at sign-in and on
// the audit page (not on every page: each call is an audit record of its
// own). It tells nothing secret; a person who forges it fools only their
// own browser.
const backupCookie = "uias_console_backup"

// checkBackup asks audit whether the administrator of token may back the
// log up (the auditor) and a backup is due, as `uias ctl login` does, and
// keeps the answer in the reminder's cookie (cleared when none is due).
// It returns the cookie's value ("" none).
func (h *Handler) checkBackup(w http.ResponseWriter, r *http.Request, token string) string {
	if h.o.AuditLog == nil {
		return ""
	}
	ctx, cancel := h.partCtx(r, &session{token: token})
	defer cancel()
	val := ""
	st, err := h.o.AuditLog.GetArchiveStatus(ctx, &auditv1.GetArchiveStatusRequest{IfAllowed: true})
	if err == nil && st.GetAllowed() && st.GetBackupDue() {
		val = "never"
		if b := st.GetLastBackup(); b != nil {
			val = b.GetTime().AsTime().UTC().Format(time.DateOnly)
		}
	}
	ck := &http.Cookie{Name: backupCookie, Value: val, Path: h.o.Prefix, HttpOnly: true, Secure: module.RequestHTTPS(r),
		SameSite: http.SameSiteStrictMode}
	if val == "" {
		ck.MaxAge = -1
	}
	http.SetCookie(w, ck)
	return val
}

// backupReport is the reminder's sentence for the cookie's value.
func backupReport(d *pageData, val string) string {
	switch {
	case val == "never":
		return d.T("backupNever")
	case len(val) == len(time.DateOnly):
		if _, err := time.Parse(time.DateOnly, val); err == nil {
			return fmt.Sprintf(d.T("backupLast"), val)
		}
	}
	return ""
}

// statusOf is err's gRPC status.
func statusOf(err error) *status.Status { return status.Convert(err) }
