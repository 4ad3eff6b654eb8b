package ticket

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// Sign-in across centres (ADR 0030): a centre's CAS pages send a browser
// without a session to a peer centre (ticket.peers) the person is signed in
// at; the peer answers with a signed, single-use, short-lived assertion for
// this centre, bound to the browser's nonce, naming the person, how and when
// they signed in. This centre verifies it with the peer's configured public
// keys, uses it up and opens its own session at the same level.

// The reasons of sign-in across centres.
const (
	ReasonPeerSignInOff     = "PEER_SIGN_IN_OFF"
	ReasonPeerUnknown       = "PEER_UNKNOWN"
	ReasonPeerInvalid       = "PEER_ASSERTION_INVALID"
	ReasonPeerExpired       = "PEER_ASSERTION_EXPIRED"
	ReasonPeerReplayed      = "PEER_ASSERTION_REPLAYED"
	ReasonPeerWrongAudience = "PEER_ASSERTION_AUDIENCE"
	peerAssertionType       = "uias-peer+jwt"
	peerLogoutType          = "uias-peer-logout+jwt"
	// ReasonPeerLogout is the session.end reason of a session a peer's
	// logout token ended.
	ReasonPeerLogout        = "PEER_LOGOUT"
	DefaultPeerAssertionTTL = time.Minute
	// PeerLogoutTokenTTL is the least lifetime of a logout token: it
	// covers the delivery's retries (about 76 s from the first attempt).
	PeerLogoutTokenTTL       = 2 * time.Minute
	peerClockSkew            = 30 * time.Second
	maxPeerAssertionLifetime = 5 * time.Minute
)

// Errors of sign-in across centres.
var (
	ErrPeerSignInOff = apierr.New(apierr.FailedPrecondition, ReasonPeerSignInOff,
		"sign-in across centres is not set up at this centre (ticket.peer_key_file, ticket.peers)")
	errPeerInvalid   = apierr.New(apierr.Unauthenticated, ReasonPeerInvalid, "the other centre's sign-in could not be verified")
	errPeerExpired   = apierr.New(apierr.Unauthenticated, ReasonPeerExpired, "the other centre's sign-in has expired")
	errPeerReplayed  = apierr.New(apierr.Unauthenticated, ReasonPeerReplayed, "the other centre's sign-in was used already")
	errPeerAudience  = apierr.New(apierr.Unauthenticated, ReasonPeerWrongAudience, "the other centre's sign-in is for another centre")
	errPeerUnknownFn = func(name string) error {
		return apierr.New(apierr.PermissionDenied, ReasonPeerUnknown, fmt.Sprintf("centre %q is not a configured peer (ticket.peers)", name))
	}
)

// Peer is a centre this one trusts (ticket.peers).
type Peer struct {
	// Name is the peer's centre code (its ticket.centre).
	Name string
	// URL is the peer's external base URL (https://sso.l1.example): its
	// pages are URL/cas/....
	URL string
	// Keys are the public keys the peer signs its assertions with (more
	// than one during a rotation).
	Keys []ed25519.PublicKey
}

// PeerSettings configure sign-in across centres.
type PeerSettings struct {
	// Key signs this centre's assertions (nil: it issues none).
	Key ed25519.PrivateKey
	// Peers by name.
	Peers map[string]Peer
	// TTL is an assertion's lifetime (DefaultPeerAssertionTTL).
	TTL time.Duration
}

// PeerNonceHash is what a peer's assertion is bound to: the SHA-256 (hex)
// of the browser's nonce, the value of the cookie the receiving centre's
// page set when the person started the hop. The peer, and whoever sees the
// URLs of the hop, learn only the hash, never the cookie's value.
func PeerNonceHash(nonce string) string {
	h := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(h[:])
}

// PeerKeyID is the key id of a public key in an assertion's header: the
// first 16 bytes of its SHA-256, hex.
func PeerKeyID(k ed25519.PublicKey) string {
	h := sha256.Sum256(k)
	return hex.EncodeToString(h[:16])
}

// SetPeers configures sign-in across centres.
func (s *Service) SetPeers(p PeerSettings) {
	if p.TTL <= 0 {
		p.TTL = DefaultPeerAssertionTTL
	}
	s.peers = &p
}

