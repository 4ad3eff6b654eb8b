package events_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
)

const secretPayload = `{"note":"top-secret-payload"}`

func startNATS(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	return eventstest.NATSIn(t, dir, port)
}

// connect is a client of s with the UIAS streams in place.
func connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js := eventstest.Connect(t, s)
	if err := events.EnsureStreams(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func migrate(t *testing.T, db *store.DB) {
	t.Helper()
	fsys := fstest.MapFS{"0001_outbox.sql": {Data: []byte(events.OutboxMigrationSQL(db.Dialect))}}
	if err := store.Migrate(context.Background(), db, "events-test", fsys); err != nil {
		t.Fatal(err)
	}
}

func runRelay(t *testing.T, r *events.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	})
}

// eventually polls cond until it holds (no timing assertion: the deadline only stops a
// hung test).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func addEvents(t *testing.T, db *store.DB, evs []events.Event, rollback bool) {
	t.Helper()
	errRollback := errors.New("rollback")
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		for _, ev := range evs {
			if err := events.AddToOutbox(context.Background(), tx, db, ev); err != nil {
				return err
			}
		}
		if rollback {
			return errRollback
		}
		return nil
	})
	if rollback && !errors.Is(err, errRollback) || !rollback && err != nil {
		t.Fatal(err)
	}
}

func makeEvents(prefix string, n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = events.Event{
			ID:      fmt.Sprintf("%s-%d-%s", prefix, i, events.NewID()),
			Subject: "uias.changes.identity.user.created",
			Type:    "user.created",
			Time:    time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC),
			Payload: []byte(fmt.Sprintf(`{"n":%d,"secret":%q}`, i, secretPayload)),
		}
	}
	return out
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// checkStream verifies the stream holds exactly want, in order, with ids as message ids.
func checkStream(t *testing.T, js jetstream.JetStream, name string, want []events.Event) {
	t.Helper()
	if got := streamMsgs(t, js, name); got != uint64(len(want)) {
		t.Fatalf("stream %s has %d messages, want %d", name, got, len(want))
	}
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(context.Background())
	for i, w := range want {
		raw, err := st.GetMsg(context.Background(), info.State.FirstSeq+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if id := raw.Header.Get(jetstream.MsgIDHeader); id != w.ID {
			t.Fatalf("message %d has id %q, want %q (order broken?)", i, id, w.ID)
		}
		if raw.Subject != w.Subject || string(raw.Data) != string(w.Payload) ||
			raw.Header.Get(events.HeaderType) != w.Type ||
			raw.Header.Get(events.HeaderTime) != w.Time.UTC().Format(time.RFC3339Nano) {
			t.Fatalf("message %d = %s %q %v, want %+v", i, raw.Subject, raw.Data, raw.Header, w)
		}
	}
}

func TestOutboxRelayDelivers(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			migrate(t, db)
			s := startNATS(t, t.TempDir(), -1)
			_, js := connect(t, s)
			r := events.NewRelay(db, js, zap.NewNop(), events.RelayOptions{BatchSize: 2})
			runRelay(t, r)

			committed := makeEvents("ok", 5)
			addEvents(t, db, committed, false)
			addEvents(t, db, makeEvents("rolledback", 3), true)
			audit := events.Event{ID: events.NewID(), Subject: "uias.audit.identity.login", Type: "audit"}
			rec, _ := json.Marshal(events.AuditRecord{Serial: "1", API: "Login", Result: "ok", Time: time.Now().UTC()})
			audit.Payload = rec
			addEvents(t, db, []events.Event{audit}, false)
			r.Kick()

			eventually(t, "outbox to drain", func() bool {
				n, err := r.Pending(ctx)
				return err == nil && n == 0
			})
			checkStream(t, js, events.StreamChanges, committed)
			if n := streamMsgs(t, js, events.StreamAudit); n != 1 {
				t.Fatalf("AUDIT has %d messages, want 1", n)
			}
			// A consumer can rebuild the event.
			cons, err := js.OrderedConsumer(ctx, events.StreamChanges, jetstream.OrderedConsumerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := events.EventFromMsg(m)
			if err != nil || ev.ID != committed[0].ID || !ev.Time.Equal(committed[0].Time) || ev.Type != committed[0].Type {
				t.Fatalf("EventFromMsg = %+v, %v", ev, err)
			}
		})
	}
}

func TestAddToOutboxValidation(t *testing.T) {
	db := storetest.OpenSQLite(t)
	migrate(t, db)
	ctx := context.Background()
	bad := []events.Event{
		{Subject: "uias.changes.x"},
		{ID: "a"},
		{ID: "a", Subject: "uias.changes.>"},
		{ID: "a", Subject: "has space"},
	}
	for _, ev := range bad {
		err := db.InTx(ctx, func(tx *sql.Tx) error { return events.AddToOutbox(ctx, tx, db, ev) })
		if err == nil {
			t.Fatalf("AddToOutbox(%+v) accepted", ev)
		}
	}
	ev := events.Event{ID: "dup", Subject: "uias.changes.x", Type: "x"}
	addEvents(t, db, []events.Event{ev}, false)
	err := db.InTx(ctx, func(tx *sql.Tx) error { return events.AddToOutbox(ctx, tx, db, ev) })
	if !store.IsUniqueViolation(err) {
		t.Fatalf("duplicate id: IsUniqueViolation(%v) = false", err)
	}
}

