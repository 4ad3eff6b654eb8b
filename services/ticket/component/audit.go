package component

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
)

// auditQueue publishes the ticket component's audit events to the AUDIT
// stream in the background, in order, each with its id as the message id
// (a retried publish is deduplicated). Ticket records live in NATS, not in
// a database whose outbox could carry their events; the queue holds events
// while NATS is away and retries, and drops (counting them, with a log
// line) only when full.
type auditQueue struct {
	js      jetstream.JetStream
	log     *zap.Logger
	ch      chan events.Later // built on the queue's goroutine, once each
	dropped atomic.Int64
}

// ready is an event built already.
type ready events.Event

func (r ready) Event() events.Event { return events.Event(r) }

const auditQueueLen = 10000

func newAuditQueue(js jetstream.JetStream, log *zap.Logger) *auditQueue {
	return &auditQueue{js: js, log: log, ch: make(chan events.Later, auditQueueLen)}
}

// Publish implements ticket.AuditSink; it never blocks.
func (q *auditQueue) Publish(ev events.Event) { q.PublishLater(ready(ev)) }

// PublishLater implements ticket.LaterSink: the event is built when it is
// published; it never blocks.
func (q *auditQueue) PublishLater(l events.Later) {
	select {
	case q.ch <- l:
	default:
		if q.dropped.Add(1)%1000 == 1 {
			q.log.Error("audit queue full: audit events dropped", zap.Int64("dropped", q.dropped.Load()))
		}
	}
}

// run publishes until ctx ends, then drains what it can for a moment.
func (q *auditQueue) run(ctx context.Context) {
	batch := make([]events.Event, 0, 256)
	for {
		select {
		case l := <-q.ch:
			batch = append(batch[:0], l.Event())
		fill:
			for len(batch) < cap(batch) {
				select {
				case l := <-q.ch:
					batch = append(batch, l.Event())
				default:
					break fill
				}
			}
			q.send(ctx, batch)
		case <-ctx.Done():
			end, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			for {
				select {
				case l := <-q.ch:
					if len(q.publish(end, []events.Event{l.Event()})) > 0 {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// send publishes a batch, retrying what NATS did not take with back-off.
func (q *auditQueue) send(ctx context.Context, batch []events.Event) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		batch = q.publish(ctx, batch)
		if len(batch) == 0 || ctx.Err() != nil {
			return
		}
		q.log.Warn("audit events not published yet, retrying", zap.Int("events", len(batch)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// publish sends the events asynchronously and waits for their acks; it
// returns those not acknowledged.
func (q *auditQueue) publish(ctx context.Context, evs []events.Event) []events.Event {
	futures := make([]jetstream.PubAckFuture, len(evs))
	var failed []events.Event
	for i, ev := range evs {
		msg := nats.NewMsg(ev.Subject)
		msg.Data = ev.Payload
		msg.Header.Set(events.HeaderType, ev.Type)
		msg.Header.Set(events.HeaderTime, ev.Time.UTC().Format(time.RFC3339Nano))
		f, err := q.js.PublishMsgAsync(msg, jetstream.WithMsgID(ev.ID))
		if err != nil {
			failed = append(failed, ev)
			continue
		}
		futures[i] = f
	}
	wait := time.NewTimer(5 * time.Second)
	defer wait.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if err != nil {
				failed = append(failed, evs[i])
			}
		case <-wait.C:
			return append(failed, evs[i:]...)
		case <-ctx.Done():
			return append(failed, evs[i:]...)
		}
	}
	return failed
}
