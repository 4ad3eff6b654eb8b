package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/store"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/ticket"
)

// `uias bench capacity` (make bench-capacity): the fingerprint server
// design's sizing (2.7: 10 000 registered people, 1 000 online at once,
// answers within 4 s) on the machine it runs on. A monolithic UIAS (target
// all, SQLite, embedded NATS, default argon2id) holds --people generated
// people; --online of them log in with their passwords (the ramp: the
// CPU a password login costs), then each online person, in a goroutine of
// their own, waits a random think time (exponential, mean --think) and
// does one action of the mix, again and again:
//
//   - sso: opens a business system: a CAS service ticket issued from their
//     SSO session (in process: the CAS login page's part) and validated by
//     the application over the REST edge (GET /cas/p3/serviceValidate);
//   - check: the application asks authz whether they may do something
//     (AuthzService/Check over gRPC, with its App_ID and secret);
//   - relogin: they log out (their SSO session ended) and log in again
//     with their password (identity AuthService/Authenticate over gRPC,
//     argon2id, then a new SSO session).
//
// The same population doing a no-op instead (gRPC Health/Check on a bare
// server) in alternating slices is the floor. Reported: p50, p99 and max of
// every answer, per action and together, against the floor's; refusals
// (RESOURCE_EXHAUSTED, HTTP 429) and failures; CPU and memory used.

// capOptions are the flags of `uias bench capacity`.
type capOptions struct {
	people, online      int
	think               time.Duration
	duration, warmup    time.Duration
	slices              int
	mix                 capMix
	loginCallers        int
	argon2              crypto.Argon2Params
	out, heading, level string
	args                []string
}

// capMix are the weights of the actions (percent of actions).
type capMix struct{ sso, check, relogin int }

func (m capMix) String() string {
	return fmt.Sprintf("sso=%d,check=%d,relogin=%d", m.sso, m.check, m.relogin)
}

// parseMix reads "sso=55,check=35,relogin=10" (weights, summed to any
// positive total).
func parseMix(s string) (capMix, error) {
	var m capMix
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return m, fmt.Errorf("--mix: %q is not name=weight", part)
		}
		switch k {
		case "sso":
			m.sso = n
		case "check":
			m.check = n
		case "relogin":
			m.relogin = n
		default:
			return m, fmt.Errorf("--mix: unknown action %q (want sso, check, relogin)", k)
		}
	}
	if m.sso+m.check+m.relogin == 0 {
		return m, errors.New("--mix: the weights add up to 0")
	}
	return m, nil
}

// pick is the action for a uniform draw r in [0, total).
func (m capMix) pick(r int) capAction {
	switch {
	case r < m.sso:
		return actSSO
	case r < m.sso+m.check:
		return actCheck
	}
	return actRelogin
}

func (m capMix) total() int { return m.sso + m.check + m.relogin }

func parseCapacityFlags(args []string, stderr io.Writer) (*capOptions, error) {
	fs := flag.NewFlagSet("uias bench capacity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := crypto.DefaultArgon2()
	o := &capOptions{args: args}
	fs.IntVar(&o.people, "people", 10_000, "registered people (generated in the identity store)")
	fs.IntVar(&o.online, "online", 1_000, "people online at once (each with an SSO session, acting in turn)")
	fs.DurationVar(&o.think, "think", 10*time.Second, "mean time between two actions of one online person (exponential)")
	fs.DurationVar(&o.duration, "duration", 3*time.Minute, "measured time of the mix (and as much again of the floor)")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "warm-up of the first slice of each (not measured)")
	fs.IntVar(&o.slices, "slices", 2, "the mix and its floor alternate in this many slices")
	mix := fs.String("mix", "sso=55,check=35,relogin=10", "weights of the actions: sso (CAS ticket issued and validated), check (authz Check), relogin (logout, then password login)")
	fs.IntVar(&o.loginCallers, "login-callers", 0, "callers logging the online people in before the mix (default 4 x CPUs)")
	mem := fs.Uint("argon2-memory", uint(def.MemoryKiB), "argon2id memory in KiB")
	tm := fs.Uint("argon2-time", uint(def.Time), "argon2id iterations")
	th := fs.Uint("argon2-threads", uint(def.Threads), "argon2id parallelism")
	fs.StringVar(&o.out, "out", "", "also write the report as a markdown section into this file")
	fs.StringVar(&o.heading, "heading", "Capacity at the design's sizing (make bench-capacity)", "with --out: the section's heading")
	fs.StringVar(&o.level, "log-level", "error", "log level of the system under test (logs go to stderr)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.mix, err = parseMix(*mix); err != nil {
		return nil, err
	}
	if o.people < 1 || o.online < 1 || o.online > o.people*99/100 || o.think <= 0 || o.duration <= 0 || o.warmup < 0 || o.slices < 1 {
		return nil, errors.New("--people, --online, --think, --duration and --slices must be positive, --warmup not negative, and --online at most 99% of --people (1% of the generated people are disabled)")
	}
	if o.loginCallers <= 0 {
		o.loginCallers = 4 * runtime.GOMAXPROCS(0)
	}
	if *th < 1 || *th > 255 || *tm < 1 || *mem < 8**th {
		return nil, errors.New("invalid argon2 parameters")
	}
	o.argon2 = crypto.Argon2Params{MemoryKiB: uint32(*mem), Time: uint32(*tm), Threads: uint8(*th), SaltLen: def.SaltLen, KeyLen: def.KeyLen}
	return o, nil
}

