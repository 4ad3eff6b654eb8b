package bench

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// The generated people are what the listings expect: the org tree, the
// subtree paths, the search index (filled by the triggers) and the links;
// generatePeopleBulk (indexes and triggers set aside, then made again)
// leaves the same store with the same schema.
func TestGeneratePeople(t *testing.T) {
	ctx := context.Background()
	gens := map[string]func(db *store.DB, from, to int) error{
		"rows": func(db *store.DB, from, to int) error { return generatePeople(ctx, db, "", from, to) },
		"bulk": func(db *store.DB, from, to int) error { return generatePeopleBulk(ctx, db, "", from, to, io.Discard) },
	}
	for gname, gen := range gens {
		for name, db := range storetest.DBs(t) {
			t.Run(gname+"/"+name, func(t *testing.T) {
				if err := sqlstore.Migrate(ctx, db); err != nil {
					t.Fatal(err)
				}
				schema := schemaOf(t, db)
				if err := gen(db, 0, 3000); err != nil {
					t.Fatal(err)
				}
				checkGenerated(t, db, 3000)
				// Adding more people later leaves the first ones alone.
				if err := gen(db, 3000, 3100); err != nil {
					t.Fatal(err)
				}
				checkGenerated(t, db, 3100)
				if got := schemaOf(t, db); got != schema {
					t.Fatalf("schema after generating:\n%s\nwant:\n%s", got, schema)
				}
				if busy, err := generating(ctx, db); err != nil || busy {
					t.Fatalf("generating after the end: %v %v", busy, err)
				}
			})
		}
	}
}

// schemaOf lists the indexes and triggers of a SQLite store ("" for
// PostgreSQL).
func schemaOf(t *testing.T, db *store.DB) string {
	t.Helper()
	if db.Dialect != store.SQLite {
		return ""
	}
	rows, err := db.QueryContext(context.Background(), "SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master "+
		"WHERE type IN ('index', 'trigger', 'table') AND name NOT LIKE 'sqlite_stat%' ORDER BY type, name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		b.WriteString(s + "\n")
	}
	return b.String()
}

func checkGenerated(t *testing.T, db *store.DB, people int) {
	t.Helper()
	ctx := context.Background()
	s := sqlstore.New(db)
	u, err := s.GetUser(ctx, genUserID(1234))
	if err != nil || u.LoginName != genLogin(1234) || u.DisplayName != genDisplay(1234) || u.OrgID != genL2ID(234) {
		t.Fatalf("person 1234: %+v %v", u, err)
	}
	list, _, err := s.ListUsers(ctx, identity.UserFilter{OrgID: genL1ID(4), Subtree: true}, identity.Page{Size: 500})
	if err != nil || len(list) != people/10 {
		t.Fatalf("subtree of %s: %d people, %v", genL1ID(4), len(list), err)
	}
	for _, n := range []int{2345, people - 1} {
		list, _, err = s.ListUsers(ctx, identity.UserFilter{Query: genLogin(n)[2:]}, identity.Page{})
		if err != nil || len(list) != 1 || list[0].ID != genUserID(n) {
			t.Fatalf("search by login %d: %v %v", n, list, err)
		}
	}
	list, _, err = s.ListUsers(ctx, identity.UserFilter{Query: genDisplay(17)}, identity.Page{Size: 500})
	if err != nil || len(list) == 0 {
		t.Fatalf("search by name %s: %v", genDisplay(17), err)
	}
	for _, u := range list {
		if u.DisplayName != genDisplay(17) {
			t.Fatalf("search by name %s found %s", genDisplay(17), u.DisplayName)
		}
	}
	links, _, err := s.ListLinks(ctx, identity.LinkFilter{UserID: genUserID(99)}, identity.Page{})
	if err != nil || len(links) != 1 || links[0].AppAccountID != genLinkAcct(99) {
		t.Fatalf("links of person 99: %v %v", links, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil || n != people {
		t.Fatalf("people: %d %v", n, err)
	}
}

// TestScaleSmoke runs `uias bench scale` briefly on small stores: the
// harness works end to end and writes its section (figures not checked).
func TestScaleSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a UIAS")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	if err := os.WriteFile(out, []byte("# UIAS benchmarks\n\n## Default build\n\nrows\n"+reproduce+"\nhow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"scale", "--people", "3000", "--floor-people", "1000", "--duration", "200ms", "--warmup", "20ms",
		"--slices", "1", "--auth-concurrency", "2", "--argon2-memory", "8192", "--io=false", "--out", out}
	if code := Main(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(md)
	for _, want := range []string{"## Default build\n", "## Identity at 3 k people\n", "search: Chinese name p99",
		"Authenticate p99 while 2 administrators search", reproduce} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Index(page, "## Identity at") > strings.Index(page, reproduce) {
		t.Fatalf("section after the reproduce part:\n%s", page)
	}
	if strings.Contains(page, "ERROR") {
		t.Fatalf("errors in the run:\n%s", page)
	}
	// A second run replaces its section.
	if code := Main(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, stderr.String())
	}
	md, _ = os.ReadFile(out)
	if n := strings.Count(string(md), "## Identity at 3 k people\n"); n != 1 {
		t.Fatalf("%d sections after two runs", n)
	}
}

