package crypto

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
)

// Ed25519Keys are Ed25519 key pairs derived from the ring for one purpose
// (e.g. "audit checkpoint"), one per key, so that a rotation of the ring
// rotates them too and signatures by retired keys still verify. The seeds
// are derived with HKDF-SHA256 under a label naming the purpose, so they
// are unrelated to the keys they come from and to the pairs of any other
// purpose.
//
// They come from the signing keys (ids as in the ring). A version-1 ring
// has none: its master keys stand in (ids "master:<id>", derived under a
// label of their own), and a ring upgraded to version 2 keeps them as
// verifiers while its master keys remain, so that what was signed before
// the upgrade still verifies.
type Ed25519Keys struct {
	// Active is the id of the pair that signs.
	Active string
	// Keys are the private keys by id.
	Keys map[string]ed25519.PrivateKey
}

var purposeRE = regexp.MustCompile(`^[a-z][a-z0-9 -]{0,63}$`)

// MasterKeyPrefix starts the ids of Ed25519 pairs derived from master keys.
const MasterKeyPrefix = "master:"

// Ed25519 derives the Ed25519 key pairs of purpose (lower case letters,
// digits, spaces and dashes) from the ring (see Ed25519Keys).
func (r *Ring) Ed25519(purpose string) (*Ed25519Keys, error) {
	if !purposeRE.MatchString(purpose) {
		return nil, fmt.Errorf("invalid Ed25519 key purpose %q", purpose)
	}
	out := &Ed25519Keys{Keys: make(map[string]ed25519.PrivateKey, len(r.Signing.Keys)+len(r.Master.Keys))}
	add := func(id string, k []byte, label string) error {
		seed, err := hkdf.Key(sha256.New, k, nil, label, ed25519.SeedSize)
		if err != nil {
			return err
		}
		out.Keys[id] = ed25519.NewKeyFromSeed(seed)
		return nil
	}
	for id, k := range r.Signing.Keys {
		if err := add(id, k, "uias ed25519 "+purpose+" v1"); err != nil {
			return nil, err
		}
	}
	for id, k := range r.Master.Keys {
		if err := add(MasterKeyPrefix+id, k, "uias ed25519 from master "+purpose+" v1"); err != nil {
			return nil, err
		}
	}
	switch {
	case len(r.Signing.Keys) > 0:
		out.Active = r.Signing.Active
	case len(r.Master.Keys) > 0:
		out.Active = MasterKeyPrefix + r.Master.Active
	default:
		return nil, errors.New("the key ring has no keys")
	}
	return out, nil
}

// Public returns the public key of pair id (nil if unknown).
func (k *Ed25519Keys) Public(id string) ed25519.PublicKey {
	p, ok := k.Keys[id]
	if !ok {
		return nil
	}
	return p.Public().(ed25519.PublicKey)
}
