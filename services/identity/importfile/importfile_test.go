package importfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

func readAll(t *testing.T, data []byte, f Format, k Kind) []*Record {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file."+string(f))
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, f, k)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

// TestWriterSheets: past the sheet's row limit an XLSX export goes on in
// new sheets, and the reader reads them all, naming each row's sheet.
func TestWriterSheets(t *testing.T) {
	old := maxSheetRows
	maxSheetRows = 3
	t.Cleanup(func() { maxSheetRows = old })
	var buf bytes.Buffer
	w, err := NewWriter(&buf, XLSX, Orgs, []string{"code", "name", "parent_code"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if err := w.Write(map[string]string{"code": fmt.Sprint("c", i), "name": "机构", "parent_code": "root"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(x.GetSheetList(), ","); got != "orgs,orgs 2,orgs 3" {
		t.Fatalf("sheets %s", got)
	}
	_ = x.Close()
	recs := readAll(t, buf.Bytes(), XLSX, Orgs)
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s:%d:%s", r.Sheet, r.Row, r.Fields["code"]))
	}
	want := "orgs:2:c0 orgs:3:c1 orgs:4:c2 orgs 2:2:c3 orgs 2:3:c4 orgs 2:4:c5 orgs 3:2:c6"
	if strings.Join(got, " ") != want {
		t.Fatalf("records %v, want %s", got, want)
	}
}

// TestTemplates: each template reads back; XLSX has an empty data sheet
// (the example and notes sheets are skipped), CSV and JSON Lines the
// example row.
func TestTemplates(t *testing.T) {
	for _, k := range []Kind{Users, Orgs, Links} {
		for _, f := range []Format{XLSX, CSV, JSONL} {
			var buf bytes.Buffer
			if err := Template(&buf, f, k); err != nil {
				t.Fatalf("%s %s: %v", k, f, err)
			}
			recs := readAll(t, buf.Bytes(), f, k)
			if f == XLSX {
				if len(recs) != 0 {
					t.Fatalf("%s xlsx template has data rows: %v", k, recs[0].Fields)
				}
				x, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				hdr, _ := x.GetRows(ExampleSheet)
				if len(hdr) != 2 || hdr[0][0] != Columns[k][0].Chinese || hdr[1][0] != Example[k][Columns[k][0].Name] {
					t.Fatalf("%s example sheet %v", k, hdr)
				}
				_ = x.Close()
				continue
			}
			if len(recs) != 1 || recs[0].Fields[Columns[k][0].Name] != Example[k][Columns[k][0].Name] {
				t.Fatalf("%s %s template rows %v", k, f, recs)
			}
			if field, msg := Problem(recs[0], k); msg != "" {
				t.Fatalf("%s %s example: %s %s", k, f, field, msg)
			}
		}
	}
}

// TestStreamCells: the streamed XLSX keeps every value as written through
// excelize's reader: XML's special characters, white space at either end,
// line breaks, a literal "_x0041_" (an escape to spreadsheet readers),
// Chinese, an empty cell between two others; a character XML cannot carry
// becomes U+FFFD and a value longer than a cell is cut to 32 767.
func TestStreamCells(t *testing.T) {
	long := strings.Repeat("长", maxCellChars+10)
	rows := [][]string{
		{"a&b<c>d\"e'f", " lead", "trail\t", "x"},
		{"line\r\nbreak", "_x0041_ and _x005F_x0041_", "", "上海海事局"},
		{"bell\x07", long, "ok", "x"},
	}
	want := [][]string{
		rows[0],
		rows[1],
		{"bell\uFFFD", long[:len(long)-10*len("长")], "ok", "x"},
	}
	var buf bytes.Buffer
	names := []string{"code", "name", "parent_code", "status"}
	w, err := NewWriter(&buf, XLSX, Orgs, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteRow([]string{"short"}); err == nil {
		t.Fatal("a row of one value for four columns was written")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got := strings.Join(x.GetSheetList(), ","); got != "orgs" {
		t.Fatalf("sheets %s", got)
	}
	got, err := x.GetRows("orgs")
	if err != nil || len(got) != len(want)+1 {
		t.Fatalf("%d rows (header included), want %d: %v", len(got), len(want)+1, err)
	}
	for i, w := range want {
		for j := range names {
			v := ""
			if j < len(got[i+1]) {
				v = got[i+1][j]
			}
			if v != w[j] {
				t.Errorf("row %d column %d = %q, want %q", i+2, j+1, truncate(v, 40), truncate(w[j], 40))
			}
		}
	}
	hdr, err := x.GetCellValue("orgs", "A1")
	if err != nil || hdr != Columns[Orgs][0].Chinese {
		t.Fatalf("A1 = %q, %v", hdr, err)
	}
}
