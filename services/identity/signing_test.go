package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/reqsig"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
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
	if d := upd[len(upd)-1]; d["signing_keys"] == "" || len(d["signing_keys"]) != 129 { // two whole thumbprints
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

// A peer centre's replica of an application carries its signing keys and
// requirement, verifies signed calls with them, and follows a rollover at
// home; the replicas' digests agree.
func TestReplicaAppSigningKeys(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-a", "Bureau A", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	clk := newTestClock()
	at := func(c *replicaCentre, h *centre.Homes) *identity.Service {
		// keys expire after two days at home; the peer's own setting
		// plays no part in the replicas' keys
		return testService(t, identity.Deps{Store: sqlstore.New(c.db), Homes: h, Now: clk.now, Sleep: clk.sleep,
			Config: identity.Config{SigningKeyLifetime: 48 * time.Hour}})
	}
	svc2 := at(l2, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := at(l1, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})

	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	app, secret, err := svc2.CreateApp(admin2, identity.NewApp{Type: "OA", Code: "harbour", Name: "Harbour",
		SigningKeys: [][]byte{pubPEM(t, k1)}, RequireSignatures: true, MaxConcurrent: 3})
	if err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	ip := netip.Addr{}
	signed := func(k crypto.Signer, nonce string) caller.SignedRequest {
		sum := sha256.Sum256(nil)
		r := caller.SignedRequest{Timestamp: strconv.FormatInt(clk.now().Unix(), 10), Nonce: nonce,
			Target: "/uias.identity.v1.AuthService/Authenticate", BodySHA256: hex.EncodeToString(sum[:])}
		s, err := reqsig.Sign(k, reqsig.StringToSign(app.ID, r.Target, r.Timestamp, r.Nonce, r.BodySHA256))
		if err != nil {
			t.Fatal(err)
		}
		r.Signature = s
		return r
	}
	if got, err := svc1.GetApp(ctx, app.ID); err != nil || got.MaxConcurrent != 3 {
		t.Fatalf("the peer's replica: max_concurrent %+v %v", got, err)
	}
	if _, _, err := svc1.AuthenticateSignedApp(ctx, app.ID, secret, ip, caller.SignedRequest{}); reasonOf(err) != caller.ReasonSignatureRequired {
		t.Fatalf("unsigned at the peer: %v", err)
	}
	if _, _, err := svc1.AuthenticateSignedApp(ctx, app.ID, secret, ip, signed(k1, "peer-nonce-0000001")); err != nil {
		t.Fatalf("signed at the peer: %v", err)
	}
	// Rolled over at home to the second key: the peer follows.
	if _, err := svc2.UpdateApp(admin2, app.ID, identity.AppUpdate{Mask: []string{"signing_keys"}, SigningKeys: [][]byte{pubPEM(t, k2)}}); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc1.AuthenticateSignedApp(ctx, app.ID, secret, ip, signed(k2, "peer-nonce-0000002")); err != nil {
		t.Fatalf("new key at the peer: %v", err)
	}
	if _, _, err := svc1.AuthenticateSignedApp(ctx, app.ID, secret, ip, signed(k1, "peer-nonce-0000003")); reasonOf(err) != caller.ReasonBadSignature {
		t.Fatalf("old key at the peer: %v", err)
	}
	// the key's validity period came with it
	clk.t = clk.t.Add(49 * time.Hour)
	if _, _, err := svc1.AuthenticateSignedApp(ctx, app.ID, secret, ip, signed(k2, "peer-nonce-0000004")); reasonOf(err) != caller.ReasonSigningKeyExpired {
		t.Fatalf("expired key at the peer: %v", err)
	}
	d1, err := svc1.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := svc2.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	for i := range d1 {
		if d1[i].Table == "apps" && d1[i] != d2[i] {
			t.Fatalf("apps digests differ: %+v, %+v", d1[i], d2[i])
		}
	}
}

// TestAppSecurityLevel: an A2 application must require signed requests
// (with a key); it cannot stop requiring them while A2; A1 again, it may.
func TestAppSecurityLevel(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "a2", Name: "A2", SecurityLevel: 2})
	wantReason(t, "A2 without signatures", err, apierr.FailedPrecondition, identity.ReasonSecurityLevel)
	a, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "a2", Name: "A2", SecurityLevel: 2,
		SigningKeys: [][]byte{pubPEM(t, k)}, RequireSignatures: true})
	if err != nil || a.SecurityLevel != 2 {
		t.Fatalf("A2 with signatures: %+v %v", a, err)
	}
	_, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"require_signed_requests"}})
	wantReason(t, "A2 stops requiring signatures", err, apierr.FailedPrecondition, identity.ReasonSecurityLevel)
	_, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"security_level"}, SecurityLevel: 3})
	wantReason(t, "level 3", err, apierr.InvalidArgument, "BAD_REQUEST")
	a, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"security_level", "require_signed_requests"}, SecurityLevel: 1})
	if err != nil || a.SecurityLevel != 1 || a.RequireSignatures {
		t.Fatalf("back to A1 without signatures: %+v %v", a, err)
	}
	_, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"security_level"}, SecurityLevel: 2})
	wantReason(t, "A2 of an application that does not sign", err, apierr.FailedPrecondition, identity.ReasonSecurityLevel)
	plain, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "a1", Name: "A1"})
	if err != nil || plain.SecurityLevel != 1 {
		t.Fatalf("default level: %+v %v", plain, err)
	}
	got, err := w.svc.GetApp(ctx, a.ID)
	if err != nil || got.SecurityLevel != 1 {
		t.Fatalf("stored level: %+v %v", got, err)
	}
}

