package reqsig_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/reqsig"
)

func mustPEM(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	s, err := reqsig.PublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignVerifyEachAlgorithm(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	msg := reqsig.StringToSign("app1", "/uias.identity.v1.AuthService/Authenticate", "1700000000", "abcdefghijklmnop", strings.Repeat("0", 64))
	for _, c := range []struct {
		priv crypto.Signer
		alg  string
	}{{p256, reqsig.AlgECDSAP256}, {p384, reqsig.AlgECDSAP384}, {ed, reqsig.AlgEd25519}, {rk, reqsig.AlgRSA}} {
		k, err := reqsig.ParseKey(mustPEM(t, c.priv.Public()))
		if err != nil {
			t.Fatal(err)
		}
		if k.Algorithm != c.alg || len(k.Thumbprint) != 64 {
			t.Fatalf("key = %s %s, want %s", k.Algorithm, k.Thumbprint, c.alg)
		}
		s, err := reqsig.Sign(c.priv, msg)
		if err != nil {
			t.Fatal(err)
		}
		sig, ok := reqsig.DecodeSignature(s)
		if !ok || !k.Verify([]byte(msg), sig) {
			t.Fatalf("%s: good signature refused", c.alg)
		}
		// URL alphabet, unpadded
		sig2, ok := reqsig.DecodeSignature(strings.TrimRight(base64.URLEncoding.EncodeToString(sig), "="))
		if !ok || !k.Verify([]byte(msg), sig2) {
			t.Fatalf("%s: base64url signature refused", c.alg)
		}
		if k.Verify([]byte(msg+"x"), sig) {
			t.Fatalf("%s: signature of another string accepted", c.alg)
		}
	}
	// RSA-PSS and ECDSA r||s are accepted too.
	k, _ := reqsig.ParseKey(mustPEM(t, rk.Public()))
	d := sha256.Sum256([]byte(msg))
	pss, err := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, d[:], nil)
	if err != nil || !k.Verify([]byte(msg), pss) {
		t.Fatalf("PSS refused (%v)", err)
	}
	k, _ = reqsig.ParseKey(mustPEM(t, p256.Public()))
	r, s, _ := ecdsa.Sign(rand.Reader, p256, d[:])
	raw := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	if !k.Verify([]byte(msg), raw) {
		t.Fatal("ECDSA r||s refused")
	}
	raw[5] ^= 1
	if k.Verify([]byte(msg), raw) {
		t.Fatal("tampered r||s accepted")
	}
}

func TestParseKeyRefusals(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := mustPEM(t, p256.Public())
	// Keys for which signatures can be made without a private key: the
	// Ed25519 identity point (R = identity, S = 0 verifies any message),
	// an order-8 point, a non-canonical encoding; an RSA modulus with a
	// factor 3, a perfect square, an exponent of 3; and a key too large
	// to verify cheaply.
	identity := make(ed25519.PublicKey, ed25519.PublicKeySize)
	identity[0] = 1
	order8, _ := hex.DecodeString("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
	nonCanonical, _ := hex.DecodeString("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	threeQ := new(big.Int).Mul(big.NewInt(3), new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 2046), big.NewInt(1)))
	half := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 1023), big.NewInt(1))
	square := new(big.Int).Mul(half, half)
	big4097 := &rsa.PublicKey{N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 4096), big.NewInt(1)), E: 65537}
	good2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		text, reason string
	}{
		"garbage":               {"hello", reqsig.ReasonKeyInvalid},
		"private key":           {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", reqsig.ReasonKeyInvalid},
		"bad der":               {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", reqsig.ReasonKeyInvalid},
		"two blocks":            {good + good, reqsig.ReasonKeyInvalid},
		"weak rsa":              {mustPEM(t, weak.Public()), reqsig.ReasonKeyWeak},
		"p-521":                 {mustPEM(t, p521.Public()), reqsig.ReasonKeyUnsupported},
		"ed25519 identity":      {mustPEM(t, identity), reqsig.ReasonKeyWeak},
		"ed25519 order 8":       {mustPEM(t, ed25519.PublicKey(order8)), reqsig.ReasonKeyWeak},
		"ed25519 non-canonical": {mustPEM(t, ed25519.PublicKey(nonCanonical)), reqsig.ReasonKeyInvalid},
		"rsa 3q":                {mustPEM(t, &rsa.PublicKey{N: threeQ, E: 65537}), reqsig.ReasonKeyWeak},
		"rsa square":            {mustPEM(t, &rsa.PublicKey{N: square, E: 65537}), reqsig.ReasonKeyWeak},
		"rsa e=3":               {mustPEM(t, &rsa.PublicKey{N: good2048.N, E: 3}), reqsig.ReasonKeyWeak},
		"rsa over 4096 bits":    {mustPEM(t, big4097), reqsig.ReasonKeyWeak},
	} {
		_, err := reqsig.ParseKey(c.text)
		ae, ok := apierr.As(err)
		if !ok || ae.Reason != c.reason || ae.Code != apierr.InvalidArgument || ae.Message == "" {
			t.Errorf("%s: err = %v, want %s", name, err, c.reason)
		}
	}
	if _, err := reqsig.ParseKeys([]string{good, good}); err == nil {
		t.Fatal("the same key twice accepted")
	}
	p2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, err = reqsig.ParseKeys([]string{good, mustPEM(t, p2.Public()), mustPEM(t, p3.Public())})
	if ae, ok := apierr.As(err); !ok || ae.Reason != reqsig.ReasonTooManyKeys {
		t.Fatalf("three keys: %v", err)
	}
}

func TestNonceAndTimestamp(t *testing.T) {
	for s, want := range map[string]bool{
		"abcdefghijklmnop": true, strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
		"short": false, "abcdefghijklmno+": false, "abc-def_ghi-jkl_": true,
	} {
		if reqsig.ValidNonce(s) != want {
			t.Errorf("ValidNonce(%q) = %v", s, !want)
		}
	}
	if _, ok := reqsig.ParseTimestamp("17e9"); ok {
		t.Fatal("17e9 parsed")
	}
	if ts, ok := reqsig.ParseTimestamp("1700000000"); !ok || ts.Unix() != 1700000000 {
		t.Fatal("timestamp")
	}
}
