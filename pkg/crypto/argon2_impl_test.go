package crypto

import (
	"encoding/hex"
	"testing"
)

// argon2KAT are argon2id tags computed with golang.org/x/crypto/argon2; both
// implementations (the default x/crypto build and -tags libargon2) must
// reproduce them, so stored hashes verify whichever way a binary is built.
var argon2KAT = []struct {
	pw, salt string
	t, m     uint32
	p        uint8
	keyLen   uint32
	want     string
}{
	{"Secr3t!pass", "0123456789abcdef", 2, 19456, 1, 32, "7dd34dd68e79edf410bc982f395f16905276613b647e89166c83e1b6eeba8a88"},
	{"", "saltsaltsaltsalt", 1, 8, 1, 16, "6e9724dcad35cb424a9dd814a4f853aa"},
	{"пароль-口令", "fedcba9876543210", 3, 1031, 2, 65, "a820a3203a1db5c1301726ad2526c57595ad1f833783b2a5c5bab533ffe082cb280753ce35a6622adcfa7a3c7a3488718d7f921b939a3e1fd91857a238fd5a6e65"},
	{"p4ss", "0123456789abcdef0123", 1, 64, 4, 100, "a1f30257c76f0f89f2b8644df49218da980a03baa3a06d12d778763ac0866bf5e141c8fdda241426dad7b68d7067162cc29b4aad9463820087288fe05d95f9a91fbbed61aed997096ad2947df34d5b5fd1ff3e3956c36a519c367f115513123aafac5d48"},
}

func TestArgon2KnownAnswers(t *testing.T) {
	t.Logf("implementation: %s", Argon2Implementation)
	// One memory for every case, as a worker reuses it: each hash starts on
	// what the previous one left, larger or smaller.
	mem := new(argon2Memory)
	for _, c := range argon2KAT {
		p := Argon2Params{MemoryKiB: c.m, Time: c.t, Threads: c.p, KeyLen: c.keyLen, SaltLen: uint32(len(c.salt))}
		for _, m := range []*argon2Memory{nil, mem} {
			got := argon2idKey(m, []byte(c.pw), []byte(c.salt), p)
			if hex.EncodeToString(got) != c.want {
				t.Errorf("%+v (reused memory %v): got %x, want %s", p, m != nil, got, c.want)
			}
		}
		if got := RawArgon2id([]byte(c.pw), []byte(c.salt), p); hex.EncodeToString(got) != c.want {
			t.Errorf("RawArgon2id %+v: got %x", p, got)
		}
		if got := RawArgon2idReusing([]byte(c.pw), []byte(c.salt), p); hex.EncodeToString(got) != c.want {
			t.Errorf("RawArgon2idReusing %+v: got %x", p, got)
		}
	}
}

func BenchmarkArgon2id(b *testing.B) {
	p := DefaultArgon2()
	pw, salt := []byte("Secr3t!pass"), []byte("0123456789abcdef")
	b.Run("fresh-memory", func(b *testing.B) {
		for b.Loop() {
			RawArgon2id(pw, salt, p)
		}
	})
	b.Run("reused-memory", func(b *testing.B) {
		mem := new(argon2Memory)
		for b.Loop() {
			argon2idKey(mem, pw, salt, p)
		}
	})
}
