package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// fakeAdmin is a minimal AdminService: it records what it received and
// returns canned objects.
type fakeAdmin struct {
	identityv1.UnimplementedAdminServiceServer

	mu        sync.Mutex
	auths     []string // authorization metadata of every authenticated call
	listCalls []string // page tokens received by ListOrgs
	lastUser  *identityv1.CreateUserRequest
	lastApp   *identityv1.CreateAppRequest
	lastLock  *identityv1.LockUserRequest
	lastRot   *identityv1.RotateAppSecretRequest
	revoked   []string // tokens revoked by AdminLogout
}

var validTokens = map[string]bool{"Bearer tok-login": true, "Bearer tok-flag": true}

func (f *fakeAdmin) authorize(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	v := strings.Join(md.Get("authorization"), "|")
	f.mu.Lock()
	f.auths = append(f.auths, v)
	f.mu.Unlock()
	if !validTokens[v] || slices.Contains(f.revoked, v) {
		return status.Error(codes.Unauthenticated, "invalid or expired admin token")
	}
	return nil
}

func (f *fakeAdmin) AdminLogout(ctx context.Context, _ *identityv1.AdminLogoutRequest) (*identityv1.AdminLogoutResponse, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, f.auths[len(f.auths)-1])
	return &identityv1.AdminLogoutResponse{}, nil
}

func (f *fakeAdmin) revokedTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.revoked)
}

func (f *fakeAdmin) lastAuth() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.auths) == 0 {
		return ""
	}
	return f.auths[len(f.auths)-1]
}

func (f *fakeAdmin) AdminLogin(_ context.Context, r *identityv1.AdminLoginRequest) (*identityv1.AdminLoginResponse, error) {
	if r.GetLoginName() == "otpadmin" && r.GetPassword() == "p@ss word" && r.GetOtp() != "123456" {
		// An administrator with an authenticator app, as identity answers.
		return nil, apierr.ToStatus(apierr.New(apierr.FailedPrecondition, "TOTP_CODE_REQUIRED", "your account has an authenticator app"))
	}
	if r.GetLoginName() == "otpadmin" && r.GetPassword() == "p@ss word" {
		r.LoginName = "admin"
	}
	if r.GetLoginName() != "admin" || r.GetPassword() != "p@ss word" {
		return nil, status.Error(codes.Unauthenticated, "wrong login name or password")
	}
	return &identityv1.AdminLoginResponse{
		Token:     "tok-login",
		ExpiresAt: timestamppb.New(timestamppb.Now().AsTime().Add(3600e9)),
		User:      &identityv1.UserSummary{Id: "u-admin", LoginName: "admin"},
	}, nil
}

func org(id string) *identityv1.Org {
	return &identityv1.Org{Id: id, Code: "c-" + id, Name: "Org " + id, Status: identityv1.Status_STATUS_ACTIVE}
}

func (f *fakeAdmin) CreateOrg(ctx context.Context, r *identityv1.CreateOrgRequest) (*identityv1.Org, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	return &identityv1.Org{Id: "org-new", Code: r.GetCode(), Name: r.GetName(), ParentId: r.GetParentId(), Status: identityv1.Status_STATUS_ACTIVE}, nil
}

func (f *fakeAdmin) GetOrg(ctx context.Context, r *identityv1.GetOrgRequest) (*identityv1.Org, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	if r.GetId() == "missing" {
		return nil, status.Error(codes.NotFound, "org not found")
	}
	if r.GetId() == "storage-down" {
		// A server's answer: UNAVAILABLE with ErrorInfo, not a transport failure.
		return nil, apierr.ToStatus(apierr.New(apierr.Unavailable, "UNAVAILABLE", "storage is unavailable, try again later"))
	}
	return org(r.GetId()), nil
}

