package component

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/authz"
)

// Grants of deleted people and groups. Identity's user.deleted and
// group.deleted take the subject's grants with them (as a deleted user's
// role mappings go in Keycloak): every replica of every centre that applies
// the event deletes the grants of the subject held here
// (commands.Service.DeleteGrantsOf), one grant delete change each, with
// their CHANGES and AUDIT events.
//
// The identity mirror is an ordered consumer: nothing is acknowledged, and
// every start reads identity's CHANGES again from the beginning. So an
// event is never lost for the grants: a deletion not done (the store down,
// the process stopped) is done at the next start at the latest, and
// meanwhile retried here. Deleting is idempotent, so the events applied
// again at each start, and by several replicas at once, delete what is left
// (nothing, normally: a subject the index holds no grant of costs no store
// access). Until the grants are gone the index already answers nothing for
// a deleted person (index.ForgetPerson) and a deleted group reaches nobody.

// Retry bounds of a deletion that failed.
const (
	forgetRetryMin = 500 * time.Millisecond
	forgetRetryMax = 30 * time.Second
	// forgetTimeout bounds one attempt (the identity mirror waits for an
	// attempt made as the event is applied).
	forgetTimeout = 10 * time.Second
)

// grantDeleter is the command grantForgetter runs
// (commands.Service.DeleteGrantsOf).
type grantDeleter interface {
	DeleteGrantsOf(ctx context.Context, sub authz.Subject, cause string) (int, error)
}

// forgetCause is why a subject's grants go: the identity event and who
// made the change ("user:<id>" as identity's event names the actor).
type forgetCause struct{ event, actor string }

// grantForgetter deletes the grants of the subjects identity deletes: at
// once when the index is loaded and no earlier deletion is waiting; else
// (not loaded yet, the store failing) later, from its loop, which retries
// with a growing delay.
type grantForgetter struct {
	del grantDeleter
	// holds reports whether the index holds a grant of the subject: one
	// it does not is not looked up in the store.
	holds func(authz.Subject) bool
	log   *zap.Logger

	mu      sync.Mutex
	loaded  bool
	pending map[authz.Subject]forgetCause
	wake    chan struct{}
}

func newGrantForgetter(del grantDeleter, holds func(authz.Subject) bool, log *zap.Logger) *grantForgetter {
	return &grantForgetter{del: del, holds: holds, log: log, pending: map[authz.Subject]forgetCause{},
		wake: make(chan struct{}, 1)}
}

// forget deletes the grants of sub, or leaves them to the loop.
func (f *grantForgetter) forget(ctx context.Context, sub authz.Subject, why forgetCause) {
	f.mu.Lock()
	if !f.loaded || len(f.pending) > 0 {
		f.pending[sub] = why
		f.mu.Unlock()
		f.kick()
		return
	}
	f.mu.Unlock()
	if err := f.try(ctx, sub, why); err != nil && ctx.Err() == nil {
		f.log.Warn("grants of a deleted subject not deleted yet; retrying", zap.String("subject", sub.String()), zap.Error(err))
		f.mu.Lock()
		f.pending[sub] = why
		f.mu.Unlock()
		f.kick()
	}
}

// Pending is how many subjects' grants wait to be deleted.
func (f *grantForgetter) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

func (f *grantForgetter) kick() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// try deletes the grants of sub once, as done by the actor of the identity
// change (the administrator who deleted the subject, in the audit records).
func (f *grantForgetter) try(ctx context.Context, sub authz.Subject, why forgetCause) error {
	if !f.holds(sub) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, forgetTimeout)
	defer cancel()
	ctx = caller.WithActor(ctx, why.actor)
	n, err := f.del.DeleteGrantsOf(ctx, sub, why.event)
	if n > 0 {
		f.log.Info("grants of a deleted subject deleted", zap.String("subject", sub.String()), zap.String("cause", why.event),
			zap.Int("grants", n))
	}
	return err
}

// run waits for loaded (the index loaded from the store), then deletes
// what waits, again after a failure, until ctx ends.
func (f *grantForgetter) run(ctx context.Context, loaded <-chan struct{}) {
	select {
	case <-ctx.Done():
		return
	case <-loaded:
	}
	f.mu.Lock()
	f.loaded = true
	f.mu.Unlock()
	delay := forgetRetryMin
	for {
		var wait <-chan time.Time
		if f.drain(ctx) {
			delay = forgetRetryMin
		} else {
			wait = time.After(delay)
			delay = min(2*delay, forgetRetryMax)
		}
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			if wait != nil {
				// A failure waits its delay even when more comes.
				select {
				case <-ctx.Done():
					return
				case <-wait:
				}
			}
		case <-wait:
		}
	}
}

// drain deletes the grants of the waiting subjects; it stops at the first
// failure (the store is likely down), leaving it and the rest waiting, and
// reports whether everything was done.
func (f *grantForgetter) drain(ctx context.Context) bool {
	for {
		f.mu.Lock()
		var sub authz.Subject
		var why forgetCause
		found := false
		for sub, why = range f.pending {
			found = true
			break
		}
		f.mu.Unlock()
		if !found {
			return true
		}
		if err := f.try(ctx, sub, why); err != nil {
			if ctx.Err() == nil {
				f.log.Warn("grants of a deleted subject not deleted yet; retrying", zap.String("subject", sub.String()),
					zap.Error(err))
			}
			return false
		}
		f.mu.Lock()
		if f.pending[sub] == why {
			delete(f.pending, sub)
		}
		f.mu.Unlock()
	}
}
