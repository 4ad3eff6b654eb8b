package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
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

// wantFound fails unless a search for q finds want people, each once.
func wantFound(t *testing.T, s *Store, q string, want int) {
	t.Helper()
	got := searchLogins(t, s, q)
	if len(got) != want {
		t.Fatalf("search %q: %d people %v, want %d", q, len(got), got, want)
	}
	for login, n := range got {
		if n != 1 {
			t.Fatalf("search %q: %s found %d times", q, login, n)
		}
	}
}

// caughtUp waits until s's search index holds every change committed.
func caughtUp(t *testing.T, s *Store) {
	t.Helper()
	if !s.index.catchUp(context.Background(), 30*time.Second) {
		t.Fatal("the search index did not catch up in 30 s")
	}
}

// ftsIntegrity runs FTS5's integrity check on the search file.
func ftsIntegrity(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.index.db.ExecContext(context.Background(), "INSERT INTO search.users_fts (users_fts, rank) VALUES ('integrity-check', 0)"); err != nil {
		t.Fatalf("FTS5 integrity check of the search file: %v", err)
	}
}

// A search finds the people of an import, renamed and deleted ones
// included, once each under their current name, both during the import
// (the changes committed before it) and after its end.
func TestSearchFollowsImportRenameAndDelete(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{conns: 2}).begin(t)
	s, db, root, ictx, end := f.s, f.s.db, f.root, f.ictx, f.end
	importSearchBatch(t, ictx, s, root, "early", 10)
	importSearchBatch(t, ictx, s, root, "later", 10)
	wantFound(t, s, "入early", 10)
	// A rename: found under the new name only.
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
	// A delete (the trigger's path), of a person the index may not have
	// written yet.
	importSearchBatch(t, ictx, s, root, "gone", 3)
	if _, err := db.ExecContext(ctx, "DELETE FROM users WHERE id = ?", "u-gone01"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM users WHERE id = ?", "u-later04"); err != nil {
		t.Fatal(err)
	}
	importSearchBatch(t, ictx, s, root, "last", 5)
	end()
	for tag, want := range map[string]int{"early": 10, "later": 8, "gone": 2, "last": 5} {
		wantFound(t, s, "入"+tag, want)
	}
	if got := searchLogins(t, s, "导入later03"); len(got) != 0 {
		t.Fatalf("old name of the renamed person still found: %v", got)
	}
	ftsIntegrity(t, s)
}

// The search file holds only what the indexer derives: deleted, it is
// built again from the people when the store opens next, and so is one
// that belongs to a later state of the database (a restored backup).
func TestSearchFileBuiltAgain(t *testing.T) {
	defer func(n int) { rebuildBatch = n }(rebuildBatch)
	rebuildBatch = 7 // several transactions
	ctx := context.Background()
	dir := t.TempDir()
	path := dir + "/identity.db"
	open := func() (*store.DB, *Store) {
		db, err := store.Open(ctx, "sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		return db, New(db)
	}
	db, s := open()
	root := &identity.Org{ID: "root", Code: "root", Name: "Root", Status: identity.StatusActive}
	if err := s.CreateOrg(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	importWritten(t, ctx, s, "i", people{org: root, prefix: "kept", num: "%02d", display: "重建"}.items(30), 0)
	wantFound(t, s, "建kept", 30)
	if _, err := os.Stat(SearchFile(path)); err != nil {
		t.Fatalf("no search file beside the database: %v", err)
	}
	_ = db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(SearchFile(path) + suffix)
	}
	db, s = open()
	caughtUp(t, s)
	wantFound(t, s, "建kept", 30)
	ftsIntegrity(t, s)
	// A search file ahead of its database (the database restored from a
	// backup taken before the last changes): built again.
	if _, err := s.index.db.ExecContext(ctx, "UPDATE search.users_search_state SET applied = applied + 1000"); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	db, s = open()
	defer db.Close()
	caughtUp(t, s)
	wantFound(t, s, "建kept", 30)
	var applied, end int64
	if err := s.index.db.QueryRowContext(ctx, "SELECT applied FROM search.users_search_state").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if end, _ = queueEnd(ctx, db); applied != end {
		t.Fatalf("search file at %d after it was built again, want the queue's end %d", applied, end)
	}
}

// The search file's writes hold the search file's lock, not the
// database's: while a transaction holds the search file's write lock (as
// FTS5 merging its segments does), people are created and a login's gate
// written, and searches still answer; once it ends, the new people are
// found.
func TestSearchFileWritesLeaveDatabaseWritesAlone(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{user: "alice"})
	s := f.s
	wantFound(t, s, "lic", 1)
	held, err := s.index.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.ExecContext(ctx, "INSERT INTO search.users_fts (rowid, login_name, display_name, email) VALUES (-1, 'x', 'x', 'x')"); err != nil {
		t.Fatal(err)
	}
	// Within the database's busy timeout (5 s) or not at all.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	importWritten(t, wctx, s, "beside", people{org: f.root, prefix: "beside", num: "%02d", display: "旁边"}.items(4), 0)
	failed := func(identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: 1, SourceFailures: 1}, true
	}
	if err := s.UpdateLoginGate(wctx, "u-alice", "192.0.2.1", failed); err != nil {
		t.Fatalf("a login's gate write while the search file is locked: %v", err)
	}
	// Searches read the index as it is meanwhile (the new people are
	// waited for up to the search's deadline).
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, _, err = s.ListUsers(sctx, identity.UserFilter{Query: "lic"}, identity.Page{})
	scancel()
	if err != nil && sctx.Err() == nil {
		t.Fatalf("search while the search file is locked: %v", err)
	}
	if err := held.Rollback(); err != nil {
		t.Fatal(err)
	}
	wantFound(t, s, "边beside", 4)
}

