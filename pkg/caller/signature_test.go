package caller_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	uiascrypto "github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/reqsig"
)

type sigEnv struct {
	t       *testing.T
	now     time.Time
	app     *caller.App
	auth    *caller.AppAuthenticator
	denied  []string
	priv    crypto.Signer
	nonceNo int
}

func newSigEnv(t *testing.T, nonces caller.NonceStore) *sigEnv {
	e := &sigEnv{t: t, now: time.Unix(1_800_000_000, 0)}
	e.priv = genP256(t)
	e.app = &caller.App{ID: "app-sig", Active: true, SecretHash: uiascrypto.HashToken("s3cret"),
		SigningKeys: []*reqsig.Key{parseKey(t, e.priv.Public())}}
	var err error
	e.auth, err = caller.NewAppAuthenticator(caller.AuthOptions{
		Apps: caller.AppSourceFunc(func(context.Context, string) (*caller.App, error) { return e.app, nil }),
		Now:  func() time.Time { return e.now }, CacheTTL: time.Nanosecond, Nonces: nonces,
		Denied: func(_ context.Context, _ string, err *apierr.Error, _ time.Time) {
			e.denied = append(e.denied, err.Reason)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func genP256(t *testing.T) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parseKey(t *testing.T, pub crypto.PublicKey) *reqsig.Key {
	t.Helper()
	p, err := reqsig.PublicKeyPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := reqsig.ParseKey(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const target = "/uias.identity.v1.AuthService/Authenticate"

// signed is a request signed by priv at ts over body.
func (e *sigEnv) signed(priv crypto.Signer, ts time.Time, body string) *caller.SignedRequest {
	e.nonceNo++
	sum := sha256.Sum256([]byte(body))
	r := &caller.SignedRequest{Timestamp: strconv.FormatInt(ts.Unix(), 10), Nonce: "nonce-0000000000-" + strconv.Itoa(e.nonceNo),
		Target: target, BodySHA256: hex.EncodeToString(sum[:])}
	s, err := reqsig.Sign(priv, reqsig.StringToSign(e.app.ID, r.Target, r.Timestamp, r.Nonce, r.BodySHA256))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Signature = s
	return r
}

func (e *sigEnv) call(sig *caller.SignedRequest) (string, error) {
	if sig == nil {
		sig = &caller.SignedRequest{}
	}
	_, key, err := e.auth.AuthenticateSigned(context.Background(), e.app.ID, "s3cret", netip.MustParseAddr("192.0.2.1"), *sig)
	return key, err
}

func wantReason(t *testing.T, what string, err error, reason string) {
	t.Helper()
	ae, ok := apierr.As(err)
	if !ok || ae.Reason != reason {
		t.Fatalf("%s: err = %v, want %s", what, err, reason)
	}
}

func TestSignedCalls(t *testing.T) {
	e := newSigEnv(t, nil)
	// Unsigned, not required: fine, no key.
	if key, err := e.call(nil); err != nil || key != "" {
		t.Fatalf("unsigned call: %q %v", key, err)
	}
	good := e.signed(e.priv, e.now, "body")
	key, err := e.call(good)
	if err != nil || key != e.app.SigningKeys[0].Thumbprint {
		t.Fatalf("good signature: %q %v", key, err)
	}
	// The same request again: a replay.
	_, err = e.call(good)
	wantReason(t, "replay", err, caller.ReasonReplayedRequest)

	tampered := e.signed(e.priv, e.now, "body")
	sum := sha256.Sum256([]byte("other body"))
	tampered.BodySHA256 = hex.EncodeToString(sum[:])
	_, err = e.call(tampered)
	wantReason(t, "tampered body", err, caller.ReasonBadSignature)

	other := e.signed(e.priv, e.now, "body")
	other.Target = "/uias.identity.v1.AuthService/ChangePassword"
	_, err = e.call(other)
	wantReason(t, "other method", err, caller.ReasonBadSignature)

	_, err = e.call(e.signed(genP256(t), e.now, "body"))
	wantReason(t, "unregistered key", err, caller.ReasonBadSignature)

	_, err = e.call(e.signed(e.priv, e.now.Add(-301*time.Second), "body"))
	wantReason(t, "stale", err, caller.ReasonStaleSignature)
	ae, _ := apierr.As(err)
	if want := "at most 300 seconds"; !contains(ae.Message, want) {
		t.Fatalf("stale message %q does not say %q", ae.Message, want)
	}
	if _, err := e.call(e.signed(e.priv, e.now.Add(299*time.Second), "body")); err != nil {
		t.Fatalf("299 s ahead: %v", err)
	}

	bad := e.signed(e.priv, e.now, "body")
	bad.Nonce = "short"
	_, err = e.call(bad)
	wantReason(t, "short nonce", err, caller.ReasonBadSignature)

	// Required: unsigned refused, signed fine.
	e.app.RequireSignatures = true
	_, err = e.call(nil)
	wantReason(t, "unsigned, required", err, caller.ReasonSignatureRequired)
	if _, err := e.call(e.signed(e.priv, e.now, "body")); err != nil {
		t.Fatal(err)
	}

	// Rollover: two keys, each verifies.
	next := genP256(t)
	e.app.SigningKeys = append(e.app.SigningKeys, parseKey(t, next.Public()))
	for _, p := range []crypto.Signer{e.priv, next} {
		if _, err := e.call(e.signed(p, e.now, "body")); err != nil {
			t.Fatalf("rollover: %v", err)
		}
	}
	// Signed without keys: refused, never ignored.
	e.app.RequireSignatures, e.app.SigningKeys = false, nil
	_, err = e.call(e.signed(e.priv, e.now, "body"))
	wantReason(t, "no keys", err, caller.ReasonBadSignature)

	// Every refusal was told to Denied (audited).
	want := []string{caller.ReasonReplayedRequest, caller.ReasonBadSignature, caller.ReasonBadSignature, caller.ReasonBadSignature,
		caller.ReasonStaleSignature, caller.ReasonBadSignature, caller.ReasonSignatureRequired, caller.ReasonBadSignature}
	if len(e.denied) != len(want) {
		t.Fatalf("denied = %v, want %v", e.denied, want)
	}
	for i := range want {
		if e.denied[i] != want[i] {
			t.Fatalf("denied = %v, want %v", e.denied, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

type downNonces struct{}

func (downNonces) Remember(context.Context, string, time.Duration) error {
	return errors.New("nats: no responders")
}

func TestSignedCallNonceStoreDown(t *testing.T) {
	e := newSigEnv(t, downNonces{})
	_, err := e.call(e.signed(e.priv, e.now, "body"))
	wantReason(t, "nonce store down", err, caller.ReasonReplayUnavailable)
	if apierr.CodeOf(err) != apierr.Unavailable {
		t.Fatalf("code %v", apierr.CodeOf(err))
	}
	// Unsigned calls do not need it.
	if _, err := e.call(nil); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryNoncesExpire(t *testing.T) {
	now := time.Unix(0, 0)
	s := caller.NewMemoryNonces(func() time.Time { return now })
	ctx := context.Background()
	if err := s.Remember(ctx, "k", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(ctx, "k", time.Minute); !errors.Is(err, caller.ErrNonceSeen) {
		t.Fatalf("second: %v", err)
	}
	now = now.Add(time.Minute)
	if err := s.Remember(ctx, "k", time.Minute); err != nil {
		t.Fatalf("after the ttl: %v", err)
	}
}

func TestUnsignedPathAllocations(t *testing.T) {
	e := newSigEnv(t, nil)
	e.app.SigningKeys = nil
	auth, err := caller.NewAppAuthenticator(caller.AuthOptions{
		Apps: caller.AppSourceFunc(func(context.Context, string) (*caller.App, error) { return e.app, nil }),
		Now:  func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, ip := context.Background(), netip.MustParseAddr("192.0.2.1")
	_, _ = auth.Authenticate(ctx, e.app.ID, "s3cret", ip)
	plain := testing.AllocsPerRun(100, func() { _, _ = auth.Authenticate(ctx, e.app.ID, "s3cret", ip) })
	signedPath := testing.AllocsPerRun(100, func() { _, _, _ = auth.AuthenticateSigned(ctx, e.app.ID, "s3cret", ip, caller.SignedRequest{}) })
	if signedPath != plain {
		t.Fatalf("an unsigned call of an app without keys allocates %v, Authenticate %v", signedPath, plain)
	}
}

// A request signature refused for an application with an SM2 key says that
// the SM2 user ID must be given to OpenSSL explicitly (which does not apply
// it by itself: sec31b L4); for other keys the message does not mention it.
func TestBadSignatureSM2Hint(t *testing.T) {
	e := newSigEnv(t, nil)
	_, err := e.call(e.signed(genP256(t), e.now, "body"))
	wantReason(t, "P-256 application", err, caller.ReasonBadSignature)
	if ae, _ := apierr.As(err); strings.Contains(ae.Message, "distid") {
		t.Fatalf("a P-256 application's message names the SM2 user ID: %q", ae.Message)
	}
	sk, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.app.SigningKeys = append(e.app.SigningKeys, parseKey(t, &sk.PublicKey))
	_, err = e.call(e.signed(genP256(t), e.now, "body"))
	wantReason(t, "SM2 application", err, caller.ReasonBadSignature)
	if ae, _ := apierr.As(err); !strings.Contains(ae.Message, "user ID "+reqsig.SM2UserID) || !strings.Contains(ae.Message, "-sigopt distid:"+reqsig.SM2UserID) {
		t.Fatalf("an SM2 application's message: %q", ae.Message)
	}
}
