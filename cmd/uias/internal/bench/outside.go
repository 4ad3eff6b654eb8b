package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/audit"
	auditcomponent "github.com/uias/uias/services/audit/component"
	"github.com/uias/uias/services/audit/ingest"
)

// Ingest outside the measurement. As deployed, the audit component stores
// the access records in pods of its own, on other nodes; in the benchmark's
// one process it competes with the serving path for the same CPUs. The
// goal rows of the cheap RPCs (GetUser, authz Check) are therefore measured
// twice, in interleaves of their own: all in one (the audit component
// storing the records as they come), and with every record made and
// published to AUDIT as always but the audit component's consumer paused
// for the whole interleave (floors included) and draining after it; the
// benchmark then checks that every recorded call's record was stored
// (outsideRun.err otherwise).

// outsideExplain ends the explanation of a goal row measured with the
// records stored outside the measurement; whose names the calls whose
// records the benchmark checks ("Check call's").
func outsideExplain(whose string) string {
	return " The access records are made and published to AUDIT as always, but the audit component's consumer " +
		"is paused for the whole interleave (floors included) and stores them after it, as audit runs in pods of " +
		"its own when deployed; the benchmark checks that every " + whose + " record arrived (an error otherwise). " +
		"The note says how many waited and how long storing them took."
}

// allInOneExplain ends the explanation of the all-in-one row beside such
// a goal row.
const allInOneExplain = " All in one: the audit component of the same process stores the access records in the measured " +
	"slices, on the same CPUs (and, lagging behind, in the floor's slices after them, which lowers the floor " +
	"too). No goal: the goal is judged on the row with the records stored outside the " +
	"measurement (the parameters say why); this one is reported beside it."

// outsidePair makes the goal row of a throughput measured with the access
// records stored outside the measurement (what + ", records stored
// outside": at least target, explained by base + outside) and the
// all-in-one row reported beside it (what + ", all in one": no goal,
// base + aio), both against the echo gRPC throughput of their slices.
func outsidePair(what, ours string, target float64, base, outside, aio string) (goal, allInOne *row) {
	const floor = "echo gRPC (health Check)"
	goal = &row{name: what + ", records stored outside", u: perSec, atLeast: true, target: target,
		oursLabel: ours, floorLabel: floor, explain: base + outside}
	allInOne = &row{name: what + ", all in one", u: perSec,
		oursLabel: ours, floorLabel: floor, explain: base + aio}
	return goal, allInOne
}

// outsideP99Pair is outsidePair for the p99 latency of the same phases,
// against the echo gRPC p99 (the goal: at most target).
func outsideP99Pair(what, ours string, target float64) (goal, allInOne *row) {
	const floor = "echo gRPC p99"
	goal = &row{name: what + ", records stored outside", u: dur, target: target,
		oursLabel: ours, floorLabel: floor, explain: "p99 latency of the same two phases."}
	allInOne = &row{name: what + ", all in one", u: dur,
		oursLabel: ours, floorLabel: floor, explain: "p99 latency of the same two phases (all in one; no goal)."}
	return goal, allInOne
}

// outsideMethod is the method text of the report's parameters.
const outsideMethod = "access records (one per API call, published to AUDIT): the goal rows of GetUser, authz " +
	"Check and the CAS ticket pairs are judged with the records made and published as always but stored outside the measurement (the audit " +
	"component's consumer paused during the whole interleave, its floors included, and draining after it, the " +
	"benchmark checking that every call's record arrived), as audit runs in pods of its own when deployed; the " +
	"all-in-one figures (the audit component of the same process storing the records in the measured slices, on " +
	"the same 2 CPUs) are reported beside them, without a goal"

// outsideRun is what an interleave measured with the ingest paused left
// the audit component.
type outsideRun struct {
	calls   int64         // recorded calls made (warm-ups included)
	stored  int64         // their records, stored after the interleave
	drain   time.Duration // how long the audit component took to store what waited
	waiting uint64        // AUDIT messages waiting when the interleave ended
	err     error         // records missing (or not checked)
}

func (r *outsideRun) note() string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%d records (%d AUDIT messages) waited; stored in %s after", r.stored, r.waiting, ms(r.drain))
}

