package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/store"
	"go.uber.org/zap"
)

// An import's connection (issue 16: 1 M people in minutes). On SQLite an
// import's transactions run on one connection of their own, with a page
// cache of importCacheKiB instead of SQLite's 2 MiB. An import writes each
// person into about twenty B-trees, several of them at random places (the
// feature code's unique index, names, orgs): with 2 MiB the pages a
// transaction changed did not fit, so SQLite wrote them to the WAL before
// the commit to make room and read them back from it at the next row
// that needed them (a CPU profile of 100 k rows: a third of the import's
// CPU in those writes and reads). The cache belongs to the connection and
// lasts from one transaction to the next, unless another connection
// commits in between (a login): SQLite then starts the cache afresh.
//
// At the end the connection gets SQLite's cache size back, frees its
// pages and goes back to the pool (or is closed, if that fails).
// PostgreSQL needs nothing of this.
//
// The import keeps the WAL file bounded (boundWAL). SQLite writes the WAL
// from its start again only at a write transaction that begins after a
// checkpoint copied every frame back to the database and while no reader
// uses the WAL; a PASSIVE checkpoint beside an import that commits one
// transaction after another never sees both, so the WAL only grew (issue
// 16: 9.7-11.3 GB at 1 M people). Once the file passed importWALLimit the
// import starts the WAL over in its own turn, between two of its
// transactions (no writer of the store can append meanwhile): a RESTART
// checkpoint on its own connection copies the frames not copied yet,
// waits at most importWALWait for readers still on the WAL, and the next
// write writes the WAL from its start again. A reader that keeps its
// snapshot longer makes it give up: logged, the import goes on, and tries
// again later.
//
// The store's other writes wait for that turn (issue 16: a login's gate
// write waited up to 0.47 s, and while logins hashed those turns took a
// quarter of the import's time: its one-chunk transactions rewrite the
// same index pages, about 5x the WAL a row). So the import first lets a
// checkpoint beside copy the frames (PASSIVE, on another connection: no
// writer waits for it) and starts the WAL over in a turn at most
// importWALTailTurns after it began; and the file keeps its size (the
// import's connection has no journal_size_limit meanwhile): cutting it
// took 0.2-0.4 s of the turn. Only past 1.5 times the limit (the file
// grows a little at each late start-over) does the import truncate it
// (TRUNCATE), see boundWAL.

// importCacheKiB is an import connection's page cache (KiB): the index
// pages an import of a million people writes at random places (the
// feature codes' unique index alone is about 100 MiB) stay in it.
const importCacheKiB = 256 << 10

// importConn is an import's connection. While it lasts, the store's other
// writes (a login's gate write, an audit event) run on it too, each in
// its turn between two of the import's transactions: SQLite resets a
// connection's page cache whenever another connection has committed, so
// a login committing on a connection of its own made the import's next
// transaction read back every index page it touched (issue 16: one-chunk
// transactions between paced logins wrote at a fifth of the import's
// speed alone); and a write waiting for its turn here is woken as the
// transaction before ends, where one waiting for SQLite's write lock
// sleeps in the busy handler (1, 2, 5, ... up to 100 ms at a time).
//
// A write waiting for its turn counts as waiting in the store's DB
// (store.DB.CountWaiting), like one waiting to begin on the pool: the
// import ends its transaction early for it (Store.cut) and lets it go
// first (YieldWrites).
//
// The connection is detached (the writes go to the pool again) when the
// import ends, and when a transaction on it finds it unusable (closed by
// database/sql after a driver.ErrBadConn): a write that could not begin
// on it begins on the pool instead; the import's next transactions too.
//
// A write running in its turn must not write through the store again
// (nested, it would wait for the turn it holds): TestNoNestedWrites
// checks the package's code for it.
type importConn struct {
	// turn holds one token while a transaction runs on conn; waiting
	// writes queue on it in order (a channel hands the token straight
	// to the first waiter).
	turn chan struct{}
	// detached (read and set in a turn): the import ended or conn is
	// unusable; the writes that get their turn since go to the pool.
	detached bool
	conn     *sql.Conn
	// lastCheckpoint is when the import last began a checkpoint of the
	// WAL (read and set in the import's turns); checkpointing: one runs
	// (on a goroutine of its own, checkpoints waits for it).
	lastCheckpoint time.Time
	checkpointing  atomic.Bool
	checkpoints    sync.WaitGroup
	// turns counts the import's transactions on conn (in its turns).
	// copiedTurn is the turn in which the last checkpoint beside that
	// succeeded began: the frames before it are copied back, as far as
	// readers let it (-1: none since the WAL was last restarted). Set by
	// that checkpoint, read and reset in the import's turns while none
	// runs.
	turns      int64
	copiedTurn atomic.Int64
	// wrapped is the WAL file's size when the import last restarted the
	// WAL without truncating it (0: truncated, or not yet): SQLite writes
	// the WAL from its start again within the file, which grows past
	// that size only once the WAL holds more. Read and set in the
	// import's turns.
	wrapped int64
	// wal is the database's WAL file ("": not known, or not in WAL mode;
	// the import does not bound it). walRetry is when the import may try
	// to restart the WAL again after a try that could not (walBackoff:
	// the wait before that try). Read and set in the import's turns.
	wal        string
	walRetry   time.Time
	walBackoff time.Duration
}

