// Package sqlstore implements audit.Store on SQL databases (SQLite and
// PostgreSQL) through pkg/store.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
)

// Component is the name under which the audit migrations are recorded.
const Component = "audit"

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Store is the SQL implementation of audit.Store.
type Store struct {
	db *store.DB
}

var _ audit.Store = (*Store)(nil)

// New returns a Store on db. Run Migrate first.
func New(db *store.DB) *Store { return &Store{db: db} }

// DB is the store's database (tests and benchmarks).
func (s *Store) DB() *store.DB { return s.db }

// Migrate brings the audit schema up to date.
func Migrate(ctx context.Context, db *store.DB) error {
	dir, err := fs.Sub(migrationFiles, "migrations/"+db.Dialect.String())
	if err != nil {
		return fmt.Errorf("audit migrations: %w", err)
	}
	return store.Migrate(ctx, db, Component, dir)
}

func classify(err error, op string) error {
	if err == nil {
		return nil
	}
	err = store.Classify(err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("audit store: %s: %w", op, err)
}

// querier is what reads run on: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Ping implements audit.Store.
func (s *Store) Ping(ctx context.Context) error { return classify(s.db.PingContext(ctx), "ping") }

// InAppend implements audit.Store: the transaction locks the log's size row
// (PostgreSQL: SELECT ... FOR UPDATE; SQLite transactions take the write
// lock when they begin).
func (s *Store) InAppend(ctx context.Context, fn func(tx audit.AppendTx) error) error {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		t := &appendTx{db: s.db, q: tx}
		if err := appendCache(ctx, s.db, tx); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT size FROM audit_log WHERE id = 1"+s.db.ForUpdate()).Scan(&t.size); err != nil {
			return classify(err, "lock the log")
		}
		return fn(t)
	})
	return classify(err, "append")
}

// appendCache sizes SQLite's page cache for appends: the seven indexes of
// audit_records take new keys all over their pages, and a cache larger
// than the 2 MiB default keeps them in memory instead of reading them back
// for every batch (per connection; only those that append grow it).
func appendCache(ctx context.Context, db *store.DB, tx *sql.Tx) error {
	if db.Dialect == store.Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, "PRAGMA cache_size = -32768")
	return classify(err, "cache size")
}

type appendTx struct {
	db   *store.DB
	q    *sql.Tx
	size int64
}

func (t *appendTx) Size(context.Context) (int64, error) { return t.size, nil }

func (t *appendTx) Known(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	const chunk = 500
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		rows, err := t.q.QueryContext(ctx, t.db.Rebind("SELECT event_id FROM audit_records WHERE event_id IN ("+store.Placeholders(n)+")"), args...)
		if err != nil {
			return nil, classify(err, "known events")
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, classify(err, "known events")
			}
			out[id] = true
		}
		if err := rows.Close(); err != nil {
			return nil, classify(err, "known events")
		}
		if err := rows.Err(); err != nil {
			return nil, classify(err, "known events")
		}
		ids = ids[n:]
	}
	return out, nil
}

func (t *appendTx) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, t.db, t.q, indexes)
}

// recordCols are the columns of audit_records in insert order.
const recordCols = "seq, event_id, event_type, component, time_ms, serial, trace_id, app_id, api, actor, subject, org, result, reason, duration_ms, client_ip, detail"

const nRecordCols = 17

func (t *appendTx) Append(ctx context.Context, recs []audit.Record, firstHash int64, hashes []tlog.Hash) error {
	if len(recs) > 0 && recs[0].Seq != t.size {
		return fmt.Errorf("audit store: append at %d to a log of size %d", recs[0].Seq, t.size)
	}
	if err := insertRecords(ctx, t.db, t.q, recs); err != nil {
		return err
	}
	if err := insertHashes(ctx, t.db, t.q, firstHash, hashes); err != nil {
		return err
	}
	size := t.size + int64(len(recs))
	if _, err := t.q.ExecContext(ctx, t.db.Rebind("UPDATE audit_log SET size = ? WHERE id = 1"), size); err != nil {
		return classify(err, "set the log size")
	}
	t.size = size
	return nil
}

