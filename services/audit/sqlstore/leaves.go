package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
)

var _ audit.LeafScanner = (*Store)(nil)

// leafRun (SQLite) hands a run of records and their audit_tree rows,
// column by column as stored, to the aggregate function leafRunFunc (see
// leafAggregate), which builds their leaves in Go. Reading a verify chunk
// of 8,192 records so costs one row through the driver instead of 16,384,
// and nothing per record in SQLite's allocator: no number rendered as
// text, no hashes quoted, no value concatenated (concat_ws and
// group_concat did about one malloc and one free per record and grew a
// multi-MB string; the allocator of modernc's libc is one mutex, which
// the chunk readers queued for).
const leafRun = "SELECT count(*), " + leafRunFunc + "(?, r.seq, r.time_ms, r.duration_ms, r.event_id, r.event_type, " +
	"r.component, r.serial, r.trace_id, r.app_id, r.api, r.actor, r.subject, r.org, r.result, r.reason, r.client_ip, r.detail, " +
	"t.hashes) FROM audit_records r LEFT JOIN audit_tree t ON t.seq = r.seq WHERE r.seq >= ?"

// leafRunPG is leafRun on PostgreSQL, one aggregated value (string_agg):
// per record its columns as text, then its tree row (X'<hex>', or NULL
// when there is none), the values separated by U+FFFF, a noncharacter (a
// run with one of its own in a value is read row by row); the duration is
// its IEEE 754 bits in hexadecimal (float8send), exact whatever
// extra_float_digits says.
const leafRunPG = "SELECT count(*), string_agg(concat_ws(chr(65535), r.seq, r.time_ms, encode(float8send(r.duration_ms), 'hex'), " +
	"r.event_id, r.event_type, r.component, r.serial, r.trace_id, r.app_id, r.api, r.actor, r.subject, r.org, r.result, r.reason, " +
	"r.client_ip, r.detail, coalesce('X''' || encode(t.hashes, 'hex') || '''', 'NULL')), chr(65535) ORDER BY r.seq) " +
	"FROM audit_records r LEFT JOIN audit_tree t ON t.seq = r.seq WHERE r.seq >= $1"

// leafRunFields is the number of values per record in leafRunPG.
const leafRunFields = 18

// ScanLeaves implements audit.LeafScanner on SQLite and PostgreSQL from
// the layout of migration 0004 on (older parts of the log: not handled).
// A run holding a value of another type than its column's (a NULL, a
// number stored as text; on PostgreSQL a value holding the separator) is
// not handled either: Verify reads it row by row, as before.
func (s *Store) ScanLeaves(ctx context.Context, lo, hi int64, fn func(seq int64, typ string, leaf, hashes []byte) error) (bool, error) {
	if !leafRuns || (s.db.Dialect != store.SQLite && s.db.Dialect != store.Postgres) {
		return false, nil
	}
	treeFrom, err := s.layout(ctx, s.db)
	if err != nil {
		return false, err
	}
	if lo < treeFrom {
		return false, nil
	}
	if s.db.Dialect == store.SQLite {
		return s.scanLeafRun(ctx, lo, hi, fn)
	}
	q, args := leafRunPG, []any{lo}
	if hi >= 0 {
		q, args = q+" AND r.seq < $2", append(args, hi)
	}
	var n int
	var run sql.NullString
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n, &run); err != nil {
		return false, classify(err, "scan leaves")
	}
	if n == 0 {
		return true, nil
	}
	return splitLeafRun(run.String, n, fn)
}

// scanLeafRun is ScanLeaves on SQLite: leafRun collects the run into a
// leafAggregate, then fn is called for its records.
func (s *Store) scanLeafRun(ctx context.Context, lo, hi int64, fn func(seq int64, typ string, leaf, hashes []byte) error) (bool, error) {
	run, size := &leafRunState{}, int64(1024)
	if hi >= 0 {
		size = max(0, min(hi-lo, 1<<16))
	}
	run.grow(int(size))
	id := leafRunIDs.Add(1)
	leafRunsActive.Store(id, run)
	defer leafRunsActive.Delete(id)
	q, args := leafRun, []any{id, lo}
	if hi >= 0 {
		q, args = q+" AND r.seq < ?", append(args, hi)
	}
	var n int
	err := withMmap(ctx, s.db, func(conn *sql.Conn) error {
		if leafRunProbe != nil {
			leafRunProbe(conn)
		}
		var ignored any
		return conn.QueryRowContext(ctx, q, args...).Scan(&n, &ignored)
	})
	if err != nil {
		return false, classify(err, "scan leaves")
	}
	if run.declined || n != len(run.seqs) {
		return false, nil
	}
	leaf0, hash0 := 0, 0
	for i, seq := range run.seqs {
		if i > 0 && seq <= run.seqs[i-1] {
			return false, nil // (the aggregate's order is the scan's, that of seq)
		}
		var hashes []byte
		if end := run.hashEnd[i]; end >= 0 {
			hashes = run.hashes[hash0:end:end] // (not nil, even when empty)
			hash0 = end
		}
		if err := fn(seq, run.types[i], run.leaves[leaf0:run.leafEnd[i]], hashes); err != nil {
			return true, err
		}
		leaf0 = run.leafEnd[i]
	}
	return true, nil
}

