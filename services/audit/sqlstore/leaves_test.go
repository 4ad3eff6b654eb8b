package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/auditbench"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// TestSQLiteRowByRow is the conformance suite on SQLite with Verify
// reading the log row by row (the path of PostgreSQL, of the old layout
// and of runs ScanLeaves cannot take apart); TestSQLite runs it through
// ScanLeaves.
func TestSQLiteRowByRow(t *testing.T) {
	old := sqlstore.SetLeafRuns(false)
	defer sqlstore.SetLeafRuns(old)
	conformance(t, pstoretest.OpenSQLite)
}

// hostileRecords are records whose leaves take every escape and number
// form of the leaf encoder.
func hostileRecords() []audit.Record {
	recs := auditbench.Records("h", 200, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	recs[1].Reason = "王五 <&> \u2028\u2029 \"q\" \\ \t\n\r\b\f \x01 \x7f"
	recs[2].Subject = "bad utf-8 \xff\xfe end"
	recs[3].Detail = map[string]string{"名前": "张三 \u202e", "z": "", "a": "x\"y", "<": ">&"}
	recs[4].Detail = nil
	recs[5] = audit.Record{EventID: "h-empty", Time: recs[5].Time}
	recs[6].DurationMS = math.Inf(1) // no leaf
	recs[7].DurationMS = 0.1 + 0.2
	recs[8].DurationMS = 5e-324
	recs[9].DurationMS = math.MaxFloat64
	recs[10].DurationMS = -1e-7
	recs[11].DurationMS = 1e21
	recs[12].DurationMS = -0.5
	recs[15].DurationMS = math.Copysign(0, -1) // appended as 0
	recs[13].DurationMS = 123456789.123456789
	recs[14].Time = time.UnixMilli(-62135596800000).UTC()
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 20; i < len(recs); i++ {
		for {
			f := math.Float64frombits(rng.Uint64())
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				recs[i].DurationMS = f
				break
			}
		}
	}
	return recs
}

// ScanLeaves hands out exactly the leaf of each record as GetRecord reads
// it, and its stored tree hashes, in order (SQLite, and PostgreSQL when
// UIAS_TEST_PG_DSN is set).
func TestScanLeavesMatchesRecords(t *testing.T) {
	for name, db := range pstoretest.DBs(t) {
		t.Run(name, func(t *testing.T) { testScanLeavesMatchesRecords(t, db) })
	}
}