func (t *appendTx) Pruned(ctx context.Context) (int64, error) { return pruned(ctx, t.q) }

func (t *appendTx) Prune(ctx context.Context, below int64) error {
	if below > t.size {
		return fmt.Errorf("audit store: prune below %d in a log of size %d", below, t.size)
	}
	if _, err := t.q.ExecContext(ctx, t.db.Rebind("DELETE FROM audit_records WHERE seq < ?"), below); err != nil {
		return classify(err, "prune records")
	}
	_, err := t.q.ExecContext(ctx, t.db.Rebind("UPDATE audit_log SET pruned = ? WHERE id = 1"), below)
	return classify(err, "set pruned")
}

func pruned(ctx context.Context, q querier) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, "SELECT pruned FROM audit_log WHERE id = 1").Scan(&n)
	return n, classify(err, "pruned")
}

// Pruned implements audit.Store.
func (s *Store) Pruned(ctx context.Context) (int64, error) { return pruned(ctx, s.db) }

// FirstAtOrAfter implements audit.Store (a walk of the primary key from
// from: the records it passes are the old ones about to be archived).
func (s *Store) FirstAtOrAfter(ctx context.Context, from int64, t time.Time) (int64, bool, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT seq FROM audit_records WHERE seq >= ? AND time_ms >= ? ORDER BY seq LIMIT 1"),
		from, t.UnixMilli()).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, classify(err, "first record after")
	}
	return seq, true, nil
}

func (t *appendTx) LatestCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	return latestCheckpoint(ctx, t.q)
}

func (t *appendTx) AddCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	_, err := t.q.ExecContext(ctx, t.db.Rebind("INSERT INTO audit_checkpoints (size, root, time_ms, note) VALUES (?, ?, ?, ?)"),
		c.Size, c.Root[:], c.Time.UnixMilli(), string(c.Note))
	return classify(err, "insert checkpoint")
}

// preparer is a transaction (or database) that prepares statements.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// insertOneByOne reports whether inserts of many rows go best as one
// prepared single-row statement per row: on SQLite, where a statement
// costs no round trip, and where a multi-row INSERT is parsed anew each
// time and makes SQLite write a statement journal (a temporary file, page
// by page: most of the insert time in profiles) that a single-row INSERT
// does not need. PostgreSQL gets multi-row statements (one round trip per
// chunk).
func insertOneByOne(db *store.DB, q querier) (preparer, bool) {
	p, ok := q.(preparer)
	return p, ok && db.Dialect != store.Postgres
}

// insertHashes inserts the tree hashes from index first on.
func insertHashes(ctx context.Context, db *store.DB, q querier, first int64, hashes []tlog.Hash) error {
	const q1 = "INSERT INTO audit_hashes (idx, hash) VALUES (?, ?)"
	if p, ok := insertOneByOne(db, q); ok && len(hashes) > 1 {
		stmt, err := p.PrepareContext(ctx, db.Rebind(q1))
		if err != nil {
			return classify(err, "insert tree hashes")
		}
		defer func() { _ = stmt.Close() }()
		for i, h := range hashes {
			if _, err := stmt.ExecContext(ctx, first+int64(i), h[:]); err != nil {
				return classify(err, "insert tree hashes")
			}
		}
		return nil
	}
	const hchunk = 1000
	for i := 0; i < len(hashes); i += hchunk {
		part := hashes[i:min(i+hchunk, len(hashes))]
		args := make([]any, 0, 2*len(part))
		for j, h := range part {
			args = append(args, first+int64(i+j), h[:])
		}
		stmt := "INSERT INTO audit_hashes (idx, hash) VALUES " + rows(len(part), 2)
		if _, err := q.ExecContext(ctx, db.Rebind(stmt), args...); err != nil {
			return classify(err, "insert tree hashes")
		}
	}
	return nil
}

