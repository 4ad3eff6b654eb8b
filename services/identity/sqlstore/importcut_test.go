package sqlstore

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// After each chunk the store calls the import's ImportChunkDone with the
// chunk's time and its cut, the transaction open: the importer may pause
// there (giving way to logins), and once a write waits (cut) the
// transaction ends after that chunk.
func TestImportBatchChunkDone(t *testing.T) {
	f := importStore(t, importStoreOpts{})
	s := f.s
	items := people{org: f.root, prefix: "hook", num: "%02d", display: "钩子"}.items(7)
	waiting := false
	s.cutImport = func() bool { return waiting }
	var calls []time.Duration
	endAfter := 0 // the call after which the importer asks to end (0: never)
	ctx := identity.WithImportChunkDone(context.Background(), func(took time.Duration, cut func() bool) bool {
		calls = append(calls, took)
		if endAfter > 0 {
			return len(calls) == endAfter
		}
		if cut() {
			t.Fatal("cut before any write waits")
		}
		if len(calls) == 2 {
			waiting = true // a write began to wait during the pause
			if !cut() {
				t.Fatal("cut does not see the waiting write")
			}
		}
		return false
	})
	res, err := s.ImportBatch(ctx, "hook-1", items, false, 2, func([]identity.ImportItem) []events.Event { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 || len(calls) != 2 {
		t.Fatalf("%d results, %d calls; want the transaction ended after the second chunk (4 rows, 2 calls)", len(res), len(calls))
	}
	for _, d := range calls {
		if d <= 0 {
			t.Fatalf("chunk times %v, want each > 0", calls)
		}
	}
	// The importer asks to end the transaction after the first chunk
	// (it paused long enough): the results cover that chunk.
	waiting, calls, endAfter = false, nil, 1
	res, err = s.ImportBatch(ctx, "hook-1", items[4:], false, 2, func([]identity.ImportItem) []events.Event { return nil })
	if err != nil || len(res) != 2 || len(calls) != 1 {
		t.Fatalf("the importer ending the transaction: %d results, %d calls, %v; want 2 rows, 1 call", len(res), len(calls), err)
	}
	calls, endAfter = nil, 0
	res, err = s.ImportBatch(ctx, "hook-1", items[6:], false, 2, func([]identity.ImportItem) []events.Event { return nil })
	if err != nil || len(res) != 1 || len(calls) != 1 {
		t.Fatalf("the rest: %d results, %d calls, %v; want 1 row, 1 call", len(res), len(calls), err)
	}
	found, _, err := s.ListUsers(context.Background(), identity.UserFilter{Query: "钩子hook"}, identity.Page{})
	if err != nil || len(found) != 7 {
		t.Fatalf("search after the import: %d found, %v; want 7", len(found), err)
	}
}
