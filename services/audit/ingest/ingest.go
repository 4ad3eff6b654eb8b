// Package ingest feeds the audit log from the JetStream AUDIT stream: a
// durable pull consumer fetches events in batches, the log stores each
// batch in one transaction (skipping event ids it already holds), and only
// then are the messages acknowledged. A crash at any point loses nothing
// (unacknowledged messages are delivered again) and doubles nothing (a
// redelivered event's id is already stored).
package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/giveway"
	"github.com/uias/uias/services/audit"
)

// Durable is the name of the audit component's consumer on AUDIT.
const Durable = "audit"

// Options configure an Ingester.
type Options struct {
	// Batch is the most events stored in one transaction (default 2000:
	// bigger transactions write fewer pages per record).
	Batch int
	// MaxWait is how long a fetch waits for a full batch (default 500ms).
	MaxWait time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before it
	// delivers a message again (default 30s).
	AckWait time.Duration
	// StreamMaxAge, when positive, is applied as the AUDIT stream's
	// retention (events wait that long for the audit component). 0 leaves
	// the stream as it is.
	StreamMaxAge time.Duration
	Logger       *zap.Logger
	Metrics      prometheus.Registerer
	// GiveWay, when set, pauses the loop before each fetch while logins
	// wait for a password hash worker (at most its MaxPause a fetch): the
	// events wait in the stream, and are then stored in fuller batches.
	GiveWay *giveway.Signal
	// AfterAppend, for tests, runs after a batch is stored and before its
	// messages are acknowledged.
	AfterAppend func(res audit.AppendResult)
}

// Ingester is the consumer loop.
type Ingester struct {
	js  jetstream.JetStream
	log *audit.Log
	o   Options

	stored, duplicates prometheus.Counter
	failures           prometheus.Counter

	// fetchN is how many messages the next fetch asks for (see once).
	fetchN int

	// busy is held while a batch is fetched and stored; paused (under
	// busy) stops the loop until resume is closed (Pause, Resume).
	busy   sync.Mutex
	paused bool
	resume chan struct{}
}

// New returns an ingester of js's AUDIT stream into l.
func New(js jetstream.JetStream, l *audit.Log, o Options) *Ingester {
	if o.Batch <= 0 {
		o.Batch = 2000
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 500 * time.Millisecond
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	in := &Ingester{js: js, log: l, o: o, fetchN: max(1, o.Batch/events.MaxPack),
		stored: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_records_stored_total",
			Help: "Audit records appended to the log."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_events_duplicate_total",
			Help: "AUDIT events delivered again whose record was already stored (skipped)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_append_failures_total",
			Help: "Batches the log could not store (retried)."}),
	}
	if o.Metrics != nil {
		for _, c := range []prometheus.Collector{in.stored, in.duplicates, in.failures} {
			_ = o.Metrics.Register(c)
		}
	}
	return in
}

// ConsumerConfig is the durable consumer the ingester uses.
func (in *Ingester) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       Durable,
		Description:   "UIAS audit component: stores every AUDIT event in the audit log",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       in.o.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 4 * in.o.Batch,
		FilterSubject: events.SubjectsAudit,
	}
}

// Run consumes until ctx ends. It waits (retrying) for the stream, then
// stores batch after batch; between busy periods it signs the checkpoint
// that is due by time.
func (in *Ingester) Run(ctx context.Context) error {
	cons, err := in.consumer(ctx)
	if err != nil {
		return err
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		in.o.GiveWay.Pause(ctx)
		in.busy.Lock()
		if in.paused {
			resume := in.resume
			in.busy.Unlock()
			select {
			case <-ctx.Done():
			case <-resume:
			}
			continue
		}
		n, err := in.once(ctx, cons)
		in.busy.Unlock()
		switch {
		case ctx.Err() != nil:
		case err != nil:
			in.failures.Inc()
			in.o.Logger.Warn("audit ingest: batch not stored, retrying", zap.Error(err))
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		case n == 0:
			if _, err := in.log.CheckpointIfDue(ctx); err != nil && ctx.Err() == nil {
				in.o.Logger.Warn("audit checkpoint not signed", zap.Error(err))
			}
		}
		backoff = 100 * time.Millisecond
	}
	return ctx.Err()
}

// Pause stops the ingester after the batch it is storing (it returns when
// that is stored): events wait in the stream until Resume. Benchmarks use
// it to measure the serving path with the records published but stored
// outside the measurement (as when audit runs in pods of its own).
func (in *Ingester) Pause() {
	in.busy.Lock()
	defer in.busy.Unlock()
	if !in.paused {
		in.paused, in.resume = true, make(chan struct{})
	}
}

// Resume restarts a paused ingester.
func (in *Ingester) Resume() {
	in.busy.Lock()
	defer in.busy.Unlock()
	if in.paused {
		in.paused = false
		close(in.resume)
	}
}

