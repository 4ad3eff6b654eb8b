package identity

import (
	"testing"
	"time"
)

// An import's batches are sized by time: while other writes wait, as many
// rows as fit in ImportTxTarget at the last batch's pace, growing at most
// twofold, within importMinBatch and ImportBatchSize.
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
		z.took(s.n, s.d, true)
		if got := z.next(); got != s.want {
			t.Fatalf("step %d (%d rows in %s): next %d, want %d", i, s.n, s.d, got, s.want)
		}
	}
	for range 10 {
		z.took(z.next(), time.Microsecond, true)
	}
	if got := z.next(); got != ImportBatchSize {
		t.Fatalf("quick batches grow to %d, want %d", got, ImportBatchSize)
	}
}

// While no other write waits, the target time doubles up to
// ImportIdleTxTarget and the batches may reach ImportIdleBatchSize; a
// waiting write brings both back at once.
func TestImportSizerIdle(t *testing.T) {
	z := importSizer{size: 1000}
	// 1000 rows per 50 ms: the idle targets 100, 200, 400, 500, 500 ms fit
	// 2000, 4000, 8000, 10000, 10000 rows (growing at most twofold).
	pace := func(n int) time.Duration { return time.Duration(n) * 50 * time.Microsecond }
	z.took(1000, pace(1000), true) // target 50 ms: 1000 fit
	if got := z.next(); got != 1000 {
		t.Fatalf("contended: next %d, want 1000", got)
	}
	for i, want := range []int{2000, 4000, 8000, 10000, 10000} {
		z.took(z.next(), pace(z.next()), false)
		if got := z.next(); got != want {
			t.Fatalf("idle step %d: next %d, want %d", i, got, want)
		}
	}
	z.took(z.next(), pace(z.next()), true)
	if got := z.next(); got != 1000 {
		t.Fatalf("a write waited: next %d, want 1000 (ImportTxTarget at this pace)", got)
	}
	// Quick idle batches stop at ImportIdleBatchSize.
	for range 20 {
		z.took(z.next(), time.Microsecond, false)
	}
	if got := z.next(); got != ImportIdleBatchSize {
		t.Fatalf("quick idle batches grow to %d, want %d", got, ImportIdleBatchSize)
	}
}
