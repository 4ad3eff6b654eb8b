package events

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/giveway"
	"github.com/uias/uias/pkg/store"
)

// RelayOptions tunes a Relay. Zero values take the defaults shown.
type RelayOptions struct {
	BatchSize      int           // rows read (and published together) per batch; default 500
	PublishTimeout time.Duration // per batch (waiting for the JetStream acks); default 5s
	PollInterval   time.Duration // idle re-check when nobody calls Kick; default 1s
	// Linger is how long the relay waits after a Kick before it reads the
	// outbox, so that events written meanwhile go out in the same batch
	// (one outbox read and one delete for all of them); default 20ms,
	// negative = publish at once. It delays delivery by at most Linger.
	Linger     time.Duration
	MinBackoff time.Duration // first retry delay after a failure; default 100ms
	MaxBackoff time.Duration // retry delay cap; default 5s
	// Write, when set, runs the deletes of published rows on SQLite (fn
	// in a transaction) as one of the store's writes: a store that
	// queues its writes on a connection of its own (the identity store
	// during an import) passes its own, so that the deletes do not
	// commit on another connection (SQLite then drops that connection's
	// page cache). Default: one statement on db. Unused on PostgreSQL
	// (the deletes run in the batch's transaction under its lock).
	Write func(ctx context.Context, fn func(tx *sql.Tx) error) error
	// Also are further outboxes of the component (SQLite files of their
	// own, such as the identity store's login outbox) that the relay
	// drains too, each round after db's. Write does not apply to them:
	// their deletes run on them.
	Also []*store.DB
	// Subjects, when set, are the subject prefixes of the rows this relay
	// publishes (of db's outbox; Also's are the component's own): the
	// others are left to the relays of the components that wrote them.
	// Components sharing one PostgreSQL database share its outbox table,
	// and each may publish only its own subjects (its NATS user's
	// permissions). Empty: every row.
	Subjects []string
	// GiveWay, when set, pauses the relay before each round of publishing
	// while logins wait for a hash worker (at most its MaxPause a round):
	// the rows wait in the outbox and go out together afterwards.
	GiveWay *giveway.Signal
}

func (o RelayOptions) withDefaults() RelayOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Linger == 0 {
		o.Linger = 20 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	return o
}

// Relay moves outbox rows to JetStream, oldest first, each published with
// jetstream.WithMsgID(ev.ID) and deleted only after its ack (the acked rows
// of a batch with one statement). The rows of a batch are published
// together (asynchronously, then every ack awaited), so a backlog drains at
// the speed of the link rather than one round trip per event, also while
// the CPU is busy with logins. When a publish fails its row stays (the acked
// ones are deleted) and Run retries with exponential backoff; the stream then
// holds the retried event after those published behind it, so order is kept
// except around a failed publish. Deduplication on the stream absorbs a
// publish that was acked but whose row could not be deleted, or that was
// retried after a lost ack. After a Kick, Run lingers briefly
// (RelayOptions.Linger) so that a burst of events goes out as one batch.
//
// On PostgreSQL several processes may run a relay against one database: a
// batch is processed only while holding a transaction-scoped advisory lock,
// so one relay works at a time; the others wait quietly.
type Relay struct {
	db   *store.DB
	js   jetstream.JetStream // the relay's own publisher (async acks time out)
	log  *zap.Logger
	opts RelayOptions
	kick chan struct{}
	mu   sync.Mutex // one flush at a time in this process
	// outs are the outboxes drained, db's first (RelayOptions.Also).
	outs []*outbox
}

// outbox is one outbox a Relay drains.
type outbox struct {
	db *store.DB
	// stmts keeps the outbox read prepared on SQLite, where a batch reads
	// the outbox outside any transaction: with logins arriving one by one
	// a batch holds an event or two, and parsing the read was a good part
	// of its cost. Nil on PostgreSQL (the read runs in the batch's
	// transaction).
	stmts *store.StmtCache
	// write runs the deletes of published rows on SQLite (nil: one
	// statement on db); RelayOptions.Write for the first outbox.
	write func(ctx context.Context, fn func(tx *sql.Tx) error) error
}

