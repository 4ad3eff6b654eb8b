package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/uias/uias/pkg/apierr"
)

// Querier is what *sql.DB, *sql.Tx, *DB and *StmtCache have in common: a
// read or write helper taking one works inside and outside transactions.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Scanner is a row to scan: *sql.Row or *sql.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// ---- values ----

// UnixMS encodes a time as milliseconds since the epoch, the zero time as 0
// (columns of type BIGINT / INTEGER, the same on every dialect).
func UnixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromUnixMS decodes UnixMS: 0 is the zero time, others are UTC.
func FromUnixMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// NullIfEmpty stores "" as NULL (optional references and optional unique
// columns).
func NullIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// LikePattern is a case-insensitive substring pattern for
// "LOWER(col) LIKE ? ESCAPE '\'": q lower-cased, its %, _ and \ escaped.
func LikePattern(q string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(q)) + "%"
}

// Placeholders returns n '?' placeholders separated by commas, for
// "col IN (" + Placeholders(len(args)) + ")"; n must be at least 1.
func Placeholders(n int) string {
	return "?" + strings.Repeat(", ?", n-1)
}

// ---- statements ----

// ForUpdate is the row-locking suffix of a SELECT that is about to be
// updated: " FOR UPDATE" on PostgreSQL, "" on SQLite (whose transactions
// take the write lock up front).
func (d *DB) ForUpdate() string {
	if d.Dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// ForShare is the suffix of a SELECT whose rows must not change or vanish
// before the transaction ends (e.g. a referenced row): " FOR SHARE" on
// PostgreSQL, "" on SQLite.
func (d *DB) ForShare() string {
	if d.Dialect == Postgres {
		return " FOR SHARE"
	}
	return ""
}

// Exists runs query ('?' placeholders, rebound for the dialect) on q and
// reports whether it returned a row.
func (d *DB) Exists(ctx context.Context, q Querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, d.Rebind(query), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Where accumulates the conditions of a WHERE clause ('?' placeholders).
type Where struct {
	conds []string
	args  []any
}

// Add adds a condition and its arguments.
func (w *Where) Add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// Contains adds a case-insensitive substring match of q over any of cols;
// an empty q adds nothing.
func (w *Where) Contains(q string, cols ...string) {
	if q == "" {
		return
	}
	p := LikePattern(q)
	ors := make([]string, len(cols))
	args := make([]any, len(cols))
	for i, c := range cols {
		ors[i] = "LOWER(" + c + `) LIKE ? ESCAPE '\'`
		args[i] = p
	}
	w.Add("("+strings.Join(ors, " OR ")+")", args...)
}

// SQL is " WHERE c1 AND c2 ..." or "" without conditions.
func (w *Where) SQL() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Args are the arguments of the conditions, in order.
func (w *Where) Args() []any { return w.args }

// ---- keyset pages ----

// ReasonBadPageToken is the error reason of ErrBadPageToken.
const ReasonBadPageToken = "INVALID_PAGE_TOKEN"

// ErrBadPageToken is returned for a page token that PageToken did not make
// (a domain error: the caller's fault, answered as it is).
var ErrBadPageToken = apierr.New(apierr.InvalidArgument, ReasonBadPageToken, "invalid page token")

// PageToken is the opaque token of the page that follows the row whose key
// is lastKey: the key and a check of it, so that a token no page issued (a
// corrupted or made-up one) is refused rather than read as a key that
// happens to decode (and answered with an empty or wrong page; trial7 L3).
// The check detects mistakes, not forgery: a token only says where a page
// starts, which any caller may choose.
func PageToken(lastKey string) string {
	sum := pageCheck(lastKey)
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey)) + "." + base64.RawURLEncoding.EncodeToString(sum[:])
}

// pageCheck is the check of a page token's key.
func pageCheck(key string) [4]byte {
	h := fnv.New32a()
	_, _ = h.Write([]byte("uias-page\x00"))
	_, _ = h.Write([]byte(key))
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], h.Sum32())
	return out
}

