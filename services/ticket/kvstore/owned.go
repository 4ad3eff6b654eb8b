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

// EndedSubjectSuffix follows an instance's OwnedSubjectPrefix subject
// where it is told that a session ended (the request carries the session
// id): it drops the session's tickets and refuses new ones before it
// answers (empty).
const EndedSubjectSuffix = ".ended"

// PeekSubjectSuffix follows an instance's OwnedSubjectPrefix subject where
// it answers a ticket's record without taking it out (the request carries
// the key; the answer is empty when it keeps no such ticket): a validation
// that must ask another component about the person before it uses the
// ticket up (ADR 0019). An instance of an earlier version does not answer
// there (no responders).
const PeekSubjectSuffix = ".peek"

// endedKeep is the least time an instance refuses new tickets of a session
// that ended (an issue may be under way from a copy of it read before).
const endedKeep = 2 * time.Minute

// defaultMaxTickets bounds the tickets an instance keeps.
const defaultMaxTickets = 200000

// owned is the service and proxy tickets an instance issued and that were
// neither validated nor expired: single use is a delete from its map.
type owned struct {
	replica string
	max     int

	mu        sync.Mutex
	tickets   map[string]ownedTicket         // by key
	bySession map[string]map[string]struct{} // keys by session id
	ended     map[string]time.Time           // sessions ended, refused until then
	uses      map[string]*noted              // by session id: the latest ticket per service (NoteUse)
	notes     int                            // NoteUse calls, to sweep uses now and then
	endedKeep time.Duration
	order     []expiring // keys in the order kept, to drop the expired
	head      int
	sub       *nats.Subscription // the answers to other instances (set under mu and subMu)
	endSub    *nats.Subscription // the session ends (with sub)
	peekSub   *nats.Subscription // the peeks (with sub)

	subMu sync.Mutex // held while subscribing
}

// noted is what NoteUse remembered of a session.
type noted struct {
	until time.Time
	bySvc map[string]ticket.ServiceUse
}

type ownedTicket struct {
	t       *ticket.Ticket
	expires time.Time
	epoch   uint64 // the NATS connection's reconnections when kept
}

// expiring is a key of order: kept without a pointer (the key's bytes,
// the time in Unix nanoseconds), so that the garbage collector does not
// scan the order, which holds every ticket issued in the last ticket
// lifetime (validated ones included: some 270,000 at 27,000 a second and
// the CAS default of 10 s), nor keep each key's string alive after its
// ticket was validated.
type expiring struct {
	key     [maxKeyLen]byte
	n       uint8
	expires int64
}

// maxKeyLen is the longest key put takes: a ticket's key (keyOf) is 32.
const maxKeyLen = 32

func (e *expiring) keyString() string { return string(e.key[:e.n]) }

func (o *owned) init(replica string, limit int, endedKeep time.Duration) {
	if replica == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		replica = hex.EncodeToString(b)
	}
	if limit <= 0 {
		limit = defaultMaxTickets
	}
	o.replica, o.max, o.tickets = replica, limit, map[string]ownedTicket{}
	o.bySession, o.ended, o.endedKeep = map[string]map[string]struct{}{}, map[string]time.Time{}, endedKeep
	o.uses = map[string]*noted{}
}

// note remembers u as the latest ticket of its service in session id
// until until (at most o.max sessions: beyond, nothing is noted and single
// logout names the ticket the session recorded).
func (o *owned) note(id string, u ticket.ServiceUse, until, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.notes++; o.notes%1024 == 0 {
		for k, n := range o.uses {
			if !now.Before(n.until) {
				delete(o.uses, k)
			}
		}
	}
	n := o.uses[id]
	if n == nil {
		if len(o.uses) >= o.max {
			return
		}
		n = &noted{bySvc: map[string]ticket.ServiceUse{}}
		o.uses[id] = n
	}
	if until.After(n.until) {
		n.until = until
	}
	if prev, ok := n.bySvc[u.Service]; ok && prev.At.After(u.At) {
		return
	}
	if _, ok := n.bySvc[u.Service]; !ok && len(n.bySvc) >= ticket.MaxServicesPerSession {
		return
	}
	n.bySvc[u.Service] = u
}

// handOver returns and forgets the uses noted for session id.
func (o *owned) handOver(id string, now time.Time) []ticket.ServiceUse {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.uses[id]
	delete(o.uses, id)
	if n == nil || !now.Before(n.until) {
		return nil
	}
	out := make([]ticket.ServiceUse, 0, len(n.bySvc))
	for _, u := range n.bySvc {
		out = append(out, u)
	}
	return out
}

// unindex drops key from its session's keys (under mu).
func (o *owned) unindex(key string, t *ticket.Ticket) {
	if keys := o.bySession[t.SessionID]; keys != nil {
		if delete(keys, key); len(keys) == 0 {
			delete(o.bySession, t.SessionID)
		}
	}
}

