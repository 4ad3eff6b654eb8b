// Package natsnonce is a caller.NonceStore in a JetStream key-value bucket,
// shared by every replica of a component (and every component) that
// checks signed requests: a nonce used at one replica is a replay at any
// other.
//
// A nonce is recorded with KeyValue.Create, which fails when the key
// exists; the bucket's TTL (at least the signature window on each side of
// a request's timestamp) forgets it afterwards.
package natsnonce

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/caller"
)

// Bucket is the key-value bucket of the nonces.
const Bucket = "UIAS_REQUEST_NONCES"

// TTL is how long the bucket keeps a nonce.
const TTL = 11 * time.Minute

// Options configure a Store.
type Options struct {
	Replicas int           // the bucket's replicas (default 1)
	Timeout  time.Duration // of one record (default 2s)
	// Bucket, TTL and Description name another bucket of things seen once
	// (default Bucket, TTL and the request nonces' description): e.g.
	// identity's fingerprint probes, kept for days.
	Bucket, Description string
	TTL                 time.Duration
}

// Store is the NonceStore. Safe for concurrent use.
type Store struct {
	js   jetstream.JetStream
	opts Options
	mu   sync.Mutex
	kv   jetstream.KeyValue
}

var _ caller.NonceStore = (*Store)(nil)

// New returns a store over js; the bucket is created (or updated) on first
// use, so the component starts while NATS is down.
func New(js jetstream.JetStream, o Options) *Store {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Bucket == "" {
		o.Bucket = Bucket
	}
	if o.TTL <= 0 {
		o.TTL = TTL
	}
	if o.Description == "" {
		o.Description = "UIAS nonces of signed application requests (replay protection)"
	}
	return &Store{js: js, opts: o}
}

func (s *Store) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	if nc := s.js.Conn(); nc != nil && !nc.IsConnected() {
		return nil, nats.ErrConnectionClosed
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: s.opts.Bucket,
		Description: s.opts.Description,
		History:     1, TTL: s.opts.TTL, Storage: jetstream.FileStorage, Replicas: s.opts.Replicas})
	if err != nil {
		return nil, err
	}
	s.kv = kv
	return kv, nil
}

// Remember implements caller.NonceStore. ttl must not exceed TTL (the
// bucket's): a nonce is kept for TTL whatever is asked.
func (s *Store) Remember(ctx context.Context, key string, ttl time.Duration) error {
	if ttl > s.opts.TTL {
		return errors.New("natsnonce: a nonce to keep longer than the bucket's TTL")
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	kv, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	_, err = kv.Create(ctx, key, []byte{1})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return caller.ErrNonceSeen
	case errors.Is(err, jetstream.ErrBucketNotFound), errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrNoStreamResponse):
		// the bucket was deleted: made again at the next call
		s.mu.Lock()
		s.kv = nil
		s.mu.Unlock()
	}
	return err
}
