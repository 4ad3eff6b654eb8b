// Package sqlstore implements audit.Store on SQL databases (SQLite and
// PostgreSQL) through pkg/store.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"strings"
	"sync/atomic"
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
	// treeFrom caches audit_log.tree_from (-1: not read yet): the first
	// record whose tree hashes are in audit_tree; those of the records
	// before it are in audit_hashes_v1, one per row (migration 0004). It
	// never changes once the migration ran.
	treeFrom atomic.Int64
	// local names this centre's log (SetLocalOrigin); peers: peer records
	// are held (hasPeers); peersChecked: when none were found last (unix
	// ns; 0: not yet), now the clock (tests).
	local        atomic.Pointer[string]
	peers        atomic.Bool
	peersChecked atomic.Int64
	now          func() time.Time
}

var _ audit.Store = (*Store)(nil)

// New returns a Store on db. Run Migrate first.
func New(db *store.DB) *Store {
	s := &Store{db: db}
	s.treeFrom.Store(-1)
	return s
}

// layout returns audit_log.tree_from (see Store.treeFrom).
func (s *Store) layout(ctx context.Context, q querier) (int64, error) {
	if v := s.treeFrom.Load(); v >= 0 {
		return v, nil
	}
	var v int64
	if err := q.QueryRowContext(ctx, "SELECT tree_from FROM audit_log WHERE id = 1").Scan(&v); err != nil {
		return 0, classify(err, "tree layout")
	}
	s.treeFrom.Store(v)
	return v, nil
}

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
		if err := tx.QueryRowContext(ctx, "SELECT size, tree_from FROM audit_log WHERE id = 1"+s.db.ForUpdate()).Scan(&t.size, &t.treeFrom); err != nil {
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
	db       *store.DB
	q        *sql.Tx
	size     int64
	treeFrom int64
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
	return readHashes(ctx, t.db, t.q, t.treeFrom, indexes)
}

// recordCols are the columns of audit_records in insert order.
const recordCols = "seq, event_id, event_type, component, time_ms, serial, trace_id, app_id, api, actor, subject, org, result, reason, duration_ms, client_ip, detail"

const nRecordCols = 17

func (t *appendTx) Append(ctx context.Context, recs []audit.Record, firstHash int64, hashes []tlog.Hash) error {
	if len(recs) == 0 {
		return nil
	}
	end := t.size + int64(len(recs))
	for i := range recs {
		if recs[i].Seq != t.size+int64(i) {
			return fmt.Errorf("audit store: append of record %d at %d to a log of size %d", recs[i].Seq, t.size+int64(i), t.size)
		}
	}
	if firstHash != tlog.StoredHashIndex(0, t.size) || int64(len(hashes)) != tlog.StoredHashIndex(0, end)-firstHash {
		return fmt.Errorf("audit store: %d tree hashes from index %d do not belong to records %d to %d", len(hashes), firstHash, t.size, end-1)
	}
	if err := insertRecords(ctx, t.db, t.q, recs); err != nil {
		return err
	}
	if err := insertTree(ctx, t.db, t.q, t.size, len(recs), hashes); err != nil {
		return err
	}
	if _, err := t.q.ExecContext(ctx, t.db.Rebind("UPDATE audit_log SET size = ? WHERE id = 1"), end); err != nil {
		return classify(err, "set the log size")
	}
	t.size = end
	return nil
}

// treeHashCount is the number of tree hashes tlog stores with record seq:
// its leaf hash and one per subtree it completes.
func treeHashCount(seq int64) int { return 1 + bits.TrailingZeros64(uint64(seq+1)) }

// treeRecord is the record that stored the tree hash at index (the one
// completing its subtree) and the hash's place among that record's.
func treeRecord(index int64) (seq int64, level int) {
	level, n := tlog.SplitStoredHashIndex(index)
	return (n+1)<<level - 1, level
}

// insertTree stores the tree hashes of the n records from seq first on,
// one audit_tree row per record (hashes holds them all, in index order).
func insertTree(ctx context.Context, db *store.DB, q querier, first int64, n int, hashes []tlog.Hash) error {
	blob := make([]byte, 0, len(hashes)*tlog.HashSize)
	for _, h := range hashes {
		blob = append(blob, h[:]...)
	}
	off := 0
	return insertRows(ctx, db, q, "audit_tree", "seq, hashes", 2, n, func(args []any, i int) ([]any, error) {
		seq := first + int64(i)
		k := treeHashCount(seq) * tlog.HashSize
		args = append(args, seq, blob[off:off+k])
		off += k
		return args, nil
	})
}

