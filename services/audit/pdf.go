package audit

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/uias/uias/pkg/apierr"
)

// PDF exports are drawn with github.com/go-pdf/fpdf in two TrueType fonts
// (fpdf embeds the subset of glyphs used): Chinese, Japanese and Korean
// text (and full-width forms) in a CJK font (audit.pdf_font), everything
// else in a Latin one (audit.pdf_latin_font), since the CJK TrueType fonts
// Debian has (Droid Sans Fallback) carry no Latin letters. OpenType
// collections (.ttc, .otc) and CFF-based .otf fonts cannot be embedded by
// fpdf.

// DefaultPDFFont is the font file of Debian's fonts-droid-fallback, the
// default of audit.pdf_font.
const DefaultPDFFont = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"

// DefaultPDFLatinFont is DejaVu Sans of Debian's fonts-dejavu-core, the
// default of audit.pdf_latin_font.
const DefaultPDFLatinFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

// isCJK reports whether r is drawn in the CJK font: from the CJK radicals
// (U+2E80) on, which takes in CJK punctuation, kana, Hangul, the
// ideographs and the full-width forms.
func isCJK(r rune) bool { return r >= 0x2E80 }

// MaxPDFRecords bounds the records of one PDF export (a PDF is built in
// memory); the file says when more matched.
const MaxPDFRecords = 10000

// ReasonPDFFont is the reason of a PDF export without a usable font.
const ReasonPDFFont = "AUDIT_PDF_FONT"

var errPDFFont = apierr.New(apierr.FailedPrecondition, ReasonPDFFont,
	"PDF exports are not available: a font for PDFs (audit.pdf_font, audit.pdf_latin_font) cannot be read; an operator must install it (docs/operators.md), or export as CSV, XLSX, HTML or JSONL")

func init() {
	apierr.Register(apierr.Reason{Name: ReasonPDFFont, Code: apierr.FailedPrecondition, HTTP: http.StatusNotImplemented,
		Doc: "Audit exports: a PDF was asked for but a TrueType font of PDFs (audit.pdf_font, default Debian's fonts-droid-fallback; audit.pdf_latin_font, default fonts-dejavu-core's DejaVu Sans) is missing or not a TrueType font fpdf can embed; the other formats still work."})
}

// CheckPDFFonts reports whether PDF exports can use the CJK and Latin
// font files (they are read and parsed as fpdf would), saying why not.
func CheckPDFFonts(cjk, latin string) error {
	if _, err := newPDF(cjk, latin, false, "check", time.Unix(0, 0)); err != nil {
		if e, ok := apierr.As(err); ok && e.Err != nil {
			return e.Err
		}
		return err
	}
	return nil
}

const (
	pdfMargin = 10.0 // mm
	pdfPad    = 0.8  // mm inside a table cell
	fontCJK   = "uias-cjk"
	fontLatin = "uias-latin"
)

// pdfDoc is a PDF of a title, an optional chart and a table.
type pdfDoc struct {
	f        *fpdf.Fpdf
	size     float64 // font size of the table, pt
	lineH    float64 // mm
	widths   []float64
	header   []string
	widthOf  map[rune]float64 // at fontSize
	fontSize float64          // current size, pt
	pageW    float64
	pageH    float64
}

// newPDF starts a document in the fonts of the files cjk and latin
// (landscape for wide tables), its metadata dated generated.
func newPDF(cjk, latin string, landscape bool, title string, generated time.Time) (*pdfDoc, error) {
	orient := "P"
	if landscape {
		orient = "L"
	}
	f := fpdf.New(orient, "mm", "A4", "")
	for _, font := range []struct{ name, file string }{{fontCJK, cjk}, {fontLatin, latin}} {
		if err := addFont(f, font.name, font.file); err != nil {
			return nil, err
		}
	}
	f.SetTitle(title, true)
	f.SetCreator("UIAS audit", true)
	f.SetCreationDate(generated)
	f.SetModificationDate(generated)
	f.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	f.SetAutoPageBreak(false, pdfMargin)
	d := &pdfDoc{f: f, size: 7, widthOf: map[rune]float64{}}
	d.pageW, d.pageH = f.GetPageSize()
	f.SetFooterFunc(func() {
		size := d.fontSize
		d.setSize(7)
		f.SetTextColor(90, 90, 90)
		d.text(pdfMargin, d.pageH-pdfMargin/2, title+" · generated "+generated.UTC().Format("2006-01-02 15:04 UTC")+
			" · page "+strconv.Itoa(f.PageNo()))
		f.SetTextColor(0, 0, 0)
		d.setSize(size)
	})
	f.AddPage()
	d.setSize(14)
	d.text(pdfMargin, pdfMargin+5, title)
	f.SetY(pdfMargin + 9)
	if f.Err() {
		return nil, errPDFFont.WithCause(f.Error())
	}
	return d, nil
}

