package caller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/reqsig"
)

// Request signatures (JR/T 0185-2020 A2 interfaces; pkg/reqsig says what
// is signed and how). An application with signing keys may sign its calls;
// with RequireSignatures it must. A signature is checked after App_Secret,
// status, certificate and IP allow-list: a caller who cannot pass those
// learns nothing of it.

// The reasons of signature checks.
const (
	ReasonSignatureRequired = "SIGNATURE_REQUIRED"
	ReasonBadSignature      = "BAD_SIGNATURE"
	ReasonStaleSignature    = "STALE_SIGNATURE"
	ReasonReplayedRequest   = "REPLAYED_REQUEST"
	ReasonReplayUnavailable = "REPLAY_CHECK_UNAVAILABLE"
	ReasonSigningKeyExpired = "SIGNING_KEY_EXPIRED"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonSignatureRequired, Code: apierr.Unauthenticated,
			Doc: "The application requires signed requests (require_signed_requests) and the call has no X-Uias-Signature (gRPC x-uias-signature)."},
		apierr.Reason{Name: ReasonBadSignature, Code: apierr.Unauthenticated,
			Doc: "The request's signature does not verify with any of the application's signing keys (a changed body, method or path, another App_ID), is malformed, lacks its timestamp or nonce, or the application has no signing key."},
		apierr.Reason{Name: ReasonStaleSignature, Code: apierr.Unauthenticated,
			Doc: "The signed request's timestamp is more than 300 seconds from the server's clock: sign each request when it is sent, with a synchronised clock."},
		apierr.Reason{Name: ReasonReplayedRequest, Code: apierr.Unauthenticated,
			Doc: "The signed request's nonce was already used by the application within the signature window: a replayed request (use a new random nonce for every request, retries included)."},
		apierr.Reason{Name: ReasonSigningKeyExpired, Code: apierr.Unauthenticated,
			Doc: "The request was signed with a signing key past its validity period (JR/T 0185-2020 7.3.4; the key's expire_time in the application's signing_keys): register a new key beside it (uias ctl app update --signing-key OLD.pem --signing-key NEW.pem), sign with the new one, then remove the old."},
		apierr.Reason{Name: ReasonReplayUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "A signed request could not be checked against replays (the nonce store, NATS JetStream, is unreachable); it is refused rather than accepted unchecked. Retry later."},
	)
}

// SignedRequest is what a call presents of its signature; the transport
// reads it (grpcx.RequestSignature). The zero value is an unsigned call.
type SignedRequest struct {
	// Signature, Timestamp and Nonce are the values sent (x-uias-signature,
	// x-uias-timestamp, x-uias-nonce).
	Signature, Timestamp, Nonce string
	// Target is the signed target: the gRPC full method, or for a REST
	// call the HTTP method and request target the edge received.
	Target string
	// BodySHA256 is the lower case hex SHA-256 of the request's bytes
	// (the protobuf message as received, or the HTTP body the edge
	// received); "" when the transport could not know them.
	BodySHA256 string
	// Untrusted: the call came from a REST edge whose account of the HTTP
	// request this server does not believe (no shared internal key).
	Untrusted bool
}

// Signed reports whether the call came with a signature.
func (s *SignedRequest) Signed() bool { return s != nil && s.Signature != "" }

// Attempted reports whether the call came with any of a signature's
// values (a signature, a timestamp, a nonce): such a call is checked as a
// signed one (half a signature is refused, never taken for an unsigned
// call).
func (s *SignedRequest) Attempted() bool {
	return s != nil && (s.Signature != "" || s.Timestamp != "" || s.Nonce != "")
}

// NonceStore remembers the nonces of signed calls, so that each is
// accepted once. Implementations: MemoryNonces (one process) and
// pkg/caller/natsnonce (JetStream KV, every replica).
type NonceStore interface {
	// Remember records key for at least ttl. It returns ErrNonceSeen when
	// key is recorded already, another error when it cannot tell.
	Remember(ctx context.Context, key string, ttl time.Duration) error
}

// ErrNonceSeen is what a NonceStore returns for a key it holds.
var ErrNonceSeen = errors.New("caller: nonce already used")

// nonceTTL is how long a nonce is remembered: a request is accepted while
// its timestamp is within MaxSkew of the clock, so up to 2*MaxSkew after
// it was first seen; a little more for clocks of other replicas.
const nonceTTL = 2*reqsig.MaxSkew + 30*time.Second

// NonceKey is the store key of nonce for application appID: the App_ID
// (hex, so any App_ID makes a valid key) and the SHA-256 of the nonce.
func NonceKey(appID, nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString([]byte(appID)) + "." + hex.EncodeToString(sum[:16])
}

