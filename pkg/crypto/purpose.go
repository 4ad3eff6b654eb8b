package crypto

// PurposeSealer returns a Sealer over keys derived (HKDF-SHA256) from every
// master key of the ring for purpose (e.g. "sync provisioning secrets"),
// sealing with the one derived from the active master key. Components use
// it to encrypt their own secrets at rest under the deployment's ring: a
// value sealed for one purpose does not open under another, and a ring
// that keeps an old master key still opens what it sealed.
func (r *Ring) PurposeSealer(purpose string) (*Sealer, error) {
	keys := make(map[string][]byte, len(r.Master.Keys))
	for id := range r.Master.Keys {
		k, err := r.derive(id, purpose)
		if err != nil {
			return nil, err
		}
		keys[id] = k
	}
	return NewSealerWithIndexKey(keys, r.Master.Active, make([]byte, KeySize))
}
