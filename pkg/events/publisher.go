package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Batch is the most events published before waiting for their acks
	// (default 500).
	Batch int
	// FlushEvery is the longest an event waits in memory before it is
	// published (default 100ms).
	FlushEvery time.Duration
	// Buffer is the most events kept in memory (waiting, or being retried
	// while NATS is away); beyond it new events are dropped and counted
	// (default 100000).
	Buffer int
	// PublishTimeout bounds the wait for one batch's acks (default 5s).
	PublishTimeout time.Duration
	// Pack, above 1, puts up to Pack events of one subject (at most
	// MaxPack) in one message (see PackMsg): one stream write and one
	// acknowledgement for many events. Readers take them with
	// EventsFromMsg. 0 or 1: a message per event.
	Pack int
	// Name labels the metrics (e.g. "access").
	Name    string
	Logger  *zap.Logger
	Metrics prometheus.Registerer
}

func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 100 * time.Millisecond
	}
	if o.Buffer <= 0 {
		o.Buffer = 100_000
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	o.Pack = min(max(o.Pack, 1), MaxPack)
	return o
}

// Publisher publishes events that need no transaction of their own (such
// as the access record of every API call) in batches, asynchronously: Add
// only queues in memory and never blocks the caller, and Run publishes the
// queue with the event id as the JetStream message id (so a batch retried
// after a lost ack is deduplicated), retrying while NATS is away. With
// PublisherOptions.Pack it publishes the events of one subject in packs
// (PackMsg, message id PackID): a pack retried with the same events is
// deduplicated likewise; one retried in another composition (new events
// joined the queue meanwhile) may put an event in the stream twice, under
// its one id (the audit log stores an event id once).
//
// Unlike the outbox (AddToOutbox + Relay), what is queued is kept in
// memory only: a crash loses the events of at most the last FlushEvery,
// and an outage longer than Buffer events drops the newest ones, counted
// in uias_events_dropped_total and logged.
type Publisher struct {
	js jetstream.JetStream
	o  PublisherOptions

	mu       sync.Mutex
	queue    []Event // built, in order, waiting or being published
	later    []Later // to build (AddLater)
	building int     // taken from later, being built
	built    []Event // build's own buffer, reused (only Run's goroutine builds)
	kick     chan struct{}
	dropped  int64 // since the last warning

	// Only Run's goroutine uses these two (no lock):
	arena []byte   // the payloads build wrote (Appender), reused once they were all published
	packs [][]byte // data of packs acknowledged, for the next packs

	published, droppedTotal prometheus.Counter
	done                    chan struct{}
}

// NewPublisher returns a publisher to js. Start it with Run.
func NewPublisher(js jetstream.JetStream, o PublisherOptions) *Publisher {
	o = o.withDefaults()
	labels := prometheus.Labels{"publisher": o.Name}
	p := &Publisher{js: js, o: o, kick: make(chan struct{}, 1), done: make(chan struct{}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_events_published_total",
			Help: "Events published by an in-memory publisher (access records).", ConstLabels: labels}),
		droppedTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_events_dropped_total",
			Help: "Events an in-memory publisher dropped because its buffer was full (NATS away too long).", ConstLabels: labels}),
	}
	if o.Metrics != nil {
		for _, c := range []prometheus.Collector{p.published, p.droppedTotal} {
			_ = o.Metrics.Register(c)
		}
	}
	return p
}

// Later is an event built only when it is published: its Event is called
// once, on the publisher's goroutine, so that whoever queues it (a call
// being answered) does not pay for the encoding.
type Later interface {
	Event() Event
}

// An Appender is a Later that writes its payload at the end of a buffer
// the publisher passes: the events the publisher builds at once share one
// array, reused once they are all published, instead of one allocation
// each. AppendEvent returns the event, whose Payload is the bytes it
// appended (capped at their end), and the buffer (grown if needed).
type Appender interface {
	Later
	AppendEvent(buf []byte) (Event, []byte)
}

// maxArena bounds the payload buffer a publisher keeps for its next events
// (a build after a long outage may have grown it far past a batch's).
const maxArena = 1 << 20

// Add queues ev; it reports false when the buffer is full and ev was
// dropped. It never blocks on NATS.
func (p *Publisher) Add(ev Event) bool {
	return p.add(ev, nil)
}

