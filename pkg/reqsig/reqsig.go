// Package reqsig is application request signatures (JR/T 0185-2020: A2
// interfaces are signed for integrity and non-repudiation): the keys an
// application registers (public keys only: UIAS never holds the private
// key), the string a request's signature covers, and its verification.
//
// The string to sign (StringToSign) is, lines joined by "\n" with no
// trailing newline:
//
//	UIAS-SIG-V1
//	<App_ID>
//	<target>
//	<timestamp: unix seconds, decimal>
//	<nonce: 16-64 of [A-Za-z0-9_-]>
//	<lower case hex SHA-256 of the request's bytes>
//
// Over gRPC the target is the full method ("/uias.identity.v1.AuthService/
// Authenticate") and the bytes are the request message's protobuf encoding
// as sent (the server hashes the bytes it received, it never re-encodes).
// Over REST the target is the HTTP method, a space and the request target
// as sent ("POST /v1/auth/authenticate?x=1") and the bytes are the HTTP
// body (empty: the SHA-256 of nothing).
//
// Supported keys (PEM "PUBLIC KEY", SubjectPublicKeyInfo) and signatures:
// ECDSA P-256 with SHA-256 and P-384 with SHA-384 (ASN.1 DER or the fixed
// r||s form of WebCrypto and JWS), Ed25519 (of the string itself), RSA of
// 2048 to 8192 bits with SHA-256 (RSASSA-PKCS1-v1_5 or RSASSA-PSS, any salt
// length), SM2 with SM3 (GB/T 32918.2, GB/T 35276: the signer's user ID
// the default "1234567812345678"; ASN.1 DER or the fixed 64-byte r||s
// form). The signature is sent base64 (standard or URL alphabet, padded
// or not).
//
// The package uses the standard library, github.com/emmansun/gmsm for SM2
// and pkg/apierr for its refusals.
package reqsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strconv"
	"strings"
	"time"

	"filippo.io/edwards25519"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/uias/uias/pkg/apierr"
)

// Version is the first line of the string to sign.
const Version = "UIAS-SIG-V1"

// Limits.
const (
	// MaxKeys is how many keys an application has at once (two: a key
	// being rolled over and its successor).
	MaxKeys = 2
	// MaxSkew is how far a signed request's timestamp may be from the
	// server's clock, either way; a nonce is remembered this long on each
	// side of it (2 * MaxSkew in all).
	MaxSkew = 300 * time.Second
	// MinNonceLen and MaxNonceLen bound the nonce.
	MinNonceLen, MaxNonceLen = 16, 64
	// MaxSignatureLen bounds the base64 signature (an RSA 4096 signature
	// is 684 characters).
	MaxSignatureLen = 1400
	// MinRSABits and MaxRSABits bound RSA keys (4096 at most: a larger
	// key's verification costs an App_Secret holder's garbage calls ~5 ms
	// of CPU each).
	MinRSABits, MaxRSABits = 2048, 4096
	// MaxKeyPEMLen bounds one key's PEM text.
	MaxKeyPEMLen = 4096
)

// The algorithms of registered keys.
const (
	AlgECDSAP256 = "ECDSA_P256_SHA256"
	AlgECDSAP384 = "ECDSA_P384_SHA384"
	AlgEd25519   = "ED25519"
	AlgRSA       = "RSA_SHA256" // PKCS#1 v1.5 or PSS
	// AlgSM2 is SM2 with SM3 (GB/T 32918.2-2016, GB/T 35276-2017) and
	// the signer's user ID SM2UserID.
	AlgSM2 = "SM2_SM3"
)

// SM2UserID is the user ID (distinguishing identifier) of SM2 signatures,
// which enters the hash as the signer's Z value: the default of GB/T
// 35276-2017 §5.3 and of GmSSL, sm-crypto and BouncyCastle. OpenSSL 3 does
// not apply it by itself: with OpenSSL it must be set explicitly (`openssl
// dgst -sigopt distid:1234567812345678`, EVP_PKEY_CTX_set1_id), else the
// signature does not verify (sec31b L4).
const SM2UserID = "1234567812345678"

