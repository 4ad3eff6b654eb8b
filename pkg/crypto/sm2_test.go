package crypto

import (
	"crypto/rand"
	"maps"
	"slices"
	"testing"

	"github.com/emmansun/gmsm/sm2"
)

func TestRingSM2(t *testing.T) {
	r, err := ParseRing(NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	r.Signing.Keys["s2"] = randomKey()
	r.Signing.Active = "s2"
	a, err := r.SM2("response signature")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.SM2("response signature")
	other, _ := r.SM2("something else")
	// From the signing keys only: no pair from a master key (the
	// data-protection root) on a ring with a signing set (sec31b L3).
	if a.Active != "sm2:s2" || len(a.Keys) != 2 || a.Keys["sm2:s1"] == nil || a.Keys["sm2:s2"] == nil {
		t.Fatalf("keys %v active %q", slices.Sorted(maps.Keys(a.Keys)), a.Active)
	}
	for _, suite := range []Suite{SuiteAES, SuiteSM4} {
		fresh, _ := ParseRing(NewRingJSONSuite(suite))
		k, err := fresh.SM2("response signature")
		if err != nil || k.Active != "sm2:s1" || len(k.Keys) != 1 || k.Keys["sm2:s1"] == nil {
			t.Fatalf("a new %s ring: %v %v", suite, slices.Sorted(maps.Keys(k.Keys)), err)
		}
	}
	ed, _ := r.Ed25519("response signature")
	for id := range a.Keys {
		if _, clash := ed.Keys[id]; clash {
			t.Errorf("SM2 key id %s is an Ed25519 pair's too", id)
		}
		if !a.Keys[id].Equal(b.Keys[id]) {
			t.Errorf("key %s is not derived deterministically", id)
		}
		if a.Keys[id].Equal(other.Keys[id]) {
			t.Errorf("key %s is the same for two purposes", id)
		}
		// a valid SM2 private key in [1, n-2], its public key on the curve
		if d := a.Keys[id].D; d.Sign() <= 0 || d.Cmp(sm2Order) >= 0 {
			t.Errorf("key %s: private key out of range", id)
		}
	}
	if a.Keys["sm2:s1"].Equal(a.Keys["sm2:s2"]) {
		t.Fatal("two signing keys gave one pair")
	}
	msg := []byte("UIAS-SIG-V1-RESP")
	sig, err := a.Keys["sm2:s2"].Sign(rand.Reader, msg, sm2.DefaultSM2SignerOpts)
	if err != nil || !sm2.VerifyASN1WithSM2(&a.Keys["sm2:s2"].PublicKey, nil, msg, sig) {
		t.Fatalf("the derived pair does not verify its signature: %v", err)
	}
	if _, err := r.SM2("Bad+Purpose"); err == nil {
		t.Error("invalid purpose accepted")
	}
	v1 := &Ring{Master: r.Master}
	m, err := v1.SM2("response signature")
	if err != nil || m.Active != "sm2:master:m1" || len(m.Keys) != 1 || m.Keys["sm2:master:m1"] == nil {
		t.Fatalf("version-1 ring: %v %v", m, err)
	}
	for id := range a.Keys {
		if a.Keys[id].Equal(m.Keys["sm2:master:m1"]) {
			t.Errorf("the master key's pair is signing key pair %s", id)
		}
	}
	if _, err := (&Ring{}).SM2("response signature"); err == nil {
		t.Error("an empty ring derived SM2 keys")
	}
}
