package sqlstore

import (
	"bytes"
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
// cache of up to identity.import_cache_mib (WithImportCache) instead of
// SQLite's 2 MiB. An import writes each person into about twenty
// B-trees, several of them at random places (the feature code's unique
// index, names, orgs): with 2 MiB the pages a
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
// 16: 9.7-11.3 GB at 1 M people). Nor may the import start it over with
// a RESTART or TRUNCATE checkpoint in its turn while logins write: those
// hold every writer while they copy, sync and wait for readers, and the
// logins' gate writes waited for them (issue 16: 0.1-0.5 s a turn, the
// gate write's p99 at about their longest). So once the WAL is due
// (it holds half of importWALLimit, or of the file when larger),
// a checkpoint beside (PASSIVE, on another connection: no writer waits
// for it) copies its frames while the import goes on; then the import
// stops writing (out of its turn: the other writes go on) and copies the
// rest the same way (copyTail), until a PASSIVE checkpoint copied every
// frame; in its next turn it checks that no write appended a frame since
// (or copies those few, settleTail), and its transaction starts the WAL
// over by itself, in the same file (the import's connection has no
// journal_size_limit meanwhile: cutting the file took 0.2-0.4 s). A
// reader that kept an older snapshot at that moment keeps SQLite from it:
// the WAL grows on, and the next due turn tries again. A checkpoint that
// holds the writers runs only where no login waits for it: past 1.5
// times the limit while no other write waited or ran for
// importQuietWindow (TRUNCATE: the file shrinks), or past twice the
// limit whatever waits (the bound's last resort).

// DefaultImportCacheMiB is the most page cache an import's connection
// keeps (MiB; WithImportCache, identity.import_cache_mib): the index pages
// an import of a million people writes (the feature codes' unique index
// alone is about 100 MiB) stay in it. SQLite allocates it as the import
// touches pages, so a small import uses little of it. At 1 M people, 256
// MiB left the import reading back a sixth of its CPU's worth of pages
// (pread: 30 s of 204 s of CPU for 1 M rows); 1 GiB halved those reads
// and cut the import's CPU by 7% (issue 16). MaxImportCacheMiB bounds
// the setting.
const (
	DefaultImportCacheMiB = 1024
	MaxImportCacheMiB     = 64 << 10
)

// WithImportCache sets the most page cache (MiB) an import's connection
// keeps on SQLite (default DefaultImportCacheMiB; <= 0 keeps the default).
func WithImportCache(mib int) Option {
	return func(s *Store) {
		if mib > 0 {
			s.importCacheMiB = mib
		}
	}
}

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
	// (beside, on a goroutine of its own, checkpoints waits for it; or
	// copyTail's).
	lastCheckpoint time.Time
	checkpointing  atomic.Bool
	checkpoints    sync.WaitGroup
	// copied: a checkpoint beside succeeded since the WAL last started
	// over (set by it, reset in the import's turns while none runs).
	// frameBytes is the size of a WAL frame (walHolds).
	copied     atomic.Bool
	frameBytes int64
	// tail: the turn found the WAL due and copied beside; the import
	// copies the rest after it (copyTail). settle: copyTail copied every
	// frame (tailFrames, the WAL's frames then); the import's next turn
	// checks that none came since (settleTail). Set and reset by the
	// import's goroutine.
	tail, settle bool
	tailFrames   int64
	// wrapped is the WAL file's size when the import last had the WAL
	// start over within it (0: truncated, or not yet): SQLite writes the
	// WAL from its start again within the file, which grows past that
	// size only once the WAL holds more. Read and set by the import's
	// goroutine.
	wrapped int64
	// lastWrite is when one of the store's other writes last asked for
	// a turn or ended one (UnixNano; writeTx).
	lastWrite atomic.Int64
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
		_, err = c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", s.importCacheMiB<<10))
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
	if err == nil && s.walLimit > 0 {
		wal, werr := walFile(ctx, c)
		var page int64
		if werr == nil && wal != "" {
			werr = c.QueryRowContext(ctx, "PRAGMA page_size").Scan(&page)
		}
		if werr != nil && ctx.Err() == nil {
			s.log.Warn("import: the database's WAL file is not known; the import does not bound its size", zap.Error(werr))
		}
		if werr == nil {
			ic.wal, ic.frameBytes = wal, page+walFrameHeader
		}
	}
	release := func() {
		// The other writes go to the pool again; those already queued
		// for a turn here run first (the channel's senders queue in
		// order), those queued since find it detached.
		ic.turn <- struct{}{}
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
		s.awaitImportSearch(context.WithoutCancel(ctx))
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

// importSearchWait is how long the end of an import waits for the search
// index to hold its people.
var importSearchWait = 30 * time.Second

// awaitImportSearch waits, as an import ends, until the search index
// holds the people it wrote (a search then finds every person the import
// reports written), at most importSearchWait; past that the index gets
// there in the background.
func (s *Store) awaitImportSearch(ctx context.Context) {
	if s.index == nil {
		return
	}
	if !s.index.catchUp(ctx, importSearchWait) {
		s.log.Info("import: the search index is still writing the imported people; searches find them once it is done",
			zap.Duration("waited", importSearchWait))
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
	if ic.settle {
		ic.settle = false
		s.settleTail(ctx, ic)
	}
	began, err := s.onConn(ctx, ic, fn)
	if !began && ic.detached {
		ic.done()
		return s.db.InTx(ctx, fn)
	}
	if !ic.detached {
		s.boundWAL(ctx, ic)
	}
	if err == nil && !ic.tail && time.Since(ic.lastCheckpoint) >= importCheckpointEvery {
		s.checkpointBeside(ctx, ic)
	}
	ic.done()
	if ic.tail {
		ic.tail = false
		s.copyTail(ctx, ic)
	}
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
	ic.checkpoints.Go(func() {
		defer ic.checkpointing.Store(false)
		if _, err := s.checkpointWAL(ctx); err == nil {
			ic.copied.Store(true)
		} else if ctx.Err() == nil {
			s.log.Warn("import: WAL checkpoint failed; the WAL grows until the next one", zap.Error(err))
		}
	})
}

// importCheckpointEvery is how often a running import checkpoints the WAL
// beside its transactions (its connection does not: a commit that passes
// SQLite's checkpoint threshold would run one in the turn that the
// logins' writes wait for).
const importCheckpointEvery = time.Second

// walCheckpoint is what a PASSIVE checkpoint found: the frames in the WAL
// and how many of them are copied back to the database (all of them: the
// next write transaction starts the WAL over, unless a reader still uses
// a snapshot older than the checkpoint).
type walCheckpoint struct{ frames, copied int64 }

// all reports whether every frame is copied back.
func (c walCheckpoint) all() bool { return c.copied >= c.frames }

// checkpointWAL checkpoints the WAL on a connection of the pool without
// waiting for readers or writers (PASSIVE): it copies the frames back to
// the database as far as readers let it, and leaves the WAL for the next
// write to start over.
func (s *Store) checkpointWAL(ctx context.Context) (walCheckpoint, error) {
	if s.checkpoint != nil {
		return s.checkpoint(ctx)
	}
	// One row: busy (always 0 for PASSIVE, which waits for nothing), the
	// WAL's frames, the frames copied back.
	var busy int64
	var c walCheckpoint
	err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &c.frames, &c.copied)
	return c, err
}

// walFrameHeader is the bytes of a WAL frame's header (before its page).
const walFrameHeader = 24

// importWALLimit is the WAL file size (bytes) a running import keeps the
// WAL in: it has the WAL start over once it holds half of it (boundWAL).
// The file stays near it while the WAL starts over in time; past 1.5
// times it the import truncates the file where no write waits for that,
// past twice it whatever waits.
//
// Each start-over costs the import a pause: it stops writing while the
// tail is copied back, and that checkpoint syncs the WAL and the database
// (two fsyncs, whatever the tail's size). With 128 MiB (a start-over every
// 64 MiB of WAL) those pauses took about a sixth of the import's time
// beside logins at 1 M people (a trace: 3.3 s of 22 s in copyTail, 2.4 s
// of it in fsync); with 512 MiB the import beside paced logins at half
// their saturation wrote 3318 rows/s against 2815-2864 in the same
// session's runs at 128 MiB (issue 16).
const importWALLimit = 512 << 20

// importWALWait bounds how long a truncation of the WAL in the import's
// turn waits for readers still on it (and for a writer on another
// connection): the store's other writes wait for the turn meanwhile.
const importWALWait = 100 * time.Millisecond

// importQuietWindow: the store's other writes are quiet when none waits
// for a turn and none asked for one or ran within it.
const importQuietWindow = time.Second

// importTailMax bounds how long copyTail tries to copy every frame (a
// reader that keeps an older snapshot keeps it from that).
const importTailMax = 500 * time.Millisecond

// importWALRetry is the first wait before the import tries again to
// have the WAL start over after a try that could not (a reader kept it
// from it); each try that fails doubles it, up to importWALRetryMax.
const (
	importWALRetry    = time.Second
	importWALRetryMax = 30 * time.Second
)

// boundWAL decides, in ic's turn after one of the import's transactions
// (no writer of the store can append meanwhile), what the import does to
// keep the WAL file bounded (see importConn above). The WAL is due to
// start over once it holds half of the file it should stay in (s.walLimit,
// or the size in which the import last had it start over, ic.wrapped,
// when larger; walHolds), or once the file passed that. Then:
//
//   - while a checkpoint beside runs: nothing (SQLite runs one at a
//     time; a later turn decides);
//   - without one since the WAL last started over: it begins one;
//   - after it: the import copies the rest after this turn (copyTail);
//     its next transaction starts the WAL over (settleTail).
//
// Past 1.5 times the limit (the file grows by what is written after the
// WAL reached its end until it starts over; or a reader kept it from
// starting over) it truncates the file in this turn (TRUNCATE), but only
// while the store's other writes are quiet (importQuietWindow); past
// twice the limit it does so whatever waits, after the checkpoint beside.
// Nor until ic.walRetry after a try that could not complete: one that
// could not (a reader kept its snapshot) or failed is logged with the
// WAL's size only, and the import goes on.
func (s *Store) boundWAL(ctx context.Context, ic *importConn) {
	if ic.wal == "" || s.walLimit <= 0 || ctx.Err() != nil {
		return
	}
	if !ic.walRetry.IsZero() && time.Now().Before(ic.walRetry) {
		return
	}
	fi, err := os.Stat(ic.wal)
	if err != nil {
		return
	}
	size := fi.Size()
	hard := size > 2*s.walLimit
	if hard || (size > s.walLimit+s.walLimit/2 && ic.quiet(s.db) && !ic.checkpointing.Load()) {
		if hard {
			ic.checkpoints.Wait()
		}
		busy, err := s.truncateWAL(ctx, ic)
		if err == nil && !busy {
			ic.started()
			ic.wrapped = 0
			return
		}
		s.walRetryLater(ctx, ic, size, err)
		return
	}
	// The file the WAL should stay in: due once it holds half of it
	// (the checkpoint beside and the tail have the other half's time).
	within := max(s.walLimit, ic.wrapped)
	if size <= within {
		if half, err := walHolds(ic.wal, ic.frameBytes, within/2); err != nil || !half {
			return
		}
	}
	switch {
	case ic.checkpointing.Load():
		// SQLite runs one checkpoint at a time.
	case !ic.copied.Load():
		s.checkpointBeside(ctx, ic)
	default:
		ic.tail = true
	}
}

// copyTail copies back the frames the WAL holds (what was written since
// the checkpoint beside began) with PASSIVE checkpoints on another
// connection, out of the import's turn (the store's other writes go on;
// the import writes nothing meanwhile), until one copied every frame, for
// at most importTailMax: then the import's next turn checks that no write
// appended a frame since (settleTail; a write that began while a
// checkpoint ran did not see the WAL copied back), and its transaction
// starts the WAL over within its file, if no reader holds an older
// snapshot. Called by the import's goroutine after its turn in which
// boundWAL found the WAL due.
func (s *Store) copyTail(ctx context.Context, ic *importConn) {
	if !ic.checkpointing.CompareAndSwap(false, true) {
		return
	}
	defer ic.checkpointing.Store(false)
	fi, err := os.Stat(ic.wal)
	if err != nil {
		return
	}
	deadline := time.Now().Add(importTailMax)
	for {
		c, err := s.checkpointWAL(ctx)
		if err != nil {
			s.walRetryLater(ctx, ic, fi.Size(), err)
			return
		}
		if c.all() {
			ic.settle, ic.tailFrames = true, c.frames
			return
		}
		if ctx.Err() != nil {
			return
		}
		if time.Now().After(deadline) {
			s.walRetryLater(ctx, ic, fi.Size(), nil)
			return
		}
		// A reader's older snapshot kept the checkpoint from the frames
		// after it, or a write appended some: soon again.
		time.Sleep(time.Millisecond)
	}
}

// settleTail, in ic's turn before the import's transaction after
// copyTail copied every frame, checks that no write appended a frame
// since copyTail's last checkpoint began (walHolds: none, mostly); if one
// did (a login's write, a few frames), a PASSIVE checkpoint copies them
// in the turn. Every frame copied, the import's transaction in this turn
// starts the WAL over within its file.
func (s *Store) settleTail(ctx context.Context, ic *importConn) {
	fi, err := os.Stat(ic.wal)
	if err != nil {
		return
	}
	appended, err := walHolds(ic.wal, ic.frameBytes, walHeaderBytes+ic.tailFrames*ic.frameBytes)
	if err != nil {
		return
	}
	if appended {
		if !ic.checkpointing.CompareAndSwap(false, true) {
			return
		}
		c, err := s.checkpointWAL(ctx)
		ic.checkpointing.Store(false)
		if err != nil {
			s.walRetryLater(ctx, ic, fi.Size(), err)
			return
		}
		if !c.all() {
			return // a later due turn tries again
		}
	}
	ic.started()
	ic.wrapped = max(fi.Size(), s.walLimit)
}

// started records that the WAL starts over (at the next write) or was
// truncated.
func (ic *importConn) started() {
	ic.walRetry, ic.walBackoff = time.Time{}, 0
	ic.copied.Store(false)
}

// walRetryLater puts the next try to bound the WAL off (doubling the
// wait each time) and logs why: err, or (nil) a reader that kept the WAL
// from starting over.
func (s *Store) walRetryLater(ctx context.Context, ic *importConn, size int64, err error) {
	if ctx.Err() != nil {
		return
	}
	ic.walBackoff = min(max(2*ic.walBackoff, importWALRetry), importWALRetryMax)
	ic.walRetry = time.Now().Add(ic.walBackoff)
	if err != nil {
		s.log.Warn("import: restarting the WAL failed; it grows until a later try",
			zap.Int64("wal_bytes", size), zap.Duration("retry_in", ic.walBackoff), zap.Error(err))
		return
	}
	s.log.Warn("import: the WAL could not be restarted (a reader or another checkpoint still used it); it grows until a later try",
		zap.Int64("wal_bytes", size), zap.Duration("retry_in", ic.walBackoff))
}

// quiet reports whether the store's other writes are quiet: none waits
// and none asked for a turn or ended one within importQuietWindow.
func (ic *importConn) quiet(db *store.DB) bool {
	return db.WritesWaiting() == 0 && time.Since(time.Unix(0, ic.lastWrite.Load())) >= importQuietWindow
}

// truncateWAL runs a TRUNCATE checkpoint on ic's connection (in its
// turn), waiting at most importWALWait for readers and writers, and
// reports whether it could not complete (busy: the WAL was not
// truncated). The connection's busy timeout is set back after it; if
// that fails the connection is closed and ic detached (its writes would
// otherwise give up on a lock after importWALWait).
func (s *Store) truncateWAL(ctx context.Context, ic *importConn) (bool, error) {
	c := ic.conn
	var wait int64
	if err := c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&wait); err != nil {
		return false, err
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", importWALWait.Milliseconds())); err != nil {
		return false, err
	}
	// One row: busy (1 when it could not complete), the WAL's frames, the
	// frames copied back.
	var b, frames, copied int64
	err := c.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&b, &frames, &copied)
	if _, rerr := c.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA busy_timeout = %d", wait)); rerr != nil {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
		s.detach(ic)
		return false, errors.Join(err, rerr)
	}
	return err == nil && b != 0, err
}

