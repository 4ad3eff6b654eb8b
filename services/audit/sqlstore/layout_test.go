package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// TestOldLayoutStaysVerifiable: a log written by the first layout (one
// audit_hashes row per tree hash, before migration 0004) is migrated, then
// grows in the new one (one audit_tree row per record); the whole log
// verifies, proofs across both parts check, and tampering with either part
// is caught.
func TestOldLayoutStaysVerifiable(t *testing.T) {
	for name, db := range pstoretest.DBs(t) {
		t.Run(name, func(t *testing.T) { testOldLayout(t, db) })
	}
}

func testOldLayout(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if err := sqlstore.MigrateBefore(ctx, db, 4); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	signer := storetest.Signer(t)
	// the old layout, as the first version wrote it
	const old = 37
	recs := storetest.Records("old", old)
	var mem memHashes
	for i := range recs {
		recs[i].Seq = int64(i)
		hs, err := tlog.StoredHashes(int64(i), recs[i].LeafData(), mem)
		if err != nil {
			t.Fatal(err)
		}
		mem = append(mem, hs...)
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error { return sqlstore.InsertPlain(ctx, db, tx, recs, 0) }); err != nil {
		t.Fatal(err)
	}
	for i, h := range mem {
		exec("INSERT INTO audit_hashes (idx, hash) VALUES (?, ?)", i, h[:])
	}
	exec("UPDATE audit_log SET size = ?", old)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, size := range []int64{20, old} {
		root, err := tlog.TreeHash(size, mem)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := signer.Sign(size, root, at)
		if err != nil {
			t.Fatal(err)
		}
		exec("INSERT INTO audit_checkpoints (size, root, time_ms, note) VALUES (?, ?, ?, ?)", cp.Size, cp.Root[:], cp.Time.UnixMilli(), string(cp.Note))
	}

	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	st := sqlstore.New(db)
	l := audit.NewLog(st, signer, audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}})
	more := storetest.Records("new", 50)
	for i := 0; i < len(more); i += 7 {
		if _, err := l.Append(ctx, more[i:min(i+7, len(more))]); err != nil {
			t.Fatal(err)
		}
	}
	var oldRows, treeRows int
	_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_hashes_v1").Scan(&oldRows)
	_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM audit_tree").Scan(&treeRows)
	if oldRows != len(mem) || treeRows != 50 {
		t.Fatalf("%d old hash rows (want %d), %d tree rows (want 50)", oldRows, len(mem), treeRows)
	}
	known, err := audit.VerifiersFromKeys(signer.VerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, st, signer.Origin(), known)
	if err != nil || !rep.OK() || rep.Records != old+50 || rep.Signed <= old || rep.Checkpoints < 5 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	var cps []*audit.Checkpoint
	_ = st.Checkpoints(ctx, func(c *audit.Checkpoint) error { cps = append(cps, c); return nil })
	for _, cp := range cps {
		for n := int64(0); n < cp.Size; n++ {
			inc, err := l.ProveInclusion(ctx, n, cp.Size)
			if err != nil {
				t.Fatalf("prove %d in %d: %v", n, cp.Size, err)
			}
			if err := tlog.CheckRecord(inc.Proof, cp.Size, cp.Root, n, inc.Record.LeafHash()); err != nil {
				t.Fatalf("proof of %d in %d: %v", n, cp.Size, err)
			}
		}
	}
	for i, o := range cps {
		for _, nw := range cps[i:] {
			c, err := l.ProveConsistency(ctx, o.Size, nw.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckTree(c.Proof, nw.Size, nw.Root, o.Size, o.Root); err != nil {
				t.Fatalf("consistency %d -> %d: %v", o.Size, nw.Size, err)
			}
		}
	}
	// tampering with the old part, then the new part
	exec("UPDATE audit_hashes_v1 SET hash = ? WHERE idx = ?", make([]byte, 32), tlog.StoredHashIndex(0, 9))
	if rep, err := audit.Verify(ctx, st, signer.Origin(), known); err != nil || rep.OK() || rep.Problem.Seq != 9 {
		t.Fatalf("an old tree hash changed: %+v %v", rep, err)
	}
	exec("UPDATE audit_hashes_v1 SET hash = ? WHERE idx = ?", mem[tlog.StoredHashIndex(0, 9)][:], tlog.StoredHashIndex(0, 9))
	exec("UPDATE audit_records SET result = 'forged' WHERE seq = 60")
	if rep, err := audit.Verify(ctx, st, signer.Origin(), known); err != nil || rep.OK() || rep.Problem.Seq != 60 {
		t.Fatalf("a new record changed: %+v %v", rep, err)
	}
}

// memHashes is an in-memory tlog storage.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}
