package ticket

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// Compact JWS (RFC 7515), the one codec of the package's signed tokens: ID
// and logout tokens (idtoken.go, RS256) and the peers' assertions and
// logout tokens (peer.go, EdDSA). The algorithm, the key lookup and the
// claims' checks stay with each.

// jwsHeader is a compact JWS's protected header, as UIAS writes and reads it.
type jwsHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// errJWSMalformed: not three base64url parts, or a header that is not a
// JSON object.
var errJWSMalformed = errors.New("not a compact JWS")

// encodeJWS returns the compact JWS of h and claims (as JSON), signed by
// sign over its signing input.
func encodeJWS(h jwsHeader, claims any, sign func(signingInput []byte) ([]byte, error)) (string, error) {
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	sig, err := sign([]byte(in))
	if err != nil {
		return "", err
	}
	return in + "." + enc.EncodeToString(sig), nil
}

// splitJWS splits a compact JWS into its header, its claims (JSON, not yet
// parsed: checked only once the signature holds), the signing input and
// the signature; errJWSMalformed for anything else. It verifies nothing.
func splitJWS(tok string) (h jwsHeader, claims, signingInput, sig []byte, err error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return h, nil, nil, nil, errJWSMalformed
	}
	enc := base64.RawURLEncoding
	hb, err1 := enc.DecodeString(parts[0])
	cb, err2 := enc.DecodeString(parts[1])
	sb, err3 := enc.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(hb, &h) != nil {
		return jwsHeader{}, nil, nil, nil, errJWSMalformed
	}
	return h, cb, []byte(parts[0] + "." + parts[1]), sb, nil
}