// end drops the tickets of session id and refuses new ones for a while.
func (o *owned) end(id string, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for key := range o.bySession[id] {
		delete(o.tickets, key)
	}
	delete(o.bySession, id)
	if len(o.ended) >= 1024 && len(o.ended)%1024 == 0 {
		for k, until := range o.ended {
			if !now.Before(until) {
				delete(o.ended, k)
			}
		}
	}
	o.ended[id] = now.Add(o.endedKeep)
}

// hasEnded reports whether session id ended here recently.
func (o *owned) hasEnded(id string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	until, ok := o.ended[id]
	return ok && now.Before(until)
}

// put keeps t under key until expires (epoch: the connection's
// reconnections then).
func (o *owned) put(key string, t *ticket.Ticket, expires time.Time, now time.Time, epoch uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(key) > maxKeyLen {
		return fmt.Errorf("ticket store: a key is at most %d bytes, got %d", maxKeyLen, len(key))
	}
	nowNS := now.UnixNano()
	for o.head < len(o.order) && o.order[o.head].expires <= nowNS {
		e := &o.order[o.head]
		if k, ok := o.tickets[string(e.key[:e.n])]; ok && !now.Before(k.expires) {
			ks := e.keyString()
			delete(o.tickets, ks)
			o.unindex(ks, k.t)
		}
		o.order[o.head] = expiring{}
		o.head++
	}
	if o.head > 1024 && o.head > len(o.order)/2 {
		o.order = append(o.order[:0:0], o.order[o.head:]...)
		o.head = 0
	}
	if until, ok := o.ended[t.SessionID]; ok && now.Before(until) {
		return ticket.ErrNotFound
	}
	if len(o.tickets) >= o.max {
		return apierr.New(apierr.Unavailable, "TICKET_STORE_UNAVAILABLE",
			"too many tickets are waiting for validation, retry later")
	}
	o.tickets[key] = ownedTicket{t: t, expires: expires, epoch: epoch}
	keys := o.bySession[t.SessionID]
	if keys == nil {
		keys = map[string]struct{}{}
		o.bySession[t.SessionID] = keys
	}
	keys[key] = struct{}{}
	e := expiring{n: uint8(len(key)), expires: expires.UnixNano()}
	copy(e.key[:], key)
	o.order = append(o.order, e)
	return nil
}

// take removes and returns the ticket under key, if kept and not expired.
func (o *owned) take(key string, now time.Time) (ownedTicket, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.tickets[key]
	if !ok {
		return ownedTicket{}, false
	}
	delete(o.tickets, key)
	o.unindex(key, k.t)
	return k, now.Before(k.expires)
}

// peek returns a copy of the ticket under key, if kept and not expired,
// leaving it kept.
func (o *owned) peek(key string, now time.Time) (*ticket.Ticket, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k, ok := o.tickets[key]
	if !ok || !now.Before(k.expires) {
		return nil, false
	}
	t := *k.t
	return &t, true
}

// epoch is the NATS connection's reconnections, and whether it is
// connected.
func (s *Store) epoch() (uint64, bool) {
	nc := s.js.Conn()
	if nc == nil {
		return 0, false
	}
	return nc.Stats().Reconnects, nc.IsConnected()
}

// take takes a ticket out of this instance's memory. A guarded ticket
// stays guarded only if this instance has been connected to NATS without
// a break since it kept it: else it may have missed the end of the
// ticket's session (EndTickets finds no answerer for a disconnected
// instance), and validation reads the session.
func (s *Store) take(key string) (*ticket.Ticket, bool) {
	k, ok := s.owned.take(key, time.Now())
	if !ok {
		return nil, false
	}
	if k.t.Guarded {
		if e, connected := s.epoch(); !connected || e != k.epoch {
			k.t.Guarded = false
		}
	}
	return k.t, true
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
	endSub, err := nc.Subscribe(OwnedSubjectPrefix+s.owned.replica+EndedSubjectSuffix, s.answerEnded)
	if err != nil {
		_ = sub.Unsubscribe()
		return unavailable(err)
	}
	peekSub, err := nc.Subscribe(OwnedSubjectPrefix+s.owned.replica+PeekSubjectSuffix, s.answerPeek)
	if err != nil {
		_ = sub.Unsubscribe()
		_ = endSub.Unsubscribe()
		return unavailable(err)
	}
	// The server knows of the subscription before any ticket is handed
	// out (else another instance could find no answerer for it).
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		_ = endSub.Unsubscribe()
		_ = peekSub.Unsubscribe()
		return unavailable(err)
	}
	s.owned.mu.Lock()
	s.owned.sub, s.owned.endSub, s.owned.peekSub = sub, endSub, peekSub
	s.owned.mu.Unlock()
	return nil
}

// answer takes a ticket out for another instance.
func (s *Store) answer(m *nats.Msg) {
	var data []byte
	if t, ok := s.take(string(m.Data)); ok {
		data, _ = json.Marshal(t)
	}
	_ = m.Respond(data)
}

