package reqsig

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/emmansun/gmsm/sm2"
)

// Signed answers (JR/T 0185-2020 §7.2.2: for A2 interfaces both sides
// sign). UIAS signs its answer to every call whose request signature it
// verified, with an Ed25519 key of its own derived from its key ring
// (crypto.Ring.Ed25519(ResponseKeyPurpose)), or, where the operator
// offers SM2 and the application signs with SM2 (docs/adr/0043), with an
// SM2 key derived the same way (crypto.Ring.SM2); the public keys are
// published (GET /v1/keys/response-signing, `uias ctl keys
// response-signing`).
//
// The response string to sign is, lines joined by "\n" with no trailing
// newline:
//
//	UIAS-SIG-V1-RESP
//	<App_ID>
//	<target: as in the request's string to sign>
//	<the request's nonce>
//	<timestamp of the answer: unix seconds, decimal>
//	<lower case hex SHA-256 of the answer's bytes as sent>
//
// Over gRPC the bytes are the response message's protobuf encoding as sent
// and the signature travels in the trailer (x-uias-response-signature,
// -key-id, -timestamp); over REST they are the HTTP body and the values are
// the headers X-Uias-Response-Signature, -Key-Id and -Timestamp. The
// request's nonce binds an answer to its request: an answer recorded for
// another request does not verify.

// ResponseVersion is the first line of the response string to sign.
const ResponseVersion = "UIAS-SIG-V1-RESP"

// ResponseKeyPurpose is the purpose under which the response signing keys
// are derived from the key ring's signing keys (crypto.Ring.Ed25519).
const ResponseKeyPurpose = "response signature"

// ResponseStringToSign is the string an answer's signature covers (see
// above). bodySHA256 is the lower case hex SHA-256 of the answer's bytes.
func ResponseStringToSign(appID, target, nonce, timestamp, bodySHA256 string) string {
	return ResponseVersion + "\n" + appID + "\n" + target + "\n" + nonce + "\n" + timestamp + "\n" + bodySHA256
}

// ResponseSignature is what accompanies a signed answer.
type ResponseSignature struct {
	// Signature is the Ed25519 signature, or the SM2 signature (SM3, user
	// ID SM2UserID, ASN.1 DER), standard base64.
	Signature string
	// KeyID names the key that signed (ResponseKey.KeyID).
	KeyID string
	// Timestamp is when it was signed, unix seconds (decimal).
	Timestamp string
}

// ResponseSigner signs answers with the active one of a set of Ed25519
// keys (the ring's, derived for ResponseKeyPurpose) and, once WithSM2
// gave it SM2 keys, the answers to the applications its AlgorithmOf
// function names SM2 with the active one of those.
type ResponseSigner struct {
	active    string
	keys      map[string]ed25519.PrivateKey
	sm2Active string
	sm2Keys   map[string]*sm2.PrivateKey
	sm2Points map[string][]byte // the public keys, uncompressed
	algOf     func(ctx context.Context, appID string) (string, error)
	now       func() time.Time
}

// NewResponseSigner returns a signer over keys (by id) signing with
// active.
func NewResponseSigner(active string, keys map[string]ed25519.PrivateKey) (*ResponseSigner, error) {
	if _, ok := keys[active]; !ok {
		return nil, fmt.Errorf("reqsig: the active response signing key %q is not among the keys", active)
	}
	return &ResponseSigner{active: active, keys: keys, now: time.Now}, nil
}

// WithSM2 gives s SM2 keys (by id, ids apart from the Ed25519 keys'),
// signing with active, and publishes them. Set it, and AlgorithmOf,
// before s signs.
func (s *ResponseSigner) WithSM2(active string, keys map[string]*sm2.PrivateKey) (*ResponseSigner, error) {
	if _, ok := keys[active]; !ok {
		return nil, fmt.Errorf("reqsig: the active SM2 response signing key %q is not among the keys", active)
	}
	points := make(map[string][]byte, len(keys))
	for id, k := range keys {
		if _, ok := s.keys[id]; ok {
			return nil, fmt.Errorf("reqsig: SM2 response signing key id %q is an Ed25519 key's too", id)
		}
		pub, err := sm2.PublicKeyToECDH(&k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("reqsig: SM2 response signing key %q: %w", id, err)
		}
		points[id] = pub.Bytes()
	}
	s.sm2Active, s.sm2Keys, s.sm2Points = active, keys, points
	return s, nil
}

// SM2 reports whether s has SM2 keys.
func (s *ResponseSigner) SM2() bool { return s.sm2Keys != nil }

// AlgorithmOf sets the function that names the algorithm of the answers to
// an application, AlgEd25519 or AlgSM2 (SignResponse; its error fails
// the signing: the call is answered UNAVAILABLE). Without it, or without
// SM2 keys, every answer is Ed25519.
func (s *ResponseSigner) AlgorithmOf(f func(ctx context.Context, appID string) (string, error)) *ResponseSigner {
	s.algOf = f
	return s
}