func (t *appendTx) Pruned(ctx context.Context) (int64, error) { return pruned(ctx, t.q) }

func (t *appendTx) Prune(ctx context.Context, below int64) (int64, error) {
	if below > t.size {
		return 0, fmt.Errorf("audit store: prune below %d in a log of size %d", below, t.size)
	}
	// the records of archives stay (audit.Store's Prune)
	if _, err := t.q.ExecContext(ctx, t.db.Rebind("DELETE FROM audit_records WHERE seq < ? AND NOT (event_type = ? AND component = ?)"),
		below, audit.TypeArchive, "audit"); err != nil {
		return 0, classify(err, "prune records")
	}
	var kept int64
	if err := t.q.QueryRowContext(ctx, t.db.Rebind("SELECT COUNT(*) FROM audit_records WHERE seq < ?"), below).Scan(&kept); err != nil {
		return 0, classify(err, "count kept records")
	}
	_, err := t.q.ExecContext(ctx, t.db.Rebind("UPDATE audit_log SET pruned = ? WHERE id = 1"), below)
	return kept, classify(err, "set pruned")
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

// sqliteRowsPerInsert is how many rows one INSERT statement writes on
// SQLite: one, through a statement prepared once per append. Multi-row
// statements were slower per CPU-second of the same inserts even as INSERT
// OR IGNORE (which needs no statement journal): 10.7k, 12.0k and 20.9k
// records per CPU-second with 16, 64 and 256 rows per statement against
// 18.2k, 20.3k and 26.0k one row at a time, alternating in one run
// (BenchmarkInsertRows, 2026-12-02, load ~40). SQLite runs in this
// process, so a statement costs no round trip.
var sqliteRowsPerInsert = 1

// rowsPerInsert is how many rows one INSERT statement writes.
func rowsPerInsert(db *store.DB) int {
	if db.Dialect == store.Postgres {
		return 200 // one round trip per 200 rows
	}
	return sqliteRowsPerInsert
}

// insertRows inserts n rows of ncols columns (cols) into table through
// INSERT statements of rowsPerInsert rows: the statement of a full chunk
// is prepared once per call, so its parsing does not come per chunk. arg
// appends the values of row i. A statement that stores fewer rows than it
// was given fails the transaction.
func insertRows(ctx context.Context, db *store.DB, q querier, table, cols string, ncols, n int, arg func(args []any, i int) ([]any, error)) error {
	if n == 0 {
		return nil
	}
	chunk := min(n, rowsPerInsert(db))
	var full *sql.Stmt
	defer func() {
		if full != nil {
			_ = full.Close()
		}
	}()
	args := make([]any, 0, chunk*ncols)
	for lo := 0; lo < n; lo += chunk {
		m := min(chunk, n-lo)
		args = args[:0]
		for i := lo; i < lo+m; i++ {
			var err error
			if args, err = arg(args, i); err != nil {
				return err
			}
		}
		text := db.Rebind("INSERT INTO " + table + " (" + cols + ") VALUES " + rows(m, ncols))
		var res sql.Result
		var err error
		p, ok := q.(preparer)
		switch {
		case m == chunk && ok:
			if full == nil {
				if full, err = p.PrepareContext(ctx, text); err != nil {
					return classify(err, "insert into "+table)
				}
			}
			res, err = full.ExecContext(ctx, args...)
		default:
			res, err = q.ExecContext(ctx, text, args...)
		}
		if err != nil {
			return classify(err, "insert into "+table)
		}
		if got, err := res.RowsAffected(); err == nil && got != int64(m) {
			return fmt.Errorf("audit store: insert into %s: %d of %d rows stored (the others were already there)", table, got, m)
		}
	}
	return nil
}

// InsertPlain (benchmarks) inserts recs as records first, first+1, ... without tree
// hashes, duplicate checks or the log's size (the same statements and
// cache as appends): the floor of the ingest
// benchmark, and a quick way to fill a log for query benchmarks.
func InsertPlain(ctx context.Context, db *store.DB, tx *sql.Tx, recs []audit.Record, first int64) error {
	part := make([]audit.Record, len(recs))
	copy(part, recs)
	for i := range part {
		part[i].Seq = first + int64(i)
	}
	if err := appendCache(ctx, db, tx); err != nil {
		return err
	}
	return insertRecords(ctx, db, tx, part)
}

// recordArgs are the values of r's columns (recordCols order).
func recordArgs(args []any, r *audit.Record) []any {
	return append(args, r.Seq, r.EventID, r.Type, r.Component, r.Time.UnixMilli(), r.Serial, r.TraceID, r.AppID,
		r.API, r.Actor, r.Subject, r.Org, r.Result, r.Reason, r.DurationMS, r.ClientIP, audit.EncodeDetail(r.Detail))
}

// insertRecords inserts recs (Seq set) into audit_records.
func insertRecords(ctx context.Context, db *store.DB, q querier, recs []audit.Record) error {
	return insertRows(ctx, db, q, "audit_records", recordCols, nRecordCols, len(recs), func(args []any, i int) ([]any, error) {
		return recordArgs(args, &recs[i]), nil
	})
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

// Size implements audit.Store.
func (s *Store) Size(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "SELECT size FROM audit_log WHERE id = 1").Scan(&n)
	return n, classify(err, "log size")
}

// ReadHashes implements audit.Store.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	from, err := s.layout(ctx, s.db)
	if err != nil {
		return nil, err
	}
	return readHashes(ctx, s.db, s.db, from, indexes)
}

