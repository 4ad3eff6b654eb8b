// Package e2e runs whole UIAS processes (monolithic and microservices mode)
// over real loopback gRPC and HTTP, with embedded NATS and etcd.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

const adminPassword = "Adm1n-Secret!x"

// testConfig is a monolithic config on random loopback ports in dir, with
// argon2 at its cheapest valid setting so tests stay fast.
func testConfig(dir string) config.Config {
	c := app.DefaultConfig()
	c.DataDir = dir
	c.DB.DSN, identitycomponent.Settings(&c).KeyFile = "", ""
	c.GRPCAddr, c.HTTPAddr, c.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	identitycomponent.Settings(&c).Argon2 = crypto.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	identitycomponent.Settings(&c).BootstrapAuditorPassword = auditorPassword
	c.Log.Level = "error"
	c.Complete()
	return c
}

type env struct {
	t     testing.TB
	app   *app.App
	conn  *grpc.ClientConn
	auth  identityv1.AuthServiceClient
	admin identityv1.AdminServiceClient
	token string
	// audToken: the first-start security auditor's (aud)
	audToken string
	root     string // root org id
	http     string // base URL of the REST edge
	// seeded counts the people seed made: each has an ID number of their
	// own (one account per person).
	seeded int
	// appointed: by login, the activation passwords appointments gave
	// (noteGrant) and who chose their own (firstAdminLogin).
	appointed sync.Map
}

// seedIDNumber is the resident ID number of the nth person seed makes
// (from 0): the first has 11010519491231002X, which several tests know;
// the others distinct valid numbers (their check character computed).
func seedIDNumber(n int) string {
	if n == 0 {
		return "11010519491231002X"
	}
	return residentID(fmt.Sprintf("110105194912%05d", n))
}

// residentID completes the 17 digits first with their check character
// (GB 11643).
func residentID(first string) string {
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		sum += int(first[i]-'0') * weights[i]
	}
	return first + string("10X98765432"[sum%11])
}

func start(t *testing.T, cfg config.Config) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{Logger: zaptest.NewLogger(t, zaptestLevel()), BootstrapPassword: adminPassword})
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Target, err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		_ = a.Stop(sctx)
	})
	e := &env{t: t, app: a}
	if a.HTTPAddr() != "" {
		e.http = "http://" + a.HTTPAddr()
	}
	if a.GRPCAddr() != "" {
		e.dial(a.GRPCAddr())
	}
	return e
}

func (e *env) dial(addr string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = conn.Close() })
	e.conn = conn
	e.auth = identityv1.NewAuthServiceClient(conn)
	e.admin = identityv1.NewAdminServiceClient(conn)
}

// login gets an admin token and the root org.
func (e *env) login() {
	e.t.Helper()
	ctx := context.Background()
	res, err := e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: "admin", Password: adminPassword})
	if err != nil {
		e.t.Fatalf("admin login: %v", err)
	}
	e.token = res.GetToken()
	orgs, err := e.admin.ListOrgs(e.adm(), &identityv1.ListOrgsRequest{})
	if err != nil || len(orgs.GetOrgs()) == 0 {
		e.t.Fatalf("list orgs: %v", err)
	}
	e.root = orgs.GetOrgs()[0].GetId()
}

// adm is a context carrying the admin token.
func (e *env) adm() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+e.token)
}

// aud is a context carrying a token of the first-start security auditor
// (who alone appoints more auditors).
func (e *env) aud() context.Context {
	e.t.Helper()
	if e.audToken == "" {
		// The first start appoints the auditor in authz after creating the
		// person: the login waits for the grant (asked with the system
		// administrator's token, when there is one), so that it is not
		// tried, refused and audited as a failed login meanwhile (tests
		// count failed logins); then retried until it succeeds.
		if e.token != "" {
			grants := authzv1.NewAuthzAdminServiceClient(e.conn)
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				l, err := grants.ListGrants(e.adm(), &authzv1.ListGrantsRequest{RoleId: "security_auditor"})
				if err == nil && len(l.GetGrants()) > 0 {
					break
				}
			}
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			res, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "auditor", Password: auditorPassword})
			if err == nil {
				e.audToken = res.GetToken()
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("the first-start security auditor logs in: %v", err)
			}
		}
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+e.audToken)
}

// appCtx is a context carrying app credentials.
func appCtx(id, secret string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "x-uias-app-id", id, "x-uias-app-secret", secret)
}

type fixture struct {
	appID, secret string
	userID        string
	login         string
	account       string
	password      string
}

