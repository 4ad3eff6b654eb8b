package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

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
	c.jsonOut(&rep, "", "import", "orgs", orgs, "--import-id", "onboard-orgs")
	if rep.GetWritten() != 1 || rep.GetFailed() != 1 || rep.GetErrors()[0].GetRow() != 3 || rep.GetErrors()[0].GetField() != "code" {
		t.Fatalf("org import: %v", &rep)
	}

	c.jsonOut(&rep, "", "import", "users", tpl, "--dry-run", "--import-id", "onboard-1")
	if !rep.GetDryRun() || rep.GetWritten() != 2 || rep.GetFailed() != 1 || rep.GetErrors()[0].GetReason() != "BAD_ID_NUMBER" {
		t.Fatalf("dry run: %v", &rep)
	}
	var users identityv1.ListUsersResponse
	c.jsonOut(&users, "", "user", "list", "--query", "zhangsan")
	if len(users.GetUsers()) != 0 {
		t.Fatalf("the dry run wrote %v", users.GetUsers())
	}
	c.jsonOut(&rep, "", "import", "users", tpl, "--import-id", "onboard-1")
	if rep.GetWritten() != 2 || rep.GetFailed() != 1 {
		t.Fatalf("import: %v", &rep)
	}
	c.jsonOut(&rep, "", "import", "users", tpl, "--import-id", "onboard-1")
	if rep.GetWritten() != 0 || rep.GetSkipped() != 2 || rep.GetFailed() != 1 {
		t.Fatalf("resumed import: %v", &rep)
	}
	// The table output names the row and the reason.
	out := c.run("", "import", "users", tpl, "--import-id", "onboard-1")
	if !strings.Contains(out, "BAD_ID_NUMBER") || !strings.Contains(out, "SKIPPED") {
		t.Fatalf("table output:\n%s", out)
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
	stderr := c.fail(1, "", "import", "users", bad)
	if !strings.Contains(stderr, "unknown column") {
		t.Fatalf("bad file: %s", stderr)
	}
	stderr = c.fail(2, "", "import", "users", filepath.Join(dir, "people.txt"))
	if !strings.Contains(stderr, "--format") {
		t.Fatalf("unknown extension: %s", stderr)
	}
}
