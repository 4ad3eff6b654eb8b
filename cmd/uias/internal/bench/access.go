package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// The access phase: what the access records of API calls (the OnCall hook
// of every gRPC server, pkg/module; in this process the audit component
// stores them too) cost the hot paths: Authenticate and a CAS ticket issue
// + validate over gRPC, each measured with the records on and off in the
// same slices (the records are switched for the whole process while a
// measure runs; what was queued before keeps being published into the
// next slice's warm-up).

type accessRound struct {
	authOn, authOff, pairOn, pairOff *Result
}

// accessSwitched runs m with the process's access records on or off.
func (e *env) accessSwitched(on bool, m Measure) Measure {
	return func(w, d time.Duration) *Result {
		e.app.SetAccessLog(on)
		defer e.app.SetAccessLog(true)
		return m(w, d)
	}
}

// measureAccess runs the access phase of one round.
func (e *env) measureAccess(ctx context.Context, o *options, log io.Writer,
	closed func(int, CallFunc) Measure) (*accessRound, error) {
	tb, err := e.ticketBench(ctx)
	if err != nil {
		return nil, err
	}
	pair := tb.pair(tb.validateGRPC)
	res := Interleave(ctx, o.slices, o.warmup, o.duration,
		e.accessSwitched(true, closed(o.authConc, e.callAuthenticate)), e.accessSwitched(false, closed(o.authConc, e.callAuthenticate)),
		e.accessSwitched(true, closed(o.concurrency, pair)), e.accessSwitched(false, closed(o.concurrency, pair)))
	r := &accessRound{authOn: res[0], authOff: res[1], pairOn: res[2], pairOff: res[3]}
	fmt.Fprintf(log, "  access records: Authenticate on %s, off %s; ticket issue+validate gRPC on %s, off %s\n",
		summary(r.authOn), summary(r.authOff), summary(r.pairOn), summary(r.pairOff))
	return r, nil
}

// accessRows are the report rows of the access phase.
func accessRows(o *options, rounds []*round) []*row {
	auth := &row{name: "Access records: Authenticate (gRPC)", u: perSec,
		oursLabel: "records on", floorLabel: "records off",
		explain: fmt.Sprintf("Saturated password Authenticate, %d closed-loop callers, with the access record of every API call "+
			"(queued on the call, encoded and published to AUDIT in batches off the call's path, stored by the audit "+
			"component of the same process) against the same with the records switched off, in the same slices. "+
			"No goal: the ratio is the cost of the records (1.00× = none).", o.authConc)}
	pair := &row{name: "Access records: CAS ticket issue + validate (gRPC)", u: perSec,
		oursLabel: "records on", floorLabel: "records off",
		explain: fmt.Sprintf("The ticket phase's gRPC pairs (%d closed-loop callers) with the access records on against off, "+
			"in the same slices. No goal: the ratio is the cost of the records (1.00× = none).", o.concurrency)}
	for _, r := range rounds {
		a := r.access
		if a == nil {
			continue
		}
		auth.add(a.authOn.QPS(), a.authOff.QPS())
		pair.add(a.pairOn.QPS(), a.pairOff.QPS())
		for _, f := range []struct {
			rw   *row
			what string
			res  *Result
		}{{auth, "records on", a.authOn}, {auth, "records off", a.authOff}, {pair, "records on", a.pairOn}, {pair, "records off", a.pairOff}} {
			if f.res.Failed > 0 {
				f.rw.errs = append(f.rw.errs, fmt.Sprintf("%s: %d failed calls, first: %v", f.what, f.res.Failed, f.res.FirstErr))
			}
		}
	}
	var out []*row
	for _, rw := range []*row{auth, pair} {
		if len(rw.ours) > 0 {
			out = append(out, rw)
		}
	}
	return out
}
