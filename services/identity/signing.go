package identity

import (
	"context"
	"errors"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/reqsig"
)

// Application request signatures (JR/T 0185-2020 A2 interfaces): an
// application registers public keys (pkg/reqsig: at most two, so that a key
// can be rolled over) and may be required to sign its AuthService calls;
// caller.AppAuthenticator.AuthenticateSigned verifies them.

// signingKeys parses the keys given to CreateApp or UpdateApp (PEM or DER)
// into the keys to store: a key already registered (in old) keeps the
// time it was added and its expiry, a new one is added at now and expires
// after lifetime (zero: never). Refusals: see reqsig.ParseKeys.
func signingKeys(given [][]byte, old []SigningKey, now time.Time, lifetime time.Duration) ([]SigningKey, error) {
	texts := make([]string, len(given))
	for i, g := range given {
		texts[i] = string(g)
	}
	keys, err := reqsig.ParseKeys(texts)
	if err != nil {
		return nil, err
	}
	registered := map[string]SigningKey{}
	for _, k := range old {
		if pk, err := reqsig.ParseKey(k.PEM); err == nil {
			registered[pk.Thumbprint] = k
		}
	}
	var out []SigningKey
	for _, k := range keys {
		sk, ok := registered[k.Thumbprint]
		if !ok {
			sk = SigningKey{AddedAt: now}
			if lifetime > 0 {
				sk.ExpiresAt = now.Add(lifetime)
			}
		}
		sk.PEM = k.PEM
		out = append(out, sk)
	}
	return out, nil
}

// Signing key validity periods (JR/T 0185-2020 7.3.4: key validity set by
// the interface's level, keys renewed periodically): a key registered
// for an application expires after the lifetime of the application's
// security level in force then (identity.signing_key_lifetime for A1,
// identity.signing_key_lifetime_a2 for A2; zero: never); its expiry is
// fixed with it and kept (a later change of the settings or of the level
// applies to keys registered afterwards). Past it a signature it made is
// refused SIGNING_KEY_EXPIRED (pkg/caller). Renewal is a rollover:
// register the new key beside the old, then remove the old.

// signingKeyLifetime is the lifetime of keys registered now for an
// application of level.
func (s *Service) signingKeyLifetime(level int) time.Duration {
	if level == 2 {
		return s.cfg.SigningKeyLifetimeA2
	}
	return s.cfg.SigningKeyLifetime
}

// signingKeyRequired is the reason of a refused signature policy.
const signingKeyRequired = reqsig.ReasonKeyRequired

// checkSignaturePolicy refuses requiring signatures of an application
// without a key.
func checkSignaturePolicy(require bool, keys []SigningKey) error {
	if require && len(keys) == 0 {
		return apierr.New(apierr.FailedPrecondition, reqsig.ReasonKeyRequired,
			"signed requests cannot be required of an application without a signing key: register its public key first (signing_keys; uias ctl app update --signing-key FILE.pem)")
	}
	return nil
}

func init() {
	apierr.Register(apierr.Reason{Name: ReasonSecurityLevel, Code: apierr.FailedPrecondition,
		Doc: "An A2 application (security_level 2, JR/T 0185-2020 6.2, 7.2) must require signed requests, with a registered signing key: register its public key and require signatures first (uias ctl app update --signing-key FILE.pem --require-signatures), or keep it A1."})
}

// ReasonSecurityLevel refuses settings an A2 application may not have.
const ReasonSecurityLevel = "SECURITY_LEVEL_REQUIREMENTS"

// checkSecurityLevel checks an application's level against its settings:
// an A2 application authenticates with a key pair and signs every call
// (7.2.1 a) 2), 7.2.2: both sides sign A2 data; UIAS signs its answers to
// signed calls).
func checkSecurityLevel(level int, requireSignatures bool) error {
	switch {
	case level != 0 && level != 1 && level != 2:
		return badField("security_level", "security_level must be 1 (A1) or 2 (A2)")
	case level == 2 && !requireSignatures:
		return apierr.New(apierr.FailedPrecondition, ReasonSecurityLevel,
			"an A2 application must require signed requests with a registered signing key (require_signed_requests; "+
				"uias ctl app update --signing-key FILE.pem --require-signatures), or be A1")
	}
	return nil
}

// AnswerAlgorithm is the algorithm of UIAS's signatures of its answers to
// application appID when SM2 is offered (identity.response_signing_sm2,
// reqsig.ResponseSigner.AlgorithmOf; docs/adr/0043-sm2-signatures.md):
// reqsig.AlgSM2 for an application with an SM2 request signing key
// registered, reqsig.AlgEd25519 for any other (and for one no longer
// stored). A store error fails the signing (the call is answered
// UNAVAILABLE, never unsigned nor with the other algorithm).
func (s *Service) AnswerAlgorithm(ctx context.Context, appID string) (string, error) {
	a, err := s.store.GetApp(ctx, appID)
	switch {
	case errors.Is(err, ErrNotFound):
		return reqsig.AlgEd25519, nil
	case err != nil:
		return "", err
	}
	for _, k := range a.ParsedSigningKeys() {
		if k.Algorithm == reqsig.AlgSM2 {
			return reqsig.AlgSM2, nil
		}
	}
	return reqsig.AlgEd25519, nil
}

// ParsedSigningKeys are a's keys parsed (a stored key that no longer
// parses, which UIAS never stores, is left out).
func (a *App) ParsedSigningKeys() []*reqsig.Key {
	if len(a.SigningKeys) == 0 {
		return nil
	}
	keys := make([]*reqsig.Key, 0, len(a.SigningKeys))
	for _, k := range a.SigningKeys {
		if pk, err := reqsig.ParseKey(k.PEM); err == nil {
			pk.NotAfter = k.ExpiresAt
			keys = append(keys, pk)
		}
	}
	return keys
}

// signingKeysDigest is the keys' part of a replica digest.
func signingKeysDigest(keys []SigningKey) string {
	s := ""
	for _, k := range keys {
		s += k.PEM + "@" + k.AddedAt.UTC().Format(time.RFC3339Nano)
		if !k.ExpiresAt.IsZero() {
			// only then: a key without expiry digests as before, so
			// centres of the earlier version agree on it
			s += "~" + k.ExpiresAt.UTC().Format(time.RFC3339Nano)
		}
		s += ";"
	}
	return s
}
