package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
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
func scaleLoginsDuringImport(ctx context.Context, o *scaleOptions, rep *scaleReport, db *store.DB, st *sqlstore.Store, svc *identity.Service,
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
	// import id) at the first person not written yet and is stopped (its
	// context cancelled) when the slice ends, so that no write of it runs
	// into the slices without.
	const importID = "bench-logins-during-import"
	next := n                 // the next person to import
	lastRow := func() int64 { // the users table's last rowid
		var id sql.NullInt64
		_ = db.QueryRowContext(ctx, "SELECT MAX(rowid) FROM users").Scan(&id)
		return id.Int64
	}
	var (
		importWindow time.Duration
		importRows   int64
		importErr    error
	)
	withImport := func(w, d time.Duration) *Result {
		ictx, stop := context.WithCancel(ctx)
		t0, r0 := time.Now(), lastRow()
		done := make(chan error, 1)
		go func() {
			i := next
			_, err := svc.Import(ictx, identity.ImportOptions{Kind: "users", ImportID: importID}, func() (*identity.ImportRow, bool, error) {
				p := i
				i++
				return &identity.ImportRow{Row: p - n + 2, Fields: map[string]string{
					"login_name": genLogin(p), "display_name": genDisplay(p), "org_code": genL2ID(p % genL2),
					"email": genLogin(p) + "@example.com", "password_hash": sshaExample,
					"app_type": "OA", "app_code": "gen", "app_account": genLinkAcct(p)}}, true, nil
			})
			done <- err
		}()
		res := ClosedLoop(ctx, o.authConc, w, d, login)
		stop()
		// The row source never ends: the import ends by the cancel (its
		// transaction in flight rolled back); any other end is a failure.
		switch err := <-done; {
		case importErr != nil:
		case err == nil:
			importErr = errors.New("the import ended before its slice did")
		case ictx.Err() == nil:
			importErr = fmt.Errorf("the import ended before its slice did: %w", err)
		}
		importWindow += time.Since(t0)
		got := lastRow() - r0 // the people written: the first ones of the rows handed
		importRows += got
		next += int(got)
		return res
	}
	alone := func(w, d time.Duration) *Result { return ClosedLoop(ctx, o.authConc, w, d, login) }
	dur := o.importLoginsDur
	fmt.Fprintf(stderr, "uias bench scale: logins with and without an import (%s each)\n", dur)
	res := Interleave(ctx, o.slices, o.warmup, dur, withImport, alone)
	if importErr != nil {
		return fmt.Errorf("logins during an import: the import: %w", importErr)
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
		what: "the import of the slices above (people written per second of its slices: each slice resumes the import and stops it at its end), vs the import row alone",
		ours: float64(importRows) / importWindow.Seconds(), perSec: true}
	if r := rep.importRate; r > 0 {
		imp.floor = r
	}
	imp.note = fmt.Sprintf("%d written in %s", importRows, importWindow.Round(time.Second))
	rep.rows = append(rep.rows, qps, imp)
	fmt.Fprintf(stderr, "  logins: %.1f/s during the import, %.1f/s without; import %.0f rows/s with logins\n", qps.ours, qps.floor, imp.ours)
	return nil
}
