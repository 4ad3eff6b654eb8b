package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/store"
	"go.uber.org/zap"
)

// The people's search index on SQLite (issue 16).
//
// The FTS5 trigram index of login names, display names and e-mails lives in
// a file of its own beside the database (SearchFile: "identity.db" has
// "identity-search.db"), attached as schema "search". FTS5 merges its
// segments inside the transactions that write it; in the database itself
// that work held the one write lock every login needs (its gate and its
// outbox events): an import of 1 M people stalled logins for 0.6-2.7 s at
// a time. In a file of its own it holds only that file's lock.
//
// Writes of the people list what changed in users_search_queue, in their
// own transaction (indexUsers, reindexUsers, the delete trigger): one
// small append of the person's searched fields as the write left them. The indexer (a goroutine of the Store) reads the queue in
// batches and writes the FTS5 rows in the search file, together with how
// far it has come (users_search_state.applied): a batch is applied once,
// whatever crashes. A search waits until the index has every change
// committed before it began (await), except while the index is far behind
// (an import, a rebuild): then it waits a little and answers from the index
// as it is.
//
// The search file holds nothing else: when it is missing (a new database,
// an upgrade from a version that kept the index inside the database, a
// restore that left it behind), or belongs to a later state of the
// database than the one beside it (a restored backup), the indexer builds
// it again from the people, in batches, while the service runs.

// searchSchema is the schema name of the attached search file.
const searchSchema = "search"

// searchVersion is the layout of the search file; a file of another
// version is built again.
const searchVersion = 1

// Batch sizes of the indexer: queue entries applied in one transaction of
// the search file, and people written in one transaction of a rebuild.
var (
	searchBatch   = 5000
	rebuildBatch  = 20000
	searchPoll    = 500 * time.Millisecond
	searchRetry   = time.Second
	searchPruneAt = 20000
	// searchImportEvery is how often the index catches up while an
	// import runs (a search waiting for it wakes it at once).
	searchImportEvery = 10 * time.Second
)

// Waits of a search for the index (await): a search waits for the changes
// committed before it began up to searchNearWait when the index is at most
// searchNearLag queue entries behind, and searchFarWait otherwise; then it
// answers from the index as it is.
var (
	searchNearLag  = int64(2000)
	searchFarWait  = 250 * time.Millisecond
	searchNearWait = 2 * time.Second
)

var (
	errSearchClosed      = errors.New("identity store: closed")
	errSearchUnavailable = errors.New("identity search index: the search file cannot be opened")
)

// SearchFile is the search file of the SQLite database file main.
func SearchFile(main string) string {
	ext := filepath.Ext(main)
	return strings.TrimSuffix(main, ext) + "-search" + ext
}

// indexUsers lists the users ids, just inserted in tx, for the search
// index, on SQLite: their search keys (users_search_keys.n, in the order
// of ids) and their queue entries, in two statements whatever the number
// of users. PostgreSQL's pg_trgm index needs nothing.
func (s *Store) indexUsers(ctx context.Context, tx *sql.Tx, ids []string) error {
	if s.db.Dialect != store.SQLite || len(ids) == 0 {
		return nil
	}
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM users_search_keys").Scan(&last); err != nil {
		return err
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO users_search_keys (row_id) SELECT value FROM json_each(?) ORDER BY key", string(list)); err != nil {
		return err
	}
	return ListNewPeople(ctx, tx, last)
}

// ListNewPeople lists the people whose search keys are above after (just
// inserted) in the search queue, with their searched fields, as the store
// does for the people it inserts. Bulk loaders that write people and
// their search keys with SQL of their own (the bench's generators) call it
// in the same transaction (SQLite).
func ListNewPeople(ctx context.Context, q store.Querier, after int64) error {
	_, err := q.ExecContext(ctx, "INSERT INTO users_search_queue (n, fresh, login_name, display_name, email) "+
		"SELECT k.n, 1, u.login_name, u.display_name, u.email FROM users_search_keys k JOIN users u ON u.id = k.row_id WHERE k.n > ? ORDER BY k.n", after)
	return err
}

