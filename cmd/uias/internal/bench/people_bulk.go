package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity/sqlstore"
)

// generatePeopleBulk is generatePeople for large stores (`make soak`: 10 M
// people; SQLite): the secondary indexes of users and account_links and
// their search triggers are set aside (their SQL kept in the table
// bench_setaside), the people inserted in chunks through the primary keys
// and unique constraints alone (every one of them an append: the generated
// keys ascend), then the search keys (and queue entries) are filled for
// the new people in chunks, the search file built from them
// (sqlstore.BuildSearchIndex), and the indexes and triggers created again
// (each index a sort). Each step commits on its own and the store records
// where it is, so an interrupted run resumes (run it again: open() calls it
// while bench_setaside has rows). The store it leaves holds what
// generatePeople's would (TestGeneratePeopleBulk).
func generatePeopleBulk(ctx context.Context, db *store.DB, appID string, from, to int, log io.Writer) error {
	if db.Dialect != store.SQLite {
		return generatePeople(ctx, db, appID, from, to)
	}
	root, err := generateOrgs(ctx, db, appID)
	if err != nil {
		return err
	}
	if appID == "" {
		appID = genApp
	}
	// One connection with a large page cache and no syncs (a bench store:
	// a crash loses the run, not data anyone keeps).
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	for _, p := range []string{"PRAGMA cache_size = -524288", "PRAGMA synchronous = OFF"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return err
		}
	}
	inTx := func(fn func(tx *sql.Tx) error) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	}
	exec := func(tx *sql.Tx, q string, args ...any) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(log, "uias bench scale: "+format+"\n", args...)
	}
	start := time.Now()

	// Set the indexes and triggers aside (once; a resumed run finds them
	// set aside already).
	err = inTx(func(tx *sql.Tx) error {
		if err := exec(tx, "CREATE TABLE IF NOT EXISTS bench_setaside (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, sql TEXT NOT NULL)"); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM bench_setaside").Scan(&n); err != nil || n > 0 {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ('users', 'account_links') "+
			"AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name")
		if err != nil {
			return err
		}
		var set [][3]string
		for rows.Next() {
			var r [3]string
			if err := rows.Scan(&r[0], &r[1], &r[2]); err != nil {
				_ = rows.Close()
				return err
			}
			set = append(set, r)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, r := range set {
			if err := exec(tx, "INSERT INTO bench_setaside (kind, name, sql) VALUES (?, ?, ?)", r[0], r[1], r[2]); err != nil {
				return err
			}
			if err := exec(tx, "DROP "+r[0]+" "+r[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("generate people: set indexes aside: %w", err)
	}

	// The people.
	users, links := peopleSQL(db, root)
	now := time.Now().UnixMilli()
	chunk := bulkChunk
	for lo := from; lo < to; lo += chunk {
		hi := min(lo+chunk, to)
		err := inTx(func(tx *sql.Tx) error {
			if err := exec(tx, users, lo, hi, now, now); err != nil {
				return fmt.Errorf("users: %w", err)
			}
			return exec(tx, links, lo, hi, appID, now)
		})
		if err != nil {
			return fmt.Errorf("generate people %d-%d: %w", lo, hi, err)
		}
		say("%d people (%s)", hi, time.Since(start).Round(time.Second))
	}

	// Search keys for the people who have none (ids ascend: those after
	// the last key), then the FTS rows of the keys not yet indexed.
	for {
		var added int64
		err := inTx(func(tx *sql.Tx) error {
			var last int64
			if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM users_search_keys").Scan(&last); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, "INSERT INTO users_search_keys (row_id) SELECT id FROM users "+
				"WHERE id > COALESCE((SELECT MAX(row_id) FROM users_search_keys), '') ORDER BY id LIMIT ?", chunk)
			if err != nil {
				return err
			}
			if added, err = res.RowsAffected(); err != nil {
				return err
			}
			return sqlstore.ListNewPeople(ctx, tx, last)
		})
		if err != nil {
			return fmt.Errorf("generate people: search keys: %w", err)
		}
		if added == 0 {
			break
		}
		say("search keys +%d (%s)", added, time.Since(start).Round(time.Second))
	}
	// The search file: built from the search keys when it is missing (a
	// new store), else the queue entries applied; a resumed run goes on
	// where the last one stopped.
	err = sqlstore.BuildSearchIndex(ctx, db, func(done, total int64) {
		say("search index %d of %d (%s)", done, total, time.Since(start).Round(time.Second))
	})
	if err != nil {
		return fmt.Errorf("generate people: search index: %w", err)
	}

	// The indexes, then the triggers, again.
	for {
		var kind, name, q string
		var seq int
		err := conn.QueryRowContext(ctx, "SELECT seq, kind, name, sql FROM bench_setaside ORDER BY kind = 'trigger', seq LIMIT 1").Scan(&seq, &kind, &name, &q)
		if errors.Is(err, sql.ErrNoRows) {
			break
		}
		if err != nil {
			return err
		}
		err = inTx(func(tx *sql.Tx) error {
			if err := exec(tx, q); err != nil {
				return err
			}
			return exec(tx, "DELETE FROM bench_setaside WHERE seq = ?", seq)
		})
		if err != nil {
			return fmt.Errorf("generate people: create %s %s: %w", kind, name, err)
		}
		say("%s %s created (%s)", kind, name, time.Since(start).Round(time.Second))
	}
	err = inTx(func(tx *sql.Tx) error {
		return exec(tx, "DROP TABLE bench_setaside")
	})
	if err != nil {
		return err
	}
	// Statistics from a sample of each index (a full ANALYZE reads 10 M
	// rows per index).
	for _, q := range []string{"PRAGMA analysis_limit = 2000", "ANALYZE", "PRAGMA analysis_limit = 0"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	say("generated people %d-%d in %s", from, to, time.Since(start).Round(time.Second))
	return nil
}

// bulkChunk is the most people (or search rows) of one generatePeopleBulk
// transaction.
var bulkChunk = 500_000

// generating reports whether db holds a generatePeopleBulk run that did not
// finish.
func generating(ctx context.Context, db *store.DB) (bool, error) {
	if db.Dialect != store.SQLite {
		return false, nil
	}
	var n int
	err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'bench_setaside'").Scan(&n)
	return n > 0, err
}