// ListOrgs serves five orgs in pages of two.
func (f *fakeAdmin) ListOrgs(ctx context.Context, r *identityv1.ListOrgsRequest) (*identityv1.ListOrgsResponse, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.listCalls = append(f.listCalls, r.GetPageToken())
	f.mu.Unlock()
	switch r.GetPageToken() {
	case "":
		return &identityv1.ListOrgsResponse{Orgs: []*identityv1.Org{org("o1"), org("o2")}, NextPageToken: "p2"}, nil
	case "p2":
		return &identityv1.ListOrgsResponse{Orgs: []*identityv1.Org{org("o3"), org("o4")}, NextPageToken: "p3"}, nil
	case "p3":
		return &identityv1.ListOrgsResponse{Orgs: []*identityv1.Org{org("o5")}}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "bad page token")
}

func (f *fakeAdmin) CreateUser(ctx context.Context, r *identityv1.CreateUserRequest) (*identityv1.User, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastUser = r
	f.mu.Unlock()
	return &identityv1.User{Id: "user-new", LoginName: r.GetLoginName(), DisplayName: r.GetDisplayName(), OrgId: r.GetOrgId(), IdType: r.GetIdType(),
		UserType: r.GetUserType()}, nil
}

func (f *fakeAdmin) LockUser(ctx context.Context, r *identityv1.LockUserRequest) (*identityv1.User, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastLock = r
	f.mu.Unlock()
	return &identityv1.User{Id: r.GetId(), Locked: true}, nil
}

func (f *fakeAdmin) CreateApp(ctx context.Context, r *identityv1.CreateAppRequest) (*identityv1.CreateAppResponse, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastApp = r
	f.mu.Unlock()
	return &identityv1.CreateAppResponse{
		App:       &identityv1.App{Id: "app-123", AppType: r.GetAppType(), AppCode: r.GetAppCode(), Name: r.GetName(), Status: identityv1.AppStatus_APP_STATUS_ACTIVE},
		AppSecret: "s3cr3t-value-xyz",
	}, nil
}

func (f *fakeAdmin) RotateAppSecret(ctx context.Context, r *identityv1.RotateAppSecretRequest) (*identityv1.CreateAppResponse, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastRot = r
	f.mu.Unlock()
	return &identityv1.CreateAppResponse{App: &identityv1.App{Id: r.GetId()}, AppSecret: "rotated-secret"}, nil
}

type harness struct {
	t     *testing.T
	addr  string
	srv   *fakeAdmin
	env   map[string]string
	cfg   string
	stdin string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	f := &fakeAdmin{}
	identityv1.RegisterAdminServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cfg := filepath.Join(t.TempDir(), "uias")
	return &harness{
		t: t, addr: lis.Addr().String(), srv: f, cfg: cfg,
		env: map[string]string{"UIAS_ADDR": lis.Addr().String(), "UIAS_CONFIG_DIR": cfg},
	}
}

func (h *harness) run(args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(h.stdin), &out, &errb, func(k string) string { return h.env[k] })
	return code, out.String(), errb.String()
}

