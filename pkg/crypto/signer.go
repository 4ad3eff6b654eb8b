package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strings"
	"sync"
)

// Signer makes and checks "<key id>:<base64url MAC>" signatures (HMAC-SHA256,
// or HMAC-SM3 for a key of SuiteSM4: both 32 bytes); signatures by any key
// of the set verify, new ones use the active key.
//
// It keeps, per key, a pool of keyed HMAC states: a state is reset to its
// keyed start after each use instead of being rebuilt (hmac.New derives the
// inner and outer pads and allocates two SHA-256 states every time). It is
// safe for concurrent use.
type Signer struct {
	active string
	keys   map[string]*macKey
}

// NewSigner returns a signer of the keys (id to key), signing with active.
// The keys are copied. An active id that is not in keys makes Sign panic.
func NewSigner(active string, keys map[string][]byte) *Signer {
	return NewSuiteSigner(active, keys, nil)
}

// NewSuiteSigner is NewSigner with the suite of each key that is not
// SuiteAES (a key of SuiteSM4 makes HMAC-SM3).
func NewSuiteSigner(active string, keys map[string][]byte, suites map[string]Suite) *Signer {
	s := &Signer{active: active, keys: make(map[string]*macKey, len(keys))}
	for id, k := range keys {
		h := sha256.New
		if suite, ok := suites[id]; ok {
			h = suite.Hash()
		}
		s.keys[id] = newMACKey(h, k)
	}
	return s
}

// Active is the id of the key that signs.
func (s *Signer) Active() string { return s.active }

// Sign returns the signature of msg under the active signing key.
func (s *Signer) Sign(msg []byte) string {
	var buf [sha256.Size]byte
	kid, m := s.AppendMAC(buf[:0], msg)
	return kid + ":" + base64.RawURLEncoding.EncodeToString(m)
}

// Verify reports whether sig is a signature of msg by a key of the set
// (compared in constant time).
func (s *Signer) Verify(msg []byte, sig string) bool {
	kid, body, ok := strings.Cut(sig, ":")
	if !ok {
		return false
	}
	var buf [sha256.Size + 3]byte
	if base64.RawURLEncoding.DecodedLen(len(body)) > len(buf) {
		return false
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(body))
	return err == nil && s.VerifyMAC(kid, msg, buf[:n])
}

// AppendMAC appends the raw MAC of msg under the active key to dst and
// returns the key id with it: Sign without the text encoding.
func (s *Signer) AppendMAC(dst, msg []byte) (kid string, out []byte) {
	return s.active, s.keys[s.active].sum(dst, msg)
}

// VerifyMAC reports whether mac is the raw MAC of msg under the key kid
// (compared in constant time); an unknown key id never verifies.
func (s *Signer) VerifyMAC(kid string, msg, mac []byte) bool {
	k, known := s.keys[kid]
	if !known {
		return false
	}
	var buf [sha256.Size]byte
	return hmac.Equal(mac, k.sum(buf[:0], msg))
}

// macKey is one key's pool of HMAC-SHA256 states, each keyed and reset.
type macKey struct {
	pool sync.Pool
}

// macState is a keyed HMAC state with room for a message and its MAC:
// what goes through the hash.Hash interface is its own memory, so the
// callers' buffers (a message and a MAC on the stack) do not escape to the
// heap.
type macState struct {
	h   hash.Hash
	msg []byte
	out [sha256.Size]byte
}

func newMACKey(h func() hash.Hash, k []byte) *macKey {
	key := append([]byte(nil), k...)
	m := &macKey{}
	m.pool.New = func() any { return &macState{h: hmac.New(h, key), msg: make([]byte, 0, 256)} }
	return m
}

// sum appends the MAC of msg to dst.
func (m *macKey) sum(dst, msg []byte) []byte {
	st := m.pool.Get().(*macState)
	st.msg = append(st.msg[:0], msg...)
	st.h.Write(st.msg)
	dst = append(dst, st.h.Sum(st.out[:0])...)
	st.h.Reset()
	if cap(st.msg) > 4096 { // a long message's copy is not kept
		st.msg = make([]byte, 0, 256)
	}
	m.pool.Put(st)
	return dst
}
