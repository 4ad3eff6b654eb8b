package ingest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/ingest"
)

// BenchmarkDurableIngest: 20,000 events waiting in the AUDIT stream until
// all are stored by an ingester (fetch, decode, mask, duplicate check,
// leaf and tree hashes, checkpoints every 1000, commit, ack), against the
// floor of draining the same stream with fetch, decode and ack alone (no
// storage). docs/benchmarks-audit.md.
func BenchmarkDurableIngest(b *testing.B) {
	const n = 20000
	for range b.N {
		dir := b.TempDir()
		js, stopNATS := eventstest.Fresh(b, filepath.Join(dir, "nats"))
		ctx := context.Background()
		publish(b, js, n)

		// floor: drain the stream with fetch + ack only
		start := time.Now()
		cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamAudit, jetstream.ConsumerConfig{Durable: "floor",
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 2000})
		if err != nil {
			b.Fatal(err)
		}
		for got := 0; got < n; {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				b.Fatal(err)
			}
			for m := range batch.Messages() {
				_ = ingest.Record(m)
				_ = m.Ack()
				got++
			}
		}
		floor := time.Since(start)

		ringFile := filepath.Join(dir, "keyring.json")
		if _, err := crypto.NewRingFile(ringFile); err != nil {
			b.Fatal(err)
		}
		l, db := openLog(b, filepath.Join(dir, "audit.db"), ringFile, audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
		rctx, cancel := context.WithCancel(ctx)
		in := ingest.New(js, l, ingest.Options{Batch: 500, MaxWait: 100 * time.Millisecond})
		start = time.Now()
		done := make(chan struct{})
		go func() { defer close(done); _ = in.Run(rctx) }()
		for {
			var size int64
			_ = db.QueryRowContext(ctx, "SELECT size FROM audit_log").Scan(&size)
			if size >= n {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		ours := time.Since(start)
		cancel()
		<-done
		db.Close()
		stopNATS()
		b.ReportMetric(n/ours.Seconds(), "events/s")
		b.ReportMetric(n/floor.Seconds(), "floor-events/s")
		b.ReportMetric(floor.Seconds()/ours.Seconds(), "ratio")
	}
}
