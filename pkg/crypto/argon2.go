// Package crypto holds the UIAS password hashing (argon2id with bounded
// concurrency), token helpers and the AES-256-GCM Sealer for encryption at rest.
package crypto

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters.
type Argon2Params struct {
	MemoryKiB uint32 `yaml:"memory_kib"`
	Time      uint32 `yaml:"time"`
	Threads   uint8  `yaml:"threads"`
	SaltLen   uint32 `yaml:"salt_len"`
	KeyLen    uint32 `yaml:"key_len"`
}

// DefaultArgon2 returns the OWASP-recommended baseline: m=19 MiB, t=2, p=1,
// 16-byte salt, 32-byte key.
func DefaultArgon2() Argon2Params {
	return Argon2Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// withDefaults fills zero fields from DefaultArgon2 and applies argon2's
// minimum memory.
func (p Argon2Params) withDefaults() Argon2Params {
	d := DefaultArgon2()
	if p.MemoryKiB == 0 {
		p.MemoryKiB = d.MemoryKiB
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	// argon2 silently raises memory below 8 KiB per lane; record the real value.
	if p.MemoryKiB < 8*uint32(p.Threads) {
		p.MemoryKiB = 8 * uint32(p.Threads)
	}
	return p
}

// Limits enforced when parsing stored hashes, so a corrupted or hostile
// database row cannot make Verify allocate gigabytes or spin for minutes.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
	minSaltLen   = 8
	maxSaltLen   = 1024
	minKeyLen    = 16
	maxKeyLen    = 1024
)

// ErrMalformedHash is returned (wrapped) for a stored hash that is not a valid
// argon2id PHC string.
var ErrMalformedHash = errors.New("malformed argon2id hash")

var b64 = base64.RawStdEncoding.Strict()

// EncodePHC formats a hash as a PHC string:
// $argon2id$v=19$m=<KiB>,t=<time>,p=<threads>$<salt b64>$<hash b64>.
// SaltLen and KeyLen of p are ignored (they are implied by salt and hash).
func EncodePHC(p Argon2Params, salt, hash []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(hash))
}

// ParsePHC parses an argon2id PHC string. The returned params have SaltLen and
// KeyLen set from the decoded salt and hash. Any deviation from the format
// (other algorithm, other version, missing or extra parts, out-of-range
// numbers, bad base64) is an error wrapping ErrMalformedHash; it never panics.
func ParsePHC(encoded string) (p Argon2Params, salt, hash []byte, err error) {
	fail := func(why string) (Argon2Params, []byte, []byte, error) {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return fail("want 5 '$'-separated fields")
	}
	if parts[1] != "argon2id" {
		return fail("algorithm is not argon2id")
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return fail("missing version")
	}
	if ver, err := strconv.ParseUint(v, 10, 32); err != nil || ver != argon2.Version {
		return fail("unsupported version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return fail("want parameters m,t,p")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(kv[i], name)
		if !ok || s == "" || (len(s) > 1 && s[0] == '0') {
			return fail("bad parameter " + strings.TrimSuffix(name, "="))
		}
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fail("bad parameter " + strings.TrimSuffix(name, "="))
		}
		vals[i] = n
	}
	m, t, threads := vals[0], vals[1], vals[2]
	if t < 1 || t > maxTime {
		return fail("time out of range")
	}
	if threads < 1 || threads > 255 {
		return fail("parallelism out of range")
	}
	if m < 8*threads || m > maxMemoryKiB {
		return fail("memory out of range")
	}
	salt, err = b64.DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return fail("bad salt")
	}
	hash, err = b64.DecodeString(parts[5])
	if err != nil || len(hash) < minKeyLen || len(hash) > maxKeyLen {
		return fail("bad hash")
	}
	p = Argon2Params{
		MemoryKiB: uint32(m),
		Time:      uint32(t),
		Threads:   uint8(threads),
		SaltLen:   uint32(len(salt)),
		KeyLen:    uint32(len(hash)),
	}
	return p, salt, hash, nil
}
