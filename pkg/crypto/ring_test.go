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

func ringJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func enc64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func TestNewRingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "keyring.json")
	const n = 6
	rings := make([]*Ring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { rings[i], errs[i] = NewRingFile(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(rings[i].Master.Keys["m1"], rings[0].Master.Keys["m1"]) {
			t.Fatal("concurrent creators ended with different rings")
		}
	}
	r := rings[0]
	if r.Master.Active != "m1" || r.Signing.Active != "s1" || r.Legacy != nil || r.Source != path {
		t.Fatalf("new ring: %+v", r)
	}
	if bytes.Equal(r.Master.Keys["m1"], r.Signing.Keys["s1"]) {
		t.Fatal("master and signing key are equal")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if _, err := ParseRing(NewRingJSON()); err != nil {
		t.Fatalf("NewRingJSON does not parse: %v", err)
	}
}

// A key file that group or others may read is refused unless allowed; a
// missing one is ErrNoRing (never a new ring).
func TestLoadRingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keyring.json")
	if _, err := LoadRing(RingSource{File: path}); !errors.Is(err, ErrNoRing) {
		t.Fatalf("missing file: %v, want ErrNoRing", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("LoadRing created a file")
	}
	if err := os.WriteFile(path, NewRingJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		_ = os.Chmod(path, mode)
		_, err := LoadRing(RingSource{File: path})
		if !errors.Is(err, ErrKeyFileOpen) || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), path) {
			t.Errorf("mode %04o: %v, want ErrKeyFileOpen naming the file and the fix", mode, err)
		}
		if _, err := LoadRing(RingSource{File: path, AllowOpenFile: true}); err != nil {
			t.Errorf("mode %04o allowed: %v", mode, err)
		}
	}
	_ = os.Chmod(path, 0o400)
	if _, err := LoadRing(RingSource{File: path}); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
}

// The environment (UIAS_KEYRING) takes precedence over the file, as JSON or
// base64 of it.
func TestLoadRingEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	fileRing, err := NewRingFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js := NewRingJSON()
	for name, v := range map[string]string{"json": string(js), "base64": base64.StdEncoding.EncodeToString(js),
		"base64url": base64.RawURLEncoding.EncodeToString(js)} {
		r, err := LoadRing(RingSource{Env: v, File: path})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Source != "UIAS_KEYRING" || bytes.Equal(r.Master.Keys["m1"], fileRing.Master.Keys["m1"]) {
			t.Fatalf("%s: the file was used instead of the environment", name)
		}
	}
}

func TestParseRingErrors(t *testing.T) {
	k1, k2 := enc64(key(1)), enc64(key(2))
	short := enc64(key(3)[:20])
	set := func(active string, keys map[string]string) map[string]any {
		return map[string]any{"active": active, "keys": keys}
	}
	cases := map[string]string{
		"garbage":            "not a ring at all",
		"bad json":           "{",
		"unknown field":      ringJSON(t, map[string]any{"version": 2, "master": set("m1", map[string]string{"m1": k1}), "extra": 1}),
		"version 3":          ringJSON(t, map[string]any{"version": 3, "master": set("m1", map[string]string{"m1": k1})}),
		"no master":          ringJSON(t, map[string]any{"version": 2, "signing": set("s1", map[string]string{"s1": k1})}),
		"active missing":     ringJSON(t, map[string]any{"version": 2, "master": set("m2", map[string]string{"m1": k1})}),
		"short key":          ringJSON(t, map[string]any{"version": 2, "master": set("m1", map[string]string{"m1": short})}),
		"bad id":             ringJSON(t, map[string]any{"version": 2, "master": set("m:1", map[string]string{"m:1": k1})}),
		"same key two roles": ringJSON(t, map[string]any{"version": 2, "master": set("m1", map[string]string{"m1": k1}), "signing": set("s1", map[string]string{"s1": k1, "s2": k2})}),
		"v2 with top keys":   ringJSON(t, map[string]any{"version": 2, "master": set("m1", map[string]string{"m1": k1}), "keys": map[string]string{"k1": k2}}),
	}
	for name, c := range cases {
		_, err := ParseRing([]byte(c))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, secret := range []string{k1, k2, short} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error leaks key material: %v", name, err)
			}
		}
	}
	if _, err := ParseRing([]byte(cases["same key two roles"])); err == nil || !strings.Contains(err.Error(), "one purpose") {
		t.Errorf("key separation: %v", err)
	}
}

