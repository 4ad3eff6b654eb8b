package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestLockoutThroughTheEdge runs the issue 15 attacks against a whole
// process over its REST edge, behind a trusted proxy (127.0.0.0/8) that
// names the client in X-Forwarded-For: 1,000 wrong AdminLogins from one
// address are answered 401, then 429 with Retry-After, and the owner logs
// in from another address at once; logout ends the token on the spot.
func TestLockoutThroughTheEdge(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	// Real waits, kept short: 1 ms doubling to 16 ms.
	lt := &identitycomponent.Settings(&cfg).LoginThrottle
	lt.BaseDelay, lt.MaxDelay = time.Millisecond, 16*time.Millisecond
	e := start(t, cfg)
	login := func(ip, pw string) (int, map[string]any, string) {
		code, out, hdr := e.rest("POST", "/v1/admin/login", map[string]string{"X-Forwarded-For": ip},
			map[string]string{"login_name": "admin", "password": pw})
		return code, out, hdr.Get("Retry-After")
	}

	var unauthorized, throttled int
	for i := range 1000 {
		code, out, retry := login("192.0.2.66", fmt.Sprintf("Wrong-%04d-Pw", i))
		switch code {
		case 401:
			unauthorized++
		case 429:
			throttled++
			if n, err := strconv.Atoi(retry); err != nil || n < 1 {
				t.Fatalf("429 without a usable Retry-After: %q", retry)
			}
			if throttled == 1 {
				t.Logf("first refusal: %v (Retry-After %s)", out, retry)
			}
		default:
			t.Fatalf("attempt %d: HTTP %d %v", i, code, out)
		}
	}
	if unauthorized != 15 || throttled != 985 {
		t.Fatalf("401 × %d, 429 × %d; want 15 and 985", unauthorized, throttled)
	}

	code, out, _ := login("192.0.2.77", adminPassword)
	token, _ := out["token"].(string)
	if code != 200 || token == "" {
		t.Fatalf("owner from another address: HTTP %d %v", code, out)
	}
	bearer := map[string]string{"Authorization": "Bearer " + token, "X-Forwarded-For": "192.0.2.77"}
	if code, out, _ := e.rest("GET", "/v1/orgs", bearer, nil); code != 200 {
		t.Fatalf("list orgs with the token: %d %v", code, out)
	}
	if code, out, _ := e.rest("POST", "/v1/admin/logout", bearer, map[string]any{}); code != 200 {
		t.Fatalf("logout: %d %v", code, out)
	}
	if code, out, _ := e.rest("GET", "/v1/orgs", bearer, nil); code != 401 {
		t.Fatalf("token after logout: %d %v, want 401", code, out)
	}

	// Audited: the rate-limit hits with the address the proxy named, the
	// logout, and the refused token.
	want := map[string]bool{"admin.login LOGIN_THROTTLED 192.0.2.66": false, "admin.logout OK 192.0.2.77": false,
		"admin.auth UNKNOWN_TOKEN 192.0.2.77": false}
	wantAudits(t, e, want, func(ev map[string]any) string {
		return fmt.Sprintf("%v %v %v", ev["api"], ev["reason"], ev["client_ip"])
	})
}

// wantAudits waits until the AUDIT stream holds an admin record of every
// key of want (key makes a record's key).
func wantAudits(t *testing.T, e *env, want map[string]bool, key func(ev map[string]any) string) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.identity.admin.") {
			seen[key(ev)] = true
		}
		for k := range want {
			if !seen[k] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records missing (want %v); seen %v", slices.Sorted(maps.Keys(want)), seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRefusedAdminCallsAudited: administrator calls that are refused (a
// rule of the service, a malformed request, a bad token) leave audit
// records, with the administrator as actor where known.
func TestRefusedAdminCallsAudited(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	_, err := e.admin.SetOrgStatus(e.adm(), &identityv1.SetOrgStatusRequest{Id: e.root, Status: identityv1.Status_STATUS_DISABLED})
	wantCode(t, err, codes.FailedPrecondition, "ROOT_ORG")
	_, err = e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: string(make([]byte, 300)), Name: "x", ParentId: e.root})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	bad := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer forged")
	_, err = e.admin.ListOrgs(bad, &identityv1.ListOrgsRequest{})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_TOKEN")

	admin := "user:" + e.adminID(t)
	want := map[string]bool{
		"admin.refused ROOT_ORG " + admin + " /uias.identity.v1.AdminService/SetOrgStatus": false,
		"admin.refused BAD_REQUEST " + admin + " /uias.identity.v1.AdminService/CreateOrg": false,
		"admin.auth UNKNOWN_TOKEN anonymous <nil>":                                         false,
	}
	wantAudits(t, e, want, func(ev map[string]any) string {
		var method any
		if d, ok := ev["detail"].(map[string]any); ok {
			method = d["method"]
		}
		return fmt.Sprintf("%v %v %v %v", ev["api"], ev["reason"], ev["actor"], method)
	})
}

// adminID is the id of the bootstrap administrator.
func (e *env) adminID(t *testing.T) string {
	t.Helper()
	res, err := e.admin.ListUsers(e.adm(), &identityv1.ListUsersRequest{Query: "admin"})
	if err != nil || len(res.GetUsers()) == 0 {
		t.Fatalf("find admin: %v", err)
	}
	return res.GetUsers()[0].GetId()
}

// TestLockedAdministratorUnlockedByPeer: wrong passwords from several
// addresses lock a system administrator (nobody else may lock one), and a
// second system administrator unlocks them: the locked one needs no token
// of their own to get back in.
func TestLockedAdministratorUnlockedByPeer(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	lt := &identitycomponent.Settings(&cfg).LoginThrottle
	lt.BaseDelay, lt.MaxDelay = time.Millisecond, 16*time.Millisecond
	e := start(t, cfg)
	e.login()
	peer := e.grantedAdmin(t, "sys-b", "system_admin")
	asPeer := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+peer)
	me, err := identityv1.NewAdminSessionServiceClient(e.conn).WhoAmI(e.adm(), &identityv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	adminID := me.GetUser().GetId()
	login := func(ip, pw string) int {
		code, _, _ := e.rest("POST", "/v1/admin/login", map[string]string{"X-Forwarded-For": ip},
			map[string]string{"login_name": "admin", "password": pw})
		return code
	}
	for i := range 12 {
		login(fmt.Sprintf("192.0.2.%d", 10+i%4), fmt.Sprintf("Wrong-%02d-Pw", i))
	}
	if code := login("192.0.2.99", adminPassword); code != 401 {
		t.Fatalf("the right password of the locked administrator: HTTP %d, want 401", code)
	}
	if _, err := e.admin.LockUser(asPeer, &identityv1.LockUserRequest{Id: adminID}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a peer locks a system administrator: %v", err)
	}
	if _, err := e.admin.UnlockUser(asPeer, &identityv1.UnlockUserRequest{Id: adminID}); err != nil {
		t.Fatalf("a peer unlocks the locked system administrator: %v", err)
	}
	if code := login("192.0.2.99", adminPassword); code != 200 {
		t.Fatalf("the administrator after the unlock: HTTP %d, want 200", code)
	}
}