type importConnKey struct{}

// BeginImport implements identity.Store: on SQLite it takes a connection
// of the pool for the import's transactions (ImportBatch with the context
// it returns) and sets it up (see above); until end, the store's other
// writes run on it too (writeTx). end restores it and returns it to the
// pool; writes waiting for a turn when it is called run before it
// returns. With a pool of one connection (an in-memory database), or on
// PostgreSQL, it changes nothing.
func (s *Store) BeginImport(ctx context.Context) (context.Context, func(), error) {
	if s.db.Dialect != store.SQLite {
		return ctx, func() {}, nil
	}
	if m := s.db.Stats().MaxOpenConnections; m > 0 && m < 2 {
		return ctx, func() {}, nil
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, classify(err, "import", "")
	}
	var cache int64
	err = c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache)
	if err == nil {
		_, err = c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", importCacheKiB))
	}
	var autoCheckpoint int64
	if err == nil {
		err = c.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&autoCheckpoint)
	}
	if err == nil {
		_, err = c.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0")
	}
	// The WAL file keeps its size when the import restarts the WAL
	// (boundWAL): SQLite would otherwise cut it to the limit at the next
	// write, in the turn the logins' writes wait for.
	var sizeLimit int64
	if err == nil {
		err = c.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&sizeLimit)
	}
	if err == nil {
		_, err = c.ExecContext(ctx, "PRAGMA journal_size_limit = -1")
	}
	restorable := err == nil
	ic := &importConn{turn: make(chan struct{}, 1), conn: c, lastCheckpoint: time.Now()}
	ic.copiedTurn.Store(-1)
	if err == nil && s.walLimit > 0 {
		wal, werr := walFile(ctx, c)
		if werr != nil && ctx.Err() == nil {
			s.log.Warn("import: the database's WAL file is not known; the import does not bound its size", zap.Error(werr))
		}
		ic.wal = wal
	}
	release := func() {
		// The other writes go to the pool again; those already queued
		// for a turn here run first (the channel's senders queue in
		// order), those queued since find it detached.
		ic.turn <- struct{}{}
		s.flushImportSearch(context.WithoutCancel(ctx), ic)
		s.detach(ic)
		<-ic.turn
		ic.checkpoints.Wait()
		if restorable {
			bg := context.WithoutCancel(ctx)
			_, err := c.ExecContext(bg, fmt.Sprintf("PRAGMA cache_size = %d", cache))
			if err == nil {
				_, err = c.ExecContext(bg, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", autoCheckpoint))
			}
			if err == nil {
				_, err = c.ExecContext(bg, fmt.Sprintf("PRAGMA journal_size_limit = %d", sizeLimit))
			}
			if err == nil {
				_, err = c.ExecContext(bg, "PRAGMA shrink_memory")
			}
			restorable = err == nil
		}
		if !restorable {
			// Not back to the pool with the import's settings: closed.
			_ = c.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = c.Close()
	}
	if err != nil {
		release()
		return nil, nil, classify(err, "import", "")
	}
	// One import at a time takes the other writes (a second one keeps
	// its connection to itself).
	s.imp.CompareAndSwap(nil, ic)
	var once sync.Once
	return context.WithValue(ctx, importConnKey{}, ic), func() { once.Do(release) }, nil
}

// flushImportSearch writes the FTS5 rows the import listed for later
// (indexImported), in ic's turn as the import ends: a search finds every
// person the import reports written. A failure is logged; the rows are
// written at the next start (Migrate) or the next import's end.
func (s *Store) flushImportSearch(ctx context.Context, ic *importConn) {
	flush := func(tx *sql.Tx) error { return flushSearch(ctx, tx) }
	var err error
	if ic.detached {
		err = s.db.InTx(ctx, flush)
	} else if began, e := s.onConn(ctx, ic, flush); !began && ic.detached {
		err = s.db.InTx(ctx, flush)
	} else {
		err = e
	}
	if err != nil {
		s.log.Error("import: writing the search rows of the imported people failed; they are written at the next import's end or at the next start", zap.Error(err))
	}
}

// detach sends the writes to the pool again (in ic's turn).
func (s *Store) detach(ic *importConn) {
	s.imp.CompareAndSwap(ic, nil)
	ic.detached = true
}

// importTx runs fn in a transaction on the import's connection (ctx from
// BeginImport) or, without one (or once it is detached), on the pool:
// committed when fn returns nil, rolled back when it returns an error or
// panics.
func (s *Store) importTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ic, _ := ctx.Value(importConnKey{}).(*importConn)
	if ic == nil {
		return s.db.InTx(ctx, fn)
	}
	if err := ic.take(ctx, nil); err != nil {
		return err
	}
	if ic.detached {
		ic.done()
		return s.db.InTx(ctx, fn)
	}
	began, err := s.onConn(ctx, ic, fn)
	if !began && ic.detached {
		ic.done()
		return s.db.InTx(ctx, fn)
	}
	if !ic.detached {
		ic.turns++
		s.boundWAL(ctx, ic)
	}
	if err == nil && time.Since(ic.lastCheckpoint) >= importCheckpointEvery {
		s.checkpointBeside(ctx, ic)
	}
	ic.done()
	return err
}

