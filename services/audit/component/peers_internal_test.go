package component

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/events"
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
	s, err := events.StartNATS(t.TempDir(), &server.Options{Host: "127.0.0.1", Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
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
	if err := rc.store(ctx, msgs[:5], rc.log); err != nil {
		t.Fatal(err)
	}
	var rest []jetstream.Msg
	for _, m := range msgs[5:] {
		if lm, err := audit.ParseLogMessage(m.Data()); err != nil || lm.Record == nil || lm.Record.Seq >= 10 {
			rest = append(rest, m)
		}
	}
	if err := rc.store(ctx, rest, rc.log); !errors.Is(err, audit.ErrPeerGap) {
		t.Fatalf("a gap: %v", err)
	}
	// Everything, twice (a redelivery).
	for range 2 {
		if err := rc.store(ctx, msgs, rc.log); err != nil {
			t.Fatal(err)
		}
	}
	peers, err := st1.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].Origin != origin || peers[0].Size != 15 || peers[0].Checkpoints != 3 ||
		peers[0].StreamSeq != 20 {
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
	if err := rc.store(ctx, msgs, rc.log); err == nil {
		t.Fatal("stored with the database closed")
	}
}
