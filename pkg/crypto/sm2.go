package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/emmansun/gmsm/sm2"
)

// SM2KeyPrefix starts the ids of SM2 pairs (SM2Keys): "sm2:<id>" for the
// pair derived from signing key id ("sm2:master:<id>" from master key id,
// only in a ring without signing keys), apart from the Ed25519 pairs' ids
// of the same ring.
const SM2KeyPrefix = "sm2:"

// SM2Keys are SM2 key pairs (GB/T 32918) derived from the ring for one
// purpose, as Ed25519Keys are, under labels of their own: a rotation of
// the ring rotates them, and they are unrelated to the Ed25519 pairs of
// the same purpose.
type SM2Keys struct {
	// Active is the id of the pair that signs.
	Active string
	// Keys are the private keys by id.
	Keys map[string]*sm2.PrivateKey
}

// sm2Order is n, the order of the SM2 curve's base point.
var sm2Order = sm2.P256().Params().N

// SM2 derives the SM2 key pairs of purpose (lower case letters, digits,
// spaces and dashes) from the ring (see SM2Keys). The private key is
// HKDF-SHA256 output of 48 bytes (384 bits: the bias of the reduction is
// below 2^-128) reduced into [1, n-2], the range GB/T 32918.1 asks of an
// SM2 private key.
func (r *Ring) SM2(purpose string) (*SM2Keys, error) {
	if !purposeRE.MatchString(purpose) {
		return nil, fmt.Errorf("invalid SM2 key purpose %q", purpose)
	}
	out := &SM2Keys{Keys: make(map[string]*sm2.PrivateKey, len(r.Signing.Keys)+len(r.Master.Keys))}
	nMinus2 := new(big.Int).Sub(sm2Order, big.NewInt(2))
	add := func(id string, k []byte, label string) error {
		b, err := hkdf.Key(sha256.New, k, nil, label, 48)
		if err != nil {
			return err
		}
		d := new(big.Int).SetBytes(b)
		d.Mod(d, nMinus2).Add(d, big.NewInt(1))
		priv, err := sm2.NewPrivateKeyFromInt(d)
		if err != nil {
			return err
		}
		out.Keys[SM2KeyPrefix+id] = priv
		return nil
	}
	for id, k := range r.Signing.Keys {
		if err := add(id, k, "uias sm2 "+purpose+" v1"); err != nil {
			return nil, err
		}
	}
	// From master keys only for a ring without a signing set (version 1),
	// where they are all there is: the master key is the data-protection
	// root, and a pair derived from it is published. Ed25519 keeps such
	// pairs on a version-2 ring for answers signed before the upgrade; SM2
	// answers came after the signing set, so a version-2 ring never signed
	// under an "sm2:master:" pair (sec31b L3).
	if len(r.Signing.Keys) == 0 {
		for id, k := range r.Master.Keys {
			if err := add(MasterKeyPrefix+id, k, "uias sm2 from master "+purpose+" v1"); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case len(r.Signing.Keys) > 0:
		out.Active = SM2KeyPrefix + r.Signing.Active
	case len(r.Master.Keys) > 0:
		out.Active = SM2KeyPrefix + MasterKeyPrefix + r.Master.Active
	default:
		return nil, errors.New("the key ring has no keys")
	}
	return out, nil
}
