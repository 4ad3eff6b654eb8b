//go:build pkcs11 && cgo

package crypto

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

func init() { openModuleKey = openPKCS11Key }

// modules are the PKCS#11 libraries loaded and initialised, by path (a
// library is initialised once per process).
var (
	modulesMu sync.Mutex
	modules   = map[string]*pkcs11.Ctx{}
)

func loadModule(path string) (*pkcs11.Ctx, error) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if p, ok := modules[path]; ok {
		return p, nil
	}
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("the PKCS#11 module %s does not load", path)
	}
	if err := p.Initialize(); err != nil {
		var pe pkcs11.Error
		if !errors.As(err, &pe) || pe != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			p.Destroy()
			return nil, fmt.Errorf("the PKCS#11 module %s: initialise: %w", path, err)
		}
	}
	modules[path] = p
	return p, nil
}

// pkcs11Key is a secret key object of a token, used through one logged-in
// session (PKCS#11 sessions run one operation at a time: mu). The session
// is opened again, once per operation, when the module says it or the
// token is gone (a restarted cipher machine, a network module that
// reconnected): see do.
type pkcs11Key struct {
	name    string
	c       ModuleKeyConfig // to open the session again (the PIN is read again then)
	p       *pkcs11.Ctx
	mu      sync.Mutex
	session pkcs11.SessionHandle
	key     pkcs11.ObjectHandle
}

// sessionLost reports a module error after which the session (or the key
// handle in it) is gone, but the same key may be reached through a new one.
func sessionLost(err error) bool {
	var pe pkcs11.Error
	if !errors.As(err, &pe) {
		return false
	}
	switch uint(pe) {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_OBJECT_HANDLE_INVALID:
		return true
	}
	return false
}

// deviceError reports a module error that is the device's or the
// session's, never the data's.
func deviceError(err error) bool {
	var pe pkcs11.Error
	if !errors.As(err, &pe) {
		return true
	}
	switch uint(pe) {
	case pkcs11.CKR_HOST_MEMORY, pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return true
	}
	return sessionLost(err)
}

// do runs op with the key's session, holding mu. When op fails because the
// session is lost (sessionLost), it opens a new session, logs in, finds and
// checks the key again, and runs op once more (sec31b I1). Errors from the
// module wrap ErrModule, so callers tell them from a value that does not
// open (ErrOpenFailed).
func (k *pkcs11Key) do(what string, op func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := op(k.session, k.key)
	if err == nil || !sessionLost(err) {
		return err
	}
	_ = k.p.CloseSession(k.session)
	s, key, rerr := openSession(k.p, k.c, k.name)
	if rerr != nil {
		return fmt.Errorf("%s: %s: %w: %w; opening a new session failed: %w", k.name, what, ErrModule, err, rerr)
	}
	k.session, k.key = s, key
	return op(k.session, k.key)
}

func (k *pkcs11Key) String() string { return k.name }

// findToken returns the slot whose token is labelled label.
func findToken(p *pkcs11.Ctx, label string) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list the slots: %w", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && ti.Label == label {
			return s, nil
		}
	}
	return 0, fmt.Errorf("no token labelled %q", label)
}

// openPKCS11Key opens the secret key labelled c.Label on the token c.Token
// of module c.Module, logged in with the PIN. It refuses a key that is not
// AES-256 or whose value may exist outside the token (moduleKeyRefusal).
func openPKCS11Key(c ModuleKeyConfig, id string) (ModuleKey, error) {
	name := fmt.Sprintf("master key %q (PKCS#11 %s, token %q, label %q)", id, c.Module, c.Token, c.Label)
	pin, err := c.pin()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p, err := loadModule(c.Module)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, obj, err := openSessionPIN(p, c, name, pin)
	if err != nil {
		return nil, err
	}
	return &pkcs11Key{name: name, c: c, p: p, session: s, key: obj}, nil
}

// openSession opens a logged-in session on c's token and finds and checks
// its key, reading the PIN again.
func openSession(p *pkcs11.Ctx, c ModuleKeyConfig, name string) (pkcs11.SessionHandle, pkcs11.ObjectHandle, error) {
	pin, err := c.pin()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	return openSessionPIN(p, c, name, pin)
}

