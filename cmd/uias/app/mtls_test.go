package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/crypto"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// pki is a test CA with the certificates it issued.
type pki struct {
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
	dir    string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{dir: dir}
	p.caCert, p.caKey = selfSignedCA(t, "UIAS test CA")
	p.caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.caCert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.caCert)
	return p
}

func selfSignedCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// issue writes a certificate for cn signed by issuer (the CA, or a rogue
// one) and returns its files and the loaded pair.
func (p *pki) issue(t *testing.T, name, cn string, issuer *x509.Certificate, issuerKey *ecdsa.PrivateKey) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	pair, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pair
}

func fingerprint(c tls.Certificate) string {
	sum := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(sum[:])
}

func reasonOfStatus(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// App_ID + certificate: an application bound to a client certificate is
// refused, even with its App_ID and secret, unless the call comes with that
// certificate: no certificate, another certificate from the same CA, a
// look-alike from another CA, or the fingerprint forged in metadata all
// fail, over gRPC and over REST. Unbound applications are unaffected.
func TestAppBoundToClientCertificate(t *testing.T) {
	p := newPKI(t)
	serverCert, serverKey, _ := p.issue(t, "server", "uias", p.caCert, p.caKey)
	appCertFile, _, appPair := p.issue(t, "hr-app", "hr-app", p.caCert, p.caKey)
	_, _, otherPair := p.issue(t, "other-app", "other-app", p.caCert, p.caKey)
	rogueCA, rogueKey := selfSignedCA(t, "UIAS test CA") // same name, other key
	_, _, roguePair := p.issue(t, "rogue", "hr-app", rogueCA, rogueKey)

	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.DB.DSN, identitycomponent.Settings(&cfg).KeyFile = "", ""
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	identitycomponent.Settings(&cfg).Argon2 = crypto.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile = serverCert, serverKey, p.caFile
	cfg.Complete()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{BootstrapPassword: "Mtls-Test-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop(context.Background()) }()

	c := newCtl(t, a)
	c.env["UIAS_ADMIN_PASSWORD"] = "Mtls-Test-Pass-1"
	tlsArgs := func(args ...string) []string { return append([]string{"--tls-ca", p.caFile}, args...) }
	c.run("", tlsArgs("login", "--user", "admin")...)
	var created identityv1.CreateAppResponse
	c.jsonOut(&created, "", tlsArgs("app", "create", "--type", "HR", "--code", "hr", "--name", "HR", "--client-cert", appCertFile)...)
	if got := created.GetApp().GetClientCertSha256(); got != fingerprint(appPair) {
		t.Fatalf("bound fingerprint %q, want %q", got, fingerprint(appPair))
	}
	var plain identityv1.CreateAppResponse
	c.jsonOut(&plain, "", tlsArgs("app", "create", "--type", "OA", "--code", "oa", "--name", "OA")...)

	authenticate := func(app *identityv1.CreateAppResponse, cert *tls.Certificate, md ...string) error {
		tc := &tls.Config{RootCAs: p.pool, ServerName: "localhost"}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		cctx = metadata.AppendToOutgoingContext(cctx, append([]string{"x-uias-app-id", app.GetApp().GetId(),
			"x-uias-app-secret", app.GetAppSecret()}, md...)...)
		_, err = identityv1.NewAuthServiceClient(conn).Authenticate(cctx, &identityv1.AuthenticateRequest{
			AppUserId: "nobody", Password: "x", AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
		return err
	}
	wantRefused := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.Unauthenticated || reasonOfStatus(err) != "CLIENT_CERT_REQUIRED" ||
			!strings.Contains(status.Convert(err).Message(), "registered client certificate") {
			t.Errorf("%s: %v, want Unauthenticated CLIENT_CERT_REQUIRED", what, err)
		}
	}

	// gRPC.
	if err := authenticate(&created, &appPair); err != nil {
		t.Fatalf("with its certificate: %v", err)
	}
	wantRefused("no certificate", authenticate(&created, nil))
	wantRefused("another application's certificate", authenticate(&created, &otherPair))
	wantRefused("fingerprint forged in metadata", authenticate(&created, nil, "x-uias-client-cert", fingerprint(appPair)))
	if err := authenticate(&created, &roguePair); err == nil {
		t.Error("a certificate from another CA was accepted")
	}
	if err := authenticate(&plain, nil); err != nil {
		t.Errorf("unbound application: %v", err)
	}

	// REST: the edge terminates TLS, verifies the certificate and passes
	// its fingerprint to identity over the trusted channel.
	rest := func(cert *tls.Certificate, forged string) (int, string) {
		tc := &tls.Config{RootCAs: p.pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		req, _ := http.NewRequest("POST", "https://"+a.HTTPAddr()+"/v1/authenticate",
			strings.NewReader(`{"app_user_id":"nobody","password":"x","auth_type":"AUTH_TYPE_PASSWORD"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Uias-App-Id", created.GetApp().GetId())
		req.Header.Set("X-Uias-App-Secret", created.GetAppSecret())
		if forged != "" {
			req.Header.Set("X-Uias-Client-Cert", forged)
			req.Header.Set("Grpc-Metadata-X-Uias-Client-Cert", forged)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := rest(&appPair, ""); code != http.StatusOK {
		t.Fatalf("REST with its certificate: %d %s", code, body)
	}
	// A certificate the edge cannot verify (a rogue CA of the same name)
	// no longer fails the handshake (the edge verifies in code, so that
	// people see a page): it counts as none.
	for what, cert := range map[string]*tls.Certificate{"no certificate": nil, "another certificate": &otherPair,
		"a rogue CA's certificate": &roguePair} {
		code, body := rest(cert, fingerprint(appPair))
		if code != http.StatusUnauthorized || !strings.Contains(body, "CLIENT_CERT_REQUIRED") {
			t.Errorf("REST, %s (fingerprint forged in headers): %d %s", what, code, body)
		}
	}

	// The binding is managed with ctl: fingerprints as openssl prints
	// them are accepted; a malformed one is refused; removing the binding
	// lets the application call without a certificate.
	upper := strings.ToUpper(fingerprint(otherPair))
	var colons []string
	for i := 0; i < len(upper); i += 2 {
		colons = append(colons, upper[i:i+2])
	}
	var updated identityv1.App
	c.jsonOut(&updated, "", tlsArgs("app", "update", created.GetApp().GetId(), "--client-cert-sha256", strings.Join(colons, ":"))...)
	if updated.GetClientCertSha256() != fingerprint(otherPair) {
		t.Fatalf("normalized fingerprint %q", updated.GetClientCertSha256())
	}
	if err := authenticate(&created, &otherPair); err != nil {
		t.Fatalf("after rebinding, with the new certificate: %v", err)
	}
	wantRefused("after rebinding, the old certificate", authenticate(&created, &appPair))
	if msg := c.fail(1, "", tlsArgs("app", "update", created.GetApp().GetId(), "--client-cert-sha256", "abc")...); !strings.Contains(msg, "64 hex digits") {
		t.Errorf("malformed fingerprint: %q", msg)
	}
	c.jsonOut(&updated, "", tlsArgs("app", "update", created.GetApp().GetId(), "--no-client-cert")...)
	if updated.GetClientCertSha256() != "" {
		t.Fatalf("binding not removed: %q", updated.GetClientCertSha256())
	}
	if err := authenticate(&created, nil); err != nil {
		t.Fatalf("after removing the binding: %v", err)
	}
}
