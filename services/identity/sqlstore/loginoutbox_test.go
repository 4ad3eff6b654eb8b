package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// loginOutboxStore is importStore's store with a login outbox.
func loginOutboxStore(t *testing.T) (*importFixture, *store.DB) {
	t.Helper()
	f := importStore(t, importStoreOpts{user: "alice"})
	lo, err := OpenLoginOutbox(context.Background(), f.s.db)
	if err != nil || lo == nil {
		t.Fatalf("OpenLoginOutbox = %v, %v", lo, err)
	}
	t.Cleanup(func() { _ = lo.Close() })
	f.s = New(f.s.db, WithLoginOutbox(lo))
	return f, lo
}

// outboxIDs are the event ids in db's outbox.
func outboxIDs(t *testing.T, db *store.DB) map[string]bool {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT id FROM events_outbox")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	return out
}

func loginEvent() events.Event {
	return events.Event{ID: events.NewID(), Subject: "uias.audit.identity.Authenticate", Type: "audit", Payload: []byte(`{}`)}
}

// A login that writes only its events (a right password on a clean gate)
// does not take the database's write lock: it goes through while another
// connection holds that lock, its event in the login outbox. Writes that
// change the gate still take the database, with their events.
func TestLoginOutboxTakesCleanLogins(t *testing.T) {
	ctx := context.Background()
	f, lo := loginOutboxStore(t)
	s := f.s
	clean := loginEvent()
	success := func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{ClearSources: true, LockedUntil: g.LockedUntil, Pending: g.Pending, PendingAt: g.PendingAt,
			Events: []events.Event{clean}}, true
	}

	// Another writer holds the database's write lock.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	// Far below the busy timeout: a write waiting for the lock fails.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = s.UpdateLoginGate(wctx, f.user.ID, "", success)
	cancel()
	if err != nil {
		t.Fatalf("a clean login while the database's write lock is held: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if !outboxIDs(t, lo)[clean.ID] || outboxIDs(t, s.db)[clean.ID] {
		t.Fatalf("the clean login's event should be in the login outbox only")
	}

	// A failure counted changes the row: the database, event and all.
	failed := loginEvent()
	err = s.UpdateLoginGate(ctx, f.user.ID, "192.0.2.1", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: g.FailedCount + 1, SourceFailures: g.SourceFailures + 1,
			Events: []events.Event{failed}}, true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !outboxIDs(t, s.db)[failed.ID] || outboxIDs(t, lo)[failed.ID] {
		t.Fatalf("the failure's event should be in the database's outbox only")
	}

	// A success after it clears the count and the source's failures: the
	// database again.
	cleared := loginEvent()
	clean = cleared
	var seen identity.LoginGate
	err = s.UpdateLoginGate(ctx, f.user.ID, "", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		seen = g
		return success(g)
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen.FailedCount != 1 {
		t.Fatalf("the success saw %d failures, want 1", seen.FailedCount)
	}
	if !outboxIDs(t, s.db)[cleared.ID] {
		t.Fatalf("the success that cleared the failures should write the database's outbox")
	}
	var n, sources int
	if err := s.db.QueryRowContext(ctx, "SELECT failed_count, (SELECT count(*) FROM login_failure_sources) FROM users WHERE id = ?",
		f.user.ID).Scan(&n, &sources); err != nil {
		t.Fatal(err)
	}
	if n != 0 || sources != 0 {
		t.Fatalf("after the success: %d failures, %d sources counted; want none", n, sources)
	}

	// A source's failures alone (the account's count clean) are cleared
	// through the database too.
	if _, err := s.db.ExecContext(ctx, "INSERT INTO login_failure_sources (user_id, source, failures) VALUES (?, 'elsewhere', 1)", f.user.ID); err != nil {
		t.Fatal(err)
	}
	clean = loginEvent()
	if err := s.UpdateLoginGate(ctx, f.user.ID, "", success); err != nil {
		t.Fatal(err)
	}
	if !outboxIDs(t, s.db)[clean.ID] {
		t.Fatalf("the success that cleared a source's failures should write the database's outbox")
	}

	// An unknown account, as without the outbox.
	if err := s.UpdateLoginGate(ctx, "u-nobody", "", success); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown account: %v, want not found", err)
	}
}

