package app_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"google.golang.org/protobuf/encoding/protojson"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// Onboarding a business system through `uias ctl import` against a running
// UIAS: the template, orgs from CSV, a dry run of people from the filled-in
// XLSX template (hashes of the old system included), the import, resuming
// it, the people's links and logins with their old passwords.
func TestCtlImport(t *testing.T) {
	a, c, root := ctlSetup(t)
	dir := t.TempDir()
	created, _ := appWithUser(t, c, root.GetId(), "old", "old-1", "Harbour-Pass-123")

	// The template has the Chinese headers.
	tpl := filepath.Join(dir, "users.xlsx")
	c.run("", "import", "template", "users", tpl)
	x, err := excelize.OpenFile(tpl)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := x.GetRows(x.GetSheetName(0))
	if err != nil || len(hdr) != 1 || hdr[0][0] != "登录名" {
		t.Fatalf("template rows %v %v", hdr, err)
	}
	// Fill it in: two people of the old system, one with an ID number that
	// fails its check digit.
	sheet := x.GetSheetName(0)
	for i, row := range [][]any{
		{"zhangsan", "张三", "harbour", "zs@example.org", "", "", "", "{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0", "OA", "oa-old", "zs-1"},
		{"lisi", "李四", "harbour", "", "", "身份证", "110105194912310021", "", "", "", ""},
		{"wangwu", "王五", "harbour", "", "13812345678", "", "", "$digest$md5$ps$abc$39ddaa1e8803de22688ecfaa8af5573c", "OA", "oa-old", "ww-1"},
	} {
		cell := "A" + string(rune('2'+i))
		if err := x.SetSheetRow(sheet, cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Save(); err != nil {
		t.Fatal(err)
	}
	x.Close()

	orgs := filepath.Join(dir, "orgs.csv")
	if err := os.WriteFile(orgs, []byte("code,name,parent_code\nharbour,港务局,"+root.GetCode()+"\nbad code!,x,"+root.GetCode()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var rep identityv1.ImportReport
	importRows(c, 1, "1 of 2 rows failed", &rep, "import", "orgs", orgs, "--import-id", "onboard-orgs")
	if rep.GetWritten() != 1 || rep.GetFailed() != 1 || rep.GetErrors()[0].GetRow() != 3 || rep.GetErrors()[0].GetField() != "code" {
		t.Fatalf("org import: %v", &rep)
	}

	importRows(c, 1, "1 of 3 rows would fail", &rep, "import", "users", tpl, "--dry-run", "--import-id", "onboard-1")
	if !rep.GetDryRun() || rep.GetWritten() != 2 || rep.GetFailed() != 1 || rep.GetErrors()[0].GetReason() != "BAD_ID_NUMBER" {
		t.Fatalf("dry run: %v", &rep)
	}
	var users identityv1.ListUsersResponse
	c.jsonOut(&users, "", "user", "list", "--query", "zhangsan")
	if len(users.GetUsers()) != 0 {
		t.Fatalf("the dry run wrote %v", users.GetUsers())
	}
	importRows(c, 1, "1 of 3 rows failed", &rep, "import", "users", tpl, "--import-id", "onboard-1")
	if rep.GetWritten() != 2 || rep.GetFailed() != 1 {
		t.Fatalf("import: %v", &rep)
	}
	importRows(c, 1, "1 of 3 rows failed", &rep, "import", "users", tpl, "--import-id", "onboard-1")
	if rep.GetWritten() != 0 || rep.GetSkipped() != 2 || rep.GetFailed() != 1 {
		t.Fatalf("resumed import: %v", &rep)
	}
	// The table output names the row and the reason.
	// (and exits 3, as any row failed).
	r := c.exec("", "import", "users", tpl, "--import-id", "onboard-1")
	if r.code != 3 || !strings.Contains(r.stdout, "BAD_ID_NUMBER") || !strings.Contains(r.stdout, "SKIPPED") ||
		r.stderr != "error: 1 of 3 rows failed (listed in the report); the other rows were written or skipped\n" {
		t.Fatalf("table output: exit %d\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// A file whose every row is written exits 0 with nothing on stderr.
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte("code,name,parent_code\ndocks,码头,harbour\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.jsonOut(&rep, "", "import", "orgs", good, "--dry-run")
	if rep.GetFailed() != 0 || rep.GetWritten() != 1 || !rep.GetDryRun() {
		t.Fatalf("clean dry run: %v", &rep)
	}
	c.jsonOut(&rep, "", "import", "orgs", good)
	if rep.GetFailed() != 0 || rep.GetWritten() != 1 {
		t.Fatalf("clean import: %v", &rep)
	}
	// The people log in through the application with their old passwords.
	appID, secret := created.GetApp().GetId(), created.GetAppSecret()
	res, err := ctlAuthenticate(t, a, appID, secret, "zs-1", "Ocean-Pass-1")
	wantReason(t, "imported SSHA", res, err, identityv1.Reason_REASON_OK)
	res, err = ctlAuthenticate(t, a, appID, secret, "ww-1", "Ocean-Pass-1")
	wantReason(t, "imported MD5 digest", res, err, identityv1.Reason_REASON_OK)
	res, err = ctlAuthenticate(t, a, appID, secret, "ww-1", "Ocean-Pass-2")
	wantReason(t, "wrong password", res, err, identityv1.Reason_REASON_BAD_CREDENTIALS)

	// A file the server cannot read at all.
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("who,what\nx,y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr := c.fail(1, "", "import", "users", bad) // no report at all: 1, not 3
	if !strings.Contains(stderr, "unknown column") {
		t.Fatalf("bad file: %s", stderr)
	}
	stderr = c.fail(2, "", "import", "users", filepath.Join(dir, "people.txt"))
	if !strings.Contains(stderr, "--format") {
		t.Fatalf("unknown extension: %s", stderr)
	}
}

// importRows runs an import with -o json in which some rows fail: exit 3,
// the report on stdout (decoded into rep), one error line on stderr saying
// how many rows failed.
func importRows(c *uiasCtl, failed int, msg string, rep *identityv1.ImportReport, args ...string) {
	c.t.Helper()
	args = append(slices.Clone(args), "-o", "json")
	r := c.exec("", args...)
	if r.code != 3 || !strings.HasPrefix(r.stderr, "error: "+msg+" (listed in the report)") || strings.Count(r.stderr, "\n") != 1 {
		c.t.Fatalf("uias ctl %s: exit %d, want 3 and %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, msg, r.stdout, r.stderr)
	}
	if err := protojson.Unmarshal([]byte(r.stdout), rep); err != nil {
		c.t.Fatalf("uias ctl %s: stdout is not a report: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	if rep.GetFailed() != int64(failed) {
		c.t.Fatalf("uias ctl %s: %d rows failed, want %d", strings.Join(args, " "), rep.GetFailed(), failed)
	}
}