// leafRunMmap is the mmap_size of a SQLite connection while it reads a
// run (SQLite caps it at 2 GiB; pages beyond are read as usual).
const leafRunMmap = 1 << 31

// withMmap calls fn with a connection of db that reads the database file
// through a memory mapping (PRAGMA mmap_size, SQLite) and gives it back to
// the pool without: a reader's pages then come straight from the mapping,
// without a pread and a copy each and, above all, without SQLite's page
// cache, whose one mutex (modernc builds SQLite with a page cache shared
// by all connections) the chunk readers of Verify queue for. A connection
// whose mmap_size cannot be set back is closed, not reused.
func withMmap(ctx context.Context, db *store.DB, fn func(conn *sql.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "PRAGMA mmap_size = "+strconv.Itoa(leafRunMmap)); err != nil {
		return err
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA mmap_size = 0"); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return fn(conn)
}

// leafRunProbe (tests) is called with the connection about to read a run.
var leafRunProbe func(conn *sql.Conn)

// leafRuns (tests, benchmarks): false makes ScanLeaves decline, so that
// Verify reads the log row by row through ScanRecords.
var leafRuns = true

// splitLeafRun takes a leafRunPG value of n records apart and calls fn for
// each in turn; false (fn's calls void) when it does not hold exactly n
// records of leafRunFields values, in increasing seq, whose numbers read
// back as what the columns hold.
func splitLeafRun(run string, n int, fn func(seq int64, typ string, leaf, hashes []byte) error) (bool, error) {
	const sep = "\uffff"
	if strings.Count(run, sep) != n*leafRunFields-1 {
		return false, nil
	}
	next := func() string {
		i := strings.Index(run, sep)
		if i < 0 {
			v := run
			run = ""
			return v
		}
		v := run[:i]
		run = run[i+len(sep):]
		return v
	}
	var c audit.LeafColumns
	var leaf, hashes []byte
	prev := int64(math.MinInt64)
	for range n {
		var ok1, ok2, ok3 bool
		c.Seq, ok1 = parseInt(next())
		c.TimeMS, ok2 = parseInt(next())
		c.DurationMS, ok3 = parseFloatBits(next())
		if !ok1 || !ok2 || !ok3 || c.Seq <= prev {
			return false, nil // (group_concat's order is the scan's, that of seq)
		}
		prev = c.Seq
		c.EventID, c.Type, c.Component, c.Serial, c.TraceID = next(), next(), next(), next(), next()
		c.AppID, c.API, c.Actor, c.Subject, c.Org = next(), next(), next(), next(), next()
		c.Result, c.Reason, c.ClientIP, c.Detail = next(), next(), next(), next()
		var ok bool
		if leaf, ok = c.AppendLeaf(leaf[:0]); !ok {
			leaf = leaf[:0]
		}
		switch tree := next(); {
		case tree == "NULL":
			hashes = nil
		case strings.HasPrefix(tree, "X'") && strings.HasSuffix(tree, "'"):
			var err error
			if hashes, err = hex.AppendDecode(hashes[:0], []byte(tree[2:len(tree)-1])); err != nil {
				hashes = append(hashes[:0], 0) // not hashes: compares unequal
			}
		default:
			hashes = append(hashes[:0], 0) // stored as another type: compares unequal
		}
		if err := fn(c.Seq, c.Type, leaf, hashes); err != nil {
			return true, err
		}
	}
	return true, nil
}

// parseInt is strconv.ParseInt(s, 10, 64); false when s is not an integer.
func parseInt(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// parseFloatBits reads a float64 from the 16 hexadecimal digits of its
// IEEE 754 bits (PostgreSQL's encode(float8send(x), 'hex')).
func parseFloatBits(s string) (float64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return math.Float64frombits(v), err == nil
}
