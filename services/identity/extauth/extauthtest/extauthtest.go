// Package extauthtest runs a real external authenticator
// (uias.authn.v1.ExternalAuthenticatorService) on a loopback gRPC listener for
// tests, in plain text or over TLS (optionally asking for UIAS's client
// certificate), with answers the test decides.
package extauthtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	authnv1 "github.com/uias/uias/proto/gen/uias/authn/v1"
)

// Options choose the transport.
type Options struct {
	// TLS serves with a certificate of 127.0.0.1 and localhost signed by a
	// test CA (Server.CAFile).
	TLS bool
	// ClientCert (with TLS) requires a client certificate signed by the
	// test CA: Server.CertFile and KeyFile are one.
	ClientCert bool
}

// Server is a running test authenticator.
type Server struct {
	// Addr is its host:port.
	Addr string
	// CAFile is the test CA (TLS); CertFile and KeyFile a client
	// certificate it signed (ClientCert).
	CAFile, CertFile, KeyFile string

	authnv1.UnimplementedExternalAuthenticatorServiceServer
	srv *grpc.Server

	mu sync.Mutex
	// answer decides (default: Codes).
	answer func(*authnv1.VerifyRequest) (*authnv1.VerifyResponse, error)
	// codes: user id -> the credential accepted.
	codes map[string]string
	calls []Call
}

// Call is what a Verify call carried (the credential as a string) and
// whether it came with a verified client certificate.
type Call struct {
	UserID, Login, Type, Credential, ClientIP, RequestID string
	ClientCert                                           bool
}

// Start serves until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{codes: map[string]string{}}
	var opts []grpc.ServerOption
	if o.TLS {
		dir := t.TempDir()
		c := WriteCerts(t, dir)
		s.CAFile, s.CertFile, s.KeyFile = c.CAFile, c.ClientCertFile, c.ClientKeyFile
		pair, err := tls.LoadX509KeyPair(c.ServerCertFile, c.ServerKeyFile)
		if err != nil {
			t.Fatal(err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		if o.ClientCert {
			pemCA, _ := os.ReadFile(s.CAFile)
			tc.ClientCAs = x509.NewCertPool()
			tc.ClientCAs.AppendCertsFromPEM(pemCA)
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.srv = grpc.NewServer(opts...)
	authnv1.RegisterExternalAuthenticatorServiceServer(s.srv, s)
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(s.srv.Stop)
	return s
}

// Stop stops serving (the authenticator is then down).
func (s *Server) Stop() { s.srv.Stop() }

// Enrol makes code the credential accepted for userID (the default
// answer: that code ACCEPTED, anything else REJECTED "NO_MATCH", a user
// without one REJECTED "NOT_ENROLLED").
func (s *Server) Enrol(userID, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[userID] = code
}

// Answer replaces the default answer (nil: back to it).
func (s *Server) Answer(f func(*authnv1.VerifyRequest) (*authnv1.VerifyResponse, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

// Calls are the Verify calls so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Verify implements the contract.
func (s *Server) Verify(ctx context.Context, r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
	c := Call{UserID: r.GetUserId(), Login: r.GetLogin(), Type: r.GetCredentialType(), Credential: string(r.GetCredential()),
		ClientIP: r.GetClientIp(), RequestID: r.GetRequestId()}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			c.ClientCert = true
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	answer, code, enrolled := s.answer, "", false
	if answer == nil {
		code, enrolled = s.codes[r.GetUserId()]
	}
	s.mu.Unlock()
	if answer != nil {
		return answer(r)
	}
	res := &authnv1.VerifyResponse{UserId: r.GetUserId(), Verdict: authnv1.Verdict_VERDICT_REJECTED}
	switch {
	case !enrolled:
		res.Reason = "NOT_ENROLLED"
	case string(r.GetCredential()) == code:
		res.Verdict, res.Reason = authnv1.Verdict_VERDICT_ACCEPTED, "MATCH"
	default:
		res.Reason = "NO_MATCH"
	}
	return res, nil
}

// Certs are PEM files of a test CA, a server certificate of 127.0.0.1
// and localhost, and a client certificate, both signed by the CA.
type Certs struct {
	CAFile                        string
	ServerCertFile, ServerKeyFile string
	ClientCertFile, ClientKeyFile string
}

// WriteCerts writes Certs in dir.
func WriteCerts(t testing.TB, dir string) Certs {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "extauthtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames, tmpl.IPAddresses = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", keyDER)
	}
	c := Certs{CAFile: write("ca.pem", "CERTIFICATE", caDER)}
	c.ServerCertFile, c.ServerKeyFile = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	c.ClientCertFile, c.ClientKeyFile = leaf(3, "uias-identity", x509.ExtKeyUsageClientAuth)
	return c
}
