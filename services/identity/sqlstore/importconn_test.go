package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
)

// An import's transactions run on a connection of their own with a large
// page cache (BeginImport); a run of batches through it writes every row
// once, and when it ends the connection goes back to the pool with
// SQLite's settings (no connection keeps the import's cache).
func TestImportConnection(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	s := New(db)
	root := &identity.Org{ID: "root", Code: "root", Name: "Root", Status: identity.StatusActive}
	if err := s.CreateOrg(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
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
	var before int64
	if err := db.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&before); err != nil {
		t.Fatal(err)
	}

	ictx, end, err := s.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ic, _ := ictx.Value(importConnKey{}).(*importConn)
	if ic == nil {
		t.Fatal("no import connection on SQLite")
	}
	if got := cacheOf(ic.conn); got != -importCacheKiB {
		t.Fatalf("import connection cache_size %d, want %d", got, -importCacheKiB)
	}
	// The pool's other connection serves the lookups meanwhile.
	if _, err := s.GetOrgByCode(ctx, "root"); err != nil {
		t.Fatalf("lookup during the import: %v", err)
	}
	now := time.Now()
	for b := range 3 {
		var items []identity.ImportItem
		for i := range 4 {
			login := fmt.Sprintf("conn%d%d", b, i)
			items = append(items, identity.ImportItem{Row: 4*b + i + 2, Key: "user:" + login, At: now, User: &identity.User{
				ID: fmt.Sprintf("u-conn-%d%d", b, i), LoginName: login, DisplayName: "连接" + login, OrgID: root.ID,
				Status: identity.StatusActive, CreatedAt: now, UpdatedAt: now}})
		}
		res, err := s.ImportBatch(ictx, "conn-1", items, false, 2, func([]identity.ImportItem) []events.Event { return nil })
		if err != nil || len(res) != len(items) {
			t.Fatalf("batch %d: %d results, %v", b, len(res), err)
		}
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
	}
}