// Seen from a source: a login that leaves the source's count as it is
// (none counted) writes only its events, in the login outbox, with the
// database's write lock held elsewhere; one whose source has failures
// counted, which the write clears, goes through the database and clears
// them. decide asking for no write writes nothing, also under the lock.
func TestLoginOutboxSources(t *testing.T) {
	ctx := context.Background()
	f, lo := loginOutboxStore(t)
	s := f.s
	const src = "192.0.2.9"
	var ev events.Event
	keep := func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		// The source's count set to 0: unchanged without a row, a
		// delete with one.
		return identity.LoginGateWrite{FailedCount: g.FailedCount, NextAttemptAt: g.NextAttemptAt, LockedUntil: g.LockedUntil,
			Pending: g.Pending, PendingAt: g.PendingAt, Events: []events.Event{ev}}, true
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	ev = loginEvent()
	err = s.UpdateLoginGate(wctx, f.user.ID, src, keep)
	if err == nil {
		err = s.UpdateLoginGate(wctx, f.user.ID, src, func(identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{}, false
		})
	}
	cancel()
	if err != nil {
		t.Fatalf("with the database's write lock held elsewhere: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if !outboxIDs(t, lo)[ev.ID] {
		t.Fatal("the event of a login leaving its source's count alone should be in the login outbox")
	}

	if _, err := s.db.ExecContext(ctx, "INSERT INTO login_failure_sources (user_id, source, failures) VALUES (?, ?, 2)", f.user.ID, src); err != nil {
		t.Fatal(err)
	}
	ev = loginEvent()
	var seen int
	if err := s.UpdateLoginGate(ctx, f.user.ID, src, func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		seen = g.SourceFailures
		return keep(g)
	}); err != nil {
		t.Fatal(err)
	}
	if seen != 2 || !outboxIDs(t, s.db)[ev.ID] || outboxIDs(t, lo)[ev.ID] {
		t.Fatalf("a write clearing the source's 2 failures (seen %d) should go to the database", seen)
	}
	var left int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM login_failure_sources WHERE user_id = ?", f.user.ID).Scan(&left); err != nil || left != 0 {
		t.Fatalf("source rows left: %d, %v; want none", left, err)
	}
}

// A login outbox that cannot be written (closed here; a full disk) does
// not fail the login: its events go to the database's outbox.
func TestLoginOutboxFailingFallsBack(t *testing.T) {
	ctx := context.Background()
	f, lo := loginOutboxStore(t)
	if err := lo.Close(); err != nil {
		t.Fatal(err)
	}
	ev := loginEvent()
	if err := f.s.UpdateLoginGate(ctx, f.user.ID, "", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{ClearSources: true, Events: []events.Event{ev}}, true
	}); err != nil {
		t.Fatalf("a clean login with the login outbox closed: %v", err)
	}
	if !outboxIDs(t, f.s.db)[ev.ID] {
		t.Fatal("the event should be in the database's outbox")
	}
}

// Without a login outbox (none opened; PostgreSQL and in-memory
// databases have none) every login's events go to the database's outbox.
func TestNoLoginOutbox(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{user: "alice"})
	ev := loginEvent()
	if err := f.s.UpdateLoginGate(ctx, f.user.ID, "", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{ClearSources: true, Events: []events.Event{ev}}, true
	}); err != nil {
		t.Fatal(err)
	}
	if !outboxIDs(t, f.s.db)[ev.ID] {
		t.Fatal("the event should be in the database's outbox")
	}
	mem, err := store.Open(ctx, "sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if lo, err := OpenLoginOutbox(ctx, mem); lo != nil || err != nil {
		t.Fatalf("OpenLoginOutbox of an in-memory database = %v, %v; want none", lo, err)
	}
}
