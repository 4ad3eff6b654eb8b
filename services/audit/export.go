package audit

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

// Format is the file format of an export.
type Format int

// Export formats.
const (
	CSV Format = iota + 1
	XLSX
	HTML
	JSONL
	PDF
)

// ContentType and Ext of the format.
func (f Format) ContentType() string {
	return [...]string{"", "text/csv; charset=utf-8", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"text/html; charset=utf-8", "application/x-ndjson", "application/pdf"}[f]
}

// Ext is the format's file name extension.
func (f Format) Ext() string { return [...]string{"", "csv", "xlsx", "html", "jsonl", "pdf"}[f] }

// Exporter writes exports; its zero value uses DefaultPDFFont and the
// wall clock.
type Exporter struct {
	// PDFFont and PDFLatinFont are the TrueType font files of PDF
	// exports: CJK text, everything else (audit.pdf_font,
	// audit.pdf_latin_font).
	PDFFont, PDFLatinFont string
	// Now is the clock of the date in PDF exports (nil: time.Now).
	Now func() time.Time
	// MaxPDF bounds the records of a PDF (0: MaxPDFRecords).
	MaxPDF int
	// Names names the people who are actors and subjects (the actor_name
	// and description columns); nil: the records' ids stand in.
	Names Names
	// Lang is the language of a records export's headers, title and
	// description column.
	Lang Lang
}

func (e Exporter) fonts() (cjk, latin string) {
	return cmp.Or(e.PDFFont, DefaultPDFFont), cmp.Or(e.PDFLatinFont, DefaultPDFLatinFont)
}

func (e Exporter) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// ExportRecords is Exporter{}.Records.
func ExportRecords(ctx context.Context, st QueryStore, scope Scope, q Query, max int, f Format, w io.Writer) (int, error) {
	return Exporter{}.Records(ctx, st, scope, q, max, f, w)
}

// ExportCounts is Exporter{}.Counts.
func ExportCounts(q CountQuery, counts []Count, f Format, w io.Writer) error {
	return Exporter{}.Counts(q, counts, f, w)
}

// MaxExportRecords bounds one export.
const MaxExportRecords = 1_000_000

// recordWeights are the relative widths of the record columns in a PDF.
var recordWeights = []float64{8, 28, 18, 13, 12, 12, 20, 18, 18, 11, 11, 14, 9, 20, 34, 18, 18, 40, 16}

// recordHeader are the columns of exported records. actor_name is the
// person the actor names, as identity knows them at the export (not part
// of the record); description says what the record records in a sentence
// (Describe; not part of the record either); origin names the log the
// record belongs to (ADR 0029: at level 1, a level-2 centre's too), in
// which seq numbers it. New columns go at the end (review rr29 C3: a
// consumer reading the CSV by position keeps its columns).
var recordHeader = []string{"seq", "time", "type", "component", "serial", "app_id", "api", "actor", "subject", "org",
	"result", "reason", "duration_ms", "client_ip", "detail", "event_id", "actor_name", "description", "origin"}