// reindexUsers lists, on SQLite, the users ids (whose login name, display
// name or email changed in q; duplicates allowed) for the search index to
// write again. PostgreSQL's pg_trgm index needs nothing.
func (s *Store) reindexUsers(ctx context.Context, q store.Querier, ids []string) error {
	if s.db.Dialect != store.SQLite || len(ids) == 0 {
		return nil
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	list, err := json.Marshal(slices.Compact(ids))
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, reindexUsersQueue, string(list))
	return err
}

// The statements that read and write the queue by key (TestSearchQueuePlans:
// no table scanned whole).
const (
	reindexUsersQueue = "INSERT INTO users_search_queue (n, login_name, display_name, email) " +
		"SELECT k.n, u.login_name, u.display_name, u.email FROM users_search_keys k JOIN users u ON u.id = k.row_id " +
		"WHERE k.row_id IN (SELECT value FROM json_each(?))"
	searchQueueRead   = "SELECT seq, n, fresh, login_name, display_name, email FROM users_search_queue WHERE seq > ? ORDER BY seq LIMIT ?"
	searchRebuildRead = "SELECT k.n, u.login_name, u.display_name, u.email FROM users_search_keys k JOIN users u ON u.id = k.row_id " +
		"WHERE k.n > ? AND k.n <= ? ORDER BY k.n"
)

// usersFTS creates the people's FTS5 table in the search file.
const usersFTS = "CREATE VIRTUAL TABLE IF NOT EXISTS search.users_fts USING fts5(login_name, display_name, email, " +
	"content='', contentless_delete=1, tokenize='trigram')"

// searchIndex is a Store's indexer and the pool its searches read through
// (the database with the search file attached).
type searchIndex struct {
	s   *Store
	log *zap.Logger

	kick chan struct{}
	stop context.CancelFunc
	done chan struct{}

	// ready is closed once db is open (searches fail at once while
	// opening fails: lastErr).
	ready chan struct{}
	db    *store.DB
	own   bool // db is a pool of its own (closed with the index)

	closeOnce sync.Once

	mu sync.Mutex
	// applied is the queue position the index has applied; rebuilding
	// tells whether it is being built again; moved is closed (and
	// replaced) whenever either changes.
	applied    int64
	rebuilding bool
	moved      chan struct{}
	lastErr    string
	// waiters counts the searches (and imports' ends) waiting for the
	// index.
	waiters atomic.Int32
}

// startSearchIndex starts s's indexer (SQLite).
func (s *Store) startSearchIndex() {
	ctx, cancel := context.WithCancel(context.Background())
	x := newSearchIndex(s)
	x.stop = cancel
	s.index = x
	go x.run(ctx)
}

// newSearchIndex is s's indexer, not started.
func newSearchIndex(s *Store) *searchIndex {
	return &searchIndex{s: s, log: s.log, kick: make(chan struct{}, 1), done: make(chan struct{}),
		ready: make(chan struct{}), moved: make(chan struct{}), rebuilding: true}
}

// close stops the indexer and closes its pool.
func (x *searchIndex) close() error {
	x.stop()
	<-x.done
	var err error
	x.closeOnce.Do(func() {
		if x.own && x.db != nil {
			err = x.db.Close()
		}
	})
	return err
}

