package component

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/apierr"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// A retention pass whose archive directory cannot be written removes
// nothing, logs an error that names the directory and says the records
// stay, and counts the failure (the alert); once the directory works, the
// next pass archives and records its success.
func TestRetentionUnwritableArchiveDir(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	st := sqlstore.New(db)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}})
	recs := storetest.Records("ret", 20)
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(blocker, "archive")
	core, logs := observer.New(zapcore.InfoLevel)
	reg := prometheus.NewRegistry()
	m := newRetentionMetrics(reg)
	now := recs[19].Time.Add(48 * time.Hour) // every record is past the retention
	ret := audit.Retention{Keep: 24 * time.Hour, Dir: bad}

	retentionPass(ctx, l, ret, zap.New(core), m, now)
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 {
		t.Fatalf("%d error logs, want 1: %+v", len(errs), logs.All())
	}
	fields := errs[0].ContextMap()
	if !strings.Contains(errs[0].Message, "NOT archived") || !strings.Contains(errs[0].Message, "nothing was removed") ||
		fields["archive_dir"] != bad || !strings.Contains(fields["error"].(string), "AUDIT_ARCHIVE_UNWRITABLE") ||
		!strings.Contains(fields["error"].(string), "not a directory") {
		t.Errorf("error log %q %v: want it to say the records stay and name %s", errs[0].Message, fields, bad)
	}
	if got := metric(t, reg, "uias_audit_retention_failures_total"); got != 1 {
		t.Errorf("failures counted %v, want 1", got)
	}
	if got := metric(t, reg, "uias_audit_retention_last_success_timestamp_seconds"); got != 0 {
		t.Errorf("last success %v after a failure, want none", got)
	}
	if p, err := st.Pruned(ctx); p != 0 || err != nil {
		t.Fatalf("pruned %d, %v: records removed without an archive", p, err)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Records != 20 {
		t.Fatalf("verify after the failure: %+v %v", rep, err)
	}

	// The directory fixed: the next pass archives.
	ret.Dir = filepath.Join(t.TempDir(), "archive")
	retentionPass(ctx, l, ret, zap.New(core), m, now)
	if p, _ := st.Pruned(ctx); p != 20 {
		t.Fatalf("pruned %d after the directory was fixed, want 20", p)
	}
	if got := metric(t, reg, "uias_audit_retention_last_success_timestamp_seconds"); got != float64(now.Unix()) {
		t.Errorf("last success %v, want %d", got, now.Unix())
	}
	if got := metric(t, reg, "uias_audit_retention_failures_total"); got != 1 {
		t.Errorf("failures %v after a success, want still 1", got)
	}
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// A backup the server cannot make says why to the security auditor, with
// its reason: an archive directory that cannot be written
// (AUDIT_ARCHIVE_UNWRITABLE, the system's cause, not the path), records
// altered in the database (AUDIT_LOG_DAMAGED, naming them and verify);
// nothing is archived either way (it said "internal error").
func TestBackupRefusalsSayWhy(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	l := audit.NewLog(sqlstore.New(db), storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}})
	recs := storetest.Records("bak", 20)
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := recs[19].Time.Add(time.Hour)
	req := audit.ArchiveRequest{Before: now, Actor: "user:auditor", Dir: filepath.Join(blocker, "archive")}
	_, err := l.ArchiveBefore(ctx, req, now)
	ae, ok := apierr.As(err)
	if !ok || ae.Reason != audit.ReasonArchiveUnwritable || !strings.Contains(ae.Message, "not a directory") || strings.Contains(ae.Message, blocker) {
		t.Fatalf("unwritable directory: %v", err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE audit_records SET result = 'tampered' WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	req.Dir = filepath.Join(t.TempDir(), "archive")
	_, err = l.ArchiveBefore(ctx, req, now)
	if ae, ok := apierr.As(err); !ok || ae.Reason != audit.ReasonLogDamaged || !strings.Contains(ae.Message, "uias ctl audit verify") {
		t.Fatalf("altered records: %v", err)
	}
	if entries, _ := os.ReadDir(req.Dir); len(entries) != 0 {
		t.Fatalf("files written despite the refusal: %v", entries)
	}
}

// Proving a record the log does not have says so (it said the record was
// not in the latest checkpoint yet, as if it would be).
func TestProveMissingRecord(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	l := audit.NewLog(sqlstore.New(db), storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 5, Interval: time.Hour}})
	if _, err := l.Append(ctx, storetest.Records("prv", 10)); err != nil {
		t.Fatal(err)
	}
	_, err := l.ProveInclusion(ctx, 999999, 0)
	if ae, ok := apierr.As(err); !ok || ae.Reason != audit.ReasonBadRange || !strings.Contains(ae.Message, "there is no record 999999: the log has 10 records") {
		t.Fatalf("a record the log does not have: %v", err)
	}
	// a record backed up and removed: says where it is
	out, err := l.ArchiveBefore(ctx, audit.ArchiveRequest{Before: time.Now().Add(time.Hour), Remove: true, Actor: "user:auditor",
		Dir: t.TempDir()}, time.Now().Add(2*time.Hour))
	if err != nil || out.Records() == 0 {
		t.Fatalf("removal: %v %+v", err, out)
	}
	_, err = l.ProveInclusion(ctx, 1, 0)
	if ae, ok := apierr.As(err); !ok || ae.Reason != audit.ReasonArchived || ae.Code != apierr.NotFound ||
		!strings.Contains(ae.Message, "record 1 was backed up and removed") || !strings.Contains(ae.Message, "audit verify --archive") {
		t.Fatalf("a removed record: %v", err)
	}
}

