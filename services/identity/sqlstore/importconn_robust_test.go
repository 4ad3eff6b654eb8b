package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// A broken import connection (database/sql closed it after the driver's
// ErrBadConn) does not fail the writes routed to it: the write that finds
// it broken begins on the pool, the connection is detached (the next
// writes go to the pool at once), and the import's next batches run on
// the pool too.
func TestImportConnectionBrokenFallsBackToPool(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	if err := f.gate(ctx, 1); err != nil {
		t.Fatal(err)
	}
	_ = f.ic.conn.Raw(func(any) error { return driver.ErrBadConn }) // database/sql closes it
	if err := f.gate(ctx, 2); err != nil {
		t.Fatalf("a write after the import's connection broke: %v", err)
	}
	if f.s.imp.Load() != nil || !f.ic.detached {
		t.Fatal("the broken connection still takes the other writes")
	}
	if err := f.gate(ctx, 3); err != nil {
		t.Fatalf("the next write: %v", err)
	}
	if got := f.failedCount(t); got != 3 {
		t.Fatalf("failed count %d, want 3", got)
	}
	if err := f.importUsers(t, "broken", 3); err != nil {
		t.Fatalf("an import batch after its connection broke: %v", err)
	}
	f.end()
	if n, _, err := f.s.ListUsers(ctx, identity.UserFilter{Query: "broken"}, identity.Page{}); err != nil || len(n) != 3 {
		t.Fatalf("imported after the break: %d (%v), want 3", len(n), err)
	}
}

// The import's own batch finding its connection broken detaches it too
// and runs on the pool: the other writes stop waiting for it.
func TestImportConnectionBrokenAtImportBatch(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	_ = f.ic.conn.Raw(func(any) error { return driver.ErrBadConn })
	if err := f.importUsers(t, "batch", 2); err != nil {
		t.Fatalf("an import batch on a broken connection: %v", err)
	}
	if f.s.imp.Load() != nil {
		t.Fatal("the broken connection still takes the other writes")
	}
	if err := f.gate(ctx, 4); err != nil || f.failedCount(t) != 4 {
		t.Fatalf("a write after the import found its connection broken: %v", err)
	}
}

// end with writes queued for a turn: they run (on the import's
// connection, in order) before end returns; the writes after it go to the
// pool, and the connection goes back with SQLite's settings.
func TestImportConnectionEndWithWritesQueued(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	if err := f.ic.take(ctx, nil); err != nil { // the import's transaction in flight
		t.Fatal(err)
	}
	const queued = 3
	errs := make(chan error, queued)
	for i := range queued {
		go func() {
			errs <- f.s.AppendEvents(ctx, otherEvent(fmt.Sprintf("ev-queued-%d", i)))
		}()
	}
	f.waitWaiting(t, queued)
	ended := make(chan struct{})
	go func() { f.end(); close(ended) }()
	f.ic.done()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("end does not return")
	}
	for range queued {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("a write queued when the import ended: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a write queued when the import ended does not return")
		}
	}
	if f.s.imp.Load() != nil {
		t.Fatal("after end: the other writes still go to the import's connection")
	}
	// None of the queued writes is counted as waiting any more. The
	// store's own background writes (its search indexer's) may be counted
	// for a moment, so the count must drop to 0, not be 0 at this instant.
	for deadline := time.Now().Add(2 * time.Second); f.s.db.WritesWaiting() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after end: %d writes still counted as waiting", f.s.db.WritesWaiting())
		}
	}
	var n int
	if err := f.s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events_outbox WHERE id LIKE 'ev-queued-%'").Scan(&n); err != nil || n != queued {
		t.Fatalf("%d queued events written (%v), want %d", n, err, queued)
	}
	if err := f.gate(ctx, 5); err != nil {
		t.Fatal(err)
	}
}

// The import's transaction failing while other writes wait: it rolls
// back, the waiting writes run, and the import's next batch gets a turn.
func TestImportConnectionImportFailsWhileWritesWait(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	boom := errors.New("boom")
	gateErr := make(chan error, 1)
	err := f.s.importTx(f.ictx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET display_name = 'rolled back' WHERE id = ?", f.user.ID); err != nil {
			return err
		}
		go func() { gateErr <- f.gate(ctx, 6) }()
		f.waitWaiting(t, 1)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("import transaction: %v, want boom", err)
	}
	if err := <-gateErr; err != nil {
		t.Fatalf("the write waiting while the import's transaction failed: %v", err)
	}
	u, err := f.s.GetUser(ctx, f.user.ID)
	if err != nil || u.DisplayName != "Robust" || u.FailedCount != 6 {
		t.Fatalf("after: %+v (%v), want the import's change rolled back and the gate write kept", u, err)
	}
	if err := f.importUsers(t, "after", 2); err != nil {
		t.Fatalf("the import's next batch: %v", err)
	}
	if f.s.imp.Load() != f.ic {
		t.Fatal("a failed import transaction detached a usable connection")
	}
}

