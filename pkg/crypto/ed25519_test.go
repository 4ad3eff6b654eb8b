package crypto

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

func TestRingEd25519(t *testing.T) {
	r, err := ParseRing(NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	r.Signing.Keys["s2"] = randomKey()
	r.Signing.Active = "s2"
	a, err := r.Ed25519("audit checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Ed25519("audit checkpoint")
	other, _ := r.Ed25519("something else")
	if a.Active != "s2" || len(a.Keys) != 3 || a.Keys["master:m1"] == nil {
		t.Fatalf("keys %v active %q", len(a.Keys), a.Active)
	}
	for id := range r.Signing.Keys {
		if !bytes.Equal(a.Keys[id], b.Keys[id]) {
			t.Errorf("key %s is not derived deterministically", id)
		}
		if bytes.Equal(a.Keys[id], other.Keys[id]) {
			t.Errorf("key %s is the same for two purposes", id)
		}
		if bytes.Equal(a.Keys[id].Seed(), r.Signing.Keys[id]) {
			t.Errorf("key %s is the signing key itself", id)
		}
	}
	if bytes.Equal(a.Keys["s1"], a.Keys["s2"]) {
		t.Fatal("two signing keys gave one pair")
	}
	msg := []byte("tree 42")
	if !ed25519.Verify(a.Public("s2"), msg, ed25519.Sign(a.Keys["s2"], msg)) || a.Public("nope") != nil {
		t.Fatal("public key does not verify its signature")
	}
	if _, err := r.Ed25519("Bad+Purpose"); err == nil {
		t.Error("invalid purpose accepted")
	}
	// a version-1 ring: its master keys stand in, with the same pairs a
	// later version 2 ring (same master keys) still verifies with
	v1 := &Ring{Master: r.Master}
	m, err := v1.Ed25519("audit checkpoint")
	if err != nil || m.Active != "master:m1" || len(m.Keys) != 1 || !bytes.Equal(m.Keys["master:m1"], a.Keys["master:m1"]) {
		t.Fatalf("version-1 ring: %v %v", m, err)
	}
	if bytes.Equal(m.Keys["master:m1"].Seed(), r.Master.Keys["m1"]) {
		t.Fatal("the master key itself")
	}
	if _, err := (&Ring{}).Ed25519("audit checkpoint"); err == nil {
		t.Error("an empty ring derived Ed25519 keys")
	}
}
