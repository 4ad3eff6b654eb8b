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
	_, err = tx.ExecContext(ctx, "INSERT INTO users_fts (rowid, login_name, display_name, email) "+
		"SELECT k.n, u.login_name, u.display_name, u.email FROM users_search_keys k JOIN users u ON u.id = k.row_id WHERE k.n > ?", last)
	return err
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
	_, err = q.ExecContext(ctx, reindexUsersInsert, string(list))
	return err
}

const (
	reindexUsersDelete = "DELETE FROM users_fts WHERE rowid IN " +
		"(SELECT k.n FROM users_search_keys k WHERE k.row_id IN (SELECT value FROM json_each(?)))"
	reindexUsersInsert = "INSERT INTO users_fts (rowid, login_name, display_name, email) " +
		"SELECT k.n, u.login_name, u.display_name, u.email FROM users_search_keys k JOIN users u ON u.id = k.row_id " +
		"WHERE k.row_id IN (SELECT value FROM json_each(?))"
)
