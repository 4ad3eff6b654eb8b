package ctl

import (
	"encoding/json"
	"strings"
	"testing"
)

// Personal data in clear is authz's identity.personal reveal, held by the
// personal_data_admin role, against a real monolithic process: a system
// administrator without the role exports a person's ID number and phone
// masked, is refused --reveal-personal with a sentence naming the role, and
// once granted the role sees them in clear.
func TestRevealPersonalData(t *testing.T) {
	const pw, sysPw = "Reveal-Ctl-Pass-1", "Second-Admin-Pass-7"
	const idNumber, phone = "11010519491231002X", "13812345678"
	a, h := startMonolith(t, pw, nil)
	var roots struct{ Orgs []struct{ Id string } }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "org", "list")), &roots); err != nil || len(roots.Orgs) == 0 {
		t.Fatalf("org list: %v %+v", err, roots)
	}
	root := roots.Orgs[0].Id
	// Created with a mistyped ID number, corrected with user update (the
	// exports below show the corrected one).
	var zhang struct{ Id string }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "user", "create", "--login", "zhang", "--name", "张三", "--org", root,
		"--id-type", "resident_id", "--id-number", "110105194912310003", "--phone", phone)), &zhang); err != nil || zhang.Id == "" {
		t.Fatalf("create zhang: %v %+v", err, zhang)
	}
	if out := h.mustRun("user", "update", zhang.Id, "--id-number", idNumber); !strings.Contains(out, "110*************2X") {
		t.Fatalf("user update --id-number: %s", out)
	}
	if code, _, errs := h.run("user", "update", zhang.Id, "--id-type", "none"); code == 0 || !strings.Contains(errs, "id_type is required with id_number") ||
		!strings.Contains(errs, "(flag --id-type)") {
		t.Fatalf("user update --id-type none with a number kept: exit %d %s", code, errs)
	}
	// A type without its number identifies nobody: refused at creation and
	// when the number is cleared while a type stays.
	if code, _, errs := h.run("user", "create", "--login", "nonum", "--name", "No Number", "--org", root, "--id-type", "passport"); code == 0 ||
		!strings.Contains(errs, "id_number is required with id_type") || !strings.Contains(errs, "(flag --id-number)") {
		t.Fatalf("user create --id-type passport without a number: exit %d %s", code, errs)
	}
	if code, _, errs := h.run("user", "update", zhang.Id, "--id-number", ""); code == 0 || !strings.Contains(errs, "id_number is required with id_type") {
		t.Fatalf("user update --id-number '' with the type kept: exit %d %s", code, errs)
	}
	// A second system administrator (nobody grants roles to themselves).
	h.stdin = sysPw + "\n"
	var sys struct{ Id string }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "user", "create", "--login", "sys2", "--name", "Second admin",
		"--org", root, "--password-stdin", "--never-expires")), &sys); err != nil || sys.Id == "" {
		t.Fatalf("create sys2: %v %+v", err, sys)
	}
	h.stdin = ""
	var appointed struct {
		ActivationPassword string `json:"activation_password"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "authz", "grant", "--role", "system_admin", "--user", sys.Id)), &appointed); err != nil ||
		appointed.ActivationPassword == "" {
		t.Fatalf("appointing sys2: %v %+v", err, appointed)
	}

	h2 := &harness{t: t, addr: a.GRPCAddr(), cfg: t.TempDir(), env: map[string]string{"UIAS_ADDR": a.GRPCAddr()}}
	h2.env["UIAS_CONFIG_DIR"] = h2.cfg
	h2.loginEventually("sys2", appointed.ActivationPassword)

	masked := func(who string, out string) {
		t.Helper()
		if !strings.Contains(out, "zhang") || strings.Contains(out, idNumber) || strings.Contains(out, phone) ||
			!strings.Contains(out, "138****5678") {
			t.Fatalf("%s: the export shows personal data in clear or not at all:\n%s", who, out)
		}
	}
	masked("sys2 without the role", h2.mustRun("export", "users", "-", "--format", "csv"))
	code, out, errs := h2.run("export", "users", "-", "--format", "csv", "--reveal-personal")
	if code == 0 || strings.Contains(out, idNumber) || strings.Contains(out, phone) {
		t.Fatalf("sys2 without the role, --reveal-personal: exit %d\n%s", code, out)
	}
	for _, want := range []string{"not allowed", "personal_data_admin", "export without it for masked values"} {
		if !strings.Contains(errs, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, errs)
		}
	}

	// The role, granted by the first administrator: in clear at once
	// (authz runs in this process), masked without --reveal-personal.
	var g struct{ Grant struct{ Id string } }
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "authz", "grant", "--role", "personal_data_admin", "--user", sys.Id)), &g); err != nil {
		t.Fatal(err)
	}
	out = h2.mustRun("export", "users", "-", "--format", "csv", "--reveal-personal")
	if !strings.Contains(out, idNumber) || !strings.Contains(out, phone) {
		t.Fatalf("sys2 with personal_data_admin, --reveal-personal: not in clear:\n%s", out)
	}
	masked("sys2 with the role, without --reveal-personal", h2.mustRun("export", "users", "-", "--format", "csv"))

	// Revoked: refused again at the next call.
	if g.Grant.Id == "" {
		t.Fatal("the grant's id is not in ctl's output")
	}
	h.mustRun("authz", "revoke", g.Grant.Id)
	if code, out, _ := h2.run("export", "users", "-", "--format", "csv", "--reveal-personal"); code == 0 || strings.Contains(out, phone) {
		t.Fatalf("after the revocation, --reveal-personal: exit %d\n%s", code, out)
	}
}
