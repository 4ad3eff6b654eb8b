// Package x509cert holds what the components agree on about X.509 client
// certificates: their thumbprint, and which certificate of a TLS
// connection counts as verified. It imports nothing but the standard
// library, so that domain packages may use it.
package x509cert

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"time"
)

// Thumbprint is the thumbprint of a DER-encoded certificate: the SHA-256
// of the DER in lower case hex (64 digits). It is the form everything
// carries: a person's certificate bindings, an application's certificate,
// the client certificate of a call's origin, and what `openssl x509
// -fingerprint -sha256` prints (without its colons).
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// VerifiedPeer is the client certificate of a TLS connection when the
// server verified it against its client CAs: the gRPC listener asks with
// VerifyClientCertIfGiven (a certificate it could not verify fails the
// handshake); the HTTP edge asks with RequestClientCert and verifies in
// code (VerifyClient), setting VerifiedChains of the state its handlers
// see only when that passed. nil when the connection is not TLS, presented
// none, or presented one that was not verified.
func VerifiedPeer(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}

// VerifyClient verifies a client's certificate chain (the leaf first, as
// the TLS handshake hands it over) for client authentication against
// roots at now: what crypto/tls checks for tls.VerifyClientCertIfGiven,
// done in code (an edge that asks with tls.RequestClientCert, so that a
// refused certificate is answered with a page, not a failed handshake).
func VerifyClient(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) ([][]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, errors.New("x509cert: no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, Intermediates: x509.NewCertPool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	return certs[0].Verify(opts)
}

// Why a presented client certificate was not accepted (Rejected's kind).
const (
	RejectedExpired     = "expired"       // past its NotAfter
	RejectedNotYetValid = "not_yet_valid" // before its NotBefore
	RejectedUnknownCA   = "unknown_ca"    // chains to no CA this server trusts
	RejectedUsage       = "usage"         // not for client authentication
	RejectedInvalid     = "invalid"       // anything else (a bad chain, a bad signature)
	// RejectedRevoked (crl.go): listed in its issuer's CRL
)

// Rejection is a client certificate the server asked for, was presented
// and did not accept: why (Kind, one of Rejected...), its thumbprint, and
// for RejectedExpired and RejectedNotYetValid the validity bound passed
// or not reached (of the chain's certificate at fault), for RejectedRevoked
// when it was revoked.
type Rejection struct {
	Kind       string
	Thumbprint string
	At         time.Time
}

// RejectionOf classifies VerifyClient's error for leaf, verified at now.
func RejectionOf(leaf *x509.Certificate, err error, now time.Time) *Rejection {
	r := &Rejection{Kind: RejectedInvalid}
	if leaf != nil {
		r.Thumbprint = Thumbprint(leaf.Raw)
	}
	var inv x509.CertificateInvalidError
	var unk x509.UnknownAuthorityError
	var rev *RevokedError
	switch {
	case errors.As(err, &rev):
		r.Kind, r.At = RejectedRevoked, rev.At
	case errors.As(err, &inv) && inv.Reason == x509.Expired && inv.Cert != nil && now.Before(inv.Cert.NotBefore):
		r.Kind, r.At = RejectedNotYetValid, inv.Cert.NotBefore
	case errors.As(err, &inv) && inv.Reason == x509.Expired && inv.Cert != nil:
		r.Kind, r.At = RejectedExpired, inv.Cert.NotAfter
	case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
		r.Kind = RejectedUsage
	case errors.As(err, &unk):
		r.Kind = RejectedUnknownCA
	}
	return r
}

type rejectionKey struct{}

// WithRejection returns ctx carrying r: the request's connection presented
// a client certificate that was not accepted.
func WithRejection(ctx context.Context, r *Rejection) context.Context {
	return context.WithValue(ctx, rejectionKey{}, r)
}

// RejectionFrom is the rejection ctx carries (nil when none).
func RejectionFrom(ctx context.Context) *Rejection {
	r, _ := ctx.Value(rejectionKey{}).(*Rejection)
	return r
}
