package ticket

import (
	"context"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
)

// The service registry says which application may receive tickets at
// which URLs (CAS "registered services"). The ticket component owns it;
// identity owns the applications themselves (App_ID).

func init() {
	apierr.Register(
		apierr.Reason{Name: "SERVICE_NOT_REGISTERED", Code: apierr.PermissionDenied,
			Doc: "The service URL matches no registered, enabled service of an active application (or is malformed: userinfo, backslashes, encoded dots or slashes, fragments, non-ASCII hosts...): no ticket is issued and no browser is sent there."},
		apierr.Reason{Name: "AUTH_LEVEL_TOO_LOW", Code: apierr.FailedPrecondition,
			Doc: "The application requires a stronger login (its minimum authentication level) than the session reached; a step-up login is needed."},
		apierr.Reason{Name: "BAD_SERVICE_DEFINITION", Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "A registered service's URL prefix, pattern or logout URL is not acceptable; the message says why."},
	)
}

// Errors of the registry.
var (
	ErrServiceNotRegistered = apierr.New(apierr.PermissionDenied, "SERVICE_NOT_REGISTERED", "the service is not registered to use single sign-on")
	ErrAuthLevelTooLow      = apierr.New(apierr.FailedPrecondition, "AUTH_LEVEL_TOO_LOW", "this application requires a stronger login")
	ErrAppLevelUnknown      = apierr.New(apierr.Unavailable, "APP_SETTINGS_UNAVAILABLE", "the application's sign-in settings are not yet read from identity; try again shortly")
)

func badService(msg string) error {
	return apierr.New(apierr.InvalidArgument, "BAD_SERVICE_DEFINITION", msg)
}

// RegisteredService is an application's service: where it may receive
// tickets.
type RegisteredService struct {
	ID    string
	AppID string // identity App_ID
	Name  string
	// URL is the registered prefix: scheme, host, port and path prefix
	// (normalised: lower-case host, explicit port). Empty when Pattern is
	// used.
	URL string
	// Pattern is an opt-in regular expression the whole service URL must
	// match (anchored at both ends).
	Pattern string
	// LogoutURL receives the back-channel logout requests (empty: the
	// service URL itself); the logout page redirects only to registered
	// services.
	LogoutURL string
	// MinAuthLevel: 1 = password, 2 = certificate or another strong method.
	MinAuthLevel int
	// AllowProxy lets the service obtain proxy-granting tickets.
	AllowProxy bool
	Enabled    bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// LegacyScheme: 0 = CAS; 1 or 2 = the legacy ssoAuthService interface
	// (URL is the application's ssoAuthService endpoint). Scheme 1 hands
	// the application the person's account and password, scheme 2 the
	// account only.
	LegacyScheme int
	// LegacyRequireSecret: the application's legacy calls must carry its
	// App_ID and secret besides coming from its IP allow-list.
	LegacyRequireSecret bool
	// RequireAccountLink and RequiredPermission are the service's access
	// rule (access.go): a ticket is issued only to a person with an active
	// account link in the application, and/or allowed RequiredPermission
	// ("resource:operation") in it by authz. Neither set: anyone signed in.
	RequireAccountLink bool
	RequiredPermission string
	// CertificateRequired: only a certificate login reaches the service
	// (MinAuthLevel is then 2; StrongEnough).
	CertificateRequired bool
	// ReleaseRoles and ReleasePermissions: a validation of the service's
	// tickets asking for attributes releases the person's roles and
	// permissions in the application, as authz answers them then
	// (Service.SetRelease).
	ReleaseRoles       bool
	ReleasePermissions bool
	// ConsentRequired: the service's OpenID Connect client gets an
	// authorization code only after the person consented to the scopes it
	// asks for (consent.go), remembered for ConsentTTL (0: DefaultConsentTTL).
	ConsentRequired bool
	ConsentTTL      time.Duration
	// ReleaseAttributes and MaskedAttributes are the service's attribute
	// release policy (attrrelease.go): the attributes its validations and
	// OpenID Connect claims release (none named: all) and those released
	// masked (a name: its first character).
	ReleaseAttributes []string
	MaskedAttributes  []string
	// OpenAccess (not stored): a service created with neither access rule
	// stays open to anyone signed in even where new services are closed
	// by default (Config.ServicesDefaultLinked).
	OpenAccess bool
	// AppLevelUnknown (not stored): the registry has not yet read the
	// level of the service's application (AppLevelUnknown); the service
	// issues nothing.
	AppLevelUnknown bool
}

