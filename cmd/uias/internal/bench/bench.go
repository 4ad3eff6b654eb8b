// Package bench is the `uias bench` command: it starts a monolithic UIAS in
// process (target all, SQLite, embedded NATS, random loopback ports) and, in
// one run, measures its hot paths against floors measured on the same
// machine at the same time:
//
//   - password Authenticate over gRPC, saturated, against raw argon2id
//     hashes per second with the same parameters;
//   - Authenticate p99 latency at 80% of that saturation against one hash,
//     and that none of those calls is refused;
//   - a burst of N simultaneous logins, N = identity.max_hash_wait x the raw
//     hash rate: all served, the slowest against N hashes' time;
//   - a storm of 10 N: speed of the RESOURCE_EXHAUSTED refusals against the
//     served calls, and heap growth;
//   - an outbox backlog of 3,000 events drained by the identity relay while
//     logins arrive at 80% of saturation, against the same drain alone;
//   - a cheap admin RPC (GetUser) over gRPC and through the REST edge against
//     a bare gRPC health server;
//   - with an etcd (--etcd-bin or --etcd-endpoints), `uias serve
//     --target=identity` in processes of its own, under SCHED_BATCH and
//     inherited scheduling alike: GetUser p99 and login throughput while
//     logins saturate the CPUs.
//
// It prints a table of figures, ratios and goals (and with --out writes it
// as markdown with the machine and parameters). Goals are reported, never
// enforced: the exit code is 0 unless the run itself fails.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/sched"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// phases in run order; --only selects a subset.
var allPhases = []string{"auth", "latency", "drain", "burst", "overload", "echo", "getuser", "rest", "sched", "finger", "ticket", "access", "authz", "provision", "audit", "oidc"}

type options struct {
	duration, warmup time.Duration
	concurrency      int
	count, slices    int
	out, cpuprofile  string
	trace            string
	appendOut        bool
	only             map[string]bool
	authConc         int
	burstCallers     int
	overloadCallers  int
	authzSize        string   // authz phase: data set, full or small
	etcdBin          string   // sched phase: start this etcd
	etcdEndpoints    []string // sched phase: use this etcd
	schedRate        float64  // sched phase: GetUser calls per second
	env              envConfig
	args             []string // command line, for the report
	machine          *machine // where it runs, read at the start

	// finger phase: accuracy is deterministic, measured in the first round.
	fingerAccuracyDone bool
}

func (o *options) has(phase string) bool { return o.only == nil || o.only[phase] }