// checkpointBeside begins a checkpoint of the WAL from another connection,
// beside the import's next transactions (a PASSIVE checkpoint does not
// stop the writer): neither the logins' writes nor the import wait for it
// (its writes and fsyncs took a tenth of the import's time, issue 16), and
// the import's cache stays. Called in ic's turn; nothing when one runs.
func (s *Store) checkpointBeside(ctx context.Context, ic *importConn) {
	if !ic.checkpointing.CompareAndSwap(false, true) {
		return
	}
	ic.lastCheckpoint = time.Now()
	turn := ic.turns
	ic.checkpoints.Go(func() {
		defer ic.checkpointing.Store(false)
		if s.checkpointWAL(ctx) {
			ic.copiedTurn.Store(turn)
		}
	})
}

// importCheckpointEvery is how often a running import checkpoints the WAL
// beside its transactions (its connection does not: a commit that passes
// SQLite's checkpoint threshold would run one in the turn that the
// logins' writes wait for).
const importCheckpointEvery = time.Second

// checkpointWAL checkpoints the WAL without waiting for readers or
// writers (PASSIVE): it copies frames back to the database, but never
// restarts the WAL while the import writes (boundWAL does). A failure is
// logged (false): the next one copies the frames.
func (s *Store) checkpointWAL(ctx context.Context) bool {
	var err error
	if s.checkpoint != nil {
		err = s.checkpoint(ctx)
	} else {
		_, err = s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("import: WAL checkpoint failed; the WAL grows until the next one", zap.Error(err))
	}
	return err == nil
}

