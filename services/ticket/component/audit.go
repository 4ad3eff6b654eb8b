package component

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
)

// auditDrain bounds how long a stopping component keeps publishing the
// audit events still queued.
const auditDrain = 2 * time.Second

// auditSink publishes the ticket component's audit events to the AUDIT
// stream through an in-memory events.Publisher (ticket records live in
// NATS, not in a database whose outbox could carry their events): a call
// only queues its events, which the publisher builds (events.Later) and
// publishes in batches on its own goroutine, in packs as the access
// records are (up to events.MaxPack events of one subject per message, its
// id made of the first event's id and the count: a retried pack is
// deduplicated; ADR 0007 amendment). It holds events while NATS is away
// and drops them (counted, logged) only when its buffer is full.
type auditSink struct{ p *events.Publisher }

func newAuditSink(js jetstream.JetStream, log *zap.Logger) auditSink {
	return auditSink{p: events.NewPublisher(js, events.PublisherOptions{Name: "ticket-audit", Pack: events.MaxPack, Logger: log})}
}

// run publishes until ctx ends, then drains for a moment.
func (a auditSink) run(ctx context.Context) { a.p.Run(ctx, auditDrain) }

// Publish implements ticket.AuditSink; it never blocks.
func (a auditSink) Publish(ev events.Event) { a.p.Add(ev) }

// PublishLater implements ticket.LaterSink: the event is built when it is
// published; it never blocks.
func (a auditSink) PublishLater(l events.Later) { a.p.AddLater(l) }
