// Package ldapauth checks people's passwords against an LDAP directory
// (OpenLDAP, Active Directory, ...) by binding to it as the person: the
// credential source of identity.ldap_auth (services/identity/credsource.go,
// docs/adr/0023-directory-credential-sources.md). The directory keeps the
// password; UIAS never sees a hash of it and never stores it.
//
// Two ways to find the person's entry, as Keycloak's LDAP federation and
// CAS's LDAP handler offer them:
//
//   - a DN template (bind_dn_template, e.g. "uid={login},ou=people,dc=example,dc=org",
//     or Active Directory's "{login}@corp.example.com"): the person binds at once;
//   - a search (bind_dn, bind_password_file or bind_password_env, base_dn,
//     filter such as "(sAMAccountName={login})"): a service account finds the
//     one entry, then the person binds as it on the same connection.
//
// The login name is escaped for where it goes (RFC 4514 in a DN, RFC 4515 in a
// filter), so no login name changes the query. Each check dials the
// directory afresh (the ADR measures why no pool is needed): a bind changes
// a connection's identity, and a fresh connection carries nobody's.
package ldapauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// DefaultTimeout bounds one check (dial, TLS, search and bind) when the
// source sets none.
const DefaultTimeout = 5 * time.Second

// Placeholder is what a template or filter writes for the login name.
const Placeholder = "{login}"

// Config is one entry of identity.ldap_auth.
type Config struct {
	// Name names the source in logs, audit records and GetUser
	// (credential_source "ldap:NAME").
	Name string `yaml:"name"`
	// URL is ldaps://host[:port] or ldap://host[:port].
	URL string `yaml:"url"`
	// StartTLS (ldap:// only) upgrades the connection before anything is
	// sent; on by default. Off only with InsecurePlaintext or to a
	// loopback address.
	StartTLS *bool `yaml:"start_tls"`
	// CAFile holds the PEM CAs the directory's certificate must chain to
	// (default: the system's).
	CAFile string `yaml:"ca_file"`
	// InsecurePlaintext allows ldap:// without StartTLS to a host other
	// than loopback: passwords then cross the network in clear. Logged at
	// start.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`
	// BindDNTemplate is the person's bind name with {login}: a DN
	// ("uid={login},ou=people,dc=example,dc=org") or, for Active
	// Directory, a user principal name ("{login}@corp.example.com") or a
	// down-level name ("CORP\\{login}").
	BindDNTemplate string `yaml:"bind_dn_template"`
	// BindDN is the service account that searches (instead of a
	// template); its password comes from BindPasswordFile or from the
	// environment variable BindPasswordEnv, never from this file.
	BindDN           string `yaml:"bind_dn"`
	BindPasswordFile string `yaml:"bind_password_file"`
	BindPasswordEnv  string `yaml:"bind_password_env"`
	// BaseDN and Filter (with {login}) find the person's entry in the
	// subtree; exactly one entry must match.
	BaseDN string `yaml:"base_dn"`
	Filter string `yaml:"filter"`
	// Orgs are org codes: the people in their subtrees check their
	// password here.
	Orgs []string `yaml:"orgs"`
	// Timeout bounds one check (default DefaultTimeout, at most 1m).
	Timeout time.Duration `yaml:"timeout"`
	// MaxConnections caps the checks talking to the directory at once
	// (default DefaultMaxConnections); more wait, within Timeout.
	MaxConnections int `yaml:"max_connections"`
}

// DefaultMaxConnections is a source's MaxConnections when it sets none.
const DefaultMaxConnections = 16

// FieldError is a problem with one setting (Field relative to the entry,
// e.g. "url").
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// startTLS reports whether a ldap:// connection is upgraded.
func (c *Config) startTLS() bool { return c.StartTLS == nil || *c.StartTLS }

// Plaintext reports whether passwords would cross the connection in clear
// (ldap:// without StartTLS).
func (c *Config) Plaintext() bool {
	u, err := url.Parse(c.URL)
	return err == nil && u.Scheme == "ldap" && !c.startTLS()
}