// ReleasesAuthorization reports whether the service's validations release
// authz's answer for the person.
func (r *RegisteredService) ReleasesAuthorization() bool {
	return r.ReleaseRoles || r.ReleasePermissions
}

// AuthMethodCertificate is a certificate login's Session.AuthMethod
// (ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE).
const AuthMethodCertificate = 2

// StrongEnough reports whether a login of level and method (a session's,
// a proxy-granting ticket's) reaches the service: its minimum level, and a
// certificate when it requires one.
func (r *RegisteredService) StrongEnough(level, method int) bool {
	return !r.AppLevelUnknown && level >= r.MinAuthLevel && (!r.CertificateRequired || method == AuthMethodCertificate)
}

// ServiceStore keeps the registry. Changes write their events (CHANGES,
// AUDIT) in the same transaction. A missing service is store.ErrNotFound.
type ServiceStore interface {
	CreateService(ctx context.Context, s *RegisteredService, evs ...events.Event) error
	GetService(ctx context.Context, id string) (*RegisteredService, error)
	// ListServices lists the services of appID (every service when empty),
	// ordered by id.
	ListServices(ctx context.Context, appID string) ([]*RegisteredService, error)
	UpdateService(ctx context.Context, s *RegisteredService, evs ...events.Event) error
	DeleteService(ctx context.Context, id string, evs ...events.Event) error
}

// MaxServiceURLLen bounds a service URL.
const MaxServiceURLLen = 2048

// serviceURL is a checked, normalised http(s) URL.
type serviceURL struct {
	scheme string
	host   string // lower case, no trailing dot; IPv6 without brackets
	port   int
	path   string // escaped path, at least "/"
}

func (u serviceURL) prefix() string {
	h := u.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return u.scheme + "://" + h + ":" + strconv.Itoa(u.port) + u.path
}

// validHost reports whether host is dot-separated labels of lower-case
// letters, digits and inner hyphens (the regular expression
// ^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$, by hand:
// it is on every ticket issued).
func validHost(host string) bool {
	for {
		label, rest, more := strings.Cut(host, ".")
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' ||
			!allIn(label, classDigit|classLower|classHyphen) {
			return false
		}
		if !more {
			return true
		}
		host = rest
	}
}

// checkURL parses raw strictly. It refuses what browsers, proxies and
// application frameworks read differently: control characters and spaces,
// backslashes, non-ASCII characters (international host names must be
// registered and sent in their xn-- form), userinfo ("@"), scheme-relative
// and opaque forms, fragments, percent signs in the host, trailing dots,
// dot segments and encoded dots, slashes, backslashes or percent signs in
// the path (double encoding).
func checkURL(raw string) (serviceURL, bool) {
	if raw == "" || len(raw) > MaxServiceURLLen {
		return serviceURL{}, false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("\\<>\"{}|^`#", c) >= 0 {
			return serviceURL{}, false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" || u.Fragment != "" {
		return serviceURL{}, false
	}
	if u.Scheme != "https" && u.Scheme != "http" || !strings.HasPrefix(strings.ToLower(raw), u.Scheme+"://") {
		return serviceURL{}, false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(u.Host, "%") || host == "" {
		return serviceURL{}, false
	}
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return serviceURL{}, false
		}
	} else if !validHost(host) {
		return serviceURL{}, false // also refuses a trailing dot and empty labels
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return serviceURL{}, false
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return serviceURL{}, false
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return serviceURL{}, false
	}
	lp := strings.ToLower(path)
	for _, bad := range []string{"%2e", "%2f", "%5c", "%25", "%00"} {
		if strings.Contains(lp, bad) {
			return serviceURL{}, false
		}
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return serviceURL{}, false
		}
	}
	return serviceURL{scheme: u.Scheme, host: host, port: port, path: path}, true
}

