package component

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

func peerTestStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return sqlstore.New(db)
}

func peerTestNATS(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	return js
}

// fetchAll reads every message of AUDIT_LOG from sequence from on.
func fetchAll(t *testing.T, js jetstream.JetStream, from uint64) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, audit.StreamLog, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: from})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for {
		b, err := c.Fetch(100, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			out = append(out, m)
			n++
		}
		if n == 0 {
			return out
		}
	}
}

// TestShareAndReceive: the sharer publishes a log as stored (records and
// checkpoints) and, started again, only what is new; the receiver stores
// it per origin exactly once (a redelivery adds nothing), skips a message
// of another origin or no message at all with an error logged, refuses a
// gap, fails while its database is down, and what it holds verifies
// against the sharing log's checkpoints.
func TestShareAndReceive(t *testing.T) {
	ctx := context.Background()
	js := peerTestNATS(t)
	st2 := peerTestStore(t)
	l2 := audit.NewLog(st2, storetest.Signer(t), audit.LogOptions{Policy: audit.Policy{Every: 5, Interval: time.Hour}})
	recs := storetest.Records("share", 15)
	for _, part := range [][]audit.Record{recs[:5], recs[5:10], recs[10:12]} {
		if _, err := l2.Append(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	origin := l2.Signer().Origin()
	stream, err := js.CreateOrUpdateStream(ctx, LogStreamConfig())
	if err != nil {
		t.Fatal(err)
	}
	sh := &sharer{js: js, st: st2, origin: origin, log: zap.NewNop()}
	next, cp, err := sh.resume(ctx, stream)
	if err != nil || next != 0 || cp != 0 {
		t.Fatalf("resume on an empty stream: %d %d %v", next, cp, err)
	}
	if next, cp, err = sh.pass(ctx, next, cp); err != nil || next != 12 || cp != 10 {
		t.Fatalf("first pass: next %d checkpoint %d %v", next, cp, err)
	}
	// Started again: it resumes after what the stream holds, and publishes
	// only the new records and checkpoint.
	if _, err := l2.Append(ctx, recs[12:15]); err != nil {
		t.Fatal(err)
	}
	if next, cp, err = (&sharer{js: js, st: st2, origin: origin, log: zap.NewNop()}).resume(ctx, stream); err != nil || next != 12 || cp != 10 {
		t.Fatalf("resume: next %d checkpoint %d %v", next, cp, err)
	}
	if next, cp, err = sh.pass(ctx, next, cp); err != nil || next != 15 || cp != 15 {
		t.Fatalf("second pass: next %d checkpoint %d %v", next, cp, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("uias.auditlog.>"))
	if err != nil {
		t.Fatal(err)
	}
	if r, c := info.State.Subjects[audit.SubjectLogRecord], info.State.Subjects[audit.SubjectLogCheckpt]; r != 15 || c != 3 {
		t.Fatalf("AUDIT_LOG holds %d records and %d checkpoints, want 15 and 3", r, c)
	}
	// Strangers on the stream: another origin, not a log message.
	if _, err := js.Publish(ctx, audit.SubjectLogRecord, []byte(`{"origin":"evil","record":{"seq":15,"event_id":"x"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, audit.SubjectLogRecord, []byte(`not json`)); err != nil {
		t.Fatal(err)
	}
	msgs := fetchAll(t, js, 1)
	if len(msgs) != 20 {
		t.Fatalf("%d messages", len(msgs))
	}

	st1 := peerTestStore(t)
	core, logs := observer.New(zapcore.InfoLevel)
	rc := &receiver{js: js, st: st1, peer: PeerConfig{Centre: "l2a", Origin: origin}, batch: 100, log: zap.New(core)}
	// A gap: records 0-4, then from 10 on.
	if err := rc.store(ctx, msgs[:5], rc.log, false); err != nil {
		t.Fatal(err)
	}
	var rest []jetstream.Msg
	for _, m := range msgs[5:] {
		if lm, err := audit.ParseLogMessage(m.Data()); err != nil || lm.Record == nil || lm.Record.Seq >= 10 {
			rest = append(rest, m)
		}
	}
	if err := rc.store(ctx, rest, rc.log, false); !errors.Is(err, audit.ErrPeerGap) {
		t.Fatalf("a gap: %v", err)
	}
	// Everything, twice (a redelivery).
	for range 2 {
		if err := rc.store(ctx, msgs, rc.log, false); err != nil {
			t.Fatal(err)
		}
	}
	peers, err := st1.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].Origin != origin || peers[0].Size != 15 || peers[0].Checkpoints != 3 {
		t.Fatalf("held: %+v %v", peers, err)
	}
	if n := logs.FilterMessageSnippet("names another origin").Len(); n != 3 { // each of the three stores of it
		t.Errorf("%d logs of the message of another origin, want 3: %v", n, logs.All())
	}
	if n := logs.FilterMessageSnippet("is not one").Len(); n != 3 {
		t.Errorf("%d logs of the message that is none, want 3", n)
	}
	known, err := audit.VerifiersFromKeys(l2.Signer().VerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyPeer(ctx, st1, peers[0], known)
	if err != nil || !rep.OK() || rep.Records != 15 || rep.Checkpoints != 3 {
		t.Fatalf("verify what level 1 holds: %+v %v", rep, err)
	}

	// The database down: the batch fails (it is redelivered), nothing is
	// acknowledged as stored.
	if err := st1.DB().Close(); err != nil {
		t.Fatal(err)
	}
	if err := rc.store(ctx, msgs, rc.log, false); err == nil {
		t.Fatal("stored with the database closed")
	}
}

// TestReceiverGapsAndConflicts (sec28b M3, L5): records lost before the
// next one received are refused as a gap, then (skip_gap_after passed)
// skipped with a record in this centre's log and a count; a skipped
// record that comes later is stored; a record re-sent under a number held
// with another event id is kept out and reported as a conflict.
func TestReceiverGapsAndConflicts(t *testing.T) {
	ctx := context.Background()
	js := peerTestNATS(t)
	if _, err := js.CreateOrUpdateStream(ctx, LogStreamConfig()); err != nil {
		t.Fatal(err)
	}
	const origin = "l2a.audit"
	recs := storetest.Records("l2a", 6)
	publish := func(seq int64, eventID string) {
		r := recs[seq]
		r.Seq, r.EventID = seq, eventID
		b, err := json.Marshal(audit.RecordMessage(origin, &r))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, audit.SubjectLogRecord, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range int64(6) {
		publish(i, recs[i].EventID)
	}
	publish(2, "rewritten") // the same number, other content
	msgs := fetchAll(t, js, 1)
	if len(msgs) != 7 {
		t.Fatalf("%d messages", len(msgs))
	}
	st := peerTestStore(t)
	var audited []audit.Record
	problems := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "p"}, []string{"origin", "kind"})
	rc := &receiver{js: js, st: st, peer: PeerConfig{Centre: "l2a", Origin: origin}, batch: 100, log: zap.NewNop(), problems: problems,
		audit: func(_ context.Context, rec audit.Record) error { audited = append(audited, rec); return nil }}
	if err := rc.store(ctx, msgs[:2], rc.log, false); err != nil {
		t.Fatal(err)
	}
	if err := rc.store(ctx, msgs[4:6], rc.log, false); !errors.Is(err, audit.ErrPeerGap) || len(audited) != 0 {
		t.Fatalf("a gap: %v %v", err, audited)
	}
	if err := rc.store(ctx, msgs[4:6], rc.log, true); err != nil {
		t.Fatalf("a gap skipped: %v", err)
	}
	if len(audited) != 1 || audited[0].Reason != audit.ReasonPeerLogGap || audited[0].Detail["from"] != "2" || audited[0].Detail["to"] != "3" ||
		audited[0].Detail["origin"] != origin || audited[0].Type != audit.TypePeerLog || testutil.ToFloat64(problems.WithLabelValues(origin, "gap")) != 1 {
		t.Fatalf("the gap's record: %+v", audited)
	}
	// the skipped records come after all: stored
	if err := rc.store(ctx, msgs[2:4], rc.log, false); err != nil {
		t.Fatal(err)
	}
	held := map[int64]string{}
	if err := st.ScanPeerRecords(ctx, origin, func(r *audit.Record) error { held[r.Seq] = r.EventID; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(held) != 6 || held[2] != recs[2].EventID {
		t.Fatalf("held after the gap filled: %v", held)
	}
	// the conflicting record: kept out, reported
	if err := rc.store(ctx, msgs[6:], rc.log, false); err != nil {
		t.Fatal(err)
	}
	if len(audited) != 2 || audited[1].Reason != audit.ReasonPeerLogConflict || audited[1].Detail["seqs"] != "2" ||
		testutil.ToFloat64(problems.WithLabelValues(origin, "conflict")) != 1 {
		t.Fatalf("the conflict's record: %+v", audited)
	}
	held = map[int64]string{}
	if err := st.ScanPeerRecords(ctx, origin, func(r *audit.Record) error { held[r.Seq] = r.EventID; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(held) != 6 || held[2] != recs[2].EventID {
		t.Fatalf("held after the conflict: %v", held)
	}
	// a plain redelivery is no conflict
	if err := rc.store(ctx, msgs[:6], rc.log, false); err != nil || len(audited) != 2 {
		t.Fatalf("redelivery: %v %+v", err, audited)
	}
}

// The gap is skipped once it has lasted skip_gap_after, counted from the
// first refusal of a run; a batch stored ends the run.
func TestGapWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var g gapWatch
	if g.skip(t0, time.Hour) {
		t.Fatal("skip without a gap")
	}
	g.seen(fmt.Errorf("x: %w", audit.ErrPeerGap), t0)
	g.seen(audit.ErrPeerGap, t0.Add(30*time.Minute)) // the same run
	g.seen(errors.New("database down"), t0.Add(40*time.Minute))
	if g.skip(t0.Add(59*time.Minute), time.Hour) || !g.skip(t0.Add(time.Hour), time.Hour) {
		t.Fatal("skip_gap_after not counted from the first refusal")
	}
	g.seen(nil, t0.Add(time.Hour))
	if g.skip(t0.Add(3*time.Hour), time.Hour) {
		t.Fatal("a stored batch does not end the gap")
	}
}

// The stream of a peer is bounded (sec28b M3): AUDIT_<PEER> as
// PeerStreamConfig makes it at level 1, sourcing the AUDIT_LOG of peer
// l2a over a leaf-node link, stops at its max_bytes; what did not fit
// waits in the peer's AUDIT_LOG and comes once the bound is raised.
func TestPeerStreamBounded(t *testing.T) {
	c := PeerStreamConfig(PeerConfig{Centre: "l2a", Origin: "l2a.audit"})
	if c.MaxBytes != DefaultPeerMaxBytes || c.MaxAge != DefaultPeerMaxAge || c.Discard != jetstream.DiscardNew {
		t.Fatalf("default bounds: %+v", c)
	}
	c = PeerStreamConfig(PeerConfig{Centre: "l2a", Origin: "l2a.audit", MaxBytes: 5 << 20, MaxAge: 48 * time.Hour})
	if c.MaxBytes != 5<<20 || c.MaxAge != 48*time.Hour {
		t.Fatalf("configured bounds: %+v", c)
	}

	ctx := context.Background()
	l1, l2 := eventstest.Centres(t, "l1", "l2a")
	_, js := eventstest.Connect(t, l1)
	_, js2 := eventstest.Connect(t, l2)
	if _, err := js2.CreateOrUpdateStream(ctx, LogStreamConfig()); err != nil {
		t.Fatal(err)
	}
	const n = 40
	recs := storetest.Records("l2a", n)
	for i := range recs {
		recs[i].Seq = int64(i)
		b, err := json.Marshal(audit.RecordMessage("l2a.audit", &recs[i]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js2.Publish(ctx, audit.SubjectLogRecord, b); err != nil {
			t.Fatal(err)
		}
	}
	const bound = 4 << 10
	small := PeerStreamConfig(PeerConfig{Centre: "l2a", Origin: "l2a.audit", MaxBytes: bound})
	if _, err := js.CreateOrUpdateStream(ctx, small); err != nil {
		t.Fatal(err)
	}
	state := func() jetstream.StreamState {
		t.Helper()
		st, err := js.Stream(ctx, small.Name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Bytes > bound {
			t.Fatalf("AUDIT_L2A holds %d bytes past its bound %d", info.State.Bytes, bound)
		}
		return info.State
	}
	waitFor := func(what string, ok func(jetstream.StreamState) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok(state()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v", what, state())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("sourcing began", func(s jetstream.StreamState) bool { return s.Msgs > 0 })
	for range 10 { // each look checks the bound
		if s := state(); s.Msgs >= n {
			t.Fatalf("the bounded stream took everything: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	big := PeerStreamConfig(PeerConfig{Centre: "l2a", Origin: "l2a.audit", MaxBytes: 1 << 20})
	if _, err := js.UpdateStream(ctx, big); err != nil {
		t.Fatal(err)
	}
	w := events.SourceWatch{JS: js, Config: big, Retry: 200 * time.Millisecond}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(wctx) // as the receiver does: a source that backed off is restarted
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := js.Stream(ctx, big.Name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the bound was raised: %+v", info.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReceiverMasksPeerRecords (sec28b I3): a peer's record with a
// personal number in clear is stored masked, as this centre's own are,
// and that is reported once (a redelivery adds nothing).
func TestReceiverMasksPeerRecords(t *testing.T) {
	ctx := context.Background()
	js := peerTestNATS(t)
	if _, err := js.CreateOrUpdateStream(ctx, LogStreamConfig()); err != nil {
		t.Fatal(err)
	}
	const origin = "l2a.audit"
	const card = "6222021234567890123"
	recs := storetest.Records("l2a", 2)
	recs[1].Detail = map[string]string{"note": "paid with " + card}
	for i := range recs {
		recs[i].Seq = int64(i)
		b, err := json.Marshal(audit.RecordMessage(origin, &recs[i]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, audit.SubjectLogRecord, b); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fetchAll(t, js, 1)
	st := peerTestStore(t)
	var audited []audit.Record
	rc := &receiver{js: js, st: st, peer: PeerConfig{Centre: "l2a", Origin: origin}, batch: 100, log: zap.NewNop(),
		audit: func(_ context.Context, rec audit.Record) error { audited = append(audited, rec); return nil }}
	for range 2 {
		if err := rc.store(ctx, msgs, rc.log, false); err != nil {
			t.Fatal(err)
		}
	}
	var held []audit.Record
	if err := st.ScanPeerRecords(ctx, origin, func(r *audit.Record) error { held = append(held, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || strings.Contains(held[1].Detail["note"], card) || held[1].Detail["note"] != audit.Mask("paid with "+card) {
		t.Fatalf("held: %+v", held)
	}
	if len(audited) != 1 || audited[0].Reason != audit.ReasonPeerLogUnmasked || audited[0].Detail["seqs"] != "1" {
		t.Fatalf("reported: %+v", audited)
	}
}

// ensureLogStream creates AUDIT_LOG, and takes an existing one as it is
// (the audit user may not update it: sec28b L6).
func TestEnsureLogStream(t *testing.T) {
	ctx := context.Background()
	js := peerTestNATS(t)
	for range 2 {
		if _, err := ensureLogStream(ctx, js); err != nil {
			t.Fatal(err)
		}
	}
	other := LogStreamConfig()
	other.MaxAge = 240 * time.Hour // set by the setup user
	if _, err := js.UpdateStream(ctx, other); err != nil {
		t.Fatal(err)
	}
	st, err := ensureLogStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Config.MaxAge != 240*time.Hour {
		t.Fatalf("AUDIT_LOG after ensureLogStream: %+v %v", info, err)
	}
}

// The receiver puts back a peer stream re-pointed at another domain
// (sec28b M4) and reports it; the right source is left alone.
// TestReceiverSourceWatch: the receiver's watch of AUDIT_<PEER>
// (events.SourceWatch) counts a re-pointed source as a problem of kind
// "source" and puts it back, and counts the restarts of a silent source
// (uias_audit_peer_source_restarts_total; the peer's domain is not
// reachable here, so the source is never heard from).
func TestReceiverSourceWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := peerTestNATS(t)
	problems, restarts := peerProblemMetrics(nil), peerSourceMetrics(nil)
	rc := &receiver{js: js, peer: PeerConfig{Centre: "l2b", Origin: "l2b.audit"}, problems: problems, restarts: restarts,
		sourceRetry: 200 * time.Millisecond}
	cfg := PeerStreamConfig(rc.peer)
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	w := rc.sourceWatch(zap.NewNop())
	if !w.Check(ctx) {
		t.Fatal("the right source reported")
	}
	bad := PeerStreamConfig(PeerConfig{Centre: "l2a", Origin: "l2b.audit"}) // AUDIT_L2B sourcing l2a's log
	bad.Name = cfg.Name
	if _, err := js.UpdateStream(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if w.Check(ctx) || testutil.ToFloat64(problems.WithLabelValues("l2b.audit", "source")) != 1 {
		t.Fatal("a re-pointed source not reported")
	}
	st, err := js.Stream(ctx, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || len(info.Config.Sources) != 1 || info.Config.Sources[0].External == nil ||
		info.Config.Sources[0].External.APIPrefix != "$JS.l2b.API" || info.Config.MaxBytes != cfg.MaxBytes {
		t.Fatalf("stream after: %+v %v", info.Config, err)
	}
	if !w.Check(ctx) {
		t.Fatal("the put-back source reported")
	}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(restarts.WithLabelValues("l2b.audit")) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the silent source's restart not counted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}
