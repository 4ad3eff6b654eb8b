// Package kvstore keeps the ticket component's sessions and tickets in NATS
// JetStream key-value buckets with a time to live per key (LimitMarkerTTL,
// nats-server >= 2.11): any replica of the component reads what another
// wrote, and a restart loses nothing. Single use is a purge that expects
// the revision read (JetStream's expected last sequence per subject), so of
// concurrent consumers of one ticket exactly one succeeds.
//
// Keys are hashes of ticket values (ticket.SessionID and the like): what
// the buckets hold cannot be replayed as a ticket.
//
// Sessions and proxy-granting tickets are file-backed (a restart loses no
// session). Service and proxy tickets, single use and seconds long, are
// kept in the memory of the instance that issued them (owned.go), whose
// name they carry: validating one there is a map delete, at another
// instance one NATS request to the owner; a ticket lost with its instance
// is refused and the application's next redirect gets a new one from the
// live session. Validation then reads the session (a small record: issuing
// a ticket writes it only for a new service or to move its idle deadline).
package kvstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// SessionCache is how long a session read or written here may be
	// answered from memory by CachedSession (0: never). Only ticket
	// issuing uses it: an update of the session expects the copy's
	// revision, so a copy another replica made stale costs a retry, and
	// validation reads the session itself.
	SessionCache time.Duration
	// WatchError is told why WatchSessions' watch stopped (nil: nobody).
	WatchError func(error)
	// Replica names this instance in the tickets it keeps ("": 12 random
	// lower-case hex digits, new at every start).
	Replica string
	// MaxTickets bounds the service and proxy tickets this instance keeps
	// (default 200 000: 20 000 a second for 10 s); beyond it issuing
	// answers TICKET_STORE_UNAVAILABLE.
	MaxTickets int
}

// sessionCacheMax bounds the sessions a Store keeps copies of.
const sessionCacheMax = 50000

// Store is the ticket.Store on JetStream KV.
type Store struct {
	js   jetstream.JetStream
	opts Options

	mu       sync.Mutex
	sessions jetstream.KeyValue
	tickets  jetstream.KeyValue // proxy-granting tickets

	owned owned // service and proxy tickets

	sessMu    sync.Mutex
	sessCache map[string]cachedSession // by session id

	idxMu   sync.Mutex
	idx     *ticket.SessionIndex // the live sessions (WatchSessions), nil until loaded
	loading *ticket.SessionIndex // the index WatchSessions is loading
}

// cachedSession is a copy of a session at a revision.
type cachedSession struct {
	s     ticket.Session
	rev   uint64
	at    time.Time
	epoch uint64 // the NATS connection's reconnections then
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
	s := &Store{js: js, opts: o, sessCache: map[string]cachedSession{}}
	s.owned.init(o.Replica, o.MaxTickets, max(endedKeep, 2*o.SessionCache))
	return s
}

var _ ticket.Store = (*Store)(nil)

// buckets returns the bucket handles (sessions, proxy-granting tickets),
// creating the buckets when needed.
func (s *Store) buckets(ctx context.Context) (jetstream.KeyValue, jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions != nil {
		return s.sessions, s.tickets, nil
	}
	if nc := s.js.Conn(); nc != nil && !nc.IsConnected() {
		return nil, nil, unavailable(nats.ErrConnectionClosed)
	}
	mk := func(name, desc string, storage jetstream.StorageType) (jetstream.KeyValue, error) {
		return s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, Description: desc,
			History: 1, Storage: storage, Replicas: s.opts.Replicas,
			LimitMarkerTTL: time.Minute, MaxValueSize: 256 << 10})
	}
	sess, err := mk(BucketSessions, "UIAS single sign-on sessions", jetstream.FileStorage)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	tick, err := mk(BucketTickets, "UIAS proxy-granting tickets", jetstream.FileStorage)
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
func pgtKey(key string) string { return "p." + key }

// tokenKey is where an access token's record is (the tickets bucket).
func tokenKey(key string) string { return "a." + key }

// forwardKey is where the successor of a replaced session is named (the
// tickets bucket).
func forwardKey(id string) string { return "f." + id }

// grantKey is where a redeemed code's grant is (the tickets bucket).
func grantKey(key string) string { return "g." + key }

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

