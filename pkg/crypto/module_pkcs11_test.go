//go:build pkcs11 && cgo

package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

// The tests of a cipher machine run against SoftHSM2 (scripts/softhsm.sh
// installs it): one token "uias-test" in a temporary directory for the
// whole package (a PKCS#11 module is initialised once per process, with
// the configuration it found then).
const (
	hsmToken  = "uias-test"
	hsmToken2 = "uias-test-2"
	hsmPIN    = "12345678"
	hsmPINV   = "UIAS_TEST_HSM_PIN"
)

var (
	hsmOnce   sync.Once
	hsmModule string
	hsmErr    error
)

func softHSM(t *testing.T) string {
	t.Helper()
	hsmOnce.Do(func() {
		out, err := exec.Command(filepath.Join("..", "..", "scripts", "softhsm.sh")).Output()
		if err != nil {
			hsmErr = fmt.Errorf("scripts/softhsm.sh: %w", err)
			return
		}
		hsmModule = strings.TrimSpace(string(out))
		dir, err := os.MkdirTemp("", "uias-softhsm-")
		if err != nil {
			hsmErr = err
			return
		}
		conf := filepath.Join(dir, "softhsm2.conf")
		if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
			hsmErr = err
			return
		}
		if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+
			"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
			hsmErr = err
			return
		}
		os.Setenv("SOFTHSM2_CONF", conf)
		// hsmToken2 is never logged in with its PIN (PKCS#11 login is per
		// token and process: a wrong PIN shows only on a token not logged in)
		for _, label := range []string{hsmToken, hsmToken2} {
			if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label,
				"--so-pin", "87654321", "--pin", hsmPIN).CombinedOutput(); err != nil {
				hsmErr = fmt.Errorf("softhsm2-util --init-token: %w: %s", err, out)
				return
			}
		}
	})
	if hsmErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SoftHSM2 is needed for the pkcs11 build's tests: %v", hsmErr)
		}
		t.Skipf("SoftHSM2 is not available: %v", hsmErr)
	}
	t.Setenv(hsmPINV, hsmPIN)
	return hsmModule
}

// moduleKey makes (once) and returns the config of a token key labelled label.
func moduleKey(t *testing.T, label string) ModuleKeyConfig {
	t.Helper()
	c := ModuleKeyConfig{Module: softHSM(t), Token: hsmToken, Label: label, PinEnv: hsmPINV}
	if err := NewPKCS11Key(c); err != nil && !strings.Contains(err.Error(), "already has a key") {
		t.Fatal(err)
	}
	return c
}

