package ctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
)

// "uias ctl audit verify --archive FILE" checks an archive offline (no
// server, no session): ok for the file the retention wrote, the first bad
// record of an edited or cut copy (exit status 1), and a note when the
// keys are not pinned.
func TestAuditVerifyArchive(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite", filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := ring.Ed25519(audit.KeyPurpose)
	signer, err := audit.NewSigner("uias.audit/ctl-test", keys)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := audit.NewLog(sqlstore.New(db), signer, audit.LogOptions{Policy: audit.Policy{Every: 5, Interval: time.Hour},
		Now: func() time.Time { return base }})
	var recs []audit.Record
	for i := range 12 {
		recs = append(recs, audit.Record{EventID: fmt.Sprint("e", i), Type: "access", Component: "identity",
			Time: base.Add(time.Duration(i) * time.Minute), API: "uias.identity.v1.AuthService/Authenticate", Result: "success"})
	}
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	arch, err := l.ApplyRetention(ctx, audit.Retention{Keep: 24 * time.Hour, Dir: filepath.Join(dir, "archive")}, base.Add(48*time.Hour))
	if err != nil || len(arch) != 1 || arch[0].To != 12 {
		t.Fatalf("retention: %+v %v", arch, err)
	}
	h := &harness{t: t, env: map[string]string{"UIAS_CONFIG_DIR": filepath.Join(dir, "cfg")}}
	var pin []string
	for _, k := range signer.VerifierKeys() {
		pin = append(pin, "--verifier-key", k)
	}
	verify := func(file string, more ...string) []string {
		return append(append([]string{"audit", "verify", "--archive", file}, pin...), more...)
	}
	out := h.mustRun(verify(arch[0].File)...)
	if !strings.Contains(out, "ok") || !strings.Contains(out, "0 to 11") {
		t.Fatalf("verify --archive:\n%s", out)
	}
	if _, _, errs := h.run("audit", "verify", "--archive", arch[0].File); !strings.Contains(errs, "pin them with --verifier-key") {
		t.Errorf("no note about unpinned keys: %s", errs)
	}
	data, _ := os.ReadFile(arch[0].File)
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(data), `"seq":4,`, `"seq":5,`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := h.run(verify(bad)...)
	if code != 1 || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "record 4 is missing") ||
		!strings.Contains(errs, "does not verify") {
		t.Fatalf("tampered archive: exit %d\n%s\n%s", code, out, errs)
	}
	other, _ := crypto.ParseRing(crypto.NewRingJSON())
	okeys, _ := other.Ed25519(audit.KeyPurpose)
	osigner, _ := audit.NewSigner("uias.audit/ctl-test", okeys)
	var opin []string
	for _, k := range osigner.VerifierKeys() {
		opin = append(opin, "--verifier-key", k)
	}
	// with another log's key nothing is shown altered: not verified, no
	// record named (trial11 D3)
	if code, out, errs := h.run(append([]string{"audit", "verify", "--archive", arch[0].File}, opin...)...); code != 1 ||
		!strings.Contains(out+errs, "none of the verifier keys given") || !strings.Contains(out, "NOT VERIFIED") ||
		strings.Contains(out, "TAMPERED") || strings.Contains(out, "first bad record") {
		t.Fatalf("archive verified with another log's key: exit %d\n%s%s", code, out, errs)
	}
	// -o json says so too (review sec20 I9)
	if code, out, errs := h.run(append([]string{"-o", "json", "audit", "verify", "--archive", arch[0].File}, opin...)...); code != 1 ||
		!strings.Contains(out, `"unverified": true`) || strings.Contains(out, `"ok": true`) {
		t.Fatalf("archive verified with another log's key, -o json: exit %d\n%s%s", code, out, errs)
	}
	// a record's field changed: the archive cannot tell which record, so
	// it names none (not record 0)
	edited := filepath.Join(dir, "edited.jsonl")
	lines := strings.Split(string(data), "\n")
	lines[5] = strings.Replace(lines[5], `"seq":4,`, `"seq":4,"remark":"x",`, 1)
	if err := os.WriteFile(edited, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := h.run(verify(edited)...); code != 1 || !strings.Contains(out, "TAMPERED") ||
		strings.Contains(out, "first bad record") || !strings.Contains(out, "one of them was changed") {
		t.Fatalf("an edited archive record: exit %d\n%s%s", code, out, errs)
	}
	if code, _, _ := h.run("audit", "verify", "--archive", filepath.Join(dir, "missing")); code == 0 {
		t.Fatal("a missing file verified")
	}
}
