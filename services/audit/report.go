package audit

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	pkgaudit "github.com/uias/uias/pkg/audit"
)

// CountBy is the field records are counted by.
type CountBy int

// The fields records are counted by.
const (
	ByAPI CountBy = iota + 1
	ByResult
	ByApp
	ByActor
	BySubject
	ByClientIP
	ByComponent
	// ByHourOfDay: "00" to "23"; ByWeekday: "0" (Sunday) to "6"; both in
	// the count's UTC offset.
	ByHourOfDay
	ByWeekday
	// ByOrg: the record's org id.
	ByOrg
)

// Bucket splits counts over time.
type Bucket int

// Time buckets of counts.
const (
	NoBucket Bucket = iota
	ByHour
	ByDay // days in the count's UTC offset
)

// CountQuery counts the records matching Filter (its paging fields are
// not used), grouped by By and Bucket.
type CountQuery struct {
	Filter Query
	By     CountBy
	Bucket Bucket
	// UTCOffset is the time zone of hours, weekdays and days.
	UTCOffset time.Duration
	// Limit is at most MaxCountLimit (0: DefaultCountLimit).
	Limit int
}

// Count limits.
const (
	DefaultCountLimit = 100
	MaxCountLimit     = 10000
)

// Count is the number of records of one group.
type Count struct {
	// BucketStart is the start of the hour or day (zero without a bucket).
	BucketStart time.Time
	Key         string
	Count       int64
}

// CountStore is what Counts needs of the store.
type CountStore interface {
	// CountRecords returns at most q.Limit+1 counts of q (checked, with
	// the scope's orgs in q.Filter.Orgs): by bucket, then largest first,
	// then by key.
	CountRecords(ctx context.Context, q CountQuery) ([]Count, error)
}

// Counts runs q within scope; truncated reports that more groups matched
// than the limit.
func Counts(ctx context.Context, st CountStore, scope Scope, q CountQuery) (counts []Count, truncated bool, err error) {
	f, err := scoped(scope, q.Filter)
	if err != nil {
		return nil, false, err
	}
	q.Filter = f
	switch {
	case q.By < ByAPI || q.By > ByOrg:
		return nil, false, badRequest("by must name the field to count by")
	case q.Bucket < NoBucket || q.Bucket > ByDay:
		return nil, false, badRequest("bucket must be none, hour or day")
	case q.UTCOffset < -12*time.Hour || q.UTCOffset > 14*time.Hour || q.UTCOffset%time.Minute != 0:
		return nil, false, badRequest("utc_offset_minutes must be whole minutes between -720 and 840")
	case q.Limit < 0 || q.Limit > MaxCountLimit:
		return nil, false, badRequest(fmt.Sprintf("limit must be between 0 and %d", MaxCountLimit))
	case q.Limit == 0:
		q.Limit = DefaultCountLimit
	}
	counts, err = st.CountRecords(ctx, q)
	if err != nil {
		return nil, false, err
	}
	if len(counts) > q.Limit {
		return counts[:q.Limit], true, nil
	}
	return counts, false, nil
}

// scoped checks the filter q (the time range, the result, the client
// address, which it writes in their stored forms) and restricts it to
// scope (the paging fields are left as they are).
func scoped(scope Scope, q Query) (Query, error) {
	if !scope.All {
		if len(scope.Orgs) == 0 {
			return q, errForbidden
		}
		q.Orgs = scope.Orgs
	} else {
		q.Orgs = nil
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, badRequest("start_time must be before end_time")
	}
	if q.Result != "" {
		r := strings.ToLower(q.Result)
		if !slices.Contains(results, r) {
			return q, badRequest(fmt.Sprintf("result %q is none of %s", q.Result, strings.Join(results, ", ")))
		}
		q.Result = r
	}
	if q.ClientIP != "" {
		a, err := netip.ParseAddr(q.ClientIP)
		if err != nil {
			return q, badRequest("client_ip is not an IP address")
		}
		q.ClientIP = a.String()
	}
	return q, nil
}

// results are the results a record can have (a filter's result is one).
var results = []string{pkgaudit.ResultSuccess, pkgaudit.ResultFailure, pkgaudit.ResultDenied, pkgaudit.ResultIncomplete}

func badRequest(msg string) error {
	return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, msg)
}

// Label names a count's key for people (weekday names, hours).
func (b CountBy) Label(key string) string {
	if b == ByWeekday {
		for i, d := range []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"} {
			if key == fmt.Sprint(i) {
				return d
			}
		}
	}
	if b == ByHourOfDay && key != "" {
		return key + ":00"
	}
	return key
}

// String is the field's name in reports.
func (b CountBy) String() string {
	switch b {
	case ByAPI:
		return "api"
	case ByResult:
		return "result"
	case ByApp:
		return "app_id"
	case ByActor:
		return "actor"
	case BySubject:
		return "subject"
	case ByClientIP:
		return "client_ip"
	case ByComponent:
		return "component"
	case ByHourOfDay:
		return "hour"
	case ByWeekday:
		return "weekday"
	case ByOrg:
		return "org"
	}
	return "?"
}