// PeerAssertion is what a verified assertion says.
type PeerAssertion struct {
	Peer       string
	UserID     string
	AuthLevel  int
	AuthMethod int
	AuthTime   time.Time
	// PeerSID: the peer's session it came from.
	PeerSID string
}

// PeerClaims are an assertion's claims (JWT names): iss the signing
// centre, aud the centre it is for, sub the person's UIAS id, jti its
// single-use id, iat/exp/auth_time Unix seconds, acr the session's level
// (1, 2), amr its method (ticketv1.AuthMethod), nonce the browser's, sid
// the session (see Sid).
type PeerClaims struct {
	Iss      string `json:"iss"`
	Aud      string `json:"aud"`
	Sub      string `json:"sub"`
	Jti      string `json:"jti"`
	Iat      int64  `json:"iat"`
	Exp      int64  `json:"exp"`
	AuthTime int64  `json:"auth_time"`
	Acr      int    `json:"acr"`
	Amr      int    `json:"amr"`
	Nonce    string `json:"nonce,omitempty"`
	// Sid is the issuing centre's session (its OIDCSid): in an assertion,
	// the session it came from; in a logout token, the session to end.
	Sid string `json:"sid,omitempty"`
}

// IssuePeerAssertion signs an assertion that the person of tgt's live
// session is signed in here, for peer audience, bound to nonceHash (the
// PeerNonceHash of the browser's nonce at the audience; its format, 64
// lowercase hex, is IssuePeerAssertionRequest's proto rule, checked before
// a call reaches here); it returns the assertion and the peer's page
// that takes it.
func (s *Service) IssuePeerAssertion(ctx context.Context, tgt, audience, nonceHash string) (string, string, error) {
	start := s.now()
	if s.peers == nil || s.peers.Key == nil {
		return "", "", ErrPeerSignInOff
	}
	p, ok := s.peers.Peers[audience]
	if !ok {
		return "", "", errPeerUnknownFn(audience)
	}
	if !validTGT(tgt) {
		return "", "", ErrSessionNotFound
	}
	sess, err := s.recordVouched(ctx, SessionID(tgt), audience)
	if err != nil {
		return "", "", err
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	c := PeerClaims{Iss: s.cfg.Centre, Aud: audience, Sub: sess.UserID, Jti: base64.RawURLEncoding.EncodeToString(jti),
		Iat: start.Unix(), Exp: start.Add(s.peers.TTL).Unix(), AuthTime: sess.AuthTime().Unix(), Acr: sess.AuthLevel,
		Amr: sess.AuthMethod, Nonce: nonceHash, Sid: sess.OIDCSid()}
	tok, err := SignPeerAssertion(s.peers.Key, c)
	if err != nil {
		return "", "", err
	}
	s.audit(ctx, audit.Action{API: "peer.assertion.issue", Subject: "user:" + sess.UserID, Org: sess.OrgID,
		Result: audit.ResultSuccess, Reason: "OK", Start: start,
		Fields: detail("audience", audience, "session_id", sess.ID, "auth_level", fmt.Sprint(sess.AuthLevel))})
	return tok, strings.TrimSuffix(p.URL, "/") + "/cas/peer/accept", nil
}

// SignPeerAssertion signs c with key as a compact JWS (EdDSA, typ
// uias-peer+jwt, kid PeerKeyID): what IssuePeerAssertion hands the browser.
func SignPeerAssertion(key ed25519.PrivateKey, c PeerClaims) (string, error) {
	return signPeer(key, peerAssertionType, c)
}

// recordVouched records in the live session id that it vouched to
// audience (its end tells the audience), and returns it.
func (s *Service) recordVouched(ctx context.Context, id, audience string) (*Session, error) {
	sess, rev, err := s.liveSession(ctx, id)
	for attempt := 0; err == nil; attempt++ {
		if slices.Contains(sess.Vouched, audience) {
			return sess, nil
		}
		sess.Vouched = append(sess.Vouched, audience)
		err = s.store.UpdateSession(ctx, sess, rev, sess.Expiry(s.cfg.TGTIdle).Sub(s.now()))
		switch {
		case err == nil:
			return sess, nil
		case errors.Is(err, ErrConflict) && attempt < 5:
			sess, rev, err = s.liveSession(ctx, id)
		case errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound):
			return nil, ErrSessionNotFound
		}
	}
	return nil, err
}