func openSessionPIN(p *pkcs11.Ctx, c ModuleKeyConfig, name, pin string) (pkcs11.SessionHandle, pkcs11.ObjectHandle, error) {
	slot, err := findToken(p, c.Token)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", name, err)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: open a session: %w", name, err)
	}
	fail := func(format string, a ...any) (pkcs11.SessionHandle, pkcs11.ObjectHandle, error) {
		_ = p.CloseSession(s)
		return 0, 0, fmt.Errorf("%s: "+format, append([]any{name}, a...)...)
	}
	if err := p.Login(s, pkcs11.CKU_USER, pin); err != nil {
		var pe pkcs11.Error
		if !errors.As(err, &pe) || pe != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
			return fail("log in: %v", err)
		}
	}
	obj, err := findKey(p, s, c.Label)
	if err != nil {
		return fail("%v", err)
	}
	attrs, err := p.GetAttributeValue(s, obj, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_NEVER_EXTRACTABLE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_ALWAYS_SENSITIVE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_LOCAL, nil),
	})
	if err != nil {
		return fail("read its attributes: %v", err)
	}
	if why := moduleKeyRefusal(attrs); why != "" {
		return fail("%s", why)
	}
	return s, obj, nil
}

// moduleKeyRefusal says why a key with attrs cannot be a master key, or
// "". The key must be AES-256 and must never have been outside the token:
// made in it (CKA_LOCAL: not imported from bytes that exist elsewhere,
// C_CreateObject or C_UnwrapKey), sensitive and not extractable now, and
// never otherwise (CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE: PKCS#11
// lets a key once extractable be made unextractable). Reading CKA_EXTRACTABLE
// alone accepted a key imported from known bytes (sec31b L1).
func moduleKeyRefusal(attrs []*pkcs11.Attribute) string {
	const hint = `: make the key in the token with "uias keys new-pkcs11" (or the vendor's tool: generated in it, CKA_SENSITIVE true, CKA_EXTRACTABLE false)`
	got := map[uint][]byte{}
	for _, a := range attrs {
		got[a.Type] = a.Value
	}
	yes := func(t uint) bool { v := got[t]; return len(v) > 0 && v[0] != 0 }
	switch {
	case len(got[pkcs11.CKA_KEY_TYPE]) == 0 || ulong(got[pkcs11.CKA_KEY_TYPE]) != pkcs11.CKK_AES:
		return "it is not an AES key"
	case ulong(got[pkcs11.CKA_VALUE_LEN]) != KeySize:
		return fmt.Sprintf("it is %d bytes, want an AES-256 key", ulong(got[pkcs11.CKA_VALUE_LEN]))
	case len(got[pkcs11.CKA_EXTRACTABLE]) == 0 || yes(pkcs11.CKA_EXTRACTABLE):
		return "it may leave the token (CKA_EXTRACTABLE)" + hint
	case !yes(pkcs11.CKA_SENSITIVE):
		return "it is not sensitive (CKA_SENSITIVE)" + hint
	case !yes(pkcs11.CKA_LOCAL):
		return "it was not generated in the token (CKA_LOCAL: imported or unwrapped): its value may exist outside the token" + hint
	case !yes(pkcs11.CKA_NEVER_EXTRACTABLE) || !yes(pkcs11.CKA_ALWAYS_SENSITIVE):
		return "it was extractable or not sensitive once (CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE): its value may exist outside the token" + hint
	}
	return ""
}

// ulong reads a CK_ULONG attribute value (native byte order).
func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return 0
}

func findKey(p *pkcs11.Ctx, s pkcs11.SessionHandle, label string) (pkcs11.ObjectHandle, error) {
	if err := p.FindObjectsInit(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}); err != nil {
		return 0, fmt.Errorf("find the key: %w", err)
	}
	objs, _, err := p.FindObjects(s, 2)
	_ = p.FindObjectsFinal(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("find the key: %w", err)
	case len(objs) == 0:
		return 0, errors.New("no secret key with that label on the token")
	case len(objs) > 1:
		return 0, errors.New("several secret keys have that label: labels must name one key")
	}
	return objs[0], nil
}

const gcmNonce, gcmTag = 12, 16

// moduleErr is err of operation what as the module's error (ErrModule),
// unless do already made it one.
func (k *pkcs11Key) moduleErr(what string, err error) error {
	if errors.Is(err, ErrModule) {
		return err
	}
	return fmt.Errorf("%s: %s: %w: %w", k.name, what, ErrModule, err)
}

