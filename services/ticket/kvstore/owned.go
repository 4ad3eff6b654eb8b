package kvstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
)

// OwnedSubjectPrefix is where an instance answers for the tickets it keeps:
// OwnedSubjectPrefix + its name (Store.Replica). A request carries a
// ticket's key (a hash of its value); the answer is the ticket's record,
// taken out of the instance's memory, or empty when it keeps no such
// ticket. The deployed NATS configuration lets the ticket user publish and
// subscribe there.
const OwnedSubjectPrefix = "uias.ticket.owned."

// defaultMaxTickets bounds the tickets an instance keeps.
const defaultMaxTickets = 200000

// owned is the service and proxy tickets an instance issued and that were
// neither validated nor expired: single use is a delete from its map.
type owned struct {
	replica string
	max     int

	mu      sync.Mutex
	tickets map[string]ownedTicket // by key
	order   []expiring             // keys in the order kept, to drop the expired
	head    int
	sub     *nats.Subscription // the answers to other instances (set under mu and subMu)

	subMu sync.Mutex // held while subscribing
}

type ownedTicket struct {
	t       *ticket.Ticket
	expires time.Time
}

type expiring struct {
	key     string
	expires time.Time
}

func (o *owned) init(replica string, limit int) {
	if replica == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		replica = hex.EncodeToString(b)
	}
	if limit <= 0 {
		limit = defaultMaxTickets
	}
	o.replica, o.max, o.tickets = replica, limit, map[string]ownedTicket{}
}

// put keeps t under key until expires.
func (o *owned) put(key string, t *ticket.Ticket, expires time.Time, now time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.head < len(o.order) && !now.Before(o.order[o.head].expires) {
		e := o.order[o.head]
		if k, ok := o.tickets[e.key]; ok && !now.Before(k.expires) {
			delete(o.tickets, e.key)
		}
		o.order[o.head] = expiring{}
		o.head++
	}
	if o.head > 1024 && o.head > len(o.order)/2 {
		o.order = append(o.order[:0:0], o.order[o.head:]...)
		o.head = 0
	}
	if len(o.tickets) >= o.max {
		return apierr.New(apierr.Unavailable, "TICKET_STORE_UNAVAILABLE",
			"too many tickets are waiting for validation, retry later")
	}
	o.tickets[key] = ownedTicket{t: t, expires: expires}
	o.order = append(o.order, expiring{key: key, expires: expires})
	return nil
}

// take removes and returns the ticket under key, if kept and not expired.
func (o *owned) take(key string, now time.Time) (*ticket.Ticket, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.tickets[key]
	if !ok {
		return nil, false
	}
	delete(o.tickets, key)
	return k.t, now.Before(k.expires)
}

// Replica implements ticket.Store.
func (s *Store) Replica() string { return s.owned.replica }

// serve makes sure this instance answers other instances for its tickets
// (before it keeps the first: a ticket nobody else could validate is never
// issued), and that NATS is there: a ticket issued while it is away could
// not be validated (validation reads the session).
func (s *Store) serve(ctx context.Context) error {
	nc := s.js.Conn()
	if nc == nil || !nc.IsConnected() {
		return unavailable(nats.ErrConnectionClosed)
	}
	s.owned.mu.Lock()
	subscribed := s.owned.sub != nil
	s.owned.mu.Unlock()
	if subscribed {
		return nil
	}
	s.owned.subMu.Lock()
	defer s.owned.subMu.Unlock()
	if s.owned.sub != nil {
		return nil
	}
	sub, err := nc.Subscribe(OwnedSubjectPrefix+s.owned.replica, s.answer)
	if err != nil {
		return unavailable(err)
	}
	// The server knows of the subscription before any ticket is handed
	// out (else another instance could find no answerer for it).
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return unavailable(err)
	}
	s.owned.mu.Lock()
	s.owned.sub = sub
	s.owned.mu.Unlock()
	return nil
}

// answer takes a ticket out for another instance.
func (s *Store) answer(m *nats.Msg) {
	var data []byte
	if t, ok := s.owned.take(string(m.Data), time.Now()); ok {
		data, _ = json.Marshal(t)
	}
	_ = m.Respond(data)
}

// PutTicket implements ticket.Store: the ticket is kept in this instance's
// memory (nothing is written to NATS).
func (s *Store) PutTicket(ctx context.Context, key string, t *ticket.Ticket, ttl time.Duration) error {
	if err := s.serve(ctx); err != nil {
		return err
	}
	rec := *t
	now := time.Now()
	return s.owned.put(key, &rec, now.Add(ttlOf(ttl)), now)
}

// ConsumeTicket implements ticket.Store: from this instance's memory, or
// through a request to the instance that keeps the ticket (no answerer:
// that instance has stopped, the ticket went with it).
func (s *Store) ConsumeTicket(ctx context.Context, replica, key string) (*ticket.Ticket, error) {
	if replica == s.owned.replica {
		t, ok := s.owned.take(key, time.Now())
		if !ok {
			return nil, ticket.ErrNotFound
		}
		return t, nil
	}
	nc := s.js.Conn()
	if nc == nil || !nc.IsConnected() {
		return nil, unavailable(nats.ErrConnectionClosed)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, OwnedSubjectPrefix+replica, []byte(key))
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, ticket.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if len(m.Data) == 0 {
		return nil, ticket.ErrNotFound
	}
	var t ticket.Ticket
	if err := json.Unmarshal(m.Data, &t); err != nil {
		return nil, fmt.Errorf("ticket record from instance %s: %w", replica, err)
	}
	return &t, nil
}
