package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// a second replica sharing Dir does no harm). After downtime it also
// writes the periods missed since the newest report on disk, oldest
// first, at most CatchUpDays days and CatchUpWeeks weeks; older
// missed ones are skipped and said so (RunResult.Skipped). A fresh Dir
// gets the latest period only.
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

// The most periods of each kind one check writes after downtime, the
// latest included: a month of days, two months of weeks.
const (
	CatchUpDays  = 31
	CatchUpWeeks = 8
)

// catchUp is CatchUpDays or CatchUpWeeks.
func (p Period) catchUp() int {
	if p == Weekly {
		return CatchUpWeeks
	}
	return CatchUpDays
}

// length is the span of a period (days of a fixed UTC offset have no
// daylight saving).
func (p Period) length() time.Duration {
	if p == Weekly {
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
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
	return "audit-" + s.Period.String() + "-" + r.date(s) + "." + f.Ext()
}

// RunResult is what RunDue did.
type RunResult struct {
	// Written is the files written, oldest period first.
	Written []string
	// Skipped is, per period, the missed periods beyond the catch-up bound that were
	// not written.
	Skipped []Skipped
}

// Skipped is a run of missed periods not written: Count periods from
// the one starting at From to the one ending at To.
type Skipped struct {
	Period   Period
	From, To time.Time
	Count    int
}

// RunDue writes the reports that are due and missing, returning the files
// written: the latest period of each kind and, after downtime, the
// periods since the newest report on disk (see Reporter). Reports are
// written oldest first; a report that fails stops its kind (the error is
// returned and the next check starts again from it, so no gap is left
// behind newer reports); the other kind goes on. The errors are joined.
func (r *Reporter) RunDue(ctx context.Context) (RunResult, error) {
	now := r.now()
	var res RunResult
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return res, fmt.Errorf("audit reports directory: %w", err)
	}
	var errs []error
	var onDisk map[Period]string // newest report date of each kind, read once when needed
	for _, p := range r.Periods {
		latest := r.Latest(p, now)
		if len(r.missing(latest)) == 0 {
			continue // the usual check: nothing due
		}
		if onDisk == nil {
			var err error
			if onDisk, err = r.newestOnDisk(); err != nil {
				return res, fmt.Errorf("audit reports directory: %w", err)
			}
		}
		spans, skipped := r.due(latest, onDisk[p])
		if skipped.Count > 0 {
			res.Skipped = append(res.Skipped, skipped)
		}
		for _, s := range spans {
			files, err := r.write(ctx, s, now)
			res.Written = append(res.Written, files...)
			if err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return res, errors.Join(errs...)
}

// due is the spans of p to check, oldest first: latest, and back from it
// those that start on or after the newest report on disk (a date, "" for
// none: the latest only), at most p.catchUp(); skipped is the rest.
func (r *Reporter) due(latest ReportSpan, newest string) (spans []ReportSpan, skipped Skipped) {
	p := latest.Period
	spans = []ReportSpan{latest}
	if newest == "" {
		return spans, skipped
	}
	limit := p.catchUp()
	for s := r.prev(latest); r.date(s) >= newest; s = r.prev(s) {
		if len(spans) == limit {
			// the periods after the newest on disk up to s are not written
			if first, err := time.Parse(time.DateOnly, newest); err == nil {
				from := first.Add(-r.UTCOffset + p.length())
				if n := int(s.End.Sub(from) / p.length()); n > 0 {
					skipped = Skipped{Period: p, From: from, To: s.End, Count: n}
				}
			}
			break
		}
		spans = append(spans, s)
	}
	slices.Reverse(spans)
	return spans, skipped
}

// prev is the period before s.
func (r *Reporter) prev(s ReportSpan) ReportSpan {
	return ReportSpan{Period: s.Period, Start: s.Start.Add(-s.Period.length()), End: s.Start}
}

// date is the first day of s in the offset, as in its file name.
func (r *Reporter) date(s ReportSpan) string {
	return s.Start.Add(r.UTCOffset).UTC().Format(time.DateOnly)
}

// missing is the formats of s whose file is not in Dir.
func (r *Reporter) missing(s ReportSpan) []Format {
	var out []Format
	for _, f := range r.Formats {
		if _, err := os.Stat(filepath.Join(r.Dir, r.FileName(s, f))); errors.Is(err, os.ErrNotExist) {
			out = append(out, f)
		}
	}
	return out
}

// newestOnDisk is the date of the newest report of each kind in Dir (in
// any format).
func (r *Reporter) newestOnDisk() (map[Period]string, error) {
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, err
	}
	out := map[Period]string{}
	for _, e := range entries {
		for _, p := range []Period{Daily, Weekly} {
			rest, ok := strings.CutPrefix(e.Name(), "audit-"+p.String()+"-")
			if !ok || len(rest) < len(time.DateOnly)+2 || rest[len(time.DateOnly)] != '.' {
				continue
			}
			d := rest[:len(time.DateOnly)]
			if _, err := time.Parse(time.DateOnly, d); err == nil && d > out[p] {
				out[p] = d
			}
		}
	}
	return out, nil
}

// write writes the missing formats of the report of s.
func (r *Reporter) write(ctx context.Context, s ReportSpan, now time.Time) ([]string, error) {
	missing := r.missing(s)
	if len(missing) == 0 {
		return nil, nil
	}
	doc, err := r.Document(ctx, s, now)
	if err != nil {
		return nil, fmt.Errorf("%s report of %s: %w", s.Period, r.date(s), err)
	}
	var written []string
	for _, f := range missing {
		name := filepath.Join(r.Dir, r.FileName(s, f))
		if err := r.writeFile(name, doc, f); err != nil {
			return written, fmt.Errorf("%s: %w", name, err)
		}
		written = append(written, name)
	}
	return written, nil
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
		title string
		apis  []string // counted together (none: every API)
		// results counted together (none: every result)
		results []string
		by      CountBy
		empty   string
	}
	parts := []part{
		{"Records by API", nil, nil, ByAPI, "No records."},
		{"Records by result", nil, nil, ByResult, "No records."},
		{"Failed logins by account", LoginAPIs, LoginFailures, BySubject, "No failed logins."},
		{"Failed logins by application", LoginAPIs, LoginFailures, ByApp, "No failed logins."},
		{"Failed logins by client address", LoginAPIs, LoginFailures, ByClientIP, "No failed logins."},
		{"Login peak times, by hour" + zone, LoginAPIs, []string{"success"}, ByHourOfDay, "No logins."},
	}
	if s.Period == Weekly {
		parts = append(parts, part{"Logins by weekday" + zone, LoginAPIs, []string{"success"}, ByWeekday, "No logins."})
	}
	for _, p := range parts {
		q := CountQuery{Filter: span, By: p.by, UTCOffset: r.UTCOffset, Limit: reportTop}
		if p.by == ByHourOfDay || p.by == ByWeekday {
			q.Limit = 24
		}
		counts, truncated, err := countAcross(ctx, r.Store, all, q, p.apis, p.results)
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

// LoginAPIs are the APIs whose records are login attempts: applications'
// Authenticate (and its fingerprint bypass), the single sign-on pages,
// administrators' logins.
var LoginAPIs = []string{"authenticate", "authenticate.finger_bypass", "sso.login", "admin.login"}

// LoginFailures are the results of a failed login attempt.
var LoginFailures = []string{"failure", "denied"}

// countAcross is Counts of q summed over the APIs apis and the results
// results (each nil: q's filter as it is), the largest q.Limit keys, by
// count then key (by key for hours and weekdays).
func countAcross(ctx context.Context, st CountStore, scope Scope, q CountQuery, apis, results []string) ([]Count, bool, error) {
	if len(apis) == 0 {
		apis = []string{q.Filter.API}
	}
	if len(results) == 0 {
		results = []string{q.Filter.Result}
	}
	limit := q.Limit
	sum := map[string]int64{}
	more := false
	for _, api := range apis {
		for _, res := range results {
			sub := q
			sub.Filter.API, sub.Filter.Result = api, res
			sub.Limit = max(limit*10, 200) // the parts: a key's sum may rank it higher than in any one
			counts, truncated, err := Counts(ctx, st, scope, sub)
			if err != nil {
				return nil, false, err
			}
			more = more || truncated
			for _, c := range counts {
				sum[c.Key] += c.Count
			}
		}
	}
	out := make([]Count, 0, len(sum))
	for k, n := range sum {
		out = append(out, Count{Key: k, Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if q.By == ByHourOfDay || q.By == ByWeekday {
			return strings.Compare(a.Key, b.Key)
		}
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(out) > limit {
		out, more = out[:limit], true
	}
	return out, more, nil
}
