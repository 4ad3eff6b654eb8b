package events_test

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events"
)

// A pack gives back its events as they were (time in UTC, none for a zero
// time); a message that is not a pack gives its one event; a pack whose
// data does not hold what its header says is refused.
func TestPackRoundTrip(t *testing.T) {
	evs := makeEvents("pack", 5)
	evs[2].Time = time.Time{}
	evs[3].Payload = nil
	evs[4].Type = ""
	msg := events.PackMsg(evs)
	got, err := events.Unpack(msg.Subject, msg.Header, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if evs[i].Payload == nil {
			evs[i].Payload = []byte{}
		}
	}
	if !reflect.DeepEqual(got, evs) {
		t.Fatalf("unpacked %+v\nwant %+v", got, evs)
	}
	one := events.Msg(evs[0])
	one.Header.Set(jetstream.MsgIDHeader, evs[0].ID)
	got, err = events.Unpack(one.Subject, one.Header, one.Data)
	if err != nil || len(got) != 1 || got[0].ID != evs[0].ID || !got[0].Time.Equal(evs[0].Time) {
		t.Fatalf("single message: %+v %v", got, err)
	}
	for name, bad := range map[string]func(m *nats.Msg){
		"count above the data": func(m *nats.Msg) { m.Header.Set(events.HeaderPack, "6") },
		"count not a number":   func(m *nats.Msg) { m.Header.Set(events.HeaderPack, "x") },
		"cut short":            func(m *nats.Msg) { m.Data = m.Data[:len(m.Data)-3] },
		"trailing bytes":       func(m *nats.Msg) { m.Data = append(m.Data, 0) },
	} {
		m := events.PackMsg(evs)
		bad(m)
		if got, err := events.Unpack(m.Subject, m.Header, m.Data); err == nil {
			t.Errorf("%s: unpacked %d events, want an error", name, len(got))
		}
	}
}

// With Pack, the publisher sends the events of each subject in packs of at
// most Pack, and every event arrives once, in order within its subject,
// also through a NATS outage.
func TestPublisherPacks(t *testing.T) {
	r := startPacking(t, 50)
	p, js := r.p, r.js

	mk := func(prefix string, n int) []events.Event {
		evs := makeEvents(prefix, n)
		for i := range evs {
			evs[i].Subject = fmt.Sprintf("uias.audit.c%d.access", i%2)
		}
		return evs
	}
	first := mk("first", 37)
	for _, ev := range first {
		p.Add(ev)
	}
	eventually(t, "the first events to be published", func() bool { return p.Pending() == 0 })
	r.natsDown()
	during := mk("during", 21)
	for _, ev := range during {
		p.Add(ev)
	}
	r.natsUp()
	eventually(t, "the queue to drain after recovery", func() bool { return p.Pending() == 0 })
	r.stop()

	msgs := auditMessages(t, js)
	bySubject := map[string][]string{}
	seen := map[string]int{}
	for _, evs := range msgs {
		if len(evs) > 8 {
			t.Errorf("a pack of %d events, want at most 8", len(evs))
		}
		for _, ev := range evs {
			if ev.Subject != evs[0].Subject {
				t.Errorf("event %s of subject %s in a pack of %s", ev.ID, ev.Subject, evs[0].Subject)
			}
			if seen[ev.ID]++; seen[ev.ID] == 1 {
				bySubject[ev.Subject] = append(bySubject[ev.Subject], ev.ID)
			}
		}
	}
	if len(msgs) >= len(first)+len(during) {
		t.Errorf("%d messages for %d events: not packed", len(msgs), len(first)+len(during))
	}
	want := map[string][]string{}
	for _, ev := range append(first, during...) {
		want[ev.Subject] = append(want[ev.Subject], ev.ID)
	}
	if !reflect.DeepEqual(bySubject, want) {
		t.Fatalf("events by subject %v\nwant %v", bySubject, want)
	}
}

// appended is an event the publisher builds into its own buffer
// (events.Appender).
type appended struct {
	ev    events.Event
	count *atomic.Int32
}

func (a appended) Event() events.Event { return a.ev }

func (a appended) AppendEvent(buf []byte) (events.Event, []byte) {
	a.count.Add(1)
	ev := a.ev
	n := len(buf)
	buf = append(buf, a.ev.Payload...)
	ev.Payload = buf[n:len(buf):len(buf)]
	return ev, buf
}

