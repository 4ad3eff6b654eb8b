package app_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func userJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return m
}

// `uias ctl user update` changes exactly the fields whose flags are given,
// against a real UIAS.
func TestCtlUserUpdate(t *testing.T) {
	a, _ := startQuick(t, readmeAdminPassword)
	c := newCtl(t, a)
	c.run(readmeAdminPassword+"\n", "login", "--user", "admin", "--password-stdin")
	orgID := jsonField(t, c.run("", "org", "list", "-o", "json"), "id")
	u := userJSON(t, c.run("", "user", "create", "--login", "bob", "--name", "Bob", "--org", orgID,
		"--phone", "13812345678", "--email", "bob@example.com", "-o", "json"))
	id := u["id"].(string)
	if p := userJSON(t, c.run("", "user", "create", "--login", "pat", "--name", "Pat", "--org", orgID,
		"--password-only", "-o", "json")); p["password_only"] != true {
		t.Fatalf("user create --password-only: %v", p)
	}

	u = userJSON(t, c.run("", "user", "update", id, "--name", "Bob Brown", "--password-only", "-o", "json"))
	if u["display_name"] != "Bob Brown" || u["password_only"] != true {
		t.Fatalf("after update: %v", u)
	}
	if u["phone_masked"] == nil || u["phone_masked"] == "" || u["email"] != "bob@example.com" {
		t.Fatalf("fields not named were changed: %v", u)
	}
	if strings.Contains(c.run("", "user", "get", id), "13812345678") {
		t.Fatal("user get shows the phone number in clear")
	}

	u = userJSON(t, c.run("", "user", "update", id, "--phone", "", "--password-only=false", "-o", "json"))
	if u["phone_masked"] != nil && u["phone_masked"] != "" || u["password_only"] == true || u["display_name"] != "Bob Brown" {
		t.Fatalf("after clearing phone and password-only: %v", u)
	}
	if out := c.run("", "user", "get", id); !strings.Contains(out, "Password only") {
		t.Fatalf("user get table lacks the password-only row:\n%s", out)
	}

	if msg := c.fail(2, "", "user", "update", id); !strings.Contains(msg, "nothing to update") {
		t.Fatalf("update without flags: %q", msg)
	}
	if msg := c.fail(2, "", "user", "update", "--name", "X"); !strings.Contains(msg, "missing ID") {
		t.Fatalf("update without ID: %q", msg)
	}
	msg := c.fail(1, "", "user", "update", "no-such-user", "--name", "X")
	if !strings.Contains(strings.ToLower(msg), "not found") || strings.Contains(msg, "sql") {
		t.Fatalf("update of a missing user: %q", msg)
	}
	msg = c.fail(1, "", "user", "update", id, "--org", "no-such-org")
	if !strings.Contains(strings.ToLower(msg), "org") {
		t.Fatalf("move to a missing org: %q", msg)
	}
}
