package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// The login gate stands between a password guess and the hash. Its rules
// (also in docs/operators.md, "Lockout rules"):
//
//  1. Per source (in memory, per instance). A source's failed checks
//     count, dropping by one every Throttle.Decay. The first
//     Throttle.AddressFailures pass at once; the next ones wait BaseDelay,
//     2×, 4×, ... before they are hashed; one whose wait would exceed
//     MaxDelay is refused at once (RESOURCE_EXHAUSTED LOGIN_THROTTLED with
//     retry_after_seconds, audited as a rate-limit hit). For AdminLogin,
//     which needs no credential, a check counts from its admission (and
//     is taken back if the password was right), so parallel guesses see
//     each other; through an application, whose calls its rate limit
//     bounds, a check counts when it has failed, so that one person's many
//     parallel logins through a busy application are not slowed down.
//  2. Per account (in the store, shared by every instance). A check is
//     counted against the account only while its source has made fewer
//     than Policy.SourceFailures counted checks: a source that spent that
//     budget goes on against rule 1 only. Counted checks are spaced: once
//     more failures are counted than one source may add, the next counted
//     check may start BaseDelay after this one, then 2×, 4×, ... up to
//     MaxDelay; a check whose turn is more than MaxDelay away (or beyond
//     its deadline) is refused at once (LOGIN_THROTTLED). The policy's
//     hard lock falls when Policy.MaxFailures failures are counted, which
//     therefore needs failures from at least
//     ceil(MaxFailures/SourceFailures) sources: no single address can lock
//     anyone out.
//  3. Count and decide in one step. Admitting a counted check, deciding a
//     failure (and the lock) and a success are each one store transaction
//     (UpdateLoginGate) on the account's row (a success on a clean gate,
//     which changes nothing there, may be decided on a snapshot instead
//     and write only its audit event: see Store.UpdateLoginGate). A counted check is admitted
//     only while the failures counted plus the counted checks still
//     running, beyond as many as there are hash workers, stay under
//     MaxFailures; so of any number of parallel guesses on one instance at
//     most MaxFailures + hash workers are hashed, and once MaxFailures
//     failures are decided no check succeeds (one still running is
//     answered "locked").
//     The common case takes one write, not two: a check of an account
//     whose stored gate is clean (no failures counted, no running checks
//     or only ones deemed lost, no spacing, no lock, its source under its
//     cap) while no other check of the account runs or is being admitted
//     on this instance is admitted after a plain read (ReadLoginGate) and
//     held in this instance's memory (runningChecks, one an account,
//     bounded) until it settles: a success writes what it writes anyway,
//     a failure counts itself and its source in its one transaction
//     (decideMemFailure: not counted if the account was locked or the
//     source spent its budget meanwhile). While it runs it takes one slot
//     of the slack of this instance's other checks of the account, so the
//     bound above holds per instance. It is invisible to other instances:
//     each of K instances may run one such check of an account from the
//     clean gate, so across K instances at most MaxFailures + hash
//     workers + K - 1 parallel guesses are hashed (before: MaxFailures +
//     hash workers in all, the store's count of running checks being
//     shared). The lock and "no success after it" are unchanged: both are
//     decided in the settling transaction.
//
// A source is the client address for AdminLogin (IPv6 by /64), and for
// Authenticate and ChangePassword the calling application together with
// the person's address when the application reports it in extend_info
// "client_ip"; without it the application itself is the source of the
// account's count, and its rule-1 count is kept per account (so guessing
// through one application slows that account there, not the application).
// Waiting never holds a hash worker: it happens before the hash.

// Throttle tunes the login gate (zero fields take the defaults).
type Throttle struct {
	// AddressFailures is how many failed checks a source may make before
	// its checks are delayed (default 10).
	AddressFailures int
	// BaseDelay is the first delay; each next one doubles (default 1s).
	BaseDelay time.Duration
	// MaxDelay is the longest wait; a source whose next delay would be
	// longer is refused, an account's spacing stops growing (default 30s).
	MaxDelay time.Duration
	// Decay is how long a source takes to forget one failure (default 1m).
	Decay time.Duration
	// MaxSources bounds the sources tracked in memory (default 100000).
	MaxSources int
}