func (h *harness) mustRun(args ...string) string {
	h.t.Helper()
	code, out, errs := h.run(args...)
	if code != 0 {
		h.t.Fatalf("ctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

func (h *harness) login() {
	h.t.Helper()
	h.stdin = "p@ss word\n"
	h.mustRun("login", "--user", "admin", "--password-stdin")
	h.stdin = ""
}

// An administrator with an authenticator app: without --otp the login
// says how to give the code and saves no token; with it, it logs in.
func TestLoginWithAuthenticatorCode(t *testing.T) {
	h := newHarness(t)
	h.stdin = "p@ss word\n"
	code, _, errs := h.run("login", "--user", "otpadmin", "--password-stdin")
	if code == 0 || !strings.Contains(errs, "--otp CODE") || !strings.Contains(errs, "no token was saved") {
		t.Fatalf("without the code: exit %d %s", code, errs)
	}
	h.stdin = "p@ss word\n"
	if out := h.mustRun("login", "--user", "otpadmin", "--password-stdin", "--otp", " 123456 "); !strings.Contains(out, "Logged in as otpadmin") {
		t.Fatalf("with the code: %q", out)
	}
}

func TestLoginStoresTokenAndLaterCommandsSendIt(t *testing.T) {
	h := newHarness(t)
	h.stdin = "p@ss word\r\nignored second line\n"
	out := h.mustRun("login", "--user", "admin", "--password-stdin")
	if !strings.Contains(out, "Logged in as admin") {
		t.Errorf("login output: %q", out)
	}
	path := filepath.Join(h.cfg, "token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if strings.TrimSpace(string(b)) != "tok-login" {
		t.Errorf("token file holds %q", b)
	}
	if strings.Contains(out, "tok-login") {
		t.Errorf("table output shows the token: %q", out)
	}

	h.stdin = ""
	out = h.mustRun("org", "get", "o1")
	if got := h.srv.lastAuth(); got != "Bearer tok-login" {
		t.Errorf("authorization sent = %q", got)
	}
	if !strings.Contains(out, "c-o1") {
		t.Errorf("org get output: %q", out)
	}

	// --token wins over the file.
	h.mustRun("--token", "tok-flag", "org", "get", "o1")
	if got := h.srv.lastAuth(); got != "Bearer tok-flag" {
		t.Errorf("authorization with --token = %q", got)
	}

	// logout revokes the token on the server and removes the file; then
	// commands fail cleanly.
	if out := h.mustRun("logout"); !strings.Contains(out, "token revoked") {
		t.Errorf("logout output %q", out)
	}
	if got := h.srv.revokedTokens(); !slices.Equal(got, []string{"Bearer tok-login"}) {
		t.Errorf("revoked on the server: %v", got)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("token file still there after logout: %v", err)
	}
	code, _, errs := h.run("org", "get", "o1")
	if code != 1 || !strings.Contains(errs, "not logged in") {
		t.Errorf("after logout: exit %d, stderr %q", code, errs)
	}
}

func TestLoginConfigDirFallbacks(t *testing.T) {
	h := newHarness(t)
	xdg := t.TempDir()
	delete(h.env, "UIAS_CONFIG_DIR")
	h.env["XDG_CONFIG_HOME"] = xdg
	h.env["UIAS_ADMIN_PASSWORD"] = "p@ss word"
	h.mustRun("login", "--user", "admin")
	if _, err := os.Stat(filepath.Join(xdg, "uias", "token")); err != nil {
		t.Errorf("token not in $XDG_CONFIG_HOME/uias: %v", err)
	}
	home := t.TempDir()
	delete(h.env, "XDG_CONFIG_HOME")
	h.env["HOME"] = home
	h.mustRun("login", "--user", "admin")
	if _, err := os.Stat(filepath.Join(home, ".config", "uias", "token")); err != nil {
		t.Errorf("token not in ~/.config/uias: %v", err)
	}
}

func TestLoginFailures(t *testing.T) {
	h := newHarness(t)
	// No password source: usage error.
	if code, _, errs := h.run("login", "--user", "admin"); code != 2 || !strings.Contains(errs, "--password-stdin") {
		t.Errorf("login without password: exit %d, stderr %q", code, errs)
	}
	// Wrong password: server error, exit 1, no token file.
	h.stdin = "wrong\n"
	code, _, errs := h.run("login", "--user", "admin", "--password-stdin")
	if code != 1 || errs != "error: wrong login name or password (Unauthenticated)\n" {
		t.Errorf("bad login: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(h.cfg, "token")); !os.IsNotExist(err) {
		t.Errorf("token file written after failed login")
	}
	// A password flag does not exist.
	if code, _, _ := h.run("login", "--user", "admin", "--password", "x"); code != 2 {
		t.Errorf("--password flag accepted: exit %d", code)
	}
}

func TestMissingToken(t *testing.T) {
	h := newHarness(t)
	code, out, errs := h.run("org", "list")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if out != "" || !strings.Contains(errs, "not logged in") || !strings.Contains(errs, "uias ctl login") {
		t.Errorf("stdout %q, stderr %q", out, errs)
	}
}

func TestEnvCredentialsLogInForOneInvocation(t *testing.T) {
	h := newHarness(t)
	h.env["UIAS_ADMIN_USER"] = "admin"
	h.env["UIAS_ADMIN_PASSWORD"] = "p@ss word"
	h.mustRun("org", "get", "o1")
	if got := h.srv.lastAuth(); got != "Bearer tok-login" {
		t.Errorf("authorization = %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.cfg, "token")); !os.IsNotExist(err) {
		t.Errorf("token file written by an env login")
	}
	// The one-off token is revoked when the command is done.
	if got := h.srv.revokedTokens(); !slices.Equal(got, []string{"Bearer tok-login"}) {
		t.Errorf("one-off token not revoked: %v", got)
	}
}

// login prints the token only when asked: -o json output is often logged.
func TestLoginPrintsNoTokenUnlessAsked(t *testing.T) {
	h := newHarness(t)
	h.env["UIAS_ADMIN_PASSWORD"] = "p@ss word"
	for _, args := range [][]string{{"login", "--user", "admin"}, {"-o", "json", "login", "--user", "admin"}} {
		out := h.mustRun(args...)
		if strings.Contains(out, "tok-login") {
			t.Errorf("%v printed the token: %s", args, out)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "login", "--user", "admin")), &m); err != nil || m["expires_at"] == nil {
		t.Errorf("json login output: %v %v", m, err)
	}
	out := h.mustRun("-o", "json", "login", "--user", "admin", "--print-token")
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["token"] != "tok-login" {
		t.Errorf("--print-token json: %v %s", err, out)
	}
	if out := h.mustRun("login", "--user", "admin", "--print-token"); !strings.Contains(out, "Token: tok-login") {
		t.Errorf("--print-token: %q", out)
	}
}

func TestLogoutOutcomes(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(h.cfg, "token")
	// Nothing stored: nothing to do.
	if out := h.mustRun("logout"); !strings.Contains(out, "Not logged in") {
		t.Errorf("logout without a token: %q", out)
	}
	// A token the server no longer knows: the file goes, exit 0.
	if err := os.MkdirAll(h.cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("tok-old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := h.mustRun("logout"); !strings.Contains(out, "no longer valid") {
		t.Errorf("logout of an expired token: %q", out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("token file kept: %v", err)
	}
	// --token revokes that token and leaves the file alone.
	h.login()
	out := h.mustRun("--token", "tok-flag", "-o", "json", "logout")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["revoked"] != true || m["removed"] != false {
		t.Errorf("logout --token: %v %s", err, out)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("logout --token removed the file: %v", err)
	}
	// Server unreachable: the file goes anyway, and the user is told the
	// token is still valid.
	h.env["UIAS_ADDR"] = "127.0.0.1:1"
	code, _, errs := h.run("--timeout", "2s", "logout")
	if code != 1 || !strings.Contains(errs, "token file removed, but the server could not revoke the token") {
		t.Errorf("unreachable: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("token file kept: %v", err)
	}
}

func TestExpiredStoredToken(t *testing.T) {
	h := newHarness(t)
	if err := os.MkdirAll(h.cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.cfg, "token"), []byte("tok-old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := h.run("org", "get", "o1")
	if code != 1 || !strings.Contains(errs, "(Unauthenticated)") || !strings.Contains(errs, "uias ctl login") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestJSONOutput(t *testing.T) {
	h := newHarness(t)
	h.login()
	out := h.mustRun("org", "get", "o7", "--output", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if m["id"] != "o7" || m["code"] != "c-o7" || m["status"] != "STATUS_ACTIVE" {
		t.Errorf("unexpected JSON %v", m)
	}
	if _, ok := m["parent_id"]; !ok {
		t.Errorf("proto field names / unpopulated fields expected: %v", m)
	}

	out = h.mustRun("--output", "json", "org", "create", "--code", "hq", "--name", "Head office")
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["code"] != "hq" {
		t.Errorf("org create json: %v %s", err, out)
	}
}

func TestAppCreatePrintsSecretOnce(t *testing.T) {
	h := newHarness(t)
	h.login()
	out := h.mustRun("app", "create", "--type", "erp", "--code", "fin", "--name", "Finance",
		"--allow", "10.0.0.0/8", "--allow", "192.0.2.1")
	if n := strings.Count(out, "s3cr3t-value-xyz"); n != 1 {
		t.Errorf("secret printed %d times:\n%s", n, out)
	}
	if !strings.Contains(out, "App_ID") || !strings.Contains(out, "app-123") || !strings.Contains(out, "App_Secret") {
		t.Errorf("missing App_ID/App_Secret:\n%s", out)
	}
	if !strings.Contains(out, "shown only once") {
		t.Errorf("no once-only warning:\n%s", out)
	}
	r := h.srv.lastApp
	if r.GetRateLimit() != 100 || r.GetRateBurst() != 200 || strings.Join(r.GetIpAllowList(), ",") != "10.0.0.0/8,192.0.2.1/32" {
		t.Errorf("request %v", r)
	}

	out = h.mustRun("app", "create", "--type", "erp", "--code", "fin2", "--name", "F2", "-o", "json")
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil || m["app_secret"] != "s3cr3t-value-xyz" {
		t.Errorf("json: %v %s", err, out)
	}

	out = h.mustRun("app", "rotate-secret", "app-123", "--overlap", "1h")
	if strings.Count(out, "rotated-secret") != 1 || !strings.Contains(out, "shown only once") {
		t.Errorf("rotate output:\n%s", out)
	}
	if h.srv.lastRot.OverlapSeconds == nil || *h.srv.lastRot.OverlapSeconds != 3600 {
		t.Errorf("overlap sent: %v", h.srv.lastRot.OverlapSeconds)
	}
	h.mustRun("app", "rotate-secret", "app-123", "--overlap", "0s")
	if h.srv.lastRot.OverlapSeconds == nil || *h.srv.lastRot.OverlapSeconds != 0 {
		t.Errorf("overlap 0 must be sent explicitly: %v", h.srv.lastRot.OverlapSeconds)
	}
}

func TestUsageErrors(t *testing.T) {
	h := newHarness(t)
	h.login()
	for _, args := range [][]string{
		{},
		{"nosuch"},
		{"org"},
		{"org", "frobnicate"},
		{"org", "get"},
		{"org", "get", "a", "b"},
		{"org", "create", "--name", "x"},
		{"org", "move", "o1"},
		{"org", "list", "--bogus"},
		{"org", "list", "--output", "yaml"},
		{"org", "list", "--timeout", "0s"},
		{"user", "create", "--login", "l", "--name", "n", "--org", "o", "--id-type", "licence"},
		{"user", "update", "u1", "--id-type", "licence"},
		{"user", "create", "--login", "l", "--name", "n", "--org", "o", "--type", "company"},
		{"user", "update", "u1", "--type", "company"},
		{"user", "list", "--type", "company"},
		{"app", "create", "--type", "t", "--code", "c", "--name", "n", "--allow", "not-a-cidr"},
		{"group", "add-member", "g1"},
		{"user", "set-password", "u1"}, // no password on stdin
		{"user", "lock", "u1", "--duration", "-5m"},
	} {
		code, out, errs := h.run(args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stdout %q, stderr %q)", args, code, out, errs)
			continue
		}
		if !strings.Contains(errs, "error:") && len(args) > 0 {
			t.Errorf("%v: stderr lacks an error line: %q", args, errs)
		}
		if !strings.Contains(errs, "Usage") && !strings.Contains(errs, "uias ctl help") {
			t.Errorf("%v: stderr gives no usage hint: %q", args, errs)
		}
	}
	// Help is not an error.
	for _, args := range [][]string{{"help"}, {"--help"}, {"org", "create", "--help"}, {"org", "-h"}} {
		if code, out, _ := h.run(args...); code != 0 || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
	}
}

func TestAllPaginates(t *testing.T) {
	h := newHarness(t)
	h.login()

	code, out, errs := h.run("org", "list")
	if code != 0 || strings.Count(out, "c-o") != 2 || !strings.Contains(errs, "--page-token p2") {
		t.Errorf("one page: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	h.srv.mu.Lock()
	h.srv.listCalls = nil
	h.srv.mu.Unlock()
	out = h.mustRun("org", "list", "--all", "--output", "json")
	var resp struct {
		Orgs []struct {
			ID string `json:"id"`
		} `json:"orgs"`
		Next string `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var ids []string
	for _, o := range resp.Orgs {
		ids = append(ids, o.ID)
	}
	if strings.Join(ids, ",") != "o1,o2,o3,o4,o5" || resp.Next != "" {
		t.Errorf("--all returned %v next %q", ids, resp.Next)
	}
	if got := strings.Join(h.srv.listCalls, ","); got != ",p2,p3" {
		t.Errorf("page tokens requested: %q", got)
	}

	// Table form: header plus five aligned rows.
	out = h.mustRun("org", "list", "--all")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "ID") {
		t.Errorf("table:\n%s", out)
	}
	col := strings.Index(lines[0], "CODE")
	for _, l := range lines[1:] {
		if strings.Index(l, "c-o") != col {
			t.Errorf("columns not aligned:\n%s", out)
			break
		}
	}
}

func TestServerErrorReported(t *testing.T) {
	h := newHarness(t)
	h.login()
	code, out, errs := h.run("org", "get", "missing")
	if code != 1 || out != "" || errs != "error: org not found (NotFound)\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Unimplemented on the fake server is still reported as a status.
	code, _, errs = h.run("group", "get", "g1")
	if code != 1 || !strings.HasSuffix(errs, "(Unimplemented)\n") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	// A service of another component (a server running without it, as in
	// microservices mode): the refusal says which component serves it.
	code, _, errs = h.run("service", "list")
	if code != 1 || !strings.Contains(errs, "unknown service uias.ticket.v1.ServiceRegistryService") ||
		!strings.Contains(errs, "served by the ticket component") || !strings.Contains(errs, "--addr") {
		t.Errorf("a ticket command at identity's address: exit %d, stderr %q", code, errs)
	}
}

func TestUnreachableServer(t *testing.T) {
	h := newHarness(t)
	h.login()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	code, _, errs := h.run("--addr", dead, "org", "get", "o1")
	if code != 1 || !strings.HasSuffix(errs, "(Unavailable)\n") || !strings.Contains(errs, "cannot reach the UIAS server at "+dead) {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	// A server that answers UNAVAILABLE was reached.
	code, _, errs = h.run("org", "get", "storage-down")
	if code != 1 || strings.Contains(errs, "cannot reach") || !strings.Contains(errs, "storage is unavailable") {
		t.Errorf("answered UNAVAILABLE: exit %d, stderr %q", code, errs)
	}
}

// TestHTTPPortNotGRPC: ctl pointed at an HTTP/1 server (the REST port) says
// so plainly instead of the gRPC library's "http2: frame too large" text.
func TestHTTPPortNotGRPC(t *testing.T) {
	h := newHarness(t)
	h.login()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not found", http.StatusNotFound)
	}))
	defer web.Close()
	addr := strings.TrimPrefix(web.URL, "http://")
	code, out, errs := h.run("--addr", addr, "org", "get", "o1")
	want := "error: " + addr + " answered in HTTP/1, not gRPC: it is probably the REST (HTTP) port; " +
		"give the gRPC address with --addr / UIAS_ADDR (default 127.0.0.1:9090) (Unavailable)\n"
	if code != 1 || out != "" || errs != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, out, errs, want)
	}
	// A server that accepts the connection but says nothing is not HTTP/1.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	if answersHTTP1(lis.Addr().String()) {
		t.Error("a silent server was taken for HTTP/1")
	}
	if answersHTTP1("dns:///"+addr) || answersHTTP1("127.0.0.1:1") {
		t.Error("a resolver target or a closed port was taken for HTTP/1")
	}
	if !answersHTTP1(addr) {
		t.Error("the HTTP server was not recognised")
	}
	// A TLS server reached in plaintext: ctl says to give its CA (the
	// transport's own words are "error reading server preface: EOF").
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	code, _, errs = h.run("--addr", tlsAddr, "org", "get", "o1")
	if code != 1 || !strings.Contains(errs, tlsAddr+" speaks TLS: give the CA of its certificate with --tls-ca FILE (or UIAS_TLS_CA)") {
		t.Errorf("a TLS server in plaintext: exit %d, stderr %q", code, errs)
	}
	if speaksTLS(addr) || speaksTLS(lis.Addr().String()) || speaksTLS("127.0.0.1:1") || !speaksTLS(tlsAddr) {
		t.Error("speaksTLS misjudged a server")
	}
	// UIAS_TLS_CA is --tls-ca's default.
	h.env["UIAS_TLS_CA"] = filepath.Join(t.TempDir(), "no-such-ca.pem")
	code, _, errs = h.run("--addr", tlsAddr, "org", "get", "o1")
	delete(h.env, "UIAS_TLS_CA")
	if code == 0 || !strings.Contains(errs, "reading --tls-ca") {
		t.Errorf("UIAS_TLS_CA: exit %d, stderr %q", code, errs)
	}
}

func TestGlobalFlagsAnywhere(t *testing.T) {
	h := newHarness(t)
	h.login()
	delete(h.env, "UIAS_ADDR")
	for _, args := range [][]string{
		{"--addr", h.addr, "org", "get", "o1"},
		{"org", "--addr", h.addr, "get", "o1"},
		{"org", "get", "--addr", h.addr, "o1"},
		{"org", "get", "o1", "--addr=" + h.addr, "--output=json"},
	} {
		code, out, errs := h.run(args...)
		if code != 0 || !strings.Contains(out, "c-o1") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

func TestUserCommands(t *testing.T) {
	h := newHarness(t)
	h.login()
	h.stdin = "Init1al!pw\n"
	h.mustRun("user", "create", "--login", "li.lei", "--name", "Li Lei", "--org", "o1",
		"--id-type", "passport", "--id-number", "E1234567", "--password-stdin", "--must-change", "--admin")
	r := h.srv.lastUser
	if r.GetPassword() != "Init1al!pw" || r.GetIdType() != identityv1.IdType_ID_TYPE_PASSPORT ||
		!r.GetMustChangePassword() || !r.GetIsAdmin() || r.GetPasswordNeverExpires() {
		t.Errorf("create user request %v", r)
	}
	if r.GetUserType() != identityv1.UserType_USER_TYPE_PERSON {
		t.Errorf("default user type %v", r.GetUserType())
	}
	h.stdin = ""
	out := h.mustRun("user", "create", "--login", "acme", "--name", "某某航运有限公司", "--org", "o1", "--type", "unit",
		"--id-type", "uscc", "--id-number", "91310115MA01A2B322")
	r = h.srv.lastUser
	if r.GetUserType() != identityv1.UserType_USER_TYPE_UNIT || r.GetIdType() != identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE {
		t.Errorf("create unit request %v", r)
	}
	if !strings.Contains(out, "Type") || !strings.Contains(out, "unit") || !strings.Contains(out, "uscc") {
		t.Errorf("unit shown as %q", out)
	}
	h.mustRun("user", "create", "--login", "oc", "--name", "OC", "--org", "o1", "--type", "UNIT", "--id-type", "org_code", "--id-number", "12345678-8")
	if r = h.srv.lastUser; r.GetIdType() != identityv1.IdType_ID_TYPE_ORGANIZATION_CODE || r.GetIdNumber() != "12345678-8" {
		t.Errorf("org code request %v", r)
	}
	h.mustRun("user", "lock", "u1")
	if h.srv.lastLock.GetDurationSeconds() != 1800 {
		t.Errorf("default lock duration %d", h.srv.lastLock.GetDurationSeconds())
	}
	h.mustRun("user", "lock", "u1", "--duration", "0")
	if h.srv.lastLock.GetDurationSeconds() != 0 {
		t.Errorf("lock until unlocked sent %d", h.srv.lastLock.GetDurationSeconds())
	}
}
