package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// A Ring is the secret key material UIAS keeps outside its databases, in
// separate sets so that no key serves two purposes:
//
//   - master keys protect the data keys stored in the database (envelope
//     encryption: data keys are wrapped with the active master key) and prove
//     that the ring is the one the database was set up with (a key-check
//     value per master key id is stored next to the data);
//   - signing keys sign tokens and records (Signer).
//
// Every key has an id; the active key of a set is the one used for new
// wrapping or signing, the others still unwrap or verify. Master keys are
// never used directly: wrapping and key-check keys are derived from them
// with HKDF under distinct labels.
//
// The ring file (or the UIAS_KEYRING variable) is JSON, optionally base64:
//
//	{"version": 2,
//	 "master":  {"active": "m1", "keys": {"m1": "<base64 of 32 bytes>"}},
//	 "signing": {"active": "s1", "keys": {"s1": "<base64 of 32 bytes>"}}}
//
// A key given as a string is of SuiteAES; a key of another suite is an
// object naming it: "m2": {"suite": "sm4", "key": "<base64 of 32 bytes>"}.
// A master key's suite is the suite of everything made under it (wrapping,
// key-check values, purpose keys, and the data keys made while it is
// active); a signing key's is its MAC (HMAC-SHA-256 or HMAC-SM3).
//
// A version-1 file ({"active": "k1", "keys": {...}}, whose keys sealed data
// directly) is still read: its keys become the master set and, once, the
// database's data keys (see Legacy).
type Ring struct {
	Master  KeySet
	Signing KeySet
	// Legacy holds the keys of a version-1 file as they were used before
	// (directly as sealing keys, and the blind-index source), so a database
	// written with them can be taken over; nil for version 2.
	Legacy *LegacyKeys
	// Source names where the ring came from (a file path or UIAS_KEYRING),
	// for messages.
	Source string
}

// KeySet is a set of 32-byte keys by id with the active id.
type KeySet struct {
	Active string
	Keys   map[string][]byte
	// Suites holds the suite of each key that is not SuiteAES.
	Suites map[string]Suite
	// Modules holds the master keys kept in a cipher machine (ModuleKey):
	// they have no bytes in Keys.
	Modules map[string]ModuleKey
}

// Has reports whether the set holds key id (bytes or in a module).
func (ks KeySet) Has(id string) bool {
	_, a := ks.Keys[id]
	_, b := ks.Modules[id]
	return a || b
}

// SuiteOf is the suite of key id (SuiteAES unless Suites says otherwise).
func (ks KeySet) SuiteOf(id string) Suite {
	if s, ok := ks.Suites[id]; ok {
		return s
	}
	return SuiteAES
}

// LegacyKeys are the keys of a version-1 ring.
type LegacyKeys struct {
	Active string
	Keys   map[string][]byte // sealing keys by id (without blind-index)
	Index  []byte            // the key blind indexes were derived from
}

// RingVersion is the version of the ring format written by NewRingFile.
const RingVersion = 2

// Errors of LoadRing (wrapped).
var (
	// ErrNoRing reports that neither the environment nor the file holds a ring.
	ErrNoRing = errors.New("no key ring")
	// ErrKeyFileOpen reports a key file that group or others may access.
	ErrKeyFileOpen = errors.New("group or others may access the key file")
)

type ringFile struct {
	Version int         `json:"version"`
	Master  *keySetFile `json:"master,omitempty"`
	Signing *keySetFile `json:"signing,omitempty"`
	// version 1
	Active string            `json:"active,omitempty"`
	Keys   map[string]string `json:"keys,omitempty"`
}

type keySetFile struct {
	Active string                     `json:"active"`
	Keys   map[string]json.RawMessage `json:"keys"`
}

// suiteKeyFile is a key of a suite other than the default: {"suite":
// "sm4", "key": "<base64>"}.
type suiteKeyFile struct {
	Suite  string           `json:"suite"`
	Key    string           `json:"key"`
	PKCS11 *ModuleKeyConfig `json:"pkcs11,omitempty"`
}