// --auth-db: the Authenticate rows' UIAS uses the listing rows' generated
// store (hard-linked) instead of generating the people again; a second
// run on the same store (with the first run's application, people,
// administrator and data keys in it) works too.
func TestScaleAuthReusesStore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a UIAS")
	}
	dir := t.TempDir()
	args := []string{"scale", "--people", "3000", "--floor-people", "1000", "--duration", "200ms", "--warmup", "20ms",
		"--slices", "1", "--auth-concurrency", "2", "--argon2-memory", "8192", "--io=false",
		"--db-dir", dir, "--auth-db", filepath.Join(dir, "people-3000.db")}
	for run := 1; run <= 2; run++ {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "Authenticate p99 while 2 administrators search") || strings.Contains(stdout.String(), "ERROR") {
			t.Fatalf("run %d:\n%s\n%s", run, stdout.String(), stderr.String())
		}
		// The listing rows generate the store on the first run only; the
		// Authenticate rows never.
		if n, want := strings.Count(stderr.String(), "generated people 0-3000 "), 2-run; n != want {
			t.Fatalf("run %d generated the 3000 people %d times, want %d:\n%s", run, n, want, stderr.String())
		}
	}
	// The store still holds the generated people, and one administrator.
	db, err := store.Open(context.Background(), "sqlite", filepath.Join(dir, "people-3000.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var people, admins int
	if err := db.QueryRow("SELECT COUNT(*) FROM users WHERE id GLOB 'u[0-9]*'").Scan(&people); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM users WHERE login_name = 'admin'").Scan(&admins); err != nil {
		t.Fatal(err)
	}
	if people != 3000 || admins != 1 {
		t.Fatalf("%d generated people and %d administrators in the store, want 3000 and 1", people, admins)
	}
}

func TestCarrySections(t *testing.T) {
	earlier := "# UIAS benchmarks\n\n## Default build\n\nold rows\n\n## Identity at 1 M people\n\nold 1M\n\n## Identity at 10 M people (make soak)\n\nsoak rows\n" +
		reproduce + "\nhow\n"
	page := "# UIAS benchmarks\n\n## Default build\n\nnew rows\n" + reproduce + "\nhow\n"
	page = putSection(page, "Identity at 1 M people", "## Identity at 1 M people\n\nnew 1M\n\n")
	got := carrySections(page, earlier, "Identity at 1 M people")
	want := "# UIAS benchmarks\n\n## Default build\n\nnew rows\n\n## Identity at 1 M people\n\nnew 1M\n\n" +
		"## Identity at 10 M people (make soak)\n\nsoak rows\n" + reproduce + "\nhow\n"
	if got != want {
		t.Fatalf("carried page:\n%q\nwant:\n%q", got, want)
	}
}

// TestScaleIO runs the import and export rows on a few people: every row
// is written, exported in both formats, and reported (no timing asserted).
func TestScaleIO(t *testing.T) {
	if testing.Short() {
		t.Skip("imports people")
	}
	var stdout, stderr bytes.Buffer
	code := MainScale(context.Background(), []string{"--people", "1000", "--listings=false", "--auth=false", "--io-people", "1200",
		"--import-logins-duration", "400ms", "--warmup", "20ms", "--argon2-memory", "8192", "--db-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"import 1200 people (rows/s)", "export 1200 people as csv", "export 1200 people as xlsx",
		"logins during an import (logins/s)", "paced logins (50%) during an import, p99", "paced logins (20%) during an import, p99",
		"import while logins continue (rows/s), closed-loop logins", "import while logins continue (rows/s), paced logins (20%)",
		"import running on while paced logins (20%) continue (rows/s)", "import running on while paced logins (50%) continue (rows/s)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no row %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "ERROR") {
		t.Fatalf("a row reports an error:\n%s", out)
	}
}

// cancelOn cancels when a line containing what is written.
type cancelOn struct {
	what   string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.what) {
		c.cancel()
	}
	return len(p), nil
}

// A bulk generation stopped at any step resumes where it stopped and
// leaves the same store.
func TestGeneratePeopleBulkResumes(t *testing.T) {
	defer func(n int) { bulkChunk = n }(bulkChunk)
	bulkChunk = 1000
	for _, step := range []string{"people (", "search keys", "search index", "index users_org_path_idx", "trigger"} {
		t.Run(step, func(t *testing.T) {
			db := storetest.OpenSQLite(t)
			ctx := context.Background()
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			schema := schemaOf(t, db)
			stop, cancel := context.WithCancel(ctx)
			if err := generatePeopleBulk(stop, db, "", 0, 3000, cancelOn{step, cancel}); err == nil {
				t.Fatal("not stopped")
			}
			busy, err := generating(ctx, db)
			if err != nil || !busy {
				t.Fatalf("generating after a stop: %v %v", busy, err)
			}
			var have int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&have); err != nil {
				t.Fatal(err)
			}
			if err := generatePeopleBulk(ctx, db, "", have, 3000, io.Discard); err != nil {
				t.Fatal(err)
			}
			checkGenerated(t, db, 3000)
			if got := schemaOf(t, db); got != schema {
				t.Fatalf("schema after a resumed run:\n%s\nwant:\n%s", got, schema)
			}
		})
	}
}

// TestScaleExportDB runs the export rows on a store generated earlier
// (--export-db) without importing: people as CSV and XLSX, links as CSV.
func TestScaleExportDB(t *testing.T) {
	if testing.Short() {
		t.Skip("generates people")
	}
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "people.db")
	db, err := openIdentityDB(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := generatePeople(ctx, db, "", 0, 1500); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	var stdout, stderr bytes.Buffer
	code := MainScale(ctx, []string{"--people", "1000", "--listings=false", "--auth=false", "--io=false", "--export-db", p,
		"--argon2-memory", "8192", "--db-dir", dir}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"export 1500 people as csv", "export 1500 people as xlsx", "export 1500 account links as csv"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no row %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "ERROR") {
		t.Fatalf("a row reports an error:\n%s", out)
	}
}