// MainCapacity runs `uias bench capacity [flags]`; it returns the exit code.
func MainCapacity(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseCapacityFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "uias bench capacity: %v\n", err)
		return 2
	}
	if err := runCapacity(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "uias bench capacity: %v\n", err)
		return 1
	}
	return 0
}

type capAction int

const (
	actSSO capAction = iota
	actCheck
	actRelogin // its login; the logout is actLogout
	actLogout
	actEcho
	numActions
)

var actionNames = [numActions]string{"sso: CAS ticket issued + p3/serviceValidate (REST)", "check: authz Check (gRPC)",
	"login: password Authenticate (gRPC) + SSO session", "logout: SSO session ended", "floor: Health/Check on a bare gRPC server"}

// capStats is what one run of the population measured, per action.
type capStats struct {
	mu        sync.Mutex
	lat       [numActions][]time.Duration
	exhausted int
	failed    int
	firstErr  error
	window    time.Duration
	cpu, wall time.Duration
	rssPeak   uint64
	heapPeak  uint64
}

func (s *capStats) add(a capAction, o Outcome, err error, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch o {
	case OK:
		s.lat[a] = append(s.lat[a], d)
	case Exhausted:
		s.exhausted++
	default:
		s.failed++
		if s.firstErr == nil {
			s.firstErr = err
		}
	}
}

// all is every answered action's latency, sorted.
func (s *capStats) all() []time.Duration {
	var out []time.Duration
	for _, l := range s.lat {
		out = append(out, l...)
	}
	slices.Sort(out)
	return out
}

func (s *capStats) merge(b *capStats) {
	for a := range s.lat {
		s.lat[a] = append(s.lat[a], b.lat[a]...)
		slices.Sort(s.lat[a])
	}
	s.exhausted += b.exhausted
	s.failed += b.failed
	if s.firstErr == nil {
		s.firstErr = b.firstErr
	}
	s.window += b.window
	s.cpu += b.cpu
	s.wall += b.wall
	s.rssPeak = max(s.rssPeak, b.rssPeak)
	s.heapPeak = max(s.heapPeak, b.heapPeak)
}

// onlineUser is one online person: their account and SSO session.
type onlineUser struct {
	n   int    // generated person number
	id  string // user id
	tgt string // SSO session ("" after a failed login)
}

// capEnv is the running system with the online people.
type capEnv struct {
	e      *env
	tb     *ticketBench
	svc    *ticket.Service
	authz  authzv1.AuthzServiceClient
	appMD  metadata.MD
	users  []*onlineUser
	o      *capOptions
	relogs atomic.Int64
}

// capRamp is what logging the online people in measured.
type capRamp struct {
	logins    int
	exhausted int
	failed    int
	firstErr  error
	wall, cpu time.Duration
	lat       []time.Duration
}

