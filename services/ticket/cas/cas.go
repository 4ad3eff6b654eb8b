// Package cas is the CAS 3.0 protocol and the single sign-on pages of the
// ticket component, served by the edge under /cas/ (module.Pages): login
// (form and credentials, service, renew, gateway, method=POST), logout,
// validate (CAS 1.0), serviceValidate and proxyValidate (2.0),
// p3/serviceValidate and p3/proxyValidate (3.0, with attributes),
// samlValidate (SAML 1.1 over SOAP, with attributes), proxy, XML and JSON
// answers with the CAS error codes. It reaches the ticket
// component and identity over gRPC only.
package cas

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/x509cert"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

//go:embed templates/*.html
var templateFiles embed.FS

var pages = template.Must(template.ParseFS(templateFiles, "templates/*.html"))

// Cookie names.
const (
	// TGCCookie carries the TGT (CAS "ticket-granting cookie").
	TGCCookie  = "TGC"
	csrfCookie = "uias_csrf"
)

// Options configure the handler.
type Options struct {
	Tickets ticketv1.TicketServiceClient
	SSO     identityv1.SSOServiceClient
	Log     *zap.Logger
	// Prefix is where the edge mounts the handler ("/cas/"): the cookie
	// path and the base of the form action.
	Prefix string
	// Client makes the pgtUrl callbacks (HTTPS with certificate
	// verification); nil: a client with the system roots and a 5s timeout.
	Client *http.Client
	// CAS2Attributes releases the attributes at serviceValidate and
	// proxyValidate too, not only at their p3/ forms (Apereo's
	// "v3 forward compatible" CAS 2 views), for clients that validate only
	// at /serviceValidate (e.g. gopkg.in/cas.v2).
	CAS2Attributes bool
	// CallTimeout bounds each call to the components (default 10s), so
	// a fault is an error page, never a hang.
	CallTimeout time.Duration
	// Now is the clock of the answers' times (samlValidate's assertion);
	// nil: time.Now.
	Now func() time.Time
	// PeopleCAs are the CAs of tls.people_ca_file: a client certificate
	// signs a person in only if it chains to one of them (and is for
	// client authentication). nil: any client certificate the edge
	// verified (against tls.client_ca_file), as before that setting.
	PeopleCAs *x509.CertPool
	// OIDCIssuer is the OpenID Connect issuer (ticket.oidc_issuer); empty:
	// the URL each request reached.
	OIDCIssuer string
	// FingerAgent is the URL of the fingerprint reader's capture agent on
	// the person's computer (ticket.finger_agent_url: finger.go); empty:
	// no fingerprint sign-in.
	FingerAgent string
	// ListExternal lists identity's external authenticators
	// (identity.external_authenticators; SSOService.ExternalAuthenticators;
	// external.go), which the login page offers; nil: none.
	ListExternal func(ctx context.Context) ([]*identityv1.ExternalAuthenticatorInfo, error)
	// Kerberos is the Windows domain sign-in (ticket.kerberos: SPNEGO with
	// the keytab; kerberos.go); nil: none.
	Kerberos *Kerberos
	// Centre is this centre's name (ticket.centre): the audience of the
	// peers' assertions.
	Centre string
	// Peers are the centres of sign-in across centres (ticket.peers,
	// peer.go); PeerProbe how often each is checked to answer (30s).
	Peers     []PeerPage
	PeerProbe time.Duration
	// USBKey offers the USB key sign-in (ticket.usb_key: a certificate
	// and its signature of a challenge; usbkey.go); USBKeyScript is the
	// URL of the USB key vendor's script the login page loads, which
	// defines window.uiasSignChallenge (ticket.usb_key_script; empty: the
	// browser's control defines it, e.g. an extension).
	USBKey       bool
	USBKeyScript string
	// USBKeyScriptIntegrity is the vendor script's Subresource Integrity
	// hash (ticket.usb_key_script_integrity, e.g. "sha384-..."; required
	// for a script not on this site).
	USBKeyScriptIntegrity string
	// USBKeyConnect are further origins the page's scripts may reach for
	// the USB key (the vendor control's local agent;
	// ticket.usb_key_connect, validated there).
	USBKeyConnect []string
	// Go runs the peers' probe in the background for the life of the
	// process (module.PagesEnv.Go: the process waits for it when it
	// stops). The login page only reads the latest probe's answers. nil:
	// no probing, and the page offers no peer (tests probe by hand).
	Go func(fn func(ctx context.Context))
}

// Handler serves CAS.
type Handler struct {
	o   Options
	mux *http.ServeMux
	// peerUp: the peers' last probe (peer.go).
	peerUp *peerProbes
	// csp is the pages' Content-Security-Policy (%[1]s: the page's nonce).
	csp string
	// ext: identity's external authenticators (external.go).
	ext externalList
}

