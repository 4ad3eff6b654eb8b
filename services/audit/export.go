package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
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
)

// ContentType and Ext of the format.
func (f Format) ContentType() string {
	return [...]string{"", "text/csv; charset=utf-8", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"text/html; charset=utf-8", "application/x-ndjson"}[f]
}

// Ext is the format's file name extension.
func (f Format) Ext() string { return [...]string{"", "csv", "xlsx", "html", "jsonl"}[f] }

// MaxExportRecords bounds one export.
const MaxExportRecords = 1_000_000

// recordHeader are the columns of exported records.
var recordHeader = []string{"seq", "time", "type", "component", "serial", "app_id", "api", "actor", "subject", "org",
	"result", "reason", "duration_ms", "client_ip", "detail", "event_id"}

func recordRow(r *Record) []string {
	d := ""
	if len(r.Detail) > 0 {
		b, _ := json.Marshal(r.Detail) // a map of strings always marshals
		d = string(b)
	}
	return []string{strconv.FormatInt(r.Seq, 10), r.Time.UTC().Format(time.RFC3339Nano), r.Type, r.Component, r.Serial,
		r.AppID, r.API, r.Actor, r.Subject, r.Org, r.Result, r.Reason, strconv.FormatFloat(r.DurationMS, 'f', -1, 64),
		r.ClientIP, d, r.EventID}
}

// ExportRecords writes the records of q within scope (newest first, at
// most max, 0: MaxExportRecords) to w in format f, page by page (memory
// does not grow with the number of records). It returns the number
// written.
func ExportRecords(ctx context.Context, st QueryStore, scope Scope, q Query, max int, f Format, w io.Writer) (int, error) {
	if max <= 0 || max > MaxExportRecords {
		max = MaxExportRecords
	}
	q.PageSize, q.PageToken = MaxPageSize, ""
	// the first page checks the filter (and the scope) before anything is written
	recs, next, err := Search(ctx, st, scope, q)
	if err != nil {
		return 0, err
	}
	rw, err := newRowWriter(f, w, "Audit records", recordHeader)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		for i := range recs {
			if n == max {
				return n, rw.close()
			}
			if f == JSONL {
				err = rw.json(recordJSON(&recs[i]))
			} else {
				err = rw.row(recordRow(&recs[i]))
			}
			if err != nil {
				return n, err
			}
			n++
		}
		if next == "" || n == max {
			return n, rw.close()
		}
		q.PageToken = next
		if recs, next, err = Search(ctx, st, scope, q); err != nil {
			return n, err
		}
	}
}

// recordJSON is a record as an exported JSON line.
func recordJSON(r *Record) map[string]any {
	return map[string]any{"seq": r.Seq, "time": r.Time.UTC().Format(time.RFC3339Nano), "type": r.Type, "component": r.Component,
		"serial": r.Serial, "trace_id": r.TraceID, "app_id": r.AppID, "api": r.API, "actor": r.Actor, "subject": r.Subject,
		"org": r.Org, "result": r.Result, "reason": r.Reason, "duration_ms": r.DurationMS, "client_ip": r.ClientIP,
		"detail": r.Detail, "event_id": r.EventID}
}

// ExportCounts writes the counts of a count report to w in format f; HTML
// reports by hour of day or weekday (without buckets) carry a bar chart.
func ExportCounts(q CountQuery, counts []Count, f Format, w io.Writer) error {
	header := []string{q.By.String(), "count"}
	if q.Bucket != NoBucket {
		header = []string{"bucket_start", q.By.String(), "count"}
	}
	title := "Audit records by " + q.By.String()
	rw, err := newRowWriter(f, w, title, header)
	if err != nil {
		return err
	}
	if f == HTML && q.Bucket == NoBucket && (q.By == ByHourOfDay || q.By == ByWeekday) {
		rw.chart = barChart(q.By, counts)
	}
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
	chart  template.HTML
	opened bool
}

func newRowWriter(f Format, w io.Writer, title string, header []string) (*rowWriter, error) {
	rw := &rowWriter{f: f, out: w, w: bufio.NewWriterSize(w, 64<<10), title: title, header: header}
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
	case HTML, JSONL:
		return rw, nil
	}
	return nil, badRequest("format must be csv, xlsx, html or jsonl")
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
	return htmlHead.Execute(rw.w, map[string]any{"Title": rw.title, "Header": rw.header, "Chart": rw.chart})
}

func (rw *rowWriter) row(cells []string) error {
	switch rw.f {
	case CSV:
		return rw.csv.Write(cells)
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
	}
	return rw.w.Flush()
}

// barChart draws counts by hour of day (24 bars) or weekday (7 bars) as
// inline SVG.
func barChart(by CountBy, counts []Count) template.HTML {
	n := 24
	if by == ByWeekday {
		n = 7
	}
	vals := make([]int64, n)
	var top int64 = 1
	for _, c := range counts {
		i, err := strconv.Atoi(c.Key)
		if err != nil || i < 0 || i >= n {
			continue
		}
		vals[i] += c.Count
		top = max(top, vals[i])
	}
	const width, height, bar = 720, 200, 24
	step := width / n
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="records by %s">`,
		width, height+20, by.String())
	for i, v := range vals {
		h := int(v * height / top)
		label := strconv.Itoa(i)
		if by == ByWeekday {
			label = by.Label(label)[:3]
		}
		svg += fmt.Sprintf(`<rect x="%d" y="%d" width="%d" height="%d" fill="#4a7bd0"><title>%s: %d</title></rect>`,
			i*step+2, height-h, min(bar, step-4), h, template.HTMLEscapeString(by.Label(strconv.Itoa(i))), v)
		svg += fmt.Sprintf(`<text x="%d" y="%d" font-size="10">%s</text>`, i*step+2, height+14, template.HTMLEscapeString(label))
	}
	return template.HTML(svg + "</svg>\n") //nolint:gosec // built from numbers and escaped labels only
}
