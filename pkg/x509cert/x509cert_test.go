package x509cert

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

func TestThumbprint(t *testing.T) {
	// SHA-256 of the empty input.
	if got := Thumbprint(nil); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("thumbprint %s", got)
	}
}

func TestVerifiedPeer(t *testing.T) {
	leaf := &x509.Certificate{Raw: []byte{1}}
	for name, tc := range map[string]struct {
		cs   *tls.ConnectionState
		want *x509.Certificate
	}{
		"not TLS":    {nil, nil},
		"none":       {&tls.ConnectionState{}, nil},
		"unverified": {&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, nil},
		"verified":   {&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}, leaf},
	} {
		if got := VerifiedPeer(tc.cs); got != tc.want {
			t.Errorf("%s: %v", name, got)
		}
	}
}