// Sign signs the answer to appID's call of target with nonce, whose bytes
// hash to bodySHA256 (lower case hex), at the time now, with Ed25519.
func (s *ResponseSigner) Sign(appID, target, nonce, bodySHA256 string) ResponseSignature {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	sig := ed25519.Sign(s.keys[s.active], []byte(ResponseStringToSign(appID, target, nonce, ts, bodySHA256)))
	return ResponseSignature{Signature: base64.StdEncoding.EncodeToString(sig), KeyID: s.active, Timestamp: ts}
}

// SignWith is Sign with the algorithm alg: AlgEd25519 or, when s has SM2
// keys, AlgSM2 (an error otherwise).
func (s *ResponseSigner) SignWith(alg, appID, target, nonce, bodySHA256 string) (ResponseSignature, error) {
	switch {
	case alg == AlgEd25519 || alg == "":
		return s.Sign(appID, target, nonce, bodySHA256), nil
	case alg == AlgSM2 && s.sm2Keys != nil:
		ts := strconv.FormatInt(s.now().Unix(), 10)
		sig, err := s.sm2Keys[s.sm2Active].Sign(rand.Reader, []byte(ResponseStringToSign(appID, target, nonce, ts, bodySHA256)),
			sm2.NewSM2SignerOption(true, []byte(SM2UserID)))
		if err != nil {
			return ResponseSignature{}, err
		}
		return ResponseSignature{Signature: base64.StdEncoding.EncodeToString(sig), KeyID: s.sm2Active, Timestamp: ts}, nil
	}
	return ResponseSignature{}, fmt.Errorf("reqsig: no response signing key of algorithm %q", alg)
}

// PublicKeys are the public keys of the signer: the Ed25519 keys, the
// active one first, then by id; then the SM2 keys, likewise.
func (s *ResponseSigner) PublicKeys() []ResponseKey {
	order := func(active string, ids []string) []string {
		slices.Sort(ids)
		out := []string{active}
		for _, id := range ids {
			if id != active {
				out = append(out, id)
			}
		}
		return out
	}
	var out []ResponseKey
	for _, id := range order(s.active, slices.Collect(maps.Keys(s.keys))) {
		out = append(out, NewResponseKey(id, s.keys[id].Public().(ed25519.PublicKey), id == s.active))
	}
	if s.sm2Keys != nil {
		for _, id := range order(s.sm2Active, slices.Collect(maps.Keys(s.sm2Keys))) {
			out = append(out, NewSM2ResponseKey(id, s.sm2Points[id], id == s.sm2Active))
		}
	}
	return out
}

// ResponseKey is a published response signing key: an RFC 8037 OKP JWK
// (Ed25519), or an EC JWK of the SM2 curve ("kty": "EC", "crv": "SM2",
// "x" and "y" the point's coordinates, 32 bytes each, base64url; "alg":
// "SM2_SM3"): what GET /v1/keys/response-signing lists under "keys".
type ResponseKey struct {
	KeyID  string `json:"kid"`
	Kty    string `json:"kty"`
	Crv    string `json:"crv"`
	X      string `json:"x"`
	Y      string `json:"y,omitempty"`
	Use    string `json:"use,omitempty"`
	Alg    string `json:"alg,omitempty"`
	Active bool   `json:"active,omitempty"`
}

// NewResponseKey is the published form of pub, key id.
func NewResponseKey(id string, pub ed25519.PublicKey, active bool) ResponseKey {
	return ResponseKey{KeyID: id, Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
		Use: "sig", Alg: "EdDSA", Active: active}
}

// NewSM2ResponseKey is the published form of the SM2 public key point
// (uncompressed: 0x04, x, y; 65 bytes), key id.
func NewSM2ResponseKey(id string, point []byte, active bool) ResponseKey {
	if len(point) != 65 {
		return ResponseKey{KeyID: id, Kty: "EC", Crv: "SM2", Use: "sig", Alg: AlgSM2, Active: active}
	}
	return ResponseKey{KeyID: id, Kty: "EC", Crv: "SM2", X: base64.RawURLEncoding.EncodeToString(point[1:33]),
		Y: base64.RawURLEncoding.EncodeToString(point[33:]), Use: "sig", Alg: AlgSM2, Active: active}
}

// Errors of ResponseVerifier.Verify.
var (
	// ErrResponseUnsigned: the answer carries no signature (or part of one).
	ErrResponseUnsigned = errors.New("reqsig: the answer is not signed")
	// ErrResponseUnknownKey: the answer names a key that is not published.
	ErrResponseUnknownKey = errors.New("reqsig: the answer is signed with an unknown key")
	// ErrResponseBadSignature: the signature does not verify (a changed
	// body, another request, another application).
	ErrResponseBadSignature = errors.New("reqsig: the answer's signature does not verify")
)

// ResponseVerifier checks UIAS's answers with the published keys.
type ResponseVerifier struct {
	keys map[string]responseKey
}

// responseKey is one published key: Ed25519 or SM2.
type responseKey struct {
	ed  ed25519.PublicKey
	sm2 *ecdsa.PublicKey
}