func signPeer(key ed25519.PrivateKey, typ string, c PeerClaims) (string, error) {
	return encodeJWS(jwsHeader{Alg: "EdDSA", Typ: typ, Kid: PeerKeyID(key.Public().(ed25519.PublicKey))}, c,
		func(in []byte) ([]byte, error) { return ed25519.Sign(key, in), nil })
}

// RedeemPeerAssertion verifies a peer's assertion for this centre, bound
// to the browser's nonce (its cookie's value, 32 lowercase hex by
// RedeemPeerAssertionRequest's proto rule: the assertion names its
// PeerNonceHash; an empty nonce, a browser without the cookie, is refused
// and never compared with a stand-in value), and uses it up. A genuine assertion is used up even when it
// is refused for its nonce, so that one that reached the wrong browser
// cannot be tried again elsewhere. Every refusal is audited.
func (s *Service) RedeemPeerAssertion(ctx context.Context, tok, nonce string) (*PeerAssertion, error) {
	start := s.now()
	c, err := s.verifyPeer(tok, peerAssertionType, nonce, start)
	if c != nil && (err == nil || errors.Is(err, errPeerNonceMismatch)) {
		if uerr := s.useOnce(ctx, "peer", c, start); errors.Is(uerr, errPeerReplayed) {
			if err == nil {
				err = errPeerReplayed
			}
		} else if uerr != nil {
			// not accepted, and audited (sec28b L1)
			s.audit(ctx, audit.Action{API: "peer.assertion.redeem", Subject: "user:" + c.Sub, Result: audit.ResultDenied,
				Reason: reasonOf(uerr), Start: start, Fields: detail("peer", c.Iss)})
			return nil, uerr
		}
	}
	if errors.Is(err, errPeerNonceMismatch) {
		err = errPeerInvalid
	}
	if err != nil {
		s.auditPeerRefusal(ctx, "peer.assertion.redeem", start, tok, c, err)
		return nil, err
	}
	subject := "user:" + c.Sub
	s.audit(ctx, audit.Action{API: "peer.assertion.redeem", Subject: subject, Result: audit.ResultSuccess, Reason: "OK",
		Start: start, Fields: detail("peer", c.Iss, "auth_level", fmt.Sprint(c.Acr))})
	return &PeerAssertion{Peer: c.Iss, UserID: c.Sub, AuthLevel: c.Acr, AuthMethod: c.Amr, AuthTime: time.Unix(c.AuthTime, 0).UTC(),
		PeerSID: c.Sid}, nil
}

// errPeerNonceMismatch is an assertion of another browser (or of none):
// refused as PEER_ASSERTION_INVALID, and used up.
var errPeerNonceMismatch = fmt.Errorf("nonce: %w", errPeerInvalid)

// peerSkewTTL is how long past its expiry a used assertion's record
// is kept (the clock skew accepted, and a margin).
const peerSkewTTL = peerClockSkew + 30*time.Second

// The bucket of the peers' assertions and logout tokens used (Deps.Nonces,
// natsnonce): a record outlives its token, which lives at most
// maxPeerAssertionLifetime from a time at most peerClockSkew ahead, by
// peerSkewTTL.
const (
	PeerTokensBucket = "UIAS_PEER_TOKENS"
	PeerTokensTTL    = maxPeerAssertionLifetime + peerClockSkew + peerSkewTTL
)

// useOnce records the use of c (an assertion, kind "peer", or a logout
// token, "peerlogout") in the platform's store of things seen once until
// it has expired: errPeerReplayed when it was used before, at any
// instance; ErrStoreUnavailable when the store cannot tell (refused, never
// accepted).
func (s *Service) useOnce(ctx context.Context, kind string, c *PeerClaims, now time.Time) error {
	ttl := min(time.Unix(c.Exp, 0).Add(peerSkewTTL).Sub(now), PeerTokensTTL)
	h := sha256.Sum256([]byte(kind + "\x00" + c.Iss + "\x00" + c.Jti))
	err := s.nonces.Remember(ctx, hex.EncodeToString(h[:]), ttl)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, caller.ErrNonceSeen):
		return errPeerReplayed
	}
	return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
}

