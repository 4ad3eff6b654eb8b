package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/grpcx"
	ulog "github.com/uias/uias/pkg/log"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

const (
	adminPassword = "Bench-Adm1n-Secret!"
	userPassword  = "Str0ng-Pass!42"
	userAccount   = "acct-bench"
	// benchAccounts is how many people the password logins are spread
	// over, round-robin: the bursts and storms are many people logging in
	// at once. All logins on one account would meet the login gate's
	// limit on parallel checks of one account (at most policy max_failures
	// + hash workers at once; the others wait a second: a guard against
	// parallel guessing, loginguard.go rule 3), which is not what these
	// rows measure.
	benchAccounts = 64
)

// envConfig is what the system under test is started with.
type envConfig struct {
	Argon2      crypto.Argon2Params
	HashWorkers int           // 0 = GOMAXPROCS
	HashQueue   int           // cap on waiting calls: 0 = none, -1 = no waiting
	MaxHashWait time.Duration // identity.max_hash_wait; 0 = the default
	SchedPolicy string        // identity.sched_policy: batch|inherit
	LogLevel    string
	Log         io.Writer
	// Prepare, when set, runs in the data directory before UIAS starts
	// (e.g. to put a generated identity store there).
	Prepare func(dir string) error
	// StartTimeout bounds the start and the seeding (0: 60 s).
	StartTimeout time.Duration
}

// workers is the effective number of hash workers for c (as NewHasher
// computes it).
func (c envConfig) workers() int {
	if c.HashWorkers > 0 {
		return c.HashWorkers
	}
	return runtime.GOMAXPROCS(0)
}

// waitCap is the most calls that may wait for a hash worker; -1: no cap
// besides the max hash wait.
func (c envConfig) waitCap() int {
	switch {
	case c.HashQueue == 0:
		return -1
	case c.HashQueue < 0:
		return 0
	}
	return c.HashQueue
}

// env is a running monolithic UIAS (target all, SQLite, embedded NATS) with
// one application, one user linked to it, an admin token and a bare echo
// gRPC server, all on loopback.
type env struct {
	dir    string
	app    *app.App
	conn   *grpc.ClientConn
	auth   identityv1.AuthServiceClient
	admin  identityv1.AdminServiceClient
	token  string
	appID  string
	secret string
	userID string

	echoSrv  *grpc.Server
	echoConn *grpc.ClientConn
	echo     healthpb.HealthClient
	bare     identityv1.AdminServiceClient // GetUser on the echo server (bareAdmin)

	httpBase   string
	httpClient *http.Client

	authCtx  context.Context // outgoing metadata: app credentials
	adminCtx context.Context // outgoing metadata: admin bearer token
	adminMD  metadata.MD     // the same metadata, made once (a client sends it as is)

	// accounts are the application accounts of the people the password
	// logins use, in turn (next); empty: userAccount alone.
	accounts []string
	next     atomic.Uint64

	lone *loneIdentity // sched phase, started on first use

	tickets *ticketBench // ticket phase, set up on first use
	authzB  *authzBench  // authz phase, set up on first use
}

