package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

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

// importConn is an import's connection; mu keeps its transactions one at
// a time.
type importConn struct {
	mu   sync.Mutex
	conn *sql.Conn
}

type importConnKey struct{}

// BeginImport implements identity.Store: on SQLite it takes a connection
// of the pool for the import's transactions (ImportBatch with the context
// it returns) and sets it up (see above); end restores and returns it.
// With a pool of one connection (an in-memory database), or on
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
	restorable := err == nil
	release := func() {
		if restorable {
			bg := context.WithoutCancel(ctx)
			_, err := c.ExecContext(bg, fmt.Sprintf("PRAGMA cache_size = %d", cache))
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
	var once sync.Once
	return context.WithValue(ctx, importConnKey{}, &importConn{conn: c}), func() { once.Do(release) }, nil
}

// importTx runs fn in a transaction on the import's connection (ctx from
// BeginImport) or, without one, as db.InTx does: committed when fn
// returns nil, rolled back when it returns an error or panics.
func (s *Store) importTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ic, _ := ctx.Value(importConnKey{}).(*importConn)
	if ic == nil {
		return s.db.InTx(ctx, fn)
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
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