// DefaultThrottle returns the default login gate settings.
func DefaultThrottle() Throttle {
	return Throttle{AddressFailures: 10, BaseDelay: time.Second, MaxDelay: 30 * time.Second,
		Decay: time.Minute, MaxSources: 100000}
}

func (t Throttle) withDefaults() Throttle {
	d := DefaultThrottle()
	if t.AddressFailures <= 0 {
		t.AddressFailures = d.AddressFailures
	}
	if t.BaseDelay <= 0 {
		t.BaseDelay = d.BaseDelay
	}
	if t.MaxDelay <= 0 {
		t.MaxDelay = d.MaxDelay
	}
	if t.MaxDelay < t.BaseDelay {
		t.MaxDelay = t.BaseDelay
	}
	if t.Decay <= 0 {
		t.Decay = d.Decay
	}
	if t.MaxSources <= 0 {
		t.MaxSources = d.MaxSources
	}
	return t
}

// delay is the wait of the n-th check when the first free ones are free:
// BaseDelay for n = free+1, doubling after. Past MaxDelay it returns
// MaxDelay+1 (the caller caps or refuses).
func (t Throttle) delay(n, free int) time.Duration {
	if n <= free {
		return 0
	}
	d := t.BaseDelay
	for i := free + 1; i < n; i++ {
		if d > t.MaxDelay {
			break
		}
		d *= 2
	}
	if d > t.MaxDelay {
		return t.MaxDelay + 1
	}
	return d
}

// maxCounted bounds an account's counted failures when the policy never
// locks: the spacing is at MaxDelay long before, and the per-source rows
// stay few.
const maxCounted = 64

// sourceCap is how many failures one source may count against an account.
func (p Policy) sourceCap() int {
	c := p.SourceFailures
	if c <= 0 {
		c = DefaultPolicy().SourceFailures
	}
	if p.MaxFailures > 0 && c >= p.MaxFailures {
		c = p.MaxFailures - 1
	}
	return max(c, 1)
}

// loginSource says where a password check comes from.
type loginSource struct {
	gate    string // rule 1 key ("" = none)
	account string // the source as the account counts it (rule 2)
}

// adminLoginSource is the source of an AdminLogin.
func adminLoginSource(ip netip.Addr) loginSource {
	k := audit.AddressKey(ip)
	return loginSource{gate: k, account: k}
}

// ClientIPExtend is the extend_info key by which an application reports
// the address of the person it authenticates.
const ClientIPExtend = "client_ip"

// appLoginSource is the source of a password check an application makes for
// user u (see the rules above).
func appLoginSource(appID string, extend map[string]string, userID string) loginSource {
	app := "app:" + appID
	if ip, err := netip.ParseAddr(extend[ClientIPExtend]); err == nil {
		k := app + "/" + audit.AddressKey(ip)
		return loginSource{gate: k, account: k}
	}
	return loginSource{gate: app + "/user:" + userID, account: app}
}

// withPersonIP: the records of an application's check of a person carry
// the person's address the application reported (extend client_ip, a
// valid address) as their client_ip, and the application's own as
// app_ip, so that the address analytics and alerts (impossible travel,
// logins from outside the allowed networks) see where the person is, not
// the application server. Without a report the caller is as it was.
func withPersonIP(ctx context.Context, c *caller.Caller, extend map[string]string) (context.Context, *caller.Caller) {
	ip, err := netip.ParseAddr(extend[ClientIPExtend])
	if err != nil || ip.Zone() != "" {
		// not an address (a zone is text of the application's choosing)
		return ctx, c
	}
	cp := *c
	cp.ClientIP, cp.AppIP = ip.Unmap(), c.ClientIP
	return caller.With(ctx, &cp), &cp
}

// sourceID is how the store keeps a source: a hash, so that client
// addresses are not kept with the account.
func sourceID(src string) string {
	h := sha256.Sum256([]byte(src))
	return hex.EncodeToString(h[:12])
}

// MetaRetryAfter is the ErrorInfo metadata key of a LOGIN_THROTTLED
// refusal saying in how many seconds to try again (the REST edge sends it
// as Retry-After).
const MetaRetryAfter = "retry_after_seconds"