// A version-1 file is read as the master set plus the legacy sealing keys
// and blind-index source, exactly as NewSealer used them.
func TestParseRingV1(t *testing.T) {
	r, err := ParseRing([]byte(ringJSON(t, map[string]any{"active": "k2", "keys": map[string]string{"k1": enc64(key(1)), "k2": enc64(key(2))}})))
	if err != nil {
		t.Fatal(err)
	}
	if r.Legacy == nil || r.Legacy.Active != "k2" || !bytes.Equal(r.Legacy.Index, key(1)) || r.Master.Active != "k2" || len(r.Signing.Keys) != 0 {
		t.Fatalf("v1 ring: %+v", r)
	}
	if _, err := r.Signer(); err == nil {
		t.Fatal("a version-1 ring has no signing keys")
	}
	old, _ := NewSealer(r.Legacy.Keys, r.Legacy.Active)
	now, _ := NewSealerWithIndexKey(r.Legacy.Keys, r.Legacy.Active, r.Legacy.Index)
	if old.BlindIndex("x") != now.BlindIndex("x") {
		t.Fatal("legacy blind index changed")
	}
	r, _ = ParseRing([]byte(ringJSON(t, map[string]any{"active": "k1", "keys": map[string]string{"k1": enc64(key(1)), BlindIndexKeyID: enc64(key(9))}})))
	if !bytes.Equal(r.Legacy.Index, key(9)) || len(r.Master.Keys) != 1 {
		t.Fatalf("v1 ring with blind-index key: %+v", r)
	}
}

func TestRingWrapAndCheck(t *testing.T) {
	a, _ := ParseRing(NewRingJSON())
	b, _ := ParseRing(NewRingJSON())
	dk := NewDataKey()
	w, err := a.WrapKey(dk, "d1")
	if err != nil || !strings.HasPrefix(w, "m1:") || strings.Contains(w, enc64(dk)) {
		t.Fatalf("wrap: %q %v", w, err)
	}
	if got, err := a.UnwrapKey(w, "d1"); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := a.UnwrapKey(w, "d2"); err == nil {
		t.Fatal("unwrapped under another label")
	}
	if _, err := b.UnwrapKey(w, "d1"); err == nil {
		t.Fatal("another ring unwrapped the key")
	}
	ca, _ := a.CheckValue("m1")
	ca2, _ := a.CheckValue("m1")
	cb, _ := b.CheckValue("m1")
	if ca != ca2 || ca == cb || len(ca) != 64 || strings.Contains(ca, enc64(a.Master.Keys["m1"])) {
		t.Fatalf("check values: %s %s %s", ca, ca2, cb)
	}
	if _, err := a.CheckValue("m9"); err == nil {
		t.Fatal("check value of a missing key")
	}
	// Rotation of the master: a ring with m1 and an active m2 unwraps old
	// wraps and wraps new ones with m2.
	rot := &Ring{Master: KeySet{Active: "m2", Keys: map[string][]byte{"m1": a.Master.Keys["m1"], "m2": key(7)}}}
	if got, err := rot.UnwrapKey(w, "d1"); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("rotated ring: %v", err)
	}
	if w2, _ := rot.WrapKey(dk, "d1"); !strings.HasPrefix(w2, "m2:") {
		t.Fatalf("rotated wrap: %q", w2)
	}
}

func TestSigner(t *testing.T) {
	r, _ := ParseRing(NewRingJSON())
	s, err := r.Signer()
	if err != nil {
		t.Fatal(err)
	}
	sig := s.Sign([]byte("hello"))
	if !strings.HasPrefix(sig, "s1:") || !s.Verify([]byte("hello"), sig) {
		t.Fatalf("sign/verify: %q", sig)
	}
	// One character of the MAC changed (never to itself: a fixed "AA"
	// ending was the MAC's own one time in about a thousand).
	i := len(sig) - 5
	other := "A"
	if sig[i] == 'A' {
		other = "B"
	}
	for _, bad := range []string{sig[:i] + other + sig[i+1:], "s9" + sig[2:], "nocolon", ""} {
		if s.Verify([]byte("hello"), bad) {
			t.Errorf("verified %q", bad)
		}
	}
	if s.Verify([]byte("hellO"), sig) {
		t.Error("verified another message")
	}
	// The signing key signs; the master key does not produce the same MAC.
	if bytes.Equal(mac(r.Master.Keys["m1"], []byte("hello")), mac(r.Signing.Keys["s1"], []byte("hello"))) {
		t.Error("signing and master keys coincide")
	}
}