// answerPeek answers a ticket's record to another instance, keeping it.
func (s *Store) answerPeek(m *nats.Msg) {
	var data []byte
	if t, ok := s.owned.peek(string(m.Data), time.Now()); ok {
		data, _ = json.Marshal(t)
	}
	_ = m.Respond(data)
}

// answerEnded drops the tickets of a session that ended at another
// instance, and this instance's copy of it, and answers the uses it noted
// for it (JSON; empty when none, as instances before NoteUse answer).
func (s *Store) answerEnded(m *nats.Msg) {
	id := string(m.Data)
	uses := s.owned.handOver(id, time.Now())
	s.endedHere(id)
	var data []byte
	if len(uses) > 0 {
		data, _ = json.Marshal(uses)
	}
	_ = m.Respond(data)
}

// NoteUse implements ticket.Store (in this instance's memory).
func (s *Store) NoteUse(id string, u ticket.ServiceUse, until time.Time) {
	s.owned.note(id, u, until, time.Now())
}

// endedHere drops session id's tickets and copy, and refuses new tickets
// of it for a while.
func (s *Store) endedHere(id string) {
	s.owned.end(id, time.Now())
	s.keepSession(&ticket.Session{ID: id}, 0)
}

// EndTickets implements ticket.Store: this instance in memory, each other
// one through a request (all at once, each bounded by Options.Timeout; no
// answerer: that instance has stopped and its tickets went with it).
func (s *Store) EndTickets(ctx context.Context, id string, issuers []string) ([]ticket.ServiceUse, error) {
	uses := s.owned.handOver(id, time.Now())
	s.endedHere(id) // always: this instance's copy of the session goes too
	var others []string
	for _, r := range issuers {
		if r != s.owned.replica && ticket.ValidReplica(r) {
			others = append(others, r)
		}
	}
	if len(others) == 0 {
		return uses, nil
	}
	nc := s.js.Conn()
	if nc == nil || !nc.IsConnected() {
		return uses, unavailable(nats.ErrConnectionClosed)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	errs := make([]error, len(others))
	got := make([][]ticket.ServiceUse, len(others))
	var wg sync.WaitGroup
	for i, r := range others {
		wg.Go(func() {
			m, err := nc.RequestWithContext(ctx, OwnedSubjectPrefix+r+EndedSubjectSuffix, []byte(id))
			if err != nil && !errors.Is(err, nats.ErrNoResponders) {
				errs[i] = fmt.Errorf("instance %s: %w", r, err)
			}
			if err == nil && len(m.Data) > 0 {
				// Unreadable: that instance's notes are lost (single
				// logout names the session's own record), not the end.
				_ = json.Unmarshal(m.Data, &got[i])
			}
		})
	}
	wg.Wait()
	for _, g := range got {
		uses = append(uses, g...)
	}
	if err := errors.Join(errs...); err != nil {
		return uses, unavailable(err)
	}
	return uses, nil
}

// PutTicket implements ticket.Store: the ticket is kept in this instance's
// memory (nothing is written to NATS).
func (s *Store) PutTicket(ctx context.Context, key string, t *ticket.Ticket, ttl time.Duration) error {
	if err := s.serve(ctx); err != nil {
		return err
	}
	rec := *t
	now := time.Now()
	epoch, _ := s.epoch()
	return s.owned.put(key, &rec, now.Add(ttlOf(ttl)), now, epoch)
}

// ConsumeTicket implements ticket.Store: from this instance's memory, or
// through a request to the instance that keeps the ticket (no answerer:
// that instance has stopped, the ticket went with it).
func (s *Store) ConsumeTicket(ctx context.Context, replica, key string) (*ticket.Ticket, error) {
	if replica == s.owned.replica {
		t, ok := s.take(key)
		if !ok {
			return nil, ticket.ErrNotFound
		}
		return t, nil
	}
	return s.askOwner(ctx, replica, OwnedSubjectPrefix+replica, key)
}

// PeekTicket implements ticket.Store: ConsumeTicket's answer without
// taking the ticket out.
func (s *Store) PeekTicket(ctx context.Context, replica, key string) (*ticket.Ticket, error) {
	if replica == s.owned.replica {
		t, ok := s.owned.peek(key, time.Now())
		if !ok {
			return nil, ticket.ErrNotFound
		}
		return t, nil
	}
	return s.askOwner(ctx, replica, OwnedSubjectPrefix+replica+PeekSubjectSuffix, key)
}

// askOwner asks the instance replica, on subject, for the ticket under
// key (no answerer or an empty answer: ErrNotFound).
func (s *Store) askOwner(ctx context.Context, replica, subject, key string) (*ticket.Ticket, error) {
	nc := s.js.Conn()
	if nc == nil || !nc.IsConnected() {
		return nil, unavailable(nats.ErrConnectionClosed)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, subject, []byte(key))
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