// errLoginThrottled refuses a password check for now; retry is when it may
// be tried again.
func errLoginThrottled(retry time.Duration) *apierr.Error {
	secs := int64(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return apierr.New(apierr.ResourceExhausted, "LOGIN_THROTTLED",
		fmt.Sprintf("too many failed logins: password checks are slowed down; retry in %d s", secs)).
		WithMeta(MetaRetryAfter, strconv.FormatInt(secs, 10))
}

// ---- rule 1: the per-source gate ----

type sourceGate struct {
	cfg Throttle
	mu  sync.Mutex
	m   map[string]*sourceState
}

type sourceState struct {
	charge float64   // failed and running checks, decaying
	at     time.Time // when charge was brought up to date
}

func newSourceGate(cfg Throttle) *sourceGate {
	return &sourceGate{cfg: cfg, m: map[string]*sourceState{}}
}

func (g *sourceGate) decay(e *sourceState, now time.Time) {
	if el := now.Sub(e.at); el > 0 {
		e.charge = max(0, e.charge-float64(el)/float64(g.cfg.Decay))
		e.at = now
	}
}

// limit is the highest check number whose delay fits MaxDelay.
func (g *sourceGate) limit() int {
	n := g.cfg.AddressFailures
	for g.cfg.delay(n+1, g.cfg.AddressFailures) <= g.cfg.MaxDelay {
		n++
	}
	return n
}

// admit says how long a check from key must wait first, or refuses it
// with how long until a retry may pass. With charge, an admitted check
// counts at once (take it back with refund); else count a failure with
// fail.
func (g *sourceGate) admit(key string, now time.Time, remaining time.Duration, charge bool) (wait, retry time.Duration, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.m[key]
	if e == nil {
		e = &sourceState{at: now}
	}
	g.decay(e, now)
	// This check's number: a charge decayed part-way still counts whole,
	// so that a source gains a check only per full Decay.
	n := int(math.Ceil(e.charge)) + 1
	wait = g.cfg.delay(n, g.cfg.AddressFailures)
	if wait > g.cfg.MaxDelay {
		// Admitted again once the charge has decayed to limit-1.
		over := e.charge - float64(g.limit()-1)
		return 0, time.Duration(over * float64(g.cfg.Decay)), false
	}
	if wait > remaining {
		return 0, wait, false
	}
	if charge {
		g.add(key, e, now)
	}
	return wait, 0, true
}

// fail counts a failed check of key.
func (g *sourceGate) fail(key string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.m[key]
	if e == nil {
		e = &sourceState{at: now}
	}
	g.decay(e, now)
	g.add(key, e, now)
}

func (g *sourceGate) add(key string, e *sourceState, now time.Time) {
	e.charge++
	if g.m[key] == nil {
		g.makeRoom(now)
		g.m[key] = e
	}
}

// refund takes back one charge (a check whose password was right, or that
// was never made).
func (g *sourceGate) refund(key string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.m[key]; e != nil {
		g.decay(e, now)
		e.charge = max(0, e.charge-1)
	}
}

// makeRoom keeps the map under MaxSources: forgotten sources go first,
// then arbitrary ones (an attacker with that many addresses gains little
// from rule 1 anyway; rule 2 still holds).
func (g *sourceGate) makeRoom(now time.Time) {
	if len(g.m) < g.cfg.MaxSources {
		return
	}
	for k, e := range g.m {
		if g.decay(e, now); e.charge == 0 {
			delete(g.m, k)
		}
	}
	for k := range g.m {
		if len(g.m) < g.cfg.MaxSources*9/10 {
			break
		}
		delete(g.m, k)
	}
}

// ---- rules 2 and 3: the per-account gate ----

// pendingStale is when counted checks still "running" are deemed lost (an
// instance that died mid-check, a settle write that failed): once the
// account's pending period (LoginGate.PendingAt: when its count last rose
// from zero) is older than this, admitting starts the count afresh. The
// period is not extended by later admissions, so on a busy account too a
// crashed replica's checks stop counting within pendingStale; were it the
// last admission, they would count for as long as the account stays busy.
// It is not shorter because a live check may legitimately run for up to
// login_throttle.max_delay (30 s) + max_hash_wait (3 s) + its hash; a
// live check of a period older than this is forgotten too (the count is
// low by at most the checks running then, until they settle).
const pendingStale = time.Minute

// accountTicket is what admitting a check on an account decided.
type accountTicket struct {
	counted bool          // counted against the account (holds a pending slot)
	wait    time.Duration // how long it waits for its turn
	// inMemory: admitted on a clean gate without a write; it is this
	// instance's running check of the account (runningChecks) and is
	// counted, if it fails, when it settles.
	inMemory bool
}

type gateVerdict int

const (
	gateAdmit gateVerdict = iota
	gateLocked
	gateThrottled
)

// slack is how many counted checks of one account may run beyond the
// threshold's budget: as many as hashes run at once.
func (s *Service) slack() int {
	if s.hasher == nil {
		return 1
	}
	return s.hasher.Workers()
}

// decideAccount admits one password check on an account whose gate is g
// (rules 2 and 3), for a caller with remaining time left. A refused check
// (locked, throttled) writes nothing; t.wait is then when to retry.
func (s *Service) decideAccount(g LoginGate, now time.Time, remaining time.Duration) (LoginGateWrite, bool, accountTicket, gateVerdict) {
	return s.decideAccountSlack(g, now, remaining, s.slack())
}

// decideAccountSlack is decideAccount with slack counted checks allowed
// beyond the threshold's budget (one fewer than slack() while this
// instance runs a check of the account in memory).
func (s *Service) decideAccountSlack(g LoginGate, now time.Time, remaining time.Duration, slack int) (LoginGateWrite, bool, accountTicket, gateVerdict) {
	p, th := s.cfg.Policy, s.cfg.Throttle
	var t accountTicket
	if g.LockedUntil.After(now) {
		return LoginGateWrite{}, false, t, gateLocked
	}
	pending, since := g.Pending, g.PendingAt
	if pending > 0 && now.Sub(g.PendingAt) > pendingStale {
		pending = 0
	}
	if pending == 0 {
		since = now // a new pending period starts with this check
	}
	if g.NextAttemptAt.After(now) {
		t.wait = g.NextAttemptAt.Sub(now)
	}
	if t.wait > th.MaxDelay || t.wait > remaining {
		return LoginGateWrite{}, false, t, gateThrottled
	}
	cap := p.sourceCap()
	if g.SourceFailures >= cap {
		// Not counted: this source spent its budget on the account (rule 1
		// holds it).
		return LoginGateWrite{}, false, t, gateAdmit
	}
	if g.FailedCount >= maxCounted {
		// The count stopped (a policy that never locks); the spacing goes
		// on at its longest.
		w := LoginGateWrite{FailedCount: g.FailedCount, SourceFailures: g.SourceFailures, LockedUntil: g.LockedUntil,
			NextAttemptAt: now.Add(t.wait + th.MaxDelay), Pending: g.Pending, PendingAt: g.PendingAt}
		return w, true, t, gateAdmit
	}
	// The count this check would reach if it and every other running
	// check beyond the slack failed.
	eff := g.FailedCount + max(0, pending-slack)
	if p.MaxFailures > 0 && eff >= p.MaxFailures {
		// The checks running decide first.
		t.wait = time.Second
		return LoginGateWrite{}, false, t, gateThrottled
	}
	t.counted = true
	w := LoginGateWrite{FailedCount: g.FailedCount, SourceFailures: g.SourceFailures + 1,
		NextAttemptAt: g.NextAttemptAt, LockedUntil: g.LockedUntil, Pending: pending + 1, PendingAt: since}
	if d := th.delay(eff+1, cap); d > 0 {
		w.NextAttemptAt = now.Add(t.wait + min(d, th.MaxDelay))
	}
	return w, true, t, gateAdmit
}

// decideFailure settles a counted check whose password was wrong: it
// counts (unless the account was locked meanwhile) and may lock.
func (s *Service) decideFailure(g LoginGate, now time.Time) (w LoginGateWrite, lock time.Time) {
	p := s.cfg.Policy
	w = LoginGateWrite{FailedCount: g.FailedCount, SourceFailures: g.SourceFailures, NextAttemptAt: g.NextAttemptAt,
		LockedUntil: g.LockedUntil, Pending: max(g.Pending-1, 0), PendingAt: g.PendingAt}
	if g.LockedUntil.After(now) {
		return w, time.Time{}
	}
	w.FailedCount++
	if p.MaxFailures > 0 && w.FailedCount >= p.MaxFailures {
		lock = now.Add(p.LockDuration).Truncate(time.Millisecond)
		w = LoginGateWrite{ClearSources: true, LockedUntil: lock, Pending: w.Pending, PendingAt: w.PendingAt}
	}
	return w, lock
}

// cleanGate says whether a check of an account whose gate is g may be
// admitted without a write (rule 3): nothing counted, nothing running (or
// only checks deemed lost), no spacing, no lock, and the source under its
// cap, so that the check would be counted and admitted at once.
func (s *Service) cleanGate(g LoginGate, now time.Time) bool {
	return g.FailedCount == 0 && (g.Pending == 0 || now.Sub(g.PendingAt) > pendingStale) &&
		!g.NextAttemptAt.After(now) && !g.LockedUntil.After(now) && g.SourceFailures < s.cfg.Policy.sourceCap()
}

// decideMemFailure settles a check admitted in memory whose password was
// wrong: it counts against the account and its source in one step, as
// when it had been counted at its admission, unless the account was locked
// meanwhile, the source spent its budget meanwhile (through the store:
// the account then does not count it, rule 2) or the count stopped
// (maxCounted).
func (s *Service) decideMemFailure(g LoginGate, now time.Time) (w LoginGateWrite, lock time.Time) {
	if g.LockedUntil.After(now) || g.SourceFailures >= s.cfg.Policy.sourceCap() || g.FailedCount >= maxCounted {
		return LoginGateWrite{FailedCount: g.FailedCount, SourceFailures: g.SourceFailures, NextAttemptAt: g.NextAttemptAt,
			LockedUntil: g.LockedUntil, Pending: g.Pending, PendingAt: g.PendingAt}, time.Time{}
	}
	// As if it had been admitted through the store: one more running
	// check of the account and of its source, decided now.
	g.Pending++
	g.SourceFailures++
	return s.decideFailure(g, now)
}

// ---- this instance's checks admitted in memory ----

// maxRunningChecks bounds the accounts with a check admitted in memory on
// one instance; beyond it checks take the store's path.
const maxRunningChecks = 10000

// runningChecks holds, per account, this instance's check admitted in
// memory (at most one an account) and the checks of the account in their
// admission transaction through the store. A check is admitted in memory
// only while none of the latter runs here, so that each of them knows
// whether the in-memory check takes a slot of the slack (decideAccount).
type runningChecks struct {
	mu sync.Mutex
	m  map[string]*runningAccount
	// unlisted counts admissions through the store not listed because the
	// map was full; while any runs no check is admitted in memory.
	unlisted int
}

type runningAccount struct {
	inMemory  bool // a check admitted (or being admitted) in memory
	admitting int  // admission transactions through the store running
}

func newRunningChecks() *runningChecks {
	return &runningChecks{m: map[string]*runningAccount{}}
}

// claim reserves the account's in-memory check; false when one runs,
// an admission through the store runs, or the map is full.
func (r *runningChecks) claim(userID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[userID] != nil || r.unlisted > 0 || len(r.m) >= maxRunningChecks {
		return false
	}
	r.m[userID] = &runningAccount{inMemory: true}
	return true
}

// release ends the account's in-memory check.
func (r *runningChecks) release(userID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.m[userID]; e != nil {
		e.inMemory = false
		r.drop(userID, e)
	}
}

// admitting notes an admission through the store starting; held says
// whether an in-memory check of the account runs here. Call done after.
func (r *runningChecks) admitting(userID string) (held bool, done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[userID]
	if e == nil {
		if len(r.m) >= maxRunningChecks {
			r.unlisted++
			return false, func() {
				r.mu.Lock()
				r.unlisted--
				r.mu.Unlock()
			}
		}
		e = &runningAccount{}
		r.m[userID] = e
	}
	e.admitting++
	return e.inMemory, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		e.admitting--
		r.drop(userID, e)
	}
}

