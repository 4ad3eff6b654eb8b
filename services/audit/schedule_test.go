package audit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// Scheduled reports on an injected clock (no waiting on the wall clock):
// the daily and weekly reports of China Standard Time are written once
// each, After the day or week ends; a day's report holds that day's
// records only (its edges in the report's time zone); a report missed
// while the service was down is written at the next check.
func TestScheduledReports(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	st := sqlstore.New(db)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{})
	cst := time.FixedZone("CST", 8*3600)
	// failed logins: two on 1 December (CST, at its first and last
	// second), one just before it, one just after; a successful one at 09:xx
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation(time.DateTime, s, cst)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	rec := func(id, subject, result, when string) audit.Record {
		return audit.Record{EventID: id, Type: "audit.authenticate", Component: "identity", Time: at(when), API: "authenticate",
			AppID: "app-1", Actor: "app:app-1", Subject: subject, Result: result, ClientIP: "198.51.100.7"}
	}
	recs := []audit.Record{
		rec("e1", "user:before", "failure", "2026-11-30 23:59:59"),
		rec("e2", "user:first", "failure", "2026-12-01 00:00:00"),
		rec("e3", "user:last", "failure", "2026-12-01 23:59:59"),
		rec("e4", "user:after", "failure", "2026-12-02 00:00:00"),
		rec("e5", "user:ok", "success", "2026-12-01 09:15:00"),
	}
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "reports")
	now := at("2026-12-02 00:20:00") // a Wednesday
	r := &audit.Reporter{Store: st, Dir: dir, Periods: []audit.Period{audit.Daily, audit.Weekly},
		Formats: []audit.Format{audit.HTML, audit.XLSX}, After: 30 * time.Minute, UTCOffset: 8 * time.Hour,
		Now: func() time.Time { return now }}
	run := func(want ...string) {
		t.Helper()
		files, err := r.RunDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range files {
			got = append(got, filepath.Base(f))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("at %s: wrote %v, want %v", now.In(cst), got, want)
		}
	}
	// 00:20: 1 December's report is not due until 00:30; the one of 30
	// November (never written: the service just started) and of the week
	// 23-29 November are
	run("audit-daily-2026-11-30.html", "audit-daily-2026-11-30.xlsx", "audit-weekly-2026-11-23.html", "audit-weekly-2026-11-23.xlsx")
	run() // once only
	now = at("2026-12-02 00:30:00")
	run("audit-daily-2026-12-01.html", "audit-daily-2026-12-01.xlsx")
	run()

	html, err := os.ReadFile(filepath.Join(dir, "audit-daily-2026-12-01.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"user:first", "user:last", "2026-12-01 00:00 to 2026-12-02 00:00", "<svg", "Login peak times"} {
		if !bytes.Contains(html, []byte(want)) {
			t.Errorf("daily report lacks %q", want)
		}
	}
	for _, not := range []string{"user:before", "user:after", "Logins by weekday"} {
		if bytes.Contains(html, []byte(not)) {
			t.Errorf("daily report of 1 December has %q", not)
		}
	}
	x, err := excelize.OpenFile(filepath.Join(dir, "audit-daily-2026-12-01.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	sheets := x.GetSheetList()
	rows, err := x.GetRows(sheets[2]) // failed logins by account
	if err != nil || !strings.Contains(sheets[2], "Failed logins by account") || len(rows) != 3 || rows[0][0] != "subject" {
		t.Fatalf("XLSX sheets %v, rows %v, %v", sheets, rows, err)
	}
	_ = x.Close()
	if fi, err := os.Stat(filepath.Join(dir, "audit-daily-2026-12-01.html")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report file mode: %v %v", fi.Mode(), err)
	}

	// the service was down from Thursday to the next Tuesday: at the next
	// check only the latest day's and week's reports are written
	now = at("2026-12-08 12:00:00")
	run("audit-daily-2026-12-07.html", "audit-daily-2026-12-07.xlsx", "audit-weekly-2026-11-30.html", "audit-weekly-2026-11-30.xlsx")
	weekly, err := os.ReadFile(filepath.Join(dir, "audit-weekly-2026-11-30.html"))
	if err != nil || !bytes.Contains(weekly, []byte("Logins by weekday")) || !bytes.Contains(weekly, []byte("user:after")) ||
		!bytes.Contains(weekly, []byte("user:before")) { // Monday 30 November, 23:59:59
		t.Errorf("weekly report of 30 November - 6 December: %v\n%s", err, weekly)
	}
	// no temporary files are left
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}

	// a directory that cannot be made: an error, nothing claimed written
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.Dir = filepath.Join(blocker, "reports")
	if files, err := r.RunDue(ctx); err == nil || len(files) != 0 {
		t.Errorf("reports into a file's subdirectory: %v %v", files, err)
	}
}

// A report as PDF: its text (Chinese included) comes back out of the
// file; the failed-login and peak-time sections carry their charts.
func TestScheduledReportPDF(t *testing.T) {
	fonts := pdfFonts(t)
	ctx := context.Background()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	st := sqlstore.New(db)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{})
	recs := storetest.Records("rep", 90) // 1 December 08:00 UTC on
	recs[1].Subject = "user:王五"
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	r := &audit.Reporter{Store: st, Exporter: fonts, Dir: t.TempDir(), Periods: []audit.Period{audit.Daily},
		Formats: []audit.Format{audit.PDF}, Now: func() time.Time { return time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC) }}
	files, err := r.RunDue(ctx)
	if err != nil || len(files) != 1 {
		t.Fatalf("%v %v", files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, b)
	for _, want := range []string{"UIAS audit report, daily, 2026-12-01", "Failed logins by account", "user:王五", "Login peak times",
		"08:00", "198.51.100."} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF report lacks %q:\n%s", want, text)
		}
	}
}
