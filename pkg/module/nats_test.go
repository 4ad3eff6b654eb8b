package module

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
)

// natsCert writes a self-signed CA certificate for 127.0.0.1 and its key.
func natsCert(t *testing.T, dir string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "nats.crt"), filepath.Join(dir, "nats.key")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// TestNATSOptions: a component reaches an external NATS that requires TLS
// and a user with each way of giving credentials (password file, password
// from the environment, NKEY seed file), verifying the server with the CA
// file; without the CA, or with a wrong password, it is refused with a clear
// error that does not show the secret.
func TestNATSOptions(t *testing.T) {
	dir := t.TempDir()
	certFile, _, cert := natsCert(t, dir)
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "identity.nk")
	pwFile := filepath.Join(dir, "password")
	_ = os.WriteFile(seedFile, seed, 0o600)
	_ = os.WriteFile(pwFile, []byte("pw-from-file-1\n"), 0o600)

	opts := &server.Options{Host: "127.0.0.1", Port: -1,
		TLS: true, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Users: []*server.User{{Username: "filed", Password: "pw-from-file-1"}, {Username: "envd", Password: "pw-from-env-1"}},
		Nkeys: []*server.NkeyUser{{Nkey: pub}}}
	ns, err := events.StartNATS(filepath.Join(dir, "store"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	url := ns.ClientURL()

	base := config.NATS{URL: url}
	base.TLS.CAFile = certFile
	ok := map[string]config.NATS{}
	n := base
	n.User, n.PasswordFile = "filed", pwFile
	ok["password file"] = n
	n = base
	n.User, n.Password = "envd", "pw-from-env-1"
	ok["password from the environment"] = n
	n = base
	n.NKeySeedFile = seedFile
	ok["nkey seed file"] = n
	for name, n := range ok {
		o, err := NATSOptions(n, "identity")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		nc, err := nats.Connect(n.URL, append(o, nats.NoReconnect())...)
		if err != nil {
			t.Fatalf("%s: connect: %v", name, err)
		}
		if !nc.TLSRequired() {
			t.Errorf("%s: connection without TLS", name)
		}
		if st, err := nc.TLSConnectionState(); err != nil || st.Version < tls.VersionTLS12 {
			t.Errorf("%s: TLS state %v %v", name, st.Version, err)
		}
		nc.Close()
	}

	// Without the CA file the server's certificate is not trusted.
	n = ok["password file"]
	n.TLS.CAFile = ""
	o, _ := NATSOptions(n, "identity")
	if _, err := nats.Connect(n.URL, append(o, nats.NoReconnect(), nats.Secure())...); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v, want a certificate error", err)
	}
	// A wrong password is an authorization error.
	n = ok["password from the environment"]
	n.Password = "wrong-password-9"
	o, _ = NATSOptions(n, "identity")
	_, err = nats.Connect(n.URL, append(o, nats.NoReconnect())...)
	if !errors.Is(err, nats.ErrAuthorization) || strings.Contains(err.Error(), "wrong-password-9") {
		t.Errorf("wrong password: %v, want an authorization violation without the password", err)
	}
	// Unreadable files are named by their setting.
	n = base
	n.User, n.PasswordFile = "filed", filepath.Join(dir, "missing")
	if _, err := NATSOptions(n, "identity"); err == nil || !strings.Contains(err.Error(), "nats.password_file") {
		t.Errorf("missing password file: %v", err)
	}
	n = base
	n.NKeySeedFile = pwFile // not a seed
	if _, err := NATSOptions(n, "identity"); err == nil || !strings.Contains(err.Error(), "nats.nkey_seed_file") ||
		strings.Contains(err.Error(), "pw-from-file-1") {
		t.Errorf("bad seed file: %v", err)
	}
}

func TestInboxPrefix(t *testing.T) {
	for in, want := range map[string]string{"identity": "_INBOX.identity", "identity,gateway": "_INBOX.identity_gateway", "setup": "_INBOX.setup"} {
		if got := InboxPrefix(in); got != want {
			t.Errorf("InboxPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}