func (r *runningChecks) drop(userID string, e *runningAccount) {
	if !e.inMemory && e.admitting == 0 && r.m[userID] == e {
		delete(r.m, userID)
	}
}

// ---- one password check through the gate ----

// loginAttempt is one password check on its way through the gate.
type loginAttempt struct {
	s   *Service
	src loginSource
	api string
	// early: rule 1 counts the check from its admission (AdminLogin).
	early    bool
	admitted bool // charged to the source gate (early)
	srcWait  time.Duration
	userID   string
	acct     accountTicket
	hashed   bool // the password was hashed (checkPassword)
	// holdRecord: the caller writes the record of a right password
	// itself, once it knows the outcome (AdminLogin with a password
	// change pending): checkPassword then writes none for it.
	holdRecord bool
	// partial: a right password is the first of two factors (a code
	// follows): succeeded then keeps the account's failures, spacing and
	// per-source counts (only a right code clears them), taking back
	// just what this check's admission added.
	partial bool
	// short: the credential, right or wrong, cannot sign the person in
	// (their level, levels.go): a right one is recorded as refused
	// (AUTH_LEVEL_TOO_LOW) and, as with partial, clears nothing.
	short bool
	// detail goes into the records checkPassword writes (a finger's login
	// with the password: its method).
	detail map[string]string
	// pending is the reason of the record of a right password that is the
	// first of two factors (partial): OTP_REQUIRED unless set (an external
	// authenticator's credential follows: EXTERNAL_REQUIRED).
	pending string
}

