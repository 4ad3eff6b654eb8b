package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one parsed migration file.
type Migration struct {
	Version int64
	Name    string // file name, e.g. "0001_init.sql"
	SQL     string
}

// migrateLockKey is the pg_advisory_xact_lock key shared by every component, so that
// concurrent start-ups (even of different components on one database) apply migrations
// one at a time.
var migrateLockKey = func() int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("uias:schema_migrations"))
	return int64(h.Sum64() >> 1)
}()

// LoadMigrations reads the migration files "NNNN_name.sql" of fsys, sorted by version.
// Files are taken from the root of fsys; when the root has none, from its "migrations"
// directory (so an embed.FS with "//go:embed migrations/*.sql" works as is). Other files
// are ignored; a .sql file without a numeric prefix or a repeated version is an error.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	if fsys == nil {
		return nil, errors.New("store: migrations: nil file system")
	}
	ms, err := loadMigrationsDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		if st, err := fs.Stat(fsys, "migrations"); err == nil && st.IsDir() {
			ms, err = loadMigrationsDir(fsys, "migrations")
			if err != nil {
				return nil, err
			}
		}
	}
	if len(ms) == 0 {
		return nil, errors.New(`store: migrations: no "NNNN_name.sql" files found`)
	}
	return ms, nil
}

func loadMigrationsDir(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: read directory %q: %w", dir, err)
	}
	var ms []Migration
	seen := map[int64]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v < 0 {
			return nil, fmt.Errorf("store: migrations: file %q is not named NNNN_name.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("store: migrations: files %q and %q have the same version %d", prev, name, v)
		}
		seen[v] = name
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("store: migrations: read %q: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Migrate applies the migrations of fsys (see LoadMigrations) that are not yet recorded
// for component in schema_migrations(component, version, name, applied_at). Each
// migration runs in its own transaction together with its bookkeeping row; a file may
// hold several statements. On PostgreSQL every step holds pg_advisory_xact_lock, so
// concurrent start-ups are safe; on SQLite transactions take the write lock up front.
// Running it again is a no-op.
func Migrate(ctx context.Context, db *DB, component string, fsys fs.FS) error {
	if db == nil || db.DB == nil {
		return errors.New("store: migrate: nil database")
	}
	if strings.TrimSpace(component) == "" {
		return errors.New("store: migrate: empty component name")
	}
	ms, err := LoadMigrations(fsys)
	if err != nil {
		return err
	}
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		if err := db.migrateLock(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.schemaMigrationsDDL())
		return err
	}); err != nil {
		return fmt.Errorf("store: migrate %s: create schema_migrations: %w", component, err)
	}
	for _, m := range ms {
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			if err := db.migrateLock(ctx, tx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, db.Rebind(
				`SELECT COUNT(*) FROM schema_migrations WHERE component = ? AND version = ?`),
				component, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if strings.TrimSpace(m.SQL) != "" {
				if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, db.Rebind(
				`INSERT INTO schema_migrations (component, version, name) VALUES (?, ?, ?)`),
				component, m.Version, m.Name)
			return err
		}); err != nil {
			return fmt.Errorf("store: migrate %s: apply %s: %w", component, m.Name, err)
		}
	}
	return nil
}

func (d *DB) migrateLock(ctx context.Context, tx *sql.Tx) error {
	if d.Dialect != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey)
	return err
}

func (d *DB) schemaMigrationsDDL() string {
	if d.Dialect == Postgres {
		return `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT        NOT NULL,
	version    BIGINT      NOT NULL,
	name       TEXT        NOT NULL DEFAULT '',
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (component, version)
)`
	}
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL DEFAULT '',
	applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
	PRIMARY KEY (component, version)
)`
}
