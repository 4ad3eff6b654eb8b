package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
)

var _ audit.QueryStore = (*Store)(nil)

// QueryRecords implements audit.QueryStore: newest first, keyset pages on
// (time_ms, seq), every exact filter served by an index in that order
// (migration 0002); of all origins held (ADR 0029) unless q.Origin names
// one, by time, origin and seq.
func (s *Store) QueryRecords(ctx context.Context, q audit.Query) ([]audit.Record, string, error) {
	return s.pageRecords(ctx, q.Origin, func() *store.Where { return filterWhere(q) }, q.PageSize, q.PageToken, "query records")
}

// pageRecords reads a page of records of origin matching the filter where
// builds, newest first. Of several origins it reads a page of each table
// (each through its own indexes, newest first) and merges them.
func (s *Store) pageRecords(ctx context.Context, origin string, where func() *store.Where, pageSize int, pageToken, op string) ([]audit.Record, string, error) {
	src, err := s.source(ctx, origin)
	if err != nil {
		return nil, "", err
	}
	after, err := store.PageAfter(pageToken)
	if err != nil {
		return nil, "", err
	}
	var ms, seq int64
	var org string
	if after != "" {
		var ok bool
		if ms, seq, org, ok = parseKey(after); !ok {
			return nil, "", store.ErrBadPageToken
		}
	}
	// arm is the SELECT of one table: its filter, the page key, its order.
	arm := func(from, originCol, order string, union bool) (string, []any) {
		w := where()
		if src.onlyOrigin != "" {
			w.Add("origin = ?", src.onlyOrigin)
		}
		switch {
		case after == "":
		case union:
			w.Add("(time_ms, "+originCol+", seq) < (?, ?, ?)", ms, org, seq)
		default:
			w.Add("(time_ms, seq) < (?, ?)", ms, seq)
		}
		return "SELECT " + recordCols + ", " + originCol + " AS origin" + from + w.SQL() + order + " LIMIT ?", append(w.Args(), pageSize+1)
	}
	var query string
	var args []any
	if src.union {
		own, ownArgs := arm(" FROM audit_records", src.ownCol, " ORDER BY time_ms DESC, seq DESC", true)
		peers, peerArgs := arm(" FROM audit_peer_records", "origin", " ORDER BY time_ms DESC, origin DESC, seq DESC", true)
		query = "SELECT * FROM (" + own + ") own_page UNION ALL SELECT * FROM (" + peers + ") peer_page" + src.order() + " LIMIT ?"
		args = append(append(ownArgs, peerArgs...), pageSize+1)
	} else {
		query, args = arm(src.from, src.originCol, src.order(), false)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, "", classify(err, op)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanRecordFrom(rows)
		if err != nil {
			return nil, "", classify(err, op)
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(err, op)
	}
	next := ""
	if len(out) > pageSize {
		out = out[:pageSize]
		last := out[len(out)-1]
		next = store.PageToken(fmt.Sprintf("%d:%d:%s", last.Time.UnixMilli(), last.Seq, last.Origin))
	}
	return out, next, nil
}

var _ audit.CountStore = (*Store)(nil)

const (
	msHour = int64(time.Hour / time.Millisecond)
	msDay  = 24 * msHour
)

// CountRecords implements audit.CountStore with one GROUP BY (the
// filters use the query indexes; hours, weekdays and buckets are integer
// arithmetic on time_ms, the same on SQLite and PostgreSQL).
func (s *Store) CountRecords(ctx context.Context, q audit.CountQuery) ([]audit.Count, error) {
	off := q.UTCOffset.Milliseconds()
	var sel []any
	bucket := "0"
	switch q.Bucket {
	case audit.ByHour:
		bucket = fmt.Sprintf("((time_ms + ?) / %d) * %d - ?", msHour, msHour)
		sel = append(sel, off, off)
	case audit.ByDay:
		bucket = fmt.Sprintf("((time_ms + ?) / %d) * %d - ?", msDay, msDay)
		sel = append(sel, off, off)
	}
	numeric := false
	var key string
	switch q.By {
	case audit.ByHourOfDay:
		key, numeric = fmt.Sprintf("((time_ms + ?) / %d) %% 24", msHour), true
		sel = append(sel, off)
	case audit.ByWeekday:
		// 1970-01-01 was a Thursday (4)
		key, numeric = fmt.Sprintf("(((time_ms + ?) / %d) + 4) %% 7", msDay), true
		sel = append(sel, off)
	default:
		key = map[audit.CountBy]string{audit.ByAPI: "api", audit.ByResult: "result", audit.ByApp: "app_id", audit.ByActor: "actor",
			audit.BySubject: "subject", audit.ByClientIP: "client_ip", audit.ByComponent: "component", audit.ByOrg: "org"}[q.By]
		if key == "" {
			return nil, fmt.Errorf("audit store: count by %d", q.By)
		}
	}
	w := filterWhere(q.Filter)
	src, err := s.source(ctx, q.Filter.Origin)
	if err != nil {
		return nil, err
	}
	if src.onlyOrigin != "" {
		w.Add("origin = ?", src.onlyOrigin)
	}
	query := "SELECT " + bucket + ", " + key + ", COUNT(*)" + src.from + w.SQL() +
		" GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2 LIMIT ?"
	args := append(append(sel, w.Args()...), q.Limit+1)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, classify(err, "count records")
	}
	defer rows.Close()
	var out []audit.Count
	for rows.Next() {
		var c audit.Count
		var b int64
		if numeric {
			var k int64
			if err := rows.Scan(&b, &k, &c.Count); err != nil {
				return nil, classify(err, "count records")
			}
			c.Key = fmt.Sprint(k)
			if q.By == audit.ByHourOfDay {
				c.Key = fmt.Sprintf("%02d", k)
			}
		} else if err := rows.Scan(&b, &c.Key, &c.Count); err != nil {
			return nil, classify(err, "count records")
		}
		if q.Bucket != audit.NoBucket {
			c.BucketStart = time.UnixMilli(b).UTC()
		}
		out = append(out, c)
	}
	return out, classify(rows.Err(), "count records")
}

// parseKey reads a page key "<time_ms>:<seq>[:<origin>]".
func parseKey(k string) (ms, seq int64, origin string, ok bool) {
	a, b, found := strings.Cut(k, ":")
	if !found {
		return 0, 0, "", false
	}
	b, origin, _ = strings.Cut(b, ":")
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	return ms, seq, origin, err1 == nil && err2 == nil
}