func TestDuplicatePublishIsDeduplicated(t *testing.T) {
	ctx := context.Background()
	s := startNATS(t, t.TempDir(), -1)
	_, js := connect(t, s)
	for i := 0; i < 2; i++ {
		ack, err := js.Publish(ctx, "uias.changes.test", []byte("x"), jetstream.WithMsgID("same-id"))
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != (i == 1) {
			t.Fatalf("publish %d: Duplicate = %v", i, ack.Duplicate)
		}
	}
	if n := streamMsgs(t, js, events.StreamChanges); n != 1 {
		t.Fatalf("stream has %d messages, want 1", n)
	}

	// The relay re-publishing an event (row re-added with the same id, as after a
	// failed delete) does not duplicate it on the stream.
	db := storetest.OpenSQLite(t)
	migrate(t, db)
	r := events.NewRelay(db, js, nil, events.RelayOptions{})
	evs := makeEvents("again", 1)
	for i := 0; i < 2; i++ {
		addEvents(t, db, evs, false)
		if n, err := r.Flush(ctx); err != nil || n != 1 {
			t.Fatalf("Flush = %d, %v", n, err)
		}
	}
	if n := streamMsgs(t, js, events.StreamChanges); n != 2 {
		t.Fatalf("stream has %d messages, want 2", n)
	}
}

func TestRelaySurvivesNATSOutage(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			migrate(t, db)
			storeDir := t.TempDir()
			s := startNATS(t, storeDir, -1)
			port := s.Addr().(*net.TCPAddr).Port
			nc, js := connect(t, s)

			core, logs := observer.New(zapcore.DebugLevel)
			r := events.NewRelay(db, js, zap.New(core), events.RelayOptions{
				PublishTimeout: 200 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
			})
			first := makeEvents("before", 2)
			addEvents(t, db, first, false)
			if n, err := r.Flush(ctx); err != nil || n != 2 {
				t.Fatalf("Flush = %d, %v", n, err)
			}
			runRelay(t, r)

			// NATS goes away.
			s.Shutdown()
			s.WaitForShutdown()
			eventually(t, "client to notice the outage", func() bool { return !nc.IsConnected() })

			during := makeEvents("during", 7)
			addEvents(t, db, during[:3], false)
			addEvents(t, db, makeEvents("rolledback", 2), true)
			addEvents(t, db, during[3:], false)
			r.Kick()
			eventually(t, "a failed publish to be logged", func() bool {
				return logs.FilterLevelExact(zapcore.WarnLevel).Len() > 0
			})
			if n, err := r.Pending(ctx); err != nil || n != len(during) {
				t.Fatalf("Pending = %d, %v; want %d", n, err, len(during))
			}
			for _, e := range logs.All() {
				line := e.Message + fmt.Sprint(e.ContextMap())
				if strings.Contains(line, "top-secret-payload") {
					t.Fatalf("payload leaked into logs: %s", line)
				}
			}

			// NATS comes back on the same port with the same store.
			startNATS(t, storeDir, port)
			eventually(t, "outbox to drain after recovery", func() bool {
				n, err := r.Pending(ctx)
				return err == nil && n == 0
			})
			checkStream(t, js, events.StreamChanges, append(first, during...))
		})
	}
}

func TestStartEmbeddedNATSErrors(t *testing.T) {
	if _, err := events.StartEmbeddedNATS("", "127.0.0.1", -1); err == nil {
		t.Fatal("want error for empty store dir")
	}
	s := startNATS(t, t.TempDir(), -1)
	port := s.Addr().(*net.TCPAddr).Port
	_, err := events.StartEmbeddedNATS(t.TempDir(), "127.0.0.1", port)
	if err == nil {
		t.Fatal("want error for a port in use")
	}
	t.Log(err)
}

