package importfile

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// xlsxStream writes an export's workbook as the rows come: each data sheet
// is one zip entry written row by row straight into the output (cells as
// inline strings, so no shared-strings table grows with the rows), and the
// parts that name the sheets (workbook, relationships, content types, a
// minimal style sheet) follow when it is closed. Memory is the compressor's
// and a 64 KiB buffer, whatever the number of rows; the output needs no
// seeking. excelize reads the result (the import's reader; TestWriterSheets,
// TestStreamCells). Templates still use excelize's writer (xlsxWriter): they
// have several sheets of notes.
type xlsxStream struct {
	zw     *zip.Writer
	k      Kind
	hdr    []string
	refs   []string // column letters
	out    *bufio.Writer
	sheets int
	row    int // rows written on the current sheet, header included
	line   []byte
}

// xlsxDeflate is the sheets' compression level: BestSpeed (an export's XML
// is repetitive; the default level costs about three times the CPU for a
// file a third smaller).
const xlsxDeflate = flate.BestSpeed

func newXLSXStream(w io.Writer, k Kind, cols []Column) (*xlsxStream, error) {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, xlsxDeflate)
	})
	x := &xlsxStream{zw: zw, k: k}
	for i, c := range cols {
		x.hdr = append(x.hdr, c.Chinese)
		x.refs = append(x.refs, columnLetters(i+1))
	}
	if err := x.startSheet(); err != nil {
		return nil, err
	}
	return x, nil
}

// columnLetters is the letters of the n-th (1-based) column: A, ..., Z, AA, ...
func columnLetters(n int) string {
	s := ""
	for n > 0 {
		n--
		s = string(rune('A'+n%26)) + s
		n /= 26
	}
	return s
}

const (
	xmlHeader  = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"
	nsMain     = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
	nsRels     = "http://schemas.openxmlformats.org/package/2006/relationships"
	nsDocRels  = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
	sheetStart = xmlHeader + `<worksheet xmlns="` + nsMain + `"><sheetData>`
	sheetEnd   = `</sheetData></worksheet>`
)

// startSheet ends the current sheet (if any) and begins the next one with
// the header row.
func (x *xlsxStream) startSheet() error {
	if err := x.endSheet(); err != nil {
		return err
	}
	x.sheets++
	entry, err := x.zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("xl/worksheets/sheet%d.xml", x.sheets), Method: zip.Deflate})
	if err != nil {
		return err
	}
	x.out = bufio.NewWriterSize(entry, 64<<10)
	if _, err := x.out.WriteString(sheetStart); err != nil {
		return err
	}
	x.row = 0
	return x.writeRow(x.hdr)
}

func (x *xlsxStream) endSheet() error {
	if x.out == nil {
		return nil
	}
	if _, err := x.out.WriteString(sheetEnd); err != nil {
		return err
	}
	err := x.out.Flush()
	x.out = nil
	return err
}

func (x *xlsxStream) write(vals []string) error {
	if x.row > maxSheetRows {
		if err := x.startSheet(); err != nil {
			return err
		}
	}
	return x.writeRow(vals)
}

// writeRow writes one row of inline-string cells (empty values are left
// out: a blank cell).
func (x *xlsxStream) writeRow(vals []string) error {
	x.row++
	var num [20]byte
	n := strconv.AppendInt(num[:0], int64(x.row), 10)
	b := append(x.line[:0], `<row r="`...)
	b = append(b, n...)
	b = append(b, `">`...)
	for i, v := range vals {
		if v == "" {
			continue
		}
		b = append(b, `<c r="`...)
		b = append(b, x.refs[i]...)
		b = append(b, n...)
		b = append(b, `" t="inlineStr"><is><t`...)
		if needsPreserve(v) {
			b = append(b, ` xml:space="preserve"`...)
		}
		b = append(b, '>')
		b = appendCellText(b, v)
		b = append(b, `</t></is></c>`...)
	}
	b = append(b, `</row>`...)
	x.line = b
	_, err := x.out.Write(b)
	return err
}

