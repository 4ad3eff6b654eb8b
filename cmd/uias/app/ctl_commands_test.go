// These tests run every `uias ctl` command that TestQuickStart does not,
// against a real in-process UIAS (target all, embedded NATS, SQLite), with
// --output json: the JSON is decoded into the API messages and checked
// field by field, and where a command changes what a business system sees
// (passwords, locks, status, secrets, links) the change is confirmed
// through AuthService.Authenticate as well.
package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/cmd/uias/internal/ctl"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
)

// ctlRun is one `uias ctl` invocation's outcome.
type ctlRun struct {
	code           int
	stdout, stderr string
}

// exec runs `uias ctl args...` like uiasCtl.run but returns everything
// instead of failing on a non-zero exit.
func (c *uiasCtl) exec(stdin string, args ...string) ctlRun {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := ctl.Main(ctx, args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return c.env[k] })
	return ctlRun{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// fail runs a command that must fail with exit code want; it returns stderr.
// A failing command prints nothing on standard output.
func (c *uiasCtl) fail(want int, stdin string, args ...string) string {
	c.t.Helper()
	r := c.exec(stdin, args...)
	if r.code != want {
		c.t.Fatalf("uias ctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	if r.stdout != "" {
		c.t.Errorf("uias ctl %s failed but printed on stdout: %q", strings.Join(args, " "), r.stdout)
	}
	return r.stderr
}

// jsonOut runs `uias ctl args... -o json`, which must succeed with nothing on
// stderr, and decodes stdout (which must be exactly one JSON document in the
// API's proto field names) into m. It returns stdout.
func (c *uiasCtl) jsonOut(m proto.Message, stdin string, args ...string) string {
	c.t.Helper()
	args = append(slices.Clone(args), "-o", "json")
	r := c.exec(stdin, args...)
	cmd := "uias ctl " + strings.Join(args, " ")
	if r.code != 0 {
		c.t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", cmd, r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		c.t.Errorf("%s: unexpected stderr %q", cmd, r.stderr)
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		c.t.Fatalf("%s: stdout is not one JSON object: %v\n%s", cmd, err, r.stdout)
	}
	for k := range raw {
		if k != strings.ToLower(k) {
			c.t.Errorf("%s: JSON field %q is not a proto (snake_case) name", cmd, k)
		}
	}
	if err := protojson.Unmarshal([]byte(r.stdout), m); err != nil {
		c.t.Fatalf("%s: stdout is not a %s: %v\n%s", cmd, m.ProtoReflect().Descriptor().FullName(), err, r.stdout)
	}
	return r.stdout
}

// ctlSetup starts UIAS, logs in as the bootstrap administrator and returns
// the root org.
func ctlSetup(t *testing.T) (*app.App, *uiasCtl, *identityv1.Org) {
	t.Helper()
	a, _ := startQuick(t, readmeAdminPassword)
	c := newCtl(t, a)
	c.run(readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin")
	var orgs identityv1.ListOrgsResponse
	c.jsonOut(&orgs, "", "org", "list")
	if len(orgs.GetOrgs()) != 1 || orgs.GetOrgs()[0].GetParentId() != "" {
		t.Fatalf("want only the root org after bootstrap, got %v", orgs.GetOrgs())
	}
	return a, c, orgs.GetOrgs()[0]
}

// ctlAuthenticate calls AuthService.Authenticate as the application.
func ctlAuthenticate(t *testing.T, a *app.App, appID, secret, account, password string) (*identityv1.AuthenticateResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-uias-app-id", appID, "x-uias-app-secret", secret)
	return identityv1.NewAuthServiceClient(conn).Authenticate(ctx, &identityv1.AuthenticateRequest{
		AppUserId: account, Password: password, AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
}

// wantReason checks an Authenticate answer.
func wantReason(t *testing.T, what string, res *identityv1.AuthenticateResponse, err error, want identityv1.Reason) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: Authenticate: %v", what, err)
	}
	if res.GetReason() != want {
		t.Fatalf("%s: Authenticate reason %v, want %v (%v)", what, res.GetReason(), want, res)
	}
}

func orgIDs(orgs []*identityv1.Org) []string {
	var ids []string
	for _, o := range orgs {
		ids = append(ids, o.GetId())
	}
	slices.Sort(ids)
	return ids
}

func userLogins(users []*identityv1.User) []string {
	var ls []string
	for _, u := range users {
		ls = append(ls, u.GetLoginName())
	}
	slices.Sort(ls)
	return ls
}

// sameMessage is proto.Equal: an object as a create call answered it and
// as later reads return it must be identical, timestamps included (the
// store keeps milliseconds, and answers are given at that precision).
func sameMessage(a, b proto.Message) bool { return proto.Equal(a, b) }

func sortedStrings(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestCtlOrgCommands(t *testing.T) {
	_, c, root := ctlSetup(t)
	if root.GetStatus() != identityv1.Status_STATUS_ACTIVE || root.GetCode() == "" || root.GetName() == "" ||
		root.GetCreateTime() == nil {
		t.Fatalf("root org: %v", root)
	}

	// org get
	var got identityv1.Org
	c.jsonOut(&got, "", "org", "get", root.GetId())
	if !proto.Equal(&got, root) {
		t.Fatalf("org get %s = %v, org list said %v", root.GetId(), &got, root)
	}

	// org create
	var east, west identityv1.Org
	c.jsonOut(&east, "", "org", "create", "--code", "east", "--name", "East Branch", "--parent", root.GetId())
	if east.GetId() == "" || east.GetCode() != "east" || east.GetName() != "East Branch" ||
		east.GetParentId() != root.GetId() || east.GetStatus() != identityv1.Status_STATUS_ACTIVE || east.GetCreateTime() == nil {
		t.Fatalf("org create: %v", &east)
	}
	c.jsonOut(&west, "", "org", "create", "--code", "west", "--name", "West Branch", "--parent", root.GetId())
	stderr := c.fail(1, "", "org", "create", "--code", "east", "--name", "Again", "--parent", root.GetId())
	if !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "(AlreadyExists)") {
		t.Errorf("duplicate org code: %q", stderr)
	}
	stderr = c.fail(1, "", "org", "create", "--code", "root2", "--name", "Second root")
	if !strings.Contains(stderr, "root org already exists") {
		t.Errorf("second root org: %q", stderr)
	}

	// org list with filters and pagination
	var list identityv1.ListOrgsResponse
	c.jsonOut(&list, "", "org", "list", "--parent", root.GetId())
	if want := sortedStrings(east.GetId(), west.GetId()); !slices.Equal(orgIDs(list.GetOrgs()), want) || list.GetNextPageToken() != "" {
		t.Fatalf("org list --parent root: %v, want %v", list.GetOrgs(), want)
	}
	c.jsonOut(&list, "", "org", "list", "--query", "East")
	if len(list.GetOrgs()) != 1 || list.GetOrgs()[0].GetId() != east.GetId() {
		t.Fatalf("org list --query East: %v", list.GetOrgs())
	}
	all := sortedStrings(root.GetId(), east.GetId(), west.GetId())
	var p1, p2, p3 identityv1.ListOrgsResponse
	c.jsonOut(&p1, "", "org", "list", "--page-size", "2")
	if len(p1.GetOrgs()) != 2 || p1.GetNextPageToken() == "" {
		t.Fatalf("org list --page-size 2: %v", &p1)
	}
	c.jsonOut(&p2, "", "org", "list", "--page-size", "2", "--page-token", p1.GetNextPageToken())
	if len(p2.GetOrgs()) != 1 || p2.GetNextPageToken() != "" {
		t.Fatalf("org list second page: %v", &p2)
	}
	if ids := orgIDs(append(p1.GetOrgs(), p2.GetOrgs()...)); !slices.Equal(ids, all) {
		t.Fatalf("pages hold %v, want %v", ids, all)
	}
	c.jsonOut(&p3, "", "org", "list", "--page-size", "1", "--all")
	if ids := orgIDs(p3.GetOrgs()); !slices.Equal(ids, all) || p3.GetNextPageToken() != "" {
		t.Fatalf("org list --all: %v", &p3)
	}
	// The table form tells the reader about the next page on stderr.
	r := c.exec("", "org", "list", "--page-size", "1")
	if r.code != 0 || !strings.Contains(r.stderr, "More results may follow: rerun with --page-token ") {
		t.Fatalf("org list --page-size 1 (table): %+v", r)
	}

	// org move
	var moved identityv1.Org
	c.jsonOut(&moved, "", "org", "move", east.GetId(), "--parent", west.GetId())
	if moved.GetId() != east.GetId() || moved.GetParentId() != west.GetId() {
		t.Fatalf("org move: %v", &moved)
	}
	c.jsonOut(&list, "", "org", "list", "--parent", west.GetId())
	if len(list.GetOrgs()) != 1 || list.GetOrgs()[0].GetId() != east.GetId() {
		t.Fatalf("after move, children of west: %v", list.GetOrgs())
	}
	stderr = c.fail(1, "", "org", "move", west.GetId(), "--parent", east.GetId())
	if !strings.Contains(stderr, "own subtree") || !strings.Contains(stderr, "(FailedPrecondition, ORG_CYCLE)") {
		t.Errorf("move under own subtree: %q", stderr)
	}

	// org disable / enable
	var st identityv1.Org
	c.jsonOut(&st, "", "org", "disable", east.GetId())
	if st.GetStatus() != identityv1.Status_STATUS_DISABLED {
		t.Fatalf("org disable: %v", &st)
	}
	c.jsonOut(&got, "", "org", "get", east.GetId())
	if got.GetStatus() != identityv1.Status_STATUS_DISABLED {
		t.Fatalf("org get after disable: %v", &got)
	}
	stderr = c.fail(1, readmeUserPassword+"\n", "user", "create", "--login", "bob", "--name", "Bob", "--org", east.GetId(), "--password-stdin")
	if !strings.Contains(stderr, "org is disabled") {
		t.Errorf("user create in a disabled org: %q", stderr)
	}
	c.jsonOut(&st, "", "org", "enable", east.GetId())
	if st.GetStatus() != identityv1.Status_STATUS_ACTIVE {
		t.Fatalf("org enable: %v", &st)
	}
	stderr = c.fail(1, "", "org", "disable", root.GetId())
	if !strings.Contains(stderr, "root org cannot be disabled") {
		t.Errorf("disable root: %q", stderr)
	}
}

// appWithUser creates an application and a user linked to it with account.
func appWithUser(t *testing.T, c *uiasCtl, orgID, login, account, password string) (created *identityv1.CreateAppResponse, user *identityv1.User) {
	t.Helper()
	created, user = &identityv1.CreateAppResponse{}, &identityv1.User{}
	c.jsonOut(created, "", "app", "create", "--type", "OA", "--code", "oa-"+login, "--name", "OA for "+login)
	c.jsonOut(user, password+"\n", "user", "create", "--login", login, "--name", "User "+login, "--org", orgID, "--password-stdin")
	var l identityv1.AccountLink
	c.jsonOut(&l, "", "link", "create", "--user", user.GetId(), "--app", created.GetApp().GetId(), "--account", account)
	return created, user
}

func TestCtlUserCommands(t *testing.T) {
	a, c, root := ctlSetup(t)
	var ops identityv1.Org
	c.jsonOut(&ops, "", "org", "create", "--code", "ops", "--name", "Operations", "--parent", root.GetId())

	oa, bob := appWithUser(t, c, ops.GetId(), "bob", "B001", readmeUserPassword)
	appID, secret := oa.GetApp().GetId(), oa.GetAppSecret()
	var carol, dave identityv1.User
	c.jsonOut(&carol, "", "user", "create", "--login", "carol", "--name", "Carol Li", "--org", ops.GetId(),
		"--email", "carol@example.com", "--phone", "13800138000", "--must-change")
	if carol.GetEmail() != "carol@example.com" || carol.GetPhoneMasked() == "" || carol.GetPhoneMasked() == "13800138000" ||
		!carol.GetMustChangePassword() || carol.GetPasswordChangedAt() != nil || carol.GetStatus() != identityv1.UserStatus_USER_STATUS_ACTIVE {
		t.Fatalf("user create carol: %v", &carol)
	}
	c.jsonOut(&dave, "", "user", "create", "--login", "dave", "--name", "Dave", "--org", root.GetId())

	// user get
	var got identityv1.User
	c.jsonOut(&got, "", "user", "get", bob.GetId())
	if got.GetId() != bob.GetId() || got.GetLoginName() != "bob" || got.GetOrgId() != ops.GetId() ||
		got.GetLocked() || got.GetPasswordChangedAt() == nil || got.GetCredentialSource() != "local" {
		t.Fatalf("user get: %v", &got)
	}

	// user list: filters and pagination
	var list identityv1.ListUsersResponse
	c.jsonOut(&list, "", "user", "list")
	if ls := userLogins(list.GetUsers()); !slices.Equal(ls, []string{"admin", "auditor", "bob", "carol", "dave"}) || list.GetNextPageToken() != "" {
		t.Fatalf("user list: %v", ls)
	}
	c.jsonOut(&list, "", "user", "list", "--org", ops.GetId())
	if ls := userLogins(list.GetUsers()); !slices.Equal(ls, []string{"bob", "carol"}) {
		t.Fatalf("user list --org ops: %v", ls)
	}
	c.jsonOut(&list, "", "user", "list", "--query", "example.com")
	if ls := userLogins(list.GetUsers()); !slices.Equal(ls, []string{"carol"}) {
		t.Fatalf("user list --query example.com: %v", ls)
	}
	c.jsonOut(&list, "", "user", "list", "--org", root.GetId(), "--query", "dav")
	if ls := userLogins(list.GetUsers()); !slices.Equal(ls, []string{"dave"}) {
		t.Fatalf("user list --org root --query dav: %v", ls)
	}
	var p1, p2, pall identityv1.ListUsersResponse
	c.jsonOut(&p1, "", "user", "list", "--page-size", "3")
	if len(p1.GetUsers()) != 3 || p1.GetNextPageToken() == "" {
		t.Fatalf("user list --page-size 3: %v", &p1)
	}
	c.jsonOut(&p2, "", "user", "list", "--page-size", "3", "--page-token", p1.GetNextPageToken())
	if len(p2.GetUsers()) != 2 || p2.GetNextPageToken() != "" {
		t.Fatalf("user list page 2: %v", &p2)
	}
	if ls := userLogins(append(p1.GetUsers(), p2.GetUsers()...)); !slices.Equal(ls, []string{"admin", "auditor", "bob", "carol", "dave"}) {
		t.Fatalf("user list pages: %v", ls)
	}
	c.jsonOut(&pall, "", "user", "list", "--page-size", "1", "--all")
	if ls := userLogins(pall.GetUsers()); !slices.Equal(ls, []string{"admin", "auditor", "bob", "carol", "dave"}) || pall.GetNextPageToken() != "" {
		t.Fatalf("user list --all: %v", &pall)
	}

	wantAuth(t, "initial password", a, appID, secret, "B001", readmeUserPassword, identityv1.Reason_REASON_OK)

	// user set-password (an administrator's reset): --must-change=false.
	const newPassword = "Battery-Staple-77"
	var sp identityv1.User
	out := c.jsonOut(&sp, newPassword+"\n", "user", "set-password", bob.GetId(), "--must-change=false")
	if sp.GetId() != bob.GetId() || sp.GetMustChangePassword() || sp.GetPasswordChangedAt() == nil {
		t.Fatalf("user set-password --must-change=false: %v", &sp)
	}
	if strings.Contains(out, newPassword) {
		t.Errorf("set-password echoes the password: %s", out)
	}
	wantAuth(t, "old password after set-password", a, appID, secret, "B001", readmeUserPassword, identityv1.Reason_REASON_BAD_CREDENTIALS)
	res, err := ctlAuthenticate(t, a, appID, secret, "B001", newPassword)
	wantReason(t, "new password", res, err, identityv1.Reason_REASON_OK)
	if res.GetMustChangePassword() {
		t.Errorf("must_change_password after --must-change=false: %v", res)
	}
	// Default --must-change is true; --password-stdin is accepted (implied).
	c.jsonOut(&sp, "Another-Pass-88\n", "user", "set-password", bob.GetId(), "--password-stdin")
	if !sp.GetMustChangePassword() {
		t.Fatalf("user set-password (default): must_change_password false: %v", &sp)
	}
	res, err = ctlAuthenticate(t, a, appID, secret, "B001", "Another-Pass-88")
	wantReason(t, "after set-password (default)", res, err, identityv1.Reason_REASON_OK)
	if !res.GetMustChangePassword() {
		t.Errorf("Authenticate must_change_password false after set-password: %v", res)
	}
	// A weak password is refused with the policy's message.
	stderr := c.fail(1, "short\n", "user", "set-password", bob.GetId())
	if !strings.Contains(stderr, "at least 8 characters") || strings.Contains(stderr, "short") {
		t.Errorf("weak password: %q", stderr)
	}

	// user lock --duration 0 (until unlocked) / unlock
	var lk identityv1.User
	c.jsonOut(&lk, "", "user", "lock", bob.GetId(), "--duration", "0")
	if !lk.GetLocked() || lk.GetLockedUntil() == nil || lk.GetLockedUntil().AsTime().Year() != 9999 {
		t.Fatalf("user lock --duration 0: %v", &lk)
	}
	c.jsonOut(&got, "", "user", "get", bob.GetId())
	if !got.GetLocked() {
		t.Fatalf("user get after lock: %v", &got)
	}
	wantAuth(t, "locked", a, appID, secret, "B001", "Another-Pass-88", identityv1.Reason_REASON_ACCOUNT_LOCKED)
	c.jsonOut(&lk, "", "user", "unlock", bob.GetId())
	if lk.GetLocked() || lk.GetLockedUntil() != nil {
		t.Fatalf("user unlock: %v", &lk)
	}
	wantAuth(t, "unlocked", a, appID, secret, "B001", "Another-Pass-88", identityv1.Reason_REASON_OK)

	// user lock with a duration
	before := time.Now()
	c.jsonOut(&lk, "", "user", "lock", carol.GetId(), "--duration", "2h")
	if !lk.GetLocked() || lk.GetLockedUntil() == nil || !lk.GetLockedUntil().AsTime().After(before) ||
		lk.GetLockedUntil().AsTime().Year() == 9999 {
		t.Fatalf("user lock --duration 2h: %v", &lk)
	}
	// The table shows the lock's end.
	r := c.exec("", "user", "get", carol.GetId())
	if r.code != 0 || !strings.Contains(r.stdout, "Locked:") || !strings.Contains(r.stdout, "yes (until ") ||
		!strings.Contains(r.stdout, "Credential source:") {
		t.Fatalf("user get (table) of a locked user: %+v", r)
	}
	c.jsonOut(&lk, "", "user", "unlock", carol.GetId())
	if lk.GetLocked() {
		t.Fatalf("user unlock carol: %v", &lk)
	}

	// user disable / enable
	var ds identityv1.User
	c.jsonOut(&ds, "", "user", "disable", bob.GetId())
	if ds.GetStatus() != identityv1.UserStatus_USER_STATUS_DISABLED {
		t.Fatalf("user disable: %v", &ds)
	}
	wantAuth(t, "disabled", a, appID, secret, "B001", "Another-Pass-88", identityv1.Reason_REASON_ACCOUNT_DISABLED)
	c.jsonOut(&ds, "", "user", "enable", bob.GetId())
	if ds.GetStatus() != identityv1.UserStatus_USER_STATUS_ACTIVE {
		t.Fatalf("user enable: %v", &ds)
	}
	wantAuth(t, "re-enabled", a, appID, secret, "B001", "Another-Pass-88", identityv1.Reason_REASON_OK)

	// Duplicate login: a clear conflict.
	stderr = c.fail(1, "", "user", "create", "--login", "bob", "--name", "Bob Two", "--org", ops.GetId())
	if !strings.Contains(stderr, "already exists") || !strings.Contains(stderr, "(AlreadyExists)") {
		t.Errorf("duplicate login: %q", stderr)
	}

	// user delete: only with --yes; then the person is gone (-2 for their
	// account), and deleting again is a clear not found.
	if stderr := c.fail(2, "", "user", "delete", bob.GetId()); !strings.Contains(stderr, "--yes") {
		t.Errorf("delete without --yes: %q", stderr)
	}
	c.jsonOut(&identityv1.DeleteUserResponse{}, "", "user", "delete", bob.GetId(), "--yes")
	wantAuth(t, "deleted", a, appID, secret, "B001", "Another-Pass-88", identityv1.Reason_REASON_NO_SUCH_USER)
	if stderr := c.fail(1, "", "user", "delete", bob.GetId(), "--yes"); !strings.Contains(stderr, "not found") {
		t.Errorf("delete again: %q", stderr)
	}
}

// wantAuth authenticates account with password as the application and
// checks the reason.
func wantAuth(t *testing.T, what string, a *app.App, appID, secret, account, password string, want identityv1.Reason) {
	t.Helper()
	res, err := ctlAuthenticate(t, a, appID, secret, account, password)
	wantReason(t, what, res, err, want)
}

func TestCtlGroupCommands(t *testing.T) {
	_, c, root := ctlSetup(t)
	var ops identityv1.Org
	c.jsonOut(&ops, "", "org", "create", "--code", "ops", "--name", "Operations", "--parent", root.GetId())
	var bob, carol identityv1.User
	c.jsonOut(&bob, "", "user", "create", "--login", "bob", "--name", "Bob", "--org", ops.GetId())
	c.jsonOut(&carol, "", "user", "create", "--login", "carol", "--name", "Carol", "--org", ops.GetId())

	// group create
	var g, g2, g3 identityv1.Group
	out := c.jsonOut(&g, "", "group", "create", "--code", "oncall", "--name", "On call", "--org", ops.GetId())
	if g.GetId() == "" || g.GetCode() != "oncall" || g.GetName() != "On call" || g.GetOrgId() != ops.GetId() ||
		len(g.GetMemberIds()) != 0 || g.GetCreateTime() == nil {
		t.Fatalf("group create: %v", &g)
	}
	if !regexp.MustCompile(`"member_ids":\s*\[\]`).MatchString(out) {
		t.Errorf("group create JSON should show an empty member_ids list: %s", out)
	}
	c.jsonOut(&g2, "", "group", "create", "--code", "auditors", "--name", "Auditors", "--org", root.GetId())
	c.jsonOut(&g3, "", "group", "create", "--code", "admins", "--name", "Admins", "--org", root.GetId())
	stderr := c.fail(1, "", "group", "create", "--code", "oncall", "--name", "Again", "--org", ops.GetId())
	if !strings.Contains(stderr, "group code already exists") || !strings.Contains(stderr, "(AlreadyExists)") {
		t.Errorf("duplicate group code: %q", stderr)
	}

	// group get
	var got identityv1.Group
	c.jsonOut(&got, "", "group", "get", g.GetId())
	if !sameMessage(&got, &g) {
		t.Fatalf("group get = %v, created %v", &got, &g)
	}

	// group list
	groupCodes := func(gs []*identityv1.Group) []string {
		var cs []string
		for _, x := range gs {
			cs = append(cs, x.GetCode())
		}
		slices.Sort(cs)
		return cs
	}
	var list identityv1.ListGroupsResponse
	c.jsonOut(&list, "", "group", "list")
	if cs := groupCodes(list.GetGroups()); !slices.Equal(cs, []string{"admins", "auditors", "oncall"}) {
		t.Fatalf("group list: %v", cs)
	}
	c.jsonOut(&list, "", "group", "list", "--org", root.GetId())
	if cs := groupCodes(list.GetGroups()); !slices.Equal(cs, []string{"admins", "auditors"}) {
		t.Fatalf("group list --org root: %v", cs)
	}
	c.jsonOut(&list, "", "group", "list", "--query", "Audit")
	if cs := groupCodes(list.GetGroups()); !slices.Equal(cs, []string{"auditors"}) {
		t.Fatalf("group list --query Audit: %v", cs)
	}
	var p1, p2 identityv1.ListGroupsResponse
	c.jsonOut(&p1, "", "group", "list", "--page-size", "2")
	c.jsonOut(&p2, "", "group", "list", "--page-size", "2", "--page-token", p1.GetNextPageToken())
	if len(p1.GetGroups()) != 2 || p1.GetNextPageToken() == "" || len(p2.GetGroups()) != 1 || p2.GetNextPageToken() != "" {
		t.Fatalf("group list pages: %v / %v", &p1, &p2)
	}
	if cs := groupCodes(append(p1.GetGroups(), p2.GetGroups()...)); !slices.Equal(cs, []string{"admins", "auditors", "oncall"}) {
		t.Fatalf("group list pages hold %v", cs)
	}
	c.jsonOut(&list, "", "group", "list", "--page-size", "1", "--all")
	if len(list.GetGroups()) != 3 || list.GetNextPageToken() != "" {
		t.Fatalf("group list --all: %v", &list)
	}

	// group add-member / remove-member
	var m identityv1.Group
	c.jsonOut(&m, "", "group", "add-member", g.GetId(), bob.GetId())
	if !slices.Equal(m.GetMemberIds(), []string{bob.GetId()}) {
		t.Fatalf("add-member bob: %v", &m)
	}
	c.jsonOut(&m, "", "group", "add-member", g.GetId(), carol.GetId())
	if !slices.Equal(m.GetMemberIds(), sortedStrings(bob.GetId(), carol.GetId())) {
		t.Fatalf("add-member carol: %v", &m)
	}
	c.jsonOut(&m, "", "group", "add-member", g.GetId(), bob.GetId()) // twice: no-op
	if !slices.Equal(m.GetMemberIds(), sortedStrings(bob.GetId(), carol.GetId())) {
		t.Fatalf("add-member bob again: %v", &m)
	}
	// group list finds the group; ListGroups does not return members (a
	// group may have many), and the table has no members column that
	// would show 0 for this two-member group.
	c.jsonOut(&list, "", "group", "list", "--org", ops.GetId())
	if len(list.GetGroups()) != 1 || list.GetGroups()[0].GetId() != g.GetId() || len(list.GetGroups()[0].GetMemberIds()) != 0 {
		t.Fatalf("group list after add-member: %v", &list)
	}
	if out := c.run("", "group", "list", "--org", ops.GetId()); strings.Contains(out, "MEMBERS") {
		t.Fatalf("group list table shows a members column:\n%s", out)
	}
	c.jsonOut(&m, "", "group", "remove-member", g.GetId(), bob.GetId())
	if !slices.Equal(m.GetMemberIds(), []string{carol.GetId()}) {
		t.Fatalf("remove-member bob: %v", &m)
	}
	c.jsonOut(&got, "", "group", "get", g.GetId())
	if !slices.Equal(got.GetMemberIds(), []string{carol.GetId()}) {
		t.Fatalf("group get after remove-member: %v", &got)
	}
	c.jsonOut(&m, "", "group", "remove-member", g.GetId(), bob.GetId()) // not a member: no-op
	if !slices.Equal(m.GetMemberIds(), []string{carol.GetId()}) {
		t.Fatalf("remove-member of a non-member: %v", &m)
	}
	// group rename: the name changes, the code and members stay; --name
	// is required.
	var rn identityv1.Group
	c.jsonOut(&rn, "", "group", "rename", g.GetId(), "--name", "Night shift")
	if rn.GetName() != "Night shift" || rn.GetCode() != "oncall" || !slices.Equal(rn.GetMemberIds(), []string{carol.GetId()}) {
		t.Fatalf("group rename: %v", &rn)
	}
	if stderr := c.fail(2, "", "group", "rename", g.GetId()); !strings.Contains(stderr, "--name") {
		t.Errorf("group rename without --name: %q", stderr)
	}
	if stderr := c.fail(1, "", "group", "rename", "no-such-group", "--name", "X"); !strings.Contains(stderr, "not found") {
		t.Errorf("group rename of nothing: %q", stderr)
	}
	// group delete: gone, its member stays; again: not found.
	if r := c.exec("", "group", "delete", g.GetId()); r.code != 0 || r.stdout != "Deleted group "+g.GetId()+".\n" {
		t.Fatalf("group delete: %+v", r)
	}
	if stderr := c.fail(1, "", "group", "get", g.GetId()); !strings.Contains(stderr, "not found") {
		t.Errorf("a deleted group: %q", stderr)
	}
	var still identityv1.User
	c.jsonOut(&still, "", "user", "get", carol.GetId())
	if stderr := c.fail(1, "", "group", "delete", g.GetId()); !strings.Contains(stderr, "not found") {
		t.Errorf("group deleted twice: %q", stderr)
	}
}

func TestCtlAppCommands(t *testing.T) {
	a, c, root := ctlSetup(t)

	// app create with every flag, read back with app get.
	var hr identityv1.CreateAppResponse
	out := c.jsonOut(&hr, "", "app", "create", "--type", "HR", "--code", "payroll", "--name", "Payroll",
		"--allow", "127.0.0.1", "--allow", "10.0.0.0/8,192.168.1.0/24", "--rate", "5.5", "--burst", "7")
	x := hr.GetApp()
	if x.GetId() == "" || hr.GetAppSecret() == "" || x.GetAppType() != "HR" || x.GetAppCode() != "payroll" ||
		x.GetName() != "Payroll" || x.GetStatus() != identityv1.AppStatus_APP_STATUS_ACTIVE ||
		!slices.Equal(x.GetIpAllowList(), []string{"127.0.0.1/32", "10.0.0.0/8", "192.168.1.0/24"}) ||
		x.GetRateLimit() != 5.5 || x.GetRateBurst() != 7 {
		t.Fatalf("app create: %v", &hr)
	}
	if n := strings.Count(out, hr.GetAppSecret()); n != 1 {
		t.Errorf("app create -o json prints the secret %d times", n)
	}
	var oa, oa2 identityv1.CreateAppResponse
	c.jsonOut(&oa, "", "app", "create", "--type", "OA", "--code", "oa", "--name", "Office automation")
	c.jsonOut(&oa2, "", "app", "create", "--type", "OA", "--code", "oa-mobile", "--name", "Office mobile")
	if oa.GetApp().GetRateLimit() != 100 || oa.GetApp().GetRateBurst() != 200 || len(oa.GetApp().GetIpAllowList()) != 0 {
		t.Fatalf("app create defaults: %v", oa.GetApp())
	}
	if oa.GetApp().GetNameRelease() != "full" {
		t.Errorf("app create: name_release %q, want full (the default)", oa.GetApp().GetNameRelease())
	}

	var got identityv1.App
	out = c.jsonOut(&got, "", "app", "get", x.GetId())
	if !sameMessage(&got, x) {
		t.Fatalf("app get = %v, created %v", &got, x)
	}
	// the secret's lifetime and times are shown; the secret and its hash never
	if strings.Contains(out, hr.GetAppSecret()) || strings.Contains(out, "app_secret") || strings.Contains(out, "hash") {
		t.Errorf("app get shows secret material: %s", out)
	}

	// app list
	appCodes := func(as []*identityv1.App) []string {
		var cs []string
		for _, y := range as {
			cs = append(cs, y.GetAppCode())
		}
		slices.Sort(cs)
		return cs
	}
	var list identityv1.ListAppsResponse
	out = c.jsonOut(&list, "", "app", "list")
	if cs := appCodes(list.GetApps()); !slices.Equal(cs, []string{"oa", "oa-mobile", "payroll"}) {
		t.Fatalf("app list: %v", cs)
	}
	for _, s := range []string{hr.GetAppSecret(), oa.GetAppSecret(), oa2.GetAppSecret()} {
		if strings.Contains(out, s) {
			t.Errorf("app list shows an App_Secret")
		}
	}
	c.jsonOut(&list, "", "app", "list", "--type", "OA")
	if cs := appCodes(list.GetApps()); !slices.Equal(cs, []string{"oa", "oa-mobile"}) {
		t.Fatalf("app list --type OA: %v", cs)
	}
	c.jsonOut(&list, "", "app", "list", "--query", "mobile")
	if cs := appCodes(list.GetApps()); !slices.Equal(cs, []string{"oa-mobile"}) {
		t.Fatalf("app list --query mobile: %v", cs)
	}
	var p1, p2 identityv1.ListAppsResponse
	c.jsonOut(&p1, "", "app", "list", "--page-size", "2")
	c.jsonOut(&p2, "", "app", "list", "--page-size", "2", "--page-token", p1.GetNextPageToken())
	if len(p1.GetApps()) != 2 || p1.GetNextPageToken() == "" || len(p2.GetApps()) != 1 || p2.GetNextPageToken() != "" {
		t.Fatalf("app list pages: %v / %v", &p1, &p2)
	}
	if cs := appCodes(append(p1.GetApps(), p2.GetApps()...)); !slices.Equal(cs, []string{"oa", "oa-mobile", "payroll"}) {
		t.Fatalf("app list pages hold %v", cs)
	}
	c.jsonOut(&list, "", "app", "list", "--page-size", "1", "--all")
	if len(list.GetApps()) != 3 || list.GetNextPageToken() != "" {
		t.Fatalf("app list --all: %v", &list)
	}

	// An account in oa to authenticate with.
	var u identityv1.User
	c.jsonOut(&u, readmeUserPassword+"\n", "user", "create", "--login", "alice", "--name", "Alice", "--org", root.GetId(), "--password-stdin")
	var l identityv1.AccountLink
	c.jsonOut(&l, "", "link", "create", "--user", u.GetId(), "--app", oa.GetApp().GetId(), "--account", "A1")
	oaID := oa.GetApp().GetId()
	wantAuth(t, "active app", a, oaID, oa.GetAppSecret(), "A1", readmeUserPassword, identityv1.Reason_REASON_OK)

	// app suspend / activate
	var st identityv1.App
	c.jsonOut(&st, "", "app", "suspend", oaID)
	if st.GetStatus() != identityv1.AppStatus_APP_STATUS_SUSPENDED || st.GetName() != "Office automation" {
		t.Fatalf("app suspend: %v", &st)
	}
	c.jsonOut(&got, "", "app", "get", oaID)
	if got.GetStatus() != identityv1.AppStatus_APP_STATUS_SUSPENDED {
		t.Fatalf("app get after suspend: %v", &got)
	}
	_, err := ctlAuthenticate(t, a, oaID, oa.GetAppSecret(), "A1", readmeUserPassword)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "suspended") {
		t.Fatalf("Authenticate by a suspended app: %v", err)
	}
	c.jsonOut(&st, "", "app", "activate", oaID)
	if st.GetStatus() != identityv1.AppStatus_APP_STATUS_ACTIVE {
		t.Fatalf("app activate: %v", &st)
	}
	wantAuth(t, "re-activated app", a, oaID, oa.GetAppSecret(), "A1", readmeUserPassword, identityv1.Reason_REASON_OK)

	// app rotate-secret with the default overlap: both secrets work.
	var rot identityv1.CreateAppResponse
	out = c.jsonOut(&rot, "", "app", "rotate-secret", oaID)
	if rot.GetApp().GetId() != oaID || rot.GetAppSecret() == "" || rot.GetAppSecret() == oa.GetAppSecret() {
		t.Fatalf("app rotate-secret: %v", &rot)
	}
	if n := strings.Count(out, rot.GetAppSecret()); n != 1 {
		t.Errorf("rotate-secret -o json prints the secret %d times", n)
	}
	wantAuth(t, "new secret", a, oaID, rot.GetAppSecret(), "A1", readmeUserPassword, identityv1.Reason_REASON_OK)
	wantAuth(t, "old secret within overlap", a, oaID, oa.GetAppSecret(), "A1", readmeUserPassword, identityv1.Reason_REASON_OK)

	// --overlap 0: only the newest secret works. The table form prints it once.
	r := c.exec("", "app", "rotate-secret", oaID, "--overlap", "0")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("app rotate-secret --overlap 0: %+v", r)
	}
	var newest string
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "App_Secret:" {
			newest = f[1]
		}
	}
	if newest == "" || newest == rot.GetAppSecret() || strings.Count(r.stdout, newest) != 1 ||
		!strings.Contains(r.stdout, "shown only once") {
		t.Fatalf("rotate-secret table output: %q", r.stdout)
	}
	wantAuth(t, "newest secret", a, oaID, newest, "A1", readmeUserPassword, identityv1.Reason_REASON_OK)
	for _, old := range []string{oa.GetAppSecret(), rot.GetAppSecret()} {
		_, err := ctlAuthenticate(t, a, oaID, old, "A1", readmeUserPassword)
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Authenticate with a revoked secret: %v", err)
		}
	}

	// app delete: only with --yes, only once suspended (APP_ACTIVE); then
	// gone, its secret refused, its link gone; again: not found.
	if stderr := c.fail(2, "", "app", "delete", oaID); !strings.Contains(stderr, "--yes") {
		t.Errorf("app delete without --yes: %q", stderr)
	}
	if stderr := c.fail(1, "", "app", "delete", oaID, "--yes"); !strings.Contains(stderr, "suspend it first") {
		t.Errorf("app delete of an active application: %q", stderr)
	}
	c.jsonOut(&st, "", "app", "suspend", oaID)
	if r := c.exec("", "app", "delete", oaID, "--yes"); r.code != 0 || r.stdout != "Deleted application "+oaID+".\n" {
		t.Fatalf("app delete: %+v", r)
	}
	if _, err := ctlAuthenticate(t, a, oaID, newest, "A1", readmeUserPassword); status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(err.Error(), "terminated") {
		t.Fatalf("Authenticate by a deleted application: %v", err)
	}
	if stderr := c.fail(1, "", "app", "get", oaID); !strings.Contains(stderr, "not found") {
		t.Errorf("a deleted application: %q", stderr)
	}
	var links identityv1.ListAccountLinksResponse
	c.jsonOut(&links, "", "link", "list", "--user", u.GetId())
	if len(links.GetLinks()) != 0 {
		t.Errorf("the link of a deleted application: %v", &links)
	}
	if stderr := c.fail(1, "", "app", "delete", oaID, "--yes"); !strings.Contains(stderr, "not found") {
		t.Errorf("app deleted twice: %q", stderr)
	}
	// What Authenticate answers of the name (ADR 0037).
	var named identityv1.CreateAppResponse
	c.jsonOut(&named, "", "app", "create", "--type", "OA", "--code", "oa-names", "--name", "Names", "--name-release", "masked")
	if named.GetApp().GetNameRelease() != "masked" {
		t.Fatalf("app create --name-release masked: %v", named.GetApp())
	}
	var omitted identityv1.App
	c.jsonOut(&omitted, "", "app", "update", named.GetApp().GetId(), "--name-release", "omitted")
	if omitted.GetNameRelease() != "omitted" {
		t.Fatalf("app update --name-release omitted: %v", &omitted)
	}
	if errs := c.fail(2, "", "app", "update", named.GetApp().GetId(), "--name-release", "hidden"); !strings.Contains(errs,
		`--name-release must be full, masked or omitted, got "hidden"`) {
		t.Errorf("app update --name-release hidden: %s", errs)
	}
}

