package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
)

// planCase is one listing query whose plan is checked.
type planCase struct {
	name string
	// unfiltered: the listing has no filter, so walking the primary key
	// in order (and stopping after a page) is the right plan.
	unfiltered bool
	// search: a substring search; on PostgreSQL the matches come from a
	// GIN index (a bitmap, unordered) and are sorted; the sort is of the
	// matches only.
	search bool
	// sqliteOnly: a query SQLite alone runs (a login-first search).
	sqliteOnly bool
	build      func(ctx context.Context, s *Store) (*listing, error)
}

func planCases(orgID string) []planCase {
	u := func(name string, f identity.UserFilter) planCase {
		return planCase{name: "users/" + name, unfiltered: reflect.DeepEqual(f, identity.UserFilter{}),
			search: len([]rune(f.Query)) >= MinSearchLen,
			build:  func(ctx context.Context, s *Store) (*listing, error) { return s.userListing(ctx, f) }}
	}
	o := func(name string, f identity.OrgFilter) planCase {
		return planCase{name: "orgs/" + name, unfiltered: reflect.DeepEqual(f, identity.OrgFilter{}),
			search: len([]rune(f.Query)) >= MinSearchLen,
			build:  func(ctx context.Context, s *Store) (*listing, error) { return s.orgListing(ctx, f) }}
	}
	g := func(name string, f identity.GroupFilter) planCase {
		return planCase{name: "groups/" + name, unfiltered: reflect.DeepEqual(f, identity.GroupFilter{}),
			search: len([]rune(f.Query)) >= MinSearchLen,
			build:  func(ctx context.Context, s *Store) (*listing, error) { return s.groupListing(ctx, f) }}
	}
	a := func(name string, f identity.AppFilter) planCase {
		return planCase{name: "apps/" + name, unfiltered: f == (identity.AppFilter{}),
			search: len([]rune(f.Query)) >= MinSearchLen,
			build:  func(ctx context.Context, s *Store) (*listing, error) { return s.appListing(ctx, f) }}
	}
	l := func(name string, f identity.LinkFilter) planCase {
		return planCase{name: "links/" + name, unfiltered: reflect.DeepEqual(f, identity.LinkFilter{}),
			build: func(ctx context.Context, s *Store) (*listing, error) { return s.linkListing(ctx, f) }}
	}
	// The two phases of a login-first search (loginfirst.go).
	lf := func(name string, f identity.UserFilter) planCase {
		return planCase{name: "users/login-first/" + name, sqliteOnly: true,
			build: func(ctx context.Context, s *Store) (*listing, error) { return s.userLoginListing(ctx, f) }}
	}
	rest := func(name string, f identity.UserFilter) planCase {
		return planCase{name: "users/login-first-rest/" + name, sqliteOnly: true, search: true,
			build: func(ctx context.Context, s *Store) (*listing, error) { return s.userRestListing(ctx, f) }}
	}
	const long, short = "张三丰", "张三"
	return []planCase{
		lf("all", identity.UserFilter{Query: "p0001234"}),
		lf("org", identity.UserFilter{Query: "p0001234", OrgID: orgID}),
		lf("status", identity.UserFilter{Query: "p0001234", Status: identity.StatusDisabled}),
		lf("subtree", identity.UserFilter{Query: "p0001234", OrgID: orgID, Subtree: true}),
		lf("within", identity.UserFilter{Query: "p0001234", Within: []string{orgID}}),
		rest("all", identity.UserFilter{Query: "p0001234"}),
		rest("org+status", identity.UserFilter{Query: "p0001234", OrgID: orgID, Status: identity.StatusActive}),
		u("all", identity.UserFilter{}),
		u("org", identity.UserFilter{OrgID: orgID}),
		u("status", identity.UserFilter{Status: identity.StatusDisabled}),
		u("org+status", identity.UserFilter{OrgID: orgID, Status: identity.StatusDisabled}),
		u("subtree", identity.UserFilter{OrgID: orgID, Subtree: true}),
		u("subtree+status", identity.UserFilter{OrgID: orgID, Subtree: true, Status: identity.StatusActive}),
		u("search", identity.UserFilter{Query: long}),
		u("search+org", identity.UserFilter{Query: "zhang", OrgID: orgID}),
		u("search+status", identity.UserFilter{Query: "example.org", Status: identity.StatusActive}),
		u("search+subtree", identity.UserFilter{Query: long, OrgID: orgID, Subtree: true}),
		u("short", identity.UserFilter{Query: short}),
		u("short+status", identity.UserFilter{Query: short, Status: identity.StatusActive}),
		// a unit administrator's listings that name no org: their subtree
		u("within", identity.UserFilter{Within: []string{orgID}}),
		u("within+status", identity.UserFilter{Within: []string{orgID}, Status: identity.StatusActive}),
		o("all", identity.OrgFilter{}),
		o("parent", identity.OrgFilter{ParentID: orgID}),
		o("status", identity.OrgFilter{Status: identity.StatusDisabled}),
		o("parent+status", identity.OrgFilter{ParentID: orgID, Status: identity.StatusActive}),
		o("subtree", identity.OrgFilter{ParentID: orgID, Subtree: true}),
		o("subtree+status", identity.OrgFilter{ParentID: orgID, Subtree: true, Status: identity.StatusDisabled}),
		o("search", identity.OrgFilter{Query: "船舶处"}),
		o("short", identity.OrgFilter{Query: "海"}),
		o("short+status", identity.OrgFilter{Query: "海", Status: identity.StatusActive}),
		o("search+parent", identity.OrgFilter{Query: "船舶处", ParentID: orgID}),
		o("within", identity.OrgFilter{Within: []string{orgID}}),
		g("all", identity.GroupFilter{}),
		g("org", identity.GroupFilter{OrgID: orgID}),
		g("search", identity.GroupFilter{Query: "team"}),
		g("search+org", identity.GroupFilter{Query: "team", OrgID: orgID}),
		g("short", identity.GroupFilter{Query: "t"}),
		g("within", identity.GroupFilter{Within: []string{orgID}}),
		g("within+search", identity.GroupFilter{Within: []string{orgID}, Query: "team"}),
		a("all", identity.AppFilter{}),
		a("type", identity.AppFilter{Type: "oa"}),
		a("status", identity.AppFilter{Status: identity.AppSuspended}),
		a("type+status", identity.AppFilter{Type: "oa", Status: identity.AppActive}),
		a("search", identity.AppFilter{Query: "mail"}),
		a("short", identity.AppFilter{Query: "oa"}),
		a("short+type+status", identity.AppFilter{Query: "oa", Type: "oa", Status: identity.AppActive}),
		a("search+status", identity.AppFilter{Query: "mail", Status: identity.AppActive}),
		l("all", identity.LinkFilter{}),
		l("user", identity.LinkFilter{UserID: "u1"}),
		l("app", identity.LinkFilter{AppID: "a1"}),
		l("user+app", identity.LinkFilter{UserID: "u1", AppID: "a1"}),
		l("within", identity.LinkFilter{Within: []string{orgID}}),
		l("within+app", identity.LinkFilter{Within: []string{orgID}, AppID: "a1"}),
	}
}