// The reasons of refused keys.
const (
	ReasonKeyInvalid     = "SIGNING_KEY_INVALID"
	ReasonKeyWeak        = "SIGNING_KEY_WEAK"
	ReasonKeyUnsupported = "SIGNING_KEY_UNSUPPORTED"
	ReasonTooManyKeys    = "SIGNING_KEYS_TOO_MANY"
	ReasonKeyRequired    = "SIGNING_KEY_REQUIRED"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonKeyInvalid, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "An application signing key is not one PEM PUBLIC KEY block (SubjectPublicKeyInfo) that parses, or is given twice."},
		apierr.Reason{Name: ReasonKeyWeak, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "An application signing key is one signatures could be forged for, or too costly to verify: an RSA key of fewer than 2048 or more than 4096 bits, an RSA modulus with a small factor or an exponent below 65537, an Ed25519 point of small order."},
		apierr.Reason{Name: ReasonKeyUnsupported, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "An application signing key is of an algorithm UIAS does not verify: use ECDSA P-256 or P-384, Ed25519, RSA (2048 bits or more) or SM2."},
		apierr.Reason{Name: ReasonTooManyKeys, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "More than two signing keys for one application (two at once: the key being rolled over and its successor)."},
		apierr.Reason{Name: ReasonKeyRequired, Code: apierr.FailedPrecondition,
			Doc: "Signed requests are required of an application that has no signing key: register a key first (uias ctl app update --signing-key)."},
	)
}

// Key is a registered public key, parsed.
type Key struct {
	Algorithm string
	// Thumbprint is the lower case hex SHA-256 of the key's DER
	// SubjectPublicKeyInfo: what listings show of it.
	Thumbprint string
	// PEM is the key as a PEM PUBLIC KEY block (re-encoded: what is
	// stored and shown).
	PEM string
	// NotAfter is when the key stops being accepted (zero: never): the
	// key's validity period, which its registry fixes (JR/T 0185-2020
	// 7.3.4); a signature it makes later is refused.
	NotAfter time.Time
	pub      crypto.PublicKey
}

// ParseKey parses one PEM "PUBLIC KEY" block (surrounding blank space
// allowed, nothing else), or the DER SubjectPublicKeyInfo itself, and
// checks that the key is supported. Its
// refusals are INVALID_ARGUMENT errors with a reason: SIGNING_KEY_INVALID,
// SIGNING_KEY_WEAK, SIGNING_KEY_UNSUPPORTED.
func ParseKey(text string) (*Key, error) {
	if len(text) > MaxKeyPEMLen {
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "the signing key is longer than "+strconv.Itoa(MaxKeyPEMLen)+" bytes")
	}
	b, rest := pem.Decode([]byte(strings.TrimSpace(text)))
	if b == nil && len(text) > 0 && text[0] == 0x30 { // DER: an ASN.1 SEQUENCE
		b, rest = &pem.Block{Type: "PUBLIC KEY", Bytes: []byte(text)}, nil
	}
	switch {
	case b == nil:
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "the signing key is not PEM: give a -----BEGIN PUBLIC KEY----- block")
	case b.Type != "PUBLIC KEY":
		msg := "the signing key is a PEM " + b.Type + " block: give the public key (-----BEGIN PUBLIC KEY-----, SubjectPublicKeyInfo)"
		if strings.Contains(b.Type, "PRIVATE") {
			msg += "; never hand out the private key"
		}
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, msg)
	case len(strings.TrimSpace(string(rest))) != 0:
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "give one signing key per key: the text has more than one PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		if namesSM2(b.Bytes) {
			// The standard library knows no SM2: gmsm's parser, and the
			// same checks of the point as for the other curves.
			return parseSM2(b.Bytes)
		}
		if strings.Contains(err.Error(), "unknown public key algorithm") || strings.Contains(err.Error(), "unsupported elliptic curve") {
			return nil, apierr.New(apierr.InvalidArgument, ReasonKeyUnsupported, "the signing key's algorithm is not supported: use ECDSA P-256 or P-384, Ed25519, RSA or SM2")
		}
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "the signing key does not parse as a SubjectPublicKeyInfo")
	}
	k := &Key{pub: pub}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			k.Algorithm = AlgECDSAP256
		case elliptic.P384():
			k.Algorithm = AlgECDSAP384
		default:
			return nil, apierr.New(apierr.InvalidArgument, ReasonKeyUnsupported,
				"the signing key's curve "+p.Curve.Params().Name+" is not supported: use P-256 or P-384")
		}
	case ed25519.PublicKey:
		if err := checkEd25519(p); err != nil {
			return nil, err
		}
		k.Algorithm = AlgEd25519
	case *rsa.PublicKey:
		if n := p.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return nil, apierr.New(apierr.InvalidArgument, ReasonKeyWeak,
				"the RSA signing key has "+strconv.Itoa(n)+" bits: "+strconv.Itoa(MinRSABits)+" to "+strconv.Itoa(MaxRSABits)+" are accepted")
		}
		if err := checkRSA(p); err != nil {
			return nil, err
		}
		k.Algorithm = AlgRSA
	default:
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyUnsupported,
			"the signing key's algorithm is not supported: use ECDSA P-256 or P-384, Ed25519, RSA or SM2")
	}
	k.setDER(b.Bytes)
	return k, nil
}