// verifyPeer checks tok; the claims are returned (with an error) once the
// signature holds, so that refusals of a genuine assertion are audited
// with its person and peer.
func (s *Service) verifyPeer(tok, typ, nonce string, now time.Time) (*PeerClaims, error) {
	if s.peers == nil || len(s.peers.Peers) == 0 {
		return nil, ErrPeerSignInOff
	}
	h, cb, in, sig, err := splitJWS(tok)
	var c PeerClaims
	if err != nil || json.Unmarshal(cb, &c) != nil || h.Alg != "EdDSA" || h.Typ != typ {
		return nil, errPeerInvalid
	}
	p, ok := s.peers.Peers[c.Iss]
	if !ok {
		return nil, errPeerUnknownFn(c.Iss)
	}
	var key ed25519.PublicKey
	for _, k := range p.Keys {
		if PeerKeyID(k) == h.Kid {
			key = k
		}
	}
	if key == nil || !ed25519.Verify(key, in, sig) {
		// untrusted key or a forged signature
		return nil, errPeerInvalid
	}
	switch {
	case c.Aud != s.cfg.Centre:
		return &c, errPeerAudience
	case c.Exp <= c.Iat || time.Duration(c.Exp-c.Iat)*time.Second > maxPeerAssertionLifetime ||
		time.Unix(c.Iat, 0).After(now.Add(peerClockSkew)):
		return &c, errPeerInvalid
	case !now.Before(time.Unix(c.Exp, 0).Add(peerClockSkew)):
		return &c, errPeerExpired
	case typ == peerAssertionType && (time.Unix(c.AuthTime, 0).After(now.Add(peerClockSkew)) ||
		!now.Before(time.Unix(c.AuthTime, 0).Add(s.cfg.TGTHard))):
		// a sign-in from the future, or one older than a session may live
		return &c, errPeerExpired
	case typ == peerAssertionType && (nonce == "" ||
		subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(PeerNonceHash(nonce))) != 1):
		return &c, errPeerNonceMismatch
	case typ == peerAssertionType && (c.Acr < 1 || c.Acr > 2 || c.Amr < 0 || c.Amr > 8):
		return &c, errPeerInvalid
	case c.Sub == "" || c.Jti == "" || (typ == peerLogoutType && c.Sid == ""):
		return &c, errPeerInvalid
	}
	return &c, nil
}

// PeerLogoutToken signs, for peer, a logout token naming the person sub
// and the session sid (the peer's own, or this centre's the peer opened a
// session from), and returns where to post it (the peer's
// /cas/peer/logout). ErrPeerSignInOff without a key; PEER_UNKNOWN for a
// peer not configured.
func (s *Service) PeerLogoutToken(peer, sub, sid string) (string, string, error) {
	if s.peers == nil || s.peers.Key == nil {
		return "", "", ErrPeerSignInOff
	}
	p, ok := s.peers.Peers[peer]
	if !ok {
		return "", "", errPeerUnknownFn(peer)
	}
	now := s.now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	// The same token is retried (component/slo.go: +1 s, +5 s, +30 s, 10 s
	// each): it lives at least PeerLogoutTokenTTL, whatever the assertions'
	// lifetime, so that the last retry is not refused as expired (sec28b L3).
	tok, err := signPeer(s.peers.Key, peerLogoutType, PeerClaims{Iss: s.cfg.Centre, Aud: peer, Sub: sub, Sid: sid,
		Jti: base64.RawURLEncoding.EncodeToString(jti), Iat: now.Unix(), Exp: now.Add(max(s.peers.TTL, PeerLogoutTokenTTL)).Unix()})
	return tok, strings.TrimSuffix(p.URL, "/") + "/cas/peer/logout", err
}