func TestCtlLinkCommands(t *testing.T) {
	a, c, root := ctlSetup(t)
	var oa, hr identityv1.CreateAppResponse
	c.jsonOut(&oa, "", "app", "create", "--type", "OA", "--code", "oa", "--name", "Office automation")
	c.jsonOut(&hr, "", "app", "create", "--type", "HR", "--code", "hr", "--name", "HR")
	var bob, carol identityv1.User
	c.jsonOut(&bob, readmeUserPassword+"\n", "user", "create", "--login", "bob", "--name", "Bob", "--org", root.GetId(), "--password-stdin")
	c.jsonOut(&carol, "", "user", "create", "--login", "carol", "--name", "Carol", "--org", root.GetId())
	oaID, hrID := oa.GetApp().GetId(), hr.GetApp().GetId()

	// link create
	var lb, lc, lh identityv1.AccountLink
	c.jsonOut(&lb, "", "link", "create", "--user", bob.GetId(), "--app", oaID, "--account", "B-OA")
	if lb.GetId() == "" || lb.GetUserId() != bob.GetId() || lb.GetAppId() != oaID || lb.GetAppAccountId() != "B-OA" ||
		lb.GetStatus() != identityv1.Status_STATUS_ACTIVE || lb.GetCreateTime() == nil {
		t.Fatalf("link create: %v", &lb)
	}
	c.jsonOut(&lc, "", "link", "create", "--user", carol.GetId(), "--app", oaID, "--account", "C-OA")
	c.jsonOut(&lh, "", "link", "create", "--user", bob.GetId(), "--app", hrID, "--account", "B-HR")
	stderr := c.fail(1, "", "link", "create", "--user", carol.GetId(), "--app", oaID, "--account", "B-OA")
	if stderr != "error: app account is already linked (AlreadyExists)\n" {
		t.Errorf("duplicate account in one app: %q", stderr)
	}
	wantAuth(t, "linked account", a, oaID, oa.GetAppSecret(), "B-OA", readmeUserPassword, identityv1.Reason_REASON_OK)

	// link list
	linkIDs := func(ls []*identityv1.AccountLink) []string {
		var ids []string
		for _, l := range ls {
			ids = append(ids, l.GetId())
		}
		slices.Sort(ids)
		return ids
	}
	var list identityv1.ListAccountLinksResponse
	c.jsonOut(&list, "", "link", "list")
	if ids := linkIDs(list.GetLinks()); !slices.Equal(ids, sortedStrings(lb.GetId(), lc.GetId(), lh.GetId())) {
		t.Fatalf("link list: %v", list.GetLinks())
	}
	c.jsonOut(&list, "", "link", "list", "--user", bob.GetId())
	if ids := linkIDs(list.GetLinks()); !slices.Equal(ids, sortedStrings(lb.GetId(), lh.GetId())) {
		t.Fatalf("link list --user bob: %v", list.GetLinks())
	}
	c.jsonOut(&list, "", "link", "list", "--app", oaID)
	if ids := linkIDs(list.GetLinks()); !slices.Equal(ids, sortedStrings(lb.GetId(), lc.GetId())) {
		t.Fatalf("link list --app oa: %v", list.GetLinks())
	}
	c.jsonOut(&list, "", "link", "list", "--user", bob.GetId(), "--app", hrID)
	if len(list.GetLinks()) != 1 || !sameMessage(list.GetLinks()[0], &lh) {
		t.Fatalf("link list --user bob --app hr: %v", list.GetLinks())
	}
	var p1, p2 identityv1.ListAccountLinksResponse
	c.jsonOut(&p1, "", "link", "list", "--page-size", "2")
	c.jsonOut(&p2, "", "link", "list", "--page-size", "2", "--page-token", p1.GetNextPageToken())
	if len(p1.GetLinks()) != 2 || p1.GetNextPageToken() == "" || len(p2.GetLinks()) != 1 || p2.GetNextPageToken() != "" {
		t.Fatalf("link list pages: %v / %v", &p1, &p2)
	}
	c.jsonOut(&list, "", "link", "list", "--page-size", "1", "--all")
	if ids := linkIDs(list.GetLinks()); !slices.Equal(ids, sortedStrings(lb.GetId(), lc.GetId(), lh.GetId())) || list.GetNextPageToken() != "" {
		t.Fatalf("link list --all: %v", &list)
	}

	// link delete
	var del identityv1.DeleteAccountLinkResponse
	out := c.jsonOut(&del, "", "link", "delete", lb.GetId())
	if strings.TrimSpace(out) != "{}" {
		t.Errorf("link delete -o json: %q, want {}", out)
	}
	c.jsonOut(&list, "", "link", "list", "--user", bob.GetId())
	if ids := linkIDs(list.GetLinks()); !slices.Equal(ids, []string{lh.GetId()}) {
		t.Fatalf("link list after delete: %v", list.GetLinks())
	}
	wantAuth(t, "deleted link", a, oaID, oa.GetAppSecret(), "B-OA", readmeUserPassword, identityv1.Reason_REASON_NO_SUCH_USER)
	r := c.exec("", "link", "delete", lh.GetId())
	if r.code != 0 || r.stdout != "Deleted account link "+lh.GetId()+".\n" {
		t.Fatalf("link delete (table): %+v", r)
	}
	stderr = c.fail(1, "", "link", "delete", lb.GetId())
	if stderr != "error: account link not found (NotFound)\n" {
		t.Errorf("deleting a deleted link: %q", stderr)
	}
}

