package app_test

// These tests reproduce the attacks on the key ring (issue 15, item 5) and
// show them fail: a key ring deleted or swapped next to existing data stops
// the start and loses nothing; a key file others can read is refused; the
// ring can come from UIAS_KEYRING instead of a file; rotation keeps old
// data readable and re-encryption moves it to the new key.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
	"github.com/uias/uias/services/identity"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/identity/sqlstore"
)

const (
	krIDNumber = "110101199003071233"
	krPhone    = "13812345678"
)

// startCfg starts cfg (or returns the start error).
func startCfg(t *testing.T, cfg config.Config) (*app.App, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{BootstrapPassword: readmeAdminPassword})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { stopApp(t, a) })
	return a, nil
}

func stopApp(t *testing.T, a *app.App) {
	t.Helper()
	sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
	defer c()
	_ = a.Stop(sctx)
}

// loggedIn returns a ctl logged in as the administrator and the root org id.
func loggedIn(t *testing.T, a *app.App) (*uiasCtl, string) {
	t.Helper()
	c := newCtl(t, a)
	c.run(readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin")
	return c, jsonField(t, c.run("", "org", "list", "-o", "json"), "id")
}

// personWithID creates a user with an ID number and a phone.
func personWithID(t *testing.T, c *uiasCtl, org, login, idNumber string) map[string]any {
	t.Helper()
	return userJSON(t, c.run("", "user", "create", "--login", login, "--name", "Person "+login, "--org", org,
		"--id-type", "resident_id", "--id-number", idNumber, "--phone", krPhone, "-o", "json"))
}

// sealedOf reads the stored sealed values of user id from the SQLite file.
func sealedOf(t *testing.T, dataDir, id string) (idNumber, phone string) {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite", filepath.Join(dataDir, "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(context.Background(), "SELECT id_number_enc, phone_enc FROM users WHERE id = ?", id).
		Scan(&idNumber, &phone); err != nil {
		t.Fatal(err)
	}
	return idNumber, phone
}

// keepsPersonalData updates only the display name of user id and checks
// that the ID number, the phone and the feature code survive (a ring that
// cannot decrypt them used to make this update erase them).
func keepsPersonalData(t *testing.T, c *uiasCtl, before map[string]any, name string) {
	t.Helper()
	id := before["id"].(string)
	u := userJSON(t, c.run("", "user", "update", id, "--name", name, "-o", "json"))
	for _, f := range []string{"id_number_masked", "phone_masked"} {
		if u[f] == nil || u[f] == "" || u[f] != before[f] {
			t.Fatalf("%s after the update: %v, before %v", f, u[f], before[f])
		}
	}
	// The feature code covers the ID number and the name: recompute what it
	// must be by renaming back.
	back := userJSON(t, c.run("", "user", "update", id, "--name", before["display_name"].(string), "-o", "json"))
	if back["feature_code"] != before["feature_code"] {
		t.Fatalf("feature code changed: the ID number was lost (%v -> %v)", before["feature_code"], back["feature_code"])
	}
}

// TestKeyRingMissingNextToData: deleting keyring.json next to an existing
// database (or replacing it with another ring) no longer makes a new ring:
// the start stops with a message that says what to do, the database is left
// as it was, and with the right ring back every person keeps their ID
// number and phone.
func TestKeyRingMissingNextToData(t *testing.T) {
	cfg := quickConfig(t)
	ringFile := identitycomponent.Settings(&cfg).KeyFile
	a, err := startCfg(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, org := loggedIn(t, a)
	person := personWithID(t, c, org, "alice", krIDNumber)
	stopApp(t, a)
	idEnc, phoneEnc := sealedOf(t, cfg.DataDir, person["id"].(string))

	// The attack: the ring file disappears (deleted, or a fresh volume).
	saved := filepath.Join(t.TempDir(), "keyring.json.bak")
	if err := os.Rename(ringFile, saved); err != nil {
		t.Fatal(err)
	}
	_, err = startCfg(t, cfg)
	if err == nil {
		t.Fatal("started without its key ring next to existing data")
	}
	for _, want := range []string{"already holds encrypted data", "restore the key ring", ringFile, "Nothing was changed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(ringFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a new key ring was created next to existing data")
	}

	// Another valid ring in its place (a swapped file or Secret).
	if err := os.WriteFile(ringFile, crypto.NewRingJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = startCfg(t, cfg)
	if !errors.Is(err, identity.ErrKeyRingMismatch) || !strings.Contains(err.Error(), "not the key") {
		t.Fatalf("start with another ring: %v, want ErrKeyRingMismatch", err)
	}
	if i, p := sealedOf(t, cfg.DataDir, person["id"].(string)); i != idEnc || p != phoneEnc {
		t.Fatal("the failed starts changed the stored values")
	}

	// The right ring restored: everything is still there, and an update of
	// the person keeps their personal data.
	if err := os.Rename(saved, ringFile); err != nil {
		t.Fatal(err)
	}
	a, err = startCfg(t, cfg)
	if err != nil {
		t.Fatalf("start with the restored ring: %v", err)
	}
	c, _ = loggedIn(t, a)
	keepsPersonalData(t, c, person, "Alice Again")
}

// TestKeyFileModeRefused: a key file that group or others can read is
// refused with the fix in the message, unless explicitly allowed.
func TestKeyFileModeRefused(t *testing.T) {
	cfg := quickConfig(t)
	idc := identitycomponent.Settings(&cfg)
	if err := os.WriteFile(idc.KeyFile, crypto.NewRingJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(idc.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := startCfg(t, cfg)
	if !errors.Is(err, crypto.ErrKeyFileOpen) {
		t.Fatalf("start with a world-readable key file: %v, want ErrKeyFileOpen", err)
	}
	for _, want := range []string{idc.KeyFile, "0644", "chmod 600", "identity.key_file_allow_open_mode"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	idc.KeyFileAllowOpenMode = true
	auditcomponent.Settings(&cfg).KeyFileAllowOpenMode = true // the audit component reads the same ring
	if _, err := startCfg(t, cfg); err != nil {
		t.Fatalf("start with the mode explicitly allowed: %v", err)
	}
}

// TestKeyRingFromEnvironment: with UIAS_KEYRING (base64 of the JSON, as a
// Secret is often passed) no key file is read or written; the same data
// with the variable gone does not start.
func TestKeyRingFromEnvironment(t *testing.T) {
	env := base64.StdEncoding.EncodeToString(crypto.NewRingJSON())
	cfg, err := app.LoadConfig("", func(k string) (string, bool) {
		if k == "UIAS_KEYRING" {
			return env, true
		}
		return "", false
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := quickConfig(t)
	cfg.DataDir, cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = q.DataDir, q.GRPCAddr, q.HTTPAddr, ""
	idc := identitycomponent.Settings(&cfg)
	idc.KeyFile = ""
	idc.Argon2 = identitycomponent.Settings(&q).Argon2
	cfg.Complete()
	if idc.KeyRing != env {
		t.Fatal("UIAS_KEYRING was not read")
	}
	a, err := startCfg(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, org := loggedIn(t, a)
	person := personWithID(t, c, org, "erin", krIDNumber)
	stopApp(t, a)
	if _, err := os.Stat(idc.KeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was written although the ring came from the environment: %v", err)
	}
	a, err = startCfg(t, cfg)
	if err != nil {
		t.Fatalf("restart with the same UIAS_KEYRING: %v", err)
	}
	c, _ = loggedIn(t, a)
	keepsPersonalData(t, c, person, "Erin E")
	stopApp(t, a)

	idc.KeyRing = ""
	if _, err := startCfg(t, cfg); err == nil || !strings.Contains(err.Error(), "already holds encrypted data") {
		t.Fatalf("start without UIAS_KEYRING: %v", err)
	}
}

// TestKeyRotation: "uias ctl keys rotate" makes a new data key; new writes
// use it, data sealed before stays readable, and re-encryption moves it to
// the new key. Then the master key rotates: with a new active master key in
// the ring, a rotation re-wraps every data key, after which the old master
// key can leave the ring; a ring without the master key the data keys need
// does not start.
func TestKeyRotation(t *testing.T) {
	cfg := quickConfig(t)
	idc := identitycomponent.Settings(&cfg)
	a, err := startCfg(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, org := loggedIn(t, a)
	old := personWithID(t, c, org, "olga", krIDNumber)
	var st identityv1.KeyStatus
	c.jsonOut(&st, "", "keys", "status")
	if st.GetActiveKeyId() != "d1" || st.GetActiveMasterKeyId() != "m1" || st.GetValuesOnOlderKeys() != 0 || len(st.GetKeys()) != 1 {
		t.Fatalf("status of a new database: %v", &st)
	}

	c.jsonOut(&st, "", "keys", "rotate", "--no-reencrypt")
	if st.GetActiveKeyId() != "d2" || st.GetValuesOnOlderKeys() != 2 || len(st.GetKeys()) != 2 || !st.GetKeys()[1].GetActive() {
		t.Fatalf("after rotate: %v", &st)
	}
	fresh := personWithID(t, c, org, "nina", "440304198510105612")
	if i, p := sealedOf(t, cfg.DataDir, fresh["id"].(string)); !strings.HasPrefix(i, "d2:") || !strings.HasPrefix(p, "d2:") {
		t.Fatalf("a new person is sealed with %q / %q, want the new key d2", i, p)
	}
	if i, _ := sealedOf(t, cfg.DataDir, old["id"].(string)); !strings.HasPrefix(i, "d1:") {
		t.Fatalf("the old person's values moved before re-encryption: %q", i)
	}
	var re identityv1.ReencryptDataResponse
	c.jsonOut(&re, "", "keys", "reencrypt", "--batch", "1")
	if re.GetReencrypted() != 1 || re.GetRemaining() != 0 || re.GetFailed() != 0 || re.GetActiveKeyId() != "d2" {
		t.Fatalf("reencrypt: %v", &re)
	}
	if i, p := sealedOf(t, cfg.DataDir, old["id"].(string)); !strings.HasPrefix(i, "d2:") || !strings.HasPrefix(p, "d2:") {
		t.Fatalf("after re-encryption the old person is on %q / %q", i, p)
	}
	keepsPersonalData(t, c, old, "Olga O")
	if out := c.run("", "keys", "status"); !regexp.MustCompile(`(?m)^values on older keys:\s+0$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^d2\s+m1\s+\S+\s+yes\s+AES-256-GCM\s+AES-256-GCM$`).MatchString(out) {
		t.Fatalf("keys status table:\n%s", out)
	}
	stopApp(t, a)

	// Master key rotation: add m2 to the ring as the active key, keep m1.
	ring := readRing(t, idc.KeyFile)
	master := ring["master"].(map[string]any)
	master["keys"].(map[string]any)["m2"] = base64.StdEncoding.EncodeToString(crypto.NewDataKey())
	master["active"] = "m2"
	writeRing(t, idc.KeyFile, ring)
	a, err = startCfg(t, cfg)
	if err != nil {
		t.Fatalf("start with m2 added: %v", err)
	}
	c, _ = loggedIn(t, a)
	c.jsonOut(&re, "", "keys", "rotate")
	c.jsonOut(&st, "", "keys", "status")
	if st.GetActiveKeyId() != "d3" || st.GetActiveMasterKeyId() != "m2" || st.GetValuesOnOlderKeys() != 0 {
		t.Fatalf("after the second rotation: %v", &st)
	}
	for _, k := range st.GetKeys() {
		if k.GetMasterKeyId() != "m2" {
			t.Fatalf("data key %s still wrapped by %s", k.GetId(), k.GetMasterKeyId())
		}
	}
	stopApp(t, a)

	// m1 can go now; a ring without m2 cannot start.
	delete(master["keys"].(map[string]any), "m1")
	writeRing(t, idc.KeyFile, ring)
	a, err = startCfg(t, cfg)
	if err != nil {
		t.Fatalf("start without the retired m1: %v", err)
	}
	c, _ = loggedIn(t, a)
	keepsPersonalData(t, c, fresh, "Nina N")
	stopApp(t, a)
	master["keys"] = map[string]any{"m3": base64.StdEncoding.EncodeToString(crypto.NewDataKey())}
	master["active"] = "m3"
	writeRing(t, idc.KeyFile, ring)
	if _, err := startCfg(t, cfg); !errors.Is(err, identity.ErrKeyRingMismatch) || !strings.Contains(err.Error(), `master key "m2"`) {
		t.Fatalf("start without m2: %v", err)
	}
}

func readRing(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeRing(t *testing.T, path string, m map[string]any) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKeyRingVersion1Upgrade: a database written before data keys, with a
// version-1 keyring.json whose key sealed the personal data directly, starts
// with that ring: its key becomes the first data key, feature codes stay,
// and a rotation plus re-encryption move the data to a new key.
func TestKeyRingVersion1Upgrade(t *testing.T) {
	cfg := quickConfig(t)
	idc := identitycomponent.Settings(&cfg)
	// The old scheme: a v1 ring sealing directly, written by the service
	// without data keys.
	keys, active, err := crypto.LoadOrCreateKeyFile(idc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := crypto.NewSealer(keys, active)
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite", cfg.SQLDSN(identitycomponent.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	svc, err := identity.New(identity.Deps{Store: sqlstore.New(db), Sealer: sealer, Logger: zap.NewNop(),
		Hasher: crypto.NewHasher(crypto.HasherConfig{Params: idc.Argon2, Workers: 1})})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Bootstrap(ctx, readmeAdminPassword); err != nil {
		t.Fatal(err)
	}
	orgs, _, err := svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if err != nil || len(orgs) == 0 {
		t.Fatal(err)
	}
	u, err := svc.CreateUser(ctx, identity.NewUser{LoginName: "vera", DisplayName: "Vera", OrgID: orgs[0].ID,
		IDType: identity.IDTypeResidentID, IDNumber: krIDNumber, Phone: krPhone})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()

	a, err := startCfg(t, cfg)
	if err != nil {
		t.Fatalf("start with the version-1 ring: %v", err)
	}
	c, _ := loggedIn(t, a)
	before := userJSON(t, c.run("", "user", "get", u.ID, "-o", "json"))
	if before["feature_code"] != u.FeatureCode {
		t.Fatalf("feature code %v, want %v", before["feature_code"], u.FeatureCode)
	}
	keepsPersonalData(t, c, before, "Vera V")
	var st identityv1.KeyStatus
	c.jsonOut(&st, "", "keys", "status")
	if st.GetActiveKeyId() != "k1" || st.GetActiveMasterKeyId() != "k1" {
		t.Fatalf("imported keys: %v", &st)
	}
	c.jsonOut(&identityv1.ReencryptDataResponse{}, "", "keys", "rotate")
	if i, p := sealedOf(t, cfg.DataDir, u.ID); !strings.HasPrefix(i, "d2:") || !strings.HasPrefix(p, "d2:") {
		t.Fatalf("after rotation the person is on %q / %q", i, p)
	}
	keepsPersonalData(t, c, before, "Vera W")
}

// TestKeyRingMissingOutsideAll: an identity replica (target identity,
// microservices mode) without a key ring does not make its own (the other
// replicas could not read what it seals): the start stops and names the
// command that makes one.
func TestKeyRingMissingOutsideAll(t *testing.T) {
	cfg := quickConfig(t)
	cfg.Target, cfg.Discovery = "identity", config.DiscoveryEtcd
	cfg.Etcd.Endpoints = []string{"http://127.0.0.1:1"} // never reached: the start stops first
	cfg.NATS.URL, cfg.NATS.Embedded = "nats://127.0.0.1:1", false
	cfg.HTTPAddr = ""
	ringFile := identitycomponent.Settings(&cfg).KeyFile
	_, err := startCfg(t, cfg)
	if err == nil {
		t.Fatal("an identity replica started without a key ring")
	}
	for _, want := range []string{"no key ring", ringFile, "uias keys new --out " + ringFile, "UIAS_KEYRING", "same"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(ringFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a replica made a key ring of its own")
	}
	// With the ring made by the command the error names, it starts.
	if err := os.WriteFile(ringFile, crypto.NewRingJSON(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Etcd.DialTimeout = 500 * time.Millisecond
	if _, err := startCfg(t, cfg); err != nil {
		t.Fatalf("start with a ring: %v", err)
	}
}
