package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// An import's transactions run on a connection of their own with a large
// page cache (BeginImport); a run of batches through it writes every row
// once, and when it ends the connection goes back to the pool with
// SQLite's settings (no connection keeps the import's cache).
func TestImportConnection(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{conns: 2})
	s, db := f.s, f.s.db
	cacheOf := func(c interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int64 {
		t.Helper()
		var n int64
		if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var before, sizeLimit int64
	if err := db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&before); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&sizeLimit); err != nil {
		t.Fatal(err)
	}
	limitOf := func(c interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) int64 {
		t.Helper()
		var n int64
		if err := c.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	f.begin(t)
	ic, end := f.ic, f.end
	if ic == nil {
		t.Fatal("no import connection on SQLite")
	}
	if got := cacheOf(ic.conn); got != -DefaultImportCacheMiB<<10 {
		t.Fatalf("import connection cache_size %d, want %d (DefaultImportCacheMiB)", got, -DefaultImportCacheMiB<<10)
	}
	// Its WAL restarts keep the file (boundWAL).
	if got := limitOf(ic.conn); got != -1 {
		t.Fatalf("import connection journal_size_limit %d, want -1", got)
	}
	// The pool's other connection serves the lookups meanwhile.
	if _, err := s.GetOrgByCode(ctx, "root"); err != nil {
		t.Fatalf("lookup during the import: %v", err)
	}
	for b := range 3 {
		batch := people{org: f.root, prefix: fmt.Sprintf("conn%d", b), display: "连接", row: 4*b + 2}
		importWritten(t, f.ictx, s, "conn-1", batch.items(4), 2)
	}
	end()
	end() // twice is harmless

	found, _, err := s.ListUsers(ctx, identity.UserFilter{Query: "连接conn"}, identity.Page{})
	if err != nil || len(found) != 12 {
		t.Fatalf("search after the import: %d found, %v", len(found), err)
	}
	// Both connections of the pool at once: neither has the import's cache.
	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for i, c := range []interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}{c1, c2} {
		if got := cacheOf(c); got != before {
			t.Fatalf("connection %d after the import: cache_size %d, want %d", i, got, before)
		}
		if got := limitOf(c); got != sizeLimit {
			t.Fatalf("connection %d after the import: journal_size_limit %d, want %d", i, got, sizeLimit)
		}
		var auto int64
		if err := c.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 1000 {
			t.Fatalf("connection %d after the import: wal_autocheckpoint %d (%v), want SQLite's 1000", i, auto, err)
		}
	}
}

// While an import runs, the store's other writes (a login's gate write,
// an audit event) run on the import's connection, each in its turn
// between two of its transactions: the import's page cache stays (no
// other connection commits: SQLite's data_version of the import's
// connection does not change), a write waiting for its turn ends the
// import's transaction early (cut), and once the import ends they go to
// the pool again.
func TestImportConnectionTakesOtherWrites(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{conns: 4, user: "other"}).begin(t)
	s, u, ic, end := f.s, f.user, f.ic, f.end
	if ic == nil || s.imp.Load() != ic {
		t.Fatal("the import's connection does not take the other writes")
	}
	var auto int64
	if err := ic.conn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("import connection wal_autocheckpoint %d (%v), want 0 (the import checkpoints outside its turn)", auto, err)
	}
	version := func() int64 {
		t.Helper()
		var v int64
		if err := ic.conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	gate := func(failed int) error {
		return s.UpdateLoginGate(ctx, u.ID, "src", func(identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{FailedCount: failed}, true
		})
	}
	if err := gate(1); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0 {
		t.Fatalf("a gate write during the import committed on another connection (data_version %d -> %d): the import's cache would be reset", v0, v)
	}

	// A write waiting for its turn: the import ends its transaction
	// after the chunk in flight (cut), and the write runs after it.
	if s.cut() {
		t.Fatal("cut with no write waiting")
	}
	if err := ic.take(ctx, nil); err != nil { // the import's transaction in flight
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gate(2) }()
	deadline := time.Now().Add(10 * time.Second)
	for !s.cut() {
		if time.Now().After(deadline) {
			t.Fatal("a write waiting for the import's connection does not end the import's transaction early")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the write ran during the import's transaction: %v", err)
	default:
	}
	ic.done()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.cut() {
		t.Fatal("cut after the waiting write ran")
	}
	// A write whose caller gave up while waiting leaves.
	if err := ic.take(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err := s.AppendEvents(cctx, otherEvent("ev-gave-up"))
	cancel()
	ic.done()
	if err == nil {
		t.Fatal("a write whose context ended while waiting for its turn succeeded")
	}
	if got, err := s.GetUser(ctx, u.ID); err != nil || got.FailedCount != 2 {
		t.Fatalf("after the writes: failed count %v (%v), want 2", got, err)
	}

	end()
	if s.imp.Load() != nil {
		t.Fatal("the import ended but still takes the other writes")
	}
	if err := gate(0); err != nil {
		t.Fatalf("a write after the import: %v", err)
	}
}

// TestImportCacheOption: WithImportCache (identity.import_cache_mib) sets
// the import connection's page cache; a size of 0 keeps the default.
func TestImportCacheOption(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		mib  int
		want int64 // PRAGMA cache_size: negative KiB
	}{
		{64, -64 << 10},
		{0, -DefaultImportCacheMiB << 10},
	} {
		f := importStore(t, importStoreOpts{conns: 2, opts: []Option{WithImportCache(tc.mib)}})
		f.begin(t)
		var got int64
		if err := f.ic.conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("WithImportCache(%d): the import connection's cache_size %d, want %d", tc.mib, got, tc.want)
		}
		f.end()
	}
}
