// Package storetest is the conformance suite of audit.Store: every
// implementation runs it (sqlstore on SQLite and PostgreSQL). Besides the
// store's own contract it checks the log built on it end to end: exactly
// one record per event id, tree hashes, checkpoints, proofs, and that
// Verify catches rows edited, deleted, inserted, reordered or cut off
// directly in the database.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/audit"
)

// Subject is a fresh, empty store and a way to run SQL on its database
// behind its back ('?' placeholders).
type Subject struct {
	Store audit.Store
	Exec  func(t *testing.T, query string, args ...any)
}

// Run runs the suite; open returns a fresh subject for each test.
func Run(t *testing.T, open func(t *testing.T) Subject) {
	tests := map[string]func(t *testing.T, s Subject){
		"Empty":             testEmpty,
		"AppendAndRead":     testAppendAndRead,
		"ExactlyOnce":       testExactlyOnce,
		"Rollback":          testRollback,
		"TreeHashes":        testTreeHashes,
		"Checkpoints":       testCheckpoints,
		"Proofs":            testProofs,
		"ConcurrentAppends": testConcurrentAppends,
		"VerifyWholeLog":    testVerifyWholeLog,
		"NegativeZero":      testNegativeZero,
		"Query":             testQuery,
		"Retention":         testRetention,
		"Backup":            testBackup,
		"BackupPeriod":      testBackupPeriod,
		"ArchiveConcurrent": testArchiveConcurrent,
		"Counts":            testCounts,
		"Analytics":         testAnalytics,
		"AnalyticsTravel":   testAnalyticsTravel,
		"Peers":             testPeers,
		"PeersFailClosed":   testPeersFailClosed,
		"PeersRetention":    testPeersRetention,
		"PeersBound":        testPeersBound,
		"PeersGaps":         testPeersGaps,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
	t.Run("VerifyCatchesTampering", func(t *testing.T) { testTampering(t, open) })
}

// Signer returns a checkpoint signer on a fresh key ring.
func Signer(t testing.TB) *audit.Signer {
	t.Helper()
	return SignerFor(t, "uias.audit/test")
}

// SignerFor is a signer of log origin with a fresh key (a peer centre's
// log in tests across origins).
func SignerFor(t testing.TB, origin string) *audit.Signer {
	t.Helper()
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ring.Ed25519(audit.KeyPurpose)
	if err != nil {
		t.Fatal(err)
	}
	s, err := audit.NewSigner(origin, keys)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Records returns n records with event ids prefix-0, prefix-1, ...
func Records(prefix string, n int) []audit.Record {
	out := make([]audit.Record, n)
	base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = audit.Record{EventID: fmt.Sprintf("%s-%d", prefix, i), Type: "audit.authenticate", Component: "identity",
			Time: base.Add(time.Duration(i) * time.Second), Serial: fmt.Sprintf("req-%d", i), TraceID: fmt.Sprintf("req-%d", i),
			AppID: "app-1", API: "authenticate", Actor: "app:app-1", Subject: fmt.Sprintf("user:u%d", i%7), Org: "org-1",
			Result: []string{"success", "failure", "denied"}[i%3], Reason: "OK", DurationMS: float64(i%50) + 0.25,
			ClientIP: fmt.Sprintf("198.51.100.%d", i%250), Detail: map[string]string{"n": fmt.Sprint(i)}}
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newLog(t *testing.T, s Subject, every int64) (*audit.Log, *clock) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	return audit.NewLog(s.Store, Signer(t), audit.LogOptions{Policy: audit.Policy{Every: every, Interval: time.Minute}, Now: c.now}), c
}

func appendAll(t *testing.T, l *audit.Log, recs []audit.Record) audit.AppendResult {
	t.Helper()
	res, err := l.Append(context.Background(), recs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

func testEmpty(t *testing.T, s Subject) {
	ctx := context.Background()
	if err := s.Store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Store.Size(ctx); n != 0 || err != nil {
		t.Fatalf("size %d, %v", n, err)
	}
	if c, err := s.Store.LatestCheckpoint(ctx); c != nil || err != nil {
		t.Fatalf("latest checkpoint %v, %v", c, err)
	}
	if _, err := s.Store.CheckpointAt(ctx, 1); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("checkpoint of an empty log: %v", err)
	}
	if _, err := s.Store.GetRecord(ctx, 0); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("record of an empty log: %v", err)
	}
	l, _ := newLog(t, s, 10)
	if _, err := l.Latest(ctx); err == nil {
		t.Fatal("latest checkpoint of an empty log")
	}
	if cp, err := l.CheckpointIfDue(ctx); cp != nil || err != nil {
		t.Fatalf("an empty log signed %v, %v", cp, err)
	}
	rep, err := audit.Verify(ctx, s.Store, l.Signer().Origin(), mustVerifiers(t, l))
	if err != nil || !rep.OK() || rep.Records != 0 {
		t.Fatalf("verify empty log: %+v %v", rep, err)
	}
}

func mustVerifiers(t testing.TB, l *audit.Log) note.Verifiers {
	t.Helper()
	v, err := audit.VerifiersFromKeys(l.Signer().VerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func testAppendAndRead(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 1000)
	recs := Records("ev", 5)
	recs[1].Detail = nil
	recs[2].Detail = map[string]string{"名前": "张三 \u202e", "z": "", "a": "x\"y"}
	recs[3].Subject = "login:a\\u000ab"
	res := appendAll(t, l, recs)
	if res.Added != 5 || res.Duplicates != 0 || res.Size != 5 || res.Checkpoint != nil {
		t.Fatalf("append result %+v", res)
	}
	for i, want := range recs {
		got, err := s.Store.GetRecord(ctx, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		want.Seq = int64(i)
		if got.Seq != want.Seq || got.EventID != want.EventID || !got.Time.Equal(want.Time) || got.Subject != want.Subject ||
			got.DurationMS != want.DurationMS || got.Result != want.Result || got.ClientIP != want.ClientIP ||
			fmt.Sprint(got.Detail) != fmt.Sprint(want.Detail) || got.Component != want.Component || got.Type != want.Type {
			t.Errorf("record %d\n got %+v\nwant %+v", i, got, want)
		}
		if got.LeafHash() != want.LeafHash() {
			t.Errorf("record %d reads back with another leaf hash", i)
		}
	}
	var seen []int64
	err := s.Store.ScanRecords(ctx, 2, func(r *audit.Record) error { seen = append(seen, r.Seq); return nil })
	if err != nil || fmt.Sprint(seen) != "[2 3 4]" {
		t.Fatalf("scan from 2: %v %v", seen, err)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.Store.ScanRecords(ctx, 0, func(*audit.Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("a scan stopped by its function: %v after %d", err, n)
	}
}

func testExactlyOnce(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 1000)
	recs := Records("ev", 10)
	appendAll(t, l, recs[:6])
	// a redelivery of 4..9, with 7 twice in the batch
	again := append(append([]audit.Record{}, recs[4:]...), recs[7])
	res := appendAll(t, l, again)
	if res.Added != 4 || res.Duplicates != 3 || res.Size != 10 {
		t.Fatalf("redelivery: %+v", res)
	}
	res = appendAll(t, l, recs)
	if res.Added != 0 || res.Duplicates != 10 || res.Size != 10 {
		t.Fatalf("full redelivery: %+v", res)
	}
	ids := map[string]int64{}
	err := s.Store.ScanRecords(ctx, 0, func(r *audit.Record) error {
		if prev, ok := ids[r.EventID]; ok {
			t.Errorf("event %s stored at %d and %d", r.EventID, prev, r.Seq)
		}
		ids[r.EventID] = r.Seq
		return nil
	})
	if err != nil || len(ids) != 10 {
		t.Fatalf("%d records, %v", len(ids), err)
	}
	for i, r := range recs {
		if ids[r.EventID] != int64(i) {
			t.Errorf("event %s at %d, want %d", r.EventID, ids[r.EventID], i)
		}
	}
}

func testRollback(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 1000)
	appendAll(t, l, Records("a", 3))
	boom := errors.New("boom")
	err := s.Store.InAppend(ctx, func(tx audit.AppendTx) error {
		recs := Records("b", 2)
		recs[0].Seq, recs[1].Seq = 3, 4
		if err := tx.Append(ctx, recs, tlog.StoredHashIndex(0, 3), []tlog.Hash{{1}, {2}, {3}, {4}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InAppend error %v", err)
	}
	if n, _ := s.Store.Size(ctx); n != 3 {
		t.Fatalf("size %d after a failed append", n)
	}
	if _, err := s.Store.GetRecord(ctx, 3); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("record of a failed append: %v", err)
	}
	// appending at the wrong place is refused
	err = s.Store.InAppend(ctx, func(tx audit.AppendTx) error {
		recs := Records("c", 1)
		recs[0].Seq = 7
		return tx.Append(ctx, recs, tlog.StoredHashIndex(0, 7), []tlog.Hash{{1}})
	})
	if err == nil {
		t.Fatal("an append after a gap was accepted")
	}
	res := appendAll(t, l, Records("b", 2))
	if res.Added != 2 || res.Size != 5 {
		t.Fatalf("append after rollback %+v", res)
	}
	rep, err := audit.Verify(ctx, s.Store, l.Signer().Origin(), mustVerifiers(t, l))
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep.Problem, err)
	}
}

// memHashes is an independent in-memory tlog storage.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

func testTreeHashes(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 1<<40)
	recs := Records("ev", 37)
	for i := 0; i < len(recs); i += 5 { // batches of uneven sizes
		appendAll(t, l, recs[i:min(i+5, len(recs))])
	}
	var mem memHashes
	for i := range recs {
		recs[i].Seq = int64(i)
		hs, err := tlog.StoredHashes(int64(i), recs[i].LeafData(), mem)
		if err != nil {
			t.Fatal(err)
		}
		mem = append(mem, hs...)
	}
	var stored []tlog.Hash
	err := s.Store.ScanHashes(ctx, 0, 1<<20, func(i int64, h tlog.Hash) error {
		if i != int64(len(stored)) {
			t.Fatalf("hash index %d after %d", i, len(stored))
		}
		stored = append(stored, h)
		return nil
	})
	if err != nil || len(stored) != len(mem) || int64(len(stored)) != tlog.StoredHashCount(37) {
		t.Fatalf("%d stored hashes, want %d (%v)", len(stored), len(mem), err)
	}
	for i := range mem {
		if stored[i] != mem[i] {
			t.Fatalf("stored hash %d differs", i)
		}
	}
	part := 0
	if err := s.Store.ScanHashes(ctx, 10, 5, func(int64, tlog.Hash) error { part++; return nil }); err != nil || part != 5 {
		t.Fatalf("limited scan: %d %v", part, err)
	}
	got, err := s.Store.ReadHashes(ctx, []int64{5, 0, 5})
	if err != nil || got[0] != mem[5] || got[1] != mem[0] || got[2] != mem[5] {
		t.Fatalf("ReadHashes: %v", err)
	}
	if _, err := s.Store.ReadHashes(ctx, []int64{int64(len(mem)) + 3}); err == nil {
		t.Fatal("a missing hash read without error")
	}
}

func testCheckpoints(t *testing.T, s Subject) {
	ctx := context.Background()
	var published []int64
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	l := audit.NewLog(s.Store, Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 10, Interval: time.Minute}, Now: c.now,
		OnCheckpoint: func(cp audit.Checkpoint) { published = append(published, cp.Size) }})
	recs := Records("ev", 40)
	if res := appendAll(t, l, recs[:4]); res.Checkpoint != nil {
		t.Fatal("checkpoint before it was due")
	}
	res := appendAll(t, l, recs[4:12])
	if res.Checkpoint == nil || res.Checkpoint.Size != 12 {
		t.Fatalf("no checkpoint after 12 of every 10: %+v", res)
	}
	appendAll(t, l, recs[12:15])
	if cp, err := l.CheckpointIfDue(ctx); cp != nil || err != nil {
		t.Fatalf("checkpoint before the interval: %v %v", cp, err)
	}
	c.add(time.Minute)
	cp, err := l.CheckpointIfDue(ctx)
	if err != nil || cp == nil || cp.Size != 15 {
		t.Fatalf("checkpoint after the interval: %v %v", cp, err)
	}
	c.add(time.Hour)
	if cp, err := l.CheckpointIfDue(ctx); cp != nil || err != nil {
		t.Fatalf("checkpoint without new records: %v %v", cp, err)
	}
	if fmt.Sprint(published) != "[12 15]" {
		t.Fatalf("published %v", published)
	}
	latest, err := l.Latest(ctx)
	if err != nil || latest.Size != 15 || !latest.Time.Equal(c.now().Add(-time.Hour)) {
		t.Fatalf("latest %+v %v", latest, err)
	}
	opened, err := l.Signer().Open(latest.Note)
	if err != nil || opened.Size != 15 || opened.Root != latest.Root || !opened.Time.Equal(latest.Time) {
		t.Fatalf("open %+v %v", opened, err)
	}
	if !strings.HasPrefix(string(latest.Note), "uias.audit/test\n15\n") {
		t.Fatalf("note %q", latest.Note)
	}
	// someone else's key does not open it
	if _, err := Signer(t).Open(latest.Note); err == nil {
		t.Fatal("a checkpoint opened with another key")
	}
	var sizes []int64
	if err := s.Store.Checkpoints(ctx, func(c *audit.Checkpoint) error { sizes = append(sizes, c.Size); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[12 15]" {
		t.Fatalf("checkpoints %v", sizes)
	}
	if at, err := s.Store.CheckpointAt(ctx, 12); err != nil || at.Size != 12 {
		t.Fatalf("checkpoint at 12: %v %v", at, err)
	}
	// the stored root is the tree hash
	var mem memHashes
	for i := range 15 {
		r := recs[i]
		r.Seq = int64(i)
		hs, _ := tlog.StoredHashes(int64(i), r.LeafData(), mem)
		mem = append(mem, hs...)
	}
	if root, _ := tlog.TreeHash(15, mem); root != latest.Root {
		t.Fatal("checkpoint root is not the tree hash")
	}
}

func testProofs(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 7)
	recs := Records("ev", 30)
	for i := 0; i < 30; i += 3 {
		appendAll(t, l, recs[i:i+3])
	}
	var cps []*audit.Checkpoint
	_ = s.Store.Checkpoints(ctx, func(c *audit.Checkpoint) error { cps = append(cps, c); return nil })
	if len(cps) < 3 {
		t.Fatalf("%d checkpoints", len(cps))
	}
	for _, cp := range cps {
		for n := int64(0); n < cp.Size; n++ {
			inc, err := l.ProveInclusion(ctx, n, cp.Size)
			if err != nil {
				t.Fatalf("prove %d in %d: %v", n, cp.Size, err)
			}
			if inc.Record.EventID != recs[n].EventID || inc.Checkpoint.Size != cp.Size {
				t.Fatalf("proof of %d names %s in %d", n, inc.Record.EventID, inc.Checkpoint.Size)
			}
			if err := tlog.CheckRecord(inc.Proof, cp.Size, cp.Root, n, inc.Record.LeafHash()); err != nil {
				t.Fatalf("proof of %d in %d does not check: %v", n, cp.Size, err)
			}
			if n > 0 && tlog.CheckRecord(inc.Proof, cp.Size, cp.Root, n-1, inc.Record.LeafHash()) == nil {
				t.Fatal("a proof checks for another record number")
			}
		}
	}
	latest, _ := l.Latest(ctx)
	inc, err := l.ProveInclusion(ctx, 0, 0)
	if err != nil || inc.Checkpoint.Size != latest.Size {
		t.Fatalf("proof in the latest checkpoint: %v", err)
	}
	if _, err := l.ProveInclusion(ctx, latest.Size, 0); err == nil {
		t.Fatal("proof of a record beyond the latest checkpoint")
	}
	if _, err := l.ProveInclusion(ctx, 0, latest.Size-1); err == nil {
		t.Fatal("proof in a tree size without checkpoint")
	}
	if _, err := l.ProveInclusion(ctx, -1, 0); err == nil {
		t.Fatal("proof of record -1")
	}
	for i, old := range cps {
		for _, nw := range cps[i:] {
			c, err := l.ProveConsistency(ctx, old.Size, nw.Size)
			if err != nil {
				t.Fatalf("consistency %d -> %d: %v", old.Size, nw.Size, err)
			}
			if err := tlog.CheckTree(c.Proof, nw.Size, nw.Root, old.Size, old.Root); err != nil {
				t.Fatalf("consistency %d -> %d does not check: %v", old.Size, nw.Size, err)
			}
		}
	}
	if _, err := l.ProveConsistency(ctx, cps[1].Size, cps[0].Size); err == nil {
		t.Fatal("consistency from a larger to a smaller tree")
	}
	if c, err := l.ProveConsistency(ctx, cps[0].Size, 0); err != nil || c.New.Size != latest.Size {
		t.Fatalf("consistency with the latest: %v", err)
	}
}

func testConcurrentAppends(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 25)
	const workers, batches, per = 4, 5, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*batches)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				// every worker also re-sends the previous batch of the
				// next worker: duplicates across concurrent appends
				recs := Records(fmt.Sprintf("w%d-b%d", w, b), per)
				if b > 0 {
					recs = append(recs, Records(fmt.Sprintf("w%d-b%d", (w+1)%workers, b-1), per)...)
				}
				if _, err := l.Append(ctx, recs); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, _ := s.Store.Size(ctx); n != workers*batches*per {
		t.Fatalf("size %d, want %d", n, workers*batches*per)
	}
	rep, err := audit.Verify(ctx, s.Store, l.Signer().Origin(), mustVerifiers(t, l))
	if err != nil || !rep.OK() || rep.Records != workers*batches*per {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func testVerifyWholeLog(t *testing.T, s Subject) {
	ctx := context.Background()
	l, c := newLog(t, s, 16)
	recs := Records("ev", 100)
	for i := 0; i < 100; i += 9 {
		appendAll(t, l, recs[i:min(i+9, 100)])
	}
	c.add(time.Hour)
	appendAll(t, l, Records("tail", 3)) // checkpoint by time at 103
	appendAll(t, l, Records("unsigned", 2))
	rep, err := audit.Verify(ctx, s.Store, l.Signer().Origin(), mustVerifiers(t, l))
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep.Problem, err)
	}
	if rep.Records != 105 || rep.Signed != 103 || rep.Checkpoints < 6 {
		t.Fatalf("report %+v", rep)
	}
	// The log is live: records appended while it is verified are no
	// tampering (they are read, past the size read first).
	live := &appendingStore{Store: s.Store, do: func() { appendAll(t, l, Records("during", 4)) }}
	rep, err = audit.Verify(ctx, live, l.Signer().Origin(), mustVerifiers(t, l))
	if err != nil || !rep.OK() || rep.Records != 109 {
		t.Fatalf("verify while records are appended: %+v %+v %v", rep, rep.Problem, err)
	}
	// verifying with another log's keys fails at the first checkpoint
	other, _ := audit.VerifiersFromKeys(Signer(t).VerifierKeys())
	rep, err = audit.Verify(ctx, s.Store, l.Signer().Origin(), other)
	if err != nil || rep.OK() || rep.Problem.Seq != -1 {
		t.Fatalf("verify with foreign keys: %+v %v", rep, err)
	}
}

