package ticket_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

func peerKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func wantPeerReason(t *testing.T, what string, err error, reason string) {
	t.Helper()
	ae, ok := apierr.As(err)
	if !ok || ae.Reason != reason {
		t.Fatalf("%s: %v, want %s", what, err, reason)
	}
	if ae.Message == "" {
		t.Fatalf("%s: no message", what)
	}
}

// nonce is a browser's (its uias_peer cookie), nonceHash what the peer
// is handed and binds the assertion to.
const nonce = "0123456789abcdef0123456789abcdef"

var nonceHash = ticket.PeerNonceHash(nonce)

// TestPeerAssertion: a level-2 centre (l2a) vouches for its signed-in
// person to level 1 (l1), which verifies with l2a's configured public key,
// keeps the level and method, and takes each assertion once, before it
// expires, for itself only, from a trusted key only, in the browser it was
// asked for only; every refusal is audited.
func TestPeerAssertion(t *testing.T) {
	l2aKey, l1Key, otherKey := peerKey(t), peerKey(t), peerKey(t)
	l2a := newFixture(t, ticket.Config{Centre: "l2a"})
	l1 := newFixture(t, ticket.Config{Centre: "l1"})
	l2a.svc.SetPeers(ticket.PeerSettings{Key: l2aKey, TTL: time.Minute, Peers: map[string]ticket.Peer{
		"l1":  {Name: "l1", URL: "https://l1.example/", Keys: []ed25519.PublicKey{pub(l1Key)}},
		"l2b": {Name: "l2b", URL: "https://l2b.example", Keys: []ed25519.PublicKey{pub(otherKey)}},
	}})
	l1.svc.SetPeers(ticket.PeerSettings{Key: l1Key, Peers: map[string]ticket.Peer{
		// a rotation: the old key and the new one
		"l2a": {Name: "l2a", URL: "https://l2a.example", Keys: []ed25519.PublicKey{pub(otherKey), pub(l2aKey)}},
	}})
	ctx := context.Background()
	tgt, _, err := l2a.svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "alice", AuthLevel: 2,
		AuthMethod: int(ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE)})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(aud string) string {
		t.Helper()
		a, u, err := l2a.svc.IssuePeerAssertion(ctx, tgt, aud, nonceHash)
		if err != nil {
			t.Fatal(err)
		}
		if aud == "l1" && u != "https://l1.example/cas/peer/accept" {
			t.Fatalf("accept URL %q", u)
		}
		return a
	}
	a := issue("l1")
	got, err := l1.svc.RedeemPeerAssertion(ctx, a, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if got.Peer != "l2a" || got.UserID != "u1" || got.AuthLevel != 2 || got.AuthMethod != int(ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE) ||
		got.AuthTime.IsZero() {
		t.Fatalf("redeemed %+v", got)
	}
	if !l2a.audit.find("peer.assertion.issue", "success", "OK") || !l1.audit.find("peer.assertion.redeem", "success", "OK") {
		t.Fatalf("audit: %+v / %+v", l2a.audit.evs, l1.audit.evs)
	}

	// The session opened on it keeps the sign-in's time: its hard limit
	// runs from there, so hops never extend a sign-in.
	signedIn := time.Now().Add(-3 * time.Hour)
	_, sess, err := l1.svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "alice", AuthLevel: 2, Peer: "l2a",
		AuthAt: signedIn})
	if err != nil {
		t.Fatal(err)
	}
	if !sess.AuthTime().Equal(signedIn.UTC()) || !sess.HardExpiry.Equal(signedIn.Add(8*time.Hour).UTC()) {
		t.Fatalf("session on a peer's word: auth %s, hard expiry %s", sess.AuthTime(), sess.HardExpiry)
	}
	// A sign-in older than a session may live (or from the future) is
	// refused as expired.
	for _, at := range []time.Time{time.Now().Add(-9 * time.Hour), time.Now().Add(time.Hour)} {
		old, err := ticket.SignPeerAssertion(l2aKey, ticket.PeerClaims{Iss: "l2a", Aud: "l1", Sub: "u1", Jti: at.String(),
			Iat: time.Now().Unix(), Exp: time.Now().Add(time.Minute).Unix(), AuthTime: at.Unix(), Acr: 1, Amr: 1, Nonce: nonceHash})
		if err != nil {
			t.Fatal(err)
		}
		_, err = l1.svc.RedeemPeerAssertion(ctx, old, nonce)
		wantPeerReason(t, "sign-in at "+at.String(), err, ticket.ReasonPeerExpired)
	}

	// Replayed.
	_, err = l1.svc.RedeemPeerAssertion(ctx, a, nonce)
	wantPeerReason(t, "replay", err, ticket.ReasonPeerReplayed)

	// Another browser's (its nonce is not the one bound).
	_, err = l1.svc.RedeemPeerAssertion(ctx, issue("l1"), "ffffffffffffffffffffffffffffffff")
	wantPeerReason(t, "other nonce", err, ticket.ReasonPeerInvalid)

	// For another centre.
	_, err = l1.svc.RedeemPeerAssertion(ctx, issue("l2b"), nonce)
	wantPeerReason(t, "wrong audience", err, ticket.ReasonPeerWrongAudience)

	// Tampered: another person, the same signature.
	parts := strings.Split(issue("l1"), ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"sub":"u1"`, `"sub":"u2"`, 1)))
	_, err = l1.svc.RedeemPeerAssertion(ctx, strings.Join(parts, "."), nonce)
	wantPeerReason(t, "tampered", err, ticket.ReasonPeerInvalid)
	_, err = l1.svc.RedeemPeerAssertion(ctx, "not.an.assertion", nonce)
	wantPeerReason(t, "garbage", err, ticket.ReasonPeerInvalid)

	// Expired: past its minute and the clock skew allowed.
	late := issue("l1")
	l1.clock.advance(2 * time.Minute)
	_, err = l1.svc.RedeemPeerAssertion(ctx, late, nonce)
	wantPeerReason(t, "expired", err, ticket.ReasonPeerExpired)
	for _, r := range []string{ticket.ReasonPeerReplayed, ticket.ReasonPeerInvalid, ticket.ReasonPeerWrongAudience, ticket.ReasonPeerExpired} {
		if !l1.audit.find("peer.assertion.redeem", "denied", r) {
			t.Errorf("refusal %s not audited: %+v", r, l1.audit.evs)
		}
	}

	// An untrusted key: a centre that trusts l2a under another key.
	l1b := newFixture(t, ticket.Config{Centre: "l1"})
	l1b.svc.SetPeers(ticket.PeerSettings{Peers: map[string]ticket.Peer{
		"l2a": {Name: "l2a", URL: "https://l2a.example", Keys: []ed25519.PublicKey{pub(otherKey)}}}})
	_, err = l1b.svc.RedeemPeerAssertion(ctx, issue("l1"), nonce)
	wantPeerReason(t, "untrusted key", err, ticket.ReasonPeerInvalid)
	// (sec28b L1) a refusal before the signature holds names what the
	// assertion claims, marked unverified, and no person as subject.
	claimed := false
	for _, ev := range l1b.audit.evs {
		if ev.API == "peer.assertion.redeem" && ev.Reason == ticket.ReasonPeerInvalid && ev.Subject == "" &&
			ev.Detail["claimed_peer"] == "l2a" && ev.Detail["claimed_subject"] == "u1" && ev.Detail["claims"] == "unverified" {
			claimed = true
		}
	}
	if !claimed {
		t.Errorf("untrusted key: claimed issuer and person not audited: %+v", l1b.audit.evs)
	}
	// An unknown peer: a centre that trusts only l2b.
	l1c := newFixture(t, ticket.Config{Centre: "l1"})
	l1c.svc.SetPeers(ticket.PeerSettings{Peers: map[string]ticket.Peer{
		"l2b": {Name: "l2b", URL: "https://l2b.example", Keys: []ed25519.PublicKey{pub(l2aKey)}}}})
	_, err = l1c.svc.RedeemPeerAssertion(ctx, issue("l1"), nonce)
	wantPeerReason(t, "unknown peer", err, ticket.ReasonPeerUnknown)
	// A centre without peers.
	_, err = newFixture(t, ticket.Config{Centre: "l1"}).svc.RedeemPeerAssertion(ctx, issue("l1"), nonce)
	wantPeerReason(t, "no peers", err, ticket.ReasonPeerSignInOff)
}

func TestIssuePeerAssertionRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ticket.Config{Centre: "l2a"})
	tgt := f.login(t, "u1")
	_, _, err := f.svc.IssuePeerAssertion(ctx, tgt, "l1", nonceHash)
	wantPeerReason(t, "not set up", err, ticket.ReasonPeerSignInOff)
	f.svc.SetPeers(ticket.PeerSettings{Key: peerKey(t), Peers: map[string]ticket.Peer{
		"l1": {Name: "l1", URL: "https://l1.example", Keys: []ed25519.PublicKey{pub(peerKey(t))}}}})
	_, _, err = f.svc.IssuePeerAssertion(ctx, tgt, "evil", nonceHash)
	wantPeerReason(t, "unknown audience", err, ticket.ReasonPeerUnknown)
	_, _, err = f.svc.IssuePeerAssertion(ctx, "TGT-0000-l2a", "l1", nonceHash)
	wantPeerReason(t, "no session", err, "SESSION_NOT_FOUND")
	if _, err := f.svc.DestroySession(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.IssuePeerAssertion(ctx, tgt, "l1", nonceHash)
	wantPeerReason(t, "ended session", err, "SESSION_NOT_FOUND")
}

// TestPeerAssertionStoreDown: with the ticket store down a genuine
// assertion is refused TICKET_STORE_UNAVAILABLE (its single use cannot be
// recorded), never accepted.
func TestPeerAssertionStoreDown(t *testing.T) {
	ctx := context.Background()
	k := peerKey(t)
	l2a := newFixture(t, ticket.Config{Centre: "l2a"})
	l2a.svc.SetPeers(ticket.PeerSettings{Key: k, Peers: map[string]ticket.Peer{"l1": {Name: "l1", URL: "https://l1.example"}}})
	l1 := newFixture(t, ticket.Config{Centre: "l1"})
	l1.svc.SetPeers(ticket.PeerSettings{Peers: map[string]ticket.Peer{"l2a": {Name: "l2a", URL: "https://l2a.example",
		Keys: []ed25519.PublicKey{pub(k)}}}})
	a, _, err := l2a.svc.IssuePeerAssertion(ctx, l2a.login(t, "u1"), "l1", nonceHash)
	if err != nil {
		t.Fatal(err)
	}
	l1.ns.Shutdown()
	l1.ns.WaitForShutdown()
	_, err = l1.svc.RedeemPeerAssertion(ctx, a, nonce)
	wantPeerReason(t, "store down", err, "TICKET_STORE_UNAVAILABLE")
	// (sec28b L1) the refusal is audited, with the person and peer
	if !l1.audit.find("peer.assertion.redeem", "denied", "TICKET_STORE_UNAVAILABLE") {
		t.Fatalf("store-down refusal not audited: %+v", l1.audit.evs)
	}
}

// TestPeerLogout: a session l2a vouched from and the level-1 session
// opened on its word end together, whichever centre the person signs out
// at: each centre's logout token names the session, is good once, and
// ends only sessions tied to its issuer.
func TestPeerLogout(t *testing.T) {
	ctx := context.Background()
	l2aKey, l1Key := peerKey(t), peerKey(t)
	l2a := newFixture(t, ticket.Config{Centre: "l2a"})
	l1 := newFixture(t, ticket.Config{Centre: "l1"})
	l2a.svc.SetPeers(ticket.PeerSettings{Key: l2aKey, Peers: map[string]ticket.Peer{
		"l1": {Name: "l1", URL: "https://l1.example", Keys: []ed25519.PublicKey{pub(l1Key)}}}})
	l1.svc.SetPeers(ticket.PeerSettings{Key: l1Key, Peers: map[string]ticket.Peer{
		"l2a": {Name: "l2a", URL: "https://l2a.example", Keys: []ed25519.PublicKey{pub(l2aKey)}}}})
	hop := func() (string, *ticket.Session, string, *ticket.Session) {
		t.Helper()
		tgtA := l2a.login(t, "u1")
		a, _, err := l2a.svc.IssuePeerAssertion(ctx, tgtA, "l1", nonceHash)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l1.svc.RedeemPeerAssertion(ctx, a, nonce)
		if err != nil {
			t.Fatal(err)
		}
		sessA, err := l2a.svc.GetSession(ctx, tgtA)
		if err != nil || len(sessA.Vouched) != 1 || sessA.Vouched[0] != "l1" || got.PeerSID != sessA.OIDCSid() {
			t.Fatalf("vouching session %+v %v, assertion sid %q", sessA, err, got.PeerSID)
		}
		tgtB, sessB, err := l1.svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: got.AuthLevel,
			Peer: got.Peer, PeerSID: got.PeerSID})
		if err != nil {
			t.Fatal(err)
		}
		return tgtA, sessA, tgtB, sessB
	}

	// Signed out at l2a: its token ends level 1's session, once.
	tgtA, sessA, tgtB, _ := hop()
	other := l1.login(t, "u1") // a session of level 1's own: untouched
	tok, u, err := l2a.svc.PeerLogoutToken("l1", "u1", sessA.OIDCSid())
	if err != nil || u != "https://l1.example/cas/peer/logout" {
		t.Fatalf("token: %q %v", u, err)
	}
	if n, err := l1.svc.PeerLogout(ctx, tok); err != nil || n != 1 {
		t.Fatalf("peer logout at level 1: %d %v", n, err)
	}
	if _, err := l1.svc.GetSession(ctx, tgtB); err == nil {
		t.Fatal("level 1's session from l2a survived l2a's logout")
	}
	if _, err := l1.svc.GetSession(ctx, other); err != nil {
		t.Fatalf("level 1's own session ended: %v", err)
	}
	_, err = l1.svc.PeerLogout(ctx, tok)
	wantPeerReason(t, "replayed logout", err, ticket.ReasonPeerReplayed)
	if !l1.audit.find("session.end", "success", ticket.ReasonPeerLogout) || !l1.audit.find("peer.logout", "success", "OK") {
		t.Fatalf("audit: %+v", l1.audit.evs)
	}
	_ = tgtA

	// Signed out at level 1: its token ends the l2a session it came from.
	tgtA, sessA, _, sessB := hop()
	tok, _, err = l1.svc.PeerLogoutToken("l2a", "u1", sessB.PeerSID)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l2a.svc.PeerLogout(ctx, tok); err != nil || n != 1 {
		t.Fatalf("peer logout at l2a: %d %v", n, err)
	}
	if _, err := l2a.svc.GetSession(ctx, tgtA); err == nil {
		t.Fatal("l2a's session survived level 1's logout")
	}

	// A session that vouched to nobody is not level 1's to end.
	own := l2a.login(t, "u1")
	ownSess, _ := l2a.svc.GetSession(ctx, own)
	tok, _, _ = l1.svc.PeerLogoutToken("l2a", "u1", ownSess.OIDCSid())
	if n, err := l2a.svc.PeerLogout(ctx, tok); err != nil || n != 0 {
		t.Fatalf("a session that did not vouch: %d %v", n, err)
	}
	if _, err := l2a.svc.GetSession(ctx, own); err != nil {
		t.Fatalf("a session that did not vouch ended: %v", err)
	}
	// An assertion is no logout token.
	a, _, err := l2a.svc.IssuePeerAssertion(ctx, own, "l1", nonceHash)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l1.svc.PeerLogout(ctx, a)
	wantPeerReason(t, "assertion as logout token", err, ticket.ReasonPeerInvalid)
	_ = sessA
}

// TestPeerNonceBinding (sec28b H1): an assertion is bound to the hash of
// the browser's nonce; a nonce of another form ("none", empty, the hash
// itself) is never signed nor compared, and an assertion refused for its
// nonce is used up (it cannot be tried again in the browser it was meant
// for, or any other).
func TestPeerNonceBinding(t *testing.T) {
	l2aKey, l1Key := peerKey(t), peerKey(t)
	l2a := newFixture(t, ticket.Config{Centre: "l2a"})
	l1 := newFixture(t, ticket.Config{Centre: "l1"})
	l2a.svc.SetPeers(ticket.PeerSettings{Key: l2aKey, TTL: time.Minute, Peers: map[string]ticket.Peer{
		"l1": {Name: "l1", URL: "https://l1.example/", Keys: []ed25519.PublicKey{pub(l1Key)}}}})
	l1.svc.SetPeers(ticket.PeerSettings{Key: l1Key, Peers: map[string]ticket.Peer{
		"l2a": {Name: "l2a", URL: "https://l2a.example", Keys: []ed25519.PublicKey{pub(l2aKey)}}}})
	ctx := context.Background()
	tgt, _, err := l2a.svc.CreateSession(ctx, ticket.NewSession{UserID: "attacker", Login: "mallory", AuthLevel: 1,
		AuthMethod: int(ticketv1.AuthMethod_AUTH_METHOD_PASSWORD)})
	if err != nil {
		t.Fatal(err)
	}
	// The peer signs only for a hash of a browser's nonce: the request's
	// proto rule, which the server chain checks before the handler (rr29
	// A1), refuses anything else.
	for _, n := range []string{"none", "", nonce, strings.ToUpper(nonceHash), nonceHash[:63] + "g"} {
		err := grpcx.ValidateRequest(&ticketv1.IssuePeerAssertionRequest{Tgt: tgt, Audience: "l1", Nonce: n})
		if ae, ok := apierr.As(err); !ok || ae.Code != apierr.InvalidArgument {
			t.Errorf("assertion asked for nonce %q: %v", n, err)
		}
	}
	if err := grpcx.ValidateRequest(&ticketv1.IssuePeerAssertionRequest{Tgt: tgt, Audience: "l1", Nonce: nonceHash}); err != nil {
		t.Errorf("a nonce's hash refused: %v", err)
	}
	// A browser's nonce or none (no cookie: the domain refuses and uses
	// the assertion up); nothing else reaches the domain.
	for n, ok := range map[string]bool{"": true, nonce: true, "none": false, nonceHash: false, strings.ToUpper(nonce): false} {
		if err := grpcx.ValidateRequest(&ticketv1.RedeemPeerAssertionRequest{Assertion: "a.b.c", Nonce: n}); (err == nil) != ok {
			t.Errorf("redeem with nonce %q: %v", n, err)
		}
	}
	// Hand-signed for the stand-in "none" (as a peer's key holder could):
	// refused for a browser without a nonce, and for one whose nonce it is
	// not.
	none, err := ticket.SignPeerAssertion(l2aKey, ticket.PeerClaims{Iss: "l2a", Aud: "l1", Sub: "attacker", Jti: "j-none",
		Iat: time.Now().Unix(), Exp: time.Now().Add(time.Minute).Unix(), AuthTime: time.Now().Unix(), Acr: 1, Amr: 1, Nonce: "none"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"none", "", nonce} {
		if got, err := l1.svc.RedeemPeerAssertion(ctx, none, n); err == nil {
			t.Errorf("assertion bound to \"none\" redeemed with nonce %q: %+v", n, got)
		}
	}
	// A genuine assertion: refused without the browser's nonce, or with
	// the hash in its place, and then used up.
	a, _, err := l2a.svc.IssuePeerAssertion(ctx, tgt, "l1", nonceHash)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l1.svc.RedeemPeerAssertion(ctx, a, "")
	wantPeerReason(t, "no nonce", err, ticket.ReasonPeerInvalid)
	_, err = l1.svc.RedeemPeerAssertion(ctx, a, nonceHash)
	wantPeerReason(t, "the hash as the nonce", err, ticket.ReasonPeerInvalid)
	_, err = l1.svc.RedeemPeerAssertion(ctx, a, nonce)
	wantPeerReason(t, "after a refusal for its nonce", err, ticket.ReasonPeerReplayed)
	if !l1.audit.find("peer.assertion.redeem", "denied", ticket.ReasonPeerInvalid) {
		t.Errorf("refusal not audited: %+v", l1.audit.evs)
	}
}

// TestPeerLogoutTokenOutlivesRetries (sec28b L3): with assertions of 5 s,
// a logout token still lives through its delivery's retries (+1 s, +5 s,
// +30 s, 10 s each: about 76 s), and no longer than PeerLogoutTokenTTL
// (and the clock skew).
func TestPeerLogoutTokenOutlivesRetries(t *testing.T) {
	ctx := context.Background()
	l2aKey, l1Key := peerKey(t), peerKey(t)
	l2a := newFixture(t, ticket.Config{Centre: "l2a"})
	l1 := newFixture(t, ticket.Config{Centre: "l1"})
	l2a.svc.SetPeers(ticket.PeerSettings{Key: l2aKey, TTL: 5 * time.Second, Peers: map[string]ticket.Peer{
		"l1": {Name: "l1", URL: "https://l1.example", Keys: []ed25519.PublicKey{pub(l1Key)}}}})
	l1.svc.SetPeers(ticket.PeerSettings{Key: l1Key, Peers: map[string]ticket.Peer{
		"l2a": {Name: "l2a", URL: "https://l2a.example", Keys: []ed25519.PublicKey{pub(l2aKey)}}}})
	late, _, err := l2a.svc.PeerLogoutToken("l1", "u1", "sid-1")
	if err != nil {
		t.Fatal(err)
	}
	tooLate, _, err := l2a.svc.PeerLogoutToken("l1", "u1", "sid-2")
	if err != nil {
		t.Fatal(err)
	}
	l1.clock.advance(80 * time.Second)
	if _, err := l1.svc.PeerLogout(ctx, late); err != nil {
		t.Fatalf("a logout token at its last retry: %v", err)
	}
	l1.clock.advance(ticket.PeerLogoutTokenTTL)
	_, err = l1.svc.PeerLogout(ctx, tooLate)
	wantPeerReason(t, "a logout token past its life", err, ticket.ReasonPeerExpired)
}

// TestPeerForgeriesThinned (sec28b L1): anyone can send forged assertions
// and logout tokens, so their refusals (before a signature holds) are
// audited at most once a second per client address, the next record
// saying how many it stands for; another address gets its own record, and
// a genuine assertion's refusal is never thinned.
func TestPeerForgeriesThinned(t *testing.T) {
	l2aKey := peerKey(t)
	l1 := newFixture(t, ticket.Config{Centre: "l1"})
	l1.svc.SetPeers(ticket.PeerSettings{Key: peerKey(t), Peers: map[string]ticket.Peer{
		"l2a": {Name: "l2a", URL: "https://l2a.example", Keys: []ed25519.PublicKey{pub(l2aKey)}}}})
	from := func(ip string) context.Context {
		return caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr(ip)})
	}
	count := func(api string) (n int, suppressed []string) {
		for _, ev := range l1.audit.evs {
			if ev.API == api && ev.Result == "denied" {
				n++
				suppressed = append(suppressed, ev.Detail["suppressed"])
			}
		}
		return n, suppressed
	}
	for range 50 {
		_, err := l1.svc.RedeemPeerAssertion(from("192.0.2.7"), "not.an.assertion", nonce)
		wantPeerReason(t, "forgery", err, ticket.ReasonPeerInvalid)
		_, err = l1.svc.PeerLogout(from("192.0.2.7"), "forged.logout.token")
		wantPeerReason(t, "forged logout", err, ticket.ReasonPeerInvalid)
	}
	if n, _ := count("peer.assertion.redeem"); n != 1 {
		t.Fatalf("50 forgeries in one second from one address: %d records, want 1", n)
	}
	if n, _ := count("peer.logout"); n != 1 {
		t.Fatalf("50 forged logout tokens in one second: %d records, want 1", n)
	}
	if _, err := l1.svc.RedeemPeerAssertion(from("2001:db8::1"), "x.y.z", nonce); err == nil {
		t.Fatal("forgery accepted")
	}
	if n, _ := count("peer.assertion.redeem"); n != 2 {
		t.Fatalf("another address not audited: %d records", n)
	}
	l1.clock.advance(1100 * time.Millisecond)
	if _, err := l1.svc.RedeemPeerAssertion(from("192.0.2.7"), "not.an.assertion", nonce); err == nil {
		t.Fatal("forgery accepted")
	}
	if n, sup := count("peer.assertion.redeem"); n != 3 || sup[2] != "49" {
		t.Fatalf("the next second: %d records, suppressed %v; want 3, the last standing for 49", n, sup)
	}
	// Genuine but replayed: every one audited.
	a, err := ticket.SignPeerAssertion(l2aKey, ticket.PeerClaims{Iss: "l2a", Aud: "l1", Sub: "u1", Jti: "j1",
		Iat: l1.clock.now().Unix(), Exp: l1.clock.now().Add(time.Minute).Unix(), AuthTime: l1.clock.now().Unix(), Acr: 1, Amr: 1,
		Nonce: nonceHash})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l1.svc.RedeemPeerAssertion(from("192.0.2.7"), a, nonce); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := l1.svc.RedeemPeerAssertion(from("192.0.2.7"), a, nonce)
		wantPeerReason(t, "replay", err, ticket.ReasonPeerReplayed)
	}
	replays := 0
	for _, ev := range l1.audit.evs {
		if ev.Reason == ticket.ReasonPeerReplayed {
			replays++
		}
	}
	if replays != 3 {
		t.Fatalf("replays of a genuine assertion audited %d times, want 3", replays)
	}
}

// TestSessionPeerOnlyWhenSet (rr29 C1): session.create names a peer only
// for a session a peer's assertion opened; Logout answers the session that
// ended, with its peer (the logout page's link), nil for none.
func TestSessionPeerOnlyWhenSet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ticket.Config{Centre: "l2a"})
	local := f.login(t, "u1")
	viaPeer, _, err := f.svc.CreateSession(ctx, ticket.NewSession{UserID: "u2", Login: "bo", AuthLevel: 1, Peer: "l1", PeerSID: "sid-1"})
	if err != nil {
		t.Fatal(err)
	}
	peers := map[string]string{}
	f.audit.mu.Lock()
	for _, e := range f.audit.evs {
		if e.API == "session.create" {
			p, ok := e.Detail["peer"]
			if !ok {
				p = "(none)"
			}
			peers[e.Subject] = p
		}
	}
	f.audit.mu.Unlock()
	if peers["user:u1"] != "(none)" || peers["user:u2"] != "l1" {
		t.Fatalf("session.create peer fields: %v, want none for the local login and l1 for the peer's", peers)
	}
	for tgt, want := range map[string]string{local: "", viaPeer: "l1"} {
		sess, err := f.svc.Logout(ctx, tgt)
		if err != nil || sess == nil || sess.Peer != want {
			t.Fatalf("logout: %+v, %v; want peer %q", sess, err, want)
		}
		if sess, err := f.svc.Logout(ctx, tgt); sess != nil || err != nil {
			t.Fatalf("second logout: %+v, %v", sess, err)
		}
	}
}

// failingNonces is a store of things seen once that cannot tell.
type failingNonces struct{}

func (failingNonces) Remember(context.Context, string, time.Duration) error {
	return errors.New("nonces: bucket unavailable")
}

// TestPeerTokensUsedOnceInTheNonceStore (rr29 B3): an assertion's and a
// logout token's single use is recorded in the platform's store of things
// seen once (Deps.Nonces), so that one used at an instance is refused at
// another with its own ticket store; a store that cannot tell refuses
// (TICKET_STORE_UNAVAILABLE, audited), never accepts.
func TestPeerTokensUsedOnceInTheNonceStore(t *testing.T) {
	ctx := context.Background()
	k := peerKey(t)
	l2a := newFixture(t, ticket.Config{Centre: "l2a"})
	l2a.svc.SetPeers(ticket.PeerSettings{Key: k, Peers: map[string]ticket.Peer{"l1": {Name: "l1", URL: "https://l1.example"}}})
	shared := caller.NewMemoryNonces(nil)
	instance := func(nonces caller.NonceStore) *fixture {
		f := newFixtureWith(t, ticket.Config{Centre: "l1"}, nil, func(d *ticket.Deps) { d.Nonces = nonces })
		f.svc.SetPeers(ticket.PeerSettings{Peers: map[string]ticket.Peer{"l2a": {Name: "l2a", URL: "https://l2a.example",
			Keys: []ed25519.PublicKey{pub(k)}}}})
		return f
	}
	l1a, l1b, l1down := instance(shared), instance(shared), instance(failingNonces{})
	tgt := l2a.login(t, "u1")
	a, _, err := l2a.svc.IssuePeerAssertion(ctx, tgt, "l1", nonceHash)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l1a.svc.RedeemPeerAssertion(ctx, a, nonce); err != nil {
		t.Fatal(err)
	}
	_, err = l1b.svc.RedeemPeerAssertion(ctx, a, nonce)
	wantPeerReason(t, "an assertion used at another instance", err, ticket.ReasonPeerReplayed)
	lt, _, err := l2a.svc.PeerLogoutToken("l1", "u1", "sid-x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l1a.svc.PeerLogout(ctx, lt); err != nil {
		t.Fatal(err)
	}
	_, err = l1b.svc.PeerLogout(ctx, lt)
	wantPeerReason(t, "a logout token used at another instance", err, ticket.ReasonPeerReplayed)

	a2, _, err := l2a.svc.IssuePeerAssertion(ctx, tgt, "l1", nonceHash)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l1down.svc.RedeemPeerAssertion(ctx, a2, nonce)
	wantPeerReason(t, "store cannot tell", err, "TICKET_STORE_UNAVAILABLE")
	_, err = l1down.svc.PeerLogout(ctx, lt)
	wantPeerReason(t, "store cannot tell (logout)", err, "TICKET_STORE_UNAVAILABLE")
	if !l1down.audit.find("peer.assertion.redeem", "denied", "TICKET_STORE_UNAVAILABLE") ||
		!l1down.audit.find("peer.logout", "denied", "TICKET_STORE_UNAVAILABLE") {
		t.Fatalf("refusals not audited: %+v", l1down.audit.evs)
	}
}