// recordArgs are the values of r's columns (recordCols order).
func recordArgs(args []any, r *audit.Record) ([]any, error) {
	d, err := encodeDetail(r.Detail)
	if err != nil {
		return nil, err
	}
	return append(args, r.Seq, r.EventID, r.Type, r.Component, r.Time.UnixMilli(), r.Serial, r.TraceID, r.AppID,
		r.API, r.Actor, r.Subject, r.Org, r.Result, r.Reason, r.DurationMS, r.ClientIP, d), nil
}

// insertRecords inserts recs (Seq set) into audit_records.
func insertRecords(ctx context.Context, db *store.DB, q querier, recs []audit.Record) error {
	if p, ok := insertOneByOne(db, q); ok && len(recs) > 1 {
		stmt, err := p.PrepareContext(ctx, db.Rebind("INSERT INTO audit_records ("+recordCols+") VALUES ("+store.Placeholders(nRecordCols)+")"))
		if err != nil {
			return classify(err, "insert records")
		}
		defer func() { _ = stmt.Close() }()
		args := make([]any, 0, nRecordCols)
		for i := range recs {
			if args, err = recordArgs(args[:0], &recs[i]); err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return classify(err, "insert records")
			}
		}
		return nil
	}
	const chunk = 200 // rows per INSERT (17 parameters each)
	for i := 0; i < len(recs); i += chunk {
		part := recs[i:min(i+chunk, len(recs))]
		args := make([]any, 0, len(part)*nRecordCols)
		for j := range part {
			var err error
			if args, err = recordArgs(args, &part[j]); err != nil {
				return err
			}
		}
		stmt := "INSERT INTO audit_records (" + recordCols + ") VALUES " + rows(len(part), nRecordCols)
		if _, err := q.ExecContext(ctx, db.Rebind(stmt), args...); err != nil {
			return classify(err, "insert records")
		}
	}
	return nil
}

// rows returns "(?, ?), (?, ?), ..." for n rows of cols columns.
func rows(n, cols int) string {
	one := "(" + store.Placeholders(cols) + ")"
	var b strings.Builder
	b.Grow(n * (len(one) + 2))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return b.String()
}

func encodeDetail(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	return string(b), err
}

// Size implements audit.Store.
func (s *Store) Size(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT size FROM audit_log WHERE id = 1").Scan(&n)
	return n, classify(err, "log size")
}

// ReadHashes implements audit.Store.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return readHashes(ctx, s.db, s.db, indexes)
}

func readHashes(ctx context.Context, db *store.DB, q querier, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	got := make(map[int64]tlog.Hash, len(indexes))
	const chunk = 500
	for i := 0; i < len(indexes); i += chunk {
		part := indexes[i:min(i+chunk, len(indexes))]
		args := make([]any, len(part))
		for j, x := range part {
			args[j] = x
		}
		rows, err := q.QueryContext(ctx, db.Rebind("SELECT idx, hash FROM audit_hashes WHERE idx IN ("+store.Placeholders(len(part))+")"), args...)
		if err != nil {
			return nil, classify(err, "read tree hashes")
		}
		for rows.Next() {
			var idx int64
			var b []byte
			if err := rows.Scan(&idx, &b); err != nil {
				rows.Close()
				return nil, classify(err, "read tree hashes")
			}
			var h tlog.Hash
			if len(b) != len(h) {
				rows.Close()
				return nil, fmt.Errorf("audit store: tree hash %d has %d bytes", idx, len(b))
			}
			copy(h[:], b)
			got[idx] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, classify(err, "read tree hashes")
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("audit store: tree hash %d is missing", x)
		}
		out[i] = h
	}
	return out, nil
}