// New returns the CAS handler.
func New(o Options) *Handler {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Prefix == "" {
		o.Prefix = "/cas/"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	h := &Handler{o: o, mux: http.NewServeMux(), csp: "default-src 'none'; style-src 'nonce-%[1]s'; script-src 'nonce-%[1]s'; " +
		"form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"}
	var connect []string
	if ao := agentOrigin(o.FingerAgent); ao != "" {
		// the login page's script asks the capture agent for a finger
		connect = append(connect, ao)
	}
	if o.USBKey {
		// the USB key's challenge (this origin), and the origins the
		// operator lists for the vendor control (ticket.usb_key_connect;
		// the script's own origin is not added: sec29a M2)
		connect = append(connect, "'self'")
		connect = append(connect, o.USBKeyConnect...)
	}
	if len(connect) > 0 {
		h.csp += "; connect-src " + strings.Join(connect, " ")
	}
	h.peerUp = newPeerProbes(o)
	if o.Go != nil && len(o.Peers) > 0 {
		o.Go(h.peerUp.run)
	}
	p := o.Prefix
	// Each endpoint with its methods. GET serves HEAD too, except where
	// answering has an effect (a ticket used up or issued, a session
	// ended): there HEAD, which must be safe, answers 405.
	routes := []struct {
		path    string
		methods map[string]http.HandlerFunc
		safe    bool // HEAD served as GET
	}{
		{"login", map[string]http.HandlerFunc{"GET": h.loginForm, "POST": h.loginPost}, false},
		{"cert/challenge", map[string]http.HandlerFunc{"GET": h.certChallenge}, false},
		{"logout", map[string]http.HandlerFunc{"GET": h.logout, "POST": h.logout}, false},
		{"validate", map[string]http.HandlerFunc{"GET": h.validate1}, false},
		{"serviceValidate", map[string]http.HandlerFunc{"GET": h.validator(false, o.CAS2Attributes)}, false},
		{"proxyValidate", map[string]http.HandlerFunc{"GET": h.validator(true, o.CAS2Attributes)}, false},
		{"p3/serviceValidate", map[string]http.HandlerFunc{"GET": h.validator(false, true)}, false},
		{"p3/proxyValidate", map[string]http.HandlerFunc{"GET": h.validator(true, true)}, false},
		{"samlValidate", map[string]http.HandlerFunc{"POST": h.samlValidate}, false},
		{"proxy", map[string]http.HandlerFunc{"GET": h.proxy}, false},
		{"portal", map[string]http.HandlerFunc{"GET": h.portal}, true},
		{"portal/link", map[string]http.HandlerFunc{"POST": h.portalLink}, true},
		{"password", map[string]http.HandlerFunc{"GET": h.passwordForm, "POST": h.passwordPost}, true},
		{"profile", map[string]http.HandlerFunc{"GET": h.profile, "POST": h.profilePost}, true},
		{"profile/totp", map[string]http.HandlerFunc{"GET": h.totpForm, "POST": h.totpPost}, true},
		{"profile/apps/remove", map[string]http.HandlerFunc{"GET": h.appRemoveForm, "POST": h.appRemovePost}, true},
		{"ssoAuthService", map[string]http.HandlerFunc{"GET": h.ssoAuthService, "POST": h.ssoAuthService}, false},
		{"oidc/.well-known/openid-configuration", map[string]http.HandlerFunc{"GET": h.oidcDiscovery}, true},
		{"oidc/jwks", map[string]http.HandlerFunc{"GET": h.oidcJWKS}, true},
		{"oidc/authorize", map[string]http.HandlerFunc{"GET": h.oidcAuthorize, "POST": h.oidcAuthorize}, false},
		{"oidc/consent", map[string]http.HandlerFunc{"POST": h.oidcConsent}, false},
		{"oidc/token", map[string]http.HandlerFunc{"POST": h.oidcToken}, false},
		{"oidc/userinfo", map[string]http.HandlerFunc{"GET": h.oidcUserInfo, "POST": h.oidcUserInfo}, true},
		{"oidc/introspect", map[string]http.HandlerFunc{"POST": h.oidcIntrospect}, false},
		{"oidc/revoke", map[string]http.HandlerFunc{"POST": h.oidcRevoke}, false},
		{"peer/start", map[string]http.HandlerFunc{"POST": h.peerStart}, false},
		{"peer/assert", map[string]http.HandlerFunc{"GET": h.peerAssert}, false},
		{"peer/accept", map[string]http.HandlerFunc{"GET": h.peerAccept}, false},
		{"peer/ping", map[string]http.HandlerFunc{"GET": h.peerPing}, true},
		{"peer/logout", map[string]http.HandlerFunc{"POST": h.peerLogout}, false},
	}
	allowed := map[string]string{} // path -> Allow
	for _, rt := range routes {
		var ms []string
		for m, fn := range rt.methods {
			h.mux.HandleFunc(m+" "+p+rt.path, fn)
			ms = append(ms, m)
		}
		slices.Sort(ms)
		allow := strings.Join(ms, ", ")
		allowed[p+rt.path] = allow
		if !rt.safe && rt.methods["GET"] != nil {
			h.mux.HandleFunc("HEAD "+p+rt.path, func(w http.ResponseWriter, _ *http.Request) { notAllowed(w, allow) })
		}
	}
	h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == p {
			http.Redirect(w, r, p+"login", http.StatusFound)
			return
		}
		if allow, ok := allowed[r.URL.Path]; ok { // a known endpoint, another method
			if strings.HasPrefix(r.URL.Path, p+"oidc/") && r.URL.Path != p+"oidc/authorize" && r.URL.Path != p+"oidc/consent" {
				// the OpenID Connect endpoints programs call answer
				// OAuth's JSON error, as their other refusals
				w.Header().Set("Allow", allow)
				oidcFail(w, http.StatusMethodNotAllowed, "invalid_request", "this endpoint takes "+allow)
				return
			}
			notAllowed(w, allow)
			return
		}
		http.NotFound(w, r)
	})
	return h
}

// notAllowed answers 405 with the methods the endpoint takes.
func notAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.o.CallTimeout)
}

// ---- pages ----

