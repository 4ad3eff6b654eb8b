package reqsig_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/uias/uias/pkg/reqsig"
)

// The response string to sign: six lines, the request's nonce before the
// answer's timestamp, no trailing newline.
func TestResponseStringToSign(t *testing.T) {
	got := reqsig.ResponseStringToSign("app-1", "POST /v1/authenticate", "nonce-0123456789ab", "1700000000",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	want := "UIAS-SIG-V1-RESP\napp-1\nPOST /v1/authenticate\nnonce-0123456789ab\n1700000000\n" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A signature made by the signer verifies with its published keys (as
// JSON, as GET /v1/keys/response-signing serves them) and with nothing
// else: another body, nonce, target, application or key id fails.
func TestResponseSignAndVerify(t *testing.T) {
	keys := map[string]ed25519.PrivateKey{}
	for _, id := range []string{"s2", "s1"} {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		keys[id] = k
	}
	s, err := reqsig.NewResponseSigner("s2", keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reqsig.NewResponseSigner("s9", keys); err == nil {
		t.Fatal("an active key that is not among the keys was accepted")
	}
	pub := s.PublicKeys()
	if len(pub) != 2 || pub[0].KeyID != "s2" || !pub[0].Active || pub[1].KeyID != "s1" || pub[1].Active ||
		pub[0].Kty != "OKP" || pub[0].Crv != "Ed25519" {
		t.Fatalf("public keys: %+v", pub)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": pub})
	v, err := reqsig.ParseResponseKeys(jwks)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"result_code":0}`)
	const nonce = "nonce-0123456789ab"
	sig := s.Sign("app-1", "POST /v1/authenticate", nonce, sha(body))
	if sig.KeyID != "s2" {
		t.Fatalf("signed with %q", sig.KeyID)
	}
	if _, err := v.Verify("app-1", "POST /v1/authenticate", nonce, body, sig); err != nil {
		t.Fatalf("verify: %v", err)
	}
	bad := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	_, err = v.Verify("app-1", "POST /v1/authenticate", nonce, []byte(`{"result_code":1}`), sig)
	bad("tampered body", err, reqsig.ErrResponseBadSignature)
	_, err = v.Verify("app-1", "POST /v1/authenticate", "nonce-other-0123456", body, sig)
	bad("another request's nonce", err, reqsig.ErrResponseBadSignature)
	_, err = v.Verify("app-2", "POST /v1/authenticate", nonce, body, sig)
	bad("another application", err, reqsig.ErrResponseBadSignature)
	_, err = v.Verify("app-1", "POST /v1/authz/check", nonce, body, sig)
	bad("another target", err, reqsig.ErrResponseBadSignature)
	other := sig
	other.KeyID = "s1"
	_, err = v.Verify("app-1", "POST /v1/authenticate", nonce, body, other)
	bad("another key id", err, reqsig.ErrResponseBadSignature)
	other.KeyID = "s3"
	_, err = v.Verify("app-1", "POST /v1/authenticate", nonce, body, other)
	bad("an unknown key id", err, reqsig.ErrResponseUnknownKey)
	other = sig
	other.Timestamp = "1"
	_, err = v.Verify("app-1", "POST /v1/authenticate", nonce, body, other)
	bad("another timestamp", err, reqsig.ErrResponseBadSignature)
	_, err = v.Verify("app-1", "POST /v1/authenticate", nonce, body, reqsig.ResponseSignature{})
	bad("unsigned", err, reqsig.ErrResponseUnsigned)

	if _, err := reqsig.ParseResponseKeys([]byte(`{"keys":[{"kid":"k","kty":"RSA","x":"AA"}]}`)); err == nil {
		t.Error("an RSA key was accepted")
	}
	if _, err := reqsig.ParseResponseKeys([]byte(`{"keys":[]}`)); err == nil {
		t.Error("no key was accepted")
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
