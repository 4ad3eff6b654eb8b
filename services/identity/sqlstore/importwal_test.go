package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
	"modernc.org/sqlite"
)

// walTestLimit is the WAL limit of these tests: above what one of their
// transactions (walTestBatch people) writes to the WAL.
const (
	walTestLimit   = 512 << 10
	walTestBatch   = 100
	walTestBatches = 80
)

// walWatch samples the size of a WAL file every 200 us, to see its peaks
// between the import's truncations.
type walWatch struct {
	path   string
	peak   atomic.Int64
	shrank atomic.Bool
	stop   chan struct{}
	done   chan struct{}
}

func watchWAL(path string) *walWatch {
	w := &walWatch{path: path, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		var last int64
		for {
			n := w.sample()
			if n < last {
				w.shrank.Store(true)
			}
			last = n
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// sample stats the file now, counts it in the peak and returns its size.
func (w *walWatch) sample() int64 {
	fi, err := os.Stat(w.path)
	if err != nil {
		return 0
	}
	n := fi.Size()
	for {
		p := w.peak.Load()
		if n <= p || w.peak.CompareAndSwap(p, n) {
			return n
		}
	}
}

func (w *walWatch) end() (peak int64, shrank bool) {
	close(w.stop)
	<-w.done
	return w.peak.Load(), w.shrank.Load()
}

// walPathOf is the WAL file of the store's database, from SQLite.
func walPathOf(t *testing.T, s *Store) string {
	t.Helper()
	var file string
	if err := s.db.QueryRowContext(context.Background(), "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil || file == "" {
		t.Fatalf("database file %q: %v", file, err)
	}
	return file + "-wal"
}

// walImport imports walTestBatches batches of walTestBatch people with
// the store's WAL limit set to limit (0: none; the PASSIVE checkpoint
// beside the import runs as in production) and returns the WAL file's
// largest size meanwhile and whether it shrank.
func walImport(t *testing.T, limit int64) (*importFixture, int64, bool) {
	t.Helper()
	f := newImportFixture(t)
	f.s.walLimit = limit
	path := walPathOf(t, f.s)
	if f.ic.wal != path {
		t.Fatalf("the import's WAL file %q, want %q", f.ic.wal, path)
	}
	// The import's own WAL only (not the migrations').
	if _, err := f.s.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	w := watchWAL(path)
	for b := range walTestBatches {
		if err := f.importUsers(t, fmt.Sprintf("wal%02d-", b), walTestBatch); err != nil {
			w.end()
			t.Fatalf("batch %d: %v", b, err)
		}
		w.sample()
	}
	peak, shrank := w.end()
	// The restarts gave the connection its busy timeout back.
	var busy int64
	if err := f.ic.conn.QueryRowContext(context.Background(), "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 5000 {
		t.Fatalf("import connection busy_timeout %d (%v), want 5000", busy, err)
	}
	return f, peak, shrank
}

// An import keeps the WAL file near the limit (issue 16: without the
// restarts the WAL grew to 9.7-11.3 GB at 1 M people): it starts the WAL
// over in its turn once the file passed the limit, and truncates the file
// past 1.5 times the limit (at most twice the limit while a checkpoint
// beside runs, plus one transaction). The same import without a limit
// grows it past the bound; every person is there after, and found by
// search.
func TestImportBoundsWAL(t *testing.T) {
	const bound = 4 * walTestLimit
	ctx := context.Background()
	// The FTS5 rows of 1000 people at a time: no transaction writes more
	// than the limit.
	defer func(n int) { importSearchRows = n }(importSearchRows)
	importSearchRows = 1000

	f, peak, shrank := walImport(t, walTestLimit)
	t.Logf("WAL with a limit of %d KiB: peak %d KiB", walTestLimit>>10, peak>>10)
	if peak >= bound || !shrank {
		t.Fatalf("WAL file peaked at %d bytes (shrank: %v), want below %d and truncated", peak, shrank, bound)
	}
	f.end()
	var n int
	if err := f.s.db.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != 1+walTestBatch*walTestBatches {
		t.Fatalf("%d people after the import (%v), want %d", n, err, 1+walTestBatch*walTestBatches)
	}
	for _, b := range []int{0, walTestBatches / 2, walTestBatches - 1} {
		// wal07-4, wal07-40 ... wal07-49.
		q := fmt.Sprintf("wal%02d-4", b)
		found, _, err := f.s.ListUsers(ctx, identity.UserFilter{Query: q}, identity.Page{})
		if err != nil || len(found) != 11 {
			t.Fatalf("search %q after the import: %d found (%v), want 11", q, len(found), err)
		}
	}
	var check string
	if err := f.s.db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("quick_check %q (%v)", check, err)
	}

	_, peak0, _ := walImport(t, 0)
	t.Logf("WAL without a limit: peak %d KiB", peak0>>10)
	if peak0 < bound {
		t.Fatalf("without a limit the WAL file peaked at %d bytes, below %d: the test does not show the bound", peak0, bound)
	}
}

// A reader that keeps its snapshot on the WAL while the import passes the
// limit does not make the import fail: the restart gives up after
// importWALWait, is logged (sizes only, no row's data) and tried again
// later; once the reader is gone it restarts the WAL.
func TestImportWALReaderKeepsSnapshot(t *testing.T) {
	ctx := context.Background()
	f, logs := newLoggedImportFixture(t)
	f.s.walLimit = walTestLimit
	path := walPathOf(t, f.s)

	rtx, err := f.s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rtx.Rollback() }()
	count := func() int {
		t.Helper()
		var n int
		if err := rtx.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	for b := range 20 {
		if err := f.importUsers(t, fmt.Sprintf("snap%02d-", b), walTestBatch); err != nil {
			t.Fatalf("batch %d beside a reader's snapshot: %v", b, err)
		}
	}
	if got := count(); got != before {
		t.Fatalf("the reader's snapshot changed: %d people, then %d", before, got)
	}
	entries := logs.FilterMessageSnippet("WAL could not be restarted").All()
	if len(entries) == 0 {
		t.Fatalf("no warning of the WAL not restarted; logged %+v", logs.All())
	}
	logFieldsOnly(t, entries, "snap", "wal_bytes", "retry_in")
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}

	// The reader gone, the next try (due now; the checkpoint beside
	// done) truncates the file.
	f.ic.checkpoints.Wait()
	f.ic.walRetry = time.Time{}
	if err := f.importUsers(t, "snap-after-", walTestBatch); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > walTestLimit {
		t.Fatalf("WAL file after the reader ended: %d bytes, want at most %d", fi.Size(), walTestLimit)
	}
}

// When the import cannot set its connection's busy timeout back after it
// restarted the WAL, the connection is closed (not back in the pool with
// the restart's 100 ms busy timeout and the import's page cache) and the
// import goes on on the pool: it finishes, every person is written and
// found, and one warning is logged without anyone's data. SQLite refuses
// the statement that sets the timeout back, and no other (an authorizer
// on the import's connection denies it): a PRAGMA busy_timeout touches no
// file, so a database made unwritable does not fail it, and a connection
// closed from outside fails whichever of the restart's statements comes
// next.
func TestImportWALBusyTimeoutNotSetBack(t *testing.T) {
	ctx := context.Background()
	f, logs := newLoggedImportFixture(t)
	f.s.walLimit = walTestLimit
	// No checkpoint beside the import (no restart while one runs) however
	// slow the host: the first batch past the limit restarts the WAL.
	f.ic.lastCheckpoint = time.Now().Add(time.Hour)
	var denied atomic.Int32
	restartWait := strconv.FormatInt(importWALWait.Milliseconds(), 10)
	if err := f.ic.conn.Raw(func(dc any) error {
		a, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("%T has no authorizer", dc)
		}
		return a.RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, pragma, value, _, _ string) sqlite.AuthorizerReturnCode {
			// Setting it (back) to anything but the restart's wait.
			if action == sqlite.AuthPragma && strings.EqualFold(pragma, "busy_timeout") && value != "" && value != restartWait {
				denied.Add(1)
				return sqlite.AuthorizerDeny
			}
			return sqlite.AuthorizerOK
		})
	}); err != nil {
		t.Fatal(err)
	}

	const batches = 12
	for b := range batches {
		if err := f.importUsers(t, fmt.Sprintf("lost%02d-", b), walTestBatch); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		// Detached at once, not when a later transaction finds the
		// connection closed.
		if denied.Load() > 0 && !f.ic.detached {
			t.Fatalf("batch %d: the busy timeout was not set back and the connection still takes the writes", b)
		}
	}
	if n := denied.Load(); n != 1 {
		t.Fatalf("the busy timeout was set back %d times, want one try (then the connection is closed)", n)
	}
	if !f.ic.detached || f.s.imp.Load() != nil {
		t.Fatal("the import still runs on the connection whose busy timeout was not set back")
	}
	if err := f.gate(ctx, 1); err != nil || f.failedCount(t) != 1 {
		t.Fatalf("a login's write after: %v", err)
	}
	f.end()

	var n int
	if err := f.s.db.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != 1+walTestBatch*batches {
		t.Fatalf("%d people after the import (%v), want %d", n, err, 1+walTestBatch*batches)
	}
	for b := range batches {
		// Not a login name's start: the search rows (FTS5), those the
		// import listed for later on its connection included.
		q := fmt.Sprintf("ost%02d-", b)
		found, _, err := f.s.ListUsers(ctx, identity.UserFilter{Query: q}, identity.Page{Size: 500})
		if err != nil || len(found) != walTestBatch {
			t.Fatalf("search %q after the import: %d found (%v), want %d", q, len(found), err, walTestBatch)
		}
	}

	entries := logs.All()
	if len(entries) != 1 || !strings.Contains(entries[0].Message, "restarting the WAL failed") {
		t.Fatalf("logged %+v, want one warning of the failed restart", entries)
	}
	if err := entries[0].ContextMap()["error"]; !strings.Contains(fmt.Sprint(err), "not authorized") {
		t.Fatalf("logged error %v, want SQLite's refusal", err)
	}
	logFieldsOnly(t, entries, "lost", "wal_bytes", "retry_in", "error")

	// Every connection of the pool (four at once) has the busy timeout
	// and page cache it was opened with.
	conns := make([]*sql.Conn, 4)
	for i := range conns {
		c, err := f.s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		var busy, cache int64
		if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 5000 {
			t.Fatalf("connection %d: busy_timeout %d (%v), want 5000", i, busy, err)
		}
		if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil || cache == -importCacheKiB {
			t.Fatalf("connection %d: the import's cache_size %d (%v)", i, cache, err)
		}
	}
}

