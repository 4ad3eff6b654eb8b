package audit_test

import (
	"bytes"
	"context"
	"errors"
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
// records only (its edges in the report's time zone); the reports missed
// while the service was down are written at the next check, oldest first,
// at most 31 days and 8 weeks (the older ones are said skipped), and a
// report on disk is never written again.
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
	// an administrator's refused login and a CAS page login count too
	adm := rec("e6", "user:admin-x", "denied", "2026-12-01 10:00:00")
	adm.API = "admin.login"
	sso := rec("e7", "user:cas-y", "success", "2026-12-01 11:30:00")
	sso.API = "sso.login"
	recs = append(recs, adm, sso)
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "reports")
	now := at("2026-12-02 00:20:00") // a Wednesday
	r := &audit.Reporter{Store: st, Dir: dir, Periods: []audit.Period{audit.Daily, audit.Weekly},
		Formats: []audit.Format{audit.HTML, audit.XLSX}, After: 30 * time.Minute, UTCOffset: 8 * time.Hour,
		Now: func() time.Time { return now }}
	var skipped []audit.Skipped
	run := func(want ...string) {
		t.Helper()
		res, err := r.RunDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range res.Written {
			got = append(got, filepath.Base(f))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("at %s: wrote %v, want %v", now.In(cst), got, want)
		}
		skipped = res.Skipped
	}
	// days names the reports of n periods from the date from, in formats exts
	days := func(period, from string, n int, exts ...string) []string {
		t.Helper()
		d, err := time.Parse(time.DateOnly, from)
		if err != nil {
			t.Fatal(err)
		}
		step := 1
		if period == "weekly" {
			step = 7
		}
		var out []string
		for i := range n {
			for _, ext := range exts {
				out = append(out, "audit-"+period+"-"+d.AddDate(0, 0, i*step).Format(time.DateOnly)+"."+ext)
			}
		}
		return out
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
	for _, want := range []string{"user:first", "user:last", "user:admin-x", "11:00", "2026-12-01 00:00 to 2026-12-02 00:00", "<svg", "Login peak times"} {
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
	if err != nil || !strings.Contains(sheets[2], "Failed logins by account") || len(rows) != 4 || rows[0][0] != "subject" {
		t.Fatalf("XLSX sheets %v, rows %v, %v", sheets, rows, err)
	}
	_ = x.Close()
	if fi, err := os.Stat(filepath.Join(dir, "audit-daily-2026-12-01.html")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("report file mode: %v %v", fi.Mode(), err)
	}

	// the service was down from Thursday to the next Tuesday, and the
	// XLSX report of 1 December was lost meanwhile: at the next check the
	// days missed (2 to 7 December), that XLSX file and the week are
	// written; the HTML report of 1 December already there is kept as it is
	if err := os.Remove(filepath.Join(dir, "audit-daily-2026-12-01.xlsx")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "audit-daily-2026-12-01.html"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = at("2026-12-08 12:00:00")
	run(append(days("daily", "2026-12-02", 6, "html", "xlsx"), "audit-daily-2026-12-01.xlsx",
		"audit-weekly-2026-11-30.html", "audit-weekly-2026-11-30.xlsx")...)
	if len(skipped) != 0 {
		t.Errorf("skipped %+v after a week down", skipped)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "audit-daily-2026-12-01.html")); err != nil || string(b) != "kept" {
		t.Errorf("the report on disk was written again: %q %v", b, err)
	}
	day4, err := os.ReadFile(filepath.Join(dir, "audit-daily-2026-12-04.html"))
	if err != nil || !bytes.Contains(day4, []byte("2026-12-04 00:00 to 2026-12-05 00:00")) || !bytes.Contains(day4, []byte("No failed logins.")) {
		t.Errorf("missed report of 4 December: %v\n%s", err, day4)
	}
	run()
	weekly, err := os.ReadFile(filepath.Join(dir, "audit-weekly-2026-11-30.html"))
	if err != nil || !bytes.Contains(weekly, []byte("Logins by weekday")) || !bytes.Contains(weekly, []byte("user:after")) ||
		!bytes.Contains(weekly, []byte("user:before")) { // Monday 30 November, 23:59:59
		t.Errorf("weekly report of 30 November - 6 December: %v\n%s", err, weekly)
	}

	// down 70 days (to Tuesday 16 February): the latest 31 days and 8
	// weeks are written, oldest first; the 39 days and 2 weeks before
	// them are skipped and said so
	r.Formats = []audit.Format{audit.HTML}
	now = at("2027-02-16 12:00:00")
	run(append(days("daily", "2027-01-16", 31, "html"), days("weekly", "2026-12-21", 8, "html")...)...)
	wantSkipped := []audit.Skipped{
		{Period: audit.Daily, From: at("2026-12-08 00:00:00"), To: at("2027-01-16 00:00:00"), Count: 39},
		{Period: audit.Weekly, From: at("2026-12-07 00:00:00"), To: at("2026-12-21 00:00:00"), Count: 2},
	}
	if len(skipped) != 2 || !skippedEqual(skipped[0], wantSkipped[0]) || !skippedEqual(skipped[1], wantSkipped[1]) {
		t.Errorf("skipped %+v, want %+v", skipped, wantSkipped)
	}
	run()
	if _, err := os.Stat(filepath.Join(dir, "audit-daily-2027-01-15.html")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a skipped day's report: %v", err)
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
	if res, err := r.RunDue(ctx); err == nil || len(res.Written) != 0 {
		t.Errorf("reports into a file's subdirectory: %v %v", res.Written, err)
	}
}

func skippedEqual(a, b audit.Skipped) bool {
	return a.Period == b.Period && a.From.Equal(b.From) && a.To.Equal(b.To) && a.Count == b.Count
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
	res, err := r.RunDue(ctx)
	if err != nil || len(res.Written) != 1 {
		t.Fatalf("%v %v", res.Written, err)
	}
	b, err := os.ReadFile(res.Written[0])
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