// Main runs `uias bench [flags]`; it returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "scale" { // identity with many people: scale.go
		return MainScale(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "capacity" { // the design's sizing: capacity.go
		return MainCapacity(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == stormClientArg { // the storm's client process: storm.go
		if err := runStormClient(ctx, os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "uias bench: %v\n", err)
			return 1
		}
		return 0
	}
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "uias bench: %v\n", err)
		return 2
	}
	if err := run(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "uias bench: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("uias bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := crypto.DefaultArgon2()
	o := &options{args: args}
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measurement time of each phase")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before each phase (not measured)")
	fs.IntVar(&o.concurrency, "concurrency", 50, "concurrent callers for the cheap RPC phases (echo, getuser, rest)")
	fs.IntVar(&o.count, "count", 1, "rounds; figures are medians over rounds")
	fs.IntVar(&o.slices, "slices", 4, "a phase and its floor alternate in this many slices (noise hits both alike)")
	fs.StringVar(&o.out, "out", "", "also write the report as markdown to this file")
	fs.BoolVar(&o.appendOut, "append", false, "with --out: add this run as a section to the page already in the file (scripts/bench.sh: one per argon2id build)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measured phases to this file")
	fs.StringVar(&o.trace, "trace", "", "write a runtime execution trace of the measured phases to this file (go tool trace; keep the run short)")
	only := fs.String("only", "", "comma-separated phases to run (default all): "+strings.Join(allPhases, ","))
	fs.IntVar(&o.authConc, "auth-concurrency", 0, "closed-loop callers for saturated Authenticate (default 4 x hash workers, at most workers + hash queue)")
	fs.IntVar(&o.burstCallers, "burst-callers", 0, "simultaneous callers of the burst (default N = max hash wait x raw hash rate)")
	fs.IntVar(&o.overloadCallers, "overload-callers", 0, "simultaneous callers per storm wave (default 10 x N)")
	fs.StringVar(&o.authzSize, "authz-size", "full", "authz phase: the generated data set, full (100k people, 10k roles, 1 M grants) or small (10k grants)")
	fs.StringVar(&o.etcdBin, "etcd-bin", "", "sched phase: an etcd binary to start for `uias serve --target=identity` (scripts/bench.sh builds one)")
	etcdEndpoints := fs.String("etcd-endpoints", "", "sched phase: endpoints of a running etcd instead of --etcd-bin")
	fs.Float64Var(&o.schedRate, "sched-getuser-rate", 200, "sched phase: GetUser calls per second (paced) while logins saturate the CPUs")
	mem := fs.Uint("argon2-memory", uint(def.MemoryKiB), "argon2id memory in KiB")
	tm := fs.Uint("argon2-time", uint(def.Time), "argon2id iterations")
	th := fs.Uint("argon2-threads", uint(def.Threads), "argon2id parallelism")
	fs.IntVar(&o.env.HashWorkers, "hash-workers", 0, "identity.hash_workers (0 = GOMAXPROCS)")
	fs.IntVar(&o.env.HashQueue, "hash-queue", 0, "identity.hash_queue: cap on waiting calls (0 = none besides the max hash wait, -1 = no waiting)")
	fs.DurationVar(&o.env.MaxHashWait, "max-hash-wait", identitycomponent.Defaults().MaxHashWait, "identity.max_hash_wait")
	fs.StringVar(&o.env.SchedPolicy, "sched-policy", sched.PolicyBatch, "identity.sched_policy of the process (batch|inherit); the floors run under it too")
	fs.StringVar(&o.env.LogLevel, "log-level", "error", "log level of the system under test (logs go to stderr)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.duration <= 0 || o.warmup < 0 || o.concurrency < 1 || o.count < 1 || o.slices < 1 || o.env.MaxHashWait <= 0 || o.schedRate <= 0 {
		return nil, errors.New("--duration, --concurrency, --max-hash-wait and --sched-getuser-rate must be positive, --warmup not negative, --count and --slices at least 1")
	}
	if *etcdEndpoints != "" {
		o.etcdEndpoints = strings.Split(*etcdEndpoints, ",")
	}
	if o.authzSize != "full" && o.authzSize != "small" {
		return nil, fmt.Errorf("--authz-size must be full or small, got %q", o.authzSize)
	}
	if o.env.SchedPolicy != sched.PolicyBatch && o.env.SchedPolicy != sched.PolicyInherit {
		return nil, fmt.Errorf("--sched-policy must be %s or %s, got %q", sched.PolicyBatch, sched.PolicyInherit, o.env.SchedPolicy)
	}
	if *th < 1 || *th > 255 || *tm < 1 || *mem < 8**th {
		return nil, errors.New("invalid argon2 parameters")
	}
	o.env.Argon2 = crypto.Argon2Params{MemoryKiB: uint32(*mem), Time: uint32(*tm), Threads: uint8(*th),
		SaltLen: def.SaltLen, KeyLen: def.KeyLen}
	if *only != "" {
		o.only = map[string]bool{}
		for _, p := range strings.Split(*only, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(allPhases, p) {
				return nil, fmt.Errorf("unknown phase %q (want %s)", p, strings.Join(allPhases, ","))
			}
			o.only[p] = true
		}
	}
	w := o.env.workers()
	if o.authConc <= 0 {
		o.authConc = 4 * w
		if q := o.env.waitCap(); q >= 0 {
			o.authConc = min(o.authConc, w+q)
		}
	}
	if q := o.env.waitCap(); q >= 0 && o.authConc > w+q {
		fmt.Fprintf(stderr, "uias bench: warning: --auth-concurrency %d exceeds workers + hash queue %d; expect RESOURCE_EXHAUSTED\n", o.authConc, w+q)
	}
	return o, nil
}