// TestListingPlans asks each database for the plan of every listing query
// (first page and a later page) and fails on a full scan (SQLite "SCAN t",
// PostgreSQL "Seq Scan" or an index walked whole with a filter) or a sort
// ("USE TEMP B-TREE", "Sort"), except as planCase allows. On PostgreSQL the
// session turns sequential scans and sorts off, so the planner picks an
// index plan whenever one exists (the tables are nearly empty).
func TestListingPlans(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			s := New(db)
			root := &identity.Org{ID: "root", Code: "root", Name: "Root", Status: identity.StatusActive}
			if err := s.CreateOrg(ctx, root, nil); err != nil {
				t.Fatal(err)
			}
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// A people search reads the search file (SQLite): its plan is
			// asked of the index's pool.
			iconn := conn
			if s.index != nil {
				pool, err := s.index.await(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if iconn, err = pool.Conn(ctx); err != nil {
					t.Fatal(err)
				}
				defer iconn.Close()
			}
			if db.Dialect == store.Postgres {
				if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.ExecContext(ctx, "SET enable_sort = off"); err != nil {
					t.Fatal(err)
				}
			}
			// The checks catch what they are for: a filter without an index
			// (a full scan) and an order no index gives (a sort).
			for _, bad := range []*listing{
				{cols: "users.id", from: "users", keys: []keyCol{{expr: "users.id"}}},
				{cols: "users.id", from: "users", keys: []keyCol{{expr: "users.email"}, {expr: "users.id"}}},
			} {
				if len(bad.keys) == 1 {
					bad.w.Add("users.email = ?", "x@example.org")
				}
				c := planCase{name: "bad"}
				q, args := bad.sql(nil, 51)
				q = s.q(q)
				var problems []string
				if db.Dialect == store.Postgres {
					problems = pgPlanProblems(t, conn, q, args, c)
				} else {
					problems = sqlitePlanProblems(t, conn, q, args, c)
				}
				if len(problems) == 0 {
					t.Errorf("no problem found in the plan of %s", q)
				}
			}
			for _, c := range planCases(root.ID) {
				if c.sqliteOnly && db.Dialect != store.SQLite {
					continue
				}
				l, err := c.build(ctx, s)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				after := make([]any, len(l.keys))
				for i, k := range l.keys {
					if k.num {
						after[i] = int64(7)
					} else {
						after[i] = "/root/x/"
					}
				}
				for page, a := range map[string][]any{"first": nil, "later": after} {
					q, args := l.sql(a, 51)
					q = s.q(q)
					var problems []string
					if db.Dialect == store.Postgres {
						problems = pgPlanProblems(t, conn, q, args, c)
					} else if l.indexed {
						problems = sqlitePlanProblems(t, iconn, q, args, c)
					} else {
						problems = sqlitePlanProblems(t, conn, q, args, c)
					}
					if len(problems) > 0 {
						t.Errorf("%s (%s page): %s\nquery: %s", c.name, page, strings.Join(problems, "; "), q)
					}
				}
			}
		})
	}
}

