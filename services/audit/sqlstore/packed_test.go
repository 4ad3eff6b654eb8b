package sqlstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/auditbench"
	"github.com/uias/uias/services/audit/sqlstore"
)

// ScanRecords on SQLite reads a record's text columns packed in one value
// (NUL-separated); records whose own text holds a NUL, and empty values,
// come back exactly as read column by column.
func TestPackedScanMatchesColumns(t *testing.T) {
	ctx := context.Background()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	st := sqlstore.New(db)
	signer, err := auditbench.Signer()
	if err != nil {
		t.Fatal(err)
	}
	l := audit.NewLog(st, signer, audit.LogOptions{})
	recs := auditbench.Records("p", 300, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	recs[3].Subject = "user:a\x00b"
	recs[4].Detail = map[string]string{"k\x00": "v\x00w", "x": ""}
	recs[5] = audit.Record{EventID: "p-empty", Time: recs[5].Time}
	recs[6].Reason = "王五 <&> \u2028"
	recs[7].Detail = nil
	if _, err := l.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	scan := func(unpacked bool) []*audit.Record {
		t.Helper()
		old := sqlstore.SetUnpacked(unpacked)
		defer sqlstore.SetUnpacked(old)
		var out []*audit.Record
		if err := st.ScanRecords(ctx, 0, func(r *audit.Record) error { out = append(out, r); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	packed, columns := scan(false), scan(true)
	if len(packed) != len(recs) || len(columns) != len(recs) {
		t.Fatalf("%d packed and %d column records, want %d", len(packed), len(columns), len(recs))
	}
	for i := range packed {
		if !reflect.DeepEqual(packed[i], columns[i]) {
			t.Errorf("record %d packed %+v\ncolumns %+v", i, packed[i], columns[i])
		}
	}
	if packed[3].Subject != "user:a\x00b" || packed[4].Detail["k\x00"] != "v\x00w" || packed[6].Reason != recs[6].Reason {
		t.Errorf("records with NUL characters: %q %v %q", packed[3].Subject, packed[4].Detail, packed[6].Reason)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.OK() || rep.Records != int64(len(recs)) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
