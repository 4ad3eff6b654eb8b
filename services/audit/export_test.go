package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/storetest"
)

// Exports of records (every format, across pages, capped, within the
// caller's scope) and of count reports (an HTML chart by hour).
func TestExports(t *testing.T) {
	ctx := context.Background()
	st, l := newLog(t)
	recs := storetest.Records("exp", 1200) // more than one page of 1000
	recs[5].Detail = map[string]string{"name": `张三, "quoted" <script>alert(1)</script>`}
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	all := audit.Scope{All: true}
	export := func(q audit.Query, max int, f audit.Format) []byte {
		t.Helper()
		var b bytes.Buffer
		if _, err := audit.ExportRecords(ctx, st, all, q, max, f, &b); err != nil {
			t.Fatalf("export %v: %v", f, err)
		}
		return b.Bytes()
	}

	// CSV: a byte order mark, the header, every record newest first,
	// quoting that round-trips
	out := export(audit.Query{}, 0, audit.CSV)
	if !bytes.HasPrefix(out, []byte("\ufeff")) {
		t.Error("CSV without a byte order mark")
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(out, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1201 || rows[0][0] != "seq" || rows[1][0] != "1199" || rows[1200][0] != "0" {
		t.Fatalf("CSV: %d rows, first %v, last %v", len(rows), rows[1], rows[len(rows)-1])
	}
	if got := rows[1200-5][14]; !strings.Contains(got, `张三, \"quoted\"`) {
		t.Errorf("CSV detail of record 5: %q", got)
	}

	// XLSX: a real workbook with the same rows
	out = export(audit.Query{Result: "failure"}, 0, audit.XLSX)
	f, err := excelize.OpenReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	xr, err := f.GetRows("Records")
	if err != nil || len(xr) != 401 || xr[0][6] != "api" || xr[1][10] != "failure" {
		t.Fatalf("XLSX: %d rows %v, %v", len(xr), xr[:min(2, len(xr))], err)
	}

	// HTML: escaped, a table
	out = export(audit.Query{Text: "张三"}, 0, audit.HTML)
	if bytes.Contains(out, []byte("<script>")) || !bytes.Contains(out, []byte("&#34;quoted")) || !bytes.Contains(out, []byte("张三")) ||
		bytes.Count(out, []byte("<tr>")) != 2 {
		t.Fatalf("HTML:\n%s", out)
	}

	// JSONL, capped
	out = export(audit.Query{}, 3, audit.JSONL)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var first map[string]any
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &first) != nil || first["seq"] != float64(1199) || first["api"] != "authenticate" {
		t.Fatalf("JSONL: %d lines, %s", len(lines), lines[0])
	}

	// outside the scope: refused before anything is written
	var b bytes.Buffer
	if _, err := audit.ExportRecords(ctx, st, audit.Scope{}, audit.Query{}, 0, audit.CSV, &b); err == nil || b.Len() != 0 {
		t.Fatalf("export without a scope: %v, %d bytes", err, b.Len())
	}
	if _, err := audit.ExportRecords(ctx, st, all, audit.Query{}, 0, audit.Format(9), &b); err == nil {
		t.Fatal("unknown format accepted")
	}

	// a count report by hour: a chart in HTML, the counts in CSV
	q := audit.CountQuery{By: audit.ByHourOfDay, UTCOffset: 8 * time.Hour}
	counts, _, err := audit.Counts(ctx, st, all, q)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := audit.ExportCounts(q, counts, audit.HTML, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.Bytes(), []byte("<svg")) || bytes.Count(b.Bytes(), []byte("<rect")) != 24 || !bytes.Contains(b.Bytes(), []byte("16:00")) {
		t.Fatalf("HTML count report by hour:\n%s", b.String())
	}
	b.Reset()
	if err := audit.ExportCounts(q, counts, audit.CSV, &b); err != nil {
		t.Fatal(err)
	}
	cr, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b.Bytes(), []byte("\ufeff")))).ReadAll()
	if err != nil || len(cr) != len(counts)+1 || cr[0][0] != "hour" {
		t.Fatalf("CSV count report: %v %v", cr, err)
	}
	var sum int
	for _, r := range cr[1:] {
		var n int
		_ = json.Unmarshal([]byte(r[1]), &n)
		sum += n
	}
	if sum != 1200 {
		t.Errorf("counts add up to %d, want 1200", sum)
	}
}