// A write whose caller gives up while it waits for its turn leaves: it is
// no longer counted as waiting, its goroutine returns, and it never runs
// (not after the turn frees either).
func TestImportConnectionWaiterCancelled(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	if err := f.ic.take(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- f.s.AppendEvents(cctx, otherEvent("ev-gave-up"))
	}()
	f.waitWaiting(t, 1)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the cancelled write: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled write still waits")
	}
	if n := f.s.db.WritesWaiting(); n != 0 {
		t.Fatalf("%d writes counted as waiting after the caller left", n)
	}
	f.ic.done()
	if err := f.gate(ctx, 7); err != nil { // a turn after the one it waited for
		t.Fatal(err)
	}
	var n int
	if err := f.s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events_outbox WHERE id = 'ev-gave-up'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the cancelled write ran (%d rows, %v)", n, err)
	}
	// A context already done: no turn taken, even with the turn free.
	if err := f.ic.take(cctx, f.s.db); !errors.Is(err, context.Canceled) {
		t.Fatalf("take with a done context: %v", err)
	}
	select {
	case f.ic.turn <- struct{}{}:
		f.ic.done()
	default:
		t.Fatal("take with a done context kept the turn")
	}
}

// A write waiting for its turn on the import's connection counts as
// waiting in the store's DB, like one waiting for the pool: YieldWrites
// (the import's pause before a batch) waits for it, and cut ends the
// import's transaction for it.
func TestImportConnectionWaitersCountInDB(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	if err := f.ic.take(ctx, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.gate(ctx, 8) }()
	f.waitWaiting(t, 1) // base: the DB counted none
	if !f.s.cut() {
		t.Fatal("cut with a write waiting for its turn")
	}
	yielded := make(chan error, 1)
	go func() { yielded <- f.s.YieldWrites(ctx) }()
	select {
	case err := <-yielded:
		t.Fatalf("YieldWrites returned (%v) while a write waits for its turn", err)
	case <-time.After(20 * time.Millisecond):
	}
	f.ic.done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-yielded; err != nil {
		t.Fatal(err)
	}
	if f.s.db.WritesWaiting() != 0 || f.s.cut() {
		t.Fatal("still counted as waiting after the write ran")
	}
}

// A running import's WAL checkpoint that fails is logged (with the error
// only: no row's data).
func TestImportCheckpointFailureLogged(t *testing.T) {
	f, logs := newLoggedImportFixture(t)
	f.s.checkpoint = func(context.Context) (walCheckpoint, error) { return walCheckpoint{}, errors.New("disk I/O error") }
	f.ic.lastCheckpoint = time.Time{} // due
	if err := f.importUsers(t, "ckpt", 2); err != nil {
		t.Fatal(err)
	}
	f.ic.checkpoints.Wait()
	entries := logs.All()
	if len(entries) != 1 || !strings.Contains(entries[0].Message, "checkpoint") {
		t.Fatalf("logged %+v, want one checkpoint failure", entries)
	}
	logFieldsOnly(t, entries, "ckpt", "error")
	// Not due again within importCheckpointEvery.
	err := f.importUsers(t, "ckpt2-", 2)
	f.ic.checkpoints.Wait()
	if err != nil || logs.Len() != 1 {
		t.Fatalf("second batch: %v, %d log entries", err, logs.Len())
	}
}

// The import does not wait for its WAL checkpoint: the batches after the
// one that began it run while it runs; one runs at a time; end waits for
// it.
func TestImportCheckpointBesideImport(t *testing.T) {
	f := newImportFixture(t)
	var calls atomic.Int32
	release := make(chan struct{})
	f.s.checkpoint = func(context.Context) (walCheckpoint, error) {
		calls.Add(1)
		<-release
		return walCheckpoint{}, nil
	}
	f.ic.lastCheckpoint = time.Time{} // due
	done := make(chan error, 1)
	go func() {
		for b := range 3 {
			if err := f.importUsers(t, fmt.Sprintf("beside%d-", b), 2); err != nil {
				done <- err
				return
			}
			f.ic.lastCheckpoint = time.Time{} // due again (in the import's goroutine, between its turns)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the import waits for its checkpoint")
	}
	// The checkpoint begins on a goroutine of its own: on a busy machine
	// the three batches may end before it has run its first line.
	for deadline := time.Now().Add(10 * time.Second); calls.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		close(release)
		t.Fatalf("%d checkpoints began, want 1 at a time", n)
	}
	ended := make(chan struct{})
	go func() { f.end(); close(ended) }()
	select {
	case <-ended:
		t.Fatal("end returned while the checkpoint runs")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-ended
}

// Writes from many goroutines during an import's batches: each one runs
// once, on the import's connection or (after end) on the pool.
func TestImportConnectionConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			errs <- f.s.AppendEvents(ctx, otherEvent(fmt.Sprintf("ev-conc-%d", i)))
		})
	}
	for b := range 5 {
		if err := f.importUsers(t, fmt.Sprintf("conc%d-", b), 5); err != nil {
			t.Fatal(err)
		}
	}
	f.end()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := f.s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events_outbox WHERE id LIKE 'ev-conc-%'").Scan(&n); err != nil || n != 40 {
		t.Fatalf("%d events (%v), want 40", n, err)
	}
}

// WriteTx (the outbox relay's deletes) runs, during an import, on the
// import's connection: no other connection commits (the import's
// data_version stays), so the import's page cache stays.
func TestWriteTxOnImportConnection(t *testing.T) {
	ctx := context.Background()
	f := newImportFixture(t)
	if err := f.s.AppendEvents(ctx, otherEvent("ev-relayed")); err != nil {
		t.Fatal(err)
	}
	var v0, v1 int64
	if err := f.ic.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v0); err != nil {
		t.Fatal(err)
	}
	if err := f.s.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM events_outbox WHERE id = 'ev-relayed'")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.ic.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v1); err != nil || v1 != v0 {
		t.Fatalf("data_version %d -> %d (%v): the delete committed on another connection", v0, v1, err)
	}
	var n int
	if err := f.s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events_outbox WHERE id = 'ev-relayed'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows left (%v)", n, err)
	}
}