// RingSource says where LoadRing finds the ring.
type RingSource struct {
	// Env is the ring itself (JSON or base64 of it), from the UIAS_KEYRING
	// environment variable; when set, File is not read.
	Env string
	// File is the path of the ring file, e.g. a mounted Kubernetes Secret.
	File string
	// AllowOpenFile accepts a file that group or others may read or write
	// (refused by default: anyone who can read the file can read every
	// sealed value, anyone who can write it can swap the ring).
	AllowOpenFile bool
}

// LoadRing reads the ring from src.Env or else src.File. It returns an error
// wrapping ErrNoRing when Env is empty and File does not exist, and refuses a
// file with group or other permission bits unless AllowOpenFile. Errors name
// the source, never key material.
func LoadRing(src RingSource) (*Ring, error) {
	if strings.TrimSpace(src.Env) != "" {
		r, err := parseRing([]byte(src.Env), src.AllowOpenFile)
		if err != nil {
			return nil, fmt.Errorf("key ring from UIAS_KEYRING: %w", err)
		}
		r.Source = "UIAS_KEYRING"
		return r, nil
	}
	if src.File == "" {
		return nil, fmt.Errorf("%w: UIAS_KEYRING is empty and no key file is set", ErrNoRing)
	}
	fi, err := os.Stat(src.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: key file %s does not exist and UIAS_KEYRING is empty", ErrNoRing, src.File)
	}
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", src.File, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file (a directory?): point identity.key_file at the key ring file itself", src.File)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && !src.AllowOpenFile {
		return nil, fmt.Errorf("key file %s has mode %04o: %w; make it readable by the UIAS user only "+
			"(chmod 600, or defaultMode 0400 on a Kubernetes Secret volume), or accept it explicitly", src.File, perm, ErrKeyFileOpen)
	}
	data, err := os.ReadFile(src.File)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", src.File, err)
	}
	r, err := parseRing(data, src.AllowOpenFile)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", src.File, err)
	}
	r.Source = src.File
	return r, nil
}

// ParseRing decodes a ring from JSON or from base64 of JSON. Errors never
// include key material. A module key's PIN file must be readable by the
// UIAS user only (LoadRing's RingSource.AllowOpenFile accepts others).
func ParseRing(data []byte) (*Ring, error) { return parseRing(data, false) }

// parseRing is ParseRing; allowOpen accepts a module key's PIN file that
// group or others may access.
func parseRing(data []byte, allowOpen bool) (*Ring, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] != '{' {
		var dec []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if dec, err = enc.DecodeString(string(data)); err == nil {
				break
			}
		}
		if err != nil {
			return nil, errors.New("the key ring is neither JSON nor base64 of JSON")
		}
		data = bytes.TrimSpace(dec)
	}
	var rf ringFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return nil, errors.New("the key ring is not valid JSON of the expected shape (version, master, signing)")
	}
	switch {
	case rf.Version == 0 && rf.Master == nil && rf.Signing == nil:
		return parseV1(rf)
	case rf.Version != RingVersion:
		return nil, fmt.Errorf("key ring version %d is not supported (want %d)", rf.Version, RingVersion)
	case len(rf.Keys) > 0 || rf.Active != "":
		return nil, errors.New(`a version 2 key ring has "master" and "signing" sets, not top-level "keys"`)
	}
	r := &Ring{}
	var err error
	if r.Master, err = parseSet("master", rf.Master, true, allowOpen); err != nil {
		return nil, err
	}
	if r.Signing, err = parseSet("signing", rf.Signing, false, allowOpen); err != nil {
		return nil, err
	}
	for mid, m := range r.Master.Keys {
		for sid, s := range r.Signing.Keys {
			if hmac.Equal(m, s) {
				return nil, fmt.Errorf("master key %q and signing key %q are the same key: every key must serve one purpose", mid, sid)
			}
		}
	}
	return r, nil
}

