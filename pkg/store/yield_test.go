package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
)

// YieldWrites returns only once the transactions of InTx waiting for
// SQLite's write lock have begun, so a run of short transactions that
// calls it before each one lets the waiting writes (a login's) go first.
func TestYieldWritesLetsWaitingTransactionsFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A generous busy timeout: the waiting transaction below must not
	// give up however loaded the machine is.
	db, err := store.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "y.db")+"?_pragma=busy_timeout(110000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	insert := func(v string) func(tx *sql.Tx) error {
		return func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?)", v)
			return err
		}
	}
	// Nothing waits: at once.
	if err := db.YieldWrites(ctx, time.Hour); err != nil || db.WritesWaiting() != 0 {
		t.Fatalf("idle: %v, %d waiting", err, db.WritesWaiting())
	}

	// A writer holds the write lock (a transaction begun outside InTx is
	// not counted as waiting).
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := insert("holder")(holder); err != nil {
		t.Fatal(err)
	}
	// A transaction of InTx waits for it.
	waiter := make(chan error, 1)
	go func() { waiter <- db.InTx(ctx, insert("waiter")) }()
	for db.WritesWaiting() != 1 {
		if ctx.Err() != nil {
			t.Fatal("the transaction never waited")
		}
		time.Sleep(time.Millisecond)
	}
	// With one waiting: a done context ends the wait with its error, and
	// the bound ends it without one.
	done, stop := context.WithCancel(ctx)
	stop()
	if err := db.YieldWrites(done, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if err := db.YieldWrites(ctx, time.Millisecond); err != nil {
		t.Fatalf("bounded: %v", err)
	}
	// A run's next transaction yields, then writes: it comes after the
	// waiting one, which can only begin once the holder commits.
	run := make(chan error, 1)
	go func() {
		if err := db.YieldWrites(ctx, time.Hour); err != nil {
			run <- err
			return
		}
		run <- db.InTx(ctx, insert("run"))
	}()
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiter; err != nil {
		t.Fatal(err)
	}
	if err := <-run; err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(ctx, "SELECT v FROM t ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var order []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		order = append(order, v)
	}
	if got := strings.Join(order, ","); got != "holder,waiter,run" {
		t.Fatalf("writes in the order %s, want holder,waiter,run", got)
	}
	if db.WritesWaiting() != 0 {
		t.Fatalf("%d still counted as waiting", db.WritesWaiting())
	}
}

// PostgreSQL locks rows: nothing to yield to.
func TestYieldWritesPostgresAtOnce(t *testing.T) {
	pg := &store.DB{Dialect: store.Postgres}
	if err := pg.YieldWrites(context.Background(), time.Hour); err != nil || pg.WritesWaiting() != 0 {
		t.Fatalf("%v %d", err, pg.WritesWaiting())
	}
}
