package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
	"github.com/uias/uias/services/identity/sqlstore"
)

// The import and export rows of `uias bench scale` (issue 16): rows a
// second through the identity service against the same rows written or
// read in raw SQL, in the same run:
//
//   - import: a CSV of --io-people people (legacy {SSHA} hashes, org by
//     code, one account link each, as an onboarding file) through
//     importfile and identity.Service.Import (the path of ImportService
//     after the upload), into a fresh store holding the generated org
//     tree; floor: the same people inserted by generatePeople's bulk SQL
//     into another fresh store (same indexes and search triggers, no
//     per-row checks, batches or events);
//   - export: identity.Service.Export of those people into CSV and XLSX,
//     and of their links into CSV (scaleexport.go).

// sshaExample is an {SSHA} hash ("Ocean-Pass-1").
const sshaExample = "{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0"

// writeImportCSV writes n people as an import file.
func writeImportCSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "login_name,display_name,org_code,email,password_hash,app_type,app_code,app_account")
	for i := range n {
		fmt.Fprintf(w, "%s,%s,%s,%s@example.com,%s,OA,gen,%s\n", genLogin(i), genDisplay(i), genL2ID(i%genL2), genLogin(i),
			sshaExample, genLinkAcct(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func openIdentityDB(ctx context.Context, path string) (*store.DB, error) {
	db, err := store.Open(ctx, "sqlite", path)
	if err != nil {
		return nil, err
	}
	if err := sqlstore.Migrate(ctx, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// ioService is the service of the import and export rows; sleep, when
// set, is its sleep (the import's pauses for waiting logins).
func ioService(st identity.Store, dir string, argon2 crypto.Argon2Params, loginShare float64,
	sleep func(context.Context, time.Duration) error) (*identity.Service, error) {
	keys, active, err := crypto.LoadOrCreateKeyFile(filepath.Join(dir, "io-keys.json"))
	if err != nil {
		return nil, err
	}
	sealer, err := crypto.NewSealer(keys, active)
	if err != nil {
		return nil, err
	}
	return identity.New(identity.Deps{Store: st, Sealer: sealer, Logger: zap.NewNop(), Config: identity.Config{ImportLoginShare: loginShare},
		Hasher: crypto.NewHasher(crypto.HasherConfig{Params: argon2}), Sleep: sleep})
}

// countingWriter counts bytes.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// scaleIO measures the import and export rows.
func scaleIO(ctx context.Context, o *scaleOptions, rep *scaleReport, dir string, stderr io.Writer) error {
	n := o.ioPeople
	label := peopleLabel(n)
	csvPath := filepath.Join(dir, fmt.Sprintf("import-%d.csv", n))
	if err := writeImportCSV(csvPath, n); err != nil {
		return err
	}
	defer func() { _ = os.Remove(csvPath) }()

	// Floor: bulk SQL.
	var floorImport, floorCPU time.Duration
	if o.ioFloor {
		fmt.Fprintf(stderr, "uias bench scale: import floor: %s people in bulk SQL\n", label)
		floorPath := filepath.Join(dir, fmt.Sprintf("io-floor-%d.db", n))
		_ = os.Remove(floorPath)
		fdb, err := openIdentityDB(ctx, floorPath)
		if err != nil {
			return err
		}
		if err := generatePeople(ctx, fdb, "", 0, 0); err != nil { // the org tree first, as for the import
			return err
		}
		start := time.Now()
		fcpu0 := cpuTime()
		if err := generatePeople(ctx, fdb, "", 0, n); err != nil {
			return err
		}
		floorImport = time.Since(start)
		floorCPU = cpuTime() - fcpu0
		_ = fdb.Close()
		_ = os.Remove(floorPath)
	}

	// Ours: the service's import into a store with the org tree.
	fmt.Fprintf(stderr, "uias bench scale: import: %s people through identity.Service.Import\n", label)
	impPath := filepath.Join(dir, fmt.Sprintf("io-import-%d.db", n))
	_ = os.Remove(impPath)
	db, err := openIdentityDB(ctx, impPath)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close(); _ = os.Remove(impPath) }()
	if err := generatePeople(ctx, db, "", 0, 0); err != nil {
		return err
	}
	// The login outbox, as the identity component opens it.
	logins, err := sqlstore.OpenLoginOutbox(ctx, db)
	if err != nil {
		return err
	}
	defer func() {
		if logins != nil {
			_ = logins.Close()
		}
		for _, f := range []string{sqlstore.LoginOutboxFile(impPath), sqlstore.SearchFile(impPath)} {
			_ = os.Remove(f)
		}
	}()
	st := sqlstore.New(db, sqlstore.WithLoginOutbox(logins))
	steps := &stepStore{Store: st}
	svc, err := ioService(steps, dir, o.argon2, o.importLoginShare, steps.sleep)
	if err != nil {
		return err
	}
	r, err := importfile.Open(csvPath, importfile.CSV, importfile.Users)
	if err != nil {
		return err
	}
	if o.cpuprofile != "" {
		pf, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
	}
	start := time.Now()
	cpu0 := cpuTime()
	irep, err := svc.Import(ctx, identity.ImportOptions{Kind: "users"}, func() (*identity.ImportRow, bool, error) {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		row := &identity.ImportRow{Row: rec.Row, Fields: rec.Fields}
		if field, msg := importfile.Problem(rec, importfile.Users); msg != "" {
			row.Problem = &identity.RowError{Row: rec.Row, Field: field, Reason: identity.ReasonImportBadField, Message: msg}
		}
		return row, true, nil
	})
	ourImport := time.Since(start)
	importCPU := cpuTime() - cpu0
	if o.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	_ = r.Close()
	if err != nil {
		return err
	}
	imp := &scaleRow{name: "import " + label + " people (rows/s)",
		what: "CSV with {SSHA} hashes, org by code, one account link per row, through importfile + identity.Service.Import (rows read and checked on one goroutine while the batch before is written on another; transactions of up to " + fmt.Sprint(identity.ImportBatchSize) + " rows on a connection of their own with a large page cache, in chunks sized to about " + identity.ImportTxTarget.String() + " each, ended after the chunk during which a login waits; rows in key order, search rows once per transaction; one event + one audit record per transaction), vs the same people in bulk SQL (generatePeople) into another fresh store",
		ours: float64(irep.Written) / ourImport.Seconds(), floor: perSecond(n, floorImport), perSec: true,
		goal: "1 M ≤ 5 min (≥ 3333/s)", hasGoal: true}
	imp.pass = imp.ours >= 1_000_000/300.0
	imp.note = fmt.Sprintf("%s for %s, %.0f rows per CPU-second (bulk SQL %.0f); 1 M at this rate: %s", ourImport.Round(time.Second), label,
		float64(irep.Written)/importCPU.Seconds(), perSecond(n, floorCPU),
		(time.Duration(float64(time.Second) * 1_000_000 / imp.ours)).Round(time.Second))
	if irep.Failed > 0 || irep.Written != n {
		imp.errs = append(imp.errs, fmt.Sprintf("%d written, %d failed (first: %+v)", irep.Written, irep.Failed, irep.Errors))
	}
	rep.rows = append(rep.rows, imp)
	rep.importRate = imp.ours
	fmt.Fprintf(stderr, "  import %s: %.0f rows/s (bulk SQL %.0f rows/s)\n", label, imp.ours, imp.floor)

	// Export of the same people, against a raw read.
	if err := scaleExport(ctx, rep, db, svc, stderr); err != nil {
		return err
	}
	if o.importLogins {
		return scaleLoginsDuringImport(ctx, o, rep, db, st, steps, svc, n, stderr)
	}
	return nil
}

// sampleHeap samples the Go heap in use every 20 ms until the returned
// function is called, which returns the largest sample.
func sampleHeap() func() uint64 {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		top := heapInuse()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				done <- max(top, heapInuse())
				return
			case <-t.C:
				top = max(top, heapInuse())
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}

// perSecond is n a second of d (0 when d is not measured).
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
