package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
	"github.com/uias/uias/services/identity/sqlstore"
)

// The export rows of `uias bench scale` (issue 16): rows a second of
// identity.Service.Export through the importfile writer (into a counting
// writer: the file's bytes are counted, not kept), against one raw SQL
// read of the same rows and joins in the same run, with the peak Go heap
// in use during each (sampled every 20 ms; the process's other memory, the
// store's, is in it too: compare the export's with the raw read's and
// across sizes). People as CSV and XLSX, their account links as CSV. The
// rows run on the imported store after the import rows, or with
// --export-db on a store generated earlier (the listing rows' people-N.db),
// without importing first.

// exportFloorQueries are the raw reads of each kind: the columns an export
// shows, with the same joins, in one query.
var exportFloorQueries = map[string]string{
	"users": "SELECT users.id, users.login_name, users.display_name, users.email, users.id_type, users.id_number_mask, " +
		"users.phone_mask, users.status, orgs.code FROM users LEFT JOIN orgs ON orgs.id = users.org_id ORDER BY users.id",
	"links": "SELECT account_links.id, account_links.app_account_id, account_links.status, users.login_name, apps.app_type, apps.app_code " +
		"FROM account_links JOIN users ON users.id = account_links.user_id JOIN apps ON apps.id = account_links.app_id ORDER BY account_links.id",
}

// rawRead reads every row of query and returns how many it read.
func rawRead(ctx context.Context, db *store.DB, query string) (int, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	for i := range vals {
		vals[i] = new(any)
	}
	k := 0
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return k, err
		}
		k++
	}
	return k, rows.Err()
}

// scaleExport measures the export rows on db (its service svc).
func scaleExport(ctx context.Context, rep *scaleReport, db *store.DB, svc *identity.Service, stderr io.Writer) error {
	for _, c := range []struct {
		kind    string
		formats []importfile.Format
	}{
		{"users", []importfile.Format{importfile.CSV, importfile.XLSX}},
		{"links", []importfile.Format{importfile.CSV}},
	} {
		runtime.GC()
		peak := sampleHeap()
		start := time.Now()
		k, err := rawRead(ctx, db, exportFloorQueries[c.kind])
		if err != nil {
			return err
		}
		floor := time.Since(start)
		floorHeap := peak()
		what := "people"
		if c.kind == "links" {
			what = "account links"
		}
		label := peopleLabel(k)
		for _, f := range c.formats {
			fmt.Fprintf(stderr, "uias bench scale: export %s %s as %s\n", label, what, f)
			out := &countingWriter{}
			runtime.GC()
			peak := sampleHeap()
			start := time.Now()
			cpu0 := cpuTime()
			w, err := importfile.NewWriter(out, f, importfile.Kind(c.kind), identity.ExportColumns[c.kind])
			if err != nil {
				return err
			}
			rows, err := svc.Export(ctx, identity.ExportOptions{Kind: c.kind}, w.WriteRow)
			if err == nil {
				err = w.Close()
			}
			took, cpu := time.Since(start), cpuTime()-cpu0
			heap := peak()
			if err != nil {
				return err
			}
			row := &scaleRow{name: fmt.Sprintf("export %s %s as %s (rows/s)", label, what, f),
				what: "identity.Service.Export (pages of 1000 by id as admin reads, codes joined, ID numbers and phones masked) " +
					"through the importfile writer, vs one raw SQL read of the same columns and joins",
				ours: float64(rows) / took.Seconds(), floor: float64(k) / floor.Seconds(), perSec: true,
				goal: "1 M ≤ 2 min (≥ 8333/s)", hasGoal: true}
			row.pass = row.ours >= 1_000_000/120.0
			row.note = fmt.Sprintf("%s for %s, %.0f rows per CPU-second, %.1f MB; 1 M at this rate: %s; peak Go heap in use %.0f MB (raw read %.0f MB)",
				took.Round(time.Second), label, float64(rows)/cpu.Seconds(), float64(out.n)/1e6,
				(time.Duration(float64(time.Second) * 1_000_000 / row.ours)).Round(time.Second), float64(heap)/1e6, float64(floorHeap)/1e6)
			if rows != k {
				row.errs = append(row.errs, fmt.Sprintf("exported %d rows, the table has %d", rows, k))
			}
			rep.rows = append(rep.rows, row)
			fmt.Fprintf(stderr, "  export %s %s %s: %.0f rows/s (raw read %.0f rows/s), %.0f per CPU-second, peak heap %.0f MB\n",
				label, what, f, row.ours, row.floor, float64(rows)/cpu.Seconds(), float64(heap)/1e6)
		}
	}
	return nil
}

// scaleExportDB measures the export rows on the generated store at path
// (--export-db), migrated first; with --cpuprofile and --io=false, under a
// CPU profile.
func scaleExportDB(ctx context.Context, o *scaleOptions, rep *scaleReport, path, dir string, stderr io.Writer) error {
	db, err := openIdentityDB(ctx, path)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	svc, err := ioService(sqlstore.New(db), dir, o.argon2, 0, nil)
	if err != nil {
		return err
	}
	if o.cpuprofile != "" && !o.io {
		pf, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return scaleExport(ctx, rep, db, svc, stderr)
}
