package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
	usync "github.com/uias/uias/services/sync"
)

// Transport delivers items to one business system.
type Transport interface {
	// Deliver makes the business system hold it (upsert) or not hold it
	// (delete). It must be idempotent: after a crash an item is delivered
	// again.
	Deliver(ctx context.Context, it Item) error
	Close() error
}

// Dialer builds the transport of a subscription.
type Dialer func(s *Subscription) (Transport, error)

// Options configure the Engine.
type Options struct {
	Store Store
	// JS reads the local CHANGES stream (nil: no immediate deliveries are
	// made from changes; batches still work).
	JS jetstream.JetStream
	// Dial builds transports by kind (webhook, scim, ldap, soap).
	Dial   map[string]Dialer
	Logger *zap.Logger
	// Metrics registers the engine's metrics (optional).
	Metrics prometheus.Registerer
	Now     func() time.Time
	// Timeout bounds one delivery (10s).
	Timeout time.Duration
	// RetryFirst and RetryMax bound the back-off between attempts (1s, 5m).
	RetryFirst, RetryMax time.Duration
	// MaxAttempts before a delivery is dead-lettered (10).
	MaxAttempts int
	// DeadLetterRetry puts a dead letter back in its queue this long
	// after it died, for one attempt (a failure makes it dead again, the
	// queue behind it held for that attempt only), so that a business system
	// down for longer than the retries last gets its changes once it is
	// back without anyone's `sync retry` (the maritime design's "retried
	// by timer until the sync succeeds"); each death still alerts. 0: dead
	// letters wait for a person.
	DeadLetterRetry time.Duration
	// Poll is how often idle workers and the scheduler look again (1s).
	Poll time.Duration
	// Views reads objects' current state by id, shaped as identity's
	// CHANGES data (identity's ViewService): the people, orgs and links of
	// an import, whose batched "imported" change carries ids only. nil:
	// imports are skipped (with a warning).
	Views func(ctx context.Context, entity string, ids []string) ([]View, error)
	// Alert is told of each dead letter (the component publishes an audit
	// event); nil: none.
	Alert func(ctx context.Context, s *Subscription, d Delivery)
	// LeaseTTL is how long a process's lease on a subscription's queue
	// lasts without renewal (30s, at least 3 × Timeout): another sync
	// process on the same database takes the queue over that long after
	// the holder was killed (at once when it stopped).
	LeaseTTL time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.RetryFirst <= 0 {
		o.RetryFirst = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = max(30*time.Second, 3*o.Timeout)
	}
	return o
}

// Engine projects the CHANGES stream, enqueues deliveries and runs one
// worker per subscription, so one slow or failing business system never
// holds back another.
type Engine struct {
	o Options
	// swept is when this engine last swept the grants' windows (only the
	// supervisor reads and writes it).
	swept time.Time
	// owner names this engine in the subscriptions' leases.
	owner string

	mu      sync.Mutex
	workers map[string]*worker
	// stopping are the workers of edited, disabled or removed
	// subscriptions that finish their delivery (up to one delivery
	// timeout) outside the lock; a subscription's new worker starts only
	// once its old one has ended, so no delivery is made twice.
	stopping  map[string]*worker
	finishing sync.WaitGroup
	kick      chan struct{}

	delivered, failed, dead, requeued *prometheus.CounterVec
	// requeuedAt is when reconcile last put dead letters back; warnedClear
	// the subscriptions (and versions) warned of delivering in clear.
	requeuedAt   time.Time
	warnedClear  map[string]time.Time
	storeErrors  *prometheus.CounterVec
	pending, lag *prometheus.GaugeVec
	latency      *prometheus.HistogramVec
}

type worker struct {
	sub    *Subscription
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}
	// stop ends the worker between two deliveries (an edit of its
	// subscription replaces it): cancelling it would cut a delivery the
	// business system may already have taken, which is then sent twice.
	stop atomic.Bool
}

// finish stops w between two deliveries and waits for it.
func (w *worker) finish() {
	w.stop.Store(true)
	select {
	case w.kick <- struct{}{}:
	default:
	}
	<-w.done
	w.cancel()
}