// ScanHashes implements audit.Store.
func (s *Store) ScanHashes(ctx context.Context, from int64, limit int, fn func(int64, tlog.Hash) error) error {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT idx, hash FROM audit_hashes WHERE idx >= ? ORDER BY idx LIMIT ?"), from, limit)
	if err != nil {
		return classify(err, "scan tree hashes")
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var b []byte
		if err := rows.Scan(&idx, &b); err != nil {
			return classify(err, "scan tree hashes")
		}
		var h tlog.Hash
		copy(h[:], b) // a hash of the wrong length compares unequal
		if len(b) != len(h) {
			h[0] ^= 0xff
		}
		if err := fn(idx, h); err != nil {
			return err
		}
	}
	return classify(rows.Err(), "scan tree hashes")
}

const checkpointCols = "size, root, time_ms, note"

func scanCheckpoint(sc interface{ Scan(...any) error }) (*audit.Checkpoint, error) {
	var c audit.Checkpoint
	var root []byte
	var ms int64
	var note string
	if err := sc.Scan(&c.Size, &root, &ms, &note); err != nil {
		return nil, err
	}
	copy(c.Root[:], root)
	c.Time = time.UnixMilli(ms).UTC()
	c.Note = []byte(note)
	return &c, nil
}

func latestCheckpoint(ctx context.Context, q querier) (*audit.Checkpoint, error) {
	c, err := scanCheckpoint(q.QueryRowContext(ctx, "SELECT "+checkpointCols+" FROM audit_checkpoints ORDER BY size DESC LIMIT 1"))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return c, classify(err, "latest checkpoint")
}

// LatestCheckpoint implements audit.Store.
func (s *Store) LatestCheckpoint(ctx context.Context) (*audit.Checkpoint, error) {
	return latestCheckpoint(ctx, s.db)
}

// CheckpointAt implements audit.Store.
func (s *Store) CheckpointAt(ctx context.Context, size int64) (*audit.Checkpoint, error) {
	c, err := scanCheckpoint(s.db.QueryRowContext(ctx, s.db.Rebind("SELECT "+checkpointCols+" FROM audit_checkpoints WHERE size = ?"), size))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("checkpoint")
	}
	return c, classify(err, "checkpoint")
}

// Checkpoints implements audit.Store.
func (s *Store) Checkpoints(ctx context.Context, fn func(*audit.Checkpoint) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT "+checkpointCols+" FROM audit_checkpoints ORDER BY size")
	if err != nil {
		return classify(err, "checkpoints")
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return classify(err, "checkpoints")
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return classify(rows.Err(), "checkpoints")
}

func scanRecord(sc interface{ Scan(...any) error }) (*audit.Record, error) {
	var r audit.Record
	var ms int64
	var detail string
	if err := sc.Scan(&r.Seq, &r.EventID, &r.Type, &r.Component, &ms, &r.Serial, &r.TraceID, &r.AppID, &r.API,
		&r.Actor, &r.Subject, &r.Org, &r.Result, &r.Reason, &r.DurationMS, &r.ClientIP, &detail); err != nil {
		return nil, err
	}
	r.Time = time.UnixMilli(ms).UTC()
	if detail != "{}" && detail != "" {
		if err := json.Unmarshal([]byte(detail), &r.Detail); err != nil {
			// kept as stored: the leaf hash no longer matches, Verify says so
			r.Detail = map[string]string{"": detail}
		}
	}
	return &r, nil
}

// GetRecord implements audit.Store.
func (s *Store) GetRecord(ctx context.Context, seq int64) (*audit.Record, error) {
	r, err := scanRecord(s.db.QueryRowContext(ctx, s.db.Rebind("SELECT "+recordCols+" FROM audit_records WHERE seq = ?"), seq))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("audit record")
	}
	return r, classify(err, "get record")
}

// ScanRecords implements audit.Store.
func (s *Store) ScanRecords(ctx context.Context, from int64, fn func(*audit.Record) error) error {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT "+recordCols+" FROM audit_records WHERE seq >= ? ORDER BY seq"), from)
	if err != nil {
		return classify(err, "scan records")
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return classify(err, "scan records")
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return classify(rows.Err(), "scan records")
}
