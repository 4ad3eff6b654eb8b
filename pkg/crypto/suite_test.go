package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The SM4 block cipher against the example of GB/T 32907-2016 (appendix
// A.1: the key encrypts itself), and SM4-GCM against the test vector of
// RFC 8998 (appendix A.1), which Python's cryptography (OpenSSL 3) also
// reproduces.
func TestSM4KnownAnswers(t *testing.T) {
	k := unhex(t, "0123456789abcdeffedcba9876543210")
	b, err := sm4.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 16)
	b.Encrypt(out, k)
	if got := hex.EncodeToString(out); got != "681edf34d206965e86b3e94f536e4246" {
		t.Fatalf("SM4 block (GB/T 32907 A.1): %s", got)
	}

	aead, err := SuiteSM4.newAEAD(unhex(t, "0123456789ABCDEFFEDCBA9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := unhex(t, "00001234567800000000ABCD")
	aad := unhex(t, "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
	pt := unhex(t, "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"+
		"EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
	want := "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735d82710ca5c22f0ccfa7cbf93d496ac15" +
		"a56834cbcf98c397b4024a2691233b8d" + "83de3541e4c2b58177e065a9bf7b62ec"
	if got := hex.EncodeToString(aead.Seal(nil, nonce, pt, aad)); got != want {
		t.Fatalf("SM4-GCM (RFC 8998 A.1):\n got %s\nwant %s", got, want)
	}
	// SM3 of "abc" (GB/T 32905-2016 appendix A.1).
	h := sm3.Sum([]byte("abc"))
	if got := hex.EncodeToString(h[:]); got != "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0" {
		t.Fatalf("SM3 (GB/T 32905 A.1): %s", got)
	}
}

// sealedRaw splits a sealed value into key id, tag and nonce|ciphertext|tag.
func sealedRaw(t *testing.T, sealed string) (kid, tag string, raw []byte) {
	t.Helper()
	parts := strings.Split(sealed, ":")
	body := parts[len(parts)-1]
	if len(parts) == 3 {
		tag = parts[1]
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("sealed body of %q: %v", sealed, err)
	}
	return parts[0], tag, raw
}

// pythonSM4GCM runs Python's cryptography (OpenSSL 3's SM4-GCM): "seal"
// or "open" key, nonce, data and aad in hex; it prints the result in hex.
const pythonSM4GCM = `
import sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
op, k, n, d, a = sys.argv[1], *[bytes.fromhex(x) for x in sys.argv[2:]]
if op == "seal":
    e = Cipher(algorithms.SM4(k), modes.GCM(n)).encryptor()
    e.authenticate_additional_data(a)
    print((e.update(d) + e.finalize() + e.tag).hex())
else:
    dec = Cipher(algorithms.SM4(k), modes.GCM(n, d[-16:])).decryptor()
    dec.authenticate_additional_data(a)
    print((dec.update(d[:-16]) + dec.finalize()).hex())
`

func python(t *testing.T, args ...string) (string, error) {
	out, err := exec.Command("python3", append([]string{"-c", pythonSM4GCM}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

// TestSM4GCMIndependent cross-checks what the Sealer seals with an SM4
// data key against an implementation that shares no code with it: Python's
// cryptography over OpenSSL 3 for SM4-GCM, and the openssl command for the
// SM4 block (ECB). Each is skipped, saying so, where it is not installed.
func TestSM4GCMIndependent(t *testing.T) {
	key := NewDataKeyFor(SuiteSM4)
	s, err := NewSuiteSealer(map[string]SuiteKey{"d2": {Suite: SuiteSM4, Key: key}}, "d2", make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("user.id_number")
	if _, err := python(t, "seal", strings.Repeat("00", 16), strings.Repeat("00", 12), "", ""); err != nil {
		t.Log("python3 with cryptography's SM4-GCM is not available here: SM4-GCM cross-check skipped")
	} else {
		for _, pt := range [][]byte{[]byte("110101199003071233"), {}, bytes.Repeat([]byte("指纹"), 300)} {
			sealed, err := s.Seal(pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			kid, tag, raw := sealedRaw(t, sealed)
			if kid != "d2" || tag != "sm4" {
				t.Fatalf("sealed form %q: want d2:sm4:...", sealed)
			}
			got, err := python(t, "open", hex.EncodeToString(key), hex.EncodeToString(raw[:12]), hex.EncodeToString(raw[12:]), hex.EncodeToString(aad))
			if err != nil || got != hex.EncodeToString(pt) {
				t.Fatalf("OpenSSL opened %q as %q (%v), want %x", sealed, got, err, pt)
			}
			// And OpenSSL's sealing opens here.
			nonce := raw[:12]
			theirs, err := python(t, "seal", hex.EncodeToString(key), hex.EncodeToString(nonce), hex.EncodeToString(pt), hex.EncodeToString(aad))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := hex.DecodeString(theirs)
			if !bytes.Equal(b, raw[12:]) {
				t.Fatal("OpenSSL's SM4-GCM differs from the Sealer's for the same nonce")
			}
			mine, err := s.Open("d2:sm4:"+base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), nonce...), b...)), aad)
			if err != nil || !bytes.Equal(mine, pt) {
				t.Fatalf("opening OpenSSL's value: %v", err)
			}
		}
	}

	// The block cipher against the openssl command (SM4-ECB, no padding).
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl is not installed: SM4-ECB cross-check skipped")
		return
	}
	block := bytes.Repeat([]byte("0123456789abcdef"), 4)
	cmd := exec.Command("openssl", "enc", "-sm4-ecb", "-nopad", "-K", hex.EncodeToString(key))
	cmd.Stdin = bytes.NewReader(block)
	out, err := cmd.Output()
	if err != nil {
		t.Logf("openssl enc -sm4-ecb failed (%v): SM4-ECB cross-check skipped", err)
		return
	}
	c, _ := sm4.NewCipher(key)
	want := make([]byte, len(block))
	for i := 0; i < len(block); i += 16 {
		c.Encrypt(want[i:i+16], block[i:i+16])
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("openssl SM4-ECB %x, gmsm %x", out, want)
	}
}

// Keys of both suites side by side: each seals in its own algorithm and
// names it; both open after the active key changed suite.
func TestSealerMixedSuites(t *testing.T) {
	aesKey, sm4Key := NewDataKeyFor(SuiteAES), NewDataKeyFor(SuiteSM4)
	if len(aesKey) != 32 || len(sm4Key) != 16 {
		t.Fatalf("data key sizes %d %d", len(aesKey), len(sm4Key))
	}
	keys := map[string]SuiteKey{"d1": {Suite: SuiteAES, Key: aesKey}, "d2": {Suite: SuiteSM4, Key: sm4Key}}
	s, err := NewSuiteSealer(keys, "d1", key(9))
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("user.phone")
	onAES, _ := s.Seal([]byte("13812345678"), aad)
	if !strings.HasPrefix(onAES, "d1:") || strings.Count(onAES, ":") != 1 || s.ActiveSuite() != SuiteAES {
		t.Fatalf("AES-256-GCM value %q: want the untagged form of before", onAES)
	}
	if err := s.SetSuiteKeys(keys, "d2"); err != nil {
		t.Fatal(err)
	}
	onSM4, _ := s.Seal([]byte("13812345678"), aad)
	if !strings.HasPrefix(onSM4, "d2:sm4:") || s.ActiveSuite() != SuiteSM4 {
		t.Fatalf("SM4-GCM value %q: want d2:sm4:...", onSM4)
	}
	if id, _ := KeyIDOf(onSM4); id != "d2" {
		t.Fatalf("KeyIDOf(%q) = %q", onSM4, id)
	}
	for _, v := range []string{onAES, onSM4} {
		if pt, err := s.Open(v, aad); err != nil || string(pt) != "13812345678" {
			t.Fatalf("open %q: %q %v", v, pt, err)
		}
	}
	// A sealer that knows only the AES key (an old instance) opens the old
	// value and refuses the new one by its unknown key id.
	old, _ := NewSuiteSealer(map[string]SuiteKey{"d1": keys["d1"]}, "d1", key(9))
	if _, err := old.Open(onSM4, aad); !errors.Is(err, ErrUnknownKeyID) {
		t.Fatalf("an old sealer on an SM4 value: %v", err)
	}
	// The blind index does not depend on the sealing suite.
	if s.BlindIndex("x") != old.BlindIndex("x") {
		t.Fatal("blind index changed with the suite")
	}
}

// The failure paths: wrong key, tampered value, unknown algorithm tag, a
// tag that is not its key's algorithm, an unknown key, malformed forms.
func TestSealerSuiteFailures(t *testing.T) {
	sm4Key := NewDataKeyFor(SuiteSM4)
	keys := map[string]SuiteKey{"d1": {Suite: SuiteAES, Key: NewDataKeyFor(SuiteAES)}, "d2": {Suite: SuiteSM4, Key: sm4Key}}
	s, _ := NewSuiteSealer(keys, "d2", key(9))
	aad := []byte("user.id_number")
	v, _ := s.Seal([]byte("secret"), aad)
	_, _, raw := sealedRaw(t, v)
	body := base64.RawURLEncoding.EncodeToString(raw)

	wrongKey, _ := NewSuiteSealer(map[string]SuiteKey{"d2": {Suite: SuiteSM4, Key: NewDataKeyFor(SuiteSM4)}}, "d2", key(9))
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-20] ^= 1
	cases := []struct {
		name   string
		sealer *Sealer
		value  string
		want   error
	}{
		{"wrong key", wrongKey, v, ErrOpenFailed},
		{"tampered", s, "d2:sm4:" + base64.RawURLEncoding.EncodeToString(flipped), ErrOpenFailed},
		{"wrong aad", s, v, ErrOpenFailed},
		{"unknown tag", s, "d2:sm9:" + body, ErrUnknownSuite},
		{"explicit aes tag is unknown", s, "d2:aes:" + body, ErrUnknownSuite},
		{"SM4 value without its tag", s, "d2:" + body, ErrAlgorithmMismatch},
		{"sm4 tag on an AES key", s, "d1:sm4:" + body, ErrAlgorithmMismatch},
		{"unknown key", s, "d7:sm4:" + body, ErrUnknownKeyID},
		{"empty tag", s, "d2::" + body, ErrSealedFormat},
		{"short body", s, "d2:sm4:AAAA", ErrSealedFormat},
		{"no key id", s, ":sm4:" + body, ErrSealedFormat},
	}
	for _, c := range cases {
		a := aad
		if c.name == "wrong aad" {
			a = []byte("user.phone")
		}
		pt, err := c.sealer.Open(c.value, a)
		if !errors.Is(err, c.want) || pt != nil {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), hex.EncodeToString(sm4Key))) {
			t.Errorf("%s: the error leaks: %v", c.name, err)
		}
	}
	// Keys of the wrong size for their suite, and unknown suites.
	for name, k := range map[string]SuiteKey{
		"sm4 of 32 bytes": {Suite: SuiteSM4, Key: key(1)},
		"aes of 16 bytes": {Suite: SuiteAES, Key: sm4Key},
		"unknown suite":   {Suite: "sm9", Key: sm4Key},
	} {
		if _, err := NewSuiteSealer(map[string]SuiteKey{"d1": k}, "d1", key(9)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseSuite("des"); !errors.Is(err, ErrUnknownSuite) {
		t.Errorf("ParseSuite(des): %v", err)
	}
	if _, err := SuiteOfKey(make([]byte, 24)); err == nil {
		t.Error("a 24-byte data key has a suite")
	}
}

func sm4Ring(t *testing.T) *Ring {
	t.Helper()
	r, err := ParseRing(NewRingJSONSuite(SuiteSM4))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A ring of SM4 keys: the file names the suite per key, the ring's suite
// is the active master key's, wrapping is SM4-GCM, key-check values and
// signatures are HMAC-SM3, and an AES ring is computed as before.
func TestSM4Ring(t *testing.T) {
	var f map[string]any
	raw := NewRingJSONSuite(SuiteSM4)
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	m1 := f["master"].(map[string]any)["keys"].(map[string]any)["m1"].(map[string]any)
	if m1["suite"] != "sm4" || len(m1) != 2 {
		t.Fatalf("an SM4 ring's master key in the file: %v", m1)
	}
	r := sm4Ring(t)
	if r.Suite() != SuiteSM4 || r.Signing.SuiteOf("s1") != SuiteSM4 || len(r.Master.Keys["m1"]) != KeySize {
		t.Fatalf("SM4 ring: suite %s, signing %s", r.Suite(), r.Signing.SuiteOf("s1"))
	}
	dk := NewDataKeyFor(SuiteSM4)
	w, err := r.WrapKey(dk, "d2")
	if err != nil || !strings.HasPrefix(w, "m1:sm4:") {
		t.Fatalf("wrap under an SM4 master key: %q %v", w, err)
	}
	if got, err := r.UnwrapKey(w, "d2"); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := r.UnwrapKey(w, "d3"); !errors.Is(err, ErrOpenFailed) {
		t.Fatalf("unwrap under another label: %v", err)
	}
	// The wrapping key is HKDF-SM3 of the master key, 16 bytes.
	wk, _ := hkdf.Key(sm3.New, r.Master.Keys["m1"], nil, "uias wrap v1", 16)
	indep, _ := NewSuiteSealer(map[string]SuiteKey{"m1": {Suite: SuiteSM4, Key: wk}}, "m1", make([]byte, KeySize))
	if got, err := indep.Open(w, []byte("uias data key:d2")); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("the wrap is not SM4-GCM under HKDF-SM3: %v", err)
	}
	// Key-check value: HMAC-SM3 under HKDF-SM3.
	ck, _ := hkdf.Key(sm3.New, r.Master.Keys["m1"], nil, "uias key-check v1", 16)
	m := hmac.New(sm3.New, ck)
	m.Write([]byte("uias key-check value"))
	if got, _ := r.CheckValue("m1"); got != hex.EncodeToString(m.Sum(nil)) {
		t.Fatal("an SM4 master key's check value is not HMAC-SM3")
	}
	// Signatures: HMAC-SM3.
	sg, _ := r.Signer()
	sig := sg.Sign([]byte("ST-1"))
	sm := hmac.New(sm3.New, r.Signing.Keys["s1"])
	sm.Write([]byte("ST-1"))
	if sig != "s1:"+base64.RawURLEncoding.EncodeToString(sm.Sum(nil)) || !sg.Verify([]byte("ST-1"), sig) {
		t.Fatalf("an SM4 signing key's signature %q is not HMAC-SM3", sig)
	}
	// Purpose sealers seal with SM4-GCM.
	ps, _ := r.PurposeSealer("sync provisioning secrets")
	if v, _ := ps.Seal([]byte("pw"), nil); !strings.HasPrefix(v, "m1:sm4:") {
		t.Fatalf("purpose sealer under an SM4 master key: %q", v)
	}

	// An AES ring computes exactly what it computed before suites existed.
	a, _ := ParseRing(NewRingJSON())
	if a.Suite() != SuiteAES || a.Master.Suites != nil {
		t.Fatalf("AES ring suite %s", a.Suite())
	}
	ak, _ := hkdf.Key(sha256.New, a.Master.Keys["m1"], nil, "uias key-check v1", 32)
	am := hmac.New(sha256.New, ak)
	am.Write([]byte("uias key-check value"))
	if got, _ := a.CheckValue("m1"); got != hex.EncodeToString(am.Sum(nil)) {
		t.Fatal("an AES master key's check value changed")
	}
	if got, _ := r.CheckValue("m1"); got == hex.EncodeToString(am.Sum(nil)) {
		t.Fatal("check values of the two suites coincide")
	}
	as, _ := a.Signer()
	if sig := as.Sign([]byte("x")); sig != "s1:"+base64.RawURLEncoding.EncodeToString(mac(a.Signing.Keys["s1"], []byte("x"))) {
		t.Fatal("an AES signing key's signature changed")
	}
}

// Master keys of both suites in one ring: a data key wrapped by the old
// AES master key unwraps, new wraps are SM4-GCM; a data key of either
// suite can be wrapped by either; a ring missing the wrapping master key
// fails by name.
func TestRingMixedSuites(t *testing.T) {
	a, _ := ParseRing(NewRingJSON())
	s := sm4Ring(t)
	aesDK := NewDataKey()
	oldWrap, _ := a.WrapKey(aesDK, "d1")
	text := ringJSON(t, map[string]any{"version": 2,
		"master": map[string]any{"active": "m2", "keys": map[string]any{
			"m1": enc64(a.Master.Keys["m1"]),
			"m2": map[string]string{"suite": "sm4", "key": enc64(s.Master.Keys["m1"])},
		}},
		"signing": map[string]any{"active": "s1", "keys": map[string]any{"s1": enc64(a.Signing.Keys["s1"])}},
	})
	mixed, err := ParseRing([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if mixed.Suite() != SuiteSM4 || mixed.Master.SuiteOf("m1") != SuiteAES {
		t.Fatalf("mixed ring suites: %s %s", mixed.Suite(), mixed.Master.SuiteOf("m1"))
	}
	if got, err := mixed.UnwrapKey(oldWrap, "d1"); err != nil || !bytes.Equal(got, aesDK) {
		t.Fatalf("the AES master key's wrap in a mixed ring: %v", err)
	}
	newWrap, _ := mixed.WrapKey(aesDK, "d1")
	if !strings.HasPrefix(newWrap, "m2:sm4:") {
		t.Fatalf("rewrap under the active SM4 master key: %q", newWrap)
	}
	if got, err := mixed.UnwrapKey(newWrap, "d1"); err != nil || !bytes.Equal(got, aesDK) {
		t.Fatalf("unwrap of the rewrapped key: %v", err)
	}
	if _, err := a.UnwrapKey(newWrap, "d1"); !errors.Is(err, ErrUnknownKeyID) {
		t.Fatalf("a ring without m2: %v", err)
	}
	// Suites in the file that are refused.
	for name, k := range map[string]any{
		"unknown suite": map[string]string{"suite": "sm9", "key": enc64(key(1))},
		"extra field":   map[string]string{"suite": "sm4", "key": enc64(key(1)), "x": "y"},
		"short key":     map[string]string{"suite": "sm4", "key": enc64(key(1)[:16])},
		"number":        7,
	} {
		text := ringJSON(t, map[string]any{"version": 2, "master": map[string]any{"active": "m1", "keys": map[string]any{"m1": k}}})
		if _, err := ParseRing([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), enc64(key(1))) {
			t.Errorf("%s: the error leaks the key", name)
		}
	}
}

// Without the pkcs11 build a ring naming a key in a cipher machine is
// refused, saying which build is needed.
func TestModuleKeyNeedsThePKCS11Build(t *testing.T) {
	if PKCS11Supported() {
		t.Skip("this build has PKCS#11 (module_pkcs11_test.go)")
	}
	text := ringJSON(t, map[string]any{"version": 2, "master": map[string]any{"active": "m1", "keys": map[string]any{
		"m1": map[string]any{"pkcs11": map[string]string{"module": "/usr/lib/softhsm/libsofthsm2.so", "token": "t", "label": "k", "pin_env": "X"}}}}})
	if _, err := ParseRing([]byte(text)); !errors.Is(err, ErrNoPKCS11) {
		t.Fatalf("a module key in the pure-Go build: %v", err)
	}
}
