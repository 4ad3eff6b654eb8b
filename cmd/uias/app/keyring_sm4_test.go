package app_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/uias/uias/cmd/uias/internal/keyring"
	"github.com/uias/uias/pkg/crypto"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestKeyRotationToSM4 (ADR 0042): a deployment on AES keys moves to the
// national commercial suite as docs/operators.md "Key ring" says: an SM4
// master key joins the ring as the active one, "uias ctl keys rotate" makes
// an SM4-GCM data key and re-wraps every data key with the SM4 master key,
// re-encryption moves the personal data to it ("d2:sm4:..."), "keys status"
// shows each key's algorithm, and the AES master key can then leave the
// ring with every person's data intact.
func TestKeyRotationToSM4(t *testing.T) {
	cfg := quickConfig(t)
	idc := identitycomponent.Settings(&cfg)
	a, err := startCfg(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, org := loggedIn(t, a)
	old := personWithID(t, c, org, "olga", krIDNumber)
	stopApp(t, a)

	ring := readRing(t, idc.KeyFile)
	master := ring["master"].(map[string]any)
	master["keys"].(map[string]any)["m2"] = map[string]any{"suite": "sm4", "key": base64.StdEncoding.EncodeToString(crypto.NewDataKey())}
	master["active"] = "m2"
	writeRing(t, idc.KeyFile, ring)
	a, err = startCfg(t, cfg)
	if err != nil {
		t.Fatalf("start with the SM4 master key added: %v", err)
	}
	c, _ = loggedIn(t, a)
	var st identityv1.KeyStatus
	c.jsonOut(&st, "", "keys", "status")
	if st.GetActiveMasterKeyAlgorithm() != "SM4-GCM" || st.GetKeys()[0].GetAlgorithm() != "AES-256-GCM" ||
		st.GetKeys()[0].GetMasterKeyAlgorithm() != "AES-256-GCM" {
		t.Fatalf("status before the rotation: %v", &st)
	}
	if out := c.run("", "keys", "rotate"); !strings.Contains(out, "new active data key: d2") {
		t.Fatalf("keys rotate:\n%s", out)
	}
	if i, p := sealedOf(t, cfg.DataDir, old["id"].(string)); !strings.HasPrefix(i, "d2:sm4:") || !strings.HasPrefix(p, "d2:sm4:") {
		t.Fatalf("after the rotation to SM4 the person is on %q / %q", head8(i), head8(p))
	}
	out := c.run("", "keys", "status")
	for _, re := range []string{`(?m)^new data keys:\s+SM4-GCM$`, `(?m)^values on older keys:\s+0$`,
		`(?m)^d1\s+m2\s+\S+\s+no\s+AES-256-GCM\s+SM4-GCM$`, `(?m)^d2\s+m2\s+\S+\s+yes\s+SM4-GCM\s+SM4-GCM$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("keys status lacks %s:\n%s", re, out)
		}
	}
	fresh := personWithID(t, c, org, "nina", "440304198510105612")
	if i, _ := sealedOf(t, cfg.DataDir, fresh["id"].(string)); !strings.HasPrefix(i, "d2:sm4:") {
		t.Fatalf("a new person is sealed as %q", head8(i))
	}
	keepsPersonalData(t, c, old, "Olga O")
	stopApp(t, a)

	// The AES master key leaves the ring.
	delete(master["keys"].(map[string]any), "m1")
	writeRing(t, idc.KeyFile, ring)
	a, err = startCfg(t, cfg)
	if err != nil {
		t.Fatalf("start without the AES master key: %v", err)
	}
	c, _ = loggedIn(t, a)
	keepsPersonalData(t, c, old, "Olga P")
	keepsPersonalData(t, c, fresh, "Nina N")
}

// TestKeyRingSM4FromTheStart: a ring made with "uias keys new --suite sm4"
// before the first start: the first data key is SM4-GCM, personal data is
// sealed "d1:sm4:...", and the deployment runs (logins, tickets signed
// with HMAC-SM3) and restarts on it.
func TestKeyRingSM4FromTheStart(t *testing.T) {
	cfg := quickConfig(t)
	idc := identitycomponent.Settings(&cfg)
	var out, errb bytes.Buffer
	if code := keyring.Main([]string{"new", "--suite", "sm4", "--out", idc.KeyFile}, &out, &errb); code != 0 {
		t.Fatalf("uias keys new --suite sm4: %d %s", code, errb.String())
	}
	a, err := startCfg(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, org := loggedIn(t, a)
	p := personWithID(t, c, org, "mei", krIDNumber)
	if i, ph := sealedOf(t, cfg.DataDir, p["id"].(string)); !strings.HasPrefix(i, "d1:sm4:") || !strings.HasPrefix(ph, "d1:sm4:") {
		t.Fatalf("a person of an SM4 deployment is sealed as %q / %q", head8(i), head8(ph))
	}
	var st identityv1.KeyStatus
	c.jsonOut(&st, "", "keys", "status")
	if st.GetActiveMasterKeyAlgorithm() != "SM4-GCM" || len(st.GetKeys()) != 1 || st.GetKeys()[0].GetAlgorithm() != "SM4-GCM" {
		t.Fatalf("status of an SM4 deployment: %v", &st)
	}
	stopApp(t, a)
	a, err = startCfg(t, cfg)
	if err != nil {
		t.Fatalf("restart on the SM4 ring: %v", err)
	}
	c, _ = loggedIn(t, a)
	keepsPersonalData(t, c, p, "Mei M")
}

// TestOperatorsKeyringSM4Example: the mixed ring of docs/operators.md
// "Cipher suites", with real keys in place of the placeholders, loads with
// m1 AES, m2 SM4 active, and an SM4 signing key.
func TestOperatorsKeyringSM4Example(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "operators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- keyring-sm4-example -->\n```json\n")
	if !ok {
		t.Fatal("docs/operators.md lost its <!-- keyring-sm4-example --> JSON block")
	}
	example, _, _ := strings.Cut(rest, "```")
	for strings.Contains(example, "<base64 of 32 bytes>") {
		example = strings.Replace(example, "<base64 of 32 bytes>", base64.StdEncoding.EncodeToString(crypto.NewDataKey()), 1)
	}
	r, err := crypto.ParseRing([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if r.Suite() != crypto.SuiteSM4 || r.Master.SuiteOf("m1") != crypto.SuiteAES || r.Signing.SuiteOf("s2") != crypto.SuiteSM4 ||
		r.Signing.Active != "s2" || len(r.Master.Keys) != 2 {
		t.Fatalf("the example ring: master %s (m1 %s), signing %s", r.Suite(), r.Master.SuiteOf("m1"), r.Signing.SuiteOf("s2"))
	}
}

// head8 is the start of a sealed value, for messages.
func head8(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}
