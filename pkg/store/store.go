// Package store opens the relational database used by UIAS components (SQLite for the
// monolithic default, PostgreSQL for scale-out), runs embedded migrations and classifies
// driver errors so callers can map them to domain errors.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Dialect is the SQL dialect of an open database.
type Dialect int

const (
	// SQLite is modernc.org/sqlite (pure Go).
	SQLite Dialect = iota
	// Postgres is PostgreSQL through pgx/v5/stdlib.
	Postgres
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	default:
		return "Dialect(" + strconv.Itoa(int(d)) + ")"
	}
}

// DB is a *sql.DB that knows its dialect.
type DB struct {
	*sql.DB
	Dialect Dialect
	// waiting counts the writes waiting to begin: InTx's (on SQLite: for
	// the database's write lock, see YieldWrites) and those counted with
	// CountWaiting; nil on a DB made by hand.
	waiting *atomic.Int64
	// closing holds what Close runs before the pool closes (OnClose); nil
	// on a DB made by hand.
	closing *closeHooks
	// turn is a SQLite database's write turn (capacity 1): InTx takes it
	// before it begins, so the process's writers queue in arrival order
	// here instead of polling for the database's write lock in SQLite's
	// busy handler (see InTx); nil on PostgreSQL and on a DB made by hand.
	turn chan struct{}
}

// writeTurnWait bounds how long InTx waits for a SQLite database's write
// turn when its context has no earlier deadline.
const writeTurnWait = 15 * time.Second

// ErrWriteTurn is InTx's error when a SQLite database's write turn did not
// come within writeTurnWait: the database is unavailable for writes (a
// transaction holds it too long); IsUnavailable reports it.
var ErrWriteTurn = errors.New("store: the database's writers waited too long for their turn")

// newDB wraps a pool opened here.
func newDB(db *sql.DB, dialect Dialect) *DB {
	d := &DB{DB: db, Dialect: dialect, waiting: new(atomic.Int64), closing: &closeHooks{}}
	if dialect == SQLite {
		d.turn = make(chan struct{}, 1)
	}
	return d
}

// closeHooks are the functions a DB's Close runs first, newest first.
type closeHooks struct {
	mu  sync.Mutex
	fns []func() error
}

// OnClose registers f to run when d is closed, before its pool is: a
// store on d stops its background work there (a statement cache's
// prepares, which take a connection of the pool: database/sql's Close
// does not wait for connections in use, so one still preparing would
// touch the database after its owner closed it). Hooks run newest first;
// their errors are joined into Close's. On a DB made by hand (not Open)
// OnClose does nothing: its owner stops the stores itself.
func (d *DB) OnClose(f func() error) {
	if d == nil || d.closing == nil || f == nil {
		return
	}
	d.closing.mu.Lock()
	defer d.closing.mu.Unlock()
	d.closing.fns = append(d.closing.fns, f)
}

// Close runs the OnClose hooks (each once, newest first), then closes the
// pool (sql.DB.Close). Closing twice closes nothing more.
func (d *DB) Close() error {
	var err error
	if d.closing != nil {
		d.closing.mu.Lock()
		fns := d.closing.fns
		d.closing.fns = nil
		d.closing.mu.Unlock()
		for i := len(fns) - 1; i >= 0; i-- {
			err = errors.Join(err, fns[i]())
		}
	}
	if d.DB == nil {
		return err
	}
	return errors.Join(err, d.DB.Close())
}

// ParseDriver maps a configured driver name to a Dialect. Accepted names: "sqlite",
// "sqlite3" (SQLite) and "postgres", "postgresql", "pgx" (PostgreSQL).
func ParseDriver(driver string) (Dialect, error) {
	switch strings.ToLower(strings.TrimSpace(driver)) {
	case "sqlite", "sqlite3":
		return SQLite, nil
	case "postgres", "postgresql", "pgx":
		return Postgres, nil
	default:
		return 0, fmt.Errorf("store: unknown database driver %q (want sqlite or postgres)", driver)
	}
}

