package sqlstore

import (
	"context"
	"testing"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// importSearchBatch imports n people named "<tag>NN" in one batch.
func importSearchBatch(t *testing.T, ctx context.Context, s *Store, org *identity.Org, tag string, n int) {
	t.Helper()
	importWritten(t, ctx, s, "search-1", people{org: org, prefix: tag, num: "%02d", display: "导入", email: true}.items(n), 0)
}

// searchLogins searches q (not the start of a login name: the trigram
// index's matches, not the login name index's) and counts the people
// found by login name.
func searchLogins(t *testing.T, s *Store, q string) map[string]int {
	t.Helper()
	found, _, err := s.ListUsers(context.Background(), identity.UserFilter{Query: q}, identity.Page{Size: 500})
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	out := map[string]int{}
	for _, u := range found {
		out[u.LoginName]++
	}
	return out
}

func pendingSearchRows(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT count(*) FROM users_search_pending").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// An import on its own connection writes its people's FTS5 rows a few
// thousand at a time (importSearchRows), not at every transaction: when
// it ends every person it wrote is found by a search, once, under their
// current name (a rename meanwhile rewrites the row at once; a delete
// drops it).
func TestImportSearchRowsLater(t *testing.T) {
	defer func(n int) { importSearchRows = n }(importSearchRows)
	importSearchRows = 25
	ctx := context.Background()
	f := importStore(t, importStoreOpts{conns: 2}).begin(t)
	s, db, root, ictx, end := f.s, f.s.db, f.root, f.ictx, f.end
	importSearchBatch(t, ictx, s, root, "early", 10)
	importSearchBatch(t, ictx, s, root, "later", 10)
	if got := pendingSearchRows(t, db); got != 20 {
		t.Fatalf("%d people listed for later, want 20 (fewer than importSearchRows)", got)
	}
	// A rename of a listed person: its row now, under the new name.
	u, err := s.GetUser(ctx, "u-later03")
	if err != nil {
		t.Fatal(err)
	}
	u.DisplayName = "改名renamed"
	if err := s.UpdateUser(ctx, u, nil); err != nil {
		t.Fatal(err)
	}
	if got := searchLogins(t, s, "改名ren"); got["later03"] != 1 || len(got) != 1 {
		t.Fatalf("renamed person found %v, want later03 once", got)
	}
	// A delete of a listed person (the trigger's path).
	if _, err := db.ExecContext(ctx, "DELETE FROM users WHERE id = ?", "u-later04"); err != nil {
		t.Fatal(err)
	}
	if got := pendingSearchRows(t, db); got != 18 {
		t.Fatalf("%d people listed after a rename and a delete, want 18", got)
	}
	// The batch that reaches importSearchRows writes the listed ones too.
	importSearchBatch(t, ictx, s, root, "third", 10)
	if got := pendingSearchRows(t, db); got != 0 {
		t.Fatalf("%d people listed after %d, want 0", got, importSearchRows)
	}
	importSearchBatch(t, ictx, s, root, "last", 5)
	if got := pendingSearchRows(t, db); got != 5 {
		t.Fatalf("%d people listed, want 5", got)
	}
	end()
	if got := pendingSearchRows(t, db); got != 0 {
		t.Fatalf("%d people listed after the import's end, want 0", got)
	}
	for tag, want := range map[string]int{"early": 10, "later": 8, "third": 10, "last": 5} {
		got := searchLogins(t, s, "入"+tag)
		if len(got) != want {
			t.Fatalf("search %q after the import: %d people %v, want %d", tag, len(got), got, want)
		}
		for login, n := range got {
			if n != 1 {
				t.Fatalf("search %q: %s found %d times", tag, login, n)
			}
		}
	}
	if got := searchLogins(t, s, "导入later03"); len(got) != 0 {
		t.Fatalf("old name of the renamed person still found: %v", got)
	}
	if got := searchLogins(t, s, "renamed"); got["later03"] != 1 {
		t.Fatalf("renamed person after the import: %v", got)
	}
}

// Without an import connection (a pool of one), the FTS5 rows are written
// with the people, in the same transaction, as before.
func TestImportSearchRowsAtOnceWithoutImportConnection(t *testing.T) {
	f := importStore(t, importStoreOpts{conns: 1}).begin(t)
	s, db, root, ictx := f.s, f.s.db, f.root, f.ictx
	importSearchBatch(t, ictx, s, root, "once", 7)
	if got := pendingSearchRows(t, db); got != 0 {
		t.Fatalf("%d people listed for later without an import connection", got)
	}
	if got := searchLogins(t, s, "入once"); len(got) != 7 {
		t.Fatalf("found %v, want 7 people", got)
	}
}

// The people an import listed and did not write because it never ended
// (a crash) are written when the store starts (Migrate).
func TestImportSearchRowsAfterCrash(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{conns: 2}).begin(t)
	s, db, root, ictx, end := f.s, f.s.db, f.root, f.ictx, f.end
	importSearchBatch(t, ictx, s, root, "crash", 6)
	if got := pendingSearchRows(t, db); got != 6 {
		t.Fatalf("%d people listed for later, want 6", got)
	}
	if got := searchLogins(t, s, "入crash"); len(got) != 0 {
		t.Fatalf("found %v before the import's end (its rows are listed for later)", got)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if got := searchLogins(t, s, "入crash"); len(got) != 6 {
		t.Fatalf("found %v after a restart, want 6 people", got)
	}
	end()
	if got := searchLogins(t, s, "入crash"); len(got) != 6 {
		t.Fatalf("found %v after the import's end, want 6 people once each", got)
	}
}
