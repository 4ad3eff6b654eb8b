package component

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/ticket"
)

// Config is the ticket section of the configuration (YAML key "ticket").
type Config struct {
	// STTTL is the lifetime of a service ticket (CAS default 10s).
	STTTL time.Duration `yaml:"st_ttl"`
	// PTTTL is the lifetime of a proxy ticket (10s).
	PTTTL time.Duration `yaml:"pt_ttl"`
	// TGTIdle ends a session unused for this long (2h).
	TGTIdle time.Duration `yaml:"tgt_idle"`
	// TGTHard ends a session this long after login (8h).
	TGTHard time.Duration `yaml:"tgt_hard"`
	// PGTTTL bounds a proxy-granting ticket (2h; its session bounds it too).
	PGTTTL time.Duration `yaml:"pgt_ttl"`
	// Centre is the code of this data centre, carried by every ticket
	// (1-16 letters or digits; default "c1").
	Centre string `yaml:"centre"`
	// KVReplicas is the replica count of the key-value buckets (1 with the
	// embedded NATS; 3 on a NATS cluster).
	KVReplicas int `yaml:"kv_replicas"`
	// StoreTimeout bounds every call to the buckets: a NATS outage is a
	// prompt TICKET_STORE_UNAVAILABLE, never a hang (2s).
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// KeyFile overrides where the key ring is read from. Empty (the
	// default): the deployment's ring as identity reads it (UIAS_KEYRING,
	// identity.key_file, identity.key_file_allow_open_mode). Service
	// tickets are signed with its signing keys.
	KeyFile string `yaml:"key_file"`
	// ServicesDefaultAccess is the access of a service registered with
	// neither access rule (require_account_link, required_permission):
	// "open" (the default, as before) to anyone signed in; "linked" only
	// to people with an active account link with its application
	// (require_account_link is set at registration, unless the
	// registration asks for open_access). Services registered before are
	// not changed.
	ServicesDefaultAccess string `yaml:"services_default_access"`
	// CAS2Attributes releases the person's attributes at the CAS 2.0
	// serviceValidate/proxyValidate too, not only at p3/ (true): clients
	// such as gopkg.in/cas.v2 validate only at /serviceValidate.
	CAS2Attributes bool `yaml:"cas2_attributes"`
	// OutboundCAFile adds CA certificates (PEM) to the system roots for the
	// component's outbound HTTPS calls (pgtUrl callbacks, single-logout
	// requests to the applications).
	OutboundCAFile string `yaml:"outbound_ca_file"`
	// RegistryRefresh is how often an instance rereads the service registry
	// (changes made through it apply at once; 5s).
	RegistryRefresh      time.Duration `yaml:"registry_refresh"`
	KeyFileAllowOpenMode bool          `yaml:"key_file_allow_open_mode"`
	// SessionCache is how long an instance may reuse its own recent copy
	// of a session when it issues a ticket from it (1m; 0 turns it off).
	// The session update that records the ticket expects the copy's
	// revision, so a copy another replica made stale costs one retry and
	// never issues from an ended session.
	SessionCache time.Duration `yaml:"session_cache"`
	// SessionTouch is how long after a session's idle deadline last moved
	// a ticket issued from it moves it again (0, the default: tgt_idle/20,
	// 6m with the CAS defaults). Between moves, a ticket for a service the
	// session has recorded writes nothing but the ticket.
	SessionTouch time.Duration `yaml:"session_touch"`
	// AttributeCache is how long an instance keeps the attributes a
	// validation releases of a person to an application (5s; 0 turns it
	// off). Identity's CHANGES events about the person, their groups and
	// links, or any org drop them at once.
	AttributeCache time.Duration `yaml:"attribute_cache"`
	// InactiveSweep: every this long (and once soon after the start) an
	// instance asks identity which of the people with live sessions may
	// no longer sign in (disabled, deleted, below a disabled org) and ends
	// their sessions: the change events that end them at once are not
	// kept for an instance that was stopped or cut off from NATS when they
	// were published (5m; 0 turns it off).
	InactiveSweep time.Duration `yaml:"inactive_sweep"`
	// OIDCIssuer is the OpenID Connect issuer: the external URL of the
	// edge's /cas/oidc (e.g. https://sso.example.gov/cas/oidc), the ID
	// tokens' iss. Empty: the URL each request reached (its scheme and
	// host as the edge sees them), which a client must then use as is.
	OIDCIssuer string `yaml:"oidc_issuer"`
	// OIDCKeyFile is a PEM file of RSA private keys (2048 bits or more)
	// that sign ID tokens and logout tokens: the first signs, the others are
	// only published in the key set (a rotation puts the new key first and
	// keeps the old one until the tokens it signed have expired). Empty:
	// keys derived from the key ring's signing keys (anyone holding the
	// ring can then derive them). Mode 0600 unless key_file_allow_open_mode.
	OIDCKeyFile string `yaml:"oidc_key_file"`
	// OIDCCodeTTL is the lifetime of an authorization code (60s).
	OIDCCodeTTL time.Duration `yaml:"oidc_code_ttl"`
	// AccessTokenTTL is the lifetime of an OAuth access token (1h; the
	// end of its session ends it sooner).
	AccessTokenTTL time.Duration `yaml:"access_token_ttl"`
	// FingerAgentURL is the URL of the fingerprint reader's capture agent
	// on the people's computers (e.g. http://127.0.0.1:15270/capture),
	// which the sign-in page's script asks for a finger's record. Empty
	// (the default): the sign-in page offers no fingerprint sign-in.
	// https, or http to this computer (127.0.0.1, ::1, localhost).
	FingerAgentURL string `yaml:"finger_agent_url"`
	// USBKey offers the USB key sign-in at the login page (a certificate
	// and its key's signature of a challenge, verified by identity; ADR
	// 0033): for browsers behind a proxy that terminates TLS and for USB
	// keys whose vendor control signs (SM2 too). Default off.
	USBKey bool `yaml:"usb_key"`
	// USBKeyScript is the URL of the USB key vendor's script the login
	// page's USB key step loads (it defines window.uiasSignChallenge;
	// the password pages never load it): a path on this site
	// (/static/usbkey.js) or https, with USBKeyScriptIntegrity for https
	// (http, also to this computer, is refused: whoever answers on a
	// local port would run script in the sign-in page; a local agent
	// belongs in usb_key_connect). Empty: the browser defines the hook
	// itself (an extension, a built-in control).
	USBKeyScript string `yaml:"usb_key_script"`
	// USBKeyScriptIntegrity is the vendor script's Subresource Integrity
	// hash (sha256-, sha384- or sha512- and the base64 digest; several
	// separated by spaces): the browser runs the script only when its
	// content matches. Required for an https script.
	USBKeyScriptIntegrity string `yaml:"usb_key_script_integrity"`
	// USBKeyConnect are further origins the login page's scripts may
	// fetch or open (WebSocket) for the USB key: the vendor control's
	// local agent, e.g. ws://127.0.0.1:4006. https/wss, or http/ws to this
	// computer; scheme://host[:port] only.
	USBKeyConnect []string `yaml:"usb_key_connect"`
	// Kerberos is the Windows domain sign-in (SPNEGO) of the CAS login
	// page (ticket.kerberos; ADR 0022).
	Kerberos KerberosConfig `yaml:"kerberos"`
	// PeerKeyFile is a PEM file with this centre's Ed25519 private key
	// (PKCS#8, `openssl genpkey -algorithm ed25519`) that signs the
	// assertions it gives its peers (sign-in across centres, ADR 0030).
	// Empty: it vouches for nobody. Mode 0600 unless
	// key_file_allow_open_mode.
	PeerKeyFile string `yaml:"peer_key_file"`
	// PeerAssertionTTL is how long an assertion is good for (1m; 5s-5m).
	PeerAssertionTTL time.Duration `yaml:"peer_assertion_ttl"`
	// Peers are the centres this one trusts and offers on its login page:
	// the level-2 centre's is level 1, level 1's are its level-2 centres.
	Peers []PeerConfig `yaml:"peers"`
	// PeerProbe is how often the pages check that each peer answers (30s):
	// the login page offers only peers that answered last time.
	PeerProbe time.Duration `yaml:"peer_probe"`
}