func ringWithModule(t *testing.T, soft *Ring, c ModuleKeyConfig, active string) *Ring {
	t.Helper()
	keys := map[string]any{"m2": map[string]any{"pkcs11": c}}
	for id, k := range soft.Master.Keys {
		keys[id] = base64.StdEncoding.EncodeToString(k)
	}
	r, err := ParseRing([]byte(ringJSON(t, map[string]any{"version": 2,
		"master":  map[string]any{"active": active, "keys": keys},
		"signing": map[string]any{"active": "s1", "keys": map[string]string{"s1": base64.StdEncoding.EncodeToString(soft.Signing.Keys["s1"])}},
	})))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A master key in SoftHSM2: data keys are wrapped and unwrapped in the
// token; key-check values and purpose keys are derived there, stable
// across openings; a data key wrapped by the ring's key in bytes moves to
// the module key by re-wrapping; the key cannot be read out of the token.
func TestPKCS11MasterKey(t *testing.T) {
	c := moduleKey(t, "uias-m2")
	soft, _ := ParseRing(NewRingJSON())
	r := ringWithModule(t, soft, c, "m2")
	if !r.Master.Has("m2") || r.Suite() != SuiteAES || len(r.Master.Keys) != 1 {
		t.Fatalf("ring with a module key: %+v", r.Master)
	}
	// "uias keys new-pkcs11" (NewPKCS11Key) makes keys that pass the
	// opening's checks: generated in the token, always sensitive, never
	// extractable (sec31b L1).
	for ty, v := range keyAttrs(t, c, c.Label, pkcs11.CKA_LOCAL, pkcs11.CKA_SENSITIVE, pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_EXTRACTABLE) {
		if v != (ty != pkcs11.CKA_EXTRACTABLE) {
			t.Errorf("the new key's attribute %#x is %v", ty, v)
		}
	}
	for _, dk := range [][]byte{NewDataKeyFor(SuiteAES), NewDataKeyFor(SuiteSM4)} {
		w, err := r.WrapKey(dk, "d2")
		if err != nil || !strings.HasPrefix(w, "m2:") || strings.Count(w, ":") != 1 {
			t.Fatalf("wrap in the token: %q %v", w, err)
		}
		if got, err := r.UnwrapKey(w, "d2"); err != nil || !bytes.Equal(got, dk) {
			t.Fatalf("unwrap in the token: %v", err)
		}
		if _, err := r.UnwrapKey(w, "d3"); !errors.Is(err, ErrOpenFailed) {
			t.Fatalf("unwrap under another label: %v", err)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(w, "m2:"))
		raw[len(raw)-1] ^= 1
		if _, err := r.UnwrapKey("m2:"+base64.RawURLEncoding.EncodeToString(raw), "d2"); !errors.Is(err, ErrOpenFailed) {
			t.Fatalf("a tampered wrap: %v", err)
		}
		if _, err := soft.UnwrapKey(w, "d2"); err == nil {
			t.Fatal("a ring without the module key unwrapped its data key")
		}
	}
	// The key ring's own key m1 wrapped d1; the module key re-wraps it.
	old, _ := soft.WrapKey(NewDataKey(), "d1")
	k1, err := r.UnwrapKey(old, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := r.WrapKey(k1, "d1"); !strings.HasPrefix(w, "m2:") {
		t.Fatalf("re-wrap: %q", w)
	}
	// Derived values: stable for the same key, different for another.
	cv, err := r.CheckValue("m2")
	if err != nil || len(cv) != 64 {
		t.Fatalf("check value: %q %v", cv, err)
	}
	again := ringWithModule(t, soft, c, "m2")
	if cv2, _ := again.CheckValue("m2"); cv2 != cv {
		t.Fatal("the check value of the module key changed between openings")
	}
	other := ringWithModule(t, soft, moduleKey(t, "uias-other"), "m2")
	if cv3, _ := other.CheckValue("m2"); cv3 == cv {
		t.Fatal("two module keys have one check value")
	}
	ps, _ := r.PurposeSealer("sync provisioning secrets")
	v, _ := ps.Seal([]byte("secret"), nil)
	ps2, _ := again.PurposeSealer("sync provisioning secrets")
	if pt, err := ps2.Open(v, nil); err != nil || string(pt) != "secret" || !strings.HasPrefix(v, "m2:") {
		t.Fatalf("purpose sealer over the module key: %v", err)
	}
	// The key does not leave the token.
	p := pkcs11.New(c.Module)
	slot, err := findToken(p, hsmToken)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(s)
	obj, err := findKey(p, s, "uias-m2")
	if err != nil {
		t.Fatal(err)
	}
	if attrs, err := p.GetAttributeValue(s, obj, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil && len(attrs) > 0 && len(attrs[0].Value) > 0 {
		t.Fatal("the master key's value was read out of the token")
	}
}

// The failure paths: wrong PIN, no PIN, unknown token or label, a label
// taken twice, a module key outside the master set, an extractable key.
func TestPKCS11Failures(t *testing.T) {
	c := moduleKey(t, "uias-m2")
	soft, _ := ParseRing(NewRingJSON())
	try := func(name string, set string, k map[string]any, want string) {
		t.Helper()
		doc := map[string]any{"version": 2, "master": map[string]any{"active": "m1", "keys": map[string]any{"m1": base64.StdEncoding.EncodeToString(soft.Master.Keys["m1"])}}}
		doc[set].(map[string]any)["keys"].(map[string]any)["m2"] = k
		_, err := ParseRing([]byte(ringJSON(t, doc)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
		if err != nil && strings.Contains(err.Error(), hsmPIN) {
			t.Errorf("%s: the error shows the PIN", name)
		}
	}
	bad := c
	bad.Token = hsmToken2
	bad.PinEnv = "UIAS_TEST_HSM_WRONG_PIN"
	t.Setenv("UIAS_TEST_HSM_WRONG_PIN", "00000000")
	try("wrong PIN", "master", map[string]any{"pkcs11": bad}, "log in")
	bad = c
	bad.PinEnv = "UIAS_TEST_HSM_NO_PIN"
	try("no PIN", "master", map[string]any{"pkcs11": bad}, "is not set")
	bad = c
	bad.Token = "no-such-token"
	try("unknown token", "master", map[string]any{"pkcs11": bad}, "no token labelled")
	bad = c
	bad.Label = "no-such-key"
	try("unknown label", "master", map[string]any{"pkcs11": bad}, "no secret key")
	try("with key bytes", "master", map[string]any{"pkcs11": c, "key": base64.StdEncoding.EncodeToString(key(3))}, "has no \"key\"")
	try("sm4 suite", "master", map[string]any{"pkcs11": c, "suite": "sm4"}, "is AES-256")
	// Keys made otherwise: one that may leave the token, one of AES-128.
	for label, attrs := range map[string][]*pkcs11.Attribute{
		"uias-extractable": {pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32)},
		"uias-aes128":      {pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16)},
	} {
		generateRaw(t, c, label, attrs)
	}
	bad = c
	bad.Label = "uias-extractable"
	try("extractable key", "master", map[string]any{"pkcs11": bad}, "may leave the token")
	bad.Label = "uias-aes128"
	try("AES-128 key", "master", map[string]any{"pkcs11": bad}, "want an AES-256 key")
	// Keys whose value may exist outside the token though CKA_EXTRACTABLE
	// is false now (sec31b L1): one imported from known bytes (what it
	// wrapped opened in software), one extractable once and then made
	// unextractable, one never sensitive.
	importRaw(t, c, "uias-imported", bytes.Repeat([]byte{0x42}, KeySize))
	bad.Label = "uias-imported"
	try("imported key", "master", map[string]any{"pkcs11": bad}, "not generated in the token (CKA_LOCAL")
	generateRaw(t, c, "uias-was-extractable", []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32)})
	setAttr(t, c, "uias-was-extractable", pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false))
	bad.Label = "uias-was-extractable"
	try("key extractable once", "master", map[string]any{"pkcs11": bad}, "was extractable or not sensitive once")
	generateRaw(t, c, "uias-not-sensitive", []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false), pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, false), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32)})
	bad.Label = "uias-not-sensitive"
	try("key not sensitive", "master", map[string]any{"pkcs11": bad}, "not sensitive (CKA_SENSITIVE)")
	if err := NewPKCS11Key(c); err == nil || !strings.Contains(err.Error(), "already has a key") {
		t.Errorf("a second key with one label: %v", err)
	}
	// A signing key cannot be in the module.
	doc := map[string]any{"version": 2,
		"master":  map[string]any{"active": "m1", "keys": map[string]any{"m1": base64.StdEncoding.EncodeToString(soft.Master.Keys["m1"])}},
		"signing": map[string]any{"active": "s1", "keys": map[string]any{"s1": map[string]any{"pkcs11": c}}}}
	if _, err := ParseRing([]byte(ringJSON(t, doc))); err == nil || !strings.Contains(err.Error(), "only master keys") {
		t.Errorf("a signing key in the module: %v", err)
	}
}

