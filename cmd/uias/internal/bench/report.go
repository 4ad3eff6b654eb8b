package bench

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/sched"
)

type unit int

const (
	perSec    unit = iota // calls or hashes per second
	dur                   // seconds
	mebibytes             // bytes
)

// row is one line of the table: our figure, its floor, their ratio (all
// medians over rounds) and the goal for the ratio.
type row struct {
	name         string
	u            unit
	ours, floor  []float64
	ratios       []float64
	atLeast      bool    // goal is ratio >= target (else <=)
	target       float64 // 0: no goal
	note         string  // extra figures, shown after ours
	errs         []string
	explain      string
	oursLabel    string
	floorLabel   string
	missingFloor bool
}

func (r *row) add(ours, floor float64) {
	r.ours = append(r.ours, ours)
	r.floor = append(r.floor, floor)
	if floor > 0 {
		r.ratios = append(r.ratios, ours/floor)
	} else {
		r.missingFloor = true
	}
}

func (r *row) ratio() (float64, bool) {
	if len(r.ratios) == 0 {
		return 0, false
	}
	return Median(r.ratios), true
}

func (r *row) goal() string {
	if r.target == 0 {
		return "—"
	}
	if r.atLeast {
		return fmt.Sprintf("≥ %.2f×", r.target)
	}
	return fmt.Sprintf("≤ %.2f×", r.target)
}

// verdict is PASS, FAIL, ERROR (calls failed), or "—" (no goal / not run).
func (r *row) verdict() string {
	if len(r.errs) > 0 {
		return "ERROR"
	}
	x, ok := r.ratio()
	if r.target == 0 || !ok {
		return "—"
	}
	if (r.atLeast && x >= r.target) || (!r.atLeast && x <= r.target) {
		return "PASS"
	}
	return "FAIL"
}

func format(u unit, v float64) string {
	switch u {
	case perSec:
		if v >= 100 {
			return fmt.Sprintf("%.0f/s", v)
		}
		return fmt.Sprintf("%.1f/s", v)
	case dur:
		return ms(time.Duration(v * float64(time.Second)))
	case mebibytes:
		return fmt.Sprintf("%.0f MiB", v/(1<<20))
	}
	return fmt.Sprint(v)
}

type report struct {
	o       *options
	m       machine
	started time.Time
	took    time.Duration
	rows    []*row
	// schedBatch: every thread of the process ran SCHED_BATCH at the end.
	schedBatch bool
}

// allBatch reports whether every thread of this process is SCHED_BATCH.
func allBatch() bool {
	pol, err := sched.Policies()
	if err != nil || len(pol) == 0 {
		return false
	}
	for _, p := range pol {
		if p != "batch" {
			return false
		}
	}
	return true
}

