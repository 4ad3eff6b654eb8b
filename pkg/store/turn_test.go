package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
)

// The transactions of InTx on a SQLite database take turns in the
// process: with a busy timeout far shorter than the queue's wait, none of
// 40 writers at once fails "database is locked" (each used to poll for the
// write lock in SQLite's busy handler, and the unlucky ones gave up).
func TestInTxWritersTakeTurns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "turns.db")+"?_pragma=busy_timeout(10)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	const writers = 40
	var wg sync.WaitGroup
	errs := make(chan error, writers+writers/4)
	for i := range writers {
		wg.Go(func() {
			errs <- db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?)", fmt.Sprint(i)); err != nil {
					return err
				}
				time.Sleep(2 * time.Millisecond) // longer than the busy timeout's share
				return nil
			})
		})
	}
	// Statements outside transactions (an outbox's delete) queue with them.
	for i := range writers / 4 {
		wg.Go(func() {
			_, err := db.ExecContext(ctx, "INSERT INTO t VALUES (?)", fmt.Sprint("exec", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a writer failed: %v", err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != writers+writers/4 {
		t.Fatalf("%d rows (%v), want %d", n, err, writers+writers/4)
	}
	if db.WritesWaiting() != 0 {
		t.Fatalf("%d still counted as waiting", db.WritesWaiting())
	}
}

// A writer waiting for its turn stops when its context ends, with the
// context's error, and writes nothing; the turn then passes on.
func TestInTxTurnEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "turn.db"))
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
	release := make(chan struct{})
	holding := make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- db.InTx(ctx, func(tx *sql.Tx) error {
			close(holding)
			<-release
			return insert("holder")(tx)
		})
	}()
	<-holding
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if err := db.InTx(short, insert("late")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past the context: %v, want its deadline", err)
	}
	// A statement outside a transaction takes the turn too.
	if _, err := db.ExecContext(short, "INSERT INTO t VALUES ('exec')"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a statement waiting past its context: %v, want its deadline", err)
	}
	if db.WritesWaiting() != 0 {
		t.Fatalf("%d still counted as waiting", db.WritesWaiting())
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, insert("next")); err != nil {
		t.Fatalf("after the holder: %v", err)
	}
	var got []string
	rows, err := db.QueryContext(ctx, "SELECT v FROM t ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if fmt.Sprint(got) != "[holder next]" {
		t.Fatalf("rows %v, want [holder next]", got)
	}
	if !store.IsUnavailable(fmt.Errorf("store: begin transaction: %w", store.ErrWriteTurn)) {
		t.Fatal("a writer whose turn never came is not told the storage is unavailable")
	}
}
