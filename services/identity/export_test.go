package identity_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/importfile"
)

// adminCtx is a context of the system administrator "admin" of iw.
func (iw *importWorld) adminCtx(t *testing.T) context.Context {
	t.Helper()
	u, err := iw.st.GetUserByLogin(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	return caller.With(context.Background(), &caller.Caller{Principal: u.ID, RequestID: "export-test"})
}

// export writes kind k of iw as format f into a file and returns its path
// and the number of rows.
func (iw *importWorld) export(t *testing.T, ctx context.Context, k importfile.Kind, f importfile.Format, reveal bool) (string, int) {
	t.Helper()
	var buf bytes.Buffer
	w, err := importfile.NewWriter(&buf, f, k, identity.ExportColumns[string(k)])
	if err != nil {
		t.Fatal(err)
	}
	n, err := iw.svc.Export(ctx, identity.ExportOptions{Kind: string(k), Reveal: reveal}, w.WriteRow)
	if err != nil {
		t.Fatalf("export %s: %v", k, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), string(k)+"."+string(f))
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, n
}

// rowsOf reads a file back as sorted "col=value|..." lines.
func rowsOf(t *testing.T, path string, f importfile.Format, k importfile.Kind) []string {
	t.Helper()
	r, err := importfile.Open(path, f, k)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, c := range identity.ExportColumns[string(k)] {
			parts = append(parts, c+"="+rec.Fields[c])
		}
		out = append(out, strings.Join(parts, "|"))
	}
	slices.Sort(out)
	return out
}

// seedForExport imports orgs, people (with their links, ID numbers,
// phones, a disabled one, a Chinese name) and links into iw.
func seedForExport(t *testing.T, iw *importWorld) {
	t.Helper()
	orgs := writeFile(t, "orgs.csv", "code,name,parent_code,status\n"+
		"sh,上海海事局,root,\nsh-pd,浦东海事处,sh,\nsh-old,旧处,sh,停用\nnb,宁波海事局,root,active\n")
	if rep := iw.run(t, orgs, importfile.CSV, importfile.Orgs, "", false); rep.Written != 4 {
		t.Fatalf("orgs %+v", rep)
	}
	users := writeFile(t, "users.csv", "login_name,display_name,org_code,email,phone,id_type,id_number,password_hash,app_type,app_code,app_account,status,min_auth_level,password_only,user_type\n"+
		"zhangsan,张三,sh-pd,zs@example.org,13812345678,身份证,11010519491231002X,"+sshaOcean+",OA,oa,z001,,证书,,\n"+
		"lisi,李四,sh,,,passport,E12345678,,,,,,two-factor,,\n"+
		"wangwu,王五,nb,ww@example.org,+86-139-0000-1111,,,,OA,oa,w001,停用,,是,\n"+
		"zhaoliu,赵六,sh-old,,,,,,,,,,,,\n"+
		"shipco,某某航运有限公司,sh,,,统一社会信用代码,91310115MA01A2B322,,,,,,,,单位\n")
	if rep := iw.run(t, users, importfile.CSV, importfile.Users, "", false); rep.Written != 5 {
		t.Fatalf("users %+v", rep)
	}
	// a hash the importer brought is a password another set
	if us, _, err := iw.svc.ListUsers(context.Background(), identity.UserFilter{Query: "zhangsan"}, 10, ""); err != nil || len(us) != 1 ||
		!us[0].PasswordByOther {
		t.Fatalf("imported with a hash: %+v %v", us, err)
	}
	links := writeFile(t, "links.jsonl", `{"login_name":"lisi","app_type":"OA","app_code":"oa","app_account":"l001","status":"disabled"}`+"\n")
	if rep := iw.run(t, links, importfile.JSONL, importfile.Links, "", false); rep.Written != 1 {
		t.Fatalf("links %+v", rep)
	}
}

