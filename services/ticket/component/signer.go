package component

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"

	"github.com/uias/uias/pkg/crypto"
)

// ticketSigner is the ring's signer, or, for a version-1 ring without
// signing keys, HMAC keys derived from its master keys under a label of
// their own (never the master keys themselves). It returns the active key
// id too.
func ticketSigner(r *crypto.Ring) (*crypto.Signer, string, error) {
	if len(r.Signing.Keys) > 0 {
		s, err := r.Signer()
		return s, r.Signing.Active, err
	}
	if len(r.Master.Keys) == 0 {
		return nil, "", errors.New("the key ring has neither signing nor master keys")
	}
	keys := make(map[string][]byte, len(r.Master.Keys))
	for id, k := range r.Master.Keys {
		dk, err := hkdf.Key(sha256.New, k, nil, "uias ticket signing v1", 32)
		if err != nil {
			return nil, "", err
		}
		keys["m"+id] = dk
	}
	return crypto.NewSigner("m"+r.Master.Active, keys), "m" + r.Master.Active, nil
}
