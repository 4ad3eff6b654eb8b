// Package sqlstore implements authz.Store on SQL databases (SQLite and
// PostgreSQL) through pkg/store. Every write moves the revision, changes
// the object, appends to the change log and writes its events into the
// outbox (pkg/events) in one transaction.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/authz"
)

// Component is the name under which the authz migrations are recorded.
const Component = "authz"

const outboxMigration = "0002_events_outbox.sql"

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Store is the SQL implementation of authz.Store.
type Store struct {
	db *store.DB
}

var _ authz.Store = (*Store)(nil)

// New returns a Store on db. Run Migrate first.
func New(db *store.DB) *Store { return &Store{db: db} }

// Migrate brings the authz schema (and its events outbox) up to date.
func Migrate(ctx context.Context, db *store.DB) error {
	return events.MigrateWithOutbox(ctx, db, Component, migrationFiles, outboxMigration)
}

func classify(err error, op string) error {
	if err == nil {
		return nil
	}
	if _, ok := apierr.As(err); ok {
		return err
	}
	c := store.Classify(err)
	if _, ok := apierr.As(c); ok {
		return c
	}
	return fmt.Errorf("authz store %s: %w", op, err)
}

func (s *Store) q(query string) string { return s.db.Rebind(query) }

// Write implements authz.Store.
func (s *Store) Write(ctx context.Context, expect int64, ch authz.Change, evs []events.Event) (authz.Change, error) {
	ch.Rev = expect + 1
	err := s.inTx(ctx, "write", func(tx *sql.Tx) error {
		if err := s.moveRevision(ctx, tx, expect, ch.Rev); err != nil {
			return err
		}
		held, err := s.applyChange(ctx, tx, &ch, store.UnixMS(time.Now()))
		if err != nil {
			return err
		}
		if !held {
			return store.NotFound(ch.Obj)
		}
		return addEvents(ctx, tx, s.db, evs)
	})
	if err != nil {
		return authz.Change{}, err
	}
	return ch, nil
}