// record is the audit record of a right password as checkPassword writes
// it with the gate's update: none when the caller holds it (holdRecord).
func (a *loginAttempt) record(ev events.Event) []events.Event {
	if a.holdRecord {
		return nil
	}
	return eventsOf(ev)
}

// newAttempt starts a check of an application's caller (rule 1 counts it
// when it fails).
func (s *Service) newAttempt(src loginSource, api string) *loginAttempt {
	return &loginAttempt{s: s, src: src, api: api}
}

// shortOf marks a as a check whose credential cannot sign the person in
// when short (loginAttempt.short); a itself.
func (a *loginAttempt) shortOf(short bool) *loginAttempt {
	if short {
		a.partial, a.short = true, true
	}
	return a
}

// newEarlyAttempt starts a check that rule 1 counts from its admission.
func (s *Service) newEarlyAttempt(src loginSource, api string) *loginAttempt {
	return &loginAttempt{s: s, src: src, api: api, early: true}
}

// remaining is how long the caller still waits for an answer.
func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return math.MaxInt64
}

// admitSource passes rule 1 (once).
func (a *loginAttempt) admitSource(ctx context.Context, subject, org string, start time.Time) error {
	if a.admitted || a.src.gate == "" {
		return nil
	}
	wait, retry, ok := a.s.sources.admit(a.src.gate, a.s.now(), remaining(ctx), a.early)
	if !ok {
		return a.throttled(ctx, "source", subject, org, retry, start)
	}
	a.admitted, a.srcWait = a.early, wait
	return nil
}

