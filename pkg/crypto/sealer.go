package crypto

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// KeySize is the required length of every Sealer key (AES-256).
const KeySize = 32

// BlindIndexKeyID is a reserved key-ring id. When the ring contains it, that
// key is used only to derive the blind-index key (never for sealing), so the
// blind index stays stable however the sealing keys rotate.
const BlindIndexKeyID = "blind-index"

// Errors returned by Open (wrapped). None of them includes key material or
// plaintext.
var (
	ErrSealedFormat = errors.New("sealed value is malformed")
	ErrUnknownKeyID = errors.New("sealed value uses an unknown key id")
	ErrOpenFailed   = errors.New("sealed value cannot be decrypted (tampered, wrong key or wrong associated data)")
)

// Sealer encrypts small values at rest with a key ring of AES-256-GCM and
// SM4-GCM keys (each key has its Suite). The sealed form is
// "<key id>:<base64url(nonce|ciphertext|tag)>" for AES-256-GCM (as every
// value sealed before suites existed) and "<key id>:sm4:<base64url(...)>"
// for SM4-GCM, so a value names its key and its algorithm: old values stay
// readable after the active key rotates, to a key of either suite. It is
// safe for concurrent use; SetKeys swaps its keys (after a rotation) while
// it is in use.
type Sealer struct {
	state    atomic.Pointer[sealerState]
	blindKey []byte
}

type sealerState struct {
	active string
	aeads  map[string]sealKey
}

type sealKey struct {
	aead  cipher.AEAD
	suite Suite
}

// NewSealer builds a Sealer from a key ring of 32-byte keys; activeKeyID names
// the key used by Seal. Key ids must be non-empty and must not contain ':'.
//
// The blind-index key is derived with HKDF-SHA256 (info "uias blind-index v1")
// from the ring entry BlindIndexKeyID when present, otherwise from the
// smallest key id (e.g. "k1"). Keep that key in the ring when rotating, or
// blind indexes will change.
func NewSealer(keys map[string][]byte, activeKeyID string) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("sealer: key ring is empty")
	}
	ids := make([]string, 0, len(keys))
	for id := range keys {
		if id != BlindIndexKeyID {
			ids = append(ids, id)
		}
	}
	blindSrc := BlindIndexKeyID
	if _, ok := keys[BlindIndexKeyID]; !ok {
		slices.Sort(ids)
		if len(ids) == 0 {
			return nil, errors.New("sealer: key ring is empty")
		}
		blindSrc = ids[0]
	}
	if len(keys[blindSrc]) != KeySize {
		return nil, fmt.Errorf("sealer: key %q is %d bytes, want %d", blindSrc, len(keys[blindSrc]), KeySize)
	}
	return NewSealerWithIndexKey(keys, activeKeyID, keys[blindSrc])
}

// NewSealerWithIndexKey builds a Sealer whose blind-index key is derived
// (HKDF-SHA256, info "uias blind-index v1") from indexKey, a key kept apart
// from the sealing keys (so blind indexes survive any rotation of them).
func NewSealerWithIndexKey(keys map[string][]byte, activeKeyID string, indexKey []byte) (*Sealer, error) {
	if len(indexKey) != KeySize {
		return nil, fmt.Errorf("sealer: the blind-index key is %d bytes, want %d", len(indexKey), KeySize)
	}
	s := &Sealer{}
	if err := s.SetKeys(keys, activeKeyID); err != nil {
		return nil, err
	}
	bk, err := hkdf.Key(sha256.New, indexKey, nil, "uias blind-index v1", 32)
	if err != nil {
		return nil, fmt.Errorf("sealer: derive blind-index key: %w", err)
	}
	s.blindKey = bk
	return s, nil
}

// NewSuiteSealer is NewSealerWithIndexKey over keys of either suite.
func NewSuiteSealer(keys map[string]SuiteKey, activeKeyID string, indexKey []byte) (*Sealer, error) {
	if len(indexKey) != KeySize {
		return nil, fmt.Errorf("sealer: the blind-index key is %d bytes, want %d", len(indexKey), KeySize)
	}
	s := &Sealer{}
	if err := s.SetSuiteKeys(keys, activeKeyID); err != nil {
		return nil, err
	}
	bk, err := hkdf.Key(sha256.New, indexKey, nil, "uias blind-index v1", 32)
	if err != nil {
		return nil, fmt.Errorf("sealer: derive blind-index key: %w", err)
	}
	s.blindKey = bk
	return s, nil
}

// SetKeys replaces the sealing keys (AES-256) and the active key id (the
// blind-index key stays). Values sealed with a key no longer in keys
// cannot be opened.
func (s *Sealer) SetKeys(keys map[string][]byte, activeKeyID string) error {
	sk := make(map[string]SuiteKey, len(keys))
	for id, k := range keys {
		sk[id] = SuiteKey{Suite: SuiteAES, Key: k}
	}
	return s.SetSuiteKeys(sk, activeKeyID)
}