// addFont adds the TrueType font of file to f as name.
func addFont(f *fpdf.Fpdf, name, file string) (err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return errPDFFont.WithCause(err)
	}
	defer func() {
		// fpdf panics on some malformed fonts
		if r := recover(); r != nil {
			err = errPDFFont.WithCause(fmt.Errorf("%s is not a TrueType font fpdf can embed: %v", file, r))
		}
	}()
	f.AddUTF8FontFromBytes(name, "", data)
	if !f.Err() {
		f.SetFont(name, "", 10) // fails on a font fpdf could not read
	}
	if f.Err() {
		return errPDFFont.WithCause(fmt.Errorf("%s: %w", file, f.Error()))
	}
	return nil
}

// setSize sets the size of the text that follows (pt).
func (d *pdfDoc) setSize(pt float64) {
	if pt != d.fontSize {
		clear(d.widthOf)
	}
	d.fontSize = pt
	d.f.SetFont(fontLatin, "", pt)
}

// runs calls fn with each run of s in one font.
func runs(s string, fn func(run string, cjk bool)) {
	start, cjk := 0, false
	for i, r := range s {
		c := isCJK(r)
		if i > start && c != cjk {
			fn(s[start:i], cjk)
			start = i
		}
		cjk = c
	}
	if start < len(s) {
		fn(s[start:], cjk)
	}
}

func (d *pdfDoc) use(cjk bool) {
	if cjk {
		d.f.SetFont(fontCJK, "", d.fontSize)
	} else {
		d.f.SetFont(fontLatin, "", d.fontSize)
	}
}

// text writes s with its baseline at (x, y), each run in its font.
func (d *pdfDoc) text(x, y float64, s string) {
	runs(s, func(run string, cjk bool) {
		d.use(cjk)
		d.f.Text(x, y, run)
		x += d.f.GetStringWidth(run)
	})
}

// width is the width of s at the current size.
func (d *pdfDoc) width(s string) float64 {
	var w float64
	for _, r := range s {
		w += d.runeWidth(r)
	}
	return w
}

func (d *pdfDoc) runeWidth(r rune) float64 {
	w, ok := d.widthOf[r]
	if !ok {
		d.use(isCJK(r))
		w = d.f.GetStringWidth(string(r))
		d.widthOf[r] = w
	}
	return w
}

// usable is the width between the margins.
func (d *pdfDoc) usable() float64 { return d.pageW - 2*pdfMargin }

// bottom is the lowest y content may reach.
func (d *pdfDoc) bottom() float64 { return d.pageH - pdfMargin - 3 }

// heading writes a section title.
func (d *pdfDoc) heading(s string) {
	f := d.f
	if f.GetY()+30 > d.bottom() { // not alone at the foot of a page
		f.AddPage()
	}
	d.setSize(11)
	y := f.GetY() + 6
	d.text(pdfMargin, y, s)
	f.SetY(y + 3)
}

// note writes a line of text.
func (d *pdfDoc) note(s string) {
	f := d.f
	if f.GetY()+6 > d.bottom() {
		f.AddPage()
	}
	d.setSize(8)
	y := f.GetY() + 4
	d.text(pdfMargin, y, s)
	f.SetY(y + 2)
}

