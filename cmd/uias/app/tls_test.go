package app_test

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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/crypto"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// selfSigned writes a self-signed certificate for 127.0.0.1/localhost.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return selfSignedSerial(t, dir, 1)
}

// selfSignedSerial is selfSigned with the given serial number.
func selfSignedSerial(t *testing.T, dir string, serial int64) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "uias-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// TestTLS: with a certificate configured, gRPC and HTTP listen with TLS 1.2
// or newer only, the gateway reaches identity over TLS, plaintext is refused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := app.DefaultConfig()
	cfg.DataDir = dir
	cfg.DB.DSN, identitycomponent.Settings(&cfg).KeyFile = "", ""
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	identitycomponent.Settings(&cfg).Argon2 = crypto.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	var certPool *x509.CertPool
	cfg.TLS.CertFile, cfg.TLS.KeyFile, certPool = selfSigned(t, dir)
	cfg.Complete()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{BootstrapPassword: "Tls-Test-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Stop(context.Background()) }()

	login := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = identityv1.NewAdminServiceClient(conn).AdminLogin(c,
			&identityv1.AdminLoginRequest{LoginName: "admin", Password: "Tls-Test-Pass-1"})
		return err
	}
	if err := login(credentials.NewTLS(&tls.Config{RootCAs: certPool})); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	if err := login(insecure.NewCredentials()); err == nil {
		t.Fatal("plaintext gRPC accepted on a TLS listener")
	}
	if err := login(credentials.NewTLS(&tls.Config{RootCAs: certPool, MaxVersion: tls.VersionTLS11})); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool}}}
	// The REST call crosses the gateway -> identity hop, which is TLS too.
	resp, err := client.Post("https://"+a.HTTPAddr()+"/v1/admin/login", "application/json",
		strings.NewReader(`{"login_name":"admin","password":"Tls-Test-Pass-1"}`))
	if err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST admin login over TLS: %d", resp.StatusCode)
	}
	// The answer carries a token: no cache may keep it, no page may frame
	// or sniff it, and browsers stay on HTTPS.
	for k, v := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Strict-Transport-Security": "max-age=31536000", "X-Frame-Options": "DENY"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	old := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool,
		MaxVersion: tls.VersionTLS11}}}
	if resp, err := old.Get("https://" + a.HTTPAddr() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("HTTP TLS 1.1 accepted")
	}
	if resp, err := http.Get("http://" + a.HTTPAddr() + "/healthz"); err == nil && resp.StatusCode == 200 {
		resp.Body.Close()
		t.Fatal("plaintext HTTP served on a TLS listener")
	}

	// Renewal: new files in place, no restart; new connections on both
	// listeners get the new certificate.
	renewDir := t.TempDir()
	newCert, newKey, newPool := selfSignedSerial(t, renewDir, 2)
	for src, dst := range map[string]string{newCert: cfg.TLS.CertFile, newKey: cfg.TLS.KeyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		_ = os.Chtimes(dst+".new", later, later)
		if err := os.Rename(dst+".new", dst); err != nil {
			t.Fatal(err)
		}
	}
	served := func(addr string) int64 {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only reads the certificate
		if err != nil {
			t.Fatalf("handshake with %s: %v", addr, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	for _, addr := range []string{a.GRPCAddr(), a.HTTPAddr()} {
		// The files are looked at no more than once a second.
		deadline := time.Now().Add(15 * time.Second)
		for served(addr) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%s still serves the old certificate", addr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := login(credentials.NewTLS(&tls.Config{RootCAs: newPool})); err != nil {
		t.Fatalf("gRPC with the renewed certificate: %v", err)
	}
}
