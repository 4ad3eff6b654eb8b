package reqsig_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/reqsig"
)

// The object identifiers of SubjectPublicKeyInfo algorithms and curves.
var (
	oidECPublicKey = []int{1, 2, 840, 10045, 2, 1}
	oidSM2         = []int{1, 2, 156, 10197, 1, 301}
	oidP256        = []int{1, 2, 840, 10045, 3, 1, 7}
)

// spki is a PEM SubjectPublicKeyInfo of algorithm alg with the curve
// param and the point encoding point, built by hand (for the forms the
// marshallers do not make).
func spki(t *testing.T, alg, param []int, point []byte) string {
	t.Helper()
	oid := func(b *cryptobyte.Builder, o []int) {
		b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) {
			b.AddUint8(uint8(o[0]*40 + o[1]))
			for _, n := range o[2:] {
				var enc []byte
				for {
					enc = append([]byte{byte(n & 0x7f)}, enc...)
					n >>= 7
					if n == 0 {
						break
					}
				}
				for i := 0; i < len(enc)-1; i++ {
					enc[i] |= 0x80
				}
				b.AddBytes(enc)
			}
		})
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			oid(b, alg)
			oid(b, param)
		})
		b.AddASN1BitString(point)
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func sm2Point(t *testing.T, p *ecdsa.PublicKey) []byte {
	t.Helper()
	e, err := sm2.PublicKeyToECDH(p)
	if err != nil {
		t.Fatal(err)
	}
	return e.Bytes()
}

