package component

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// The start's witness: the first start keeps the log's latest checkpoint
// in the file (and says it starts one); a database whose log was cut off
// at its end stops the start with an error that names the file and says
// how to accept a restore; once the file is moved away the start goes on,
// and logs that the witness started again.
func TestStartWitness(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	st := sqlstore.New(db)
	signer := storetest.Signer(t)
	path := filepath.Join(t.TempDir(), "audit-witness.note")
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)

	// a new log: nothing to keep yet
	w, err := openWitness(ctx, path, signer, st, log)
	if err != nil || w.Latest() != nil {
		t.Fatalf("new log: %v %v", w.Latest(), err)
	}
	if logs.FilterLevelExact(zapcore.WarnLevel).Len() != 0 {
		t.Fatalf("warnings for a new log: %v", logs.All())
	}
	l := audit.NewLog(st, signer, audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}, Witness: w,
		OnCheckpoint: func(c audit.Checkpoint) { advanceWitness(w, st, c, log) }})
	recs := storetest.Records("start", 300)
	for i := 0; i < len(recs); i += 25 { // a checkpoint after every batch
		if _, err := l.Append(ctx, recs[i:i+25]); err != nil {
			t.Fatal(err)
		}
	}
	if w.Latest() == nil || w.Latest().Size != 300 {
		t.Fatalf("witness after 300 records: %v", w.Latest())
	}
	// a start with a whole log
	if w, err = openWitness(ctx, path, signer, st, log); err != nil || w.Latest().Size != 300 {
		t.Fatalf("start with a whole log: %v %v", w.Latest(), err)
	}

	// the end cut off in the database (records, tree rows, checkpoints
	// and size): the start stops
	for _, q := range []string{"DELETE FROM audit_records WHERE seq >= 144", "DELETE FROM audit_tree WHERE seq >= 144",
		"DELETE FROM audit_checkpoints WHERE size > 144", "UPDATE audit_log SET size = 144"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	logs.TakeAll()
	_, err = openWitness(ctx, path, signer, st, log)
	if err == nil || !strings.Contains(err.Error(), "cut off") || !strings.Contains(err.Error(), "records 144 to 299 are missing") ||
		!strings.Contains(err.Error(), "move "+path+" away") {
		t.Fatalf("start with a cut-off log: %v", err)
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "does not start") || errs[0].ContextMap()["witness_file"] != path ||
		errs[0].ContextMap()["witnessed_size"] != int64(300) {
		t.Fatalf("error log: %+v", logs.All())
	}

	// the operator accepts the database as it is (a restore): the file
	// moved away, the start goes on and says so
	if err := os.Rename(path, path+".before-restore"); err != nil {
		t.Fatal(err)
	}
	logs.TakeAll()
	if w, err = openWitness(ctx, path, signer, st, log); err != nil || w.Latest() == nil || w.Latest().Size > 144 {
		t.Fatalf("start after the witness was moved away: %v %v", w.Latest(), err)
	}
	warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 1 || !strings.Contains(warns[0].Message, "witness file absent") || warns[0].ContextMap()["witness_file"] != path {
		t.Fatalf("warning of the new witness: %+v", logs.All())
	}

	// no witness file configured: a warning, no witness
	logs.TakeAll()
	if w, err = openWitness(ctx, "", signer, st, log); err != nil || w != nil {
		t.Fatalf("no witness file: %v %v", w, err)
	}
	if logs.FilterLevelExact(zapcore.WarnLevel).Len() != 1 {
		t.Fatalf("no warning without a witness file: %v", logs.All())
	}
}

// The running component's witness pass: it follows the log's latest
// checkpoint (signed by this process or another replica), and a cut made
// while it runs is logged once as an error and raises
// uias_audit_witness_problem.
func TestWitnessPass(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	st := sqlstore.New(db)
	signer := storetest.Signer(t)
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	reg := prometheus.NewRegistry()
	m := newWitnessMetrics(reg)
	w, err := openWitness(ctx, filepath.Join(t.TempDir(), "audit-witness.note"), signer, st, log)
	if err != nil {
		t.Fatal(err)
	}
	// another replica's log: no OnCheckpoint here
	other := audit.NewLog(st, signer, audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}})
	recs := storetest.Records("pass", 100)
	for i := 0; i < len(recs); i += 20 {
		if _, err := other.Append(ctx, recs[i:i+20]); err != nil {
			t.Fatal(err)
		}
		if bad := witnessPass(ctx, w, st, log, m, false); bad || w.Latest().Size != int64(i+20) {
			t.Fatalf("pass after %d records: bad %v, witness %d", i+20, bad, w.Latest().Size)
		}
	}
	if got := metric(t, reg, "uias_audit_witness_size"); got != 100 {
		t.Errorf("witness size %v, want 100", got)
	}
	for _, q := range []string{"DELETE FROM audit_records WHERE seq >= 50", "DELETE FROM audit_tree WHERE seq >= 50",
		"DELETE FROM audit_checkpoints WHERE size > 50", "UPDATE audit_log SET size = 50"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	logs.TakeAll()
	bad := witnessPass(ctx, w, st, log, m, false)
	bad = witnessPass(ctx, w, st, log, m, bad)
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if !bad || len(errs) != 1 || !strings.Contains(errs[0].ContextMap()["problem"].(string), "records 50 to 99 are missing") {
		t.Fatalf("passes over a cut-off log: bad %v, logs %+v", bad, logs.All())
	}
	if got := metric(t, reg, "uias_audit_witness_problem"); got != 1 {
		t.Errorf("witness problem %v, want 1", got)
	}
	if w.Latest().Size != 100 {
		t.Errorf("the witness followed the cut-off log to %d", w.Latest().Size)
	}
}
