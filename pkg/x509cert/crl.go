package x509cert

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
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
	check SignatureCheck
}

// SignatureCheck verifies a list's signature with its issuer's key (nil
// when it verifies). The default is crypto/x509's CheckSignatureFrom,
// which cannot verify SM2 signatures: a component that trusts SM2 CAs
// passes one that can (gmsm's smx509), or an SM2 CA's lists would revoke
// nothing.
type SignatureCheck func(list *x509.RevocationList, issuer *x509.Certificate) error

func (r *Revocation) signedBy(l *revocationList, issuer *x509.Certificate) bool {
	if r.check != nil {
		return r.check(l.crl, issuer) == nil
	}
	return l.crl.CheckSignatureFrom(issuer) == nil
}

type revocationList struct {
	crl     *x509.RevocationList
	revoked map[string]time.Time // by serial number (decimal, sign included)
}

// ParseCRLs reads CRLs from data: PEM blocks "X509 CRL" (any number; other
// blocks are skipped), or one DER-encoded CRL. Data that holds none is an
// error.
func ParseCRLs(data []byte) (*Revocation, error) {
	return ParseCRLsChecked(data, nil)
}

// ParseCRLsChecked is ParseCRLs with the lists' signatures verified by
// check (nil: crypto/x509's).
func ParseCRLsChecked(data []byte, check SignatureCheck) (*Revocation, error) {
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
	r := &Revocation{check: check}
	for i, der := range ders {
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("CRL %d: %w", i+1, err)
		}
		if err := completeList(crl); err != nil {
			return nil, fmt.Errorf("CRL %d (%s): %w", i+1, crl.Issuer, err)
		}
		l := &revocationList{crl: crl, revoked: make(map[string]time.Time, len(crl.RevokedCertificateEntries))}
		for _, e := range crl.RevokedCertificateEntries {
			l.revoked[e.SerialNumber.String()] = e.RevocationTime
		}
		r.lists = append(r.lists, l)
	}
	return r, nil
}

// The CRL extensions a list may carry (RFC 5280 §5.2): any other that is
// critical, or one that makes it other than a complete list of its
// issuer's certificates, refuses the list (Go's parser ignores them, and
// applying such a list as complete would be wrong).
var (
	oidCRLNumber         = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidAuthorityKeyID    = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistPoint  = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidCertificateIssuer = asn1.ObjectIdentifier{2, 5, 29, 29}
	oidReasonCode        = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate    = asn1.ObjectIdentifier{2, 5, 29, 24}
)

// completeList refuses a delta CRL, a partitioned or indirect one (an
// issuing distribution point, entries naming other issuers), and one with
// a critical extension this reader does not know.
func completeList(crl *x509.RevocationList) error {
	for _, e := range crl.Extensions {
		switch {
		case e.Id.Equal(oidDeltaCRLIndicator):
			return errors.New("a delta CRL: give the issuer's complete (base) list")
		case e.Id.Equal(oidIssuingDistPoint):
			return errors.New("a partitioned or indirect CRL (issuing distribution point): give the issuer's complete list")
		case e.Critical && !e.Id.Equal(oidCRLNumber) && !e.Id.Equal(oidAuthorityKeyID):
			return fmt.Errorf("a critical extension %s this reader does not know", e.Id)
		}
	}
	for _, entry := range crl.RevokedCertificateEntries {
		for _, e := range entry.Extensions {
			switch {
			case e.Id.Equal(oidCertificateIssuer):
				return errors.New("an indirect CRL (entries of other issuers): give each issuer's own list")
			case e.Critical && !e.Id.Equal(oidReasonCode) && !e.Id.Equal(oidInvalidityDate):
				return fmt.Errorf("an entry with a critical extension %s this reader does not know", e.Id)
			}
		}
	}
	return nil
}

// Unmatched names the lists (their issuers) that no CA of cas signs: they
// revoke nothing (a list counts for a certificate only when its signature
// verifies with the certificate's issuer), which is most likely a mistake
// (a re-keyed CA, a separate CRL-signing certificate, a CA without the
// cRLSign key usage).
func (r *Revocation) Unmatched(cas []*x509.Certificate) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, l := range r.lists {
		signed := false
		for _, ca := range cas {
			if string(ca.RawSubject) == string(l.crl.RawIssuer) && r.signedBy(l, ca) {
				signed = true
				break
			}
		}
		if !signed {
			out = append(out, l.crl.Issuer.String())
		}
	}
	return out
}

// Unverifiable names the lists (their issuers) that name a CA of cas as
// their issuer (the same distinguished name) but whose signature no such
// CA verifies: lists meant for a configured CA that would revoke nothing
// (a signature algorithm the check cannot verify, a re-keyed CA, a
// forged or damaged list). A component that must not fail open refuses
// them.
func (r *Revocation) Unverifiable(cas []*x509.Certificate) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, l := range r.lists {
		named, signed := false, false
		for _, ca := range cas {
			if string(ca.RawSubject) != string(l.crl.RawIssuer) {
				continue
			}
			named = true
			if r.signedBy(l, ca) {
				signed = true
				break
			}
		}
		if named && !signed {
			out = append(out, l.crl.Issuer.String())
		}
	}
	return out
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
			if at, ok := l.revoked[cert.SerialNumber.String()]; ok && r.signedBy(l, issuer) {
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
