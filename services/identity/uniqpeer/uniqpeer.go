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
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
)

// Subject is the question's subject: a centre asks on Subject.<centre>
// (SubjectOf), level 1's identity serves Subject.* and takes the asking
// centre from the subject, never from the question. Each level-2 centre's
// leaf user at level 1 may publish its own centre's subject only
// (deploy/centres/nats-l1.conf), so a centre cannot ask as another, nor
// hold reservations under a made-up name (review sec29b M1).
const Subject = "centres.identity.uniqueness"

// SubjectOf is the subject centre asks on.
func SubjectOf(centre string) string { return Subject + "." + centre }

// Queue is the queue group of level 1's identity instances.
const Queue = "identity"

// Bucket is level 1's bucket of reservations.
const Bucket = "UIAS_UNIQUE_CLAIMS"

// MaxBytes bounds the bucket (some 300 000 reservations).
const MaxBytes = 64 << 20

// answer is the reply: the verdict, or an error level 1 met (its store
// down): the question is then unanswered.
type answer struct {
	identity.UniqueVerdict
	Error string `json:"error,omitempty"`
}

// Client asks level 1. Safe for concurrent use.
type Client struct {
	nc     *nats.Conn
	centre string
}

// NewClient asks over nc as centre (this centre's name: the subject).
func NewClient(nc *nats.Conn, centre string) *Client { return &Client{nc: nc, centre: centre} }

// Claim implements identity.UniquenessPeer: ctx bounds the wait (the
// service gives identity.uniqueness.wait). No responder (level 1's
// identity down, the leaf link cut), a time-out or level 1's error is an
// error.
func (c *Client) Claim(ctx context.Context, q identity.UniqueClaim) (identity.UniqueVerdict, error) {
	b, err := json.Marshal(q)
	if err != nil {
		return identity.UniqueVerdict{}, err
	}
	m, err := c.nc.RequestWithContext(ctx, SubjectOf(c.centre), b)
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

// Answerer answers a claim of centre (identity.Service.AnswerPeerClaim).
type Answerer interface {
	AnswerPeerClaim(ctx context.Context, centre string, c identity.UniqueClaim) (identity.UniqueVerdict, error)
}

// Options tune Serve.
type Options struct {
	// Timeout bounds each answer.
	Timeout time.Duration
	// Concurrent is how many questions an instance answers at once
	// (default 8); a question arriving while all are busy is shed: answered
	// "busy" at once (the asker applies peer_unreachable), counted and
	// logged, rather than queued behind a flood.
	Concurrent int
	// Observe, when set, counts the shed questions (outcome "shed").
	Observe func(centre, outcome string)
}

// Serve answers the questions on nc until the subscription ends, up to
// o.Concurrent at once (review sec29b M2). The asking centre is the last
// token of the subject.
func Serve(nc *nats.Conn, svc Answerer, log *zap.Logger, o Options) (*nats.Subscription, error) {
	if o.Concurrent <= 0 {
		o.Concurrent = 8
	}
	slots := make(chan struct{}, o.Concurrent)
	shedLog := &rate.Sometimes{Interval: 10 * time.Second}
	return nc.QueueSubscribe(Subject+".*", Queue, func(m *nats.Msg) {
		centre := strings.TrimPrefix(m.Subject, Subject+".")
		select {
		case slots <- struct{}{}:
		default:
			if o.Observe != nil {
				o.Observe(centre, "shed")
			}
			shedLog.Do(func() {
				log.Warn("questions of other centres about uniqueness shed: all answerers busy", zap.String("centre", centre),
					zap.Int("concurrent", o.Concurrent))
			})
			respond(m, answer{Error: "level 1 is busy"})
			return
		}
		go func() {
			defer func() { <-slots }()
			respond(m, answerOne(svc, log, o.Timeout, centre, m.Data))
		}()
	})
}

func answerOne(svc Answerer, log *zap.Logger, timeout time.Duration, centre string, data []byte) answer {
	var q identity.UniqueClaim
	var a answer
	if err := json.Unmarshal(data, &q); err != nil {
		a.Error = "a malformed question"
		return a
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	v, err := svc.AnswerPeerClaim(ctx, centre, q)
	cancel()
	a.UniqueVerdict = v
	if err != nil {
		a.Error = "not answered"
		if e, ok := apierr.As(err); ok {
			a.Error = e.Reason + ": " + e.Message
			if e.Reason == identity.ReasonUniquenessRefused || e.Reason == identity.ReasonUniquenessRateLimited {
				return a // counted and logged by the service
			}
		}
		log.Warn("a question of another centre about uniqueness not answered", zap.String("centre", centre), zap.Error(err))
	}
	return a
}

func respond(m *nats.Msg, a answer) {
	b, _ := json.Marshal(a)
	_ = m.Respond(b)
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
		History:     1, TTL: r.ttl, Storage: jetstream.FileStorage, Replicas: r.replicas,
		// Bounded: a flood of reservations fills it, then level 1 answers
		// "not answered" (peer_unreachable) rather than growing its
		// JetStream storage (review sec29b M1).
		MaxBytes: MaxBytes})
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
