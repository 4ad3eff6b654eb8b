package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// cutOff removes the end of the log in the database from seq on, with the
// checkpoints that cover it, as someone with write access to the database
// can: the log left verifies whole by itself.
func cutOff(t *testing.T, db *store.DB, seq int64) {
	t.Helper()
	for _, q := range []string{
		"DELETE FROM audit_records WHERE seq >= ?",
		"DELETE FROM audit_tree WHERE seq >= ?",
		"DELETE FROM audit_checkpoints WHERE size > ?",
		"UPDATE audit_log SET size = ?",
	} {
		if _, err := db.Exec(q, seq); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// witnessedLog is a log of 300 records on SQLite (a checkpoint after every batch of 25)
// whose witness file is advanced with every checkpoint, as the component
// does.
func witnessedLog(t *testing.T) (*audit.Log, *sqlstore.Store, *store.DB, string) {
	t.Helper()
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	st := sqlstore.New(db)
	signer := storetest.Signer(t)
	path := filepath.Join(t.TempDir(), "data", "audit-witness.note")
	w, err := audit.OpenWitness(path, signer)
	if err != nil || w.Latest() != nil {
		t.Fatalf("a new witness: %v %v", w.Latest(), err)
	}
	l := audit.NewLog(st, signer, audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}, Witness: w,
		OnCheckpoint: func(c audit.Checkpoint) {
			if p, err := w.Advance(ctx, st, c); p != nil || err != nil {
				t.Errorf("witness not advanced to %d: %v %v", c.Size, p, err)
			}
		}})
	recs := storetest.Records("wit", 300)
	for i := 0; i < len(recs); i += 25 { // a growing log, in batches
		if _, err := l.Append(ctx, recs[i:i+25]); err != nil {
			t.Fatal(err)
		}
		if c := w.Latest(); c == nil || c.Size != int64(i+25) {
			t.Fatalf("after %d records the witness keeps %v, want the checkpoint of size %d", i+25, c, i+25)
		}
		if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
			t.Fatalf("verify of a growing log: %+v %v", rep, err)
		}
	}
	return l, st, db, path
}