// SetSuiteKeys is SetKeys over keys of either suite.
func (s *Sealer) SetSuiteKeys(keys map[string]SuiteKey, activeKeyID string) error {
	if activeKeyID == BlindIndexKeyID {
		return fmt.Errorf("sealer: key %q is reserved for blind indexes and cannot be the active key", BlindIndexKeyID)
	}
	if _, ok := keys[activeKeyID]; !ok {
		return fmt.Errorf("sealer: active key id %q is not in the key ring", activeKeyID)
	}
	st := &sealerState{active: activeKeyID, aeads: make(map[string]sealKey, len(keys))}
	for id, key := range keys {
		if err := CheckKeyID(id); err != nil {
			return fmt.Errorf("sealer: %w", err)
		}
		if key.Suite == "" {
			key.Suite = SuiteAES
		}
		if _, err := ParseSuite(string(key.Suite)); err != nil {
			return fmt.Errorf("sealer: key %q: %w", id, err)
		}
		if len(key.Key) != key.Suite.DataKeySize() {
			return fmt.Errorf("sealer: key %q is %d bytes, want %d (%s)", id, len(key.Key), key.Suite.DataKeySize(), key.Suite.Algorithm())
		}
		if id == BlindIndexKeyID {
			continue
		}
		aead, err := key.Suite.newAEAD(key.Key)
		if err != nil {
			return fmt.Errorf("sealer: key %q: %w", id, err)
		}
		st.aeads[id] = sealKey{aead: aead, suite: key.Suite}
	}
	s.state.Store(st)
	return nil
}

// CheckKeyID reports whether id can name a key: 1 to 64 characters, no ':'
// and no white space.
func CheckKeyID(id string) error {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, ": \t\r\n") {
		return fmt.Errorf("key id %q is invalid (must be 1 to 64 characters, without ':' or spaces)", id)
	}
	return nil
}

// ActiveKeyID returns the id of the key used by Seal.
func (s *Sealer) ActiveKeyID() string { return s.state.Load().active }

// ActiveSuite returns the suite of the key used by Seal.
func (s *Sealer) ActiveSuite() Suite {
	st := s.state.Load()
	return st.aeads[st.active].suite
}

// Seal encrypts plaintext with the active key, authenticating aad (which must
// be given again to Open — bind it to the row, e.g. "users.id_number:<user id>").
func (s *Sealer) Seal(plaintext, aad []byte) (string, error) {
	st := s.state.Load()
	k := st.aeads[st.active]
	aead := k.aead
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go >= 1.24)
	out := aead.Seal(nonce, nonce, plaintext, aad)
	if tag := k.suite.tag(); tag != "" {
		return st.active + ":" + tag + ":" + base64.RawURLEncoding.EncodeToString(out), nil
	}
	return st.active + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value produced by Seal with any key of the ring. A value
// whose algorithm tag is unknown, or is not its key's algorithm, is
// refused (ErrUnknownSuite, ErrAlgorithmMismatch) before any decryption.
func (s *Sealer) Open(sealed string, aad []byte) ([]byte, error) {
	kid, body, ok := strings.Cut(sealed, ":")
	if !ok || kid == "" {
		return nil, ErrSealedFormat
	}
	tag, rest, tagged := strings.Cut(body, ":")
	if tagged {
		body = rest
	} else {
		tag = ""
	}
	if tagged && tag == "" {
		return nil, ErrSealedFormat
	}
	suite, err := suiteOfTag(tag)
	if err != nil {
		return nil, err
	}
	k, ok := s.state.Load().aeads[kid]
	if !ok {
		return nil, ErrUnknownKeyID
	}
	if k.suite != suite {
		return nil, fmt.Errorf("%w: the value is %s, key %q is %s", ErrAlgorithmMismatch, suite.Algorithm(), kid, k.suite.Algorithm())
	}
	aead := k.aead
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrSealedFormat
	}
	nonce, ct := raw[:aead.NonceSize()], raw[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrOpenFailed
	}
	return pt, nil
}

// KeyIDOf returns the key id a sealed value was made with, so callers can
// re-seal values that do not use the active key. (The algorithm tag, if
// any, follows the key id: "<key id>:sm4:...".)
func KeyIDOf(sealed string) (string, error) {
	kid, _, ok := strings.Cut(sealed, ":")
	if !ok || kid == "" {
		return "", ErrSealedFormat
	}
	return kid, nil
}

// BlindIndex returns hex(HMAC-SHA256(blind key, value)): a deterministic,
// non-reversible lookup key for an encrypted value. Normalise value (trim,
// upper/lower case) before calling so equal values index equally.
func (s *Sealer) BlindIndex(value string) string {
	m := hmac.New(sha256.New, s.blindKey)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}