// readHashes reads the stored tree hashes at indexes: from audit_tree for
// the records from treeFrom on, from audit_hashes_v1 before.
func readHashes(ctx context.Context, db *store.DB, q querier, treeFrom int64, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	var oldIdx, seqs []int64
	for _, x := range indexes {
		if x < 0 {
			return nil, fmt.Errorf("audit store: tree hash index %d", x)
		}
		if seq, _ := treeRecord(x); seq < treeFrom {
			oldIdx = append(oldIdx, x)
		} else {
			seqs = append(seqs, seq)
		}
	}
	old := map[int64][]byte{}
	if err := readBlobs(ctx, db, q, "SELECT idx, hash FROM audit_hashes_v1 WHERE idx IN ", oldIdx, old); err != nil {
		return nil, err
	}
	tree := map[int64][]byte{}
	if err := readBlobs(ctx, db, q, "SELECT seq, hashes FROM audit_tree WHERE seq IN ", seqs, tree); err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		seq, level := treeRecord(x)
		var b []byte
		var ok bool
		if seq < treeFrom {
			b, ok = old[x]
		} else if b, ok = tree[seq]; ok {
			if len(b) != treeHashCount(seq)*tlog.HashSize {
				return nil, fmt.Errorf("audit store: the tree hashes of record %d have %d bytes", seq, len(b))
			}
			b = b[level*tlog.HashSize : (level+1)*tlog.HashSize]
		}
		if !ok {
			return nil, fmt.Errorf("audit store: tree hash %d is missing", x)
		}
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("audit store: tree hash %d has %d bytes", x, len(b))
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// readBlobs runs query (ending in "IN ") for keys, in chunks, into out.
func readBlobs(ctx context.Context, db *store.DB, q querier, query string, keys []int64, out map[int64][]byte) error {
	const chunk = 500
	for i := 0; i < len(keys); i += chunk {
		part := keys[i:min(i+chunk, len(keys))]
		args := make([]any, len(part))
		for j, x := range part {
			args[j] = x
		}
		rows, err := q.QueryContext(ctx, db.Rebind(query+"("+store.Placeholders(len(part))+")"), args...)
		if err != nil {
			return classify(err, "read tree hashes")
		}
		for rows.Next() {
			var k int64
			var b []byte
			if err := rows.Scan(&k, &b); err != nil {
				rows.Close()
				return classify(err, "read tree hashes")
			}
			out[k] = b
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify(err, "read tree hashes")
		}
	}
	return nil
}

// ScanHashes implements audit.Store: the hashes of audit_hashes_v1 below
// the layout's boundary, then those of the audit_tree rows, record after
// record (a row of the wrong length yields its hashes altered, so that
// they compare unequal).
func (s *Store) ScanHashes(ctx context.Context, from int64, limit int, fn func(int64, tlog.Hash) error) error {
	if limit <= 0 {
		return nil
	}
	treeFrom, err := s.layout(ctx, s.db)
	if err != nil {
		return err
	}
	emitted := 0
	if boundary := tlog.StoredHashIndex(0, treeFrom); from < boundary {
		rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT idx, hash FROM audit_hashes_v1 WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?"),
			from, boundary, limit)
		if err != nil {
			return classify(err, "scan tree hashes")
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var idx int64
				var b []byte
				if err := rows.Scan(&idx, &b); err != nil {
					return classify(err, "scan tree hashes")
				}
				if err := fn(idx, hashOf(b)); err != nil {
					return err
				}
				emitted++
			}
			return classify(rows.Err(), "scan tree hashes")
		}()
		if err != nil || emitted == limit {
			return err
		}
		from = boundary
	}
	first, _ := treeRecord(from)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT seq, hashes FROM audit_tree WHERE seq >= ? ORDER BY seq LIMIT ?"),
		first, limit-emitted)
	if err != nil {
		return classify(err, "scan tree hashes")
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return classify(err, "scan tree hashes")
		}
		k := treeHashCount(seq)
		bad := len(b) != k*tlog.HashSize
		idx := tlog.StoredHashIndex(0, seq)
		for j := range k {
			if idx+int64(j) < from {
				continue
			}
			var h tlog.Hash
			if bad {
				h[0] = 0xff // compares unequal
			} else {
				copy(h[:], b[j*tlog.HashSize:])
			}
			if err := fn(idx+int64(j), h); err != nil {
				return err
			}
			if emitted++; emitted == limit {
				return nil
			}
		}
	}
	return classify(rows.Err(), "scan tree hashes")
}