// PageAfter decodes a PageToken into the key after which the page starts;
// "" for the first page (empty token).
func PageAfter(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	k, c, ok := strings.Cut(token, ".")
	if !ok {
		return "", ErrBadPageToken
	}
	b, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil || len(b) == 0 {
		return "", ErrBadPageToken
	}
	sum := pageCheck(string(b))
	if c != base64.RawURLEncoding.EncodeToString(sum[:]) {
		return "", ErrBadPageToken
	}
	return string(b), nil
}

// QueryPage reads one page ordered by keyCol: base ("SELECT cols FROM t")
// with w's conditions, keyCol greater than the key the token names (see
// PageAfter), at most size rows. scan reads one row and returns its key.
// next is the token of the following page, "" on the last one. Errors
// are ErrBadPageToken or the driver's, unmapped.
func QueryPage[T any](ctx context.Context, db *DB, base string, w *Where, keyCol string, size int, token string,
	scan func(Scanner) (T, string, error)) (items []T, next string, err error) {
	after, err := PageAfter(token)
	if err != nil {
		return nil, "", err
	}
	if after != "" {
		w.Add(keyCol+" > ?", after)
	}
	query := base + w.SQL() + " ORDER BY " + keyCol + " LIMIT ?"
	rows, err := db.QueryContext(ctx, db.Rebind(query), append(w.Args(), size+1)...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		v, key, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		items = append(items, v)
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(items) > size {
		items = items[:size]
		next = PageToken(keys[size-1])
	}
	return items, next, nil
}

// ---- prepared statements ----

// StmtCache is a Querier on a pool whose single-row reads
// (QueryRowContext) use prepared statements kept per query string, so hot
// lookups are parsed once per pooled connection instead of on every call
// (with SQLite, parsing a wide SELECT can cost more than running it). Pass
// it only fixed query strings, so it stays small; the statements are
// closed with the pool, or by Close. A query that cannot be prepared runs
// unprepared, and is not prepared again for a while (1 s after its first
// failure, doubling up to a minute). Safe for concurrent use.
type StmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
	// preparing: the queries of InTx being prepared (prepareLater).
	preparing map[string]bool
	// failed: the queries whose last prepare failed, and when to try
	// again.
	failed map[string]prepareFailure
	// now is time.Now (tests set a clock of their own).
	now func() time.Time
	// ctx is the background prepares' context, cancelled by Close; bg
	// counts them; closed: Close was called.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
	closed bool
}

// prepareFailure is when a query that could not be prepared may be tried
// again, and the wait after its next failure.
type prepareFailure struct {
	retry time.Time
	wait  time.Duration
}

// The waits before a query that could not be prepared is tried again.
const (
	prepareRetryMin = time.Second
	prepareRetryMax = time.Minute
)

// NewStmtCache returns a statement cache on db.
func NewStmtCache(db *sql.DB) *StmtCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &StmtCache{db: db, now: time.Now, ctx: ctx, cancel: cancel}
}

// Close stops the prepares running in the background (waiting for them to
// end) and closes the statements kept; queries run unprepared from then
// on. The pool stays open.
func (c *StmtCache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.bg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for q, st := range c.m {
		err = errors.Join(err, st.Close())
		delete(c.m, q)
	}
	return err
}