// PeerConfig is one of ticket.peers.
type PeerConfig struct {
	// Name is the peer's ticket.centre.
	Name string `yaml:"name"`
	// URL is the peer's external base URL as browsers reach it
	// (https://sso.l1.example), without /cas.
	URL string `yaml:"url"`
	// PublicKeyFile is a PEM file of the peer's public keys (PUBLIC KEY,
	// `openssl pkey -in peer.key -pubout`; several during a rotation).
	PublicKeyFile string `yaml:"public_key_file"`
	// DisplayName is how the login page names the peer ("Level 1 centre");
	// empty: Name.
	DisplayName string `yaml:"display_name"`
}

// KerberosConfig is ticket.kerberos: a person already logged on to the
// Windows (AD) domain, or an MIT realm, signs in to the CAS login page
// with the Kerberos ticket the browser presents (SPNEGO, HTTP Negotiate),
// without typing a password.
type KerberosConfig struct {
	// Enabled offers Negotiate on the login page.
	Enabled bool `yaml:"enabled"`
	// KeytabFile holds the keys of ServicePrincipal (ktpass on AD, kadmin
	// ktadd on MIT): a secret. Mode 0600 (or 0440) unless
	// ticket.key_file_allow_open_mode; read at the start, which fails when
	// it holds no key of ServicePrincipal.
	KeytabFile string `yaml:"keytab_file"`
	// ServicePrincipal is the page's principal, HTTP/<host the browsers
	// reach>@REALM (e.g. HTTP/sso.msa.example@MSA.EXAMPLE).
	ServicePrincipal string `yaml:"service_principal"`
	// Realms are the client realms accepted (upper case as Kerberos
	// writes them); empty: the service principal's realm only.
	Realms []string `yaml:"realms"`
	// StripSuffix, per realm ("REALM=text"), removes text from the end of
	// the principal's name before the mapping (e.g. "MSA.EXAMPLE=.sz"); a
	// principal of that realm without it maps to no one.
	StripSuffix []string `yaml:"strip_suffix"`
	// CaseSensitiveRealms are the realms whose principal names are case
	// sensitive (MIT Kerberos): a name there maps only when it is in lower
	// case already. Other realms (Active Directory) are folded.
	CaseSensitiveRealms []string `yaml:"case_sensitive_realms"`
	// LoginSuffix, per realm ("REALM=text"), appends text to the name (e.g.
	// "MSA.EXAMPLE=@sz" when UIAS login names carry it).
	LoginSuffix []string `yaml:"login_suffix"`
	// Networks are the client networks (CIDR) offered Negotiate; empty:
	// every client. Browsers outside the domain then never see the
	// challenge.
	Networks []string `yaml:"networks"`
}