// chart draws c across the page under the current position.
func (d *pdfDoc) chart(c *Chart) {
	if c == nil || len(c.Values) == 0 {
		return
	}
	f := d.f
	top := c.top()
	w := d.usable()
	d.setSize(7)
	f.SetFillColor(74, 123, 208)
	f.SetDrawColor(120, 120, 120)
	if c.Horizontal {
		const line, labelW = 5.0, 55.0
		h := line*float64(len(c.Values)) + 4
		if f.GetY()+h > d.bottom() {
			f.AddPage()
		}
		y0 := f.GetY() + 2
		barMax := w - labelW - 18
		for i, v := range c.Values {
			y := y0 + float64(i)*line
			label := c.Labels[i]
			d.text(pdfMargin+labelW-2-d.width(label), y+line*0.65, label)
			bw := max(float64(v)*barMax/float64(top), 0.3)
			f.Rect(pdfMargin+labelW, y+0.6, bw, line-1.2, "F")
			d.text(pdfMargin+labelW+bw+1.5, y+line*0.65, strconv.FormatInt(v, 10))
		}
		f.Line(pdfMargin+labelW, y0, pdfMargin+labelW, y0+line*float64(len(c.Values)))
		f.SetY(y0 + h)
		return
	}
	const h = 45.0
	if f.GetY()+h+12 > d.bottom() {
		f.AddPage()
	}
	y0 := f.GetY() + 6 // room for the largest value
	n := float64(len(c.Values))
	step := w / n
	for i, v := range c.Values {
		x := pdfMargin + float64(i)*step
		bh := float64(v) * h / float64(top)
		if v > 0 {
			f.Rect(x+step*0.15, y0+h-bh, step*0.7, bh, "F")
			s := strconv.FormatInt(v, 10)
			d.text(x+(step-d.width(s))/2, y0+h-bh-1, s)
		}
		l := c.Labels[i]
		d.text(x+(step-d.width(l))/2, y0+h+4, l)
	}
	f.Line(pdfMargin, y0+h, pdfMargin+w, y0+h)
	f.SetY(y0 + h + 7)
}

// table starts a table with the header, columns as wide as weights
// (relative) across the page.
func (d *pdfDoc) table(header []string, weights []float64) {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	d.widths = make([]float64, len(weights))
	for i, w := range weights {
		d.widths[i] = w * d.usable() / sum
	}
	d.header = header
	d.lineH = d.size * 0.3528 * 1.25 // pt to mm, with leading
	d.f.SetY(d.f.GetY() + 2)
	d.headerRow()
}

func (d *pdfDoc) headerRow() {
	d.f.SetFillColor(225, 230, 240)
	d.drawRow(d.header, true)
	d.f.SetFillColor(255, 255, 255)
}

// row adds a row to the table (a new page, with the header again, when it
// does not fit).
func (d *pdfDoc) row(cells []string) {
	d.drawRow(cells, false)
}

// maxCellLines bounds the lines of one cell (the rest is cut, marked).
const maxCellLines = 12

func (d *pdfDoc) drawRow(cells []string, header bool) {
	f := d.f
	d.setSize(d.size)
	lines := make([][]string, len(d.widths))
	n := 1
	for i := range d.widths {
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		lines[i] = d.wrap(c, d.widths[i]-2*pdfPad)
		n = max(n, len(lines[i]))
	}
	h := float64(n)*d.lineH + 2*pdfPad
	if f.GetY()+h > d.bottom() {
		f.AddPage()
		f.SetY(pdfMargin)
		if !header {
			d.headerRow()
		}
	}
	y := f.GetY()
	x := pdfMargin
	style := "D"
	if header {
		style = "DF"
	}
	f.SetDrawColor(150, 150, 150)
	for i, w := range d.widths {
		f.Rect(x, y, w, h, style)
		for j, l := range lines[i] {
			d.text(x+pdfPad, y+pdfPad+(float64(j)+0.78)*d.lineH, l)
		}
		x += w
	}
	f.SetY(y + h)
}

// wrap breaks s into lines at most w wide (at spaces where it can, else
// between characters: Chinese text has no spaces).
func (d *pdfDoc) wrap(s string, w float64) []string {
	if s == "" {
		return nil
	}
	var lines []string
	var cur []rune
	var curW float64
	lastSpace := -1
	for _, r := range s {
		if r == '\n' || r == '\r' {
			lines, cur, curW, lastSpace = append(lines, string(cur)), cur[:0:0], 0, -1
			continue
		}
		rw := d.runeWidth(r)
		if curW+rw > w && len(cur) > 0 {
			if lastSpace > 0 {
				lines = append(lines, string(cur[:lastSpace]))
				cur = append(cur[:0:0], cur[lastSpace+1:]...)
			} else {
				lines, cur = append(lines, string(cur)), cur[:0:0]
			}
			curW, lastSpace = 0, -1
			for _, c := range cur {
				curW += d.widthOf[c]
			}
		}
		if r == ' ' {
			lastSpace = len(cur)
		}
		cur = append(cur, r)
		curW += rw
	}
	lines = append(lines, string(cur))
	if len(lines) > maxCellLines {
		lines = append(lines[:maxCellLines-1], strings.TrimSpace(lines[maxCellLines-1])+" …")
	}
	return lines
}

// write renders the document to w.
func (d *pdfDoc) write(w io.Writer) error {
	if d.f.Err() {
		return d.f.Error()
	}
	return d.f.Output(w)
}
