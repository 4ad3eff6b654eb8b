package sqlstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity"
)

// An import transaction written in chunks ends between two chunks when a
// write waits (here: cutImport says so every time): the results cover the
// chunks written, with their events and search rows; the caller sends the
// rest again, and in the end every row is written once.
func TestImportBatchEndsBetweenChunks(t *testing.T) {
	ctx := context.Background()
	f := importStore(t, importStoreOpts{})
	s := f.s
	items := people{org: f.root, prefix: "cut", num: "%02d", display: "分块"}.items(5)
	s.cutImport = func() bool { return true }
	var batches [][]int
	evs := func(w []identity.ImportItem) []events.Event {
		var rows []int
		for _, it := range w {
			rows = append(rows, it.Row)
		}
		batches = append(batches, rows)
		return nil
	}
	rest := items
	for len(rest) > 0 {
		res, err := s.ImportBatch(ctx, "cut-1", rest, false, 2, evs)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(2, len(rest)); len(res) != want {
			t.Fatalf("%d results for %d rows in chunks of 2, want %d", len(res), len(rest), want)
		}
		for i, r := range res {
			if r.Err != nil || r.Skipped {
				t.Fatalf("row %d: %+v", rest[i].Row, r)
			}
		}
		rest = rest[len(res):]
	}
	if got := fmt.Sprint(batches); got != "[[2 3] [4 5] [6]]" {
		t.Fatalf("transactions wrote rows %s, want [[2 3] [4 5] [6]]", got)
	}
	found, _, err := s.ListUsers(ctx, identity.UserFilter{Query: "分块cut"}, identity.Page{})
	if err != nil || len(found) != 5 {
		t.Fatalf("search after the chunked import: %d found, %v", len(found), err)
	}
	// Nothing waiting: one transaction, every chunk; the rows written are
	// skipped.
	s.cutImport = func() bool { return false }
	batches = nil
	res, err := s.ImportBatch(ctx, "cut-1", items, false, 2, evs)
	if err != nil || len(res) != len(items) {
		t.Fatalf("second run: %d results, %v", len(res), err)
	}
	for i, r := range res {
		if !r.Skipped {
			t.Fatalf("second run, row %d: %+v", items[i].Row, r)
		}
	}
	if len(batches) != 0 {
		t.Fatalf("events for a run that wrote nothing: %v", batches)
	}
}
