package crypto

import "testing"

func TestPurposeSealer(t *testing.T) {
	r, err := ParseRing(NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.PurposeSealer("test a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.PurposeSealer("test b")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := a.Seal([]byte("s3cret"), []byte("sub-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Open(sealed, []byte("sub-1")); err != nil || string(got) != "s3cret" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := b.Open(sealed, []byte("sub-1")); err == nil {
		t.Fatal("a value sealed for one purpose opened under another")
	}
	if _, err := a.Open(sealed, []byte("sub-2")); err == nil {
		t.Fatal("a value opened with another label")
	}
	// A later ring holding the same master key (plus a new active one)
	// still opens it.
	r.Master.Keys["m9"] = NewDataKey()
	r.Master.Active = "m9"
	a2, err := r.PurposeSealer("test a")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a2.Open(sealed, []byte("sub-1")); err != nil || string(got) != "s3cret" {
		t.Fatalf("open after rotation: %q %v", got, err)
	}
}