// hashOf is b as a hash; one of the wrong length is altered so that it
// compares unequal.
func hashOf(b []byte) tlog.Hash {
	var h tlog.Hash
	copy(h[:], b)
	if len(b) != len(h) {
		h[0] ^= 0xff
	}
	return h
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
	finishRecord(&r, ms, detail)
	return &r, nil
}

// finishRecord sets r's time from ms and its detail from the stored one.
func finishRecord(r *audit.Record, ms int64, detail string) {
	r.Time = time.UnixMilli(ms).UTC()
	if detail != "{}" && detail != "" {
		var err error
		if r.Detail, err = audit.DecodeDetail(detail); err != nil {
			// kept as stored: the leaf hash no longer matches, Verify says so
			r.Detail = map[string]string{"": detail}
		}
	}
}

// packedCols (SQLite) is the text columns of a record as one value, in
// scanRecord's order, separated by NUL characters: reading a record as
// seq, time_ms, duration_ms and this costs four columns through the
// driver instead of seventeen, which were most of the CPU of reading the
// log in order (verify). unpack reads a value holding a NUL of its own,
// or a NULL, again column by column, so the records are the same.
const packedCols = "event_id || char(0) || event_type || char(0) || component || char(0) || serial || char(0) || trace_id || " +
	"char(0) || app_id || char(0) || api || char(0) || actor || char(0) || subject || char(0) || org || char(0) || result || " +
	"char(0) || reason || char(0) || client_ip || char(0) || detail"

// unpack sets r's text fields from a packedCols value; false when it does
// not hold exactly fourteen of them.
func unpack(r *audit.Record, packed string) (detail string, ok bool) {
	fields := [...]*string{&r.EventID, &r.Type, &r.Component, &r.Serial, &r.TraceID, &r.AppID, &r.API, &r.Actor, &r.Subject,
		&r.Org, &r.Result, &r.Reason, &r.ClientIP}
	for _, f := range fields {
		i := strings.IndexByte(packed, 0)
		if i < 0 {
			return "", false
		}
		*f, packed = packed[:i], packed[i+1:]
	}
	if strings.IndexByte(packed, 0) >= 0 {
		return "", false
	}
	return packed, true
}

// sqliteUnpacked (tests, benchmarks) makes ScanRecords read SQLite column
// by column, as on PostgreSQL.
var sqliteUnpacked = false

// scanPacked is ScanRecords on SQLite through packedCols.
func (s *Store) scanPacked(ctx context.Context, from int64, fn func(*audit.Record) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT seq, time_ms, duration_ms, "+packedCols+" FROM audit_records WHERE seq >= ? ORDER BY seq", from)
	if err != nil {
		return classify(err, "scan records")
	}
	defer rows.Close()
	for rows.Next() {
		r := &audit.Record{}
		var ms int64
		var packed sql.NullString
		if err := rows.Scan(&r.Seq, &ms, &r.DurationMS, &packed); err != nil {
			return classify(err, "scan records")
		}
		detail, ok := unpack(r, packed.String)
		if ok && packed.Valid {
			finishRecord(r, ms, detail)
		} else if r, err = s.GetRecord(ctx, r.Seq); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return classify(rows.Err(), "scan records")
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
	if s.db.Dialect == store.SQLite && !sqliteUnpacked {
		return s.scanPacked(ctx, from, fn)
	}
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