// NewRelay builds a relay; a nil log discards logs.
func NewRelay(db *store.DB, js jetstream.JetStream, log *zap.Logger, opts RelayOptions) *Relay {
	if log == nil {
		log = zap.NewNop()
	}
	opts = opts.withDefaults()
	// A publisher of its own on the same connection, whose pending acks
	// expire (the caller's may have no async timeout: acks lost in an
	// outage would otherwise stay pending forever).
	if js != nil && js.Conn() != nil {
		if own, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncTimeout(opts.PublishTimeout),
			jetstream.WithPublishAsyncMaxPending(2*opts.BatchSize)); err == nil {
			js = own
		}
	}
	r := &Relay{
		db:   db,
		js:   js,
		log:  log.Named("outbox-relay"),
		opts: opts,
		kick: make(chan struct{}, 1),
	}
	for i, d := range append([]*store.DB{db}, opts.Also...) {
		if d == nil || d.DB == nil {
			continue
		}
		o := &outbox{db: d}
		if i == 0 {
			o.write = opts.Write
		}
		if d.Dialect != store.Postgres {
			o.stmts = store.NewStmtCache(d.DB)
			d.OnClose(o.stmts.Close)
		}
		r.outs = append(r.outs, o)
	}
	return r
}

// Kick wakes the relay to publish new rows now instead of at the next poll. It never
// blocks; while the relay is backing off after a failure it is ignored.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Pending returns the number of events waiting in the outboxes.
func (r *Relay) Pending(ctx context.Context) (int, error) {
	total := 0
	for _, o := range r.outs {
		var n int
		where, args := r.own(o)
		if err := o.db.QueryRowContext(ctx, o.db.Rebind(`SELECT COUNT(*) FROM events_outbox`+where), args...).Scan(&n); err != nil {
			return 0, fmt.Errorf("events: count outbox rows: %w", err)
		}
		total += n
	}
	return total, nil
}

