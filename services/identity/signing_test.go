package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/reqsig"
	"github.com/uias/uias/services/identity"
)

func pubPEM(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	p, err := reqsig.PublicKeyPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return []byte(p)
}

// Signing keys through the service: validation, the requirement, a
// rollover keeping the first key's time, and signed calls, whose refusals
// are audited as refused callers and whose successes name the key.
func TestAppSigningKeys(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	_, k3, _ := ed25519.GenerateKey(rand.Reader)

	_, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "req", Name: "Req", RequireSignatures: true})
	wantReason(t, "required without a key", err, apierr.FailedPrecondition, reqsig.ReasonKeyRequired)
	_, _, err = w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "bad", Name: "Bad", SigningKeys: [][]byte{[]byte("not a key")}})
	wantReason(t, "garbage", err, apierr.InvalidArgument, reqsig.ReasonKeyInvalid)

	a, secret, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "signer", Name: "Signer",
		SigningKeys: [][]byte{pubPEM(t, k1)}, RequireSignatures: true})
	if err != nil {
		t.Fatal(err)
	}
	added := a.SigningKeys[0].AddedAt
	_, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"signing_keys"},
		SigningKeys: [][]byte{pubPEM(t, k1), pubPEM(t, k2), pubPEM(t, k3)}})
	wantReason(t, "three keys", err, apierr.InvalidArgument, reqsig.ReasonTooManyKeys)
	_, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"signing_keys"}})
	wantReason(t, "no keys while required", err, apierr.FailedPrecondition, reqsig.ReasonKeyRequired)

	w.clk.t = w.clk.t.Add(time.Hour)
	a, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"signing_keys"}, SigningKeys: [][]byte{pubPEM(t, k1), pubPEM(t, k2)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.SigningKeys) != 2 || !a.SigningKeys[0].AddedAt.Equal(added) || a.SigningKeys[1].AddedAt.Equal(added) {
		t.Fatalf("rollover keys %+v", a.SigningKeys)
	}
	got, err := w.svc.GetApp(ctx, a.ID)
	if err != nil || len(got.ParsedSigningKeys()) != 2 || !got.RequireSignatures {
		t.Fatalf("stored app %+v %v", got, err)
	}
	upd := w.auditDetails(t, "app.update")
	if d := upd[len(upd)-1]; d["signing_keys"] == "" || len(d["signing_keys"]) != 33 {
		t.Fatalf("app.update detail %v", d)
	}

	ip := netip.MustParseAddr("192.0.2.1")
	sign := func(k crypto.Signer, nonce string) caller.SignedRequest {
		sum := sha256.Sum256([]byte("body"))
		r := caller.SignedRequest{Timestamp: strconv.FormatInt(w.clk.now().Unix(), 10), Nonce: nonce,
			Target: "/uias.identity.v1.AuthService/Authenticate", BodySHA256: hex.EncodeToString(sum[:])}
		s, err := reqsig.Sign(k, reqsig.StringToSign(a.ID, r.Target, r.Timestamp, r.Nonce, r.BodySHA256))
		if err != nil {
			t.Fatal(err)
		}
		r.Signature = s
		return r
	}
	_, _, err = w.svc.AuthenticateSignedApp(ctx, a.ID, secret, ip, caller.SignedRequest{})
	wantReason(t, "unsigned", err, apierr.Unauthenticated, caller.ReasonSignatureRequired)
	keys := a.ParsedSigningKeys()
	for i, k := range []crypto.Signer{k1, k2} {
		_, key, err := w.svc.AuthenticateSignedApp(ctx, a.ID, secret, ip, sign(k, "nonce-of-key-"+strconv.Itoa(i)+"-abcdef"))
		if err != nil || key != keys[i].Thumbprint {
			t.Fatalf("signed with key %d: %q %v", i, key, err)
		}
	}
	_, _, err = w.svc.AuthenticateSignedApp(ctx, a.ID, secret, ip, sign(k1, "nonce-of-key-0-abcdef"))
	wantReason(t, "replayed", err, apierr.Unauthenticated, caller.ReasonReplayedRequest)
	_, _, err = w.svc.AuthenticateSignedApp(ctx, a.ID, secret, ip, sign(k3, "nonce-of-key-3-abcdef"))
	wantReason(t, "unregistered key", err, apierr.Unauthenticated, caller.ReasonBadSignature)
	if got, want := w.deniedReasons(t), []string{caller.ReasonSignatureRequired, caller.ReasonReplayedRequest, caller.ReasonBadSignature}; !slices.Equal(got, want) {
		t.Fatalf("caller.denied reasons %v, want %v", got, want)
	}
}
