package component

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/ticket"
)

func TestValidatePeers(t *testing.T) {
	peer := func(mod func(p *PeerConfig)) func(c *Config) {
		return func(c *Config) {
			p := PeerConfig{Name: "l1", URL: "https://sso.l1.example", PublicKeyFile: "/etc/uias/l1.pub"}
			mod(&p)
			c.Centre, c.Peers = "l2a", []PeerConfig{p}
		}
	}
	for name, tc := range map[string]struct {
		mod   func(c *Config)
		field string
	}{
		"ttl long":       {func(c *Config) { c.PeerAssertionTTL = time.Hour }, "ticket.peer_assertion_ttl"},
		"ttl short":      {func(c *Config) { c.PeerAssertionTTL = time.Second }, "ticket.peer_assertion_ttl"},
		"probe zero":     {func(c *Config) { c.PeerProbe = 0 }, "ticket.peer_probe"},
		"name with dash": {peer(func(p *PeerConfig) { p.Name = "l-1" }), "ticket.peers[0].name"},
		"itself":         {peer(func(p *PeerConfig) { p.Name = "l2a" }), "ticket.peers[0].name"},
		"url relative":   {peer(func(p *PeerConfig) { p.URL = "/cas" }), "ticket.peers[0].url"},
		"url with /cas":  {peer(func(p *PeerConfig) { p.URL = "https://sso.l1.example/cas/" }), "ticket.peers[0].url"},
		"url with query": {peer(func(p *PeerConfig) { p.URL = "https://sso.l1.example/?x=1" }), "ticket.peers[0].url"},
		"url scheme":     {peer(func(p *PeerConfig) { p.URL = "ftp://sso.l1.example" }), "ticket.peers[0].url"},
		"url http":       {peer(func(p *PeerConfig) { p.URL = "http://sso.l1.example" }), "ticket.peers[0].url"},
		"no public key":  {peer(func(p *PeerConfig) { p.PublicKeyFile = "" }), "ticket.peers[0].public_key_file"},
		"the same peer twice": {func(c *Config) {
			c.Peers = []PeerConfig{{Name: "l2a", URL: "https://a.example", PublicKeyFile: "a"}, {Name: "l2a", URL: "https://b.example", PublicKeyFile: "b"}}
		}, "ticket.peers[1].name"},
	} {
		c := Defaults()
		tc.mod(c)
		err := c.Validate(&config.Config{DataDir: "d"})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.field)
		}
	}
	for _, u := range []string{"https://sso.l1.example", "http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost:8080"} {
		c := Defaults()
		peer(func(p *PeerConfig) { p.URL = u })(c)
		if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
}

func writePEM(t *testing.T, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
}

// TestPeerSettings: the key and the peers' public keys are read from their
// PEM files; an open private key file, a key of another kind, and a file
// without a public key are refused at the start with a sentence naming
// the setting.
func TestPeerSettings(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pder, _ := x509.MarshalPKIXPublicKey(pub)
	pub2, _, _ := ed25519.GenerateKey(rand.Reader)
	pder2, _ := x509.MarshalPKIXPublicKey(pub2)
	keyFile, pubFile := filepath.Join(dir, "peer.key"), filepath.Join(dir, "l1.pub")
	writePEM(t, keyFile, "PRIVATE KEY", der, 0o600)
	// a rotation: two keys in one file
	data := append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder2})...)
	if err := os.WriteFile(pubFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	c.PeerKeyFile, c.Peers = keyFile, []PeerConfig{{Name: "l1", URL: "https://sso.l1.example", PublicKeyFile: pubFile}}
	s, err := peerSettings(c)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Key.Equal(priv) || len(s.Peers["l1"].Keys) != 2 || !s.Peers["l1"].Keys[0].Equal(pub) || s.TTL != ticket.DefaultPeerAssertionTTL {
		t.Fatalf("settings: %+v", s)
	}

	open := filepath.Join(dir, "open.key")
	writePEM(t, open, "PRIVATE KEY", der, 0o644)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecder, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecFile := filepath.Join(dir, "ec.key")
	writePEM(t, ecFile, "PRIVATE KEY", ecder, 0o600)
	ecpder, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPub := filepath.Join(dir, "ec.pub")
	writePEM(t, ecPub, "PUBLIC KEY", ecpder, 0o644)
	// (sec28b L2) a public key file its group or others may write
	writable := filepath.Join(dir, "writable.pub")
	writePEM(t, writable, "PUBLIC KEY", pder, 0o600)
	if err := os.Chmod(writable, 0o664); err != nil { // past the umask
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pub")
	if err := os.WriteFile(empty, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mod  func(c *Config)
		want string
	}{
		"open key file":     {func(c *Config) { c.PeerKeyFile = open }, "chmod 600"},
		"not Ed25519":       {func(c *Config) { c.PeerKeyFile = ecFile }, "not Ed25519"},
		"missing key":       {func(c *Config) { c.PeerKeyFile = filepath.Join(dir, "none") }, "ticket.peer_key_file"},
		"public not Ed":     {func(c *Config) { c.Peers[0].PublicKeyFile = ecPub }, "not Ed25519"},
		"no public key":     {func(c *Config) { c.Peers[0].PublicKeyFile = empty }, "no PEM PUBLIC KEY"},
		"writable public":   {func(c *Config) { c.Peers[0].PublicKeyFile = writable }, "chmod 644"},
		"public key absent": {func(c *Config) { c.Peers[0].PublicKeyFile = filepath.Join(dir, "none.pub") }, "ticket.peers[0].public_key_file"},
	} {
		c := Defaults()
		c.PeerKeyFile, c.Peers = keyFile, []PeerConfig{{Name: "l1", URL: "https://sso.l1.example", PublicKeyFile: pubFile}}
		tc.mod(c)
		if _, err := peerSettings(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// open mode allowed explicitly
	c.PeerKeyFile, c.Peers[0].PublicKeyFile, c.KeyFileAllowOpenMode = open, writable, true
	if _, err := peerSettings(c); err != nil {
		t.Fatal(err)
	}
}
