package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
	"github.com/uias/uias/services/audit/mailtest"
)

// Analytics and exports of the audit log over gRPC and REST, by the
// security auditor: refused logins counted by API and result, a CSV export
// as a file download, a count report as HTML; refusals for a missing
// token, bad parameters and a system administrator (who may not read the
// audit log, so neither count nor export it).
func TestAuditReports(t *testing.T) {
	cfg := testConfig(t.TempDir())
	ac := auditcomponent.Settings(&cfg)
	ac.CheckpointEvery, ac.BatchWait = 2, 20*time.Millisecond
	// the CJK TrueType font of PDFs (scripts/pdf-tools.sh installs it);
	// without it a PDF is refused with AUDIT_PDF_FONT
	fonts, fontErr := exec.Command("../../scripts/pdf-tools.sh").Output()
	if f := strings.Fields(string(fonts)); fontErr == nil && len(f) == 2 {
		ac.PDFFont, ac.PDFLatinFont = f[0], f[1]
	} else {
		ac.PDFFont = filepath.Join(t.TempDir(), "no-font.ttf")
	}
	e := start(t, cfg)
	e.login()
	ctx := context.Background()
	for range 3 {
		_, err := e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: "admin", Password: "wrong"})
		wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_LOGIN")
	}
	audTok := e.grantedAdmin(t, "auditor-reports", "security_auditor")
	aud := func() context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+audTok)
	}
	rc := auditv1.NewAuditReportServiceClient(e.conn)
	failed := &auditv1.RecordFilter{Api: "admin.login", Result: "failure"}
	var lastCount *auditv1.CountRecordsResponse
	var lastErr error
	defer func() {
		if t.Failed() {
			t.Logf("the last count of refused logins: %v %v", lastCount, lastErr)
		}
	}()
	eventually(t, "three refused logins counted", func() bool {
		lastCount, lastErr = rc.CountRecords(aud(), &auditv1.CountRecordsRequest{Filter: failed, By: auditv1.CountBy_COUNT_BY_RESULT})
		return lastErr == nil && len(lastCount.GetCounts()) == 1 && lastCount.GetCounts()[0].GetCount() == 3
	})
	res, err := rc.CountRecords(aud(), &auditv1.CountRecordsRequest{By: auditv1.CountBy_COUNT_BY_HOUR_OF_DAY, UtcOffsetMinutes: 480})
	if err != nil || len(res.GetCounts()) == 0 {
		t.Fatalf("counts by hour: %v %v", res, err)
	}
	_, err = rc.CountRecords(aud(), &auditv1.CountRecordsRequest{})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	_, err = rc.CountRecords(ctx, &auditv1.CountRecordsRequest{By: auditv1.CountBy_COUNT_BY_API})
	wantCode(t, err, codes.Unauthenticated, "")
	// the system administrator counts and exports the whole log too (004
	// 2.1.7.1: "the system administrator queries all logs")
	if res, err := rc.CountRecords(e.adm(), &auditv1.CountRecordsRequest{By: auditv1.CountBy_COUNT_BY_API}); err != nil || len(res.GetCounts()) == 0 {
		t.Errorf("system administrator counting: %v %v", res, err)
	}
	if st, err := rc.ExportRecords(e.adm(), &auditv1.ExportRecordsRequest{Format: auditv1.ExportFormat_EXPORT_FORMAT_CSV}); err == nil {
		if _, err = st.Recv(); err != nil {
			t.Errorf("system administrator exporting: %v", err)
		}
	} else {
		t.Fatal(err)
	}

	// gRPC export: chunks, the first with the file's name and type
	// (with a remark: kept in the export's record, sec9 L5)
	st, err := rc.ExportRecords(metadata.AppendToOutgoingContext(aud(), "x-uias-remark", url.PathEscape("年度审计 2026")),
		&auditv1.ExportRecordsRequest{Filter: failed, Format: auditv1.ExportFormat_EXPORT_FORMAT_CSV})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	for i := 0; ; i++ {
		c, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (!strings.HasPrefix(c.GetContentType(), "text/csv") || !strings.HasSuffix(c.GetFileName(), ".csv")) {
			t.Errorf("first chunk: %q %q", c.GetContentType(), c.GetFileName())
		}
		file.Write(c.GetData())
		if c.GetDone() {
			break
		}
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(file.Bytes(), []byte("\ufeff")))).ReadAll()
	if err != nil || len(rows) != 4 || rows[1][6] != "admin.login" || rows[1][10] != "failure" {
		t.Fatalf("exported CSV: %v %v", rows, err)
	}
	// the export is itself a record: who exported what, with the filters
	// and how many records left (trial5 D18)
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	var exp *auditv1.Record
	eventually(t, "the record of the auditor's export", func() bool {
		r, err := q.QueryRecords(aud(), &auditv1.QueryRecordsRequest{Api: "export", Text: "auditor-reports"})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range r.GetRecords() {
			if rec.GetDetail()["filter_api"] == "admin.login" {
				exp = rec
			}
		}
		return exp != nil
	})
	if d := exp.GetDetail(); exp.GetType() != "audit.export" || d["format"] != "csv" || d["rows"] != "3" || d["filter_result"] != "failure" ||
		d["report"] != "records" || d["actor_login"] != "auditor-reports" || !strings.HasSuffix(d["file"], ".csv") || d["remark"] != "年度审计 2026" {
		t.Fatalf("the export's record: %v", exp)
	}

	// REST: counts, then the export as a file
	auth := map[string]string{"Authorization": "Bearer " + audTok}
	sysAdmin := map[string]string{"Authorization": "Bearer " + e.token}
	code, body, _ := e.rest(http.MethodGet, "/v1/audit/counts?by=COUNT_BY_RESULT&filter.api=admin.login&filter.result=failure", auth, nil)
	if code != http.StatusOK || len(body["counts"].([]any)) != 1 {
		t.Fatalf("REST counts: %d %v", code, body)
	}
	get := func(path string, headers map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.http+path, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, b := get("/v1/audit/export?format=csv&api=admin.login&result=failure", auth)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || bytes.Count(b, []byte(",admin.login,")) != 3 {
		t.Fatalf("REST export: %d %v\n%s", resp.StatusCode, resp.Header, b)
	}
	// in Chinese: the maritime design's columns (004 2.1.7 序号、管理员名称、
	// 操作类别、操作日期、操作描述), a description per record; the query
	// describes records too
	resp, b = get("/v1/audit/export?format=csv&api=admin.login&result=failure&language=zh-CN", auth)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("序号,操作日期")) || !bytes.Contains(b, []byte("管理员名称,操作描述")) ||
		bytes.Count(b, []byte("管理员登录")) != 3 {
		t.Fatalf("REST export in Chinese: %d\n%s", resp.StatusCode, b)
	}
	resp, b = get("/v1/audit/records?api=admin.login&result=failure&language=zh-CN", auth)
	if resp.StatusCode != http.StatusOK || bytes.Count(b, []byte("管理员登录")) != 3 || !bytes.Contains(b, []byte(`"description"`)) {
		t.Fatalf("REST query in Chinese: %d\n%s", resp.StatusCode, b)
	}
	for _, path := range []string{"/v1/audit/export?format=csv&language=fr", "/v1/audit/records?language=zh"} {
		if resp, b := get(path, auth); resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("language")) {
			t.Errorf("%s: %d %s, want 400 naming language", path, resp.StatusCode, b)
		}
	}
	resp, b = get("/v1/audit/export?format=html&by=weekday&utc_offset_minutes=480", auth)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("REST count report: %d\n%s", resp.StatusCode, b)
	}
	for path, want := range map[string]int{
		"/v1/audit/export?format=doc":                  http.StatusBadRequest,
		"/v1/audit/export?format=csv&by=planet":        http.StatusBadRequest,
		"/v1/audit/export?format=csv&start_time=today": http.StatusBadRequest,
	} {
		if resp, b := get(path, auth); resp.StatusCode != want || !bytes.Contains(b, []byte("must")) {
			t.Errorf("%s: %d %s, want %d with a message", path, resp.StatusCode, b, want)
		}
	}
	// a parameter the call does not take, or a result no record has, is
	// refused naming it (a misspelt filter was dropped without a word:
	// ?from= for ?start_time= answered every record); results in any case
	for path, want := range map[string]string{
		"/v1/audit/export?format=csv&from=2026-12-05T18:00:00Z":     `query parameter \"from\" does not name a field of the request; it takes format, start_time`,
		"/v1/audit/records?from=2026-12-05T18:00:00Z":               `query parameter \"from\" does not name a field of the request; it takes start_time, end_time`,
		"/v1/audit/records?org=x":                                   `query parameter \"org\" does not name a field`,
		"/v1/audit/records?result=bogus":                            `result \"bogus\" is none of success, failure, denied, incomplete`,
		"/v1/audit/export?format=csv&result=bogus":                  `result \"bogus\" is none of success, failure, denied, incomplete`,
		"/v1/audit/analytics/export/failed-logins?format=csv&byy=x": `query parameter \"byy\" does not name a field of the request; it takes`,
		"/v1/audit/export?format=csv&limit=5":                       `limit is for count reports: give by= too`,
		"/v1/audit/export?format=csv&api=a&api=b":                   `query parameter \"api\" is given more than once`,
	} {
		if resp, b := get(path, auth); resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s: %d %s, want 400 with %s", path, resp.StatusCode, b, want)
		}
	}
	if resp, b := get("/v1/audit/records?api=admin.login&result=FAILURE", auth); resp.StatusCode != http.StatusOK ||
		bytes.Count(b, []byte(`"result": "failure"`))+bytes.Count(b, []byte(`"result":"failure"`)) != 3 {
		t.Errorf("result in capitals: %d %s", resp.StatusCode, b)
	}
	// PDF: a count report of failed logins by account (a chart in it)
	resp, b = get("/v1/audit/export?format=pdf&by=subject&api=admin.login&result=failure", auth)
	switch {
	case fontErr != nil:
		t.Logf("no PDF font (scripts/pdf-tools.sh: %v): the refusal is checked instead", fontErr)
		if resp.StatusCode != http.StatusNotImplemented || !bytes.Contains(b, []byte("audit.pdf_font")) {
			t.Errorf("PDF without the font: %d %s", resp.StatusCode, b)
		}
	case resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(b, []byte("%PDF-")) ||
		!strings.HasSuffix(resp.Header.Get("Content-Disposition"), `.pdf"`):
		t.Errorf("REST PDF export: %d %v %.20q", resp.StatusCode, resp.Header, b)
	}
	if resp, _ := get("/v1/audit/export?format=csv", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("export without a token: %d, want 401", resp.StatusCode)
	}
	// the system administrator queries and exports the whole log too (004
	// 2.1.7.1); a bad parameter is still a 400 naming it
	if resp, b := get("/v1/audit/export?format=csv&api=admin.login&result=failure", sysAdmin); resp.StatusCode != http.StatusOK ||
		bytes.Count(b, []byte(",admin.login,")) != 3 {
		t.Errorf("system administrator exports: %d %s", resp.StatusCode, b)
	}
	if resp, b := get("/v1/audit/export?format=doc", sysAdmin); resp.StatusCode != http.StatusBadRequest || !bytes.Contains(b, []byte("format")) {
		t.Errorf("system administrator, a bad format: %d %s, want 400", resp.StatusCode, b)
	}
	code, body, _ = e.rest(http.MethodGet, "/v1/audit/counts?by=COUNT_BY_RESULT&filter.api=admin.login&filter.result=failure", sysAdmin, nil)
	if code != http.StatusOK || len(body["counts"].([]any)) != 1 {
		t.Fatalf("system administrator counts: %d %v", code, body)
	}
}

