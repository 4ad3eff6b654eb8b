package identity

import (
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
// time it was added, a new one is added at now. Refusals: see
// reqsig.ParseKeys.
func signingKeys(given [][]byte, old []SigningKey, now time.Time) ([]SigningKey, error) {
	texts := make([]string, len(given))
	for i, g := range given {
		texts[i] = string(g)
	}
	keys, err := reqsig.ParseKeys(texts)
	if err != nil {
		return nil, err
	}
	added := map[string]time.Time{}
	for _, k := range old {
		if pk, err := reqsig.ParseKey(k.PEM); err == nil {
			added[pk.Thumbprint] = k.AddedAt
		}
	}
	var out []SigningKey
	for _, k := range keys {
		at, ok := added[k.Thumbprint]
		if !ok {
			at = now
		}
		out = append(out, SigningKey{PEM: k.PEM, AddedAt: at})
	}
	return out, nil
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

// ParsedSigningKeys are a's keys parsed (a stored key that no longer
// parses, which UIAS never stores, is left out).
func (a *App) ParsedSigningKeys() []*reqsig.Key {
	if len(a.SigningKeys) == 0 {
		return nil
	}
	keys := make([]*reqsig.Key, 0, len(a.SigningKeys))
	for _, k := range a.SigningKeys {
		if pk, err := reqsig.ParseKey(k.PEM); err == nil {
			keys = append(keys, pk)
		}
	}
	return keys
}

// signingKeysDigest is the keys' part of a replica digest.
func signingKeysDigest(keys []SigningKey) string {
	s := ""
	for _, k := range keys {
		s += k.PEM + "@" + k.AddedAt.UTC().Format(time.RFC3339Nano) + ";"
	}
	return s
}