// WriteBatch implements authz.Store.
func (s *Store) WriteBatch(ctx context.Context, expect int64, chs []authz.Change, evs []events.Event) ([]authz.Change, error) {
	if len(chs) == 0 {
		return nil, nil
	}
	out := make([]authz.Change, len(chs))
	copy(out, chs)
	for i := range out {
		out[i].Rev = expect + 1 + int64(i)
	}
	err := s.inTx(ctx, "write batch", func(tx *sql.Tx) error {
		if err := s.moveRevision(ctx, tx, expect, expect+int64(len(out))); err != nil {
			return err
		}
		now := store.UnixMS(time.Now())
		for i := range out {
			held, err := s.applyChange(ctx, tx, &out[i], now)
			if err != nil {
				return err
			}
			if !held {
				return store.NotFound(out[i].Obj)
			}
		}
		return addEvents(ctx, tx, s.db, evs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// inTx runs fn in one transaction; fn's own error is returned (classified
// for op) rather than what the transaction made of it.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	var fnErr error
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr != nil {
		err = fnErr
	}
	return classify(err, op)
}

// moveRevision moves the revision from expect to rev (authz.ErrStale when
// it is no longer expect).
func (s *Store) moveRevision(ctx context.Context, tx *sql.Tx, expect, rev int64) error {
	res, err := tx.ExecContext(ctx, s.q(`UPDATE authz_revision SET rev = ? WHERE id = 1 AND rev = ?`), rev, expect)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return authz.ErrStale
	}
	return nil
}

// applyChange writes ch (at ch.Rev) to the objects and the change log. A
// delete of an object not held writes nothing and reports false.
func (s *Store) applyChange(ctx context.Context, tx *sql.Tx, ch *authz.Change, now int64) (bool, error) {
	switch ch.Op {
	case authz.OpPut:
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_objects (obj, id, data, rev) VALUES (?, ?, ?, ?)
			ON CONFLICT (obj, id) DO UPDATE SET data = excluded.data, rev = excluded.rev`),
			ch.Obj, ch.ID, string(ch.Data), ch.Rev); err != nil {
			return false, err
		}
	case authz.OpDelete:
		res, err := tx.ExecContext(ctx, s.q(`DELETE FROM authz_objects WHERE obj = ? AND id = ?`), ch.Obj, ch.ID)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, err
		} else if n == 0 {
			return false, nil
		}
		ch.Data = nil
	default:
		return false, fmt.Errorf("unknown change op %q", ch.Op)
	}
	var data any
	if ch.Data != nil {
		data = string(ch.Data)
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_changes (rev, obj, op, id, data, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		ch.Rev, ch.Obj, ch.Op, ch.ID, data, now)
	return err == nil, err
}

func addEvents(ctx context.Context, tx *sql.Tx, db *store.DB, evs []events.Event) error {
	for _, ev := range evs {
		if err := events.AddToOutbox(ctx, tx, db, ev); err != nil {
			if store.IsUniqueViolation(err) {
				return errors.New("authz store: duplicate event id")
			}
			return err
		}
	}
	return nil
}

// AppendEvents writes events alone (audit records of refused changes).
func (s *Store) AppendEvents(ctx context.Context, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	return classify(s.db.InTx(ctx, func(tx *sql.Tx) error { return addEvents(ctx, tx, s.db, evs) }), "append events")
}

// RecordBreaches implements authz.Store. SQLite transactions take the
// write lock when they begin; on PostgreSQL the insert of a breach another
// transaction records at once waits for it and then inserts nothing.
func (s *Store) RecordBreaches(ctx context.Context, now []authz.Breach, at time.Time,
	evs func(authz.Breach) []events.Event) ([]authz.Breach, error) {
	var added []authz.Breach
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		added = added[:0]
		standing := make(map[authz.Breach]bool, len(now))
		for _, b := range now {
			standing[b] = true
		}
		rows, err := tx.QueryContext(ctx, "SELECT exclusion, person FROM authz_sod_breaches")
		if err != nil {
			return err
		}
		recorded := map[authz.Breach]bool{}
		for rows.Next() {
			var b authz.Breach
			if err := rows.Scan(&b.Exclusion, &b.Person); err != nil {
				rows.Close()
				return err
			}
			recorded[b] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// in one order (two instances on PostgreSQL take the rows' locks
		// alike: no deadlock, review sec16 L5)
		gone := make([]authz.Breach, 0, len(recorded))
		for b := range recorded {
			if !standing[b] {
				gone = append(gone, b)
			}
		}
		slices.SortFunc(gone, authz.CompareBreaches)
		ordered := slices.SortedFunc(slices.Values(now), authz.CompareBreaches)
		for _, b := range gone {
			if _, err := tx.ExecContext(ctx, s.q("DELETE FROM authz_sod_breaches WHERE exclusion = ? AND person = ?"),
				b.Exclusion, b.Person); err != nil {
				return err
			}
		}
		for _, b := range ordered {
			if recorded[b] {
				continue
			}
			res, err := tx.ExecContext(ctx, s.q(`INSERT INTO authz_sod_breaches (exclusion, person, reported_ms) VALUES (?, ?, ?)
				ON CONFLICT (exclusion, person) DO NOTHING`), b.Exclusion, b.Person, store.UnixMS(at))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n == 0 {
				continue // recorded meanwhile (or listed twice)
			}
			recorded[b] = true
			if err := addEvents(ctx, tx, s.db, evs(b)); err != nil {
				return err
			}
			added = append(added, b)
		}
		return nil
	})
	if err != nil {
		return nil, classify(err, "record breaches")
	}
	return added, nil
}

// Revision implements authz.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.db.QueryRowContext(ctx, `SELECT rev FROM authz_revision WHERE id = 1`).Scan(&rev)
	return rev, classify(err, "revision")
}

// ChangesSince implements authz.Store.
func (s *Store) ChangesSince(ctx context.Context, rev int64, limit int) ([]authz.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT rev, obj, op, id, data FROM authz_changes WHERE rev > ? ORDER BY rev LIMIT ?`), rev, limit)
	if err != nil {
		return nil, classify(err, "changes")
	}
	defer rows.Close()
	var out []authz.Change
	for rows.Next() {
		var c authz.Change
		var data sql.NullString
		if err := rows.Scan(&c.Rev, &c.Obj, &c.Op, &c.ID, &data); err != nil {
			return nil, classify(err, "changes")
		}
		if data.Valid {
			c.Data = []byte(data.String)
		}
		out = append(out, c)
	}
	return out, classify(rows.Err(), "changes")
}

// snapshotOrder is the order objects are handed out in: what others refer
// to first.
var snapshotOrder = []string{authz.ObjResource, authz.ObjRole, authz.ObjExclusion, authz.ObjGrant}

// Snapshot implements authz.Store. It reads in one read-only transaction
// (on SQLite a deferred one: writers are not held up while a replica
// loads; on PostgreSQL REPEATABLE READ), one streaming query per kind of
// object. The data of each change is valid only until fn returns.
func (s *Store) Snapshot(ctx context.Context, fn func(authz.Change) error) (int64, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.db.Dialect == store.Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return 0, classify(err, "snapshot")
	}
	defer func() { _ = tx.Rollback() }()
	var rev int64
	if err := tx.QueryRowContext(ctx, `SELECT rev FROM authz_revision WHERE id = 1`).Scan(&rev); err != nil {
		return 0, classify(err, "snapshot")
	}
	for _, obj := range snapshotOrder {
		if err := func() error {
			rows, err := tx.QueryContext(ctx, s.q(`SELECT id, data FROM authz_objects WHERE obj = ?`), obj)
			if err != nil {
				return classify(err, "snapshot")
			}
			defer rows.Close()
			var data sql.RawBytes // reused row by row: no copy kept
			for rows.Next() {
				c := authz.Change{Obj: obj, Op: authz.OpPut}
				if err := rows.Scan(&c.ID, &data); err != nil {
					return classify(err, "snapshot")
				}
				c.Data = data
				if err := fn(c); err != nil {
					return err
				}
			}
			return classify(rows.Err(), "snapshot")
		}(); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// CountObjects returns how many objects of kind obj the store holds (a
// snapshot load sizes the index with it).
func (s *Store) CountObjects(ctx context.Context, obj string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM authz_objects WHERE obj = ?`), obj).Scan(&n)
	return n, classify(err, "count")
}

// Ping implements authz.Store.
func (s *Store) Ping(ctx context.Context) error { return classify(s.db.PingContext(ctx), "ping") }

// lockRevision takes the revision row (FOR UPDATE on PostgreSQL; SQLite
// writes one at a time) and checks it is still expect (authz.ErrStale).
func (s *Store) lockRevision(ctx context.Context, tx *sql.Tx, expect int64) error {
	var rev int64
	if err := tx.QueryRowContext(ctx, `SELECT rev FROM authz_revision WHERE id = 1`+s.db.ForUpdate()).Scan(&rev); err != nil {
		return err
	}
	if rev != expect {
		return authz.ErrStale
	}
	return nil
}

// DeleteGrantsOf implements authz.Store. Like ApplyReplica it takes the
// revision row first (FOR UPDATE on PostgreSQL; SQLite writes one at a
// time), then reads each grant by its key and checks its subject in Go:
// no JSON in SQL, the same statements on both databases.
func (s *Store) DeleteGrantsOf(ctx context.Context, expect int64, sub authz.Subject, ids []string,
	evs func(authz.Change) []events.Event) ([]authz.Change, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var committed []authz.Change
	err := s.inTx(ctx, "delete grants", func(tx *sql.Tx) error {
		committed = committed[:0]
		if err := s.lockRevision(ctx, tx, expect); err != nil {
			return err
		}
		rev := expect
		read, err := tx.PrepareContext(ctx, s.q(`SELECT data FROM authz_objects WHERE obj = ? AND id = ?`))
		if err != nil {
			return err
		}
		defer func() { _ = read.Close() }()
		now := store.UnixMS(time.Now())
		for _, id := range ids {
			var data string
			err := read.QueryRowContext(ctx, authz.ObjGrant, id).Scan(&data)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			var g struct {
				Subject authz.Subject `json:"subject"`
			}
			if json.Unmarshal([]byte(data), &g) != nil || g.Subject != sub {
				continue
			}
			ch := authz.Change{Rev: rev + 1, Obj: authz.ObjGrant, Op: authz.OpDelete, ID: id}
			held, err := s.applyChange(ctx, tx, &ch, now)
			if err != nil {
				return err
			}
			if !held {
				continue
			}
			if evs != nil {
				if err := addEvents(ctx, tx, s.db, evs(ch)); err != nil {
					return err
				}
			}
			rev = ch.Rev
			committed = append(committed, ch)
		}
		if rev == expect {
			return nil
		}
		return s.moveRevision(ctx, tx, expect, rev)
	})
	if err != nil {
		return nil, err
	}
	return committed, nil
}