func buildReport(o *options, rounds []*round, started time.Time, took time.Duration) *report {
	w := o.env.workers()
	p := o.env.Argon2
	rep := &report{o: o, m: thisMachine(), started: started, took: took, schedBatch: allBatch()}
	failed := func(rw *row, what string, res *Result) {
		if res != nil && res.Failed > 0 {
			rw.errs = append(rw.errs, fmt.Sprintf("%s: %d failed calls, first: %v", what, res.Failed, res.FirstErr))
		}
	}

	authQPS := &row{name: "Authenticate throughput, saturated (gRPC)", u: perSec, atLeast: true, target: 0.9,
		oursLabel:  fmt.Sprintf("%d closed-loop callers", o.authConc),
		floorLabel: fmt.Sprintf("raw argon2id in %d goroutines", runtime.GOMAXPROCS(0)),
		explain: fmt.Sprintf("Successful password Authenticate calls per second over gRPC with %d closed-loop callers "+
			"(so that while a finished call writes its audit event and its answer travels back, "+
			"others wait in the queue and none of the %d hash workers idles; "+
			"no more than workers + queue = %d so none is refused), "+
			"against bare RawArgon2id hashes per second with the same parameters in GOMAXPROCS goroutines. "+
			"The gap is everything besides the hash: gRPC, interceptors, app credential check, the SQLite "+
			"reads of link and user, the audit-event write and its relay to NATS. The note gives the parallel "+
			"speed-up of bare argon2id (hashes/s in GOMAXPROCS goroutines × one hash time): well below the CPU "+
			"count means the CPUs are shared (SMT siblings, other load) or memory-bound, which also lengthens "+
			"every hash under concurrency (row 2).", o.authConc, w, w+o.env.queue())}
	if rep.schedBatch {
		authQPS.explain += " The process runs under SCHED_BATCH (identity.sched_policy, docs/operators.md): that work " +
			"takes a CPU when a hash's time slice ends instead of preempting a hash each time it wakes, which " +
			"measured 0.79–0.85× with the default policy and 0.86–0.94× with SCHED_BATCH on the same machine."
	}
	// What rows 4 and 5 depend on differs between the two argon2id builds.
	refusalWaits := "While every CPU runs a pure-Go hash, each hop of the call (client write, server read, " +
		"server write, client read; the load generator shares the process) waits for the Go scheduler to preempt " +
		"a hashing goroutine (10 ms quantum) and the network is polled about every 10 ms. With one hash worker " +
		"on 2 CPUs the same refusals measured 13 ms p99; the libargon2 build (docs/operators.md) avoids the wait."
	heapGrows := "The pure-Go build allocates each hash's memory afresh, so the goal allows the GC's headroom " +
		"(GOGC=100 lets the heap reach about twice the live heap) over the bounded live set."
	if crypto.Argon2Cgo {
		refusalWaits = "Hashes run in C (libargon2) and hold no Go scheduler P while they do, so the OS shares " +
			"the CPUs between them and the handling of the wave at once; what remains is the wave itself: " +
			"every call of it sent, refused and answered (and the load generator shares the process) on CPUs " +
			"that also run the hashes."
		if rep.schedBatch {
			refusalWaits += " Under SCHED_BATCH each step of the wave that wakes a thread waits for a CPU " +
				"whose hash reaches the end of its time slice (a few ms) instead of preempting it; that is " +
				"the price of row 1's throughput (a prototype that hashed on threads of lower priority than the " +
				"request work did not answer waves measurably faster on our noisy 2-CPU machine)."
		}
		heapGrows = "Each worker hashes in memory it keeps from one hash to the next (already in the base), " +
			"so the growth is the garbage of the requests, within the GC's headroom. That memory is Go heap on " +
			"purpose: as live heap it spaces out garbage collections during a storm (with it in C memory the " +
			"refusal p99 of rows 3 and 4 was 3 to 5 times worse in 2 of 3 runs)."
	}
	authP99 := &row{name: "Authenticate p99 at 80% of saturation", u: dur, target: 3,
		oursLabel: "open loop, paced arrivals", floorLabel: "one hash (median, 1 goroutine)",
		explain: "p99 latency of Authenticate with arrivals evenly paced at 0.8 × the saturated throughput " +
			"measured just before (open loop: a call starts on schedule whether or not earlier ones returned; " +
			"latency counts from the scheduled start), against the median time of one RawArgon2id on one goroutine " +
			"(measured in slices alternating with the open-loop ones). With c hash workers at 80% load a call " +
			"takes one hash plus some queueing; when hashes run in parallel slower than alone (speed-up in row 1 " +
			"below the CPU count) each one takes longer than the floor, and every network hop of the call may " +
			"wait for a CPU held by a hash (see row 4)."}
	refused := &row{name: "Overload: refusals are not queued", u: dur, target: 0.5,
		oursLabel:  fmt.Sprintf("refusal p99, waves of %d callers", o.overloadCallers),
		floorLabel: "p99 of the calls served in the same waves",
		explain: fmt.Sprintf("Waves of %d simultaneous Authenticate calls (%d× workers + queue); the callers beyond "+
			"workers + queue must get RESOURCE_EXHAUSTED at once instead of waiting in an unbounded queue. Ours is "+
			"the p99 latency of those refusals (the share refused in brackets), against the p99 latency of the "+
			"calls of the same waves that were served (each waited for its place in the bounded queue and its "+
			"hash). A refusal queued behind the hashes would take as long as a served call (ratio 1); goal: at "+
			"most half. Refusals happen in the transport before any other work (grpcx Admit).",
			o.overloadCallers, o.overloadCallers/max(1, w+o.env.queue()))}
	refusedVsHash := &row{name: "Overload: refusal p99 against one hash", u: dur,
		oursLabel: "refusal p99 (as in row 3)", floorLabel: "one hash (median)",
		explain: "The refusal p99 of row 3 against one hash time (no goal; earlier versions of this report had " +
			"0.5 as the goal here). What a refusal waits for is CPU. " + refusalWaits}
	heap := &row{name: "Overload: heap growth", u: mebibytes, target: 3,
		oursLabel: "peak HeapInuse − base", floorLabel: "workers × argon2 memory",
		explain: fmt.Sprintf("Peak Go HeapInuse during the overload waves minus HeapInuse after a GC just before, "+
			"against the memory of the hashes that may run at once (%d workers × %d KiB). Unbounded hashing "+
			"would need %d × %d KiB. %s", w, p.MemoryKiB, o.overloadCallers, p.MemoryKiB, heapGrows)}
	getQPS := &row{name: "GetUser throughput (gRPC)", u: perSec, atLeast: true, target: 0.6,
		oursLabel: fmt.Sprintf("%d callers", o.concurrency), floorLabel: "echo gRPC (health Check)",
		explain: fmt.Sprintf("AdminService/GetUser by id with an admin bearer token, %d closed-loop callers on one "+
			"gRPC connection, against Health/Check on a plain grpc.Server (no interceptors) with the same client "+
			"setup.", o.concurrency)}
	getP99 := &row{name: "GetUser p99 (gRPC)", u: dur, target: 1.3,
		oursLabel: fmt.Sprintf("%d callers", o.concurrency), floorLabel: "echo gRPC p99",
		explain: "p99 latency of the same two phases."}
	restQPS := &row{name: "GetUser throughput (REST edge)", u: perSec, atLeast: true, target: 0.25,
		oursLabel: fmt.Sprintf("%d callers", o.concurrency), floorLabel: "echo gRPC (health Check)",
		explain: fmt.Sprintf("GET /v1/users/{id} with Authorization: Bearer through the REST gateway (HTTP/1.1 keep-alive, "+
			"up to 256 idle connections per host), %d closed-loop callers, against the echo gRPC throughput.", o.concurrency)}
	restP99 := &row{name: "GetUser p99 (REST edge)", u: dur,
		oursLabel: fmt.Sprintf("%d callers", o.concurrency), floorLabel: "echo gRPC p99",
		explain: "p99 latency of the REST phase against the echo p99 (no goal)."}

	var refusedShare []float64
	for _, r := range rounds {
		if r.auth != nil {
			authQPS.add(r.auth.QPS(), r.hashQPS)
			failed(authQPS, "Authenticate", r.auth)
			if r.auth.Exhausted > 0 {
				authQPS.errs = append(authQPS.errs, fmt.Sprintf("%d RESOURCE_EXHAUSTED while saturated (callers > workers + queue?)", r.auth.Exhausted))
			}
		}
		if r.open != nil {
			authP99.add(r.open.P(0.99).Seconds(), r.hashTime.Seconds())
			failed(authP99, "Authenticate", r.open)
			if r.open.Exhausted > 0 {
				authP99.note = fmt.Sprintf("%d refused", r.open.Exhausted)
			}
		}
		if r.overload != nil {
			refused.add(Quantile(r.overload.ExhLat, 0.99).Seconds(), r.overload.P(0.99).Seconds())
			refusedVsHash.add(Quantile(r.overload.ExhLat, 0.99).Seconds(), r.hashTime.Seconds())
			failed(refused, "overload", r.overload)
			if r.overload.Exhausted == 0 {
				refused.errs = append(refused.errs, "no call was refused: the overload did not overload")
			}
			refusedShare = append(refusedShare, r.overload.ExhaustedFraction())
			heap.add(float64(r.heapPeak)-float64(r.heapBase), float64(w)*float64(p.MemoryKiB)*1024)
		}
		echoQPS, echoP99 := 0.0, 0.0
		if r.echo != nil {
			echoQPS, echoP99 = r.echo.QPS(), r.echo.P(0.99).Seconds()
		}
		if r.getUser != nil {
			getQPS.add(r.getUser.QPS(), echoQPS)
			getP99.add(r.getUser.P(0.99).Seconds(), echoP99)
			failed(getQPS, "GetUser", r.getUser)
		}
		if r.getUserHT != nil {
			restQPS.add(r.getUserHT.QPS(), echoQPS)
			restP99.add(r.getUserHT.P(0.99).Seconds(), echoP99)
			failed(restQPS, "REST GetUser", r.getUserHT)
		}
		if r.echo != nil && r.echo.Failed > 0 {
			failed(getQPS, "echo", r.echo)
		}
	}
	var speedup []float64
	for _, r := range rounds {
		if r.hashQPS > 0 && r.hashTime > 0 {
			speedup = append(speedup, r.hashQPS*r.hashTime.Seconds())
		}
	}
	if len(speedup) > 0 {
		authQPS.note = fmt.Sprintf("raw argon2id parallel speed-up on %d CPUs: %.2f×", runtime.GOMAXPROCS(0), Median(speedup))
	}
	if len(refusedShare) > 0 {
		refused.note = fmt.Sprintf("%.0f%% refused", 100*Median(refusedShare))
	}
	if len(rounds) > 0 && rounds[0].heapPeak > 0 {
		var rssPeak []float64
		for _, r := range rounds {
			rssPeak = append(rssPeak, float64(r.rssPeak))
		}
		heap.note = "process RSS peak " + format(mebibytes, Median(rssPeak))
	}
	for _, rw := range []*row{authQPS, authP99, refused, refusedVsHash, heap, getQPS, getP99, restQPS, restP99} {
		if len(rw.ours) > 0 {
			rep.rows = append(rep.rows, rw)
		}
	}
	return rep
}