// TestRetiredKeysArchived: the audit log keeps an application's public
// signing keys (PEM) when they are added, names those a rollover retires,
// and the deletion's record archives what identified the application and
// its credentials (JR/T 0185-2020 9.4; gap2 G12).
func TestRetiredKeysArchived(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	a, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "arch", Name: "Archive", SigningKeys: [][]byte{pubPEM(t, k1)},
		ClientCertSHA256: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	first := a.ParsedSigningKeys()[0]
	blk, _ := pem.Decode([]byte(first.PEM))
	if d := w.auditDetails(t, "app.create"); d[len(d)-1]["signing_keys_spki"] != base64.StdEncoding.EncodeToString(blk.Bytes) {
		t.Fatalf("app.create detail %v", d[len(d)-1])
	}
	if _, err := w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"signing_keys"}, SigningKeys: [][]byte{pubPEM(t, k2)}}); err != nil {
		t.Fatal(err)
	}
	upd := w.auditDetails(t, "app.update")
	if d := upd[len(upd)-1]; d["retired_signing_keys"] != first.Thumbprint || d["retired_signing_keys_spki"] != base64.StdEncoding.EncodeToString(blk.Bytes) ||
		d["signing_keys_spki"] == "" {
		t.Fatalf("app.update detail %v", d)
	}
	if _, err := w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"status"}, Status: identity.AppSuspended}); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteApp(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	del := w.auditDetails(t, "app.delete")
	d := del[len(del)-1]
	if d["app_code"] != "arch" || d["name"] != "Archive" || d["client_cert_sha256"] != strings.Repeat("ab", 32) ||
		d["signing_keys_spki"] == "" || d["signing_keys"] == "" {
		t.Fatalf("app.delete detail %v", d)
	}
}