// Values of services_default_access.
const (
	ServicesOpen   = "open"
	ServicesLinked = "linked"
)

// Defaults returns the ticket defaults (CAS's).
func Defaults() *Config {
	return &Config{STTTL: ticket.DefaultSTTTL, PTTTL: ticket.DefaultPTTTL, TGTIdle: ticket.DefaultTGTIdle,
		TGTHard: ticket.DefaultTGTHard, PGTTTL: ticket.DefaultPGTTTL, Centre: ticket.DefaultCentre,
		KVReplicas: 1, StoreTimeout: 2 * time.Second, ServicesDefaultAccess: ServicesOpen, RegistryRefresh: 5 * time.Second, CAS2Attributes: true,
		SessionCache: time.Minute, AttributeCache: 5 * time.Second, InactiveSweep: 5 * time.Minute,
		OIDCCodeTTL: ticket.DefaultCodeTTL, AccessTokenTTL: ticket.DefaultAccessTTL,
		PeerAssertionTTL: ticket.DefaultPeerAssertionTTL, PeerProbe: 30 * time.Second}
}

// Bind implements config.Section.
func (c *Config) Bind(b *config.Binder) {
	b.Duration(&c.STTTL, "UIAS_TICKET_ST_TTL", "", "")
	b.Duration(&c.PTTTL, "UIAS_TICKET_PT_TTL", "", "")
	b.Duration(&c.TGTIdle, "UIAS_TICKET_TGT_IDLE", "", "")
	b.Duration(&c.TGTHard, "UIAS_TICKET_TGT_HARD", "", "")
	b.Duration(&c.PGTTTL, "UIAS_TICKET_PGT_TTL", "", "")
	b.String(&c.Centre, "UIAS_TICKET_CENTRE", "", "")
	b.Int(&c.KVReplicas, "UIAS_TICKET_KV_REPLICAS", "", "")
	b.Duration(&c.StoreTimeout, "UIAS_TICKET_STORE_TIMEOUT", "", "")
	b.String(&c.KeyFile, "UIAS_TICKET_KEY_FILE", "", "")
	b.String(&c.ServicesDefaultAccess, "UIAS_TICKET_SERVICES_DEFAULT_ACCESS", "", "")
	b.Bool(&c.CAS2Attributes, "UIAS_TICKET_CAS2_ATTRIBUTES", "", "")
	b.String(&c.OutboundCAFile, "UIAS_TICKET_OUTBOUND_CA_FILE", "", "")
	b.Duration(&c.RegistryRefresh, "UIAS_TICKET_REGISTRY_REFRESH", "", "")
	b.Bool(&c.KeyFileAllowOpenMode, "UIAS_TICKET_KEY_FILE_ALLOW_OPEN_MODE", "", "")
	b.Duration(&c.SessionCache, "UIAS_TICKET_SESSION_CACHE", "", "")
	b.Duration(&c.SessionTouch, "UIAS_TICKET_SESSION_TOUCH", "", "")
	b.Duration(&c.AttributeCache, "UIAS_TICKET_ATTRIBUTE_CACHE", "", "")
	b.Duration(&c.InactiveSweep, "UIAS_TICKET_INACTIVE_SWEEP", "", "")
	b.String(&c.OIDCIssuer, "UIAS_TICKET_OIDC_ISSUER", "", "")
	b.String(&c.OIDCKeyFile, "UIAS_TICKET_OIDC_KEY_FILE", "", "")
	b.Duration(&c.OIDCCodeTTL, "UIAS_TICKET_OIDC_CODE_TTL", "", "")
	b.Duration(&c.AccessTokenTTL, "UIAS_TICKET_ACCESS_TOKEN_TTL", "", "")
	b.String(&c.FingerAgentURL, "UIAS_TICKET_FINGER_AGENT_URL", "", "")
	b.Bool(&c.USBKey, "UIAS_TICKET_USB_KEY", "", "")
	b.String(&c.USBKeyScript, "UIAS_TICKET_USB_KEY_SCRIPT", "", "")
	b.String(&c.USBKeyScriptIntegrity, "UIAS_TICKET_USB_KEY_SCRIPT_INTEGRITY", "", "")
	b.List(&c.USBKeyConnect, "UIAS_TICKET_USB_KEY_CONNECT", "", "")
	b.Bool(&c.Kerberos.Enabled, "UIAS_TICKET_KERBEROS_ENABLED", "", "")
	b.String(&c.Kerberos.KeytabFile, "UIAS_TICKET_KERBEROS_KEYTAB_FILE", "", "")
	b.String(&c.Kerberos.ServicePrincipal, "UIAS_TICKET_KERBEROS_SERVICE_PRINCIPAL", "", "")
	b.List(&c.Kerberos.Realms, "UIAS_TICKET_KERBEROS_REALMS", "", "")
	b.List(&c.Kerberos.StripSuffix, "UIAS_TICKET_KERBEROS_STRIP_SUFFIX", "", "")
	b.List(&c.Kerberos.CaseSensitiveRealms, "UIAS_TICKET_KERBEROS_CASE_SENSITIVE_REALMS", "", "")
	b.List(&c.Kerberos.LoginSuffix, "UIAS_TICKET_KERBEROS_LOGIN_SUFFIX", "", "")
	b.List(&c.Kerberos.Networks, "UIAS_TICKET_KERBEROS_NETWORKS", "", "")
	b.String(&c.PeerKeyFile, "UIAS_TICKET_PEER_KEY_FILE", "", "")
	b.Duration(&c.PeerAssertionTTL, "UIAS_TICKET_PEER_ASSERTION_TTL", "", "")
	b.Duration(&c.PeerProbe, "UIAS_TICKET_PEER_PROBE", "", "")
}

