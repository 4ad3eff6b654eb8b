package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
)

func testFS() fstest.MapFS {
	m := fstest.MapFS{}
	for _, n := range []string{"0001_init.sql", "0002_more.sql"} {
		b, err := os.ReadFile(filepath.Join("testdata", "migrations", n))
		if err != nil {
			panic(err)
		}
		m["migrations/"+n] = &fstest.MapFile{Data: b}
	}
	m["migrations/README.md"] = &fstest.MapFile{Data: []byte("ignored")}
	return m
}

func TestOpenSQLitePragmas(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	var mode string
	var fk, busy, syncMode int
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	// Every pooled connection must carry the pragma (it is per connection).
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil || syncMode != 1 {
		t.Fatalf("synchronous = %d (%v), want 1 (NORMAL)", syncMode, err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(mode, "wal") || fk != 1 || busy != 5000 {
		t.Fatalf("journal_mode=%s foreign_keys=%d busy_timeout=%d", mode, fk, busy)
	}
	// The WAL file shrinks back to this when the WAL restarts.
	var limit int64
	if err := db.QueryRowContext(ctx, "PRAGMA journal_size_limit").Scan(&limit); err != nil || limit != store.SQLiteJournalSizeLimit {
		t.Fatalf("journal_size_limit = %d (%v), want %d", limit, err, store.SQLiteJournalSizeLimit)
	}
	if db.Dialect != store.SQLite || db.Dialect.String() != "sqlite" {
		t.Fatalf("dialect %v", db.Dialect)
	}
	// A storm of calls shares a bounded pool instead of opening a
	// connection each.
	if n := db.Stats().MaxOpenConnections; n != 16 {
		t.Fatalf("max open connections = %d, want 16", n)
	}
}

// A DSN that sets synchronous itself keeps its choice (FULL = 2).
func TestOpenSQLiteSynchronousOverride(t *testing.T) {
	if got := pragmaOfOpened(t, "_pragma=synchronous(FULL)", "synchronous"); got != 2 {
		t.Fatalf("synchronous = %d, want 2 (FULL)", got)
	}
}

// A DSN that sets journal_size_limit itself keeps its choice (-1: none).
func TestOpenSQLiteJournalSizeLimitOverride(t *testing.T) {
	if got := pragmaOfOpened(t, "_pragma=journal_size_limit(-1)", "journal_size_limit"); got != -1 {
		t.Fatalf("journal_size_limit = %d, want -1", got)
	}
}

// pragmaOfOpened opens a SQLite file database whose DSN has the query
// params and returns its pragma's value.
func pragmaOfOpened(t *testing.T, params, pragma string) int64 {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite", "file:"+filepath.Join(t.TempDir(), "x.db")+"?"+params)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int64
	if err := db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", pragma, err)
	}
	return v
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.Open(ctx, "oracle", "x"); err == nil || !strings.Contains(err.Error(), "unknown database driver") {
		t.Fatalf("want unknown driver error, got %v", err)
	}
	if _, err := store.Open(ctx, "sqlite", ""); err == nil {
		t.Fatal("want error for empty DSN")
	}
	// Nothing listens on port 1: connection refused, reported clearly and as unavailable,
	// and the password must not leak.
	_, err := store.Open(ctx, "postgres", "postgres://u:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("want connection error")
	}
	if !strings.Contains(err.Error(), "cannot connect to postgres database") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("unexpected error text: %v", err)
	}
	if !store.IsUnavailable(err) {
		t.Fatalf("store.IsUnavailable(%v) = false", err)
	}
}

func TestMemorySQLite(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := store.Migrate(context.Background(), db, "mem", testFS()); err != nil {
		t.Fatal(err)
	}
}

func TestRebind(t *testing.T) {
	pg := &store.DB{Dialect: store.Postgres}
	lite := &store.DB{Dialect: store.SQLite}
	cases := map[string]string{
		"SELECT 1":                                        "SELECT 1",
		"SELECT * FROM t WHERE a = ? AND b = ?":           "SELECT * FROM t WHERE a = $1 AND b = $2",
		"SELECT '?', \"a?\" FROM t WHERE x = ? -- why?\n": "SELECT '?', \"a?\" FROM t WHERE x = $1 -- why?\n",
		"SELECT 'it''s ?' , ? /* ? */ , ?":                "SELECT 'it''s ?' , $1 /* ? */ , $2",
	}
	for in, want := range cases {
		if got := pg.Rebind(in); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", in, got, want)
		}
		if got := lite.Rebind(in); got != in {
			t.Errorf("sqlite Rebind changed %q to %q", in, got)
		}
	}
}