// Validate checks the entry (not the files and the environment: Open
// reads them).
func (c *Config) Validate() []*FieldError {
	var errs []*FieldError
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if c.Name == "" || len(c.Name) > 64 || strings.ContainsAny(c.Name, " \t\r\n\x00:") {
		bad("name", "must be 1 to 64 characters without spaces, ':' or control characters, got %q", c.Name)
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "ldap" && u.Scheme != "ldaps"):
		bad("url", "must be ldaps://host[:port] or ldap://host[:port], got %q", c.URL)
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil:
		bad("url", "must name the server only (no DN, query or user), got %q", c.URL)
	case u.Scheme == "ldaps" && c.StartTLS != nil && *c.StartTLS:
		bad("start_tls", "is for ldap:// URLs; ldaps:// is TLS from the start")
	case u.Scheme == "ldap" && !c.startTLS() && !c.InsecurePlaintext && !loopback(u.Hostname()):
		bad("start_tls", "is off for %s, which is not a loopback address: passwords would cross the network in clear; "+
			"use ldaps://, StartTLS, or set insecure_plaintext: true", u.Host)
	}
	tmpl, search := c.BindDNTemplate != "", c.BindDN != "" || c.BaseDN != "" || c.Filter != ""
	switch {
	case tmpl && search:
		bad("bind_dn_template", "either bind_dn_template or a search (bind_dn, base_dn, filter), not both")
	case !tmpl && !search:
		bad("bind_dn_template", "set bind_dn_template, or bind_dn, base_dn and filter to search for the person")
	case tmpl:
		if strings.Count(c.BindDNTemplate, Placeholder) != 1 {
			bad("bind_dn_template", "must contain {login} once, got %q", c.BindDNTemplate)
		} else if dnTemplate(c.BindDNTemplate) {
			if _, err := ldap.ParseDN(strings.Replace(c.BindDNTemplate, Placeholder, "x", 1)); err != nil {
				bad("bind_dn_template", "is not a DN with {login} as a value (%v), got %q", err, c.BindDNTemplate)
			}
		}
	default:
		if c.BindDN == "" {
			bad("bind_dn", "is required to search (the service account's DN)")
		} else if _, err := ldap.ParseDN(c.BindDN); err != nil {
			bad("bind_dn", "is not a DN: %v", err)
		}
		if (c.BindPasswordFile == "") == (c.BindPasswordEnv == "") {
			bad("bind_password_file", "set bind_password_file or bind_password_env (the service account's password; never in this file)")
		}
		if c.BaseDN == "" {
			bad("base_dn", "is required to search")
		} else if _, err := ldap.ParseDN(c.BaseDN); err != nil {
			bad("base_dn", "is not a DN: %v", err)
		}
		if strings.Count(c.Filter, Placeholder) < 1 {
			bad("filter", "must contain {login}, e.g. (sAMAccountName={login}) or (uid={login}), got %q", c.Filter)
		} else if _, err := ldap.CompileFilter(strings.ReplaceAll(c.Filter, Placeholder, "x")); err != nil {
			bad("filter", "is not an LDAP filter (%v), got %q", err, c.Filter)
		}
	}
	if len(c.Orgs) == 0 {
		bad("orgs", "must list at least one org code (the people of its subtree use this source)")
	}
	for _, o := range c.Orgs {
		if strings.TrimSpace(o) == "" {
			bad("orgs", "must not contain an empty org code")
		}
	}
	if c.Timeout < 0 || c.Timeout > time.Minute {
		bad("timeout", "must be 0 (default 5s) to 1m, got %s", c.Timeout)
	}
	if c.MaxConnections < 0 || c.MaxConnections > 1024 {
		bad("max_connections", "must be 0 (default %d) to 1024, got %d", DefaultMaxConnections, c.MaxConnections)
	}
	return errs
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dnTemplate reports whether a bind template is a DN (attr=value,...)
// rather than a user principal or down-level name.
func dnTemplate(t string) bool { return strings.Contains(t, "=") }

// ErrUnavailable is the error of a check the directory could not answer:
// unreachable, too slow, refusing the service account, or answering
// something else than a verdict on the password.
var ErrUnavailable = errors.New("the directory could not check the password")

// Account states Active Directory names in a refused bind's diagnostic
// (result 49, "data NNN"; review sec27a L1).
const (
	// StateLocked: data 775, the account is locked out at the directory
	// (answered whatever the password).
	StateLocked = "locked"
	// StateDisabled: data 533 (disabled) or 701 (account expired).
	StateDisabled = "disabled"
	// StatePasswordExpired: data 532 (password expired) or 773 (must
	// change at next logon); AD answers these only to the right password.
	StatePasswordExpired = "password_expired"
)

// AccountStateError is a refused bind whose diagnostic names the
// account's state at the directory (Active Directory's sub-codes): not a
// wrong password.
type AccountStateError struct{ State string }

