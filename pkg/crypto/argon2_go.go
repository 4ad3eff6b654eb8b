//go:build !(cgo && libargon2)

package crypto

import "golang.org/x/crypto/argon2"

// Argon2Implementation names the argon2id code this binary hashes with: this
// build uses golang.org/x/crypto/argon2 (build with -tags libargon2 and cgo
// for the C reference library; see docs/operators.md).
const Argon2Implementation = "golang.org/x/crypto/argon2"

// Argon2Cgo reports whether argon2id runs in C (the libargon2 build).
const Argon2Cgo = false

// argon2ReusesMemory: x/crypto allocates the memory of every hash itself.
const argon2ReusesMemory = false

// argon2idKey derives p.KeyLen bytes. x/crypto allocates its own memory, so
// mem is unused.
func argon2idKey(_ *argon2Memory, password, salt []byte, p Argon2Params) []byte {
	return argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
}
