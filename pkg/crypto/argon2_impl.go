package crypto

// argon2Memory is the block memory of one argon2id computation, kept by a
// Hasher worker from one hash to the next so that a login allocates nothing
// big. Only the libargon2 build hashes in it (and defines get); the x/crypto
// build ignores it. It is not safe for concurrent use; the zero value is
// ready.
type argon2Memory struct{ buf []byte }

// RawArgon2id derives an argon2id key with the implementation this binary is
// built with (Argon2Implementation) and fresh memory; it is the bare cost of
// one hash and the benchmark floor.
func RawArgon2id(password, salt []byte, p Argon2Params) []byte {
	return argon2idKey(nil, password, salt, p)
}