type pageData struct {
	Lang, OtherLang string
	// SwitchQuery is the language switch's link (this page in the other
	// language): a URL of query parameters this handler encoded.
	SwitchQuery      template.URL
	T                texts
	Nonce            string
	AppName          string
	Error            string
	CSRF             string
	Action           string
	Service          string
	Next             string
	Renew            bool
	Method           string
	Username         string
	Heading, Message string
	// PageName names the page in its title (set by page from the page's
	// template), so that each page's title says which page it is.
	PageName string
	// ErrorOnNew: the password page's error is about the new password.
	ErrorOnNew     bool
	Link, LinkText string
	Ticket         string
	// OIDC is the OpenID Connect authorization request a login form
	// carries (its service is then empty).
	OIDC string
	// portal and password pages
	Wide, SignedIn, HasLinked, HasAssociable bool
	// CertLogin: the connection carries a verified client certificate
	// (the page offers the certificate login); HidePassword: the
	// application needs level 2, which a password cannot give.
	CertLogin, HidePassword bool
	// USBKey: the page offers the USB key sign-in (usbkey.go), whose
	// vendor script is USBKeyScript ("" none); ChallengeURL is where its
	// script gets a challenge.
	USBKey                     bool
	USBKeyScript, ChallengeURL string
	// USBKeyStep: this page is the USB key sign-in step (the form and the
	// vendor script, no password field; USBKeyIntegrity the script's SRI
	// hash, PasswordLoginLink back); USBKeyLink: the other login pages'
	// link to it.
	USBKeyStep                  bool
	USBKeyIntegrity, USBKeyLink string
	// TwoFactor: the login form carries twofactor=1; TwoFactorLink: the
	// level-2 page's link to the password-and-code form.
	TwoFactor                                         bool
	TwoFactorLink                                     string
	Entries                                           []portalEntry
	PasswordLink, LogoutLink, PortalLink, ProfileLink string
	// Profile is the profile page's person.
	Profile *profileView
	// OTPToken is the half-done login the code page carries; TOTP the
	// authenticator app set-up page's new secret.
	OTPToken string
	TOTP     *totpView
	// Finger: the login page shows the fingerprint form (FingerAgent the
	// capture agent its script asks; FingerPassword: the application needs
	// level 2, the password is asked too; PasswordLoginLink back to the
	// password form); FingerLink: the password form's link to it.
	Finger, FingerPassword                     bool
	FingerAgent, FingerLink, PasswordLoginLink string
	// External: the login page shows the form of the external
	// authenticator of that name (ExternalLabel its label;
	// ExternalPassword: the password is asked too); ExternalLinks: the
	// password form's links to each (external.go).
	External, ExternalLabel string
	ExternalPassword        bool
	ExternalLinks           []externalLink
	// PeerLinks: the login page's "signed in at <centre>? continue" (the
	// peers that answer), the logout page's "sign out there too".
	PeerLinks []peerLink
	// Consent: the consent page's request; MyApp: the application the
	// remove-access page confirms.
	Consent *consentView
	MyApp   *myAppView
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request, code int, name string, d pageData) {
	d.Lang = language(r)
	d.T = languages[d.Lang]
	d.OtherLang = "en"
	if d.Lang == "en" {
		d.OtherLang = "zh-CN"
	}
	q := r.URL.Query()
	if svc := r.PostForm.Get("service"); svc != "" && q.Get("service") == "" {
		// a page answering the login form (its service in the body): the
		// switch shows the same page again, in the other language
		q.Set("service", svc)
	}
	if o := r.PostForm.Get("oidc"); o != "" && q.Get("oidc") == "" && q.Get("client_id") == "" {
		q.Set("oidc", o)
	}
	q.Set("locale", d.OtherLang)
	d.SwitchQuery = template.URL("?" + q.Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	if r.URL.Query().Get("locale") != "" {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: d.Lang, Path: h.o.Prefix, MaxAge: 365 * 24 * 3600,
			HttpOnly: true, Secure: module.RequestHTTPS(r), SameSite: http.SameSiteLaxMode})
	}
	d.PageName = pageName(name, &d)
	d.Nonce = randomToken()
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", fmt.Sprintf(h.csp, d.Nonce))
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		h.o.Log.Warn("render page", zap.String("page", name), zap.Error(err))
	}
}

// pageName is what the title of page template name calls it: its heading.
func pageName(name string, d *pageData) string {
	switch name {
	case "login":
		return d.T.SignIn
	case "message":
		return d.Heading
	case "post":
		return d.T.Continue
	case "portal":
		return d.T.PortalHead
	case "password":
		return d.T.ChangePassword
	case "profile":
		return d.T.ProfileHead
	case "consent":
		return d.T.ConsentHead
	case "appremove":
		return d.T.MyAppRemoveHead
	case "otp":
		return d.T.OTPHead
	case "totp":
		return d.T.TOTPSetUp
	}
	return ""
}

func (h *Handler) message(w http.ResponseWriter, r *http.Request, code int, isErr bool, heading, msg string, link, linkText string) {
	h.page(w, r, code, "message", pageData{Error: map[bool]string{true: "1"}[isErr], Heading: heading, Message: msg,
		Link: link, LinkText: linkText})
}

func (h *Handler) texts(r *http.Request) texts { return languages[language(r)] }

// csrf returns the form token, setting its cookie (double submit).
func (h *Handler) csrf(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	t := randomToken()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: t, Path: h.o.Prefix, HttpOnly: true, Secure: module.RequestHTTPS(r),
		SameSite: http.SameSiteStrictMode})
	return t
}

func (h *Handler) csrfOK(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	f := r.PostFormValue("csrf")
	return err == nil && len(c.Value) >= 32 && subtle.ConstantTimeCompare([]byte(c.Value), []byte(f)) == 1
}

func (h *Handler) setTGC(w http.ResponseWriter, r *http.Request, tgt string) {
	http.SetCookie(w, &http.Cookie{Name: TGCCookie, Value: tgt, Path: h.o.Prefix, HttpOnly: true, Secure: module.RequestHTTPS(r),
		SameSite: http.SameSiteLaxMode})
}

func (h *Handler) clearTGC(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: TGCCookie, Value: "", Path: h.o.Prefix, MaxAge: -1, HttpOnly: true,
		Secure: module.RequestHTTPS(r), SameSite: http.SameSiteLaxMode})
}

func tgcOf(r *http.Request) string {
	if c, err := r.Cookie(TGCCookie); err == nil {
		return c.Value
	}
	return ""
}

// truthy reads a CAS flag parameter (renew, gateway): "if this parameter
// is set" (CAS 3.0 §2.1.1), so any value but an empty one and the words
// of no (false, 0, no, off, in any case) sets it: renew=TRUE or =True (as
// .NET writes booleans) asks for a fresh login, never fails open.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "0", "no", "off":
		return false
	}
	return true
}

// loginParams are the CAS login parameters of a request.
type loginParams struct {
	service, method string
	renew, gateway  bool
	// next is the page of this server a login without a service lands on
	// (afterLogin): one of nextPages, else the portal.
	next string
	// consentNonce ties a renew login to the consent page shown for it
	// (IssueServiceTicketRequest.consent_nonce; review sec31c M1): made
	// for a fresh login's ticket, sent back by that page's Allow.
	consentNonce string
	// twoFactor: the person signs in with their password and their
	// authenticator app's code (twofactor=1): a level-2 application's
	// login page shows the password form then.
	twoFactor bool
	// oidc: the login answers an OpenID Connect authorization request
	// (service is its redirect URI): an authorization code, not a service
	// ticket, goes back.
	oidc *oidcRequest
	// finger: the login page shows the fingerprint form (finger=1).
	finger bool
	// external: the login page shows the form of this external
	// authenticator (external=NAME; external.go).
	external string
	// usbKey: the login page is the USB key sign-in step (usbkey=1): the
	// only page that loads the vendor script, and it has no password
	// field (review sec29a M2).
	usbKey bool
}

// nextPages are the pages a login may return to (next=...): those that
// send a browser without a session to the login page (session). Nothing
// else is followed: no open redirect.
var nextPages = map[string]bool{"profile": true}