func startEnv(ctx context.Context, ec envConfig) (_ *env, err error) {
	dir, err := os.MkdirTemp("", "uias-bench-*")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if ec.Prepare != nil {
		if err := ec.Prepare(dir); err != nil {
			return nil, err
		}
	}
	cfg := app.DefaultConfig()
	idc := identitycomponent.Settings(&cfg)
	cfg.DataDir = dir
	cfg.DB.DSN, idc.KeyFile = "", ""
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	idc.Argon2 = ec.Argon2
	idc.HashWorkers, idc.HashQueue = ec.HashWorkers, ec.HashQueue
	if ec.MaxHashWait > 0 {
		idc.MaxHashWait = ec.MaxHashWait
	}
	idc.BootstrapPassword = adminPassword
	if ec.SchedPolicy != "" {
		idc.SchedPolicy = ec.SchedPolicy
	}
	cfg.Log.Level = ec.LogLevel
	cfg.Complete()
	logw := ec.Log
	if logw == nil {
		logw = io.Discard
	}
	log, err := ulog.NewTo(cfg.Log, logw)
	if err != nil {
		return nil, err
	}
	startTimeout := ec.StartTimeout
	if startTimeout <= 0 {
		startTimeout = 60 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	e.app, err = app.Start(sctx, cfg, app.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("start uias: %w", err)
	}
	e.conn, err = grpc.NewClient(e.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	e.auth = identityv1.NewAuthServiceClient(e.conn)
	e.admin = identityv1.NewAdminServiceClient(e.conn)
	if err := e.seed(sctx); err != nil {
		return nil, err
	}
	if err := e.startEcho(); err != nil {
		return nil, err
	}
	e.httpBase = "http://" + e.app.HTTPAddr()
	e.httpClient = &http.Client{Timeout: callTimeout, Transport: &http.Transport{
		MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
		DisableCompression: true,
	}}
	return e, nil
}

// seed logs in as the bootstrap admin and creates an app, a user with a
// password and the account link between them.
func (e *env) seed(ctx context.Context) error {
	res, err := e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: "admin", Password: adminPassword})
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	e.token = res.GetToken()
	e.adminMD = metadata.Pairs("authorization", "Bearer "+e.token)
	e.adminCtx = metadata.NewOutgoingContext(context.Background(), e.adminMD)
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.token)
	orgs, err := e.admin.ListOrgs(actx, &identityv1.ListOrgsRequest{})
	if err != nil || len(orgs.GetOrgs()) == 0 {
		return fmt.Errorf("list orgs: %w (%d orgs)", err, len(orgs.GetOrgs()))
	}
	root := orgs.GetOrgs()[0].GetId()
	ar, err := e.admin.CreateApp(actx, &identityv1.CreateAppRequest{AppType: "OA", AppCode: "bench", Name: "Benchmark"})
	if err != nil {
		return fmt.Errorf("create app: %w", err)
	}
	e.appID, e.secret = ar.GetApp().GetId(), ar.GetAppSecret()
	e.authCtx = metadata.AppendToOutgoingContext(context.Background(), grpcx.MetadataAppID, e.appID, grpcx.MetadataAppSecret, e.secret)
	u, err := e.admin.CreateUser(actx, &identityv1.CreateUserRequest{LoginName: "bench", DisplayName: "Bench User",
		OrgId: root, IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: "11010519491231002X",
		Phone: "13812345678", Password: userPassword})
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	e.userID = u.GetId()
	if _, err := e.admin.CreateAccountLink(actx, &identityv1.CreateAccountLinkRequest{UserId: e.userID,
		AppId: e.appID, AppAccountId: userAccount}); err != nil {
		return fmt.Errorf("create link: %w", err)
	}
	e.accounts = []string{userAccount}
	for i := 1; i < benchAccounts; i++ {
		acct := fmt.Sprintf("%s-%02d", userAccount, i)
		u, err := e.admin.CreateUser(actx, &identityv1.CreateUserRequest{LoginName: fmt.Sprintf("bench%02d", i),
			DisplayName: fmt.Sprintf("Bench User %02d", i), OrgId: root, Password: userPassword})
		if err != nil {
			return fmt.Errorf("create user %d: %w", i, err)
		}
		if _, err := e.admin.CreateAccountLink(actx, &identityv1.CreateAccountLinkRequest{UserId: u.GetId(),
			AppId: e.appID, AppAccountId: acct}); err != nil {
			return fmt.Errorf("create link %d: %w", i, err)
		}
		e.accounts = append(e.accounts, acct)
	}
	return nil
}

// account is the application account of the next password login.
func (e *env) account() string {
	if len(e.accounts) == 0 {
		return userAccount
	}
	return e.accounts[(e.next.Add(1)-1)%uint64(len(e.accounts))]
}

