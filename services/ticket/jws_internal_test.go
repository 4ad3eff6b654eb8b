package ticket

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestJWS (rr29 B4): the one compact-JWS codec of ID tokens and peer
// assertions: what encodeJWS signs, splitJWS gives back (header, claims,
// the signing input the signature was made over, the signature); anything
// but three base64url parts with a JSON header is malformed.
func TestJWS(t *testing.T) {
	var signed []byte
	tok, err := encodeJWS(jwsHeader{Alg: "X", Typ: "t+jwt", Kid: "k1"}, map[string]string{"sub": "u1"}, func(in []byte) ([]byte, error) {
		signed = append([]byte(nil), in...)
		return []byte("sig"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h, claims, in, sig, err := splitJWS(tok)
	if err != nil || h != (jwsHeader{Alg: "X", Typ: "t+jwt", Kid: "k1"}) || string(claims) != `{"sub":"u1"}` ||
		!bytes.Equal(in, signed) || string(sig) != "sig" || !strings.HasPrefix(tok, string(in)+".") {
		t.Fatalf("split: %+v %s %s %s %v", h, claims, in, sig, err)
	}
	if _, err := encodeJWS(jwsHeader{}, nil, func([]byte) ([]byte, error) { return nil, errors.New("no key") }); err == nil {
		t.Fatal("a signing failure ignored")
	}
	parts := strings.Split(tok, ".")
	for _, bad := range []string{"", "a.b", tok + ".x", "!." + parts[1] + "." + parts[2], parts[0] + ".!." + parts[2],
		parts[0] + "." + parts[1] + ".!", "bm90IGpzb24." + parts[1] + "." + parts[2]} {
		if _, _, _, _, err := splitJWS(bad); !errors.Is(err, errJWSMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
