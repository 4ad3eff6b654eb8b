package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/services/ticket"
)

// listTimeout bounds one pass over the sessions bucket (AllSessions), which
// takes longer than a single read.
const listTimeout = 30 * time.Second

var _ ticket.SessionLister = (*Store)(nil)

// AllSessions implements ticket.SessionLister: one pass over the latest
// value of every session key (a watcher, i.e. an ordered consumer on the
// bucket's stream, which the ticket user of the deployed NATS
// configuration may create), ignoring ended and expired keys.
func (s *Store) AllSessions(ctx context.Context, fn func(*ticket.Session) error) error {
	ctx, cancel := context.WithTimeout(ctx, max(s.opts.Timeout, listTimeout))
	defer cancel()
	kv, _, err := s.buckets(ctx)
	if err != nil {
		return err
	}
	w, err := kv.Watch(ctx, sessionKey("*"), jetstream.IgnoreDeletes())
	if err != nil {
		return s.fail(err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return unavailable(ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return unavailable(errors.New("the sessions bucket's watcher stopped"))
			}
			if e == nil {
				return nil // every stored session was delivered
			}
			var sess ticket.Session
			if err := json.Unmarshal(e.Value(), &sess); err != nil {
				return fmt.Errorf("session record %s: %w", e.Key(), err)
			}
			if err := fn(&sess); err != nil {
				return err
			}
		}
	}
}