func runCapacity(ctx context.Context, o *capOptions, stdout, stderr io.Writer) error {
	m := thisMachine()
	started := time.Now()
	say := func(format string, args ...any) { fmt.Fprintf(stderr, "uias bench capacity: "+format+"\n", args...) }
	say("starting UIAS (target all, SQLite, embedded NATS; argon2id m=%d KiB t=%d p=%d)", o.argon2.MemoryKiB, o.argon2.Time, o.argon2.Threads)
	e, err := startEnv(ctx, envConfig{Argon2: o.argon2, LogLevel: o.level, Log: stderr, StartTimeout: 5 * time.Minute})
	if err != nil {
		return err
	}
	defer e.close()
	rssIdle := rss()
	t0 := time.Now()
	if err := capPeople(ctx, e, o.people); err != nil {
		return err
	}
	genTime := time.Since(t0)
	say("%d people generated in %s", o.people, genTime.Round(time.Millisecond))
	tb, err := e.ticketBench(ctx)
	if err != nil {
		return err
	}
	c := &capEnv{e: e, tb: tb, svc: tb.svc, authz: authzv1.NewAuthzServiceClient(e.conn), o: o,
		appMD: metadata.Pairs(grpcx.MetadataAppID, e.appID, grpcx.MetadataAppSecret, e.secret)}
	for n := 0; len(c.users) < o.online; n++ {
		if n%100 == 7 { // disabled (see peopleSQL)
			continue
		}
		c.users = append(c.users, &onlineUser{n: n})
	}
	say("logging %d people in (%d callers)", o.online, o.loginCallers)
	ramp := c.rampUp(ctx)
	if ramp.failed > 0 || ramp.exhausted > 0 {
		say("ramp: %d failed, %d refused; first: %v", ramp.failed, ramp.exhausted, ramp.firstErr)
	}
	if ramp.logins == 0 {
		return fmt.Errorf("no one could log in: %w", ramp.firstErr)
	}
	say("ramp: %d logins in %s (%.1f/s, %.1f CPU-ms each)", ramp.logins, ramp.wall.Round(time.Millisecond),
		float64(ramp.logins)/ramp.wall.Seconds(), float64(ramp.cpu.Milliseconds())/float64(ramp.logins))
	say("mix %s, %d online, think %s: %s measured against the floor in %d slices", o.mix, o.online, o.think, o.duration, o.slices)
	runtime.GC()
	var real, floor *capStats
	ms := []Measure{
		func(w, d time.Duration) *Result {
			floor = mergeStats(floor, c.population(ctx, w, d, true))
			return &Result{}
		},
		func(w, d time.Duration) *Result {
			real = mergeStats(real, c.population(ctx, w, d, false))
			return &Result{}
		},
	}
	Interleave(ctx, o.slices, o.warmup, o.duration, ms...)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rep := &capReport{o: o, m: m, started: started, took: time.Since(started), genTime: genTime, ramp: ramp,
		real: real, floor: floor, rssIdle: rssIdle, workers: runtime.GOMAXPROCS(0)}
	fmt.Fprint(stdout, rep.text())
	if o.out != "" {
		old, _ := os.ReadFile(o.out)
		page := string(old)
		if page == "" {
			page = capPageHead
		}
		page = putSection(page, o.heading, rep.section())
		if err := os.WriteFile(o.out, []byte(page), 0o644); err != nil {
			return err
		}
		say("wrote %s", o.out)
	}
	return nil
}

func mergeStats(a, b *capStats) *capStats {
	if a == nil {
		return b
	}
	a.merge(b)
	return a
}

// capPeople generates n people linked to the benchmark's application in
// the running identity store, each with the password of the benchmark's
// own user (its hash copied: a hash per person would take minutes).
func capPeople(ctx context.Context, e *env, n int) error {
	db, err := store.Open(ctx, "sqlite", filepath.Join(e.dir, "identity.db"))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if err := generatePeople(ctx, db, e.appID, 0, n); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, db.Rebind("UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE id = ?) "+
		"WHERE password_hash = '{SSHA}generated'"), e.userID)
	return err
}