// throttled audits a refused check (thinned, see audit.Thinner) and returns the
// refusal.
func (a *loginAttempt) throttled(ctx context.Context, gate, subject, org string, retry time.Duration, start time.Time) error {
	err := errLoginThrottled(retry)
	key := gate + "|" + a.src.gate
	if gate == "account" {
		key = gate + "|" + a.userID
	}
	if ok, suppressed := a.s.hits.Note(key, a.s.now()); ok {
		a.s.appendAudit(ctx, a.s.audit(ctx, a.api, subject, org, "denied", err.Reason, start, map[string]string{
			"gate": gate, MetaRetryAfter: err.Meta[MetaRetryAfter], "suppressed": strconv.Itoa(suppressed)}))
	}
	return err
}

// admitAccount passes rules 2 and 3 for u. A locked account answers
// ReasonAccountLocked (audited); nothing was counted then.
func (a *loginAttempt) admitAccount(ctx context.Context, u *User, start time.Time) (Reason, error) {
	a.userID = u.ID
	now := a.s.now()
	src := sourceID(a.src.account)
	if a.s.running.claim(u.ID) {
		// The common case: a clean gate admits the check after a read; it
		// is written once, when it settles.
		g, err := a.s.store.ReadLoginGate(ctx, u.ID, src)
		if err == nil && a.s.cleanGate(g, now) {
			a.acct = accountTicket{inMemory: true}
			return 0, nil
		}
		a.s.running.release(u.ID)
		if err != nil {
			return 0, err
		}
	}
	var (
		t       accountTicket
		verdict gateVerdict
	)
	// An in-memory check of the account running here takes one slot of
	// the slack: of parallel checks on this instance at most MaxFailures
	// + hash workers are hashed, as without it.
	held, done := a.s.running.admitting(u.ID)
	slack := a.s.slack()
	if held {
		slack--
	}
	err := a.s.store.UpdateLoginGate(ctx, u.ID, src, func(g LoginGate) (LoginGateWrite, bool) {
		var (
			w     LoginGateWrite
			write bool
		)
		w, write, t, verdict = a.s.decideAccountSlack(g, now, remaining(ctx), slack)
		return w, write
	})
	done()
	subject := "user:" + u.ID
	switch {
	case err != nil:
		return 0, err
	case verdict == gateLocked:
		a.s.appendAudit(ctx, a.s.audit(ctx, a.api, subject, u.OrgID, "failure", ReasonAccountLocked.String(), start, nil))
		return ReasonAccountLocked, nil
	case verdict == gateThrottled:
		return 0, a.throttled(ctx, "account", subject, u.OrgID, t.wait, start)
	}
	a.acct = t
	return 0, nil
}