// A publish refused midway through a batch (here: a message over the stream's
// size limit) stops the batch: the events before it are deleted from the
// outbox, it and those after it stay, and once the stream accepts it again
// everything is on the stream exactly once, in outbox order.
// A publish the stream refuses (here an event over its size limit) keeps
// only that event in the outbox: the rest of the batch goes out (a poison
// event does not hold the others back), and the refused one follows once
// the stream takes it, exactly once each.
func TestRelayRefusedPublishStaysOthersGo(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			migrate(t, db)
			s := startNATS(t, t.TempDir(), -1)
			_, js := connect(t, s)
			st, err := js.Stream(ctx, events.StreamChanges)
			if err != nil {
				t.Fatal(err)
			}
			cfg := st.CachedInfo().Config
			limited := cfg
			limited.MaxMsgSize = 1024
			if _, err := js.UpdateStream(ctx, limited); err != nil {
				t.Fatal(err)
			}

			evs := makeEvents("order", 6)
			evs[2].Payload = []byte(`"` + strings.Repeat("x", 4096) + `"`)
			addEvents(t, db, evs, false)
			r := events.NewRelay(db, js, nil, events.RelayOptions{})
			n, err := r.Flush(ctx)
			if err == nil || n != 5 || !strings.Contains(err.Error(), evs[2].ID) {
				t.Fatalf("Flush = %d, %v; want 5 published and the size error of %s", n, err, evs[2].ID)
			}
			if p, err := r.Pending(ctx); err != nil || p != 1 {
				t.Fatalf("Pending = %d, %v; want 1 (the refused event)", p, err)
			}
			others := []events.Event{evs[0], evs[1], evs[3], evs[4], evs[5]}
			checkStream(t, js, events.StreamChanges, others)

			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			if n, err := r.Flush(ctx); err != nil || n != 1 {
				t.Fatalf("Flush after the limit was lifted = %d, %v; want 1", n, err)
			}
			if p, err := r.Pending(ctx); err != nil || p != 0 {
				t.Fatalf("Pending = %d, %v; want 0", p, err)
			}
			checkStream(t, js, events.StreamChanges, append(others, evs[2]))
		})
	}
}

// When the published rows cannot be deleted (here a trigger refuses the
// DELETE), Flush reports it and the rows stay; the next Flush publishes them
// again, JetStream drops the duplicates, and the outbox empties.
func TestRelayDeleteFailureRepublishesWithoutDuplicates(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	migrate(t, db)
	s := startNATS(t, t.TempDir(), -1)
	_, js := connect(t, s)
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER keep_outbox BEFORE DELETE ON events_outbox
		BEGIN SELECT RAISE(ABORT, 'outbox rows are kept'); END`); err != nil {
		t.Fatal(err)
	}
	evs := makeEvents("kept", 3)
	addEvents(t, db, evs, false)
	r := events.NewRelay(db, js, nil, events.RelayOptions{})
	n, err := r.Flush(ctx)
	if err == nil || n != 3 || !strings.Contains(err.Error(), "delete 3 published events") {
		t.Fatalf("Flush = %d, %v; want 3 published and the delete error", n, err)
	}
	if p, err := r.Pending(ctx); err != nil || p != 3 {
		t.Fatalf("Pending = %d, %v; want 3", p, err)
	}
	checkStream(t, js, events.StreamChanges, evs)

	if _, err := db.ExecContext(ctx, `DROP TRIGGER keep_outbox`); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Flush(ctx); err != nil || n != 3 {
		t.Fatalf("second Flush = %d, %v", n, err)
	}
	if p, err := r.Pending(ctx); err != nil || p != 0 {
		t.Fatalf("Pending = %d, %v; want 0", p, err)
	}
	checkStream(t, js, events.StreamChanges, evs)
}

// EnsureStreams brings a stream's subjects and duplicate window back, but
// keeps the retention someone set (the audit component, an operator).
func TestEnsureStreamsKeepsRetention(t *testing.T) {
	s := startNATS(t, t.TempDir(), -1)
	_, js := connect(t, s)
	ctx := context.Background()
	st, err := js.Stream(ctx, events.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxAge, cfg.Duplicates = 9*24*time.Hour, time.Minute
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	st, _ = js.Stream(ctx, events.StreamAudit)
	if got := st.CachedInfo().Config; got.Duplicates != events.DuplicateWindow || got.MaxAge != 9*24*time.Hour {
		t.Fatalf("after EnsureStreams: duplicates %s, max age %s", got.Duplicates, got.MaxAge)
	}
}

// RelayOptions.Write runs the deletes of published rows on SQLite (a store
// that queues its writes passes its own); on PostgreSQL they stay in the
// batch's transaction under its lock.
func TestRelayDeletesThroughWrite(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			migrate(t, db)
			s := startNATS(t, t.TempDir(), -1)
			_, js := connect(t, s)
			var writes atomic.Int32
			r := events.NewRelay(db, js, zap.NewNop(), events.RelayOptions{BatchSize: 2,
				Write: func(ctx context.Context, fn func(tx *sql.Tx) error) error {
					writes.Add(1)
					return db.InTx(ctx, fn)
				}})
			runRelay(t, r)
			evs := makeEvents("write", 5)
			addEvents(t, db, evs, false)
			r.Kick()
			eventually(t, "outbox to drain", func() bool {
				n, err := r.Pending(ctx)
				return err == nil && n == 0
			})
			checkStream(t, js, events.StreamChanges, evs)
			got := writes.Load()
			if db.Dialect == store.Postgres && got != 0 {
				t.Fatalf("PostgreSQL: %d deletes through Write, want none", got)
			}
			if db.Dialect == store.SQLite && got < 3 {
				t.Fatalf("SQLite: %d deletes through Write, want one a batch of 2 (at least 3 for 5 events)", got)
			}
		})
	}
}