// login logs u in: password Authenticate over gRPC as the application,
// then an SSO session for them (what the CAS login page does).
func (c *capEnv) login(ctx context.Context, u *onlineUser) (Outcome, error) {
	res, err := c.e.auth.Authenticate(mergeOutgoing(ctx, c.e.authCtx), &identityv1.AuthenticateRequest{
		AppUserId: genLinkAcct(u.n), Password: userPassword, AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
	if err != nil {
		return grpcOutcome(err)
	}
	if res.GetResultCode() != 0 {
		return Failed, fmt.Errorf("authenticate %s: result %d %v", genLinkAcct(u.n), res.GetResultCode(), res.GetReason())
	}
	u.id = res.GetUser().GetId()
	tgt, _, err := c.svc.CreateSession(ctx, ticket.NewSession{UserID: u.id, Login: genLogin(u.n), AuthLevel: 1})
	if err != nil {
		return Failed, fmt.Errorf("create session: %w", err)
	}
	u.tgt = tgt
	return OK, nil
}

// rampUp logs every online person in, loginCallers at a time.
func (c *capEnv) rampUp(ctx context.Context) *capRamp {
	r := &capRamp{}
	var mu sync.Mutex
	var next atomic.Int64
	c0, t0 := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for range c.o.loginCallers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(c.users) {
					return
				}
				s := time.Now()
				out, err := oneCall(ctx, func(ctx context.Context) (Outcome, error) { return c.login(ctx, c.users[i]) })
				d := time.Since(s)
				mu.Lock()
				switch out {
				case OK:
					r.logins++
					r.lat = append(r.lat, d)
				case Exhausted:
					r.exhausted++
				default:
					r.failed++
					if r.firstErr == nil {
						r.firstErr = err
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.wall, r.cpu = time.Since(t0), cpuTime()-c0
	slices.Sort(r.lat)
	return r
}

// act does action a for u.
func (c *capEnv) act(ctx context.Context, a capAction, u *onlineUser, st *capStats, measured func(time.Time) bool) {
	record := func(a capAction, start time.Time, o Outcome, err error) {
		if end := time.Now(); measured(end) {
			st.add(a, o, err, end.Sub(start))
		}
	}
	start := time.Now()
	switch a {
	case actEcho:
		o, err := oneCall(ctx, c.e.callEcho)
		record(a, start, o, err)
	case actSSO, actCheck:
		if u.tgt == "" { // a failed login: log in first
			o, err := oneCall(ctx, func(ctx context.Context) (Outcome, error) { return c.login(ctx, u) })
			record(actRelogin, start, o, err)
			return
		}
		o, err := oneCall(ctx, func(ctx context.Context) (Outcome, error) {
			if a == actCheck {
				_, err := c.authz.Check(metadata.NewOutgoingContext(ctx, c.appMD), &authzv1.CheckRequest{
					Person: u.id, Resource: "doc", Operation: "read"})
				return grpcOutcome(err)
			}
			stk, _, err := c.svc.IssueServiceTicket(ctx, u.tgt, benchService, false)
			if err != nil {
				return Failed, fmt.Errorf("issue: %w", err)
			}
			ok, err := c.e.validateREST(c.tb)(ctx, stk)
			switch {
			case err != nil:
				return Failed, err
			case !ok:
				return Failed, errors.New("a fresh ticket was refused")
			}
			return OK, nil
		})
		record(a, start, o, err)
	case actRelogin:
		o, err := oneCall(ctx, func(ctx context.Context) (Outcome, error) {
			if u.tgt == "" {
				return OK, nil
			}
			_, err := c.svc.DestroySession(ctx, u.tgt)
			u.tgt = ""
			return grpcOutcome(err)
		})
		record(actLogout, start, o, err)
		start = time.Now()
		o, err = oneCall(ctx, func(ctx context.Context) (Outcome, error) { return c.login(ctx, u) })
		record(actRelogin, start, o, err)
		c.relogs.Add(1)
	}
}

// population runs the online people for warmup+dur: each waits a random
// think time and acts, again and again (floor: the no-op instead of the
// mix). Actions that end inside the last dur count.
func (c *capEnv) population(ctx context.Context, warmup, dur time.Duration, floor bool) *capStats {
	st := &capStats{window: dur}
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+dur)
	measured := func(t time.Time) bool { return !t.Before(from) && !t.After(to) }
	c0 := cpuTime()
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				st.rssPeak, st.heapPeak = max(st.rssPeak, rss()), max(st.heapPeak, heapInuse())
			}
		}
	})
	var wg sync.WaitGroup
	total := c.o.mix.total()
	for i, u := range c.users {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			// the first action at a uniform time within a think time: the
			// population's actions spread from the start
			wait := min(time.Duration(r.Int64N(int64(c.o.think))), warmup+dur)
			for {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				if !time.Now().Before(to) {
					return
				}
				a := actEcho
				if !floor {
					a = c.o.mix.pick(r.IntN(total))
				}
				c.act(ctx, a, u, st, measured)
				wait = min(time.Duration(r.ExpFloat64()*float64(c.o.think)), max(0, time.Until(to)))
			}
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	st.cpu, st.wall = cpuTime()-c0, time.Since(start)
	return st
}
