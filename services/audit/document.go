package audit

import (
	"bufio"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// Document is a report of several sections (the scheduled reports): HTML
// (SVG charts), PDF (charts drawn) or XLSX (a sheet per section).
type Document struct {
	Title     string
	Generated time.Time
	// Lines of text under the title (the period, the time zone).
	Lines    []string
	Sections []Section
}

// Section is a titled table, with a chart when it has one.
type Section struct {
	Title   string
	Header  []string
	Weights []float64 // relative column widths in a PDF
	Rows    [][]string
	Chart   *Chart
	// Empty is said instead of an empty table.
	Empty string
}

var docHTML = template.Must(template.New("doc").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #999;padding:2px 6px;text-align:left}</style>
</head><body><h1>{{.Title}}</h1>
{{range .Lines}}<p>{{.}}</p>
{{end}}{{range .Sections}}<h2>{{.Title}}</h2>
{{if .Rows}}{{.SVG}}<table><thead><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody></table>
{{else}}<p>{{.Empty}}</p>
{{end}}{{end}}<p>Generated {{.GeneratedText}}</p>
</body></html>
`))

// SVG is the section's chart as inline SVG ("" without one).
func (s Section) SVG() template.HTML { return s.Chart.SVG() }

// GeneratedText is the time the document was made, for people.
func (d Document) GeneratedText() string { return d.Generated.UTC().Format("2006-01-02 15:04:05 UTC") }

// Write writes d to w in format f (PDF, HTML or XLSX).
func (e Exporter) Write(d Document, f Format, w io.Writer) error {
	switch f {
	case HTML:
		bw := bufio.NewWriter(w)
		if err := docHTML.Execute(bw, d); err != nil {
			return err
		}
		return bw.Flush()
	case PDF:
		cjk, latin := e.fonts()
		p, err := newPDF(cjk, latin, false, d.Title, d.Generated)
		if err != nil {
			return err
		}
		for _, l := range d.Lines {
			p.note(l)
		}
		for _, s := range d.Sections {
			p.heading(s.Title)
			if len(s.Rows) == 0 {
				p.note(s.Empty)
				continue
			}
			p.chart(s.Chart)
			p.table(s.Header, s.Weights)
			for _, r := range s.Rows {
				p.row(r)
			}
		}
		return p.write(w)
	case XLSX:
		x := excelize.NewFile()
		defer func() { _ = x.Close() }()
		for i, s := range d.Sections {
			// sheet names: at most 31 characters, none of : \ / ? * [ ]
			name := fmt.Sprintf("%d %s", i+1, shorten(strings.Map(func(r rune) rune {
				if strings.ContainsRune(`:\/?*[]`, r) {
					return ' '
				}
				return r
			}, s.Title), 28))
			if i == 0 {
				if err := x.SetSheetName("Sheet1", name); err != nil {
					return err
				}
			} else if _, err := x.NewSheet(name); err != nil {
				return err
			}
			rows := append([][]string{s.Header}, s.Rows...)
			for j, r := range rows {
				vals := make([]any, len(r))
				for k, c := range r {
					vals[k] = c
				}
				cell, err := excelize.CoordinatesToCellName(1, j+1)
				if err != nil {
					return err
				}
				if err := x.SetSheetRow(name, cell, &vals); err != nil {
					return err
				}
			}
		}
		_, err := x.WriteTo(w)
		return err
	}
	return badRequest("a report is written as pdf, html or xlsx")
}
