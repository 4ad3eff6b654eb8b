package identity_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
	"github.com/uias/uias/services/identity/sqlstore"
)

// Import and export throughput against raw SQL on the same store (issue
// 16; `uias bench scale` measures the same at scale). Each op moves
// benchRows people; the metric is rows/s.

const benchRows = 500

func importCSV(from int) string {
	var b strings.Builder
	b.WriteString("login_name,display_name,org_code,email,password_hash,app_type,app_code,app_account\n")
	for i := from; i < from+benchRows; i++ {
		fmt.Fprintf(&b, "b%08d,张伟%d,root,b%08d@example.com,%s,OA,oa,acct-%08d\n", i, i%97, i, sshaOcean, i)
	}
	return b.String()
}

// BenchmarkImportUsers imports benchRows people with {SSHA} hashes and a
// link each per op through importfile and Service.Import.
func BenchmarkImportUsers(b *testing.B) {
	iw := newImportWorld(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		p := writeFile(b, "bench.csv", importCSV(i*benchRows))
		b.StartTimer()
		rep := iw.run(b, p, importfile.CSV, importfile.Users, "", false)
		if rep.Written != benchRows {
			b.Fatalf("report %+v", rep)
		}
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkImportUsersWithIDNumbers is BenchmarkImportUsers with a
// resident ID number in each row: sealed, and checked to be one person's
// (the file's own duplicates in memory, those already stored in one query
// per 500 rows; one more unique index entry per row).
func BenchmarkImportUsersWithIDNumbers(b *testing.B) {
	iw := newImportWorld(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		var f strings.Builder
		f.WriteString("login_name,display_name,org_code,email,password_hash,app_type,app_code,app_account,id_type,id_number\n")
		for j := i * benchRows; j < (i+1)*benchRows; j++ {
			fmt.Fprintf(&f, "b%08d,张伟%d,root,b%08d@example.com,%s,OA,oa,acct-%08d,resident_id,%s\n", j, j%97, j, sshaOcean, j,
				residentID(fmt.Sprintf("110105%011d", j)))
		}
		p := writeFile(b, "bench.csv", f.String())
		b.StartTimer()
		rep := iw.run(b, p, importfile.CSV, importfile.Users, "", false)
		if rep.Written != benchRows {
			b.Fatalf("report %+v", rep)
		}
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkImportFloorSQL inserts benchRows users and links per op in one
// transaction with prepared INSERTs and their search keys and queue
// entries in two statements, then the search file written (no checks, no
// events): the floor.
func BenchmarkImportFloorSQL(b *testing.B) {
	iw := newImportWorld(b)
	ctx := context.Background()
	var app string
	if err := iw.db.QueryRowContext(ctx, "SELECT id FROM apps LIMIT 1").Scan(&app); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		err := iw.db.InTx(ctx, func(tx *sql.Tx) error {
			us, err := tx.PrepareContext(ctx, "INSERT INTO users (id, login_name, display_name, email, org_id, org_path, status, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, 0, 0)")
			if err != nil {
				return err
			}
			ls, err := tx.PrepareContext(ctx, "INSERT INTO account_links (id, user_id, app_id, app_account_id, status, created_at, org_path) VALUES (?, ?, ?, ?, 1, 0, ?)")
			if err != nil {
				return err
			}
			for j := i * benchRows; j < (i+1)*benchRows; j++ {
				id := fmt.Sprintf("fu%08d", j)
				if _, err := us.ExecContext(ctx, id, fmt.Sprintf("f%08d", j), fmt.Sprintf("张伟%d", j%97), fmt.Sprintf("f%08d@example.com", j),
					iw.root.ID, iw.root.Path, sshaOcean); err != nil {
					return err
				}
				if _, err := ls.ExecContext(ctx, "fl"+id, id, app, fmt.Sprintf("facct-%08d", j), iw.root.Path); err != nil {
					return err
				}
			}
			// The search rows, as the store writes them (SQLite).
			var last int64
			if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM users_search_keys").Scan(&last); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO users_search_keys (row_id) SELECT id FROM users WHERE id >= ? AND id <= ? ORDER BY id",
				fmt.Sprintf("fu%08d", i*benchRows), fmt.Sprintf("fu%08d", (i+1)*benchRows-1)); err != nil {
				return err
			}
			err = sqlstore.ListNewPeople(ctx, tx, last)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		// The search file written, as an import's end waits for it.
		if err := sqlstore.BuildSearchIndex(ctx, iw.db, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchRows)/b.Elapsed().Seconds(), "rows/s")
}

const exportPeople = 5000

func exportWorld(b *testing.B) *importWorld {
	iw := newImportWorld(b)
	for i := 0; i < exportPeople; i += benchRows {
		if rep := iw.run(b, writeFile(b, "bench.csv", importCSV(i)), importfile.CSV, importfile.Users, "", false); rep.Written != benchRows {
			b.Fatalf("report %+v", rep)
		}
	}
	return iw
}

// BenchmarkExportUsersCSV exports every person (5002) per op as CSV.
func BenchmarkExportUsersCSV(b *testing.B) {
	iw := exportWorld(b)
	rows := 0
	b.ResetTimer()
	for b.Loop() {
		w, err := importfile.NewWriter(io.Discard, importfile.CSV, importfile.Users, identity.ExportColumns["users"])
		if err != nil {
			b.Fatal(err)
		}
		n, err := iw.svc.Export(context.Background(), identity.ExportOptions{Kind: "users"}, w.WriteRow)
		if err != nil || w.Close() != nil {
			b.Fatal(err)
		}
		rows += n
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkExportFloorSQL reads the same rows and join in one query.
func BenchmarkExportFloorSQL(b *testing.B) {
	iw := exportWorld(b)
	rows := 0
	b.ResetTimer()
	for b.Loop() {
		r, err := iw.db.QueryContext(context.Background(), "SELECT users.id, users.login_name, users.display_name, users.email, "+
			"users.id_number_mask, users.phone_mask, users.status, orgs.code FROM users LEFT JOIN orgs ON orgs.id = users.org_id ORDER BY users.id")
		if err != nil {
			b.Fatal(err)
		}
		var id, login, display, email, idm, pm, org string
		var status int
		for r.Next() {
			if err := r.Scan(&id, &login, &display, &email, &idm, &pm, &status, &org); err != nil {
				b.Fatal(err)
			}
			rows++
		}
		_ = r.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