// NormalizePrefix checks a registered URL prefix and returns its normal
// form (scheme://host:port/path, no query).
func NormalizePrefix(raw string) (string, error) {
	u, ok := checkURL(raw)
	if !ok {
		return "", badService("the service URL must be an absolute http(s) URL without userinfo, fragment, " +
			"backslashes, encoded dots or slashes, or non-ASCII characters (international hosts in their xn-- form)")
	}
	if strings.Contains(raw, "?") {
		return "", badService("the service URL prefix must not have a query")
	}
	return u.prefix(), nil
}

// compilePattern compiles an opt-in service pattern, anchored.
func compilePattern(p string) (*regexp.Regexp, error) {
	if len(p) > 1024 {
		return nil, badService("the pattern is longer than 1024 characters")
	}
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, badService("the pattern is not a valid regular expression (RE2 syntax)")
	}
	return re, nil
}

// CheckService validates and normalises a service definition.
func CheckService(s *RegisteredService) error {
	switch {
	case s.AppID == "":
		return badService("app_id is required")
	case (s.URL == "") == (s.Pattern == ""):
		return badService("give either a URL prefix or a pattern")
	case s.CertificateRequired && s.MinAuthLevel == 1:
		return badService("a service that requires a certificate login has min_auth_level 2 (a certificate login's level)")
	case s.MinAuthLevel < 1 || s.MinAuthLevel > 2:
		return badService("min_auth_level must be 1 (password) or 2 (certificate or another strong method)")
	case s.LegacyScheme < 0 || s.LegacyScheme > 2:
		return badService("legacy_scheme must be 0 (CAS), 1 or 2")
	case s.LegacyScheme != 0 && s.URL == "":
		return badService("a legacy service is registered by the URL of its ssoAuthService endpoint, not a pattern")
	case s.LegacyScheme != 0 && s.AllowProxy:
		return badService("a legacy service cannot obtain proxy-granting tickets")
	case s.LegacyScheme != 0 && s.ReleasesAuthorization():
		return badService("a legacy service's validation answers the account only: roles and permissions are released " +
			"to CAS and OpenID Connect services (release_roles, release_permissions)")
	case s.LegacyScheme != 0 && s.ConsentRequired:
		return badService("consent is asked of OpenID Connect clients: a legacy service takes no authorization codes (consent_required)")
	case s.ConsentTTL < 0 || s.ConsentTTL > MaxConsentTTL || s.ConsentTTL%time.Second != 0:
		return badService("consent_ttl must be whole seconds, at most 3650 days (0: the default, 90 days)")
	}
	if err := checkPolicy(s); err != nil {
		return err
	}
	if s.RequiredPermission != "" {
		if _, _, ok := SplitPermission(s.RequiredPermission); !ok {
			return badService("required_permission must be resource:operation (a resource code and an operation: " +
				"letters, digits, '.', '_' or '-'), e.g. docs.contract:approve")
		}
	}
	if s.URL != "" {
		n, err := NormalizePrefix(s.URL)
		if err != nil {
			return err
		}
		// A service ticket travels in the redirect to the service: over
		// plain HTTP anyone on the way could use it first.
		if u, ok := checkURL(n); ok && u.scheme != "https" && !loopback(u.host) {
			return badService("the service URL must be an https URL (http only on loopback): its tickets travel in the redirect to it")
		}
		s.URL = n
	}
	if s.Pattern != "" {
		if _, err := compilePattern(s.Pattern); err != nil {
			return err
		}
	}
	if s.LogoutURL != "" {
		u, ok := checkURL(s.LogoutURL)
		if !ok || u.scheme != "https" && !loopback(u.host) {
			return badService("the logout URL must be an https URL (http only on loopback) of the same strict form")
		}
	}
	return nil
}