func TestCtlSessionCommands(t *testing.T) {
	a, _ := startQuick(t, readmeAdminPassword)
	c := newCtl(t, a)

	// login -o json prints no token; with --print-token the token it
	// prints is the one stored (mode 0600).
	var lr identityv1.AdminLoginResponse
	c.jsonOut(&lr, readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin")
	if lr.GetToken() != "" || lr.GetExpiresAt() == nil {
		t.Fatalf("login -o json without --print-token: %v", &lr)
	}
	c.jsonOut(&lr, readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin", "--print-token")
	tokenFile := filepath.Join(c.env["UIAS_CONFIG_DIR"], "token")
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if lr.GetToken() == "" || strings.TrimSpace(string(b)) != lr.GetToken() || lr.GetExpiresAt() == nil ||
		lr.GetUser().GetLoginName() != "admin" {
		t.Fatalf("login -o json: %v", &lr)
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi.Mode(), err)
	}
	stderr := c.fail(1, "wrong-Password-1\n", "login", "--user", "admin", "--password-stdin")
	if !strings.Contains(stderr, "invalid login name or password") || !strings.Contains(stderr, "(Unauthenticated, BAD_ADMIN_LOGIN)") {
		t.Errorf("login with a wrong password: %q", stderr)
	}

	// logout -o json
	var lo struct {
		TokenFile string `json:"token_file"`
		Removed   *bool  `json:"removed"`
	}
	r := c.exec("", "logout", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &lo) != nil || lo.TokenFile != tokenFile || lo.Removed == nil || !*lo.Removed {
		t.Fatalf("logout -o json: %+v", r)
	}
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Fatalf("token file still there after logout: %v", err)
	}
	r = c.exec("", "logout", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &lo) != nil || lo.Removed == nil || *lo.Removed {
		t.Fatalf("second logout -o json: %+v", r)
	}
	stderr = c.fail(1, "", "org", "list", "-o", "json")
	if !strings.Contains(stderr, "not logged in") {
		t.Errorf("command after logout: %q", stderr)
	}
	// logout revoked the token on the server too.
	if stderr := c.fail(1, "", "--token", lr.GetToken(), "org", "list"); !strings.Contains(stderr, "(Unauthenticated, BAD_ADMIN_TOKEN)") {
		t.Errorf("the logged-out token: %q", stderr)
	}
	c.jsonOut(&lr, readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin", "--print-token")
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}

	// --token and UIAS_TOKEN instead of the token file.
	var orgs identityv1.ListOrgsResponse
	c.jsonOut(&orgs, "", "--token", lr.GetToken(), "org", "list")
	if len(orgs.GetOrgs()) != 1 {
		t.Fatalf("org list --token: %v", &orgs)
	}
	c.env["UIAS_TOKEN"] = lr.GetToken()
	c.jsonOut(&orgs, "", "org", "list")
	delete(c.env, "UIAS_TOKEN")
	stderr = c.fail(1, "", "--token", "not-a-token", "org", "list")
	if !strings.Contains(stderr, "(Unauthenticated, BAD_ADMIN_TOKEN)") || strings.Contains(stderr, "not-a-token") {
		t.Errorf("bad --token: %q", stderr)
	}

	// UIAS_ADMIN_USER + UIAS_ADMIN_PASSWORD: a login for this command only.
	c.env["UIAS_ADMIN_USER"], c.env["UIAS_ADMIN_PASSWORD"] = "admin", readmeAdminPassword
	c.jsonOut(&orgs, "", "org", "list")
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Errorf("env login stored a token file: %v", err)
	}
	// login without --password-stdin uses UIAS_ADMIN_PASSWORD.
	c.jsonOut(&lr, "", "login", "--user", "admin")
	if _, err := os.Stat(tokenFile); err != nil {
		t.Errorf("login with UIAS_ADMIN_PASSWORD stored no token: %v", err)
	}
}