func (e *AccountStateError) Error() string {
	return "the directory refused the account: " + e.State
}

// AccountState is the state (identity's credential sources ask for it).
func (e *AccountStateError) AccountState() string { return e.State }

// adStates maps AD's bind sub-codes to states.
var adStates = map[string]string{"775": StateLocked, "533": StateDisabled, "701": StateDisabled,
	"532": StatePasswordExpired, "773": StatePasswordExpired}

// accountState is the state an Active Directory bind refusal names ("" for
// a wrong password or another directory's answer).
func accountState(err error) string {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials || le.Err == nil {
		return ""
	}
	msg := le.Err.Error()
	i := strings.Index(msg, ", data ")
	if i < 0 || len(msg) < i+10 {
		return ""
	}
	return adStates[msg[i+7:i+10]]
}

// Source is one opened entry of identity.ldap_auth.
type Source struct {
	cfg      Config
	u        *url.URL
	tls      *tls.Config
	bindPass string
	timeout  time.Duration
	// slots holds a token per check talking to the directory.
	slots chan struct{}
}

// Open reads what cfg names (CA file, the service account's password) and
// returns the source. getenv reads the environment (os.Getenv when nil).
func Open(cfg Config, getenv func(string) string) (*Source, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errs[0]
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	u, _ := url.Parse(cfg.URL)
	s := &Source{cfg: cfg, u: u, timeout: cfg.Timeout}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	n := cfg.MaxConnections
	if n == 0 {
		n = DefaultMaxConnections
	}
	s.slots = make(chan struct{}, n)
	s.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, &FieldError{Field: "ca_file", Msg: fmt.Sprintf("cannot read: %v", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &FieldError{Field: "ca_file", Msg: cfg.CAFile + ": no PEM certificates found"}
		}
		s.tls.RootCAs = pool
	}
	if cfg.BindDN != "" {
		switch {
		case cfg.BindPasswordFile != "":
			b, err := os.ReadFile(cfg.BindPasswordFile)
			if err != nil {
				// the error names the file, never its content
				return nil, &FieldError{Field: "bind_password_file", Msg: fmt.Sprintf("cannot read: %v", err)}
			}
			s.bindPass = strings.TrimRight(string(b), "\r\n")
		default:
			s.bindPass = getenv(cfg.BindPasswordEnv)
		}
		if s.bindPass == "" {
			return nil, &FieldError{Field: "bind_password_file", Msg: "the service account's password is empty " +
				"(an empty password is an unauthenticated bind)"}
		}
	}
	return s, nil
}

// Name is the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Config is the source's configuration (the service account's password is
// not in it).
func (s *Source) Config() Config { return s.cfg }

// Check binds to the directory as login with password: true when the
// directory accepts it; false when it refuses it (wrong password, a login it
// does not know or finds twice, an empty password, a login that cannot be
// written in a bind name); an error wrapping ErrUnavailable when it could
// not tell. The error never contains the password.
func (s *Source) Check(ctx context.Context, login, password string) (bool, error) {
	// An empty password would be an unauthenticated bind (RFC 4513
	// 5.1.2), which directories accept as anonymous: never sent.
	if password == "" || login == "" {
		return false, nil
	}
	timeout := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return false, fmt.Errorf("%w: no time left", ErrUnavailable)
	}
	var bindName string
	if s.cfg.BindDNTemplate != "" {
		var ok bool
		if bindName, ok = s.bindName(login); !ok {
			return false, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// At most max_connections checks talk to the directory at once; the
	// others wait, within the check's time.
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return false, s.unavailable(ctx, "waiting for a connection (max_connections)", ctx.Err())
	}
	timeout = time.Until(deadlineOf(ctx))
	c, err := s.dial(ctx, timeout)
	if err != nil {
		return false, err
	}
	defer func() { _ = c.Close() }()
	// A call that outlives the deadline is cut by closing the connection.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if bindName == "" {
		bindName, err = s.find(c, login)
		if errors.Is(err, errNotOne) {
			return false, nil
		}
		if err != nil {
			return false, s.unavailable(ctx, "searching for the person", err)
		}
	}
	err = c.Bind(bindName, password)
	if err == nil {
		return true, nil
	}
	if st := accountState(err); st != "" {
		return false, &AccountStateError{State: st}
	}
	if rejected(err) {
		return false, nil
	}
	return false, s.unavailable(ctx, "the person's bind", err)
}

func deadlineOf(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline() // set by Check
	return dl
}

