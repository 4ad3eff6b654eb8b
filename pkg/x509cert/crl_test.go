package x509cert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

type crlCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCRLCA(t *testing.T, name string, serial int64) *crlCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &crlCA{cert: c, key: key}
}

func (ca *crlCA) issue(t *testing.T, serial int64) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "person"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func (ca *crlCA) crl(t *testing.T, next time.Time, revoked ...int64) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: next, RevokedCertificateEntries: entries}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// crlWith is ca's list of serial 100 with the extra extensions given.
func (ca *crlCA) crlWith(t *testing.T, exts []pkix.Extension, entryExts []pkix.Extension) []byte {
	t.Helper()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(2), ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: time.Now().Add(time.Hour), ExtraExtensions: exts,
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(100), RevocationTime: time.Now(), ExtraExtensions: entryExts}}},
		ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Lists that are not their issuer's complete list (a delta, a partitioned
// or indirect one) or carry a critical extension this reader does not know
// are refused, not applied as complete; lists that no configured CA signs
// are named (they revoke nothing).
func TestRevocationListKinds(t *testing.T) {
	ca, other := newCRLCA(t, "People CA", 1), newCRLCA(t, "Other CA", 2)
	asn1Int := []byte{0x02, 0x01, 0x05}
	for name, tc := range map[string]struct {
		exts, entryExts []pkix.Extension
		want            string
	}{
		"delta":              {[]pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: asn1Int}}, nil, "delta CRL"},
		"distribution point": {[]pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: []byte{0x30, 0x00}}}, nil, "issuing distribution point"},
		"unknown critical":   {[]pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{0x05, 0x00}}}, nil, "critical extension 1.2.3.4"},
		"indirect entry":     {nil, []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 29}, Critical: true, Value: []byte{0x30, 0x00}}}, "indirect CRL"},
	} {
		if _, err := ParseCRLs(ca.crlWith(t, tc.exts, tc.entryExts)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// A known non-critical extension is fine.
	if _, err := ParseCRLs(ca.crlWith(t, []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{0x05, 0x00}}}, nil)); err != nil {
		t.Errorf("a non-critical unknown extension: %v", err)
	}
	rev, err := ParseCRLs(append(pemCRL(ca.crl(t, time.Now().Add(time.Hour), 100)), pemCRL(other.crl(t, time.Now().Add(time.Hour)))...))
	if err != nil {
		t.Fatal(err)
	}
	impostor := newCRLCA(t, "People CA", 3)
	if got := rev.Unmatched([]*x509.Certificate{impostor.cert, other.cert}); len(got) != 1 || got[0] != "CN=People CA" {
		t.Fatalf("unmatched %v, want the People CA's list (signed by another key than the configured CA's)", got)
	}
	if got := rev.Unmatched([]*x509.Certificate{ca.cert, other.cert}); len(got) != 0 {
		t.Fatalf("unmatched %v", got)
	}
}

func pemCRL(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}) }