// round is what one round measured (zero values for phases not run).
type round struct {
	hashQPS  float64       // raw argon2id, GOMAXPROCS goroutines (phase auth)
	rawCPU   float64       // CPUs the process used meanwhile
	hashTime time.Duration // median single-threaded raw argon2id
	auth     *Result       // saturated Authenticate
	openRate float64       // arrival rate of the latency phase
	open     *Result       // Authenticate at 0.8 x saturation
	rawRate  float64       // raw hash rate N is computed from (see burstSize and the burst phase)
	// the raw hash rate measured right after the burst (0: not measured):
	// the burst's floor is N ÷ the mean of rawRate and rawAfter
	rawAfter float64
	burstN   int
	burst    *Result // one wave of burstN simultaneous Authenticate calls
	// the server's hash duration estimate just before the burst
	// (uias_password_hash_seconds; 0: not read)
	burstHashEst time.Duration
	overload     *Result // the storm
	stormN       int
	waves        int
	heapBase     uint64
	heapPeak     uint64
	rssPeak      uint64
	echo         *Result
	getUser      *Result
	getUserHT    *Result
	// the same with the access records stored outside the measurement
	// (outside.go): the goal rows
	outEcho, outGetUser, outGetUserHT *Result
	outBare                           *Result // GetUser's call to the echo server (bareAdmin)
	outGet                            *outsideRun
	// sched phase: GetUser while logins saturate a lone identity process,
	// and those logins, under SCHED_BATCH and inherited scheduling.
	schedGet, schedLogins [2]*Result
	// drain phase: an outbox backlog published alone and under logins at
	// drainRate (0.8 x saturation).
	drainQuiet, drainLoaded time.Duration
	drainLogins             *Result
	drainRate               float64

	finger *fingerRound // fingerprint matcher (finger.go)
	ticket *ticketRound // CAS ticket pairs (ticket.go)
	access *accessRound // access records on and off (access.go)
	authz  *authzRound  // authorization checks (authz.go)
	prov   *provRound   // provisioning into business systems (provision.go)
	audit  *auditRound  // the audit log's ingest, verify and proofs (audit.go)
	oidc   *oidcRound   // OpenID Connect code exchanges (oidc.go)

	// the median wall and thread CPU times of the hashes of burstHashEst
	// (0: not read)
	burstHashWall, burstHashCPU time.Duration
	// what burstHashEst is made of: the lone hashes' median and the busy
	// workers' pace (0: not known yet)
	burstHashLone time.Duration
	burstHashPace float64
}

// lockedWriter serializes writes: the system under test, the processes of
// the sched phase and the phases all log to stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func run(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	m := thisMachine() // before this run loads the machine
	o.machine = &m
	o.env.Log = stderr
	started := time.Now()
	fmt.Fprintf(stderr, "uias bench: starting UIAS (argon2id m=%d KiB t=%d p=%d, %d hash workers, max hash wait %s)\n",
		o.env.Argon2.MemoryKiB, o.env.Argon2.Time, o.env.Argon2.Threads, o.env.workers(), o.env.MaxHashWait)
	e, err := startEnv(ctx, o.env)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.check(ctx); err != nil {
		return err
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	stopTrace, err := startTrace(o.trace)
	if err != nil {
		return err
	}
	defer stopTrace()
	rounds := make([]*round, 0, o.count)
	for i := range o.count {
		if o.count > 1 {
			fmt.Fprintf(stderr, "round %d/%d\n", i+1, o.count)
		}
		r, err := runRound(ctx, o, e, stderr)
		if err != nil {
			return err
		}
		rounds = append(rounds, r)
	}
	rep := buildReport(o, rounds, started, time.Since(started))
	fmt.Fprint(stdout, rep.text())
	if o.out != "" {
		var existing []byte
		if o.appendOut {
			existing, _ = os.ReadFile(o.out) // none yet: a new page
		}
		if err := os.WriteFile(o.out, []byte(rep.markdown(string(existing))), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "uias bench: wrote %s\n", o.out)
	}
	return nil
}

