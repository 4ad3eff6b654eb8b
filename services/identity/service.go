package identity

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
)

// Config tunes the service.
type Config struct {
	Policy        Policy
	AdminTokenTTL time.Duration // default 8h
	AppCacheTTL   time.Duration // default 5s; how long a changed app may be served stale by another instance
	TokenCacheTTL time.Duration // default 30s
	// UserCacheTTL bounds how long GetUser may serve a user changed by
	// another instance whose CHANGES event did not arrive (default 5s;
	// negative: no user cache).
	UserCacheTTL  time.Duration
	SecretOverlap time.Duration // default rotation overlap, 24h
}

// Deps are what the service needs; all required except Kick and Now.
type Deps struct {
	Store  Store
	Hasher *crypto.Hasher
	Sealer *crypto.Sealer
	Logger *zap.Logger
	Config Config
	// Kick wakes the outbox relay after a write (optional).
	Kick func()
	// Now is the clock (optional, for tests).
	Now func() time.Time
}

// Service is the identity domain.
type Service struct {
	store  Store
	hasher *crypto.Hasher
	sealer *crypto.Sealer
	log    *zap.Logger
	cfg    Config
	kick   func()
	now    func() time.Time

	limiter *rateLimiter
	apps    ttlCache[*App]
	tokens  ttlCache[*User]
	// users holds users for admin reads (GetUser) only; see usercache.go.
	users ttlCache[User]
}

