package ctl

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// fakeExport streams a canned file in two pieces, or breaks off after the
// first piece.
type fakeExport struct {
	identityv1.UnimplementedExportServiceServer
	admin *fakeAdmin
	last  *identityv1.ExportRequest
	cut   bool
}

func (f *fakeExport) Export(r *identityv1.ExportRequest, st identityv1.ExportService_ExportServer) error {
	if err := f.admin.authorize(st.Context()); err != nil {
		return err
	}
	f.last = r
	if err := st.Send(&identityv1.ExportChunk{Data: []byte("code,name,parent_code\n")}); err != nil {
		return err
	}
	if f.cut {
		return status.Error(codes.Unavailable, "connection lost")
	}
	return st.Send(&identityv1.ExportChunk{Data: []byte("sh,上海,root\n"), Rows: 1, Done: true})
}

func TestExportCommand(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	admin := &fakeAdmin{}
	exp := &fakeExport{admin: admin}
	identityv1.RegisterAdminServiceServer(gs, admin)
	identityv1.RegisterExportServiceServer(gs, exp)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cfg := filepath.Join(t.TempDir(), "uias")
	h := &harness{t: t, addr: lis.Addr().String(), srv: admin, cfg: cfg,
		env: map[string]string{"UIAS_ADDR": lis.Addr().String(), "UIAS_CONFIG_DIR": cfg}}
	h.login()

	dir := t.TempDir()
	file := filepath.Join(dir, "orgs.csv")
	out := h.mustRun("export", "orgs", file, "--reveal-personal")
	if !strings.Contains(out, "EXPORTED  1 rows") {
		t.Fatalf("output %q", out)
	}
	if exp.last.GetKind() != identityv1.ImportKind_IMPORT_KIND_ORGS || exp.last.GetFormat() != identityv1.ImportFormat_IMPORT_FORMAT_CSV ||
		!exp.last.GetRevealPersonal() {
		t.Fatalf("request %v", exp.last)
	}
	if b, _ := os.ReadFile(file); string(b) != "code,name,parent_code\nsh,上海,root\n" {
		t.Fatalf("file %q", b)
	}
	// Standard output needs --format.
	if code, _, errs := h.run("export", "users", "-"); code == 0 || !strings.Contains(errs, "--format") {
		t.Fatalf("export to - without --format: %d %s", code, errs)
	}
	if out := h.mustRun("export", "users", "-", "--format", "jsonl"); out != "code,name,parent_code\nsh,上海,root\n" {
		t.Fatalf("stdout %q", out)
	}
	// A stream that breaks off leaves no file, not even a partial one.
	exp.cut = true
	broken := filepath.Join(dir, "broken.xlsx")
	if code, _, errs := h.run("export", "users", broken); code == 0 || !strings.Contains(errs, "connection lost") {
		t.Fatalf("broken export: %d %s", code, errs)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files left: %v", entries)
	}
}
