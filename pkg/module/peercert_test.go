package module

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/x509cert"
)

// clientCert issues a client certificate of ca valid from nb to na with
// the extended key usages given.
func (ca *testCA) clientCert(t *testing.T, cn string, nb, na time.Time, usage ...x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// The HTTP edge asks for client certificates and verifies them in code:
// a good one is seen as verified (as with the handshake's
// VerifyClientCertIfGiven); an expired, not yet valid, unknown-CA or
// server-only one reaches the handler as no certificate, with why; the
// verdict is taken once per connection; the gRPC listener's configuration
// is left as it was.
func TestEdgeVerifiesClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, other := newTestCA(t, dir), newNamedTestCA(t, t.TempDir(), "Someone else's CA")
	certFile, keyFile := ca.issue(t, dir, "server", "uias", 2)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	grpcTLS := &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: ca.pool, ClientAuth: tls.VerifyClientCertIfGiven,
		MinVersion: tls.VersionTLS12}
	edge, pool, check := edgeTLS(grpcTLS)
	if pool != ca.pool || check != nil || edge.ClientAuth != tls.RequestClientCert || grpcTLS.ClientAuth != tls.VerifyClientCertIfGiven ||
		edge.ClientCAs != ca.pool {
		t.Fatalf("edge TLS: %v, pool %v; gRPC's %v", edge.ClientAuth, pool != nil, grpcTLS.ClientAuth)
	}
	if e, p, _ := edgeTLS(&tls.Config{}); p != nil || e.ClientAuth != tls.NoClientCert {
		t.Fatal("an edge without client CAs asks for certificates")
	}

	var checks atomic.Int32
	now := func() time.Time { checks.Add(1); return time.Now() }
	core, logs := observer.New(zap.InfoLevel)
	h := verifyPeers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, rej := "", ""
		if c := x509cert.VerifiedPeer(r.TLS); c != nil {
			peer = x509cert.Thumbprint(c.Raw)
		}
		if x := x509cert.RejectionFrom(r.Context()); x != nil {
			rej = fmt.Sprintf("%s %s %s", x.Kind, x.Thumbprint, x.At.UTC().Format(time.RFC3339))
		}
		_, _ = fmt.Fprintf(w, "%s|%s|%d", peer, rej, len(r.TLS.PeerCertificates))
	}), pool, check, now, zap.New(core))
	srv := httptest.NewUnstartedServer(h)
	srv.TLS, srv.Config.ConnContext = edge, peerConnContext
	srv.StartTLS()
	defer srv.Close()

	t0 := time.Now()
	good := ca.clientCert(t, "Petra", t0.Add(-time.Hour), t0.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	expired := ca.clientCert(t, "Old", t0.Add(-48*time.Hour), t0.Add(-24*time.Hour), x509.ExtKeyUsageClientAuth)
	early := ca.clientCert(t, "Early", t0.Add(24*time.Hour), t0.Add(48*time.Hour), x509.ExtKeyUsageClientAuth)
	stranger := other.clientCert(t, "Stranger", t0.Add(-time.Hour), t0.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	serverOnly := ca.clientCert(t, "Server only", t0.Add(-time.Hour), t0.Add(time.Hour), x509.ExtKeyUsageServerAuth)
	thumb := func(c tls.Certificate) string { return x509cert.Thumbprint(c.Certificate[0]) }
	at := func(x time.Time) string { return x.UTC().Format(time.RFC3339) }
	zero := at(time.Time{})
	for name, tc := range map[string]struct {
		cert *tls.Certificate
		want string
	}{
		"none":        {nil, "||0"},
		"good":        {&good, thumb(good) + "||1"},
		"expired":     {&expired, "|expired " + thumb(expired) + " " + at(expired.Leaf.NotAfter) + "|0"},
		"not yet":     {&early, "|not_yet_valid " + thumb(early) + " " + at(early.Leaf.NotBefore) + "|0"},
		"unknown CA":  {&stranger, "|unknown_ca " + thumb(stranger) + " " + zero + "|0"},
		"server only": {&serverOnly, "|usage " + thumb(serverOnly) + " " + zero + "|0"},
	} {
		checks.Store(0)
		tc2 := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
		if tc.cert != nil {
			c := *tc.cert
			tc2.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc2}}
		for i := range 3 { // one connection, kept alive
			res, err := client.Get(srv.URL)
			if err != nil {
				t.Fatalf("%s: the handshake failed: %v", name, err)
			}
			b, _ := io.ReadAll(res.Body)
			_ = res.Body.Close()
			if string(b) != tc.want {
				t.Fatalf("%s, request %d: %q, want %q", name, i, b, tc.want)
			}
		}
		if want := int32(1); tc.cert == nil {
			if checks.Load() != 0 {
				t.Errorf("%s: verified %d times", name, checks.Load())
			}
		} else if checks.Load() != want {
			t.Errorf("%s: verified %d times on one connection, want once", name, checks.Load())
		}
		client.CloseIdleConnections()
	}
	// Each refusal logged once, by thumbprint, never the subject.
	got := logs.FilterMessageSnippet("client certificate not accepted").All()
	if len(got) != 4 {
		t.Fatalf("%d refusals logged, want 4", len(got))
	}
	for _, e := range got {
		if len(fmt.Sprint(e.ContextMap()["sha256"])) != 64 || e.ContextMap()["reason"] == "" {
			t.Errorf("log line %v", e.ContextMap())
		}
		for _, cn := range []string{"Old", "Early", "Stranger", "Server only"} {
			if strings.Contains(fmt.Sprint(e.ContextMap()), cn) {
				t.Errorf("the subject %q logged", cn)
			}
		}
	}
}

