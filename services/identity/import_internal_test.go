package identity

import (
	"testing"
	"time"
)

// An import's chunks are sized by time: as many rows as fit in
// ImportTxTarget at the last transaction's pace, growing at most twofold,
// within importMinBatch and ImportChunkMax.
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
		{200, 10 * time.Millisecond, 400}, // 1000 fit: at most twice as many
		{400, 10 * time.Millisecond, 800}, // 2000 fit
		{800, 0, 1600},                    // too quick to time
		{1600, time.Second, 80},           // slow: 80 fit
		{80, time.Second, importMinBatch}, // 4 fit: the fewest
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
	if got := z.next(); got != ImportChunkMax {
		t.Fatalf("quick batches grow to %d, want %d", got, ImportChunkMax)
	}
}