// check makes one call of each kind so a broken setup fails fast instead
// of producing a table of errors.
func (e *env) check(ctx context.Context) error {
	for name, call := range map[string]CallFunc{"Authenticate": e.callAuthenticate, "GetUser": e.callGetUser,
		"echo": e.callEcho, "REST GetUser": e.callGetUserREST} {
		if _, err := oneCall(ctx, call); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func runRound(ctx context.Context, o *options, e *env, log io.Writer) (*round, error) {
	r := &round{}
	p := o.env.Argon2
	group := func(names ...string) []string {
		var out []string
		for _, n := range names {
			if o.has(n) {
				out = append(out, n)
			}
		}
		if len(out) > 0 && ctx.Err() == nil {
			runtime.GC()
			return out
		}
		return nil
	}
	closed := func(conc int, call CallFunc) Measure {
		return func(w, d time.Duration) *Result { return ClosedLoop(ctx, conc, w, d, call) }
	}
	if group("auth") != nil {
		procs := runtime.GOMAXPROCS(0)
		res := Interleave(ctx, o.slices, o.warmup, o.duration, closed(procs, rawHash(p)), closed(o.authConc, e.callAuthenticate))
		r.hashQPS, r.rawCPU, r.auth = res[0].QPS(), res[0].Cores(), res[1]
		fmt.Fprintf(log, "  raw argon2id (%d goroutines): %.1f hashes/s, %.2f CPUs busy\n", procs, r.hashQPS, res[0].Cores())
		fmt.Fprintf(log, "  Authenticate saturated (%d callers): %s\n", o.authConc, summary(r.auth))
	}
	if group("latency") != nil {
		if r.auth == nil || r.auth.QPS() <= 0 {
			return nil, errors.New("phase latency needs phase auth (its arrival rate is 0.8 x the saturated throughput)")
		}
		r.openRate = 0.8 * r.auth.QPS()
		open := func(w, d time.Duration) *Result { return OpenLoop(ctx, r.openRate, w, d, e.callAuthenticate) }
		res := Interleave(ctx, o.slices, o.warmup, o.duration, singleHash(ctx, p), open)
		r.hashTime, r.open = res[0].P(0.5), res[1]
		fmt.Fprintf(log, "  one raw argon2id: %s (median of %d)\n", ms(r.hashTime), res[0].OK)
		fmt.Fprintf(log, "  Authenticate open loop at %.1f/s: %s\n", r.openRate, summary(r.open))
	}
	if group("drain") != nil {
		if r.auth == nil || r.auth.QPS() <= 0 {
			return nil, errors.New("phase drain needs phase auth (its login rate is 0.8 x the saturated throughput)")
		}
		if err := e.runDrain(ctx, 0.8*r.auth.QPS(), r, log); err != nil {
			return nil, err
		}
	}
	if o.has("overload") && !o.has("burst") && ctx.Err() == nil {
		if err := r.burstSize(ctx, o, log); err != nil {
			return nil, err
		}
	}
	if group("burst") != nil {
		// The burst finds a server going about a quiet day: logins one
		// after the other (as many as its hash duration estimate looks
		// at), then N at once. N is sized from the raw hash rate measured
		// right before it (the rate moves by ±20% between minutes on a
		// shared host, so the rate of phase auth, a minute earlier, may
		// be another host's), and measured again right after it.
		for range burstWarmup {
			_, _ = oneCall(ctx, e.callAuthenticate)
		}
		r.hashQPSForBurst(ctx, o, log)
		if err := r.burstSize(ctx, o, log); err != nil {
			return nil, err
		}
		est := e.hashEstimate(ctx)
		r.burstHashEst, r.burstHashWall, r.burstHashCPU = est.est, est.wall, est.cpu
		r.burstHashLone, r.burstHashPace = est.lone, est.pace
		c0, t0 := cpuTime(), time.Now()
		r.burst, _ = Waves(ctx, r.burstN, 0, e.callAuthenticate)
		r.burst.cpu, r.burst.wall = cpuTime()-c0, time.Since(t0)
		r.rawAfter = rawRateNow(ctx, o)
		fmt.Fprintf(log, "  burst of %d simultaneous logins: %s; slowest %s\n", r.burstN, summary(r.burst), ms(slowest(r.burst)))
		fmt.Fprintf(log, "    raw argon2id around it: %.1f hashes/s before (N = %s × it), %.1f after; slowest vs N ÷ their mean: %.2f×\n",
			r.rawRate, o.env.MaxHashWait, r.rawAfter, slowest(r.burst).Seconds()/r.burstFloor().Seconds())
		if r.burst.OK > 0 && r.hashQPS > 0 && r.rawCPU > 0 {
			// Process CPU (server and callers) a login answered, against
			// the floor's CPU a hash: how fast the burst would go on CPUs
			// of its own, whatever else the machine runs meanwhile.
			login := r.burst.cpu / time.Duration(r.burst.OK)
			hash := time.Duration(r.rawCPU / r.hashQPS * float64(time.Second))
			fmt.Fprintf(log, "    process CPU a login answered: %s (floor: %s a hash, %.2f×)\n", ms(login), ms(hash),
				float64(login)/float64(hash))
		}
		fmt.Fprintf(log, "    server estimate before it: hash %s (floor: %s a hash a worker, workers ÷ raw rate) = lone %s × busy pace %.2f; lone median wall %s, CPU %s\n",
			ms(r.burstHashEst), ms(r.floorPerWorker(o)), ms(r.burstHashLone), r.burstHashPace, ms(r.burstHashWall), ms(r.burstHashCPU))
	}
	if group("overload") != nil {
		r.stormN = o.overloadCallers
		if r.stormN <= 0 {
			r.stormN = 10 * r.burstN
		}
		r.heapBase = heapInuse()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				r.heapPeak = max(r.heapPeak, heapInuse())
				r.rssPeak = max(r.rssPeak, rss())
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		// The callers run in a process of their own: the heap is the server's.
		var err error
		r.overload, r.waves, err = e.stormInChild(ctx, r.stormN, o.duration, log)
		close(stop)
		<-done
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "  storm (%d waves of %d callers): %s; refused p99 %s; heap %s -> %s MiB, RSS peak %s MiB\n",
			r.waves, r.stormN, summary(r.overload), ms(Quantile(r.overload.ExhLat, 0.99)),
			mib(r.heapBase), mib(r.heapPeak), mib(r.rssPeak))
	}
	if names := group("echo", "getuser", "rest"); names != nil {
		calls := map[string]CallFunc{"echo": e.callEcho, "getuser": e.callGetUser, "rest": e.callGetUserREST}
		var ms []Measure
		for _, n := range names {
			ms = append(ms, closed(o.concurrency, calls[n]))
		}
		res := Interleave(ctx, o.slices, o.warmup, o.duration, ms...)
		for i, n := range names {
			switch n {
			case "echo":
				r.echo = res[i]
				fmt.Fprintf(log, "  echo gRPC (%d callers): %s\n", o.concurrency, summary(r.echo))
			case "getuser":
				r.getUser = res[i]
				fmt.Fprintf(log, "  GetUser gRPC (%d callers): %s\n", o.concurrency, summary(r.getUser))
			case "rest":
				r.getUserHT = res[i]
				fmt.Fprintf(log, "  GetUser REST (%d callers): %s\n", o.concurrency, summary(r.getUserHT))
			}
		}
		if o.has("echo") && o.has("getuser") {
			if err := e.getUserOutside(ctx, o, r, closed, log); err != nil {
				return nil, err
			}
		}
	}
	if group("sched") != nil {
		if err := e.runSched(ctx, o, r, log); err != nil {
			return nil, err
		}
	}
	if group("ticket") != nil {
		var err error
		if r.ticket, err = e.measureTicket(ctx, o, log, closed); err != nil {
			return nil, err
		}
	}
	if group("access") != nil {
		var err error
		if r.access, err = e.measureAccess(ctx, o, log, closed); err != nil {
			return nil, err
		}
	}
	if group("authz") != nil {
		var err error
		if r.authz, err = e.measureAuthz(ctx, o, log, closed); err != nil {
			return nil, err
		}
	}
	if group("provision") != nil {
		var err error
		if r.prov, err = measureProvision(ctx, o, log); err != nil {
			return nil, err
		}
	}
	if group("audit") != nil {
		var err error
		if r.audit, err = measureAudit(ctx, log); err != nil {
			return nil, err
		}
	}
	if group("oidc") != nil {
		var err error
		if r.oidc, err = e.measureOIDC(ctx, o, log, closed); err != nil {
			return nil, err
		}
	}
	if group("finger") != nil {
		var err error
		if r.finger, err = measureFinger(o, !o.fingerAccuracyDone, log); err != nil {
			return nil, err
		}
		o.fingerAccuracyDone = true
	}
	return r, ctx.Err()
}

// burstWarmup is how many logins, one after the other, precede the burst:
// the hasher's estimate of one hash's duration is the median of its last 64.
const burstWarmup = 64

// hashQPSForBurst measures the raw hash rate that sizes the burst, right
// before it (burstSize then uses it instead of phase auth's).
func (r *round) hashQPSForBurst(ctx context.Context, o *options, log io.Writer) {
	r.rawRate = rawRateNow(ctx, o)
	fmt.Fprintf(log, "  raw argon2id (%d goroutines) before the burst: %.1f hashes/s\n", runtime.GOMAXPROCS(0), r.rawRate)
}

// rawRateNow measures the raw argon2id rate in GOMAXPROCS goroutines, a
// closed loop of o.warmup then o.duration.
func rawRateNow(ctx context.Context, o *options) float64 {
	return ClosedLoop(ctx, runtime.GOMAXPROCS(0), o.warmup, o.duration, rawHash(o.env.Argon2)).QPS()
}

// burstSize sets N, the burst size: identity.max_hash_wait x the raw hash
// rate of this round: the one measured right before the burst
// (hashQPSForBurst), else phase auth's, else measured here.
func (r *round) burstSize(ctx context.Context, o *options, log io.Writer) error {
	if r.rawRate <= 0 {
		r.rawRate = r.hashQPS
	}
	if r.rawRate <= 0 {
		procs := runtime.GOMAXPROCS(0)
		r.rawRate = rawRateNow(ctx, o)
		fmt.Fprintf(log, "  raw argon2id (%d goroutines): %.1f hashes/s\n", procs, r.rawRate)
	}
	r.burstN = o.burstCallers
	if r.burstN <= 0 {
		r.burstN = int(o.env.MaxHashWait.Seconds() * r.rawRate)
	}
	if r.burstN < 1 {
		return errors.New("phases burst and overload: the raw hash rate is 0")
	}
	return nil
}

// floorPerWorker is how long a hash takes a worker at the raw rate.
func (r *round) floorPerWorker(o *options) time.Duration {
	if r.rawRate <= 0 {
		return 0
	}
	return time.Duration(float64(o.env.workers()) / r.rawRate * float64(time.Second))
}

// burstFloor is how long the burst's N bare hashes take on all CPUs: N ÷
// the mean of the raw rates measured right before and right after the
// burst (the one before alone if the one after is missing).
func (r *round) burstFloor() time.Duration {
	rate := r.rawRate
	if r.rawAfter > 0 {
		rate = (r.rawRate + r.rawAfter) / 2
	}
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(r.burstN) / rate * float64(time.Second))
}

