package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"go.uber.org/zap"
)

// The login outbox on SQLite (issue 16: an import beside logins).
//
// A login whose password was right on a clean gate (most logins) changes
// nothing in the account's row (UpdateLoginGate leaves an unchanged row
// alone): its only write is its audit event. In the database's own outbox
// that write needed SQLite's one write lock, so every such login ended a
// running import's transaction and waited for the import's chunk in
// flight; an import beside paced logins wrote one-chunk transactions,
// each commit writing the pages of a dozen indexes at random places again
// (1 M people: 2209 rows/s beside logins at a fifth of their saturation,
// 3650 alone).
//
// With a login outbox (OpenLoginOutbox: a file of its own beside the
// database, "identity.db" has "identity-logins.db", holding only an
// events_outbox table), UpdateLoginGate first reads the gate (one
// statement, a snapshot of the database, no lock) and asks decide; when
// the answer leaves the row and the per-source counts as they are, its
// events go to the login outbox, whose write lock only such writes take,
// and the database is not written. Any other answer (a failure counted, a
// lock, a rehash, counts cleared) takes the usual transaction, deciding
// again under the row's lock. Deciding on the snapshot is the same as
// the login's transaction running at that moment: what it writes (its
// events) is read by nothing the gate's decision depends on.
//
// The component's relay drains the login outbox too
// (events.RelayOptions.Also). The file holds events not yet published:
// losing it loses those logins' audit events, not the accounts.

// LoginOutboxFile is the login outbox's file beside a SQLite database
// file main.
func LoginOutboxFile(main string) string {
	ext := filepath.Ext(main)
	return strings.TrimSuffix(main, ext) + "-logins" + ext
}

// loginOutboxComponent names the login outbox's schema in its
// schema_migrations.
const loginOutboxComponent = Component + "-logins"

// OpenLoginOutbox opens the login outbox beside db's file (creating it
// and its table when missing), for WithLoginOutbox and the relay; nil
// (and no error) when db is PostgreSQL or an in-memory database, where
// the logins' events stay in the database's outbox. The caller closes it
// after the store and the relay.
func OpenLoginOutbox(ctx context.Context, db *store.DB) (*store.DB, error) {
	if db.Dialect != store.SQLite {
		return nil, nil
	}
	main, err := db.MainFile(ctx)
	if err != nil || main == "" {
		return nil, err
	}
	file := LoginOutboxFile(main)
	lo, err := store.Open(ctx, "sqlite", file)
	if err != nil {
		return nil, fmt.Errorf("identity store: open the login outbox: %w", err)
	}
	for _, f := range []string{file, file + "-wal", file + "-shm"} {
		_ = os.Chmod(f, 0o600) // events carry who logged in, and from where
	}
	migrations, err := events.WithOutboxMigration(fstest.MapFS{}, store.SQLite, "0001_events_outbox.sql")
	if err == nil {
		err = store.Migrate(ctx, lo, loginOutboxComponent, migrations)
	}
	if err != nil {
		_ = lo.Close()
		return nil, fmt.Errorf("identity store: migrate the login outbox: %w", err)
	}
	return lo, nil
}

// WithLoginOutbox gives the store a login outbox (OpenLoginOutbox; nil:
// none): the events of logins that write nothing else go there.
func WithLoginOutbox(lo *store.DB) Option {
	return func(s *Store) {
		if lo != nil && s.db.Dialect == store.SQLite {
			s.logins, s.loginStmts = lo, store.NewStmtCache(lo.DB)
			lo.OnClose(s.loginStmts.Close)
		}
	}
}

// LoginWritesAside implements identity.LoginWritesAside: true with a
// login outbox.
func (s *Store) LoginWritesAside() bool { return s.logins != nil }

// gateReadSQL reads the login gate of an account with, for a source, its
// failures counted from there, and whether any source has failures
// counted: one statement, one snapshot.
const gateReadSQL = `SELECT u.failed_count, u.next_attempt_at, u.locked_until, u.login_pending, u.login_pending_at,
	(SELECT failures FROM login_failure_sources WHERE user_id = u.id AND source = ?),
	EXISTS (SELECT 1 FROM login_failure_sources WHERE user_id = u.id)
	FROM users u WHERE u.id = ?`

// gateWithoutWrite is UpdateLoginGate's first step with a login outbox:
// it reads the gate without a lock and asks decide; done reports that
// nothing more is to be done (decide wanted no write, or a write of
// events only, now in the login outbox). Otherwise UpdateLoginGate runs
// its transaction.
func (s *Store) gateWithoutWrite(ctx context.Context, userID, source string,
	decide func(identity.LoginGate) (identity.LoginGateWrite, bool)) (done bool, err error) {
	var (
		c       gateColumns
		fromSrc *int64
		anySrc  bool
	)
	err = s.stmts.QueryRowContext(ctx, gateReadSQL, source, userID).Scan(append(c.dest(), &fromSrc, &anySrc)...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // the transaction answers NotFound
	}
	if err != nil {
		return false, classify(err, "read login gate", "")
	}
	g := c.gate()
	if source != "" && fromSrc != nil {
		g.SourceFailures = int(*fromSrc)
	}
	w, ok := decide(g)
	if !ok {
		return true, nil
	}
	unchanged := writeColumns(w) == c && w.Rehash == "" && w.StateChangedAt.IsZero()
	switch {
	case w.ClearSources:
		unchanged = unchanged && !anySrc
	case source != "" && w.SourceFailures > 0:
		unchanged = false
	case source != "":
		unchanged = unchanged && fromSrc == nil
	}
	if !unchanged {
		return false, nil
	}
	if len(w.Events) == 0 {
		return true, nil
	}
	// One event an INSERT, prepared once per connection (as the
	// database's outbox path does); a single event needs no transaction.
	if len(w.Events) == 1 {
		err = events.AddAllToOutbox(ctx, s.loginStmts, s.logins, w.Events)
	} else {
		err = s.logins.InTx(ctx, func(tx *sql.Tx) error {
			q := s.loginStmts.InTx(tx)
			for i := range w.Events {
				if err := events.AddAllToOutbox(ctx, q, s.logins, w.Events[i:i+1]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if store.IsUniqueViolation(err) {
		return false, errors.New("identity store: duplicate event id")
	}
	if err != nil {
		// The database's own outbox takes them (UpdateLoginGate's
		// transaction): a login does not fail for the login outbox.
		if ctx.Err() == nil {
			s.loginOutboxFailed(err)
		}
		return false, nil
	}
	return true, nil
}

// loginOutboxWarnEvery spaces the log lines of a failing login outbox.
const loginOutboxWarnEvery = time.Minute

// loginOutboxFailed logs (at most once per loginOutboxWarnEvery) that the
// login outbox could not be written.
func (s *Store) loginOutboxFailed(err error) {
	now := time.Now().UnixNano()
	last := s.loginOutboxWarned.Load()
	if now-last < int64(loginOutboxWarnEvery) || !s.loginOutboxWarned.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("identity store: the login outbox cannot be written; logins write their events to the database's outbox meanwhile",
		zap.Error(err))
}
