package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/reqsig"
	"github.com/uias/uias/services/identity"
)

// SM2 signing keys through the service (ADR 0043): registered beside an
// ECDSA key, recorded (thumbprint and SubjectPublicKeyInfo), verifying
// SM2 signatures with the default user ID and refusing another user ID;
// the answers of an application with an SM2 key are SM2
// (AnswerAlgorithm), the others' Ed25519, and a store that cannot be read
// fails the choice rather than guess.
func TestSM2AppSigningKeys(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sk, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, secret, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "sm2", Name: "SM2",
		SigningKeys: [][]byte{pubPEM(t, ec), pubPEM(t, sk)}, RequireSignatures: true})
	if err != nil {
		t.Fatal(err)
	}
	keys := a.ParsedSigningKeys()
	if len(keys) != 2 || keys[0].Algorithm != reqsig.AlgECDSAP256 || keys[1].Algorithm != reqsig.AlgSM2 {
		t.Fatalf("keys %+v", keys)
	}
	created := w.auditDetails(t, "app.create")
	d := created[len(created)-1]
	blk, _ := pem.Decode(pubPEM(t, sk))
	if !strings.Contains(d["signing_keys"], keys[1].Thumbprint) || !strings.Contains(d["signing_keys_spki"], base64.StdEncoding.EncodeToString(blk.Bytes)) {
		t.Fatalf("app.create detail does not name the SM2 key: %v", d)
	}

	ip := netip.MustParseAddr("192.0.2.1")
	n := 0
	signed := func(uid string) caller.SignedRequest {
		n++
		sum := sha256.Sum256([]byte("body"))
		r := caller.SignedRequest{Timestamp: strconv.FormatInt(w.clk.now().Unix(), 10), Nonce: "sm2-nonce-" + strconv.Itoa(n) + "-abcdefgh",
			Target: "/uias.identity.v1.AuthService/Authenticate", BodySHA256: hex.EncodeToString(sum[:])}
		sig, err := sk.Sign(rand.Reader, []byte(reqsig.StringToSign(a.ID, r.Target, r.Timestamp, r.Nonce, r.BodySHA256)),
			sm2.NewSM2SignerOption(true, []byte(uid)))
		if err != nil {
			t.Fatal(err)
		}
		r.Signature = base64.StdEncoding.EncodeToString(sig)
		return r
	}
	if _, key, err := w.svc.AuthenticateSignedApp(ctx, a.ID, secret, ip, signed(reqsig.SM2UserID)); err != nil || key != keys[1].Thumbprint {
		t.Fatalf("SM2 signed: %q %v", key, err)
	}
	_, _, err = w.svc.AuthenticateSignedApp(ctx, a.ID, secret, ip, signed("ALICE123@YAHOO.COM"))
	wantReason(t, "another user ID", err, apierr.Unauthenticated, caller.ReasonBadSignature)

	// The algorithm of the answers.
	other, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "ec", Name: "EC", SigningKeys: [][]byte{pubPEM(t, ec)}})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{a.ID: reqsig.AlgSM2, other.ID: reqsig.AlgEd25519, "no-such-app": reqsig.AlgEd25519} {
		if got, err := w.svc.AnswerAlgorithm(ctx, id); err != nil || got != want {
			t.Errorf("AnswerAlgorithm(%s) = %q %v, want %s", id, got, err, want)
		}
	}
	// Back from SM2: the SM2 key removed, Ed25519 answers.
	if _, err := w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"signing_keys"}, SigningKeys: [][]byte{pubPEM(t, ec)}}); err != nil {
		t.Fatal(err)
	}
	if got, err := w.svc.AnswerAlgorithm(ctx, a.ID); err != nil || got != reqsig.AlgEd25519 {
		t.Fatalf("after the SM2 key's removal: %q %v", got, err)
	}
	_ = w.db.Close()
	if got, err := w.svc.AnswerAlgorithm(ctx, a.ID); err == nil {
		t.Fatalf("store down: %q, want an error", got)
	}
}
