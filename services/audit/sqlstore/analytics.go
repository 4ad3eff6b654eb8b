package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

var _ analytics.Store = (*Store)(nil)

// Milliseconds of an hour and a day (hours and weekdays are integer
// arithmetic on time_ms, the same on SQLite and PostgreSQL).
const (
	analyticsHourMS = int64(time.Hour / time.Millisecond)
	analyticsDayMS  = 24 * analyticsHourMS
)

// CountBy implements analytics.Store with one GROUP BY.
func (s *Store) CountBy(ctx context.Context, f analytics.Filter, g analytics.Group, utcOffset time.Duration, limit int) ([]analytics.Count, error) {
	var sel []any
	key, order, numeric := "", "2 DESC, 1", false
	switch g {
	case analytics.BySubject:
		key = "subject"
	case analytics.ByApp:
		key = "app_id"
	case analytics.ByClientIP:
		key = "client_ip"
	case analytics.ByHourOfDay:
		key, order, numeric = fmt.Sprintf("((time_ms + ?) / %d) %% 24", analyticsHourMS), "1", true
		sel = append(sel, utcOffset.Milliseconds())
	case analytics.ByWeekday:
		// 1970-01-01 was a Thursday (4)
		key, order, numeric = fmt.Sprintf("(((time_ms + ?) / %d) + 4) %% 7", analyticsDayMS), "1", true
		sel = append(sel, utcOffset.Milliseconds())
	default:
		return nil, fmt.Errorf("audit store: count by %d", g)
	}
	w, from, err := s.analyticsSource(ctx, f)
	if err != nil {
		return nil, err
	}
	query := "SELECT " + key + ", COUNT(*), MAX(time_ms)" + from + w.SQL() + " GROUP BY 1 ORDER BY " + order + " LIMIT ?"
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), append(append(sel, w.Args()...), limit+1)...)
	if err != nil {
		return nil, classify(err, "count logins")
	}
	defer rows.Close()
	var out []analytics.Count
	for rows.Next() {
		var c analytics.Count
		var last int64
		if numeric {
			var k int64
			if err := rows.Scan(&k, &c.Count, &last); err != nil {
				return nil, classify(err, "count logins")
			}
			c.Key = fmt.Sprint(k)
			if g == analytics.ByHourOfDay {
				c.Key = fmt.Sprintf("%02d", k)
			}
		} else if err := rows.Scan(&c.Key, &c.Count, &last); err != nil {
			return nil, classify(err, "count logins")
		}
		c.Last = time.UnixMilli(last).UTC()
		out = append(out, c)
	}
	return out, classify(rows.Err(), "count logins")
}

// LatestPerSubject implements analytics.Store: the latest matching record
// of each subject (a window function, on SQLite and PostgreSQL alike).
func (s *Store) LatestPerSubject(ctx context.Context, f analytics.Filter, before time.Time, limit int) ([]analytics.LastSeen, error) {
	w, from, err := s.analyticsSource(ctx, f)
	if err != nil {
		return nil, err
	}
	var outer store.Where
	outer.Add("rn = 1")
	order := "time_ms DESC, subject"
	if !before.IsZero() {
		outer.Add("time_ms < ?", before.UnixMilli())
		order = "time_ms, subject"
	}
	query := "SELECT subject, time_ms, org, client_ip, app_id FROM (SELECT subject, time_ms, org, client_ip, app_id, " +
		"ROW_NUMBER() OVER (PARTITION BY subject ORDER BY time_ms DESC, seq DESC) AS rn" + from + w.SQL() + ") latest" +
		outer.SQL() + " ORDER BY " + order + " LIMIT ?"
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), append(append(w.Args(), outer.Args()...), limit+1)...)
	if err != nil {
		return nil, classify(err, "latest logins")
	}
	defer rows.Close()
	var out []analytics.LastSeen
	for rows.Next() {
		var l analytics.LastSeen
		var ms int64
		if err := rows.Scan(&l.Subject, &ms, &l.Org, &l.ClientIP, &l.AppID); err != nil {
			return nil, classify(err, "latest logins")
		}
		l.Time = time.UnixMilli(ms).UTC()
		out = append(out, l)
	}
	return out, classify(rows.Err(), "latest logins")
}

// Records implements analytics.Store: newest first, keyset pages on
// (time_ms, seq) as QueryRecords' (the same tokens).
func (s *Store) Records(ctx context.Context, f analytics.Filter, pageSize int, pageToken string) ([]audit.Record, string, error) {
	return s.pageRecords(ctx, f.Origin, func() *store.Where { return analyticsWhere(f) }, pageSize, pageToken, "login history")
}

// Timelines implements analytics.Store: by subject, then time (one sorted
// read of the range's records, which the APIs' index selects).
func (s *Store) Timelines(ctx context.Context, f analytics.Filter, max int, fn func(l analytics.LastSeen) error) (bool, error) {
	w, from, err := s.analyticsSource(ctx, f)
	if err != nil {
		return false, err
	}
	w.Add("client_ip <> ?", "")
	query := "SELECT subject, time_ms, org, client_ip, app_id" + from + w.SQL() + " ORDER BY subject, time_ms, seq LIMIT ?"
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), append(w.Args(), max+1)...)
	if err != nil {
		return false, classify(err, "login timelines")
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n == max {
			return true, nil
		}
		n++
		var l analytics.LastSeen
		var ms int64
		if err := rows.Scan(&l.Subject, &ms, &l.Org, &l.ClientIP, &l.AppID); err != nil {
			return false, classify(err, "login timelines")
		}
		l.Time = time.UnixMilli(ms).UTC()
		if err := fn(l); err != nil {
			return false, err
		}
	}
	return false, classify(rows.Err(), "login timelines")
}

// analyticsSource is the WHERE of f and the FROM of the records it reads
// (all origins held unless f.Origin names one).
func (s *Store) analyticsSource(ctx context.Context, f analytics.Filter) (*store.Where, string, error) {
	w := analyticsWhere(f)
	src, err := s.source(ctx, f.Origin)
	if err != nil {
		return nil, "", err
	}
	if src.onlyOrigin != "" {
		w.Add("origin = ?", src.onlyOrigin)
	}
	return w, src.from, nil
}
