package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustSealer(t *testing.T, keys map[string][]byte, active string) *Sealer {
	t.Helper()
	s, err := NewSealer(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealerRoundTrip(t *testing.T) {
	s := mustSealer(t, map[string][]byte{"k1": key(1)}, "k1")
	aad := []byte("users.id_number:u1")
	for _, pt := range [][]byte{[]byte("110101199003071234"), {}, []byte("证件")} {
		sealed, err := s.Seal(pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(sealed, "k1:") {
			t.Fatalf("sealed %q lacks key id prefix", sealed)
		}
		if len(pt) > 0 && strings.Contains(sealed, string(pt)) {
			t.Fatal("plaintext visible in sealed value")
		}
		got, err := s.Open(sealed, aad)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	a, _ := s.Seal([]byte("same"), aad)
	b, _ := s.Seal([]byte("same"), aad)
	if a == b {
		t.Fatal("sealing is deterministic (nonce reuse?)")
	}
}

func TestSealerTamper(t *testing.T) {
	s := mustSealer(t, map[string][]byte{"k1": key(1)}, "k1")
	sealed, _ := s.Seal([]byte("secret"), nil)
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "k1:"))
	for i := range raw {
		mod := bytes.Clone(raw)
		mod[i] ^= 0x01
		if _, err := s.Open("k1:"+base64.RawURLEncoding.EncodeToString(mod), nil); !errors.Is(err, ErrOpenFailed) {
			t.Fatalf("flipping byte %d: err = %v, want ErrOpenFailed", i, err)
		}
	}
	malformed := []string{"", "k1", ":abc", "k1:!!!", "k1:" + base64.RawURLEncoding.EncodeToString([]byte("short")), sealed[:len(sealed)-1] + "="}
	for _, m := range malformed {
		if _, err := s.Open(m, nil); !errors.Is(err, ErrSealedFormat) {
			t.Errorf("Open(%q) = %v, want ErrSealedFormat", m, err)
		}
	}
}

func TestSealerWrongAAD(t *testing.T) {
	s := mustSealer(t, map[string][]byte{"k1": key(1)}, "k1")
	sealed, _ := s.Seal([]byte("secret"), []byte("user:1"))
	for _, aad := range [][]byte{[]byte("user:2"), nil} {
		if _, err := s.Open(sealed, aad); !errors.Is(err, ErrOpenFailed) {
			t.Fatalf("Open with aad %q = %v, want ErrOpenFailed", aad, err)
		}
	}
}

func TestSealerUnknownKeyAndWrongKey(t *testing.T) {
	s1 := mustSealer(t, map[string][]byte{"k1": key(1)}, "k1")
	s2 := mustSealer(t, map[string][]byte{"k2": key(2)}, "k2")
	sealed, _ := s1.Seal([]byte("secret"), nil)
	if _, err := s2.Open(sealed, nil); !errors.Is(err, ErrUnknownKeyID) {
		t.Fatalf("Open with unknown key id = %v", err)
	}
	// Same id, different key material.
	other := mustSealer(t, map[string][]byte{"k1": key(9)}, "k1")
	if _, err := other.Open(sealed, nil); !errors.Is(err, ErrOpenFailed) {
		t.Fatalf("Open with wrong key = %v", err)
	}
}

func TestSealerRotation(t *testing.T) {
	old := mustSealer(t, map[string][]byte{"k1": key(1)}, "k1")
	sealedOld, _ := old.Seal([]byte("old value"), []byte("aad"))

	rotated := mustSealer(t, map[string][]byte{"k1": key(1), "k2": key(2)}, "k2")
	got, err := rotated.Open(sealedOld, []byte("aad"))
	if err != nil || string(got) != "old value" {
		t.Fatalf("old value after rotation: %q, %v", got, err)
	}
	sealedNew, _ := rotated.Seal([]byte("new value"), []byte("aad"))
	if kid, _ := KeyIDOf(sealedNew); kid != "k2" {
		t.Fatalf("new value sealed with %q, want k2", kid)
	}
	// Blind index is stable across rotation (derived from the smallest id, k1).
	if old.BlindIndex("x") != rotated.BlindIndex("x") {
		t.Fatal("blind index changed after adding a key")
	}
}

func TestBlindIndex(t *testing.T) {
	s := mustSealer(t, map[string][]byte{"k1": key(1)}, "k1")
	a, b := s.BlindIndex("110101199003071234"), s.BlindIndex("110101199003071234")
	if a != b || len(a) != 64 {
		t.Fatalf("blind index not deterministic hex-64: %q %q", a, b)
	}
	if a == s.BlindIndex("110101199003071235") {
		t.Fatal("different values share a blind index")
	}
	if a == HashToken("110101199003071234") {
		t.Fatal("blind index is an unkeyed hash")
	}
	other := mustSealer(t, map[string][]byte{"k1": key(2)}, "k1")
	if a == other.BlindIndex("110101199003071234") {
		t.Fatal("blind index does not depend on the key")
	}
	// A dedicated blind-index key overrides derivation from the ring.
	pinned := mustSealer(t, map[string][]byte{"k1": key(1), BlindIndexKeyID: key(7)}, "k1")
	if pinned.BlindIndex("v") == s.BlindIndex("v") {
		t.Fatal("blind-index key entry ignored")
	}
	pinnedRotated := mustSealer(t, map[string][]byte{"k9": key(9), BlindIndexKeyID: key(7)}, "k9")
	if pinned.BlindIndex("v") != pinnedRotated.BlindIndex("v") {
		t.Fatal("pinned blind index changed with the sealing keys")
	}
}

func TestNewSealerErrors(t *testing.T) {
	cases := map[string]struct {
		keys   map[string][]byte
		active string
	}{
		"empty ring":         {nil, "k1"},
		"active missing":     {map[string][]byte{"k1": key(1)}, "k2"},
		"short key":          {map[string][]byte{"k1": key(1)[:16]}, "k1"},
		"colon in id":        {map[string][]byte{"k:1": key(1)}, "k:1"},
		"empty id":           {map[string][]byte{"": key(1), "k1": key(1)}, "k1"},
		"blind-index active": {map[string][]byte{BlindIndexKeyID: key(1)}, BlindIndexKeyID},
	}
	for name, c := range cases {
		if _, err := NewSealer(c.keys, c.active); err == nil {
			t.Errorf("%s: NewSealer succeeded", name)
		} else if strings.Contains(err.Error(), string(key(1))) {
			t.Errorf("%s: error leaks key material", name)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keyring.json")
	keys, active, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if active != "k1" || len(keys) != 1 || len(keys["k1"]) != KeySize {
		t.Fatalf("created ring: active=%q keys=%d", active, len(keys))
	}
	if bytes.Equal(keys["k1"], make([]byte, KeySize)) {
		t.Fatal("key is all zeros")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", fi.Mode().Perm())
	}
	keys2, active2, err := LoadOrCreateKeyFile(path)
	if err != nil || active2 != "k1" || !bytes.Equal(keys2["k1"], keys["k1"]) {
		t.Fatalf("reload gave a different ring: %v", err)
	}
	if _, err := NewSealer(keys2, active2); err != nil {
		t.Fatalf("ring not usable: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestLoadOrCreateKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			keys, _, err := LoadOrCreateKeyFile(path)
			got[i], errs[i] = keys["k1"], err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(got[i], got[0]) {
			t.Fatalf("starter %d: err=%v or different key", i, errs[i])
		}
	}
}

func TestLoadKeyFileErrors(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(key(5)[:20])
	cases := map[string]string{
		"not json":       "{",
		"no keys":        `{"active":"k1","keys":{}}`,
		"active missing": `{"active":"k2","keys":{"k1":"` + base64.StdEncoding.EncodeToString(key(1)) + `"}}`,
		"bad base64":     `{"active":"k1","keys":{"k1":"***"}}`,
		"wrong key size": `{"active":"k1","keys":{"k1":"` + secret + `"}}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keyring.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreateKeyFile(path)
			if err == nil {
				t.Fatal("expected an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks key material: %v", err)
			}
		})
	}
	// A key file written by hand round-trips.
	path := filepath.Join(t.TempDir(), "keyring.json")
	data, _ := json.Marshal(map[string]any{"active": "k2", "keys": map[string]string{
		"k1": base64.StdEncoding.EncodeToString(key(1)), "k2": base64.StdEncoding.EncodeToString(key(2))}})
	_ = os.WriteFile(path, data, 0o600)
	keys, active, err := LoadOrCreateKeyFile(path)
	if err != nil || active != "k2" || len(keys) != 2 {
		t.Fatalf("hand-written ring: %v %q %d", err, active, len(keys))
	}
}

func TestTokens(t *testing.T) {
	a, b := RandomToken(32), RandomToken(32)
	if a == b || len(a) != 43 {
		t.Fatalf("RandomToken: %q %q", a, b)
	}
	if _, err := base64.RawURLEncoding.DecodeString(a); err != nil {
		t.Fatalf("not raw URL base64: %v", err)
	}
	if len(RandomToken(0)) != 43 {
		t.Fatal("RandomToken(0) should default to 32 bytes")
	}
	h := HashToken("abc")
	if h != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken = %s", h)
	}
	if !EqualHash(h, HashToken("abc")) || EqualHash(h, HashToken("abd")) || EqualHash(h, h[:10]) {
		t.Fatal("EqualHash wrong")
	}
}