// Two stores on one database run two indexers on one search file: each
// change is applied once.
func TestTwoIndexersApplyOnce(t *testing.T) {
	ctx := context.Background()
	db := storetest.Migrated(t, storetest.OpenSQLite(t), Migrate)
	a, b := New(db), New(db)
	root := &identity.Org{ID: "root", Code: "root", Name: "Root", Status: identity.StatusActive}
	if err := a.CreateOrg(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				tag := string(rune('a'+i)) + string(rune('a'+j))
				items := people{org: root, prefix: "two" + tag, num: "%02d", display: "双"}.items(20)
				if _, err := s.ImportBatch(ctx, "two-"+tag, items, false, 0, noImportEvents); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	caughtUp(t, a)
	caughtUp(t, b)
	wantFound(t, a, "双two", 200)
	wantFound(t, b, "双two", 200)
	var rows int
	if err := a.index.db.QueryRowContext(ctx, "SELECT count(*) FROM search.users_fts_docsize").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 200 {
		t.Fatalf("%d rows in the index, want 200", rows)
	}
	ftsIntegrity(t, a)
}

// The queue keeps what the index has not applied only.
func TestSearchQueuePruned(t *testing.T) {
	f := importStore(t, importStoreOpts{user: "bob"})
	importWritten(t, context.Background(), f.s, "p", people{org: f.root, prefix: "pruned", num: "%02d"}.items(10), 0)
	caughtUp(t, f.s)
	waitQueueEmpty(t, f.s)
}

// A search file older than the queue's deletes (restored from an older
// backup than the database) misses changes the queue no longer holds: the
// indexer sees the gap and builds the file again.
func TestSearchFileBehindPrunedQueueBuiltAgain(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{user: "carol"})
	s := f.s
	importWritten(t, ctx, s, "g", people{org: f.root, prefix: "gap", num: "%02d", display: "缺口"}.items(10), 0)
	caughtUp(t, s)
	waitQueueEmpty(t, s)
	// The file as it was five changes ago.
	if _, err := s.index.db.ExecContext(ctx, "UPDATE search.users_search_state SET applied = applied - 5"); err != nil {
		t.Fatal(err)
	}
	importWritten(t, ctx, s, "g2", people{org: f.root, prefix: "gapafter", num: "%02d", display: "缺口"}.items(2), 0)
	caughtUp(t, s)
	wantFound(t, s, "缺口gap", 12)
	ftsIntegrity(t, s)
}

// A damaged search file is set aside and built again; a search file that
// cannot be opened at all makes substring searches fail at once, not at
// their deadline, while listings without a query (and a login name's
// start) answer.
func TestSearchFileDamagedOrUnopenable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := dir + "/identity.db"
	db, err := store.Open(ctx, "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	s := New(db)
	root := &identity.Org{ID: "root", Code: "root", Name: "Root", Status: identity.StatusActive}
	if err := s.CreateOrg(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	importWritten(t, ctx, s, "d", people{org: root, prefix: "dmg", num: "%02d", display: "损坏"}.items(5), 0)
	_ = db.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(SearchFile(path) + suffix)
	}
	if err := os.WriteFile(SearchFile(path), []byte(strings.Repeat("not a database ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(ctx, "sqlite", path); err != nil {
		t.Fatal(err)
	}
	s = New(db)
	caughtUp(t, s)
	wantFound(t, s, "坏dmg", 5)
	if aside, _ := filepath.Glob(SearchFile(path) + ".damaged-*"); len(aside) != 1 {
		t.Fatalf("damaged file set aside as %v, want one", aside)
	}
	_ = db.Close()

	// A directory where the file should be: it cannot be opened.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(SearchFile(path) + suffix)
	}
	if err := os.Mkdir(SearchFile(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if db, err = store.Open(ctx, "sqlite", path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s = New(db)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, _, err = s.ListUsers(sctx, identity.UserFilter{Query: "坏dmg"}, identity.Page{})
	if err == nil || sctx.Err() != nil {
		t.Fatalf("search without a search file: %v (context: %v), want an error before the deadline", err, sctx.Err())
	}
	if strings.Contains(err.Error(), "SELECT") || strings.Contains(err.Error(), dir) {
		t.Fatalf("the error names SQL or the path: %v", err)
	}
	if found, _, err := s.ListUsers(ctx, identity.UserFilter{}, identity.Page{}); err != nil || len(found) != 5 {
		t.Fatalf("listing without a query: %d people, %v", len(found), err)
	}
}

// waitQueueEmpty waits until the indexer deleted every applied entry.
func waitQueueEmpty(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := s.db.QueryRowContext(context.Background(), "SELECT count(*) FROM users_search_queue").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries left in the queue after the index applied them all", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
