// Package bench holds go test benchmarks of UIAS hot paths and their floors,
// over real loopback gRPC/HTTP against a monolithic process (app.Start,
// target all, SQLite in a temp dir):
//
//	go test ./tests/bench -run '^$' -bench . -benchtime 3s
//	go test ./tests/bench -run '^$' -bench GetUser -cpuprofile cpu.out
//
// Compare BenchmarkAuthenticateGRPC with BenchmarkRawArgon2id and
// BenchmarkGetUserGRPC / BenchmarkGetUserREST with BenchmarkEchoGRPC. The
// `uias bench` command (make bench) measures the same paths with goals and
// writes docs/benchmarks.md. Nothing here asserts timings.
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

const (
	adminPassword = "Bench-Adm1n-Secret!"
	userPassword  = "Str0ng-Pass!42"
	account       = "acct-bench"
	cheapCallers  = 50 // concurrent callers of the cheap RPC benchmarks
)

type env struct {
	dir      string
	app      *app.App
	conn     *grpc.ClientConn
	auth     identityv1.AuthServiceClient
	admin    identityv1.AdminServiceClient
	token    string
	userID   string
	authCtx  context.Context
	adminCtx context.Context
	echoSrv  *grpc.Server
	echoConn *grpc.ClientConn
	echo     healthpb.HealthClient
	httpURL  string
	http     *http.Client
}

func start(argon2 crypto.Argon2Params) (_ *env, err error) {
	dir, err := os.MkdirTemp("", "uias-gobench-*")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.DB.DSN, cfg.Identity.KeyFile = "", ""
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	cfg.Identity.Argon2 = argon2
	cfg.Log.Level = "error"
	cfg.Complete()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if e.app, err = app.Start(ctx, cfg, app.Options{Logger: zap.NewNop(), BootstrapPassword: adminPassword}); err != nil {
		return nil, err
	}
	if e.conn, err = grpc.NewClient(e.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, err
	}
	e.auth, e.admin = identityv1.NewAuthServiceClient(e.conn), identityv1.NewAdminServiceClient(e.conn)
	res, err := e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: "admin", Password: adminPassword})
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	e.token = res.GetToken()
	e.adminCtx = metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+e.token)
	orgs, err := e.admin.ListOrgs(e.adminCtx, &identityv1.ListOrgsRequest{})
	if err != nil || len(orgs.GetOrgs()) == 0 {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	ar, err := e.admin.CreateApp(e.adminCtx, &identityv1.CreateAppRequest{AppType: "OA", AppCode: "bench", Name: "Benchmark"})
	if err != nil {
		return nil, fmt.Errorf("create app: %w", err)
	}
	e.authCtx = metadata.AppendToOutgoingContext(context.Background(),
		"x-uias-app-id", ar.GetApp().GetId(), "x-uias-app-secret", ar.GetAppSecret())
	u, err := e.admin.CreateUser(e.adminCtx, &identityv1.CreateUserRequest{LoginName: "bench", DisplayName: "Bench User",
		OrgId: orgs.GetOrgs()[0].GetId(), IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: "11010519491231002X",
		Phone: "13812345678", Password: userPassword})
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	e.userID = u.GetId()
	if _, err := e.admin.CreateAccountLink(e.adminCtx, &identityv1.CreateAccountLinkRequest{UserId: e.userID,
		AppId: ar.GetApp().GetId(), AppAccountId: account}); err != nil {
		return nil, fmt.Errorf("create link: %w", err)
	}
	// The floor for cheap RPCs: a plain gRPC server with only the health service.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e.echoSrv = grpc.NewServer()
	healthpb.RegisterHealthServer(e.echoSrv, health.NewServer())
	go func() { _ = e.echoSrv.Serve(lis) }()
	if e.echoConn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		return nil, err
	}
	e.echo = healthpb.NewHealthClient(e.echoConn)
	e.httpURL = "http://" + e.app.HTTPAddr() + "/v1/users/" + e.userID
	e.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, DisableCompression: true}}
	return e, nil
}

func (e *env) stop() {
	if e.http != nil {
		e.http.CloseIdleConnections()
	}
	for _, c := range []*grpc.ClientConn{e.echoConn, e.conn} {
		if c != nil {
			_ = c.Close()
		}
	}
	if e.echoSrv != nil {
		e.echoSrv.Stop()
	}
	if e.app != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = e.app.Stop(ctx)
		cancel()
	}
	_ = os.RemoveAll(e.dir)
}