// New validates deps and builds the service.
func New(d Deps) (*Service, error) {
	var errs []error
	if d.Store == nil {
		errs = append(errs, errors.New("identity: Store is required"))
	}
	if d.Hasher == nil {
		errs = append(errs, errors.New("identity: Hasher is required"))
	}
	if d.Sealer == nil {
		errs = append(errs, errors.New("identity: Sealer is required"))
	}
	if d.Logger == nil {
		errs = append(errs, errors.New("identity: Logger is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := d.Config
	if c.Policy == (Policy{}) {
		c.Policy = DefaultPolicy()
	}
	if c.AdminTokenTTL <= 0 {
		c.AdminTokenTTL = 8 * time.Hour
	}
	if c.AppCacheTTL <= 0 {
		c.AppCacheTTL = 5 * time.Second
	}
	if c.TokenCacheTTL <= 0 {
		c.TokenCacheTTL = 30 * time.Second
	}
	if c.UserCacheTTL == 0 {
		c.UserCacheTTL = 5 * time.Second
	}
	if c.SecretOverlap <= 0 {
		c.SecretOverlap = 24 * time.Hour
	}
	s := &Service{store: d.Store, hasher: d.Hasher, sealer: d.Sealer, log: d.Logger, cfg: c,
		kick: d.Kick, now: d.Now, limiter: newRateLimiter()}
	if s.kick == nil {
		s.kick = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.apps.ttl = c.AppCacheTTL
	s.tokens.ttl = c.TokenCacheTTL
	s.users.ttl = c.UserCacheTTL
	s.store = userCachingStore{Store: d.Store, c: &s.users}
	return s, nil
}

// Policy returns the account policy in force.
func (s *Service) Policy() Policy { return s.cfg.Policy }

// Caller is who made the current call.
type Caller struct {
	App       *App  // set for application callers
	Admin     *User // set for administrator callers
	ClientIP  netip.Addr
	RequestID string
}

type callerKey struct{}

// WithCaller stores c in ctx.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller stored in ctx, or an empty one.
func CallerFrom(ctx context.Context) *Caller {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok && c != nil {
		return c
	}
	return &Caller{}
}

func (c *Caller) actor() string {
	switch {
	case c.Admin != nil:
		return "user:" + c.Admin.ID
	case c.App != nil:
		return "app:" + c.App.ID
	}
	return "anonymous"
}

func (c *Caller) appID() string {
	if c.App != nil {
		return c.App.ID
	}
	return ""
}

// newID returns a 128-bit id whose first 48 bits are the time in ms, so ids
// sort roughly by creation (and pages follow creation order).
func newID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("identity: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// changesSubjectPrefix starts the subject of every identity CHANGES event.
const changesSubjectPrefix = "uias.changes.identity."

// change builds a CHANGES event for entity/op; data must hold no secrets and
// only masked personal data.
func (s *Service) change(ctx context.Context, entity, op, id string, data any) events.Event {
	payload, _ := json.Marshal(map[string]any{
		"entity": entity, "op": op, "id": id, "actor": CallerFrom(ctx).actor(),
		"time": s.now().UTC(), "data": data,
	})
	return events.Event{ID: newID(), Subject: changesSubjectPrefix + entity + "." + op,
		Type: "identity." + entity + "." + op, Time: s.now().UTC(), Payload: payload}
}

// audit builds an AUDIT event.
func (s *Service) audit(ctx context.Context, api, subject, org, result, reason string, start time.Time, detail map[string]string) events.Event {
	c := CallerFrom(ctx)
	rec := events.AuditRecord{
		Serial: c.RequestID, TraceID: c.RequestID, AppID: c.appID(), API: api,
		Actor: c.actor(), Subject: subject, Org: org, Result: result, Reason: reason,
		DurationMS: float64(s.now().Sub(start).Microseconds()) / 1000, Time: s.now().UTC(), Detail: detail,
	}
	if c.ClientIP.IsValid() {
		rec.ClientIP = c.ClientIP.String()
	}
	payload, _ := json.Marshal(rec)
	return events.Event{ID: newID(), Subject: "uias.audit.identity." + api, Type: "audit." + api,
		Time: rec.Time, Payload: payload}
}

// storeErr turns a store error into a domain error with a clear message.
// what names the thing looked for ("user", "org").
func storeErr(err error, what string) error {
	var ae *apierr.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, ErrNotFound):
		return apierr.New(apierr.NotFound, "NOT_FOUND", what+" not found")
	case errors.Is(err, ErrConflict):
		msg := what + " already exists"
		if m := conflictMessage(err); m != "" {
			msg = m
		}
		return apierr.New(apierr.AlreadyExists, "ALREADY_EXISTS", msg)
	case errors.Is(err, ErrUnavailable):
		return apierr.Wrap(err, apierr.Unavailable, "STORAGE_UNAVAILABLE", "identity storage is unavailable, try again later").
			WithMeta("legacy_code", "-6")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return apierr.Wrap(err, apierr.Internal, "INTERNAL", "internal error").WithMeta("legacy_code", "-6")
}

// conflictMessage extracts a store's human message ("login name already
// exists") from a wrapped ErrConflict, when it gives one.
func conflictMessage(err error) string {
	msg := err.Error()
	suffix := ": " + ErrConflict.Error()
	if len(msg) > len(suffix) && msg[len(msg)-len(suffix):] == suffix {
		return msg[:len(msg)-len(suffix)]
	}
	return ""
}

func notFound(what string) error {
	return apierr.New(apierr.NotFound, "NOT_FOUND", what+" not found")
}

func failedPrecondition(reason, msg string) error {
	return apierr.New(apierr.FailedPrecondition, reason, msg)
}

// ttlCache is a small read-through cache for hot lookups (apps and admin
// tokens on the caller authentication path, users for admin reads).
// Entries live for ttl (<= 0: nothing is cached). At max entries (0: 10000)
// expired entries make room first, then everything goes (cheaper than LRU
// bookkeeping on every read; it refills on demand). drop and clear bump a
// generation: putIfCurrent with a generation read before a store read does
// not cache what a concurrent write may already have made stale.
type ttlCache[V any] struct {
	mu  sync.RWMutex
	ttl time.Duration
	max int
	gen uint64
	m   map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v   V
	exp time.Time
}

func (c *ttlCache[V]) get(k string, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(k string, v V, now time.Time) {
	c.mu.Lock()
	c.putLocked(k, v, now)
	c.mu.Unlock()
}

// generation is read before a store read whose result goes to putIfCurrent.
func (c *ttlCache[V]) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// putIfCurrent caches v unless something was dropped since gen was read.
func (c *ttlCache[V]) putIfCurrent(k string, v V, gen uint64, now time.Time) {
	c.mu.Lock()
	if gen == c.gen {
		c.putLocked(k, v, now)
	}
	c.mu.Unlock()
}

func (c *ttlCache[V]) putLocked(k string, v V, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	limit := c.max
	if limit <= 0 {
		limit = 10000
	}
	if c.m == nil {
		c.m = map[string]ttlEntry[V]{}
	}
	if len(c.m) >= limit {
		for old, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, old)
			}
		}
		if len(c.m) >= limit {
			clear(c.m)
		}
	}
	c.m[k] = ttlEntry[V]{v: v, exp: now.Add(c.ttl)}
}

func (c *ttlCache[V]) drop(k string) {
	c.mu.Lock()
	c.gen++
	delete(c.m, k)
	c.mu.Unlock()
}

func (c *ttlCache[V]) clear() {
	c.mu.Lock()
	c.gen++
	c.m = nil
	c.mu.Unlock()
}

// rateLimiter is a token bucket per application.
type rateLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	rate   float64
	burst  float64
}

func newRateLimiter() *rateLimiter { return &rateLimiter{buckets: map[string]*bucket{}} }

// allow takes one token from key's bucket; rate <= 0 means unlimited.
func (r *rateLimiter) allow(key string, rate float64, burst int, now time.Time) bool {
	if rate <= 0 {
		return true
	}
	b := float64(burst)
	if b < 1 {
		b = rate
		if b < 1 {
			b = 1
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bk, ok := r.buckets[key]
	if !ok || bk.rate != rate || bk.burst != b {
		bk = &bucket{tokens: b, last: now, rate: rate, burst: b}
		r.buckets[key] = bk
	}
	bk.tokens += now.Sub(bk.last).Seconds() * bk.rate
	if bk.tokens > bk.burst {
		bk.tokens = bk.burst
	}
	bk.last = now
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}

func userView(u *User) map[string]any {
	return map[string]any{
		"login_name": u.LoginName, "display_name": u.DisplayName, "org_id": u.OrgID,
		"status": u.Status, "id_type": u.IDType, "id_number": u.IDNumberMask, "phone": u.PhoneMask,
		"email": u.Email, "feature_code": u.FeatureCode, "is_admin": u.IsAdmin, "password_only": u.PasswordOnly,
	}
}

func appView(a *App) map[string]any {
	return map[string]any{"app_type": a.Type, "app_code": a.Code, "name": a.Name,
		"status": a.Status, "ip_allow_list": a.IPAllowList, "rate_limit": a.RateLimit, "rate_burst": a.RateBurst}
}

func fmtBool(b bool) string { return fmt.Sprintf("%t", b) }
