package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"

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
