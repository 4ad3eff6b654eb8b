package e2e

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// startIE starts a monolithic UIAS whose administrator "admin" may export
// personal data in clear, with an application OA/erp.
func startIE(t *testing.T) *env {
	t.Helper()
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).PersonalDataAdmins = []string{"admin"}
	identitycomponent.Settings(&cfg).ImportMaxBytes = 64 << 10
	e := start(t, cfg)
	e.login()
	if _, err := e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "erp", Name: "ERP"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// importGRPC sends file through ImportService.Import in chunks of 1000
// bytes.
func (e *env) importGRPC(kind identityv1.ImportKind, format identityv1.ImportFormat, file []byte) (*identityv1.ImportReport, error) {
	st, err := identityv1.NewImportServiceClient(e.conn).Import(e.adm())
	if err != nil {
		return nil, err
	}
	if err := st.Send(&identityv1.ImportRequest{Part: &identityv1.ImportRequest_Header{Header: &identityv1.ImportHeader{Kind: kind, Format: format}}}); err != nil {
		return nil, err
	}
	for len(file) > 0 {
		n := min(len(file), 1000)
		if err := st.Send(&identityv1.ImportRequest{Part: &identityv1.ImportRequest_Chunk{Chunk: file[:n]}}); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		file = file[n:]
	}
	return st.CloseAndRecv()
}

// exportGRPC reads a whole ExportService.Export stream.
func (e *env) exportGRPC(kind identityv1.ImportKind, format identityv1.ImportFormat, reveal bool) ([]byte, int64, error) {
	st, err := identityv1.NewExportServiceClient(e.conn).Export(e.adm(), &identityv1.ExportRequest{Kind: kind, Format: format, RevealPersonal: reveal})
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	for {
		c, err := st.Recv()
		if err != nil {
			return nil, 0, err
		}
		buf.Write(c.GetData())
		if c.GetDone() {
			return buf.Bytes(), c.GetRows(), nil
		}
	}
}

const (
	ieOrgs  = "code,name,parent_code\nsh,上海海事局,root\nsh-pd,浦东海事处,sh\n"
	ieUsers = "login_name,display_name,org_code,email,phone,id_type,id_number,password_hash,app_type,app_code,app_account,status\n" +
		"zhangsan,张三,sh-pd,zs@example.org,13812345678,身份证,11010519491231002X,{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0,OA,erp,z001,\n" +
		"lisi,李四,sh,,,,,,,,,停用\n"
	ieLinks = "login_name,app_type,app_code,app_account\nlisi,OA,erp,l001\n"
)

var ieKinds = []identityv1.ImportKind{identityv1.ImportKind_IMPORT_KIND_ORGS, identityv1.ImportKind_IMPORT_KIND_USERS, identityv1.ImportKind_IMPORT_KIND_LINKS}

// TestImportExportRoundTripGRPC: import through ImportService, export
// through ExportService (XLSX), import the export into a fresh UIAS and
// export it again: the same files' rows; no password hash leaves.
func TestImportExportRoundTripGRPC(t *testing.T) {
	a := startIE(t)
	csvFmt, xlsx := identityv1.ImportFormat_IMPORT_FORMAT_CSV, identityv1.ImportFormat_IMPORT_FORMAT_XLSX
	for i, f := range []string{ieOrgs, ieUsers, ieLinks} {
		rep, err := a.importGRPC(ieKinds[i], csvFmt, []byte(f))
		if err != nil || rep.GetFailed() != 0 || rep.GetWritten() == 0 {
			t.Fatalf("import %v: %v %v", ieKinds[i], rep, err)
		}
	}
	b := startIE(t)
	for _, k := range ieKinds {
		file, rows, err := a.exportGRPC(k, xlsx, true)
		if err != nil {
			t.Fatalf("export %v: %v", k, err)
		}
		rep, err := b.importGRPC(k, xlsx, file)
		if err != nil {
			t.Fatalf("import of the export %v: %v", k, err)
		}
		// b has its own "admin" already.
		want := map[identityv1.ImportKind]int64{identityv1.ImportKind_IMPORT_KIND_USERS: 1}[k]
		if rep.GetRows() != rows || rep.GetFailed() != want {
			t.Fatalf("import of the %v export (%d rows): %v", k, rows, rep)
		}
		again, _, err := b.exportGRPC(k, identityv1.ImportFormat_IMPORT_FORMAT_CSV, true)
		if err != nil {
			t.Fatal(err)
		}
		first, _, err := a.exportGRPC(k, identityv1.ImportFormat_IMPORT_FORMAT_CSV, true)
		if err != nil {
			t.Fatal(err)
		}
		if !sameLines(first, again) {
			t.Fatalf("%v after the round trip:\n%s\nwant\n%s", k, again, first)
		}
		if bytes.Contains(first, []byte("SSHA")) {
			t.Fatalf("export carries a password hash:\n%s", first)
		}
		if k == identityv1.ImportKind_IMPORT_KIND_USERS && !bytes.Contains(first, []byte("zhangsan,张三,sh-pd,zs@example.org,13812345678,resident_id,11010519491231002X,active")) {
			t.Fatalf("users export:\n%s", first)
		}
	}
	// Masked unless asked; asked by an administrator not named: refused.
	masked, _, err := a.exportGRPC(identityv1.ImportKind_IMPORT_KIND_USERS, csvFmt, false)
	if err != nil || bytes.Contains(masked, []byte("13812345678")) || bytes.Contains(masked, []byte("11010519491231002X")) {
		t.Fatalf("masked export: %v\n%s", err, masked)
	}
	// Without a token: refused.
	st, err := identityv1.NewExportServiceClient(a.conn).Export(t.Context(), &identityv1.ExportRequest{Kind: ieKinds[0], Format: csvFmt})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, err, codes.Unauthenticated, "")
	// A file over identity.import_max_bytes (64 KiB here).
	big := ieUsers + strings.Repeat("x", 70<<10)
	_, err = a.importGRPC(identityv1.ImportKind_IMPORT_KIND_USERS, csvFmt, []byte(big))
	wantCode(t, err, codes.InvalidArgument, "IMPORT_TOO_LARGE")
}

// sameLines reports whether a and b hold the same lines in any order.
func sameLines(a, b []byte) bool {
	la, lb := strings.Split(strings.TrimSpace(string(a)), "\n"), strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(la) != len(lb) {
		return false
	}
	seen := map[string]int{}
	for _, l := range la {
		seen[l]++
	}
	for _, l := range lb {
		if seen[l]--; seen[l] < 0 {
			return false
		}
	}
	return true
}