// QueryRowContext runs query as a prepared statement. If it cannot be
// prepared the query runs unprepared (and reports the same error, if any,
// through Scan).
func (c *StmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// QueryContext runs query on the pool (not cached).
func (c *StmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.db.QueryContext(ctx, query, args...)
}

// QueryPrepared is QueryContext with a statement kept like those of
// QueryRowContext (for a fixed multi-row query on a hot path). If it cannot
// be prepared the query runs unprepared.
func (c *StmtCache) QueryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

// ExecContext runs query on the pool (not cached).
func (c *StmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.db.ExecContext(ctx, query, args...)
}

// Len returns the number of statements kept.
func (c *StmtCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// get returns query's statement, prepared now if the cache has none; nil
// when it cannot be prepared, or is not to be tried again yet.
func (c *StmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	wait := c.waitLocked(query)
	c.mu.RUnlock()
	if st != nil || wait {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil { // the query's failure, not the caller's giving up
			f := c.failed[query]
			f.wait = min(max(2*f.wait, prepareRetryMin), prepareRetryMax)
			f.retry = c.now().Add(f.wait)
			if c.failed == nil {
				c.failed = map[string]prepareFailure{}
			}
			c.failed[query] = f
		}
		return nil
	}
	delete(c.failed, query)
	if old := c.m[query]; old != nil || c.closed {
		_ = st.Close()
		return old
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st
}

// waitLocked reports whether query is not to be prepared now: the cache
// is closed, or the query's last prepare failed and its wait has not
// passed. c.mu is held.
func (c *StmtCache) waitLocked(query string) bool {
	if c.closed {
		return true
	}
	f, ok := c.failed[query]
	return ok && c.now().Before(f.retry)
}

// InTx returns a Querier on tx that runs the cache's statements
// (tx.StmtContext: a query's statement is prepared on each pooled
// connection the first time a transaction there runs it, then reused), so
// a transaction that runs the same few statements every time, such as a
// login's gate write, does not parse them again in each transaction. Reads and writes alike use them. A query the
// cache does not hold yet runs unprepared on tx while a goroutine of its
// own prepares it on the pool (prepareLater: the transaction cannot wait
// for that); a query that cannot be prepared runs unprepared on tx and
// reports its error there. tx must belong to the cache's pool (a
// transaction of a *sql.Conn taken from it counts). Pass it only fixed
// query strings. Not safe for concurrent use (like tx).
func (c *StmtCache) InTx(tx *sql.Tx) Querier { return cachedTx{c: c, tx: tx} }

type cachedTx struct {
	c  *StmtCache
	tx *sql.Tx
}

func (t cachedTx) stmt(ctx context.Context, query string) *sql.Stmt {
	t.c.mu.RLock()
	st := t.c.m[query]
	t.c.mu.RUnlock()
	if st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	t.c.prepareLater(query)
	return nil
}

// prepareLater prepares query for the cache in a goroutine of its own
// (one at a time per query, none while the query's last prepare failed
// less than its wait ago, none after Close). A transaction cannot wait for
// it: preparing on the pool takes a connection, and with every other one
// held by a transaction waiting for SQLite's write lock, which this one
// holds, it would wait until their busy timeout ran out.
func (c *StmtCache) prepareLater(query string) {
	c.mu.Lock()
	if c.preparing[query] || c.waitLocked(query) {
		c.mu.Unlock()
		return
	}
	if c.preparing == nil {
		c.preparing = map[string]bool{}
	}
	c.preparing[query] = true
	c.bg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		defer cancel()
		c.get(ctx, query)
		c.mu.Lock()
		delete(c.preparing, query)
		c.mu.Unlock()
	}()
}

func (t cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// TxStmts is a Querier on one transaction whose statements are prepared
// once per query string for the transaction's life: a batch that runs the
// same few statements for each of its items parses each once, not once
// per item (with SQLite, parsing a statement can cost more than running
// it, and an UPDATE or INSERT is compiled with its table's triggers at
// every prepare). Pass it only fixed query strings (a batch's few shapes),
// so it stays small. Like its transaction it is not safe for concurrent
// use; its statements close with the transaction (Close frees them
// sooner).
type TxStmts struct {
	tx *sql.Tx
	m  map[string]*sql.Stmt
}

// NewTxStmts returns a statement cache on tx.
func NewTxStmts(tx *sql.Tx) *TxStmts { return &TxStmts{tx: tx, m: map[string]*sql.Stmt{}} }

// Tx is the transaction.
func (t *TxStmts) Tx() *sql.Tx { return t.tx }

// Stmt returns query's statement, prepared on the transaction the first
// time.
func (t *TxStmts) Stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.m[query]; ok {
		return st, nil
	}
	st, err := t.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	t.m[query] = st
	return st, nil
}

// QueryRowContext runs query as a prepared statement; if it cannot be
// prepared the query runs unprepared (and reports the same error, if any,
// through Scan).
func (t *TxStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.Stmt(ctx, query)
	if err != nil {
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext runs query as a prepared statement.
func (t *TxStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.Stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ExecContext runs query as a prepared statement.
func (t *TxStmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.Stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// Len returns the number of statements kept.
func (t *TxStmts) Len() int { return len(t.m) }

// Close closes the statements (the transaction's end closes them too).
func (t *TxStmts) Close() {
	for q, st := range t.m {
		_ = st.Close()
		delete(t.m, q)
	}
}
