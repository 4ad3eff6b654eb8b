package component

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/storetest"
)

// Review rr29 B13: receiver.run and sharer.run through their failure
// paths, on real NATS servers (level 1 and a level-2 centre joined as a
// leaf node) and a real store.

// flakyPeers is a peer store whose next fail appends fail, and that counts
// the appends refused as a gap.
type flakyPeers struct {
	audit.PeerStore
	mu             sync.Mutex
	fail           int
	failed, gapped int
}

func (f *flakyPeers) AppendPeer(ctx context.Context, b audit.PeerBatch) (audit.PeerAppended, error) {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.failed++
		f.mu.Unlock()
		return audit.PeerAppended{}, errors.New("database down")
	}
	f.mu.Unlock()
	res, err := f.PeerStore.AppendPeer(ctx, b)
	if errors.Is(err, audit.ErrPeerGap) {
		f.mu.Lock()
		f.gapped++
		f.mu.Unlock()
	}
	return res, err
}

func (f *flakyPeers) counts() (failed, gapped int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed, f.gapped
}

// publishLog publishes records seqs of origin to AUDIT_LOG (js: the
// level-2 centre).
func publishLog(t *testing.T, js jetstream.JetStream, origin string, seqs ...int64) {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, LogStreamConfig()); err != nil {
		t.Fatal(err)
	}
	recs := storetest.Records(origin, 20)
	for _, s := range seqs {
		r := recs[s]
		r.Seq = s
		b, err := json.Marshal(audit.RecordMessage(origin, &r))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, audit.SubjectLogRecord, b); err != nil {
			t.Fatal(err)
		}
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func heldSize(t *testing.T, st audit.PeerStore) int64 {
	t.Helper()
	peers, err := st.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) == 0 {
		return 0
	}
	return peers[0].Size
}

// TestReceiverRunRetriesAndRecovers: batches the store fails are Nak'ed
// and delivered again until stored, each record once; the durable
// consumer deleted (the restore procedure of ADR 0029 amendment 3) makes
// the fetch fail, and the receiver sets it up again and goes on.
func TestReceiverRunRetriesAndRecovers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l1, l2 := eventstest.Centres(t, "l1", "l2a")
	_, js1 := eventstest.Connect(t, l1)
	_, js2 := eventstest.Connect(t, l2)
	const origin = "l2a.audit"
	publishLog(t, js2, origin, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	st := &flakyPeers{PeerStore: peerTestStore(t), fail: 2}
	rc := &receiver{js: js1, st: st, peer: PeerConfig{Centre: "l2a", Origin: origin}, batch: 4, log: zaptest.NewLogger(t)}
	done := make(chan struct{})
	go func() { defer close(done); rc.run(ctx) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, "all ten stored after two failed appends", func() bool { return heldSize(t, st) == 10 })
	if failed, _ := st.counts(); failed != 2 {
		t.Fatalf("%d appends failed, want 2", failed)
	}
	held := func() []int64 {
		t.Helper()
		var seqs []int64
		if err := st.ScanPeerRecords(ctx, origin, func(r *audit.Record) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		return seqs
	}
	// the Nak'ed first batch came again before the later ones: nothing
	// taken for records the peer had archived
	if seqs := held(); len(seqs) != 10 || seqs[0] != 0 {
		t.Fatalf("held %v, want 0-9 once each", seqs)
	}

	if err := js1.DeleteConsumer(ctx, audit.PeerStreamFor("l2a"), PeerConsumer); err != nil {
		t.Fatal(err)
	}
	publishLog(t, js2, origin, 10, 11, 12)
	waitUntil(t, "the consumer set up again and the new records stored", func() bool { return heldSize(t, st) == 13 })
	if seqs := held(); len(seqs) != 13 || seqs[0] != 0 {
		t.Fatalf("held %v, want 0-12 once each", seqs)
	}
}

// TestReceiverGapTimerAcrossBatches: a gap refused batch after batch is
// skipped once skip_gap_after has passed since its first refusal, not
// since the latest (the clock is the receiver's).
func TestReceiverGapTimerAcrossBatches(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l1, l2 := eventstest.Centres(t, "l1", "l2a")
	_, js1 := eventstest.Connect(t, l1)
	_, js2 := eventstest.Connect(t, l2)
	const origin = "l2a.audit"
	publishLog(t, js2, origin, 0, 1, 2, 6, 7, 8) // 3-5 lost
	st := &flakyPeers{PeerStore: peerTestStore(t)}
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	var now atomic.Pointer[time.Time]
	now.Store(&t0)
	problems := peerProblemMetrics(nil)
	rc := &receiver{js: js1, st: st, peer: PeerConfig{Centre: "l2a", Origin: origin, SkipGapAfter: time.Hour}, batch: 2,
		log: zap.NewNop(), problems: problems, now: func() time.Time { return *now.Load() }}
	done := make(chan struct{})
	go func() { defer close(done); rc.run(ctx) }()
	defer func() { cancel(); <-done }()
	gapped := func(n int) func() bool { return func() bool { _, g := st.counts(); return g >= n } }
	waitUntil(t, "the gap refused", gapped(1))
	later := t0.Add(59 * time.Minute)
	now.Store(&later)
	_, g := st.counts()
	waitUntil(t, "the gap refused twice more", gapped(g+2))
	if n := heldSize(t, st); n > 3 || testutil.ToFloat64(problems.WithLabelValues(origin, "gap")) != 0 {
		t.Fatalf("skipped before skip_gap_after passed since the first refusal: size %d", n)
	}
	due := t0.Add(time.Hour)
	now.Store(&due)
	waitUntil(t, "the gap skipped", func() bool { return heldSize(t, st) == 9 })
	if n := testutil.ToFloat64(problems.WithLabelValues(origin, "gap")); n != 1 {
		t.Fatalf("%v gaps counted, want 1", n)
	}
}

// TestSharerWithNATSDown: the sharer started while NATS is down sets
// AUDIT_LOG up once it is back; NATS gone mid-way, it publishes what was
// stored meanwhile once it is back, each record once.
func TestSharerWithNATSDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "nats")
	s := eventstest.NATSIn(t, dir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	_, js := eventstest.Connect(t, s)
	st := peerTestStore(t)
	l := audit.NewLog(st, storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 5, Interval: time.Hour}})
	recs := storetest.Records("share", 12)
	if _, err := l.Append(ctx, recs[:4]); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	sh := &sharer{js: js, st: st, origin: l.Signer().Origin(), log: zaptest.NewLogger(t), every: 50 * time.Millisecond}
	done := make(chan struct{})
	go func() { defer close(done); sh.run(ctx) }()
	defer func() { cancel(); <-done }()
	records := func() uint64 {
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		st, err := js.Stream(ictx, audit.StreamLog)
		if err != nil {
			return 0
		}
		info, err := st.Info(ictx, jetstream.WithSubjectFilter(audit.SubjectLogRecord))
		if err != nil {
			return 0
		}
		return info.State.Subjects[audit.SubjectLogRecord]
	}
	s = eventstest.NATSIn(t, dir, port)
	waitUntil(t, "the first records shared once NATS is up", func() bool { return records() == 4 })
	s.Shutdown()
	s.WaitForShutdown()
	if _, err := l.Append(ctx, recs[4:12]); err != nil {
		t.Fatal(err)
	}
	eventstest.NATSIn(t, dir, port)
	waitUntil(t, "the records stored while NATS was down shared", func() bool { return records() == 12 })
}
