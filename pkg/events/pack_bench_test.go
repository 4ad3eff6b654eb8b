package events_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPublisherPack: what publishing an access record costs the
// process (the publisher and the embedded NATS server with its stream),
// one message per record against packs of events.MaxPack. Reported as
// CPU time per event (cpu-ns/event), which a loaded machine disturbs less
// than the wall time: go test ./events -run '^$' -bench PublisherPack.
func BenchmarkPublisherPack(b *testing.B) {
	payload := []byte(`{"serial":"0f3c2a9b7e1d4c5a","trace_id":"0f3c2a9b7e1d4c5a","app_id":"app-7","api":"uias.authz.v1.AuthzService/Check",` +
		`"actor":"app:app-7","subject":"","org":"","result":"success","reason":"OK","duration_ms":0.412,"client_ip":"127.0.0.1",` +
		`"time":"2026-12-02T13:00:00.123Z","detail":{"code":"OK"}}`)
	for _, pack := range []int{1, events.MaxPack} {
		b.Run(fmt.Sprintf("pack=%d", pack), func(b *testing.B) {
			s := startNATS(b, b.TempDir(), -1)
			_, js := connect(b, s)
			p := events.NewPublisher(js, events.PublisherOptions{Pack: pack, Name: "bench"})
			ctx, cancel := context.WithCancel(context.Background())
			go p.Run(ctx, time.Minute)
			b.ResetTimer()
			c0 := cpuTime()
			for i := range b.N {
				for !p.Add(events.Event{ID: fmt.Sprintf("%016x%016x", i, i), Subject: "uias.audit.authz.access", Type: "access",
					Time: time.Now(), Payload: payload}) {
					time.Sleep(time.Millisecond)
				}
			}
			for p.Pending() > 0 {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/event")
			cancel()
			<-p.Done()
		})
	}
}
