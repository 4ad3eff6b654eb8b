package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
	"github.com/uias/uias/services/audit/auditbench"
)

// BenchmarkAnalytics: analytics questions over a log of
// UIAS_AUDIT_BENCH_ANALYTICS_RECORDS records (default 200,000; about 10%
// are logins), each against the floor of reading the same rows without
// aggregating them (SELECT of the grouped column with the same WHERE),
// alternating question and floor so that the load of a shared machine
// falls on both alike (docs/benchmarks-audit.md).
func BenchmarkAnalytics(b *testing.B) {
	n := benchSize("UIAS_AUDIT_BENCH_ANALYTICS_RECORDS", 200000)
	db, st := benchDB(b, false)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	plainInsert(b, db, auditbench.Records("an", n, base), 0, 2000)
	ctx := context.Background()
	all := audit.Scope{All: true}
	a := analytics.New(st, analytics.Options{Now: func() time.Time { return base.Add(time.Duration(n) * 100 * time.Millisecond) }})
	logins := "api IN ('authenticate', 'authenticate.finger_bypass', 'sso.login', 'admin.login')"
	floor := func(b *testing.B, col, where string) int {
		b.Helper()
		rows, err := db.QueryContext(ctx, "SELECT "+col+" FROM audit_records WHERE "+where)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		k := 0
		var v any
		for rows.Next() {
			if err := rows.Scan(&v); err != nil {
				b.Fatal(err)
			}
			k++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		return k
	}
	for _, q := range []struct {
		name, col, where string
		ask              func() error
	}{
		{"failed-logins-by-person", "subject", logins + " AND result IN ('failure', 'denied')", func() error {
			_, _, err := a.FailedLogins(ctx, all, analytics.Range{}, analytics.BySubject, 100)
			return err
		}},
		{"login-peaks-by-hour", "time_ms", logins + " AND result = 'success'", func() error {
			_, err := a.LoginPeaks(ctx, all, analytics.Range{}, analytics.ByHourOfDay, 8*time.Hour)
			return err
		}},
		{"absences-30-days", "subject", logins + " AND result = 'success'", func() error {
			_, _, err := a.Absences(ctx, all, 30, 100)
			return err
		}},
	} {
		b.Run(q.name, func(b *testing.B) {
			var ours, flo time.Duration
			rows := 0
			for b.Loop() {
				t0 := time.Now()
				if err := q.ask(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				rows = floor(b, q.col, q.where)
				ours, flo = ours+t1.Sub(t0), flo+time.Since(t1)
			}
			k := float64(b.N)
			b.ReportMetric(ms(ours)/k, "ms/question")
			b.ReportMetric(ms(flo)/k, "floor-ms/read")
			b.ReportMetric(float64(ours)/float64(flo), "ratio")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
