// This test mirrors README.md "Quick start": it starts UIAS the way
// `make run` does (target all, embedded NATS, SQLite), then runs the same
// `uias ctl` commands, the same curl request and the same grpcurl call as
// the README, and checks the answers the README shows. Keep the two in sync:
// TestQuickStartMatchesREADME fails when a command used here no longer
// appears verbatim in README.md.
package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// Values used by the README example.
const (
	readmeAdminPassword = "Quick-Start-Pass-1" // the README's UIAS_BOOTSTRAP_PASSWORD
	readmeUserPassword  = "Correct-Horse-42"
	readmeAccount       = "A1001"
	// readmeAuthBody is the JSON body of the README's curl and grpcurl calls.
	readmeAuthBody = `{"app_user_id": "A1001", "password": "Correct-Horse-42", "auth_type": "AUTH_TYPE_PASSWORD"}`
)

// readmeLines are README.md lines (after trimming) that this test performs.
// The uias ctl ones are run below through ctl.Main with the same arguments.
var readmeLines = []string{
	"make run",
	"UIAS_BOOTSTRAP_PASSWORD='" + readmeAdminPassword + "' make run",
	`printf '%s\n' "$ADMIN_PW" | go run ./cmd/uias ctl login --user admin --password-stdin`,
	`json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }`,
	`ORG_ID=$(go run ./cmd/uias ctl org list -o json | json_field id)`,
	`APP_JSON=$(go run ./cmd/uias ctl app create --type OA --code oa --name "Office automation" -o json)`,
	`APP_ID=$(echo "$APP_JSON" | json_field id)`,
	`APP_SECRET=$(echo "$APP_JSON" | json_field app_secret)`,
	`USER_ID=$(printf '%s\n' '` + readmeUserPassword + `' | go run ./cmd/uias ctl user create --login alice --name "Alice Wang" --org "$ORG_ID" --password-stdin -o json | json_field id)`,
	`go run ./cmd/uias ctl link create --user "$USER_ID" --app "$APP_ID" --account ` + readmeAccount,
	`go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3`,
	`-H "x-uias-app-id: $APP_ID" -H "x-uias-app-secret: $APP_SECRET" \`,
	`-d '` + readmeAuthBody + `' \`,
	`127.0.0.1:9090 uias.identity.v1.AuthService/Authenticate`,
	`curl -s -X POST http://127.0.0.1:8080/v1/authenticate \`,
	`-H "X-Uias-App-Id: $APP_ID" -H "X-Uias-App-Secret: $APP_SECRET" \`,
	`-H 'Content-Type: application/json' \`,
	`-d '` + readmeAuthBody + `'`,
	`"result_code": 0,`,
	`"reason": "REASON_OK",`,
	`"login_name": "alice",`,
	`"display_name": "Alice Wang",`,
	`"resultCode": 0,`,
	`UIAS first start: system administrator login "admin", password: `,
	`This password is shown once. Set UIAS_BOOTSTRAP_PASSWORD to choose it instead.`,
}

func TestQuickStartMatchesREADME(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	text := string(b)
	for _, want := range readmeLines {
		if !have[want] && !strings.Contains(text, want) {
			t.Errorf("README.md no longer contains %q; keep README.md \"Quick start\" and this test in sync", want)
		}
	}
}

// quickConfig is `make run`'s configuration (target all, ./data layout)
// in a temp dir on random loopback ports, with cheap argon2 for speed.
func quickConfig(t *testing.T) config.Config {
	t.Helper()
	c := app.DefaultConfig()
	c.DataDir = t.TempDir()
	c.DB.DSN, identitycomponent.Settings(&c).KeyFile = "", ""
	c.GRPCAddr, c.HTTPAddr, c.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	identitycomponent.Settings(&c).Argon2 = crypto.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	c.Complete()
	if c.Target != config.TargetAll {
		t.Fatalf("default target is %q, the README assumes all", c.Target)
	}
	return c
}

func startQuick(t *testing.T, bootstrapPassword string) (*app.App, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	a, err := app.Start(ctx, quickConfig(t), app.Options{Out: &out, BootstrapPassword: bootstrapPassword})
	if err != nil {
		t.Fatalf("app.Start: %v", err)
	}
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
		defer c()
		if err := a.Stop(sctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a, out.String()
}

// uiasCtl runs `uias ctl args...` against a with stdin and returns stdout;
// a non-zero exit fails the test.
type uiasCtl struct {
	t   *testing.T
	env map[string]string
}

func newCtl(t *testing.T, a *app.App) *uiasCtl {
	// Only these variables are visible to ctl: the test server's address and
	// a private token directory (the README uses the defaults).
	return &uiasCtl{t: t, env: map[string]string{"UIAS_ADDR": a.GRPCAddr(), "UIAS_CONFIG_DIR": t.TempDir()}}
}

func (c *uiasCtl) run(stdin string, args ...string) string {
	c.t.Helper()
	r := c.exec(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("uias ctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// jsonField is the README's shell helper
//
//	json_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }
//
// in Go: the first line carrying "name": "value" gives value.
func jsonField(t *testing.T, out, name string) string {
	t.Helper()
	re := regexp.MustCompile(`^.*"` + regexp.QuoteMeta(name) + `": *"([^"]*)".*$`)
	for _, line := range strings.Split(out, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %q field in:\n%s", name, out)
	return ""
}

