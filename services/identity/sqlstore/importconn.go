package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/store"
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
type importConn struct {
	// turn holds one token while a transaction runs on conn; waiting
	// writes queue on it in order (a channel hands the token straight
	// to the first waiter).
	turn chan struct{}
	// waiting counts the other writes waiting for their turn (the import
	// ends its transaction early for them: Store.cut).
	waiting atomic.Int64
	// closed: the import ended; writes that got their turn since go to
	// the pool again.
	closed bool
	conn   *sql.Conn
	// lastCheckpoint is when the import last checkpointed the WAL (its
	// own goroutine's).
	lastCheckpoint time.Time
}

type importConnKey struct{}

// BeginImport implements identity.Store: on SQLite it takes a connection
// of the pool for the import's transactions (ImportBatch with the context
// it returns) and sets it up (see above); until end, the store's other
// writes run on it too (inTx). end restores it and returns it to the
// pool. With a pool of one connection (an in-memory database), or on
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
	restorable := err == nil
	ic := &importConn{turn: make(chan struct{}, 1), conn: c}
	release := func() {
		// The other writes go to the pool again; those already queued
		// for a turn here find it closed and go there too.
		s.imp.CompareAndSwap(ic, nil)
		ic.turn <- struct{}{}
		ic.closed = true
		<-ic.turn
		if restorable {
			bg := context.WithoutCancel(ctx)
			_, err := c.ExecContext(bg, fmt.Sprintf("PRAGMA cache_size = %d", cache))
			if err == nil {
				_, err = c.ExecContext(bg, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", autoCheckpoint))
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

// importTx runs fn in a transaction on the import's connection (ctx from
// BeginImport) or, without one, as db.InTx does: committed when fn
// returns nil, rolled back when it returns an error or panics.
func (s *Store) importTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ic, _ := ctx.Value(importConnKey{}).(*importConn)
	if ic == nil {
		return s.db.InTx(ctx, fn)
	}
	if err := ic.take(ctx, false); err != nil {
		return err
	}
	err := ic.tx(ctx, fn)
	ic.done()
	if err == nil && time.Since(ic.lastCheckpoint) >= importCheckpointEvery {
		// Outside the turn, from another connection: the logins' writes
		// do not wait for it, and the import's cache stays.
		ic.lastCheckpoint = time.Now()
		_, _ = s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
	return err
}

// importCheckpointEvery is how often a running import checkpoints the WAL
// (its connection does not: a commit that passes SQLite's checkpoint
// threshold would run one in the turn that the logins' writes wait for).
const importCheckpointEvery = time.Second

// writeTx runs one of the store's other writes: on the running import's
// connection in its turn (see importConn), else as db.InTx does.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ic := s.imp.Load()
	if ic == nil {
		return s.db.InTx(ctx, fn)
	}
	if err := ic.take(ctx, true); err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	if ic.closed {
		ic.done()
		return s.db.InTx(ctx, fn)
	}
	defer ic.done()
	return ic.tx(ctx, fn)
}

// take waits for a turn on the connection (other: not the import's own
// transaction); done ends it.
func (ic *importConn) take(ctx context.Context, other bool) error {
	if other {
		ic.waiting.Add(1)
		defer ic.waiting.Add(-1)
	}
	select {
	case ic.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ic *importConn) done() { <-ic.turn }

// tx runs fn in a transaction on the connection (in its turn).
func (ic *importConn) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := ic.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback() // fn panicked
		}
	}()
	if err := fn(tx); err != nil {
		done = true
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("store: rollback: %w", rbErr))
		}
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit transaction: %w", err)
	}
	return nil
}

// importWritesWaiting reports whether another write waits for the
// running import's connection.
func (s *Store) importWritesWaiting() bool {
	ic := s.imp.Load()
	return ic != nil && ic.waiting.Load() > 0
}