// TestSM2SignVerify: an SM2 key (its SubjectPublicKeyInfo in either form:
// id-ecPublicKey with the SM2 curve, as OpenSSL and gmsm write it, or the
// SM2 OID as the algorithm) verifies SM2 signatures with SM3 and the
// default user ID, DER and r||s, and refuses a signature with another
// user ID, of another string, or changed.
func TestSM2SignVerify(t *testing.T) {
	priv, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemText := mustPEM(t, &priv.PublicKey)
	k, err := reqsig.ParseKey(pemText)
	if err != nil {
		t.Fatal(err)
	}
	if k.Algorithm != reqsig.AlgSM2 || len(k.Thumbprint) != 64 || !strings.Contains(k.PEM, "BEGIN PUBLIC KEY") {
		t.Fatalf("key = %s %s", k.Algorithm, k.Thumbprint)
	}
	// the other form names the same point (another SubjectPublicKeyInfo:
	// another thumbprint)
	k2, err := reqsig.ParseKey(spki(t, oidSM2, oidSM2, sm2Point(t, &priv.PublicKey)))
	if err != nil || k2.Algorithm != reqsig.AlgSM2 {
		t.Fatalf("SM2 algorithm OID form: %v %v", k2, err)
	}
	msg := reqsig.StringToSign("app1", "POST /v1/authenticate", "1700000000", "abcdefghijklmnop", strings.Repeat("0", 64))
	s, err := reqsig.Sign(priv, msg)
	if err != nil {
		t.Fatal(err)
	}
	sig, ok := reqsig.DecodeSignature(s)
	if !ok || !k.Verify([]byte(msg), sig) || !k2.Verify([]byte(msg), sig) {
		t.Fatal("SM2 signature refused")
	}
	// the standard library's ecdsa.PrivateKey on the SM2 curve signs SM2 too
	if s2, err := reqsig.Sign(&priv.PrivateKey, msg); err != nil {
		t.Fatal(err)
	} else if sig2, _ := reqsig.DecodeSignature(s2); !k.Verify([]byte(msg), sig2) {
		t.Fatal("SM2 signature of an *ecdsa.PrivateKey refused")
	}
	// r||s (64 bytes)
	r, ss, err := sm2.SignWithSM2(rand.Reader, &priv.PrivateKey, []byte(reqsig.SM2UserID), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	raw := append(r.FillBytes(make([]byte, 32)), ss.FillBytes(make([]byte, 32))...)
	if !k.Verify([]byte(msg), raw) {
		t.Fatal("SM2 r||s refused")
	}
	// refusals
	otherUID, err := priv.Sign(rand.Reader, []byte(msg), sm2.NewSM2SignerOption(true, []byte("ALICE123@YAHOO.COM")))
	if err != nil {
		t.Fatal(err)
	}
	// SM2 without the Z value (a plain hash-and-sign of SM3, or of SHA-256)
	d := sha256.Sum256([]byte(msg))
	noZ, err := sm2.SignASN1(rand.Reader, priv, d[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), raw...)
	tampered[7] ^= 1
	for name, c := range map[string]struct {
		msg string
		sig []byte
	}{
		"another user ID":      {msg, otherUID},
		"another string":       {msg + "x", sig},
		"no Z value":           {msg, noZ},
		"tampered r||s":        {msg, tampered},
		"empty":                {msg, nil},
		"r||s with a byte cut": {msg, raw[:63]},
	} {
		if k.Verify([]byte(c.msg), c.sig) {
			t.Errorf("%s: accepted", name)
		}
	}
	// another key's signature
	other, _ := sm2.GenerateKey(rand.Reader)
	otherSig, _ := reqsig.Sign(other, msg)
	if osig, _ := reqsig.DecodeSignature(otherSig); k.Verify([]byte(msg), osig) {
		t.Fatal("another SM2 key's signature accepted")
	}
	// A P-256 ECDSA signature does not verify as SM2 (nor the other way).
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ek, _ := reqsig.ParseKey(mustPEM(t, p256.Public()))
	if ek.Verify([]byte(msg), sig) {
		t.Fatal("an SM2 signature verified with a P-256 key")
	}
	// Rollover: an SM2 key beside an ECDSA key; the same key twice refused.
	keys, err := reqsig.ParseKeys([]string{mustPEM(t, p256.Public()), pemText})
	if err != nil || len(keys) != 2 || keys[1].Algorithm != reqsig.AlgSM2 {
		t.Fatalf("rollover to SM2: %v %v", keys, err)
	}
	if _, err := reqsig.ParseKeys([]string{pemText, pemText}); err == nil {
		t.Fatal("the same SM2 key twice accepted")
	}
}

// TestSM2KeyRefusals: the checks of the other algorithms hold for SM2
// keys: the point on the curve, not the identity, the key what its
// algorithm says; each refused with the reasons the other algorithms'
// keys get.
func TestSM2KeyRefusals(t *testing.T) {
	priv, _ := sm2.GenerateKey(rand.Reader)
	pt := sm2Point(t, &priv.PublicKey)
	offCurve := append([]byte(nil), pt...)
	offCurve[64] ^= 1
	identity := make([]byte, 65)
	identity[0] = 4
	tooBig := append([]byte{4}, make([]byte, 64)...)
	p := sm2.P256().Params().P
	p.FillBytes(tooBig[1:33]) // x = p: not reduced
	compressed := append([]byte{2 + pt[64]&1}, pt[1:33]...)
	good := mustPEM(t, &priv.PublicKey)
	block, _ := pem.Decode([]byte(good))
	truncated := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes[:len(block.Bytes)-5]}))
	for name, c := range map[string]struct {
		text, reason string
	}{
		// the SM2 point said to be a P-256 key: not on P-256
		"SM2 point marked P-256": {spki(t, oidECPublicKey, oidP256, pt), reqsig.ReasonKeyInvalid},
		// the SM2 algorithm with the P-256 curve
		"SM2 algorithm, P-256 curve": {spki(t, oidSM2, oidP256, pt), reqsig.ReasonKeyInvalid},
		"off the curve":              {spki(t, oidECPublicKey, oidSM2, offCurve), reqsig.ReasonKeyInvalid},
		"identity":                   {spki(t, oidECPublicKey, oidSM2, identity), reqsig.ReasonKeyInvalid},
		"identity (one zero byte)":   {spki(t, oidECPublicKey, oidSM2, []byte{0}), reqsig.ReasonKeyInvalid},
		"coordinate not reduced":     {spki(t, oidECPublicKey, oidSM2, tooBig), reqsig.ReasonKeyInvalid},
		"compressed":                 {spki(t, oidECPublicKey, oidSM2, compressed), reqsig.ReasonKeyInvalid},
		"truncated":                  {truncated, reqsig.ReasonKeyInvalid},
		"private key":                {"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", reqsig.ReasonKeyInvalid},
	} {
		_, err := reqsig.ParseKey(c.text)
		ae, ok := apierr.As(err)
		if !ok || ae.Reason != c.reason || ae.Code != apierr.InvalidArgument || ae.Message == "" {
			t.Errorf("%s: err = %v, want %s", name, err, c.reason)
		}
	}
	// An SM2 key is no longer "unsupported"; a curve UIAS does not take
	// still is (secp256k1).
	secp256k1 := []int{1, 3, 132, 0, 10}
	if _, err := reqsig.ParseKey(spki(t, oidECPublicKey, secp256k1, pt)); err == nil {
		t.Fatal("secp256k1 accepted")
	} else if ae, _ := apierr.As(err); ae.Reason != reqsig.ReasonKeyUnsupported {
		t.Fatalf("secp256k1: %v", err)
	}
}

