package provision

import (
	"context"
	"time"
)

// SecretBox seals the subscriptions' secrets at rest (pkg/crypto's Sealer
// under a key derived from the deployment's key ring). label binds a sealed
// value to its subscription.
type SecretBox interface {
	Seal(plaintext, label []byte) (string, error)
	Open(sealed string, label []byte) ([]byte, error)
}

// Tx is one transaction over the projection and the delivery queue.
type Tx interface {
	Reader
	PutObject(o Object) error
	// SetMember adds (in) or removes user from group.
	SetMember(group, user string, in bool) error
	// Members lists a group's members.
	Members(group string) ([]string, error)
	// PutLink records account link id (user, app); DeleteLink removes it
	// and returns its user ("" if unknown).
	PutLink(id, user, app string) error
	DeleteLink(id string) (string, error)
	// PutGrant records grant id of role to subject (kind, id), in force
	// during w; DeleteGrant removes it and returns its subject.
	PutGrant(id, role, kind, subject string, w Window) error
	// Grant reads grant id (all empty if unknown).
	Grant(id string) (role, kind, subject string, err error)
	DeleteGrant(id string) (kind, subject string, err error)
	// GrantsOfRole lists the subjects role is granted to, as "kind:id":
	// by the grants in force at at (zero: all).
	GrantsOfRole(role string, at time.Time) ([]string, error)
	// GrantsCrossing lists the grants whose window starts or ends after
	// after and at upTo or before, once per such start or end.
	GrantsCrossing(after, upTo time.Time) ([]GrantWindow, error)
	// SweptUntil is the time up to which grant windows were swept (zero:
	// never); SetSweptUntil moves it.
	SweptUntil() (time.Time, error)
	SetSweptUntil(at time.Time) error
	// Objects lists the live objects of kind, a page at a time after the
	// id after ("" first).
	Objects(kind, after string, limit int) ([]Object, error)
	// Enqueue adds a pending delivery unless one for the same subscription,
	// event id, kind and object exists (a redelivered change). It reports
	// whether it added one.
	Enqueue(d Delivery) (bool, error)
	// Children lists the live objects whose org is parent: the orgs below
	// it, its people and its groups (Kind and ID only), by kind and id.
	Children(parent string) ([]Object, error)
	// Lock serialises the transactions that project changes and those
	// that enqueue initial batches, so a new subscription misses no
	// change: one projected before its initial batch is in the batch, one
	// projected after sees the subscription.
	Lock() error
	// Subscriptions lists every subscription (secrets left out).
	Subscriptions() ([]*Subscription, error)
	// UpdateSubscription is Store.UpdateSubscription inside the
	// transaction.
	UpdateSubscription(s *Subscription) error
	// DeleteAppSubscriptions deletes every subscription of app with its
	// queue (as DeleteSubscription) and returns their ids.
	DeleteAppSubscriptions(app string) ([]string, error)
	// StartInitial records batch as sub's initial batch (and at as its
	// last batch time), unless one is recorded already (then it reports
	// false).
	StartInitial(sub, batch string, at time.Time) (bool, error)
	// StartScheduled records at as sub's last batch time if last is still
	// the one recorded (the time the caller read), and reports whether it
	// did: of several processes that find a scheduled batch due, one
	// enqueues it.
	StartScheduled(sub string, last, at time.Time) (bool, error)
	// Cursor is the last CHANGES sequence projected; SetCursor moves it.
	Cursor() (uint64, error)
	SetCursor(seq uint64) error
}

// Store keeps subscriptions, the projection and the deliveries. Errors are
// pkg/store's classes.
type Store interface {
	// Cursor is the last CHANGES sequence projected.
	Cursor(ctx context.Context) (uint64, error)
	// InTx runs fn in one transaction.
	InTx(ctx context.Context, fn func(Tx) error) error

	CreateSubscription(ctx context.Context, s *Subscription) error
	// UpdateSubscription replaces the subscription; an empty Secret keeps
	// the stored one.
	UpdateSubscription(ctx context.Context, s *Subscription) error
	DeleteSubscription(ctx context.Context, id string) error
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	// ListSubscriptions lists subscriptions (of app when not empty), by id.
	ListSubscriptions(ctx context.Context, app string) ([]*Subscription, error)
	SetLastBatch(ctx context.Context, id string, at time.Time) error

	// Object returns the projected state of an object (nil if unknown)
	// and, for a group, its members.
	Object(ctx context.Context, kind, id string) (*Object, []string, error)
	// ObjectsByID returns the projected state of the objects of kind
	// among ids (unknown ones left out), in one read.
	ObjectsByID(ctx context.Context, kind string, ids []string) (map[string]*Object, error)

	// NextDue returns the subscription's oldest pending delivery (nil: none).
	NextDue(ctx context.Context, sub string) (*Delivery, error)
	// Due returns up to limit of the subscription's pending deliveries,
	// oldest first.
	Due(ctx context.Context, sub string, limit int) ([]Delivery, error)
	// Lease takes or renews owner's lease on sub's queue until until: it
	// reports false while another owner holds one that has not expired at
	// now. Only the holder delivers a subscription's queue, so several sync
	// processes on one database never deliver the same delivery at once.
	Lease(ctx context.Context, sub, owner string, now, until time.Time) (bool, error)
	// Release gives owner's lease on sub up (another process takes over at
	// once).
	Release(ctx context.Context, sub, owner string) error
	// Record writes the outcomes of delivery attempts, in one transaction.
	// An outcome of a delivery that is no longer pending (delivered or
	// dead already, or removed with its subscription) changes nothing.
	Record(ctx context.Context, outs []Outcome) error
	// Delivered marks a delivery done.
	Delivered(ctx context.Context, seq int64, attempts int, at time.Time, latency time.Duration) error
	// Failed records a failed attempt: the next attempt at next, or dead.
	Failed(ctx context.Context, seq int64, attempts int, lastErr string, next time.Time, dead bool) error
	// ListDeliveries lists deliveries, newest first, a page at a time.
	ListDeliveries(ctx context.Context, f DeliveryFilter, size int, token string) ([]Delivery, string, error)
	// Retry puts dead deliveries back in the queue (due now, their count
	// of attempts restarting from attempts: 0 for a whole round of
	// retries) and returns how many.
	Retry(ctx context.Context, f DeliveryFilter, now time.Time, attempts int) (int64, error)
	// Report counts deliveries per application per day (of creation, UTC)
	// in [from, to).
	Report(ctx context.Context, app string, from, to time.Time) ([]ReportRow, error)
	// Queues returns each subscription's pending and dead counts, oldest
	// pending delivery, last error and pending deliveries of its initial
	// batch.
	Queues(ctx context.Context) (map[string]SubStatus, error)
}

// Outcome is the result of one delivery attempt.
type Outcome struct {
	Seq      int64
	Attempts int
	// OK: delivered at At, Latency after the delivery's creation.
	OK      bool
	At      time.Time
	Latency time.Duration
	// Otherwise: the failure as a person reads it, and the next attempt
	// at Next; Dead: none but the automatic retry of dead letters, due at
	// Next when Options.DeadLetterRetry is on.
	LastError string
	Next      time.Time
	Dead      bool
}

// DeliveryFilter selects deliveries (each empty: any).
type DeliveryFilter struct {
	Subscription, App, Status string
	Seq                       int64
	// DueBy: only deliveries whose next attempt is due by then.
	DueBy time.Time
}
