package module

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/config"
)

// replace copies src over dst and gives dst a modification time of its own
// (files written within one clock tick may otherwise share one).
func replace(t *testing.T, src, dst string, mtime time.Time) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	writeFile(t, tmp, b)
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// A renewed certificate is served without a restart; a renewal caught half
// written (new certificate, old key) keeps the previous certificate in
// service instead of breaking every handshake.
func TestCertificateReloadedWhenFilesChange(t *testing.T) {
	old := certCheckInterval
	certCheckInterval = 0
	t.Cleanup(func() { certCheckInterval = old })

	dir := t.TempDir()
	ca := newTestCA(t, dir)
	certFile, keyFile := ca.issue(t, dir, "server", "uias", 1)
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := config.Default()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	server, client, err := LoadTLS(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	lis := handshakes(t, server)
	served := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	presented := func() int64 {
		t.Helper()
		c, err := client.GetClientCertificate(&tls.CertificateRequestInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.Int64()
	}
	if got := served(); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}

	base := time.Now().Add(time.Hour)
	c2, k2 := ca.issue(t, dir, "renewed", "uias", 2)
	replace(t, k2, keyFile, base)
	replace(t, c2, certFile, base)
	if got := served(); got != 2 {
		t.Fatalf("after renewal: serial %d, want 2", got)
	}
	if got := presented(); got != 2 {
		t.Fatalf("internal client presents serial %d, want 2", got)
	}
	if logs.FilterMessage("TLS certificate reloaded").Len() != 1 {
		t.Errorf("reload not logged: %v", logs.All())
	}

	// Half written: the new certificate is there, its key not yet.
	c3, k3 := ca.issue(t, dir, "third", "uias", 3)
	replace(t, c3, certFile, base.Add(time.Hour))
	for range 3 {
		if got := served(); got != 2 {
			t.Fatalf("mismatched pair: serial %d, want the previous 2", got)
		}
	}
	if n := logs.FilterMessageSnippet("do not load").Len(); n != 1 {
		t.Errorf("%d warnings about the mismatched pair, want 1: %v", n, logs.All())
	}
	// Garbage in the key file is no better.
	writeFile(t, filepath.Join(dir, "junk"), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n"))
	replace(t, filepath.Join(dir, "junk"), keyFile, base.Add(2*time.Hour))
	if got := served(); got != 2 {
		t.Fatalf("unreadable key: serial %d, want the previous 2", got)
	}
	// The key arrives: the new pair is served.
	replace(t, k3, keyFile, base.Add(3*time.Hour))
	if got := served(); got != 3 {
		t.Fatalf("completed renewal: serial %d, want 3", got)
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if f.String != "" && len(f.String) > 200 {
				t.Errorf("log field %s looks like file content: %.60q", f.Key, f.String)
			}
		}
	}
}

// A missing or broken certificate stops the start with a clear error.
func TestLoadTLSErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = filepath.Join(dir, "none.pem"), filepath.Join(dir, "none-key.pem")
	if _, _, err := LoadTLS(cfg, nil); err == nil {
		t.Fatal("missing certificate accepted")
	}
	ca := newTestCA(t, dir)
	cfg.TLS.CertFile, cfg.TLS.KeyFile = ca.issue(t, dir, "s", "uias", 1)
	cfg.TLS.ClientCAFile = cfg.TLS.CertFile + ".missing"
	if _, _, err := LoadTLS(cfg, nil); err == nil {
		t.Fatal("missing client CA accepted")
	}
}

// handshakes listens on loopback with server, completing each
// connection's handshake and closing it; stopped with the test.
func handshakes(t *testing.T, server *tls.Config) net.Listener {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); _ = c.Close() }()
		}
	}()
	return lis
}
