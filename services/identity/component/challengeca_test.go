package component

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/x509cert"
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

// TestChallengeRevocationSM2 (sec29a H1): an SM2 CA's SM2-signed list
// revokes its certificates (verified with smx509, not loaded and
// ignored), identity.cert_challenge_crl_file is read without any server
// TLS (behind a TLS-terminating balancer), and a list naming the CA that
// the CA does not verify fails the start (closed, not open).
func TestChallengeRevocationSM2(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	now := time.Now()
	newCA := func() (*smx509.Certificate, *sm2.PrivateKey) {
		key, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "SM2 people CA"}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		ca, err := smx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return ca, key
	}
	ca, caKey := newCA()
	impostor, impostorKey := newCA() // the same name, another key
	leafKey, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64) *smx509.Certificate {
		der, err := smx509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "Mia"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca, &leafKey.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := smx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	revoked, kept := issue(7), issue(8)
	crl := func(issuer *smx509.Certificate, key *sm2.PrivateKey) []byte {
		der, err := smx509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute),
			NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(7), RevocationTime: now.Add(-time.Minute)}}},
			issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}))
	good := write("good.crl", crl(ca, caKey))
	forged := write("forged.crl", crl(impostor, impostorKey))

	env := &config.Config{} // no server TLS at all
	c := &Config{CertChallengeCAFile: caFile, CertChallengeCRLFile: good}
	pool, cas, err := challengeCAPool(c, env)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := challengeRevocation(c, env, pool != nil, cas, zap.NewNop())
	if err != nil || rev == nil {
		t.Fatalf("the SM2 list without server TLS: %v", err)
	}
	var re *x509cert.RevokedError
	if err := rev().Check([]*x509.Certificate{revoked.ToX509(), ca.ToX509()}); !errors.As(err, &re) {
		t.Fatalf("the certificate the SM2 list revokes: %v", err)
	}
	if err := rev().Check([]*x509.Certificate{kept.ToX509(), ca.ToX509()}); err != nil {
		t.Fatalf("a certificate the list does not name: %v", err)
	}

	c.CertChallengeCRLFile = forged
	if _, err := challengeRevocation(c, env, true, cas, zap.NewNop()); err == nil ||
		!strings.Contains(err.Error(), "identity.cert_challenge_crl_file") || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("a list naming the CA that it does not verify: %v", err)
	}
	if _, err := challengeRevocation(&Config{CertChallengeCRLFile: good}, env, false, nil, zap.NewNop()); err == nil ||
		!strings.Contains(err.Error(), "cert_challenge_ca_file") {
		t.Fatalf("lists without challenge CAs: %v", err)
	}
	// tls.crl_file is the fallback
	env.TLS.CRLFile = good
	if rev, err := challengeRevocation(&Config{CertChallengeCAFile: caFile}, env, true, cas, zap.NewNop()); err != nil || rev == nil {
		t.Fatalf("tls.crl_file: %v", err)
	}
}