// importWALLimit is the WAL file size (bytes) past which a running import
// restarts the WAL (boundWAL). The file reaches about 1.5 times this plus
// what one import transaction writes (the pages it changed) before it is
// truncated.
const importWALLimit = 128 << 20

// importWALWait bounds how long the import's restart of the WAL waits for
// readers still on it (and for a writer on another connection): the
// store's other writes wait for the turn meanwhile.
const importWALWait = 100 * time.Millisecond

// importWALTailTurns is the most import transactions whose frames the
// restart in the import's turn may have to copy itself: more, and a
// checkpoint beside copies them first.
const importWALTailTurns = 2

// importWALRetry is the first wait before the import tries again to
// restart a WAL that a reader kept it from; each try that fails doubles
// it, up to importWALRetryMax.
const (
	importWALRetry    = time.Second
	importWALRetryMax = 30 * time.Second
)

// boundWAL restarts the WAL from its start when the file has passed
// s.walLimit (and the size at which it last restarted it, ic.wrapped), in
// ic's turn after one of the import's transactions (see importConn).
//
// A RESTART checkpoint: the file keeps its size (the import's connection
// has no journal_size_limit meanwhile) and the WAL is written from its
// start again; cutting the file there too (TRUNCATE) took 0.2-0.4 s in the
// turn. So the file grows by what was written between passing its size
// and the restart, each time; past 1.5 times the limit the import
// truncates it (TRUNCATE).
//
// Not while the checkpoint beside runs (SQLite lets one checkpoint run at
// a time; a later turn tries again), unless the file passed twice the
// limit: then the turn waits for it (the store's other writes too). Below 1.5 times the limit, not
// either before a checkpoint beside began at most importWALTailTurns
// turns ago and copied the frames before it (it begins one instead): the
// restart then copies only the frames of the last transactions. Nor
// until ic.walRetry after a try that could not complete: one that could
// not (a reader kept its snapshot on the WAL for longer than
// importWALWait) or failed is logged with the WAL's size only, and the
// import goes on.
func (s *Store) boundWAL(ctx context.Context, ic *importConn) {
	if ic.wal == "" || s.walLimit <= 0 || ctx.Err() != nil {
		return
	}
	if !ic.walRetry.IsZero() && time.Now().Before(ic.walRetry) {
		return
	}
	fi, err := os.Stat(ic.wal)
	if err != nil || fi.Size() <= max(s.walLimit, ic.wrapped) {
		return
	}
	hard := fi.Size() > 2*s.walLimit
	if ic.checkpointing.Load() && !hard {
		return // SQLite runs one checkpoint at a time
	}
	truncate := fi.Size() > s.walLimit+s.walLimit/2
	if turn := ic.copiedTurn.Load(); !truncate && (turn < 0 || ic.turns-turn > importWALTailTurns) {
		s.checkpointBeside(ctx, ic)
		return
	}
	if hard {
		ic.checkpoints.Wait()
	}
	busy, err := s.restartWAL(ctx, ic, truncate)
	if err == nil && !busy {
		ic.walRetry, ic.walBackoff = time.Time{}, 0
		ic.copiedTurn.Store(-1)
		ic.wrapped = fi.Size()
		if truncate {
			ic.wrapped = 0
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	ic.walBackoff = min(max(2*ic.walBackoff, importWALRetry), importWALRetryMax)
	ic.walRetry = time.Now().Add(ic.walBackoff)
	if err != nil {
		s.log.Warn("import: restarting the WAL failed; it grows until a later try",
			zap.Int64("wal_bytes", fi.Size()), zap.Duration("retry_in", ic.walBackoff), zap.Error(err))
		return
	}
	s.log.Warn("import: the WAL could not be restarted (a reader or another checkpoint still used it); it grows until a later try",
		zap.Int64("wal_bytes", fi.Size()), zap.Duration("retry_in", ic.walBackoff))
}

// restartWAL runs a RESTART checkpoint (TRUNCATE with truncate) on ic's
// connection (in its turn), waiting at most importWALWait for readers and
// writers, and reports whether it could not complete (busy: the WAL was
// not restarted). The connection's busy timeout is set back after it; if
// that fails the connection is closed and ic detached (its writes would
// otherwise give up on a lock after importWALWait).
func (s *Store) restartWAL(ctx context.Context, ic *importConn, truncate bool) (bool, error) {
	c := ic.conn
	var wait int64
	if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&wait); err != nil {
		return false, err
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", importWALWait.Milliseconds())); err != nil {
		return false, err
	}
	mode := "RESTART"
	if truncate {
		mode = "TRUNCATE"
	}
	// One row: busy (1 when it could not complete), the WAL's frames, the
	// frames copied back.
	var b, frames, copied int64
	err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&b, &frames, &copied)
	if _, rerr := c.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", wait)); rerr != nil {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		s.detach(ic)
		return false, errors.Join(err, rerr)
	}
	return err == nil && b != 0, err
}

