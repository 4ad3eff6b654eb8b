package grpcx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/grpcx"
)

// serve runs a grpcx server with o on a loopback port until the test ends.
func serve(t *testing.T, o grpcx.ServerOptions) string {
	t.Helper()
	srv, _ := grpcx.NewServer(o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- grpcx.Serve(ctx, srv, lis, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return lis.Addr().String()
}

// rawHTTP2 opens a bare HTTP/2 connection (no gRPC client, which would
// refuse to ping as often as an attacker does) and sends its settings.
func rawHTTP2(t *testing.T, addr string) (*http2.Framer, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// Bound the test if the server never answers; not a timing assertion.
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr, conn
}

// goAway reads frames until the server's GOAWAY and returns it.
func goAway(t *testing.T, fr *http2.Framer) *http2.GoAwayFrame {
	t.Helper()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			return f
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		}
	}
}

// A client flooding the server with HTTP/2 pings (cheap for it, work for
// the server) is told to calm down and disconnected.
func TestKeepalivePingFloodDisconnected(t *testing.T) {
	addr := serve(t, grpcx.ServerOptions{})
	fr, _ := rawHTTP2(t, addr)
	for i := range 10 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			break // the server may already have closed the connection
		}
	}
	ga := goAway(t, fr)
	if ga.ErrCode != http2.ErrCodeEnhanceYourCalm || string(ga.DebugData()) != "too_many_pings" {
		t.Fatalf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", ga.ErrCode, ga.DebugData())
	}
}

// A connection that makes no calls is closed after MaxConnectionIdle, and
// any connection after MaxConnectionAge: an idle attacker cannot hold
// connections (file descriptors, memory) for ever.
func TestKeepaliveIdleAndAgeLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ka    grpcx.Keepalive
		debug string
	}{
		{"idle", grpcx.Keepalive{MaxConnectionIdle: 50 * time.Millisecond}, "max_idle"},
		{"age", grpcx.Keepalive{MaxConnectionAge: 50 * time.Millisecond, MaxConnectionAgeGrace: 50 * time.Millisecond}, "max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, grpcx.ServerOptions{Keepalive: tc.ka})
			fr, _ := rawHTTP2(t, addr)
			ga := goAway(t, fr)
			if ga.ErrCode != http2.ErrCodeNo || string(ga.DebugData()) != tc.debug {
				t.Fatalf("GOAWAY %v %q, want NO_ERROR %q", ga.ErrCode, ga.DebugData(), tc.debug)
			}
		})
	}
}

func listServices(t *testing.T, addr string) ([]string, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	} // on io.EOF, Recv has the status
	resp, err := st.Recv()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		out = append(out, s.GetName())
	}
	return out, nil
}

// Reflection (a map of every service and message for whoever asks) is off
// unless asked for.
func TestReflectionOnlyWhenEnabled(t *testing.T) {
	if _, err := listServices(t, serve(t, grpcx.ServerOptions{})); status.Code(err) != codes.Unimplemented {
		t.Fatalf("reflection by default: %v, want Unimplemented", err)
	}
	got, err := listServices(t, serve(t, grpcx.ServerOptions{Reflection: true}))
	if err != nil || !slices.Contains(got, "grpc.health.v1.Health") {
		t.Fatalf("reflection enabled: %v %v", got, err)
	}
}

// TLS: only 1.2 and newer, and for 1.2 only ECDHE with an AEAD cipher;
// clients offering CBC suites or static RSA key exchange are refused.
func TestServerTLSRefusesWeakSuites(t *testing.T) {
	ecCert, pool := testCert(t, "ec")
	rsaCert, rsaPool := testCert(t, "rsa")
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		pool   *x509.CertPool
		client *tls.Config
		ok     bool
	}{
		{"tls1.3", ecCert, pool, &tls.Config{}, true},
		{"tls1.2 ECDHE AES-GCM", ecCert, pool, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"tls1.2 ECDHE ChaCha20", ecCert, pool, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		{"tls1.2 RSA cert ECDHE AES-256-GCM", rsaCert, rsaPool, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}, true},
		{"tls1.1", ecCert, pool, &tls.Config{MaxVersion: tls.VersionTLS11}, false},
		{"tls1.2 ECDHE AES-CBC-SHA", ecCert, pool, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}, false},
		{"tls1.2 ECDHE AES-CBC-SHA256", ecCert, pool, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false},
		{"tls1.2 static RSA AES-GCM", rsaCert, rsaPool, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}}, false},
		{"tls1.2 3DES", rsaCert, rsaPool, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dial := func(server *tls.Config) (*tls.Conn, error) {
				lis, err := tls.Listen("tcp", "127.0.0.1:0", server)
				if err != nil {
					t.Fatal(err)
				}
				defer lis.Close()
				go func() {
					c, err := lis.Accept()
					if err == nil {
						_ = c.(*tls.Conn).Handshake()
						c.Close()
					}
				}()
				cc := tc.client.Clone()
				cc.RootCAs, cc.ServerName, cc.MinVersion = tc.pool, "localhost", tls.VersionTLS10
				return tls.Dial("tcp", lis.Addr().String(), cc)
			}
			if !tc.ok {
				// Control: a server that allows everything completes the
				// same handshake, so the refusal below is the hardening.
				var all []uint16
				for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
					all = append(all, s.ID)
				}
				conn, err := dial(&tls.Config{Certificates: []tls.Certificate{tc.cert}, MinVersion: tls.VersionTLS10, CipherSuites: all})
				if err != nil {
					t.Fatalf("control handshake: %v", err)
				}
				conn.Close()
			}
			conn, err := dial(grpcx.ServerTLS(&tls.Config{Certificates: []tls.Certificate{tc.cert}}))
			if tc.ok {
				if err != nil {
					t.Fatalf("handshake refused: %v", err)
				}
				st := conn.ConnectionState()
				if st.Version == tls.VersionTLS12 && !slices.Contains(grpcx.TLS12CipherSuites, st.CipherSuite) {
					t.Errorf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
				}
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatalf("handshake accepted with %s", tls.CipherSuiteName(conn.ConnectionState().CipherSuite))
			}
		})
	}
	// A configured list keeps only its AEAD suites.
	got := grpcx.ServerTLS(&tls.Config{CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}).CipherSuites
	if !slices.Equal(got, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}) {
		t.Errorf("filtered suites %v", got)
	}
}

// testCert returns a self-signed certificate for localhost with an ECDSA
// ("ec") or RSA key, and a pool trusting it.
func testCert(t *testing.T, kind string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	var pub, priv any
	switch kind {
	case "ec":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub, priv = &k.PublicKey, k
	default:
		k := rsaKey(t)
		pub, priv = &k.PublicKey, k
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
