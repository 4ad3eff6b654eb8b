package bench

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// Outcome classifies one call.
type Outcome int

// Call outcomes.
const (
	OK        Outcome = iota // the call succeeded
	Exhausted                // refused for overload (gRPC RESOURCE_EXHAUSTED, HTTP 429)
	Failed                   // any other error
)

// CallFunc makes one call and classifies it.
type CallFunc func(ctx context.Context) (Outcome, error)

// Result is what one load phase measured. Only calls that completed inside
// the measurement window (after warm-up) count.
type Result struct {
	Window    time.Duration
	OK        int
	Exhausted int
	Failed    int
	FirstErr  error
	Lat       []time.Duration // latencies of OK calls, sorted
	ExhLat    []time.Duration // latencies of Exhausted calls, sorted

	cpu, wall time.Duration // process CPU time and wall time (Interleave)
}

// Cores is the average number of CPUs the process used (0 if unknown).
func (r *Result) Cores() float64 {
	if r.wall <= 0 {
		return 0
	}
	return r.cpu.Seconds() / r.wall.Seconds()
}

// Calls is the number of measured calls of any outcome.
func (r *Result) Calls() int { return r.OK + r.Exhausted + r.Failed }

// QPS is successful calls per second of the window.
func (r *Result) QPS() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK) / r.Window.Seconds()
}

// P returns the q-quantile (0..1) of successful-call latency.
func (r *Result) P(q float64) time.Duration { return Quantile(r.Lat, q) }

// ExhaustedFraction is the share of measured calls refused for overload.
func (r *Result) ExhaustedFraction() float64 {
	if r.Calls() == 0 {
		return 0
	}
	return float64(r.Exhausted) / float64(r.Calls())
}

// Quantile returns the q-quantile of sorted (nearest rank); 0 if empty.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// recorder collects the outcomes of one goroutine (no locking on the hot path).
type recorder struct {
	ok, exh, failed int
	firstErr        error
	lat, exhLat     []time.Duration
}

func (rc *recorder) add(o Outcome, err error, d time.Duration) {
	switch o {
	case OK:
		rc.ok++
		rc.lat = append(rc.lat, d)
	case Exhausted:
		rc.exh++
		rc.exhLat = append(rc.exhLat, d)
	default:
		rc.failed++
		if rc.firstErr == nil {
			rc.firstErr = err
		}
	}
}

func merge(window time.Duration, recs []*recorder) *Result {
	r := &Result{Window: window}
	for _, rc := range recs {
		r.tally(rc.ok, rc.exh, rc.failed, rc.firstErr, rc.lat, rc.exhLat)
	}
	r.sortLatencies()
	return r
}

// tally adds counts and latencies (unsorted) to r.
func (r *Result) tally(ok, exh, failed int, firstErr error, lat, exhLat []time.Duration) {
	r.OK += ok
	r.Exhausted += exh
	r.Failed += failed
	if r.FirstErr == nil {
		r.FirstErr = firstErr
	}
	r.Lat = append(r.Lat, lat...)
	r.ExhLat = append(r.ExhLat, exhLat...)
}

func (r *Result) sortLatencies() {
	slices.Sort(r.Lat)
	slices.Sort(r.ExhLat)
}

// callTimeout bounds every single call so a phase always ends.
const callTimeout = 30 * time.Second

func oneCall(ctx context.Context, call CallFunc) (Outcome, error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	o, err := call(cctx)
	if o == OK && err != nil {
		o = Failed
	}
	if ctx.Err() != nil && o != OK {
		return Failed, errors.Join(err, ctx.Err())
	}
	return o, err
}