func paramsOf(v url.Values) loginParams {
	m := ""
	if strings.EqualFold(v.Get("method"), "POST") {
		m = "POST"
	}
	// With renew, gateway is ignored (CAS 3.0 §2.1.1 recommends it): the
	// person must sign in.
	renew := truthy(v.Get("renew"))
	p := loginParams{service: v.Get("service"), method: m, renew: renew, gateway: truthy(v.Get("gateway")) && !renew,
		twoFactor: truthy(v.Get("twofactor")), finger: truthy(v.Get("finger")),
		usbKey: truthy(v.Get("usbkey"))}
	if x := v.Get("external"); externalNameRE.MatchString(x) {
		p.external = x
	}
	if n := v.Get("next"); p.service == "" && nextPages[n] {
		p.next = n
	}
	if raw := v.Get("oidc"); raw != "" {
		// The authorization request the login form carried, checked again
		// (the ticket component checks the client and redirect URI); a bad
		// one signs in without it (to the portal).
		p.service = ""
		if qv, err := url.ParseQuery(raw); err == nil {
			if q, bad := parseOIDC(qv, true); bad == nil && q.clientID != "" && q.redirectURI != "" {
				p.oidc, p.service = q, q.redirectURI
			}
		}
	}
	return p
}

// afterLogin sends a browser signed in without a service on: to the page
// it came from (p.next), else the portal.
func (h *Handler) afterLogin(w http.ResponseWriter, r *http.Request, p loginParams) {
	page := "portal"
	if p.next != "" {
		page = p.next
	}
	http.Redirect(w, r, h.o.Prefix+page, http.StatusSeeOther)
}

// match returns the registered service of p.service (nil when there is
// none in the request); on refusal the error page has been written.
func (h *Handler) match(w http.ResponseWriter, r *http.Request, service string) (*ticketv1.RegisteredService, bool) {
	if service == "" {
		return nil, true
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	rs, err := h.o.Tickets.MatchService(ctx, &ticketv1.MatchServiceRequest{Service: service})
	if err != nil {
		t := h.texts(r)
		if reasonOf(err) == "SERVICE_NOT_REGISTERED" || status.Code(err) == codes.InvalidArgument {
			h.message(w, r, http.StatusForbidden, true, t.BadServiceHead, t.BadService, "", "")
		} else {
			h.fault(w, r, err)
		}
		return nil, false
	}
	return rs, true
}

func reasonOf(err error) string {
	if ae, ok := apierr.FromStatus(err); ok {
		return ae.Reason
	}
	return ""
}

func (h *Handler) fault(w http.ResponseWriter, r *http.Request, err error) {
	t := h.texts(r)
	code := http.StatusServiceUnavailable
	msg := t.TryLater
	switch reason := reasonOf(err); reason {
	case "LOGIN_THROTTLED":
		// the login gate doing its work, not a fault
		code, msg = http.StatusTooManyRequests, t.Throttled
		h.o.Log.Info("CAS page: login throttled", zap.String("reason", reason))
	case "PASSWORD_CHANGED_DURING_LOGIN":
		code, msg = http.StatusConflict, t.PasswordReplaced
		h.o.Log.Info("CAS page: the password changed during a login; no session opened", zap.String("reason", reason))
	case "ACCOUNT_CHANGED_DURING_LOGIN":
		code, msg = http.StatusConflict, t.AccountChanged
		h.o.Log.Info("CAS page: the account was locked or disabled during a login; no session opened", zap.String("reason", reason))
	default:
		h.o.Log.Warn("CAS page: a component call failed", zap.Error(err))
	}
	h.message(w, r, code, true, t.ErrorHead, msg, "", "")
}

// loginForm is GET /cas/login.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	p := paramsOf(r.URL.Query())
	rs, ok := h.match(w, r, p.service)
	if !ok {
		return
	}
	h.login(w, r, p, rs)
}

// login answers a login request: a live session goes on to the service
// (or the portal), else the login page.
func (h *Handler) login(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService) {
	if tgt := tgcOf(r); tgt != "" && !p.renew {
		ctx, cancel := h.ctx(r)
		sess, err := h.o.Tickets.GetSession(ctx, &ticketv1.GetSessionRequest{Tgt: tgt})
		cancel()
		switch {
		case err == nil && p.oidc != nil && !h.oidcSessionOK(w, r, p, rs, sess):
			return
		case err == nil && rs != nil:
			h.sendToService(w, r, tgt, p, rs, false)
			return
		case err == nil:
			h.afterLogin(w, r, p)
			return
		case status.Code(err) != codes.NotFound && status.Code(err) != codes.InvalidArgument:
			h.fault(w, r, err)
			return
		}
		h.clearTGC(w, r)
	}
	if p.gateway && rs != nil {
		// CAS gateway: no login page; back to the service without a ticket
		// (OpenID Connect prompt=none: with login_required). Never a
		// Negotiate challenge either.
		h.backWithout(w, r, p, "login_required")
		return
	}
	if h.kerberosLogin(w, r, p, rs) {
		return
	}
	if h.challenge(r, p, rs) {
		// Windows domain sign-in (kerberos.go): 401 with Negotiate and the
		// login form as the body; a browser with a domain ticket comes
		// back with it (also with renew: a fresh ticket is a fresh
		// login), one without shows the form.
		w.Header().Set("WWW-Authenticate", "Negotiate")
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, "", "")
		return
	}
	h.loginPage(w, r, http.StatusOK, p, rs, "", "")
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, code int, p loginParams, rs *ticketv1.RegisteredService, errMsg, username string, info ...string) {
	d := pageData{CSRF: h.csrf(w, r), Action: h.o.Prefix + "login", Service: p.service, Next: p.next, Renew: p.renew, Method: p.method,
		Error: errMsg, Username: username, CertLogin: h.clientCert(r) != nil, TwoFactor: p.twoFactor,
		USBKey: h.o.USBKey, USBKeyScript: h.o.USBKeyScript, ChallengeURL: h.o.Prefix + "cert/challenge"}
	if p.oidc != nil {
		d.Service, d.OIDC = "", p.oidc.encode()
	}
	d.PeerLinks = h.peerLinks(r, p)
	rejected := h.certRejected(r)
	if len(info) > 0 {
		d.Message = info[0]
	} else if rejected != "" && errMsg == "" {
		d.Message = rejected + " " + h.texts(r).CertRejPassword
	}
	if h.externalForm(r, p, rs, &d) {
		h.page(w, r, code, "login", d)
		return
	}
	if h.o.FingerAgent != "" && !rs.GetCertificateRequired() {
		if h.fingerForm(r, p, rs, &d) {
			h.page(w, r, code, "login", d)
			return
		}
	}
	if rs != nil {
		d.AppName = rs.GetName()
		if rs.GetMinAuthLevel() >= certLevel && p.twoFactor && !rs.GetCertificateRequired() {
			// A password with the authenticator app's code reaches level
			// 2 (a person without an app is told after the password).
			if d.Message == "" {
				d.Message = h.texts(r).LevelTwoFactor
			}
		} else if rs.GetMinAuthLevel() >= certLevel {
			// A password alone cannot reach the application's level: the
			// page offers the certificate, or says one is needed, and
			// links to the password-and-code form (twofactor=1).
			d.HidePassword = true
			if !rs.GetCertificateRequired() {
				q := p.query()
				q.Set("twofactor", "1")
				if p.renew {
					q.Set("renew", "true")
				}
				if p.method != "" {
					q.Set("method", p.method)
				}
				d.TwoFactorLink = h.o.Prefix + "login?" + q.Encode()
			}
			if rejected != "" && len(info) == 0 && errMsg == "" {
				d.Message = rejected + " " + h.texts(r).CertRejLevel
			}
			if d.Message == "" {
				d.Message = h.texts(r).LevelStepUp
				switch {
				case !d.CertLogin && !d.USBKey && rs.GetCertificateRequired():
					d.Message = h.texts(r).LevelCertOnly
				case !d.CertLogin && !d.USBKey:
					d.Message = h.texts(r).LevelNeedCert
				}
			}
			if !d.CertLogin && !d.USBKey && code == http.StatusOK {
				code = http.StatusForbidden
			}
		}
	}
	h.usbKeyStep(p, &d)
	h.page(w, r, code, "login", d)
}

