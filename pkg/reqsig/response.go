package reqsig

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Signed answers (JR/T 0185-2020 §7.2.2: for A2 interfaces both sides
// sign). UIAS signs its answer to every call whose request signature it
// verified, with an Ed25519 key of its own derived from its key ring
// (crypto.Ring.Ed25519(ResponseKeyPurpose)); the public keys are published
// (GET /v1/keys/response-signing, `uias ctl keys response-signing`).
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
	// Signature is the Ed25519 signature, standard base64.
	Signature string
	// KeyID names the key that signed (ResponseKey.KeyID).
	KeyID string
	// Timestamp is when it was signed, unix seconds (decimal).
	Timestamp string
}

// ResponseSigner signs answers with the active one of a set of Ed25519
// keys (the ring's, derived for ResponseKeyPurpose).
type ResponseSigner struct {
	active string
	keys   map[string]ed25519.PrivateKey
	now    func() time.Time
}

// NewResponseSigner returns a signer over keys (by id) signing with
// active.
func NewResponseSigner(active string, keys map[string]ed25519.PrivateKey) (*ResponseSigner, error) {
	if _, ok := keys[active]; !ok {
		return nil, fmt.Errorf("reqsig: the active response signing key %q is not among the keys", active)
	}
	return &ResponseSigner{active: active, keys: keys, now: time.Now}, nil
}

// Sign signs the answer to appID's call of target with nonce, whose bytes
// hash to bodySHA256 (lower case hex), at the time now.
func (s *ResponseSigner) Sign(appID, target, nonce, bodySHA256 string) ResponseSignature {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	sig := ed25519.Sign(s.keys[s.active], []byte(ResponseStringToSign(appID, target, nonce, ts, bodySHA256)))
	return ResponseSignature{Signature: base64.StdEncoding.EncodeToString(sig), KeyID: s.active, Timestamp: ts}
}

// PublicKeys are the public keys of the signer, the active one first, then
// by id.
func (s *ResponseSigner) PublicKeys() []ResponseKey {
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		if id != s.active {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = append([]string{s.active}, ids...)
	out := make([]ResponseKey, len(ids))
	for i, id := range ids {
		out[i] = NewResponseKey(id, s.keys[id].Public().(ed25519.PublicKey), id == s.active)
	}
	return out
}

// ResponseKey is a published response signing key: an RFC 8037 OKP JWK
// (what GET /v1/keys/response-signing lists under "keys").
type ResponseKey struct {
	KeyID  string `json:"kid"`
	Kty    string `json:"kty"`
	Crv    string `json:"crv"`
	X      string `json:"x"`
	Use    string `json:"use,omitempty"`
	Alg    string `json:"alg,omitempty"`
	Active bool   `json:"active,omitempty"`
}

// NewResponseKey is the published form of pub, key id.
func NewResponseKey(id string, pub ed25519.PublicKey, active bool) ResponseKey {
	return ResponseKey{KeyID: id, Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub),
		Use: "sig", Alg: "EdDSA", Active: active}
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
	keys map[string]ed25519.PublicKey
}

// ParseResponseKeys reads the published keys: the JSON of GET
// /v1/keys/response-signing ({"keys": [{"kid", "kty": "OKP", "crv":
// "Ed25519", "x"}, ...]}).
func ParseResponseKeys(jwks []byte) (*ResponseVerifier, error) {
	var set struct {
		Keys []ResponseKey `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("reqsig: the response signing keys: %w", err)
	}
	return NewResponseVerifier(set.Keys)
}

// NewResponseVerifier returns a verifier of keys (Ed25519 OKP keys only).
func NewResponseVerifier(keys []ResponseKey) (*ResponseVerifier, error) {
	v := &ResponseVerifier{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.KeyID == "" {
			return nil, fmt.Errorf("reqsig: response signing key %q is not an Ed25519 OKP key with a kid", k.KeyID)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("reqsig: response signing key %q: x is not a base64url Ed25519 public key", k.KeyID)
		}
		v.keys[k.KeyID] = ed25519.PublicKey(x)
	}
	if len(v.keys) == 0 {
		return nil, errors.New("reqsig: no response signing key")
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
	if !ed25519.Verify(pub, []byte(ResponseStringToSign(appID, target, nonce, sig.Timestamp, hex.EncodeToString(sum[:]))), raw) {
		return time.Time{}, ErrResponseBadSignature
	}
	return ts, nil
}

// SignResponse is Sign with the signature of grpcx.ResponseSigner.
func (s *ResponseSigner) SignResponse(_ context.Context, appID, target, nonce, bodySHA256 string) (ResponseSignature, error) {
	return s.Sign(appID, target, nonce, bodySHA256), nil
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
