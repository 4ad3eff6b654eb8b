package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/audit"
)

// testBackup: the security auditor's archives on demand. A backup of the
// records older than a time writes verifiable archive files (named apart
// from retention's) and removes nothing; retention of the same records
// afterwards is not blocked; a removal by the auditor archives and removes
// as retention does; the records of archives are never removed (they stay
// queryable, Verify checks them by inclusion proof and finds one
// changed); a time missing or in the future is refused; records beyond the
// latest checkpoint are left and said so; nothing to archive is no error.
func testBackup(t *testing.T, s Subject) {
	ctx := context.Background()
	l, clk := newLog(t, s, 10)
	recs := Records("bak", 50)
	for i := 0; i < 50; i += 10 {
		appendAll(t, l, recs[i:i+10])
	}
	known, err := audit.VerifiersFromKeys(l.Signer().VerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := recs[49].Time.Add(time.Hour)
	req := func(before time.Time, remove bool) audit.ArchiveRequest {
		return audit.ArchiveRequest{Before: before, Remove: remove, Actor: "user:aud", Dir: dir, MaxPerArchive: 10}
	}
	verifyFile := func(a audit.ArchiveResult) {
		t.Helper()
		f, err := os.Open(a.File)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := audit.VerifyArchive(f, known)
		if err != nil || r.Problem != nil || r.Records != a.To-a.From {
			t.Fatalf("archive %s: %+v %v", a.File, r, err)
		}
	}

	// refused: no time, a time in the future
	for name, before := range map[string]time.Time{"no time": {}, "the future": now.Add(time.Minute)} {
		if o, err := l.ArchiveBefore(ctx, req(before, false), now); apierr.CodeOf(err) != apierr.InvalidArgument || o != nil {
			t.Fatalf("archive before %s: %+v %v, want INVALID_ARGUMENT", name, o, err)
		}
	}
	// nothing older than the oldest record: no file, no error
	o, err := l.ArchiveBefore(ctx, req(recs[0].Time, false), now)
	if err != nil || o.Records() != 0 || len(o.Archives) != 0 {
		t.Fatalf("archive before the first record: %+v %v", o, err)
	}

	// a backup of records 0-24: three files, nothing removed
	o, err = l.ArchiveBefore(ctx, req(recs[25].Time, false), now)
	if err != nil || o.From != 0 || o.To != 25 || len(o.Archives) != 3 || o.Unsigned {
		t.Fatalf("backup: %+v %v", o, err)
	}
	for _, a := range o.Archives {
		verifyFile(a)
		if !strings.Contains(filepath.Base(a.File), ".backup-") {
			t.Errorf("backup file %s is not named as a backup", a.File)
		}
	}
	if p, _ := s.Store.Pruned(ctx); p != 0 {
		t.Fatalf("a backup removed records: pruned %d", p)
	}
	if _, err := s.Store.GetRecord(ctx, 0); err != nil {
		t.Fatalf("record 0 after a backup: %v", err)
	}
	for i, seq := range []int64{50, 51, 52} {
		r, err := s.Store.GetRecord(ctx, seq)
		if err != nil || !audit.IsArchiveRecord(r) || r.Reason != audit.ReasonBackup || r.Actor != "user:aud" ||
			r.Detail["file"] != filepath.Base(o.Archives[i].File) || r.Detail["sha256"] != o.Archives[i].SHA256 {
			t.Fatalf("record of backup %d: %+v %v", i, r, err)
		}
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Archived != 0 {
		t.Fatalf("verify after a backup: %+v %v", rep, err)
	}
	// a backup claims no removal: records deleted behind the log's back
	// are still caught (tested below, with the log's final state)

	// retention of the same records is not blocked by the backup
	arch, err := l.ApplyRetention(ctx, audit.Retention{Keep: 24 * time.Hour, Dir: dir, MaxPerArchive: 10}, recs[25].Time.Add(24*time.Hour))
	if err != nil || len(arch) != 3 || arch[2].To != 25 || strings.Contains(arch[0].File, ".backup-") {
		t.Fatalf("retention after a backup: %+v %v", arch, err)
	}
	if p, _ := s.Store.Pruned(ctx); p != 25 {
		t.Fatalf("pruned %d after retention, want 25", p)
	}

	// removal by the auditor of everything a checkpoint covers, the six
	// archive records (seq 50-55) among them: they stay
	st, err := l.ArchiveStatusOf(ctx)
	if err != nil || st.LastBackup == nil || st.LastBackup.Reason != audit.ReasonBackup || st.LastArchive == nil ||
		st.LastArchive.Reason != audit.ReasonRetention || st.Pruned != 25 || !st.Oldest.Equal(recs[25].Time) {
		t.Fatalf("archive status after a backup and retention: %+v %v", st, err)
	}
	clk.add(time.Minute)
	if cp, err := l.CheckpointIfDue(ctx); err != nil || cp == nil || cp.Size != 56 {
		t.Fatalf("checkpoint over the archive records: %+v %v", cp, err)
	}
	appendAll(t, l, Records("bak-unsigned", 3)) // 56-58, old times, no checkpoint yet
	later := recs[25].Time.Add(48 * time.Hour)
	o, err = l.ArchiveBefore(ctx, req(later, true), later)
	if err != nil || o.From != 25 || o.To != 56 || len(o.Archives) != 4 || !o.Unsigned || o.Signed != 56 {
		t.Fatalf("removal: %+v %v", o, err)
	}
	cp, _ := s.Store.CheckpointAt(ctx, 56)
	for _, a := range o.Archives {
		verifyFile(a)
	}
	if p, _ := s.Store.Pruned(ctx); p != cp.Size {
		t.Fatalf("pruned %d after the removal, want %d", p, cp.Size)
	}
	if _, err := s.Store.GetRecord(ctx, 30); err == nil {
		t.Fatal("record 30 still stored after its removal")
	}
	for seq := int64(50); seq < 56; seq++ {
		if r, err := s.Store.GetRecord(ctx, seq); err != nil || !audit.IsArchiveRecord(r) {
			t.Fatalf("archive record %d after the removal: %+v %v", seq, r, err)
		}
	}
	res, _, err := s.Store.(audit.QueryStore).QueryRecords(ctx, audit.Query{API: "archive", PageSize: 100})
	reasons := map[string]int{}
	for _, r := range res {
		reasons[r.Reason]++
	}
	if err != nil || reasons[audit.ReasonBackup] != 3 || reasons[audit.ReasonRetention] != 3 || reasons[audit.ReasonRemovedByAuditor] != len(o.Archives) {
		t.Fatalf("archive records queried after the removal: %v %v", reasons, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() || rep.Archived != cp.Size || rep.Kept != 6 {
		t.Fatalf("verify after the removal: %+v %v", rep, err)
	}
	if _, err := l.ProveInclusion(ctx, 52, 0); err != nil {
		t.Fatalf("proof of a kept archive record: %v", err)
	}
	st, err = l.ArchiveStatusOf(ctx)
	if err != nil || st.LastBackup == nil || st.LastBackup.Reason != audit.ReasonRemovedByAuditor || st.LastArchive == nil ||
		st.LastArchive.EventID != st.LastBackup.EventID {
		t.Fatalf("archive status after the removal: %+v %v", st, err)
	}
	if st.BackupDue(24*time.Hour, later) || !st.BackupDue(24*time.Hour, later.Add(24*time.Hour)) || st.BackupDue(0, later.Add(1000*time.Hour)) {
		t.Fatalf("backup due: %+v", st)
	}

	// a kept archive record changed, then one deleted, in the database
	s.Exec(t, "UPDATE audit_records SET actor = 'user:someone-else' WHERE seq = 51")
	if rep, err := l.Verify(ctx); err != nil || rep.OK() || rep.Problem.Seq != 51 {
		t.Fatalf("verify with a kept archive record changed: %+v %v", rep, err)
	}
	s.Exec(t, "UPDATE audit_records SET actor = 'user:aud' WHERE seq = 51")
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify with the record restored: %+v %v", rep, err)
	}
	// ... and one deleted: the record of the removal counted them.
	s.Exec(t, "CREATE TABLE kept_copy AS SELECT * FROM audit_records WHERE seq = 51")
	s.Exec(t, "DELETE FROM audit_records WHERE seq = 51")
	if rep, err := l.Verify(ctx); err != nil || rep.OK() || !strings.Contains(rep.Problem.What, "deleted behind the log's back") {
		t.Fatalf("verify with a kept archive record deleted: %+v %v", rep, err)
	}
	s.Exec(t, "INSERT INTO audit_records SELECT * FROM kept_copy")
	s.Exec(t, "DROP TABLE kept_copy")
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify with the deleted record restored: %+v %v", rep, err)
	}

	// records removed behind the log's back and claimed archived by a
	// backup's record: a backup does not account for removed records
	clk.add(time.Minute)
	if cp, err := l.CheckpointIfDue(ctx); err != nil || cp == nil || cp.Size != 63 {
		t.Fatalf("checkpoint over the removal records: %+v %v", cp, err)
	}
	last := later.Add(time.Hour)
	if o, err := l.ArchiveBefore(ctx, req(last, false), last); err != nil || o.From != 56 || o.To != 63 || o.Unsigned {
		t.Fatalf("backup of the rest: %+v %v", o, err)
	}
	s.Exec(t, "DELETE FROM audit_records WHERE seq < 63 AND event_type <> ?", audit.TypeArchive)
	s.Exec(t, "UPDATE audit_log SET pruned = 63 WHERE id = 1")
	if rep, err := l.Verify(ctx); err != nil || rep.OK() {
		t.Fatalf("records deleted and claimed archived: %+v %v", rep, err)
	}
}

// testBackupPeriod: a backup of a period (the maritime design 2.1.7.1:
// logs are backed up by time period) archives only the records from after
// to before, in files that verify on their own; a removal of a period and
// a period that ends before it starts are refused, nothing archived; a
// period with no record is no error.
func testBackupPeriod(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 10)
	recs := Records("per", 40)
	for i := 0; i < 40; i += 10 {
		appendAll(t, l, recs[i:i+10])
	}
	known, err := audit.VerifiersFromKeys(l.Signer().VerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := recs[39].Time.Add(time.Hour)
	req := audit.ArchiveRequest{After: recs[12].Time, Before: recs[27].Time, Actor: "user:aud", Dir: dir}
	for name, bad := range map[string]audit.ArchiveRequest{
		"a removal of a period": {After: req.After, Before: req.Before, Remove: true, Actor: "user:aud", Dir: dir},
		"a period backwards":    {After: req.Before, Before: req.After, Actor: "user:aud", Dir: dir},
	} {
		if o, err := l.ArchiveBefore(ctx, bad, now); apierr.CodeOf(err) != apierr.InvalidArgument || o != nil {
			t.Fatalf("%s: %+v %v, want INVALID_ARGUMENT", name, o, err)
		}
	}
	o, err := l.ArchiveBefore(ctx, req, now)
	if err != nil || o.From != 12 || o.To != 27 || len(o.Archives) != 1 || o.Unsigned {
		t.Fatalf("backup of records 12 to 26: %+v %v", o, err)
	}
	f, err := os.Open(o.Archives[0].File)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r, err := audit.VerifyArchive(f, known); err != nil || r.Problem != nil || r.Records != 15 {
		t.Fatalf("the period's archive: %+v %v", r, err)
	}
	if p, _ := s.Store.Pruned(ctx); p != 0 {
		t.Fatalf("a backup of a period removed records: pruned %d", p)
	}
	// it is no backup of the log for the reminder: the older records are
	// not in it (review sec22)
	if st, err := l.ArchiveStatusOf(ctx); err != nil || st.LastBackup != nil || st.LastArchive == nil {
		t.Fatalf("archive status after a backup of a period: %+v %v", st, err)
	}
	later := recs[39].Time.Add(time.Minute)
	if o, err := l.ArchiveBefore(ctx, audit.ArchiveRequest{After: later, Before: now, Actor: "user:aud", Dir: dir}, now); err != nil ||
		o.Records() != 0 || len(o.Archives) != 0 {
		t.Fatalf("a period without records: %+v %v", o, err)
	}
}

// testArchiveConcurrent: retention and an auditor's removal of the same
// records at once (one process) archive each record once, and every
// archive record's digest is its file's.
func testArchiveConcurrent(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 10)
	recs := Records("cc", 60)
	for i := 0; i < 60; i += 10 {
		appendAll(t, l, recs[i:i+10])
	}
	dir := t.TempDir()
	now := recs[59].Time.Add(48 * time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		_, err := l.ApplyRetention(ctx, audit.Retention{Keep: 24 * time.Hour, Dir: dir, MaxPerArchive: 7}, now)
		errs <- err
	})
	wg.Go(func() {
		_, err := l.ArchiveBefore(ctx, audit.ArchiveRequest{Before: recs[59].Time.Add(time.Second), Remove: true, Actor: "user:aud",
			Dir: dir, MaxPerArchive: 7}, now)
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{}
	size, err := s.Store.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(0); seq < size; seq++ {
		r, err := s.Store.GetRecord(ctx, seq)
		if err != nil || !audit.IsArchiveRecord(r) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, r.Detail["file"]))
		if err != nil {
			t.Fatalf("the file of archive record %d: %v", seq, err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != r.Detail["sha256"] {
			t.Fatalf("archive record %d: digest %s, file %s has another", seq, r.Detail["sha256"], r.Detail["file"])
		}
		files[r.Detail["file"]] = r.Detail["sha256"]
	}
	if len(files) == 0 {
		t.Fatal("nothing archived")
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