// ctlInternals are strings a user-facing error must never show.
var ctlInternals = []string{"rpc error", "desc =", "sql", "SQL", "SELECT", "goroutine", "panic", ".go:", "%!", "<nil>"}

func checkNoInternals(t *testing.T, what, stderr string) {
	t.Helper()
	for _, s := range ctlInternals {
		if strings.Contains(stderr, s) {
			t.Errorf("%s: error shows ctlInternals (%q): %q", what, s, stderr)
		}
	}
}

func TestCtlNotFound(t *testing.T) {
	_, c, root := ctlSetup(t)
	var u identityv1.User
	c.jsonOut(&u, "", "user", "create", "--login", "bob", "--name", "Bob", "--org", root.GetId())
	var g identityv1.Group
	c.jsonOut(&g, "", "group", "create", "--code", "g", "--name", "G", "--org", root.GetId())
	var x identityv1.CreateAppResponse
	c.jsonOut(&x, "", "app", "create", "--type", "OA", "--code", "oa", "--name", "OA")
	var child identityv1.Org
	c.jsonOut(&child, "", "org", "create", "--code", "child", "--name", "Child", "--parent", root.GetId())

	const missing = "01NOSUCHID0000000000000000"
	for _, tc := range []struct {
		args  []string
		stdin string
		thing string // the message names this
	}{
		{args: []string{"org", "get", missing}, thing: "org"},
		{args: []string{"org", "disable", missing}, thing: "org"},
		{args: []string{"org", "enable", missing}, thing: "org"},
		{args: []string{"org", "move", missing, "--parent", root.GetId()}, thing: "org"},
		{args: []string{"org", "move", child.GetId(), "--parent", missing}, thing: "new parent org"},
		{args: []string{"org", "create", "--code", "x", "--name", "X", "--parent", missing}, thing: "parent org"},
		{args: []string{"user", "get", missing}, thing: "user"},
		{args: []string{"user", "lock", missing}, thing: "user"},
		{args: []string{"user", "unlock", missing}, thing: "user"},
		{args: []string{"user", "disable", missing}, thing: "user"},
		{args: []string{"user", "enable", missing}, thing: "user"},
		{args: []string{"user", "set-password", missing}, stdin: "Battery-Staple-77\n", thing: "user"},
		{args: []string{"user", "create", "--login", "eve", "--name", "Eve", "--org", missing}, thing: "org"},
		{args: []string{"group", "get", missing}, thing: "group"},
		{args: []string{"group", "create", "--code", "g2", "--name", "G2", "--org", missing}, thing: "org"},
		{args: []string{"group", "add-member", missing, u.GetId()}, thing: "group"},
		{args: []string{"group", "add-member", g.GetId(), missing}, thing: "user"},
		{args: []string{"group", "remove-member", missing, u.GetId()}, thing: "group"},
		{args: []string{"group", "remove-member", g.GetId(), missing}, thing: "user"},
		{args: []string{"app", "get", missing}, thing: "application"},
		{args: []string{"app", "suspend", missing}, thing: "application"},
		{args: []string{"app", "activate", missing}, thing: "application"},
		{args: []string{"app", "rotate-secret", missing}, thing: "application"},
		{args: []string{"link", "delete", missing}, thing: "account link"},
		{args: []string{"link", "create", "--user", missing, "--app", x.GetApp().GetId(), "--account", "A"}, thing: "user"},
		{args: []string{"link", "create", "--user", u.GetId(), "--app", missing, "--account", "A"}, thing: "application"},
	} {
		for _, format := range []string{"table", "json"} {
			args := append(slices.Clone(tc.args), "-o", format)
			what := strings.Join(args, " ")
			stderr := c.fail(1, tc.stdin, args...)
			if want := "error: " + tc.thing + " not found (NotFound)\n"; stderr != want {
				t.Errorf("%s: stderr %q, want %q", what, stderr, want)
			}
			checkNoInternals(t, what, stderr)
		}
	}
}

