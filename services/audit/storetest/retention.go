package storetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/services/audit"
)

// testRetention: records older than the retention that a checkpoint covers
// are archived to files (at most MaxPerArchive each) and removed, each
// archive recorded in the log; the log, its proofs and the archives still
// verify; an archive edited, cut, reordered or padded does not; removing
// records behind the log's back and claiming them archived is caught; and
// records that do not match their checkpoint are never archived.
func testRetention(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 10)
	recs := Records("ret", 50)
	for i := 0; i < 50; i += 10 {
		appendAll(t, l, recs[i:i+10])
	}
	known, err := audit.VerifiersFromKeys(l.Signer().VerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keep := 24 * time.Hour
	now := recs[25].Time.Add(keep) // records 0-24 are older than the retention

	// An archive directory that cannot be written (here: below a regular
	// file, which even root cannot create): nothing is archived, nothing
	// removed, and the error names the directory.
	blocker := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(blocker, "archive")
	if a, err := l.ApplyRetention(ctx, audit.Retention{Keep: keep, Dir: bad, MaxPerArchive: 10}, now); err == nil || len(a) != 0 ||
		!strings.Contains(err.Error(), audit.ReasonArchiveUnwritable) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("retention into an unwritable directory: %+v, %v; want %s and its cause", a, err, audit.ReasonArchiveUnwritable)
	}
	if p, err := s.Store.Pruned(ctx); p != 0 || err != nil {
		t.Fatalf("pruned %d after a failed archive, %v", p, err)
	}
	for _, seq := range []int64{0, 24} {
		if _, err := s.Store.GetRecord(ctx, seq); err != nil {
			t.Fatalf("record %d after a failed archive: %v", seq, err)
		}
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Archived != 0 {
		t.Fatalf("verify after a failed archive: %+v %v", rep, err)
	}
	arch, err := l.ApplyRetention(ctx, audit.Retention{Keep: keep, Dir: dir, MaxPerArchive: 10}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(arch) != 3 || arch[0].From != 0 || arch[0].To != 10 || arch[2].From != 20 || arch[2].To != 25 {
		t.Fatalf("archives %+v, want [0,10) [10,20) [20,25)", arch)
	}
	if p, err := s.Store.Pruned(ctx); p != 25 || err != nil {
		t.Fatalf("pruned %d, %v", p, err)
	}
	if _, err := s.Store.GetRecord(ctx, 24); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("archived record still stored: %v", err)
	}
	if again, err := l.ApplyRetention(ctx, audit.Retention{Keep: keep, Dir: dir, MaxPerArchive: 10}, now); err != nil || len(again) != 0 {
		t.Fatalf("second pass archived %+v, %v", again, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() || rep.Archived != 25 || rep.Records != 53-25 {
		t.Fatalf("verify after retention: %+v %v", rep, err)
	}
	if _, err := l.ProveInclusion(ctx, 30, 50); err != nil {
		t.Fatalf("proof of a kept record: %v", err)
	}
	if _, err := l.ProveConsistency(ctx, 10, 50); err != nil {
		t.Fatalf("consistency over archived records: %v", err)
	}
	res, _, err := s.Store.(audit.QueryStore).QueryRecords(ctx, audit.Query{API: "archive", PageSize: 10})
	if err != nil || len(res) != 3 || res[0].Type != audit.TypeArchive || res[0].Detail["sha256"] != arch[2].SHA256 {
		t.Fatalf("archive records in the log: %+v %v", res, err)
	}
	for _, a := range arch {
		f, err := os.Open(a.File)
		if err != nil {
			t.Fatal(err)
		}
		r, err := audit.VerifyArchive(f, known)
		f.Close()
		if err != nil || r.Problem != nil || r.Records != a.To-a.From {
			t.Fatalf("archive %s: %+v %v", a.File, r, err)
		}
	}

	// Archives altered after the fact.
	orig, err := os.ReadFile(arch[1].File) // records 10-19
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	lines = lines[:len(lines)-1] // the empty piece after the last newline
	join := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	swapped := append([]string{}, lines...)
	swapped[3], swapped[4] = swapped[4], swapped[3]
	for name, tc := range map[string]struct {
		data []byte
		seq  int64
	}{
		// (which record changed cannot be told: none is named)
		"a record edited":  {[]byte(strings.Replace(string(orig), `"result":"success"`, `"result":"failure"`, 1)), -1},
		"a record removed": {join(append(append([]string{}, lines[:3]...), lines[4:]...)...), 12},
		"two swapped":      {join(swapped...), 12},
		"cut off":          {join(lines[:6]...), 15},
		"a record added":   {join(append(append([]string{}, lines...), lines[len(lines)-1])...), 19},
	} {
		r, err := audit.VerifyArchive(bytes.NewReader(tc.data), known)
		if err != nil || r.Problem == nil || r.Problem.Seq != tc.seq {
			t.Errorf("archive with %s: %+v %v, want a problem at record %d", name, r, err, tc.seq)
		}
	}
	other, _ := audit.VerifiersFromKeys(Signer(t).VerifierKeys())
	if r, err := audit.VerifyArchive(bytes.NewReader(orig), other); err != nil || r.Problem == nil || !r.Problem.Unverified {
		t.Errorf("archive checked with another log's keys: %+v %v", r, err)
	}
	if _, err := audit.VerifyArchive(strings.NewReader("hello\n"), known); err == nil {
		t.Error("a file that is no archive verified")
	}

	// Records that do not match their checkpoint are not archived.
	s.Exec(t, "UPDATE audit_records SET result = 'tampered' WHERE seq = 26")
	later := recs[49].Time.Add(keep + time.Hour)
	if a, err := l.ApplyRetention(ctx, audit.Retention{Keep: keep, Dir: dir}, later); err == nil || len(a) != 0 {
		t.Fatalf("tampered records archived: %+v %v", a, err)
	}
	if p, _ := s.Store.Pruned(ctx); p != 25 {
		t.Fatalf("pruned %d after a refused archive", p)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 3 {
		t.Fatalf("files after a refused archive: %v", files)
	}
	s.Exec(t, "UPDATE audit_records SET result = ? WHERE seq = 26", recs[26].Result)

	// Records removed behind the log's back and claimed archived.
	s.Exec(t, "DELETE FROM audit_records WHERE seq < 30")
	s.Exec(t, "UPDATE audit_log SET pruned = 30 WHERE id = 1")
	if rep, err := l.Verify(ctx); err != nil || rep.OK() {
		t.Fatalf("records deleted and claimed archived: %+v %v", rep, err)
	}
}