// TestSM2Answers: with SM2 keys, the signer signs the answers to the
// applications its AlgorithmOf names SM2 with SM2, publishes the SM2 keys
// as EC JWKs (crv SM2, x, y) after the Ed25519 keys, and a verifier of the
// published set checks both; a store error fails the signing.
func TestSM2Answers(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	s, err := reqsig.NewResponseSigner("s1", map[string]ed25519.PrivateKey{"s1": ed})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := sm2.GenerateKey(rand.Reader)
	b, _ := sm2.GenerateKey(rand.Reader)
	if _, err := s.WithSM2("sm2:s9", map[string]*sm2.PrivateKey{"sm2:s1": a}); err == nil {
		t.Fatal("an unknown active SM2 key accepted")
	}
	if _, err := s.WithSM2("s1", map[string]*sm2.PrivateKey{"s1": a}); err == nil {
		t.Fatal("an SM2 key id clashing with an Ed25519 key's accepted")
	}
	if s.SM2() {
		t.Fatal("SM2 keys set by a refused WithSM2")
	}
	if _, err := s.WithSM2("sm2:s2", map[string]*sm2.PrivateKey{"sm2:s1": a, "sm2:s2": b}); err != nil {
		t.Fatal(err)
	}
	storeDown := errors.New("store down")
	s.AlgorithmOf(func(_ context.Context, appID string) (string, error) {
		switch appID {
		case "sm2-app":
			return reqsig.AlgSM2, nil
		case "down":
			return "", storeDown
		}
		return reqsig.AlgEd25519, nil
	})
	pub := s.PublicKeys()
	if len(pub) != 3 || pub[0].KeyID != "s1" || pub[1].KeyID != "sm2:s2" || !pub[1].Active || pub[2].KeyID != "sm2:s1" || pub[2].Active ||
		pub[1].Kty != "EC" || pub[1].Crv != "SM2" || pub[1].Alg != reqsig.AlgSM2 || pub[1].Y == "" || pub[0].Y != "" {
		t.Fatalf("published keys: %+v", pub)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": append(pub, reqsig.ResponseKey{KeyID: "later", Kty: "RSA", X: "?"})})
	v, err := reqsig.ParseResponseKeys(jwks)
	if err != nil {
		t.Fatalf("%v: %s", err, jwks)
	}
	body := []byte(`{"result_code":0}`)
	sum := sha256.Sum256(body)
	nonce := "nonce-0123456789ab"
	sig, err := s.SignResponse(context.Background(), "sm2-app", "POST /v1/authenticate", nonce, hex.EncodeToString(sum[:]))
	if err != nil || sig.KeyID != "sm2:s2" {
		t.Fatalf("SM2 answer: %+v %v", sig, err)
	}
	if _, err := v.Verify("sm2-app", "POST /v1/authenticate", nonce, body, sig); err != nil {
		t.Fatalf("SM2 answer refused: %v", err)
	}
	// the signature is SM2 with the default user ID, DER, of the string
	raw, _ := base64.StdEncoding.DecodeString(sig.Signature)
	msg := reqsig.ResponseStringToSign("sm2-app", "POST /v1/authenticate", nonce, sig.Timestamp, hex.EncodeToString(sum[:]))
	if !sm2.VerifyASN1WithSM2(&b.PublicKey, []byte("1234567812345678"), []byte(msg), raw) {
		t.Fatal("not an SM2 signature with the default user ID")
	}
	if _, err := v.Verify("sm2-app", "POST /v1/authenticate", nonce, append(body, ' '), sig); !errors.Is(err, reqsig.ErrResponseBadSignature) {
		t.Fatalf("tampered SM2 answer: %v", err)
	}
	if _, err := v.Verify("other-app", "POST /v1/authenticate", nonce, body, sig); !errors.Is(err, reqsig.ErrResponseBadSignature) {
		t.Fatalf("SM2 answer for another application: %v", err)
	}
	// an SM2 signature presented under the Ed25519 key's id
	if _, err := v.Verify("sm2-app", "POST /v1/authenticate", nonce, body, reqsig.ResponseSignature{Signature: sig.Signature, KeyID: "s1",
		Timestamp: sig.Timestamp}); !errors.Is(err, reqsig.ErrResponseBadSignature) {
		t.Fatalf("SM2 signature under the Ed25519 kid: %v", err)
	}
	// the other applications: Ed25519
	ed1, err := s.SignResponse(context.Background(), "ed-app", "POST /v1/authenticate", nonce, hex.EncodeToString(sum[:]))
	if err != nil || ed1.KeyID != "s1" {
		t.Fatalf("Ed25519 answer: %+v %v", ed1, err)
	}
	if _, err := v.Verify("ed-app", "POST /v1/authenticate", nonce, body, ed1); err != nil {
		t.Fatalf("Ed25519 answer refused: %v", err)
	}
	if _, err := s.SignResponse(context.Background(), "down", "POST /v1/authenticate", nonce, hex.EncodeToString(sum[:])); !errors.Is(err, storeDown) {
		t.Fatalf("a failed algorithm lookup: %v", err)
	}
	if _, err := s.SignWith("RSA", "a", "t", nonce, hex.EncodeToString(sum[:])); err == nil {
		t.Fatal("an unknown algorithm signed")
	}
	// Keys that do not decode.
	for name, k := range map[string]reqsig.ResponseKey{
		"SM2 without y":          {KeyID: "k", Kty: "EC", Crv: "SM2", X: pub[1].X},
		"SM2 off the curve":      {KeyID: "k", Kty: "EC", Crv: "SM2", X: pub[1].X, Y: pub[2].Y},
		"SM2 without kid":        {Kty: "EC", Crv: "SM2", X: pub[1].X, Y: pub[1].Y},
		"only unknown key types": {KeyID: "k", Kty: "RSA"},
	} {
		if _, err := reqsig.NewResponseVerifier([]reqsig.ResponseKey{k}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Without AlgorithmOf every answer is Ed25519.
	s2, _ := reqsig.NewResponseSigner("s1", map[string]ed25519.PrivateKey{"s1": ed})
	_, _ = s2.WithSM2("sm2:s1", map[string]*sm2.PrivateKey{"sm2:s1": a})
	if sig, _ := s2.SignResponse(context.Background(), "sm2-app", "t", nonce, hex.EncodeToString(sum[:])); sig.KeyID != "s1" {
		t.Fatalf("without AlgorithmOf: %+v", sig)
	}
}