// AddLater queues an event that the publisher builds when it publishes
// it (after the events queued before it was built, in order among those
// queued with AddLater); it reports false when the buffer is full and the
// event was dropped. It never blocks on NATS.
func (p *Publisher) AddLater(l Later) bool {
	return p.add(Event{}, l)
}

func (p *Publisher) add(ev Event, l Later) bool {
	p.mu.Lock()
	if p.pending() >= p.o.Buffer {
		p.dropped++
		p.mu.Unlock()
		p.droppedTotal.Inc()
		return false
	}
	if l != nil {
		p.later = append(p.later, l)
	} else {
		p.queue = append(p.queue, ev)
	}
	full := p.pending() >= p.o.Batch
	p.mu.Unlock()
	if full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// pending counts the queued events (p.mu held).
func (p *Publisher) pending() int { return len(p.queue) + len(p.later) + p.building }

// Pending is the number of queued events.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending()
}

// build turns the events queued with AddLater into events at the end of
// the queue (once each: an event keeps its id however often it is tried).
func (p *Publisher) build() {
	p.mu.Lock()
	later := p.later
	p.later = nil
	p.building = len(later)
	// An empty queue holds no event built into the arena: all of them
	// were published (and their messages hold copies).
	arena := p.arena[:0]
	if len(p.queue) > 0 {
		arena = make([]byte, 0, cap(p.arena))
	}
	p.mu.Unlock()
	if len(later) == 0 {
		return
	}
	evs := p.built[:0]
	for _, l := range later {
		if a, ok := l.(Appender); ok {
			var ev Event
			ev, arena = a.AppendEvent(arena)
			evs = append(evs, ev)
			continue
		}
		evs = append(evs, l.Event())
	}
	p.arena = nil
	if cap(arena) <= maxArena {
		p.arena = arena
	}
	p.mu.Lock()
	p.queue = append(p.queue, evs...)
	p.building = 0
	p.mu.Unlock()
	clear(evs) // the queue holds them now
	p.built = evs[:0]
}

// Run publishes until ctx ends, then publishes what is still queued for at
// most drain (events queued after that are lost; they are counted).
func (p *Publisher) Run(ctx context.Context, drain time.Duration) {
	defer close(p.done)
	t := time.NewTicker(p.o.FlushEvery)
	defer t.Stop()
	backoff := p.o.FlushEvery
	lastWarn := time.Time{}
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), drain)
			for p.Pending() > 0 && dctx.Err() == nil {
				if err := p.flush(dctx); err != nil {
					break
				}
			}
			cancel()
			if n := p.Pending(); n > 0 {
				p.o.Logger.Warn("events not published at stop", zap.String("publisher", p.o.Name), zap.Int("events", n))
			}
			return
		case <-t.C:
		case <-p.kick:
		}
		err := p.flush(ctx)
		p.mu.Lock()
		dropped := p.dropped
		if dropped > 0 && time.Since(lastWarn) > time.Minute {
			p.dropped = 0
		}
		p.mu.Unlock()
		if dropped > 0 && time.Since(lastWarn) > time.Minute {
			lastWarn = time.Now()
			p.o.Logger.Warn("event buffer full: events dropped (NATS away?)", zap.String("publisher", p.o.Name),
				zap.Int64("dropped", dropped), zap.Int("buffer", p.o.Buffer))
		}
		if err != nil && ctx.Err() == nil {
			p.o.Logger.Debug("events not published yet, retrying", zap.String("publisher", p.o.Name), zap.Error(err))
			sleepCtx(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = p.o.FlushEvery
	}
}

// Done is closed when Run has returned.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// flush publishes the queue batch by batch; published events leave the
// queue, the others stay (in order) for the next try.
func (p *Publisher) flush(ctx context.Context) error {
	for {
		p.build()
		p.mu.Lock()
		n := min(len(p.queue), p.o.Batch)
		batch := p.queue[:n:n]
		head := p.queue[:0] // the queue's array, reused once it is all published
		p.mu.Unlock()
		if n == 0 {
			return nil
		}
		acked, ok, err := p.publish(ctx, batch)
		p.mu.Lock()
		// the batch is still the queue's head (the queue only grew at its end)
		rest := p.queue[n:]
		if ok == n {
			p.queue = rest
		} else {
			keep := make([]Event, 0, n-ok+len(rest))
			for i, ev := range batch {
				if !acked[i] {
					keep = append(keep, ev)
				}
			}
			p.queue = append(keep, rest...)
		}
		if len(p.queue) == 0 {
			// Nothing kept a reference to the published events (their
			// messages hold copies or the payloads): the array serves the
			// next events, unless a long outage grew it.
			p.queue = nil
			if ok == n && cap(head) <= 4*p.o.Batch {
				clear(batch)
				p.queue = head
			}
		}
		p.mu.Unlock()
		p.published.Add(float64(ok))
		if err != nil {
			return err
		}
	}
}

