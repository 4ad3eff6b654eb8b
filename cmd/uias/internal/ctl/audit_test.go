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

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/services/audit"
	auditcomponent "github.com/uias/uias/services/audit/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// "uias ctl audit" against a real monolithic process: checkpoint, prove
// and consistency check what the server sends; verify reports the log
// whole, then the first record changed behind the log's back.
func TestAuditCommands(t *testing.T) {
	const pw, auditorPw = "Audit-Ctl-Pass-1", "Log-Reader-Pass-7"
	a, h := startMonolith(t, pw, func(cfg *config.Config) {
		identitycomponent.Settings(cfg).BootstrapAuditorPassword = auditorPw
		ac := auditcomponent.Settings(cfg)
		ac.CheckpointEvery, ac.BatchWait = 1, 20*time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The system administrator reads the whole audit log (004 2.1.7.1:
	// "queries all logs") but does not back it up: refused with a sentence.
	if code, _, errs := h.run("audit", "query", "--since", "1h"); code != 0 {
		t.Fatalf("system administrator reading the audit log: exit %d, %s", code, errs)
	}
	if code, _, errs := h.run("audit", "counts", "--by", "api"); code != 0 {
		t.Fatalf("system administrator counting the audit log: exit %d, %s", code, errs)
	}
	if code, _, errs := h.run("audit", "backup", "--before", "2026-01-01"); code == 0 || !strings.Contains(errs, "not allowed to archive audit.records") {
		t.Fatalf("system administrator backing up the audit log: exit %d, %s", code, errs)
	}
	// The first start's security auditor (login "auditor", appointed in
	// authz by identity as soon as authz answers) reads it.
	h.loginEventually("auditor", auditorPw)
	hd := a.Value(auditcomponent.Name).(*auditcomponent.Handle)
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, err := hd.Store.LatestCheckpoint(ctx)
		if err == nil && cp != nil && cp.Size >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}

	out := h.mustRun("audit", "checkpoint")
	if !strings.Contains(out, "signature:") || !strings.Contains(out, "ok") || !strings.Contains(out, "verifier key:") ||
		strings.Count(out, "(signed this checkpoint)") != 1 {
		t.Fatalf("checkpoint:\n%s", out)
	}
	// the log's other verifier keys (older keys, for the checkpoints they
	// signed) do not verify it alone: the refusal names the key that
	// signed (trial11 D4)
	others := 0
	for _, line := range strings.Split(out, "\n") {
		k, ok := strings.CutPrefix(strings.TrimSpace(line), "verifier key:")
		if k = strings.TrimSpace(k); !ok || strings.HasSuffix(k, "(signed this checkpoint)") {
			continue
		}
		others++
		code, _, errs := h.run("audit", "checkpoint", "--verifier-key", k)
		if code != exitError || !strings.Contains(errs, "signed by uias.audit") || !strings.Contains(errs, "none of the verifier keys given") {
			t.Fatalf("checkpoint with a key that did not sign it: exit %d %s", code, errs)
		}
	}
	if others == 0 {
		t.Fatalf("the ring lists one verifier key only: %s", out)
	}
	out = h.mustRun("audit", "prove", "0")
	if !strings.Contains(out, "proof:") || !strings.Contains(out, "org.create") {
		t.Fatalf("prove:\n%s", out)
	}
	var first int64
	_ = hd.Store.Checkpoints(ctx, func(c *audit.Checkpoint) error {
		if first == 0 {
			first = c.Size
		}
		return nil
	})
	out = h.mustRun("audit", "consistency", "--old", strconv.FormatInt(first, 10))
	if !strings.Contains(out, "consistent:") {
		t.Fatalf("consistency:\n%s", out)
	}
	out = h.mustRun("audit", "verify")
	if !strings.Contains(out, "result:") || !strings.Contains(out, "ok") {
		t.Fatalf("verify:\n%s", out)
	}
	out = h.mustRun("audit", "query", "--api", "org.create", "--since", "1h")
	if strings.Count(out, "org.create") != 1 || !strings.Contains(out, "TIME") {
		t.Fatalf("query:\n%s", out)
	}
	// each record described in a sentence, in Chinese when asked (004
	// 2.1.7 操作描述)
	if out = h.mustRun("audit", "query", "--api", "org.create", "--since", "1h", "--lang", "zh-CN"); !strings.Contains(out, "DESCRIPTION") ||
		!strings.Contains(out, "创建机构") {
		t.Fatalf("query --lang zh-CN:\n%s", out)
	}
	if code, _, errs := h.run("audit", "query", "--lang", "fr"); code != exitUsage || !strings.Contains(errs, "--lang must be en or zh-CN") {
		t.Fatalf("query --lang fr: exit %d %s", code, errs)
	}
	// days, as the defaults are counted (trial12 D5)
	if out = h.mustRun("audit", "query", "--api", "org.create", "--since", "1d"); strings.Count(out, "org.create") != 1 {
		t.Fatalf("query --since 1d:\n%s", out)
	}
	if code, _, errs := h.run("audit", "query", "--since", "1w"); code != exitUsage || !strings.Contains(errs, "like 90d, 720h") {
		t.Fatalf("query --since 1w: exit %d %s", code, errs)
	}
	// The administrator who acted is named (004 2.1.7: "administrator
	// name"; here the system administrator's own query of the log, above),
	// and -o json keeps the actor's id beside the name.
	const queryAPI = "uias.audit.v1.AuditQueryService/QueryRecords"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out = h.mustRun("audit", "query", "--api", queryAPI, "--since", "1h")
		if strings.Contains(out, "admin (System Administrator)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query does not name the administrator:\n%s", out)
		}
	}
	out = h.mustRun("audit", "query", "--api", queryAPI, "--since", "1h", "-o", "json")
	if !strings.Contains(out, `"actor_name"`) || !strings.Contains(out, `"admin (System Administrator)"`) || !strings.Contains(out, `"user:`) {
		t.Errorf("query -o json:\n%s", out)
	}
	out = h.mustRun("audit", "query", "--all", "--page-size", "1")
	if n := strings.Count(out, "\n"); n < 3 {
		t.Fatalf("query --all: %d lines\n%s", n, out)
	}
	if code, _, errs := h.run("audit", "query", "--ip", "not-an-ip"); code != exitError || !strings.Contains(errs, "client_ip") {
		t.Fatalf("query --ip not-an-ip: exit %d %s", code, errs)
	}
	if code, _, _ := h.run("audit", "query", "--since", "1h", "--from", "2026-01-01T00:00:00Z"); code != exitUsage {
		t.Fatalf("query --since --from: exit %d", code)
	}
	// a foreign verifier key: the checkpoint is refused
	code, _, errs := h.run("audit", "checkpoint", "--verifier-key", "uias.audit+01234567+AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefgh=")
	if code != exitError {
		t.Fatalf("checkpoint with a foreign key: exit %d %s", code, errs)
	}
	if code, _, _ := h.run("audit", "prove", "x"); code != exitUsage {
		t.Fatalf("prove x: exit %d", code)
	}
	if code, _, errs := h.run("audit", "prove", "-1"); code != exitUsage || !strings.Contains(errs, "a negative number is no valid argument") {
		t.Fatalf("prove -1: exit %d %s", code, errs)
	}

	auditAnalyticsChecks(t, h, auditorPw)
	sessionChecks(t, a, h)

	// someone edits record 0 in the database
	if _, err := hd.DB.ExecContext(ctx, "UPDATE audit_records SET result = 'denied' WHERE seq = 0"); err != nil {
		t.Fatal(err)
	}
	code, out, errs = h.run("audit", "verify")
	if code != exitError || !strings.Contains(out, "TAMPERED") || !regexp.MustCompile(`first bad record:\s+0\n`).MatchString(out) ||
		!strings.Contains(errs, "does not verify") {
		t.Fatalf("verify after tampering: exit %d\n%s\n%s", code, out, errs)
	}

	// analytics and exports
	if out := h.mustRun("audit", "counts", "--by", "api", "--utc-offset", "480"); !strings.Contains(out, "admin.login") {
		t.Errorf("audit counts --by api:\n%s", out)
	}
	if out := h.mustRun("audit", "counts", "--by", "hour", "--utc-offset", "480"); !strings.Contains(out, "COUNT") {
		t.Errorf("audit counts --by hour:\n%s", out)
	}
	// a remark (any command): kept in the records of the call; -o json
	// writes one space after a colon, always (scripts grep it)
	h.mustRun("--remark", "季度检查 Q4", "audit", "counts", "--by", "result")
	remarkBy := time.Now().Add(30 * time.Second)
	for !strings.Contains(h.mustRun("-o", "json", "audit", "query", "--text", "季度检查"), `"remark": "季度检查 Q4"`) {
		if time.Now().After(remarkBy) {
			t.Fatal("the remark of audit counts never showed in the records")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// per org unit: counts by org, records of an org's subtree, an org nobody has
	if out := h.mustRun("audit", "counts", "--by", "org"); !strings.Contains(out, "COUNT") {
		t.Errorf("audit counts --by org:\n%s", out)
	}
	if code, _, errs := h.run("audit", "query", "--org", "no-such-org"); code != exitError || !strings.Contains(errs, "no org no-such-org") {
		t.Errorf("audit query --org no-such-org: exit %d %s", code, errs)
	}
	csvFile := filepath.Join(t.TempDir(), "records.csv")
	h.mustRun("audit", "export", "--format", "csv", "--out", csvFile)
	if b, err := os.ReadFile(csvFile); err != nil || !strings.Contains(string(b), "seq,time,type") || !strings.Contains(string(b), "admin.login") {
		t.Errorf("audit export --format csv: %v\n%s", err, b)
	}
	if code, _, _ := h.run("audit", "export", "--format", "csv", "--out", csvFile); code == 0 {
		t.Error("audit export overwrote an existing file")
	}
	// in Chinese: the maritime design's columns, a description per record
	zhFile := filepath.Join(t.TempDir(), "records-zh.csv")
	h.mustRun("audit", "export", "--format", "csv", "--lang", "zh-CN", "--api", "org.create", "--out", zhFile)
	if b, err := os.ReadFile(zhFile); err != nil || !strings.Contains(string(b), "序号,操作日期") || !strings.Contains(string(b), "操作描述") ||
		!strings.Contains(string(b), "创建机构") {
		t.Errorf("audit export --lang zh-CN: %v\n%s", err, b)
	}
	if code, _, errs := h.run("audit", "export", "--format", "csv", "--lang", "zh"); code != exitUsage || !strings.Contains(errs, "--lang must be") {
		t.Errorf("audit export --lang zh: exit %d %s", code, errs)
	}
	// a PDF count report, when the CJK font is installed (else refused
	// with the setting's name)
	pdfFile := filepath.Join(t.TempDir(), "by-hour.pdf")
	code, _, errs = h.run("audit", "export", "--format", "pdf", "--by", "hour", "--utc-offset", "480", "--out", pdfFile)
	if audit.CheckPDFFonts(audit.DefaultPDFFont, audit.DefaultPDFLatinFont) == nil {
		if b, err := os.ReadFile(pdfFile); code != 0 || err != nil || !strings.HasPrefix(string(b), "%PDF-") {
			t.Errorf("audit export --format pdf: exit %d %s %v", code, errs, err)
		}
	} else if code == 0 || !strings.Contains(errs, "audit.pdf_font") {
		t.Errorf("audit export --format pdf without the font: exit %d %s", code, errs)
	}
	if code, _, errs := h.run("audit", "counts", "--by", "planet"); code == 0 || !strings.Contains(errs, "--by must be") {
		t.Errorf("audit counts --by planet: %d %s", code, errs)
	}
}
