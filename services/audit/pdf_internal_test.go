package audit

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The charts are drawn in the PDF: one filled rectangle per bar with a
// count (none for an empty slot), whichever way the bars run.
func TestPDFChartBars(t *testing.T) {
	out, err := exec.Command("../../scripts/pdf-tools.sh").Output()
	if err != nil {
		t.Skipf("no CJK TrueType font (scripts/pdf-tools.sh: %v)", err)
	}
	fonts := strings.Fields(string(out))
	font, latin := fonts[0], fonts[1]
	for _, c := range []*Chart{
		CountChart(CountQuery{By: ByHourOfDay}, []Count{{Key: "03", Count: 5}, {Key: "17", Count: 9}, {Key: "23", Count: 1}}),
		CountChart(CountQuery{By: BySubject}, []Count{{Key: "user:张三", Count: 4}, {Key: "user:b", Count: 2}, {Key: "", Count: 1}}),
	} {
		d, err := newPDF(font, latin, false, "chart", time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		d.f.SetCompression(false)
		d.chart(c)
		var b bytes.Buffer
		if err := d.write(&b); err != nil {
			t.Fatal(err)
		}
		if got := bytes.Count(b.Bytes(), []byte(" re f")); got != 3 {
			t.Errorf("horizontal %v: %d filled rectangles, want 3", c.Horizontal, got)
		}
	}
}

// TestRecordColumns (review rr29 C3): origin, added with ADR 0029, is the
// last column of a records export (the columns before it keep their
// places), every column has its PDF width (the origin had none, so a PDF
// dropped the last column), and a row has a cell per column.
func TestRecordColumns(t *testing.T) {
	if len(recordWeights) != len(recordHeader) {
		t.Fatalf("%d PDF widths for %d columns", len(recordWeights), len(recordHeader))
	}
	if recordHeader[len(recordHeader)-1] != "origin" || recordHeader[16] != "actor_name" || recordHeader[17] != "description" {
		t.Fatalf("columns: %v", recordHeader)
	}
	row := recordRow(&Record{Origin: "l2a.audit", EventID: "e"}, "ada", "what")
	if len(row) != len(recordHeader) || row[len(row)-1] != "l2a.audit" || row[16] != "ada" || row[17] != "what" {
		t.Fatalf("row: %v", row)
	}
}