// startEcho runs the floor for cheap RPCs: a plain grpc.Server on loopback
// with only the standard health service and no interceptors. It also
// answers GetUser with the answer UIAS gives for the benchmark's user, at
// once (bareAdmin): gRPC's own share of a GetUser (e.seed ran before).
func (e *env) startEcho() error {
	u, err := e.admin.GetUser(e.adminCtx, &identityv1.GetUserRequest{Id: e.userID})
	if err != nil {
		return fmt.Errorf("the user answer for the bare GetUser: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.echoSrv = grpc.NewServer()
	healthpb.RegisterHealthServer(e.echoSrv, health.NewServer())
	identityv1.RegisterAdminServiceServer(e.echoSrv, &bareAdmin{user: u})
	go func() { _ = e.echoSrv.Serve(lis) }()
	e.echoConn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	e.echo = healthpb.NewHealthClient(e.echoConn)
	e.bare = identityv1.NewAdminServiceClient(e.echoConn)
	return nil
}

// bareAdmin answers GetUser with one fixed user and nothing else: the
// UIAS answer without UIAS.
type bareAdmin struct {
	identityv1.UnimplementedAdminServiceServer
	user *identityv1.User
}

func (a *bareAdmin) GetUser(context.Context, *identityv1.GetUserRequest) (*identityv1.User, error) {
	return a.user, nil
}

// callGetUserBare is callGetUser's call (metadata, request, answer) to
// the echo server's bareAdmin.
func (e *env) callGetUserBare(ctx context.Context) (Outcome, error) { return e.getUserOn(ctx, e.bare) }

func (e *env) close() {
	if e.lone != nil {
		e.lone.close()
	}
	if e.httpClient != nil {
		e.httpClient.CloseIdleConnections()
	}
	if e.echoConn != nil {
		_ = e.echoConn.Close()
	}
	if e.echoSrv != nil {
		e.echoSrv.Stop()
	}
	if e.conn != nil {
		_ = e.conn.Close()
	}
	if e.app != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = e.app.Stop(sctx)
		cancel()
	}
	_ = os.RemoveAll(e.dir)
}

// grpcOutcome classifies a gRPC error.
func grpcOutcome(err error) (Outcome, error) {
	switch {
	case err == nil:
		return OK, nil
	case status.Code(err) == codes.ResourceExhausted:
		return Exhausted, err
	}
	return Failed, err
}

// callAuthenticate is one password Authenticate over gRPC; anything but
// result code 0 is a failure.
func (e *env) callAuthenticate(ctx context.Context) (Outcome, error) {
	ctx = mergeOutgoing(ctx, e.authCtx)
	res, err := e.auth.Authenticate(ctx, &identityv1.AuthenticateRequest{AppUserId: e.account(),
		Password: userPassword, AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
	if err != nil {
		return grpcOutcome(err)
	}
	if res.GetResultCode() != 0 {
		return Failed, fmt.Errorf("authenticate: result %d %v: %s", res.GetResultCode(), res.GetReason(), res.GetMessage())
	}
	return OK, nil
}

// callGetUser is AdminService/GetUser by id with the admin bearer token.
func (e *env) callGetUser(ctx context.Context) (Outcome, error) { return e.getUserOn(ctx, e.admin) }

// getUserOn is callGetUser's call to admin.
func (e *env) getUserOn(ctx context.Context, admin identityv1.AdminServiceClient) (Outcome, error) {
	ctx = metadata.NewOutgoingContext(ctx, e.adminMD) // made once, as a client would
	u, err := admin.GetUser(ctx, &identityv1.GetUserRequest{Id: e.userID})
	if err != nil {
		return grpcOutcome(err)
	}
	if u.GetId() != e.userID {
		return Failed, errors.New("get user: wrong user returned")
	}
	return OK, nil
}

// callEcho is Health/Check on the bare echo server.
func (e *env) callEcho(ctx context.Context) (Outcome, error) {
	res, err := e.echo.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return grpcOutcome(err)
	}
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return Failed, fmt.Errorf("echo: status %v", res.GetStatus())
	}
	return OK, nil
}

// callGetUserREST is GET /v1/users/{id} through the REST edge.
func (e *env) callGetUserREST(ctx context.Context) (Outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.httpBase+"/v1/users/"+e.userID, nil)
	if err != nil {
		return Failed, err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return Failed, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return OK, nil
	case http.StatusTooManyRequests:
		return Exhausted, errors.New("HTTP 429")
	}
	return Failed, fmt.Errorf("GET /v1/users/{id}: HTTP %d", resp.StatusCode)
}

// mergeOutgoing returns ctx (deadline, cancellation) carrying the outgoing
// metadata of md.
func mergeOutgoing(ctx, md context.Context) context.Context {
	m, _ := metadata.FromOutgoingContext(md)
	return metadata.NewOutgoingContext(ctx, m)
}