func (x *searchIndex) run(ctx context.Context) {
	defer close(x.done)
	for x.db == nil {
		err := x.open(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		x.report(err)
		if !x.sleep(ctx, searchRetry) {
			return
		}
	}
	close(x.ready)
	pruned := int64(-1)
	var caughtUp time.Time // when the index last held the whole queue
	for {
		if x.s.imp.Load() != nil && x.waiters.Load() == 0 {
			// An import runs: the index catches up every
			// searchImportEvery, or when a search waits for it. Reading
			// the database and pruning the queue beside the import's
			// transactions slowed the import by a fifth.
			if wait := searchImportEvery - time.Since(caughtUp); wait > 0 {
				if !x.sleep(ctx, wait) {
					return
				}
				continue
			}
		}
		worked, err := x.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			x.report(err)
			if !x.sleep(ctx, searchRetry) {
				return
			}
			continue
		}
		x.mu.Lock()
		applied, rebuilding := x.applied, x.rebuilding
		x.lastErr = ""
		x.mu.Unlock()
		if !worked {
			caughtUp = time.Now()
		}
		// One batch of the queue's deletes per turn, none while an import
		// runs or a search waits.
		if !rebuilding && x.s.imp.Load() == nil && x.waiters.Load() == 0 && (applied-pruned >= int64(searchPruneAt) || !worked && applied > pruned) {
			all, err := x.prune(ctx, applied)
			switch {
			case err != nil:
				// Not a failure of the index: searches keep waiting for it.
				x.log.Warn("identity search index: cannot delete applied queue entries; retrying", zap.Error(err))
			case all:
				pruned = applied
			default:
				worked = true
			}
		}
		if worked {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-x.kick:
		case <-time.After(searchPoll):
		}
	}
}

// sleep waits d or a kick; false when ctx ended.
func (x *searchIndex) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-x.kick:
	case <-time.After(d):
	}
	return true
}

// report logs an indexer failure once until it changes or clears.
func (x *searchIndex) report(err error) {
	x.mu.Lock()
	same := x.lastErr == err.Error()
	x.lastErr = err.Error()
	x.mu.Unlock()
	if !same {
		x.log.Error("identity search index: cannot bring the index up to date; retrying (searches may miss the latest changes)", zap.Error(err))
	}
}

// open opens the pool with the search file attached and creates its
// tables.
func (x *searchIndex) open(ctx context.Context) error {
	main, err := x.s.db.MainFile(ctx)
	if err != nil {
		return err
	}
	file := ":memory:"
	if main != "" {
		file = SearchFile(main)
	}
	db, err := x.s.db.Attached(ctx, searchSchema, file)
	if err != nil && main != "" && unusableFile(err) {
		// Not a database or damaged: it holds nothing the database does
		// not, so it is set aside and built again.
		aside := fmt.Sprintf("%s.damaged-%d", file, time.Now().Unix())
		x.log.Error("identity search index: the search file is damaged; setting it aside and building it again",
			zap.String("file", file), zap.String("moved_to", aside), zap.Error(err))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if rerr := os.Rename(file+suffix, aside+suffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return fmt.Errorf("set the damaged search file aside: %w", rerr)
			}
		}
		db, err = x.s.db.Attached(ctx, searchSchema, file)
	}
	if err != nil {
		return err
	}
	for _, q := range []string{
		usersFTS,
		"CREATE TABLE IF NOT EXISTS search.users_search_state (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, " +
			"applied INTEGER NOT NULL, rebuilt_to INTEGER NOT NULL, rebuild_end INTEGER NOT NULL)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			if db != x.s.db {
				_ = db.Close()
			}
			return fmt.Errorf("create the search index: %w", err)
		}
	}
	x.db, x.own = db, db != x.s.db
	return nil
}

// unusableFile reports whether err is SQLite's "not a database" or
// "database disk image is malformed".
func unusableFile(err error) bool {
	var coded interface{ Code() int }
	if !errors.As(err, &coded) {
		return false
	}
	switch coded.Code() & 0xff {
	case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
		return true
	}
	return false
}

// searchState is users_search_state's row.
type searchState struct {
	version                       int
	applied, rebuiltTo, rebuildTo int64
}

func (st searchState) rebuilding() bool { return st.rebuiltTo < st.rebuildTo }

// readState reads the state row (ok false: none).
func readState(ctx context.Context, q store.Querier) (st searchState, ok bool, err error) {
	err = q.QueryRowContext(ctx, "SELECT version, applied, rebuilt_to, rebuild_end FROM search.users_search_state WHERE id = 1").
		Scan(&st.version, &st.applied, &st.rebuiltTo, &st.rebuildTo)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	return st, err == nil, err
}

