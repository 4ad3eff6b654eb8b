package component

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/uias/uias/pkg/config"
)

// TestChallengeCAPool: identity.cert_challenge_ca_file takes SM2 CAs
// (which the TLS files cannot hold), falls back to tls.people_ca_file,
// then tls.client_ca_file, and a file that cannot be read, holds no
// certificate or one that does not parse fails the start naming the
// setting.
func TestChallengeCAPool(t *testing.T) {
	dir := t.TempDir()
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "SM2 people CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := write("sm2.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	junk := write("junk.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}))
	empty := write("empty.pem", []byte("no certificates here\n"))

	env := &config.Config{}
	if pool, _, err := challengeCAPool(&Config{}, env); pool != nil || err != nil {
		t.Fatalf("nothing set: %v %v", pool, err)
	}
	if pool, cas, err := challengeCAPool(&Config{CertChallengeCAFile: good}, env); pool == nil || len(cas) != 1 || err != nil {
		t.Fatalf("an SM2 CA: %v", err)
	}
	env.TLS.ClientCAFile = good
	if pool, _, err := challengeCAPool(&Config{}, env); pool == nil || err != nil {
		t.Fatalf("tls.client_ca_file: %v", err)
	}
	env.TLS.PeopleCAFile = junk
	if _, _, err := challengeCAPool(&Config{}, env); err == nil || !strings.Contains(err.Error(), "tls.people_ca_file") {
		t.Fatalf("tls.people_ca_file first: %v", err)
	}
	for file, want := range map[string]string{junk: "certificate 1", empty: "no PEM certificates", filepath.Join(dir, "none.pem"): "cannot read"} {
		_, _, err := challengeCAPool(&Config{CertChallengeCAFile: file}, env)
		if err == nil || !strings.Contains(err.Error(), "identity.cert_challenge_ca_file") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", filepath.Base(file), err)
		}
	}
}
