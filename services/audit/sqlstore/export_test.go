package sqlstore

import (
	"context"
	"database/sql"
	"io/fs"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/uias/uias/pkg/store"
)

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
		if v := migrationVersion(p); v < 0 || v >= version {
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

// SetClock sets the clock of s (hasPeers' re-check).
func SetClock(s *Store, now func() time.Time) { s.now = now }

// SetRowsPerInsert sets the rows per INSERT statement on SQLite and
// returns the previous value.
func SetRowsPerInsert(n int) int {
	old := sqliteRowsPerInsert
	sqliteRowsPerInsert = n
	return old
}

// SetUnpacked makes ScanRecords on SQLite read column by column (true)
// or through packedCols (false) and returns the previous setting.
func SetUnpacked(v bool) bool {
	old := sqliteUnpacked
	sqliteUnpacked = v
	return old
}

// SetLeafRuns makes Verify read the log in aggregated runs
// (true, ScanLeaves) or row by row (false) and returns the previous
// setting.
func SetLeafRuns(v bool) bool {
	old := leafRuns
	leafRuns = v
	return old
}

// migrationVersion is the NNNN of "NNNN_name.sql" (-1 for other names).
func migrationVersion(name string) int {
	num, _, _ := strings.Cut(name, "_")
	v, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return v
}

// ScanLeavesOnConn is st.ScanLeaves with probe called on the connection
// about to read the run (SQLite).
func ScanLeavesOnConn(ctx context.Context, st *Store, lo, hi int64, probe func(conn *sql.Conn), fn func(seq int64, typ string, leaf, hashes []byte) error) (bool, error) {
	leafRunProbe = probe
	defer func() { leafRunProbe = nil }()
	return st.ScanLeaves(ctx, lo, hi, fn)
}
