//go:build !(cgo && libargon2)

package crypto

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/argon2"
)

// TestArgon2MatchesXCrypto: the pure-Go argon2id of this package gives the
// same tags as golang.org/x/crypto/argon2 for random inputs over the
// parameters that matter (passes, lanes, memory not a multiple of 4 x
// lanes or below the minimum, segments longer than one address block,
// tags longer than 64 bytes), in fresh memory and in one memory reused
// from hash to hash, larger or smaller, as a worker does.
func TestArgon2MatchesXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	mem := new(argon2Memory)
	cases := []Argon2Params{
		{MemoryKiB: 19456, Time: 2, Threads: 1, KeyLen: 32},
		{MemoryKiB: 8, Time: 1, Threads: 1, KeyLen: 16},
		{MemoryKiB: 1031, Time: 3, Threads: 2, KeyLen: 65},
		{MemoryKiB: 64, Time: 1, Threads: 4, KeyLen: 100},
		{MemoryKiB: 8, Time: 1, Threads: 4, KeyLen: 32}, // below 8 KiB per lane: raised
		{MemoryKiB: 4096, Time: 1, Threads: 1, KeyLen: 64},
		{MemoryKiB: 2048 + 17, Time: 4, Threads: 3, KeyLen: 129},
	}
	for range 12 {
		cases = append(cases, Argon2Params{MemoryKiB: 8 + rng.Uint32N(3000), Time: 1 + rng.Uint32N(3),
			Threads: uint8(1 + rng.IntN(4)), KeyLen: 4 + rng.Uint32N(200)})
	}
	for _, p := range cases {
		pw := make([]byte, rng.IntN(40))
		salt := make([]byte, 8+rng.IntN(24))
		for i := range pw {
			pw[i] = byte(rng.Uint32())
		}
		for i := range salt {
			salt[i] = byte(rng.Uint32())
		}
		want := argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
		for _, m := range []*argon2Memory{nil, mem} {
			if got := argon2idGo(m, pw, salt, p); !bytes.Equal(got, want) {
				t.Errorf("%+v (reused memory %v): got %x, want %x", p, m != nil, got, want)
			}
		}
	}
}

// BenchmarkArgon2idXCrypto is golang.org/x/crypto/argon2 (SSE4 on amd64,
// memory allocated for every hash), to compare with BenchmarkArgon2id.
func BenchmarkArgon2idXCrypto(b *testing.B) {
	p := DefaultArgon2()
	pw, salt := []byte("Secr3t!pass"), []byte("0123456789abcdef")
	for b.Loop() {
		argon2.IDKey(pw, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	}
}