func TestLoadMigrationsErrors(t *testing.T) {
	if _, err := store.LoadMigrations(fstest.MapFS{"x.txt": {}}); err == nil {
		t.Fatal("want error for no migrations")
	}
	if _, err := store.LoadMigrations(fstest.MapFS{"init.sql": {}}); err == nil {
		t.Fatal("want error for bad name")
	}
	if _, err := store.LoadMigrations(fstest.MapFS{"0001_a.sql": {}, "1_b.sql": {}}); err == nil {
		t.Fatal("want error for duplicate version")
	}
	ms, err := store.LoadMigrations(fstest.MapFS{"0010_b.sql": {}, "0002_a.sql": {}})
	if err != nil || len(ms) != 2 || ms[0].Version != 2 || ms[1].Version != 10 {
		t.Fatalf("ms=%v err=%v", ms, err)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for i := 0; i < 2; i++ {
				if err := store.Migrate(ctx, db, "widgets", testFS()); err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
			}
			var n int
			if err := db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE component = ?`), "widgets").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Fatalf("schema_migrations rows = %d, want 2", n)
			}
			// The seed row of 0002 was inserted exactly once.
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM widgets`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("widgets rows = %d, want 1", n)
			}
			// Another component with its own numbering is independent.
			other := fstest.MapFS{"0001_other.sql": {Data: []byte("CREATE TABLE other_t (id INTEGER PRIMARY KEY);")}}
			if err := store.Migrate(ctx, db, "other", other); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMigrateConcurrent(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = store.Migrate(ctx, db, "widgets", testFS())
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			bad := fstest.MapFS{
				"0001_ok.sql":  {Data: []byte("CREATE TABLE ok_t (id INTEGER PRIMARY KEY);")},
				"0002_bad.sql": {Data: []byte("CREATE TABLE half_t (id INTEGER PRIMARY KEY); THIS IS NOT SQL;")},
			}
			err := store.Migrate(ctx, db, "bad", bad)
			if err == nil || !strings.Contains(err.Error(), "0002_bad.sql") {
				t.Fatalf("want error naming the file, got %v", err)
			}
			var n int
			if err := db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE component = ?`), "bad").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("applied = %d, want 1", n)
			}
			if _, err := db.ExecContext(ctx, `SELECT * FROM half_t`); err == nil {
				t.Fatal("half_t exists: failed migration was not rolled back")
			}
		})
	}
}

func TestInTxAndUniqueViolation(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := store.Migrate(ctx, db, "widgets", testFS()); err != nil {
				t.Fatal(err)
			}
			ins := db.Rebind(`INSERT INTO widgets (id, name) VALUES (?, ?)`)
			if err := db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, ins, "a", "alpha")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			// Duplicate primary key and duplicate unique column.
			for _, args := range [][]any{{"a", "other"}, {"b", "alpha"}} {
				_, err := db.ExecContext(ctx, ins, args...)
				if !store.IsUniqueViolation(err) {
					t.Fatalf("store.IsUniqueViolation(%v) = false", err)
				}
				if store.IsUnavailable(err) {
					t.Fatalf("store.IsUnavailable(%v) = true", err)
				}
				// The name column's own constraint, not the primary key's.
				if on, want := store.IsUniqueViolationOn(err, "widgets_name_key", "widgets", "name"), args[0] == "b"; on != want {
					t.Fatalf("store.IsUniqueViolationOn(%v, widgets.name) = %v, want %v", err, on, want)
				}
			}
			if store.IsUniqueViolationOn(errors.New("UNIQUE constraint failed: widgets.name"), "widgets_name_key", "widgets", "name") {
				t.Fatal("plain errors are not unique violations")
			}
			if store.IsUniqueViolation(errors.New("UNIQUE constraint failed")) || store.IsUniqueViolation(nil) {
				t.Fatal("plain errors are not unique violations")
			}
			// Error rolls back.
			boom := errors.New("boom")
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, ins, "c", "gamma"); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("got %v", err)
			}
			// Panic rolls back and propagates.
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("panic was swallowed")
					}
				}()
				_ = db.InTx(ctx, func(tx *sql.Tx) error {
					if _, err := tx.ExecContext(ctx, ins, "d", "delta"); err != nil {
						return err
					}
					panic("boom")
				})
			}()
			var n int
			if err := db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM widgets WHERE id IN (?, ?)`), "c", "d").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("rolled back rows visible: %d", n)
			}
			// The pool still works after the panic.
			if err := db.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnavailableAfterClose(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			_, err := db.ExecContext(ctx, "SELECT 1")
			if err == nil || !store.IsUnavailable(err) {
				t.Fatalf("store.IsUnavailable(%v) = false", err)
			}
			err = db.InTx(ctx, func(*sql.Tx) error { return nil })
			if !store.IsUnavailable(err) {
				t.Fatalf("store.IsUnavailable(%v) = false", err)
			}
		})
	}
}