// consumer creates (or updates) the durable consumer, retrying until the
// stream exists, and applies the stream retention.
func (in *Ingester) consumer(ctx context.Context) (jetstream.Consumer, error) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		c, err := in.js.CreateOrUpdateConsumer(ctx, events.StreamAudit, in.ConsumerConfig())
		if err == nil {
			in.retention(ctx)
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			in.o.Logger.Warn("audit ingest: consumer not ready, retrying", zap.Error(err))
		}
		sleep(ctx, delay)
	}
}

// retention sets the AUDIT stream's max age to StreamMaxAge.
func (in *Ingester) retention(ctx context.Context) {
	if in.o.StreamMaxAge <= 0 {
		return
	}
	s, err := in.js.Stream(ctx, events.StreamAudit)
	if err != nil {
		in.o.Logger.Warn("audit ingest: cannot read the AUDIT stream to set its retention", zap.Error(err))
		return
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxAge == in.o.StreamMaxAge {
		return
	}
	cfg.MaxAge = in.o.StreamMaxAge
	if _, err := in.js.UpdateStream(ctx, cfg); err != nil {
		in.o.Logger.Warn("audit ingest: cannot set the AUDIT stream retention (audit.stream_max_age); it keeps its own setting",
			zap.Duration("stream_max_age", in.o.StreamMaxAge), zap.Error(err))
		return
	}
	in.o.Logger.Info("AUDIT stream retention set", zap.Duration("max_age", in.o.StreamMaxAge))
}

// once fetches one batch, stores it and acknowledges it; it returns the
// number of messages fetched. A message may be a pack of many events
// (events.PackMsg): the fetch asks for as many messages as, by the packs
// of the last fetch, hold about Batch records, and the records are stored
// Batch at a time; the messages are acknowledged once all are stored.
func (in *Ingester) once(ctx context.Context, cons jetstream.Consumer) (int, error) {
	batch, err := cons.Fetch(in.fetchN, jetstream.FetchMaxWait(in.o.MaxWait))
	if err != nil {
		return 0, fmt.Errorf("fetch: %w", err)
	}
	var msgs []jetstream.Msg
	recs := make([]audit.Record, 0, in.o.Batch)
	most := 1 // the most records of one message
	for m := range batch.Messages() {
		msgs = append(msgs, m)
		n := len(recs)
		recs = AppendRecords(recs, m)
		most = max(most, len(recs)-n)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && len(msgs) == 0 {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			return 0, nil
		}
		return 0, fmt.Errorf("fetch: %w", err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	in.fetchN = max(1, in.o.Batch/most)
	for len(recs) > 0 {
		chunk := recs[:min(len(recs), in.o.Batch)]
		recs = recs[len(chunk):]
		res, err := in.log.Append(ctx, chunk)
		if err != nil {
			// what was stored is skipped when delivered again
			for _, m := range msgs {
				_ = m.NakWithDelay(time.Second)
			}
			return len(msgs), err
		}
		in.stored.Add(float64(res.Added))
		in.duplicates.Add(float64(res.Duplicates))
		if in.o.AfterAppend != nil {
			in.o.AfterAppend(res)
		}
	}
	for _, m := range msgs {
		_ = m.Ack()
	}
	return len(msgs), nil
}

// Record makes the audit record of an AUDIT message that carries one event
// (the first of a pack; see Records).
func Record(m jetstream.Msg) audit.Record { return AppendRecords(nil, m)[0] }

// Records makes the audit records of an AUDIT message: one, or one per
// event of a pack (events.PackMsg).
func Records(m jetstream.Msg) []audit.Record { return AppendRecords(nil, m) }

// AppendRecords appends the audit records of an AUDIT message to recs. A
// message without an event id (not published by the outbox relay) is
// identified by its stream sequence, so it too is stored once; a pack that
// cannot be read is stored as one record with its data (as a malformed
// payload), identified so too.
func AppendRecords(recs []audit.Record, m jetstream.Msg) []audit.Record {
	evs, err := events.EventsFromMsg(m)
	if len(evs) == 0 { // an unreadable pack
		evs = []events.Event{{Subject: m.Subject(), Type: "pack", Payload: m.Data()}}
	}
	var md *jetstream.MsgMetadata
	meta := func() *jetstream.MsgMetadata {
		if md == nil {
			md, _ = m.Metadata()
			if md == nil {
				md = &jetstream.MsgMetadata{}
			}
		}
		return md
	}
	for _, ev := range evs {
		if ev.ID == "" {
			if s := meta().Sequence.Stream; s > 0 {
				ev.ID = "js:" + strconv.FormatUint(s, 10)
			}
		}
		if ev.Time.IsZero() || err != nil {
			if t := meta().Timestamp; !t.IsZero() {
				ev.Time = t
			}
		}
		recs = append(recs, audit.FromEvent(ev))
	}
	return recs
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
