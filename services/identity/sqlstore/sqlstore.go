// Package sqlstore implements identity.Store on SQL databases (SQLite and
// PostgreSQL) through pkg/store. Every mutation writes its events into the
// outbox (pkg/events) in the same transaction.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"go.uber.org/zap"
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
	db *store.DB
	// stmts serves the hot single-row reads (Authenticate, caller
	// authentication, GetUser) from prepared statements.
	stmts *store.StmtCache
	// cutImport, when set, replaces the rule that ends an import
	// transaction between two chunks (tests).
	cutImport func() bool
	// imp is the running import's connection (SQLite), on which the
	// other writes run meanwhile (importconn.go).
	imp atomic.Pointer[importConn]
	// checkpoint, when set, replaces the running import's WAL checkpoint
	// (tests).
	checkpoint func(ctx context.Context) (walCheckpoint, error)
	// importCacheMiB is an import connection's page cache (MiB;
	// WithImportCache).
	importCacheMiB int
	// walLimit is the WAL file size a running import keeps the WAL in
	// (importWALLimit; tests set it, <= 0 turns it off).
	walLimit int64
	// index is the people's search index on SQLite (searchindex.go).
	index *searchIndex
	// logins is the login outbox (SQLite, WithLoginOutbox; nil: none);
	// loginOutboxWarned is when its failure was last logged (UnixNano).
	logins            *store.DB
	loginStmts        *store.StmtCache
	loginOutboxWarned atomic.Int64
	log               *zap.Logger
}

// Option configures a Store (New).
type Option func(*Store)

// WithLogger gives the store a logger (the default logs nothing): the
// failures it can only report there (an import's WAL checkpoints).
func WithLogger(l *zap.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

var _ identity.Store = (*Store)(nil)

// New returns a Store on db. Run Migrate first.
func New(db *store.DB, opts ...Option) *Store {
	s := &Store{db: db, stmts: store.NewStmtCache(db.DB), walLimit: importWALLimit, importCacheMiB: DefaultImportCacheMiB, log: zap.NewNop()}
	for _, o := range opts {
		o(s)
	}
	if db.Dialect == store.SQLite {
		s.startSearchIndex()
	}
	db.OnClose(s.Close)
	return s
}

// Close stops the statement cache's background prepares and closes its
// prepared statements, and stops the search indexer (SQLite). The
// database stays open: its owner closes it (after this; closing it also
// runs this first, store.DB.OnClose).
func (s *Store) Close() error {
	err := s.stmts.Close()
	if s.index != nil {
		err = errors.Join(err, s.index.close())
	}
	return err
}

// Migrate brings the identity schema (and its events outbox) up to date.
func Migrate(ctx context.Context, db *store.DB) error {
	return events.MigrateWithOutbox(ctx, db, Component, migrationFiles, outboxMigration)
}

// ---------------------------------------------------------------------------
// errors

// classify is store.Classify (the platform's one classification of driver
// errors) for this store: a unique violation the statement's own checks did
// not name answers "<what> already exists", and an unclassified error names
// the operation for the log line of the internal error it becomes. Errors
// that already carry a reason (store.NotFound, store.Conflict, ...) pass
// unchanged. Messages never carry SQL text or row values.
func classify(err error, op, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := apierr.As(err); ok {
		return err
	}
	if isIDKeyViolation(err) {
		return identity.ErrIDNumberTaken.WithCause(err)
	}
	c := store.Classify(err)
	if errors.Is(c, store.ErrConflict) && what != "" {
		return store.ErrConflict.WithMessage(what + " already exists").WithCause(err)
	}
	if _, ok := apierr.As(c); ok {
		return c
	}
	return fmt.Errorf("identity store %s: %w", op, err)
}

// isIDKeyViolation reports whether err broke the uniqueness of users.id_key
// (migration 0050): a person whose ID number another account has, written
// by a concurrent writer after the look-up (checkUserUnique, bulkChecks).
func isIDKeyViolation(err error) bool {
	return store.IsUniqueViolationOn(err, "users_id_key_idx", "users", "id_key")
}

// inTx runs fn in a transaction. Errors fn returns are classified
// (domain errors pass through unchanged); so are begin/commit errors.
func (s *Store) inTx(ctx context.Context, op, what string, fn func(tx *sql.Tx) error) error {
	var fnErr error
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err == nil {
		return nil
	}
	if fnErr != nil {
		return classify(fnErr, op, what)
	}
	return classify(err, op, what)
}

// addAllEvents is addEvents for a batch's events: multi-row INSERTs
// through q (events.AddAllToOutbox).
func (s *Store) addAllEvents(ctx context.Context, q store.Querier, evs []events.Event) error {
	if err := events.AddAllToOutbox(ctx, q, s.db, evs); err != nil {
		if store.IsUniqueViolation(err) {
			return errors.New("identity store: duplicate event id")
		}
		return err
	}
	return nil
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

// mustAffect returns a not-found error when res touched no row.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.NotFound(what)
	}
	return nil
}

// ---------------------------------------------------------------------------
// misc

// Ping checks the database connection.
func (s *Store) Ping(ctx context.Context) error {
	return classify(s.db.PingContext(ctx), "ping", "")
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