// New returns the engine; Run starts it.
func New(o Options) *Engine {
	o = o.withDefaults()
	e := &Engine{o: o, owner: ids.New(), workers: map[string]*worker{}, stopping: map[string]*worker{}, kick: make(chan struct{}, 1),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_provision_delivered_total",
			Help: "Deliveries made to business systems, by application."}, []string{"app"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_provision_failed_attempts_total",
			Help: "Delivery attempts that failed, by application."}, []string{"app"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_provision_dead_letters_total",
			Help: "Deliveries given up after the last retry (dead letters), by application."}, []string{"app"}),
		requeued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_provision_dead_letters_requeued_total",
			Help: "Dead letters put back in their queue by sync.provision.dead_letter_retry, by application."}, []string{"app"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "uias_sync_provision_queue_depth",
			Help: "Deliveries waiting, by subscription."}, []string{"subscription", "app"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "uias_sync_provision_lag_seconds",
			Help: "Age of the oldest delivery waiting, by subscription."}, []string{"subscription", "app"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_provision_store_errors_total",
			Help: "Reads and writes of the sync database that failed (the database down: deliveries wait, nothing is lost), by operation."},
			[]string{"op"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "uias_sync_provision_latency_seconds",
			Help:    "Time from a delivery's creation to its success, by application.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 3600}}, []string{"app"}),
	}
	if o.Metrics != nil {
		for _, c := range []prometheus.Collector{e.delivered, e.failed, e.dead, e.requeued, e.storeErrors, e.pending, e.lag, e.latency} {
			if err := o.Metrics.Register(c); err != nil {
				o.Logger.Warn("provisioning metrics not registered", zap.Error(err))
			}
		}
	}
	return e
}

// Kick wakes the supervisor and every worker (after a subscription or a
// batch was written).
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.workers {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Run projects changes and runs the workers until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if e.o.JS != nil {
		wg.Go(func() { e.project(ctx) })
	}
	e.supervise(ctx)
	e.mu.Lock()
	var ws []*worker
	for _, m := range []map[string]*worker{e.workers, e.stopping} {
		for _, w := range m {
			w.cancel()
			ws = append(ws, w)
		}
	}
	e.mu.Unlock()
	for _, w := range ws {
		<-w.done
	}
	e.finishing.Wait()
	wg.Wait()
}

// ---- projection of CHANGES ----