// The retention applies to the peer logs held too (ADR 0029 amendment
// 2): a peer log whose keys are not configured keeps its records, with an
// error logged and counted; with the peer's keys its records past the
// retention are archived and removed up to the peer's checkpoint.
func TestPeerRetentionPass(t *testing.T) {
	ctx := context.Background()
	open := func() *sqlstore.Store {
		db := pstoretest.OpenSQLite(t)
		if err := sqlstore.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		return sqlstore.New(db)
	}
	// the peer's log, on its own store
	pst := open()
	pl := audit.NewLog(pst, storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}})
	recs := storetest.Records("l2a", 25)
	for i := 0; i < 25; i += 10 {
		if _, err := pl.Append(ctx, recs[i:min(i+10, 25)]); err != nil {
			t.Fatal(err)
		}
	}
	var held []audit.Record
	if err := pst.ScanRecords(ctx, 0, func(r *audit.Record) error { held = append(held, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	var cps []audit.Checkpoint
	if err := pst.Checkpoints(ctx, func(c *audit.Checkpoint) error {
		cp, err := audit.CheckpointOf(pl.Signer().Origin(), c.Note)
		cps = append(cps, cp)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	peer := pl.Signer().Origin()
	// level 1
	st := open()
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Hour}})
	if _, err := st.AppendPeer(ctx, audit.PeerBatch{Origin: peer, Records: held, Checkpoints: cps, At: recs[24].Time}); err != nil {
		t.Fatal(err)
	}
	now := recs[24].Time.Add(48 * time.Hour)
	ret := audit.Retention{Keep: 24 * time.Hour, Dir: filepath.Join(t.TempDir(), "archive")}
	core, logs := observer.New(zapcore.InfoLevel)
	reg := prometheus.NewRegistry()
	m := newRetentionMetrics(reg)

	noKeys, err := audit.NewOrigins("l1.audit", st, []audit.PeerKeys{{Origin: peer}})
	if err != nil {
		t.Fatal(err)
	}
	peerRetentionPass(ctx, l, noKeys, ret, zap.New(core), m, now)
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "stay in the database") || metric(t, reg, "uias_audit_retention_failures_total") != 1 {
		t.Fatalf("no keys: %+v", logs.All())
	}
	if ps, _ := st.Peers(ctx); len(ps) != 1 || ps[0].First != 0 {
		t.Fatalf("records removed from a log that cannot be verified: %+v", ps)
	}

	withKeys, err := audit.NewOrigins("l1.audit", st, []audit.PeerKeys{{Origin: peer, VerifierKeys: pl.Signer().VerifierKeys()}})
	if err != nil {
		t.Fatal(err)
	}
	peerRetentionPass(ctx, l, withKeys, ret, zap.New(core), m, now)
	if ps, _ := st.Peers(ctx); len(ps) != 1 || ps[0].First != 20 || ps[0].Size != 25 {
		t.Fatalf("after the pass: %+v (want the records up to the checkpoint of 20 removed)", ps)
	}
	reps, err := withKeys.VerifyPeers(ctx, "")
	if err != nil || len(reps) != 1 || !reps[0].OK() || reps[0].Archived != 20 || reps[0].Records != 5 {
		t.Fatalf("verify after the pass: %+v %v", reps, err)
	}
	if n := len(logs.FilterMessage("peer audit records archived and removed").All()); n != 1 {
		t.Fatalf("%d archives logged, want 1 (0-19): %+v", n, logs.All())
	}
}
