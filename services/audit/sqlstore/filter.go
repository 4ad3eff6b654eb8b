package sqlstore

import (
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

// recordFilter is every condition the record queries (audit.Query) and the
// analytics (analytics.Filter) put on audit_records: the one WHERE builder
// of both. Each condition is served by the query indexes (migration 0002):
// time by (time_ms, seq), a subject by (subject, time_ms, seq), APIs by
// (api, time_ms, seq), and so on; on audit_peer_records (the union
// reads at level 1) by their twins (migrations 0005, 0007: the column,
// time_ms, origin, seq; TestPeerTablesMatchTheOwn).
type recordFilter struct {
	// From (inclusive) and To (exclusive) bound time_ms.
	From, To time.Time
	// Eq: column = value, for each non-empty value.
	Eq []colValue
	// In: column IN (values), for each non-empty list.
	In []colValues
	// Text: a substring of subject, actor, reason or detail.
	Text string
	// Orgs: org IN (orgs) (the caller's scope).
	Orgs []string
}

type colValue struct{ col, v string }

type colValues struct {
	col  string
	vals []string
}

// where is the WHERE clause of f.
func (f recordFilter) where() *store.Where {
	w := &store.Where{}
	if !f.From.IsZero() {
		w.Add("time_ms >= ?", f.From.UnixMilli())
	}
	if !f.To.IsZero() {
		w.Add("time_ms < ?", f.To.UnixMilli())
	}
	for _, c := range f.Eq {
		if c.v != "" {
			w.Add(c.col+" = ?", c.v)
		}
	}
	for _, c := range append(f.In, colValues{"org", f.Orgs}) {
		if len(c.vals) == 0 {
			continue
		}
		args := make([]any, len(c.vals))
		for i, v := range c.vals {
			args[i] = v
		}
		w.Add(c.col+" IN ("+store.Placeholders(len(args))+")", args...)
	}
	if f.Text != "" {
		w.Contains(f.Text, "subject", "actor", "reason", "detail")
	}
	return w
}

// filterWhere is the WHERE clause of q's filters (not its page).
func filterWhere(q audit.Query) *store.Where {
	return recordFilter{From: q.From, To: q.To, Eq: []colValue{{"actor", q.Actor}, {"subject", q.Subject}, {"app_id", q.AppID},
		{"api", q.API}, {"result", q.Result}, {"client_ip", q.ClientIP}}, Text: q.Text, Orgs: q.Orgs}.where()
}

// analyticsWhere is the WHERE clause of f.
func analyticsWhere(f analytics.Filter) *store.Where {
	return recordFilter{From: f.From, To: f.To, Eq: []colValue{{"subject", f.Subject}},
		In: []colValues{{"subject", f.Subjects}, {"api", f.APIs}, {"result", f.Results}}, Orgs: f.Orgs}.where()
}
