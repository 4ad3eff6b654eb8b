package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
)

// An Attached pool joins the database with the attached file, and a
// transaction of it that writes the attached file alone leaves the
// database's write lock free: the database's own writes commit meanwhile.
func TestAttachedWritesHoldOnlyTheAttachedFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite", filepath.Join(dir, "main.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if main, err := db.MainFile(ctx); err != nil || main != filepath.Join(dir, "main.db") {
		t.Fatalf("MainFile: %q, %v", main, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE people (n INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}
	side, err := db.Attached(ctx, "side", filepath.Join(dir, "sub", "side.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	if _, err := side.ExecContext(ctx, "CREATE TABLE side.names (n INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := side.QueryRowContext(ctx, "PRAGMA side.journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("attached file's journal mode %q (%v), want wal", mode, err)
	}
	// It holds the database's data: its owner's only, like the database.
	for _, f := range []string{"side.db", "side.db-wal", "side.db-shm"} {
		if fi, err := os.Stat(filepath.Join(dir, "sub", f)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		} else if err != nil && f == "side.db" {
			t.Fatal(err)
		}
	}
	held, err := side.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.ExecContext(ctx, "INSERT INTO side.names VALUES (1, 'one')"); err != nil {
		t.Fatal(err)
	}
	// The guard is far above the 5 s busy timeout a blocked write would
	// wait for before failing.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := db.InTx(wctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(wctx, "INSERT INTO people VALUES (1, 'one')")
		return err
	}); err != nil {
		t.Fatalf("a write of the database while the attached file's lock is held: %v", err)
	}
	if err := held.Commit(); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := side.QueryRowContext(ctx, "SELECT p.name FROM people p JOIN side.names s ON s.n = p.n").Scan(&name); err != nil || name != "one" {
		t.Fatalf("join across the files: %q, %v", name, err)
	}
	// Reopened: the attached file kept its rows.
	_ = side.Close()
	if side, err = db.Attached(ctx, "side", filepath.Join(dir, "sub", "side.db")); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := side.QueryRowContext(ctx, "SELECT count(*) FROM side.names").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows of the attached file after reopening: %d, %v", n, err)
	}
	for _, bad := range []string{"", "main", "temp", "x y", "1x"} {
		if _, err := db.Attached(ctx, bad, filepath.Join(dir, "bad.db")); err == nil {
			t.Errorf("schema name %q accepted", bad)
		}
	}
}

// An in-memory database (one connection) gets the file attached to that
// connection and is its own Attached pool.
func TestAttachedInMemory(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	side, err := db.Attached(ctx, "side", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	if side != db {
		t.Fatal("an in-memory database got a pool of its own")
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE side.t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
}