// names is audit.Names over a map of user id to name; fail makes it fail.
type names struct {
	byID  map[string]string
	fail  bool
	asked [][]string
}

func (n *names) PersonNames(_ context.Context, ids []string) (map[string]string, error) {
	n.asked = append(n.asked, ids)
	if n.fail {
		return nil, context.DeadlineExceeded
	}
	out := map[string]string{}
	for _, id := range ids {
		if v, ok := n.byID[id]; ok {
			out[id] = v
		}
	}
	return out, nil
}

// The administrator who acted is named in exports (004 2.1.7's
// "administrator name"): the people among the actors of each page are
// asked once, by id; other actors, people identity no longer knows and a
// failure of the names leave the column empty, never the export.
func TestExportNamesActors(t *testing.T) {
	ctx := context.Background()
	st, l := newLog(t)
	recs := storetest.Records("nm", 6)
	recs[0].Actor, recs[1].Actor, recs[2].Actor, recs[3].Actor = "user:u1", "user:u1", "user:gone", "app:oa"
	// records that kept their actor's login (trial5 D3): one since
	// deleted, one since renamed
	recs[4].Actor, recs[4].Detail = "user:eve", map[string]string{audit.DetailActorLogin: "eve"}
	recs[5].Actor, recs[5].Detail = "user:u2", map[string]string{audit.DetailActorLogin: "bob"}
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	n := &names{byID: map[string]string{"u1": "ada (Ada Li)", "u2": "robert (Robert Wu)"}}
	var b bytes.Buffer
	if _, err := (audit.Exporter{Names: n}).Records(ctx, st, audit.Scope{All: true}, audit.Query{}, 0, audit.CSV, &b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b.Bytes(), []byte("\ufeff")))).ReadAll()
	if err != nil || len(rows) != 7 {
		t.Fatalf("csv: %v %v", rows, err)
	}
	last := slices.Index(rows[0], "actor_name")
	if last < 0 {
		t.Fatalf("header: %v", rows[0])
	}
	got := map[string]int{}
	for _, r := range rows[1:] {
		got[r[7]+"="+r[last]]++
	}
	want := map[string]int{"user:u1=ada (Ada Li)": 2, "user:gone=": 1, "app:oa=": 1, "user:eve=eve": 1,
		"user:u2=bob (now robert (Robert Wu))": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("actors and names: %v, want %v", got, want)
	}
	// the people among the actors (u1, gone, eve, u2) and the subjects
	// (u0 to u5), once
	if len(n.asked) != 1 || len(n.asked[0]) != 8 {
		t.Fatalf("names asked %v, want the people of the page once", n.asked)
	}
	// names failing: the export goes on without them
	n.fail = true
	b.Reset()
	if _, err := (audit.Exporter{Names: n}).Records(ctx, st, audit.Scope{All: true}, audit.Query{}, 0, audit.JSONL, &b); err != nil ||
		strings.Count(b.String(), "\n") != 6 || strings.Count(b.String(), `"actor_name"`) != 2 {
		t.Fatalf("export with names failing: %v\n%s", err, b.String())
	}
}

// A CSV cell a spreadsheet would run as a formula is written after an
// apostrophe (a display name or a claimed login of "=HYPERLINK(...)");
// numbers, negative ones too, stay as they are (review sec10 L6).
func TestCSVFormulaCells(t *testing.T) {
	var b bytes.Buffer
	q := audit.CountQuery{By: audit.BySubject}
	counts := []audit.Count{{Key: `=HYPERLINK("http://x","y")`, Count: 2}, {Key: "-5", Count: 1}, {Key: "@SUM(A1)", Count: 1}, {Key: "user:u1", Count: 1},
		{Key: "-2+3", Count: 1}, {Key: "-1.5", Count: 1}}
	if err := audit.ExportCounts(q, counts, audit.CSV, &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`"'=HYPERLINK(""http://x"",""y"")"`, "\n-5,", "\n'@SUM(A1),", "\nuser:u1,", "\n'-2+3,", "\n-1.5,"} {
		if !strings.Contains(out, want) {
			t.Errorf("CSV lacks %q:\n%s", want, out)
		}
	}
}