// seed creates an app, a user with a password and a link (account = "acct-"+login).
func (e *env) seed(appCode, login string, appReq *identityv1.CreateAppRequest, userMod func(*identityv1.CreateUserRequest)) fixture {
	e.t.Helper()
	if appReq == nil {
		appReq = &identityv1.CreateAppRequest{}
	}
	appReq.AppType, appReq.AppCode = "OA", appCode
	if appReq.Name == "" {
		appReq.Name = "Office automation " + appCode
	}
	ar, err := e.admin.CreateApp(e.adm(), appReq)
	if err != nil {
		e.t.Fatalf("create app: %v", err)
	}
	ur := &identityv1.CreateUserRequest{LoginName: login, DisplayName: "User " + login, OrgId: e.root,
		IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: seedIDNumber(e.seeded), Phone: "13812345678",
		Password: "Str0ng-Pass!42"}
	e.seeded++
	if userMod != nil {
		userMod(ur)
	}
	u, err := e.admin.CreateUser(e.adm(), ur)
	if err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	if _, err := e.admin.CreateAccountLink(e.adm(), &identityv1.CreateAccountLinkRequest{UserId: u.GetId(),
		AppId: ar.GetApp().GetId(), AppAccountId: "acct-" + login}); err != nil {
		e.t.Fatalf("create link: %v", err)
	}
	return fixture{appID: ar.GetApp().GetId(), secret: ar.GetAppSecret(), userID: u.GetId(), login: login,
		account: "acct-" + login, password: ur.GetPassword()}
}

func (f fixture) ctx() context.Context { return appCtx(f.appID, f.secret) }

func (e *env) authPW(f fixture, user, pw string) (*identityv1.AuthenticateResponse, error) {
	return e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: user, Password: pw,
		AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
}

func wantCode(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("want %v, got %v", code, err)
	}
	if reason != "" {
		if got := errorInfo(st); got == nil || got.GetReason() != reason {
			t.Fatalf("want ErrorInfo reason %s, got %v", reason, got)
		}
	}
	return st
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}

func wantResult(t *testing.T, res *identityv1.AuthenticateResponse, err error, code int32, reason identityv1.Reason) {
	t.Helper()
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if res.GetResultCode() != code || res.GetReason() != reason {
		t.Fatalf("want %d/%v, got %d/%v (%s)", code, reason, res.GetResultCode(), res.GetReason(), res.GetMessage())
	}
}

// rest calls the REST edge; it returns status and decoded JSON body.
func (e *env) rest(method, path string, headers map[string]string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.http+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	if len(out) == 0 {
		out["_raw"] = string(raw)
	}
	return resp.StatusCode, out, resp.Header
}

func appHeaders(f fixture) map[string]string {
	return map[string]string{"X-Uias-App-Id": f.appID, "X-Uias-App-Secret": f.secret}
}

// eventually polls cond until it holds or 30s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamEvents reads every message of a stream whose subject has prefix.
func streamEvents(t *testing.T, natsURL, stream, prefix string) []map[string]any {
	t.Helper()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	return streamEventsConn(t, nc, stream, prefix)
}

// appEvents is streamEvents on the NATS of process a (in memory for the
// embedded server of target all, which has no port).
func appEvents(t *testing.T, a *app.App, stream, prefix string) []map[string]any {
	t.Helper()
	nc, err := a.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	return streamEventsConn(t, nc, stream, prefix)
}

// streamEventsConn is streamEvents over an open connection (e.g. the
// in-process one of a monolithic process: App.ConnectNATS).
func streamEventsConn(t *testing.T, nc *nats.Conn, stream, prefix string) []map[string]any {
	t.Helper()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return nil
	}
	var out []map[string]any
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if !strings.HasPrefix(m.Subject, prefix) {
			continue
		}
		evs, err := events.Unpack(m.Subject, m.Header, m.Data) // a pack of access records holds many
		if err != nil {
			t.Errorf("message %d of %s: %v", seq, stream, err)
			continue
		}
		for _, ev := range evs {
			rec := map[string]any{}
			_ = json.Unmarshal(ev.Payload, &rec)
			rec["_subject"] = m.Subject
			rec["_msgid"] = ev.ID
			rec["_raw"] = string(ev.Payload)
			out = append(out, rec)
		}
	}
	return out
}

// noteGrant keeps the activation password of an appointment (the grant
// of an administrator role to login), which firstAdminLogin uses.
func (e *env) noteGrant(login string, res *authzv1.GrantResponse) {
	if pw := res.GetActivationPassword(); pw != "" {
		e.appointed.Store(login, pw)
	}
}

// firstAdminLogin logs login in as an administrator, as the person would:
// the first time with the activation password their appointment gave
// (noteGrant), else pw (a password an administrator set, as the legacy
// is_admin flag appoints), choosing ownPassword(pw) when identity asks
// (PASSWORD_CHANGE_REQUIRED); later with ownPassword(pw). It returns the
// token.
func (e *env) firstAdminLogin(t *testing.T, login, pw string) (string, error) {
	t.Helper()
	ctx := context.Background()
	if v, _ := e.appointed.Load(login); v == "own" {
		res, err := e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: login, Password: ownPassword(pw)})
		return res.GetToken(), err
	}
	cur := pw
	if v, ok := e.appointed.Load(login); ok {
		cur = v.(string)
	}
	res, err := e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: login, Password: cur})
	if st, ok := status.FromError(err); ok && st.Code() == codes.FailedPrecondition && errorInfo(st).GetReason() == "PASSWORD_CHANGE_REQUIRED" {
		res, err = e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: login, Password: cur, NewPassword: ownPassword(pw)})
	}
	if err == nil {
		e.appointed.Store(login, "own")
	}
	return res.GetToken(), err
}

// ownPassword is the password a person chooses at their first
// administrator login (firstAdminLogin).
func ownPassword(pw string) string { return pw + "-own" }