// Run relays until ctx is done, then returns nil. Failures are logged and retried; they
// do not end Run. A relay without a database or JetStream cannot run: Run
// returns an error at once.
func (r *Relay) Run(ctx context.Context) error {
	if r.db == nil || r.js == nil {
		return errors.New("events: the outbox relay needs a database and JetStream")
	}
	var backoff time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		r.opts.GiveWay.Pause(ctx)
		_, locked, err := r.flush(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		kick := r.kick
		switch {
		case err != nil:
			if backoff == 0 {
				backoff = r.opts.MinBackoff
			} else {
				backoff = min(2*backoff, r.opts.MaxBackoff)
			}
			wait = backoff
			kick = nil // do not hammer a broken NATS on every new event
			r.log.Warn("outbox relay: publishing failed; events stay in the outbox and will be retried",
				zap.Error(err), zap.Duration("retry_in", wait))
		case locked:
			// Another relay holds the outbox (PostgreSQL): it publishes.
			// Nothing recovered or failed here; look again later, keeping
			// any backoff from an earlier failure.
			wait = max(backoff, r.opts.PollInterval)
			r.log.Debug("outbox relay: another relay holds the outbox lock", zap.Duration("retry_in", wait))
		default:
			if backoff != 0 {
				r.log.Info("outbox relay: publishing recovered")
			}
			backoff = 0
			wait = r.opts.PollInterval
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			if !timer.Stop() {
				<-timer.C
			}
			if r.opts.Linger > 0 {
				timer.Reset(r.opts.Linger)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
	}
}

// errLocked means another relay holds the PostgreSQL relay lock.
var errLocked = errors.New("outbox relay lock held elsewhere")

// Flush publishes everything currently in the outboxes (batch by batch) and returns how
// many events were published. An outbox stops at its first failure, the others go on;
// the failures are returned. While another relay holds the PostgreSQL relay lock it
// publishes nothing from that outbox and returns nil for it.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	n, _, err := r.flush(ctx)
	return n, err
}

// flush is Flush that also reports whether it stopped because another
// relay holds the lock.
func (r *Relay) flush(ctx context.Context) (total int, locked bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// An outbox that fails (a publish refused, its database down) does
	// not hold up the others: each is drained as far as it goes.
	var errs []error
	for _, o := range r.outs {
		for {
			n, more, err := r.batch(ctx, o)
			total += n
			if errors.Is(err, errLocked) {
				locked = true
				break
			}
			if err != nil {
				errs = append(errs, err)
				break
			}
			if !more {
				break
			}
		}
	}
	return total, locked, errors.Join(errs...)
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

var relayLockKey = lockKeyOf(nil)

// lockKeyOf is the advisory lock of the relays of the outbox rows of
// subjects (nil: every row): the replicas of one component take turns,
// the components sharing the table do not wait for one another (review
// sec21 M1).
func lockKeyOf(subjects []string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("uias:events_outbox:relay"))
	for _, s := range subjects {
		_, _ = h.Write([]byte("\x00" + s))
	}
	return int64(h.Sum64() >> 1)
}

// batch publishes up to BatchSize rows; more reports whether a full batch was read.
func (r *Relay) batch(ctx context.Context, o *outbox) (n int, more bool, err error) {
	if o.db.Dialect != store.Postgres {
		return r.publishRows(ctx, o, o.db)
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("events: begin outbox transaction: %w", err)
	}
	var locked bool
	if err := tx.QueryRowContext(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockKeyOf(r.opts.Subjects)).Scan(&locked); err != nil {
		_ = tx.Rollback()
		return 0, false, fmt.Errorf("events: take outbox relay lock: %w", err)
	}
	if !locked {
		_ = tx.Rollback()
		return 0, false, errLocked
	}
	n, more, err = r.publishRows(ctx, o, tx)
	// Commit the deletes of whatever was published, even when a later publish failed.
	if cerr := tx.Commit(); cerr != nil && err == nil {
		err = fmt.Errorf("events: commit outbox deletes: %w", cerr)
	}
	return n, more, err
}

type outboxRow struct {
	seq int64
	ev  Event
}

func (r *Relay) publishRows(ctx context.Context, o *outbox, q querier) (int, bool, error) {
	rows, err := r.readRows(ctx, o, q)
	if err != nil {
		return 0, false, err
	}
	// Publish the batch together, then delete what was acked in one
	// statement; rows whose publish failed stay for the next attempt.
	acked, pubErr := r.publishAll(ctx, rows)
	if err := r.deleteRows(ctx, o, q, acked); err != nil {
		// Published but still in the outbox: the next attempt is deduplicated.
		return len(acked), false, errors.Join(pubErr, err)
	}
	if pubErr != nil {
		return len(acked), false, pubErr
	}
	return len(acked), len(rows) == r.opts.BatchSize, nil
}

// publishAll publishes rows asynchronously, in order, and waits (at most
// PublishTimeout) for their acks. It returns the acked rows and the first
// error (naming its event, never its payload).
func (r *Relay) publishAll(ctx context.Context, rows []outboxRow) ([]outboxRow, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	var firstErr error
	for _, row := range rows {
		f, err := r.js.PublishMsgAsync(Msg(row.ev), jetstream.WithMsgID(row.ev.ID))
		if err != nil {
			firstErr = fmt.Errorf("events: publish event %s to %s: %w", row.ev.ID, row.ev.Subject, err)
			break // the connection refuses more (closed, stalled): retry later
		}
		futures = append(futures, f)
	}
	timer := time.NewTimer(r.opts.PublishTimeout)
	defer timer.Stop()
	acked := make([]outboxRow, 0, len(futures))
	expired := false
	for i, f := range futures {
		ev := rows[i].ev
		var err error
		if expired {
			select {
			case ack := <-f.Ok():
				r.noteDuplicate(ack, ev)
			case err = <-f.Err():
			default:
				err = errors.New("no ack in time")
			}
		} else {
			select {
			case ack := <-f.Ok():
				r.noteDuplicate(ack, ev)
			case err = <-f.Err():
			case <-timer.C:
				expired, err = true, errors.New("no ack in time")
			case <-ctx.Done():
				expired, err = true, ctx.Err()
			}
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("events: publish event %s to %s: %w", ev.ID, ev.Subject, err)
			}
			continue
		}
		acked = append(acked, rows[i])
	}
	return acked, firstErr
}