// The import restarts the WAL in its turn (where the store's other writes
// wait) only after a checkpoint beside copied its frames: the first turn
// past the limit begins that checkpoint and leaves the file; while it runs
// the turns leave the file too; the turn right after it restarts the WAL.
// Past 1.5 times the limit the first turn after the checkpoint beside
// truncates the file; past twice the limit a turn waits for the
// checkpoint beside and truncates it at once.
func TestImportWALCopiedBesideFirst(t *testing.T) {
	ctx := context.Background()
	var (
		calls atomic.Int32
		mu    sync.Mutex
		hold  = make(chan struct{}) // closed: the checkpoints beside run at once
	)
	held := func() chan struct{} { mu.Lock(); defer mu.Unlock(); return hold }
	release := func() {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-hold:
		default:
			close(hold)
		}
	}
	f := newImportFixture(t)
	t.Cleanup(release) // before the fixture's end (cleanups run last first)
	f.s.walLimit = walTestLimit
	path := walPathOf(t, f.s)
	f.s.checkpoint = func(ctx context.Context) error {
		h := held()
		calls.Add(1)
		<-h
		_, err := f.s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		return err
	}
	waitCalls := func(n int32) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); calls.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d checkpoints beside began, want %d", calls.Load(), n)
			}
		}
		if got := calls.Load(); got != n {
			t.Fatalf("%d checkpoints beside began, want %d", got, n)
		}
	}
	f.ic.lastCheckpoint = time.Now().Add(time.Hour) // none on the clock
	// The import's own WAL only (not the migrations').
	if _, err := f.s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	const batch = 10
	b := 0
	next := func() {
		t.Helper()
		b++
		if err := f.importUsers(t, fmt.Sprintf("cb%03d-", b), batch); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
	}
	for size() <= walTestLimit {
		next()
	}
	// The turn past the limit began a checkpoint beside and left the file.
	waitCalls(1)
	if size() <= walTestLimit {
		t.Fatalf("WAL %d bytes: restarted before a checkpoint beside copied it", size())
	}
	// While it runs (held), the turns leave the file.
	for range importWALTailTurns {
		next()
	}
	waitCalls(1)
	if f.ic.wrapped != 0 || size() <= walTestLimit {
		t.Fatalf("WAL %d bytes, restarted at %d: restarted while the checkpoint beside runs", size(), f.ic.wrapped)
	}
	release()
	f.ic.checkpoints.Wait()
	// It began more than importWALTailTurns turns ago: the next turn
	// begins another (copying the frames of the last ones), the one after
	// it restarts the WAL (RESTART: the file keeps its size, and the WAL
	// is written from its start again).
	next()
	f.ic.checkpoints.Wait()
	waitCalls(2)
	if f.ic.wrapped != 0 {
		t.Fatalf("restarted with %d turns' frames not copied", importWALTailTurns+1)
	}
	next()
	f.ic.checkpoints.Wait()
	waitCalls(2)
	wrapped := size()
	if f.ic.wrapped != wrapped {
		t.Fatalf("not restarted (at %d) after the checkpoint beside copied the WAL (%d bytes)", f.ic.wrapped, wrapped)
	}
	next()
	if s := size(); s != wrapped {
		t.Fatalf("WAL %d bytes after a batch, %d before: not written from its start", s, wrapped)
	}

	// Past 1.5 times the limit with a checkpoint beside held: the turns
	// leave the file while it runs (none waits for it), the first one
	// after it truncates the WAL.
	mu.Lock()
	hold = make(chan struct{})
	mu.Unlock()
	calls.Store(0)
	for size() <= walTestLimit+walTestLimit/2 {
		next()
	}
	waitCalls(1)
	next()
	if s := size(); s <= walTestLimit+walTestLimit/2 {
		t.Fatalf("WAL %d bytes: restarted while the checkpoint beside runs", s)
	}
	release()
	f.ic.checkpoints.Wait()
	next()
	if s := size(); s > walTestLimit/2 || f.ic.wrapped != 0 {
		t.Fatalf("WAL %d bytes after the turn past 1.5 times the limit, want it truncated", s)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d checkpoints beside began, want 1", n)
	}
	// Past twice the limit with a checkpoint beside held: the turn waits
	// for it, then truncates the WAL.
	mu.Lock()
	hold = make(chan struct{})
	mu.Unlock()
	calls.Store(0)
	for waited := false; !waited; {
		b++
		done := make(chan error, 1)
		go func(b int) { done <- f.importUsers(t, fmt.Sprintf("cb%03d-", b), batch) }(b)
		for !waited {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				if size() > 2*walTestLimit {
					t.Fatalf("a turn left the WAL at %d bytes, past twice the limit", size())
				}
			case <-time.After(20 * time.Millisecond):
				// The turn past twice the limit waits for the
				// checkpoint beside; release it.
				waited = size() > 2*walTestLimit
				if waited {
					release()
					if err := <-done; err != nil {
						t.Fatal(err)
					}
				}
				continue
			}
			break
		}
	}
	if s := size(); s > walTestLimit/2 || f.ic.wrapped != 0 {
		t.Fatalf("WAL %d bytes after the turn past twice the limit, want it truncated", s)
	}
	var n int
	if err := f.s.db.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != 1+batch*b {
		t.Fatalf("%d people (%v), want %d", n, err, 1+batch*b)
	}
}
