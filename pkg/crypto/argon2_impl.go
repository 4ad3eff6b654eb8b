package crypto

// argon2Memory is the block memory of one argon2id computation, kept by a
// Hasher worker from one hash to the next so that a login allocates nothing
// big. Implementations that cannot use caller memory ignore it. It is not
// safe for concurrent use; the zero value is ready.
type argon2Memory struct{ buf []byte }

// get returns n bytes, growing the memory only when it is too small. The
// contents are whatever the previous hash left: argon2 writes every block
// before reading it.
func (m *argon2Memory) get(n int) []byte {
	if cap(m.buf) < n {
		m.buf = make([]byte, n)
	}
	return m.buf[:n]
}

// RawArgon2id derives an argon2id key with the implementation this binary is
// built with (Argon2Implementation) and fresh memory; it is the bare cost of
// one hash and the benchmark floor.
func RawArgon2id(password, salt []byte, p Argon2Params) []byte {
	return argon2idKey(nil, password, salt, p)
}
