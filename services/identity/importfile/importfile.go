// Package importfile reads the rows of an import file (XLSX, CSV or JSON
// Lines) as records: a row number and its fields by canonical name. Headers
// may be the canonical names or the Chinese ones of the template (see
// Columns); unknown headers are an error, so a typo is not silently
// dropped. XLSX is read with excelize's streaming row reader (one row in
// memory at a time); the file itself must be seekable (a zip).
package importfile

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Kind is what a file holds.
type Kind string

// Kinds.
const (
	Users Kind = "users"
	Orgs  Kind = "orgs"
	Links Kind = "links"
)

// Format is a file format.
type Format string

// Formats.
const (
	XLSX  Format = "xlsx"
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// Column is one column of a kind: its canonical name, its Chinese header
// (the template's) and whether a row must have it.
type Column struct {
	Name, Chinese string
	Required      bool
	Doc           string
}

// Columns lists each kind's columns in template order.
var Columns = map[Kind][]Column{
	Users: {
		{"login_name", "登录名", true, "unique login name"},
		{"display_name", "姓名", true, "the person's name"},
		{"org_code", "机构编码", true, "code of the person's org"},
		{"email", "邮箱", false, ""},
		{"phone", "手机号", false, "stored encrypted"},
		{"id_type", "证件类型", false, "resident_id (身份证), passport (护照), military (军官证), other (其他); a unit's: uscc (统一社会信用代码), org_code (组织机构代码)"},
		{"id_number", "证件号码", false, "stored encrypted; a resident ID, unified social credit code or organisation code is checked (check character)"},
		{"password_hash", "密码哈希", false, "the old system's hash in a documented tagged format"},
		{"app_type", "应用类型", false, "with app_code and app_account: link the person to that application"},
		{"app_code", "应用编码", false, ""},
		{"app_account", "应用账号", false, "the person's account id in the application"},
		{"external_key", "外部标识", false, "the row's key for resuming (default: login_name)"},
		{"status", "状态", false, "active (正常, the default) or disabled (停用)"},
		{"min_auth_level", "认证等级", false, "the person's minimum sign-in level: default (默认: the policy's, the default), any (任意), two-factor (双因素), certificate (证书)"},
		{"password_only", "仅密码认证", false, "yes (是): the person signs in with the password alone (no certificate, fingerprint or Windows sign-in); no (否, the default)"},
		{"user_type", "用户类型", false, "person (个人, the default; also a file without the column) or unit (单位: display_name is the unit's name, id_type uscc or org_code or empty)"},
	},
	Orgs: {
		{"code", "机构编码", true, "unique org code"},
		{"name", "机构名称", true, ""},
		{"parent_code", "上级机构编码", true, "code of the parent org (earlier in the file or existing)"},
		{"status", "状态", false, "active (正常, the default) or disabled (停用)"},
	},
	Links: {
		{"login_name", "登录名", true, "the person's login name"},
		{"app_type", "应用类型", true, ""},
		{"app_code", "应用编码", true, ""},
		{"app_account", "应用账号", true, "the person's account id in the application"},
		{"status", "状态", false, "active (正常, the default) or disabled (停用)"},
	},
}

// Record is one data row.
type Record struct {
	Row int // 1-based row of the file or sheet (the header is row 1; JSONL: line number)
	// Sheet names the XLSX sheet of the row when the workbook has more
	// than one data sheet.
	Sheet  string
	Fields map[string]string
}

// Reader yields the records of a file.
type Reader interface {
	// Next returns the next record, io.EOF after the last.
	Next() (*Record, error)
	Close() error
}

// ErrHeader is an error of the file's header (or of its format): the file
// cannot be read at all.
type ErrHeader struct{ Msg string }

func (e *ErrHeader) Error() string { return e.Msg }

// Open returns a reader of the file at path (format f, rows of kind k).
func Open(path string, f Format, k Kind) (Reader, error) {
	cols, ok := Columns[k]
	if !ok {
		return nil, &ErrHeader{Msg: fmt.Sprintf("unknown import kind %q", k)}
	}
	switch f {
	case CSV:
		fh, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		r := csv.NewReader(bufio.NewReader(fh))
		r.FieldsPerRecord = -1
		hdr, err := r.Read()
		if err != nil {
			fh.Close()
			return nil, &ErrHeader{Msg: "the file has no header row"}
		}
		if len(hdr) > 0 {
			hdr[0] = strings.TrimPrefix(hdr[0], "\uFEFF") // Excel's CSV starts with a BOM
		}
		names, err := mapHeader(hdr, cols)
		if err != nil {
			fh.Close()
			return nil, err
		}
		return &tableReader{names: names, row: 1, next: r.Read, close: fh.Close}, nil
	case XLSX:
		return openXLSX(path, cols)
	case JSONL:
		fh, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		known := map[string]bool{}
		for _, c := range cols {
			known[c.Name] = true
		}
		return &jsonlReader{sc: sc, known: known, cols: cols, close: fh.Close}, nil
	}
	return nil, &ErrHeader{Msg: fmt.Sprintf("unknown file format %q (want xlsx, csv or jsonl)", f)}
}

// mapHeader maps each header cell to its canonical column name.
func mapHeader(hdr []string, cols []Column) ([]string, error) {
	byName := map[string]string{}
	for _, c := range cols {
		byName[strings.ToLower(c.Name)] = c.Name
		byName[c.Chinese] = c.Name
	}
	names := make([]string, len(hdr))
	seen := map[string]bool{}
	for i, h := range hdr {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		n, ok := byName[strings.ToLower(h)]
		if !ok {
			return nil, &ErrHeader{Msg: fmt.Sprintf("unknown column %q in the header (column %d)", truncate(h, 40), i+1)}
		}
		if seen[n] {
			return nil, &ErrHeader{Msg: fmt.Sprintf("column %q appears twice in the header", n)}
		}
		seen[n], names[i] = true, n
	}
	for _, c := range cols {
		if c.Required && !seen[c.Name] {
			return nil, &ErrHeader{Msg: fmt.Sprintf("the header lacks the column %s (%s)", c.Name, c.Chinese)}
		}
	}
	return names, nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

type tableReader struct {
	names []string
	row   int
	next  func() ([]string, error)
	close func() error
}

func (t *tableReader) Next() (*Record, error) {
	for {
		cells, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		t.row++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("row %d: %w", t.row, pe.Err)
			}
			return nil, fmt.Errorf("row %d: cannot be read", t.row)
		}
		rec := &Record{Row: t.row, Fields: map[string]string{}}
		empty := true
		for i, c := range cells {
			c = strings.TrimSpace(c)
			if i < len(t.names) && t.names[i] != "" && c != "" {
				rec.Fields[t.names[i]], empty = c, false
			}
		}
		if !empty { // blank rows are skipped
			return rec, nil
		}
	}
}

