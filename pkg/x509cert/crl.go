package x509cert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// RejectedRevoked is the kind of a certificate its issuer's certificate
// revocation list names (or one of its chain's intermediates).
const RejectedRevoked = "revoked"

// RevokedError is a certificate of a chain that its issuer's CRL lists.
type RevokedError struct {
	Cert *x509.Certificate
	At   time.Time // when the issuer revoked it
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("x509cert: certificate serial %s was revoked by its issuer on %s",
		e.Cert.SerialNumber, e.At.UTC().Format(time.RFC3339))
}

// Revocation is a set of certificate revocation lists (CRLs), each kept for
// the certificates of its issuer: a list counts for a certificate when it
// names the certificate's issuer and its signature verifies with the
// issuer's key (the next certificate of the verified chain).
type Revocation struct {
	lists []*revocationList
}

type revocationList struct {
	crl     *x509.RevocationList
	revoked map[string]time.Time // by serial number (big-endian bytes)
}

// ParseCRLs reads CRLs from data: PEM blocks "X509 CRL" (any number; other
// blocks are skipped), or one DER-encoded CRL. Data that holds none is an
// error.
func ParseCRLs(data []byte) (*Revocation, error) {
	var ders [][]byte
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "X509 CRL" {
			ders = append(ders, blk.Bytes)
		}
	}
	if len(ders) == 0 {
		if bytes.Contains(data, []byte("-----BEGIN")) || len(data) == 0 {
			return nil, errors.New(`no CRL found (PEM "X509 CRL" blocks, or one DER CRL)`)
		}
		ders = [][]byte{data} // DER
	}
	r := &Revocation{}
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		l := &revocationList{crl: crl, revoked: make(map[string]time.Time, len(crl.RevokedCertificateEntries))}
		for _, e := range crl.RevokedCertificateEntries {
			l.revoked[string(e.SerialNumber.Bytes())] = e.RevocationTime
		}
		r.lists = append(r.lists, l)
	}
	return r, nil
}

// Check reports whether a certificate of chain (a verified chain, the leaf
// first, its root last) is revoked: a *RevokedError for the first one a
// list of its issuer names, nil otherwise (also when no list of its issuer
// is held: a CA without a CRL here revokes nothing). r may be nil.
func (r *Revocation) Check(chain []*x509.Certificate) error {
	if r == nil {
		return nil
	}
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		for _, l := range r.lists {
			if string(l.crl.RawIssuer) != string(cert.RawIssuer) {
				continue
			}
			if at, ok := l.revoked[string(cert.SerialNumber.Bytes())]; ok && l.crl.CheckSignatureFrom(issuer) == nil {
				return &RevokedError{Cert: cert, At: at}
			}
		}
	}
	return nil
}

// Stale lists the CRLs past their NextUpdate at now (their issuers'
// distinguished names): they are still applied, but their issuers have
// published newer ones that revoke more.
func (r *Revocation) Stale(now time.Time) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, l := range r.lists {
		if !l.crl.NextUpdate.IsZero() && now.After(l.crl.NextUpdate) {
			out = append(out, l.crl.Issuer.String())
		}
	}
	return out
}

// Len is how many CRLs r holds.
func (r *Revocation) Len() int {
	if r == nil {
		return 0
	}
	return len(r.lists)
}
