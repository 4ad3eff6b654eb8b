// Package legacyhash verifies passwords against the hashes of the systems
// UIAS replaces, so that their users can be imported with the hashes they
// have and keep their passwords. A successful login replaces such a hash
// with argon2id (the identity service does that); this package only reads
// them. Every format is tagged, so the scheme is never guessed:
//
//	bcrypt          $2a$, $2b$, $2y$ (Modular Crypt Format)
//	PBKDF2-SHA256   $pbkdf2-sha256$i=<rounds>$<salt b64>$<hash b64>   (PHC, unpadded standard base64)
//	                $pbkdf2-sha256$<rounds>$<salt ab64>$<hash ab64>   (passlib: '.' for '+', unpadded)
//	                pbkdf2_sha256$<rounds>$<salt text>$<hash b64>     (Django)
//	LDAP (RFC 2307) {SHA} {SHA256} {MD5} {SM3}: base64(H(password)), unsalted;
//	                {SSHA} {SSHA256} {SMD5} {SSM3}: base64(H(password + salt) + salt)
//	digest          $digest$<md5|sha1|sha256|sm3>$<ps|sp>$<salt text>$<hex>
//	                H(password + salt) (ps) or H(salt + password) (sp), the
//	                digest in hex (any case); an empty salt is unsalted
//	NT (Windows)    $NT$<32 hex>: MD4 of the password in UTF-16LE, unsalted (Active
//	                Directory's unicodePwd, Samba's sambaNTPassword, as dumped by
//	                migration tools)
//	wrapped         $wrap-<md5|sha1|sha256|sm3|nt>$argon2id$...: argon2id (PHC)
//	                of the lower-case hex of an unsalted H(password), made
//	                from an unsalted hash without the password (see Wrap)
//
// Digests are compared in constant time.
package legacyhash

import (
	"crypto/md5" //nolint:gosec // legacy hashes are read, never made
	"crypto/pbkdf2"
	"crypto/sha1" //nolint:gosec // legacy hashes are read, never made
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/md4" //nolint:staticcheck // NT hashes are MD4: read, never made
)

// ErrMalformed is returned for a hash that names a known scheme but does
// not follow its format, or that names no known scheme.
var ErrMalformed = errors.New("malformed or unknown password hash")

// Scheme names a hash format.
type Scheme string

// Schemes.
const (
	Argon2id Scheme = "argon2id" // the current scheme (pkg/crypto), not read here
	Bcrypt   Scheme = "bcrypt"
	PBKDF2   Scheme = "pbkdf2-sha256"
	LDAP     Scheme = "ldap"   // {SSHA} and friends
	Digest   Scheme = "digest" // $digest$
	NT       Scheme = "nt"     // $NT$
	Wrapped  Scheme = "wrapped"
)

// PBKDF2 round limits: fewer is not a password hash, more would let one
// stored row cost a worker seconds.
const (
	MinPBKDF2Rounds = 1000
	MaxPBKDF2Rounds = 2_000_000
)

// Hash is a parsed legacy hash.
type Hash struct {
	Scheme Scheme
	// Alg is the digest of LDAP, digest and wrapped hashes: md5, sha1,
	// sha256 or sm3.
	Alg string
	// Unsalted: a fast digest of the password alone (LDAP {SHA}, {MD5},
	// ..., a digest hash without salt), open to precomputed tables; see
	// the identity service's policy for them.
	Unsalted bool
	// Slow: the scheme is costly to verify (bcrypt, PBKDF2); verify it in
	// a hash worker.
	Slow bool
	// Inner is the argon2id PHC string of a wrapped hash.
	Inner string

	encoded string
	salt    []byte
	digest  []byte
	rounds  int
	saltPos string // digest: "ps" or "sp"
}

// IsArgon2id reports whether encoded is an argon2id PHC string (the
// current scheme, verified by pkg/crypto).
func IsArgon2id(encoded string) bool { return strings.HasPrefix(encoded, "$argon2id$") }

