// Package kvstore keeps the ticket component's sessions and tickets in NATS
// JetStream key-value buckets with a time to live per key (LimitMarkerTTL,
// nats-server >= 2.11): any replica of the component reads what another
// wrote, and a restart loses nothing. Single use is a purge that expects
// the revision read (JetStream's expected last sequence per subject), so of
// concurrent consumers of one ticket exactly one succeeds.
//
// Keys are hashes of ticket values (ticket.SessionID and the like): what
// the buckets hold cannot be replayed as a ticket.
package kvstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
)

// Bucket names.
const (
	BucketSessions = "UIAS_TICKET_SESSIONS"
	BucketTickets  = "UIAS_TICKET_TICKETS"
)

// Options configure a Store.
type Options struct {
	// Replicas of each bucket (1 with the embedded server; 3 on a cluster).
	Replicas int
	// Timeout bounds every operation, so that a NATS outage is a prompt
	// error and never a hang (default 2s).
	Timeout time.Duration
	// MaxSessionLife bounds the sessions bucket (the hard session lifetime);
	// records also carry their own time to live.
	MaxSessionLife time.Duration
}

// Store is the ticket.Store on JetStream KV.
type Store struct {
	js   jetstream.JetStream
	opts Options

	mu       sync.Mutex
	sessions jetstream.KeyValue
	tickets  jetstream.KeyValue
}

// New returns a Store over js. The buckets are created (or updated) on
// first use, so the component starts while NATS is down.
func New(js jetstream.JetStream, o Options) *Store {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	return &Store{js: js, opts: o}
}

var _ ticket.Store = (*Store)(nil)

// buckets returns the bucket handles, creating the buckets when needed.
func (s *Store) buckets(ctx context.Context) (jetstream.KeyValue, jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions != nil {
		return s.sessions, s.tickets, nil
	}
	if nc := s.js.Conn(); nc != nil && !nc.IsConnected() {
		return nil, nil, unavailable(nats.ErrConnectionClosed)
	}
	mk := func(name, desc string, maxAge time.Duration) (jetstream.KeyValue, error) {
		return s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Description: desc,
			History: 1, Storage: jetstream.FileStorage, Replicas: s.opts.Replicas, TTL: maxAge,
			LimitMarkerTTL: time.Minute, MaxValueSize: 256 << 10})
	}
	sess, err := mk(BucketSessions, "UIAS single sign-on sessions", 0)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	tick, err := mk(BucketTickets, "UIAS service, proxy and proxy-granting tickets", 0)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	s.sessions, s.tickets = sess, tick
	return sess, tick, nil
}

// unavailable wraps a backend failure: the caller sees
// TICKET_STORE_UNAVAILABLE, the log the cause.
func unavailable(err error) error {
	return apierr.Wrap(err, apierr.Unavailable, "TICKET_STORE_UNAVAILABLE", "the ticket store is unavailable, retry later")
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.Timeout)
}

// ttlOf rounds a time to live up to whole seconds, at least one (the
// server's granularity).
func ttlOf(d time.Duration) time.Duration {
	d = (d + time.Second - 1).Truncate(time.Second)
	return max(d, time.Second)
}

func sessionKey(id string) string { return "s." + id }
func userKey(userID, id string) string {
	return "u." + hex.EncodeToString([]byte(userID)) + "." + id
}
func ticketKey(key string) string { return "t." + key }
func pgtKey(key string) string    { return "p." + key }

// fail maps a backend error: missing keys to ticket.ErrNotFound, revision
// mismatches to ticket.ErrConflict, the rest (timeouts, no connection, no
// JetStream) to TICKET_STORE_UNAVAILABLE.
func fail(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return ticket.ErrNotFound
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch), wrongLastSeq(err):
		return ticket.ErrConflict
	}
	return unavailable(err)
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// publish writes value under key of kv's bucket expecting revision rev (0:
// the key must not exist) with a time to live.
func (s *Store) publish(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) error {
	m := &nats.Msg{Subject: "$KV." + bucket + "." + key, Data: value, Header: nats.Header{}}
	_, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttlOf(ttl)))
	return err
}

// CreateSession implements ticket.Store.
func (s *Store) CreateSession(ctx context.Context, sess *ticket.Session, ttl time.Duration) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, _, err := s.buckets(ctx); err != nil {
		return err
	}
	data, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	if err := s.publish(ctx, BucketSessions, sessionKey(sess.ID), data, 0, ttl); err != nil {
		return fail(err)
	}
	// The person's index lives as long as the session can.
	life := time.Until(sess.HardExpiry)
	return fail(s.publish(ctx, BucketSessions, userKey(sess.UserID, sess.ID), nil, 0, life))
}

