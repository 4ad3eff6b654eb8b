//go:build !(pkcs11 && cgo)

package crypto

// NewPKCS11Key needs the pkcs11 build (cgo): this one has no PKCS#11.
func NewPKCS11Key(ModuleKeyConfig) error { return ErrNoPKCS11 }
