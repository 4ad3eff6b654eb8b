package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing/fstest"
	"time"

	"github.com/uias/uias/pkg/store"
)

// OutboxMigrationSQL returns the DDL of the events_outbox table for a dialect, for
// components to include in their own migrations. Rows are relayed in seq order.
func OutboxMigrationSQL(dialect store.Dialect) string {
	if dialect == store.Postgres {
		return `CREATE TABLE IF NOT EXISTS events_outbox (
	seq        BIGSERIAL   PRIMARY KEY,
	id         TEXT        NOT NULL UNIQUE,
	subject    TEXT        NOT NULL,
	type       TEXT        NOT NULL,
	payload    BYTEA,
	created_at TIMESTAMPTZ NOT NULL
);
`
	}
	return `CREATE TABLE IF NOT EXISTS events_outbox (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	id         TEXT    NOT NULL UNIQUE,
	subject    TEXT    NOT NULL,
	type       TEXT    NOT NULL,
	payload    BLOB,
	created_at TEXT    NOT NULL
);
`
}

// WithOutboxMigration returns the migrations of fsys (its top-level files,
// see store.LoadMigrations) with the events_outbox table of dialect as the
// migration named file (e.g. "0002_events_outbox.sql"), so a component's
// migrations create its outbox from this package instead of a copy of the
// DDL. A file of that name in fsys (a placeholder that keeps the version
// taken) is replaced; otherwise the migration is added.
func WithOutboxMigration(fsys fs.FS, dialect store.Dialect, file string) (fs.FS, error) {
	if !strings.HasSuffix(file, ".sql") || strings.Contains(file, "/") {
		return nil, fmt.Errorf("events: outbox migration %q is not a NNNN_name.sql file name", file)
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("events: outbox migration: %w", err)
	}
	out := fstest.MapFS{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("events: outbox migration: %w", err)
		}
		out[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	out[file] = &fstest.MapFile{Data: []byte(OutboxMigrationSQL(dialect)), Mode: 0o444}
	return out, nil
}

// OutboxMigrations returns a component's migrations of dialect, kept in
// fsys under migrations/<dialect> (migrations/sqlite, migrations/postgres),
// with its events outbox as the migration named file (WithOutboxMigration).
func OutboxMigrations(fsys fs.FS, dialect store.Dialect, file string) (fs.FS, error) {
	dir, err := fs.Sub(fsys, "migrations/"+dialect.String())
	if err != nil {
		return nil, fmt.Errorf("events: migrations of %s: %w", dialect, err)
	}
	return WithOutboxMigration(dir, dialect, file)
}

// MigrateWithOutbox brings component's schema and its events outbox up to
// date on db: store.Migrate with the migrations of OutboxMigrations. Its
// errors do not name the component: the caller does (module.Env.MigratedSQL
// prefixes "<component> migrations: ").
func MigrateWithOutbox(ctx context.Context, db *store.DB, component string, fsys fs.FS, file string) error {
	all, err := OutboxMigrations(fsys, db.Dialect, file)
	if err != nil {
		return err
	}
	return store.Migrate(ctx, db, component, all)
}

// ValidateEvent checks the fields AddToOutbox requires: a non-empty ID and a subject
// without spaces or wildcards.
func ValidateEvent(ev Event) error {
	if strings.TrimSpace(ev.ID) == "" {
		return errors.New("events: event ID is empty")
	}
	if ev.Subject == "" || strings.ContainsAny(ev.Subject, " \t\r\n*>") ||
		strings.HasPrefix(ev.Subject, ".") || strings.HasSuffix(ev.Subject, ".") {
		return fmt.Errorf("events: event %s has an invalid subject %q", ev.ID, ev.Subject)
	}
	return nil
}

// AddToOutbox stores ev in the outbox as part of the caller's transaction tx (on db), so
// the event exists if and only if the transaction commits. A zero ev.Time means now. A
// repeated ID is reported as a unique violation (store.IsUniqueViolation).
func AddToOutbox(ctx context.Context, tx *sql.Tx, db *store.DB, ev Event) error {
	if tx == nil || db == nil {
		return errors.New("events: AddToOutbox needs a transaction and its database")
	}
	if err := ValidateEvent(ev); err != nil {
		return err
	}
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	payload := ev.Payload
	if payload == nil {
		payload = []byte{}
	}
	_, err := tx.ExecContext(ctx, db.Rebind(
		`INSERT INTO events_outbox (id, subject, type, payload, created_at) VALUES (?, ?, ?, ?, ?)`),
		ev.ID, ev.Subject, ev.Type, payload, encodeTime(db.Dialect, t))
	if err != nil {
		return fmt.Errorf("events: add event %s to outbox: %w", ev.ID, err)
	}
	return nil
}

// outboxChunk is the most events AddAllToOutbox writes in one INSERT
// (five parameters each: far below SQLite's and PostgreSQL's limits).
const outboxChunk = 100

// AddAllToOutbox adds evs to the outbox through q (a transaction, or a
// statement cache on one: store.TxStmts), in their order, in multi-row
// INSERTs of up to 100 events: a batch's events cost one statement per
// hundred instead of one each. The events are checked first
// (ValidateEvent); none is written if one is invalid.
func AddAllToOutbox(ctx context.Context, q store.Querier, db *store.DB, evs []Event) error {
	if q == nil || db == nil {
		return errors.New("events: AddAllToOutbox needs a transaction and its database")
	}
	for _, ev := range evs {
		if err := ValidateEvent(ev); err != nil {
			return err
		}
	}
	now := time.Now()
	for len(evs) > 0 {
		chunk := evs[:min(len(evs), outboxChunk)]
		evs = evs[len(chunk):]
		var b strings.Builder
		b.WriteString("INSERT INTO events_outbox (id, subject, type, payload, created_at) VALUES ")
		args := make([]any, 0, 5*len(chunk))
		for i, ev := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			t, payload := ev.Time, ev.Payload
			if t.IsZero() {
				t = now
			}
			if payload == nil {
				payload = []byte{}
			}
			args = append(args, ev.ID, ev.Subject, ev.Type, payload, encodeTime(db.Dialect, t))
		}
		if _, err := q.ExecContext(ctx, db.Rebind(b.String()), args...); err != nil {
			return fmt.Errorf("events: add %d events (%s...) to outbox: %w", len(chunk), chunk[0].ID, err)
		}
	}
	return nil
}

func encodeTime(d store.Dialect, t time.Time) any {
	t = t.UTC()
	if d == store.Postgres {
		return t
	}
	return t.Format(time.RFC3339Nano)
}
