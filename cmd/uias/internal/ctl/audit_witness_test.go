package ctl

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	uiasapp "github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
	auditcomponent "github.com/uias/uias/services/audit/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// The end of the audit log cut off in the database while the process is
// stopped (records, tree rows, the checkpoints that covered them and the
// size, as someone with write access to the database can): the log left
// verifies whole by itself, but the restart stops on the component's
// witness file; with that file removed too (the host's disk taken, or a
// restore accepted), "audit verify" fails on the checkpoint this client
// kept, as does "audit consistency"; --forget accepts the log as it is.
func TestAuditWitnessCutOffEnd(t *testing.T) {
	const pw, auditorPw = "Audit-Wit-Pass-1", "Wit-Reader-Pass-7"
	var cfg *config.Config
	a, h := startMonolith(t, pw, func(c *config.Config) {
		identitycomponent.Settings(c).BootstrapAuditorPassword = auditorPw
		ac := auditcomponent.Settings(c)
		ac.CheckpointEvery, ac.BatchWait = 1, 20*time.Millisecond
		cfg = c
	})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	h.loginEventually("auditor", auditorPw)
	hd := a.Value(auditcomponent.Name).(*auditcomponent.Handle)
	waitCheckpoint := func(above int64) int64 {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			cp, err := hd.Store.LatestCheckpoint(ctx)
			if err == nil && cp != nil && cp.Size > above {
				return cp.Size
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint larger than %d", above)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCheckpoint(0)

	// the first verify keeps the latest checkpoint beside the token
	out := h.mustRun("audit", "verify")
	if !strings.Contains(out, "first check here") || !strings.Contains(out, "ok") {
		t.Fatalf("first verify:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(h.cfg, "audit-witness-*.note"))
	if len(files) != 1 {
		t.Fatalf("kept checkpoint files: %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept checkpoint file: %v %v, want mode 0600", fi, err)
	}
	kept := keptSize(t, files[0])

	// the log grows (a login is audited): the next verify extends it
	h.loginEventually("auditor", auditorPw)
	waitCheckpoint(kept)
	out = h.mustRun("audit", "verify")
	if !strings.Contains(out, "extends checkpoint "+strconv.FormatInt(kept, 10)) {
		t.Fatalf("verify of a grown log:\n%s", out)
	}
	kept = keptSize(t, files[0])
	serverWitness := filepath.Join(cfg.DataDir, "audit-witness.note")
	if fi, err := os.Stat(serverWitness); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the component's witness file: %v %v, want mode 0600", fi, err)
	}

	// stopped, and the end of the log cut off in the database
	addr := a.GRPCAddr()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cut := kept - 2
	db, err := store.Open(ctx, "sqlite", cfg.SQLDSN(auditcomponent.Name))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DELETE FROM audit_records WHERE seq >= ?", "DELETE FROM audit_tree WHERE seq >= ?",
		"DELETE FROM audit_checkpoints WHERE size > ?", "UPDATE audit_log SET size = ?"} {
		if _, err := db.ExecContext(ctx, q, cut); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()

	// the restart stops on the component's witness
	restart := *cfg
	restart.GRPCAddr = addr // the same address: the client keeps a checkpoint per address
	if b, err := uiasapp.Start(ctx, restart, uiasapp.Options{BootstrapPassword: pw}); err == nil {
		_ = b.Stop(ctx)
		t.Fatal("the process started on an audit log cut off at its end")
	} else if !strings.Contains(err.Error(), "cut off") || !strings.Contains(err.Error(), serverWitness) {
		t.Fatalf("start on a cut-off log: %v", err)
	}

	// the component's witness file removed: it starts, the log verifies
	// whole on the server, but not against the checkpoint this client kept
	if err := os.Remove(serverWitness); err != nil {
		t.Fatal(err)
	}
	b, err := uiasapp.Start(ctx, restart, uiasapp.Options{BootstrapPassword: pw})
	if err != nil {
		t.Fatalf("start with the witness file removed: %v", err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	h.loginEventually("auditor", auditorPw)
	before, _ := os.ReadFile(files[0])
	code, out, errs := h.run("audit", "verify")
	if code != exitError || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "FAILED") ||
		!strings.Contains(errs, "does not verify") || !strings.Contains(errs, "--forget") {
		t.Fatalf("verify of the cut-off log: exit %d\n%s\n%s", code, out, errs)
	}
	var first int64
	_ = b.Value(auditcomponent.Name).(*auditcomponent.Handle).Store.Checkpoints(ctx, func(c *audit.Checkpoint) error {
		if first == 0 {
			first = c.Size
		}
		return nil
	})
	if code, _, errs := h.run("audit", "consistency", "--old", strconv.FormatInt(first, 10)); code != exitError || !strings.Contains(errs, "does not verify") {
		t.Fatalf("consistency on the cut-off log: exit %d\n%s", code, errs)
	}
	if after, _ := os.ReadFile(files[0]); string(after) != string(before) {
		t.Fatal("the kept checkpoint changed after a failed verify")
	}
	// JSON: the same finding in VerifyLogResponse
	if code, out, _ := h.run("--output", "json", "audit", "verify"); code != exitError || !regexp.MustCompile(`"ok":\s*false`).MatchString(out) {
		t.Fatalf("verify --output json: exit %d\n%s", code, out)
	}

	// the operator accepts the log as it is now
	code, out, errs = h.run("audit", "verify", "--forget")
	if code != 0 || !strings.Contains(errs, "forgot the checkpoint kept in "+files[0]) || !strings.Contains(out, "first check here") {
		t.Fatalf("verify --forget: exit %d\n%s\n%s", code, out, errs)
	}
	if out := h.mustRun("audit", "verify"); !strings.Contains(out, "extends checkpoint") {
		t.Fatalf("verify after --forget:\n%s", out)
	}
}

// keptSize is the size of the checkpoint kept in a witness file (its
// second line).
func keptSize(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if len(lines) < 2 || err != nil {
		t.Fatalf("kept checkpoint:\n%s", b)
	}
	return n
}
