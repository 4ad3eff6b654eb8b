package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"

	"github.com/uias/uias/pkg/store"
)

// indexUsers adds the search rows of the users ids, just inserted in tx,
// on SQLite: their search keys (users_search_keys.n, in the order of ids)
// and their FTS5 trigram rows, in two statements whatever the number of
// users (migration 0044 dropped the AFTER INSERT trigger that did it per
// row). PostgreSQL's pg_trgm index needs nothing.
func (s *Store) indexUsers(ctx context.Context, tx *sql.Tx, ids []string) error {
	return s.indexImported(ctx, tx, ids, false)
}

// importSearchRows is how many people an import on its own connection
// lists in users_search_pending before their FTS5 rows are written
// (flushSearch; tests make it smaller). Each commit that wrote the FTS5
// table flushed FTS5's pending terms into a new segment that automerge
// then merged again, so an import whose transactions the logins cut to
// one chunk (~50 ms, ~170 people at 100 k) paid that per chunk (issue 16,
// a CPU profile beside paced logins: 62 us a person against 4 alone). An
// import alone writes transactions of more than this: their FTS5 rows
// are written with them, as before.
var importSearchRows = 5000

// indexImported is indexUsers; with later (an import on its own
// connection, see importConn) the FTS5 rows of ids are only listed in
// users_search_pending until importSearchRows people are listed, and then
// written with the others listed in the same transaction. Searches do not
// find a listed person until then; the import's end writes the rest
// (BeginImport), and Migrate those of an import that a crash ended.
func (s *Store) indexImported(ctx context.Context, tx *sql.Tx, ids []string, later bool) error {
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
	if later {
		var listed int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users_search_pending").Scan(&listed); err != nil {
			return err
		}
		if listed+len(ids) < importSearchRows {
			_, err = tx.ExecContext(ctx, "INSERT INTO users_search_pending (n) SELECT n FROM users_search_keys WHERE n > ?", last)
			return err
		}
		// The listed ones first: their keys are below these (FTS5
		// flushes its pending terms when a rowid goes down).
		if listed > 0 {
			if err := flushSearch(ctx, tx); err != nil {
				return err
			}
		}
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO users_fts (rowid, login_name, display_name, email) "+
		"SELECT k.n, u.login_name, u.display_name, u.email FROM users_search_keys k JOIN users u ON u.id = k.row_id WHERE k.n > ?", last)
	return err
}

// flushSearch writes the FTS5 rows of the people listed in
// users_search_pending (SQLite), in key order, and empties the list.
func flushSearch(ctx context.Context, q store.Querier) error {
	if _, err := q.ExecContext(ctx, "INSERT INTO users_fts (rowid, login_name, display_name, email) "+
		"SELECT k.n, u.login_name, u.display_name, u.email FROM users_search_pending p "+
		"JOIN users_search_keys k ON k.n = p.n JOIN users u ON u.id = k.row_id ORDER BY p.n"); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, "DELETE FROM users_search_pending")
	return err
}

// flushSearchOnStart writes, on SQLite, the FTS5 rows of the people an
// import listed in users_search_pending and did not write (a crash ended
// it): Migrate runs it. PostgreSQL has nothing to do.
func flushSearchOnStart(ctx context.Context, db *store.DB) error {
	if db.Dialect != store.SQLite {
		return nil
	}
	return db.InTx(ctx, func(tx *sql.Tx) error {
		var listed bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM users_search_pending)").Scan(&listed); err != nil || !listed {
			return err
		}
		return flushSearch(ctx, tx)
	})
}

// reindexUsers rewrites, on SQLite, the FTS5 trigram rows of the users ids
// (whose login name, display name or email changed in tx; duplicates
// allowed), in two statements whatever their number (migration 0046
// dropped the AFTER UPDATE trigger that did it per row). Each statement
// that writes the FTS5 table flushes its pending terms into a new segment
// (at the statement's savepoint), so a batch that renamed people one
// statement at a time wrote and merged a segment per person.
// PostgreSQL's pg_trgm index needs nothing.
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
	// rowid IN (...) is a lookup per id in the FTS5 table (its rowid
	// constraint), not a scan: TestReindexUsersPlan.
	if _, err := q.ExecContext(ctx, reindexUsersDelete, string(list)); err != nil {
		return err
	}
	// A person an import listed for later gets its row now, not twice.
	if _, err := q.ExecContext(ctx, reindexUsersUnlist, string(list)); err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, reindexUsersInsert, string(list))
	return err
}

const (
	reindexUsersDelete = "DELETE FROM users_fts WHERE rowid IN " +
		"(SELECT k.n FROM users_search_keys k WHERE k.row_id IN (SELECT value FROM json_each(?)))"
	reindexUsersUnlist = "DELETE FROM users_search_pending WHERE n IN " +
		"(SELECT k.n FROM users_search_keys k WHERE k.row_id IN (SELECT value FROM json_each(?)))"
	reindexUsersInsert = "INSERT INTO users_fts (rowid, login_name, display_name, email) " +
		"SELECT k.n, u.login_name, u.display_name, u.email FROM users_search_keys k JOIN users u ON u.id = k.row_id " +
		"WHERE k.row_id IN (SELECT value FROM json_each(?))"
)