// checkSignature checks the signature policy of app for sig at now: it
// returns the thumbprint of the key that verified the signature ("" for
// an unsigned call that may be unsigned) or the refusal.
func (a *AppAuthenticator) checkSignature(app *App, sig *SignedRequest, now time.Time) (string, *apierr.Error) {
	if !sig.Signed() && (sig.Timestamp != "" || sig.Nonce != "") {
		// Half a signature (a signer's bug, a misspelt header): never
		// taken for an unsigned call.
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature,
			"the request carries X-Uias-Timestamp or X-Uias-Nonce but no X-Uias-Signature (or an empty one): send all three, or none")
	}
	if !sig.Signed() {
		if app.RequireSignatures {
			return "", apierr.New(apierr.Unauthenticated, ReasonSignatureRequired,
				"this application must sign its requests: send X-Uias-Timestamp, X-Uias-Nonce and X-Uias-Signature (see docs/integrators.md, Signed requests)")
		}
		return "", nil
	}
	if len(app.SigningKeys) == 0 {
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature,
			"the request is signed but the application has no signing key registered: ask your UIAS administrator to register its public key, or do not sign")
	}
	if sig.Timestamp == "" || sig.Nonce == "" {
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature,
			"a signed request also carries X-Uias-Timestamp (unix seconds) and X-Uias-Nonce")
	}
	ts, ok := reqsig.ParseTimestamp(sig.Timestamp)
	if !ok {
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature, "the signature's timestamp is not unix seconds")
	}
	if !reqsig.ValidNonce(sig.Nonce) {
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature,
			"the signature's nonce is not 16 to 64 characters of A-Z, a-z, 0-9, _ and -")
	}
	raw, ok := reqsig.DecodeSignature(sig.Signature)
	if !ok {
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature, "the signature is not base64")
	}
	if sig.Untrusted {
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature,
			"the signed REST request came through an edge this service does not trust, so what was signed is unknown: "+
				"the gateway and identity need the same internal key (internal_key_file)")
	}
	if sig.BodySHA256 == "" || sig.Target == "" {
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature,
			"the request's bytes are unknown to the server on this path, so its signature cannot be verified")
	}
	msg := []byte(reqsig.StringToSign(app.ID, sig.Target, sig.Timestamp, sig.Nonce, sig.BodySHA256))
	var used string
	var notAfter time.Time
	for _, k := range app.SigningKeys {
		if k.Verify(msg, raw) {
			used, notAfter = k.Thumbprint, k.NotAfter
			break
		}
	}
	if used == "" {
		// What the server verified, for the integrator to compare with
		// what they signed (nothing secret: told only to a caller who
		// passed the App_Secret checks). An SM2 signer's usual mistake is
		// the user ID, which OpenSSL does not set by itself (sec31b L4).
		sm2 := ""
		for _, k := range app.SigningKeys {
			if k.Algorithm == reqsig.AlgSM2 {
				sm2 = "; an SM2 signature is made with the user ID " + reqsig.SM2UserID +
					", which OpenSSL does not apply by itself: pass -sigopt distid:" + reqsig.SM2UserID + " (EVP_PKEY_CTX_set1_id)"
				break
			}
		}
		return "", apierr.New(apierr.Unauthenticated, ReasonBadSignature,
			"the request's signature does not verify with the application's signing keys (signed: "+reqsig.Version+
				", the App_ID, "+sig.Target+", the timestamp, the nonce and the SHA-256 of the request's bytes, "+
				"lines joined by \\n, no newline at the end; the server's are in this error's details)"+sm2).
			WithMeta("signed_target", sig.Target).WithMeta("body_sha256", sig.BodySHA256)
	}
	// The time is checked after the signature, so only the key's holder
	// learns about its clock.
	if d := now.Sub(ts); d > reqsig.MaxSkew || d < -reqsig.MaxSkew {
		return "", apierr.New(apierr.Unauthenticated, ReasonStaleSignature,
			"the signature's timestamp "+sig.Timestamp+" is "+skew(d)+" the server's clock "+strconv.FormatInt(now.Unix(), 10)+
				"; at most "+strconv.Itoa(int(reqsig.MaxSkew/time.Second))+" seconds either way are allowed")
	}
	// Past its validity period, told only to the key's holder (the
	// signature verified).
	if !notAfter.IsZero() && !now.Before(notAfter) {
		return "", apierr.New(apierr.Unauthenticated, ReasonSigningKeyExpired,
			"the key that signed this request (thumbprint "+used+") expired at "+notAfter.UTC().Format(time.RFC3339)+
				": register a new signing key beside it, sign with the new one, then remove the old (docs/integrators.md, Signed requests)").
			WithMeta("key_thumbprint", used)
	}
	return used, nil
}

func skew(d time.Duration) string {
	if d > 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + " s behind"
	}
	return strconv.FormatInt(int64(-d/time.Second), 10) + " s ahead of"
}

// checkNonce records the nonce of a verified signature; a nonce seen
// before is a replay. A store that cannot tell refuses the call
// (UNAVAILABLE): a signed call is never accepted unchecked.
func (a *AppAuthenticator) checkNonce(ctx context.Context, appID, nonce string) *apierr.Error {
	err := a.nonces.Remember(ctx, NonceKey(appID, nonce), nonceTTL)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNonceSeen):
		return apierr.New(apierr.Unauthenticated, ReasonReplayedRequest,
			"this request's nonce was already used by the application: a replayed request (use a new random nonce for every request, retries included)")
	}
	return apierr.Wrap(err, apierr.Unavailable, ReasonReplayUnavailable,
		"signed requests cannot be checked against replays now (the nonce store is unreachable); retry later")
}

// MemoryNonces is a NonceStore of one process (tests, and a component
// without NATS): the nonces of other replicas are not seen.
type MemoryNonces struct {
	mu   sync.Mutex
	m    map[string]time.Time // key -> until
	now  func() time.Time
	next time.Time // next sweep
}

// NewMemoryNonces returns an empty store on the clock now (nil:
// time.Now).
func NewMemoryNonces(now func() time.Time) *MemoryNonces {
	if now == nil {
		now = time.Now
	}
	return &MemoryNonces{m: map[string]time.Time{}, now: now}
}

// Remember implements NonceStore.
func (s *MemoryNonces) Remember(_ context.Context, key string, ttl time.Duration) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !now.Before(s.next) {
		for k, until := range s.m {
			if !now.Before(until) {
				delete(s.m, k)
			}
		}
		s.next = now.Add(ttl / 4)
	}
	if until, ok := s.m[key]; ok && now.Before(until) {
		return ErrNonceSeen
	}
	s.m[key] = now.Add(ttl)
	return nil
}
