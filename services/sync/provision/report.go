package provision

import (
	"bytes"
	"encoding/csv"
	"strconv"

	"github.com/xuri/excelize/v2"
)

// ReportHeader names the columns of a delivery report file.
var ReportHeader = []string{"day", "app", "delivered", "failed_attempts", "dead", "pending", "avg_latency_ms"}

func (r ReportRow) cells() []string {
	return []string{r.Day, r.App, strconv.FormatInt(r.Delivered, 10), strconv.FormatInt(r.Failed, 10),
		strconv.FormatInt(r.Dead, 10), strconv.FormatInt(r.Pending, 10), strconv.FormatInt(r.AvgLatencyMS, 10)}
}

// ReportCSV renders rows as CSV (RFC 4180) with a header line.
func ReportCSV(rows []ReportRow) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(ReportHeader)
	for _, r := range rows {
		_ = w.Write(r.cells())
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// ReportXLSX renders rows as one XLSX sheet "deliveries" (numbers as
// numbers).
func ReportXLSX(rows []ReportRow) ([]byte, error) {
	f := excelize.NewFile()
	defer func() { _ = f.Close() }()
	const sheet = "deliveries"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return nil, err
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return nil, err
	}
	head := make([]any, len(ReportHeader))
	for i, h := range ReportHeader {
		head[i] = h
	}
	if err := sw.SetRow("A1", head); err != nil {
		return nil, err
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		if err := sw.SetRow(cell, []any{r.Day, r.App, r.Delivered, r.Failed, r.Dead, r.Pending, r.AvgLatencyMS}); err != nil {
			return nil, err
		}
	}
	if err := sw.Flush(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
