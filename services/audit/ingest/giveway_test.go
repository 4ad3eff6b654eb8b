package ingest_test

import (
	"testing"
	"time"

	"github.com/uias/uias/pkg/giveway"
	"github.com/uias/uias/services/audit/ingest"
)

// TestIngestGivesWayToWaitingLogins: while a login waits for a hash worker
// the ingester stores nothing (the events wait in the stream); once the
// wait ends it stores every event, once. A second storm that never ends
// delays it by at most the signal's MaxPause a fetch.
func TestIngestGivesWayToWaitingLogins(t *testing.T) {
	js, l, db := streamAndLog(t)
	sig := giveway.New(time.Hour)
	sig.Add(1) // a login waits
	in := ingest.New(js, l, ingest.Options{Batch: 100, MaxWait: 20 * time.Millisecond, GiveWay: sig})
	stop := runIngester(t, in)

	stored := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for size(t, db) < want {
			if time.Now().After(deadline) {
				t.Fatalf("stored %d, want %d", size(t, db), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n := size(t, db); n != want {
			t.Fatalf("stored %d, want %d", n, want)
		}
	}
	publish(t, js, 300)
	time.Sleep(200 * time.Millisecond) // ten fetches' worth
	if n := size(t, db); n != 0 {
		t.Fatalf("stored %d records while a login waits", n)
	}
	sig.Add(-1)
	stored(300)

	// A storm that never ends: the bound lets the ingester go on.
	endless := giveway.New(20 * time.Millisecond)
	endless.Add(1)
	stop()
	in = ingest.New(js, l, ingest.Options{Batch: 100, MaxWait: 20 * time.Millisecond, GiveWay: endless})
	runIngester(t, in)
	publish(t, js, 500)
	stored(800)
}
