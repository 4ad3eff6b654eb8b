package component

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
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

// fakeModule stands in for a cipher machine's key in the default build:
// what matters here is only that the ring's master key has no bytes in
// Master.Keys.
type fakeModule struct{ k []byte }

func (f fakeModule) Seal(p, aad []byte) ([]byte, error) { return nil, errors.New("not used") }
func (f fakeModule) Open(s, aad []byte) ([]byte, error) { return nil, errors.New("not used") }
func (f fakeModule) Derive(info string, n int) ([]byte, error) {
	return hkdf.Key(sha256.New, f.k, nil, info, n)
}
func (f fakeModule) String() string { return "fake module" }

// A ring whose master keys are all in a cipher machine (the end state of
// operators.md "A cipher machine") still gives ticket its sealer for kept
// application passwords (sec31b M1: ticket refused to start, "the key ring
// has no master keys"); a ring whose active master key is missing is
// refused, naming the reason.
func TestCredentialSealerModuleOnlyRing(t *testing.T) {
	r, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	r.Master = crypto.KeySet{Active: "m2", Modules: map[string]crypto.ModuleKey{"m2": fakeModule{k: crypto.NewDataKey()}}}
	cs, err := credentialSealer(r)
	if err != nil {
		t.Fatalf("a module-only ring: %v", err)
	}
	v, err := cs.Seal([]byte("app-pass"), []byte("aad"))
	if err != nil || !strings.HasPrefix(v, "m2:") {
		t.Fatalf("sealed under the module key: %q %v", v, err)
	}
	if pt, err := cs.Open(v, []byte("aad")); err != nil || string(pt) != "app-pass" {
		t.Fatalf("open: %q %v", pt, err)
	}
	r.Master.Active = "m9"
	if _, err := credentialSealer(r); err == nil || !strings.Contains(err.Error(), "no active master key") {
		t.Fatalf("a ring without its active master key: %v", err)
	}
}
