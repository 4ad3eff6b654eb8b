package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Period is the span of a scheduled report.
type Period int

// Report periods: a day, or a week from Monday to Sunday (in the
// reporter's UTC offset).
const (
	Daily Period = iota + 1
	Weekly
)

func (p Period) String() string {
	if p == Weekly {
		return "weekly"
	}
	return "daily"
}

// ReportStore is what reports read.
type ReportStore interface {
	QueryStore
	CountStore
}

// Reporter writes the scheduled reports: for each period, the report of
// the latest one that ended at least After ago, in each format, to Dir
// (once: a report whose file exists is not written again, so a restart or
// a second replica sharing Dir does no harm; a report missed while the
// service was down is written at the next check, the latest period only).
type Reporter struct {
	Store     ReportStore
	Exporter  Exporter
	Dir       string
	Periods   []Period
	Formats   []Format
	After     time.Duration
	UTCOffset time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// ReportSpan is one report's period: [Start, End).
type ReportSpan struct {
	Period     Period
	Start, End time.Time
}

func (r *Reporter) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Latest is the latest span of p that ended at least After before now.
func (r *Reporter) Latest(p Period, now time.Time) ReportSpan {
	// days start at midnight in the offset: shift, truncate, shift back
	local := now.Add(r.UTCOffset - r.After).UTC()
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	if p == Weekly {
		back := (int(day.Weekday()) + 6) % 7 // days since Monday
		end := day.AddDate(0, 0, -back)
		return ReportSpan{Period: p, Start: end.AddDate(0, 0, -7).Add(-r.UTCOffset), End: end.Add(-r.UTCOffset)}
	}
	return ReportSpan{Period: p, Start: day.AddDate(0, 0, -1).Add(-r.UTCOffset), End: day.Add(-r.UTCOffset)}
}

// FileName is the name of the report of s in format f, e.g.
// audit-daily-2026-12-01.pdf (the first day, in the offset).
func (r *Reporter) FileName(s ReportSpan, f Format) string {
	return "audit-" + s.Period.String() + "-" + s.Start.Add(r.UTCOffset).UTC().Format("2006-01-02") + "." + f.Ext()
}

// RunDue writes the reports that are due and missing, returning the files
// written. A failure of one report does not stop the others; the errors
// are joined.
func (r *Reporter) RunDue(ctx context.Context) ([]string, error) {
	now := r.now()
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit reports directory: %w", err)
	}
	var written []string
	var errs []error
	for _, p := range r.Periods {
		s := r.Latest(p, now)
		var missing []Format
		for _, f := range r.Formats {
			if _, err := os.Stat(filepath.Join(r.Dir, r.FileName(s, f))); errors.Is(err, os.ErrNotExist) {
				missing = append(missing, f)
			}
		}
		if len(missing) == 0 {
			continue
		}
		doc, err := r.Document(ctx, s, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s report of %s: %w", p, s.Start.Format(time.DateOnly), err))
			continue
		}
		for _, f := range missing {
			name := filepath.Join(r.Dir, r.FileName(s, f))
			if err := r.writeFile(name, doc, f); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			written = append(written, name)
		}
	}
	return written, errors.Join(errs...)
}

// writeFile writes the document to name through a temporary file renamed
// into place (a reader never sees half a report).
func (r *Reporter) writeFile(name string, d Document, f Format) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".report-*.tmp")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // after a successful rename there is nothing to remove
	if err := r.Exporter.Write(d, f, tmp); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// reportTop is the most rows of a table of a report by key.
const reportTop = 20

// Document builds the report of s from the whole log (a scheduled report
// is the security auditor's; it is written to a directory operators keep).
func (r *Reporter) Document(ctx context.Context, s ReportSpan, generated time.Time) (Document, error) {
	local := func(t time.Time) string { return t.Add(r.UTCOffset).UTC().Format("2006-01-02 15:04") }
	zone := offsetName(r.UTCOffset)
	title := "UIAS audit report, " + s.Period.String() + ", " + s.Start.Add(r.UTCOffset).UTC().Format("2006-01-02")
	d := Document{Title: title, Generated: generated,
		Lines: []string{"Records from " + local(s.Start) + " to " + local(s.End) + zone + " (end excluded)."}}
	all := Scope{All: true}
	span := Query{From: s.Start, To: s.End}
	type part struct {
		title  string
		filter Query
		by     CountBy
		empty  string
	}
	failed := span
	failed.API, failed.Result = "authenticate", "failure"
	logins := span
	logins.API, logins.Result = "authenticate", "success"
	parts := []part{
		{"Records by API", span, ByAPI, "No records."},
		{"Records by result", span, ByResult, "No records."},
		{"Failed logins by account", failed, BySubject, "No failed logins."},
		{"Failed logins by application", failed, ByApp, "No failed logins."},
		{"Failed logins by client address", failed, ByClientIP, "No failed logins."},
		{"Login peak times, by hour" + zone, logins, ByHourOfDay, "No logins."},
	}
	if s.Period == Weekly {
		parts = append(parts, part{"Logins by weekday" + zone, logins, ByWeekday, "No logins."})
	}
	for _, p := range parts {
		q := CountQuery{Filter: p.filter, By: p.by, UTCOffset: r.UTCOffset, Limit: reportTop}
		if p.by == ByHourOfDay || p.by == ByWeekday {
			q.Limit = 24
		}
		counts, truncated, err := Counts(ctx, r.Store, all, q)
		if err != nil {
			return Document{}, err
		}
		sec := Section{Title: p.title, Header: []string{p.by.String(), "count"}, Weights: []float64{4, 1}, Empty: p.empty,
			Chart: CountChart(q, counts)}
		if truncated {
			sec.Title += " (the " + strconv.Itoa(reportTop) + " largest)"
		}
		for _, c := range counts {
			sec.Rows = append(sec.Rows, []string{q.By.Label(c.Key), strconv.FormatInt(c.Count, 10)})
		}
		d.Sections = append(d.Sections, sec)
	}
	return d, nil
}
