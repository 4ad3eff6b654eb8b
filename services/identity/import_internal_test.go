package identity

import (
	"testing"
	"time"
)

// An import's batches are sized by time: as many rows as fit in
// ImportTxTarget at the last batch's pace, growing at most twofold, within
// importMinBatch and ImportBatchSize.
func TestImportSizer(t *testing.T) {
	var z importSizer
	if got := z.next(); got != importFirstBatch {
		t.Fatalf("first batch %d, want %d", got, importFirstBatch)
	}
	steps := []struct {
		n    int
		d    time.Duration
		want int
	}{
		{100, 10 * time.Millisecond, 200}, // 500 fit: at most twice as many
		{200, 10 * time.Millisecond, 400}, // 1000 fit
		{400, 0, 800},                     // too quick to time
		{800, time.Second, 40},            // slow: 40 fit
		{40, time.Second, importMinBatch}, // 2 fit: the fewest
		{importMinBatch, time.Microsecond, 2 * importMinBatch},
		{1000, time.Millisecond, 2 * 2 * importMinBatch},
	}
	for i, s := range steps {
		z.took(s.n, s.d)
		if got := z.next(); got != s.want {
			t.Fatalf("step %d (%d rows in %s): next %d, want %d", i, s.n, s.d, got, s.want)
		}
	}
	for range 10 {
		z.took(z.next(), time.Microsecond)
	}
	if got := z.next(); got != ImportBatchSize {
		t.Fatalf("quick batches grow to %d, want %d", got, ImportBatchSize)
	}
}
