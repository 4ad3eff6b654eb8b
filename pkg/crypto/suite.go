package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

// A Suite is the family of algorithms a key is used with. It is a property
// of each key (as a key's type in Vault's transit engine, or a Keycloak key
// provider's algorithm), never a setting of the process: a key ring may
// hold keys of both suites side by side, and what a key sealed names its
// algorithm, so rotation moves data from one suite to the other.
//
//   - SuiteAES: AES-256-GCM, HKDF-SHA-256 and HMAC-SHA-256 (the default,
//     and what every key made before suites existed is);
//   - SuiteSM4: the national commercial algorithms (商用密码): SM4-GCM
//     (GB/T 32907, GCM as in RFC 8998), HKDF-SM3 and HMAC-SM3 (GB/T 32905).
type Suite string

// The suites.
const (
	SuiteAES Suite = "aes"
	SuiteSM4 Suite = "sm4"
)

// Suites lists the suites by name, for messages and flags.
var Suites = []Suite{SuiteAES, SuiteSM4}

// Errors about algorithms (wrapped).
var (
	// ErrUnknownSuite reports a suite or algorithm tag this build does not know.
	ErrUnknownSuite = errors.New("unknown cipher suite")
	// ErrAlgorithmMismatch reports a sealed value whose algorithm is not
	// the one of the key it names.
	ErrAlgorithmMismatch = errors.New("sealed value names another algorithm than its key's")
)

// ParseSuite reads a suite name ("aes" or "sm4"; "" is "aes").
func ParseSuite(s string) (Suite, error) {
	switch s {
	case "", string(SuiteAES):
		return SuiteAES, nil
	case string(SuiteSM4):
		return SuiteSM4, nil
	}
	return "", fmt.Errorf("%w %q (want aes or sm4)", ErrUnknownSuite, s)
}

// Algorithm is the suite's cipher, as "keys status" shows it.
func (s Suite) Algorithm() string {
	if s == SuiteSM4 {
		return "SM4-GCM"
	}
	return "AES-256-GCM"
}

// MAC is the suite's MAC, for messages.
func (s Suite) MAC() string {
	if s == SuiteSM4 {
		return "HMAC-SM3"
	}
	return "HMAC-SHA-256"
}

// DataKeySize is the length of the suite's data keys: 32 bytes for
// AES-256, 16 for SM4 (a 128-bit cipher). A data key's length, which its
// authenticated wrapping protects, is what says its suite (SuiteOfKey).
func (s Suite) DataKeySize() int {
	if s == SuiteSM4 {
		return sm4.BlockSize
	}
	return KeySize
}

// Hash returns the suite's hash constructor (SHA-256 or SM3), for HKDF and
// HMAC.
func (s Suite) Hash() func() hash.Hash {
	if s == SuiteSM4 {
		return sm3.New
	}
	return sha256.New
}

// tag is what a sealed value carries after its key id to name its
// algorithm: none for AES-256-GCM (every value sealed before suites
// existed), "sm4" for SM4-GCM.
func (s Suite) tag() string {
	if s == SuiteSM4 {
		return "sm4"
	}
	return ""
}

// suiteOfTag is the suite of a sealed value's algorithm tag.
func suiteOfTag(tag string) (Suite, error) {
	switch tag {
	case "":
		return SuiteAES, nil
	case "sm4":
		return SuiteSM4, nil
	}
	return "", fmt.Errorf("%w: algorithm tag %q", ErrUnknownSuite, tag)
}

// SuiteOfKey is the suite of a data key by its length (32 bytes: AES-256,
// 16: SM4).
func SuiteOfKey(key []byte) (Suite, error) {
	switch len(key) {
	case KeySize:
		return SuiteAES, nil
	case sm4.BlockSize:
		return SuiteSM4, nil
	}
	return "", fmt.Errorf("a data key of %d bytes is of no suite (32: AES-256, 16: SM4)", len(key))
}

// NewDataKeyFor returns a random data key of suite s.
func NewDataKeyFor(s Suite) []byte {
	k := make([]byte, s.DataKeySize())
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go >= 1.24)
	return k
}

// newAEAD returns the suite's AEAD over key: AES-256-GCM or SM4-GCM, both
// with 12-byte nonces and 16-byte tags.
func (s Suite) newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != s.DataKeySize() {
		return nil, fmt.Errorf("a %s key is %d bytes, want %d", s.Algorithm(), len(key), s.DataKeySize())
	}
	var block cipher.Block
	var err error
	if s == SuiteSM4 {
		block, err = sm4.NewCipher(key)
	} else {
		block, err = aes.NewCipher(key)
	}
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// deriveKey derives the suite's key for info from secret (HKDF-SHA-256 to
// 32 bytes, or HKDF-SM3 to 16).
func (s Suite) deriveKey(secret []byte, info string) ([]byte, error) {
	return hkdf.Key(s.Hash(), secret, nil, info, s.DataKeySize())
}

// SuiteKey is a sealing key with its suite.
type SuiteKey struct {
	Suite Suite
	Key   []byte
}
