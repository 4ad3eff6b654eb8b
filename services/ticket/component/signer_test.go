package component

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
)

func TestTicketSignerOfVersion1Ring(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	ring, err := crypto.ParseRing([]byte(`{"active":"k1","keys":{"k1":"` + key + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	s, kid, err := ticketSigner(ring)
	if err != nil || kid == "" {
		t.Fatalf("signer: %v %q", err, kid)
	}
	sig := s.Sign([]byte("msg"))
	if !s.Verify([]byte("msg"), sig) || s.Verify([]byte("msh"), sig) || s.Verify([]byte("msg"), "x"+sig) {
		t.Fatal("derived signer does not verify exactly its own signatures")
	}
	// Never the master key itself.
	v2, _ := crypto.ParseRing(crypto.NewRingJSON())
	s2, kid2, _ := ticketSigner(v2)
	if kid2 != v2.Signing.Active || s2.Verify([]byte("msg"), sig) {
		t.Fatalf("version-2 ring: key %q", kid2)
	}
}