func TestCtlUsageErrors(t *testing.T) {
	_, c, root := ctlSetup(t)
	for _, tc := range []struct {
		args  []string
		stdin string
		msg   string // the error line after "error: "
		usage string // the usage text shown with it ("" : only the help hint)
	}{
		{args: []string{"frob"}, msg: `unknown command "frob"`},
		{args: []string{"group"}, msg: `"group" needs a subcommand`, usage: "uias ctl group add-member GROUP USER"},
		{args: []string{"user", "promote", "X"}, msg: `unknown subcommand "promote" for "user"`, usage: "uias ctl user set-password ID"},
		{args: []string{"app", "frob", "X"}, msg: `unknown subcommand "frob" for "app"`, usage: "uias ctl app suspend ID"},
		{args: []string{"app", "update", "X"}, msg: "nothing to update: give at least one of --name, --allow, --allow-any, --rate, --burst, --client-cert, --no-client-cert, --secret-lifetime, --signing-key, --no-signing-keys, --require-signatures, --no-signatures, --grant-api, --access-from, --access-until, --security-level, --min-auth-level, --legacy-ip-only, --no-legacy-ip-only, --name-release", usage: "Usage: uias ctl app update ID"},
		{args: []string{"app", "update", "X", "--legacy-ip-only", "--no-legacy-ip-only"}, msg: "--legacy-ip-only and --no-legacy-ip-only exclude each other", usage: "Usage: uias ctl app update ID"},
		{args: []string{"app", "update", "X", "--client-cert-sha256", "ab", "--no-client-cert"}, msg: "--no-client-cert excludes --client-cert and --client-cert-sha256", usage: "Usage: uias ctl app update ID"},
		{args: []string{"app", "create", "--type", "OA", "--code", "c", "--name", "N", "--client-cert", "/nonexistent/app.pem"},
			msg: "--client-cert: open /nonexistent/app.pem: no such file or directory", usage: "Usage: uias ctl app create"},
		{args: []string{"group", "get"}, msg: "missing ID", usage: "Usage: uias ctl group get ID"},
		{args: []string{"group", "get", " "}, msg: "ID must not be empty", usage: "Usage: uias ctl group get ID"},
		{args: []string{"group", "get", "a", "b"}, msg: `unexpected argument "b"`, usage: "Usage: uias ctl group get ID"},
		{args: []string{"group", "get", "--bogus", "a"}, msg: "flag provided but not defined: -bogus", usage: "Usage: uias ctl group get ID"},
		{args: []string{"group", "add-member", "G"}, msg: "missing USER", usage: "Usage: uias ctl group add-member GROUP USER"},
		{args: []string{"group", "remove-member"}, msg: "missing GROUP and USER", usage: "Usage: uias ctl group remove-member GROUP USER"},
		{args: []string{"group", "create", "--code", "x"}, msg: "missing required flag --name, --org", usage: "Usage: uias ctl group create"},
		{args: []string{"org", "move", "X"}, msg: "missing required flag --parent", usage: "Usage: uias ctl org move ID --parent ID"},
		{args: []string{"org", "list", "-o", "yaml"}, msg: `--output must be table or json, not "yaml"`, usage: "Usage: uias ctl org list"},
		{args: []string{"user", "list", "--page-size", "-1"}, msg: "--page-size must be between 0 and 500 (the most the server answers in one page; --all lists everything)", usage: "Usage: uias ctl user list"},
		{args: []string{"user", "list", "--page-size", "ten"}, msg: `invalid value "ten" for flag -page-size: parse error`, usage: "Usage: uias ctl user list"},
		{args: []string{"user", "lock", "X", "--duration", "-1s"}, msg: "--duration must not be negative", usage: "Usage: uias ctl user lock ID"},
		{args: []string{"user", "lock", "X", "--duration", "500ms"}, msg: "--duration must be at least 1s (or 0 for until unlocked)", usage: "Usage: uias ctl user lock ID"},
		{args: []string{"user", "set-password", "X"}, msg: "new password expected on the first line of standard input, but it is empty", usage: "Usage: uias ctl user set-password ID"},
		{args: []string{"user", "set-password"}, stdin: "Battery-Staple-77\n", msg: "missing ID", usage: "Usage: uias ctl user set-password ID"},
		{args: []string{"user", "create", "--login", "x", "--name", "X", "--org", root.GetId(), "--id-type", "dna"},
			msg: `--id-type must be resident_id, passport, military, other, uscc, org_code or none, not "dna"`, usage: "Usage: uias ctl user create"},
		{args: []string{"app", "create", "--type", "OA", "--code", "c", "--name", "N", "--allow", "nonsense"},
			msg: `--allow "nonsense" is not a CIDR (like 10.0.0.0/8) or an IP address`, usage: "Usage: uias ctl app create"},
		{args: []string{"app", "create", "--type", "OA", "--code", "c", "--name", "N", "--rate", "-1"},
			msg: "--rate must be a non-negative number", usage: "Usage: uias ctl app create"},
		{args: []string{"app", "rotate-secret", "X", "--overlap", "-1h"}, msg: "--overlap must not be negative", usage: "Usage: uias ctl app rotate-secret ID"},
		{args: []string{"link", "create", "--user", "U"}, msg: "missing required flag --app, --account", usage: "Usage: uias ctl link create"},
		{args: []string{"link", "delete"}, msg: "missing ID", usage: "Usage: uias ctl link delete ID"},
		{args: []string{"logout", "extra"}, msg: `unexpected argument "extra"`, usage: "Usage: uias ctl logout"},
	} {
		what := "uias ctl " + strings.Join(tc.args, " ")
		stderr := c.fail(2, tc.stdin, tc.args...)
		if first, _, _ := strings.Cut(stderr, "\n"); first != "error: "+tc.msg {
			t.Errorf("%s: first line %q, want %q", what, first, "error: "+tc.msg)
		}
		if tc.usage != "" && !strings.Contains(stderr, tc.usage) {
			t.Errorf("%s: stderr lacks the usage %q:\n%s", what, tc.usage, stderr)
		}
		if !strings.HasSuffix(stderr, "Run \"uias ctl help\" for usage.\n") {
			t.Errorf("%s: stderr lacks the help hint:\n%s", what, stderr)
		}
		checkNoInternals(t, what, stderr)
	}

	// A bad command line changes nothing: the user with the bad --id-type
	// was not created.
	var list identityv1.ListUsersResponse
	c.jsonOut(&list, "", "user", "list", "--query", "x")
	for _, u := range list.GetUsers() {
		if u.GetLoginName() == "x" {
			t.Errorf("user created despite a usage error: %v", u)
		}
	}

	// Server-side validation is exit 1 with the server's message.
	stderr := c.fail(1, "", "user", "list", "--page-token", "not-a-token")
	if stderr != "error: invalid page token (InvalidArgument, INVALID_PAGE_TOKEN)\n" {
		t.Errorf("user list --page-token not-a-token: %q", stderr)
	}
}

