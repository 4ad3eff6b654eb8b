package module

import (
	"crypto/ecdsa"
	"crypto/elliptic"
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

	"go.uber.org/zap"
)

// A strict CRL file (the challenge sign-in's, RevocationFileChecked)
// refuses at start a list naming a configured CA that the CA does not
// verify, and keeps its lists in force when the file changes to one
// (sec29a H1: fail closed, never loaded and ignored).
func TestStrictCRLFile(t *testing.T) {
	now := time.Now()
	newCA := func() (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "People CA"}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key
	}
	ca, caKey := newCA()
	impostor, impostorKey := newCA()
	crl := func(issuer *x509.Certificate, key *ecdsa.PrivateKey) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Minute),
			NextUpdate: now.Add(time.Hour), RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(7), RevocationTime: now}}}, issuer, key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	dir := t.TempDir()
	good, forged := filepath.Join(dir, "good.pem"), filepath.Join(dir, "forged.pem")
	if err := os.WriteFile(good, crl(ca, caKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(forged, crl(impostor, impostorKey), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RevocationFileChecked(forged, []*x509.Certificate{ca}, nil, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("a list naming the CA that it does not verify: %v", err)
	}
	// the edge's (not strict) file only warns
	if _, err := newCRLFile(forged, []*x509.Certificate{ca}, zap.NewNop()); err != nil {
		t.Fatalf("the edge's file: %v", err)
	}

	f := &crlFile{path: good, cas: []*x509.Certificate{ca}, strict: true, log: zap.NewNop()}
	if err := f.load(); err != nil {
		t.Fatal(err)
	}
	revoked := &x509.Certificate{SerialNumber: big.NewInt(7), RawIssuer: ca.RawSubject}
	if f.current().Check([]*x509.Certificate{revoked, ca}) == nil {
		t.Fatal("the good list does not revoke")
	}
	b, _ := os.ReadFile(forged)
	b = append(b, '\n') // another size: the file changed
	if err := os.WriteFile(good, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if f.current().Check([]*x509.Certificate{revoked, ca}) == nil {
		t.Fatal("the file changed to an unverifiable list: the previous lists are no longer in force")
	}
}
