package bench

import (
	"fmt"
	"runtime"
	"strconv"
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
	count                 // calls
	percent               // a rate, 0 to 1
)

// row is one line of the table: our figure, its floor, their ratio (all
// medians over rounds) and the goal for the ratio.
type row struct {
	name         string
	u            unit
	ours, floor  []float64
	ratios       []float64
	atLeast      bool    // goal is ratio >= target (else <=)
	target       float64 // 0: no goal, unless zeroGoal
	zeroGoal     bool    // goal is ratio = 0 (none of the calls)
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
	if r.zeroGoal {
		return sum(r.ours) / sum(r.floor), true
	}
	return Median(r.ratios), true
}

// figure is what the table shows for xs (ours or floor): the median over
// rounds, or the total for a row whose goal is none at all (one refusal in
// any round misses it).
func (r *row) figure(xs []float64) float64 {
	if r.zeroGoal {
		return sum(xs)
	}
	return Median(xs)
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

func (r *row) hasGoal() bool { return r.target != 0 || r.zeroGoal }

func (r *row) goal() string {
	if r.zeroGoal {
		return "none"
	}
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
	if !r.hasGoal() || !ok {
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
		if v < 1e-3 {
			return us(time.Duration(v * float64(time.Second)))
		}
		return ms(time.Duration(v * float64(time.Second)))
	case mebibytes:
		return fmt.Sprintf("%.0f MiB", v/(1<<20))
	case count:
		return fmt.Sprintf("%.0f", v)
	case percent:
		return fmt.Sprintf("%.3f%%", 100*v)
	}
	return fmt.Sprint(v)
}

type report struct {
	o       *options
	m       machine
	started time.Time
	took    time.Duration
	rows    []*row
	rounds  []*round
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
	m := thisMachine()
	if o.machine != nil {
		m = *o.machine
	}
	rep := &report{o: o, m: m, started: started, took: took, rounds: rounds, schedBatch: allBatch()}
	failed := func(rw *row, what string, res *Result) {
		if res != nil && res.Failed > 0 {
			rw.errs = append(rw.errs, fmt.Sprintf("%s: %d failed calls, first: %v", what, res.Failed, res.FirstErr))
		}
	}

	maxWait := o.env.MaxHashWait
	waitCap := ""
	if q := o.env.waitCap(); q >= 0 {
		waitCap = fmt.Sprintf(" (and identity.hash_queue caps waiting calls at %d)", q)
	}
	authQPS := &row{name: "Authenticate throughput, saturated (gRPC)", u: perSec, atLeast: true, target: 0.9,
		oursLabel:  fmt.Sprintf("%d closed-loop callers", o.authConc),
		floorLabel: fmt.Sprintf("raw argon2id in %d goroutines", runtime.GOMAXPROCS(0)),
		explain: fmt.Sprintf("Successful password Authenticate calls per second over gRPC with %d closed-loop callers "+
			"(so that while a finished call writes its audit event and its answer travels back, "+
			"others wait for a worker and none of the %d hash workers idles; %d callers project a wait of a few "+
			"hashes, far below identity.max_hash_wait, so none is refused), "+
			"against bare RawArgon2idReusing hashes per second with the same parameters in GOMAXPROCS goroutines "+
			"(each in memory it keeps, as a worker hashes: the hash alone, nothing allocated). "+
			"The gap is everything besides the hash: gRPC, interceptors, app credential check, the SQLite "+
			"reads of link and user, the audit-event write and its relay to NATS. The note gives the parallel "+
			"speed-up of bare argon2id (hashes/s in GOMAXPROCS goroutines × one hash time): well below the CPU "+
			"count means the CPUs are shared (SMT siblings, other load) or memory-bound, which also lengthens "+
			"every hash under concurrency (see the 80%% row).", o.authConc, w, o.authConc)}
	if rep.schedBatch {
		authQPS.explain += " The process runs under SCHED_BATCH (identity.sched_policy, docs/operators.md): that work " +
			"takes a CPU when a hash's time slice ends instead of preempting a hash each time it wakes, which " +
			"measured 0.79–0.85× with the default policy and 0.86–0.94× with SCHED_BATCH on the same machine."
	}
	// What the storm rows depend on differs between the two argon2id builds.
	refusalWaits := "While every CPU runs a pure-Go hash, each hop of the call (client write, server read, " +
		"server write, client read; the storm's callers run in a process of their own on the same CPUs) waits for the Go scheduler to preempt " +
		"a hashing goroutine (10 ms quantum) and the network is polled about every 10 ms; the libargon2 build " +
		"(docs/operators.md) avoids the wait."
	heapGrows := "Each worker hashes in memory it keeps from one hash to the next (already in the base; the pure-Go " +
		"argon2id of pkg/crypto reuses it since 2026-12-02: with golang.org/x/crypto/argon2, which allocates " +
		"every hash's memory afresh, the GC's headroom over that garbage made 3.0–3.8×), so the growth is the " +
		"garbage of the requests, within the GC's headroom."
	if crypto.Argon2Cgo {
		refusalWaits = "Hashes run in C (libargon2) and hold no Go scheduler P while they do, so the OS shares " +
			"the CPUs between them and the handling of the wave at once; what remains is the wave itself: " +
			"every call of it sent, checked, refused and answered (by the server, and by the callers' own " +
			"process) on CPUs that also run the hashes."
		if rep.schedBatch {
			refusalWaits += " Under SCHED_BATCH each step of the wave that wakes a thread waits for a CPU " +
				"whose hash reaches the end of its time slice (a few ms) instead of preempting it; that is " +
				"the price of the saturated throughput."
		}
		heapGrows = "Each worker hashes in memory it keeps from one hash to the next (already in the base, " +
			"through libargon2's allocation callbacks), so the growth is the garbage of the requests, within the " +
			"GC's headroom. That memory is Go heap on purpose: as live heap it spaces out garbage collections " +
			"during a storm."
	}
	authP99 := &row{name: "Authenticate p99 at 80% of saturation", u: dur, target: 3,
		oursLabel: "open loop, paced arrivals", floorLabel: "one hash (median, 1 goroutine)",
		explain: "p99 latency of Authenticate with arrivals evenly paced at 0.8 × the saturated throughput " +
			"measured just before (open loop: a call starts on schedule whether or not earlier ones returned; " +
			"latency counts from the scheduled start), against the median time of one RawArgon2idReusing on one goroutine " +
			"(measured in slices alternating with the open-loop ones). With c hash workers at 80% load a call " +
			"takes one hash plus some queueing; when hashes run in parallel slower than alone (speed-up in the first row " +
			"below the CPU count) each one takes longer than the floor, and every network hop of the call may " +
			"wait for a CPU held by a hash (see the storm's refusal p99 against one hash)."}
	openRefused := &row{name: "Authenticate refused at 80% of saturation", u: count, zeroGoal: true,
		oursLabel: "calls refused (RESOURCE_EXHAUSTED)", floorLabel: "calls made",
		explain: fmt.Sprintf("The calls of the 80%% row that were refused, against all of them. At 80%% load the queue "+
			"that forms now and then projects a wait far below identity.max_hash_wait (%s), so none may be refused.",
			maxWait)}
	burstSlow := &row{name: "Login burst: slowest answer", u: dur, target: 4.0 / 3,
		oursLabel: "N simultaneous logins, slowest", floorLabel: "N ÷ raw argon2id rate (mean of before and after)",
		explain: fmt.Sprintf("One wave of N simultaneous password Authenticate calls, N = identity.max_hash_wait (%s) × "+
			"the raw argon2id rate (hashes/s of RawArgon2idReusing in GOMAXPROCS goroutines, a closed loop as in the first row) "+
			"measured right before the burst: %s worth of hashes, "+
			"as when everyone logs in at once on a quiet server (before it, %d logins one after the other: "+
			"the hashes the server's estimate of one hash's duration looks at, then the raw rate's loop). Every call waits for a worker while its projected wait (work ahead of it ÷ "+
			"workers × the running estimate of one hash) fits identity.max_hash_wait and a fifth of it (the estimate's error, ADR 0010), so all N are served. Ours "+
			"is the slowest answer, against the time the N bare hashes take on all CPUs at the mean of the raw rates measured "+
			"right before and right after the burst (on a shared host the rate moves by ±20%% between minutes); goal: within 4 s for "+
			"3 s of hashes (≤ 1.33×), the rest being the requests' own work and one hash.", maxWait, maxWait, burstWarmup)}
	burstNotOK := &row{name: "Login burst: calls not answered 0", u: count, zeroGoal: true,
		oursLabel: "calls refused or failed", floorLabel: "N",
		explain: "The calls of the burst that did not get result code 0 (authenticated): refused " +
			"(RESOURCE_EXHAUSTED) or anything else, against N. Goal: none."}
	refused := &row{name: "Storm: refusals are not queued", u: dur, target: 0.5,
		oursLabel: "refusal p99, waves of 10 N callers", floorLabel: "p99 of the calls served in the same waves",
		explain: "Waves of 10 N simultaneous Authenticate calls (N as in the burst). A password check whose projected " +
			"wait for a hash worker does not fit identity.max_hash_wait (and its fifth)" + waitCap + " gets RESOURCE_EXHAUSTED " +
			"OVERLOADED (legacy -6) at once: after the app credential check and the account reads that every " +
			"verdict needs (verdicts that need no hash, such as an unknown account, are never refused), before " +
			"the login gate's store writes. Ours is the p99 latency of those refusals (the share refused in " +
			"brackets), against the p99 latency of the calls of the same waves that were served (each waited for " +
			"its worker and its hash). A refusal queued behind the hashes would take as long as a served call " +
			"(ratio 1); goal: at most half."}
	refusedVsHash := &row{name: "Storm: refusal p99 against one hash", u: dur,
		oursLabel: "refusal p99 (as above)", floorLabel: "one hash (median)",
		explain: "The refusal p99 of the storm against one hash time (no goal). What a refusal waits for is CPU. " + refusalWaits}
	heap := &row{name: "Storm: heap growth", u: mebibytes, target: 3,
		oursLabel: "peak HeapInuse − base", floorLabel: "workers × argon2 memory",
		explain: fmt.Sprintf("Peak Go HeapInuse during the storm minus HeapInuse after a GC just before, "+
			"against the memory of the hashes that may run at once (%d workers × %d KiB). Calls waiting for a "+
			"worker hold no argon2 memory; the 10 N calls in flight at once hold their requests on the server. "+
			"The callers run in a process of their own (`uias bench storm-client`), so this is the server's heap "+
			"alone (until 2026-12-01 they shared the process and their garbage counted too). %s", w, p.MemoryKiB, heapGrows)}
	getAIO := allInOneExplain
	getOutside := outsideExplain("GetUser call's")
	getBase := fmt.Sprintf("AdminService/GetUser by id with an admin bearer token, %d closed-loop callers on one "+
		"gRPC connection, against Health/Check on a plain grpc.Server (no interceptors) with the same client "+
		"setup.", o.concurrency)
	restBase := fmt.Sprintf("GET /v1/users/{id} with Authorization: Bearer through the REST gateway (HTTP/1.1 keep-alive, "+
		"up to 256 idle connections per host), %d closed-loop callers, against the echo gRPC throughput.", o.concurrency)
	callers := fmt.Sprintf("%d callers", o.concurrency)
	getQPS, aioGetQPS := outsidePair("GetUser throughput (gRPC)", callers, 0.6, getBase, getOutside, getAIO)
	getP99, aioGetP99 := outsideP99Pair("GetUser p99 (gRPC)", callers, 1.3)
	getP99.explain += " Its note: the same GetUser call (metadata, request and answer) to the echo server, whose " +
		"handler returns the answer at once, measured in the same slices: gRPC's own share of the call's cost, " +
		"against the echo floor (docs/adr/0012-getuser-p99-at-saturation.md)."
	restQPS, aioRestQPS := outsidePair("GetUser throughput (REST edge)", callers, 0.25, restBase, getOutside, getAIO)
	restP99 := &row{name: "GetUser p99 (REST edge), all in one", u: dur,
		oursLabel: callers, floorLabel: "echo gRPC p99",
		explain: "p99 latency of the all-in-one REST phase against the echo p99 (no goal)."}
	lone := "`uias serve --target=identity` in a process of its own (SQLite, registered in etcd, publishing to " +
		"the benchmark's NATS), started twice: with identity.sched_policy batch and with inherit. In alternating " +
		"slices of the same run, one of them gets %d closed-loop password logins (saturating the CPUs) and " +
		"GetUser calls paced at %.0f/s from this process, which acts as a client on another machine would " +
		"(its own threads under the default policy for this phase)."
	schedGet := &row{name: "Identity alone: GetUser p99 under saturating logins", u: dur,
		oursLabel: "SCHED_BATCH", floorLabel: "inherit (SCHED_OTHER)",
		explain: fmt.Sprintf(lone+" Ours is the GetUser p99 (from the scheduled start) of the SCHED_BATCH process, "+
			"the floor that of the other. No goal: with the login throughput of the same slices it decides identity.sched_policy's default for "+
			"--target=identity alone (docs/adr/0004-sched-policy.md).", o.authConc, o.schedRate)}
	schedLogins := &row{name: "Identity alone: login throughput", u: perSec,
		oursLabel: "SCHED_BATCH", floorLabel: "inherit (SCHED_OTHER)",
		explain: "Successful logins per second of the same slices as the GetUser p99 above (no goal)."}

	drain := &row{name: "Outbox backlog of 3,000 drained under 80% login load", u: dur, target: 5,
		oursLabel: "under logins at 80% of saturation", floorLabel: "the same drain without logins",
		explain: fmt.Sprintf("%d events put into the identity outbox at once (as they stand after a NATS outage), "+
			"then timed until the process's own relay has published them all to JetStream: once while "+
			"password logins arrive at 0.8 × the saturated throughput (each writing its audit event to an outbox "+
			"the same relay drains: on SQLite the login outbox beside the database, ADR 0011), once without. The relay publishes a batch of rows together and awaits their acks together, "+
			"so the drain does not wait a CPU time slice per event while hashes hold the CPUs (one event at a "+
			"time drained about 68 events/s under logins in microservices mode, slower than they came). The logins "+
			"hold most of the CPU meanwhile; goal: the backlog clears under load within 5 × the time it takes alone.", drainBacklog)}
	var refusedShare []float64
	var bareP99, bareQPS []float64 // per round: GetUser on the plain server against echo
	var burstEst []string          // per round: the server's estimates before the burst
	var burstFail string
	for _, r := range rounds {
		if r.drainQuiet > 0 && r.drainLoaded > 0 {
			drain.add(r.drainLoaded.Seconds(), r.drainQuiet.Seconds())
			drain.note = fmt.Sprintf("%.0f events/s alone, %.0f events/s under %.1f logins/s",
				drainBacklog/r.drainQuiet.Seconds(), drainBacklog/r.drainLoaded.Seconds(), r.drainRate)
		}
		if r.auth != nil {
			authQPS.add(r.auth.QPS(), r.hashQPS)
			failed(authQPS, "Authenticate", r.auth)
			if r.auth.Exhausted > 0 {
				authQPS.errs = append(authQPS.errs, fmt.Sprintf("%d RESOURCE_EXHAUSTED while saturated", r.auth.Exhausted))
			}
		}
		if r.open != nil {
			authP99.add(r.open.P(0.99).Seconds(), r.hashTime.Seconds())
			failed(authP99, "Authenticate", r.open)
			openRefused.add(float64(r.open.Exhausted), float64(r.open.Calls()))
		}
		if r.burst != nil {
			burstSlow.add(slowest(r.burst).Seconds(), r.burstFloor().Seconds())
			burstNotOK.add(float64(r.burstN-r.burst.OK), float64(r.burstN))
			if r.burstHashEst > 0 {
				burstEst = append(burstEst, fmt.Sprintf("%s / %s", ms(r.burstHashEst), ms(r.floorPerWorker(o))))
			}
			if r.burst.Failed > 0 {
				burstFail = fmt.Sprintf("first failure: %v", r.burst.FirstErr)
			}
		}
		if r.overload != nil {
			refused.add(Quantile(r.overload.ExhLat, 0.99).Seconds(), r.overload.P(0.99).Seconds())
			refusedVsHash.add(Quantile(r.overload.ExhLat, 0.99).Seconds(), r.hashTime.Seconds())
			failed(refused, "storm", r.overload)
			if r.overload.Exhausted == 0 {
				refused.errs = append(refused.errs, "no call was refused: the storm did not overload")
			}
			refusedShare = append(refusedShare, r.overload.ExhaustedFraction())
			heap.add(float64(r.heapPeak)-float64(r.heapBase), float64(w)*float64(p.MemoryKiB)*1024)
		}
		echoQPS, echoP99 := 0.0, 0.0
		if r.echo != nil {
			echoQPS, echoP99 = r.echo.QPS(), r.echo.P(0.99).Seconds()
		}
		if r.getUser != nil {
			aioGetQPS.add(r.getUser.QPS(), echoQPS)
			aioGetP99.add(r.getUser.P(0.99).Seconds(), echoP99)
			failed(aioGetQPS, "GetUser", r.getUser)
		}
		if r.getUserHT != nil {
			aioRestQPS.add(r.getUserHT.QPS(), echoQPS)
			restP99.add(r.getUserHT.P(0.99).Seconds(), echoP99)
			failed(aioRestQPS, "REST GetUser", r.getUserHT)
		}
		if r.echo != nil && r.echo.Failed > 0 {
			failed(aioGetQPS, "echo", r.echo)
		}
		if r.outGetUser != nil {
			oecho := r.outEcho.QPS()
			getQPS.add(r.outGetUser.QPS(), oecho)
			getP99.add(r.outGetUser.P(0.99).Seconds(), r.outEcho.P(0.99).Seconds())
			failed(getQPS, "GetUser", r.outGetUser)
			if r.outEcho.Failed > 0 {
				failed(getQPS, "echo", r.outEcho)
			}
			getQPS.note = r.outGet.note()
			if r.outGet.err != nil {
				getQPS.errs = append(getQPS.errs, r.outGet.err.Error())
			}
		}
		if r.outBare != nil && r.outEcho.P(0.99) > 0 && r.outEcho.QPS() > 0 {
			bareP99 = append(bareP99, r.outBare.P(0.99).Seconds()/r.outEcho.P(0.99).Seconds())
			bareQPS = append(bareQPS, r.outBare.QPS()/r.outEcho.QPS())
			failed(getP99, "GetUser on the plain server", r.outBare)
		}
		if r.outGetUserHT != nil {
			restQPS.add(r.outGetUserHT.QPS(), r.outEcho.QPS())
			failed(restQPS, "REST GetUser", r.outGetUserHT)
		}
		if g := r.schedGet; g[0] != nil && g[1] != nil {
			schedGet.add(g[0].P(0.99).Seconds(), g[1].P(0.99).Seconds())
			schedLogins.add(r.schedLogins[0].QPS(), r.schedLogins[1].QPS())
			for i, pol := range schedPolicies {
				failed(schedGet, "GetUser ("+pol+")", g[i])
				failed(schedLogins, "logins ("+pol+")", r.schedLogins[i])
				if n := g[i].Exhausted + r.schedLogins[i].Exhausted; n > 0 {
					schedLogins.errs = append(schedLogins.errs, fmt.Sprintf("%s: %d calls refused", pol, n))
				}
			}
		}
	}
	if len(bareP99) > 0 {
		getP99.note = fmt.Sprintf("the same call to the echo server, whose handler returns the same answer at once "+
			"(gRPC's share, no UIAS work), in the same slices: p99 %.2f×, throughput %.2f× echo's", Median(bareP99), Median(bareQPS))
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
	var ns []float64
	var around []string // per round: the raw rates before and after the burst
	for _, r := range rounds {
		if r.burstN > 0 {
			ns = append(ns, float64(r.burstN))
		}
		if r.burst != nil && r.rawAfter > 0 {
			around = append(around, fmt.Sprintf("%.1f / %.1f", r.rawRate, r.rawAfter))
		}
	}
	notes := burstFail
	if len(burstEst) > 0 {
		if notes != "" {
			notes += "; "
		}
		notes += "hash estimate before it (server hash / floor hash a worker): " + strings.Join(burstEst, ", ")
	}
	burstNotOK.note = notes
	if len(ns) > 0 {
		burstSlow.note = fmt.Sprintf("N = %.0f", Median(ns))
		if len(around) > 0 {
			burstSlow.note += "; raw hashes/s before / after: " + strings.Join(around, ", ")
		}
		burstSlow.oursLabel = fmt.Sprintf("N = %s × raw rate simultaneous logins, slowest", maxWait)
	}
	if len(rounds) > 0 && rounds[0].heapPeak > 0 {
		var rssPeak []float64
		for _, r := range rounds {
			rssPeak = append(rssPeak, float64(r.rssPeak))
		}
		heap.note = "process RSS peak " + format(mebibytes, Median(rssPeak))
	}
	for _, rw := range []*row{authQPS, authP99, openRefused, drain, burstSlow, burstNotOK, refused, refusedVsHash, heap,
		getQPS, getP99, restQPS, aioGetQPS, aioGetP99, aioRestQPS, restP99, schedGet, schedLogins} {
		if len(rw.ours) > 0 {
			rep.rows = append(rep.rows, rw)
		}
	}
	rep.rows = append(rep.rows, fingerRows(rounds)...)
	rep.rows = append(rep.rows, ticketRows(o, rounds)...)
	rep.rows = append(rep.rows, accessRows(o, rounds)...)
	rep.rows = append(rep.rows, authzRows(o, rounds)...)
	rep.rows = append(rep.rows, provisionRows(rounds)...)
	rep.rows = append(rep.rows, auditRows(rounds)...)
	rep.rows = append(rep.rows, oidcRows(o, rounds)...)
	return rep
}

// table is the markdown table of results.
func (rep *report) table() string {
	var b strings.Builder
	b.WriteString("| # | Measurement | Ours | Floor | Ratio | Goal | Result |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for i, r := range rep.rows {
		ours := format(r.u, r.figure(r.ours))
		if r.note != "" {
			ours += " (" + r.note + ")"
		}
		floor := "—"
		if !r.missingFloor {
			floor = format(r.u, r.figure(r.floor))
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
		rounds += "; every figure and ratio is the median over rounds (the ratio is the median of the per-round ratios), " +
			"except in rows whose goal is none: their figures are totals over all rounds"
	}
	admission := fmt.Sprintf("identity.max_hash_wait %s", o.env.MaxHashWait)
	if q := o.env.waitCap(); q >= 0 {
		admission += fmt.Sprintf(", identity.hash_queue %d", q)
	}
	var ns, storms []string
	for _, r := range rep.rounds {
		if r.burstN > 0 {
			ns = append(ns, strconv.Itoa(r.burstN))
		}
		if r.stormN > 0 {
			storms = append(storms, strconv.Itoa(r.stormN))
		}
	}
	loads := fmt.Sprintf("password logins spread over %d people in turn; saturated Authenticate: %d closed-loop callers; 80%% load: evenly paced arrivals", benchAccounts, o.authConc)
	if len(ns) > 0 {
		loads += "; burst: N = " + strings.Join(ns, ", ") + " simultaneous callers (per round)"
	}
	if len(storms) > 0 {
		loads += "; storm: waves of " + strings.Join(storms, ", ") + " simultaneous callers (per round)"
	}
	return []string{
		fmt.Sprintf("argon2id m=%d KiB, t=%d, p=%d%s, computed by %s (for the system and the floors alike); %d hash workers, %s",
			p.MemoryKiB, p.Time, p.Threads, def, crypto.Argon2Implementation, o.env.workers(), admission),
		rep.schedParam(),
		fmt.Sprintf("each phase: %s measured, alternating with its floor in %d slices (first slice %s warm-up, later ones up to %s); %s",
			o.duration, o.slices, o.warmup, min(o.warmup, sliceWarmup), rounds),
		loads,
		fmt.Sprintf("cheap RPC: %d closed-loop callers; gRPC over one client connection; REST over HTTP/1.1 keep-alive", o.concurrency),
		outsideMethod,
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
	return "CPU scheduling: SCHED_BATCH for the whole process (identity.sched_policy batch, set by the benchmark's --sched-policy; " +
		"the default, auto, leaves a process that runs every component as started), so the floors run under it too"
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

// reproduce starts the part of the page after the runs' sections.
const reproduce = "\n## Reproduce and profile\n"

// markdown is the docs/benchmarks.md page with this run as its one
// section; with existing (a page written before, e.g. by the other argon2id
// build), this run's section is added after the sections already there.
func (rep *report) markdown(existing string) string {
	if i := strings.Index(existing, reproduce); i >= 0 && strings.HasPrefix(existing, "# UIAS benchmarks") {
		return strings.TrimRight(existing[:i], "\n") + "\n\n" + rep.section() + existing[i:]
	}
	var b strings.Builder
	b.WriteString("# UIAS benchmarks\n\n")
	b.WriteString("Generated by `make bench` (`scripts/bench.sh`, which runs `uias bench` once per argon2id build: the " +
		"default pure-Go build, and the libargon2 build where the library is installed). Do not edit by hand: " +
		"rerun it. Each section comes from one run on one machine: every ratio compares UIAS with a floor measured " +
		"in the same process in alternating slices seconds apart, so machine noise mostly cancels out in the ratio but not in the " +
		"absolute figures.\n\n")
	b.WriteString(rep.section())
	b.WriteString(reproduce)
	b.WriteString("\n```sh\nmake bench                                   # this page\n" +
		"go run ./cmd/uias bench --help              # flags\n" +
		"go run ./cmd/uias bench --only echo,getuser --cpuprofile cpu.out && go tool pprof -top cpu.out\n" +
		"go test ./cmd/uias/internal/bench -run '^$' -bench . -cpuprofile cpu.out   # go test benchmarks\n```\n")
	return b.String()
}

// section is this run's part of the page.
func (rep *report) section() string {
	var b strings.Builder
	build := "Default build: argon2id in pure Go (" + crypto.Argon2Implementation + ")"
	if crypto.Argon2Cgo {
		build = "libargon2 build: argon2id in the C reference library (-tags libargon2)"
	}
	fmt.Fprintf(&b, "## %s\n\n", build)
	fmt.Fprintf(&b, "- **Date:** %s\n", rep.started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- **Machine:** %d CPUs (nproc; GOMAXPROCS %d), %s, %s\n", rep.m.cpus, rep.m.procs, rep.m.cpuModel, rep.m.kernel)
	if rep.m.load != "" {
		fmt.Fprintf(&b, "- **Load average at the start:** %s (1, 5, 15 min; work of other processes shares the CPUs and shows in the absolute figures)\n", rep.m.load)
	}
	fmt.Fprintf(&b, "- **Go:** %s\n\n", rep.m.goVersion)
	b.WriteString("### Parameters\n\n")
	for _, p := range rep.params() {
		b.WriteString("- " + p + "\n")
	}
	b.WriteString("\n### Results\n\n")
	b.WriteString(rep.table())
	if errs := rep.errors(); len(errs) > 0 {
		b.WriteString("\nErrors during the run:\n\n")
		for _, e := range errs {
			b.WriteString("- " + e + "\n")
		}
	}
	b.WriteString("\nRatio is ours ÷ floor. Goals are targets, not assertions: the command exits 0 whatever the result.\n\n")
	b.WriteString("### What each row measures\n\n")
	for i, r := range rep.rows {
		fmt.Fprintf(&b, "%d. **%s.** %s\n", i+1, r.name, r.explain)
	}
	return b.String()
}
