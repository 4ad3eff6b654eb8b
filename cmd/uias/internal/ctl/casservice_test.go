package ctl

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestServiceCommands: "service create" with --require-link and
// --require-permission registers a CAS service with its access rule in a
// real monolith; get, list and -o json show it; update changes only the
// flags given and clears the rule's parts; a malformed permission and an
// update without flags are usage errors (exit 2) before any call.
func TestServiceCommands(t *testing.T) {
	_, h := startMonolith(t, "Service-Ctl-Pass-3", nil)
	var created struct {
		App struct {
			ID string `json:"id"`
		} `json:"app"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "app", "create", "--type", "OA", "--code", "svcctl", "--name", "Svc")), &created); err != nil ||
		created.App.ID == "" {
		t.Fatalf("app create: %+v %v", created, err)
	}
	appID := created.App.ID

	var svc struct {
		ID                 string `json:"id"`
		Name               string `json:"name"`
		RequireAccountLink bool   `json:"require_account_link"`
		RequiredPermission string `json:"required_permission"`
	}
	// The check asks authz for the model on the administrator's behalf,
	// with the rights authz has from identity's first-start appointment
	// (made as soon as authz answers): wait until the grant is there (else
	// the check, a help and not a guard, is skipped).
	for deadline := time.Now().Add(30 * time.Second); ; {
		if code, out, _ := h.run("authz", "grants", "--role", "system_admin"); code == 0 && strings.Contains(out, "system_admin") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first start's appointment never reached authz")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A rule naming a permission the application does not define would
	// refuse everyone: refused at registration, with what to do.
	if code, _, errs := h.run("service", "create", "--app", appID, "--name", "Ruled", "--url", "http://127.0.0.1:8081/app/",
		"--require-permission", "docs.contract:approve"); code != 1 || !strings.Contains(errs, "defines no resource") ||
		!strings.Contains(errs, "authz resources") {
		t.Fatalf("service create with an undefined permission: exit %d, %s", code, errs)
	}
	h.mustRun("authz", "resource-put", "--app", appID, "--code", "docs", "--kind", "module", "--ops", "read")
	h.mustRun("authz", "resource-put", "--app", appID, "--code", "docs.contract", "--parent", "docs", "--kind", "entity", "--ops", "read,approve")
	// replaced without its --parent, it would move to the top: that takes
	// --move (trial7 L2); the same parent replaces it
	if code, _, errs := h.run("authz", "resource-put", "--app", appID, "--code", "docs.contract", "--kind", "entity",
		"--ops", "read,approve"); code != 2 || !strings.Contains(errs, `resource "docs.contract" is under "docs": give --parent docs to keep it there, or --move`) {
		t.Fatalf("resource-put moving a resource without --move: exit %d, %s", code, errs)
	}
	h.mustRun("authz", "resource-put", "--app", appID, "--code", "docs.contract", "--parent", "docs", "--kind", "entity", "--ops", "read,approve",
		"--name", "Contracts")
	out := h.mustRun("-o", "json", "service", "create", "--app", appID, "--name", "Ruled", "--url", "http://127.0.0.1:8081/app/",
		"--require-link", "--require-permission", "docs.contract:approve")
	if err := json.Unmarshal([]byte(out), &svc); err != nil || svc.ID == "" || !svc.RequireAccountLink ||
		svc.RequiredPermission != "docs.contract:approve" {
		t.Fatalf("service create -o json: %+v %v\n%s", svc, err, out)
	}
	plain := h.mustRun("service", "create", "--app", appID, "--name", "Plain", "--url", "http://127.0.0.1:8081/plain/")
	if !strings.Contains(plain, "anyone signed in") || !strings.Contains(plain, "Requires account link:") {
		t.Errorf("service create without a rule:\n%s", plain)
	}

	got := flat(h.mustRun("service", "get", svc.ID))
	for _, want := range []string{"Requires account link: yes", "Required permission: docs.contract:approve",
		"account link + permission docs.contract:approve"} {
		if !strings.Contains(got, want) {
			t.Errorf("service get lacks %q:\n%s", want, got)
		}
	}
	list := h.mustRun("service", "list", "--app", appID)
	if !strings.Contains(list, "ACCESS") || !strings.Contains(list, "account link + permission docs.contract:approve") ||
		!strings.Contains(list, "anyone signed in") {
		t.Errorf("service list:\n%s", list)
	}

	// Update: only the flags given change.
	up := flat(h.mustRun("service", "update", svc.ID, "--require-link=false"))
	if !strings.Contains(up, "Access: permission docs.contract:approve") || !strings.Contains(up, "Ruled") {
		t.Errorf("update --require-link=false:\n%s", up)
	}
	up = h.mustRun("service", "update", svc.ID, "--require-permission", "docs:read", "--require-link")
	if !strings.Contains(up, "account link + permission docs:read") {
		t.Errorf("update --require-permission docs:read --require-link:\n%s", up)
	}
	up = h.mustRun("service", "update", svc.ID, "--require-permission", "", "--require-link=false")
	if !strings.Contains(up, "anyone signed in") || !strings.Contains(up, "http://127.0.0.1:8081/app/") {
		t.Errorf("update clearing the rule:\n%s", up)
	}

	// A certificate only: level 2 follows; cleared again, the level stays.
	up = flat(h.mustRun("service", "update", svc.ID, "--certificate-required"))
	if !strings.Contains(up, "Certificate required: yes") || !strings.Contains(up, "Min auth level: 2") {
		t.Errorf("update --certificate-required:\n%s", up)
	}
	up = flat(h.mustRun("service", "update", svc.ID, "--certificate-required=false"))
	if !strings.Contains(up, "Certificate required: no") || !strings.Contains(up, "Min auth level: 2") {
		t.Errorf("update --certificate-required=false:\n%s", up)
	}

	// Roles and permissions released: each flag on its own, off again.
	up = flat(h.mustRun("service", "update", svc.ID, "--release-roles", "--release-permissions"))
	if !strings.Contains(up, "Releases: roles, permissions") || !strings.Contains(up, "Certificate required: no") {
		t.Errorf("update --release-roles --release-permissions:\n%s", up)
	}
	var rel struct {
		ReleaseRoles       bool `json:"release_roles"`
		ReleasePermissions bool `json:"release_permissions"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "service", "update", svc.ID, "--release-roles=false")), &rel); err != nil ||
		rel.ReleaseRoles || !rel.ReleasePermissions {
		t.Errorf("update --release-roles=false -o json: %+v %v", rel, err)
	}
	if !strings.Contains(plain, "Releases: no roles or permissions") && !strings.Contains(flat(plain), "Releases: no roles or permissions") {
		t.Errorf("a service created without them:\n%s", plain)
	}

	// Consent asked of its OpenID Connect client, remembered 30 days;
	// off again.
	up = flat(h.mustRun("service", "update", svc.ID, "--consent-required", "--consent-ttl", "720h"))
	if !strings.Contains(up, "Consent: asked, remembered 30 days") {
		t.Errorf("update --consent-required --consent-ttl 720h:\n%s", up)
	}
	up = flat(h.mustRun("service", "update", svc.ID, "--consent-ttl", "0"))
	if !strings.Contains(up, "Consent: asked, remembered 90 days") {
		t.Errorf("update --consent-ttl 0:\n%s", up)
	}
	up = flat(h.mustRun("service", "update", svc.ID, "--consent-required=false"))
	if !strings.Contains(up, "Consent: not asked") {
		t.Errorf("update --consent-required=false:\n%s", up)
	}
	// The attribute release policy: set, shown, refused by the server when
	// it masks what it does not release, cleared.
	up = flat(h.mustRun("service", "update", svc.ID, "--release-attributes", "login,displayName,roles", "--mask-attributes", "displayName"))
	if !strings.Contains(up, "Attributes released: login, displayName, roles (masked: displayName)") {
		t.Errorf("update --release-attributes --mask-attributes:\n%s", up)
	}
	var pol struct {
		ReleaseAttributes []string `json:"release_attributes"`
		MaskedAttributes  []string `json:"masked_attributes"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "service", "get", svc.ID)), &pol); err != nil ||
		strings.Join(pol.ReleaseAttributes, ",") != "login,displayName,roles" || strings.Join(pol.MaskedAttributes, ",") != "displayName" {
		t.Errorf("service get -o json: %+v %v", pol, err)
	}
	if code, _, errs := h.run("service", "update", svc.ID, "--release-attributes", "login"); code != 1 ||
		!strings.Contains(errs, "which release_attributes does not release") {
		t.Errorf("masking what is not released: exit %d, %s", code, errs)
	}
	up = flat(h.mustRun("service", "update", svc.ID, "--release-attributes", "", "--mask-attributes", ""))
	if !strings.Contains(up, "Attributes released: all") {
		t.Errorf("policy cleared:\n%s", up)
	}
	if !strings.Contains(flat(plain), "Attributes released: all") {
		t.Errorf("a service created without a policy:\n%s", plain)
	}
	open := flat(h.mustRun("service", "create", "--app", appID, "--name", "Open", "--url", "http://127.0.0.1:8081/open/", "--open"))
	if !strings.Contains(open, "Access: anyone signed in") {
		t.Errorf("service create --open:\n%s", open)
	}
	h.mustRun("service", "update", svc.ID, "--require-link")
	if up := flat(h.mustRun("service", "update", svc.ID, "--open")); !strings.Contains(up, "Access: anyone signed in") {
		t.Errorf("service update --open clears the rule:\n%s", up)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "update", svc.ID, "--consent-ttl", "90000h"}, "--consent-ttl"},
		{[]string{"service", "update", svc.ID, "--consent-ttl", "-1h"}, "--consent-ttl"},
		{[]string{"service", "update", svc.ID, "--release-attributes", "login,email"}, `unknown attribute "email"`},
		{[]string{"service", "update", svc.ID, "--mask-attributes", "login"}, `--mask-attributes: unknown attribute "login"`},
		{[]string{"service", "create", "--app", appID, "--url", "http://127.0.0.1:8081/y/", "--open", "--require-link"}, "--open is for a service without an access rule"},
		{[]string{"service", "update", svc.ID, "--open", "--require-permission", "docs:read"}, "--open is for a service without an access rule"},
		{[]string{"service", "update", svc.ID, "--certificate-required", "--min-auth-level", "1"}, "--min-auth-level 2"},
		{[]string{"service", "create", "--app", appID, "--url", "http://127.0.0.1:8081/x/", "--require-permission", "docs"}, "RESOURCE:OPERATION"},
		{[]string{"service", "update", svc.ID, "--require-permission", "docs:read:x"}, "RESOURCE:OPERATION"},
		{[]string{"service", "update", svc.ID}, "nothing to update"},
		{[]string{"service", "create", "--app", appID}, "--url or --pattern"},
	} {
		if code, _, errs := h.run(tc.args...); code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %d and %q", tc.args, code, errs, exitUsage, tc.want)
		}
	}
	h.mustRun("service", "delete", svc.ID)
	if code, _, _ := h.run("service", "get", svc.ID); code != 1 {
		t.Errorf("service get after delete: exit %d", code)
	}
}

// flat is s with every run of blanks one space (tables' padding).
func flat(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