func recordRow(r *Record, actorName, description string) []string {
	d := ""
	if len(r.Detail) > 0 {
		b, _ := json.Marshal(r.Detail) // a map of strings always marshals
		d = string(b)
	}
	return []string{strconv.FormatInt(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.Type, r.Component, r.Serial,
		r.AppID, r.API, r.Actor, r.Subject, r.Org, r.Result, r.Reason, strconv.FormatFloat(r.DurationMS, 'f', -1, 64),
		r.ClientIP, d, r.EventID, actorName, description, r.Origin}
}

// recordTitles are the titles of a records export.
var recordTitles = [...]string{English: "Audit records", Chinese: "审计日志"}

// Records writes the records of q within scope (newest first, at most
// max, 0: MaxExportRecords; a PDF at most MaxPDFRecords, saying so when
// more matched) to w in format f, page by page (memory does not grow with
// the number of records, except for a PDF). It returns the number
// written.
func (e Exporter) Records(ctx context.Context, st QueryStore, scope Scope, q Query, max int, f Format, w io.Writer) (int, error) {
	if max <= 0 || max > MaxExportRecords {
		max = MaxExportRecords
	}
	capped := false
	if most := cmp.Or(e.MaxPDF, MaxPDFRecords); f == PDF && max > most {
		max, capped = most, true
	}
	q.PageSize, q.PageToken = MaxPageSize, ""
	// the first page checks the filter (and the scope) before anything is written
	recs, next, err := Search(ctx, st, scope, q)
	if err != nil {
		return 0, err
	}
	rw, err := e.newRowWriter(f, w, recordTitles[e.Lang], headerIn(recordHeader, e.Lang), recordWeights)
	if err != nil {
		return 0, err
	}
	n := 0
	more := func() error {
		if capped {
			rw.note(fmt.Sprintf("More records matched: a PDF holds the first %d. Export as CSV, XLSX or JSONL for all of them.", max))
		}
		return rw.close()
	}
	for {
		names := PeopleNames(ctx, e.Names, recs)
		for i := range recs {
			if n == max {
				return n, more()
			}
			r := &recs[i]
			actor := ActorName(names, r)
			desc := Describe(r, actor, names[r.Subject], e.Lang)
			if f == JSONL {
				err = rw.json(recordJSON(r, actor, desc))
			} else {
				err = rw.row(recordRow(r, actor, desc))
			}
			if err != nil {
				return n, err
			}
			n++
		}
		if next == "" {
			return n, rw.close()
		}
		if n == max {
			return n, more()
		}
		q.PageToken = next
		if recs, next, err = Search(ctx, st, scope, q); err != nil {
			return n, err
		}
	}
}

// recordJSON is a record as an exported JSON line (actor_name only when
// known).
func recordJSON(r *Record, actorName, description string) map[string]any {
	out := map[string]any{"seq": r.Seq, "time": r.Time.UTC().Format(time.RFC3339Nano), "type": r.Type, "component": r.Component,
		"serial": r.Serial, "trace_id": r.TraceID, "app_id": r.AppID, "api": r.API, "actor": r.Actor, "subject": r.Subject,
		"org": r.Org, "result": r.Result, "reason": r.Reason, "duration_ms": r.DurationMS, "client_ip": r.ClientIP,
		"detail": r.Detail, "event_id": r.EventID}
	if actorName != "" {
		out["actor_name"] = actorName
	}
	out["description"] = description
	if r.Origin != "" {
		out["origin"] = r.Origin // the log of the record (ADR 0029); seq is its number there
	}
	return out
}

// Counts writes the counts of a count report to w in format f; HTML and
// PDF reports without buckets carry a bar chart (CountChart).
func (e Exporter) Counts(q CountQuery, counts []Count, f Format, w io.Writer) error {
	header := []string{q.By.String(), "count"}
	if q.Bucket != NoBucket {
		header = []string{"bucket_start", q.By.String(), "count"}
	}
	title := "Audit records by " + q.By.String()
	weights := []float64{3, 1}
	if q.Bucket != NoBucket {
		weights = []float64{2, 3, 1}
	}
	rw, err := e.newRowWriter(f, w, title, header, weights)
	if err != nil {
		return err
	}
	rw.chart = CountChart(q, counts)
	for _, c := range counts {
		row := []string{q.By.Label(c.Key), strconv.FormatInt(c.Count, 10)}
		if q.Bucket != NoBucket {
			row = append([]string{c.BucketStart.Add(q.UTCOffset).Format("2006-01-02 15:04") + offsetName(q.UTCOffset)}, row...)
		}
		if f == JSONL {
			m := map[string]any{q.By.String(): c.Key, "count": c.Count}
			if q.Bucket != NoBucket {
				m["bucket_start"] = c.BucketStart.UTC().Format(time.RFC3339)
			}
			err = rw.json(m)
		} else {
			err = rw.row(row)
		}
		if err != nil {
			return err
		}
	}
	return rw.close()
}

func offsetName(d time.Duration) string {
	m := int(d / time.Minute)
	sign := "+"
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf(" UTC%s%02d:%02d", sign, m/60, m%60)
}

// rowWriter writes a table in one of the formats.
type rowWriter struct {
	f      Format
	w      *bufio.Writer
	csv    *csv.Writer
	xlsx   *excelize.File
	sw     *excelize.StreamWriter
	out    io.Writer
	rowNum int
	title  string
	header []string
	// weights are the relative column widths of a PDF table.
	weights []float64
	chart   *Chart
	opened  bool
	pdf     *pdfDoc
}

func (e Exporter) newRowWriter(f Format, w io.Writer, title string, header []string, weights []float64) (*rowWriter, error) {
	rw := &rowWriter{f: f, out: w, w: bufio.NewWriterSize(w, 64<<10), title: title, header: header, weights: weights}
	switch f {
	case CSV:
		_, _ = rw.w.WriteString("\ufeff") // a byte order mark: spreadsheets then read UTF-8
		rw.csv = csv.NewWriter(rw.w)
		return rw, rw.csv.Write(header)
	case XLSX:
		rw.xlsx = excelize.NewFile()
		sheet := "Records"
		if err := rw.xlsx.SetSheetName("Sheet1", sheet); err != nil {
			return nil, err
		}
		sw, err := rw.xlsx.NewStreamWriter(sheet)
		if err != nil {
			return nil, err
		}
		rw.sw = sw
		return rw, rw.row(header)
	case PDF:
		// a table of more than 8 columns is printed across the page
		cjk, latin := e.fonts()
		d, err := newPDF(cjk, latin, len(header) > 8, title, e.now())
		if err != nil {
			return nil, err
		}
		rw.pdf = d
		return rw, nil
	case HTML, JSONL:
		return rw, nil
	}
	return nil, badRequest("format must be csv, xlsx, html, jsonl or pdf")
}

var htmlHead = template.Must(template.New("head").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;text-align:left}</style>
</head><body><h1>{{.Title}}</h1>
{{.Chart}}<table><thead><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
`))

var htmlRow = template.Must(template.New("row").Parse(`<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
`))

func (rw *rowWriter) openHTML() error {
	if rw.opened {
		return nil
	}
	rw.opened = true
	return htmlHead.Execute(rw.w, map[string]any{"Title": rw.title, "Header": rw.header, "Chart": rw.chart.SVG()})
}

// openPDF draws the chart and the table's header at the first row.
func (rw *rowWriter) openPDF() {
	if rw.opened {
		return
	}
	rw.opened = true
	rw.pdf.chart(rw.chart)
	rw.pdf.table(rw.header, rw.weights)
}

// note adds a line after the table (PDF only).
func (rw *rowWriter) note(s string) {
	if rw.f == PDF {
		rw.openPDF()
		rw.pdf.note(s)
	}
}

func (rw *rowWriter) row(cells []string) error {
	switch rw.f {
	case CSV:
		return rw.csv.Write(csvCells(cells))
	case XLSX:
		rw.rowNum++
		vals := make([]any, len(cells))
		for i, c := range cells {
			vals[i] = c
		}
		cell, err := excelize.CoordinatesToCellName(1, rw.rowNum)
		if err != nil {
			return err
		}
		return rw.sw.SetRow(cell, vals)
	case HTML:
		if err := rw.openHTML(); err != nil {
			return err
		}
		return htmlRow.Execute(rw.w, cells)
	case PDF:
		rw.openPDF()
		rw.pdf.row(cells)
	}
	return nil
}

func (rw *rowWriter) json(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, _ = rw.w.Write(b)
	return rw.w.WriteByte('\n')
}

func (rw *rowWriter) close() error {
	switch rw.f {
	case CSV:
		rw.csv.Flush()
		if err := rw.csv.Error(); err != nil {
			return err
		}
	case XLSX:
		if err := rw.sw.Flush(); err != nil {
			return err
		}
		if err := rw.w.Flush(); err != nil {
			return err
		}
		_, err := rw.xlsx.WriteTo(rw.out)
		return err
	case HTML:
		if err := rw.openHTML(); err != nil {
			return err
		}
		_, _ = rw.w.WriteString("</tbody></table></body></html>\n")
	case PDF:
		rw.openPDF()
		return rw.pdf.write(rw.out)
	}
	return rw.w.Flush()
}

// csvCells are cells as a CSV export writes them: a text a spreadsheet
// would read as a formula (starting with =, +, @, a tab or a carriage
// return, or - not followed by a number alone: a display name or a claimed login
// of "=HYPERLINK(...)") is written after an apostrophe, as OWASP advises,
// so that opening the export runs nothing. Numbers, times and addresses
// are left as they are.
func csvCells(cells []string) []string {
	var out []string
	for i, c := range cells {
		if c == "" || !formulaLike(c) {
			continue
		}
		if out == nil {
			out = slices.Clone(cells)
		}
		out[i] = "'" + c
	}
	if out == nil {
		return cells
	}
	return out
}

func formulaLike(c string) bool {
	switch c[0] {
	case '=', '+', '@', '\t', '\r':
		return true
	case '-':
		// a negative number only: "-2+3" or "-1+cmd|..." is a formula
		// (review sec27b L4)
		_, err := strconv.ParseFloat(c, 64)
		return err != nil && c != "-"
	}
	return false
}