func (e *Engine) project(ctx context.Context) {
	for delay := e.o.RetryFirst; ctx.Err() == nil; {
		progressed, err := e.consume(ctx)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			delay = e.o.RetryFirst // a new outage starts from the first wait again
		}
		e.o.Logger.Warn("provisioning: projecting CHANGES failed; retrying", zap.Error(err), zap.Duration("in", delay))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

const projectBatch = 256

// consume projects CHANGES from the cursor on until an error; it reports
// whether it projected anything before.
func (e *Engine) consume(ctx context.Context) (progressed bool, _ error) {
	cur, err := e.o.Store.Cursor(ctx)
	if err != nil {
		e.storeErrors.WithLabelValues("project").Inc()
		return false, fmt.Errorf("reading the projection's cursor: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := e.o.JS.OrderedConsumer(cctx, events.StreamChanges, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: cur + 1})
	cancel()
	if err != nil {
		return false, fmt.Errorf("read stream %s: %w", events.StreamChanges, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * projectBatch))
	if err != nil {
		return false, fmt.Errorf("read stream %s: %w", events.StreamChanges, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return progressed, err
		}
		batch := []jetstream.Msg{msg}
		for len(batch) < projectBatch {
			m, err := it.Next(jetstream.NextMaxWait(5 * time.Millisecond))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		if err := e.projectBatch(ctx, batch); err != nil {
			return progressed, err
		}
		progressed = true
	}
}

// projected is one CHANGES message as projected: its stream sequence and
// the changes it stands for (none: not a change provisioning reads; an
// import: one per object).
type projected struct {
	seq     uint64
	changes []Change
}

func (e *Engine) projectBatch(ctx context.Context, batch []jetstream.Msg) error {
	ps := make([]projected, 0, len(batch))
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("CHANGES message without metadata: %w", err)
		}
		p := projected{seq: md.Sequence.Stream}
		if ev, err := events.EventFromMsg(m); err == nil && ev.ID != "" {
			c := Change{EventID: ev.ID, Subject: ev.Subject, Payload: ev.Payload, Seq: p.seq}
			if entity, ok := importOf(c.Subject); ok {
				// read before the transaction: the store is not held
				// while identity answers
				if p.changes, err = e.imported(ctx, entity, c); err != nil {
					return err
				}
			} else {
				p.changes = []Change{c}
			}
		}
		ps = append(ps, p)
	}
	added := 0
	var removed []string
	err := e.o.Store.InTx(ctx, func(tx Tx) error {
		added, removed = 0, nil
		if err := tx.Lock(); err != nil {
			return err
		}
		subs, err := tx.Subscriptions()
		if err != nil {
			return err
		}
		cur, err := tx.Cursor()
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.seq <= cur {
				continue
			}
			for _, c := range p.changes {
				if app := deletedApp(c); app != "" {
					// The application is gone: so are its subscriptions
					// (with their queues), before any later change is
					// projected for them.
					gone, err := tx.DeleteAppSubscriptions(app)
					if err != nil {
						return err
					}
					if len(gone) > 0 {
						subs = slices.DeleteFunc(subs, func(s *Subscription) bool { return s.App == app })
						removed = append(removed, gone...)
					}
					continue
				}
				n, err := Project(tx, subs, c, e.o.Now())
				if err != nil {
					return err
				}
				added += n
			}
			cur = p.seq
		}
		return tx.SetCursor(cur)
	})
	if err != nil {
		e.storeErrors.WithLabelValues("project").Inc()
		return fmt.Errorf("projecting changes into the sync database: %w", err)
	}
	if len(removed) > 0 {
		e.o.Logger.Info("provisioning: removed the subscriptions of a deleted application", zap.Strings("subscriptions", removed))
	}
	if added > 0 || len(removed) > 0 {
		e.Kick()
	}
	return nil
}

// deletedApp is the App_ID of the application c deletes (identity's
// app.deleted, or app.replica.deleted at a centre holding its replica),
// "" for any other change.
func deletedApp(c Change) string {
	if c.Subject != "uias.changes.identity.app.deleted" && c.Subject != "uias.changes.identity.app.replica.deleted" {
		return ""
	}
	var p struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(c.Payload, &p) != nil {
		return ""
	}
	return p.ID
}

// importBatch is how many objects of an import are read from identity in
// one call.
const importBatch = 500

// imported reads the objects of an import's batched change (ids only) from
// identity and returns one "created" change per object that still exists,
// under the import change's event id.
func (e *Engine) imported(ctx context.Context, entity string, c Change) ([]Change, error) {
	var p struct {
		Data struct {
			IDs []string `json:"ids"`
		} `json:"data"`
	}
	if json.Unmarshal(c.Payload, &p) != nil || len(p.Data.IDs) == 0 {
		return nil, nil
	}
	if e.o.Views == nil {
		e.o.Logger.Warn("provisioning: an import is not delivered (no identity to read its objects from)",
			zap.String("event", c.EventID), zap.Int("objects", len(p.Data.IDs)))
		return nil, nil
	}
	out := make([]Change, 0, len(p.Data.IDs))
	for chunk := range slices.Chunk(p.Data.IDs, importBatch) {
		vs, err := e.o.Views(ctx, entity, chunk)
		if err != nil {
			return nil, fmt.Errorf("reading the %d %ss of an import from identity: %w", len(chunk), entity, err)
		}
		for _, v := range vs {
			payload, err := json.Marshal(map[string]any{"id": v.ID, "data": v.Data})
			if err != nil {
				return nil, err
			}
			out = append(out, Change{EventID: c.EventID, Subject: usync.SubjectPrefix + "identity." + entity + ".created",
				Payload: payload, Seq: c.Seq})
		}
	}
	return out, nil
}

// importOf reports whether subject is an identity import's batched change
// (uias.changes.identity.<entity>.imported) and of which entity.
func importOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, usync.SubjectPrefix+"identity.")
	if !ok {
		return "", false
	}
	entity, op, ok := strings.Cut(rest, ".")
	return entity, ok && op == "imported"
}

// ---- batches ----

