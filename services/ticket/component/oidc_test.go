package component

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pemOf(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// TestOIDCKeyFile: ticket.oidc_key_file's keys sign ID tokens (the first)
// and are all published; a file others may read, a key that is not RSA or
// too short, or no key at all stops the start with a message.
func TestOIDCKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, mode os.FileMode, blocks ...[]byte) string {
		p := filepath.Join(dir, name)
		var all []byte
		for _, b := range blocks {
			all = append(all, b...)
		}
		if err := os.WriteFile(p, all, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		return p
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k2)})
	cfg := Defaults()
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})
	cfg.OIDCKeyFile = write("ok.pem", 0o440, pemOf(t, k1), cert, pkcs1)
	keys, err := idTokenKeys(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := keys.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []struct{ Kid string } }
	_ = json.Unmarshal(raw, &set)
	if len(set.Keys) != 2 {
		t.Fatalf("key set: %s", raw)
	}
	tok, err := keys.Sign(map[string]any{"sub": "u"})
	if err != nil || !strings.Contains(tok, ".") {
		t.Fatalf("sign: %v", err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	short, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, tc := range map[string]struct {
		path, want string
	}{
		"open mode":    {write("open.pem", 0o644, pemOf(t, k1)), "chmod 600"},
		"group writes": {write("gw.pem", 0o620, pemOf(t, k1)), "chmod 600"},
		"encrypted":    {write("enc.pem", 0o600, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})), "unencrypted"},
		"not RSA":      {write("ec.pem", 0o600, pemOf(t, ec)), "not an RSA key"},
		"short":        {write("short.pem", 0o600, pemOf(t, short)), "at least 2048"},
		"empty":        {write("empty.pem", 0o600, []byte("nothing here\n")), "no PEM private key"},
		"missing":      {filepath.Join(dir, "none.pem"), "no such file"},
	} {
		c := Defaults()
		c.OIDCKeyFile = tc.path
		if _, err := idTokenKeys(c, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