// ParseResponseKeys reads the published keys: the JSON of GET
// /v1/keys/response-signing ({"keys": [{"kid", "kty": "OKP", "crv":
// "Ed25519", "x"}, {"kid", "kty": "EC", "crv": "SM2", "x", "y"}, ...]}).
func ParseResponseKeys(jwks []byte) (*ResponseVerifier, error) {
	var set struct {
		Keys []ResponseKey `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("reqsig: the response signing keys: %w", err)
	}
	return NewResponseVerifier(set.Keys)
}

// NewResponseVerifier returns a verifier of keys: Ed25519 OKP keys and
// SM2 EC keys; a key of another type is passed over (a later UIAS may
// publish more), one of these types that does not decode is an error.
func NewResponseVerifier(keys []ResponseKey) (*ResponseVerifier, error) {
	v := &ResponseVerifier{keys: make(map[string]responseKey, len(keys))}
	for _, k := range keys {
		switch {
		case k.KeyID == "":
			return nil, errors.New("reqsig: a response signing key has no kid")
		case k.Kty == "OKP" && k.Crv == "Ed25519":
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("reqsig: response signing key %q: x is not a base64url Ed25519 public key", k.KeyID)
			}
			v.keys[k.KeyID] = responseKey{ed: ed25519.PublicKey(x)}
		case k.Kty == "EC" && k.Crv == "SM2":
			x, errX := base64.RawURLEncoding.DecodeString(k.X)
			y, errY := base64.RawURLEncoding.DecodeString(k.Y)
			if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
				return nil, fmt.Errorf("reqsig: response signing key %q: x and y are not base64url SM2 coordinates", k.KeyID)
			}
			pub, err := sm2.NewPublicKey(append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("reqsig: response signing key %q is not a point of the SM2 curve", k.KeyID)
			}
			v.keys[k.KeyID] = responseKey{sm2: pub}
		}
	}
	if len(v.keys) == 0 {
		return nil, errors.New("reqsig: no Ed25519 or SM2 response signing key")
	}
	return v, nil
}

// Verify checks that sig is UIAS's signature of body, its answer to
// application appID's request to target that carried nonce (over REST
// target is "<METHOD> <request target>", as the request signed; over gRPC
// the full method). The timestamp is returned for the caller's records; it
// is not checked against a clock (the nonce binds the answer to the
// request).
func (v *ResponseVerifier) Verify(appID, target, nonce string, body []byte, sig ResponseSignature) (time.Time, error) {
	if sig.Signature == "" || sig.KeyID == "" || sig.Timestamp == "" {
		return time.Time{}, ErrResponseUnsigned
	}
	pub, ok := v.keys[sig.KeyID]
	if !ok {
		return time.Time{}, fmt.Errorf("%w %q (fetch the published keys again)", ErrResponseUnknownKey, sig.KeyID)
	}
	ts, ok := ParseTimestamp(sig.Timestamp)
	if !ok {
		return time.Time{}, ErrResponseBadSignature
	}
	raw, ok := DecodeSignature(sig.Signature)
	if !ok {
		return time.Time{}, ErrResponseBadSignature
	}
	sum := sha256.Sum256(body)
	msg := []byte(ResponseStringToSign(appID, target, nonce, sig.Timestamp, hex.EncodeToString(sum[:])))
	if pub.sm2 != nil && !VerifySM2(pub.sm2, msg, raw) || pub.sm2 == nil && !ed25519.Verify(pub.ed, msg, raw) {
		return time.Time{}, ErrResponseBadSignature
	}
	return ts, nil
}

// SignResponse signs with the algorithm AlgorithmOf names for appID
// (Ed25519 without SM2 keys): the signature of grpcx.ResponseSigner.
func (s *ResponseSigner) SignResponse(ctx context.Context, appID, target, nonce, bodySHA256 string) (ResponseSignature, error) {
	if s.sm2Keys == nil || s.algOf == nil {
		return s.Sign(appID, target, nonce, bodySHA256), nil
	}
	alg, err := s.algOf(ctx, appID)
	if err != nil {
		return ResponseSignature{}, err
	}
	return s.SignWith(alg, appID, target, nonce, bodySHA256)
}

// The headers of a signed REST answer.
const (
	HeaderResponseSignature = "X-Uias-Response-Signature"
	HeaderResponseKeyID     = "X-Uias-Response-Key-Id"
	HeaderResponseTimestamp = "X-Uias-Response-Timestamp"
)

// VerifyHTTP checks the answer res (whose body, read in full, is body) to
// application appID's signed REST request r (its X-Uias-Nonce, method
// and request target as sent, r.URL.RequestURI()).
func (v *ResponseVerifier) VerifyHTTP(appID string, r *http.Request, res *http.Response, body []byte) (time.Time, error) {
	target := r.URL.RequestURI()
	if r.RequestURI != "" {
		target = r.RequestURI
	}
	return v.Verify(appID, HTTPTarget(r.Method, target), r.Header.Get("X-Uias-Nonce"), body, ResponseSignature{
		Signature: res.Header.Get(HeaderResponseSignature), KeyID: res.Header.Get(HeaderResponseKeyID),
		Timestamp: res.Header.Get(HeaderResponseTimestamp)})
}