// rejected reports whether a bind's error is the directory's verdict on
// the credentials (wrong password, unknown name, an account it refuses),
// not a fault.
func rejected(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.LDAPResultInvalidCredentials, ldap.LDAPResultInappropriateAuthentication,
		ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInvalidDNSyntax)
}

// unavailable is the error of a check that got no verdict at stage.
func (s *Source) unavailable(ctx context.Context, stage string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %s: no answer within %s", ErrUnavailable, stage, s.timeout)
	}
	return fmt.Errorf("%w: %s: %s", ErrUnavailable, stage, describe(err))
}

// describe is an error of the directory without what a caller sent (an
// LDAP error carries the server's diagnostic message only).
func describe(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) {
		d := fmt.Sprintf("result %d (%s)", le.ResultCode, ldap.LDAPResultCodeMap[le.ResultCode])
		if le.ResultCode == ldap.ErrorNetwork && le.Err != nil {
			// the connection's or TLS's own error (a certificate not
			// trusted, a reset)
			d += ": " + le.Err.Error()
		}
		return d
	}
	return err.Error()
}

// bindName writes login into the bind template; false when login cannot
// be written into a user principal or down-level name unchanged.
func (s *Source) bindName(login string) (string, bool) {
	t := s.cfg.BindDNTemplate
	if dnTemplate(t) {
		return strings.Replace(t, Placeholder, ldap.EscapeDN(login), 1), true
	}
	// Active Directory's user@domain and DOMAIN\user have no escaping: a
	// login with one of their separators (or a DN's) is not a name there.
	if strings.ContainsAny(login, "@\\/,;=+<>\"#*()") || strings.ContainsFunc(login, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", false
	}
	return strings.Replace(t, Placeholder, login, 1), true
}

// dial connects to the directory for one check. The connection itself
// carries the check's deadline (SetDeadline): every read and write on it,
// the TLS handshakes included (ldaps, and StartTLS, whose handshake go-ldap
// runs without a deadline of its own), ends by then, so a directory, load
// balancer or anything on the path that goes silent after accepting
// StartTLS frees its max_connections slot at the check's timeout (review
// sec27a M1).
func (s *Source) dial(ctx context.Context, timeout time.Duration) (*ldap.Conn, error) {
	port := s.u.Port()
	if port == "" {
		port = ldap.DefaultLdapPort
		if s.u.Scheme == "ldaps" {
			port = ldap.DefaultLdapsPort
		}
	}
	d := &net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.u.Hostname(), port))
	if err != nil {
		return nil, s.unavailable(ctx, "connecting", err)
	}
	if err := raw.SetDeadline(deadlineOf(ctx)); err != nil {
		_ = raw.Close()
		return nil, s.unavailable(ctx, "connecting", err)
	}
	conn := raw
	if s.u.Scheme == "ldaps" {
		tc := tls.Client(raw, s.tls.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, s.unavailable(ctx, "TLS handshake", err)
		}
		conn = tc
	}
	c := ldap.NewConn(conn, s.u.Scheme == "ldaps")
	c.Start()
	c.SetTimeout(timeout)
	if s.u.Scheme == "ldap" && s.cfg.startTLS() {
		if err := c.StartTLS(s.tls.Clone()); err != nil {
			_ = c.Close()
			return nil, s.unavailable(ctx, "StartTLS", err)
		}
	}
	return c, nil
}

// find binds as the service account and looks up login's entry: its DN,
// or errNotOne when there is none or more than one.
func (s *Source) find(c *ldap.Conn, login string) (string, error) {
	if err := c.Bind(s.cfg.BindDN, s.bindPass); err != nil {
		return "", fmt.Errorf("the service account's bind (bind_dn) %s", describe(err))
	}
	filter := strings.ReplaceAll(s.cfg.Filter, Placeholder, ldap.EscapeFilter(login))
	// Two entries are enough to tell an ambiguous login; "1.1" asks for no
	// attributes.
	req := ldap.NewSearchRequest(s.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2,
		int(s.timeout/time.Second)+1, false, filter, []string{"1.1"}, nil)
	res, err := c.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return "", fmt.Errorf("base_dn %q does not exist", s.cfg.BaseDN)
		}
		return "", errors.New(describe(err))
	}
	if res == nil || len(res.Entries) != 1 {
		return "", errNotOne
	}
	return res.Entries[0].DN, nil
}

// errNotOne: the search found no entry or several: a refusal, not a
// fault.
var errNotOne = errors.New("not one entry")