// queueEnd is the position of the last change listed in the queue (0:
// none yet).
func queueEnd(ctx context.Context, q store.Querier) (int64, error) {
	var end sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT seq FROM sqlite_sequence WHERE name = 'users_search_queue'").Scan(&end)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return end.Int64, err
}

// publish records st as the index's state and wakes the searches waiting.
func (x *searchIndex) publish(st searchState) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.applied == st.applied && x.rebuilding == st.rebuilding() {
		return
	}
	x.applied, x.rebuilding = st.applied, st.rebuilding()
	close(x.moved)
	x.moved = make(chan struct{})
}

// step does one transaction of work: starts a rebuild, writes a batch of
// a rebuild or applies a batch of the queue. worked is false when there
// was nothing to do.
func (x *searchIndex) step(ctx context.Context) (worked bool, err error) {
	st, ok, err := readState(ctx, x.db)
	if err != nil {
		return false, err
	}
	end, err := queueEnd(ctx, x.db)
	if err != nil {
		return false, err
	}
	if !ok || st.version != searchVersion || st.applied > end {
		if ok {
			x.log.Info("identity search index: the search file does not match this database; building it again",
				zap.Int("version", st.version), zap.Int64("applied", st.applied), zap.Int64("queue_end", end))
		}
		return true, x.startRebuild(ctx)
	}
	x.publish(st)
	if st.rebuilding() {
		return true, x.rebuildBatch(ctx, st)
	}
	if st.applied >= end {
		return false, nil
	}
	return true, x.applyBatch(ctx, st)
}

// searchTx runs fn in a transaction of the search file that took its
// write lock first and found the state still at st (another Store's
// indexer on the same database may have moved it: then nothing is done).
func (x *searchIndex) searchTx(ctx context.Context, st *searchState, fn func(tx *sql.Tx) error) (done bool, err error) {
	err = x.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE search.users_search_state SET applied = applied WHERE id = 1"); err != nil {
			return err
		}
		if st != nil {
			now, ok, err := readState(ctx, tx)
			if err != nil || !ok || now != *st {
				return err
			}
		}
		done = true
		return fn(tx)
	})
	return done && err == nil, err
}

// startRebuild empties the index and records what the rebuild covers: the
// people listed up to now (their keys up to the highest) and the queue up
// to now, read in one snapshot.
func (x *searchIndex) startRebuild(ctx context.Context) error {
	var st searchState
	_, err := x.searchTx(ctx, nil, func(tx *sql.Tx) error {
		for _, q := range []string{
			"DROP TABLE IF EXISTS search.users_fts",
			usersFTS,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'users_search_queue'), 0), "+
			"COALESCE((SELECT MAX(n) FROM users_search_keys), 0)").Scan(&st.applied, &st.rebuildTo); err != nil {
			return err
		}
		st.version = searchVersion
		_, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO search.users_search_state (id, version, applied, rebuilt_to, rebuild_end) VALUES (1, ?, ?, 0, ?)",
			st.version, st.applied, st.rebuildTo)
		return err
	})
	if err != nil {
		return fmt.Errorf("start building the search index: %w", err)
	}
	x.log.Info("identity search index: building the index of every person (searches answer from what is built so far until it is done)",
		zap.Int64("up_to_key", st.rebuildTo))
	x.publish(st)
	return nil
}

// ftsRow is one person's FTS5 row.
type ftsRow struct {
	n                     int64
	login, display, email string
}

// writeRows writes rows (in key order) into the index, deleting dels
// first.
func writeRows(ctx context.Context, tx *sql.Tx, dels []int64, rows []ftsRow) error {
	if len(dels) > 0 {
		list, err := json.Marshal(dels)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM search.users_fts WHERE rowid IN (SELECT value FROM json_each(?))", string(list)); err != nil {
			return err
		}
	}
	if len(rows) == 0 {
		return nil
	}
	vals := make([][4]any, len(rows))
	for i, r := range rows {
		vals[i] = [4]any{r.n, r.login, r.display, r.email}
	}
	list, err := json.Marshal(vals)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO search.users_fts (rowid, login_name, display_name, email) "+
		"SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?) ORDER BY key", string(list))
	return err
}