// appendingStore runs do once, right after the log's size is first read.
type appendingStore struct {
	audit.Store
	once sync.Once
	do   func()
}

func (s *appendingStore) Size(ctx context.Context) (int64, error) {
	n, err := s.Store.Size(ctx)
	s.once.Do(s.do)
	return n, err
}

// testNegativeZero appends records whose duration is -0 (one given so,
// one from an event whose JSON says -0): they are stored as 0, their
// leaves say 0, and the log verifies.
func testNegativeZero(t *testing.T, s Subject) {
	ctx := context.Background()
	l, _ := newLog(t, s, 4)
	recs := Records("nz", 6)
	recs[1].DurationMS = math.Copysign(0, -1)
	ev := events.Event{ID: "nz-event", Type: "audit.authenticate", Subject: "uias.audit.identity.authenticate", Time: time.Now(),
		Payload: []byte(`{"time":"2026-12-01T00:00:00Z","result":"success","duration_ms":-0}`)}
	recs[4] = audit.FromEvent(ev)
	if !math.Signbit(recs[1].DurationMS) || !math.Signbit(recs[4].DurationMS) {
		t.Fatalf("durations %v %v: not -0", recs[1].DurationMS, recs[4].DurationMS)
	}
	appendAll(t, l, recs)
	for _, seq := range []int64{1, 4} {
		r, err := s.Store.GetRecord(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if r.DurationMS != 0 || math.Signbit(r.DurationMS) || !strings.Contains(string(r.LeafData()), `"duration_ms":0,`) {
			t.Fatalf("record %d: duration %v, leaf %s", seq, r.DurationMS, r.LeafData())
		}
	}
	rep, err := audit.Verify(ctx, s.Store, l.Signer().Origin(), mustVerifiers(t, l))
	if err != nil || !rep.OK() || rep.Records != 6 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

const forgedRow = `INSERT INTO audit_records (seq, event_id, event_type, component, time_ms, serial, trace_id, app_id, api,
 actor, subject, org, result, reason, duration_ms, client_ip, detail)
 VALUES (?, 'forged', 'audit.authenticate', 'identity', 1764576000000, '', '', 'app-1', 'authenticate',
 'app:app-1', 'user:u1', 'org-1', 'success', 'OK', 1, '198.51.100.1', '{}')`

// testTampering builds a log of 50 records with a checkpoint every 10,
// changes it directly in SQL, and checks that Verify names the first bad
// record.
func testTampering(t *testing.T, open func(t *testing.T) Subject) {
	cases := []struct {
		name string
		do   func(t *testing.T, s Subject)
		// the first bad record Verify must name (-1: a checkpoint), and
		// for changes hidden by recomputed hashes the checkpoint
		seq, checkpoint int64
		// what the problem must say (empty: not checked)
		what string
	}{
		{"edit a field", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_records SET result = 'success' WHERE seq = 23")
		}, 23, 0, ""},
		{"edit the time", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_records SET time_ms = time_ms + 1 WHERE seq = 7")
		}, 7, 0, ""},
		{"edit the detail", func(t *testing.T, s Subject) {
			s.Exec(t, `UPDATE audit_records SET detail = '{"n":"x"}' WHERE seq = 31`)
		}, 31, 0, ""},
		{"delete a record", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_records WHERE seq = 17")
		}, 17, 0, ""},
		{"delete the first record", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_records WHERE seq = 0")
		}, 0, 0, ""},
		{"insert a record in the middle", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_records SET seq = seq + 1000 WHERE seq >= 30")
			s.Exec(t, "UPDATE audit_records SET seq = seq - 999 WHERE seq >= 1000")
			s.Exec(t, forgedRow, 30)
		}, 30, 0, ""},
		{"insert a record at the end", func(t *testing.T, s Subject) {
			s.Exec(t, forgedRow, 50)
		}, 50, 0, ""},
		{"insert a record far beyond the end", func(t *testing.T, s Subject) {
			s.Exec(t, forgedRow, 1000000)
		}, 1000000, 0, "record 1000000 is beyond the end of the log (its size is 50): it was inserted"},
		{"replace a record", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_records WHERE seq = 44")
			s.Exec(t, forgedRow, 44)
		}, 44, 0, ""},
		{"swap two records", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_records SET seq = 1000 WHERE seq = 12")
			s.Exec(t, "UPDATE audit_records SET seq = 12 WHERE seq = 13")
			s.Exec(t, "UPDATE audit_records SET seq = 13 WHERE seq = 1000")
		}, 12, 0, ""},
		{"swap two event ids", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_records SET event_id = 'tmp' WHERE seq = 40")
			s.Exec(t, "UPDATE audit_records SET event_id = 'ev-40' WHERE seq = 41")
			s.Exec(t, "UPDATE audit_records SET event_id = 'ev-41' WHERE seq = 40")
		}, 40, 0, ""},
		{"cut off the end", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_records WHERE seq >= 40")
		}, 40, 0, ""},
		{"cut off the end and the size", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_records WHERE seq >= 35")
			s.Exec(t, "DELETE FROM audit_tree WHERE seq >= 35")
			s.Exec(t, "UPDATE audit_log SET size = 35")
		}, 35, 0, ""},
		{"cut off everything", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_records")
		}, 0, 0, ""},
		{"delete a tree hash", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_tree WHERE seq = 26")
		}, 26, 0, ""},
		{"cut a record's tree hashes short", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_tree SET hashes = ? WHERE seq = 31", make([]byte, 32))
		}, 31, 0, ""},
		{"edit a record and rewrite its tree hashes", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_records SET actor = 'someone else' WHERE seq = 23")
			rewriteHashes(t, s)
		}, 20, 30, ""},
		{"delete a record and rewrite the tree", func(t *testing.T, s Subject) {
			s.Exec(t, "DELETE FROM audit_records WHERE seq = 5")
			s.Exec(t, "UPDATE audit_records SET seq = seq - 1 WHERE seq > 5")
			s.Exec(t, "UPDATE audit_log SET size = 49")
			rewriteHashes(t, s)
		}, 0, 10, ""},
		{"edit a checkpoint", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_checkpoints SET size = 41 WHERE size = 40")
		}, -1, 41, ""},
		{"edit two checkpoints: the first is reported", func(t *testing.T, s Subject) {
			s.Exec(t, "UPDATE audit_checkpoints SET size = 41 WHERE size = 40")
			s.Exec(t, "UPDATE audit_checkpoints SET note = 'x' || note WHERE size = 20")
		}, -1, 20, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			l, _ := newLog(t, s, 10)
			recs := Records("ev", 50)
			for i := 0; i < 50; i += 5 {
				appendAll(t, l, recs[i:i+5])
			}
			known := mustVerifiers(t, l)
			if rep, err := audit.Verify(ctx, s.Store, l.Signer().Origin(), known); err != nil || !rep.OK() || rep.Signed != 50 {
				t.Fatalf("before: %+v %v", rep, err)
			}
			tc.do(t, s)
			rep, err := audit.Verify(ctx, s.Store, l.Signer().Origin(), known)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("not caught: %+v", rep)
			}
			if rep.Problem.Seq != tc.seq || (tc.checkpoint != 0 && rep.Problem.Checkpoint != tc.checkpoint) ||
				!strings.Contains(rep.Problem.What, tc.what) {
				t.Fatalf("problem at record %d (checkpoint %d): %s; want record %d (checkpoint %d) %q",
					rep.Problem.Seq, rep.Problem.Checkpoint, rep.Problem.What, tc.seq, tc.checkpoint, tc.what)
			}
			t.Logf("caught: %s", rep.Problem.What)
		})
	}
}

