package app_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// `uias ctl app update` and `org rename` against a real UIAS: only the named
// fields change, and an allow-list change takes effect on Authenticate.
func TestCtlAppUpdateAndOrgRename(t *testing.T) {
	a, c, root := ctlSetup(t)
	var created identityv1.CreateAppResponse
	c.jsonOut(&created, "", "app", "create", "--type", "OA", "--code", "oa", "--name", "OA", "--allow", "10.0.0.0/8")
	id, secret := created.GetApp().GetId(), created.GetAppSecret()
	var u identityv1.User
	c.jsonOut(&u, "Battery-Staple-77\n", "user", "create", "--login", "ann", "--name", "Ann", "--org", root.GetId(), "--password-stdin")
	c.run("", "link", "create", "--user", u.GetId(), "--app", id, "--account", "a001")

	_, err := ctlAuthenticate(t, a, id, secret, "a001", "Battery-Staple-77")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("loopback caller outside 10.0.0.0/8: %v", err)
	}
	var x identityv1.App
	c.jsonOut(&x, "", "app", "update", id, "--allow-any")
	if len(x.GetIpAllowList()) != 0 || x.GetName() != "OA" || x.GetRateLimit() != 100 {
		t.Fatalf("after --allow-any: %v", &x)
	}
	wantAuth(t, "after --allow-any", a, id, secret, "a001", "Battery-Staple-77", identityv1.Reason_REASON_OK)

	c.jsonOut(&x, "", "app", "update", id, "--name", "Office automation", "--rate", "3", "--burst", "4", "--max-concurrent", "8")
	if x.GetName() != "Office automation" || x.GetRateLimit() != 3 || x.GetRateBurst() != 4 || len(x.GetIpAllowList()) != 0 ||
		x.GetMaxConcurrent() != 8 {
		t.Fatalf("after name, rate and concurrency: %v", &x)
	}
	if out := c.run("", "app", "get", id); !strings.Contains(out, "8 calls in progress") {
		t.Fatalf("app get does not show the concurrency limit:\n%s", out)
	}
	c.jsonOut(&x, "", "app", "update", id, "--allow", "127.0.0.1", "--allow", "192.168.0.0/16")
	if !slices.Equal(x.GetIpAllowList(), []string{"127.0.0.1/32", "192.168.0.0/16"}) || x.GetName() != "Office automation" {
		t.Fatalf("after --allow: %v", &x)
	}
	wantAuth(t, "loopback allowed", a, id, secret, "a001", "Battery-Staple-77", identityv1.Reason_REASON_OK)

	// --legacy-ip-only: on an allow-listed application, shown by app get;
	// refused (exit 1, the reason) once the list is empty.
	c.jsonOut(&x, "", "app", "update", id, "--legacy-ip-only")
	if !x.GetLegacyIpOnly() {
		t.Fatalf("after --legacy-ip-only: %v", &x)
	}
	if out := c.run("", "app", "get", id); !strings.Contains(out, "Legacy IP-only") || !strings.Contains(out, "yes (legacy") {
		t.Fatalf("app get does not show legacy IP-only:\n%s", out)
	}
	if out := c.fail(1, "", "app", "update", id, "--allow-any", "--legacy-ip-only"); !strings.Contains(out, "no IP allow-list") {
		t.Fatalf("--legacy-ip-only without an allow-list: %q", out)
	}
	c.jsonOut(&x, "", "app", "update", id, "--no-legacy-ip-only")
	if x.GetLegacyIpOnly() {
		t.Fatalf("after --no-legacy-ip-only: %v", &x)
	}

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"app", "update", id}, "nothing to update"},
		{[]string{"app", "update", id, "--allow", "10.0.0.0/8", "--allow-any"}, "exclude each other"},
		{[]string{"app", "update", id, "--allow", "not-a-network"}, "is not a CIDR"},
		{[]string{"app", "update", id, "--rate", "-1"}, "--rate must be a non-negative number"},
		{[]string{"app", "update", id, "--max-concurrent", "-1"}, "--max-concurrent must be between 0"},
		{[]string{"app", "update", "--name", "X"}, "missing ID"},
		{[]string{"org", "rename", root.GetId()}, "--name"},
	} {
		if out := c.fail(2, "", tc.args...); !strings.Contains(out, tc.msg) {
			t.Errorf("uias ctl %s: %q lacks %q", strings.Join(tc.args, " "), out, tc.msg)
		}
	}
	if out := c.fail(1, "", "app", "update", "01NOSUCHID0000000000000000", "--name", "X"); !strings.Contains(out, "application not found") {
		t.Errorf("update of a missing app: %q", out)
	}

	var child, o identityv1.Org
	c.jsonOut(&child, "", "org", "create", "--code", "east", "--name", "East", "--parent", root.GetId())
	c.jsonOut(&o, "", "org", "rename", child.GetId(), "--name", "East region")
	if o.GetName() != "East region" || o.GetCode() != "east" || o.GetParentId() != root.GetId() {
		t.Fatalf("org rename: %v", &o)
	}
	if out := c.fail(1, "", "org", "rename", "01NOSUCHID0000000000000000", "--name", "X"); !strings.Contains(out, "org not found") {
		t.Errorf("rename of a missing org: %q", out)
	}
}