func TestIsUnavailableClassification(t *testing.T) {
	if store.IsUnavailable(nil) || store.IsUnavailable(errors.New("syntax error")) || store.IsUnavailable(sql.ErrNoRows) {
		t.Fatal("false positives")
	}
	db := storetest.OpenSQLite(t)
	_, err := db.ExecContext(context.Background(), "THIS IS NOT SQL")
	if err == nil || store.IsUnavailable(err) {
		t.Fatalf("syntax error classified as unavailable: %v", err)
	}
}

// A server-side disconnect (what a PostgreSQL restart does to open connections) is
// classified as unavailable.
func TestUnavailableTerminatedBackend(t *testing.T) {
	dsn := os.Getenv(storetest.EnvPGDSN)
	if dsn == "" {
		t.Skip("UIAS_TEST_PG_DSN not set")
	}
	ctx := context.Background()
	db := storetest.OpenPG(t, dsn)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, "SELECT 1")
	if err == nil || !store.IsUnavailable(err) {
		t.Fatalf("IsUnavailable(%v) = false", err)
	}
}

// Classify turns real driver errors into the store sentinels, and the error
// funnel answers them with the right code, reason and legacy code, without
// SQL text.
func TestClassify(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := store.Migrate(ctx, db, "widgets", testFS()); err != nil {
				t.Fatal(err)
			}
			ins := db.Rebind(`INSERT INTO widgets (id, name) VALUES (?, ?)`)
			if _, err := db.ExecContext(ctx, ins, "a", "alpha"); err != nil {
				t.Fatal(err)
			}
			_, dup := db.ExecContext(ctx, ins, "b", "alpha")
			var none string
			noRows := db.QueryRowContext(ctx, db.Rebind(`SELECT name FROM widgets WHERE id = ?`), "zz").Scan(&none)
			_, syntax := db.ExecContext(ctx, "THIS IS NOT SQL")
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, canceled := db.ExecContext(cctx, "SELECT 1")

			type classifyCase struct {
				name     string
				err      error
				sentinel error // nil: returned unchanged
				code     codes.Code
				reason   string
				legacy   string
			}
			cases := []classifyCase{
				{"unique violation", dup, store.ErrConflict, codes.AlreadyExists, "ALREADY_EXISTS", ""},
				{"no rows", noRows, store.ErrNotFound, codes.NotFound, "NOT_FOUND", ""},
				{"syntax error", syntax, nil, codes.Internal, apierr.ReasonInternal, "-6"},
				{"canceled", canceled, nil, codes.Canceled, "CANCELED", ""},
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			_, closed := db.ExecContext(ctx, "SELECT 1")
			cases = append(cases, classifyCase{"closed database", closed, store.ErrUnavailable, codes.Unavailable, store.ReasonUnavailable, "-6"})

			for _, c := range cases {
				if c.err == nil {
					t.Fatalf("%s: no driver error", c.name)
				}
				got := store.Classify(c.err)
				if c.sentinel != nil && !errors.Is(got, c.sentinel) {
					t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.sentinel)
				}
				if !errors.Is(got, c.err) {
					t.Errorf("%s: the driver error is not kept as the cause", c.name)
				}
				st := status.Convert(apierr.ToStatus(got))
				info := apierr.Info(st)
				if st.Code() != c.code || info.GetReason() != c.reason || info.GetMetadata()[apierr.MetaLegacyCode] != c.legacy {
					t.Errorf("%s: answered %v %v %v, want %v %s %q", c.name, st.Code(), info.GetReason(),
						info.GetMetadata(), c.code, c.reason, c.legacy)
				}
				for _, frag := range []string{"SQL", "sql", "widgets", "constraint", "UNIQUE"} {
					if strings.Contains(st.Message(), frag) {
						t.Errorf("%s: message leaks %q: %q", c.name, frag, st.Message())
					}
				}
			}
		})
	}
	if store.Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
	domain := store.NotFound("widget")
	if got, ok := apierr.As(store.Classify(domain)); !ok || got.Message != "widget not found" || !errors.Is(got, store.ErrNotFound) {
		t.Fatal("a classified error must pass unchanged")
	}
	if st := status.Convert(apierr.ToStatus(store.Conflict("widget name already exists"))); st.Message() != "widget name already exists" || st.Code() != codes.AlreadyExists {
		t.Fatalf("Conflict: %v %q", st.Code(), st.Message())
	}
}