func sqlitePlanProblems(t *testing.T, conn *sql.Conn, q string, args []any, c planCase) []string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("%s: explain: %v", c.name, err)
	}
	defer rows.Close()
	var out, plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
		switch {
		case strings.Contains(detail, "TEMP B-TREE"):
			out = append(out, "sorts: "+detail)
		case strings.HasPrefix(detail, "SCAN "):
			virtualMatch := strings.Contains(detail, "VIRTUAL TABLE INDEX") && strings.Contains(detail, ":M")
			pkWalk := c.unfiltered && strings.Contains(detail, "INDEX sqlite_autoindex_")
			if !virtualMatch && !pkWalk {
				out = append(out, "full scan: "+detail)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) > 0 {
		out = append(out, "plan: "+strings.Join(plan, " | "))
	}
	return out
}

func pgPlanProblems(t *testing.T, conn *sql.Conn, q string, args []any, c planCase) []string {
	t.Helper()
	var js string
	if err := conn.QueryRowContext(context.Background(), "EXPLAIN (FORMAT JSON) "+q, args...).Scan(&js); err != nil {
		t.Fatalf("%s: explain: %v", c.name, err)
	}
	var plans []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(js), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("%s: explain output %q: %v", c.name, js, err)
	}
	var out []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		typ, _ := n["Node Type"].(string)
		_, cond := n["Index Cond"]
		_, filter := n["Filter"]
		rel, _ := n["Relation Name"].(string)
		switch typ {
		case "Seq Scan":
			out = append(out, "sequential scan of "+rel)
		case "Sort", "Incremental Sort":
			if !c.search {
				out = append(out, fmt.Sprintf("sort by %v", n["Sort Key"]))
			}
		case "Index Scan", "Index Only Scan":
			switch {
			case !cond && filter:
				out = append(out, fmt.Sprintf("index %v of %s walked whole with a filter", n["Index Name"], rel))
			case !cond && !c.unfiltered:
				out = append(out, fmt.Sprintf("index %v of %s walked whole", n["Index Name"], rel))
			}
		case "Bitmap Heap Scan":
			if !c.search {
				out = append(out, "bitmap scan of "+rel)
			}
		}
		subs, _ := n["Plans"].([]any)
		for _, s := range subs {
			if m, ok := s.(map[string]any); ok {
				walk(m)
			}
		}
	}
	walk(plans[0].Plan)
	if len(out) > 0 {
		out = append(out, "plan: "+js)
	}
	return out
}

// The import's checks find each value through an index, however many
// values (one JSON array on SQLite).
func TestImportCheckPlans(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// The sign-in's look-up of a login name, case aside (migration 0062),
	// goes through the folded index too.
	wantKeyedPlan(t, db, "SELECT id FROM users WHERE "+New(db).loginIs("login_name"), []any{"Mia"})
	for _, q := range []string{checkImported, New(db).checkLogins(), checkFeatures, checkIDKeys, checkUserPaths, checkApps, checkAccounts,
		checkLinkedUsers, checkOrgPaths} {
		q += "(SELECT value FROM json_each(?))"
		args := []any{`["a","b"]`}
		if strings.Count(q, "?") == 2 {
			args = append([]any{"k"}, args...)
		}
		wantKeyedPlan(t, db, q, args)
	}
	// The start's backfill of ID keys reads its partial index, not the
	// table.
	wantKeyedPlan(t, db, usersWithoutIDKey, []any{"", 500})
}

// TestSearchQueuePlans: the statements that list people for the search
// index and read them back look them up by key (users_search_keys, users)
// and walk the queue from a position: no statement scans a table whole (a
// scan of the search keys would cost a replica batch as much as the whole
// directory).
func TestSearchQueuePlans(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	for q, args := range map[string][]any{
		reindexUsersQueue: {`["a","b"]`},
		searchQueueRead:   {7, 100},
		searchRebuildRead: {7, 100},
	} {
		wantKeyedPlan(t, db, q, args)
	}
}

// wantKeyedPlan fails the test if SQLite's plan of q scans a table whole
// (a JSON array of keys aside) or sorts in a temporary B-tree.
func wantKeyedPlan(t *testing.T, db *store.DB, q string, args []any) {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	for _, d := range plan {
		if strings.HasPrefix(d, "SCAN ") && !strings.HasPrefix(d, "SCAN json_each") || strings.Contains(d, "TEMP B-TREE") {
			t.Errorf("plan of %s:\n  %s", q, strings.Join(plan, "\n  "))
			return
		}
	}
}
