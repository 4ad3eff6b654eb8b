package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
)

// MainFile is the file of a SQLite database's main schema ("" for an
// in-memory database).
func (d *DB) MainFile(ctx context.Context) (string, error) {
	if d.Dialect != SQLite {
		return "", errors.New("store: MainFile needs a SQLite database")
	}
	rows, err := d.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq        int
			name, file string
		)
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return "", err
		}
		if name == "main" {
			return file, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return "", errors.New("store: no main schema")
}

// Attached returns a pool on d's SQLite database whose every connection
// also sees file under schema (ATTACH DATABASE), for queries that join
// the two and writes to the attached file alone.
//
// A file database gets a pool of its own, closed with its Close (d stays
// open). Its transactions are deferred (_txlock=deferred), not d's
// immediate ones: BEGIN IMMEDIATE takes the write lock of every attached
// database, so a transaction that writes only the attached file would
// hold d's write lock too. A deferred one takes the write lock of the
// schema it first writes, when it writes it. The attached file is put in
// WAL mode with d's journal size limit and synchronous FULL: its commits
// are durable when the machine loses power (each fsyncs the WAL), so what
// it records never falls behind what d keeps (d, synchronous NORMAL, may
// lose its last commits then, not the other way round).
//
// An in-memory d (one connection) has file attached to that connection
// and is returned itself: Close on it closes d.
func (d *DB) Attached(ctx context.Context, schema, file string) (*DB, error) {
	if d.Dialect != SQLite {
		return nil, errors.New("store: Attached needs a SQLite database")
	}
	if !validSchemaName(schema) {
		return nil, fmt.Errorf("store: bad schema name %q", schema)
	}
	main, err := d.MainFile(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: attach %s: %w", schema, err)
	}
	if main == "" {
		if _, err := d.ExecContext(ctx, "ATTACH DATABASE ? AS "+schema, file); err != nil {
			return nil, fmt.Errorf("store: attach %s: %w", schema, err)
		}
		return d, nil
	}
	drv := &sqlite.Driver{}
	drv.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
		ctx := context.Background()
		if _, err := c.ExecContext(ctx, "ATTACH DATABASE ? AS "+schema, []driver.NamedValue{{Ordinal: 1, Value: file}}); err != nil {
			return err
		}
		for _, p := range []string{"journal_mode = WAL", "synchronous = FULL", fmt.Sprintf("journal_size_limit = %d", SQLiteJournalSizeLimit)} {
			rows, err := c.QueryContext(ctx, "PRAGMA "+schema+"."+p, nil)
			if err != nil {
				return err
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	if err := mkParent(file); err != nil {
		return nil, err
	}
	full, err := sqliteDSN(filepath.Clean(main) + "?_txlock=deferred")
	if err != nil {
		return nil, err
	}
	pool := sql.OpenDB(attachConnector{drv: drv, dsn: full})
	pool.SetMaxOpenConns(8)
	pool.SetMaxIdleConns(8)
	if err := pool.PingContext(ctx); err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("store: attach %s: %w", schema, err)
	}
	// The attached file holds the database's data (a search index of names
	// and emails, for one): readable by its owner only, like the database.
	for _, f := range []string{file, file + "-wal", file + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			_ = pool.Close()
			return nil, fmt.Errorf("store: attach %s: %w", schema, err)
		}
	}
	return newDB(pool, SQLite), nil
}

// attachConnector opens the connections of an Attached pool through its
// own driver (whose connection hook attaches the file).
type attachConnector struct {
	drv *sqlite.Driver
	dsn string
}

func (c attachConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.drv.Open(c.dsn)
}

func (c attachConnector) Driver() driver.Driver { return c.drv }

func validSchemaName(s string) bool {
	if s == "" || s == "main" || s == "temp" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// mkParent creates the directory of a database file.
func mkParent(file string) error {
	if file == "" || strings.HasPrefix(file, ":memory:") {
		return nil
	}
	if dir := filepath.Dir(file); dir != "." {
		return mkdirAll(dir)
	}
	return nil
}