// Signing keys have validity periods by the application's level (JR/T
// 0185-2020 7.3.4): fixed when a key is registered, kept through a
// rollover and a restart; past it a signature the key made is refused
// SIGNING_KEY_EXPIRED (only to the key's holder: a wrong signature is
// still BAD_SIGNATURE), audited as a refused caller, while the other key
// of a rollover works; keys about to expire are counted and warned of.
// A2 applications' secrets take their level's lifetime.
func TestSigningKeyValidity(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	db, clk := testDB(t), newTestClock()
	w := &secretWorld{clk: clk, db: db, logs: logs}
	w.svc = testService(t, identity.Deps{Store: sqlstore.New(db), Now: clk.now, Sleep: clk.sleep, Logger: zap.New(core),
		Config: identity.Config{SigningKeyLifetimeA2: 30 * 24 * time.Hour, AppSecretLifetimeA2: 90 * 24 * time.Hour}})
	ctx := context.Background()
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	_, k3, _ := ed25519.GenerateKey(rand.Reader)

	// A1: no lifetime set, keys and secret do not expire
	a1, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "a1", Name: "A1", SigningKeys: [][]byte{pubPEM(t, k3)}})
	if err != nil || !a1.SigningKeys[0].ExpiresAt.IsZero() || !a1.SecretExpires.IsZero() {
		t.Fatalf("A1 app %+v %v", a1, err)
	}
	created := clk.now()
	a, secret, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "a2", Name: "A2", SecurityLevel: 2,
		SigningKeys: [][]byte{pubPEM(t, k1)}, RequireSignatures: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.SigningKeys[0].ExpiresAt; !got.Equal(created.Add(30 * 24 * time.Hour)) {
		t.Fatalf("A2 key expires %v, want 30 days after %v", got, created)
	}
	if !a.SecretExpires.Equal(created.Add(90 * 24 * time.Hour)) {
		t.Fatalf("A2 secret expires %v, want 90 days after %v", a.SecretExpires, created)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	n := 0
	call := func(k crypto.Signer) (string, error) {
		n++
		sum := sha256.Sum256([]byte("body"))
		r := caller.SignedRequest{Timestamp: strconv.FormatInt(clk.now().Unix(), 10), Nonce: "validity-nonce-" + strconv.Itoa(1000+n),
			Target: "/uias.identity.v1.AuthService/Authenticate", BodySHA256: hex.EncodeToString(sum[:])}
		s, err := reqsig.Sign(k, reqsig.StringToSign(a.ID, r.Target, r.Timestamp, r.Nonce, r.BodySHA256))
		if err != nil {
			t.Fatal(err)
		}
		r.Signature = s
		_, key, err := w.svc.AuthenticateSignedApp(ctx, a.ID, secret, ip, r)
		return key, err
	}
	if _, err := call(k1); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	// day 20: the key expires within 14 days: counted, warned of; a
	// rollover adds the second key with a fresh period, the first keeps
	// its own
	clk.t = clk.t.Add(20 * 24 * time.Hour)
	if err := w.svc.WarnExpiringSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	if c := w.svc.SecretExpiry(); c.KeysExpiring != 1 || c.KeysExpired != 0 {
		t.Fatalf("counts at day 20 %+v", c)
	}
	keys := a.ParsedSigningKeys()
	if l := logs.FilterMessageSnippet("signing key expires soon").All(); len(l) != 1 || l[0].ContextMap()["key_thumbprint"] != keys[0].Thumbprint ||
		l[0].ContextMap()["app_id"] != a.ID {
		t.Fatalf("warning at day 20: %v", l)
	}
	a, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"signing_keys"}, SigningKeys: [][]byte{pubPEM(t, k1), pubPEM(t, k2)}})
	if err != nil {
		t.Fatal(err)
	}
	if !a.SigningKeys[0].ExpiresAt.Equal(created.Add(30*24*time.Hour)) || !a.SigningKeys[1].ExpiresAt.Equal(clk.now().Add(30*24*time.Hour)) {
		t.Fatalf("rollover keys %+v", a.SigningKeys)
	}
	// day 31: the first key's signatures are refused, the second's taken
	clk.t = clk.t.Add(11 * 24 * time.Hour)
	_, err = call(k1)
	wantReason(t, "expired key", err, apierr.Unauthenticated, caller.ReasonSigningKeyExpired)
	if !strings.Contains(err.Error(), keys[0].Thumbprint) {
		t.Errorf("the refusal does not name the key: %v", err)
	}
	_, err = call(k3)
	wantReason(t, "unregistered key", err, apierr.Unauthenticated, caller.ReasonBadSignature)
	if key, err := call(k2); err != nil || key != a.ParsedSigningKeys()[1].Thumbprint {
		t.Fatalf("the second key: %q %v", key, err)
	}
	if got := w.deniedReasons(t); !slices.Equal(got, []string{caller.ReasonSigningKeyExpired, caller.ReasonBadSignature}) {
		t.Fatalf("caller.denied reasons %v", got)
	}
	if err := w.svc.WarnExpiringSecrets(ctx); err != nil {
		t.Fatal(err)
	}
	if c := w.svc.SecretExpiry(); c.KeysExpiring != 1 || c.KeysExpired != 1 {
		t.Fatalf("counts at day 31 %+v", c)
	}
	if l := logs.FilterMessageSnippet("signing key has expired").All(); len(l) != 1 {
		t.Fatalf("warnings at day 31: %v", l)
	}
	// kept as stored (a restart reads the same)
	got, err := w.svc.GetApp(ctx, a.ID)
	if err != nil || len(got.SigningKeys) != 2 || !got.SigningKeys[0].ExpiresAt.Equal(a.SigningKeys[0].ExpiresAt) ||
		!got.SigningKeys[1].ExpiresAt.Equal(a.SigningKeys[1].ExpiresAt) {
		t.Fatalf("stored keys %+v %v", got.SigningKeys, err)
	}
	// raised to A2 with a new key in the same update: the key takes the
	// A2 period
	up, err := w.svc.UpdateApp(ctx, a1.ID, identity.AppUpdate{Mask: []string{"security_level", "require_signed_requests", "signing_keys"},
		SecurityLevel: 2, RequireSignatures: true, SigningKeys: [][]byte{pubPEM(t, k3), pubPEM(t, k1)}})
	if err != nil {
		t.Fatal(err)
	}
	// the key kept from A1 (no period) gets A2's from the raise, like the
	// new one (review sec27b L3)
	if !up.SigningKeys[0].ExpiresAt.Equal(clk.now().Add(30*24*time.Hour)) || !up.SigningKeys[1].ExpiresAt.Equal(clk.now().Add(30*24*time.Hour)) {
		t.Fatalf("keys after raising to A2 %+v", up.SigningKeys)
	}
}