// rawSession is a logged-in read-write session on c's token.
func rawSession(t *testing.T, c ModuleKeyConfig) (*pkcs11.Ctx, pkcs11.SessionHandle) {
	t.Helper()
	p, err := loadModule(c.Module)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := findToken(p, c.Token)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.CloseSession(s) })
	_ = p.Login(s, pkcs11.CKU_USER, hsmPIN)
	return p, s
}

// importRaw puts an AES key of known bytes on c's token (C_CreateObject),
// sensitive and not extractable from now on.
func importRaw(t *testing.T, c ModuleKeyConfig, label string, value []byte) {
	t.Helper()
	p, s := rawSession(t, c)
	if _, err := findKey(p, s, label); err == nil {
		return
	}
	if _, err := p.CreateObject(s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, value),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}); err != nil {
		t.Fatal(err)
	}
}

// setAttr changes an attribute of the key labelled label on c's token.
func setAttr(t *testing.T, c ModuleKeyConfig, label string, a *pkcs11.Attribute) {
	t.Helper()
	p, s := rawSession(t, c)
	obj, err := findKey(p, s, label)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetAttributeValue(s, obj, []*pkcs11.Attribute{a}); err != nil {
		t.Fatal(err)
	}
}

// keyAttrs reads the boolean attributes ts of the key labelled label.
func keyAttrs(t *testing.T, c ModuleKeyConfig, label string, ts ...uint) map[uint]bool {
	t.Helper()
	p, s := rawSession(t, c)
	obj, err := findKey(p, s, label)
	if err != nil {
		t.Fatal(err)
	}
	q := make([]*pkcs11.Attribute, len(ts))
	for i, ty := range ts {
		q[i] = pkcs11.NewAttribute(ty, nil)
	}
	attrs, err := p.GetAttributeValue(s, obj, q)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint]bool{}
	for _, a := range attrs {
		out[a.Type] = len(a.Value) > 0 && a.Value[0] != 0
	}
	return out
}