// slowest is the longest latency of any call of r, whatever its outcome.
func slowest(r *Result) time.Duration {
	var d time.Duration
	if n := len(r.Lat); n > 0 {
		d = r.Lat[n-1]
	}
	if n := len(r.ExhLat); n > 0 {
		d = max(d, r.ExhLat[n-1])
	}
	return d
}

// rawHash is the argon2id floor: RawArgon2idReusing with p, nothing else
// (each floor goroutine hashes in memory it keeps, as a hash worker does).
func rawHash(p crypto.Argon2Params) CallFunc {
	pw, salt := []byte(userPassword), []byte("0123456789abcdef")
	return func(context.Context) (Outcome, error) {
		crypto.RawArgon2idReusing(pw, salt, p)
		return OK, nil
	}
}

// singleHash times RawArgon2idReusing on one goroutine, one after the other: at
// least one unmeasured hash and 3 measured ones per slice.
func singleHash(ctx context.Context, p crypto.Argon2Params) Measure {
	h := rawHash(p)
	return func(w, d time.Duration) *Result {
		rc := &recorder{}
		for start, n := time.Now(), 0; (n < 1 || time.Since(start) < w) && ctx.Err() == nil; n++ {
			_, _ = h(ctx)
		}
		start := time.Now()
		for n := 0; (n < 3 || time.Since(start) < d) && ctx.Err() == nil; n++ {
			t0 := time.Now()
			_, _ = h(ctx)
			rc.add(OK, nil, time.Since(t0))
		}
		return merge(time.Since(start), []*recorder{rc})
	}
}

func summary(r *Result) string {
	s := fmt.Sprintf("%.1f ok/s, p50 %s, p99 %s", r.QPS(), ms(r.P(0.5)), ms(r.P(0.99)))
	if c := r.Cores(); c > 0 {
		s += fmt.Sprintf(", %.2f CPUs busy", c)
	}
	if r.Exhausted > 0 {
		s += fmt.Sprintf(", %d RESOURCE_EXHAUSTED (%.1f%%)", r.Exhausted, 100*r.ExhaustedFraction())
	}
	if r.Failed > 0 {
		s += fmt.Sprintf(", %d FAILED (first: %v)", r.Failed, r.FirstErr)
	}
	return s
}

func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f ms", f)
	case f >= 10:
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.2f ms", f)
}

func mib(b uint64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

// startTrace starts a runtime execution trace into path (--trace) and
// returns what stops it; with no path it does nothing.
func startTrace(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() { trace.Stop(); _ = f.Close() }, nil
}
