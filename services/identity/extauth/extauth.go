// Package extauth is identity's client of external authenticators: the
// programs vendors write (face recognition, an SMS code gateway, a token
// server) that implement uias.authn.v1.ExternalAuthenticatorService
// (proto/uias/authn/v1/authenticator.proto; docs/adr/0045). Each entry of
// identity.external_authenticators is one Client, reached over gRPC with
// TLS (the vendor's CA, optionally a client certificate), or in plain
// text to a loopback address only.
package extauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	authnv1 "github.com/uias/uias/proto/gen/uias/authn/v1"
	"github.com/uias/uias/services/identity"
)

// Defaults and bounds.
const (
	DefaultTimeout = 5 * time.Second
	MaxTimeout     = time.Minute
)

// Config is one entry of identity.external_authenticators.
type Config struct {
	// Name is the credential type (Authenticate's external_type; audit
	// records' authenticator): lower-case letters, digits, "-" and "_",
	// starting with a letter, at most 32.
	Name string `yaml:"name"`
	// Label is the sign-in page's name for it (default: Name).
	Label string `yaml:"label"`
	// Address is the authenticator's gRPC address, host:port.
	Address string `yaml:"address"`
	// CAFile holds the PEM CAs its server certificate must chain to
	// (default: the system's).
	CAFile string `yaml:"ca_file"`
	// ServerName is the name its certificate must hold (default: the
	// address's host).
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are UIAS's client certificate and key (PEM),
	// for an authenticator that wants mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Plaintext: no TLS; only to a loopback address (an authenticator on
	// the same machine, a sidecar).
	Plaintext bool `yaml:"plaintext"`
	// Timeout bounds one check (default DefaultTimeout, at most
	// MaxTimeout; the caller's deadline shortens it).
	Timeout time.Duration `yaml:"timeout"`
	// Level is the authentication level its credential alone reaches: 1
	// (any method, as a password) or 2 (two factors). With the password
	// a login reaches 2 whatever it is.
	Level int `yaml:"level"`
	// RequirePassword: its credential is a second factor only (an SMS or
	// e-mail code): the password must come with it.
	RequirePassword bool `yaml:"require_password"`
	// Orgs are org codes whose subtrees' people may use it; empty: all.
	Orgs []string `yaml:"orgs"`
}

// FieldError is a configuration error of one key.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate checks c without reading files.
func (c *Config) Validate() []FieldError {
	var errs []FieldError
	bad := func(f, format string, a ...any) { errs = append(errs, FieldError{f, fmt.Sprintf(format, a...)}) }
	if !nameRE.MatchString(c.Name) {
		bad("name", "must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter, got %q", c.Name)
	}
	if len(c.Label) > 64 {
		bad("label", "at most 64 bytes")
	}
	host, port, err := net.SplitHostPort(c.Address)
	if err != nil || host == "" || port == "" {
		bad("address", "must be host:port, got %q", c.Address)
	} else if c.Plaintext && !loopback(host) {
		bad("plaintext", "plain text only to a loopback address (localhost, 127.0.0.1, ::1): people's credentials would cross the network in clear; use TLS (ca_file)")
	}
	if c.Plaintext && (c.CAFile != "" || c.CertFile != "" || c.ServerName != "") {
		bad("plaintext", "plaintext takes no ca_file, cert_file nor server_name")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("cert_file", "cert_file and key_file go together")
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		bad("timeout", "must be at most %s, got %s", MaxTimeout, c.Timeout)
	}
	if c.Level != 1 && c.Level != 2 {
		bad("level", "must be 1 (any method, as a password) or 2 (two factors); a certificate's level (3) is a certificate's only, got %d", c.Level)
	}
	return errs
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Client asks one external authenticator (identity.ExternalAuthenticator).
type Client struct {
	name    string
	timeout time.Duration
	conn    *grpc.ClientConn
	rpc     authnv1.ExternalAuthenticatorServiceClient
}

// Open reads c's files and prepares its connection (connected at the
// first check, and again after a failure, by gRPC).
func Open(c Config) (*Client, error) {
	if errs := c.Validate(); len(errs) > 0 {
		return nil, &errs[0]
	}
	creds := insecure.NewCredentials()
	if !c.Plaintext {
		host, _, _ := net.SplitHostPort(c.Address)
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		if c.ServerName != "" {
			tc.ServerName = c.ServerName
		}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, &FieldError{"ca_file", err.Error()}
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, &FieldError{"ca_file", "holds no PEM certificate"}
			}
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, &FieldError{"cert_file", err.Error()}
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(c.Address, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, &FieldError{"address", err.Error()}
	}
	t := c.Timeout
	if t == 0 {
		t = DefaultTimeout
	}
	return &Client{name: c.Name, timeout: t, conn: conn, rpc: authnv1.NewExternalAuthenticatorServiceClient(conn)}, nil
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Verify asks the authenticator (identity.ExternalAuthenticator). Its
// errors say the gRPC code (and, for UNAVAILABLE, the connection's state),
// never the credential nor the status message: the vendor's server writes
// that message, and may put the request in it (security review sec31a L1).
func (c *Client) Verify(ctx context.Context, q identity.ExternalQuery) (identity.ExternalAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.rpc.Verify(ctx, &authnv1.VerifyRequest{UserId: q.UserID, Login: q.Login, CredentialType: q.Type,
		Credential: q.Credential, ClientIp: q.ClientIP, RequestId: q.RequestID})
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.Unavailable:
			return identity.ExternalAnswer{}, fmt.Errorf("unavailable (connection %s)", c.conn.GetState())
		case codes.DeadlineExceeded:
			return identity.ExternalAnswer{}, errors.New("no answer within the timeout")
		}
		return identity.ExternalAnswer{}, fmt.Errorf("answered gRPC %s", st.Code())
	}
	var v identity.ExternalVerdict
	switch res.GetVerdict() {
	case authnv1.Verdict_VERDICT_ACCEPTED:
		v = identity.ExternalAccepted
	case authnv1.Verdict_VERDICT_REJECTED:
		v = identity.ExternalRejected
	case authnv1.Verdict_VERDICT_UNAVAILABLE:
		v = identity.ExternalUnavailable
	}
	return identity.ExternalAnswer{Verdict: v, Reason: res.GetReason(), UserID: res.GetUserId()}, nil
}