func (r *Relay) noteDuplicate(ack *jetstream.PubAck, ev Event) {
	if ack != nil && ack.Duplicate {
		r.log.Debug("outbox relay: event already on the stream (deduplicated)",
			zap.String("event_id", ev.ID), zap.String("subject", ev.Subject))
	}
}

// deleteRows removes published rows from the outbox with one statement.
func (r *Relay) deleteRows(ctx context.Context, o *outbox, q querier, rows []outboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, len(rows))
	for i, row := range rows {
		args[i] = row.seq
	}
	del := o.db.Rebind(`DELETE FROM events_outbox WHERE seq IN (?` + strings.Repeat(", ?", len(rows)-1) + `)`)
	var err error
	if o.write != nil && o.db.Dialect != store.Postgres {
		err = o.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, del, args...)
			return err
		})
	} else {
		_, err = q.ExecContext(ctx, del, args...)
	}
	if err != nil {
		return fmt.Errorf("events: delete %d published events from outbox (first %s): %w", len(rows), rows[0].ev.ID, err)
	}
	return nil
}

// own is the condition (with its arguments) that selects the rows of o
// this relay publishes: those of RelayOptions.Subjects in db's outbox.
func (r *Relay) own(o *outbox) (string, []any) {
	if o.db != r.db || len(r.opts.Subjects) == 0 {
		return "", nil
	}
	conds := make([]string, len(r.opts.Subjects))
	args := make([]any, len(r.opts.Subjects))
	for i, p := range r.opts.Subjects {
		conds[i] = fmt.Sprintf("substr(subject, 1, %d) = ?", len(p))
		args[i] = p
	}
	return " WHERE (" + strings.Join(conds, " OR ") + ")", args
}

func (r *Relay) readRows(ctx context.Context, o *outbox, q querier) ([]outboxRow, error) {
	where, args := r.own(o)
	query := o.db.Rebind(`SELECT seq, id, subject, type, payload, created_at FROM events_outbox` + where + ` ORDER BY seq LIMIT ?`)
	args = append(args, r.opts.BatchSize)
	var (
		rs  *sql.Rows
		err error
	)
	if o.stmts != nil && q == querier(o.db) {
		rs, err = o.stmts.QueryPrepared(ctx, query, args...)
	} else {
		rs, err = q.QueryContext(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("events: read outbox: %w", err)
	}
	defer rs.Close()
	var out []outboxRow
	for rs.Next() {
		var row outboxRow
		var created any
		if err := rs.Scan(&row.seq, &row.ev.ID, &row.ev.Subject, &row.ev.Type, &row.ev.Payload, &created); err != nil {
			return nil, fmt.Errorf("events: read outbox row: %w", err)
		}
		row.ev.Time = decodeTime(created)
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("events: read outbox: %w", err)
	}
	return out, nil
}

func decodeTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t.UTC()
	case string:
		if p, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return p
		}
	case []byte:
		if p, err := time.Parse(time.RFC3339Nano, string(t)); err == nil {
			return p
		}
	}
	return time.Time{}
}

// Msg is the NATS message of ev as the relay publishes it (subject,
// payload, type and time headers; the id goes as jetstream.WithMsgID).
func Msg(ev Event) *nats.Msg {
	msg := nats.NewMsg(ev.Subject)
	msg.Data = ev.Payload
	if ev.Type != "" {
		msg.Header.Set(HeaderType, ev.Type)
	}
	if !ev.Time.IsZero() {
		msg.Header.Set(HeaderTime, ev.Time.UTC().Format(time.RFC3339Nano))
	}
	return msg
}