func parseSet(name string, f *keySetFile, required, allowOpen bool) (KeySet, error) {
	if f == nil || len(f.Keys) == 0 {
		if required {
			return KeySet{}, fmt.Errorf("the key ring has no %s keys", name)
		}
		return KeySet{}, nil
	}
	enc := make(map[string]string, len(f.Keys))
	var suites map[string]Suite
	var modules map[string]ModuleKey
	for id, raw := range f.Keys {
		var str string
		if json.Unmarshal(raw, &str) == nil {
			enc[id] = str
			continue
		}
		var sk suiteKeyFile
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sk); err != nil {
			return KeySet{}, fmt.Errorf(`%s key %q is neither a base64 string nor {"suite": "...", "key": "<base64>"}`, name, id)
		}
		suite, err := ParseSuite(sk.Suite)
		if err != nil {
			return KeySet{}, fmt.Errorf("%s key %q: %w", name, id, err)
		}
		if sk.PKCS11 != nil {
			mk, err := parseModuleKey(name, id, sk, suite, allowOpen)
			if err != nil {
				return KeySet{}, err
			}
			if modules == nil {
				modules = map[string]ModuleKey{}
			}
			modules[id] = mk
			continue
		}
		enc[id] = sk.Key
		if suite != SuiteAES {
			if suites == nil {
				suites = map[string]Suite{}
			}
			suites[id] = suite
		}
	}
	keys, err := decodeKeys(name, enc)
	if err != nil {
		return KeySet{}, err
	}
	ks := KeySet{Active: f.Active, Keys: keys, Suites: suites, Modules: modules}
	if !ks.Has(f.Active) {
		return KeySet{}, fmt.Errorf("the active %s key id %q is not among the %s keys", name, f.Active, name)
	}
	return ks, nil
}

// parseModuleKey opens the master key id kept in a cipher machine.
func parseModuleKey(set, id string, sk suiteKeyFile, suite Suite, allowOpen bool) (ModuleKey, error) {
	switch {
	case set != "master":
		return nil, fmt.Errorf("%s key %q: only master keys can be kept in a cipher machine", set, id)
	case suite != SuiteAES || sk.Key != "":
		return nil, fmt.Errorf(`%s key %q: a key in a cipher machine has no "key" and is AES-256 (its "suite" is aes)`, set, id)
	case openModuleKey == nil:
		return nil, fmt.Errorf("%s key %q: %w", set, id, ErrNoPKCS11)
	}
	if err := CheckKeyID(id); err != nil {
		return nil, fmt.Errorf("%s %w", set, err)
	}
	if err := sk.PKCS11.check(); err != nil {
		return nil, fmt.Errorf("%s key %q: %w", set, id, err)
	}
	c := *sk.PKCS11
	c.allowOpenPIN = allowOpen
	return openModuleKey(c, id)
}

func decodeKeys(name string, in map[string]string) (map[string][]byte, error) {
	keys := make(map[string][]byte, len(in))
	for id, enc := range in {
		if err := CheckKeyID(id); err != nil {
			return nil, fmt.Errorf("%s %w", name, err)
		}
		k, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("%s key %q is not valid base64", name, id)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("%s key %q is %d bytes, want %d", name, id, len(k), KeySize)
		}
		keys[id] = k
	}
	return keys, nil
}