func testScanLeavesMatchesRecords(t *testing.T, db *store.DB) {
	ctx := context.Background()
	db = pstoretest.Migrated(t, db, sqlstore.Migrate)
	st := sqlstore.New(db)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{})
	recs := hostileRecords()
	if db.Dialect == store.Postgres {
		recs[2].Subject = "valid utf-8 only \u00ff end" // (PostgreSQL refuses other text)
	}
	for i := 0; i < len(recs); i += 37 {
		if _, err := l.Append(ctx, recs[i:min(i+37, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	for _, lohi := range [][2]int64{{0, -1}, {0, 64}, {17, 150}, {150, -1}, {199, -1}, {200, -1}} {
		lo, hi := lohi[0], lohi[1]
		want := lo
		handled, err := st.ScanLeaves(ctx, lo, hi, func(seq int64, typ string, leaf, hashes []byte) error {
			if seq != want {
				t.Fatalf("[%d, %d): record %d, want %d", lo, hi, seq, want)
			}
			want++
			r, err := st.GetRecord(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			if typ != r.Type || !bytes.Equal(leaf, r.LeafData()) {
				t.Fatalf("record %d: leaf\n%q\nwant\n%q", seq, leaf, r.LeafData())
			}
			k := tlog.StoredHashIndex(0, seq+1) - tlog.StoredHashIndex(0, seq)
			idx := make([]int64, k)
			for j := range idx {
				idx[j] = tlog.StoredHashIndex(0, seq) + int64(j)
			}
			hs, err := st.ReadHashes(ctx, idx)
			if err != nil {
				t.Fatal(err)
			}
			var b []byte
			for _, h := range hs {
				b = append(b, h[:]...)
			}
			if !bytes.Equal(hashes, b) {
				t.Fatalf("record %d: tree hashes differ", seq)
			}
			return nil
		})
		end := hi
		if end < 0 {
			end = int64(len(recs))
		}
		if err != nil || !handled || want != end {
			t.Fatalf("[%d, %d): handled %v, %v, up to %d", lo, hi, handled, err, want)
		}
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Records != int64(len(recs)) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// A run holding a NUL character in a column is taken apart as stored
// (the values reach the leaf whole); a run holding a value of another
// type than its column's (a number stored as text, text stored as a
// blob) is not (Verify reads it row by row); the log still verifies,
// and tampering in such a run is still caught.
func TestScanLeavesDeclines(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	st := sqlstore.New(db)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{})
	recs := hostileRecords()[:50]
	recs[30].Subject = "user:a\x00b"
	recs[31].Detail = map[string]string{"k\x00": "v"}
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	scan := func(lo, hi int64) bool {
		t.Helper()
		handled, err := st.ScanLeaves(ctx, lo, hi, func(seq int64, _ string, leaf, _ []byte) error {
			if r, err := st.GetRecord(ctx, seq); err != nil || !bytes.Equal(leaf, r.LeafData()) {
				t.Fatalf("record %d: leaf\n%q\nwant that of %+v (%v)", seq, leaf, r, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return handled
	}
	if !scan(0, -1) || !scan(30, 32) {
		t.Fatal("runs with NUL characters not taken apart")
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Records != 50 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec("UPDATE audit_records SET time_ms = CAST(time_ms AS TEXT) || 'x' WHERE seq = 40")
	if scan(40, 41) || scan(0, -1) || !scan(0, 40) || !scan(41, -1) {
		t.Fatal("a time stored as text was taken apart")
	}
	if rep, err := l.Verify(ctx); err == nil && rep.OK() {
		t.Fatalf("a time stored as text verified: %+v", rep)
	}
	exec("UPDATE audit_records SET time_ms = CAST(rtrim(time_ms, 'x') AS INTEGER) WHERE seq = 40")
	if !scan(0, -1) {
		t.Fatal("the time restored: not taken apart")
	}
	exec("UPDATE audit_records SET org = CAST('elsewhere' AS BLOB) WHERE seq = 45")
	if scan(45, 46) {
		t.Fatal("an org stored as a blob was taken apart")
	}
	if rep, err := l.Verify(ctx); err != nil || rep.OK() || rep.Problem.Seq != 45 {
		t.Fatalf("an org stored as a blob, read row by row: %+v %v", rep, err)
	}
	exec("UPDATE audit_records SET org = 'org-1' WHERE seq = 45")
	exec("UPDATE audit_records SET org = 'elsewhere' WHERE seq = 31")
	if rep, err := l.Verify(ctx); err != nil || rep.OK() || rep.Problem.Seq != 31 {
		t.Fatalf("a record holding a NUL character changed: %+v %v", rep, err)
	}
}

// The aggregate function of the runs does nothing for a run it was not
// given (called by hand).
func TestLeafRunFunctionByHand(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	var n int
	var v any
	err := db.QueryRowContext(ctx, "SELECT count(*), uias_audit_leaf_run(12345, 1, 2, 3.0, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', "+
		"'j', 'k', 'l', 'm', 'n', NULL) FROM (SELECT 1 UNION ALL SELECT 2)").Scan(&n, &v)
	if err != nil || n != 2 || v != nil {
		t.Fatalf("%d %v %v", n, v, err)
	}
}

// What verify catches through ScanLeaves besides the conformance suite's
// tampering: a detail rewritten as other but equivalent JSON (the leaf is
// built from the stored text as it is), tree hashes stored as text, a
// duration changed in its last bit.
func TestScanLeavesTampering(t *testing.T) {
	cases := map[string]struct {
		sql string
		seq int64
	}{
		"equivalent detail":     {`UPDATE audit_records SET detail = '{ "login":"' || substr(detail, 11) WHERE seq = 12`, 12},
		"tree hashes as text":   {"UPDATE audit_tree SET hashes = CAST(hashes AS TEXT) WHERE seq = 20", 20},
		"duration's last bit":   {"UPDATE audit_records SET duration_ms = duration_ms * (1 + 2.3e-16) WHERE seq = 33", 33},
		"time by a millisecond": {"UPDATE audit_records SET time_ms = time_ms - 1 WHERE seq = 44", 44},
		"tree row deleted":      {"DELETE FROM audit_tree WHERE seq = 7", 7},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
			st := sqlstore.New(db)
			l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}})
			recs := auditbench.Records("t", 60, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
			recs[33].DurationMS = 1.25
			if _, err := l.Append(ctx, recs); err != nil {
				t.Fatal(err)
			}
			var before float64
			_ = db.QueryRowContext(ctx, "SELECT duration_ms FROM audit_records WHERE seq = 33").Scan(&before)
			if _, err := db.ExecContext(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			if name == "duration's last bit" {
				var after float64
				_ = db.QueryRowContext(ctx, "SELECT duration_ms FROM audit_records WHERE seq = 33").Scan(&after)
				if after == before || math.Abs(after-before) > 1e-15 {
					t.Fatalf("duration %v -> %v: not one bit", before, after)
				}
			}
			rep, err := l.Verify(ctx)
			if err != nil || rep.OK() || rep.Problem.Seq != tc.seq {
				t.Fatalf("not caught at %d: %+v %v", tc.seq, rep, err)
			}
			t.Logf("caught: %s", rep.Problem.What)
		})
	}
}

// TestPostgresRowByRow is the conformance suite on PostgreSQL with Verify
// reading the log row by row; TestPostgres runs it through ScanLeaves.
func TestPostgresRowByRow(t *testing.T) {
	open := pstoretest.Postgres(t)
	old := sqlstore.SetLeafRuns(false)
	defer sqlstore.SetLeafRuns(old)
	conformance(t, open)
}

// On PostgreSQL a run holding the separator U+FFFF in a column is not
// taken apart (Verify reads it row by row); the log still verifies, and a
// record changed in such a run, or in another, is still caught.
func TestScanLeavesDeclinesPostgres(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.Postgres(t)(t), sqlstore.Migrate)
	st := sqlstore.New(db)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{})
	recs := auditbench.Records("p", 50, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	recs[30].Subject = "user:a\uffffb"
	recs[35].DurationMS = 0.1 + 0.2
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	scan := func(lo, hi int64) bool {
		t.Helper()
		handled, err := st.ScanLeaves(ctx, lo, hi, func(int64, string, []byte, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return handled
	}
	if scan(0, -1) || scan(30, 31) || !scan(0, 30) || !scan(31, -1) {
		t.Fatal("runs with and without U+FFFF")
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Records != 50 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	for _, tc := range []struct {
		sql string
		seq int64
	}{
		{"UPDATE audit_records SET duration_ms = duration_ms * (1 + 2.3e-16) WHERE seq = 35", 35},
		{"UPDATE audit_records SET org = 'elsewhere' WHERE seq = 31", 31},
		{"UPDATE audit_records SET org = 'elsewhere' WHERE seq = 12", 12},
	} {
		if _, err := db.ExecContext(ctx, tc.sql); err != nil {
			t.Fatal(err)
		}
		if rep, err := l.Verify(ctx); err != nil || rep.OK() || rep.Problem.Seq != tc.seq {
			t.Fatalf("%s: %+v %v", tc.sql, rep, err)
		}
	}
}

// A run is read through a memory mapping of the database file (SQLite),
// and the connection goes back to the pool without one.
func TestScanLeavesMmapPerConnection(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	db.SetMaxOpenConns(1) // the scan's connection is the one asked afterwards
	st := sqlstore.New(db)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{})
	if _, err := l.Append(ctx, auditbench.Records("m", 100, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))); err != nil {
		t.Fatal(err)
	}
	mmap := func() int64 {
		t.Helper()
		var v int64
		if err := db.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var during int64
	handled, err := sqlstore.ScanLeavesOnConn(ctx, st, 0, -1, func(conn *sql.Conn) {
		if err := conn.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&during); err != nil {
			t.Fatal(err)
		}
	}, func(int64, string, []byte, []byte) error { return nil })
	if err != nil || !handled {
		t.Fatalf("scan: %v %v", handled, err)
	}
	if during <= 0 {
		t.Fatalf("mmap_size %d while the run was read", during)
	}
	if after := mmap(); after != 0 {
		t.Fatalf("mmap_size %d after the scan", after)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Records != 100 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if after := mmap(); after != 0 {
		t.Fatalf("mmap_size %d after verify", after)
	}
}