// unit is one message of a batch: the indexes of its events in the batch.
type unit []int

// units splits a batch into its messages: one per event, or (Pack) packs
// of one subject each, in the order of their first event, each keeping the
// order of its events.
func (p *Publisher) units(batch []Event) []unit {
	out := make([]unit, 0, len(batch)/p.o.Pack+1)
	if p.o.Pack <= 1 {
		for i := range batch {
			out = append(out, unit{i})
		}
		return out
	}
	open := map[string]int{} // subject -> its pack in out still open
	size := make([]int, 0, cap(out))
	for i, ev := range batch {
		k, ok := open[ev.Subject]
		evSize := len(ev.ID) + len(ev.Type) + len(ev.Payload) + 32
		if !ok || len(out[k]) >= p.o.Pack || size[k]+evSize > maxPackBytes {
			k = len(out)
			out = append(out, make(unit, 0, p.o.Pack))
			size = append(size, 0)
			open[ev.Subject] = k
		}
		out[k] = append(out[k], i)
		size[k] += evSize
	}
	return out
}

// maxPacksKept is the most pack buffers a publisher keeps for reuse.
const maxPacksKept = 32

// message is the message of unit u of batch and its message id. Its data
// never shares the events' arrays (the publisher reuses them once the
// events are published, and the client may send a message again after
// that); a pack's data comes from the publisher's kept buffers.
func (p *Publisher) message(batch []Event, u unit) (*nats.Msg, string) {
	if len(u) == 1 {
		ev := batch[u[0]]
		msg := Msg(ev)
		msg.Data = bytes.Clone(ev.Payload)
		return msg, ev.ID
	}
	var evs []Event
	if u[len(u)-1]-u[0] == len(u)-1 { // in order, one after another: the usual pack
		evs = batch[u[0] : u[0]+len(u)]
	} else {
		evs = make([]Event, len(u))
		for j, i := range u {
			evs[j] = batch[i]
		}
	}
	var buf []byte
	if n := len(p.packs); n > 0 {
		buf, p.packs = p.packs[n-1], p.packs[:n-1]
	}
	return packMsgInto(buf, evs), PackID(evs[0].ID, len(evs))
}

// keepPack keeps the data of an acknowledged pack for the next packs (the
// client does not send an acknowledged message again).
func (p *Publisher) keepPack(msg *nats.Msg) {
	if msg == nil || msg.Header.Get(HeaderPack) == "" || len(p.packs) >= maxPacksKept || cap(msg.Data) > 2*maxPackBytes {
		return
	}
	p.packs = append(p.packs, msg.Data[:0])
}

// publish publishes batch asynchronously and returns which of its events
// were acknowledged and how many (the rest is tried again).
func (p *Publisher) publish(ctx context.Context, batch []Event) ([]bool, int, error) {
	units := p.units(batch)
	futures := make([]jetstream.PubAckFuture, 0, len(units))
	var firstErr error
	for _, u := range units {
		msg, id := p.message(batch, u)
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
		if err != nil {
			firstErr = fmt.Errorf("events: publish %s to %s: %w", id, msg.Subject, err)
			break
		}
		futures = append(futures, f)
	}
	timer := time.NewTimer(p.o.PublishTimeout)
	defer timer.Stop()
	acked := make([]bool, len(batch))
	ok := 0
	for k, f := range futures {
		var err error
		select {
		case <-f.Ok():
		case err = <-f.Err():
		case <-timer.C:
			err = errors.New("no ack in time")
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			ev := batch[units[k][0]]
			return acked, ok, fmt.Errorf("events: publish %s to %s: %w", ev.ID, ev.Subject, err)
		}
		for _, i := range units[k] {
			acked[i] = true
		}
		ok += len(units[k])
		p.keepPack(f.Msg())
	}
	return acked, ok, firstErr
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// DroppedCounter is the counter of dropped events (tests).
func (p *Publisher) DroppedCounter() prometheus.Counter { return p.droppedTotal }