func parseV1(rf ringFile) (*Ring, error) {
	if len(rf.Keys) == 0 {
		return nil, errors.New("the key ring has no keys")
	}
	all, err := decodeKeys("legacy", rf.Keys)
	if err != nil {
		return nil, err
	}
	if _, ok := all[rf.Active]; !ok || rf.Active == BlindIndexKeyID {
		return nil, fmt.Errorf("the active key id %q is not among the keys", rf.Active)
	}
	seal := map[string][]byte{}
	for id, k := range all {
		if id != BlindIndexKeyID {
			seal[id] = k
		}
	}
	index := all[BlindIndexKeyID]
	if index == nil { // as NewSealer: the smallest sealing key id
		ids := make([]string, 0, len(seal))
		for id := range seal {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		index = seal[ids[0]]
	}
	return &Ring{
		Master: KeySet{Active: rf.Active, Keys: seal},
		Legacy: &LegacyKeys{Active: rf.Active, Keys: seal, Index: index},
	}, nil
}

// NewRingFile writes a new version 2 ring (one random master key "m1", one
// random signing key "s1") to path with mode 0600 (directories 0700),
// unless the file exists; in both cases it then loads the file. Concurrent
// callers end up with the same ring.
func NewRingFile(path string) (*Ring, error) {
	if err := createExclusive(path, NewRingJSON()); err != nil {
		return nil, err
	}
	return LoadRing(RingSource{File: path})
}

// NewRingJSON returns a new version 2 ring as JSON (for UIAS_KEYRING or a
// Secret; "uias keys new" prints it).
func NewRingJSON() []byte { return NewRingJSONSuite(SuiteAES) }

// NewRingJSONSuite is NewRingJSON with keys of suite s ("uias keys new
// --suite sm4").
func NewRingJSONSuite(s Suite) []byte {
	data, _ := json.MarshalIndent(ringFile{Version: RingVersion,
		Master:  &keySetFile{Active: "m1", Keys: map[string]json.RawMessage{"m1": KeyJSON(s, randomKey())}},
		Signing: &keySetFile{Active: "s1", Keys: map[string]json.RawMessage{"s1": KeyJSON(s, randomKey())}},
	}, "", "  ")
	return append(data, '\n')
}

// KeyJSON is how a ring file holds key of suite s: a base64 string for
// SuiteAES, {"suite": "sm4", "key": "<base64>"} otherwise.
func KeyJSON(s Suite, key []byte) json.RawMessage {
	enc := base64.StdEncoding.EncodeToString(key)
	var b []byte
	if s == SuiteAES || s == "" {
		b, _ = json.Marshal(enc)
	} else {
		b, _ = json.Marshal(suiteKeyFile{Suite: string(s), Key: enc})
	}
	return b
}

func randomKey() []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go >= 1.24)
	return k
}

// Suite is the suite of the active master key: the suite of new data keys
// and of everything the ring wraps or seals from now on.
func (r *Ring) Suite() Suite { return r.Master.SuiteOf(r.Master.Active) }

// derive returns the key for purpose derived from master key id, in the
// master key's suite: HKDF-SHA-256 to 32 bytes (AES-256), or HKDF-SM3 to
// 16 bytes (SM4).
func (r *Ring) derive(id, purpose string) ([]byte, error) {
	if m, ok := r.Master.Modules[id]; ok {
		return m.Derive("uias "+purpose+" v1", KeySize)
	}
	k, ok := r.Master.Keys[id]
	if !ok {
		return nil, fmt.Errorf("the key ring has no master key %q", id)
	}
	return r.Master.SuiteOf(id).deriveKey(k, "uias "+purpose+" v1")
}

