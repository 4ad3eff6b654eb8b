//go:build !(cgo && libargon2)

package crypto

// Argon2Implementation names the argon2id code this binary hashes with: this
// build uses argon2id in pure Go, written in this package (argon2_purego.go)
// after RFC 9106 so that a hash worker keeps its block memory from one hash
// to the next, checked bit for bit against golang.org/x/crypto/argon2 in
// the tests (build with -tags libargon2 and cgo for the C reference
// library; see docs/operators.md).
const Argon2Implementation = "pkg/crypto (pure Go after RFC 9106, worker memory reused)"

// Argon2Cgo reports whether argon2id runs in C (the libargon2 build).
const Argon2Cgo = false

// argon2ReusesMemory: each worker hashes in memory it keeps.
const argon2ReusesMemory = true

// argon2idKey derives p.KeyLen bytes in mem (nil: fresh memory).
func argon2idKey(mem *argon2Memory, password, salt []byte, p Argon2Params) []byte {
	return argon2idGo(mem, password, salt, p)
}
