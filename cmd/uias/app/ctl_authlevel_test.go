package app_test

import (
	"strings"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// `uias ctl user create|update --min-auth-level` and `app create|update
// --min-auth-level` set the levels of graded authentication by name or
// number; get shows them; a value that is none is a usage error.
func TestCtlMinAuthLevel(t *testing.T) {
	_, c, root := ctlSetup(t)
	var u identityv1.User
	c.jsonOut(&u, "", "user", "create", "--login", "lev", "--name", "Lev", "--org", root.GetId(), "--min-auth-level", "two-factor")
	if u.GetMinAuthLevel() != 2 {
		t.Fatalf("user create --min-auth-level two-factor: %v", &u)
	}
	c.jsonOut(&u, "", "user", "update", u.GetId(), "--min-auth-level", "certificate")
	if u.GetMinAuthLevel() != 3 {
		t.Fatalf("user update --min-auth-level certificate: %v", &u)
	}
	if out := c.run("", "user", "get", u.GetId()); !strings.Contains(out, "3 (a certificate only)") {
		t.Fatalf("user get:\n%s", out)
	}
	c.jsonOut(&u, "", "user", "update", u.GetId(), "--min-auth-level", "default")
	if u.GetMinAuthLevel() != 0 {
		t.Fatalf("user update --min-auth-level default: %v", &u)
	}
	if msg := c.fail(2, "", "user", "update", u.GetId(), "--min-auth-level", "strong"); !strings.Contains(msg, "--min-auth-level must be") {
		t.Fatalf("a level that is none: %q", msg)
	}

	var created identityv1.CreateAppResponse
	c.jsonOut(&created, "", "app", "create", "--type", "OA", "--code", "graded", "--name", "Graded", "--min-auth-level", "2")
	if created.GetApp().GetMinAuthLevel() != 2 {
		t.Fatalf("app create --min-auth-level 2: %v", &created)
	}
	var app identityv1.App
	c.jsonOut(&app, "", "app", "update", created.GetApp().GetId(), "--min-auth-level", "any")
	if app.GetMinAuthLevel() != 1 {
		t.Fatalf("app update --min-auth-level any: %v", &app)
	}
	if out := c.run("", "app", "get", app.GetId()); !strings.Contains(out, "Min auth level") || !strings.Contains(out, "1 (any method)") {
		t.Fatalf("app get:\n%s", out)
	}
}