// The payload buffer is reused only when every event built into it left
// the queue: events still waiting keep their payloads while the next ones
// are built.
func TestPublisherBuildKeepsWaitingPayloads(t *testing.T) {
	p := events.NewPublisher(nil, events.PublisherOptions{Name: "build"})
	var n atomic.Int32
	queue := func(prefix string, k int) []events.Event {
		evs := makeEvents(prefix, k)
		for i := range evs {
			evs[i].Payload = []byte(fmt.Sprintf(`{"%s":%d}`, prefix, i))
			p.AddLater(appended{ev: evs[i], count: &n})
		}
		return evs
	}
	check := func(got, want []events.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d events queued, want %d", len(got), len(want))
		}
		for i := range want {
			if string(got[i].Payload) != string(want[i].Payload) {
				t.Fatalf("event %d: payload %s, want %s", i, got[i].Payload, want[i].Payload)
			}
		}
	}
	first := queue("first", 5)
	check(p.BuildQueued(), first)
	second := queue("second", 5) // the first still wait
	check(p.BuildQueued(), append(first, second...))
	p.Published()
	third := queue("third", 7) // built where the first were
	check(p.BuildQueued(), third)
	if n.Load() != 17 {
		t.Fatalf("%d events built into the buffer, want 17", n.Load())
	}
}

// A publisher builds Appender events into one buffer and packs into
// buffers it reuses: across rounds (each published before the next is
// built), lone events, and an outage during which new events are built
// while others wait, every event arrives once with its own payload.
func TestPublisherReusesItsBuffers(t *testing.T) {
	r := startPacking(t, 20)
	p, js := r.p, r.js

	want := map[string]string{}
	var builtN atomic.Int32
	add := func(prefix string, n int) {
		evs := makeEvents(prefix, n)
		for i := range evs {
			evs[i].Subject = "uias.audit.c.access"
			// payloads of different lengths, so a reused buffer would show
			evs[i].Payload = []byte(fmt.Sprintf(`{"%s":%d,"pad":%q}`, prefix, i, strings.Repeat("x", (i*7)%40)))
			want[evs[i].ID] = string(evs[i].Payload)
			if !p.AddLater(appended{ev: evs[i], count: &builtN}) {
				t.Fatal("AddLater refused below the buffer size")
			}
		}
	}
	for round, n := range []int{37, 41, 1, 23, 1} {
		add(fmt.Sprintf("r%d", round), n)
		eventually(t, "a round to be published", func() bool { return p.Pending() == 0 })
	}
	r.natsDown()
	add("during1", 13)
	// built (and tried while NATS is away) before the next ones are queued
	eventually(t, "the events queued during the outage to be built", func() bool { return int(builtN.Load()) == len(want) })
	add("during2", 17)
	r.natsUp()
	eventually(t, "the queue to drain after recovery", func() bool { return p.Pending() == 0 })
	add("after", 29)
	eventually(t, "the last round to be published", func() bool { return p.Pending() == 0 })
	r.stop()

	got := map[string]string{}
	for _, evs := range auditMessages(t, js) {
		for _, ev := range evs {
			if prev, ok := got[ev.ID]; ok && prev != string(ev.Payload) {
				t.Errorf("event %s stored twice with different payloads: %s, %s", ev.ID, prev, ev.Payload)
			}
			got[ev.ID] = string(ev.Payload)
		}
	}
	if !reflect.DeepEqual(got, want) {
		for id, w := range want {
			if got[id] != w {
				t.Errorf("event %s: payload %q, want %q", id, got[id], w)
			}
		}
		t.Fatalf("%d events stored, want %d", len(got), len(want))
	}
}

// auditMessages is the events of every message of the AUDIT stream, a
// slice per message (events.Unpack: a pack's events, or the one event).
func auditMessages(t *testing.T, js jetstream.JetStream) [][]events.Event {
	t.Helper()
	st, err := js.Stream(context.Background(), events.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]events.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := events.Unpack(m.Subject, m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs)
	}
	return out
}

// packing is a running publisher of packs of at most 8 events (flushing
// every 10 ms, acks awaited 200 ms) to a NATS server that can be stopped
// and started again with its store.
type packing struct {
	t        *testing.T
	storeDir string
	s        *server.Server
	port     int
	nc       *nats.Conn
	js       jetstream.JetStream
	p        *events.Publisher
	cancel   context.CancelFunc
}

func startPacking(t *testing.T, batch int) *packing {
	r := &packing{t: t, storeDir: t.TempDir()}
	r.s = startNATS(t, r.storeDir, -1)
	r.port = r.s.Addr().(*net.TCPAddr).Port
	r.nc, r.js = connect(t, r.s)
	r.p = events.NewPublisher(r.js, events.PublisherOptions{Batch: batch, Pack: 8, FlushEvery: 10 * time.Millisecond,
		PublishTimeout: 200 * time.Millisecond, Name: t.Name()})
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go r.p.Run(ctx, 5*time.Second)
	return r
}

// natsDown stops the server and waits until the client noticed.
func (r *packing) natsDown() {
	r.s.Shutdown()
	r.s.WaitForShutdown()
	eventually(r.t, "client to notice the outage", func() bool { return !r.nc.IsConnected() })
}

// natsUp starts the server again, on its port and store.
func (r *packing) natsUp() { r.s = startNATS(r.t, r.storeDir, r.port) }

// stop stops the publisher (it publishes what it holds first).
func (r *packing) stop() {
	r.cancel()
	<-r.p.Done()
}