// CheckValue is the key-check value of master key id: a MAC (HMAC-SHA-256,
// or HMAC-SM3 for an SM4 master key) of a fixed string under a key derived
// from it. Stored next to the data it proves that a later ring holds the
// same key, without revealing anything of it.
func (r *Ring) CheckValue(id string) (string, error) {
	k, err := r.derive(id, "key-check")
	if err != nil {
		return "", err
	}
	m := hmac.New(r.Master.SuiteOf(id).Hash(), k)
	m.Write([]byte("uias key-check value"))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// derivedSealer is a Sealer over the keys derived for purpose from every
// master key, each in its master key's suite; the active one seals.
func (r *Ring) derivedSealer(purpose string) (*Sealer, error) {
	keys := make(map[string]SuiteKey, len(r.Master.Keys)+len(r.Master.Modules))
	for id := range r.Master.Keys {
		k, err := r.derive(id, purpose)
		if err != nil {
			return nil, err
		}
		keys[id] = SuiteKey{Suite: r.Master.SuiteOf(id), Key: k}
	}
	for id := range r.Master.Modules {
		k, err := r.derive(id, purpose)
		if err != nil {
			return nil, err
		}
		keys[id] = SuiteKey{Suite: SuiteAES, Key: k}
	}
	return NewSuiteSealer(keys, r.Master.Active, make([]byte, KeySize))
}

// wrapper is a Sealer over the wrapping keys derived from the master keys
// the ring holds as bytes (a key in a cipher machine wraps inside it), with
// active sealing when it is one of them.
func (r *Ring) wrapper(active string) (*Sealer, error) {
	keys := make(map[string]SuiteKey, len(r.Master.Keys))
	ids := make([]string, 0, len(r.Master.Keys))
	for id := range r.Master.Keys {
		k, err := r.derive(id, "wrap")
		if err != nil {
			return nil, err
		}
		keys[id] = SuiteKey{Suite: r.Master.SuiteOf(id), Key: k}
		ids = append(ids, id)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	if _, ok := keys[active]; !ok {
		slices.Sort(ids)
		active = ids[0]
	}
	return NewSuiteSealer(keys, active, make([]byte, KeySize))
}

// WrapKey encrypts a data key with the active master key, binding it to
// label (e.g. the data key's id): "<master id>:<ciphertext>" (AES-256-GCM)
// or "<master id>:sm4:<ciphertext>" (SM4-GCM), as Sealer.Seal.
//
// A master key in a cipher machine wraps inside it (AES-256-GCM with the
// key object): "<master id>:<base64url(nonce|ciphertext|tag)>".
func (r *Ring) WrapKey(key []byte, label string) (string, error) {
	aad := []byte("uias data key:" + label)
	if m, ok := r.Master.Modules[r.Master.Active]; ok {
		raw, err := m.Seal(key, aad)
		if err != nil {
			return "", err
		}
		return r.Master.Active + ":" + base64.RawURLEncoding.EncodeToString(raw), nil
	}
	w, err := r.wrapper(r.Master.Active)
	if err != nil {
		return "", err
	}
	return w.Seal(key, aad)
}

// UnwrapKey decrypts a data key wrapped by WrapKey with any master key of
// the ring.
func (r *Ring) UnwrapKey(wrapped, label string) ([]byte, error) {
	aad := []byte("uias data key:" + label)
	var k []byte
	mid, body, _ := strings.Cut(wrapped, ":")
	if m, ok := r.Master.Modules[mid]; ok {
		raw, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil {
			return nil, ErrSealedFormat
		}
		if k, err = m.Open(raw, aad); err != nil {
			return nil, err
		}
	} else {
		w, err := r.wrapper("")
		if err != nil {
			return nil, err
		}
		if w == nil {
			return nil, ErrUnknownKeyID
		}
		if k, err = w.Open(wrapped, aad); err != nil {
			return nil, err
		}
	}
	if _, err := SuiteOfKey(k); err != nil {
		return nil, fmt.Errorf("data key %q: %w", label, err)
	}
	return k, nil
}

// NewDataKey returns a random 32-byte data key (AES-256).
func NewDataKey() []byte { return randomKey() }

// Signer signs messages with the ring's signing keys (HMAC-SHA256, or
// HMAC-SM3 for a signing key of SuiteSM4), never with a master or data key.
// It fails when the ring has no signing keys (a version-1 ring).
func (r *Ring) Signer() (*Signer, error) {
	if len(r.Signing.Keys) == 0 {
		return nil, errors.New("the key ring has no signing keys (add a \"signing\" set)")
	}
	return NewSuiteSigner(r.Signing.Active, r.Signing.Keys, r.Signing.Suites), nil
}
