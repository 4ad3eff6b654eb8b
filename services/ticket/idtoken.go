package ticket

import (
	"crypto"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
)

// IDTokenKeys sign OpenID Connect ID tokens (RS256, the algorithm every
// client takes by default) with RSA keys derived from the key ring's
// signing keys: each ring key gives one RSA-2048 key, the same at every
// instance and after every restart, so no key is stored and a ring
// rotation rotates them (the retired ring keys' public keys stay in the
// JSON Web Key Set while the ring holds them). A key is derived on its
// first use (a prime search of some tens of milliseconds).
type IDTokenKeys struct {
	active string
	seeds  map[string][]byte
	mu     sync.RWMutex
	keys   map[string]*derivedKey
}

type derivedKey struct {
	kid string
	key *rsa.PrivateKey
}

// NewIDTokenKeysRSA returns keys of their own (ticket.oidc_key_file):
// keys[0] signs, the others are published in the key set only (the keys
// an ID token still alive may have been signed with).
func NewIDTokenKeysRSA(keys []*rsa.PrivateKey) (*IDTokenKeys, error) {
	if len(keys) == 0 {
		return nil, errors.New("ticket: no ID token key")
	}
	k := &IDTokenKeys{active: "f0", seeds: map[string][]byte{}, keys: map[string]*derivedKey{}}
	for i, priv := range keys {
		if priv.N.BitLen() < 2048 {
			return nil, fmt.Errorf("ticket: ID token key %d has %d bits: at least 2048", i+1, priv.N.BitLen())
		}
		if err := priv.Validate(); err != nil {
			return nil, fmt.Errorf("ticket: ID token key %d: %w", i+1, err)
		}
		id := fmt.Sprintf("f%d", i)
		k.seeds[id] = nil
		k.keys[id] = &derivedKey{kid: kidOf(priv), key: priv}
	}
	return k, nil
}

// kidOf names a key in the key set: a hash of its modulus.
func kidOf(priv *rsa.PrivateKey) string {
	sum := sha256.Sum256(priv.N.Bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// NewIDTokenKeys returns the keys derived from seeds (ring key id -> key),
// signing with seeds[active].
func NewIDTokenKeys(active string, seeds map[string][]byte) (*IDTokenKeys, error) {
	if _, ok := seeds[active]; !ok {
		return nil, fmt.Errorf("ticket: no ID token key %q", active)
	}
	return &IDTokenKeys{active: active, seeds: seeds, keys: map[string]*derivedKey{}}, nil
}

func (k *IDTokenKeys) key(id string) (*derivedKey, error) {
	k.mu.RLock()
	d, ok := k.keys[id]
	k.mu.RUnlock()
	if ok {
		return d, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if d, ok := k.keys[id]; ok {
		return d, nil
	}
	priv, err := deriveRSA(k.seeds[id])
	if err != nil {
		return nil, err
	}
	d = &derivedKey{kid: kidOf(priv), key: priv}
	k.keys[id] = d
	return d, nil
}

// Sign returns the compact JWS (RS256) of claims.
func (k *IDTokenKeys) Sign(claims any) (string, error) { return k.SignTyped("JWT", claims) }

// SignTyped is Sign with the header's typ.
func (k *IDTokenKeys) SignTyped(typ string, claims any) (string, error) {
	d, err := k.key(k.active)
	if err != nil {
		return "", err
	}
	return encodeJWS(jwsHeader{Alg: "RS256", Typ: typ, Kid: d.kid}, claims, func(in []byte) ([]byte, error) {
		h := sha256.Sum256(in)
		return rsa.SignPKCS1v15(nil, d.key, crypto.SHA256, h[:])
	})
}

// Verify checks the signature of a compact JWS of type typ ("JWT": an ID
// token, not a logout token) signed by one of the keys (RS256, the key its
// header's kid names) and returns its claims; it checks no claim (the
// caller does: an expired ID token still names its session for a logout).
func (k *IDTokenKeys) Verify(token, typ string) (map[string]any, error) {
	hdr, body, in, sig, err := splitJWS(token)
	if err != nil {
		return nil, errors.New("not a signed JWT")
	}
	if hdr.Alg != "RS256" {
		return nil, errors.New("not an RS256 JWT")
	}
	if hdr.Typ != typ {
		return nil, fmt.Errorf("a token of type %q, not %q", hdr.Typ, typ)
	}
	h := sha256.Sum256(in)
	for id := range k.seeds {
		d, err := k.key(id)
		if err != nil {
			return nil, err
		}
		if d.kid != hdr.Kid {
			continue
		}
		if rsa.VerifyPKCS1v15(&d.key.PublicKey, crypto.SHA256, h[:], sig) != nil {
			return nil, errors.New("the signature does not verify")
		}
		var claims map[string]any
		if err := json.Unmarshal(body, &claims); err != nil {
			return nil, errors.New("the claims are not a JSON object")
		}
		return claims, nil
	}
	return nil, errors.New("signed with a key not of this deployment")
}

// JWKS returns the JSON Web Key Set of every key's public half (the
// active key first).
func (k *IDTokenKeys) JWKS() ([]byte, error) {
	ids := make([]string, 0, len(k.seeds))
	for id := range k.seeds {
		if id != k.active {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = append([]string{k.active}, ids...)
	type jwk struct {
		Kty string `json:"kty"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		N   string `json:"n"`
		E   string `json:"e"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, id := range ids {
		d, err := k.key(id)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, jwk{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: d.kid,
			N: base64.RawURLEncoding.EncodeToString(d.key.N.Bytes()),
			E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(d.key.E)).Bytes())})
	}
	return json.Marshal(set)
}

// deriveRSA derives an RSA-2048 key from seed: each prime is the first
// prime at or above a 1024-bit number (its two top bits set) expanded from
// the seed with HKDF.
func deriveRSA(seed []byte) (*rsa.PrivateKey, error) {
	if len(seed) < 16 {
		return nil, errors.New("ticket: ID token key seed too short")
	}
	const e = 65537
	prime := func(label string) (*big.Int, error) {
		b, err := hkdf.Key(sha256.New, seed, nil, "uias oidc rs256 v1 "+label, 128)
		if err != nil {
			return nil, err
		}
		b[0] |= 0xc0
		b[127] |= 1
		p := new(big.Int).SetBytes(b)
		two, one, bigE := big.NewInt(2), big.NewInt(1), big.NewInt(e)
		pm1, g := new(big.Int), new(big.Int)
		for range 1 << 16 {
			if p.ProbablyPrime(32) {
				pm1.Sub(p, one)
				if g.GCD(nil, nil, pm1, bigE).Cmp(one) == 0 {
					return p, nil
				}
			}
			p.Add(p, two)
		}
		return nil, errors.New("ticket: no prime found for the ID token key")
	}
	p, err := prime("p")
	if err != nil {
		return nil, err
	}
	q, err := prime("q")
	if err != nil {
		return nil, err
	}
	if p.Cmp(q) == 0 {
		return nil, errors.New("ticket: ID token key primes equal")
	}
	one := big.NewInt(1)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(big.NewInt(e), phi)
	if d == nil {
		return nil, errors.New("ticket: ID token key has no inverse")
	}
	key := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e}, D: d, Primes: []*big.Int{p, q}}
	key.Precompute()
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("ticket: ID token key: %w", err)
	}
	return key, nil
}
