package component

import (
	"crypto/hkdf"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
)

// The kept application passwords' sealer (now Ring.PurposeSealer, ADR
// 0042) opens what the sealer before suites existed sealed with an AES
// master key (HKDF-SHA-256, "uias ticket app passwords v1", AES-256-GCM),
// and seals with SM4-GCM once an SM4 master key is active.
func TestCredentialSealerSuites(t *testing.T) {
	r, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	k, err := hkdf.Key(sha256.New, r.Master.Keys["m1"], nil, "uias ticket app passwords v1", crypto.KeySize)
	if err != nil {
		t.Fatal(err)
	}
	before, err := crypto.NewSealerWithIndexKey(map[string][]byte{"m1": k}, "m1", make([]byte, crypto.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := before.Seal([]byte("app-pass"), []byte("aad"))
	cs, err := credentialSealer(r)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := cs.Open(old, []byte("aad")); err != nil || string(pt) != "app-pass" {
		t.Fatalf("a password kept before suites: %q %v", pt, err)
	}
	// An SM4 master key m2 becomes active: new passwords are SM4-GCM, the
	// old one still opens.
	r.Master.Keys["m2"] = crypto.NewDataKey()
	r.Master.Suites = map[string]crypto.Suite{"m2": crypto.SuiteSM4}
	r.Master.Active = "m2"
	cs, err = credentialSealer(r)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := cs.Seal([]byte("new-pass"), []byte("aad"))
	if !strings.HasPrefix(v, "m2:sm4:") {
		t.Fatalf("sealed under an SM4 master key: %q", v[:7])
	}
	for want, sealed := range map[string]string{"app-pass": old, "new-pass": v} {
		if pt, err := cs.Open(sealed, []byte("aad")); err != nil || string(pt) != want {
			t.Fatalf("open %s: %v", want, err)
		}
	}
}
