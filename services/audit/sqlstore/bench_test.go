package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
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

// benchRecords are n varied records (1000 actors, 5000 subjects, 50 apps,
// 20 APIs, 3 results, 2000 addresses), one per 100 ms from base.
func benchRecords(prefix string, n int, base time.Time) []audit.Record {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	apis := []string{"authenticate", "admin.login", "admin.auth", "user.create", "user.update", "session.create", "ticket.validate",
		"ticket.issue", "logout", "password.change", "org.create", "app.create", "link.create", "user.lock", "user.unlock",
		"caller.denied", "admin.refused", "group.create", "keys.rotate", "app.update"}
	out := make([]audit.Record, n)
	for i := range out {
		out[i] = audit.Record{EventID: fmt.Sprintf("%s-%d", prefix, i), Type: "audit.x", Component: "identity",
			Time:   base.Add(time.Duration(i) * 100 * time.Millisecond),
			Serial: fmt.Sprintf("%016x", rng.Uint64()), TraceID: fmt.Sprintf("%016x", rng.Uint64()),
			AppID: "app-" + strconv.Itoa(rng.IntN(50)), API: apis[rng.IntN(len(apis))], Actor: "user:u" + strconv.Itoa(rng.IntN(1000)),
			Subject: "user:s" + strconv.Itoa(rng.IntN(5000)), Org: "org-" + strconv.Itoa(rng.IntN(20)),
			Result: []string{"success", "failure", "denied"}[rng.IntN(3)], Reason: "OK", DurationMS: float64(rng.IntN(5000)) / 100,
			ClientIP: fmt.Sprintf("10.%d.%d.%d", rng.IntN(8), rng.IntN(250), rng.IntN(250)),
			Detail:   map[string]string{"login": "login" + strconv.Itoa(rng.IntN(5000))}}
	}
	return out
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
// without the tree, on SQLite (and PostgreSQL with UIAS_AUDIT_BENCH_PG=1).
// The two alternate batch by batch on two databases, so that the load of a
// shared machine falls on both alike.
func BenchmarkIngest(b *testing.B) {
	dbs := []string{"sqlite"}
	if os.Getenv("UIAS_AUDIT_BENCH_PG") == "1" && os.Getenv(pstoretest.EnvPGDSN) != "" {
		dbs = append(dbs, "postgres")
	}
	n := benchSize("UIAS_AUDIT_BENCH_INGEST_RECORDS", 50000)
	batch := benchSize("UIAS_AUDIT_BENCH_INGEST_BATCH", 2000)
	for _, name := range dbs {
		b.Run(name, func(b *testing.B) {
			var ours, floor, oursCPU, floorCPU time.Duration
			for range b.N {
				recs := benchRecords("ev", n, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
				fdb, _ := benchDB(b, name == "postgres")
				_, st := benchDB(b, name == "postgres")
				l := audit.NewLog(st, storetest.Signer(b), audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
				for i := 0; i < n; i += batch {
					part := recs[i:min(i+batch, n)]
					start, cpu := time.Now(), cpuTime()
					plainInsert(b, fdb, part, int64(i), batch)
					floor, floorCPU = floor+time.Since(start), floorCPU+cpuTime()-cpu
					start, cpu = time.Now(), cpuTime()
					if _, err := l.Append(context.Background(), part); err != nil {
						b.Fatal(err)
					}
					ours, oursCPU = ours+time.Since(start), oursCPU+cpuTime()-cpu
				}
			}
			o, f := float64(n*b.N)/ours.Seconds(), float64(n*b.N)/floor.Seconds()
			b.ReportMetric(o, "events/s")
			b.ReportMetric(f, "floor-events/s")
			b.ReportMetric(o/f, "ratio")
			// per CPU-second of this process (user + system, all threads):
			// what a loaded machine does not distort
			oc, fc := float64(n*b.N)/oursCPU.Seconds(), float64(n*b.N)/floorCPU.Seconds()
			b.ReportMetric(oc, "events/cpu-s")
			b.ReportMetric(fc, "floor-events/cpu-s")
			b.ReportMetric(oc/fc, "cpu-ratio")
		})
	}
}

// buildLog appends n records through the log (batches of 1000,
// checkpoints every 1000).
func buildLog(b *testing.B, st *sqlstore.Store, n int) *audit.Log {
	b.Helper()
	l := audit.NewLog(st, storetest.Signer(b), audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
	recs := benchRecords("ev", n, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	for i := 0; i < n; i += 1000 {
		if _, err := l.Append(context.Background(), recs[i:min(i+1000, n)]); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

// BenchmarkVerify: Verify of a 200,000-record log (every leaf and tree
// hash recomputed and compared, 200 checkpoints) against the floor of
// reading the same records in order.
func BenchmarkVerify(b *testing.B) {
	n := benchSize("UIAS_AUDIT_BENCH_VERIFY_RECORDS", 200000)
	_, st := benchDB(b, false)
	l := buildLog(b, st, n)
	ctx := context.Background()
	var ours, floor time.Duration
	for range b.N {
		start := time.Now()
		c := 0
		if err := st.ScanRecords(ctx, 0, func(*audit.Record) error { c++; return nil }); err != nil || c != n {
			b.Fatal(err)
		}
		floor += time.Since(start)
		start = time.Now()
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK() || rep.Records != int64(n) {
			b.Fatalf("verify: %+v %v", rep, err)
		}
		ours += time.Since(start)
	}
	o, f := float64(n*b.N)/ours.Seconds(), float64(n*b.N)/floor.Seconds()
	b.ReportMetric(o, "records/s")
	b.ReportMetric(f, "floor-records/s")
	b.ReportMetric(o/f, "ratio")
}

// BenchmarkInclusionProof: ProveInclusion of random records of a
// 200,000-record log (record read, proof hashes read from SQL) against
// the floor of the SHA-256 work of checking such a proof (1 leaf hash and
// about log2(n) node hashes, in memory).
func BenchmarkInclusionProof(b *testing.B) {
	const n = 200000
	_, st := benchDB(b, false)
	l := buildLog(b, st, n)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	const proofs = 2000
	var ours, floor time.Duration
	var depth int
	for range b.N {
		start := time.Now()
		var last *audit.Inclusion
		for range proofs {
			p, err := l.ProveInclusion(ctx, rng.Int64N(n), 0)
			if err != nil {
				b.Fatal(err)
			}
			last = p
		}
		ours += time.Since(start)
		depth = len(last.Proof)
		leaf := last.Record.LeafData()
		start = time.Now()
		var h [32]byte
		for range proofs {
			h = sha256.Sum256(append([]byte{0}, leaf...))
			for range depth {
				h = tlog.NodeHash(h, h)
			}
		}
		floor += time.Since(start)
		_ = h
	}
	o, f := ours/time.Duration(proofs*b.N), floor/time.Duration(proofs*b.N)
	b.ReportMetric(float64(o.Microseconds()), "µs/proof")
	b.ReportMetric(float64(f.Nanoseconds())/1000, "floor-µs/proof")
	b.ReportMetric(float64(o)/float64(f), "ratio")
	b.ReportMetric(float64(depth), "proof-hashes")
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
		plainInsert(b, db, benchRecords(fmt.Sprint("q", i), min(chunk, n-i), base.Add(time.Duration(i)*100*time.Millisecond)), int64(i), 1000)
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

// benchSize is the positive integer in env, else def.
// cpuTime is the CPU time this process used so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
