package importfile

import (
	"errors"
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"
)

// Sheets of a template or export that are not data: the column notes and
// the example.
const (
	HelpSheet    = "说明"
	ExampleSheet = "示例"
)

// MaxSheetRows is the number of data rows an XLSX sheet holds (Excel's
// 1 048 576 rows less the header); an export continues on further sheets.
const MaxSheetRows = excelize.TotalRows - 1

// maxSheetRows is MaxSheetRows (smaller in tests).
var maxSheetRows = MaxSheetRows

// xlsxReader reads the data sheets of a workbook in order (every sheet but
// the help and example sheets), each with its own header row, one row in
// memory at a time.
type xlsxReader struct {
	x      *excelize.File
	cols   []Column
	sheets []string
	multi  bool
	cur    *tableReader
	rows   *excelize.Rows
	sheet  string
}

func openXLSX(path string, cols []Column) (Reader, error) {
	x, err := excelize.OpenFile(path)
	if err != nil {
		return nil, &ErrHeader{Msg: "not a readable XLSX file"}
	}
	var sheets []string
	for _, s := range x.GetSheetList() {
		if s != HelpSheet && s != ExampleSheet {
			sheets = append(sheets, s)
		}
	}
	if len(sheets) == 0 {
		_ = x.Close()
		return nil, &ErrHeader{Msg: "the workbook has no data sheet"}
	}
	r := &xlsxReader{x: x, cols: cols, sheets: sheets, multi: len(sheets) > 1}
	if err := r.nextSheet(); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// nextSheet opens the next data sheet and reads its header; io.EOF when
// there is none.
func (r *xlsxReader) nextSheet() error {
	if r.rows != nil {
		_ = r.rows.Close()
		r.rows, r.cur = nil, nil
	}
	if len(r.sheets) == 0 {
		return io.EOF
	}
	r.sheet, r.sheets = r.sheets[0], r.sheets[1:]
	where := "the first sheet"
	if r.multi {
		where = fmt.Sprintf("sheet %q", truncate(r.sheet, 40))
	}
	rows, err := r.x.Rows(r.sheet)
	if err != nil {
		return &ErrHeader{Msg: where + " cannot be read"}
	}
	r.rows = rows
	if !rows.Next() {
		return &ErrHeader{Msg: where + " has no header row"}
	}
	hdr, err := rows.Columns()
	if err != nil {
		return &ErrHeader{Msg: "the header row of " + where + " cannot be read"}
	}
	names, err := mapHeader(hdr, r.cols)
	if err != nil {
		var he *ErrHeader
		if r.multi && errors.As(err, &he) {
			return &ErrHeader{Msg: where + ": " + he.Msg}
		}
		return err
	}
	next := func() ([]string, error) {
		if !rows.Next() {
			if err := rows.Error(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		return rows.Columns()
	}
	r.cur = &tableReader{names: names, row: 1, next: next, close: func() error { return nil }}
	return nil
}

func (r *xlsxReader) Next() (*Record, error) {
	for {
		rec, err := r.cur.Next()
		if errors.Is(err, io.EOF) {
			if err := r.nextSheet(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			if r.multi {
				return nil, fmt.Errorf("sheet %q: %w", truncate(r.sheet, 40), err)
			}
			return nil, err
		}
		if r.multi {
			rec.Sheet = r.sheet
		}
		return rec, nil
	}
}

func (r *xlsxReader) Close() error {
	if r.rows != nil {
		_ = r.rows.Close()
	}
	return r.x.Close()
}

// sheetName is the name of the n-th (0-based) data sheet of kind k.
func sheetName(k Kind, n int) string {
	if n == 0 {
		return string(k)
	}
	return fmt.Sprintf("%s %d", k, n+1)
}

// xlsxWriter is a workbook of excelize with the data sheet begun by its
// stream writer (the header row): the templates' writer (Template adds
// the example and notes sheets). Exports stream theirs (xlsxStream).
type xlsxWriter struct {
	f   *excelize.File
	hdr []any
	sw  *excelize.StreamWriter
}

func newXLSXWriter(k Kind, cols []Column) (*xlsxWriter, error) {
	x := &xlsxWriter{f: excelize.NewFile()}
	for _, c := range cols {
		x.hdr = append(x.hdr, c.Chinese)
	}
	name := sheetName(k, 0)
	if err := x.f.SetSheetName("Sheet1", name); err != nil {
		_ = x.f.Close()
		return nil, err
	}
	sw, err := x.f.NewStreamWriter(name)
	if err != nil {
		_ = x.f.Close()
		return nil, err
	}
	x.sw = sw
	if err := sw.SetRow("A1", x.hdr); err != nil {
		_ = x.f.Close()
		return nil, err
	}
	return x, nil
}

// columnsOf returns k's columns named by names, in that order.
func columnsOf(k Kind, names []string) ([]Column, error) {
	all, ok := Columns[k]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q", k)
	}
	var out []Column
	for _, n := range names {
		found := false
		for _, c := range all {
			if c.Name == n {
				out, found = append(out, c), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("kind %s has no column %q", k, n)
		}
	}
	return out, nil
}

func cellName(col, row int) (string, error) { return excelize.CoordinatesToCellName(col, row) }
