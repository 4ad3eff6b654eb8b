package component

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/giveway"
	"github.com/uias/uias/services/audit/analytics"
	"github.com/uias/uias/services/audit/ingest"
)

// AlertsDurable is the durable consumer on AUDIT that raises alerts (it
// starts with the events published after it is first created).
const AlertsDurable = "audit-alerts"

// alertSubjects are the AUDIT subjects the alert consumer reads: the
// identity component's logins and lockouts.
func alertSubjects() []string {
	var out []string
	for _, api := range append([]string{analytics.APILockout}, analytics.LoginAPIs...) {
		out = append(out, "uias.audit.identity."+api)
	}
	// every component's refused callers
	return append(out, "uias.audit.*."+analytics.APICallerDenied)
}

// RunAlerts consumes the AUDIT stream through the durable consumer
// AlertsDurable (created to start at since) until ctx ends, sending the
// alerts det raises through n (whose Run must be running). The component
// runs it; it is exported for the test that runs it with the audit user of
// the deployed NATS configuration.
func RunAlerts(ctx context.Context, js jetstream.JetStream, det *analytics.Detector, n *analytics.Notifier, log *zap.Logger, since time.Time) {
	(&alerter{js: js, det: det, n: n, log: log, since: since}).run(ctx)
}

// alerter raises alerts from the AUDIT stream as events arrive.
type alerter struct {
	js  jetstream.JetStream
	det *analytics.Detector
	n   *analytics.Notifier
	log *zap.Logger
	// since: the first consumer delivers the events from then on.
	since time.Time
	// giveWay pauses the loop before each fetch while logins wait for a
	// hash worker (the events wait in the stream; nil: never).
	giveWay *giveway.Signal
}

// run consumes until ctx ends: for each event the detector's alerts are
// sent, then the event is acknowledged (an alert NATS did not take is
// tried again with the event).
func (a *alerter) run(ctx context.Context) {
	var cons jetstream.Consumer
	for delay := 100 * time.Millisecond; ctx.Err() == nil; delay = min(2*delay, 5*time.Second) {
		var err error
		if cons, err = a.consumer(ctx); err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) && ctx.Err() == nil {
			a.log.Warn("audit alerts: consumer not ready, retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	for ctx.Err() == nil {
		a.giveWay.Pause(ctx)
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("audit alerts: fetch failed, retrying", zap.Error(err))
				time.Sleep(time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			a.handle(ctx, m)
		}
	}
}

// consumer returns the durable consumer, created on the first start to
// deliver the events from the component's start on (not the stream's
// history: old logins raise no alerts).
func (a *alerter) consumer(ctx context.Context) (jetstream.Consumer, error) {
	c, err := a.js.Consumer(ctx, events.StreamAudit, AlertsDurable)
	if err == nil {
		// made by an older version: it gets the subjects of this one's
		// alerts, and goes on from where it was
		cfg := c.CachedInfo().Config
		if want := alertSubjects(); !slices.Equal(cfg.FilterSubjects, want) {
			cfg.FilterSubject, cfg.FilterSubjects = "", want
			return a.js.UpdateConsumer(ctx, events.StreamAudit, cfg)
		}
		return c, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	start := a.since
	return a.js.CreateConsumer(ctx, events.StreamAudit, jetstream.ConsumerConfig{
		Durable:        AlertsDurable,
		Description:    "UIAS audit component: raises alerts (impossible travel, lockout bursts, unauthorised addresses, refused callers)",
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxDeliver:     -1,
		MaxAckPending:  1000,
		FilterSubjects: alertSubjects(),
	})
}

func (a *alerter) handle(ctx context.Context, m jetstream.Msg) {
	var alerts []analytics.Alert
	for _, rec := range ingest.Records(m) { // one, or a pack's
		as, err := a.det.Observe(ctx, &rec)
		if err != nil {
			a.log.Warn("audit alerts: event not checked, retrying", zap.String("event", rec.EventID), zap.Error(err))
			_ = m.NakWithDelay(time.Second)
			return
		}
		alerts = append(alerts, as...)
	}
	for _, al := range alerts {
		if err := a.n.Send(al); err != nil {
			a.log.Warn("audit alerts: alert not published, retrying with its event", zap.String("alert", al.ID), zap.Error(err))
			_ = m.NakWithDelay(time.Second)
			return
		}
		a.log.Info("audit alert raised", zap.String("alert", al.ID), zap.String("kind", al.Kind))
	}
	_ = m.Ack()
}
