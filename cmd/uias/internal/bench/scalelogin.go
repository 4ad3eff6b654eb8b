package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// The "logins during an import" rows of `uias bench scale` (issue 16: an
// import must not stop the logins). In the store the import row filled,
// closed-loop logins (identity.Service.Authenticate of imported people;
// each success writes the account's login gate) run in slices alternating
// with and without an import of further people, all in the same run. The
// import is one import (one import id): each slice with it resumes it at
// the first person not written yet and stops it (cancels its context) at
// the slice's end, so that none of its writes runs into a slice without.

// scaleLoginsDuringImport adds the rows. n people (0..n-1, the import
// row's) are in st; the import adds people n, n+1, ...
func scaleLoginsDuringImport(ctx context.Context, o *scaleOptions, rep *scaleReport, db *store.DB, st *sqlstore.Store, steps *stepStore, svc *identity.Service,
	n int, stderr io.Writer) error {
	app, err := st.GetAppByCode(ctx, "OA", "gen")
	if err != nil {
		return fmt.Errorf("logins during an import: the generated application: %w", err)
	}
	capp := app.CallerApp()
	const people = 16
	k := min(people, n)
	var seq atomic.Int64
	login := func(ctx context.Context) (Outcome, error) {
		i := int(seq.Add(1)) % k
		cctx := caller.With(ctx, &caller.Caller{App: capp, RequestID: fmt.Sprintf("bench-login-%d", i)})
		res, err := svc.Authenticate(cctx, identity.AuthRequest{AppUserID: genLinkAcct(i), Password: "Ocean-Pass-1", AuthType: identity.AuthPassword})
		switch {
		case err != nil && apierr.CodeOf(err) == apierr.ResourceExhausted:
			return Exhausted, err
		case err != nil:
			return Failed, err
		case res.Reason != identity.ReasonOK:
			return Failed, fmt.Errorf("login of %s: %v", genLinkAcct(i), res.Reason)
		}
		return OK, nil
	}
	// The first login of each replaces its {SSHA} hash: before measuring.
	fmt.Fprintf(stderr, "uias bench scale: logins during an import: first logins of %d people\n", k)
	for range k {
		if oc, err := login(ctx); oc != OK {
			return fmt.Errorf("logins during an import: first login: %w", err)
		}
	}

	// Each slice with an import runs one: it resumes the import (one
	// import id) at the first person not written yet, and when the slice
	// ends its row source ends (as a file does): the import writes the
	// rows it was handed and returns, the slice's logins going on
	// meanwhile, so that no write of it runs into the slices without and
	// no transaction in flight is rolled back. Its rate is the rows
	// written over the time until it returned. (Until 2026-12-04 the
	// import was cancelled at the slice's end, and the rows of its
	// transaction in flight, up to ImportBatchSize, counted for nothing
	// though their CPU did: a running-on row's import at 0.84 ms of CPU a
	// row against 0.21 alone.)
	const importID = "bench-logins-during-import"
	next := n // the next person to import
	// lastRow is the users table's last rowid. A read that fails (the
	// database busy under the import) is tried again: taken for 0 it made
	// an import rate of -70811 rows/s (make bench, 2026-12-06).
	var lastRowErr error
	lastRow := func() int64 {
		var id sql.NullInt64
		var err error
		for try := 0; try < 50; try++ {
			if err = db.QueryRowContext(ctx, "SELECT MAX(rowid) FROM users").Scan(&id); err == nil {
				return id.Int64
			}
			time.Sleep(20 * time.Millisecond)
		}
		if lastRowErr == nil {
			lastRowErr = fmt.Errorf("the users table's last row not read: %w", err)
		}
		return id.Int64
	}
	var (
		importWindow time.Duration
		importRows   int64
		importErr    error
		// The import's slices without logins (the paced rows' floor).
		soloWindow time.Duration
		soloRows   int64
	)
	stopTrace, err := startTrace(o.trace)
	if err != nil {
		return err
	}
	defer stopTrace()
	var importing func(st *stepTimes, run func(w, d time.Duration) *Result, rows *int64, window *time.Duration) Measure
	// withImport runs the logins of run (closed-loop or paced) during an
	// import, timing their store calls into st.
	withImport := func(st *stepTimes, run func(w, d time.Duration) *Result) Measure {
		return importing(st, run, &importRows, &importWindow)
	}
	importing = func(st *stepTimes, run func(w, d time.Duration) *Result, rows *int64, window *time.Duration) Measure {
		return func(w, d time.Duration) *Result {
			steps.cur.Store(st)
			defer steps.cur.Store(nil)
			cpu0, wall0 := cpuTime(), time.Now()
			defer func() {
				st.count("process CPU ms", (cpuTime() - cpu0).Milliseconds())
				st.count("slice ms", time.Since(wall0).Milliseconds())
			}()
			ictx, stop := context.WithCancel(ctx)
			defer stop()
			t0, r0 := time.Now(), lastRow()
			done := make(chan error, 1)
			var ending atomic.Bool
			go func() {
				i := next
				_, err := svc.Import(ictx, identity.ImportOptions{Kind: "users", ImportID: importID}, func() (*identity.ImportRow, bool, error) {
					if ending.Load() {
						return nil, false, nil
					}
					p := i
					i++
					return &identity.ImportRow{Row: p - n + 2, Fields: map[string]string{
						"login_name": genLogin(p), "display_name": genDisplay(p), "org_code": genL2ID(p % genL2),
						"email": genLogin(p) + "@example.com", "password_hash": sshaExample,
						"app_type": "OA", "app_code": "gen", "app_account": genLinkAcct(p)}}, true, nil
				})
				done <- err
			}()
			res := run(w, d)
			ending.Store(true)
			// The same logins go on, in short runs not counted, until
			// the import has written what it was handed.
			more, moreDone := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(moreDone)
				for {
					select {
					case <-more:
						return
					default:
					}
					_ = run(0, 100*time.Millisecond)
				}
			}()
			var err error
			select {
			case err = <-done:
			case <-ctx.Done():
				stop()
				err = <-done
			}
			ended := time.Now()
			close(more)
			<-moreDone
			got := lastRow() - r0 // the people written: the first ones of the rows handed
			// The row source ends only when told: an import that ends
			// with an error, or before, has failed.
			switch {
			case importErr != nil || ctx.Err() != nil:
			case err != nil:
				importErr = fmt.Errorf("the import failed in its slice: %w", err)
			case lastRowErr != nil:
				importErr = lastRowErr
			}
			*window += ended.Sub(t0)
			*rows += got
			next += int(got)
			return res
		}
	}
	alone := func(st *stepTimes, run func(w, d time.Duration) *Result) Measure {
		return func(w, d time.Duration) *Result {
			steps.cur.Store(st)
			defer steps.cur.Store(nil)
			cpu0, wall0 := cpuTime(), time.Now()
			defer func() {
				st.count("process CPU ms", (cpuTime() - cpu0).Milliseconds())
				st.count("slice ms", time.Since(wall0).Milliseconds())
			}()
			return run(w, d)
		}
	}
	closed := func(w, d time.Duration) *Result { return ClosedLoop(ctx, o.authConc, w, d, login) }
	dur := o.importLoginsDur
	fmt.Fprintf(stderr, "uias bench scale: logins with and without an import (%s each)\n", dur)
	withSteps, aloneSteps := &stepTimes{}, &stepTimes{}
	res := Interleave(ctx, o.slices, o.warmup, dur, withImport(withSteps, closed), alone(aloneSteps, closed))
	if importErr != nil {
		return fmt.Errorf("logins during an import: the import: %w", importErr)
	}
	with, without := res[0], res[1]
	qps := &scaleRow{name: "logins during an import (logins/s)",
		what: fmt.Sprintf("%d closed-loop callers of identity.Service.Authenticate (%d imported people; each success reads the login gate and writes it once), in slices with vs without an import of further people into the same store (the import gives way to logins: while they wait for a hash worker it pauses after each chunk, writing %.0f%% of the time)", o.authConc, k, 100*svc.ImportLoginShare()),
		ours: with.QPS(), floor: without.QPS(), perSec: true, goal: "≥ 0.50×", hasGoal: true}
	qps.pass = qps.floor > 0 && qps.ours/qps.floor >= 0.5
	qps.note = fmt.Sprintf("p99 %s vs %s; a login's gate write p99 %s vs %s; %d logins failed, %d refused for load during the import (%d, %d without)",
		ms(with.P(0.99)), ms(without.P(0.99)), ms(withSteps.p("gate write", 0.99)), ms(aloneSteps.p("gate write", 0.99)),
		with.Failed, with.Exhausted, without.Failed, without.Exhausted)
	for what, x := range map[string]*Result{"during the import": with, "without": without} {
		if x.Failed > 0 {
			qps.errs = append(qps.errs, fmt.Sprintf("%s: %d logins failed, first: %v", what, x.Failed, x.FirstErr))
		}
	}
	fmt.Fprintf(stderr, "  steps during the import: %s\n  steps without: %s\n", withSteps.summary(), aloneSteps.summary())
	fmt.Fprintf(stderr, "  logins: %.1f/s during the import, %.1f/s without\n", qps.ours, qps.floor)

	// The import's rate during the slices of each kind of logins.
	var imps []*scaleRow
	// The floor is the import in slices of its own without logins,
	// interleaved with the others (the same store size, the same restart
	// at each slice), when measured; else the import row alone (from an
	// empty store, in one go).
	importRow := func(during string) {
		r := &scaleRow{name: "import while logins continue (rows/s), " + during,
			what: "the import of the slices with " + during + " (people written per second of its slices: each slice resumes the import and ends its rows at its end, the logins going on until it has written them), vs the import row alone",
			ours: float64(importRows) / importWindow.Seconds(), perSec: true}
		if ir := rep.importRate; ir > 0 {
			r.floor = ir
		}
		r.note = fmt.Sprintf("%d written in %s", importRows, importWindow.Round(time.Second))
		if soloWindow > 0 {
			r.what = "the import of the slices with " + during + " (people written per second of its slices: each slice resumes the import and ends its rows at its end, the logins going on until it has written them), vs the same import in slices without logins interleaved with them"
			r.floor = float64(soloRows) / soloWindow.Seconds()
			r.note += fmt.Sprintf("; without logins %d in %s; the import row alone %.0f/s", soloRows, soloWindow.Round(time.Second), rep.importRate)
			fmt.Fprintf(stderr, "  import %.0f rows/s in slices without logins\n", r.floor)
		}
		fmt.Fprintf(stderr, "  import %.0f rows/s with %s\n", r.ours, during)
		imps = append(imps, r)
		importRows, importWindow, soloRows, soloWindow = 0, 0, 0, 0
	}
	importRow("closed-loop logins")
	rep.rows = append(rep.rows, qps)

	// The same at a pace: half (then a fifth of) the rate the closed loop
	// reached without the import, open-loop (latency from each call's
	// scheduled start). At a fifth the logins seldom wait for a hash
	// worker, and the import should run near its speed alone.
	loginCPU := map[float64]float64{} // the paced logins' CPU-seconds per second without the import, by share
	for _, pace := range []struct {
		share float64
		what  string
	}{{0.5, "half"}, {0.2, "a fifth of"}} {
		rate := without.QPS() * pace.share
		if rate <= 0 {
			break
		}
		fmt.Fprintf(stderr, "uias bench scale: logins at %.1f/s with and without an import (%s each)\n", rate, dur)
		open := func(w, d time.Duration) *Result { return OpenLoop(ctx, rate, w, d, login) }
		idle := func(w, d time.Duration) *Result {
			t := time.NewTimer(w + d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			return &Result{Window: d}
		}
		pWithSteps, pAloneSteps, soloSteps := &stepTimes{}, &stepTimes{}, &stepTimes{}
		pres := Interleave(ctx, o.slices, o.warmup, dur, withImport(pWithSteps, open), alone(pAloneSteps, open),
			importing(soloSteps, idle, &soloRows, &soloWindow))
		if importErr != nil {
			return fmt.Errorf("logins during an import: the import: %w", importErr)
		}
		pw, pa := pres[0], pres[1]
		if pa.wall > 0 {
			loginCPU[pace.share] = pa.cpu.Seconds() / pa.wall.Seconds()
		}
		paced := &scaleRow{name: fmt.Sprintf("paced logins (%.0f%%) during an import, p99", 100*pace.share),
			what: fmt.Sprintf("open-loop Authenticate at %.1f/s (%s the closed loop's rate without the import above), in slices with vs without the import", rate, pace.what),
			ours: pw.P(0.99).Seconds(), floor: pa.P(0.99).Seconds(), goal: "≤ floor + 300 ms", hasGoal: true}
		paced.pass = pa.Calls() > 0 && pw.Calls() > 0 && pw.P(0.99) <= pa.P(0.99)+300*time.Millisecond
		paced.note = fmt.Sprintf("p50 %s vs %s; %.1f vs %.1f logins/s answered; a login's gate write p99 %s vs %s; %d failed, %d refused for load (%d, %d without)",
			ms(pw.P(0.5)), ms(pa.P(0.5)), pw.QPS(), pa.QPS(), ms(pWithSteps.p("gate write", 0.99)), ms(pAloneSteps.p("gate write", 0.99)),
			pw.Failed, pw.Exhausted, pa.Failed, pa.Exhausted)
		for what, x := range map[string]*Result{"during the import": pw, "without": pa} {
			if x.Failed > 0 {
				paced.errs = append(paced.errs, fmt.Sprintf("%s: %d logins failed, first: %v", what, x.Failed, x.FirstErr))
			}
		}
		fmt.Fprintf(stderr, "  paced steps during the import: %s\n  paced steps without: %s\n  import without logins: %s\n", pWithSteps.summary(), pAloneSteps.summary(), soloSteps.summary())
		fmt.Fprintf(stderr, "  paced logins p99: %s during the import, %s without (p50 %s vs %s)\n", ms(pw.P(0.99)), ms(pa.P(0.99)), ms(pw.P(0.5)), ms(pa.P(0.5)))
		importRow(fmt.Sprintf("paced logins (%.0f%%)", 100*pace.share))
		rep.rows = append(rep.rows, paced)
	}
	rep.rows = append(rep.rows, imps...)

	// The goal's condition: one import running on (not stopped and
	// resumed each slice: each restart begins with a cold page cache and
	// an empty pipeline) while paced logins continue, against the same
	// import running on without logins, alternately: alone, with logins
	// at 20 % and 50 % of the closed loop's rate, alone again (the floor:
	// the mean of the two).
	long := 2 * dur
	fmt.Fprintf(stderr, "uias bench scale: the import running on for %s alone, with paced logins (20%%, 50%%), alone\n", long)
	var aloneRows int64
	var aloneWindow, aloneCPU time.Duration
	// runOn returns the import's rows/s and, with logins, their results
	// and the process's CPU time and wall time.
	runOn := func(st *stepTimes, rate float64) (float64, *Result, time.Duration, time.Duration, int64) {
		var rows int64
		var window time.Duration
		run := func(w, d time.Duration) *Result {
			if rate <= 0 {
				t := time.NewTimer(w + d)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				return &Result{Window: d}
			}
			return OpenLoop(ctx, rate, w, d, login)
		}
		stop := o.profileRunningOn(rate)
		c0 := cpuTime()
		res := importing(st, run, &rows, &window)(0, long)
		cpu := cpuTime() - c0
		stop()
		if rate <= 0 {
			aloneRows, aloneWindow, aloneCPU = aloneRows+rows, aloneWindow+window, aloneCPU+cpu
		}
		return float64(rows) / window.Seconds(), res, cpu, window, rows
	}
	type onRun struct {
		share float64
		rate  float64
		res   *Result
		st    *stepTimes
		cpu   time.Duration
		wall  time.Duration
		rows  int64
	}
	var ons []onRun
	a1, _, _, _, _ := runOn(&stepTimes{}, 0)
	for _, share := range []float64{0.2, 0.5} {
		st := &stepTimes{}
		rate, res, cpu, wall, rows := runOn(st, without.QPS()*share)
		ons = append(ons, onRun{share: share, rate: rate, res: res, st: st, cpu: cpu, wall: wall, rows: rows})
	}
	a2, _, _, _, _ := runOn(&stepTimes{}, 0)
	if importErr != nil {
		return fmt.Errorf("logins during an import: the import: %w", importErr)
	}
	floor := float64(aloneRows) / aloneWindow.Seconds()
	fmt.Fprintf(stderr, "  import running on alone: %.0f then %.0f rows/s\n", a1, a2)
	for _, on := range ons {
		r := &scaleRow{name: fmt.Sprintf("import running on while paced logins (%.0f%%) continue (rows/s)", 100*on.share),
			what: fmt.Sprintf("one import running for %s (not resumed per slice; its rows end then, and the logins go on until it has written them) while open-loop Authenticate runs at %.0f%% of the closed loop's rate without the import, vs the same import running for %s alone, before and after (mean)", long, 100*on.share, long),
			ours: on.rate, floor: floor, perSec: true, goal: "≥ 3333/s (1 M ≤ 5 min)", hasGoal: true}
		r.pass = r.ours >= 1_000_000/300.0
		// The import's CPU per row: the process's CPU less what the same
		// paced logins took without the import (per second), against the
		// import's alone (the same store size, the same run).
		perRow := func(cpu time.Duration, rows int64) float64 {
			if rows <= 0 {
				return 0
			}
			return 1e3 * cpu.Seconds() / float64(rows)
		}
		impCPU := on.cpu - time.Duration(loginCPU[on.share]*float64(on.wall))
		r.note = fmt.Sprintf("alone %.0f and %.0f rows/s; the import's CPU %.3f ms a row (the process's less the same logins' without it) vs %.3f alone; the process at %.0f%% of one CPU; logins p99 %s (p50 %s), %d answered, %d failed, %d refused for load; a login's gate write p99 %s",
			a1, a2, perRow(impCPU, on.rows), perRow(aloneCPU, aloneRows), 100*on.cpu.Seconds()/on.wall.Seconds(),
			ms(on.res.P(0.99)), ms(on.res.P(0.5)), on.res.OK, on.res.Failed, on.res.Exhausted, ms(on.st.p("gate write", 0.99)))
		if on.res.Failed > 0 {
			r.errs = append(r.errs, fmt.Sprintf("%d logins failed, first: %v", on.res.Failed, on.res.FirstErr))
		}
		fmt.Fprintf(stderr, "  import running on with paced logins (%.0f%%): %.0f rows/s (%.2f× of alone); %s; steps: %s\n",
			100*on.share, on.rate, on.rate/floor, r.note, on.st.summary())
		rep.rows = append(rep.rows, r)
	}
	return nil
}

// profileRunningOn starts, with --cpuprofile, a CPU profile of one running-on
// phase (FILE.on-alone, FILE.on-17 for logins at 17/s, ...; a later phase
// of the same name overwrites it) and returns its stop.
func (o *scaleOptions) profileRunningOn(rate float64) func() {
	if o.cpuprofile == "" {
		return func() {}
	}
	name := o.cpuprofile + ".on-alone"
	if rate > 0 {
		name = fmt.Sprintf("%s.on-%.0f", o.cpuprofile, rate)
	}
	pf, err := os.Create(name)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		_ = pf.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = pf.Close()
	}
}
