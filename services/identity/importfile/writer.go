package importfile

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
)

// Writer writes rows of a kind as a file the reader reads again: XLSX
// (Chinese headers, as the template; streamed into the output as the rows
// come, new sheets past MaxSheetRows: xlsxStream), CSV (UTF-8 with Excel's byte order mark, the English
// column names) or JSON Lines (an object of the non-empty fields per line).
// Values are text, so ID numbers and phone numbers keep their leading
// zeros and digits.
type Writer struct {
	names []string
	vals  []string
	x     *xlsxStream
	c     *csv.Writer
	b     *bufio.Writer
	enc   *json.Encoder
}

// NewWriter writes rows of kind k with the columns names (canonical names
// of Columns[k], in that order) in format f to w. Close ends the file.
func NewWriter(w io.Writer, f Format, k Kind, names []string) (*Writer, error) {
	cols, err := columnsOf(k, names)
	if err != nil {
		return nil, err
	}
	wr := &Writer{names: names, vals: make([]string, len(names))}
	switch f {
	case XLSX:
		if wr.x, err = newXLSXStream(w, k, cols); err != nil {
			return nil, err
		}
	case CSV:
		wr.b = bufio.NewWriterSize(w, 64<<10)
		if _, err := wr.b.WriteString("\uFEFF"); err != nil {
			return nil, err
		}
		wr.c = csv.NewWriter(wr.b)
		if err := wr.c.Write(names); err != nil {
			return nil, err
		}
	case JSONL:
		wr.b = bufio.NewWriterSize(w, 64<<10)
		wr.enc = json.NewEncoder(wr.b)
		wr.enc.SetEscapeHTML(false)
	default:
		return nil, fmt.Errorf("unknown file format %q (want xlsx, csv or jsonl)", f)
	}
	return wr, nil
}

// Write adds one row (column name -> value; other names are ignored).
func (w *Writer) Write(fields map[string]string) error {
	for i, n := range w.names {
		w.vals[i] = fields[n]
	}
	return w.WriteRow(w.vals)
}

// WriteRow adds one row: the values of the writer's columns, in order
// (vals is not kept).
func (w *Writer) WriteRow(vals []string) error {
	if len(vals) != len(w.names) {
		return fmt.Errorf("a row of %d values for %d columns", len(vals), len(w.names))
	}
	switch {
	case w.x != nil:
		return w.x.write(vals)
	case w.c != nil:
		return w.c.Write(vals)
	}
	m := make(map[string]string, len(w.names))
	for i, n := range w.names {
		if vals[i] != "" {
			m[n] = vals[i]
		}
	}
	return w.enc.Encode(m)
}

// Close ends the file.
func (w *Writer) Close() error {
	switch {
	case w.x != nil:
		return w.x.close()
	case w.c != nil:
		w.c.Flush()
		if err := w.c.Error(); err != nil {
			return err
		}
	}
	return w.b.Flush()
}

// Example is an example row of each kind (the templates show it).
var Example = map[Kind]map[string]string{
	Users: {"login_name": "zhangsan", "display_name": "张三", "org_code": "HQ-01", "email": "zhangsan@example.com",
		"phone": "13800138000", "id_type": "身份证", "id_number": "11010519491231002X",
		"password_hash": "{SSHA256}BXDspG3Cl446XhssbYmsawkohz0iDnIgO7zd6JQZPhQ4Ynl0ZXNhbA==",
		"app_type":      "OA", "app_code": "oa-main", "app_account": "zs001", "external_key": "HR-000123", "status": "正常"},
	Orgs:  {"code": "HQ-01", "name": "上海海事局", "parent_code": "root", "status": "正常"},
	Links: {"login_name": "zhangsan", "app_type": "OA", "app_code": "oa-main", "app_account": "zs001", "status": "正常"},
}

// Template writes a template for kind k in format f: XLSX has an empty
// data sheet with the Chinese headers, a sheet "示例" with the same headers
// and an example row, and a sheet "说明" explaining each column (both are
// skipped on import); CSV is the header row (English names) and the
// example row, JSON Lines the example line: replace the example before
// importing.
func Template(w io.Writer, f Format, k Kind) error {
	cols, ok := Columns[k]
	if !ok {
		return fmt.Errorf("unknown import kind %q", k)
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	if f != XLSX {
		wr, err := NewWriter(w, f, k, names)
		if err != nil {
			return err
		}
		if err := wr.Write(Example[k]); err != nil {
			return err
		}
		return wr.Close()
	}
	x, err := newXLSXWriter(k, cols)
	if err != nil {
		return err
	}
	fl := x.f
	if err := x.sw.Flush(); err != nil {
		_ = fl.Close()
		return err
	}
	defer func() { _ = fl.Close() }()
	if _, err := fl.NewSheet(ExampleSheet); err != nil {
		return err
	}
	if _, err := fl.NewSheet(HelpSheet); err != nil {
		return err
	}
	ex := Example[k]
	set := func(sheet string, col, row int, v string) error {
		cell, err := cellName(col, row)
		if err != nil {
			return err
		}
		return fl.SetCellStr(sheet, cell, v)
	}
	for j, h := range []string{"列 (column)", "字段 (field)", "必填 (required)", "说明 (notes)"} {
		if err := set(HelpSheet, j+1, 1, h); err != nil {
			return err
		}
	}
	for i, c := range cols {
		if err := set(ExampleSheet, i+1, 1, c.Chinese); err != nil {
			return err
		}
		if err := set(ExampleSheet, i+1, 2, ex[c.Name]); err != nil {
			return err
		}
		req := ""
		if c.Required {
			req = "是 (yes)"
		}
		for j, v := range []string{c.Chinese, c.Name, req, c.Doc} {
			if err := set(HelpSheet, j+1, i+2, v); err != nil {
				return err
			}
		}
	}
	_, err = fl.WriteTo(w)
	return err
}
