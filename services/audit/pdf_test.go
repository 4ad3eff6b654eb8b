package audit_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/storetest"
)

// pdfFonts is the exporter with the TrueType CJK and Latin fonts
// scripts/pdf-tools.sh installs (with pdftotext); the PDF tests skip,
// saying why, where it cannot.
func pdfFonts(t *testing.T) audit.Exporter {
	t.Helper()
	out, err := exec.Command("../../scripts/pdf-tools.sh").Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 2 {
		t.Skipf("no TrueType fonts or pdftotext (scripts/pdf-tools.sh: %v; as root: apt-get install fonts-droid-fallback fonts-dejavu-core poppler-utils)", err)
	}
	return audit.Exporter{PDFFont: f[0], PDFLatinFont: f[1]}
}

// pdfText is the text of a PDF as pdftotext reads it back.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %.40q", pdf)
	}
	f := filepath.Join(t.TempDir(), "x.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	// -raw: in the order drawn, so a table cell's lines follow each other
	out, err := exec.Command("pdftotext", "-raw", "-enc", "UTF-8", f, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

// PDF exports: Chinese text comes back out of the PDF as it went in,
// records spread over pages, a capped export says so, count reports carry
// their chart's labels; a missing or unusable font is a refusal that
// names the setting, not the path.
func TestPDFExports(t *testing.T) {
	fonts := pdfFonts(t)
	ctx := context.Background()
	st, l := newLog(t)
	recs := storetest.Records("pdf", 300)
	recs[289].Detail = map[string]string{"备注": "张三 登录失败：密码错误"}
	recs[289].Subject = "user:李四"
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	all := audit.Scope{All: true}
	gen := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	exp := fonts
	exp.Now, exp.MaxPDF = func() time.Time { return gen }, 250

	var b bytes.Buffer
	n, err := exp.Records(ctx, st, all, audit.Query{}, 0, audit.PDF, &b)
	if err != nil || n != 250 {
		t.Fatalf("PDF export: %d records, %v", n, err)
	}
	text := pdfText(t, b.Bytes())
	flat := strings.Join(strings.Fields(text), "")
	for _, want := range []string{"Audit records", "张三", "登录失败：密码错误", "备注", "user:李四", "198.51.100.", "authenticate",
		"Morerecordsmatched:aPDFholdsthefirst250", "2026-12-0203:00UTC", "page 2"} {
		if !strings.Contains(text, want) && !strings.Contains(flat, strings.ReplaceAll(want, " ", "")) {
			t.Errorf("the PDF's text lacks %q", want)
		}
	}
	// newest first: record 299 is on the first page, 50 not at all
	if !strings.Contains(text, "pdf-299") || strings.Contains(text, "pdf-49") {
		t.Errorf("PDF records: want the newest 250")
	}

	// a count report: the chart's labels (weekday names) and the table
	b.Reset()
	q := audit.CountQuery{By: audit.ByWeekday, UTCOffset: 8 * time.Hour}
	counts, _, err := audit.Counts(ctx, st, all, q)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Counts(q, counts, audit.PDF, &b); err != nil {
		t.Fatal(err)
	}
	text = pdfText(t, b.Bytes())
	for _, want := range []string{"Audit records by weekday", "Sun", "Mon", "Sat", "Tuesday", "300"} {
		if !strings.Contains(text, want) {
			t.Errorf("the count report's text lacks %q:\n%s", want, text)
		}
	}
	// failed logins by person: a chart of the largest counts
	b.Reset()
	q = audit.CountQuery{Filter: audit.Query{API: "authenticate", Result: "failure"}, By: audit.BySubject}
	if counts, _, err = audit.Counts(ctx, st, all, q); err != nil {
		t.Fatal(err)
	}
	if err := exp.Counts(q, counts, audit.PDF, &b); err != nil {
		t.Fatal(err)
	}
	text = pdfText(t, b.Bytes())
	for _, c := range counts {
		if strings.Count(text, c.Key) < 2 { // beside its bar and in the table
			t.Errorf("failed logins by person: %q not in chart and table:\n%s", c.Key, text)
		}
	}
	if len(counts) != 8 {
		t.Errorf("failed logins by person: %d accounts, want 8", len(counts))
	}

	// no font, or not one fpdf can embed: FAILED_PRECONDITION naming the
	// setting, nothing written
	bogus := filepath.Join(t.TempDir(), "bogus.ttf")
	if err := os.WriteFile(bogus, []byte("not a font at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(t.TempDir(), "missing.ttf"), bogus} {
		b.Reset()
		_, err := audit.Exporter{PDFFont: f, PDFLatinFont: fonts.PDFLatinFont}.Records(ctx, st, all, audit.Query{}, 0, audit.PDF, &b)
		e, ok := apierr.As(err)
		if !ok || e.Code != apierr.FailedPrecondition || e.Reason != audit.ReasonPDFFont || !strings.Contains(e.Message, "audit.pdf_font") ||
			strings.Contains(e.Message, f) || b.Len() != 0 {
			t.Errorf("PDF with font %s: %v (%d bytes written)", f, err, b.Len())
		}
		if err := audit.CheckPDFFonts(fonts.PDFFont, f); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("CheckPDFFonts(latin %s): %v", f, err)
		}
	}
	if err := audit.CheckPDFFonts(fonts.PDFFont, fonts.PDFLatinFont); err != nil {
		t.Errorf("CheckPDFFonts of the installed fonts: %v", err)
	}
}