// WithSearchPath is the PostgreSQL DSN dsn (URL or key=value form) whose
// connections use schema: tests and benchmarks keep their tables in a
// throwaway schema of a shared database.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// Open opens and pings a database.
//
// driver is "sqlite" or "postgres" (see ParseDriver). For SQLite, dsn is a file path or a
// "file:" URI; the parent directory of a file path is created, and unless the DSN already
// sets them the connection gets busy_timeout(5000), journal_mode(WAL),
// synchronous(NORMAL) (file databases: in WAL mode a commit is durable when uias crashes,
// but the last commits before an OS crash or power loss may roll back; set
// _pragma=synchronous(FULL) in the DSN to fsync the WAL on every commit), foreign_keys(1),
// journal_size_limit(SQLiteJournalSizeLimit) (file databases: when the WAL restarts from its
// start after a checkpoint, a WAL file larger than that is truncated to it; without it the
// file keeps the size of the largest WAL ever written) and _txlock=immediate (transactions
// take the write lock up front, so concurrent writers wait for busy_timeout instead of
// failing with SQLITE_BUSY on lock upgrade).
// For PostgreSQL, dsn is anything pgx accepts (URL or key=value).
//
// The returned error never contains the DSN (it may hold a password).
func Open(ctx context.Context, driver, dsn string) (*DB, error) {
	dialect, err := ParseDriver(driver)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(dsn) == "" {
		return nil, fmt.Errorf("store: empty DSN for %s database", dialect)
	}
	var db *sql.DB
	switch dialect {
	case SQLite:
		db, err = openSQLite(dsn)
	case Postgres:
		db, err = openPostgres(dsn)
	}
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: cannot connect to %s database: %w", dialect, err)
	}
	return newDB(db, dialect), nil
}

// SQLiteJournalSizeLimit is the journal_size_limit (bytes) Open gives
// SQLite file databases unless their DSN sets one.
const SQLiteJournalSizeLimit = 64 << 20

func openSQLite(dsn string) (*sql.DB, error) {
	path, query, _ := strings.Cut(dsn, "?")
	memory := isSQLiteMemory(path, query)
	if !memory {
		file := strings.TrimPrefix(path, "file:")
		if strings.HasPrefix(path, "file:") {
			if u, err := url.Parse(path); err == nil && u.Path != "" {
				file = u.Path
			} else if u != nil && u.Opaque != "" {
				file = u.Opaque
			}
		}
		if dir := filepath.Dir(file); file != "" && dir != "." {
			if err := mkdirAll(dir); err != nil {
				return nil, err
			}
		}
	}
	full, err := sqliteDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", full)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite database: %w", err)
	}
	if memory {
		// Every connection to ":memory:" is a separate database: keep exactly one.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		// Writers take turns anyway, and readers are CPU-bound: more
		// connections than this only cost memory and opening time (a login
		// storm would otherwise open one per call in flight).
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
	}
	return db, nil
}

// sqliteDSN is dsn with Open's defaults added (see Open).
func sqliteDSN(dsn string) (string, error) {
	path, query, _ := strings.Cut(dsn, "?")
	memory := isSQLiteMemory(path, query)
	params, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("store: invalid sqlite DSN query parameters: %w", err)
	}
	has := func(pragma string) bool {
		for _, p := range params["_pragma"] {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), pragma) {
				return true
			}
		}
		return false
	}
	var add []string
	if !has("busy_timeout") && params.Get("_busy_timeout") == "" && params.Get("_timeout") == "" {
		add = append(add, "_pragma=busy_timeout(5000)")
	}
	if !has("journal_mode") && params.Get("_journal_mode") == "" && params.Get("_journal") == "" && !memory {
		add = append(add, "_pragma=journal_mode(WAL)")
	}
	if !has("synchronous") && !memory {
		add = append(add, "_pragma=synchronous(NORMAL)")
	}
	if !has("journal_size_limit") && !memory {
		add = append(add, fmt.Sprintf("_pragma=journal_size_limit(%d)", SQLiteJournalSizeLimit))
	}
	if !has("foreign_keys") && params.Get("_foreign_keys") == "" && params.Get("_fk") == "" {
		add = append(add, "_pragma=foreign_keys(1)")
	}
	if params.Get("_txlock") == "" {
		add = append(add, "_txlock=immediate")
	}
	full := path
	if q := strings.Join(append(nonEmpty(query), add...), "&"); q != "" {
		full += "?" + q
	}
	return full, nil
}

// mkdirAll creates the directory of a SQLite database file.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("store: create directory for sqlite database: %w", err)
	}
	return nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func isSQLiteMemory(path, query string) bool {
	p := strings.TrimPrefix(path, "file:")
	return p == ":memory:" || p == "" || strings.Contains(query, "mode=memory")
}

func openPostgres(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		// pgx parse errors may echo the DSN; do not wrap them verbatim.
		return nil, errors.New("store: invalid postgres DSN (check the URL or key=value syntax)")
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	return db, nil
}

// Rebind rewrites '?' placeholders to $1, $2, ... for PostgreSQL and returns q unchanged
// for SQLite. Question marks inside quoted strings, quoted identifiers and comments are
// left alone.
func (d *DB) Rebind(q string) string {
	if d.Dialect != Postgres {
		return q
	}
	return RebindPostgres(q)
}

