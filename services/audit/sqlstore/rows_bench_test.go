package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/services/audit/auditbench"
	"github.com/uias/uias/services/audit/sqlstore"
)

// BenchmarkInsertRows: the floor inserts (records only) with 1 row per
// prepared statement against multi-row statements, alternating batch by
// batch on two databases, per CPU-second.
func BenchmarkInsertRows(b *testing.B) {
	n := benchSize("UIAS_AUDIT_BENCH_INGEST_RECORDS", 20000)
	batch := benchSize("UIAS_AUDIT_BENCH_INGEST_BATCH", 2000)
	for _, rows := range []int{64} {
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			recs := auditbench.Records("ev", n, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			one, _ := benchDB(b, false)
			multi, _ := benchDB(b, false)
			var oneCPU, multiCPU time.Duration
			for i := 0; i < n; i += batch {
				part := recs[i:min(i+batch, n)]
				old := sqlstore.SetRowsPerInsert(1)
				cpu := cpuTime()
				plainInsert(b, one, part, int64(i), batch)
				oneCPU += cpuTime() - cpu
				sqlstore.SetRowsPerInsert(rows)
				cpu = cpuTime()
				plainInsert(b, multi, part, int64(i), batch)
				multiCPU += cpuTime() - cpu
				sqlstore.SetRowsPerInsert(old)
			}
			b.ReportMetric(float64(n)/oneCPU.Seconds(), "single-row/cpu-s")
			b.ReportMetric(float64(n)/multiCPU.Seconds(), "multi-row/cpu-s")
		})
	}
}