// withIngestOutside runs measure with the audit component's consumer
// paused, then lets it store what waits and checks that the records of all
// the calls made through count (those whose API is one of apis) arrived.
func (e *env) withIngestOutside(ctx context.Context, apis []string,
	measure func(count func(CallFunc) CallFunc) []*Result) ([]*Result, *outsideRun, error) {
	h, ok := e.app.Value(auditcomponent.Name).(*auditcomponent.Handle)
	if !ok {
		return nil, nil, errors.New("the audit component does not run in the benchmark process")
	}
	nc, err := e.app.ConnectNATS()
	if err != nil {
		return nil, nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	cons, err := js.Consumer(ctx, events.StreamAudit, ingest.Durable)
	if err != nil {
		return nil, nil, fmt.Errorf("the audit consumer: %w", err)
	}
	// What earlier phases left is stored first: their records may still
	// wait in the publisher (it sends every 100 ms) when the consumer has
	// nothing pending, so the log's size must also stay put for a few of
	// its intervals (a record of an earlier phase's GetUser stored after
	// from was counted as one of this phase's: more records than calls).
	from, err := settledSize(ctx, cons, h.Store.Size)
	if err != nil {
		return nil, nil, err
	}
	var calls atomic.Int64
	count := func(c CallFunc) CallFunc {
		return func(ctx context.Context) (Outcome, error) { calls.Add(1); return c(ctx) }
	}
	h.Ingester.Pause()
	res := measure(count)
	run := &outsideRun{calls: calls.Load()}
	if info, err := cons.Info(ctx); err == nil {
		run.waiting = info.NumPending
	}
	h.Ingester.Resume()
	t0 := time.Now()
	want := map[string]bool{}
	for _, a := range apis {
		want[a] = true
	}
	for {
		if _, err := waitIngested(ctx, cons, 3*time.Minute); err != nil {
			return res, run, err
		}
		run.stored = 0
		err := h.Store.ScanRecords(ctx, from, func(r *audit.Record) error {
			if want[r.API] {
				run.stored++
			}
			return nil
		})
		if err != nil {
			return res, run, err
		}
		run.drain = time.Since(t0)
		if run.stored >= run.calls {
			break
		}
		if run.drain > 3*time.Minute {
			run.err = fmt.Errorf("ingest outside the measurement: %d records stored for %d calls made", run.stored, run.calls)
			break
		}
		time.Sleep(100 * time.Millisecond) // the publisher sends every 100 ms
	}
	if run.stored > run.calls {
		run.err = fmt.Errorf("ingest outside the measurement: %d records stored for %d calls made", run.stored, run.calls)
	}
	return res, run, nil
}

// settledSize waits until the audit consumer has nothing pending and the
// log's size (size) stayed the same for 300 ms (three of the publisher's
// intervals), and returns that size.
func settledSize(ctx context.Context, cons jetstream.Consumer, size func(context.Context) (int64, error)) (int64, error) {
	deadline := time.Now().Add(3 * time.Minute)
	last, err := size(ctx)
	if err != nil {
		return 0, err
	}
	for {
		if _, err := waitIngested(ctx, cons, time.Until(deadline)); err != nil {
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		now, err := size(ctx)
		if err != nil {
			return 0, err
		}
		if now == last {
			return now, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the audit log kept growing for 3 minutes before the measurement (%d records)", now)
		}
		last = now
	}
}

// waitIngested waits until the audit consumer has nothing pending or
// unacknowledged.
func waitIngested(ctx context.Context, cons jetstream.Consumer, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return time.Since(t0), nil
		}
		if time.Since(t0) > limit {
			if err != nil {
				return 0, fmt.Errorf("the audit component has not stored the AUDIT stream in %s: %w", limit, err)
			}
			return 0, fmt.Errorf("the audit component has not stored the AUDIT stream in %s", limit)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// apiGetUser is the API of GetUser's access records.
const apiGetUser = "uias.identity.v1.AdminService/GetUser"

// getUserOutside measures echo, GetUser over gRPC and (phase rest) over
// REST with the access records stored outside the measurement.
func (e *env) getUserOutside(ctx context.Context, o *options, r *round, closed func(int, CallFunc) Measure, log io.Writer) error {
	res, run, err := e.withIngestOutside(ctx, []string{apiGetUser}, func(count func(CallFunc) CallFunc) []*Result {
		ms := []Measure{closed(o.concurrency, e.callEcho), closed(o.concurrency, count(e.callGetUser)),
			closed(o.concurrency, e.callGetUserBare)}
		if o.has("rest") {
			ms = append(ms, closed(o.concurrency, count(e.callGetUserREST)))
		}
		return Interleave(ctx, o.slices, o.warmup, o.duration, ms...)
	})
	if err != nil {
		return err
	}
	r.outEcho, r.outGetUser, r.outBare, r.outGet = res[0], res[1], res[2], run
	fmt.Fprintf(log, "  records stored outside the measurement: echo %s; GetUser gRPC %s; GetUser bare gRPC %s",
		summary(r.outEcho), summary(r.outGetUser), summary(r.outBare))
	if len(res) > 3 {
		r.outGetUserHT = res[3]
		fmt.Fprintf(log, "; GetUser REST %s", summary(r.outGetUserHT))
	}
	fmt.Fprintf(log, "; %s\n", run.note())
	if run.err != nil {
		fmt.Fprintf(log, "  %v\n", run.err)
	}
	return nil
}