// usbKeyStep sets up d for the USB key sign-in: on its own step
// (usbkey=1) the form and the vendor script, without the password form;
// on the other login pages only a link to it. The vendor's script runs
// only where no password is typed (review sec29a M2).
func (h *Handler) usbKeyStep(p loginParams, d *pageData) {
	if !h.o.USBKey {
		return
	}
	q := p.query()
	if p.renew {
		q.Set("renew", "true")
	}
	if p.method != "" {
		q.Set("method", p.method)
	}
	if !p.usbKey {
		q.Set("usbkey", "1")
		d.USBKeyLink = h.o.Prefix + "login?" + q.Encode()
		return
	}
	if p.twoFactor {
		q.Set("twofactor", "1")
	}
	d.USBKeyStep, d.HidePassword, d.CertLogin = true, true, false
	d.USBKeyIntegrity, d.PasswordLoginLink = h.o.USBKeyScriptIntegrity, h.o.Prefix+"login?"+q.Encode()
}

// personLevelText is what the login page tells a person whose own level
// (identity's min_auth_level) the login res did not reach.
func personLevelText(t texts, res *identityv1.SSOLoginResponse) string {
	if res.GetRequiredAuthLevel() >= personCertificateOnly {
		return t.PersonLevelCert
	}
	return t.PersonLevelTwoFactor
}

// personCertificateOnly is a person's level (identity's min_auth_level, a
// scale of its own: 1 any, 2 two factors or a certificate) asking a
// certificate alone; a certificate session's AuthLevel is certLevel.
const personCertificateOnly = 3

// certLevel is the authentication level of a certificate login.
const certLevel = 2

// clientCert is the DER of the client certificate the connection of r
// presented, when this server verified it (the edge asks for one and
// verifies it against tls.client_ca_file and tls.people_ca_file; see
// x509cert.VerifiedPeer) and, with people's CAs configured, it chains to one
// of them and is for client authentication: a certificate of the
// applications' or components' CAs signs no person in. nil otherwise, also
// behind a proxy that terminates TLS.
func (h *Handler) clientCert(r *http.Request) []byte {
	c := x509cert.VerifiedPeer(r.TLS)
	if c == nil {
		return nil
	}
	if h.o.PeopleCAs == nil {
		return c.Raw
	}
	inter := x509.NewCertPool()
	for _, ic := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: h.o.PeopleCAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil
	}
	return c.Raw
}