// wait sleeps for the check's turn (never holding a hash worker). If the
// caller gives up meanwhile, the check is taken back.
func (a *loginAttempt) wait(ctx context.Context) error {
	d := max(a.srcWait, a.acct.wait)
	if d <= 0 {
		return nil
	}
	if err := a.s.sleep(ctx, d); err != nil {
		a.refund(ctx)
		return err
	}
	return nil
}

// failed settles a check whose password was wrong: rule 1 counts it, the
// account counts it and may lock (rule 3), with evs (the failure's audit)
// and, when this failure locked the account, the lockout. locked reports
// that the account is locked now (by this failure or meanwhile).
func (a *loginAttempt) failed(ctx context.Context, u *User, evs []events.Event, start time.Time) (locked bool, err error) {
	now := a.s.now()
	if a.src.gate != "" && !a.early {
		a.s.sources.fail(a.src.gate, now)
	}
	a.admitted = false
	inMemory := a.acct.inMemory
	if inMemory {
		a.acct.inMemory = false
		defer a.s.running.release(u.ID)
	}
	if !a.acct.counted && !inMemory {
		if err := a.s.store.AppendEvents(ctx, evs); err != nil {
			return false, err
		}
		a.s.kick()
		return false, nil
	}
	a.acct.counted = false
	homedHere := a.s.homedHere(ctx, u)
	err = a.s.store.UpdateLoginGate(ctx, u.ID, sourceID(a.src.account), func(g LoginGate) (LoginGateWrite, bool) {
		var (
			w    LoginGateWrite
			lock time.Time
		)
		if inMemory {
			w, lock = a.s.decideMemFailure(g, now)
		} else {
			w, lock = a.s.decideFailure(g, now)
		}
		w.Events = evs
		locked = g.LockedUntil.After(now)
		if !lock.IsZero() {
			locked = true
			until := lock.UTC().Format(time.RFC3339)
			w.StateChangedAt = nextStateAt(g.StateAt, now)
			w.Events = append(slices.Clip(evs),
				a.s.audit(ctx, "account.lockout", "user:"+u.ID, u.OrgID, "locked", "TOO_MANY_FAILURES", start,
					map[string]string{"locked_until": until}),
				a.s.lockChange(ctx, u, lock, w.StateChangedAt, homedHere, "TOO_MANY_FAILURES"))
		}
		return w, true
	})
	if err != nil {
		return false, err
	}
	a.s.kick()
	return locked, nil
}

