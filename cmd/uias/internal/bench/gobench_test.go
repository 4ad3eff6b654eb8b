package bench

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/cmd/uias/internal/serve"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	auditcomponent "github.com/uias/uias/services/audit/component"
	"github.com/uias/uias/services/audit/ingest"
)

// These are the `go test -bench` views of the same measurements `uias
// bench` reports; they share its environment (startEnv) and calls.

var (
	goBenchOnce sync.Once
	goBenchEnv  *env
	goBenchErr  error
)

func benchEnv(b *testing.B) *env {
	b.Helper()
	goBenchOnce.Do(func() {
		goBenchEnv, goBenchErr = startEnv(context.Background(), envConfig{Argon2: crypto.DefaultArgon2(), LogLevel: "error"})
	})
	if goBenchErr != nil {
		b.Fatal(goBenchErr)
	}
	return goBenchEnv
}

func TestMain(m *testing.M) {
	// The sched phase starts `uias serve` as os.Executable(): this binary.
	if os.Getenv(ChildEnv) != "" && len(os.Args) > 1 && os.Args[1] == "serve" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := serve.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// The overload phase runs its callers as `bench storm-client` (storm.go).
	if os.Getenv(ChildEnv) != "" && len(os.Args) > 1 && os.Args[1] == "bench" {
		os.Exit(Main(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	if goBenchEnv != nil {
		goBenchEnv.close()
	}
	os.Exit(code)
}

// runParallel drives call from conc goroutines for b.N calls in all.
func runParallel(b *testing.B, conc int, call func(context.Context) (Outcome, error)) {
	b.Helper()
	b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	c0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := call(context.Background()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	// CPU time of the process (client, server and what runs beside them,
	// such as the audit component storing the access records) per call: a
	// loaded machine disturbs it less than ns/op.
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkRawArgon2id is the floor of the saturated Authenticate row:
// RawArgon2idReusing in GOMAXPROCS goroutines, each in memory it keeps as
// a hash worker does. Its cpu-ns/op beside BenchmarkAuthenticateGRPC's is
// a login's CPU against a bare hash's, less disturbed by a loaded machine
// than the rates.
func BenchmarkRawArgon2id(b *testing.B) {
	p := crypto.DefaultArgon2()
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt)
	crypto.RawArgon2idReusing([]byte(userPassword), salt, p) // the memory, outside the measurement
	b.ResetTimer()
	c0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			crypto.RawArgon2idReusing([]byte(userPassword), salt, p)
		}
	})
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkAuthenticateGRPC(b *testing.B) {
	e := benchEnv(b)
	runParallel(b, runtime.GOMAXPROCS(0)*2, e.callAuthenticate)
}

func BenchmarkGetUserGRPC(b *testing.B) { runParallel(b, 50, benchEnv(b).callGetUser) }

func BenchmarkGetUserREST(b *testing.B) { runParallel(b, 50, benchEnv(b).callGetUserREST) }

func BenchmarkEchoGRPC(b *testing.B) {
	e := benchEnv(b)
	runParallel(b, 50, e.callEcho)
}

// authzBenchSetup loads the small authz data set into the shared
// environment's component once (the full one takes minutes to generate).
func authzBenchSetup(b *testing.B) (*env, *authzBench) {
	b.Helper()
	e := benchEnv(b)
	if e.authzB == nil {
		ab, err := e.authzSetup(context.Background(), &options{authzSize: "small"}, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		e.authzB = ab
	}
	return e, e.authzB
}

// BenchmarkAuthzCheckGRPC is AuthzService/Check with the application's
// credentials, 50 callers (compare BenchmarkEchoGRPC).
func BenchmarkAuthzCheckGRPC(b *testing.B) {
	e, ab := authzBenchSetup(b)
	runParallel(b, 50, e.authzGRPC(ab))
}

// BenchmarkAuthzCheckGRPCOutside is BenchmarkAuthzCheckGRPC with the
// access records stored outside the measurement, as the goal row (36)
// measures it: its cpu-ns/op beside BenchmarkEchoGRPC's.
func BenchmarkAuthzCheckGRPCOutside(b *testing.B) {
	e, ab := authzBenchSetup(b)
	defer pauseIngest(b, e)()
	runParallel(b, 50, e.authzGRPC(ab))
}

// BenchmarkAuthzCheckREST is POST /v1/authz/check through the REST edge.
func BenchmarkAuthzCheckREST(b *testing.B) {
	e, ab := authzBenchSetup(b)
	runParallel(b, 50, e.authzREST(ab))
}

// ticketPairs runs CAS ticket pairs (issue in the process, validate with
// validate) as the ticket phase does, with the audit component's consumer
// paused (records stored outside the measurement: the goal rows), and
// stores what waited after.
func ticketPairs(b *testing.B, validate func(*env, *ticketBench) func(context.Context, string) (bool, error)) {
	e := benchEnv(b)
	tb, err := e.ticketBench(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer pauseIngest(b, e)()
	runParallel(b, 50, tb.pair(validate(e, tb)))
}

// BenchmarkTicketPairGRPC is an ST issued and validated over gRPC
// (TicketService/ValidateServiceTicket), 50 callers (compare
// BenchmarkEchoGRPC; the goal is 0.5x its rate).
func BenchmarkTicketPairGRPC(b *testing.B) {
	ticketPairs(b, func(_ *env, tb *ticketBench) func(context.Context, string) (bool, error) { return tb.validateGRPC })
}

// BenchmarkTicketPairREST is an ST issued and validated with GET
// /cas/p3/serviceValidate through the edge, 50 callers.
func BenchmarkTicketPairREST(b *testing.B) {
	ticketPairs(b, func(e *env, tb *ticketBench) func(context.Context, string) (bool, error) { return e.validateREST(tb) })
}

// BenchmarkGetUserGRPCOutside is BenchmarkGetUserGRPC with the access
// records stored outside the measurement (the audit component's consumer
// paused while it runs, as the goal row of `uias bench` measures it):
// its cpu-ns/op beside BenchmarkEchoGRPC's is the CPU a GetUser costs
// against the floor's.
func BenchmarkGetUserGRPCOutside(b *testing.B) {
	e := benchEnv(b)
	defer pauseIngest(b, e)()
	runParallel(b, 50, e.callGetUser)
}

// pauseIngest pauses the audit component's consumer (records stored
// outside the measurement) and returns what resumes it: that stops the
// timer and waits until what waited is stored, so the next benchmark does
// not run beside the ingest.
func pauseIngest(b *testing.B, e *env) func() {
	b.Helper()
	h, ok := e.app.Value(auditcomponent.Name).(*auditcomponent.Handle)
	if !ok {
		b.Fatal("the audit component does not run in the benchmark process")
	}
	h.Ingester.Pause()
	return func() {
		b.StopTimer()
		h.Ingester.Resume()
		if err := e.waitAuditStored(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// waitAuditStored waits until the audit consumer has nothing pending.
func (e *env) waitAuditStored(ctx context.Context) error {
	nc, err := e.app.ConnectNATS()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.Consumer(ctx, events.StreamAudit, ingest.Durable)
	if err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond) // the publisher sends what it holds every 100 ms
	_, err = waitIngested(ctx, cons, 3*time.Minute)
	return err
}

// The three below take GetUser's cost apart (ADR 0012), each beside
// BenchmarkEchoGRPC in one run.

// BenchmarkGetUserGRPCNoRecords is BenchmarkGetUserGRPCOutside with the
// access records off: what the records cost a call.
func BenchmarkGetUserGRPCNoRecords(b *testing.B) {
	e := benchEnv(b)
	defer pauseIngest(b, e)()
	e.app.SetAccessLog(false)
	defer e.app.SetAccessLog(true)
	runParallel(b, 50, e.callGetUser)
}

// BenchmarkHealthUIAS is Health/Check on the UIAS server (its interceptor
// chain; no caller auth, no access record): what the chain costs beside
// the bare echo server.
func BenchmarkHealthUIAS(b *testing.B) {
	e := benchEnv(b)
	hc := healthpb.NewHealthClient(e.conn)
	runParallel(b, 50, func(ctx context.Context) (Outcome, error) {
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return grpcOutcome(err)
		}
		return OK, nil
	})
}

// BenchmarkHealthUIASWithToken is BenchmarkHealthUIAS with the metadata a
// GetUser carries (the administrator's bearer token; unused by Health):
// what sending it costs in gRPC and HTTP/2 alone.
func BenchmarkHealthUIASWithToken(b *testing.B) {
	e := benchEnv(b)
	hc := healthpb.NewHealthClient(e.conn)
	runParallel(b, 50, func(ctx context.Context) (Outcome, error) {
		ctx = metadata.NewOutgoingContext(ctx, e.adminMD)
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return grpcOutcome(err)
		}
		return OK, nil
	})
}

// BenchmarkGetUserBareGRPC is GetUser's call (the bearer metadata, the
// request, the answer of the user BenchmarkGetUserGRPCOutside reads) to
// the echo floor's plain grpc.Server, whose handler returns that answer at
// once: what gRPC alone costs a GetUser, before any of the work UIAS does
// for it (ADR 0012).
func BenchmarkGetUserBareGRPC(b *testing.B) {
	e := benchEnv(b)
	runParallel(b, 50, e.callGetUserBare)
}