// certRejected says why the certificate the browser presented was not
// accepted by the edge (x509cert.RejectionFrom); "" when none was refused.
func (h *Handler) certRejected(r *http.Request) string {
	rej := x509cert.RejectionFrom(r.Context())
	if rej == nil {
		return ""
	}
	t := h.texts(r)
	switch rej.Kind {
	case x509cert.RejectedExpired:
		return fmt.Sprintf(t.CertRejExpired, rej.At.UTC().Format("2006-01-02 15:04 UTC"))
	case x509cert.RejectedNotYetValid:
		return fmt.Sprintf(t.CertRejNotYet, rej.At.UTC().Format("2006-01-02 15:04 UTC"))
	case x509cert.RejectedUnknownCA:
		return t.CertRejUnknownCA
	case x509cert.RejectedRevoked:
		return fmt.Sprintf(t.CertRejRevoked, rej.At.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return t.CertRejInvalid
}

// badForm answers a form that could not be read: too large (413), or
// otherwise unreadable (400), with a link back to back (its label label).
func (h *Handler) badForm(w http.ResponseWriter, r *http.Request, err error, back, label string) {
	t := h.texts(r)
	code, msg := http.StatusBadRequest, t.FormUnreadable
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || strings.Contains(err.Error(), "too large") { // net/http's own bound: "http: POST too large"
		code, msg = http.StatusRequestEntityTooLarge, t.FormTooLarge
	}
	h.message(w, r, code, true, t.ErrorHead, msg, back, label)
}

// loginPost is POST /cas/login: the credentials.
func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"login", h.texts(r).SignIn)
		return
	}
	p := paramsOf(r.PostForm)
	rs, ok := h.match(w, r, p.service)
	if !ok {
		return
	}
	t := h.texts(r)
	if !h.csrfOK(r) {
		h.loginPage(w, r, http.StatusForbidden, p, rs, t.CSRF, "")
		return
	}
	if r.PostFormValue("usbkey") != "" {
		h.usbKeyLoginPost(w, r, p, rs)
		return
	}
	if r.PostFormValue("certificate") != "" {
		h.certLoginPost(w, r, p, rs)
		return
	}
	if r.PostFormValue("otp_token") != "" {
		h.otpLoginPost(w, r, p, rs)
		return
	}
	if p.finger {
		h.fingerLoginPost(w, r, p, rs)
		return
	}
	if p.external != "" {
		h.externalLoginPost(w, r, p, rs)
		return
	}
	username := strings.TrimSpace(r.PostFormValue("username"))
	password := r.PostFormValue("password")
	if username == "" || password == "" || len(username) > 128 || len(password) > 1024 {
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.BadCredentials, "")
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	binding, setBinding := h.otpBinding(r)
	res, err := h.o.SSO.Login(ctx, &identityv1.SSOLoginRequest{Login: username, Password: password, OtpBinding: binding})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.BadCredentials, "")
			return
		}
		h.fault(w, r, err)
		return
	}
	switch res.GetReason() {
	case identityv1.Reason_REASON_OK:
	case identityv1.Reason_REASON_OTP_REQUIRED:
		// The password was right; the authenticator app's code completes
		// the login (nothing is signed in until then).
		if res.GetOtpToken() == "" {
			h.fault(w, r, fmt.Errorf("identity asked for a code without a half-done login"))
			return
		}
		setBinding(w)
		h.otpPage(w, r, http.StatusOK, p, rs, res.GetOtpToken(), "")
		return
	case identityv1.Reason_REASON_PASSWORD_EXPIRED:
		// The change form follows at once (the current password is
		// asked again there: nothing of this login is kept).
		h.passwordPage(w, r, http.StatusOK, p.casService(), username, false, "", t.Expired)
		return
	case identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW:
		// The right password of a person whose own level it does not
		// reach (identity answers it after the right password only).
		h.loginPage(w, r, http.StatusForbidden, p, rs, personLevelText(t, res), "")
		return
	default:
		// Unknown login, wrong password, and a locked or disabled account:
		// one answer. Identity refuses a locked or disabled account before
		// it checks the password (after the same work, one hash), so its
		// verdict does not tell that the password was right: saying the
		// account's status would tell anyone that the login exists.
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.BadCredentials, "")
		return
	}
	if res.GetMustChangePassword() {
		h.passwordPage(w, r, http.StatusOK, p.casService(), username, false, "", t.MustChange)
		return
	}
	old := tgcOf(r)
	if old != "" && h.signedInAsOther(ctx, w, r, old, res.GetUserId(), t.OtherPerson) {
		return
	}
	// The same person signing in again over their live session (CAS
	// renew, OpenID Connect prompt=login): the new session replaces it,
	// their applications staying signed in (as Keycloak re-authenticates
	// within the session), not a logout of everything.
	cs, err := h.o.Tickets.CreateSession(ctx, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: 1, OrgId: res.GetOrgId(), AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_PASSWORD, ReplaceTgt: old,
		PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()})
	if err != nil {
		h.fault(w, r, err)
		return
	}
	h.setTGC(w, r, cs.GetTgt())
	if rs == nil {
		h.afterLogin(w, r, p)
		return
	}
	h.sendToService(w, r, cs.GetTgt(), p, rs, true, res.GetPasswordOnly())
}

// certLoginPost is POST /cas/login with the certificate button: the
// client certificate of the connection signs the person in at level 2.
// Refusals say what is wrong: only the holder of the certificate's key
// (the TLS handshake proved it) reaches these answers, so telling them
// that their own account is locked or disabled reveals nothing to anyone
// else; no answer names the account.
func (h *Handler) certLoginPost(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService) {
	t := h.texts(r)
	der := h.clientCert(r)
	if der == nil {
		msg := t.CertNone
		if rej := h.certRejected(r); rej != "" {
			msg = rej + " " + t.CertRejPassword
			if rs.GetMinAuthLevel() >= certLevel {
				msg = rej + " " + t.CertRejLevel
			}
		}
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, msg, "")
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.SSO.CertificateLogin(ctx, &identityv1.CertificateLoginRequest{Certificate: der})
	if err != nil {
		h.fault(w, r, err)
		return
	}
	if res.GetResult() != identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_OK {
		msg := map[identityv1.CertificateLoginResult]string{
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_NOT_REGISTERED: t.CertNotRegistered,
			// Defence in depth: the TLS handshake refuses an expired
			// certificate before any page (the browser shows its error).
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_EXPIRED:          t.CertExpired,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_LOCKED:   t.CertLocked,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_DISABLED: t.CertDisabled,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_PASSWORD_ONLY:    t.CertPasswordOnly,
		}[res.GetResult()]
		if msg == "" { // NOT_VERIFIED, or a verdict this page does not know
			msg = t.CertNone
		}
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, msg, "")
		return
	}
	// The browser's session, if any, is replaced: the same person's is
	// raised (a new TGT taking over its services; their applications are
	// not logged out). Another person's is not switched silently (as
	// Keycloak: "already authenticated as a different user"): they sign
	// out first.
	h.raiseSession(ctx, w, r, p, rs, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: certLevel, OrgId: res.GetOrgId(), AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE,
		PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()}, t.CertOtherPerson)
}

// raiseSession opens the session cs of a login of level 2 (certificate,
// password and code) in place of the browser's: the same person's is
// raised (cs.ReplaceTgt: a new TGT taking over its services), another
// person's is not switched (otherMsg, signedInAsOther); then on to the
// service, or the page the login came from.
func (h *Handler) raiseSession(ctx context.Context, w http.ResponseWriter, r *http.Request, p loginParams,
	rs *ticketv1.RegisteredService, cs *ticketv1.CreateSessionRequest, otherMsg string) {
	old := tgcOf(r)
	if h.signedInAsOther(ctx, w, r, old, cs.GetUserId(), otherMsg) {
		return
	}
	cs.ReplaceTgt = old
	res, err := h.o.Tickets.CreateSession(ctx, cs)
	if err != nil {
		h.fault(w, r, err)
		return
	}
	h.setTGC(w, r, res.GetTgt())
	if rs == nil {
		h.afterLogin(w, r, p)
		return
	}
	h.sendToService(w, r, res.GetTgt(), p, rs, true)
}

// signedInAsOther answers (and reports true) when the browser's session
// old belongs to another person than userID, who just proved who they are:
// the browser is not switched silently (as Keycloak's "already
// authenticated as a different user"): a page (409) names who is signed in
// and asks to sign out first (msg, with %s for their login). A session
// that cannot be asked is a fault, never a switch; none (ended): false.
func (h *Handler) signedInAsOther(ctx context.Context, w http.ResponseWriter, r *http.Request, old, userID, msg string) bool {
	if old == "" {
		return false
	}
	cur, err := h.o.Tickets.GetSession(ctx, &ticketv1.GetSessionRequest{Tgt: old})
	switch {
	case status.Code(err) == codes.NotFound:
		return false
	case err != nil:
		h.fault(w, r, err)
		return true
	case cur.GetUserId() == userID:
		return false
	}
	t := h.texts(r)
	h.o.Log.Info("CAS login of another person over a live session refused", zap.String("reason", "OTHER_PERSON_SIGNED_IN"))
	h.message(w, r, http.StatusConflict, true, t.ErrorHead, fmt.Sprintf(msg, cur.GetLogin()), h.o.Prefix+"logout", t.SignOut)
	return true
}