// The scheduled reports reach the administrators' mailboxes (004
// 2.1.7.2: "提供自动发送用户选择的相关报表到管理员邮箱功能"): the whole suite
// started with audit.reports.mail set writes yesterday's report and the
// last week's, and sends each once, through a real SMTP server on
// loopback with STARTTLS (its CA from smtp_ca_file) and a password, with
// the chosen format attached as written.
func TestScheduledReportsMailed(t *testing.T) {
	ms := mailtest.Start(t, mailtest.Options{User: "uias-reports", Pass: "mail-Pass-1"})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "mail-ca.pem")
	if err := os.WriteFile(caFile, ms.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	ac := auditcomponent.Settings(&cfg)
	ac.Reports.Dir = filepath.Join(dir, "reports")
	ac.Reports.Formats = []string{"html", "xlsx"}
	ac.Reports.Mail = auditcomponent.ReportMailConfig{To: []string{"Security Auditor <auditor@example.org>"}, From: "uias@example.org",
		SMTPAddr: ms.Addr, SMTPCAFile: caFile, SMTPUser: "uias-reports", SMTPPassword: "mail-Pass-1", Formats: []string{"html"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	start(t, cfg)
	eventually(t, "the daily and weekly reports mailed", func() bool { return len(ms.Messages()) == 2 })
	now := time.Now().UTC().Add(-30 * time.Minute)
	yesterday := now.AddDate(0, 0, -1).Format(time.DateOnly)
	var subjects []string
	for _, m := range ms.Messages() {
		if !m.TLS || m.From != "uias@example.org" || len(m.To) != 1 || m.To[0] != "auditor@example.org" {
			t.Errorf("envelope: %+v", m)
		}
		_, subject, files := mailtest.Parse(t, m.Data)
		subjects = append(subjects, subject)
		for name, b := range files {
			if name == "" {
				continue
			}
			want, err := os.ReadFile(filepath.Join(ac.Reports.Dir, name))
			if err != nil || !bytes.Equal(b, want) || !strings.HasSuffix(name, ".html") {
				t.Errorf("attachment %s: %v", name, err)
			}
		}
		if len(files) != 2 {
			t.Errorf("%s: %d parts", subject, len(files))
		}
	}
	if !slices.Contains(subjects, "UIAS audit report, daily, "+yesterday) {
		t.Errorf("subjects %q, want yesterday's (%s)", subjects, yesterday)
	}
	if _, err := os.Stat(filepath.Join(ac.Reports.Dir, "audit-daily-"+yesterday+".mailed")); err != nil {
		t.Error(err)
	}
}
