package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
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
	// The deprecated setting becomes the personal_data_admin role in
	// authz, appointed at start.
	eventually(t, "admin to export personal data in clear", func() bool {
		_, _, err := e.exportGRPC(identityv1.ImportKind_IMPORT_KIND_ORGS, identityv1.ImportFormat_IMPORT_FORMAT_CSV, true)
		return err == nil
	})
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
		// b has its own "admin" and "auditor" already.
		want := map[identityv1.ImportKind]int64{identityv1.ImportKind_IMPORT_KIND_USERS: 2}[k]
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

// call makes a REST request with a raw body and returns status, headers
// and body.
func (e *env) call(method, path, token, contentType string, body io.Reader) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.http+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// restReason is the ErrorInfo reason and message of a REST error body.
func restReason(t *testing.T, raw []byte) (reason, message string) {
	t.Helper()
	var b struct {
		Message string           `json:"message"`
		Details []map[string]any `json:"details"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("error body %s: %v", raw, err)
	}
	for _, d := range b.Details {
		if r, ok := d["reason"].(string); ok {
			return r, b.Message
		}
	}
	return "", b.Message
}

func wantREST(t *testing.T, what string, code int, raw []byte, wantCode int, wantReason, wantText string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: HTTP %d, want %d: %s", what, code, wantCode, raw)
	}
	if wantReason == "" {
		return
	}
	r, m := restReason(t, raw)
	if r != wantReason || !strings.Contains(m, wantText) {
		t.Fatalf("%s: %s %q, want %s containing %q", what, r, m, wantReason, wantText)
	}
}

func multipartFile(t *testing.T, fields map[string]string, name string, file []byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(file)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), &buf
}

type restReport struct {
	ImportID string `json:"import_id"`
	DryRun   bool   `json:"dry_run"`
	Rows     string `json:"rows"`
	Written  string `json:"written"`
	Failed   string `json:"failed"`
	Errors   []struct {
		Row    string `json:"row"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func report(t *testing.T, what string, code int, raw []byte) restReport {
	t.Helper()
	if code != http.StatusOK {
		t.Fatalf("%s: HTTP %d: %s", what, code, raw)
	}
	var r restReport
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: %s: %v", what, raw, err)
	}
	return r
}

const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

// TestImportExportREST: the file routes over real HTTP through the edge:
// templates, uploads (raw and multipart, dry run), the errors (bad token
// before the body, malformed files with the row, row errors in the
// report, wrong and missing content types, too large, unknown kind), and
// downloads that import into a fresh UIAS.
func TestImportExportREST(t *testing.T) {
	a := startIE(t)

	// Templates need no credentials.
	code, hdr, raw := a.call("GET", "/v1/import/users/template", "", "", nil)
	if code != http.StatusOK || hdr.Get("Content-Type") != xlsxType || !strings.Contains(hdr.Get("Content-Disposition"), "users-template.xlsx") {
		t.Fatalf("xlsx template: %d %v", code, hdr)
	}
	x, err := excelize.OpenReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("template is no XLSX: %v", err)
	}
	if rows, _ := x.GetRows("示例"); len(rows) != 2 || rows[0][0] != "登录名" || rows[1][1] != "张三" {
		t.Fatalf("template example sheet %v", rows)
	}
	_ = x.Close()
	code, _, raw = a.call("GET", "/v1/import/orgs/template?format=csv", "", "", nil)
	if code != http.StatusOK || !strings.Contains(string(raw), "code,name,parent_code,status\r\nHQ-01,") &&
		!strings.Contains(string(raw), "code,name,parent_code,status\nHQ-01,") {
		t.Fatalf("csv template: %d %q", code, raw)
	}
	code, _, raw = a.call("GET", "/v1/import/people/template", "", "", nil)
	wantREST(t, "unknown kind", code, raw, http.StatusNotFound, "NOT_FOUND", "users, orgs or links")

	// A bad token is refused before the body is read.
	code, _, raw = a.call("POST", "/v1/import/orgs", "not-a-token", "text/csv", strings.NewReader(ieOrgs))
	wantREST(t, "bad token", code, raw, http.StatusUnauthorized, "BAD_ADMIN_TOKEN", "")

	// Raw CSV body.
	code, _, raw = a.call("POST", "/v1/import/orgs", a.token, "text/csv; charset=utf-8", strings.NewReader(ieOrgs))
	rep := report(t, "orgs", code, raw)
	if rep.Written != "2" || rep.Failed != "0" {
		t.Fatalf("orgs report %+v", rep)
	}
	// Multipart with a dry run, then for real (format from the file name).
	ct, body := multipartFile(t, map[string]string{"dry_run": "true", "import_id": "hr-1"}, "people.csv", []byte(ieUsers))
	code, _, raw = a.call("POST", "/v1/import/users", a.token, ct, body)
	rep = report(t, "dry run", code, raw)
	if !rep.DryRun || rep.Written != "2" || rep.ImportID != "hr-1" {
		t.Fatalf("dry run %+v", rep)
	}
	if _, err := a.admin.ListUsers(a.adm(), &identityv1.ListUsersRequest{Query: "zhangsan"}); err != nil {
		t.Fatal(err)
	}
	ct, body = multipartFile(t, nil, "people.csv", []byte(ieUsers))
	code, _, raw = a.call("POST", "/v1/import/users", a.token, ct, body)
	if rep = report(t, "users", code, raw); rep.Written != "2" {
		t.Fatalf("users %+v", rep)
	}
	// Row errors: 200 with the report.
	code, _, raw = a.call("POST", "/v1/import/links?format=jsonl", a.token, "application/octet-stream",
		strings.NewReader(`{"login_name":"lisi","app_type":"OA","app_code":"erp","app_account":"l001"}`+"\n"+
			`{"login_name":"nobody","app_type":"OA","app_code":"erp","app_account":"n001"}`+"\n"+"not json\n"))
	rep = report(t, "links", code, raw)
	if rep.Written != "1" || rep.Failed != "2" || len(rep.Errors) != 2 || rep.Errors[0].Row != "2" || rep.Errors[0].Reason != "UNKNOWN_USER" ||
		rep.Errors[1].Row != "3" {
		t.Fatalf("links report %+v", rep)
	}
	// Malformed files: 400 naming the row.
	code, _, raw = a.call("POST", "/v1/import/orgs", a.token, "text/csv", strings.NewReader("code,name,parent_code\nok,OK,root\nbad,\"unterminated,root\n"))
	wantREST(t, "malformed CSV", code, raw, http.StatusBadRequest, "BAD_IMPORT_FILE", "row 3")
	code, _, raw = a.call("POST", "/v1/import/orgs", a.token, "text/csv", strings.NewReader("code,name,parent,colour\n"))
	wantREST(t, "unknown column", code, raw, http.StatusBadRequest, "BAD_IMPORT_FILE", "unknown column \"parent\"")
	code, _, raw = a.call("POST", "/v1/import/users", a.token, xlsxType, strings.NewReader("PK this is no workbook"))
	wantREST(t, "bad XLSX", code, raw, http.StatusBadRequest, "BAD_IMPORT_FILE", "not a readable XLSX file")
	// Content types.
	code, _, raw = a.call("POST", "/v1/import/users", a.token, "application/json", strings.NewReader(`{"login_name":"x"}`))
	wantREST(t, "JSON body", code, raw, http.StatusUnsupportedMediaType, "UNSUPPORTED_FILE_TYPE", "application/json is not an import file")
	code, _, raw = a.call("POST", "/v1/import/users", a.token, "application/octet-stream", strings.NewReader("x"))
	wantREST(t, "octet-stream without format", code, raw, http.StatusUnsupportedMediaType, "UNSUPPORTED_FILE_TYPE", "?format=")
	ct, body = multipartFile(t, nil, "people.txt", []byte(ieUsers))
	code, _, raw = a.call("POST", "/v1/import/users", a.token, ct, body)
	wantREST(t, "multipart .txt", code, raw, http.StatusUnsupportedMediaType, "UNSUPPORTED_FILE_TYPE", "cannot tell the format")
	code, _, raw = a.call("POST", "/v1/import/users?format=pdf", a.token, "text/csv", strings.NewReader(ieUsers))
	wantREST(t, "format=pdf", code, raw, http.StatusBadRequest, "BAD_REQUEST", "xlsx, csv or jsonl")
	// Too large: identity.import_max_bytes is 64 KiB here.
	big := ieUsers + strings.Repeat("# padding\n", 7<<10)
	code, _, raw = a.call("POST", "/v1/import/users", a.token, "text/csv", strings.NewReader(big))
	wantREST(t, "70 KiB", code, raw, http.StatusRequestEntityTooLarge, "IMPORT_TOO_LARGE", "64 KiB")

	// Downloads.
	code, _, raw = a.call("GET", "/v1/export/users?format=csv", "", "", nil)
	wantREST(t, "export without token", code, raw, http.StatusUnauthorized, "BAD_ADMIN_TOKEN", "")
	code, hdr, raw = a.call("GET", "/v1/export/users?format=csv", a.token, "", nil)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(hdr.Get("Content-Disposition"), "users.csv") ||
		!strings.Contains(string(raw), "138****5678") || strings.Contains(string(raw), "13812345678") {
		t.Fatalf("masked CSV export: %d %v\n%s", code, hdr, raw)
	}
	code, _, raw = a.call("GET", "/v1/export/users?format=csv&reveal_personal=true", a.token, "", nil)
	if code != http.StatusOK || !strings.Contains(string(raw), "13812345678") {
		t.Fatalf("revealed CSV export: %d\n%s", code, raw)
	}
	code, _, raw = a.call("GET", "/v1/export/users?reveal_personal=maybe", a.token, "", nil)
	wantREST(t, "reveal_personal=maybe", code, raw, http.StatusBadRequest, "BAD_REQUEST", "true or false")

	// Round trip through REST: XLSX downloads uploaded into a fresh UIAS.
	b := startIE(t)
	for _, k := range []string{"orgs", "users", "links"} {
		code, hdr, file := a.call("GET", "/v1/export/"+k+"?reveal_personal=true", a.token, "", nil)
		if code != http.StatusOK || hdr.Get("Content-Type") != xlsxType {
			t.Fatalf("export %s: %d %s", k, code, file)
		}
		code, _, raw := b.call("POST", "/v1/import/"+k, b.token, xlsxType, bytes.NewReader(file))
		rep := report(t, "import of the "+k+" export", code, raw)
		if want := map[string]string{"users": "2"}[k]; rep.Failed != want && !(want == "" && rep.Failed == "0") {
			t.Fatalf("import of the %s export: %+v", k, rep)
		}
		_, _, first := a.call("GET", "/v1/export/"+k+"?format=csv&reveal_personal=true", a.token, "", nil)
		_, _, again := b.call("GET", "/v1/export/"+k+"?format=csv&reveal_personal=true", b.token, "", nil)
		if !sameLines(first, again) {
			t.Fatalf("%s after the REST round trip:\n%s\nwant\n%s", k, again, first)
		}
	}
}
