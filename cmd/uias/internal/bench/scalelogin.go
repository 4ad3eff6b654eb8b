package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// The "logins during an import" rows of `uias bench scale` (issue 16: an
// import must not stop the logins). In the store the import row filled,
// closed-loop logins (identity.Service.Authenticate of imported people;
// each success writes the account's login gate) run in slices alternating
// with and without an import of further people, all in the same run. The
// import is one import (one import id) whose row source is paused during
// the slices without it: the batch in flight when a pause starts runs on
// into it (at most one chunk, about identity.ImportTxTarget, once a login
// waits).

// importGate pauses and resumes an import's row source.
type importGate struct {
	mu   sync.Mutex
	cond *sync.Cond
	open bool
	end  bool
	rows atomic.Int64 // rows handed to the import
}

func newImportGate() *importGate {
	g := &importGate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *importGate) set(open, end bool) {
	g.mu.Lock()
	g.open, g.end = open, end
	g.mu.Unlock()
	g.cond.Broadcast()
}

// wait blocks while the gate is shut; false once it is ended.
func (g *importGate) wait() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.open && !g.end {
		g.cond.Wait()
	}
	return !g.end
}

// scaleLoginsDuringImport adds the rows. n people (0..n-1, the import
// row's) are in st; the import adds people n, n+1, ...
func scaleLoginsDuringImport(ctx context.Context, o *scaleOptions, rep *scaleReport, st *sqlstore.Store, svc *identity.Service,
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

	gate := newImportGate()
	importDone := make(chan error, 1)
	var imported *identity.ImportReport
	go func() {
		next := n
		r, err := svc.Import(ctx, identity.ImportOptions{Kind: "users"}, func() (*identity.ImportRow, bool, error) {
			if !gate.wait() {
				return nil, false, nil
			}
			i := next
			next++
			gate.rows.Add(1)
			return &identity.ImportRow{Row: i - n + 2, Fields: map[string]string{
				"login_name": genLogin(i), "display_name": genDisplay(i), "org_code": genL2ID(i % genL2),
				"email": genLogin(i) + "@example.com", "password_hash": sshaExample,
				"app_type": "OA", "app_code": "gen", "app_account": genLinkAcct(i)}}, true, nil
		})
		imported = r
		importDone <- err
	}()
	var importWindow time.Duration
	var importRows int64
	withImport := func(w, d time.Duration) *Result {
		t0, r0 := time.Now(), gate.rows.Load()
		gate.set(true, false)
		res := ClosedLoop(ctx, o.authConc, w, d, login)
		gate.set(false, false)
		importWindow += time.Since(t0)
		importRows += gate.rows.Load() - r0
		return res
	}
	alone := func(w, d time.Duration) *Result { return ClosedLoop(ctx, o.authConc, w, d, login) }
	dur := o.importLoginsDur
	fmt.Fprintf(stderr, "uias bench scale: logins with and without an import (%s each)\n", dur)
	res := Interleave(ctx, o.slices, o.warmup, dur, withImport, alone)
	gate.set(false, true)
	if err := <-importDone; err != nil {
		return fmt.Errorf("logins during an import: the import: %w", err)
	}
	with, without := res[0], res[1]
	qps := &scaleRow{name: "logins during an import (logins/s)",
		what: fmt.Sprintf("%d closed-loop callers of identity.Service.Authenticate (%d imported people; each success writes the login gate), in slices with vs without an import of further people into the same store", o.authConc, k),
		ours: with.QPS(), floor: without.QPS(), perSec: true}
	qps.note = fmt.Sprintf("p99 %s vs %s; %d logins failed, %d refused for load during the import (%d, %d without)",
		ms(with.P(0.99)), ms(without.P(0.99)), with.Failed, with.Exhausted, without.Failed, without.Exhausted)
	for what, x := range map[string]*Result{"during the import": with, "without": without} {
		if x.Failed > 0 {
			qps.errs = append(qps.errs, fmt.Sprintf("%s: %d logins failed, first: %v", what, x.Failed, x.FirstErr))
		}
	}
	imp := &scaleRow{name: "import while logins continue (rows/s)",
		what: "the import of the slices above (rows handed to identity.Service.Import per second of its slices), vs the import row alone",
		ours: float64(importRows) / importWindow.Seconds(), perSec: true}
	if r := rep.importRate; r > 0 {
		imp.floor = r
	}
	if imported != nil {
		imp.note = fmt.Sprintf("%d written, %d failed", imported.Written, imported.Failed)
		if imported.Failed > 0 {
			imp.errs = append(imp.errs, fmt.Sprintf("%d rows failed, first: %+v", imported.Failed, imported.Errors[0]))
		}
	}
	rep.rows = append(rep.rows, qps, imp)
	fmt.Fprintf(stderr, "  logins: %.1f/s during the import, %.1f/s without; import %.0f rows/s with logins\n", qps.ours, qps.floor, imp.ours)
	return nil
}
