package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
)

// AlertSubjectPrefix: alerts are published on AlertSubjectPrefix + kind
// (uias.alerts.audit.impossible_travel, ...).
const AlertSubjectPrefix = "uias.alerts.audit."

// WebhookOptions configure the alert webhook.
type WebhookOptions struct {
	// URL receives each alert as a signed JSON POST ("": no webhook).
	URL    string
	Secret []byte
	// Attempts per alert (default 5), the first retry after Backoff
	// (default 1s), doubling up to MaxBackoff (default 1m); Timeout bounds
	// one attempt (default 10s).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration
	// Queue is how many alerts wait for the webhook (default 10000).
	Queue  int
	Client *http.Client
}

// Notifier sends alerts: on NATS at once, to the webhook through a queue
// with retries. An alert the webhook does not take after every attempt,
// or that finds the queue full, is logged as an error with its id and
// counted (it was already published on NATS).
type Notifier struct {
	publish func(subject string, data []byte) error
	wh      WebhookOptions
	log     *zap.Logger
	queue   chan queued
	now     func() time.Time

	sent, published, failed prometheus.Counter
}

type queued struct {
	id   string
	body []byte
}

// NewNotifier returns a notifier publishing with publish (nil: no NATS)
// and posting to wh.URL; reg registers its metrics (nil: none).
func NewNotifier(publish func(subject string, data []byte) error, wh WebhookOptions, log *zap.Logger, reg prometheus.Registerer) *Notifier {
	if wh.Attempts <= 0 {
		wh.Attempts = 5
	}
	if wh.Backoff <= 0 {
		wh.Backoff = time.Second
	}
	if wh.MaxBackoff <= 0 {
		wh.MaxBackoff = time.Minute
	}
	if wh.Timeout <= 0 {
		wh.Timeout = 10 * time.Second
	}
	if wh.Queue <= 0 {
		wh.Queue = 10000
	}
	// No redirect is followed (as the provisioning transports, ADR 0038):
	// Go would send the signature headers and, after a 307/308, the alert
	// (logins, addresses) to whatever host the answer names. A redirect
	// fails the attempt (post), retried as other failures.
	c := http.Client{}
	if wh.Client != nil {
		c = *wh.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	wh.Client = &c
	if log == nil {
		log = zap.NewNop()
	}
	n := &Notifier{publish: publish, wh: wh, log: log, queue: make(chan queued, wh.Queue), now: time.Now,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_alerts_published_total",
			Help: "Audit alerts (impossible travel, lockout bursts, unauthorised addresses) published on NATS."}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_alerts_webhook_sent_total",
			Help: "Audit alerts the alert webhook accepted."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_alerts_webhook_failed_total",
			Help: "Audit alerts the alert webhook did not take after every attempt, or that found its queue full (logged with their id)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{n.published, n.sent, n.failed} {
			_ = reg.Register(c)
		}
	}
	return n
}

// Send publishes a on NATS and queues it for the webhook. A NATS error is
// returned (the caller tries again later); the webhook never blocks it.
func (n *Notifier) Send(a Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if n.publish != nil {
		if err := n.publish(AlertSubjectPrefix+a.Kind, body); err != nil {
			return fmt.Errorf("publish alert: %w", err)
		}
		n.published.Inc()
	}
	if n.wh.URL == "" {
		return nil
	}
	select {
	case n.queue <- queued{id: a.ID, body: body}:
	default:
		n.failed.Inc()
		n.log.Error("audit alert NOT sent to the webhook: its queue is full (the webhook is down or slow); the alert was published on NATS",
			zap.String("alert", a.ID), zap.String("kind", a.Kind))
	}
	return nil
}

// Run posts queued alerts to the webhook until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-n.queue:
			n.deliver(ctx, q)
		}
	}
}

func (n *Notifier) deliver(ctx context.Context, q queued) {
	wait := n.wh.Backoff
	var err error
	for attempt := 1; attempt <= n.wh.Attempts; attempt++ {
		if err = n.post(ctx, q); err == nil {
			n.sent.Inc()
			return
		}
		if ctx.Err() != nil {
			return
		}
		if attempt < n.wh.Attempts {
			n.log.Warn("audit alert webhook failed; retrying", zap.String("alert", q.id), zap.Int("attempt", attempt),
				zap.Duration("retry_in", wait), zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, n.wh.MaxBackoff)
		}
	}
	n.failed.Inc()
	n.log.Error("audit alert NOT delivered to the webhook after every attempt; it was published on NATS",
		zap.String("alert", q.id), zap.Int("attempts", n.wh.Attempts), zap.Error(err))
}

// post makes one attempt: a JSON POST signed with HMAC-SHA256 over the
// timestamp and the body, as provisioning webhooks are.
func (n *Notifier) post(ctx context.Context, q queued) error {
	ctx, cancel := context.WithTimeout(ctx, n.wh.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.wh.URL, bytes.NewReader(q.body))
	if err != nil {
		return err
	}
	ts := n.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(crypto.WebhookTimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(crypto.WebhookSignatureHeader, crypto.WebhookSignature(n.wh.Secret, ts, q.body))
	req.Header.Set(crypto.WebhookDeliveryHeader, q.id)
	resp, err := n.wh.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return fmt.Errorf("the webhook redirected (HTTP %d) to %s: redirects are not followed (the signed alert would go "+
			"along): set audit.analytics.alert_webhook_url to the right URL", resp.StatusCode, redirectTarget(resp.Header.Get("Location")))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the webhook answered HTTP %d: %q", resp.StatusCode, snippet)
	}
	return nil
}

// redirectTarget is a redirect's Location as its scheme, host and path (no
// query: it may hold anything).
func redirectTarget(location string) string {
	if location == "" {
		return "no Location"
	}
	u, err := url.Parse(location)
	if err != nil {
		return "an unreadable Location"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
