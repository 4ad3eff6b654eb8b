package caller_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/caller"
)

func TestAPIOf(t *testing.T) {
	for m, want := range map[string]string{
		"/uias.identity.v1.AuthService/Authenticate":    caller.APIAuthenticate,
		"/uias.identity.v1.AuthService/ChangePassword":  caller.APIChangePassword,
		"/uias.authz.v1.AuthzService/Check":             caller.APIAuthzCheck,
		"/uias.authz.v1.AuthzService/BatchCheck":        caller.APIAuthzCheck,
		"/uias.authz.v1.AuthzService/ListSubjects":      caller.APIAuthzSubjects,
		"/uias.authz.v1.AuthzService/CheckAdmin":        "",
		"/uias.identity.v1.AdminService/CreateUser":     "",
		"/uias.identity.v1.DirectoryService/ListPeople": caller.APIDirectory,
		"/uias.identity.v1.DirectoryService/Future":     caller.APIDirectory,
	} {
		if got := caller.APIOf(m); got != want {
			t.Errorf("%s: %q, want %q", m, got, want)
		}
	}
}

func TestCheckAPIs(t *testing.T) {
	if err := caller.CheckAPIs(caller.APIs); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"authenticat"}, {"sso", "sso"}, {""}} {
		if err := caller.CheckAPIs(bad); err == nil || !strings.Contains(err.Error(), "granted_apis") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestAuthorizeGrantsAndPeriod: an application is held to its interfaces
// and its access period; a refusal says what to do and is told to Denied.
func TestAuthorizeGrantsAndPeriod(t *testing.T) {
	r := newRig(t)
	now := r.clk.t
	ctx := context.Background()
	all := activeApp("all")
	if err := r.auth.Authorize(ctx, all, caller.APIAuthzSubjects); err != nil {
		t.Fatalf("no grants: every interface: %v", err)
	}
	// but the directory (people's data), granted only by name
	if err := r.auth.Authorize(ctx, all, caller.APIDirectory); err == nil || !strings.Contains(err.Error(), "granted only by name") ||
		!strings.Contains(err.Error(), "API_NOT_GRANTED") && !strings.Contains(err.Error(), "interface") {
		t.Fatalf("no grants: the directory: %v", err)
	}
	reader := activeApp("reader")
	reader.GrantedAPIs = []string{caller.APIDirectory}
	if err := r.auth.Authorize(ctx, reader, caller.APIDirectory); err != nil {
		t.Fatalf("the directory granted by name: %v", err)
	}
	some := activeApp("some")
	some.GrantedAPIs = []string{caller.APIAuthenticate, caller.APIAuthzCheck}
	if err := r.auth.Authorize(ctx, some, caller.APIAuthzCheck); err != nil {
		t.Fatal(err)
	}
	if err := r.auth.Authorize(ctx, some, ""); err != nil {
		t.Fatalf("a call no grant covers: %v", err)
	}
	err := r.auth.Authorize(ctx, some, caller.APIAuthzSubjects)
	r.wantRefused(t, err, "API_NOT_GRANTED", codes.PermissionDenied, "")
	if !strings.Contains(err.Error(), "--grant-api") || !strings.Contains(err.Error(), `"authz.subjects"`) {
		t.Errorf("refusal says nothing useful: %v", err)
	}
	period := activeApp("period")
	period.AccessFrom, period.AccessUntil = now.Add(time.Hour), now.Add(48*time.Hour)
	r.wantRefused(t, r.auth.Authorize(ctx, period, caller.APIAuthenticate), "APP_ACCESS_NOT_BEGUN", codes.PermissionDenied, "")
	r.clk.t = now.Add(2 * time.Hour)
	if err := r.auth.Authorize(ctx, period, caller.APIAuthenticate); err != nil {
		t.Fatalf("within the period: %v", err)
	}
	r.clk.t = now.Add(48 * time.Hour)
	r.wantRefused(t, r.auth.Authorize(ctx, period, ""), "APP_ACCESS_EXPIRED", codes.PermissionDenied, "")
}

// A deleted application is told its service ended only when the caller
// presents one of its last secrets; any other caller learns nothing of it
// (review sec24 L4).
func TestTerminatedApplication(t *testing.T) {
	gone := activeApp("gone")
	gone.Active, gone.Terminated = false, time.Unix(1_700_000_000, 0)
	r := newRig(t, gone)
	ctx := context.Background()
	_, err := r.auth.Authenticate(ctx, "gone", secret, netip.Addr{})
	r.wantRefused(t, err, "APP_TERMINATED", codes.PermissionDenied, "")
	if !strings.Contains(err.Error(), "2023-11-14") {
		t.Errorf("notice without its date: %v", err)
	}
	_, err = r.auth.Authenticate(ctx, "gone", "not-its-secret-0123456789", netip.Addr{})
	r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
	_, err = r.auth.AuthenticateAddress(ctx, "gone", netip.MustParseAddr("192.0.2.7"))
	r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
}