// SplitPermission splits a required permission "resource:operation"; ok
// is false unless both are codes (a letter or digit, then letters, digits,
// '.', '_' or '-'; at most 128 and 64 characters).
func SplitPermission(p string) (resource, operation string, ok bool) {
	resource, operation, found := strings.Cut(p, ":")
	if !found || !permCode(resource, 128) || !permCode(operation, 64) {
		return "", "", false
	}
	return resource, operation, true
}

func permCode(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// compiled is a registered service ready for matching.
type compiled struct {
	*RegisteredService
	prefix serviceURL
	re     *regexp.Regexp
}

// matches reports whether the checked URL u (raw as given) is this
// service's.
func (c *compiled) matches(raw string, u serviceURL) bool {
	if c.re != nil {
		return c.re.MatchString(raw)
	}
	p := c.prefix
	if u.scheme != p.scheme || u.host != p.host || u.port != p.port {
		return false
	}
	if strings.HasSuffix(p.path, "/") {
		return strings.HasPrefix(u.path, p.path)
	}
	return u.path == p.path || strings.HasPrefix(u.path, p.path+"/")
}

// Registry matches service URLs against the registered services. It reads
// the store at most once per refresh period (changes through this instance
// apply at once).
type Registry struct {
	store   ServiceStore
	refresh time.Duration
	now     func() time.Time
	// suspended, when set, says which applications are suspended in
	// identity: their services take no tickets (SetSuspended).
	suspended func(appID string) bool
	// appLevel, when set, is each application's own minimum level
	// (identity's App.min_auth_level): its services are held to it too
	// (SetAppLevels).
	appLevel func(appID string) int

	mu     sync.Mutex
	loaded time.Time
	list   []*compiled
	// hits remembers which service of list a service URL matched (every
	// ticket issued checks one; most name the same few URLs), at most
	// maxHits URLs. It is emptied whenever list is rebuilt (Invalidate,
	// the refresh period), so a change of the registry is seen as soon as
	// without it. URLs that match nothing are not remembered: they take
	// the whole check every time.
	hits map[string]*compiled
	// consent is, by application, an enabled service of list asking
	// consent (its settings apply to all of the client's services).
	consent map[string]*RegisteredService
}

// maxHits bounds Registry.hits (URLs of up to MaxServiceURLLen bytes).
const maxHits = 1024

// NewRegistry returns a registry over st, rereading it every refresh (5s
// when 0).
func NewRegistry(st ServiceStore, refresh time.Duration, now func() time.Time) *Registry {
	if refresh <= 0 {
		refresh = 5 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Registry{store: st, refresh: refresh, now: now}
}

// SetSuspended makes the registry leave out the services of the
// applications suspended says are suspended (as disabled services are),
// from the next reread (Invalidate when the answer changes).
func (r *Registry) SetSuspended(suspended func(appID string) bool) {
	r.mu.Lock()
	r.suspended, r.loaded = suspended, time.Time{}
	r.mu.Unlock()
}

// SetAppLevels makes the registry hold the services of each application
// to the application's own minimum level (graded authentication per
// system, identity's min_auth_level), from the next reread (Invalidate
// when an answer changes): 2 raises a service's min_auth_level to 2, 3
// (a certificate only) also makes it certificate_required. A service's own
// stricter settings stay.
func (r *Registry) SetAppLevels(level func(appID string) int) {
	r.mu.Lock()
	r.appLevel, r.loaded = level, time.Time{}
	r.mu.Unlock()
}

// AppLevelUnknown is the application level (SetAppLevels) of an
// application whose level is not known yet: the ticket component has not
// read the levels from identity since its start. Its services issue
// nothing until then (StrongEnough is false, the issuing calls answer
// ErrAppLevelUnknown): graded authentication fails closed (review sec26 M3).
const AppLevelUnknown = -1

// heldToApp is s held to its application's level l (s itself when it
// already is).
func heldToApp(s *RegisteredService, l int) *RegisteredService {
	if l == AppLevelUnknown {
		cp := *s
		cp.AppLevelUnknown = true
		return &cp
	}
	if l < 2 || s.MinAuthLevel >= 2 && (l < 3 || s.CertificateRequired) {
		return s
	}
	cp := *s
	cp.MinAuthLevel = max(cp.MinAuthLevel, 2)
	cp.CertificateRequired = cp.CertificateRequired || l >= 3
	return &cp
}

// Invalidate makes the next match reread the store.
func (r *Registry) Invalidate() {
	r.mu.Lock()
	r.loaded = time.Time{}
	r.mu.Unlock()
}

// fresh reports whether list may be used without rereading the store
// (r.mu held).
func (r *Registry) fresh() bool {
	return !r.loaded.IsZero() && r.now().Sub(r.loaded) < r.refresh
}

func (r *Registry) services(ctx context.Context) ([]*compiled, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fresh() {
		return r.list, nil
	}
	all, err := r.store.ListServices(ctx, "")
	if err != nil {
		if r.list != nil {
			return r.list, nil // serve the last known registry through an outage
		}
		return nil, err
	}
	list := make([]*compiled, 0, len(all))
	for _, s := range all {
		if !s.Enabled || r.suspended != nil && r.suspended(s.AppID) {
			continue
		}
		if r.appLevel != nil && s.AppID != "" {
			s = heldToApp(s, r.appLevel(s.AppID))
		}
		c := &compiled{RegisteredService: s}
		if s.Pattern != "" {
			re, err := compilePattern(s.Pattern)
			if err != nil {
				continue
			}
			c.re = re
		} else {
			u, ok := checkURL(s.URL)
			if !ok {
				continue
			}
			c.prefix = u
		}
		list = append(list, c)
	}
	// Most specific first: prefixes by length, then patterns.
	slices.SortStableFunc(list, func(a, b *compiled) int {
		if (a.re == nil) != (b.re == nil) {
			if a.re == nil {
				return -1
			}
			return 1
		}
		return len(b.prefix.path) - len(a.prefix.path)
	})
	consent := map[string]*RegisteredService{}
	for _, c := range list {
		if c.ConsentRequired && consent[c.AppID] == nil {
			consent[c.AppID] = c.RegisteredService
		}
	}
	r.list, r.consent, r.loaded = list, consent, r.now()
	clear(r.hits)
	return list, nil
}

// consentOf is an enabled service of application appID asking consent
// (nil: none does).
func (r *Registry) consentOf(ctx context.Context, appID string) (*RegisteredService, error) {
	if _, err := r.services(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.consent[appID], nil
}

// remember notes that raw matched c of list, unless the registry has been
// rebuilt since list was read.
func (r *Registry) remember(list []*compiled, raw string, c *compiled) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(list) == 0 || len(r.list) == 0 || &r.list[0] != &list[0] || !r.fresh() {
		return
	}
	if r.hits == nil {
		r.hits = make(map[string]*compiled)
	} else if len(r.hits) >= maxHits {
		clear(r.hits) // many different URLs: start again rather than grow
	}
	r.hits[raw] = c
}

// Match returns the registered service of a service URL, or
// ErrServiceNotRegistered.
func (r *Registry) Match(ctx context.Context, raw string) (*RegisteredService, error) {
	if raw == "" || len(raw) > MaxServiceURLLen {
		return nil, ErrServiceNotRegistered // checkURL's first refusal, before hashing raw
	}
	r.mu.Lock()
	if c := r.hits[raw]; c != nil && r.fresh() {
		r.mu.Unlock()
		return c.RegisteredService, nil
	}
	r.mu.Unlock()
	u, ok := checkURL(raw)
	if !ok {
		return nil, ErrServiceNotRegistered
	}
	list, err := r.services(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		if c.matches(raw, u) {
			r.remember(list, raw, c)
			return c.RegisteredService, nil
		}
	}
	return nil, ErrServiceNotRegistered
}