// sendToService issues a ticket and sends the browser to the service.
func (h *Handler) sendToService(w http.ResponseWriter, r *http.Request, tgt string, p loginParams, rs *ticketv1.RegisteredService, fresh bool, passwordOnly ...bool) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	// The ticket is for the URL the browser reaches, whose stale ticket
	// parameter is replaced: a client validates with that URL, less its
	// ticket.
	service := p.service
	if rs.GetLegacyScheme() == 0 && p.oidc == nil {
		service = withoutTicket(service)
	}
	var (
		st  *ticketv1.IssueServiceTicketResponse
		err error
	)
	if p.oidc != nil {
		// A client whose service asks consent: the consent page first
		// (or consent_required with prompt=none).
		var shown bool
		if shown, err = h.consent(w, r, tgt, p, rs, false); shown {
			return
		}
		if err == nil {
			err = h.sendCode(w, r, tgt, p.oidc, fresh)
		}
	} else {
		if fresh {
			// The nonce of the consent page this login may need first.
			p.consentNonce = randomToken()
		}
		st, err = h.o.Tickets.IssueServiceTicket(ctx, &ticketv1.IssueServiceTicketRequest{Tgt: tgt, Service: service, FromNewLogin: fresh,
			ConsentNonce: p.consentNonce})
	}
	if err != nil {
		t := h.texts(r)
		switch reasonOf(err) {
		case "AUTH_LEVEL_TOO_LOW":
			if p.gateway {
				// CAS gateway: never a page; back to the service without a
				// ticket, as without a session.
				h.backWithout(w, r, p, "interaction_required")
				return
			}
			if len(passwordOnly) > 0 && passwordOnly[0] {
				d := pageData{Error: "1", Heading: t.LevelHead, Message: t.LevelPassword, AppName: rs.GetName()}
				h.page(w, r, http.StatusForbidden, "message", d)
				return
			}
			if h.clientCert(r) != nil || h.o.USBKey {
				// Step-up (as CAS renew): the session is kept for the
				// person's other applications; the page asks for the
				// certificate (or the USB key's), whose login raises it
				// to level 2 (a new TGT taking over its services, none of
				// them logged out).
				h.loginPage(w, r, http.StatusOK, p, rs, "", "")
				return
			}
			if rs.GetCertificateRequired() {
				// Nothing but a certificate reaches it, and the browser
				// presented none.
				h.page(w, r, http.StatusForbidden, "message", pageData{Error: "1", Heading: t.LevelHead, Message: t.LevelCertOnly,
					AppName: rs.GetName()})
				return
			}
			// Or the password again with an authenticator app's code
			// (renew: the live session would send the browser straight
			// back here); a login with the code raises the session.
			q := p.query()
			q.Set("twofactor", "1")
			q.Set("renew", "true")
			if p.method != "" {
				q.Set("method", p.method)
			}
			d := pageData{Error: "1", Heading: t.LevelHead, Message: t.LevelNeedCert, AppName: rs.GetName(),
				Link: h.o.Prefix + "login?" + q.Encode(), LinkText: t.TwoFactorLink}
			h.page(w, r, http.StatusForbidden, "message", d)
		case "SESSION_NOT_FOUND":
			h.clearTGC(w, r)
			h.loginPage(w, r, http.StatusOK, p, rs, "", "")
		case "CONSENT_REQUIRED":
			// A CAS service of a client asking consent: its consent page
			// (gateway: back without a ticket; review sec30c H1).
			if p.oidc == nil {
				h.casConsent(w, r, tgt, p, service, rs)
				return
			}
			// The consent ended between the page and the code, or another
			// service of the client asks it: ask again (prompt=none:
			// consent_required).
			q := *p.oidc
			q.forceConsent = true
			p.oidc = &q
			shown, cerr := h.consent(w, r, tgt, p, rs, true)
			switch {
			case cerr != nil:
				h.fault(w, r, cerr)
			case !shown:
				h.oidcBack(w, r, p.oidc, oauthError{code: "consent_required"})
			}
		case "CONSENT_UNAVAILABLE":
			if p.gateway {
				// Never a page: an OpenID Connect client is answered
				// temporarily_unavailable (review sec30c L2), a CAS
				// service gets the browser back without a ticket.
				h.backWithout(w, r, p, "temporarily_unavailable")
				return
			}
			h.fault(w, r, err)
		case "SERVICE_NOT_REGISTERED", "OAUTH_REDIRECT_NOT_OF_CLIENT":
			h.message(w, r, http.StatusForbidden, true, t.BadServiceHead, t.BadService, "", "")
		case "SERVICE_ACCESS_DENIED":
			if p.gateway {
				// CAS gateway: never a page (as above).
				h.backWithout(w, r, p, "access_denied")
				return
			}
			// The service's access rule refused the person: they stay
			// signed in (the session and its cookie are kept) and may
			// enter their other applications.
			msg := t.AccessDenied + " " + t.AccessNoPermission
			if ae, ok := apierr.FromStatus(err); ok && ae.Meta["missing"] == "account_link" {
				msg = t.AccessDenied + " " + t.AccessNoAccount
			}
			h.message(w, r, http.StatusForbidden, true, t.AccessDeniedHead, msg, h.o.Prefix+"portal", t.Portal)
		default:
			h.fault(w, r, err)
		}
		return
	}
	if p.oidc != nil { // sent back with its code
		return
	}
	if rs.GetLegacyScheme() != 0 {
		// The ticket value has only A-Z, a-z, 0-9 and '-': nothing to escape.
		http.Redirect(w, r, legacyLogin(p.service, st.GetTicket()), http.StatusFound)
		return
	}
	if p.method == "POST" {
		h.page(w, r, http.StatusOK, "post", pageData{Service: withoutTicket(p.service), Ticket: st.GetTicket(), AppName: rs.GetName()})
		return
	}
	http.Redirect(w, r, withTicket(p.service, st.GetTicket()), http.StatusFound)
}

// casService is the CAS service a page after the login (the password
// change) goes on to: none for an OpenID Connect request, whose client
// takes no service ticket (the person lands on the portal and comes back
// through the client).
func (p loginParams) casService() string {
	if p.oidc != nil {
		return ""
	}
	return p.service
}

