package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/extauth"
	"github.com/uias/uias/services/identity/extauth/extauthtest"
)

type mapPins struct {
	m    map[string]string
	down bool
}

func (p *mapPins) Lookup(_ context.Context, userID string) (string, error) {
	if p.down {
		return "", errors.New("database unreachable")
	}
	return p.m[userID], nil
}

func pinHash(pin string) string {
	s := sha256.Sum256([]byte(pin))
	return hex.EncodeToString(s[:])
}

// TestExampleAuthenticator: the example of docs/integrators.md, served
// over TLS with a client certificate on loopback, answers UIAS's own
// client (identity's extauth): the right PIN accepted, a wrong one and an
// unknown person rejected, the user id echoed, its store down
// UNAVAILABLE; without UIAS's client certificate the TLS handshake fails
// (no verdict). The snippet in the guide is this file's.
func TestExampleAuthenticator(t *testing.T) {
	certs := extauthtest.WriteCerts(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(certs.ServerCertFile, certs.ServerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(certs.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	pins := &mapPins{m: map[string]string{"u-1": pinHash("2468")}}
	srv := NewGRPCServer(&Server{Pins: pins}, pair, pool)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	c, err := extauth.Open(extauth.Config{Name: "pin", Address: ln.Addr().String(), CAFile: certs.CAFile,
		CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile, Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask := func(user, pin string) identity.ExternalAnswer {
		t.Helper()
		a, err := c.Verify(context.Background(), identity.ExternalQuery{UserID: user, Login: "someone", Type: "pin",
			Credential: []byte(pin), RequestID: "req-1"})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		user, pin, reason string
		verdict           identity.ExternalVerdict
	}{
		{"u-1", "2468", "MATCH", identity.ExternalAccepted},
		{"u-1", "1357", "NO_MATCH", identity.ExternalRejected},
		{"u-2", "2468", "NOT_ENROLLED", identity.ExternalRejected},
	} {
		if a := ask(tc.user, tc.pin); a.Verdict != tc.verdict || a.Reason != tc.reason || a.UserID != tc.user {
			t.Fatalf("%s/%s: %+v", tc.user, tc.pin, a)
		}
	}
	pins.down = true
	if a := ask("u-1", "2468"); a.Verdict != identity.ExternalUnavailable || a.Reason != "STORE_DOWN" {
		t.Fatalf("store down: %+v", a)
	}
	// without UIAS's client certificate: no connection, no verdict
	anon, err := extauth.Open(extauth.Config{Name: "pin", Address: ln.Addr().String(), CAFile: certs.CAFile, Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if _, err := anon.Verify(context.Background(), identity.ExternalQuery{UserID: "u-1", Credential: []byte("2468")}); err == nil ||
		strings.Contains(err.Error(), "2468") {
		t.Fatalf("without a client certificate: %v", err)
	}
}

// TestExampleInGuide: docs/integrators.md shows this example's code as it
// is here.
func TestExampleInGuide(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	cut := func(s, where string) string {
		t.Helper()
		_, rest, ok := strings.Cut(s, "<!-- extauth-example:begin -->")
		body, _, ok2 := strings.Cut(rest, "<!-- extauth-example:end -->")
		if !ok || !ok2 {
			t.Fatalf("%s has no extauth-example block", where)
		}
		body = strings.TrimSuffix(strings.TrimSpace(body), "//") // main.go's marker is a comment
		body = strings.TrimPrefix(strings.TrimSpace(body), "```go")
		body = strings.TrimSuffix(strings.TrimSpace(body), "```")
		return strings.TrimSpace(body)
	}
	if got, want := cut(string(doc), "docs/integrators.md"), cut(string(src), "main.go"); got != want {
		t.Fatalf("the guide's example differs from tests/examples/extauth/main.go:\n--- guide\n%s\n--- main.go\n%s", got, want)
	}
}
