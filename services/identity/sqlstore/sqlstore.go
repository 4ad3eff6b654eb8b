// Package sqlstore implements identity.Store on SQL databases (SQLite and
// PostgreSQL) through pkg/store. Every mutation writes its events into the
// outbox (pkg/events) in the same transaction.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"testing/fstest"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// Component is the name under which the identity migrations are recorded.
const Component = "identity"

// outboxMigration is the migration file whose content is replaced by
// events.OutboxMigrationSQL (the embedded file is a placeholder that keeps
// the version number taken).
const outboxMigration = "0002_events_outbox.sql"

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Store is the SQL implementation of identity.Store.
type Store struct {
	db    *store.DB
	stmts stmtCache
}

var _ identity.Store = (*Store)(nil)

// New returns a Store on db. Run Migrate first.
func New(db *store.DB) *Store {
	return &Store{db: db}
}

// Migrate brings the identity schema (and its events outbox) up to date.
func Migrate(ctx context.Context, db *store.DB) error {
	fsys, err := migrations(db.Dialect)
	if err != nil {
		return err
	}
	return store.Migrate(ctx, db, Component, fsys)
}

// migrations returns the migration files of dialect, with the outbox
// placeholder replaced by the events package's SQL.
func migrations(d store.Dialect) (fs.FS, error) {
	dir := "migrations/sqlite"
	if d == store.Postgres {
		dir = "migrations/postgres"
	}
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("identity migrations: %w", err)
	}
	out := fstest.MapFS{}
	for _, e := range entries {
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("identity migrations: %w", err)
		}
		out[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	if _, ok := out[outboxMigration]; !ok {
		return nil, fmt.Errorf("identity migrations: %s missing", outboxMigration)
	}
	out[outboxMigration] = &fstest.MapFile{Data: []byte(events.OutboxMigrationSQL(d)), Mode: 0o444}
	return out, nil
}

// ---------------------------------------------------------------------------
// errors

// isDomain reports whether err already is one of the identity store errors
// (or an apierr error), which pass through unchanged.
func isDomain(err error) bool {
	if errors.Is(err, identity.ErrNotFound) || errors.Is(err, identity.ErrConflict) ||
		errors.Is(err, identity.ErrUnavailable) {
		return true
	}
	_, ok := apierr.As(err)
	return ok
}

// mapErr turns a driver error into a store error. what names the entity
// ("user") for conflicts; op names the operation for other errors. Messages
// never carry SQL text or row values.
func mapErr(err error, op, what string) error {
	switch {
	case err == nil:
		return nil
	case isDomain(err):
		return err
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("identity store %s: %w", op, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("identity store %s: %w", op, context.DeadlineExceeded)
	case store.IsUniqueViolation(err):
		return conflict(what + " already exists")
	case store.IsUnavailable(err):
		return fmt.Errorf("identity store %s: %w", op, identity.ErrUnavailable)
	}
	return fmt.Errorf("identity store %s: %w", op, err)
}

// conflict builds an ErrConflict whose message is msg (the domain reads the
// text before ": already exists" as the human message).
func conflict(msg string) error {
	return fmt.Errorf("%s: %w", msg, identity.ErrConflict)
}

func notFound(what, id string) error {
	return fmt.Errorf("%s %q: %w", what, id, identity.ErrNotFound)
}

// inTx runs fn in a transaction. Errors fn returns are mapped with mapErr
// (domain errors pass through unchanged); so are begin/commit errors.
func (s *Store) inTx(ctx context.Context, op, what string, fn func(tx *sql.Tx) error) error {
	var fnErr error
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err == nil {
		return nil
	}
	if fnErr != nil {
		return mapErr(fnErr, op, what)
	}
	return mapErr(err, op, what)
}

func (s *Store) addEvents(ctx context.Context, tx *sql.Tx, evs []events.Event) error {
	for _, ev := range evs {
		if err := events.AddToOutbox(ctx, tx, s.db, ev); err != nil {
			if store.IsUniqueViolation(err) {
				// Not a conflict of the entity: the caller reused an event id.
				return errors.New("identity store: duplicate event id")
			}
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// helpers

// q rebinds a '?' query for the dialect.
func (s *Store) q(query string) string { return s.db.Rebind(query) }

// forUpdate is the row-locking suffix (PostgreSQL; SQLite serialises writers).
func (s *Store) forUpdate() string {
	if s.db.Dialect == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (s *Store) forShare() string {
	if s.db.Dialect == store.Postgres {
		return " FOR SHARE"
	}
	return ""
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) exists(ctx context.Context, qr querier, query string, args ...any) (bool, error) {
	var one int
	err := qr.QueryRowContext(ctx, s.q(query), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// mustAffect returns a not-found error when res touched no row.
func mustAffect(res sql.Result, what, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound(what, id)
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// nullable stores "" as NULL (for optional references and optional unique
// columns).
func nullable(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// likePattern is a case-insensitive substring pattern for LOWER(col) LIKE ?
// ESCAPE '\'.
func likePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(q)) + "%"
}

// where accumulates filter conditions.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// query adds a case-insensitive substring match over cols.
func (w *where) query(q string, cols ...string) {
	if q == "" {
		return
	}
	p := likePattern(q)
	ors := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		ors[i] = "LOWER(" + c + `) LIKE ? ESCAPE '\'`
		args[i] = p
	}
	w.add("("+strings.Join(ors, " OR ")+")", args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page decodes p into a limit and the id after which to start.
func page(p identity.Page, w *where, idCol string) (int, error) {
	size := p.Size
	if size <= 0 {
		size = DefaultPageSize
	}
	if size > MaxPageSize {
		size = MaxPageSize
	}
	if p.Token != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Token)
		if err != nil || len(b) == 0 {
			return 0, apierr.New(apierr.InvalidArgument, "INVALID_PAGE_TOKEN", "invalid page token")
		}
		w.add(idCol+" > ?", string(b))
	}
	return size, nil
}

func pageToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

// list runs a paged query: base is "SELECT cols FROM t", scan reads one row
// and returns its id.
func list[T any](ctx context.Context, s *Store, op, base string, w *where, p identity.Page, idCol string, scan func(sc scanner) (T, string, error)) ([]T, string, error) {
	size, err := page(p, w, idCol)
	if err != nil {
		return nil, "", err
	}
	query := base + w.sql() + " ORDER BY " + idCol + " LIMIT ?"
	args := append(w.args, size+1)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, "", mapErr(err, op, "")
	}
	defer rows.Close()
	var (
		out []T
		ids []string
	)
	for rows.Next() {
		v, id, err := scan(rows)
		if err != nil {
			return nil, "", mapErr(err, op, "")
		}
		out = append(out, v)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", mapErr(err, op, "")
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = pageToken(ids[size-1])
	}
	return out, next, nil
}

type scanner interface {
	Scan(dest ...any) error
}

// ---------------------------------------------------------------------------
// misc

// Ping checks the database connection.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.db.PingContext(ctx), "ping", "")
}

// AppendEvents writes events alone.
func (s *Store) AppendEvents(ctx context.Context, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.inTx(ctx, "append events", "event", func(tx *sql.Tx) error {
		return s.addEvents(ctx, tx, evs)
	})
}
