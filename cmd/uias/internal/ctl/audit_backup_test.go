package ctl

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
	auditcomponent "github.com/uias/uias/services/audit/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// "uias ctl audit backup" and "audit archive-status" against a real
// monolithic process, and login's backup reminder: the system
// administrator is refused (and the refusal audited) and never reminded;
// the security auditor is reminded only when a backup is due, backs up
// (the files verify offline, nothing is removed), is refused a time in the
// future and a removal without --yes, removes with --yes (the records of
// the archives stay queryable, the log still verifies).
func TestAuditBackup(t *testing.T) {
	const pw, auditorPw = "Audit-Ctl-Pass-1", "Log-Reader-Pass-7"
	archiveDir := filepath.Join(t.TempDir(), "archive")
	a, h := startMonolith(t, pw, func(cfg *config.Config) {
		identitycomponent.Settings(cfg).BootstrapAuditorPassword = auditorPw
		ac := auditcomponent.Settings(cfg)
		ac.CheckpointEvery, ac.BatchWait, ac.ArchiveDir = 1, 20*time.Millisecond, archiveDir
		// records younger than this may not be removed (the default is six months)
		ac.MinRemovalAge = 2 * time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	hd := a.Value(auditcomponent.Name).(*auditcomponent.Handle)
	now := time.Now().UTC().Format(time.RFC3339)

	// the system administrator: refused, and the refusal audited
	for _, args := range [][]string{{"audit", "backup", "--before", now}, {"audit", "archive-status"}} {
		if code, _, errs := h.run(args...); code != exitError || !strings.Contains(errs, "audit.records") ||
			!strings.Contains(errs, "PermissionDenied") {
			t.Fatalf("system administrator: %v: exit %d, %s", args, code, errs)
		}
	}
	for found := false; !found; time.Sleep(50 * time.Millisecond) {
		_ = hd.Store.ScanRecords(ctx, 0, func(r *audit.Record) error {
			found = found || (strings.HasSuffix(r.API, "AuditLogService/ArchiveRecords") && r.Result == "denied")
			return nil
		})
		if ctx.Err() != nil {
			t.Fatal("the refused backup is not in the audit log")
		}
	}

	// the first login of the auditor: a new log is not due for a backup
	h.stdin = auditorPw + "\n"
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, errs := h.run("login", "--user", "auditor", "--password-stdin")
		if code == 0 {
			if strings.Contains(errs, "Reminder") {
				t.Fatalf("reminder for a new log: %s", errs)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("auditor never logged in: %s", errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := h.mustRun("audit", "archive-status")
	if !strings.Contains(out, "last backup:") || !strings.Contains(out, "never") || !strings.Contains(out, "backup due:") ||
		!strings.Contains(out, "720h") {
		t.Fatalf("archive-status of a new log:\n%s", out)
	}

	// a backup 60 days ago (its record in the log): the auditor is
	// reminded at login, the system administrator is not
	old := time.Now().Add(-60 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	if _, err := hd.Log.Append(ctx, []audit.Record{{EventID: "backup:test-old", Type: audit.TypeArchive, Component: "audit", Time: old,
		API: "archive", Actor: "user:someone", Subject: "audit:records", Result: "success", Reason: audit.ReasonBackup,
		Detail: map[string]string{"from": "0", "to": "1", "file": "old.jsonl"}}}); err != nil {
		t.Fatal(err)
	}
	_, _, errs := h.run("login", "--user", "auditor", "--password-stdin")
	want := "Reminder: the audit log was last backed up on " + old.Format(time.DateOnly) + " (audit.backup_reminder 720h): " +
		"uias ctl audit backup --before "
	if !strings.Contains(errs, want) || !strings.Contains(errs, "--before "+time.Now().UTC().Format(time.DateOnly)+"T") {
		t.Fatalf("auditor's login with a backup due: %q, want %q and a time up to now", errs, want)
	}
	if out := h.mustRun("audit", "archive-status"); !strings.Contains(out, "yes: uias ctl audit backup") {
		t.Fatalf("archive-status with a backup due:\n%s", out)
	}
	h.stdin = pw + "\n"
	adminLogin := time.Now().Truncate(time.Millisecond)
	if code, _, errs := h.run("login", "--user", "admin", "--password-stdin"); code != 0 || errs != "" {
		t.Fatalf("system administrator's login with a backup due: exit %d, %q", code, errs)
	}
	h.stdin = auditorPw + "\n"
	h.mustRun("login", "--user", "auditor", "--password-stdin")
	h.stdin = ""
	// The administrator's login asked whether to remind them as a probe:
	// no refused attempt to read the log is recorded (the auditor's login,
	// after it, marks how far the records have come).
	deniedProbe := func() (denied, marker bool) {
		_ = hd.Store.ScanRecords(ctx, 0, func(r *audit.Record) error {
			if r.Time.Before(adminLogin) {
				return nil
			}
			if r.API == "admin.denied" && r.Detail["permission"] == "audit.records.read" {
				t.Logf("denied: %+v", r)
				denied = true
			}
			marker = marker || (strings.HasSuffix(r.API, "AuditLogService/GetArchiveStatus") && r.Result == "success")
			return nil
		})
		return denied, marker
	}
	for _, marker := deniedProbe(); !marker; _, marker = deniedProbe() {
		if ctx.Err() != nil {
			t.Fatal("the auditor's reminder question is not in the audit log")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // records of other components, published before it
	if denied, _ := deniedProbe(); denied {
		t.Fatal("the system administrator's login recorded a refused attempt to read the audit log")
	}

	// refused before asking: no time, a removal without --yes, a bad date
	for _, args := range [][]string{{"audit", "backup"}, {"audit", "backup", "--before", now, "--remove"},
		{"audit", "backup", "--before", "yesterday"}, {"audit", "backup", "--before", now, "--after", "2000-01-01", "--remove", "--yes"},
		{"audit", "backup", "--before", now, "--after", "last week"}} {
		if code, _, _ := h.run(args...); code != exitUsage {
			t.Fatalf("%v: exit %d, want usage", args, code)
		}
	}
	// a time in the future: INVALID_ARGUMENT
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.DateOnly)
	if code, _, errs := h.run("audit", "backup", "--before", future); code != exitError || !strings.Contains(errs, "in the future") {
		t.Fatalf("backup before %s: exit %d %s", future, code, errs)
	}
	// nothing older than 2000; nothing in a period of 1999
	if out := h.mustRun("audit", "backup", "--before", "2000-01-01"); !strings.Contains(out, "nothing archived") {
		t.Fatalf("backup before 2000:\n%s", out)
	}
	if out := h.mustRun("audit", "backup", "--after", "1999-01-01", "--before", "2000-01-01"); !strings.Contains(out, "nothing archived") ||
		!strings.Contains(out, "1999-01-01") {
		t.Fatalf("backup of 1999:\n%s", out)
	}

	// a backup of everything a checkpoint covers: the files verify
	// offline, nothing is removed, no reminder any more
	cp, err := hd.Store.LatestCheckpoint(ctx)
	if err != nil || cp == nil {
		t.Fatalf("no checkpoint: %v", err)
	}
	out = h.mustRun("audit", "backup", "--before", time.Now().UTC().Format(time.RFC3339Nano))
	if !strings.Contains(out, "archived to") || !strings.Contains(out, "a backup") || !strings.Contains(out, ".backup-") {
		t.Fatalf("backup:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(archiveDir, "*.backup-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("backup files %v", files)
	}
	verify := []string{"audit", "verify", "--archive", files[0]}
	for _, k := range hd.Log.Signer().VerifierKeys() {
		verify = append(verify, "--verifier-key", k)
	}
	if out := h.mustRun(verify...); !strings.Contains(out, "result:") || !strings.Contains(out, "ok") {
		t.Fatalf("verify --archive of the backup:\n%s", out)
	}
	if p, _ := hd.Store.Pruned(ctx); p != 0 {
		t.Fatalf("a backup removed records: pruned %d", p)
	}
	h.stdin = auditorPw + "\n"
	if _, _, errs := h.run("login", "--user", "auditor", "--password-stdin"); strings.Contains(errs, "Reminder") {
		t.Fatalf("reminder right after a backup: %s", errs)
	}
	h.stdin = ""
	if out := h.mustRun("audit", "archive-status"); !strings.Contains(out, "(BACKUP)") || !strings.Contains(out, "backup due:") ||
		strings.Contains(out, "yes:") {
		t.Fatalf("archive-status after a backup:\n%s", out)
	}

	// the removal of the same records: not blocked by the backup; the
	// archive records stay queryable; the log verifies
	// records younger than audit.min_removal_age stay: refused, nothing removed
	t0 := time.Now().UTC().Format(time.RFC3339Nano)
	if code, _, errs := h.run("audit", "backup", "--before", t0, "--remove", "--yes"); code != exitError ||
		!strings.Contains(errs, "younger than 2s (audit.min_removal_age) may not be removed") {
		t.Fatalf("removal of records younger than the minimum age: exit %d %s", code, errs)
	}
	if p, _ := hd.Store.Pruned(ctx); p != 0 {
		t.Fatalf("a refused removal removed records: pruned %d", p)
	}
	time.Sleep(2100 * time.Millisecond)
	// a removal raises an alert (audit_removal) for whoever watches them
	nc, err := a.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	alerts, err := nc.SubscribeSync(analytics.AlertSubjectPrefix + analytics.AlertAuditRemoval)
	if err != nil {
		t.Fatal(err)
	}
	out = h.mustRun("audit", "backup", "--before", t0, "--remove", "--yes")
	if m, err := alerts.NextMsg(10 * time.Second); err != nil || !strings.Contains(string(m.Data), "removed from the audit log") {
		t.Fatalf("the removal's alert: %v %v", m, err)
	}
	if !strings.Contains(out, "removed from the database") {
		t.Fatalf("removal:\n%s", out)
	}
	pruned, _ := hd.Store.Pruned(ctx)
	if pruned == 0 {
		t.Fatal("nothing removed")
	}
	out = h.mustRun("audit", "query", "--api", "archive", "--all")
	if !strings.Contains(out, "BACKUP") || !strings.Contains(out, "REMOVED_BY_AUDITOR") {
		t.Fatalf("archive records after the removal:\n%s", out)
	}
	if out := h.mustRun("audit", "verify"); !strings.Contains(out, "ok") || !strings.Contains(out, "archived") ||
		!strings.Contains(out, "removed from the database; in the archive files") {
		t.Fatalf("verify after the removal (it names the archived records):\n%s", out)
	}
	if out := h.mustRun("audit", "archive-status"); !strings.Contains(out, "REMOVED_BY_AUDITOR") {
		t.Fatalf("archive-status after the removal:\n%s", out)
	}
}