// `uias ctl sync subscribe --deliver-roles` and `subscription-update
// --deliver-roles=true|false` set and clear the subscription's delivery of
// the application's roles (docs/adr/0024); it is off unless asked.
func TestCtlSyncDeliverRoles(t *testing.T) {
	_, c, root := ctlSetup(t)
	created := &identityv1.CreateAppResponse{}
	c.jsonOut(created, "", "app", "create", "--type", "OA", "--code", "crm-roles", "--name", "CRM")
	appID := created.GetApp().GetId()
	var sub syncv1.Subscription
	c.jsonOut(&sub, "whsec-0123456789abcdef\n", "sync", "subscribe", "--app", appID, "--name", "crm roles", "--transport", "webhook",
		"--endpoint", "http://127.0.0.1:9/hook", "--org", root.GetId(), "--deliver-roles", "--secret-stdin", "--disabled")
	if !sub.GetDeliverRoles() || sub.GetApp() != appID {
		t.Fatalf("subscribe --deliver-roles: %v", &sub)
	}
	var plain syncv1.Subscription
	c.jsonOut(&plain, "whsec-0123456789abcdef\n", "sync", "subscribe", "--app", appID, "--name", "crm people", "--transport", "webhook",
		"--endpoint", "http://127.0.0.1:9/hook", "--org", root.GetId(), "--secret-stdin", "--disabled")
	if plain.GetDeliverRoles() {
		t.Fatalf("deliver_roles is on without --deliver-roles: %v", &plain)
	}
	var upd syncv1.Subscription
	c.jsonOut(&upd, "", "sync", "subscription-update", sub.GetId(), "--deliver-roles=false")
	if upd.GetDeliverRoles() || upd.GetName() != "crm roles" {
		t.Fatalf("subscription-update --deliver-roles=false: %v", &upd)
	}
	c.jsonOut(&upd, "", "sync", "subscription-update", plain.GetId(), "--deliver-roles")
	var list syncv1.ListSubscriptionsResponse
	c.jsonOut(&list, "", "sync", "subscriptions", "--app", appID)
	on := map[string]bool{}
	for _, s := range list.GetSubscriptions() {
		on[s.GetId()] = s.GetDeliverRoles()
	}
	if len(on) != 2 || !on[plain.GetId()] || on[sub.GetId()] {
		t.Fatalf("subscriptions after the updates: %v", list.GetSubscriptions())
	}
	if r := c.exec("", "sync", "subscription-update", plain.GetId(), "--deliver-roles=maybe"); r.code == 0 ||
		!strings.Contains(r.stderr, "deliver-roles") {
		t.Fatalf("--deliver-roles=maybe: exit %d %s", r.code, r.stderr)
	}

	// A batch of the application's roles (docs/adr/0044): to a subscription
	// that delivers roles; refused for one that does not, and with --org.
	var batch syncv1.StartBatchResponse
	c.jsonOut(&batch, "", "sync", "batch", "--subscription", plain.GetId(), "--roles")
	if batch.GetBatchId() == "" || !slices.Equal(batch.GetSubscriptions(), []string{plain.GetId()}) {
		t.Fatalf("sync batch --roles: %v", &batch)
	}
	if stderr := c.fail(1, "", "sync", "batch", "--subscription", sub.GetId(), "--roles"); !strings.Contains(stderr,
		"delivers no roles") || !strings.Contains(stderr, "(FailedPrecondition, SYNC_NO_SUBSCRIPTION)") {
		t.Fatalf("sync batch --roles of a subscription without deliver_roles: %q", stderr)
	}
	if stderr := c.fail(2, "", "sync", "batch", "--app", appID, "--roles", "--org", root.GetId()); !strings.Contains(stderr,
		"--org") {
		t.Fatalf("sync batch --roles --org: %q", stderr)
	}
}

