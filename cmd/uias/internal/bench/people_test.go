package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// The generated people are what the listings expect: the org tree, the
// subtree paths, the search index (filled by the triggers) and the links.
func TestGeneratePeople(t *testing.T) {
	ctx := context.Background()
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			if err := generatePeople(ctx, db, "", 0, 3000); err != nil {
				t.Fatal(err)
			}
			s := sqlstore.New(db)
			u, err := s.GetUser(ctx, genUserID(1234))
			if err != nil || u.LoginName != genLogin(1234) || u.DisplayName != genDisplay(1234) || u.OrgID != genL2ID(234) {
				t.Fatalf("person 1234: %+v %v", u, err)
			}
			list, _, err := s.ListUsers(ctx, identity.UserFilter{OrgID: genL1ID(4), Subtree: true}, identity.Page{Size: 500})
			if err != nil || len(list) != 300 {
				t.Fatalf("subtree of %s: %d people, %v", genL1ID(4), len(list), err)
			}
			list, _, err = s.ListUsers(ctx, identity.UserFilter{Query: genLogin(2345)[2:]}, identity.Page{})
			if err != nil || len(list) != 1 || list[0].ID != genUserID(2345) {
				t.Fatalf("search by login: %v %v", list, err)
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
			// Adding more people later leaves the first ones alone.
			if err := generatePeople(ctx, db, "", 3000, 3100); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil || n != 3100 {
				t.Fatalf("people: %d %v", n, err)
			}
		})
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
		"--db-dir", t.TempDir()}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"import 1200 people (rows/s)", "export 1200 people as csv", "export 1200 people as xlsx"} {
		if !strings.Contains(out, want) {
			t.Fatalf("no row %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "ERROR") {
		t.Fatalf("a row reports an error:\n%s", out)
	}
}