// PeerLogout verifies a peer's logout token (as an assertion, without a
// nonce) and ends the person's sessions tied to that peer's session: the
// one here the peer opened a session from (sid is this centre's, and it
// vouched to the peer), and those opened here on the peer's word from its
// session sid. It answers how many ended; refusals are audited.
func (s *Service) PeerLogout(ctx context.Context, tok string) (int, error) {
	start := s.now()
	c, err := s.verifyPeer(tok, peerLogoutType, "", start)
	if err == nil {
		if uerr := s.useOnce(ctx, "peerlogout", c, start); errors.Is(uerr, errPeerReplayed) {
			err = errPeerReplayed
		} else if uerr != nil {
			s.audit(ctx, audit.Action{API: "peer.logout", Subject: "user:" + c.Sub, Result: audit.ResultDenied,
				Reason: reasonOf(uerr), Start: start, Fields: detail("peer", c.Iss)})
			return 0, uerr
		}
	}
	if err != nil {
		s.auditPeerRefusal(ctx, "peer.logout", start, tok, c, err)
		return 0, err
	}
	sessions, err := s.UserSessions(ctx, c.Sub)
	if err != nil && !errors.Is(err, ErrNoSuchUserSession) {
		return 0, err
	}
	n := 0
	for _, sess := range sessions {
		mine := sess.OIDCSid() == c.Sid && slices.Contains(sess.Vouched, c.Iss)
		theirs := sess.Peer == c.Iss && sess.PeerSID == c.Sid
		if !mine && !theirs {
			continue
		}
		ended, err := s.endSession(ctx, sess.ID, c.Sub, ReasonPeerLogout)
		if err != nil && !ended {
			return n, err
		}
		if ended {
			n++
		}
	}
	s.audit(ctx, audit.Action{API: "peer.logout", Subject: "user:" + c.Sub, Result: audit.ResultSuccess, Reason: "OK", Start: start,
		Fields: detail("peer", c.Iss, "sessions", fmt.Sprint(n))})
	return n, nil
}

// auditPeerRefusal audits the refusal err of tok (c: its claims once the
// signature holds). Anyone can send a forgery, so refusals before the
// signature holds are thinned per client address (sec28b L1): at most one
// record a second, carrying how many it stands for ("suppressed").
func (s *Service) auditPeerRefusal(ctx context.Context, api string, start time.Time, tok string, c *PeerClaims, err error) {
	fields := peerRefusalDetail(tok, c)
	if c == nil {
		ok, suppressed := s.peerThin.Note(api+"|"+audit.AddressKey(caller.From(ctx).ClientIP), s.now())
		if !ok {
			return
		}
		if suppressed > 0 {
			fields = append(fields, events.DetailField{Key: "suppressed", Value: strconv.Itoa(suppressed)})
		}
	}
	s.audit(ctx, audit.Action{API: api, Subject: peerSubject(c), Result: audit.ResultDenied, Reason: reasonOf(err),
		Start: start, Fields: fields})
}

// peerSubject is the audit subject of a refused assertion or logout token:
// its person once the signature holds, none otherwise.
func peerSubject(c *PeerClaims) string {
	if c == nil {
		return ""
	}
	return "user:" + c.Sub
}

// peerRefusalDetail is the audit detail of a refused assertion or logout
// token: the peer once the signature holds; before that (malformed, an
// unknown issuer, a key not configured, a forged signature) what it claims
// (issuer, person), marked unverified and cut to 64 characters, for the
// forensics of a forgery (sec28b L1).
func peerRefusalDetail(tok string, c *PeerClaims) []events.DetailField {
	if c != nil {
		return detail("peer", c.Iss)
	}
	var claimed PeerClaims
	if parts := strings.Split(tok, "."); len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			_ = json.Unmarshal(b, &claimed)
		}
	}
	cut := func(v string) string {
		if len(v) > 64 {
			return strings.ToValidUTF8(v[:64], "")
		}
		return v
	}
	if claimed.Iss == "" && claimed.Sub == "" {
		return detail("peer", "")
	}
	return detail("peer", "", "claimed_peer", cut(claimed.Iss), "claimed_subject", cut(claimed.Sub), "claims", "unverified")
}
