package crypto

// PurposeSealer returns a Sealer over keys derived (HKDF-SHA256, or HKDF-SM3
// for an SM4 master key, which then seals with SM4-GCM) from every master
// key of the ring for purpose (e.g. "sync provisioning secrets"), sealing
// with the one derived from the active master key. Components use
// it to encrypt their own secrets at rest under the deployment's ring: a
// value sealed for one purpose does not open under another, and a ring
// that keeps an old master key still opens what it sealed.
func (r *Ring) PurposeSealer(purpose string) (*Sealer, error) {
	return r.derivedSealer(purpose)
}
