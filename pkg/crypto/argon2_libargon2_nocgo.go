//go:build !cgo && libargon2

package crypto

// The libargon2 tag asks for argon2id in C, which needs cgo: without this
// file, CGO_ENABLED=0 -tags libargon2 would quietly build pure Go. The
// undefined name below makes that build fail and says why.
var _ = libargon2BuildNeedsCgo_SetCGO_ENABLED1