// setDER sets k's thumbprint and PEM from its DER SubjectPublicKeyInfo.
func (k *Key) setDER(der []byte) {
	sum := sha256.Sum256(der)
	k.Thumbprint = hex.EncodeToString(sum[:])
	k.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// oidSM2 is the SM2 curve (GB/T 33560, 1.2.156.10197.1.301), named either
// as the algorithm of a SubjectPublicKeyInfo or, the usual form (OpenSSL,
// GB/T 20518 certificates), as the curve of an id-ecPublicKey.
var oidSM2 = []byte{0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d}

// namesSM2 reports whether the SubjectPublicKeyInfo der names the SM2
// curve, as its algorithm or as its algorithm's parameter.
func namesSM2(der []byte) bool {
	in := cryptobyte.String(der)
	var spki, alg cryptobyte.String
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !spki.ReadASN1(&alg, cbasn1.SEQUENCE) {
		return false
	}
	var algOID, param cryptobyte.String
	if !alg.ReadASN1(&algOID, cbasn1.OBJECT_IDENTIFIER) {
		return false
	}
	if bytes.Equal(algOID, oidSM2) {
		return true
	}
	return alg.ReadASN1(&param, cbasn1.OBJECT_IDENTIFIER) && bytes.Equal(param, oidSM2)
}

// parseSM2 parses an SM2 SubjectPublicKeyInfo (gmsm's smx509) and checks
// its point as the standard library checks the NIST curves': the
// uncompressed encoding of a point on the curve (the identity has none).
func parseSM2(der []byte) (*Key, error) {
	pub, err := smx509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid,
			"the SM2 signing key does not parse as a SubjectPublicKeyInfo (an uncompressed point on the SM2 curve)")
	}
	p, ok := pub.(*ecdsa.PublicKey)
	if !ok || !sm2.IsSM2PublicKey(p) {
		return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "the SM2 signing key names the SM2 curve but is not an SM2 public key")
	}
	if err := checkSM2(p); err != nil {
		return nil, err
	}
	k := &Key{Algorithm: AlgSM2, pub: p}
	k.setDER(der)
	return k, nil
}

// checkSM2 holds an SM2 public key to GB/T 32918.1-2016 §6.2: a point on
// the curve with coordinates below p, not the identity (the ECDH form's
// checks, sm2.PublicKeyToECDH).
func checkSM2(p *ecdsa.PublicKey) error {
	if _, err := sm2.PublicKeyToECDH(p); err != nil {
		return apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "the SM2 signing key is not a point of the SM2 curve (or is its identity)")
	}
	return nil
}