// rewriteHashes recomputes every stored tree hash from the records as
// they now are, as someone covering their tracks would.
func rewriteHashes(t *testing.T, s Subject) {
	t.Helper()
	var mem memHashes
	err := s.Store.ScanRecords(context.Background(), 0, func(r *audit.Record) error {
		hs, err := tlog.StoredHashes(r.Seq, r.LeafData(), mem)
		mem = append(mem, hs...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// one row per record: the hashes stored with it, concatenated
	s.Exec(t, "DELETE FROM audit_tree")
	var seq int64
	for i := 0; i < len(mem); seq++ {
		n := int(tlog.StoredHashIndex(0, seq+1) - tlog.StoredHashIndex(0, seq))
		var b []byte
		for _, h := range mem[i : i+n] {
			b = append(b, h[:]...)
		}
		s.Exec(t, "INSERT INTO audit_tree (seq, hashes) VALUES (?, ?)", seq, b)
		i += n
	}
}

// testQuery: filters, newest first, keyset pages without gaps or repeats.
func testQuery(t *testing.T, s Subject) {
	ctx := context.Background()
	qs, ok := s.Store.(audit.QueryStore)
	if !ok {
		t.Fatal("the store does not implement audit.QueryStore")
	}
	l, _ := newLog(t, s, 1000)
	recs := Records("ev", 120)
	recs[7].Detail = map[string]string{"login": "Zhang.San"}
	recs[8].Time = recs[9].Time // equal times: log order decides
	appendAll(t, l, recs)
	all := func(q audit.Query) []audit.Record {
		t.Helper()
		var out []audit.Record
		for {
			page, next, err := audit.Search(ctx, qs, audit.Scope{All: true}, q)
			if err != nil {
				t.Fatalf("query %+v: %v", q, err)
			}
			out = append(out, page...)
			if next == "" {
				return out
			}
			q.PageToken = next
		}
	}
	got := all(audit.Query{PageSize: 7})
	if len(got) != 120 {
		t.Fatalf("%d records over all pages", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.Time.Before(b.Time) || (a.Time.Equal(b.Time) && a.Seq < b.Seq) {
			t.Fatalf("not newest first at %d: %d then %d", i, a.Seq, b.Seq)
		}
	}
	count := func(q audit.Query, want func(r audit.Record) bool) {
		t.Helper()
		n := 0
		for _, r := range recs {
			if want(r) {
				n++
			}
		}
		res := all(q)
		if len(res) != n || n == 0 {
			t.Fatalf("query %+v: %d records, want %d", q, len(res), n)
		}
		for _, r := range res {
			if !want(r) {
				t.Fatalf("query %+v returned %+v", q, r)
			}
		}
	}
	from, to := recs[10].Time, recs[50].Time
	count(audit.Query{From: from, To: to, PageSize: 9}, func(r audit.Record) bool { return !r.Time.Before(from) && r.Time.Before(to) })
	count(audit.Query{Subject: "user:u3"}, func(r audit.Record) bool { return r.Subject == "user:u3" })
	count(audit.Query{Subject: "user:u3", Result: "failure", PageSize: 2}, func(r audit.Record) bool { return r.Subject == "user:u3" && r.Result == "failure" })
	count(audit.Query{ClientIP: "198.51.100.5"}, func(r audit.Record) bool { return r.ClientIP == "198.51.100.5" })
	count(audit.Query{Actor: "app:app-1", API: "authenticate", AppID: "app-1", From: from}, func(r audit.Record) bool { return !r.Time.Before(from) })
	count(audit.Query{Text: "zhang.SAN"}, func(r audit.Record) bool { return r.Detail["login"] == "Zhang.San" })
	count(audit.Query{Text: "u5", Result: "denied"}, func(r audit.Record) bool { return r.Subject == "user:u5" && r.Result == "denied" })
	if res := all(audit.Query{Actor: "nobody"}); len(res) != 0 {
		t.Fatalf("unknown actor: %d records", len(res))
	}
	// a literal % or _ in the text matches itself only
	if res := all(audit.Query{Text: "%"}); len(res) != 0 {
		t.Fatalf("text %%: %d records", len(res))
	}
	for _, q := range []audit.Query{{PageToken: "!!"}, {PageToken: "bm9wZQ"}, {PageSize: audit.MaxPageSize + 1},
		{From: to, To: from}, {ClientIP: "not-an-ip"}} {
		if _, _, err := audit.Search(ctx, qs, audit.Scope{All: true}, q); err == nil {
			t.Errorf("query %+v accepted", q)
		}
	}
	// scopes: nobody without one; org lists restrict
	if _, _, err := audit.Search(ctx, qs, audit.Scope{}, audit.Query{}); err == nil {
		t.Fatal("an empty scope read the log")
	}
	if res, _, err := audit.Search(ctx, qs, audit.Scope{Orgs: []string{"org-9"}}, audit.Query{}); err != nil || len(res) != 0 {
		t.Fatalf("scope of another org: %d %v", len(res), err)
	}
	if res, _, err := audit.Search(ctx, qs, audit.Scope{Orgs: []string{"org-1"}}, audit.Query{PageSize: 5}); err != nil || len(res) != 5 {
		t.Fatalf("scope of org-1: %d %v", len(res), err)
	}
}
