package store_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
)

// countingConnector opens connections of drv that count the statements
// prepared on them (the queries run unprepared, through ExecerContext and
// QueryerContext, are not counted).
type countingConnector struct {
	drv      driver.Driver
	dsn      string
	prepares atomic.Int64
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return countingConn{conn, &c.prepares}, nil
}

func (c *countingConnector) Driver() driver.Driver { return c.drv }

type countingConn struct {
	driver.Conn
	prepares *atomic.Int64
}

func (c countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.prepares.Add(1)
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

// countingDB is a SQLite pool of one connection that counts prepares.
func countingDB(t *testing.T) (*sql.DB, *countingConnector) {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConnector{drv: db.Driver(), dsn: filepath.Join(t.TempDir(), "c2.db")}
	_ = db.Close()
	cdb := sql.OpenDB(cc)
	cdb.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = cdb.Close() })
	if _, err := cdb.Exec("CREATE TABLE t (id TEXT)"); err != nil {
		t.Fatal(err)
	}
	return cdb, cc
}

// settle waits until c has no prepare running in the background.
func settle(c *store.StmtCache) { store.WaitStmtCachePrepares(c) }

// A query that cannot be prepared is not prepared again in every
// transaction (nor on every read): after a failure it waits 1 s, then
// 2 s, ... up to a minute; a query that can be prepared is prepared once.
func TestStmtCacheBackoff(t *testing.T) {
	db, cc := countingDB(t)
	c := store.NewStmtCache(db)
	defer c.Close()
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	store.SetStmtCacheClock(c, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := context.Background()
	const broken = "SELECT id FROM no_such_table"
	txs := func(n int) {
		t.Helper()
		for range n {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.InTx(tx).ExecContext(ctx, broken); err == nil {
				t.Fatal("the broken query ran")
			}
			_ = tx.Rollback()
			settle(c)
		}
	}
	attempts := func(want int64, what string) {
		t.Helper()
		if got := cc.prepares.Swap(0); got != want {
			t.Errorf("%s: %d prepares, want %d", what, got, want)
		}
	}
	txs(20)
	attempts(1, "20 transactions")
	advance(999 * time.Millisecond)
	txs(5)
	attempts(0, "before the first wait passed")
	advance(time.Millisecond)
	txs(5)
	attempts(1, "after the first wait (1 s)")
	advance(1999 * time.Millisecond)
	txs(5)
	attempts(0, "before the second wait (2 s) passed")
	advance(time.Millisecond)
	txs(5)
	attempts(1, "after the second wait")
	// Reads outside a transaction wait too.
	var id string
	for range 5 {
		if err := c.QueryRowContext(ctx, broken).Scan(&id); err == nil {
			t.Fatal("the broken query scanned")
		}
	}
	attempts(0, "reads while waiting")
	// The wait stops growing at a minute.
	for range 8 {
		advance(time.Hour)
		txs(1)
	}
	attempts(8, "once an hour")
	advance(59 * time.Second)
	txs(1)
	attempts(0, "59 s after a failure at the longest wait")
	advance(time.Second)
	txs(1)
	attempts(1, "a minute after")
	// A good query is prepared once and kept.
	const good = "SELECT id FROM t"
	for range 5 {
		if err := c.QueryRowContext(ctx, good).Scan(&id); err != sql.ErrNoRows {
			t.Fatal(err)
		}
	}
	attempts(1, "a good query read 5 times")
	if c.Len() != 1 {
		t.Errorf("%d statements kept, want 1", c.Len())
	}
}

// Close stops a prepare waiting in the background (here for the pool's one
// connection, held by the transaction that asked for it) instead of
// waiting for its 10 s timeout, closes the statements kept, and from then
// on the queries run unprepared and nothing more is prepared.
func TestStmtCacheClose(t *testing.T) {
	db, cc := countingDB(t)
	c := store.NewStmtCache(db)
	ctx := context.Background()
	const good = "SELECT id FROM t"
	var id string
	if err := c.QueryRowContext(ctx, good).Scan(&id); err != sql.ErrNoRows {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const other = "SELECT id FROM t WHERE id = ?"
	if err := c.InTx(tx).QueryRowContext(ctx, other, "a").Scan(&id); err != sql.ErrNoRows {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for the prepare in the background: not cancelled")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Errorf("%d statements kept after Close", c.Len())
	}
	cc.prepares.Store(0)
	for range 3 {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.InTx(tx).QueryRowContext(ctx, other, "a").Scan(&id); err != sql.ErrNoRows {
			t.Fatal(err)
		}
		_ = tx.Rollback()
		if err := c.QueryRowContext(ctx, good).Scan(&id); err != sql.ErrNoRows {
			t.Fatal(err)
		}
	}
	settle(c)
	if n := cc.prepares.Load(); n != 0 {
		t.Errorf("%d prepares after Close", n)
	}
}

// Closing a DB runs its OnClose hooks first, newest first and once, while
// its pool still answers; their errors come back from Close. A statement
// cache registered there has stopped its background prepares when Close
// returns: one still waiting for a connection when the owner closed the
// database (a test's cleanup, then its temporary directory's removal)
// would otherwise open one on the removed files afterwards.
func TestDBCloseRunsHooksFirst(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	cache := store.NewStmtCache(db.DB)
	db.OnClose(cache.Close)
	var order []string
	hookErr := errors.New("hook b failed")
	db.OnClose(func() error {
		order = append(order, "a")
		// The transaction holds the only connection: an open pool makes
		// the ping wait for it (until its deadline), a closed one refuses.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := db.PingContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the pool was closed before the hooks ran: %v", err)
		}
		return nil
	})
	db.OnClose(func() error { order = append(order, "b"); return hookErr })

	// A transaction holds the only connection; its new query is prepared
	// in the background, which waits for a connection.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := cache.InTx(tx).QueryRowContext(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query in the transaction: %d %v", one, err)
	}
	if err := db.Close(); !errors.Is(err, hookErr) {
		t.Fatalf("Close = %v, want the hook's error", err)
	}
	_ = tx.Rollback()
	if got := strings.Join(order, ","); got != "b,a" {
		t.Fatalf("hooks ran %q, want newest first: b,a", got)
	}
	done := make(chan struct{})
	go func() { settle(cache); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a background prepare still runs after Close")
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil (the hooks ran once)", err)
	}
	if got := strings.Join(order, ","); got != "b,a" {
		t.Fatalf("hooks ran again on the second Close: %q", got)
	}
	// A DB made by hand has no hooks: OnClose does nothing.
	(&store.DB{Dialect: store.SQLite}).OnClose(func() error { t.Error("hook of a hand-made DB ran"); return nil })
}