// checkEd25519 refuses an Ed25519 public key for which signatures can be
// made without a private key: a point of small order (the identity and
// the other torsion points: some fixed signatures verify for any message),
// or a non-canonical encoding.
func checkEd25519(pub ed25519.PublicKey) error {
	pt, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil || !bytes.Equal(pt.Bytes(), pub) {
		return apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "the Ed25519 signing key is not a valid point (or not in its canonical encoding)")
	}
	if new(edwards25519.Point).MultByCofactor(pt).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return apierr.New(apierr.InvalidArgument, ReasonKeyWeak, "the Ed25519 signing key is a point of small order: signatures could be made without a private key")
	}
	return nil
}

// smallPrimes are the odd primes below 2000, for checkRSA.
var smallPrimes = func() []int64 {
	var ps []int64
	for n := int64(3); n < 2000; n += 2 {
		prime := true
		for _, p := range ps {
			if p*p > n {
				break
			}
			if n%p == 0 {
				prime = false
				break
			}
		}
		if prime {
			ps = append(ps, n)
		}
	}
	return ps
}()

// checkRSA is a partial public-key validation (NIST SP 800-89, FIPS
// 186-5): the modulus odd, with no prime factor below 2000 and not a
// perfect square; the exponent odd and at least 65537. A modulus with a
// small factor lets anyone forge signatures for it.
func checkRSA(p *rsa.PublicKey) error {
	weak := func(why string) error {
		return apierr.New(apierr.InvalidArgument, ReasonKeyWeak, "the RSA signing key is not a sound RSA key: "+why)
	}
	if p.E < 65537 || p.E%2 == 0 {
		return weak("its public exponent must be odd and at least 65537")
	}
	if p.N.Bit(0) == 0 {
		return weak("its modulus is even")
	}
	var m big.Int
	for _, q := range smallPrimes {
		if m.Mod(p.N, big.NewInt(q)).Sign() == 0 {
			return weak("its modulus has a small factor")
		}
	}
	if r := new(big.Int).Sqrt(p.N); new(big.Int).Mul(r, r).Cmp(p.N) == 0 {
		return weak("its modulus is a perfect square")
	}
	return nil
}