func (t *tableReader) Close() error { return t.close() }

type jsonlReader struct {
	sc    *bufio.Scanner
	line  int
	known map[string]bool
	cols  []Column
	close func() error
}

func (j *jsonlReader) Next() (*Record, error) {
	for j.sc.Scan() {
		j.line++
		b := j.sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return &Record{Row: j.line, Fields: nil}, nil //nolint:nilerr // a line that is not JSON is a bad row of the report, not a read failure
		}
		rec := &Record{Row: j.line, Fields: map[string]string{}}
		for k, v := range m {
			if !j.known[k] {
				rec.Fields["\x00unknown"] = k
				continue
			}
			switch x := v.(type) {
			case string:
				rec.Fields[k] = strings.TrimSpace(x)
			case float64:
				rec.Fields[k] = strings.TrimSuffix(fmt.Sprintf("%.0f", x), ".0")
			case nil:
			default:
				rec.Fields["\x00badtype"] = k
			}
		}
		return rec, nil
	}
	if err := j.sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", j.line+1, err)
	}
	return nil, io.EOF
}

func (j *jsonlReader) Close() error { return j.close() }

// Problem returns why a record cannot be used as it is (a JSON line that
// is no object, an unknown or non-text field, a required column empty),
// naming the field; "" when it is fine.
func Problem(rec *Record, k Kind) (field, msg string) {
	if rec.Fields == nil {
		return "", "not a JSON object"
	}
	if f, ok := rec.Fields["\x00unknown"]; ok {
		return f, "unknown field"
	}
	if f, ok := rec.Fields["\x00badtype"]; ok {
		return f, "must be text"
	}
	for _, c := range Columns[k] {
		if c.Required && rec.Fields[c.Name] == "" {
			return c.Name, "is required"
		}
	}
	return "", ""
}