// query is the login parameters of p that a link to the login page
// carries.
func (p loginParams) query() url.Values {
	if p.oidc != nil {
		return url.Values{"oidc": {p.oidc.encode()}}
	}
	q := url.Values{"service": {p.service}}
	if p.method != "" {
		q.Set("method", p.method)
	}
	return q
}

// backWithout sends the browser back to the service without a ticket (CAS
// gateway), or to the OpenID Connect client with error oauthErr.
func (h *Handler) backWithout(w http.ResponseWriter, r *http.Request, p loginParams, oauthErr string) {
	if p.oidc != nil {
		h.oidcBack(w, r, p.oidc, oauthError{code: oauthErr})
		return
	}
	http.Redirect(w, r, withoutTicket(p.service), http.StatusSeeOther)
}

// withTicket sets the ticket parameter of a service URL: a ticket
// parameter the URL already has is dropped (one ticket reaches the
// service, this one).
func withTicket(service, ticket string) string {
	return withParams(dropParams(service, "ticket"), "ticket="+url.QueryEscape(ticket))
}

// withoutTicket is a service URL without its ticket parameters (where the
// browser goes back without a new ticket).
func withoutTicket(service string) string { return dropParams(service, "ticket") }

// withParams appends the encoded parameters q to u's query.
func withParams(u, q string) string {
	switch {
	case !strings.Contains(u, "?"):
		return u + "?" + q
	case strings.HasSuffix(u, "?") || strings.HasSuffix(u, "&"):
		return u + q
	}
	return u + "&" + q
}

// dropParams removes from u's query every parameter named one of names
// (compared once decoded, as the service will read them); the rest of the
// URL is kept as it is. Registered service URLs have no fragment.
func dropParams(u string, names ...string) string {
	base, query, ok := strings.Cut(u, "?")
	if !ok || query == "" {
		return u
	}
	parts := strings.Split(query, "&")
	kept := parts[:0]
	for _, part := range parts {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && slices.Contains(names, k) {
			continue
		}
		kept = append(kept, part)
	}
	if len(kept) == 0 {
		return base
	}
	return base + "?" + strings.Join(kept, "&")
}

// logout is GET (or POST) /cas/logout: ends the session (the ticket component tells
// every service that got a ticket), then redirects only to a registered
// service.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	// GET's query, or POST's form (OpenID Connect RP-Initiated Logout
	// 1.0 §2: the end_session_endpoint takes both; acceptc). A malformed
	// part is left out, as from a query: a logout always signs out.
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		_ = r.ParseForm()
		maps.Copy(q, r.PostForm)
	}
	ended, peer := false, ""
	if tgt := tgcOf(r); tgt != "" {
		ctx, cancel := h.ctx(r)
		res, err := h.o.Tickets.DestroySession(ctx, &ticketv1.DestroySessionRequest{Tgt: tgt})
		cancel()
		if err != nil && status.Code(err) != codes.InvalidArgument {
			h.fault(w, r, err)
			return
		}
		// A session a peer's assertion opened: the page offers to sign out
		// there too (its session is the peer's, not ended here).
		ended, peer = res.GetEnded(), res.GetPeer()
	}
	if hint := q.Get("id_token_hint"); hint != "" && !ended {
		// RP-initiated logout from a browser without the session's
		// cookie (another browser profile, the cookie cleared, or one of
		// a session that has ended: review sec20 L2): the session the ID
		// token names ends (trial11 D11). A hint that is
		// not one of this deployment's ID tokens, or another client's,
		// ends nothing and is logged.
		ctx, cancel := h.ctx(r)
		_, err := h.o.Tickets.EndSessionOfIDToken(ctx, &ticketv1.EndSessionOfIDTokenRequest{IdTokenHint: hint,
			ClientId: q.Get("client_id")})
		cancel()
		switch {
		case status.Code(err) == codes.Unauthenticated || status.Code(err) == codes.InvalidArgument:
			h.o.Log.Info("logout: the id_token_hint ends no session", zap.String("reason", reasonOf(err)))
		case err != nil && reasonOf(err) != "OIDC_UNAVAILABLE":
			h.fault(w, r, err)
			return
		}
	}
	h.clearTGC(w, r)
	if svc := q.Get("service"); svc != "" {
		ctx, cancel := h.ctx(r)
		_, err := h.o.Tickets.MatchService(ctx, &ticketv1.MatchServiceRequest{Service: svc})
		cancel()
		if err == nil {
			http.Redirect(w, r, svc, http.StatusSeeOther)
			return
		}
	}
	// OpenID Connect RP-initiated logout (the discovery's
	// end_session_endpoint): back to post_logout_redirect_uri with state
	// when it is exactly a registered service URL of the client, named by
	// client_id or by the aud of id_token_hint (one is required).
	client := q.Get("client_id")
	if client == "" {
		client = hintAudience(q.Get("id_token_hint"))
	}
	if back := q.Get("post_logout_redirect_uri"); back != "" && client != "" {
		ctx, cancel := h.ctx(r)
		rs, err := h.o.Tickets.MatchService(ctx, &ticketv1.MatchServiceRequest{Service: back})
		cancel()
		if err == nil && rs.GetLegacyScheme() == 0 && client == rs.GetAppId() &&
			ticket.ExactRedirect(rs.GetUrl(), rs.GetPattern(), back) {
			if st := q.Get("state"); st != "" {
				back = withParams(back, url.Values{"state": {st}}.Encode())
			}
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
	}
	t := h.texts(r)
	// CAS 2.0 logout "url": the page links back to it, when it is a
	// registered service (never an open redirect or link).
	if u := q.Get("url"); u != "" {
		ctx, cancel := h.ctx(r)
		_, err := h.o.Tickets.MatchService(ctx, &ticketv1.MatchServiceRequest{Service: u})
		cancel()
		if err == nil {
			h.page(w, r, http.StatusOK, "message", pageData{Heading: t.LoggedOutHead, Message: t.LoggedOut, Link: u,
				LinkText: t.BackToApp, PeerLinks: h.peerLogoutLinks(r, peer)})
			return
		}
	}
	h.page(w, r, http.StatusOK, "message", pageData{Heading: t.LoggedOutHead, Message: t.LoggedOut, Link: h.o.Prefix + "login",
		LinkText: t.SignIn, PeerLinks: h.peerLogoutLinks(r, peer)})
}
