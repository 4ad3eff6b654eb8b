// Package uniqpeer carries identity's question about uniqueness across
// centres (identity/uniq.go) over NATS: a level-2 centre's identity asks
// (Client, a request), level 1's answers (Serve, a queue subscription of
// its instances), over the leaf link that already joins the centres' NATS
// servers. The subject is outside uias.>, which the leaf link denies both
// ways (the change events cross only by JetStream sourcing). Level 1's
// reservations live in a JetStream key-value bucket (Reservations), shared
// by its identity instances, forgotten after its TTL.
package uniqpeer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
)

// Subject is the question's subject: level 1's identity serves it.
const Subject = "centres.identity.uniqueness"

// Queue is the queue group of level 1's identity instances.
const Queue = "identity"

// Bucket is level 1's bucket of reservations.
const Bucket = "UIAS_UNIQUE_CLAIMS"

// answer is the reply: the verdict, or an error level 1 met (its store
// down): the question is then unanswered.
type answer struct {
	identity.UniqueVerdict
	Error string `json:"error,omitempty"`
}

// Client asks level 1. Safe for concurrent use.
type Client struct{ nc *nats.Conn }

// NewClient asks over nc.
func NewClient(nc *nats.Conn) *Client { return &Client{nc: nc} }

// Claim implements identity.UniquenessPeer: ctx bounds the wait (the
// service gives identity.uniqueness.wait). No responder (level 1's
// identity down, the leaf link cut), a time-out or level 1's error is an
// error.
func (c *Client) Claim(ctx context.Context, q identity.UniqueClaim) (identity.UniqueVerdict, error) {
	b, err := json.Marshal(q)
	if err != nil {
		return identity.UniqueVerdict{}, err
	}
	m, err := c.nc.RequestWithContext(ctx, Subject, b)
	if err != nil {
		return identity.UniqueVerdict{}, fmt.Errorf("ask level 1: %w", err)
	}
	var a answer
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return identity.UniqueVerdict{}, fmt.Errorf("level 1's answer: %w", err)
	}
	if a.Error != "" {
		return identity.UniqueVerdict{}, fmt.Errorf("level 1: %s", a.Error)
	}
	return a.UniqueVerdict, nil
}

// Answerer answers a claim (identity.Service.AnswerClaim).
type Answerer interface {
	AnswerClaim(ctx context.Context, c identity.UniqueClaim) (identity.UniqueVerdict, error)
}

// Serve answers the questions on nc until the subscription ends. Each
// question is answered within timeout.
func Serve(nc *nats.Conn, svc Answerer, log *zap.Logger, timeout time.Duration) (*nats.Subscription, error) {
	return nc.QueueSubscribe(Subject, Queue, func(m *nats.Msg) {
		var q identity.UniqueClaim
		var a answer
		if err := json.Unmarshal(m.Data, &q); err != nil {
			a.Error = "a malformed question"
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			v, err := svc.AnswerClaim(ctx, q)
			cancel()
			a.UniqueVerdict = v
			if err != nil {
				a.Error = "not answered"
				if e, ok := apierr.As(err); ok {
					a.Error = e.Reason + ": " + e.Message
				}
				log.Warn("a question of another centre about uniqueness not answered", zap.String("centre", q.Centre),
					zap.Error(err))
			}
		}
		b, _ := json.Marshal(a)
		_ = m.Respond(b)
	})
}

// Reservations are identity.Reservations in a JetStream key-value bucket
// (created on first use, so the component starts while NATS is down).
type Reservations struct {
	js       jetstream.JetStream
	ttl      time.Duration
	replicas int
	mu       sync.Mutex
	kv       jetstream.KeyValue
}

// NewReservations keeps reservations in Bucket for ttl.
func NewReservations(js jetstream.JetStream, ttl time.Duration, replicas int) *Reservations {
	return &Reservations{js: js, ttl: ttl, replicas: max(replicas, 1)}
}

func (r *Reservations) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kv != nil {
		return r.kv, nil
	}
	kv, err := r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket,
		Description: "UIAS login names and ID number keys reserved for a level-2 centre's person being created",
		History:     1, TTL: r.ttl, Storage: jetstream.FileStorage, Replicas: r.replicas})
	if err != nil {
		return nil, err
	}
	r.kv = kv
	return kv, nil
}

// Reserve implements identity.Reservations: Create when free; the holder
// when taken (Create refused, the holder read; a holder that went between
// the two is tried once more).
func (r *Reservations) Reserve(ctx context.Context, key, holder string) (string, error) {
	kv, err := r.bucket(ctx)
	if err != nil {
		return "", err
	}
	for range 2 {
		_, err := kv.Create(ctx, key, []byte(holder))
		if err == nil {
			return holder, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				r.mu.Lock()
				r.kv = nil
				r.mu.Unlock()
			}
			return "", err
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		return string(e.Value()), nil
	}
	return "", errors.New("reservation: the key changed hands twice")
}
