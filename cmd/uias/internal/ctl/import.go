package ctl

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity/importfile"
)

// importCommands are the "import" noun: bulk import of a business system's
// people, orgs and account links (ImportService), and the XLSX templates.
func importCommands() map[string]command {
	return map[string]command{
		"users":    importCmd(identityv1.ImportKind_IMPORT_KIND_USERS),
		"orgs":     importCmd(identityv1.ImportKind_IMPORT_KIND_ORGS),
		"links":    importCmd(identityv1.ImportKind_IMPORT_KIND_LINKS),
		"template": importTemplateCmd(),
	}
}

// importChunk is the size of the chunks the file is streamed in.
const importChunk = 512 << 10

var importFormats = map[string]identityv1.ImportFormat{
	"xlsx": identityv1.ImportFormat_IMPORT_FORMAT_XLSX, "csv": identityv1.ImportFormat_IMPORT_FORMAT_CSV,
	"jsonl": identityv1.ImportFormat_IMPORT_FORMAT_JSONL,
}

func importCmd(kind identityv1.ImportKind) command {
	return command{
		usage: "FILE [--dry-run] [--import-id ID] [--format xlsx|csv|jsonl]",
		help: "Imports the rows of FILE (XLSX, CSV or JSON Lines; the format from the file's extension\n" +
			"unless --format). Rows that cannot be written are listed with their row number, column and\n" +
			"reason; the others are written. --dry-run checks every row and writes nothing. Sending the\n" +
			"same file again with the same --import-id skips the rows written before (resuming an\n" +
			"interrupted import). Large files need a longer --timeout (e.g. --timeout 1h).\n" +
			"Exit status 3 when any row failed (the report is printed all the same), 0 when none did.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			dry := fs.Bool("dry-run", false, "check every row, write nothing")
			id := fs.String("import-id", "", "name of the import, to resume it (default: a new id, printed)")
			format := fs.String("format", "", "xlsx, csv or jsonl (default: from the file extension)")
			return func(args []string) error {
				if err := wantArgs(args, "FILE"); err != nil {
					return err
				}
				path := args[0]
				f := *format
				if f == "" {
					f = strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
				}
				ff, ok := importFormats[f]
				if !ok {
					return usagef("cannot tell the format of %s: use --format xlsx, csv or jsonl", filepath.Base(path))
				}
				file, err := os.Open(path)
				if err != nil {
					return err
				}
				defer file.Close()
				return a.withSession(func(s *session) error {
					st, err := identityv1.NewImportServiceClient(s.conn).Import(s.ctx)
					if err != nil {
						return err
					}
					if err := st.Send(&identityv1.ImportRequest{Part: &identityv1.ImportRequest_Header{Header: &identityv1.ImportHeader{
						Kind: kind, Format: ff, DryRun: *dry, ImportId: *id}}}); err != nil && !errors.Is(err, io.EOF) {
						return err
					}
					buf := make([]byte, importChunk)
					for {
						n, rerr := file.Read(buf)
						if n > 0 {
							if err := st.Send(&identityv1.ImportRequest{Part: &identityv1.ImportRequest_Chunk{Chunk: buf[:n]}}); err != nil {
								if errors.Is(err, io.EOF) {
									break // the server ended the stream: its answer says why
								}
								return err
							}
						}
						if errors.Is(rerr, io.EOF) {
							break
						}
						if rerr != nil {
							return rerr
						}
					}
					rep, err := st.CloseAndRecv()
					if err != nil {
						return err
					}
					if err := a.output(rep, func(tw *tabwriter.Writer) { importReportTable(tw, rep) }); err != nil {
						return err
					}
					if rep.GetFailed() > 0 {
						return &rowsFailedError{failed: rep.GetFailed(), rows: rep.GetRows(), dryRun: rep.GetDryRun()}
					}
					return nil
				})
			}
		},
	}
}

func importReportTable(tw *tabwriter.Writer, r *identityv1.ImportReport) {
	mode := ""
	if r.GetDryRun() {
		mode = " (dry run: nothing was written)"
	}
	fmt.Fprintf(tw, "IMPORT\t%s%s\n", r.GetImportId(), mode)
	fmt.Fprintf(tw, "ROWS\t%d\nWRITTEN\t%d\nSKIPPED\t%d\nFAILED\t%d\n", r.GetRows(), r.GetWritten(), r.GetSkipped(), r.GetFailed())
	if len(r.GetErrors()) == 0 {
		return
	}
	fmt.Fprintf(tw, "\nROW\tFIELD\tREASON\tMESSAGE\n")
	for _, e := range r.GetErrors() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", e.GetRow(), e.GetField(), e.GetReason(), e.GetMessage())
	}
	if n := r.GetFailed() - int64(len(r.GetErrors())); n > 0 {
		fmt.Fprintf(tw, "…\t\t\t%d more failed rows not listed\n", n)
	}
}

func importTemplateCmd() command {
	return command{
		usage: "users|orgs|links FILE [--format xlsx|csv|jsonl]",
		help: "Writes a template: XLSX with the Chinese column headers, a sheet \"示例\" with an example row and a\n" +
			"sheet \"说明\" explaining the columns (both skipped on import); CSV and JSON Lines hold the example\n" +
			"row itself (replace it). The format from FILE's extension unless --format.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			format := fs.String("format", "", "xlsx, csv or jsonl (default: from the file extension)")
			return func(args []string) error {
				if err := wantArgs(args, "KIND", "FILE"); err != nil {
					return err
				}
				kind := importfile.Kind(args[0])
				if _, ok := importfile.Columns[kind]; !ok {
					return usagef("KIND must be users, orgs or links")
				}
				ff := *format
				if ff == "" {
					ff = strings.TrimPrefix(strings.ToLower(filepath.Ext(args[1])), ".")
				}
				if _, ok := importFormats[ff]; !ok {
					return usagef("cannot tell the format of %s: use --format xlsx, csv or jsonl", filepath.Base(args[1]))
				}
				f, err := os.OpenFile(args[1], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return err
				}
				if err := importfile.Template(f, importfile.Format(ff), kind); err != nil {
					f.Close()
					return err
				}
				return f.Close()
			}
		},
	}
}