// table is the markdown table of results.
func (rep *report) table() string {
	var b strings.Builder
	b.WriteString("| # | Measurement | Ours | Floor | Ratio | Goal | Result |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for i, r := range rep.rows {
		ours := format(r.u, Median(r.ours))
		if r.note != "" {
			ours += " (" + r.note + ")"
		}
		floor := "—"
		if !r.missingFloor {
			floor = format(r.u, Median(r.floor))
		}
		ratio := "—"
		if x, ok := r.ratio(); ok {
			ratio = fmt.Sprintf("%.2f×", x)
		}
		fmt.Fprintf(&b, "| %d | %s<br><sub>%s vs %s</sub> | %s | %s | %s | %s | %s |\n",
			i+1, r.name, r.oursLabel, r.floorLabel, ours, floor, ratio, r.goal(), r.verdict())
	}
	return b.String()
}

func (rep *report) errors() []string {
	var out []string
	for _, r := range rep.rows {
		for _, e := range r.errs {
			out = append(out, r.name+": "+e)
		}
	}
	return out
}

func (rep *report) params() []string {
	o, p := rep.o, rep.o.env.Argon2
	def := ""
	if p == crypto.DefaultArgon2() {
		def = " (crypto.DefaultArgon2)"
	}
	rounds := fmt.Sprintf("%d round(s)", o.count)
	if o.count > 1 {
		rounds += "; every figure and ratio is the median over rounds (the ratio is the median of the per-round ratios)"
	}
	return []string{
		fmt.Sprintf("argon2id m=%d KiB, t=%d, p=%d%s, computed by %s (for the system and the floors alike); %d hash workers, queue %d",
			p.MemoryKiB, p.Time, p.Threads, def, crypto.Argon2Implementation, o.env.workers(), o.env.queue()),
		rep.schedParam(),
		fmt.Sprintf("each phase: %s measured, alternating with its floor in %d slices (first slice %s warm-up, later ones up to %s); %s",
			o.duration, o.slices, o.warmup, min(o.warmup, sliceWarmup), rounds),
		fmt.Sprintf("saturated Authenticate: %d closed-loop callers; 80%% load: evenly paced arrivals; overload: waves of %d simultaneous callers",
			o.authConc, o.overloadCallers),
		fmt.Sprintf("cheap RPC: %d closed-loop callers; gRPC over one client connection; REST over HTTP/1.1 keep-alive", o.concurrency),
		"system under test: `uias` target all in the benchmark process (SQLite in a temp dir, embedded NATS, log level " +
			o.env.LogLevel + "), loopback only; load generator and floors share the same CPUs",
		fmt.Sprintf("command: `uias bench %s` (took %s)", strings.Join(o.args, " "), rep.took.Round(time.Second)),
	}
}