// TestExportRoundTrip: import into one store, export in each format, import
// the export into a fresh store, export that: the same rows (people, ID
// numbers and phones in clear, statuses, orgs by code, links by login and
// application) except what every fresh UIAS has already (the system
// administrator, and "mia" with her link, of the test world).
func TestExportRoundTrip(t *testing.T) {
	cfg := identity.Config{PersonalDataAdmins: []string{"admin"}}
	a := newImportWorldWith(t, cfg)
	seedForExport(t, a)
	for _, f := range []importfile.Format{importfile.XLSX, importfile.CSV, importfile.JSONL} {
		t.Run(string(f), func(t *testing.T) {
			b := newImportWorldWith(t, cfg)
			for _, k := range []importfile.Kind{importfile.Orgs, importfile.Users, importfile.Links} {
				pa, n := a.export(t, a.adminCtx(t), k, f, true)
				rep := b.run(t, pa, f, k, "", false)
				// In b, "admin" and "mia" (and mia's link) exist already.
				wantFailed := map[importfile.Kind]int{importfile.Users: 2, importfile.Links: 1}[k]
				if rep.Rows != n || rep.Failed != wantFailed || rep.Written != n-wantFailed {
					t.Fatalf("%s: import of the export (%d rows): %+v", k, n, rep)
				}
				for _, e := range rep.Errors {
					if e.Reason != identity.ReasonImportExists {
						t.Fatalf("%s: row %d: %s %s", k, e.Row, e.Reason, e.Message)
					}
				}
				pb, _ := b.export(t, b.adminCtx(t), k, f, true)
				ra, rb := rowsOf(t, pa, f, k), rowsOf(t, pb, f, k)
				if !slices.Equal(ra, rb) {
					t.Fatalf("%s: export after the round trip differs:\n%s\nwant\n%s", k, strings.Join(rb, "\n"), strings.Join(ra, "\n"))
				}
				data, _ := os.ReadFile(pa)
				if all := strings.Join(ra, "\n"); k == importfile.Users && (len(ra) != 7 || !strings.Contains(all, "id_number=11010519491231002X|status=active|min_auth_level=certificate") ||
					!strings.Contains(all, "login_name=shipco|display_name=某某航运有限公司|org_code=sh|email=|phone=|id_type=uscc|id_number=91310115MA01A2B322|status=active|min_auth_level=|password_only=|user_type=unit") ||
					!strings.Contains(all, "password_only=yes|user_type=person") ||
					!strings.Contains(all, "status=active|min_auth_level=two-factor|password_only=") ||
					!strings.Contains(all, "status=disabled|min_auth_level=|password_only=yes")) {
					t.Fatalf("users export:\n%s", strings.Join(ra, "\n"))
				}
				if f != importfile.XLSX && (bytes.Contains(data, []byte("SSHA")) || bytes.Contains(data, []byte("password_hash"))) {
					t.Fatalf("%s export carries password hashes:\n%s", k, data)
				}
			}
			// The people can log in with their imported password in b too?
			// No: hashes are not exported; zhangsan has no password in b.
			u, err := b.st.GetUserByLogin(context.Background(), "zhangsan")
			if err != nil || u.PasswordHash != "" {
				t.Fatalf("zhangsan in b: hash %q, %v", u.PasswordHash, err)
			}
		})
	}
}

// TestExportMasksPersonalData: without reveal the ID numbers and phones
// are masked; reveal is refused to an administrator not named in
// PersonalDataAdmins and to everyone when it names nobody.
func TestExportMasksPersonalData(t *testing.T) {
	iw := newImportWorld(t) // PersonalDataAdmins empty
	seedForExport(t, iw)
	p, _ := iw.export(t, iw.adminCtx(t), importfile.Users, importfile.CSV, false)
	data, _ := os.ReadFile(p)
	for _, clear := range []string{"11010519491231002X", "13812345678", "E12345678", "91310115MA01A2B322"} {
		if bytes.Contains(data, []byte(clear)) {
			t.Fatalf("masked export carries %s:\n%s", clear, data)
		}
	}
	rows := strings.Join(rowsOf(t, p, importfile.CSV, importfile.Users), "\n")
	if !strings.Contains(rows, "login_name=zhangsan|display_name=张三|org_code=sh-pd|email=zs@example.org|phone=138****5678") {
		t.Fatalf("masked rows:\n%s", rows)
	}
	_, err := iw.svc.Export(iw.adminCtx(t), identity.ExportOptions{Kind: "users", Reveal: true}, func([]string) error { return nil })
	if reasonOf(err) != identity.ReasonPersonalDataDenied {
		t.Fatalf("reveal without personal_data_admins: %v", err)
	}
	other := newImportWorldWith(t, identity.Config{PersonalDataAdmins: []string{"someone-else"}})
	_, err = other.svc.Export(other.adminCtx(t), identity.ExportOptions{Kind: "users", Reveal: true}, func([]string) error { return nil })
	if reasonOf(err) != identity.ReasonPersonalDataDenied {
		t.Fatalf("reveal by an admin not named: %v", err)
	}
	// Orgs and links have no personal data: no reveal needed.
	if _, n := iw.export(t, iw.adminCtx(t), importfile.Orgs, importfile.CSV, false); n != 4 {
		t.Fatalf("orgs exported: %d, want 4 (the root is not exported)", n)
	}
}

// TestExportPages: more rows than a page, and a failing writer ends the
// export with its error (one audit record either way).
func TestExportPages(t *testing.T) {
	iw := newImportWorld(t)
	var b strings.Builder
	b.WriteString("login_name,display_name,org_code\n")
	total := identity.ExportPageSize*2 + 7
	for i := range total - 2 { // + admin and mia
		fmt.Fprintf(&b, "p%05d,Person %d,root\n", i, i)
	}
	if rep := iw.run(t, writeFile(t, "many.csv", b.String()), importfile.CSV, importfile.Users, "", false); rep.Written != total-2 {
		t.Fatalf("import %+v", rep)
	}
	seen := map[string]bool{}
	n, err := iw.svc.Export(iw.adminCtx(t), identity.ExportOptions{Kind: "users"}, func(v []string) error {
		if seen[v[0]] { // login_name
			return fmt.Errorf("%s twice", v[0])
		}
		seen[v[0]] = true
		return nil
	})
	if err != nil || n != total || len(seen) != total {
		t.Fatalf("export: %d rows (%d distinct), %v; want %d", n, len(seen), err, total)
	}
	boom := errors.New("disk full")
	before := iw.outbox(t)
	n, err = iw.svc.Export(iw.adminCtx(t), identity.ExportOptions{Kind: "users"}, func([]string) error {
		return boom
	})
	if !errors.Is(err, boom) || n != 0 {
		t.Fatalf("failing writer: %d, %v", n, err)
	}
	if got := iw.outbox(t) - before; got != 1 {
		t.Fatalf("audit records of a failed export: %d, want 1", got)
	}
}
