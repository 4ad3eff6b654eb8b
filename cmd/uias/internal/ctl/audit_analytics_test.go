package ctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// auditAnalyticsChecks runs the login analytics commands as the security
// auditor "auditor" h is logged in as (password pw), in TestAuditCommands' process:
// the auditor's own administrator login is in the history, online now,
// in the peaks; bad flags are usage errors.
func auditAnalyticsChecks(t *testing.T, h *harness, pw string) {
	t.Helper()
	var users struct {
		Users []struct {
			ID        string `json:"id"`
			LoginName string `json:"login_name"`
		}
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "user", "list", "--query", "auditor")), &users); err != nil {
		t.Fatal(err)
	}
	auditorID := ""
	for _, u := range users.Users {
		if u.LoginName == "auditor" {
			auditorID = u.ID
		}
	}
	if auditorID == "" {
		t.Fatalf("the auditor's id: %+v", users)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, out, _ := h.run("audit", "logins", auditorID)
		if strings.Contains(out, "admin.login") && strings.Contains(out, "success") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit logins %s: the auditor's login never showed:\n%s", auditorID, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// one person's absence: today present (UTC days)
	today := time.Now().UTC().Format(time.DateOnly)
	if out := h.mustRun("audit", "absence", auditorID, "--since", "48h"); !regexp.MustCompile(today+`\s+yes\s+[1-9]`).MatchString(out) ||
		!strings.Contains(out, "present 1 day(s)") {
		t.Errorf("audit absence %s:\n%s", auditorID, out)
	}
	// people are named beside their ids (D9 of the auditor's trial)
	if code, out, errs := h.run("audit", "online", "--from-logins"); code != 0 || !strings.Contains(out, auditorID) || !strings.Contains(out, "SINCE") ||
		!regexp.MustCompile(auditorID+`\s+auditor \(Security Auditor\)`).MatchString(out) ||
		!regexp.MustCompile(`note: [1-9][0-9]* people online`).MatchString(errs) {
		t.Errorf("audit online --from-logins: exit %d\n%s\n%s", code, out, errs)
	}
	out := h.mustRun("audit", "login-peaks", "--by", "hour", "--utc-offset", "480")
	if strings.Count(out, "\n") != 25 || !strings.Contains(out, "23:00") || !strings.Contains(out, "COUNT") {
		t.Errorf("audit login-peaks --by hour:\n%s", out)
	}
	if out := h.mustRun("audit", "login-peaks", "--by", "weekday", "--since", "24h"); !strings.Contains(out, "Monday") {
		t.Errorf("audit login-peaks --by weekday:\n%s", out)
	}
	// the system administrator's refused audit read was no login failure;
	// a wrong password is
	h.stdin = "wrong-password-1\n"
	if code, _, _ := h.run("login", "--user", "auditor", "--password-stdin"); code == 0 {
		t.Fatal("login with a wrong password succeeded")
	}
	h.stdin = pw + "\n"
	h.mustRun("login", "--user", "auditor", "--password-stdin")
	h.stdin = ""
	for {
		_, out, _ := h.run("audit", "failed-logins", "--by", "person", "--since", "1h")
		if strings.Contains(out, "user:"+auditorID) {
			if !regexp.MustCompile(`PERSON\s+SUBJECT\s+COUNT`).MatchString(out) ||
				!regexp.MustCompile(`auditor \(Security Auditor\)\s+user:`+auditorID).MatchString(out) {
				t.Errorf("audit failed-logins --by person does not name the person:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit failed-logins: the wrong password never showed:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := h.mustRun("audit", "absent", "--days", "1"); !strings.Contains(out, "LAST LOGIN") || strings.Contains(out, auditorID) {
		t.Errorf("audit absent --days 1:\n%s", out)
	}
	for _, args := range [][]string{
		{"audit", "failed-logins", "--by", "planet"},
		{"audit", "login-peaks", "--by", "month"},
		{"audit", "absent"},
		{"audit", "logins"},
		{"audit", "failed-logins", "--by", "ip", "--since", "1h", "--from", "2026-01-01T00:00:00Z"},
	} {
		if code, _, _ := h.run(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want a usage error", args, code)
		}
	}
	if code, _, errs := h.run("audit", "travel"); code != exitError || !strings.Contains(errs, "geoip_db") {
		t.Errorf("audit travel without a geolocation database: exit %d %s", code, errs)
	}
	if code, _, errs := h.run("audit", "absent", "--days", "5000"); code != exitError || !strings.Contains(errs, "days") {
		t.Errorf("audit absent --days 5000: exit %d %s", code, errs)
	}
	// the access reports: without settings, refused with what to set; the
	// auditor's console logins are no access to an application
	if code, _, errs := h.run("audit", "last-access"); code != exitError || !strings.Contains(errs, "important_apps") {
		t.Errorf("audit last-access without important applications: exit %d %s", code, errs)
	}
	// applications no one has are refused by name, not answered empty
	if code, _, errs := h.run("audit", "last-access", "--apps", "oa,crm", "--since", "1h"); code != exitError ||
		!strings.Contains(errs, "no application has the App_ID or code oa, crm") {
		t.Errorf("audit last-access --apps oa,crm: exit %d %s", code, errs)
	}
	if code, _, errs := h.run("audit", "outside-allow-list"); code != exitError || !strings.Contains(errs, "allowed_networks") {
		t.Errorf("audit outside-allow-list without an allow-list: exit %d %s", code, errs)
	}
	// a report as a file
	file := filepath.Join(t.TempDir(), "failed.csv")
	h.mustRun("audit", "failed-logins", "--by", "person", "--since", "1h", "--export", "csv", "--out", file)
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "person,subject,count,last") ||
		!strings.Contains(string(b), "auditor (Security Auditor),user:"+auditorID+",") { // its count: one or more (a refused login may be recorded twice as it is ingested)
		t.Errorf("audit failed-logins --export csv: %s %v", b, err)
	}
	for _, args := range [][]string{
		{"audit", "login-peaks", "--by", "hour", "--export", "doc"},
		{"audit", "absent", "--days", "3", "--out", file},
	} {
		if code, _, _ := h.run(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want a usage error", args, code)
		}
	}
}