// GetSession implements ticket.Store.
func (s *Store) GetSession(ctx context.Context, id string) (*ticket.Session, uint64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	kv, _, err := s.buckets(ctx)
	if err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, sessionKey(id))
	if err != nil {
		return nil, 0, fail(err)
	}
	var sess ticket.Session
	if err := json.Unmarshal(e.Value(), &sess); err != nil {
		return nil, 0, fmt.Errorf("session record %s: %w", id, err)
	}
	return &sess, e.Revision(), nil
}

// UpdateSession implements ticket.Store.
func (s *Store) UpdateSession(ctx context.Context, sess *ticket.Session, rev uint64, ttl time.Duration) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, _, err := s.buckets(ctx); err != nil {
		return err
	}
	data, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return fail(s.publish(ctx, BucketSessions, sessionKey(sess.ID), data, rev, ttl))
}

// DeleteSession implements ticket.Store: the session is purged if it is
// still at the revision read, so that of concurrent ends one tells of it.
func (s *Store) DeleteSession(ctx context.Context, id string) (*ticket.Session, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	kv, _, err := s.buckets(ctx)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		e, err := kv.Get(ctx, sessionKey(id))
		if err != nil {
			return nil, fail(err)
		}
		var sess ticket.Session
		if err := json.Unmarshal(e.Value(), &sess); err != nil {
			return nil, fmt.Errorf("session record %s: %w", id, err)
		}
		err = fail(kv.Purge(ctx, sessionKey(id), jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(time.Second)))
		if errors.Is(err, ticket.ErrConflict) && attempt < 5 {
			// Used or ended meanwhile: read again (whoever ended it
			// tells of it; one still live is purged now).
			continue
		}
		if err != nil {
			return nil, err
		}
		_ = kv.Purge(ctx, userKey(sess.UserID, id), jetstream.PurgeTTL(time.Second))
		return &sess, nil
	}
}

// UserSessions implements ticket.Store.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	kv, _, err := s.buckets(ctx)
	if err != nil {
		return nil, err
	}
	prefix := "u." + hex.EncodeToString([]byte(userID)) + "."
	l, err := kv.ListKeysFiltered(ctx, prefix+"*")
	if err != nil {
		return nil, fail(err)
	}
	defer func() { _ = l.Stop() }()
	var ids []string
	for k := range l.Keys() {
		ids = append(ids, strings.TrimPrefix(k, prefix))
	}
	if ctx.Err() != nil {
		return nil, unavailable(ctx.Err())
	}
	return ids, nil
}

// PutTicket implements ticket.Store.
func (s *Store) PutTicket(ctx context.Context, key string, t *ticket.Ticket, ttl time.Duration) error {
	return s.put(ctx, ticketKey(key), t, ttl)
}

// PutPGT implements ticket.Store.
func (s *Store) PutPGT(ctx context.Context, key string, p *ticket.PGT, ttl time.Duration) error {
	return s.put(ctx, pgtKey(key), p, ttl)
}

func (s *Store) put(ctx context.Context, key string, v any, ttl time.Duration) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, _, err := s.buckets(ctx); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return fail(s.publish(ctx, BucketTickets, key, data, 0, ttl))
}

// ConsumeTicket implements ticket.Store: read, then purge expecting the
// revision read. A concurrent consumer's purge makes ours fail (and the
// reverse), so exactly one gets the ticket.
func (s *Store) ConsumeTicket(ctx context.Context, key string) (*ticket.Ticket, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, kv, err := s.buckets(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, ticketKey(key))
	if err != nil {
		return nil, fail(err)
	}
	if err := kv.Purge(ctx, ticketKey(key), jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(time.Second)); err != nil {
		if err = fail(err); errors.Is(err, ticket.ErrConflict) {
			return nil, ticket.ErrNotFound // someone else consumed it
		}
		return nil, err
	}
	var t ticket.Ticket
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return nil, fmt.Errorf("ticket record: %w", err)
	}
	return &t, nil
}

// GetPGT implements ticket.Store.
func (s *Store) GetPGT(ctx context.Context, key string) (*ticket.PGT, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, kv, err := s.buckets(ctx)
	if err != nil {
		return nil, err
	}
	e, err := kv.Get(ctx, pgtKey(key))
	if err != nil {
		return nil, fail(err)
	}
	var p ticket.PGT
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return nil, fmt.Errorf("pgt record: %w", err)
	}
	return &p, nil
}

// Ping implements ticket.Store.
func (s *Store) Ping(ctx context.Context) error {
	if nc := s.js.Conn(); nc != nil && !nc.IsConnected() {
		return unavailable(nats.ErrConnectionClosed)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, _, err := s.buckets(ctx)
	return err
}