// revokeIn writes to file the CRL of ca listing the serials of certs.
func (ca *testCA) revokeIn(t *testing.T, file string, certs ...tls.Certificate) {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.Leaf.SerialNumber,
			RevocationTime: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour), RevokedCertificateEntries: entries},
		ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

// With tls.crl_file, a client certificate its issuer's list revokes fails
// the gRPC listener's handshake and reaches the HTTP edge's handlers as
// none, with why (revoked, and when); the others pass; a new list in the
// file counts for the next connection without a restart; a file that does
// not hold a list stops the start.
func TestRevokedClientCertificates(t *testing.T) {
	old := certCheckInterval
	certCheckInterval = 0
	t.Cleanup(func() { certCheckInterval = old })
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	cfg := config.Default()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = ca.issue(t, dir, "server", "uias", 2)
	cfg.TLS.ClientCAFile, cfg.TLS.CRLFile = ca.file, filepath.Join(dir, "ca.crl")
	t0 := time.Now()
	good := ca.clientCert(t, "Petra", t0.Add(-time.Hour), t0.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	revoked := ca.clientCert(t, "Lost key", t0.Add(-time.Hour), t0.Add(time.Hour), x509.ExtKeyUsageClientAuth)

	writeFile(t, cfg.TLS.CRLFile, []byte("not a list"))
	if _, _, err := LoadTLS(cfg, nil); err == nil || !strings.Contains(err.Error(), "CRL") {
		t.Fatalf("a CRL file without a list: %v", err)
	}
	ca.revokeIn(t, cfg.TLS.CRLFile, revoked)
	server, _, err := LoadTLS(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}

	// The gRPC listener: the handshake judges.
	lis := handshakes(t, server)
	// Each certificate's client keeps its TLS sessions: a later connection
	// resumes one (no certificate sent, the chains verified at its start).
	sessions := map[*tls.Certificate]tls.ClientSessionCache{}
	var resumed bool
	dial := func(c tls.Certificate) error {
		cache := sessions[&c]
		for k, v := range sessions {
			if k.Leaf == c.Leaf {
				cache = v
			}
		}
		if cache == nil {
			cache = tls.NewLRUClientSessionCache(4)
			sessions[&c] = cache
		}
		conn, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12,
			ServerName: "localhost", ClientSessionCache: cache,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }})
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3: the server's verdict on the client arrives with the
		// first read (so do its session tickets).
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		resumed = conn.ConnectionState().DidResume
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	for i := range 2 {
		if err := dial(good); err != nil {
			t.Fatalf("gRPC listener, good certificate: %v", err)
		}
		if i == 1 && !resumed {
			t.Fatal("the second connection did not resume the first's session: the resumption case below tests nothing")
		}
	}
	if err := dial(revoked); err == nil {
		t.Fatal("gRPC listener: a revoked certificate passed the handshake")
	}

	// The HTTP edge: verified in code, refused with why.
	edge, pool, check := edgeTLS(server)
	if check == nil {
		t.Fatal("the edge does not check revocation")
	}
	h := verifyPeers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rej := ""
		if x := x509cert.RejectionFrom(r.Context()); x != nil {
			rej = x.Kind + " " + x.At.UTC().Format(time.RFC3339)
		}
		_, _ = fmt.Fprintf(w, "%v|%s", x509cert.VerifiedPeer(r.TLS) != nil, rej)
	}), pool, check, time.Now, zap.NewNop())
	srv := httptest.NewUnstartedServer(h)
	srv.TLS, srv.Config.ConnContext = edge, peerConnContext
	srv.StartTLS()
	defer srv.Close()
	get := func(c tls.Certificate) string {
		t.Helper()
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12,
			ServerName: "localhost", GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }}}}
		defer client.CloseIdleConnections()
		res, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := get(good); got != "true|" {
		t.Fatalf("edge, good certificate: %q", got)
	}
	if got := get(revoked); got != "false|revoked 2026-12-01T09:00:00Z" {
		t.Fatalf("edge, revoked certificate: %q", got)
	}
	// A keep-alive connection opened before a new list: its next request
	// goes without the certificate the list revokes.
	kept := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12,
		ServerName: "localhost", GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &good, nil }}}}
	defer kept.CloseIdleConnections()
	var reused bool
	keptGet := func() string {
		t.Helper()
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}), http.MethodGet, srv.URL, nil)
		res, err := kept.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if got := keptGet(); got != "true|" {
		t.Fatalf("kept connection before the new list: %q", got)
	}
	// A new list (the good one revoked too) counts for the next connection.
	time.Sleep(10 * time.Millisecond) // a modification time of its own
	ca.revokeIn(t, cfg.TLS.CRLFile, revoked, good)
	if got := get(good); got != "false|revoked 2026-12-01T09:00:00Z" {
		t.Fatalf("edge, good certificate after the list revoked it: %q", got)
	}
	for range 2 {
		if got := keptGet(); got != "false|revoked 2026-12-01T09:00:00Z" || !reused {
			t.Fatalf("kept connection after the new list: %q (the connection reused: %v)", got, reused)
		}
	}
	// Also on a connection that resumes a session begun before the list.
	if err := dial(good); err == nil {
		t.Fatalf("gRPC listener: a certificate revoked by the new list passed (resumed %v)", resumed)
	}
	// A file being replaced (not a list yet) or gone keeps the lists in
	// force: nothing revoked comes back.
	time.Sleep(10 * time.Millisecond)
	writeFile(t, cfg.TLS.CRLFile, []byte("-----BEGIN X509 CRL-----\nhalf writ"))
	if got := get(good); got != "false|revoked 2026-12-01T09:00:00Z" {
		t.Fatalf("edge, CRL file half written: %q", got)
	}
	if err := os.Remove(cfg.TLS.CRLFile); err != nil {
		t.Fatal(err)
	}
	if got := get(revoked); got != "false|revoked 2026-12-01T09:00:00Z" {
		t.Fatalf("edge, CRL file gone: %q", got)
	}
	if err := dial(good); err == nil {
		t.Fatal("gRPC listener, CRL file gone: a revoked certificate passed")
	}
}
