package component

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/ticket"
)

// ticketSigner is the ring's signer, or, for a version-1 ring without
// signing keys, HMAC keys derived from its master keys under a label of
// their own (never the master keys themselves). It returns the active key
// id too.
func ticketSigner(r *crypto.Ring) (ticket.MACer, string, error) {
	if len(r.Signing.Keys) > 0 {
		s, err := r.Signer()
		return s, r.Signing.Active, err
	}
	if len(r.Master.Keys) == 0 {
		return nil, "", errors.New("the key ring has neither signing nor master keys")
	}
	d := derivedSigner{active: "m" + r.Master.Active, keys: map[string][]byte{}}
	for id, k := range r.Master.Keys {
		dk, err := hkdf.Key(sha256.New, k, nil, "uias ticket signing v1", 32)
		if err != nil {
			return nil, "", err
		}
		d.keys["m"+id] = dk
	}
	return d, d.active, nil
}

// derivedSigner signs like crypto.Signer ("<key id>:<base64url MAC>").
type derivedSigner struct {
	active string
	keys   map[string][]byte
}

func (d derivedSigner) Sign(msg []byte) string {
	m := hmac.New(sha256.New, d.keys[d.active])
	m.Write(msg)
	return d.active + ":" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (d derivedSigner) Verify(msg []byte, sig string) bool {
	kid, body, ok := strings.Cut(sig, ":")
	k, known := d.keys[kid]
	if !ok || !known {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, k)
	m.Write(msg)
	return hmac.Equal(got, m.Sum(nil))
}
