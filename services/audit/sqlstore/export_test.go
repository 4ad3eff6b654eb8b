package sqlstore

import (
	"context"
	"database/sql"

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