// A growing log extends its witness; the file is the signed checkpoint,
// mode 0600, and reads back as what was kept.
func TestWitnessGrowingLog(t *testing.T) {
	l, st, _, path := witnessedLog(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness file: %v %v, want mode 0600", fi, err)
	}
	again, err := audit.OpenWitness(path, l.Signer())
	if err != nil || again.Latest() == nil || again.Latest().Size != 300 || again.Latest().Root != l.Witness().Latest().Root {
		t.Fatalf("witness read back: %+v %v", again.Latest(), err)
	}
	if p, err := again.Check(context.Background(), st); p != nil || err != nil {
		t.Fatalf("check of the whole log: %v %v", p, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// a smaller or equal checkpoint does not move it back
	cp, _ := st.CheckpointAt(context.Background(), 150)
	if p, err := again.Advance(context.Background(), st, *cp); p != nil || err != nil || again.Latest().Size != 300 {
		t.Fatalf("advance to an older checkpoint: %v %v, keeps %d", p, err, again.Latest().Size)
	}
}

// The end of the log cut off in the database with its checkpoints: the
// log verifies whole by itself (the defect), but not against the witness,
// neither the running log's nor one read from the file at a start. Once
// the file is removed (a restore accepted), the log is accepted as it is.
func TestWitnessCatchesCutOffEnd(t *testing.T) {
	ctx := context.Background()
	l, st, db, path := witnessedLog(t)
	cutOff(t, db, 144)

	known, err := audit.VerifiersFromKeys(l.Signer().VerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(ctx, st, l.Signer().Origin(), known); err != nil || !rep.OK() || rep.Records != 144 {
		t.Fatalf("the cut-off log by itself: %+v %v (the checkpoints covering the end are gone too)", rep, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || rep.OK() || rep.Problem.Seq != 144 || rep.Problem.Checkpoint != 300 ||
		!strings.Contains(rep.Problem.What, "records 144 to 299 are missing") || !strings.Contains(rep.Problem.What, path) ||
		!strings.Contains(rep.Problem.What, "log cut off") {
		t.Fatalf("verify with the witness: %+v %v", rep.Problem, err)
	}
	// at a start: the witness read from its file
	w, err := audit.OpenWitness(path, l.Signer())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := w.Check(ctx, st); err != nil || p == nil || p.Seq != 144 {
		t.Fatalf("check at a start: %v %v", p, err)
	}
	// the witness does not follow the cut-off log
	latest, _ := st.LatestCheckpoint(ctx)
	if p, err := w.Advance(ctx, st, *latest); err != nil || w.Latest().Size != 300 {
		t.Fatalf("advance to the cut-off log's checkpoint %d: %v %v, keeps %d", latest.Size, p, err, w.Latest().Size)
	}

	// The cut-off log grows again past the witnessed size: other records
	// at 144 on, so the first 300 are no longer those witnessed.
	l2 := audit.NewLog(st, l.Signer(), audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}, Witness: w})
	if _, err := l2.Append(ctx, storetest.Records("again", 200)); err != nil {
		t.Fatal(err)
	}
	rep, err = l2.Verify(ctx)
	if err != nil || rep.OK() || !strings.Contains(rep.Problem.What, "rewritten or replaced") {
		t.Fatalf("verify of the log grown again: %+v %v", rep.Problem, err)
	}
	// and no checkpoint is signed of it: two signed views of the log,
	// one not extending the other, must never exist (trial11 D1)
	latest, _ = st.LatestCheckpoint(ctx)
	if latest.Size > 144 {
		t.Fatalf("a checkpoint of size %d was signed over the log that does not extend the witnessed one", latest.Size)
	}
	if cp, err := l2.CheckpointIfDue(ctx); cp != nil || err != nil {
		t.Fatalf("checkpoint when due over the regrown log: %+v %v", cp, err)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "\n300\n") {
		t.Fatalf("the witness file changed:\n%s", b)
	}

	// The operator accepts the log as it is now (a restore from backup):
	// the file removed, a new witness starts from the log's checkpoint.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w, err = audit.OpenWitness(path, l.Signer())
	if err != nil || w.Latest() != nil {
		t.Fatalf("witness after its file was removed: %v %v", w.Latest(), err)
	}
	if p, err := w.Advance(ctx, st, *latest); p != nil || err != nil || w.Latest().Size != latest.Size {
		t.Fatalf("a new witness: %v %v", p, err)
	}
	l3 := audit.NewLog(st, l.Signer(), audit.LogOptions{Witness: w, Policy: audit.Policy{Every: 10, Interval: time.Hour}})
	if rep, err := l3.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify after the restore was accepted: %+v %v", rep.Problem, err)
	}
	// checkpoints are signed again
	if cp, err := l3.CheckpointIfDue(ctx); err != nil || cp == nil || cp.Size != 344 {
		t.Fatalf("checkpoint after the restore was accepted: %+v %v", cp, err)
	}
}

// Removing the witnessed checkpoint's row alone, or changing the witness
// file, is found too.
func TestWitnessCheckpointRowAndFile(t *testing.T) {
	ctx := context.Background()
	l, st, db, path := witnessedLog(t)
	if _, err := db.Exec("DELETE FROM audit_checkpoints WHERE size = 300"); err != nil {
		t.Fatal(err)
	}
	if p, err := l.Witness().Check(ctx, st); err != nil || p == nil || !strings.Contains(p.What, "was removed from the database") {
		t.Fatalf("checkpoint row removed: %v %v", p, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(b), "\n300\n", "\n30\n", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenWitness(path, l.Signer()); err == nil || !strings.Contains(err.Error(), "does not hold a checkpoint") {
		t.Fatalf("an edited witness file: %v", err)
	}
}

// CheckExtends, the client's check: smaller, another root at the same
// size, a proof that does not check; a true extension passes.
func TestCheckExtends(t *testing.T) {
	ctx := context.Background()
	l, st, _, _ := witnessedLog(t)
	old, _ := st.CheckpointAt(ctx, 150)
	latest, _ := st.CheckpointAt(ctx, 300)
	c, err := l.ProveConsistency(ctx, 150, 300)
	if err != nil {
		t.Fatal(err)
	}
	if p := audit.CheckExtends(*old, *latest, c.Proof); p != nil {
		t.Fatalf("a true extension: %v", p)
	}
	if p := audit.CheckExtends(*latest, *old, nil); p == nil || p.Seq != 150 || !strings.Contains(p.What, "records 150 to 299 are missing") {
		t.Fatalf("smaller: %v", p)
	}
	other := *latest
	other.Root = tlog.Hash{1}
	if p := audit.CheckExtends(*latest, other, nil); p == nil || !strings.Contains(p.What, "another root") {
		t.Fatalf("same size, other root: %v", p)
	}
	if p := audit.CheckExtends(*old, other, c.Proof); p == nil || !strings.Contains(p.What, "does not extend") {
		t.Fatalf("a proof that does not check: %v", p)
	}
}