var digests = map[string]func() hash.Hash{
	"md5": md5.New, "sha1": sha1.New, "sha256": sha256.New, "sm3": sm3.New, ntAlg: md4.New,
}

// ntAlg is the digest of NT hashes: MD4 of the password's UTF-16LE
// encoding (input).
const ntAlg = "nt"

// input is what alg digests of password: its UTF-16LE encoding for NT
// hashes, else its bytes.
func input(alg, password string) []byte {
	if alg != ntAlg {
		return []byte(password)
	}
	u := utf16.Encode([]rune(password))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// ldapTags maps an RFC 2307 tag to its digest and saltedness.
var ldapTags = map[string]struct {
	alg    string
	salted bool
}{
	"{SHA}": {"sha1", false}, "{SSHA}": {"sha1", true},
	"{SHA256}": {"sha256", false}, "{SSHA256}": {"sha256", true},
	"{MD5}": {"md5", false}, "{SMD5}": {"md5", true},
	"{SM3}": {"sm3", false}, "{SSM3}": {"sm3", true},
}

// Parse reads a legacy hash (any scheme above but argon2id).
func Parse(encoded string) (*Hash, error) {
	h := &Hash{encoded: encoded}
	switch {
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		if _, err := bcrypt.Cost([]byte(encoded)); err != nil {
			return nil, ErrMalformed
		}
		h.Scheme, h.Slow = Bcrypt, true
		return h, nil
	case strings.HasPrefix(encoded, "$pbkdf2-sha256$"), strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		return parsePBKDF2(h, encoded)
	case strings.HasPrefix(encoded, "{"):
		end := strings.IndexByte(encoded, '}')
		if end < 0 {
			return nil, ErrMalformed
		}
		tag, ok := ldapTags[strings.ToUpper(encoded[:end+1])]
		if !ok {
			return nil, ErrMalformed
		}
		raw, err := base64.StdEncoding.DecodeString(encoded[end+1:])
		if err != nil {
			return nil, ErrMalformed
		}
		size := digests[tag.alg]().Size()
		if len(raw) < size || (!tag.salted && len(raw) != size) || (tag.salted && len(raw) == size) {
			return nil, ErrMalformed
		}
		h.Scheme, h.Alg, h.Unsalted = LDAP, tag.alg, !tag.salted
		h.digest, h.salt, h.saltPos = raw[:size], raw[size:], "ps"
		return h, nil
	case strings.HasPrefix(encoded, "$digest$"):
		f := strings.SplitN(encoded, "$", 6) // "", digest, alg, order, salt, hex
		if len(f) != 6 {
			return nil, ErrMalformed
		}
		newH, ok := digests[f[2]]
		if !ok || f[2] == ntAlg || (f[3] != "ps" && f[3] != "sp") {
			return nil, ErrMalformed
		}
		d, err := hex.DecodeString(f[5])
		if err != nil || len(d) != newH().Size() {
			return nil, ErrMalformed
		}
		h.Scheme, h.Alg, h.saltPos, h.salt, h.digest = Digest, f[2], f[3], []byte(f[4]), d
		h.Unsalted = f[4] == ""
		return h, nil
	case strings.HasPrefix(encoded, "$NT$"):
		d, err := hex.DecodeString(encoded[len("$NT$"):])
		if err != nil || len(d) != md4.Size {
			return nil, ErrMalformed
		}
		h.Scheme, h.Alg, h.Unsalted, h.digest = NT, ntAlg, true, d
		return h, nil
	case strings.HasPrefix(encoded, "$wrap-"):
		rest := encoded[len("$wrap-"):]
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			return nil, ErrMalformed
		}
		alg, inner := rest[:i], rest[i:]
		if _, ok := digests[alg]; !ok || !IsArgon2id(inner) {
			return nil, ErrMalformed
		}
		h.Scheme, h.Alg, h.Inner, h.Slow = Wrapped, alg, inner, true
		return h, nil
	}
	return nil, ErrMalformed
}