// ParseKeys parses an application's keys (at most MaxKeys, no key twice).
func ParseKeys(texts []string) ([]*Key, error) {
	if len(texts) > MaxKeys {
		return nil, apierr.New(apierr.InvalidArgument, ReasonTooManyKeys,
			"an application has at most "+strconv.Itoa(MaxKeys)+" signing keys: remove the old key once every instance signs with the new one")
	}
	keys := make([]*Key, 0, len(texts))
	for _, t := range texts {
		k, err := ParseKey(t)
		if err != nil {
			return nil, err
		}
		for _, o := range keys {
			if o.Thumbprint == k.Thumbprint {
				return nil, apierr.New(apierr.InvalidArgument, ReasonKeyInvalid, "the same signing key is given twice")
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Verify reports whether sig is k's signature of msg.
func (k *Key) Verify(msg, sig []byte) bool {
	if k.Algorithm == AlgSM2 {
		p, ok := k.pub.(*ecdsa.PublicKey)
		return ok && VerifySM2(p, msg, sig)
	}
	switch p := k.pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(p, msg, sig)
	case *ecdsa.PublicKey:
		var digest []byte
		size := 32
		if k.Algorithm == AlgECDSAP384 {
			d := sha512.Sum384(msg)
			digest, size = d[:], 48
		} else {
			d := sha256.Sum256(msg)
			digest = d[:]
		}
		if len(sig) == 2*size { // r||s (WebCrypto, JWS)
			r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
			if ecdsa.Verify(p, digest, r, s) {
				return true
			}
		}
		return ecdsa.VerifyASN1(p, digest, sig)
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		if rsa.VerifyPKCS1v15(p, crypto.SHA256, d[:], sig) == nil {
			return true
		}
		return rsa.VerifyPSS(p, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	return false
}

// VerifySM2 reports whether sig is an SM2 signature (SM3, user ID
// SM2UserID) of msg by pub: ASN.1 DER, or the fixed 64-byte r||s.
func VerifySM2(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) == 64 { // r||s (GM/T 0009 raw form, sm-crypto's default)
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1BigInt(new(big.Int).SetBytes(sig[:32]))
			b.AddASN1BigInt(new(big.Int).SetBytes(sig[32:]))
		})
		if der, err := b.Bytes(); err == nil && sm2.VerifyASN1WithSM2(pub, []byte(SM2UserID), msg, der) {
			return true
		}
	}
	return sm2.VerifyASN1WithSM2(pub, []byte(SM2UserID), msg, sig)
}

// StringToSign is the string a request's signature covers (see the
// package documentation). bodySHA256 is the lower case hex SHA-256 of the
// request's bytes.
func StringToSign(appID, target, timestamp, nonce, bodySHA256 string) string {
	return Version + "\n" + appID + "\n" + target + "\n" + timestamp + "\n" + nonce + "\n" + bodySHA256
}

// HTTPTarget is the target line of a REST request: its method, a space
// and its request target as sent (path and query, e.g. r.RequestURI).
func HTTPTarget(method, requestURI string) string { return method + " " + requestURI }

// ValidNonce reports whether s is a well-formed nonce: 16 to 64 of
// [A-Za-z0-9_-].
func ValidNonce(s string) bool {
	if len(s) < MinNonceLen || len(s) > MaxNonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseTimestamp parses a timestamp (unix seconds, decimal digits only).
func ParseTimestamp(s string) (time.Time, bool) {
	if s == "" || len(s) > 12 {
		return time.Time{}, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// DecodeSignature decodes a base64 signature: standard or URL alphabet,
// padded or not.
func DecodeSignature(s string) ([]byte, bool) {
	if s == "" || len(s) > MaxSignatureLen {
		return nil, false
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, false
	}
	return b, true
}

// Sign signs the string to sign with priv (an *ecdsa.PrivateKey,
// ed25519.PrivateKey, *rsa.PrivateKey or *sm2.PrivateKey; RSA signs
// PKCS#1 v1.5, SM2 ASN.1 DER with the user ID SM2UserID) and
// returns the signature in standard base64: what a client sends. It is
// for tests and Go clients; docs/integrators.md shows the same in a few
// lines of the standard library.
func Sign(priv crypto.Signer, stringToSign string) (string, error) {
	msg := []byte(stringToSign)
	var (
		sig []byte
		err error
	)
	switch p := priv.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(p, msg)
	case *sm2.PrivateKey:
		sig, err = p.Sign(rand.Reader, msg, sm2.NewSM2SignerOption(true, []byte(SM2UserID)))
	case *ecdsa.PrivateKey:
		if sm2.IsSM2PublicKey(&p.PublicKey) {
			sk, serr := new(sm2.PrivateKey).FromECPrivateKey(p)
			if serr != nil {
				return "", serr
			}
			return Sign(sk, stringToSign)
		}
		if p.Curve == elliptic.P384() {
			d := sha512.Sum384(msg)
			sig, err = ecdsa.SignASN1(rand.Reader, p, d[:])
		} else {
			d := sha256.Sum256(msg)
			sig, err = ecdsa.SignASN1(rand.Reader, p, d[:])
		}
	default:
		d := sha256.Sum256(msg)
		sig, err = priv.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// PublicKeyPEM is pub as a PEM PUBLIC KEY block (for tests and tools).
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	marshal := x509.MarshalPKIXPublicKey
	if sm2.IsSM2PublicKey(pub) {
		marshal = smx509.MarshalPKIXPublicKey
	}
	der, err := marshal(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}
