package module

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

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
	edge, pool := edgeTLS(grpcTLS)
	if pool != ca.pool || edge.ClientAuth != tls.RequestClientCert || grpcTLS.ClientAuth != tls.VerifyClientCertIfGiven ||
		edge.ClientCAs != ca.pool {
		t.Fatalf("edge TLS: %v, pool %v; gRPC's %v", edge.ClientAuth, pool != nil, grpcTLS.ClientAuth)
	}
	if e, p := edgeTLS(&tls.Config{}); p != nil || e.ClientAuth != tls.NoClientCert {
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
	}), pool, now, zap.New(core))
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