// Complete implements config.Section: in a deployment of several centres
// (the centre settings, sync.centre) ticket.centre left at its default is
// this centre's name (centre.FromConfig(p).Self): one centre, one name.
func (c *Config) Complete(p *config.Config) {
	if h := centre.FromConfig(p); h != nil && c.Centre == ticket.DefaultCentre {
		c.Centre = h.Self
	}
}

// ringSource is implemented by the section that says where the
// deployment's key ring is (identity's).
type ringSource interface {
	KeyRingSource() crypto.RingSource
}

// RingSource is where the ticket component reads the key ring: key_file
// when set, else the deployment's ring as identity reads it, else
// <data_dir>/keyring.json.
func (c *Config) RingSource(p *config.Config) crypto.RingSource {
	if c.KeyFile != "" {
		return crypto.RingSource{File: c.KeyFile, AllowOpenFile: c.KeyFileAllowOpenMode}
	}
	if rs, ok := p.Section("identity").(ringSource); ok {
		return rs.KeyRingSource()
	}
	return crypto.RingSource{File: filepath.Join(p.DataDir, "keyring.json")}
}

// Validate implements config.Section.
func (c *Config) Validate(p *config.Config) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &config.FieldError{Field: Name + "." + field, Msg: fmt.Sprintf(format, a...)})
	}
	between := func(field string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(field, "must be between %s and %s, got %s", lo, hi, d)
		}
	}
	between("st_ttl", c.STTTL, time.Second, 10*time.Minute)
	between("pt_ttl", c.PTTTL, time.Second, 10*time.Minute)
	between("tgt_idle", c.TGTIdle, time.Minute, 30*24*time.Hour)
	between("tgt_hard", c.TGTHard, time.Minute, 90*24*time.Hour)
	between("pgt_ttl", c.PGTTTL, time.Minute, 90*24*time.Hour)
	if c.TGTIdle > c.TGTHard {
		bad("tgt_idle", "must not exceed tgt_hard (%s), got %s", c.TGTHard, c.TGTIdle)
	}
	homes := centre.FromConfig(p)
	if homes != nil && c.Centre == ticket.DefaultCentre {
		// left out, in a configuration assembled after Complete (sections
		// set by a program, as the tests do): this centre's name
		c.Centre = homes.Self
	}
	switch {
	case !centre.ValidName(c.Centre):
		bad("centre", "must be a centre name, %s (it goes into ticket values), got %q", centre.NameRule, c.Centre)
	case homes != nil && c.Centre != homes.Self:
		// the peers' assertions name it, and identity compares it with
		// the centres of sync's settings (rr29 B6)
		bad("centre", "must be this centre's sync.centre %q (or be left out: it then defaults to it), got %q", homes.Self, c.Centre)
	}
	if c.ServicesDefaultAccess != ServicesOpen && c.ServicesDefaultAccess != ServicesLinked && c.ServicesDefaultAccess != "" {
		bad("services_default_access", "must be %q (a service registered without an access rule is open to anyone signed in) "+
			"or %q (it requires an account link with its application), got %q", ServicesOpen, ServicesLinked, c.ServicesDefaultAccess)
	}
	if c.KVReplicas < 1 || c.KVReplicas > 5 {
		bad("kv_replicas", "must be between 1 and 5, got %d", c.KVReplicas)
	}
	between("store_timeout", c.StoreTimeout, 100*time.Millisecond, time.Minute)
	between("registry_refresh", c.RegistryRefresh, 100*time.Millisecond, time.Hour)
	between("session_cache", c.SessionCache, 0, time.Hour)
	between("session_touch", c.SessionTouch, 0, c.TGTIdle/2)
	between("attribute_cache", c.AttributeCache, 0, time.Minute)
	between("oidc_code_ttl", c.OIDCCodeTTL, time.Second, 10*time.Minute)
	between("access_token_ttl", c.AccessTokenTTL, time.Minute, 24*time.Hour)
	if c.OIDCIssuer != "" {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || !strings.HasSuffix(u.Path, "/oidc") {
			bad("oidc_issuer", "must be the absolute https (or http) URL of the edge's /cas/oidc as clients reach it, "+
				"ending in /oidc, without query, fragment or trailing slash (e.g. https://sso.example.gov/cas/oidc), got %q", c.OIDCIssuer)
		}
	}
	if c.FingerAgentURL != "" {
		if u, err := url.Parse(c.FingerAgentURL); err != nil || u.Host == "" || u.User != nil || u.Fragment != "" ||
			strings.ContainsAny(c.FingerAgentURL, "%;,'\" \t\r\n") || (u.Scheme != "https" && (u.Scheme != "http" || !config.LoopbackHost(u.Hostname()))) {
			bad("finger_agent_url", "must be the absolute URL of the fingerprint capture agent, https or http to this computer "+
				"(127.0.0.1, ::1, localhost), without user or fragment (e.g. http://127.0.0.1:15270/capture), got %q", c.FingerAgentURL)
		}
	}
	if c.USBKeyScript != "" {
		u, err := url.Parse(c.USBKeyScript)
		local := err == nil && u.Host == "" && u.Scheme == "" && strings.HasPrefix(c.USBKeyScript, "/") && !strings.HasPrefix(c.USBKeyScript, "//")
		remote := err == nil && u.Host != "" && u.Scheme == "https"
		if (!local && !remote) || u.User != nil || u.Fragment != "" || strings.ContainsAny(c.USBKeyScript, "%;,'\" \t\r\n") {
			bad("usb_key_script", "must be a path on this site (/static/usbkey.js), or an https URL, without user or fragment "+
				"(http, even to this computer, is refused: list a local agent in usb_key_connect), got %q", c.USBKeyScript)
		}
		if remote && c.USBKeyScriptIntegrity == "" {
			bad("usb_key_script_integrity", "is required for an https usb_key_script: the script's Subresource Integrity hash "+
				"(e.g. sha384- and the base64 of the SHA-384 of the file: openssl dgst -sha384 -binary usbkey.js | openssl base64 -A)")
		}
		if !c.USBKey {
			bad("usb_key_script", "is set but usb_key is off: set usb_key: true to offer the USB key sign-in")
		}
	}
	if c.USBKeyScriptIntegrity != "" {
		if c.USBKeyScript == "" {
			bad("usb_key_script_integrity", "is set but usb_key_script is not")
		}
		if !validSRI(c.USBKeyScriptIntegrity) {
			bad("usb_key_script_integrity", "must be Subresource Integrity hashes: sha256-, sha384- or sha512- and the base64 digest, "+
				"separated by spaces, got %q", c.USBKeyScriptIntegrity)
		}
	}
	for _, o := range c.USBKeyConnect {
		u, err := url.Parse(o)
		secure := err == nil && (u.Scheme == "https" || u.Scheme == "wss")
		local := err == nil && (u.Scheme == "http" || u.Scheme == "ws") && config.LoopbackHost(u.Hostname())
		if (!secure && !local) || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
			strings.ContainsAny(o, "%;,'\" \t\r\n*") {
			bad("usb_key_connect", "each entry must be an origin (scheme://host[:port], no path), https or wss, or http or ws to this computer "+
				"(127.0.0.1, ::1, localhost), e.g. ws://127.0.0.1:4006, got %q", o)
		}
		if !c.USBKey {
			bad("usb_key_connect", "is set but usb_key is off: set usb_key: true to offer the USB key sign-in")
		}
	}
	if c.Kerberos.Enabled {
		c.Kerberos.validate(func(field, format string, a ...any) { bad("kerberos."+field, format, a...) })
	}
	between("peer_assertion_ttl", c.PeerAssertionTTL, 5*time.Second, 5*time.Minute)
	between("peer_probe", c.PeerProbe, 100*time.Millisecond, time.Hour)
	seen := map[string]bool{}
	for i, p := range c.Peers {
		f := fmt.Sprintf("peers[%d]", i)
		switch {
		case !centre.ValidName(p.Name) || p.Name == c.Centre || seen[p.Name]:
			bad(f+".name", "must be another centre's ticket.centre (%s), each once, got %q", centre.NameRule, p.Name)
		case homes != nil && !homes.Known(p.Name):
			bad(f+".name", "must be a centre of sync's settings (sync.parent, or a sync.peers[].name at level 1), got %q", p.Name)
		}
		seen[p.Name] = true
		// http only to this computer (a test or a local proxy): the
		// assertions travel in the URL (sec28b L2)
		if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "https" && (u.Scheme != "http" || !config.LoopbackHost(u.Hostname()))) ||
			u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/cas") || strings.HasSuffix(u.Path, "/cas/") {
			bad(f+".url", "must be the peer's absolute https base URL as browsers reach it (http only to this computer: "+
				"127.0.0.1, ::1, localhost), without /cas, query or fragment (e.g. https://sso.l1.example), got %q", p.URL)
		}
		if p.PublicKeyFile == "" {
			bad(f+".public_key_file", "is required: the PEM file of the peer's public keys (openssl pkey -in peer.key -pubout)")
		}
	}
	if c.InactiveSweep != 0 {
		between("inactive_sweep", c.InactiveSweep, time.Second, 24*time.Hour)
	}
	return errors.Join(errs...)
}

// Settings returns the ticket section of cfg (tests set it before the
// start; nil without the section).
func Settings(cfg *config.Config) *Config {
	c, _ := cfg.Section(Name).(*Config)
	return c
}

// validSRI reports whether v is Subresource Integrity metadata: hashes
// (sha256-, sha384- or sha512- and the standard base64 of a digest of that
// size) separated by spaces.
func validSRI(v string) bool {
	sizes := map[string]int{"sha256": 32, "sha384": 48, "sha512": 64}
	fields := strings.Fields(v)
	for _, f := range fields {
		alg, digest, ok := strings.Cut(f, "-")
		b, err := base64.StdEncoding.DecodeString(digest)
		if !ok || err != nil || len(b) != sizes[alg] || sizes[alg] == 0 {
			return false
		}
	}
	return len(fields) > 0 && !strings.ContainsAny(v, "\"'<>")
}