// ab64 is passlib's base64: standard alphabet with '.' for '+', unpadded.
func ab64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.ReplaceAll(s, ".", "+"))
}

func parsePBKDF2(h *Hash, encoded string) (*Hash, error) {
	h.Scheme, h.Slow = PBKDF2, true
	var (
		roundsField string
		err         error
	)
	if strings.HasPrefix(encoded, "pbkdf2_sha256$") { // Django
		f := strings.SplitN(encoded, "$", 4)
		if len(f) != 4 {
			return nil, ErrMalformed
		}
		roundsField, h.salt = f[1], []byte(f[2])
		if h.digest, err = base64.StdEncoding.DecodeString(f[3]); err != nil {
			return nil, ErrMalformed
		}
	} else {
		f := strings.Split(encoded, "$") // "", pbkdf2-sha256, rounds, salt, hash
		if len(f) != 5 {
			return nil, ErrMalformed
		}
		decode := ab64
		roundsField = f[2]
		if r, ok := strings.CutPrefix(f[2], "i="); ok { // PHC
			roundsField, decode = r, base64.RawStdEncoding.DecodeString
		}
		if h.salt, err = decode(f[3]); err != nil {
			return nil, ErrMalformed
		}
		if h.digest, err = decode(f[4]); err != nil {
			return nil, ErrMalformed
		}
	}
	h.rounds, err = strconv.Atoi(roundsField)
	if err != nil || h.rounds < MinPBKDF2Rounds || h.rounds > MaxPBKDF2Rounds || len(h.digest) < 16 || len(h.salt) == 0 {
		return nil, ErrMalformed
	}
	return h, nil
}

// Verify checks password against h (not a wrapped hash: see WrappedInput).
// A mismatch is (false, nil).
func (h *Hash) Verify(password string) (bool, error) {
	switch h.Scheme {
	case Bcrypt:
		err := bcrypt.CompareHashAndPassword([]byte(h.encoded), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	case PBKDF2:
		got, err := pbkdf2.Key(sha256.New, password, h.salt, h.rounds, len(h.digest))
		if err != nil {
			return false, err
		}
		return subtle.ConstantTimeCompare(got, h.digest) == 1, nil
	case LDAP, Digest, NT:
		return subtle.ConstantTimeCompare(h.sum(password), h.digest) == 1, nil
	}
	return false, ErrMalformed
}

// sum is the digest of password with h's algorithm, salt and salt position.
func (h *Hash) sum(password string) []byte {
	d := digests[h.Alg]()
	if h.saltPos == "sp" {
		d.Write(h.salt)
		d.Write(input(h.Alg, password))
	} else {
		d.Write(input(h.Alg, password))
		d.Write(h.salt)
	}
	return d.Sum(nil)
}

// WrappedInput is what the argon2id hash inside a wrapped hash was made of
// for password: the lower-case hex of the unsalted digest. Verify h.Inner
// against it with the argon2id hasher.
func (h *Hash) WrappedInput(password string) string {
	d := digests[h.Alg]()
	d.Write(input(h.Alg, password))
	return hex.EncodeToString(d.Sum(nil))
}

// WrapInput returns, for an unsalted hash h, the input of its wrapping
// argon2id hash (the lower-case hex of its digest), computed without the
// password; Wrap then builds the stored string.
func (h *Hash) WrapInput() (string, bool) {
	if !h.Unsalted || (h.Scheme != LDAP && h.Scheme != Digest && h.Scheme != NT) {
		return "", false
	}
	return hex.EncodeToString(h.digest), true
}

// Wrap is the stored form of an unsalted hash of alg wrapped in the
// argon2id PHC string phc (made of WrapInput).
func Wrap(alg, phc string) string { return "$wrap-" + alg + phc }
