package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
)

const itemsDDL = `CREATE TABLE items (
	id   TEXT   PRIMARY KEY,
	name TEXT   NOT NULL,
	ref  TEXT   UNIQUE,
	at   BIGINT NOT NULL
)`

type item struct {
	ID, Name, Ref string
	At            time.Time
}

func scanItem(sc store.Scanner) (item, string, error) {
	var (
		it  item
		ref sql.NullString
		at  int64
	)
	if err := sc.Scan(&it.ID, &it.Name, &ref, &at); err != nil {
		return item{}, "", err
	}
	it.Ref, it.At = ref.String, store.FromUnixMS(at)
	return it, it.ID, nil
}

// itemsDB returns each test database with the items table holding items.
func itemsDB(t *testing.T, items ...item) map[string]*store.DB {
	t.Helper()
	dbs := storetest.DBs(t)
	for _, db := range dbs {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, itemsDDL); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO items (id, name, ref, at) VALUES (?, ?, ?, ?)`),
				it.ID, it.Name, store.NullIfEmpty(it.Ref), store.UnixMS(it.At)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dbs
}

func TestValueEncodings(t *testing.T) {
	at := time.Date(2026, 11, 3, 10, 20, 30, 123_456_789, time.FixedZone("CST", 8*3600))
	if got := store.FromUnixMS(store.UnixMS(at)); !got.Equal(at.Truncate(time.Millisecond)) || got.Location() != time.UTC {
		t.Fatalf("round trip of %v = %v", at, got)
	}
	if store.UnixMS(time.Time{}) != 0 || !store.FromUnixMS(0).IsZero() {
		t.Fatal("the zero time is not stored as 0")
	}
	if store.NullIfEmpty("") != nil || store.NullIfEmpty("x") != "x" {
		t.Fatal("NullIfEmpty")
	}
	if got := store.LikePattern(`50%_A\b`); got != `%50\%\_a\\b%` {
		t.Fatalf("LikePattern = %q", got)
	}
	if store.Placeholders(1) != "?" || store.Placeholders(3) != "?, ?, ?" {
		t.Fatalf("Placeholders: %q %q", store.Placeholders(1), store.Placeholders(3))
	}
}

func TestQueryHelpers(t *testing.T) {
	at := time.UnixMilli(1_800_000_000_123).UTC()
	dbs := itemsDB(t,
		item{ID: "a", Name: "50% off", At: at},
		item{ID: "b", Name: "500 off", At: at},
		item{ID: "c", Name: "under_score", Ref: "r1"},
		item{ID: "d", Name: "UNDERxSCORE"},
	)
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			// Several rows store "" as NULL under a unique column.
			var nulls int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM items WHERE ref IS NULL").Scan(&nulls); err != nil || nulls != 3 {
				t.Fatalf("%d NULL refs (%v), want 3", nulls, err)
			}
			// Contains matches literally: % and _ are not wildcards.
			for q, want := range map[string][]string{"50%": {"a"}, "under_": {"c"}, "OFF": {"a", "b"}, "": {"a", "b", "c", "d"}} {
				var w store.Where
				w.Contains(q, "name", "id")
				got, _, err := store.QueryPage(ctx, db, "SELECT id, name, ref, at FROM items", &w, "id", 10, "", scanItem)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, it := range got {
					ids = append(ids, it.ID)
				}
				if !slices.Equal(ids, want) {
					t.Errorf("Contains(%q) = %v, want %v", q, ids, want)
				}
			}
			// IN lists and Exists, inside a transaction with the lock suffixes.
			if err := db.InTx(ctx, func(tx *sql.Tx) error {
				args := []any{"a", "c", "zz"}
				var n int
				if err := tx.QueryRowContext(ctx, db.Rebind("SELECT COUNT(*) FROM items WHERE id IN ("+
					store.Placeholders(len(args))+")"), args...).Scan(&n); err != nil {
					return err
				}
				if n != 2 {
					return fmt.Errorf("IN list counted %d, want 2", n)
				}
				for id, want := range map[string]bool{"a": true, "nope": false} {
					for _, lock := range []string{db.ForUpdate(), db.ForShare()} {
						ok, err := db.Exists(ctx, tx, "SELECT 1 FROM items WHERE id = ?"+lock, id)
						if err != nil || ok != want {
							return fmt.Errorf("Exists(%s%s) = %v, %w", id, lock, ok, err)
						}
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exists(ctx, db, "SELECT 1 FROM no_such_table"); err == nil {
				t.Fatal("Exists hid a failed query")
			}
			it, _, err := scanItem(db.QueryRowContext(ctx, db.Rebind("SELECT id, name, ref, at FROM items WHERE id = ?"), "a"))
			if err != nil || !it.At.Equal(at) || it.Ref != "" {
				t.Fatalf("read back %+v, %v", it, err)
			}
		})
	}
	if got := dbs["sqlite"].ForUpdate() + dbs["sqlite"].ForShare(); got != "" {
		t.Fatalf("SQLite lock suffixes %q", got)
	}
	pg := &store.DB{Dialect: store.Postgres}
	if pg.ForUpdate() != " FOR UPDATE" || pg.ForShare() != " FOR SHARE" {
		t.Fatal("PostgreSQL lock suffixes")
	}
}

func TestQueryPage(t *testing.T) {
	var items []item
	for i := range 7 {
		items = append(items, item{ID: fmt.Sprintf("i%02d", i), Name: fmt.Sprintf("n%d", i%2)})
	}
	for name, db := range itemsDB(t, items...) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var (
				got   []string
				token string
				pages int
			)
			for {
				w := store.Where{}
				w.Add("name = ?", "n0")
				page, next, err := store.QueryPage(ctx, db, "SELECT id, name, ref, at FROM items", &w, "id", 2, token, scanItem)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, it := range page {
					got = append(got, it.ID)
				}
				if next == "" {
					break
				}
				token = next
			}
			// i00 i02 i04 i06: two full pages; the second knows it is the last.
			if want := []string{"i00", "i02", "i04", "i06"}; !slices.Equal(got, want) || pages != 2 {
				t.Fatalf("pages %d, ids %v, want %v in 2 pages", pages, got, want)
			}
			// a key that decodes but that no page issued (trial7 L3), and a
			// token whose check does not match its key
			issued := store.PageToken("i03")
			for _, bad := range []string{"!!", "===", "a b", "garbage", "Z2FyYmFnZQ", issued[:len(issued)-2] + "xx", "aTAz"} {
				if _, _, err := store.QueryPage(ctx, db, "SELECT id, name, ref, at FROM items", &store.Where{}, "id", 2, bad, scanItem); !errors.Is(err, store.ErrBadPageToken) {
					t.Errorf("token %q: error %v, want ErrBadPageToken", bad, err)
				}
			}
			if after, err := store.PageAfter(store.PageToken("i03")); err != nil || after != "i03" {
				t.Fatalf("token round trip: %q %v", after, err)
			}
		})
	}
}

// A transaction's view of the cache (InTx) runs its statements on the
// transaction, prepares them on the side the first time (never waiting
// for another connection of the pool, which may all be held by
// transactions waiting for this one: here the pool has one) and reuses
// them in the next transactions.
func TestStmtCacheInTx(t *testing.T) {
	for name, db := range itemsDB(t, item{ID: "a", Name: "alpha"}) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db.SetMaxOpenConns(1)
			c := store.NewStmtCache(db.DB)
			update := db.Rebind("UPDATE items SET name = ? WHERE id = ?")
			get := db.Rebind("SELECT name FROM items WHERE id = ?")
			for i := range 3 {
				want := fmt.Sprintf("name-%d", i)
				err := db.InTx(ctx, func(tx *sql.Tx) error {
					q := c.InTx(tx)
					if _, err := q.ExecContext(ctx, update, want, "a"); err != nil {
						return err
					}
					var got string
					if err := q.QueryRowContext(ctx, get, "a").Scan(&got); err != nil || got != want {
						return fmt.Errorf("read %q in the transaction, want %q: %w", got, want, err)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				// The statements prepared on the side are kept.
				deadline := time.Now().Add(10 * time.Second)
				for c.Len() != 2 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if c.Len() != 2 {
					t.Fatalf("%d statements kept for two queries", c.Len())
				}
			}
			var name string
			if err := db.QueryRowContext(ctx, get, "a").Scan(&name); err != nil || name != "name-2" {
				t.Fatalf("committed name %q (%v)", name, err)
			}
		})
	}
}

func TestStmtCache(t *testing.T) {
	for name, db := range itemsDB(t, item{ID: "a", Name: "alpha"}) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := store.NewStmtCache(db.DB)
			var q store.Querier = c
			query := db.Rebind("SELECT id, name, ref, at FROM items WHERE id = ?")
			for range 3 {
				it, _, err := scanItem(q.QueryRowContext(ctx, query, "a"))
				if err != nil || it.Name != "alpha" {
					t.Fatalf("got %+v, %v", it, err)
				}
			}
			if _, _, err := scanItem(q.QueryRowContext(ctx, query, "missing")); !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("missing row: %v", err)
			}
			if c.Len() != 1 {
				t.Fatalf("%d statements kept for one query", c.Len())
			}
			// A query that cannot be prepared reports its error through Scan
			// and is not kept.
			var one int
			if err := q.QueryRowContext(ctx, "SELECT FROM WHERE").Scan(&one); err == nil {
				t.Fatal("a broken query scanned")
			}
			if c.Len() != 1 {
				t.Fatalf("a broken query was kept (%d statements)", c.Len())
			}
			if _, err := q.ExecContext(ctx, db.Rebind("UPDATE items SET name = ? WHERE id = ?"), "beta", "a"); err != nil {
				t.Fatal(err)
			}
			rows, err := q.QueryContext(ctx, "SELECT name FROM items")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var names []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				names = append(names, n)
			}
			if !slices.Equal(names, []string{"beta"}) {
				t.Fatalf("names %v", names)
			}
		})
	}
}

func TestTxStmts(t *testing.T) {
	for name, db := range itemsDB(t, item{ID: "a", Name: "alpha"}) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				c := store.NewTxStmts(tx)
				defer c.Close()
				var q store.Querier = c
				query := db.Rebind("SELECT id, name, ref, at FROM items WHERE id = ?")
				update := db.Rebind("UPDATE items SET name = ? WHERE id = ?")
				for i := range 3 {
					if _, err := q.ExecContext(ctx, update, fmt.Sprintf("alpha%d", i), "a"); err != nil {
						return err
					}
					// Each read sees the transaction's writes before it.
					it, _, err := scanItem(q.QueryRowContext(ctx, query, "a"))
					if err != nil || it.Name != fmt.Sprintf("alpha%d", i) {
						t.Fatalf("got %+v, %v", it, err)
					}
				}
				if _, _, err := scanItem(q.QueryRowContext(ctx, query, "missing")); !errors.Is(err, sql.ErrNoRows) {
					t.Fatalf("missing row: %v", err)
				}
				if c.Len() != 2 {
					t.Fatalf("%d statements kept for two queries", c.Len())
				}
				rows, err := q.QueryContext(ctx, "SELECT name FROM items")
				if err != nil {
					return err
				}
				defer rows.Close()
				var names []string
				for rows.Next() {
					var n string
					if err := rows.Scan(&n); err != nil {
						return err
					}
					names = append(names, n)
				}
				if !slices.Equal(names, []string{"alpha2"}) {
					t.Fatalf("names %v", names)
				}
				return rows.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
			var n string
			if err := db.QueryRowContext(ctx, db.Rebind("SELECT name FROM items WHERE id = ?"), "a").Scan(&n); err != nil || n != "alpha2" {
				t.Fatalf("after commit: %q, %v", n, err)
			}
			// A query that cannot be prepared reports its error (through Scan
			// for a row) and is not kept (PostgreSQL aborts the transaction).
			_ = db.InTx(ctx, func(tx *sql.Tx) error {
				c := store.NewTxStmts(tx)
				var one int
				if err := c.QueryRowContext(ctx, "SELECT FROM WHERE").Scan(&one); err == nil {
					t.Fatal("a broken query scanned")
				}
				if _, err := c.ExecContext(ctx, "UPDATE FROM WHERE"); err == nil {
					t.Fatal("a broken statement ran")
				}
				if c.Len() != 0 {
					t.Fatalf("a broken query was kept (%d statements)", c.Len())
				}
				return errors.New("rolled back")
			})
		})
	}
}