// A CRL revokes the certificates of its issuer it lists (checked by the
// issuer's signature, not its name alone); PEM with several lists and one
// DER list are read; what holds none is refused.
func TestRevocation(t *testing.T) {
	ca, other := newCRLCA(t, "People CA", 1), newCRLCA(t, "Other CA", 2)
	impostor := newCRLCA(t, "People CA", 3) // the same name, another key
	revoked, good := ca.issue(t, 100), ca.issue(t, 101)
	otherLeaf := other.issue(t, 100) // the same serial as revoked, another issuer
	later := time.Now().Add(24 * time.Hour)

	rev, err := ParseCRLs(append(pemCRL(ca.crl(t, later, 100, 7)), pemCRL(other.crl(t, later))...))
	if err != nil || rev.Len() != 2 {
		t.Fatalf("parse: %v, %d lists", err, rev.Len())
	}
	var re *RevokedError
	checkErr := rev.Check([]*x509.Certificate{revoked, ca.cert})
	if err := checkErr; !errors.As(err, &re) || re.Cert != revoked ||
		!re.At.Equal(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("revoked certificate: %v", err)
	}
	if r := RejectionOf(revoked, checkErr, time.Now()); r.Kind != RejectedRevoked || !r.At.Equal(re.At) {
		t.Fatalf("rejection %+v", r)
	}
	for name, chain := range map[string][]*x509.Certificate{
		"not listed":                      {good, ca.cert},
		"the serial under another issuer": {otherLeaf, other.cert},
		"a chain of one":                  {revoked},
	} {
		if err := rev.Check(chain); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A list that names the issuer but is signed by another key counts for
	// nothing.
	forged, err := ParseCRLs(impostor.crl(t, later, 101)) // DER
	if err != nil || forged.Len() != 1 {
		t.Fatalf("DER: %v", err)
	}
	if err := forged.Check([]*x509.Certificate{good, ca.cert}); err != nil {
		t.Fatalf("a list signed by another key revoked: %v", err)
	}
	var none *Revocation
	if none.Check([]*x509.Certificate{revoked, ca.cert}) != nil || none.Len() != 0 {
		t.Fatal("no lists revoke nothing")
	}
	// Stale lists are named (still applied).
	stale, _ := ParseCRLs(pemCRL(ca.crl(t, time.Now().Add(-time.Minute), 100)))
	if s := stale.Stale(time.Now()); len(s) != 1 || s[0] != "CN=People CA" || stale.Check([]*x509.Certificate{revoked, ca.cert}) == nil {
		t.Fatalf("stale %v", s)
	}
	for name, data := range map[string][]byte{
		"empty":          nil,
		"a certificate":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Raw}),
		"garbage":        []byte("not a crl"),
		"a damaged list": pemCRL([]byte{0x30, 0x03, 1, 2, 3}),
	} {
		if _, err := ParseCRLs(data); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// Unverifiable names the lists that name a given CA but that the CA does
// not verify (a component that must fail closed refuses them; sec29a H1),
// not those of other issuers; ParseCRLsChecked verifies with its check.
func TestRevocationUnverifiable(t *testing.T) {
	ca, other := newCRLCA(t, "People CA", 1), newCRLCA(t, "Other CA", 2)
	impostor := newCRLCA(t, "People CA", 3) // the same name, another key
	later := time.Now().Add(24 * time.Hour)
	data := append(pemCRL(ca.crl(t, later, 100)), pemCRL(other.crl(t, later))...)
	rev, err := ParseCRLs(data)
	if err != nil {
		t.Fatal(err)
	}
	if bad := rev.Unverifiable([]*x509.Certificate{ca.cert}); len(bad) != 0 {
		t.Fatalf("good lists: %v", bad)
	}
	forged, err := ParseCRLs(impostor.crl(t, later, 100))
	if err != nil {
		t.Fatal(err)
	}
	if bad := forged.Unverifiable([]*x509.Certificate{ca.cert}); len(bad) != 1 || bad[0] != "CN=People CA" {
		t.Fatalf("a list naming the CA signed by another key: %v", bad)
	}
	if bad := forged.Unverifiable([]*x509.Certificate{other.cert}); len(bad) != 0 {
		t.Fatalf("a list of an issuer not given: %v", bad)
	}
	// a check that verifies nothing: the lists revoke nothing and are named
	never := func(*x509.RevocationList, *x509.Certificate) error { return errors.New("cannot verify") }
	strict, err := ParseCRLsChecked(data, never)
	if err != nil {
		t.Fatal(err)
	}
	if bad := strict.Unverifiable([]*x509.Certificate{ca.cert, other.cert}); len(bad) != 2 {
		t.Fatalf("with a check that verifies nothing: %v", bad)
	}
	if err := strict.Check([]*x509.Certificate{ca.issue(t, 100), ca.cert}); err != nil {
		t.Fatalf("an unverified list revoked: %v", err)
	}
}