// schedParam describes the CPU scheduling policy the benchmark ran under.
func (rep *report) schedParam() string {
	if rep.o.env.SchedPolicy == sched.PolicyInherit {
		return "CPU scheduling: as the benchmark was started (identity.sched_policy inherit)"
	}
	if !rep.schedBatch {
		return "CPU scheduling: identity.sched_policy batch asked for, but SCHED_BATCH could not be set here (see the log); the policy the process was started with"
	}
	return "CPU scheduling: SCHED_BATCH for the whole process (identity.sched_policy batch, the default), so the floors run under it too"
}

// text is what is printed: parameters, table, errors.
func (rep *report) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nUIAS benchmark %s — %d CPUs (GOMAXPROCS %d), %s, %s\n", rep.started.Format("2006-01-02 15:04 MST"),
		rep.m.cpus, rep.m.procs, rep.m.cpuModel, rep.m.goVersion)
	for _, p := range rep.params() {
		b.WriteString("  " + p + "\n")
	}
	b.WriteString("\n" + rep.table())
	for _, e := range rep.errors() {
		b.WriteString("error: " + e + "\n")
	}
	pass, total := 0, 0
	for _, r := range rep.rows {
		switch r.verdict() {
		case "PASS":
			pass++
			total++
		case "FAIL", "ERROR":
			total++
		}
	}
	fmt.Fprintf(&b, "\n%d of %d goals met (goals are reported, not enforced).\n", pass, total)
	return b.String()
}