// ClosedLoop runs conc callers, each calling again as soon as its previous
// call returns, for warmup+dur. Calls completing inside the last dur count.
func ClosedLoop(ctx context.Context, conc int, warmup, dur time.Duration, call CallFunc) *Result {
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+dur)
	recs := make([]*recorder, conc)
	var wg sync.WaitGroup
	for i := range recs {
		rc := &recorder{}
		recs[i] = rc
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(to) {
					return
				}
				o, err := oneCall(ctx, call)
				t1 := time.Now()
				if !t1.Before(from) && !t1.After(to) {
					rc.add(o, err, t1.Sub(t0))
				}
			}
		})
	}
	wg.Wait()
	return merge(dur, recs)
}

// OpenLoop starts calls at a fixed rate (evenly paced arrivals, each in its
// own goroutine, whether or not earlier calls have returned) for warmup+dur.
// Latency runs from the scheduled start, so a stalled pacer cannot hide
// queueing (no coordinated omission). Arrivals scheduled after warm-up count;
// the window is their span.
func OpenLoop(ctx context.Context, rate float64, warmup, dur time.Duration, call CallFunc) *Result {
	if rate <= 0 {
		return &Result{Window: dur}
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+dur)
	var (
		mu   sync.Mutex
		rc   = &recorder{}
		wg   sync.WaitGroup
		next = start
	)
	for ; next.Before(to) && ctx.Err() == nil; next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		measured := !next.Before(from)
		sched := next
		wg.Go(func() {
			o, err := oneCall(ctx, call)
			d := time.Since(sched)
			if measured {
				mu.Lock()
				rc.add(o, err, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return merge(dur, []*recorder{rc})
}

// Waves fires conc calls at once, waits for all of them, and repeats until
// dur has passed (at least one wave). No warm-up: overload is the point.
func Waves(ctx context.Context, conc int, dur time.Duration, call CallFunc) (*Result, int) {
	start := time.Now()
	recs := make([]*recorder, conc)
	for i := range recs {
		recs[i] = &recorder{}
	}
	waves := 0
	for waves == 0 || (time.Since(start) < dur && ctx.Err() == nil) {
		waves++
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for _, rc := range recs {
			wg.Go(func() {
				<-gate
				t0 := time.Now()
				o, err := oneCall(ctx, call)
				rc.add(o, err, time.Since(t0))
			})
		}
		close(gate)
		wg.Wait()
	}
	return merge(time.Since(start), recs), waves
}

// Measure runs one slice of a phase: warm up, then measure for dur.
type Measure func(warmup, dur time.Duration) *Result

// sliceWarmup is the warm-up of every slice after the first of a phase.
const sliceWarmup = 250 * time.Millisecond

// Interleave runs the measures alternately in n slices (order reversed
// every other slice: A B C, C B A, ...) so that a disturbance from outside
// (another process, frequency changes) hits all of them alike, and returns
// one merged result per measure, each with dur of measurement in total.
// The first slice of each measure warms up for warmup, later ones for
// min(warmup, 250ms).
func Interleave(ctx context.Context, n int, warmup, dur time.Duration, ms ...Measure) []*Result {
	n = max(1, n)
	out := make([]*Result, len(ms))
	for s := 0; s < n && ctx.Err() == nil; s++ {
		w := warmup
		if s > 0 {
			w = min(warmup, sliceWarmup)
		}
		d := dur / time.Duration(n)
		if s == n-1 {
			d = dur - d*time.Duration(n-1)
		}
		for k := range ms {
			i := k
			if s%2 == 1 {
				i = len(ms) - 1 - k
			}
			c0, t0 := cpuTime(), time.Now()
			res := ms[i](w, d)
			res.cpu, res.wall = cpuTime()-c0, time.Since(t0)
			out[i] = out[i].add(res)
		}
	}
	return out
}

// add merges b into r (r may be nil) and returns the result.
func (r *Result) add(b *Result) *Result {
	if r == nil {
		return b
	}
	r.Window += b.Window
	r.tally(b.OK, b.Exhausted, b.Failed, b.FirstErr, b.Lat, b.ExhLat)
	r.cpu += b.cpu
	r.wall += b.wall
	r.sortLatencies()
	return r
}

// Median returns the median of xs (mean of the middle two when even); 0 if empty.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