// rebuildBatch writes the next rebuildBatch keys of a rebuild. The people
// are read before the search file's transaction, which then holds no
// snapshot of the database.
func (x *searchIndex) rebuildBatch(ctx context.Context, st searchState) error {
	hi := min(st.rebuiltTo+int64(rebuildBatch), st.rebuildTo)
	rows, err := x.readRows(ctx, searchRebuildRead, st.rebuiltTo, hi)
	if err != nil {
		return fmt.Errorf("build the search index: %w", err)
	}
	next := st
	next.rebuiltTo = hi
	done, err := x.searchTx(ctx, &st, func(tx *sql.Tx) error {
		if err := writeRows(ctx, tx, nil, rows); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE search.users_search_state SET rebuilt_to = ? WHERE id = 1", hi)
		return err
	})
	if err != nil {
		return fmt.Errorf("build the search index: %w", err)
	}
	if done && !next.rebuilding() {
		x.log.Info("identity search index: built", zap.Int64("up_to_key", hi))
	}
	return nil
}

func (x *searchIndex) readRows(ctx context.Context, query string, args ...any) ([]ftsRow, error) {
	rs, err := x.s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []ftsRow
	for rs.Next() {
		var r ftsRow
		if err := rs.Scan(&r.n, &r.login, &r.display, &r.email); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rs.Err()
}

// applyBatch applies the next searchBatch changes of the queue: every
// person listed is deleted from the index (unless listed as new only) and
// written again as their last entry has them (unless deleted), in one
// statement each. It reads the queue alone: an append-ordered range.
func (x *searchIndex) applyBatch(ctx context.Context, st searchState) error {
	rs, err := x.s.db.QueryContext(ctx, searchQueueRead, st.applied, searchBatch)
	if err != nil {
		return fmt.Errorf("read the search queue: %w", err)
	}
	var (
		last  int64
		first = int64(-1)
		dels  []int64
		now   = map[int64]ftsRow{}
	)
	for rs.Next() {
		var (
			n, fresh              int64
			login, display, email sql.NullString
		)
		if err := rs.Scan(&last, &n, &fresh, &login, &display, &email); err != nil {
			rs.Close()
			return fmt.Errorf("read the search queue: %w", err)
		}
		if first < 0 {
			first = last
		}
		if fresh == 0 {
			dels = append(dels, n)
		}
		if login.Valid {
			now[n] = ftsRow{n: n, login: login.String, display: display.String, email: email.String}
		} else {
			delete(now, n)
		}
	}
	if err := rs.Err(); err != nil {
		rs.Close()
		return fmt.Errorf("read the search queue: %w", err)
	}
	rs.Close()
	if first != st.applied+1 {
		// The queue's positions have no gaps (a rolled-back append rolls
		// its position back too) but for the deletes of applied entries:
		// the entries after the index's position are gone (the search
		// file restored older than the database): built again.
		x.log.Warn("identity search index: changes the search file has not applied are no longer in the queue (the file is older than the database); building it again",
			zap.Int64("applied", st.applied), zap.Int64("queue_from", first))
		return x.startRebuild(ctx)
	}
	slices.Sort(dels)
	dels = slices.Compact(dels)
	rows := make([]ftsRow, 0, len(now))
	for _, r := range now {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b ftsRow) int { return cmp.Compare(a.n, b.n) })
	_, err = x.searchTx(ctx, &st, func(tx *sql.Tx) error {
		if err := writeRows(ctx, tx, dels, rows); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE search.users_search_state SET applied = ? WHERE id = 1", last)
		return err
	})
	if err != nil {
		return fmt.Errorf("apply the search queue: %w", err)
	}
	return nil
}