// RebindPostgres rewrites '?' placeholders to $1, $2, ... (see DB.Rebind).
func RebindPostgres(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote escape
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(q))
			b.WriteString(q[i:end])
			i = end - 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+j+1])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				b.WriteString(q[i:])
				return b.String()
			}
			b.WriteString(q[i : i+2+j+2])
			i += j + 3
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// InTx runs fn in a transaction (RunTx on the pool). While it waits to
// begin (on SQLite: for the database's write lock) it counts as a write
// waiting (WritesWaiting).
//
// On SQLite (whose transactions here take the write lock as they begin)
// the process's transactions take turns in the order they asked, waiting
// in Go, not in SQLite's busy handler: that handler sleeps and polls (1,
// 2, 5, ... up to 100 ms), so under load a writer could lose every race
// for the lock to newer ones until its busy_timeout (5 s) ran out and the
// request failed "database is locked" (50 parallel logins to one account
// on a loaded machine did). The wait ends with the context or after
// writeTurnWait (ErrWriteTurn). Writers outside this pool (another
// process, a connection of its own) still meet it in the busy handler.
func (d *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if d.turn == nil {
		return RunTx(ctx, countedBegin{d}, fn)
	}
	if err := d.takeTurn(ctx); err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	defer func() { <-d.turn }()
	return RunTx(ctx, countedBegin{d}, fn)
}

// ExecContext runs a statement on the pool outside a transaction. On
// SQLite it takes the write turn first, like InTx: a statement that writes
// (an outbox's delete, a token's last use) would otherwise wait for the
// write lock in SQLite's busy handler, where the transactions handing the
// lock to each other in turn could keep it from ever getting it. Not
// for use inside InTx's fn (use its tx): it would wait for its own turn.
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if d.turn == nil {
		return d.DB.ExecContext(ctx, query, args...)
	}
	if err := d.takeTurn(ctx); err != nil {
		return nil, fmt.Errorf("store: exec: %w", err)
	}
	defer func() { <-d.turn }()
	return d.DB.ExecContext(ctx, query, args...)
}

// takeTurn waits for d's write turn (see InTx), counted as a write
// waiting while it waits.
func (d *DB) takeTurn(ctx context.Context) error {
	select {
	case d.turn <- struct{}{}:
		return nil
	default:
	}
	d.CountWaiting(1)
	defer d.CountWaiting(-1)
	t := time.NewTimer(writeTurnWait)
	defer t.Stop()
	select {
	case d.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrWriteTurn
	}
}

// Beginner begins transactions: a *sql.DB, a *sql.Conn.
type Beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// RunTx runs fn in a transaction begun on b. The transaction is committed
// when fn returns nil and rolled back when fn returns an error or panics
// (the panic is re-raised).
func RunTx(ctx context.Context, b Beginner, fn func(tx *sql.Tx) error) (err error) {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("store: rollback: %w", rbErr))
		}
		done = true // rolled back already
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit transaction: %w", err)
	}
	return nil
}

// countedBegin begins a transaction on d's pool, counted as a write
// waiting while it waits.
type countedBegin struct{ d *DB }

func (c countedBegin) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	c.d.CountWaiting(1)
	defer c.d.CountWaiting(-1)
	return c.d.BeginTx(ctx, opts)
}

// CountWaiting adds n to the writes waiting to begin (WritesWaiting,
// YieldWrites): InTx counts its own; a store that queues its writes
// elsewhere (the identity store's import connection) counts those it
// queues, +1 when one begins to wait and -1 when it stops.
func (d *DB) CountWaiting(n int64) {
	if d.waiting != nil {
		d.waiting.Add(n)
	}
}

// YieldWrites lets the writes that wait to begin (WritesWaiting) go first:
// it returns once none is waiting, after at most limit, or when ctx ends
// (with ctx's error).
//
// A long run of writes in short transactions (a bulk import) calls it
// before each of them. On SQLite a transaction begins by taking the
// database's write lock, and one that finds it taken sleeps in SQLite's
// busy handler and tries again (after 1, 2, 5, ... up to 100 ms); without
// this the run's next transaction, begun the moment the last one
// committed, would take the lock again before the sleeping ones (a
// login's write) woke up, every time, until their busy_timeout ran out.
// PostgreSQL locks rows, not the database: it returns at once.
func (d *DB) YieldWrites(ctx context.Context, limit time.Duration) error {
	if d.Dialect != SQLite || d.waiting == nil || d.waiting.Load() == 0 {
		return ctx.Err()
	}
	deadline := time.Now().Add(limit)
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	for d.waiting.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			t.Reset(time.Millisecond)
		}
	}
	return ctx.Err()
}

// WritesWaiting is the number of writes waiting to begin (InTx's and
// those counted with CountWaiting).
func (d *DB) WritesWaiting() int {
	if d.waiting == nil {
		return 0
	}
	return int(d.waiting.Load())
}
