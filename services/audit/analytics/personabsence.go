package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uias/uias/services/audit"
)

// Bounds of a person's absence report.
const (
	// MaxAbsencePeriod is the longest period asked at once.
	MaxAbsencePeriod = 366 * 24 * time.Hour
	// DefaultAbsencePeriod: the last 30 days.
	DefaultAbsencePeriod = 30 * 24 * time.Hour
)

// PersonDay is one day of a person's absence report.
type PersonDay struct {
	// Date is the day, YYYY-MM-DD in the report's UTC offset.
	Date    string
	Present bool
	// Logins: successful logins that day; First the earliest.
	Logins int
	First  time.Time
}

// PersonAbsence is one person's days over a period.
type PersonAbsence struct {
	Days                    []PersonDay
	PresentDays, AbsentDays int
	// Truncated: the period held more logins than one question reads;
	// the days before the oldest login read are left out (unknown, not
	// absent).
	Truncated bool
}

// PersonAbsence answers person userID's absence over r (004 2.1.7.2):
// every day of it, cut at midnight in offset, with or without a successful
// login (weekdaysOnly: Saturdays and Sundays left out). The default
// period is the last 30 days; at most MaxAbsencePeriod.
func (a *Analytics) PersonAbsence(ctx context.Context, scope audit.Scope, userID string, r Range, offset time.Duration,
	weekdaysOnly bool) (PersonAbsence, error) {
	if userID == "" || strings.ContainsAny(userID, " \t\r\n") {
		return PersonAbsence{}, badRequest("user_id must name a person")
	}
	if offset < -14*time.Hour || offset > 14*time.Hour {
		return PersonAbsence{}, badRequest("utc_offset_minutes must be between -840 and 840")
	}
	if now := a.now(); r.To.IsZero() || r.To.After(now) {
		r.To = now // days still to come are no absence
	}
	if r.From.IsZero() {
		r.From = r.To.Add(-DefaultAbsencePeriod)
	}
	if !r.From.Before(r.To) {
		return PersonAbsence{}, badRequest("start_time must be before end_time (and not in the future)")
	}
	if r.To.Sub(r.From) > MaxAbsencePeriod {
		return PersonAbsence{}, badRequest(fmt.Sprintf("the period is at most %d days: narrow start_time..end_time", MaxAbsencePeriod/(24*time.Hour)))
	}
	// whole days: a login on the first day before start_time, or on the
	// last after end_time, is that day's presence (review sec9 L6)
	zone := time.FixedZone("", int(offset/time.Second))
	start := r.From.In(zone)
	d0 := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, zone)
	end := r.To.In(zone)
	dEnd := time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, zone).AddDate(0, 0, 1)
	f, err := scoped(scope, Filter{APIs: LoginAPIs, Results: []string{ResultSuccess}, Subject: UserSubject(userID), From: d0, To: dEnd})
	if err != nil {
		return PersonAbsence{}, err
	}
	if err := a.mayRead(ctx, scope, userID); err != nil {
		return PersonAbsence{}, err
	}
	day := func(t time.Time) string { return t.In(zone).Format(time.DateOnly) }
	seen := map[string]*PersonDay{}
	var oldest time.Time // of the logins read
	more, err := a.scan(ctx, f, func(rec *audit.Record) bool {
		if oldest.IsZero() || rec.Time.Before(oldest) {
			oldest = rec.Time
		}
		d := day(rec.Time)
		p := seen[d]
		if p == nil {
			p = &PersonDay{Date: d}
			seen[d] = p
		}
		p.Present = true
		p.Logins++
		if p.First.IsZero() || rec.Time.Before(p.First) {
			p.First = rec.Time
		}
		return true
	})
	if err != nil {
		return PersonAbsence{}, err
	}
	out := PersonAbsence{Truncated: more}
	for t := d0; t.Before(r.To); t = t.AddDate(0, 0, 1) {
		if weekdaysOnly && (t.Weekday() == time.Saturday || t.Weekday() == time.Sunday) {
			continue
		}
		if more && t.Format(time.DateOnly) < day(oldest) {
			continue // not read: unknown, not absent
		}
		pd := PersonDay{Date: t.Format(time.DateOnly)}
		if p := seen[pd.Date]; p != nil {
			pd = *p
			out.PresentDays++
		} else {
			out.AbsentDays++
		}
		out.Days = append(out.Days, pd)
	}
	return out, nil
}
