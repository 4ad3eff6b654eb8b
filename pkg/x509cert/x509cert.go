// Package x509cert holds what the components agree on about X.509 client
// certificates: their thumbprint, and which certificate of a TLS
// connection counts as verified. It imports nothing but the standard
// library, so that domain packages may use it.
package x509cert

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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
// server verified it against its client CAs (it asks with
// VerifyClientCertIfGiven: a certificate it could not verify fails the
// handshake, so an unverified one is never seen here); nil when the
// connection is not TLS or presented none.
func VerifiedPeer(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}
