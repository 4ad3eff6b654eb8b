package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/ingest"
)

// Packs of access records (events.PackMsg) are stored one record per
// event, in transactions of at most Batch records; a pack delivered again
// in another composition doubles nothing; a pack that cannot be read is
// kept as one record; a paused ingester stores nothing until it resumes.
func TestIngestPacksAndPause(t *testing.T) {
	js, l, db := streamAndLog(t)
	ctx := context.Background()
	most := 0
	in := ingest.New(js, l, ingest.Options{Batch: 100, MaxWait: 50 * time.Millisecond,
		AfterAppend: func(r audit.AppendResult) { most = max(most, r.Added+r.Duplicates) }})
	in.Pause()
	runIngester(t, in)

	const total = 1000
	evs := make([]events.Event, total)
	for i := range evs {
		ev := events.Event{ID: events.NewID(), Subject: "uias.audit.authz.access", Type: "access", Time: time.Now().UTC()}
		ev.Payload, _ = json.Marshal(events.AuditRecord{Serial: fmt.Sprint("req-", i), API: "uias.authz.v1.AuthzService/Check",
			Actor: "app:a", Result: "success", Reason: "OK", Time: ev.Time})
		evs[i] = ev
	}
	pub := func(msg *nats.Msg, id string) {
		t.Helper()
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < total; i += events.MaxPack {
		pack := evs[i:min(i+events.MaxPack, total)]
		pub(events.PackMsg(pack), events.PackID(pack[0].ID, len(pack)))
	}
	// the first 10 again, in a pack of their own; and a pack cut short
	pub(events.PackMsg(evs[:10]), events.PackID(evs[0].ID, 10))
	bad := events.PackMsg(evs[:3])
	bad.Data = bad.Data[:len(bad.Data)-5]
	pub(bad, "bad-pack")

	time.Sleep(300 * time.Millisecond)
	if n := size(t, db); n != 0 {
		t.Fatalf("a paused ingester stored %d records", n)
	}
	in.Resume()
	cons, err := js.Consumer(ctx, events.StreamAudit, ingest.Durable)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && size(t, db) >= total+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all stored: size %d", size(t, db))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := size(t, db); n != total+1 {
		t.Fatalf("log size %d, want %d (every event once and the unreadable pack)", n, total+1)
	}
	if most > 100 {
		t.Errorf("a transaction of %d records, want at most Batch (100)", most)
	}
	got := map[string]int{}
	var malformed []*audit.Record
	err = l.Store().ScanRecords(ctx, 0, func(r *audit.Record) error {
		got[r.EventID]++
		if _, ok := r.Detail[audit.MalformedDetail]; ok {
			malformed = append(malformed, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if got[ev.ID] != 1 {
			t.Fatalf("event %s stored %d times", ev.ID, got[ev.ID])
		}
	}
	if len(malformed) != 1 || malformed[0].Component != "authz" {
		t.Fatalf("the unreadable pack: %+v", malformed)
	}
}

// BenchmarkIngestPacks: what storing access records costs the audit
// component (fetch, decode, mask, store, acknowledge), published one
// message per record against packs of events.MaxPack. Reported as CPU time
// per record (cpu-ns/record), which a loaded machine disturbs less than the
// wall time: go test ./ingest -run '^$' -bench IngestPacks.
func BenchmarkIngestPacks(b *testing.B) {
	const n = 20000
	for _, pack := range []int{1, events.MaxPack} {
		b.Run(fmt.Sprintf("pack=%d", pack), func(b *testing.B) {
			var cpu time.Duration
			for range b.N {
				dir := b.TempDir()
				js, stopNATS := eventstest.Fresh(b, filepath.Join(dir, "nats"))
				ctx := context.Background()
				p := events.NewPublisher(js, events.PublisherOptions{Pack: pack, Buffer: 2 * n})
				for i := range n {
					ev := events.Event{ID: events.NewID(), Subject: "uias.audit.authz.access", Type: "access", Time: time.Now().UTC()}
					ev.Payload, _ = json.Marshal(events.AuditRecord{Serial: fmt.Sprint("req-", i), TraceID: fmt.Sprint("req-", i),
						API: "uias.authz.v1.AuthzService/Check", AppID: "app-7", Actor: "app:app-7", Result: "success", Reason: "OK",
						DurationMS: 0.4, ClientIP: "127.0.0.1", Time: ev.Time, Detail: map[string]string{"code": "OK"}})
					p.Add(ev)
				}
				pctx, stop := context.WithCancel(ctx)
				go p.Run(pctx, time.Minute)
				stop()
				<-p.Done()
				ringFile := filepath.Join(dir, "keyring.json")
				if _, err := crypto.NewRingFile(ringFile); err != nil {
					b.Fatal(err)
				}
				l, db := openLog(b, filepath.Join(dir, "audit.db"), ringFile, audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
				rctx, cancel := context.WithCancel(ctx)
				in := ingest.New(js, l, ingest.Options{MaxWait: 100 * time.Millisecond})
				done := make(chan struct{})
				c0 := cpuTime()
				go func() { defer close(done); _ = in.Run(rctx) }()
				for {
					var size int64
					_ = db.QueryRowContext(ctx, "SELECT size FROM audit_log").Scan(&size)
					if size >= n {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				cpu += cpuTime() - c0
				cancel()
				<-done
				db.Close()
				stopNATS()
			}
			b.ReportMetric(float64(cpu)/float64(b.N*n), "cpu-ns/record")
		})
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
