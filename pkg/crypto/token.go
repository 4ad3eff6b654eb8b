package crypto

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// RandomToken returns nBytes of crypto/rand randomness, base64 raw-URL encoded.
// nBytes <= 0 means 32.
func RandomToken(nBytes int) string {
	if nBytes <= 0 {
		nBytes = 32
	}
	b := make([]byte, nBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go >= 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenHashLen is the length of HashToken's hashes.
const TokenHashLen = 2 * sha256.Size

// HashToken returns the hex SHA-256 of token. Use it only for high-entropy
// secrets (random tokens, API keys), never for passwords.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// AppendHashToken appends HashToken(token) to dst: a caller that hashes a
// token on every call (an administrator's bearer token) looks it up with
// a buffer of its own, without an allocation for tokens of up to 256
// bytes.
func AppendHashToken(dst []byte, token string) []byte {
	var buf [256]byte
	var sum [sha256.Size]byte
	if len(token) <= len(buf) {
		sum = sha256.Sum256(buf[:copy(buf[:], token)])
	} else {
		sum = sha256.Sum256([]byte(token))
	}
	return hex.AppendEncode(dst, sum[:])
}

// EqualHash compares two hashes (or tokens) in constant time.
func EqualHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