// TestCtlUnitCommands: uias ctl user create --type unit with a unified
// social credit code; list --type unit and the TYPE column; user get
// shows the type; an update of --type alone that does not fit the ID type
// is refused with the reason, one with a fitting ID type is taken and the
// feature code follows.
func TestCtlUnitCommands(t *testing.T) {
	_, c, root := ctlSetup(t)
	var unit identityv1.User
	c.jsonOut(&unit, "", "user", "create", "--login", "acme", "--name", "某某航运有限公司", "--org", root.GetId(),
		"--type", "unit", "--id-type", "uscc", "--id-number", "91310115MA01A2B322")
	if unit.GetUserType() != identityv1.UserType_USER_TYPE_UNIT || unit.GetIdNumberMasked() != "913*************22" || unit.GetFeatureCode() == "" {
		t.Fatalf("unit created: %v", &unit)
	}
	var list identityv1.ListUsersResponse
	c.jsonOut(&list, "", "user", "list", "--type", "unit")
	if ls := userLogins(list.GetUsers()); !slices.Equal(ls, []string{"acme"}) {
		t.Fatalf("user list --type unit: %v", ls)
	}
	c.jsonOut(&list, "", "user", "list", "--type", "person")
	if ls := userLogins(list.GetUsers()); slices.Contains(ls, "acme") || len(ls) == 0 {
		t.Fatalf("user list --type person: %v", ls)
	}
	if out := c.run("", "user", "list", "--type", "unit"); !strings.Contains(out, "TYPE") || !strings.Contains(out, "unit") {
		t.Fatalf("user list table: %q", out)
	}
	if out := c.run("", "user", "get", unit.GetId()); !strings.Contains(out, "uscc") || !strings.Contains(out, "unit") {
		t.Fatalf("user get: %q", out)
	}
	stderr := c.fail(1, "", "user", "update", unit.GetId(), "--type", "person")
	if !strings.Contains(stderr, "set user_type to unit") || !strings.Contains(stderr, "(InvalidArgument, ID_TYPE_MISMATCH)") {
		t.Errorf("type alone: %q", stderr)
	}
	stderr = c.fail(1, "", "user", "create", "--login", "bad-code", "--name", "B", "--org", root.GetId(),
		"--type", "unit", "--id-type", "org_code", "--id-number", "12345678-9")
	if !strings.Contains(stderr, "not a valid 9-character organisation code") {
		t.Errorf("bad org code: %q", stderr)
	}
	var person identityv1.User
	c.jsonOut(&person, "", "user", "update", unit.GetId(), "--type", "person", "--id-type", "passport", "--id-number", "E7654321")
	if person.GetUserType() != identityv1.UserType_USER_TYPE_PERSON || person.GetFeatureCode() == unit.GetFeatureCode() {
		t.Fatalf("updated to a person: %v", &person)
	}
}
