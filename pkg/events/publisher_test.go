package events_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/uias/uias/pkg/events"
)

// The in-memory publisher delivers every queued event once, in order,
// through a NATS outage (retrying with the same message ids), and drops,
// counted, what exceeds its buffer.
func TestPublisherBatchesAndSurvivesOutage(t *testing.T) {
	storeDir := t.TempDir()
	s := startNATS(t, storeDir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	nc, js := connect(t, s)
	reg := prometheus.NewRegistry()
	p := events.NewPublisher(js, events.PublisherOptions{Batch: 4, FlushEvery: 10 * time.Millisecond, Buffer: 12,
		PublishTimeout: 200 * time.Millisecond, Name: "test", Metrics: reg})
	ctx, cancel := context.WithCancel(context.Background())
	go p.Run(ctx, 5*time.Second)

	first := makeEvents("first", 10)
	for _, ev := range first {
		if !p.Add(ev) {
			t.Fatal("Add refused below the buffer size")
		}
	}
	eventually(t, "the first events to be published", func() bool { return p.Pending() == 0 })
	checkStream(t, js, events.StreamChanges, first)

	s.Shutdown()
	s.WaitForShutdown()
	eventually(t, "client to notice the outage", func() bool { return !nc.IsConnected() })
	during := makeEvents("during", 15)
	accepted := 0
	for _, ev := range during {
		if p.Add(ev) {
			accepted++
		}
	}
	// The buffer holds 12; whatever a publish attempt has in flight stays
	// queued until acknowledged, so exactly 12 are kept.
	if accepted != 12 {
		t.Fatalf("accepted %d events during the outage, want 12 (the buffer)", accepted)
	}
	var m dto.Metric
	if err := p.DroppedCounter().Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 3 {
		t.Errorf("dropped counter %v, want 3", got)
	}
	startNATS(t, storeDir, port)
	eventually(t, "the queue to drain after recovery", func() bool { return p.Pending() == 0 })
	cancel()
	<-p.Done()
	checkStream(t, js, events.StreamChanges, append(first, during[:12]...))
}

// At stop, Run publishes what is still queued.
func TestPublisherDrainsAtStop(t *testing.T) {
	s := startNATS(t, t.TempDir(), -1)
	_, js := connect(t, s)
	p := events.NewPublisher(js, events.PublisherOptions{FlushEvery: time.Hour, Name: "drain"})
	ctx, cancel := context.WithCancel(context.Background())
	go p.Run(ctx, 10*time.Second)
	evs := makeEvents("drain", 7)
	for _, ev := range evs {
		p.Add(ev)
	}
	cancel()
	<-p.Done()
	checkStream(t, js, events.StreamChanges, evs)
}

// built is an event built when published, counting how often it is built.
type built struct {
	ev    events.Event
	count *atomic.Int32
}

func (b built) Event() events.Event { b.count.Add(1); return b.ev }

// Events queued with AddLater are built once each, on the publisher's
// goroutine, even when their publication is retried through an outage
// (so a retried one keeps its id and is deduplicated), and arrive in
// order.
func TestPublisherBuildsLaterOnce(t *testing.T) {
	storeDir := t.TempDir()
	s := startNATS(t, storeDir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	nc, js := connect(t, s)
	p := events.NewPublisher(js, events.PublisherOptions{Batch: 3, FlushEvery: 10 * time.Millisecond,
		PublishTimeout: 200 * time.Millisecond, Name: "later"})
	ctx, cancel := context.WithCancel(context.Background())
	go p.Run(ctx, 5*time.Second)
	var count atomic.Int32
	s.Shutdown()
	s.WaitForShutdown()
	eventually(t, "client to notice the outage", func() bool { return !nc.IsConnected() })
	evs := makeEvents("later", 8)
	for _, ev := range evs {
		if !p.AddLater(built{ev: ev, count: &count}) {
			t.Fatal("AddLater refused below the buffer size")
		}
	}
	if p.Pending() != len(evs) {
		t.Fatalf("pending %d, want %d", p.Pending(), len(evs))
	}
	startNATS(t, storeDir, port)
	eventually(t, "the queue to drain after recovery", func() bool { return p.Pending() == 0 })
	cancel()
	<-p.Done()
	checkStream(t, js, events.StreamChanges, evs)
	if got := count.Load(); got != int32(len(evs)) {
		t.Fatalf("built %d times for %d events", got, len(evs))
	}
}
