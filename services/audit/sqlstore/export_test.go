package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"testing/fstest"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
)

// InsertPlain inserts recs as records first, first+1, ... without tree
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

// MigrateBefore applies the audit migrations older than version only (a
// database as an older release left it).
func MigrateBefore(ctx context.Context, db *store.DB, version int) error {
	dir, err := fs.Sub(migrationFiles, "migrations/"+db.Dialect.String())
	if err != nil {
		return err
	}
	old := fstest.MapFS{}
	err = fs.WalkDir(dir, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		var v int
		if _, err := fmt.Sscanf(p, "%04d_", &v); err != nil || v >= version {
			return nil
		}
		b, err := fs.ReadFile(dir, p)
		old[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		return err
	}
	return store.Migrate(ctx, db, Component, old)
}

// SetRowsPerInsert sets the rows per INSERT statement on SQLite and
// returns the previous value.
func SetRowsPerInsert(n int) int {
	old := sqliteRowsPerInsert
	sqliteRowsPerInsert = n
	return old
}