// walFile is the path of the WAL file of c's database: "" when the
// database is not in WAL mode or has no file.
func walFile(ctx context.Context, c *sql.Conn) (string, error) {
	var mode string
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return "", err
	}
	if !strings.EqualFold(mode, "wal") {
		return "", nil
	}
	var file sql.NullString
	if err := c.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return "", err
	}
	if file.String == "" {
		return "", nil
	}
	return file.String + "-wal", nil
}

// WriteTx runs fn in a transaction as one of the store's writes (during
// an import on SQLite: on the import's connection in its turn), for the
// outbox relay's deletes (events.RelayOptions.Write). fn must not call
// the store.
func (s *Store) WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.writeTx(ctx, fn)
}

// writeTx runs one of the store's other writes: on the running import's
// connection in its turn (see importConn), else (or once it is detached)
// on the pool as db.InTx does.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ic := s.imp.Load()
	if ic == nil {
		return s.db.InTx(ctx, fn)
	}
	if err := ic.take(ctx, s.db); err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	if ic.detached {
		ic.done()
		return s.db.InTx(ctx, fn)
	}
	began, err := s.onConn(ctx, ic, fn)
	ic.done()
	if !began && ic.detached {
		// Nothing ran on the unusable connection.
		return s.db.InTx(ctx, fn)
	}
	return err
}

// onConn runs fn in a transaction on ic's connection (in its turn) and
// reports whether the transaction began. When it fails on a connection
// that is no longer usable, ic is detached.
func (s *Store) onConn(ctx context.Context, ic *importConn, fn func(tx *sql.Tx) error) (began bool, err error) {
	err = store.RunTx(ctx, ic.conn, func(tx *sql.Tx) error {
		began = true
		return fn(tx)
	})
	if err != nil && !ic.usable(ctx, err) {
		s.detach(ic)
	}
	return began, err
}

// usable reports whether ic's connection is still usable after a
// transaction on it failed with err: not when database/sql closed it
// (after the driver's ErrBadConn), or when it does not answer a ping.
func (ic *importConn) usable(ctx context.Context, err error) bool {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return false
	}
	if ctx.Err() != nil {
		return true // the caller gave up; nothing is known of the connection
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), importPingTimeout)
	defer cancel()
	return ic.conn.PingContext(pctx) == nil
}

// importPingTimeout bounds the ping that checks an import connection
// after a failed transaction.
const importPingTimeout = time.Second

// take waits for a turn on the connection. db, for one of the other
// writes (not the import's own transactions), counts it as waiting
// meanwhile. A caller whose ctx ends while it waits leaves with ctx's
// error and never gets a turn; done ends a turn.
func (ic *importConn) take(ctx context.Context, db *store.DB) error {
	if db != nil {
		db.CountWaiting(1)
		defer db.CountWaiting(-1)
	}
	select {
	case ic.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		// Both were ready and select took the turn: give it back.
		ic.done()
		return err
	}
	return nil
}

func (ic *importConn) done() { <-ic.turn }