// generateRaw makes a secret key with attrs on c's token (logged in by an
// earlier opening in this process).
func generateRaw(t *testing.T, c ModuleKeyConfig, label string, attrs []*pkcs11.Attribute) {
	t.Helper()
	p, err := loadModule(c.Module)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := findToken(p, c.Token)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(s)
	_ = p.Login(s, pkcs11.CKU_USER, hsmPIN)
	if _, err := findKey(p, s, label); err == nil {
		return
	}
	_, err = p.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, append([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}, attrs...))
	if err != nil {
		t.Fatal(err)
	}
}

// LoadRing passes RingSource.AllowOpenFile on to a module key's PIN file
// (sec31b L2): a PIN file group or others may read is refused though the
// ring file is 0600, and accepted when the open mode is accepted
// explicitly (*.key_file_allow_open_mode).
func TestPKCS11PINFileMode(t *testing.T) {
	c := moduleKey(t, "uias-m2")
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(hsmPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.PinEnv, c.PinFile = "", pinFile
	soft, _ := ParseRing(NewRingJSON())
	ringFile := filepath.Join(dir, "ring.json")
	if err := os.WriteFile(ringFile, []byte(ringJSON(t, map[string]any{"version": 2,
		"master":  map[string]any{"active": "m2", "keys": map[string]any{"m2": map[string]any{"pkcs11": c}}},
		"signing": map[string]any{"active": "s1", "keys": map[string]string{"s1": base64.StdEncoding.EncodeToString(soft.Signing.Keys["s1"])}},
	})), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRing(RingSource{File: ringFile}); err != nil {
		t.Fatalf("a 0600 PIN file: %v", err)
	}
	if err := os.Chmod(pinFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRing(RingSource{File: ringFile})
	if !errors.Is(err, ErrKeyFileOpen) || !strings.Contains(err.Error(), "the PIN file "+pinFile+" has mode 0644") {
		t.Fatalf("a 0644 PIN file: %v", err)
	}
	if _, err := LoadRing(RingSource{File: ringFile, AllowOpenFile: true}); err != nil {
		t.Fatalf("a 0644 PIN file accepted explicitly: %v", err)
	}
}

// A module key's session lost (a restarted cipher machine, a network module
// that reconnected: here every session of the token is closed under it,
// which also logs the process out) is opened again, logged in again, once
// per operation: wrapping, unwrapping and derivation go on (sec31b I1).
// When that fails too, the error is the module's (ErrModule, naming the
// key and the cause), not ErrOpenFailed's "tampered, wrong key".
func TestPKCS11SessionReopened(t *testing.T) {
	c := moduleKey(t, "uias-m2")
	soft, _ := ParseRing(NewRingJSON())
	r := ringWithModule(t, soft, c, "m2")
	dk := NewDataKey()
	w, err := r.WrapKey(dk, "d2")
	if err != nil {
		t.Fatal(err)
	}
	kcv, err := r.CheckValue("m2")
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadModule(c.Module)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := findToken(p, c.Token)
	if err != nil {
		t.Fatal(err)
	}
	lose := func() {
		t.Helper()
		if err := p.CloseAllSessions(slot); err != nil {
			t.Fatal(err)
		}
	}
	lose()
	if got, err := r.UnwrapKey(w, "d2"); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap after the session was lost: %v", err)
	}
	lose()
	if got, err := r.CheckValue("m2"); err != nil || got != kcv {
		t.Fatalf("derive after the session was lost: %v", err)
	}
	lose()
	w2, err := r.WrapKey(dk, "d3")
	if err != nil {
		t.Fatalf("wrap after the session was lost: %v", err)
	}
	if got, err := r.UnwrapKey(w2, "d3"); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("unwrap of the new wrap: %v", err)
	}
	// The tag still decides what does not open.
	if _, err := r.UnwrapKey(w2, "d4"); !errors.Is(err, ErrOpenFailed) || errors.Is(err, ErrModule) {
		t.Fatalf("unwrap under another label: %v", err)
	}
	// The session lost and the new one refused (no PIN now): the module's
	// error, for each operation.
	t.Setenv(hsmPINV, "")
	for name, op := range map[string]func() error{
		"unwrap": func() error { _, err := r.UnwrapKey(w, "d2"); return err },
		"wrap":   func() error { _, err := r.WrapKey(dk, "d5"); return err },
		"derive": func() error { _, err := r.CheckValue("m2"); return err },
	} {
		lose()
		err := op()
		if !errors.Is(err, ErrModule) || errors.Is(err, ErrOpenFailed) ||
			!strings.Contains(err.Error(), "opening a new session failed") || !strings.Contains(err.Error(), "uias-m2") {
			t.Errorf("%s with the session lost and no PIN: %v", name, err)
		}
	}
}