// prune deletes a batch (searchPruneAt) of the queue entries the index
// has applied, in a write turn of the database; all reports whether none
// is left.
func (x *searchIndex) prune(ctx context.Context, applied int64) (all bool, err error) {
	var gone int64
	err = x.s.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM users_search_queue WHERE seq IN "+
			"(SELECT seq FROM users_search_queue WHERE seq <= ? ORDER BY seq LIMIT ?)", applied, searchPruneAt)
		if err != nil {
			return err
		}
		gone, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("prune the search queue: %w", err)
	}
	return gone < int64(searchPruneAt), nil
}

// await returns the pool a search reads through once the index holds the
// changes committed before the call, or searchFarWait after the call when
// the index is far behind (more than searchNearLag changes, a rebuild).
func (x *searchIndex) await(ctx context.Context) (*store.DB, error) {
	if _, err := x.waitIndexed(ctx, true); err != nil {
		return nil, err
	}
	return x.db, nil
}

// catchUp waits (at most wait) until the index holds the changes
// committed before the call; false when it did not get there.
func (x *searchIndex) catchUp(ctx context.Context, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ok, err := x.waitIndexed(ctx, false)
	return ok && err == nil
}

// waitIndexed waits until the index holds the changes committed before
// the call (ok), or, with near, until searchFarWait passed while the index
// was far behind.
func (x *searchIndex) waitIndexed(ctx context.Context, near bool) (ok bool, err error) {
	x.waiters.Add(1)
	defer x.waiters.Add(-1)
	for opened := false; !opened; {
		select {
		case <-x.ready:
			opened = true
		case <-x.done:
			return false, errSearchClosed
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
			x.mu.Lock()
			failing := x.lastErr != ""
			x.mu.Unlock()
			if failing {
				// The file cannot be opened (the indexer logged why).
				return false, errSearchUnavailable
			}
		}
	}
	end, err := queueEnd(ctx, x.s.db)
	if err != nil {
		return false, err
	}
	var far <-chan time.Time
	if near {
		far = time.After(searchNearWait)
	}
	for {
		x.mu.Lock()
		applied, rebuilding, moved, failing := x.applied, x.rebuilding, x.moved, x.lastErr != ""
		x.mu.Unlock()
		if !rebuilding && applied >= end {
			return true, nil
		}
		if failing {
			// The indexer logged why; the index answers as it is.
			return false, nil
		}
		if near && (rebuilding || end-applied > searchNearLag) {
			far = time.After(searchFarWait)
			near = false
		}
		select {
		case x.kick <- struct{}{}:
		default:
		}
		select {
		case <-moved:
		case <-far:
			return false, nil
		case <-x.done:
			return false, errSearchClosed
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// BuildSearchIndex brings the search file of db (SQLite; PostgreSQL has
// nothing to do) up to date and returns once it is: built from the people
// when it is missing, else the changes listed in the queue applied. A bulk
// load that wrote the people and their search keys and queue entries with
// SQL of its own (the bench's generators) calls it after, so that a store
// opened next finds its index ready. progress, when set, is called after
// each transaction with the keys built so far and the keys to build (of
// the last build: equal once it is done).
func BuildSearchIndex(ctx context.Context, db *store.DB, progress func(done, total int64)) error {
	if db.Dialect != store.SQLite {
		return nil
	}
	x := newSearchIndex(&Store{db: db, log: zap.NewNop()})
	if err := x.open(ctx); err != nil {
		return err
	}
	defer func() {
		if x.own {
			_ = x.db.Close()
		}
	}()
	for {
		worked, err := x.step(ctx)
		if err != nil {
			return err
		}
		if !worked {
			// The queue entries applied go (a store opened next would
			// delete them in its write turns).
			st, _, err := readState(ctx, x.db)
			if err != nil {
				return err
			}
			for {
				all, err := x.prune(ctx, st.applied)
				if err != nil || all {
					return err
				}
			}
		}
		if progress != nil {
			st, _, err := readState(ctx, x.db)
			if err != nil {
				return err
			}
			progress(st.rebuiltTo, st.rebuildTo)
		}
	}
}