// needsPreserve reports whether v starts or ends with white space, which
// XML readers drop unless told to keep it.
func needsPreserve(v string) bool {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	return isSpace(v[0]) || isSpace(v[len(v)-1])
}

// appendCellText appends v as the text of a cell: XML's special characters
// escaped, characters XML 1.0 cannot carry replaced by U+FFFD, and a
// literal "_xHHHH_" (which spreadsheet readers decode as the character
// HHHH) escaped as "_x005F_xHHHH_", so that it reads back as written. Cells
// hold at most 32 767 characters: a longer value is cut.
func appendCellText(b []byte, v string) []byte {
	if len(v) > maxCellBytes {
		v = cutCell(v)
	}
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '\r':
				b = append(b, "&#xD;"...)
			case c < 0x20 && c != '\t' && c != '\n':
				b = append(b, "\uFFFD"...)
			case c == '_' && isEscapeLiteral(v[i:]):
				b = append(b, "_x005F"...)
				b = append(b, c)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return b
}

// isEscapeLiteral reports whether s starts with "_x", four hex digits and "_".
func isEscapeLiteral(s string) bool {
	if len(s) < 7 || s[1] != 'x' || s[6] != '_' {
		return false
	}
	for _, c := range []byte(s[2:6]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// maxCellChars is the number of characters (UTF-16 units) a cell holds.
const maxCellChars = 32767

// maxCellBytes bounds the values that cannot be longer than a cell (a
// UTF-16 unit takes at least one byte of UTF-8).
const maxCellBytes = maxCellChars

// cutCell cuts v to maxCellChars UTF-16 units.
func cutCell(v string) string {
	units := 0
	for i, r := range v {
		n := 1
		if r > 0xFFFF {
			n = 2
		}
		if units+n > maxCellChars {
			return v[:i]
		}
		units += n
	}
	return v
}

func (x *xlsxStream) close() error {
	if err := x.endSheet(); err != nil {
		return err
	}
	var wb, rels, types strings.Builder
	wb.WriteString(xmlHeader + `<workbook xmlns="` + nsMain + `" xmlns:r="` + nsDocRels + `"><sheets>`)
	rels.WriteString(xmlHeader + `<Relationships xmlns="` + nsRels + `">`)
	types.WriteString(xmlHeader + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
		`<Default Extension="xml" ContentType="application/xml"/>` +
		`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
		`<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>`)
	for i := 1; i <= x.sheets; i++ {
		name := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(sheetName(x.k, i-1))
		fmt.Fprintf(&wb, `<sheet name="%s" sheetId="%d" r:id="rId%d"/>`, name, i, i)
		fmt.Fprintf(&rels, `<Relationship Id="rId%d" Type="%s/worksheet" Target="worksheets/sheet%d.xml"/>`, i, nsDocRels, i)
		fmt.Fprintf(&types, `<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`, i)
	}
	wb.WriteString(`</sheets></workbook>`)
	fmt.Fprintf(&rels, `<Relationship Id="rId%d" Type="%s/styles" Target="styles.xml"/></Relationships>`, x.sheets+1, nsDocRels)
	types.WriteString(`</Types>`)
	parts := []struct{ name, body string }{
		{"xl/workbook.xml", wb.String()},
		{"xl/_rels/workbook.xml.rels", rels.String()},
		{"xl/styles.xml", xmlHeader + `<styleSheet xmlns="` + nsMain + `">` +
			`<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>` +
			`<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>` +
			`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>` +
			`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>` +
			`<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>` +
			`<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>`},
		{"_rels/.rels", xmlHeader + `<Relationships xmlns="` + nsRels + `">` +
			`<Relationship Id="rId1" Type="` + nsDocRels + `/officeDocument" Target="xl/workbook.xml"/></Relationships>`},
		{"[Content_Types].xml", types.String()},
	}
	for _, p := range parts {
		w, err := x.zw.CreateHeader(&zip.FileHeader{Name: p.name, Method: zip.Deflate})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, p.body); err != nil {
			return err
		}
	}
	return x.zw.Close()
}