// fail is fail, and when a bucket's stream is gone (deleted) forgets the
// bucket handles, so the next call creates the buckets again.
func (s *Store) fail(err error) error {
	if lostStream(err) {
		s.mu.Lock()
		s.sessions, s.tickets = nil, nil
		s.mu.Unlock()
	}
	return fail(err)
}

// lostStream reports whether err says the bucket's stream does not exist.
func lostStream(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, nats.ErrNoResponders)
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// publish writes value under key of kv's bucket expecting revision rev (0:
// the key must not exist) with a time to live; it returns the new revision.
func (s *Store) publish(ctx context.Context, bucket, key string, value []byte, rev uint64, ttl time.Duration) (uint64, error) {
	m := &nats.Msg{Subject: "$KV." + bucket + "." + key, Data: value, Header: nats.Header{}}
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttlOf(ttl)))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
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
	rev, err := s.publish(ctx, BucketSessions, sessionKey(sess.ID), data, 0, ttl)
	if err != nil {
		return s.fail(err)
	}
	s.keepSession(sess, rev)
	s.indexPut(sess, rev)
	// The person's index lives as long as the session can.
	life := time.Until(sess.HardExpiry)
	_, err = s.publish(ctx, BucketSessions, userKey(sess.UserID, sess.ID), nil, 0, life)
	return s.fail(err)
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
		return nil, 0, s.fail(err)
	}
	var sess ticket.Session
	if err := json.Unmarshal(e.Value(), &sess); err != nil {
		return nil, 0, fmt.Errorf("session record %s: %w", id, err)
	}
	s.keepSession(&sess, e.Revision())
	return &sess, e.Revision(), nil
}

