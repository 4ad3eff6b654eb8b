package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
)

var _ audit.QueryStore = (*Store)(nil)

// QueryRecords implements audit.QueryStore: newest first, keyset pages on
// (time_ms, seq), every exact filter served by an index in that order
// (migration 0002).
func (s *Store) QueryRecords(ctx context.Context, q audit.Query) ([]audit.Record, string, error) {
	var w store.Where
	if !q.From.IsZero() {
		w.Add("time_ms >= ?", q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		w.Add("time_ms < ?", q.To.UnixMilli())
	}
	for _, f := range []struct{ col, v string }{
		{"actor", q.Actor}, {"subject", q.Subject}, {"app_id", q.AppID}, {"api", q.API}, {"result", q.Result}, {"client_ip", q.ClientIP},
	} {
		if f.v != "" {
			w.Add(f.col+" = ?", f.v)
		}
	}
	if q.Text != "" {
		w.Contains(q.Text, "subject", "actor", "reason", "detail")
	}
	if len(q.Orgs) > 0 {
		args := make([]any, len(q.Orgs))
		for i, o := range q.Orgs {
			args[i] = o
		}
		w.Add("org IN ("+store.Placeholders(len(args))+")", args...)
	}
	after, err := store.PageAfter(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	if after != "" {
		ms, seq, ok := parseKey(after)
		if !ok {
			return nil, "", store.ErrBadPageToken
		}
		w.Add("(time_ms, seq) < (?, ?)", ms, seq)
	}
	query := "SELECT " + recordCols + " FROM audit_records" + w.SQL() + " ORDER BY time_ms DESC, seq DESC LIMIT ?"
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), append(w.Args(), q.PageSize+1)...)
	if err != nil {
		return nil, "", classify(err, "query records")
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, "", classify(err, "query records")
		}
		out = append(out, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", classify(err, "query records")
	}
	next := ""
	if len(out) > q.PageSize {
		out = out[:q.PageSize]
		last := out[len(out)-1]
		next = store.PageToken(fmt.Sprintf("%d:%d", last.Time.UnixMilli(), last.Seq))
	}
	return out, next, nil
}

func parseKey(k string) (ms, seq int64, ok bool) {
	a, b, found := strings.Cut(k, ":")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}
