package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/auditbench"
	"github.com/uias/uias/services/audit/sqlstore"
)

// Benchmarks of docs/benchmarks-audit.md. Each reports its own figure and
// the floor measured in the same run, and their ratio:
//
//	go test ./sqlstore -run '^$' -bench . -benchtime 1x
//
// UIAS_AUDIT_BENCH_PG=1 also measures ingest on PostgreSQL
// (UIAS_TEST_PG_DSN); UIAS_AUDIT_BENCH_QUERY_RECORDS sets the size of the
// query benchmark's log (default 1,000,000); UIAS_AUDIT_BENCH_INGEST_RECORDS
// and UIAS_AUDIT_BENCH_INGEST_BATCH the ingest's records (50,000) and
// batch size (2,000, the ingest default).

func benchDB(b *testing.B, pg bool) (*store.DB, *sqlstore.Store) {
	b.Helper()
	var db *store.DB
	if pg {
		db = pstoretest.OpenPG(b, os.Getenv(pstoretest.EnvPGDSN))
	} else {
		db = pstoretest.OpenSQLite(b)
	}
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		b.Fatal(err)
	}
	return db, sqlstore.New(db)
}

// plainInsert stores recs with seq from first on, batch by batch, without
// tree hashes, duplicate checks or checkpoints: the floor of ingest.
func plainInsert(b *testing.B, db *store.DB, recs []audit.Record, first int64, batch int) {
	b.Helper()
	ctx := context.Background()
	for i := 0; i < len(recs); i += batch {
		part := recs[i:min(i+batch, len(recs))]
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			return sqlstore.InsertPlain(ctx, db, tx, part, first+int64(i))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIngest: Log.Append (records, tree hashes, duplicate check,
// checkpoints every 1000) in batches of 2,000 against the same inserts
// without the tree, on SQLite (and PostgreSQL with UIAS_AUDIT_BENCH_PG=1),
// alternating batch by batch on two databases (auditbench.MeasureIngest).
func BenchmarkIngest(b *testing.B) {
	dbs := []string{"sqlite"}
	if os.Getenv("UIAS_AUDIT_BENCH_PG") == "1" && os.Getenv(pstoretest.EnvPGDSN) != "" {
		dbs = append(dbs, "postgres")
	}
	n := benchSize("UIAS_AUDIT_BENCH_INGEST_RECORDS", 50000)
	batch := benchSize("UIAS_AUDIT_BENCH_INGEST_BATCH", 2000)
	for _, name := range dbs {
		b.Run(name, func(b *testing.B) {
			var res auditbench.Ingest
			for range b.N {
				fdb, _ := benchDB(b, name == "postgres")
				odb, _ := benchDB(b, name == "postgres")
				var err error
				if res, err = auditbench.MeasureIngest(context.Background(), odb, fdb, n, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Rate, "events/s")
			b.ReportMetric(res.FloorRate, "floor-events/s")
			b.ReportMetric(res.Rate/res.FloorRate, "ratio")
			// per CPU-second of this process (user + system, all threads):
			// what a loaded machine does not distort
			b.ReportMetric(res.RatePerCPU, "events/cpu-s")
			b.ReportMetric(res.FloorRatePerCPU, "floor-events/cpu-s")
			b.ReportMetric(res.RatePerCPU/res.FloorRatePerCPU, "cpu-ratio")
		})
	}
}

// buildLog is a log of n generated records.
func buildLog(b *testing.B, n int) *audit.Log {
	b.Helper()
	l, err := auditbench.BuildLog(context.Background(), pstoretest.OpenSQLite(b), n)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkVerify: Verify of a 200,000-record log (every record read,
// every leaf and tree hash recomputed and compared, 200 checkpoints)
// against plain SHA-256 over the same leaf bytes in memory
// (auditbench.MeasureVerify). "runs" reads the log as Verify does on
// SQLite (a chunk of records and tree rows in one query, ScanLeaves),
// "packed" row by row with the text columns in one value,
// "columns" row by row column by column (as on PostgreSQL).
func BenchmarkVerify(b *testing.B) {
	l := buildLog(b, benchSize("UIAS_AUDIT_BENCH_VERIFY_RECORDS", 200000))
	for _, mode := range []string{"runs", "packed", "columns"} {
		b.Run(mode, func(b *testing.B) {
			oldRuns := sqlstore.SetLeafRuns(mode == "runs")
			defer sqlstore.SetLeafRuns(oldRuns)
			old := sqlstore.SetUnpacked(mode == "columns")
			defer sqlstore.SetUnpacked(old)
			var res auditbench.Verify
			for range b.N {
				var err error
				if res, err = auditbench.MeasureVerify(context.Background(), l); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.Rate, "records/s")
			b.ReportMetric(res.FloorRate, "sha256-records/s")
			b.ReportMetric(res.Rate/res.FloorRate, "ratio")
			b.ReportMetric(res.RatePerCPU, "records/cpu-s")
		})
	}
}

// BenchmarkInclusionProof: ProveInclusion of random records of a
// 200,000-record log against the SHA-256 work of checking such a proof
// (auditbench.MeasureProofs).
func BenchmarkInclusionProof(b *testing.B) {
	l := buildLog(b, 200000)
	var res auditbench.Proof
	for range b.N {
		var err error
		if res, err = auditbench.MeasureProofs(context.Background(), l, 2000); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Ours.Nanoseconds())/1000, "µs/proof")
	b.ReportMetric(float64(res.Floor.Nanoseconds())/1000, "floor-µs/proof")
	b.ReportMetric(float64(res.Ours)/float64(res.Floor), "ratio")
	b.ReportMetric(float64(res.Depth), "proof-hashes")
}

// BenchmarkQuery: p99 of filtered queries (first page of 50) over a log
// of UIAS_AUDIT_BENCH_QUERY_RECORDS records (default 1,000,000; stored
// without the tree, which queries do not read) against the floor of the
// p99 of reading one record by its number.
func BenchmarkQuery(b *testing.B) {
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("UIAS_AUDIT_BENCH_QUERY_RECORDS")); err == nil && v > 0 {
		n = v
	}
	db, st := benchDB(b, false)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const chunk = 50000
	for i := 0; i < n; i += chunk {
		plainInsert(b, db, auditbench.Records(fmt.Sprint("q", i), min(chunk, n-i), base.Add(time.Duration(i)*100*time.Millisecond)), int64(i), 1000)
	}
	if _, err := db.ExecContext(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	span := time.Duration(n) * 100 * time.Millisecond
	at := func() time.Time { return base.Add(time.Duration(rng.Int64N(int64(span)))) }
	queries := map[string]func() audit.Query{
		"actor": func() audit.Query { return audit.Query{Actor: "user:u" + strconv.Itoa(rng.IntN(1000))} },
		"subject+result": func() audit.Query {
			return audit.Query{Subject: "user:s" + strconv.Itoa(rng.IntN(5000)), Result: "failure"}
		},
		"app+time range": func() audit.Query {
			t := at()
			return audit.Query{AppID: "app-" + strconv.Itoa(rng.IntN(50)), From: t, To: t.Add(24 * time.Hour)}
		},
		"api+result": func() audit.Query { return audit.Query{API: "admin.login", Result: "denied"} },
		"client ip": func() audit.Query {
			return audit.Query{ClientIP: fmt.Sprintf("10.%d.%d.%d", rng.IntN(8), rng.IntN(250), rng.IntN(250))}
		},
		"time range": func() audit.Query { t := at(); return audit.Query{From: t, To: t.Add(time.Hour)} },
		"subject+text": func() audit.Query {
			return audit.Query{Subject: "user:s" + strconv.Itoa(rng.IntN(5000)), Text: "login1"}
		},
		"actor+time+page2": func() audit.Query {
			return audit.Query{Actor: "user:u" + strconv.Itoa(rng.IntN(1000)), From: base, To: base.Add(span)}
		},
	}
	const rounds = 200
	for range b.N {
		var floorLat []time.Duration
		for range rounds {
			start := time.Now()
			if _, err := st.GetRecord(ctx, rng.Int64N(int64(n))); err != nil {
				b.Fatal(err)
			}
			floorLat = append(floorLat, time.Since(start))
		}
		fp := p99(floorLat)
		var all []time.Duration
		for name, mk := range queries {
			var lat []time.Duration
			for range rounds {
				q := mk()
				start := time.Now()
				recs, next, err := audit.Search(ctx, st, audit.Scope{All: true}, q)
				if err != nil {
					b.Fatal(err)
				}
				if name == "actor+time+page2" && next != "" {
					q.PageToken = next
					if _, _, err := audit.Search(ctx, st, audit.Scope{All: true}, q); err != nil {
						b.Fatal(err)
					}
				}
				lat = append(lat, time.Since(start))
				_ = recs
			}
			b.Logf("%-17s p50 %7.2f ms  p99 %7.2f ms", name, ms(p50(lat)), ms(p99(lat)))
			all = append(all, lat...)
		}
		b.ReportMetric(ms(p99(all)), "p99-ms")
		b.ReportMetric(ms(fp), "floor-p99-ms")
		b.ReportMetric(float64(p99(all))/float64(fp), "ratio")
	}
}

// cpuTime is the CPU time this process used so far.
func cpuTime() time.Duration { return auditbench.CPUTime() }

// benchSize is the positive integer in env, else def.
func benchSize(env string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return def
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func p99(d []time.Duration) time.Duration { return pct(d, 0.99) }
func p50(d []time.Duration) time.Duration { return pct(d, 0.50) }

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
