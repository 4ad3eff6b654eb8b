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

	"google.golang.org/protobuf/types/known/structpb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// exportCommands are the "export" noun: bulk export of people, orgs and
// account links (ExportService) in the import's columns.
func exportCommands() map[string]command {
	return map[string]command{
		"users": exportCmd(identityv1.ImportKind_IMPORT_KIND_USERS),
		"orgs":  exportCmd(identityv1.ImportKind_IMPORT_KIND_ORGS),
		"links": exportCmd(identityv1.ImportKind_IMPORT_KIND_LINKS),
	}
}

func exportCmd(kind identityv1.ImportKind) command {
	return command{
		usage: "FILE [--format xlsx|csv|jsonl] [--reveal-personal]",
		help: "Exports every row into FILE (\"-\": standard output) in the columns \"import\" reads, so the file\n" +
			"imports into another UIAS. The format from FILE's extension unless --format. Password hashes are\n" +
			"never exported; ID numbers and phone numbers are masked unless --reveal-personal (allowed to\n" +
			"holders of the personal_data_admin role). The file is written under a temporary name\n" +
			"and renamed when complete. Large exports need a longer --timeout (e.g. --timeout 1h).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			format := fs.String("format", "", "xlsx, csv or jsonl (default: from the file extension)")
			reveal := fs.Bool("reveal-personal", false, "ID numbers and phone numbers in clear")
			return func(args []string) error {
				if err := wantArgs(args, "FILE"); err != nil {
					return err
				}
				path, f := args[0], *format
				if f == "" && path != "-" {
					f = strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
				}
				ff, ok := importFormats[f]
				if !ok {
					return usagef("cannot tell the format of %s: use --format xlsx, csv or jsonl", filepath.Base(path))
				}
				return a.withSession(func(s *session) error {
					st, err := identityv1.NewExportServiceClient(s.conn).Export(s.ctx, &identityv1.ExportRequest{
						Kind: kind, Format: ff, RevealPersonal: *reveal})
					if err != nil {
						return err
					}
					out := a.stdout
					var tmp *os.File
					if path != "-" {
						if tmp, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*"); err != nil {
							return err
						}
						defer func() {
							if tmp != nil {
								_ = tmp.Close()
								_ = os.Remove(tmp.Name())
							}
						}()
						out = tmp
					}
					var rows, masked int64
					for {
						c, err := st.Recv()
						if errors.Is(err, io.EOF) {
							return errors.New("the export ended before its last piece; nothing was written")
						}
						if err != nil {
							return err
						}
						if _, err := out.Write(c.GetData()); err != nil {
							return err
						}
						if c.GetDone() {
							rows, masked = c.GetRows(), c.GetMaskedOtherCentres()
							break
						}
					}
					if tmp == nil {
						return nil
					}
					if err := tmp.Close(); err != nil {
						return err
					}
					if err := os.Rename(tmp.Name(), path); err != nil {
						return err
					}
					tmp = nil
					summary := map[string]any{"file": path, "rows": rows}
					if masked > 0 {
						summary["masked_other_centres"] = masked
					}
					res, _ := structpb.NewStruct(summary)
					return a.output(res, func(tw *tabwriter.Writer) {
						fmt.Fprintf(tw, "EXPORTED\t%d rows\nFILE\t%s\n", rows, path)
						if masked > 0 {
							fmt.Fprintf(tw, "MASKED\t%d people of other centres (their ID and phone numbers do not open here)\n", masked)
						}
					})
				})
			}
		},
	}
}