// readmeLoginOutput is the README's example output of ctl login as a
// pattern: its token path and time stand for any.
func readmeLoginOutput(t *testing.T) *regexp.Regexp {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Logged in as admin; ") {
			p := regexp.QuoteMeta(l)
			p = strings.Replace(p, regexp.QuoteMeta("/home/you/.config/uias/token"), `\S+/token`, 1)
			p = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(p, `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
			return regexp.MustCompile("^" + p + "\n$")
		}
	}
	t.Fatal("README.md shows no login output (Logged in as admin; ...)")
	return nil
}

func TestQuickStart(t *testing.T) {
	// Terminal 1: UIAS_BOOTSTRAP_PASSWORD='Quick-Start-Pass-1' make run
	a, notice := startQuick(t, readmeAdminPassword)
	// The administrator's password is not printed; the security auditor's
	// (UIAS_BOOTSTRAP_AUDITOR_PASSWORD unset) is.
	if strings.Contains(notice, "first start: system administrator") || strings.Contains(notice, readmeAdminPassword) ||
		!strings.Contains(notice, `security auditor login "auditor"`) {
		t.Errorf("with UIAS_BOOTSTRAP_PASSWORD set only the auditor's password should be printed, got %q", notice)
	}
	c := newCtl(t, a)

	// Terminal 2, as in the README, which shows what login prints (its
	// token path and expiry aside).
	loginOut := c.run(readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin")
	if want := readmeLoginOutput(t); !want.MatchString(loginOut) {
		t.Errorf("login printed %q; README.md shows %q", loginOut, want)
	}
	orgID := jsonField(t, c.run("", "org", "list", "-o", "json"), "id")
	appJSON := c.run("", "app", "create", "--type", "OA", "--code", "oa", "--name", "Office automation", "-o", "json")
	appID := jsonField(t, appJSON, "id")
	appSecret := jsonField(t, appJSON, "app_secret")
	userID := jsonField(t, c.run(readmeUserPassword+"\n", "user", "create", "--login", "alice", "--name", "Alice Wang",
		"--org", orgID, "--password-stdin", "-o", "json"), "id")
	c.run("", "link", "create", "--user", userID, "--app", appID, "--account", readmeAccount)

	// The management console the README names is on under make run.
	t.Run("console", func(t *testing.T) {
		resp, err := http.Get("http://" + a.HTTPAddr() + "/console/login")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="login_name"`) {
			t.Fatalf("/console/login under make run: HTTP %d: %s", resp.StatusCode, body)
		}
	})

	// The curl example.
	t.Run("curl", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+"/v1/authenticate", strings.NewReader(readmeAuthBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Uias-App-Id", appID)
		req.Header.Set("X-Uias-App-Secret", appSecret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
		}
		var got struct {
			ResultCode *int   `json:"result_code"`
			Reason     string `json:"reason"`
			Message    string `json:"message"`
			User       *struct {
				ID          string `json:"id"`
				LoginName   string `json:"login_name"`
				DisplayName string `json:"display_name"`
				OrgID       string `json:"org_id"`
			} `json:"user"`
			MustChangePassword *bool  `json:"must_change_password"`
			Serial             string `json:"serial"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if got.ResultCode == nil || *got.ResultCode != 0 || got.Reason != "REASON_OK" || got.Message != "authenticated" {
			t.Fatalf("want result_code 0 REASON_OK, got %s", body)
		}
		if got.User == nil || got.User.ID != userID || got.User.LoginName != "alice" ||
			got.User.DisplayName != "Alice Wang" || got.User.OrgID != orgID {
			t.Fatalf("user: %s", body)
		}
		if got.MustChangePassword == nil || *got.MustChangePassword || got.Serial == "" {
			t.Fatalf("must_change_password/serial: %s", body)
		}
		if rid := resp.Header.Get("X-Request-Id"); rid != got.Serial {
			t.Errorf("serial %q should be the request id %q", got.Serial, rid)
		}
	})

	// The README's malformed request (no auth_type): the 400 body it shows
	// is the one the edge answers (it named four auth types, and no field,
	// after auth type 5 had come).
	t.Run("malformed request", func(t *testing.T) {
		readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^(\{"code": 3, "message": "auth_type must be .*)$`).FindSubmatch(readme)
		if m == nil {
			t.Fatal(`README.md shows no 400 answer ({"code": 3, "message": "auth_type must be ...)`)
		}
		req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+"/v1/authenticate",
			strings.NewReader(`{"app_user_id": "A1001", "password": "Correct-Horse-42"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Uias-App-Id", appID)
		req.Header.Set("X-Uias-App-Secret", appSecret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("HTTP %d, README.md shows 400: %s", resp.StatusCode, body)
		}
		var got, want any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if err := json.Unmarshal(m[1], &want); err != nil {
			t.Fatalf("README.md's 400 answer is not JSON: %v: %s", err, m[1])
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Errorf("the edge answers\n%s\nREADME.md shows\n%s", gb, wb)
		}
	})

	// The grpcurl example: same body, same two metadata headers.
	t.Run("grpcurl", func(t *testing.T) {
		conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var req identityv1.AuthenticateRequest
		if err := protojson.Unmarshal([]byte(readmeAuthBody), &req); err != nil {
			t.Fatal(err)
		}
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-uias-app-id", appID, "x-uias-app-secret", appSecret)
		res, err := identityv1.NewAuthServiceClient(conn).Authenticate(ctx, &req)
		if err != nil {
			t.Fatal(err)
		}
		if res.GetResultCode() != 0 || res.GetReason() != identityv1.Reason_REASON_OK {
			t.Fatalf("want 0 REASON_OK, got %v", res)
		}
		u := res.GetUser()
		if u.GetId() != userID || u.GetLoginName() != "alice" || u.GetDisplayName() != "Alice Wang" || u.GetOrgId() != orgID {
			t.Fatalf("user: %v", u)
		}
	})

	// The README's "wrong password" line.
	t.Run("wrong password", func(t *testing.T) {
		conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-uias-app-id", appID, "x-uias-app-secret", appSecret)
		res, err := identityv1.NewAuthServiceClient(conn).Authenticate(ctx, &identityv1.AuthenticateRequest{
			AppUserId: "alice", Password: "wrong", AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetResultCode() != -1 || res.GetReason() != identityv1.Reason_REASON_BAD_CREDENTIALS {
			t.Fatalf("want -1 REASON_BAD_CREDENTIALS, got %v", res)
		}
	})
}

// TestQuickStartGeneratedPassword checks the README's first-start notice
// (plain `make run`, no UIAS_BOOTSTRAP_PASSWORD) and that the printed
// password logs in.
func TestQuickStartGeneratedPassword(t *testing.T) {
	a, notice := startQuick(t, "")
	m := regexp.MustCompile(`(?m)^UIAS first start: system administrator login "admin", password: (\S+)\n` +
		`This password is shown once\. Set UIAS_BOOTSTRAP_PASSWORD to choose it instead\.$`).FindStringSubmatch(notice)
	if m == nil {
		t.Fatalf("first-start notice differs from the README: %q", notice)
	}
	c := newCtl(t, a)
	c.run(m[1]+"\n", "login", "--user", "admin", "--password-stdin")
	if id := jsonField(t, c.run("", "org", "list", "-o", "json"), "id"); id == "" {
		t.Fatal("no root org")
	}
	// The security auditor's password is printed too, apart from the
	// administrator's, and logs the auditor in (once identity has
	// appointed them in authz).
	m = regexp.MustCompile(`(?m)^UIAS first start: security auditor login "auditor", password: (\S+)\n` +
		`Give it to the security auditor, not to the system administrator\. This password is shown once\. ` +
		`Set UIAS_BOOTSTRAP_AUDITOR_PASSWORD to choose it instead\.$`).FindStringSubmatch(notice)
	if m == nil {
		t.Fatalf("first-start notice has no security auditor: %q", notice)
	}
	aud := newCtl(t, a)
	deadline := time.Now().Add(30 * time.Second)
	for aud.exec(m[1]+"\n", "login", "--user", "auditor", "--password-stdin").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the printed security auditor password does not log in")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