// EnqueueBatch enqueues the selection of each subscription in subs that
// passes f as one batch, and returns the batch id and how many deliveries
// it added.
func (e *Engine) EnqueueBatch(ctx context.Context, subs []*Subscription, f Filter) (string, int, error) {
	batchID := ids.New()
	n := 0
	err := e.o.Store.InTx(ctx, func(tx Tx) error {
		n = 0
		for _, s := range subs {
			k, err := EnqueueSelection(tx, s, f, batchID, e.o.Now())
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	e.Kick()
	return batchID, n, nil
}

// Initial enqueues the whole selection of s as its initial batch, unless
// one was enqueued already; it returns the batch id ("" when none was
// enqueued now) and how many deliveries it added. The batch is written in
// one transaction with its record, so a process stopped before it commits
// enqueues it again at the next start (the supervisor looks for enabled
// subscriptions without one), and one stopped after delivers the rest of
// the queue.
func (e *Engine) Initial(ctx context.Context, s *Subscription) (string, int, error) {
	batchID := ids.New()
	n := 0
	started := false
	err := e.o.Store.InTx(ctx, func(tx Tx) error {
		n = 0
		if err := tx.Lock(); err != nil {
			return err
		}
		ok, err := tx.StartInitial(s.ID, batchID, e.o.Now())
		if started = ok; err != nil || !ok {
			return err
		}
		n, err = EnqueueSelection(tx, s, Filter{}, batchID, e.o.Now())
		return err
	})
	if err != nil || !started {
		return "", 0, err
	}
	s.InitialBatch, s.LastBatchAt = batchID, e.o.Now()
	e.o.Logger.Info("provisioning: initial delivery of the selection enqueued", zap.String("subscription", s.ID),
		zap.String("app", s.App), zap.String("batch", batchID), zap.Int("deliveries", n))
	e.Kick()
	return batchID, n, nil
}

// scheduled enqueues the scheduled batch of s due at now, with its time,
// in one transaction, unless another process enqueued it since s was read
// (the recorded time moved: Tx.StartScheduled); it returns the batch id
// ("" when none was enqueued now) and how many deliveries it added.
func (e *Engine) scheduled(ctx context.Context, s *Subscription, now time.Time) (string, int, error) {
	batchID := ids.New()
	n := 0
	started := false
	err := e.o.Store.InTx(ctx, func(tx Tx) error {
		n = 0
		ok, err := tx.StartScheduled(s.ID, s.LastBatchAt, now)
		if started = ok; err != nil || !ok {
			return err
		}
		n, err = EnqueueSelection(tx, s, Filter{}, batchID, now)
		return err
	})
	if err != nil || !started {
		return "", 0, err
	}
	s.LastBatchAt = now
	e.Kick()
	return batchID, n, nil
}

// ---- supervisor and workers ----

func (e *Engine) supervise(ctx context.Context) {
	t := time.NewTicker(e.o.Poll)
	defer t.Stop()
	for {
		e.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.kick:
		}
	}
}

// reconcile starts a worker per enabled subscription (restarting it when
// the subscription changed), stops those of removed or disabled ones, runs
// the scheduled batches that are due and refreshes the queue metrics.
func (e *Engine) reconcile(ctx context.Context) {
	subs, err := e.o.Store.ListSubscriptions(ctx, "")
	if err != nil {
		if ctx.Err() == nil {
			e.storeErrors.WithLabelValues("subscriptions").Inc()
			e.o.Logger.Warn("provisioning: listing subscriptions failed", zap.Error(err))
		}
		return
	}
	want := map[string]*Subscription{}
	for _, s := range subs {
		if s.Enabled {
			want[s.ID] = s
		}
	}
	e.mu.Lock()
	for id, w := range e.workers {
		if s, ok := want[id]; !ok || !s.UpdatedAt.Equal(w.sub.UpdatedAt) {
			// Stopped between two deliveries, outside the lock: the
			// delivery it makes is not held to the others' changes, nor
			// they to it. The supervisor looks again once it has ended.
			delete(e.workers, id)
			e.stopping[id] = w
			e.finishing.Go(func() {
				w.finish()
				e.mu.Lock()
				if e.stopping[id] == w {
					delete(e.stopping, id)
				}
				e.mu.Unlock()
				select {
				case e.kick <- struct{}{}:
				default:
				}
			})
		}
	}
	for id, s := range want {
		if _, ok := e.workers[id]; ok {
			continue
		}
		if _, ok := e.stopping[id]; ok {
			continue // its old worker finishes a delivery first
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &worker{sub: s, cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1)}
		e.workers[id] = w
		go func() { defer close(w.done); e.work(wctx, w) }()
	}
	e.mu.Unlock()
	for _, s := range want {
		if s.InitialBatch == "" {
			if _, _, err := e.Initial(ctx, s); err != nil {
				e.o.Logger.Warn("provisioning: initial delivery not enqueued; tried again", zap.String("subscription", s.ID), zap.Error(err))
			}
		}
	}
	now := e.o.Now()
	for _, s := range want {
		if s.BatchDue(now) {
			if _, _, err := e.scheduled(ctx, s, now); err != nil {
				e.o.Logger.Warn("provisioning: scheduled batch failed", zap.String("subscription", s.ID), zap.Error(err))
			}
		}
	}
	e.sweepWindows(ctx, want, now)
	e.requeueDead(ctx, want, now)
	e.warnInClear(want)
	if q, err := e.o.Store.Queues(ctx); err == nil {
		for _, s := range subs {
			st := q[s.ID]
			e.pending.WithLabelValues(s.ID, s.App).Set(float64(st.Pending))
			e.lag.WithLabelValues(s.ID, s.App).Set(st.Lag(now).Seconds())
		}
	}
}

// warnInClear warns, once per subscription and edit, of an enabled one
// that delivers in clear to another machine (stored before the rule that
// refuses new ones: Subscription.CheckInClear).
func (e *Engine) warnInClear(subs map[string]*Subscription) {
	if e.warnedClear == nil {
		e.warnedClear = map[string]time.Time{}
	}
	for id, s := range subs {
		if !s.InClear() || e.warnedClear[id].Equal(s.UpdatedAt) {
			continue
		}
		e.warnedClear[id] = s.UpdatedAt
		e.o.Logger.Warn("provisioning: this subscription delivers people's data and the system's credentials in clear "+
			"(plain http:// or ldap:// to another machine): change its endpoint to https:// or ldaps://",
			zap.String("subscription", id), zap.String("app", s.App), zap.String("transport", s.Transport))
	}
}

// requeueDead puts the dead letters of subs whose automatic retry is due
// (Options.DeadLetterRetry) back in their queues, looking at most every
// half of it (and every minute at most).
func (e *Engine) requeueDead(ctx context.Context, subs map[string]*Subscription, now time.Time) {
	if e.o.DeadLetterRetry <= 0 || now.Sub(e.requeuedAt) < min(e.o.DeadLetterRetry/2, time.Minute) {
		return
	}
	e.requeuedAt = now
	var back int64
	for _, s := range subs {
		// one subscription at a time: the queue's index serves the query.
		// One attempt each: a delivery the system always refuses holds
		// the queue behind it for one attempt per dead_letter_retry, not a
		// whole round of retries (review sec22 M2)
		n, err := e.o.Store.Retry(ctx, DeliveryFilter{Subscription: s.ID, DueBy: now}, now, e.o.MaxAttempts-1)
		if err != nil {
			if ctx.Err() == nil {
				e.storeErrors.WithLabelValues("requeue").Inc()
				e.o.Logger.Warn("provisioning: putting dead letters back failed; tried again", zap.String("subscription", s.ID),
					zap.Error(err))
			}
			continue
		}
		if n > 0 {
			back += n
			e.requeued.WithLabelValues(s.App).Add(float64(n))
			e.o.Logger.Info("provisioning: dead letters put back in their queue (sync.provision.dead_letter_retry)",
				zap.String("subscription", s.ID), zap.String("app", s.App), zap.Int64("deliveries", n))
		}
	}
	if back > 0 {
		e.Kick()
	}
}

func (e *Engine) wait(ctx context.Context, w *worker, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-w.kick:
	}
	return true
}

// deliverBatch is how many due deliveries a worker reads at once, and the
// most whose outcomes it records in one transaction; recordEvery bounds how
// long outcomes wait to be recorded (and so how much a killed process
// delivers again after its restart).
const (
	deliverBatch = 64
	recordEvery  = 250 * time.Millisecond
)

// work delivers the subscription's queue in order. A failed delivery holds
// the subscription's later ones (they may be later states of the same
// object) until it succeeds or is dead-lettered; it never holds another
// subscription's.
//
// The queue is read a batch at a time and the outcomes of a batch are
// recorded together, in one transaction (each delivery's own row: status,
// attempts, latency, last error), so a business system is not held to one
// database commit per delivery. Nothing is recorded as delivered before it
// was: a process killed before the record delivers those deliveries again
// after its restart, which the transports make harmless (each delivery
// carries the object's current state; SCIM and LDAP look it up first).
func (e *Engine) work(ctx context.Context, w *worker) {
	s := w.sub
	log := e.o.Logger.With(zap.String("subscription", s.ID), zap.String("app", s.App))
	var tr Transport
	l := &lease{e: e, sub: s.ID, log: log}
	defer func() {
		if tr != nil {
			_ = tr.Close()
		}
		l.release(ctx)
	}()
	for ctx.Err() == nil && !w.stop.Load() {
		if !l.hold(ctx) {
			e.wait(ctx, w, e.o.Poll) // another process delivers this queue
			continue
		}
		ds, err := e.o.Store.Due(ctx, s.ID, deliverBatch)
		if err != nil {
			if ctx.Err() == nil {
				e.storeErrors.WithLabelValues("queue").Inc()
				log.Warn("provisioning: reading the queue failed", zap.Error(err))
			}
			e.wait(ctx, w, e.o.Poll)
			continue
		}
		if len(ds) == 0 {
			e.wait(ctx, w, e.o.Poll)
			continue
		}
		if e.replaced(ctx, s) {
			// the subscription was edited since this worker started (its
			// deliver_roles, its transport): the worker that replaces it
			// delivers the rest, the edit's deliveries (read above, so
			// committed with the edit) included
			e.wait(ctx, w, e.o.Poll)
			continue
		}
		if wait := ds[0].NextAt.Sub(e.o.Now()); wait > 0 {
			e.wait(ctx, w, min(wait, e.o.Poll))
			continue
		}
		objs := e.batchObjects(ctx, ds)
		b := &recordBatch{e: e, s: s, log: log, since: time.Now()}
		recorded := true
		for i := range ds {
			d := &ds[i]
			if i > 0 && (d.NextAt.After(e.o.Now()) || w.stop.Load() || !l.hold(ctx)) {
				break // not due yet (it holds the later ones), the worker replaced, or the lease lost
			}
			if tr == nil {
				dial := e.o.Dial[s.Transport]
				if dial == nil {
					err = fmt.Errorf("transport %q is not available", s.Transport)
				} else {
					tr, err = dial(s)
				}
			}
			if err == nil {
				err = e.deliver(ctx, tr, s, d, objs[d.Kind][d.ObjectID])
			}
			if ctx.Err() != nil {
				// stopped mid-delivery: one the business system answered is
				// recorded as delivered (a selection edit restarts the
				// worker while it delivers the edit); one cut off is
				// delivered again after the restart; all are recorded if
				// the database answers soon
				if err == nil {
					now := e.o.Now()
					b.outs = append(b.outs, Outcome{Seq: d.Seq, Attempts: d.Attempts + 1, OK: true, At: now, Latency: now.Sub(d.CreatedAt)})
				}
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				b.record(rctx)
				cancel()
				return
			}
			now := e.o.Now()
			attempts := d.Attempts + 1
			if err == nil {
				b.outs = append(b.outs, Outcome{Seq: d.Seq, Attempts: attempts, OK: true, At: now, Latency: now.Sub(d.CreatedAt)})
				if time.Since(b.since) >= recordEvery {
					if recorded = b.record(ctx); !recorded {
						break
					}
				}
				continue
			}
			e.failed.WithLabelValues(s.App).Inc()
			msg := err.Error()
			if len(msg) > 500 {
				msg = msg[:500]
			}
			b.failed = d
			dead, next := attempts >= e.o.MaxAttempts || errors.As(err, new(*permanentError)),
				now.Add(Backoff(attempts, e.o.RetryFirst, e.o.RetryMax))
			if dead && e.o.DeadLetterRetry > 0 {
				next = now.Add(e.o.DeadLetterRetry) // its automatic retry
			}
			b.outs = append(b.outs, Outcome{Seq: d.Seq, Attempts: attempts, LastError: msg, Next: next, Dead: dead})
			if errors.Is(err, errBrokenTransport) && tr != nil {
				_ = tr.Close()
				tr = nil
			}
			break // a failure holds the later deliveries
		}
		if !b.record(ctx) || !recorded {
			e.wait(ctx, w, e.o.Poll)
		}
	}
}

// replaced reports whether s is stored with another version than the
// one its worker delivers (edited or removed since); a failed read is
// not a replacement (the delivery's own reads tell of the database).
func (e *Engine) replaced(ctx context.Context, s *Subscription) bool {
	cur, err := e.o.Store.GetSubscription(ctx, s.ID)
	if err != nil {
		return errors.Is(err, store.ErrNotFound)
	}
	return !cur.UpdatedAt.Equal(s.UpdatedAt) || !cur.Enabled
}

// lease is a worker's lease on its subscription's queue.
type lease struct {
	e     *Engine
	sub   string
	log   *zap.Logger
	until time.Time
}

// hold reports whether the worker holds the lease for one more delivery,
// renewing it when less than a delivery's timeout is left. (Wall-clock
// time: other processes compare it with theirs.)
func (l *lease) hold(ctx context.Context) bool {
	e := l.e
	now := time.Now()
	if now.Add(e.o.Timeout + time.Second).Before(l.until) {
		return true
	}
	ok, err := e.o.Store.Lease(ctx, l.sub, e.owner, now, now.Add(e.o.LeaseTTL))
	if err != nil {
		if ctx.Err() == nil {
			e.storeErrors.WithLabelValues("lease").Inc()
			l.log.Warn("provisioning: taking the queue's lease failed", zap.Error(err))
		}
		return false
	}
	if !ok {
		l.until = time.Time{}
		return false
	}
	l.until = now.Add(e.o.LeaseTTL)
	return true
}

// release gives the lease up, if held (a stopped process: another takes
// the queue over at once).
func (l *lease) release(ctx context.Context) {
	if l.until.IsZero() {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := l.e.o.Store.Release(rctx, l.sub, l.e.owner); err != nil {
		l.log.Info("provisioning: the queue's lease was not given up; it expires", zap.Error(err))
	}
	l.until = time.Time{}
}

// recordBatch is the outcomes of a worker's batch not recorded yet.
type recordBatch struct {
	e     *Engine
	s     *Subscription
	log   *zap.Logger
	outs  []Outcome
	since time.Time
	// failed is the delivery whose attempt failed (the last outcome).
	failed *Delivery
}

// record writes the outcomes in one transaction and then counts them; it
// reports false when the database refused them (they are delivered again).
func (b *recordBatch) record(ctx context.Context) bool {
	e, s := b.e, b.s
	outs, failed := b.outs, b.failed
	b.outs, b.failed, b.since = nil, nil, time.Now()
	if len(outs) == 0 {
		return true
	}
	if err := e.o.Store.Record(ctx, outs); err != nil {
		if ctx.Err() == nil {
			// delivered again once the database answers (deliveries are idempotent)
			e.storeErrors.WithLabelValues("record").Inc()
			b.log.Warn("provisioning: recording deliveries failed", zap.Int("deliveries", len(outs)), zap.Error(err))
		}
		return false
	}
	for _, o := range outs {
		if o.OK {
			e.delivered.WithLabelValues(s.App).Inc()
			e.latency.WithLabelValues(s.App).Observe(o.Latency.Seconds())
			continue
		}
		// the message is the transport's, which never carries secrets
		b.log.Info("provisioning: delivery failed", zap.Int64("seq", o.Seq), zap.Int("attempt", o.Attempts), zap.Bool("dead", o.Dead),
			zap.String("error", o.LastError))
		if o.Dead && failed != nil {
			e.dead.WithLabelValues(s.App).Inc()
			d := *failed
			d.Attempts, d.LastError, d.Status = o.Attempts, o.LastError, Dead
			if e.o.Alert != nil {
				e.o.Alert(ctx, s, d)
			}
		}
	}
	return true
}

// errBrokenTransport marks failures after which the transport is rebuilt.
var errBrokenTransport = errors.New("transport broken")

// Broken wraps err so that the worker rebuilds its transport (a lost LDAP
// connection).
func Broken(err error) error { return fmt.Errorf("%w: %w", errBrokenTransport, err) }

// Permanent wraps err so that the delivery is dead-lettered at once (the
// business system refused it as malformed: a SOAP Client fault), not
// retried; its dead letter is put back like any other (by hand, or by
// sync.provision.dead_letter_retry) once the cause is fixed.
func Permanent(err error) error { return &permanentError{err} }

// IsPermanent reports whether err was made by Permanent.
func IsPermanent(err error) bool { return errors.As(err, new(*permanentError)) }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// batchObjects reads the objects of a batch of deliveries, one read per
// kind (nil when that fails: each delivery then reads its own). A later
// change of an object is a later delivery, which reads it again.
func (e *Engine) batchObjects(ctx context.Context, ds []Delivery) map[string]map[string]*Object {
	ids := map[string][]string{}
	for _, d := range ds {
		ids[d.Kind] = append(ids[d.Kind], d.ObjectID)
	}
	out := make(map[string]map[string]*Object, len(ids))
	for kind, list := range ids {
		slices.Sort(list)
		m, err := e.o.Store.ObjectsByID(ctx, kind, slices.Compact(list))
		if err != nil {
			return nil
		}
		out[kind] = m
	}
	return out
}

// deliver makes one delivery; pre is its object when read with its batch
// (nil: read here).
func (e *Engine) deliver(ctx context.Context, tr Transport, s *Subscription, d *Delivery, pre *Object) error {
	obj, members := pre, []string(nil)
	var err error
	if pre == nil || d.Kind == KindGroup {
		if obj, members, err = e.o.Store.Object(ctx, d.Kind, d.ObjectID); err != nil {
			return fmt.Errorf("reading %s %s: %w", d.Kind, d.ObjectID, err)
		}
	}
	if obj == nil {
		obj = &Object{Kind: d.Kind, ID: d.ObjectID, Data: []byte("{}")}
	}
	var ms []Member
	for _, id := range members {
		u, _, err := e.o.Store.Object(ctx, KindUser, id)
		if err != nil {
			return fmt.Errorf("reading member %s: %w", id, err)
		}
		if u != nil && !u.Deleted {
			ms = append(ms, Member{ID: id, Login: u.Field("login_name")})
		}
	}
	it := Item{Delivery: *d, Object: obj, Members: ms}
	if err := e.roles(ctx, s, &it); err != nil {
		return err
	}
	if _, ok := tr.(OrgPlaced); ok && d.Op != OpDelete {
		from := obj.Field("org_id")
		if d.Kind == KindOrg {
			from = obj.Field("parent_id")
		}
		if it.Orgs, err = e.orgPath(ctx, from); err != nil {
			return err
		}
	}
	dctx, cancel := context.WithTimeout(ctx, e.o.Timeout)
	defer cancel()
	err = e.safeDeliver(dctx, tr, s, it)
	if err != nil && dctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return fmt.Errorf("no answer within %s (timeout): %w", e.o.Timeout, err)
	}
	return err
}

// safeDeliver is tr.Deliver with a panic of the transport (a bug: review
// sec30a H2) turned into a permanent failure of that one delivery, logged
// with its stack: the delivery is dead-lettered, the worker and the
// process go on (a panic would stop the process, which would take the
// same delivery again after its restart).
func (e *Engine) safeDeliver(ctx context.Context, tr Transport, s *Subscription, it Item) (err error) {
	defer func() {
		if r := recover(); r != nil {
			e.o.Logger.Error("provisioning: the transport panicked; the delivery is dead-lettered",
				zap.String("subscription", s.ID), zap.String("kind", it.Delivery.Kind), zap.String("object", it.Delivery.ObjectID),
				zap.Int64("seq", it.Delivery.Seq), zap.Any("panic", r), zap.Stack("stack"))
			err = Permanent(fmt.Errorf("internal error of the %s transport (a bug, logged with its stack): %v", s.Transport, r))
		}
	}()
	return tr.Deliver(ctx, it)
}

// roles fills, for a subscription that delivers roles, a person's roles
// of its application, or a role's holders in its selection (read in one
// transaction of the projection).
func (e *Engine) roles(ctx context.Context, s *Subscription, it *Item) error {
	d := it.Delivery
	if !s.DeliverRoles && WithdrawsRoles(&d) {
		it.Roles = []RoleRef{} // the option turned off: the roles withdrawn
		return nil
	}
	if !s.DeliverRoles || d.Op == OpDelete || (d.Kind != KindUser && d.Kind != KindRole) {
		return nil
	}
	now := e.o.Now()
	err := e.o.Store.InTx(ctx, func(tx Tx) error {
		var err error
		if d.Kind == KindUser {
			it.Roles, err = UserRoles(tx, d.ObjectID, s.App, now)
		} else {
			it.Members, err = RoleHolders(tx, s, d.ObjectID, now)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the roles of %s %s: %w", d.Kind, d.ObjectID, err)
	}
	return nil
}

// orgPath reads org and its ancestors (nearest first), stopping at an
// unknown org, on a cycle or after 64 levels.
func (e *Engine) orgPath(ctx context.Context, org string) ([]*Object, error) {
	var out []*Object
	seen := map[string]bool{}
	for org != "" && len(out) < 64 && !seen[org] {
		seen[org] = true
		o, _, err := e.o.Store.Object(ctx, KindOrg, org)
		if err != nil {
			return nil, fmt.Errorf("reading org %s: %w", org, err)
		}
		if o == nil {
			break
		}
		out = append(out, o)
		org = o.Field("parent_id")
	}
	return out, nil
}
