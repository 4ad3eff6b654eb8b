package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/services/audit"
)

// testCounts: counts by a field (largest first), by hour of day and
// weekday in a UTC offset, in day buckets, filtered, limited (truncated),
// and within a unit administrator's orgs.
func testCounts(t *testing.T, s Subject) {
	ctx := context.Background()
	st, ok := s.Store.(audit.CountStore)
	if !ok {
		t.Skip("the store does not count")
	}
	l, _ := newLog(t, s, 1000)
	// 30 records on 2026-12-01 from 23:30 UTC, one a minute (so 23:xx and
	// 00:xx UTC); results cycle success, failure, denied; org-2 for every
	// fifth.
	base := time.Date(2026, 12, 1, 23, 30, 0, 0, time.UTC)
	recs := Records("cnt", 30)
	for i := range recs {
		recs[i].Time = base.Add(time.Duration(i) * time.Minute)
		if i%5 == 0 {
			recs[i].Org = "org-2"
		}
	}
	recs[0].API = "admin.login"
	appendAll(t, l, recs)
	all := audit.Scope{All: true}
	count := func(q audit.CountQuery, sc audit.Scope) ([]audit.Count, bool) {
		t.Helper()
		c, tr, err := audit.Counts(ctx, st, sc, q)
		if err != nil {
			t.Fatalf("counts %+v: %v", q, err)
		}
		return c, tr
	}
	got, tr := count(audit.CountQuery{By: audit.ByAPI}, all)
	if tr || len(got) != 2 || got[0] != (audit.Count{Key: "authenticate", Count: 29}) || got[1] != (audit.Count{Key: "admin.login", Count: 1}) {
		t.Fatalf("by api: %+v %v", got, tr)
	}
	got, _ = count(audit.CountQuery{By: audit.ByResult, Filter: audit.Query{API: "authenticate"}}, all)
	if len(got) != 3 || got[0].Key != "denied" || got[0].Count != 10 || got[2].Count != 9 {
		t.Fatalf("results of authenticate: %+v", got) // denied 10, failure 10, success 9 (the admin.login was a success)
	}
	// hours: 23:30 to 23:59 UTC, 07:xx at UTC+8
	got, _ = count(audit.CountQuery{By: audit.ByHourOfDay}, all)
	if len(got) != 1 || got[0] != (audit.Count{Key: "23", Count: 30}) {
		t.Fatalf("by hour UTC: %+v", got)
	}
	got, _ = count(audit.CountQuery{By: audit.ByHourOfDay, UTCOffset: 8 * time.Hour}, all)
	if len(got) != 1 || got[0] != (audit.Count{Key: "07", Count: 30}) {
		t.Fatalf("by hour at UTC+8: %+v", got)
	}
	// 2026-12-01 was a Tuesday (2); at UTC+8, Wednesday (3)
	got, _ = count(audit.CountQuery{By: audit.ByWeekday}, all)
	if len(got) != 1 || got[0] != (audit.Count{Key: "2", Count: 30}) {
		t.Fatalf("by weekday: %+v", got)
	}
	got, _ = count(audit.CountQuery{By: audit.ByWeekday, UTCOffset: 8 * time.Hour}, all)
	if len(got) != 1 || got[0] != (audit.Count{Key: "3", Count: 30}) {
		t.Fatalf("by weekday at UTC+8: %+v", got)
	}
	// by org: every fifth record is org-2's
	got, _ = count(audit.CountQuery{By: audit.ByOrg}, all)
	if len(got) != 2 || got[1] != (audit.Count{Key: "org-2", Count: 6}) || got[0].Count != 24 {
		t.Fatalf("by org: %+v", got)
	}
	// day buckets at UTC-1 (the records are on 2026-12-01 22:30-22:59 there)
	got, _ = count(audit.CountQuery{By: audit.ByResult, Bucket: audit.ByDay, UTCOffset: -time.Hour}, all)
	day := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC) // midnight at UTC-1
	if len(got) != 3 || !got[0].BucketStart.Equal(day) || got[0].Count != 10 {
		t.Fatalf("day buckets: %+v", got)
	}
	// hour buckets in UTC: 23:00 only
	got, _ = count(audit.CountQuery{By: audit.ByAPI, Bucket: audit.ByHour}, all)
	if len(got) != 2 || !got[0].BucketStart.Equal(time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)) {
		t.Fatalf("hour buckets: %+v", got)
	}
	// limit
	got, tr = count(audit.CountQuery{By: audit.ByClientIP, Limit: 5}, all)
	if len(got) != 5 || !tr {
		t.Fatalf("limit 5 of 30 addresses: %d counts, truncated %v", len(got), tr)
	}
	// a unit administrator's orgs; time range
	got, _ = count(audit.CountQuery{By: audit.ByAPI}, audit.Scope{Orgs: []string{"org-2"}})
	if len(got) != 2 || got[0].Count+got[1].Count != 6 {
		t.Fatalf("org-2 only: %+v", got)
	}
	got, _ = count(audit.CountQuery{By: audit.ByAPI, Filter: audit.Query{From: base.Add(10 * time.Minute), To: base.Add(20 * time.Minute)}}, all)
	if len(got) != 1 || got[0].Count != 10 {
		t.Fatalf("10 minutes: %+v", got)
	}
	for _, bad := range []audit.CountQuery{{}, {By: audit.ByAPI, Limit: audit.MaxCountLimit + 1}, {By: audit.ByAPI, UTCOffset: 15 * time.Hour},
		{By: audit.ByAPI, Filter: audit.Query{From: base, To: base}}} {
		if _, _, err := audit.Counts(ctx, st, all, bad); err == nil {
			t.Errorf("counts %+v accepted", bad)
		}
	}
	if _, _, err := audit.Counts(ctx, st, audit.Scope{}, audit.CountQuery{By: audit.ByAPI}); err == nil {
		t.Error("counts without a scope accepted")
	}
}