func (e *env) authenticate(ctx context.Context) error {
	res, err := e.auth.Authenticate(ctx, &identityv1.AuthenticateRequest{AppUserId: account, Password: userPassword,
		AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
	if err == nil && res.GetResultCode() != 0 {
		err = fmt.Errorf("authenticate: result %d %v", res.GetResultCode(), res.GetReason())
	}
	return err
}

func (e *env) getUser(ctx context.Context) error {
	_, err := e.admin.GetUser(ctx, &identityv1.GetUserRequest{Id: e.userID})
	return err
}

func (e *env) echoCheck(ctx context.Context) error {
	_, err := e.echo.Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func (e *env) getUserREST(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.httpURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/users/{id}: HTTP %d", resp.StatusCode)
	}
	return nil
}

// The benchmark process (default argon2id parameters) is started on first
// use and stopped by TestMain, so `go test` without -bench starts nothing.
var (
	shared     *env
	sharedErr  error
	sharedOnce sync.Once
)

func benchEnv(b *testing.B) *env {
	b.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start(crypto.DefaultArgon2()) })
	if sharedErr != nil {
		b.Fatal(sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

// parallel runs call from about conc goroutines (RunParallel with
// parallelism ceil(conc/GOMAXPROCS)) and reports the p99 latency.
func parallel(b *testing.B, conc int, md context.Context, call func(context.Context) error) {
	b.Helper()
	b.SetParallelism(max(1, (conc+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0)))
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		if md != nil {
			m, _ := metadata.FromOutgoingContext(md)
			ctx = metadata.NewOutgoingContext(ctx, m)
		}
		var lat []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if err := call(ctx); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(all) > 0 {
		slices.Sort(all)
		b.ReportMetric(float64(all[(len(all)*99)/100])/float64(time.Millisecond), "p99-ms")
	}
}

// BenchmarkRawArgon2id is the floor of BenchmarkAuthenticateGRPC: bare
// argon2id with the default parameters in GOMAXPROCS goroutines.
func BenchmarkRawArgon2id(b *testing.B) {
	p := crypto.DefaultArgon2()
	pw, salt := []byte(userPassword), []byte("0123456789abcdef")
	parallel(b, runtime.GOMAXPROCS(0), nil, func(context.Context) error {
		crypto.RawArgon2id(pw, salt, p)
		return nil
	})
}

// BenchmarkAuthenticateGRPC is password Authenticate over gRPC with 2
// callers per hash worker (all workers busy, none refused).
func BenchmarkAuthenticateGRPC(b *testing.B) {
	e := benchEnv(b)
	parallel(b, 2*runtime.GOMAXPROCS(0), e.authCtx, e.authenticate)
}

// BenchmarkGetUserGRPC is AdminService/GetUser with a bearer token, 50 callers.
func BenchmarkGetUserGRPC(b *testing.B) {
	e := benchEnv(b)
	parallel(b, cheapCallers, e.adminCtx, e.getUser)
}

// BenchmarkGetUserREST is GET /v1/users/{id} through the REST edge, 50 callers.
func BenchmarkGetUserREST(b *testing.B) {
	e := benchEnv(b)
	parallel(b, cheapCallers, nil, e.getUserREST)
}

// BenchmarkEchoGRPC is the floor of the cheap RPCs: Health/Check on a plain
// grpc.Server without interceptors, 50 callers.
func BenchmarkEchoGRPC(b *testing.B) {
	e := benchEnv(b)
	parallel(b, cheapCallers, nil, e.echoCheck)
}

// TestHarness checks the benchmark harness itself (one call of each kind,
// cheap argon2id), so the benchmarks cannot rot unnoticed.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a UIAS")
	}
	e, err := start(crypto.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer e.stop()
	for name, call := range map[string]func(context.Context) error{
		"authenticate": func(context.Context) error {
			m, _ := metadata.FromOutgoingContext(e.authCtx)
			return e.authenticate(metadata.NewOutgoingContext(context.Background(), m))
		},
		"get user": func(context.Context) error { return e.getUser(e.adminCtx) },
		"echo":     e.echoCheck,
		"rest":     e.getUserREST,
	} {
		if err := call(context.Background()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
