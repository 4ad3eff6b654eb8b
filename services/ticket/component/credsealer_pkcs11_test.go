//go:build pkcs11 && cgo

package component

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/crypto/hsmtest"
)

// TestPKCS11TicketModuleOnlyRing: the documented end state of moving into a
// cipher machine (only the module master key left in the ring, plus the
// signing set) gives ticket everything it needs at start: the sealer of
// kept application passwords (sec31b M1), the ticket signer and the ID
// token keys. SoftHSM2 via scripts/softhsm.sh; skipped without it.
func TestPKCS11TicketModuleOnlyRing(t *testing.T) {
	c := hsmtest.Key(t, filepath.Join("..", "..", ".."), "uias-m2")
	soft, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"version": 2,
		"master":  map[string]any{"active": "m2", "keys": map[string]any{"m2": map[string]any{"pkcs11": c}}},
		"signing": map[string]any{"active": "s1", "keys": map[string]string{"s1": base64.StdEncoding.EncodeToString(soft.Signing.Keys["s1"])}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := crypto.ParseRing(b)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := credentialSealer(r)
	if err != nil {
		t.Fatalf("ticket would not start: ticket: key ring: %v", err)
	}
	v, err := cs.Seal([]byte("app-pass"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := cs.Open(v, []byte("aad")); err != nil || string(pt) != "app-pass" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, active, err := ticketSigner(r); err != nil || active != "s1" {
		t.Fatalf("ticket signer: %q %v", active, err)
	}
	if _, err := idTokenKeys(&Config{}, r); err != nil {
		t.Fatalf("ID token keys: %v", err)
	}
}