// markdown is the docs/benchmarks.md page.
func (rep *report) markdown() string {
	var b strings.Builder
	b.WriteString("# UIAS benchmarks\n\n")
	b.WriteString("Generated by `make bench` (`scripts/bench.sh`, which runs `uias bench`). Do not edit by hand: " +
		"rerun it. All figures come from one run on one machine: every ratio compares UIAS with a floor measured " +
		"in the same process in alternating slices seconds apart, so machine noise mostly cancels out in the ratio but not in the " +
		"absolute figures.\n\n")
	fmt.Fprintf(&b, "- **Date:** %s\n", rep.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- **Machine:** %d CPUs (nproc; GOMAXPROCS %d), %s, %s\n", rep.m.cpus, rep.m.procs, rep.m.cpuModel, rep.m.kernel)
	fmt.Fprintf(&b, "- **Go:** %s\n\n", rep.m.goVersion)
	b.WriteString("## Parameters\n\n")
	for _, p := range rep.params() {
		b.WriteString("- " + p + "\n")
	}
	b.WriteString("\n## Results\n\n")
	b.WriteString(rep.table())
	if errs := rep.errors(); len(errs) > 0 {
		b.WriteString("\nErrors during the run:\n\n")
		for _, e := range errs {
			b.WriteString("- " + e + "\n")
		}
	}
	b.WriteString("\nRatio is ours ÷ floor. Goals are targets, not assertions: the command exits 0 whatever the result.\n\n")
	b.WriteString("## What each row measures\n\n")
	for i, r := range rep.rows {
		fmt.Fprintf(&b, "%d. **%s.** %s\n", i+1, r.name, r.explain)
	}
	b.WriteString("\n## Reproduce and profile\n\n")
	b.WriteString("```sh\nmake bench                                   # this page\n" +
		"go run ./cmd/uias bench --help              # flags\n" +
		"go run ./cmd/uias bench --only echo,getuser --cpuprofile cpu.out && go tool pprof -top cpu.out\n" +
		"go test ./cmd/uias/internal/bench -run '^$' -bench . -cpuprofile cpu.out   # go test benchmarks\n```\n")
	return b.String()
}