func (k *pkcs11Key) Seal(plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, gcmNonce)
	_, _ = rand.Read(nonce)
	params := pkcs11.NewGCMParams(nonce, aad, gcmTag*8)
	defer params.Free()
	var ct []byte
	err := k.do("encrypt", func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		if err := k.p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
			return err
		}
		var err error
		ct, err = k.p.Encrypt(s, plaintext)
		return err
	})
	if err != nil {
		return nil, k.moduleErr("encrypt", err)
	}
	return append(nonce, ct...), nil
}

func (k *pkcs11Key) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < gcmNonce+gcmTag {
		return nil, ErrSealedFormat
	}
	params := pkcs11.NewGCMParams(sealed[:gcmNonce], aad, gcmTag*8)
	defer params.Free()
	var pt []byte
	atDecrypt := false
	err := k.do("decrypt", func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		atDecrypt = false
		if err := k.p.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, key); err != nil {
			return err
		}
		var err error
		pt, err = k.p.Decrypt(s, sealed[gcmNonce:])
		atDecrypt = err != nil
		return err
	})
	// C_Decrypt refusing the data (the tag does not verify: PKCS#11 3.0's
	// CKR_AEAD_DECRYPT_FAILED, CKR_ENCRYPTED_DATA_INVALID, or SoftHSM2's
	// CKR_GENERAL_ERROR) is a value that does not open; a device, session
	// or memory error, or one from C_DecryptInit, is the module's, said as
	// such (sec31b I1).
	if atDecrypt && !errors.Is(err, ErrModule) && !deviceError(err) {
		return nil, ErrOpenFailed
	}
	if err != nil {
		return nil, k.moduleErr("decrypt", err)
	}
	return pt, nil
}

// Derive is NIST SP 800-108 KDF in counter mode with AES-CMAC (in the
// module) as PRF: block i = CMAC(K, [i]_32 || info || 0x00 || [8n]_32).
func (k *pkcs11Key) Derive(info string, n int) ([]byte, error) {
	var out []byte
	err := k.do("derive", func(s pkcs11.SessionHandle, key pkcs11.ObjectHandle) error {
		out = out[:0]
		for i := uint32(1); len(out) < n; i++ {
			msg := binary.BigEndian.AppendUint32(nil, i)
			msg = append(msg, info...)
			msg = append(msg, 0)
			msg = binary.BigEndian.AppendUint32(msg, uint32(8*n))
			if err := k.p.SignInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CMAC, nil)}, key); err != nil {
				return err
			}
			b, err := k.p.Sign(s, msg)
			if err != nil {
				return err
			}
			out = append(out, b...)
		}
		return nil
	})
	if err != nil {
		return nil, k.moduleErr("derive", err)
	}
	return out[:n], nil
}

// NewPKCS11Key makes a new AES-256 key labelled c.Label on the token
// c.Token that never leaves it (generated in the token, so CKA_LOCAL,
// CKA_SENSITIVE and not CKA_EXTRACTABLE, hence also CKA_ALWAYS_SENSITIVE and
// CKA_NEVER_EXTRACTABLE: what moduleKeyRefusal asks), for
// "uias keys new-pkcs11". It refuses a label already taken.
func NewPKCS11Key(c ModuleKeyConfig) error {
	if err := c.check(); err != nil {
		return err
	}
	pin, err := c.pin()
	if err != nil {
		return err
	}
	p, err := loadModule(c.Module)
	if err != nil {
		return err
	}
	slot, err := findToken(p, c.Token)
	if err != nil {
		return err
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("open a session: %w", err)
	}
	defer func() { _ = p.CloseSession(s) }()
	if err := p.Login(s, pkcs11.CKU_USER, pin); err != nil {
		var pe pkcs11.Error
		if !errors.As(err, &pe) || pe != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
			return fmt.Errorf("log in: %w", err)
		}
	}
	if _, err := findKey(p, s, c.Label); err == nil {
		return fmt.Errorf("the token already has a key labelled %q: a key is never replaced", c.Label)
	}
	_, err = p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, KeySize),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, c.Label),
	})
	if err != nil {
		return fmt.Errorf("generate the key: %w", err)
	}
	return nil
}