// CachedSession implements ticket.Store: a copy of the session as this
// Store last read or wrote it, if that was within Options.SessionCache.
func (s *Store) CachedSession(id string) (*ticket.Session, uint64, bool) {
	if s.opts.SessionCache <= 0 {
		return nil, 0, false
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	c, ok := s.sessCache[id]
	if !ok || time.Since(c.at) > s.opts.SessionCache {
		return nil, 0, false
	}
	// A copy from before a break in the connection is not used: this
	// instance may have missed the session's end (EndTickets).
	if e, connected := s.epoch(); !connected || e != c.epoch {
		delete(s.sessCache, id)
		return nil, 0, false
	}
	sess := c.s
	sess.Services = slices.Clone(c.s.Services)
	sess.Issuers = slices.Clone(c.s.Issuers)
	return &sess, c.rev, true
}

// keepSession records a copy of sess at rev (rev 0: forget it).
func (s *Store) keepSession(sess *ticket.Session, rev uint64) {
	if s.opts.SessionCache <= 0 {
		return
	}
	s.sessMu.Lock()
	defer s.sessMu.Unlock()
	if rev == 0 {
		delete(s.sessCache, sess.ID)
		return
	}
	if _, ok := s.sessCache[sess.ID]; !ok && len(s.sessCache) >= sessionCacheMax {
		for k, c := range s.sessCache {
			if time.Since(c.at) > s.opts.SessionCache {
				delete(s.sessCache, k)
			}
		}
		if len(s.sessCache) >= sessionCacheMax {
			return
		}
	}
	if s.owned.hasEnded(sess.ID, time.Now()) {
		return // a read from before its end, finished after it
	}
	epoch, _ := s.epoch()
	c := cachedSession{s: *sess, rev: rev, at: time.Now(), epoch: epoch}
	c.s.Services = slices.Clone(sess.Services)
	c.s.Issuers = slices.Clone(sess.Issuers)
	s.sessCache[sess.ID] = c
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
	newRev, err := s.publish(ctx, BucketSessions, sessionKey(sess.ID), data, rev, ttl)
	s.keepSession(sess, newRev) // forgotten when refused
	if err == nil {
		s.indexPut(sess, newRev)
	}
	return s.fail(err)
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
	s.keepSession(&ticket.Session{ID: id}, 0)
	for attempt := 0; ; attempt++ {
		e, err := kv.Get(ctx, sessionKey(id))
		if err != nil {
			return nil, s.fail(err)
		}
		var sess ticket.Session
		if err := json.Unmarshal(e.Value(), &sess); err != nil {
			return nil, fmt.Errorf("session record %s: %w", id, err)
		}
		err = s.fail(kv.Purge(ctx, sessionKey(id), jetstream.LastRevision(e.Revision()), jetstream.PurgeTTL(time.Second)))
		if errors.Is(err, ticket.ErrConflict) && attempt < 5 {
			// Used or ended meanwhile: read again (whoever ended it
			// tells of it; one still live is purged now).
			continue
		}
		if err != nil {
			return nil, err
		}
		s.indexRemove(id, e.Revision())
		_ = kv.Purge(ctx, userKey(sess.UserID, id), jetstream.PurgeTTL(time.Second))
		s.keepSession(&sess, 0)
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
		return nil, s.fail(err)
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

// putRecord stores v (JSON) under key of the tickets bucket, ending after ttl.
func (s *Store) putRecord(ctx context.Context, key string, v any, ttl time.Duration) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, _, err := s.buckets(ctx); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.publish(ctx, BucketTickets, key, data, 0, ttl)
	return s.fail(err)
}

// getRecord reads the record under key of the tickets bucket into v (what
// names the record in an error).
func (s *Store) getRecord(ctx context.Context, key, what string, v any) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, kv, err := s.buckets(ctx)
	if err != nil {
		return err
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return s.fail(err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return fmt.Errorf("%s record: %w", what, err)
	}
	return nil
}

// deleteRecord removes the record under key of the tickets bucket (none:
// no error).
func (s *Store) deleteRecord(ctx context.Context, key string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, kv, err := s.buckets(ctx)
	if err != nil {
		return err
	}
	err = s.fail(kv.Purge(ctx, key, jetstream.PurgeTTL(time.Second)))
	if errors.Is(err, ticket.ErrNotFound) {
		return nil
	}
	return err
}

// PutPGT implements ticket.Store.
func (s *Store) PutPGT(ctx context.Context, key string, p *ticket.PGT, ttl time.Duration) error {
	return s.putRecord(ctx, pgtKey(key), p, ttl)
}

// GetPGT implements ticket.Store.
func (s *Store) GetPGT(ctx context.Context, key string) (*ticket.PGT, error) {
	var p ticket.PGT
	if err := s.getRecord(ctx, pgtKey(key), "pgt", &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeletePGT implements ticket.Store.
func (s *Store) DeletePGT(ctx context.Context, key string) error {
	return s.deleteRecord(ctx, pgtKey(key))
}

// PutAccessToken implements ticket.Store.
func (s *Store) PutAccessToken(ctx context.Context, key string, t *ticket.AccessToken, ttl time.Duration) error {
	return s.putRecord(ctx, tokenKey(key), t, ttl)
}

// GetAccessToken implements ticket.Store.
func (s *Store) GetAccessToken(ctx context.Context, key string) (*ticket.AccessToken, error) {
	var t ticket.AccessToken
	if err := s.getRecord(ctx, tokenKey(key), "access token", &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteAccessToken implements ticket.Store.
func (s *Store) DeleteAccessToken(ctx context.Context, key string) error {
	return s.deleteRecord(ctx, tokenKey(key))
}

// PutCodeGrant implements ticket.Store.
func (s *Store) PutCodeGrant(ctx context.Context, key string, g *ticket.CodeGrant, ttl time.Duration) error {
	return s.putRecord(ctx, grantKey(key), g, ttl)
}

// GetCodeGrant implements ticket.Store.
func (s *Store) GetCodeGrant(ctx context.Context, key string) (*ticket.CodeGrant, error) {
	var g ticket.CodeGrant
	if err := s.getRecord(ctx, grantKey(key), "code grant", &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// DeleteCodeGrant implements ticket.Store.
func (s *Store) DeleteCodeGrant(ctx context.Context, key string) error {
	return s.deleteRecord(ctx, grantKey(key))
}

// sessionForward is the record of a replaced session.
type sessionForward struct {
	To string `json:"to"`
}

// PutSessionForward implements ticket.Store.
func (s *Store) PutSessionForward(ctx context.Context, oldID, newID string, ttl time.Duration) error {
	return s.putRecord(ctx, forwardKey(oldID), sessionForward{To: newID}, ttl)
}

// GetSessionForward implements ticket.Store.
func (s *Store) GetSessionForward(ctx context.Context, oldID string) (string, error) {
	var f sessionForward
	if err := s.getRecord(ctx, forwardKey(oldID), "session forward", &f); err != nil {
		return "", err
	}
	return f.To, nil
}

// passwordKey is where the latest password time and account state time of
// a person are noted (the tickets bucket).
func passwordKey(userID string) string { return "w." + hex.EncodeToString([]byte(userID)) }

// passwordNote is the record under passwordKey: the latest password time
// (at, as earlier versions wrote it alone) and the latest time the account
// was locked or disabled (state_at, ADR 0047).
type passwordNote struct {
	At      time.Time `json:"at"`
	StateAt time.Time `json:"state_at,omitzero"`
}

// NotePassword implements ticket.Store: a compare-and-set on the key's
// revision, so that of two concurrent notes the later time stays.
func (s *Store) NotePassword(ctx context.Context, userID string, at time.Time, ttl time.Duration) error {
	return s.note(ctx, userID, ttl, func(n *passwordNote) bool {
		if !n.At.Before(at) {
			return false // as new or newer already
		}
		n.At = at.UTC()
		return true
	})
}

// NoteState implements ticket.Store, as NotePassword (one record holds
// both: a login reads them at once).
func (s *Store) NoteState(ctx context.Context, userID string, at time.Time, ttl time.Duration) error {
	return s.note(ctx, userID, ttl, func(n *passwordNote) bool {
		if !n.StateAt.Before(at) {
			return false
		}
		n.StateAt = at.UTC()
		return true
	})
}

// note changes the person's note by merge (false: nothing to write) with
// a compare-and-set on the key's revision, so that of two concurrent notes
// neither is lost.
func (s *Store) note(ctx context.Context, userID string, ttl time.Duration, merge func(*passwordNote) bool) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, kv, err := s.buckets(ctx)
	if err != nil {
		return err
	}
	key := passwordKey(userID)
	// Bounded: each turn is another writer's note or an expiry between
	// the read and the write.
	for range 16 {
		var n passwordNote
		e, err := kv.Get(ctx, key)
		found := err == nil
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return s.fail(err)
		default:
			if json.Unmarshal(e.Value(), &n) != nil {
				n = passwordNote{}
			}
		}
		if !merge(&n) {
			return nil
		}
		data, merr := json.Marshal(n)
		if merr != nil {
			return merr
		}
		if !found {
			// Create also takes the place of an expired (deleted) note.
			_, err = kv.Create(ctx, key, data, jetstream.KeyTTL(ttlOf(ttl)))
		} else {
			_, err = s.publish(ctx, BucketTickets, key, data, e.Revision(), ttl)
		}
		if err = s.fail(err); !errors.Is(err, ticket.ErrConflict) {
			return err
		}
		// another note (or its expiry) came between: read again
	}
	return unavailable(errors.New("password note: changed concurrently 16 times"))
}

// PasswordNoted is Noted's password time.
func (s *Store) PasswordNoted(ctx context.Context, userID string) (time.Time, error) {
	n, err := s.Noted(ctx, userID)
	return n.Password, err
}

// Noted implements ticket.Store. The note is read from the
// bucket's stream leader (the JetStream API's message get), not with the
// KV's direct get, which any replica of a replicated bucket may answer
// from behind (review sec25 M1): a note committed before this read is
// seen.
func (s *Store) Noted(ctx context.Context, userID string) (ticket.Notes, error) {
	at, state, err := s.noted(ctx, userID)
	return ticket.Notes{Password: at, State: state}, err
}

// noted reads the person's note (zero times: none).
func (s *Store) noted(ctx context.Context, userID string) (time.Time, time.Time, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if _, _, err := s.buckets(ctx); err != nil {
		return time.Time{}, time.Time{}, err
	}
	nc := s.js.Conn()
	if nc == nil {
		return time.Time{}, time.Time{}, unavailable(nats.ErrConnectionClosed)
	}
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + BucketTickets + "." + passwordKey(userID)})
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+BucketTickets, req)
	if err != nil {
		return time.Time{}, time.Time{}, unavailable(err)
	}
	var res struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &res); err != nil {
		return time.Time{}, time.Time{}, unavailable(fmt.Errorf("password note: %w", err))
	}
	switch {
	case res.Error != nil && res.Error.Code == 404:
		return time.Time{}, time.Time{}, nil // none
	case res.Error != nil || res.Message == nil:
		return time.Time{}, time.Time{}, unavailable(fmt.Errorf("password note: stream message get failed (%+v)", res.Error))
	case len(res.Message.Data) == 0:
		return time.Time{}, time.Time{}, nil // a deletion or expiry marker
	}
	var n passwordNote
	if err := json.Unmarshal(res.Message.Data, &n); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("password note record: %w", err)
	}
	return n.At, n.StateAt, nil
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
