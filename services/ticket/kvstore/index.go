package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/services/ticket"
)

var _ ticket.SessionIndexer = (*Store)(nil)

// LiveSessions implements ticket.SessionIndexer: the index WatchSessions
// keeps, nil until its first pass over the bucket is done (ListSessions
// then reads the bucket).
func (s *Store) LiveSessions() *ticket.SessionIndex {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	return s.idx
}

// indexPut records a session this Store wrote (at once: the watch brings
// it later). The index keeps its own copy.
func (s *Store) indexPut(sess *ticket.Session, rev uint64) {
	s.idxMu.Lock()
	idx, loading := s.idx, s.loading
	s.idxMu.Unlock()
	if idx == nil && loading == nil {
		return
	}
	c := *sess
	c.Services = append([]ticket.ServiceUse(nil), sess.Services...)
	for _, x := range []*ticket.SessionIndex{idx, loading} {
		if x != nil {
			x.Put(&c, rev)
		}
	}
}

// indexRemove records a session this Store deleted at revision rev.
func (s *Store) indexRemove(id string, rev uint64) {
	s.idxMu.Lock()
	idx, loading := s.idx, s.loading
	s.idxMu.Unlock()
	now := time.Now()
	for _, x := range []*ticket.SessionIndex{idx, loading} {
		if x != nil {
			x.Remove(id, rev, now)
		}
	}
}

// watchRetry is how long WatchSessions waits before watching again after
// the watch failed or stopped (NATS away, the bucket not made yet).
const watchRetry = time.Second

// WatchSessions keeps the index of live sessions (LiveSessions) until ctx
// ends: a watch of the sessions bucket (an ordered consumer, which the
// ticket user of the deployed NATS configuration may create) loads every
// stored session into a new index, which then answers, and applies every
// later write, delete and expiry (JetStream's marker), whichever instance
// made it. This Store's own writes reach the index at once. When the watch
// stops (NATS away), the index answers as it was and a new one is loaded
// when NATS answers again.
func (s *Store) WatchSessions(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.watchOnce(ctx); err != nil && s.opts.WatchError != nil && ctx.Err() == nil {
			s.opts.WatchError(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(watchRetry):
		}
	}
}

// watchOnce loads a new index and keeps it until the watch stops.
func (s *Store) watchOnce(ctx context.Context) error {
	bctx, cancel := s.ctx(ctx)
	kv, _, err := s.buckets(bctx)
	cancel()
	if err != nil {
		return err
	}
	loading := ticket.NewSessionIndex()
	s.idxMu.Lock()
	s.loading = loading
	s.idxMu.Unlock()
	defer func() {
		s.idxMu.Lock()
		if s.loading == loading {
			s.loading = nil
		}
		s.idxMu.Unlock()
	}()
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	w, err := kv.Watch(wctx, sessionKey("*"))
	if err != nil {
		return s.fail(err)
	}
	defer func() {
		_ = w.Stop()
		// The watcher's callback blocks on a full channel: let it finish.
		go func() {
			for range w.Updates() {
			}
		}()
	}()
	idx := loading
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the sessions bucket's watch stopped")
			}
			if e == nil { // every stored session loaded: the new index answers
				s.idxMu.Lock()
				s.idx, s.loading = loading, nil
				s.idxMu.Unlock()
				continue
			}
			id := e.Key()[len(sessionKey("")):]
			if op := e.Operation(); op == jetstream.KeyValueDelete || op == jetstream.KeyValuePurge {
				idx.Remove(id, e.Revision(), time.Now())
				// Its tickets here go too (EndTickets told this instance
				// already, unless the instance that ended it could not).
				s.endedHere(id)
				continue
			}
			var sess ticket.Session
			if err := json.Unmarshal(e.Value(), &sess); err != nil || sess.ID != id {
				continue // not a session record: not listed
			}
			idx.Put(&sess, e.Revision())
		}
	}
}