// walHolds reports whether the WAL in the file at path holds a frame at
// or past offset at: whether the frame there has the salts of the file's
// header (SQLite's WAL format: a frame is the WAL's only when its salts
// match the header's; the header gets new ones each time the WAL starts
// over, and the frames past the WAL's end are an earlier one's). Two small
// reads of a file in the page cache.
func walHolds(path string, frameBytes, at int64) (bool, error) {
	if frameBytes <= walFrameHeader {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var hdr, frame [walFrameHeader]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return false, nil // shorter than a header: empty
	}
	k := max(0, (at-walHeaderBytes+frameBytes-1)/frameBytes)
	if _, err := f.ReadAt(frame[:], walHeaderBytes+k*frameBytes); err != nil {
		return false, nil // the file ends before
	}
	// Header: salts at bytes 16-23; frame header: at bytes 8-15.
	return bytes.Equal(hdr[16:24], frame[8:16]), nil
}

// walHeaderBytes is the size of the WAL file's header.
const walHeaderBytes = 32

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
	ic.lastWrite.Store(time.Now().UnixNano())
	if err := ic.take(ctx, s.db); err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	if ic.detached {
		ic.done()
		return s.db.InTx(ctx, fn)
	}
	began, err := s.onConn(ctx, ic, fn)
	ic.lastWrite.Store(time.Now().UnixNano())
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