// succeeded settles a check whose password was right. If the account was
// locked while it ran (rule 3: no success once the threshold is passed)
// it answers ReasonAccountLocked, with the events evsLocked builds (only
// then: a lock taken during the hash is rare, and building an audit event
// is not free). Otherwise the account's failures, spacing and per-source
// counts are cleared, with evs and, when rehash is set, the new hash; it
// answers ReasonOK.
func (a *loginAttempt) succeeded(ctx context.Context, u *User, rehash string, evs []events.Event, evsLocked func() []events.Event) (Reason, error) {
	now := a.s.now()
	if a.admitted {
		a.s.sources.refund(a.src.gate, now)
		a.admitted = false
	}
	counted := a.acct.counted
	a.acct.counted = false
	if a.acct.inMemory {
		// It holds no pending slot: the write below is its only one.
		a.acct.inMemory = false
		defer a.s.running.release(u.ID)
	}
	verdict := ReasonOK
	var locked []events.Event // built once, should the write be tried again
	src := ""
	if a.partial && counted {
		src = sourceID(a.src.account)
	}
	err := a.s.store.UpdateLoginGate(ctx, u.ID, src, func(g LoginGate) (LoginGateWrite, bool) {
		pending := g.Pending
		if counted {
			pending = max(pending-1, 0)
		}
		if g.LockedUntil.After(now) {
			verdict = ReasonAccountLocked
			if locked == nil {
				locked = evsLocked()
			}
			return LoginGateWrite{FailedCount: g.FailedCount, NextAttemptAt: g.NextAttemptAt, LockedUntil: g.LockedUntil,
				Pending: pending, PendingAt: g.PendingAt, SourceFailures: g.SourceFailures, Events: locked}, true
		}
		verdict = ReasonOK
		if a.partial {
			w := LoginGateWrite{FailedCount: g.FailedCount, SourceFailures: g.SourceFailures, NextAttemptAt: g.NextAttemptAt,
				LockedUntil: g.LockedUntil, Pending: pending, PendingAt: g.PendingAt, Rehash: rehash, Events: evs}
			if counted {
				w.SourceFailures = max(g.SourceFailures-1, 0)
			}
			return w, true
		}
		return LoginGateWrite{ClearSources: true, LockedUntil: g.LockedUntil, Pending: pending, PendingAt: g.PendingAt,
			Rehash: rehash, Events: evs}, true
	})
	if err != nil {
		return 0, err
	}
	a.s.kick()
	return verdict, nil
}

// refund takes back a check that was never decided (the caller left, the
// hashing capacity refused it, a storage fault). Best effort: a refund
// that is not stored leaves a pending slot until pendingStale.
func (a *loginAttempt) refund(ctx context.Context) {
	if a.admitted {
		a.s.sources.refund(a.src.gate, a.s.now())
		a.admitted = false
	}
	a.refundAccount(ctx)
}

// refundAccount takes back the account's part of a check that was never
// decided, and keeps the source's: the call still counts towards its
// source's rate (a check that cannot be made here, repeated).
func (a *loginAttempt) refundAccount(ctx context.Context) {
	a.admitted = false
	if a.acct.inMemory {
		// Nothing was written for it.
		a.acct.inMemory = false
		a.s.running.release(a.userID)
	}
	if !a.acct.counted {
		return
	}
	a.acct.counted = false
	ctx = context.WithoutCancel(ctx)
	err := a.s.store.UpdateLoginGate(ctx, a.userID, sourceID(a.src.account), func(g LoginGate) (LoginGateWrite, bool) {
		return LoginGateWrite{FailedCount: g.FailedCount, SourceFailures: max(g.SourceFailures-1, 0),
			NextAttemptAt: g.NextAttemptAt, LockedUntil: g.LockedUntil, Pending: max(g.Pending-1, 0), PendingAt: g.PendingAt}, true
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.s.log.Warn("login gate: refund not stored", zap.String("user_id", a.userID), zapErr(err))
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
