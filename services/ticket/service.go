package ticket

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
)

// Config is the ticket policy. Zero durations take the CAS defaults.
type Config struct {
	// ServicesDefaultLinked: a service registered with neither access
	// rule (and not OpenAccess) requires an account link with its
	// application (ticket.services_default_access: linked; closed by
	// default). False: it is open to anyone signed in, as before.
	ServicesDefaultLinked bool
	// STTTL is the lifetime of a service ticket (CAS: 10 s).
	STTTL time.Duration
	// PTTTL is the lifetime of a proxy ticket (CAS: 10 s).
	PTTTL time.Duration
	// TGTIdle ends a session unused for this long (CAS: 2 h).
	TGTIdle time.Duration
	// TGTHard ends a session this long after login however much it is
	// used (CAS: 8 h).
	TGTHard time.Duration
	// PGTTTL bounds a proxy-granting ticket (its session's end bounds it
	// too; CAS: 2 h).
	PGTTTL time.Duration
	// TouchAfter is how long after its last move a ticket moves its
	// session's idle deadline again (default TGTIdle/20): issuing tickets
	// from a session writes it only then, or for a service it has not
	// recorded yet. A session may so end up to TouchAfter before TGTIdle of
	// its last use.
	TouchAfter time.Duration
	// Centre is the code of the issuing centre, carried by every ticket.
	Centre string
	// CodeTTL is the lifetime of an OpenID Connect authorization code
	// (default 60 s).
	CodeTTL time.Duration
	// AccessTTL is the lifetime of an OAuth access token (default 1 h;
	// its session's end ends it sooner).
	AccessTTL time.Duration
}

// Defaults as CAS.
const (
	DefaultSTTTL   = 10 * time.Second
	DefaultPTTTL   = 10 * time.Second
	DefaultTGTIdle = 2 * time.Hour
	DefaultTGTHard = 8 * time.Hour
	DefaultPGTTTL  = 2 * time.Hour
	DefaultCentre  = "c1"
	// DefaultCodeTTL and DefaultAccessTTL: OpenID Connect.
	DefaultCodeTTL   = time.Minute
	DefaultAccessTTL = time.Hour
)

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.STTTL, DefaultSTTTL)
	def(&c.PTTTL, DefaultPTTTL)
	def(&c.TGTIdle, DefaultTGTIdle)
	def(&c.TGTHard, DefaultTGTHard)
	def(&c.PGTTTL, DefaultPGTTTL)
	def(&c.CodeTTL, DefaultCodeTTL)
	def(&c.AccessTTL, DefaultAccessTTL)
	def(&c.TouchAfter, c.TGTIdle/20)
	if c.TouchAfter > c.TGTIdle/2 {
		c.TouchAfter = c.TGTIdle / 2
	}
	if c.Centre == "" {
		c.Centre = DefaultCentre
	}
	return c
}

// AuditSink publishes audit events (the component publishes them to the
// AUDIT stream, asynchronously: ticket records live in NATS, not in a
// database whose outbox could carry them).
type AuditSink interface {
	Publish(ev events.Event)
}

// LaterSink is an AuditSink that also takes events it builds itself when
// it publishes them (events.Later; the component's queue does): the call
// being answered then does not pay for encoding its audit records.
type LaterSink interface {
	AuditSink
	PublishLater(l events.Later)
}

// Ending is told of every session that ends (logout, expiry seen, revoked,
// the person disabled), e.g. to send single-logout requests.
type Ending func(s *Session, reason string)

// Deps are what a Service needs.
type Deps struct {
	Store Store
	// MAC signs and checks signed tickets (the key ring's signer).
	MAC    *crypto.Signer
	Audit  AuditSink // nil: none
	Logger *zap.Logger
	Now    func() time.Time
	Ended  Ending // nil: none
	// Registry decides which services may receive tickets (required).
	Registry *Registry
	Config   Config
	// Access answers services' access rules (nil: a service with a rule
	// issues no ticket; SetAccess sets it later).
	Access AccessChecker
	// IDTokens sign OpenID Connect ID tokens (nil: the OpenID Connect
	// calls answer OIDC_UNAVAILABLE).
	IDTokens *IDTokenKeys
	// Profiles answer the claims of a person (nil: sub and login only).
	Profiles ProfileSource
	// Nonces records the peers' assertions and logout tokens used, each
	// once at every instance (peer.go): the platform's store of things
	// seen once, natsnonce over bucket PeerTokensBucket (TTL
	// PeerTokensTTL). nil: caller.MemoryNonces, which sees one instance
	// only (tests).
	Nonces caller.NonceStore
}

// Service is the ticket domain.
type Service struct {
	store Store
	mac   *crypto.Signer
	sink  AuditSink
	later LaterSink // sink, when it builds events itself
	log   *zap.Logger
	now   func() time.Time
	// peers: sign-in across centres (peer.go); nil: off.
	peers    *PeerSettings
	peerThin audit.Thinner // refusals before a peer's signature holds
	ended    Ending
	reg      *Registry
	cfg      Config
	auditor  *audit.Builder
	legacy   LegacyDeps
	access   AccessChecker       // services' access rules (access.go); nil: none configured
	release  AuthorizationSource // released roles and permissions (release.go); nil: none configured
	idTokens *IDTokenKeys
	profiles ProfileSource
	nonces   caller.NonceStore // the peers' tokens used (peer.go)
	consents ConsentStore      // OpenID Connect consents (consent.go); nil: none
}

// New returns a Service.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.MAC == nil || d.Registry == nil {
		return nil, errors.New("ticket: Store, MAC and Registry are required")
	}
	cfg := d.Config.withDefaults()
	if !validCentre(cfg.Centre) {
		return nil, fmt.Errorf("ticket: centre %q must be 1-16 letters or digits", cfg.Centre)
	}
	if r := d.Store.Replica(); !ValidReplica(r) {
		return nil, fmt.Errorf("ticket: the store's instance name %q must be 1-16 lower-case letters or digits", r)
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Nonces == nil {
		d.Nonces = caller.NewMemoryNonces(d.Now)
	}
	later, _ := d.Audit.(LaterSink)
	return &Service{store: d.Store, mac: d.MAC, sink: d.Audit, later: later, log: d.Logger, now: d.Now, ended: d.Ended,
		reg: d.Registry, cfg: cfg, auditor: audit.NewBuilder("ticket", d.Now), access: d.Access,
		idTokens: d.IDTokens, profiles: d.Profiles, nonces: d.Nonces}, nil
}

// Registry returns the service registry.
func (s *Service) Registry() *Registry { return s.reg }

// Config returns the policy in force.
func (s *Service) Config() Config { return s.cfg }

// SetProfiles sets where the OpenID Connect claims of a person come from.
func (s *Service) SetProfiles(p ProfileSource) { s.profiles = p }

// SetEnding sets the hook told of ended sessions.
func (s *Service) SetEnding(e Ending) { s.ended = e }

// audit records a (its Detail must not change afterwards: the record may
// be encoded later).
func (s *Service) audit(ctx context.Context, a audit.Action) {
	switch {
	case s.later != nil:
		s.later.PublishLater(s.auditor.Later(ctx, a))
	case s.sink != nil:
		s.sink.Publish(s.auditor.Event(ctx, a))
	}
}

// auditCall records a, done in the API call served in ctx (a validation),
// as that call's access record when the process keeps one: one record per
// validation instead of its access record and a (audit.Builder.ForCall,
// ADR 0007 amendment); else as audit does.
func (s *Service) auditCall(ctx context.Context, a audit.Action) {
	if s.later != nil && s.auditor.ForCall(ctx, a, s.later.PublishLater) {
		return
	}
	s.audit(ctx, a)
}

// NewSession is what CreateSession records.
type NewSession struct {
	UserID    string
	Login     string
	OrgID     string
	AuthLevel int
	// AuthMethod is how the person signed in (ticketv1.AuthMethod).
	AuthMethod int
	ClientIP   string
	// PasswordAt, StateAt: see Session.
	PasswordAt, StateAt time.Time
	// Peer, PeerSID, Vouched: see Session.
	Peer, PeerSID string
	Vouched       []string
	// AuthAt: when the person authenticated, if before now (a peer's
	// sign-in): the hard lifetime runs from it.
	AuthAt time.Time
}

// CreateSession starts a session and returns its TGT.
func (s *Service) CreateSession(ctx context.Context, n NewSession) (string, *Session, error) {
	return s.createSession(ctx, n, nil, "")
}

// createSession starts a session that has received tickets for services
// already (a raised session's).
func (s *Service) createSession(ctx context.Context, n NewSession, services []ServiceUse, sid string) (string, *Session, error) {
	start := s.now()
	if n.AuthLevel < 1 {
		n.AuthLevel = 1
	}
	tgt := newOpaque(PrefixTGT, s.cfg.Centre)
	sess := &Session{ID: SessionID(tgt), UserID: n.UserID, Login: n.Login, OrgID: n.OrgID, AuthLevel: n.AuthLevel, AuthMethod: n.AuthMethod,
		Centre: s.cfg.Centre, CreatedAt: start.UTC(), LastUsedAt: start.UTC(), HardExpiry: start.Add(s.cfg.TGTHard).UTC(),
		ClientIP: n.ClientIP, Services: services, SID: sid, PasswordAt: n.PasswordAt.UTC(), StateAt: n.StateAt.UTC(), Peer: n.Peer,
		PeerSID: n.PeerSID, Vouched: n.Vouched}
	if !n.AuthAt.IsZero() && n.AuthAt.Before(start) {
		// Hops between centres never extend a sign-in: the hard limit
		// runs from the authentication.
		sess.AuthAt = n.AuthAt.UTC()
		sess.HardExpiry = n.AuthAt.Add(s.cfg.TGTHard).UTC()
	}
	if n.PasswordAt.IsZero() {
		sess.PasswordAt = time.Time{}
	}
	if n.StateAt.IsZero() {
		sess.StateAt = time.Time{}
	}
	err := s.store.CreateSession(ctx, sess, sess.Expiry(s.cfg.TGTIdle).Sub(start))
	if err == nil {
		err = s.stillCurrent(ctx, sess)
	}
	if err != nil {
		s.audit(ctx, audit.Action{API: "session.create", Subject: "user:" + n.UserID, Org: n.OrgID,
			Result: audit.ResultFailure, Reason: reasonOf(err), Start: start})
		return "", nil, err
	}
	fields := detail("session_id", sess.ID, "auth_level", fmt.Sprint(n.AuthLevel))
	if n.Peer != "" {
		// only a session a peer's assertion opened names its peer
		fields = append(fields, events.DetailField{Key: "peer", Value: n.Peer})
	}
	s.audit(ctx, audit.Action{API: "session.create", Subject: "user:" + n.UserID, Org: n.OrgID,
		Result: audit.ResultSuccess, Reason: "OK", Start: start, Fields: fields})
	return tgt, sess, nil
}

// stillCurrent checks, after sess was stored, that the password its login
// checked is still the person's and that their account was not locked or
// disabled since the state its login saw: a change handled meanwhile
// (NotePassword, NoteState, before it looks for the person's sessions)
// would not have found this session. Either the change's handler lists the
// session or this check sees its note. A session opened with a replaced
// password (ErrPasswordChanged) or before a lock or disable
// (ErrAccountChanged) is removed again, as is one whose check could not be
// made. A time a session lacks (none given) is not checked.
func (s *Service) stillCurrent(ctx context.Context, sess *Session) error {
	if sess.PasswordAt.IsZero() && sess.StateAt.IsZero() {
		return nil
	}
	noted, err := s.store.Noted(ctx, sess.UserID)
	if err == nil {
		switch {
		case !sess.PasswordAt.IsZero() && noted.Password.After(sess.PasswordAt):
			err = ErrPasswordChanged
		case !sess.StateAt.IsZero() && noted.State.After(sess.StateAt):
			err = ErrAccountChanged
		default:
			return nil
		}
	}
	if _, derr := s.store.DeleteSession(ctx, sess.ID); derr != nil && !errors.Is(derr, ErrNotFound) {
		s.log.Warn("a session opened with a replaced password or before a lock could not be removed; it ends with the change's event",
			zapErr(derr))
	}
	return err
}

// NotePassword records that a person's password was set at at (a
// user.password_changed event), before their older sessions are ended:
// a login that checked the previous password and opens its session only
// now is refused (passwordStillCurrent).
func (s *Service) NotePassword(ctx context.Context, userID string, at time.Time) error {
	return s.store.NotePassword(ctx, userID, at, s.cfg.TGTHard)
}

// NoteState records that a person's account was locked or disabled at at
// (identity's state time, from the event), before their older sessions are
// ended: a login that saw the account's earlier state and opens its
// session only now is refused (stillCurrent).
func (s *Service) NoteState(ctx context.Context, userID string, at time.Time) error {
	return s.store.NoteState(ctx, userID, at, s.cfg.TGTHard)
}

// RaiseSession starts the session n, replacing the browser's current
// session of tgt (a step-up, e.g. a certificate login over a password
// session): when that session is live and n's person's, the new session
// (a new TGT: the old value, which may have been seen, opens nothing) takes
// over its services, so that single logout at the final logout still
// reaches them, and the old one ends without logout requests (reason
// RAISED): the person's applications stay signed in. When it is another
// person's, it ends as at logout (single logout); an ended or unknown one
// is ignored. replaced reports whether the old session was taken over.
func (s *Service) RaiseSession(ctx context.Context, tgt string, n NewSession) (newTGT string, sess *Session, replaced bool, err error) {
	if !validTGT(tgt) {
		newTGT, sess, err = s.CreateSession(ctx, n)
		return newTGT, sess, false, err
	}
	id := SessionID(tgt)
	old, _, err := s.liveSession(ctx, id)
	switch {
	case errors.Is(err, ErrSessionNotFound):
		newTGT, sess, err = s.CreateSession(ctx, n)
		return newTGT, sess, false, err
	case err != nil:
		return "", nil, false, err
	case old.UserID != n.UserID:
		if _, err := s.endSession(ctx, id, "", "LOGOUT"); err != nil {
			s.log.Warn("the session a login replaced ended, but an instance keeping its tickets was not told", zapErr(err))
		}
		newTGT, sess, err = s.CreateSession(ctx, n)
		return newTGT, sess, false, err
	}
	start := s.now()
	old, err = s.store.DeleteSession(ctx, id)
	if errors.Is(err, ErrNotFound) { // ended meanwhile
		newTGT, sess, err = s.CreateSession(ctx, n)
		return newTGT, sess, false, err
	}
	if err != nil {
		return "", nil, false, err
	}
	// The old session's tickets not yet validated end with it, as at any
	// end; the services it recorded, and those its issuers noted, pass to
	// the new session.
	uses, endErr := s.store.EndTickets(ctx, old.ID, old.Issuers)
	old.Services = latestUses(old.Services, uses)
	if endErr != nil {
		s.log.Warn("a raised session ended, but an instance keeping its tickets was not told; they may validate until they expire",
			zapErr(endErr))
	}
	s.audit(ctx, audit.Action{API: "session.end", Subject: "user:" + old.UserID, Org: old.OrgID,
		Result: audit.ResultSuccess, Reason: "RAISED", Start: start,
		Fields: detail("session_id", old.ID, "services", fmt.Sprint(len(old.Services)))})
	// The new session keeps the old one's OpenID Connect sid, and the old
	// id names the new session for the tokens and proxy-granting tickets
	// issued from it: the applications stay signed in with what they hold.
	// The peers the old session vouched to are told of the new one's end.
	for _, v := range old.Vouched {
		if !slices.Contains(n.Vouched, v) {
			n.Vouched = append(n.Vouched, v)
		}
	}
	newTGT, sess, err = s.createSession(ctx, n, old.Services, old.OIDCSid())
	if err == nil {
		if ferr := s.store.PutSessionForward(ctx, old.ID, sess.ID, max(sess.HardExpiry.Sub(s.now()), time.Second)); ferr != nil {
			s.log.Warn("a raised session's tokens and proxy-granting tickets were not pointed at the new session; they end with the old one",
				zapErr(ferr))
		}
	}
	if err != nil {
		// The person is signed out: their applications are told, as at
		// logout, rather than left signed in with no session to end them.
		if s.ended != nil {
			s.ended(old, "LOGOUT")
		}
		return "", nil, false, err
	}
	return newTGT, sess, true, nil
}

// validTGT reports whether t has the form of a TGT.
func validTGT(t string) bool {
	return strings.HasPrefix(t, PrefixTGT) && ValidTicketChars(t)
}

// liveSession returns the session of id if it has not ended.
func (s *Service) liveSession(ctx context.Context, id string) (*Session, uint64, error) {
	sess, rev, err := s.store.GetSession(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, 0, ErrSessionNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	if !s.now().Before(sess.Expiry(s.cfg.TGTIdle)) {
		return nil, 0, ErrSessionNotFound
	}
	return sess, rev, nil
}

// followSession is liveSession for what a session gave applications
// (access and refresh tokens, proxy-granting tickets): a session replaced
// by a raise answers as the session that replaced it (never for a TGT: the
// old TGT opens nothing).
func (s *Service) followSession(ctx context.Context, id string) (*Session, uint64, error) {
	for hop := 0; ; hop++ {
		sess, rev, err := s.liveSession(ctx, id)
		if !errors.Is(err, ErrSessionNotFound) || hop >= 8 {
			return sess, rev, err
		}
		next, ferr := s.store.GetSessionForward(ctx, id)
		if errors.Is(ferr, ErrNotFound) {
			return nil, 0, ErrSessionNotFound
		}
		if ferr != nil {
			return nil, 0, ferr
		}
		id = next
	}
}

// sessionToUpdate is liveSession for a caller that writes the session back
// with UpdateSession expecting its revision: unless fresh, the store's
// recent copy may answer (a copy made stale elsewhere makes that update
// fail with ErrConflict, and the caller retries fresh).
func (s *Service) sessionToUpdate(ctx context.Context, id string, fresh bool) (*Session, uint64, error) {
	if !fresh {
		if sess, rev, ok := s.store.CachedSession(id); ok && s.now().Before(sess.Expiry(s.cfg.TGTIdle)) {
			return sess, rev, nil
		}
	}
	return s.liveSession(ctx, id)
}

// GetSession returns the live session of tgt.
func (s *Service) GetSession(ctx context.Context, tgt string) (*Session, error) {
	if !validTGT(tgt) {
		return nil, ErrSessionNotFound
	}
	sess, _, err := s.liveSession(ctx, SessionID(tgt))
	return sess, err
}

// DestroySession ends the session of tgt (logout); false when it had
// already ended. The person's logout succeeds once the session is gone:
// an instance keeping its tickets that did not confirm the end is logged
// by endSession (those tickets may validate until they expire, 10 s at
// most, or until that instance's watch sees the end), not shown to the
// person as a failed logout; an administrator's revocation
// (RevokeUserSessions) reports it.
func (s *Service) DestroySession(ctx context.Context, tgt string) (bool, error) {
	sess, err := s.Logout(ctx, tgt)
	return sess != nil, err
}

// Logout is DestroySession answering the session that ended (nil: none
// was live), so that the logout page learns its peer (Session.Peer)
// without reading the session first.
func (s *Service) Logout(ctx context.Context, tgt string) (*Session, error) {
	if !validTGT(tgt) {
		return nil, nil
	}
	sess, err := s.endSessionOf(ctx, SessionID(tgt), "", "LOGOUT")
	if sess != nil {
		return sess, nil
	}
	return nil, err
}

// endSession removes session id (of userID when not empty) and tells of it.
func (s *Service) endSession(ctx context.Context, id, userID, reason string) (bool, error) {
	sess, err := s.endSessionOf(ctx, id, userID, reason)
	return sess != nil, err
}

// endSessionOf is endSession answering the session that ended (nil: none).
func (s *Service) endSessionOf(ctx context.Context, id, userID, reason string) (*Session, error) {
	start := s.now()
	if userID != "" {
		sess, _, err := s.store.GetSession(ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && sess.UserID != userID) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	sess, err := s.store.DeleteSession(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Its tickets not yet validated end with it (a ticket never outlives
	// its session): the instances that keep them drop them now, before the
	// caller hears of the end; unguarded ones are refused at validation,
	// which reads the session for them.
	uses, endErr := s.store.EndTickets(ctx, sess.ID, sess.Issuers)
	// Single logout names the latest ticket of each service: the issuing
	// instances noted those the session was not written for.
	sess.Services = latestUses(sess.Services, uses)
	if endErr != nil {
		s.log.Warn("a session ended, but an instance keeping its tickets was not told; they may validate until they expire",
			zap.String("reason", reason), zapErr(endErr))
	}
	s.audit(ctx, audit.Action{API: "session.end", Subject: "user:" + sess.UserID, Org: sess.OrgID,
		Result: audit.ResultSuccess, Reason: reason, Start: start,
		Fields: detail("session_id", sess.ID, "services", fmt.Sprint(len(sess.Services)))})
	if s.ended != nil {
		s.ended(sess, reason)
	}
	return sess, endErr
}

// IssueServiceTicket issues an ST for service from the session of tgt and
// records the service in the session (single logout). The service must be
// registered (its application is the registry's) and
// the session must have reached the application's minimum authentication
// level (else ErrAuthLevelTooLow: a step-up login is needed).
//
// The session is written only when the service is new to it or its idle
// deadline is due to move (Config.TouchAfter): most tickets write nothing
// (the ticket is kept in this instance's memory, Store.PutTicket), or
// when this instance is not yet among the session's Issuers (so that the
// session's end, wherever it happens, removes its tickets here). The
// session may come from the store's recent copy, which can be stale: a
// session that ended elsewhere told this instance (Store.EndTickets), which
// then refuses to keep a ticket of it; a copy that does not list this
// instance makes the session write, which fails for an ended session.
func (s *Service) IssueServiceTicket(ctx context.Context, tgt, service string, fromNewLogin bool) (string, time.Time, error) {
	return s.issueTicket(ctx, tgt, service, fromNewLogin, "", nil)
}

// IssueServiceTicketConsent is IssueServiceTicket with the nonce of the
// consent page a CAS renew login may need first (review sec31c M1): with
// fromNewLogin, a refusal CONSENT_REQUIRED leaves a mark on the session
// holding the nonce's hash (setNewLogin); without, the ticket is from
// that new login only when nonce is the marked one (the page's Allow),
// once, within NewLoginWindow.
func (s *Service) IssueServiceTicketConsent(ctx context.Context, tgt, service string, fromNewLogin bool, nonce string) (string, time.Time, error) {
	return s.issueTicket(ctx, tgt, service, fromNewLogin, nonce, nil)
}

// issueTicket issues a service ticket, or with oidc an authorization code
// (oidc.go): a service ticket bound to the client that asked for it.
func (s *Service) issueTicket(ctx context.Context, tgt, service string, fromNewLogin bool, nonce string, oidc *OIDCBinding) (string, time.Time, error) {
	start := s.now()
	if !validTGT(tgt) {
		return "", time.Time{}, ErrSessionNotFound
	}
	id := SessionID(tgt)
	rs, err := s.reg.Match(ctx, service)
	if err != nil {
		s.audit(ctx, audit.Action{API: "ticket.issue", Subject: "session:" + id, Result: audit.ResultDenied,
			Reason: reasonOf(err), Start: start, Fields: detail("service", service)})
		return "", time.Time{}, err
	}
	appID := rs.AppID
	if rs.AppLevelUnknown {
		s.audit(ctx, audit.Action{API: "ticket.issue", Subject: "session:" + id, Result: audit.ResultDenied,
			Reason: reasonOf(ErrAppLevelUnknown), Start: start, Fields: detail("service", service, "app_id", appID)})
		return "", time.Time{}, ErrAppLevelUnknown
	}
	ttl, kind := s.cfg.STTTL, "ST"
	if oidc != nil {
		if err := oidcService(rs, oidc.ClientID, service); err != nil {
			s.audit(ctx, audit.Action{API: "ticket.issue", Subject: "session:" + id, Result: audit.ResultDenied,
				Reason: reasonOf(err), Start: start, Fields: detail("service", service, "app_id", appID, "client_id", oidc.ClientID)})
			return "", time.Time{}, err
		}
		ttl, kind = s.cfg.CodeTTL, "CODE"
	}
	replica := s.store.Replica()
	var (
		st      string
		sig     signed
		sess    *Session
		guarded bool
		// tookNewLogin: the ticket is from the new login a consent page
		// stood between (Session.NewLogin), whose mark the session write
		// below clears.
		tookNewLogin bool
	)
	for attempt := 0; ; attempt++ {
		var rev uint64
		sess, rev, err = s.sessionToUpdate(ctx, id, attempt > 0)
		if err == nil && !rs.StrongEnough(sess.AuthLevel, sess.AuthMethod) {
			err = ErrAuthLevelTooLow
		}
		if err == nil && attempt == 0 {
			// A client asking consent: the person's remembered consent
			// must cover the scope (the edge asked for it first), for a
			// code and for a CAS or ssoAuthService ticket alike (review
			// sec30c H1; CASConsentScope).
			if oidc != nil {
				err = s.consentCovers(ctx, sess.UserID, rs, oidc.ClientID, oidcConsentScope(oidc.Scope))
			} else {
				err = s.consentCovers(ctx, sess.UserID, rs, appID, CASConsentScope)
			}
		}
		if err == nil && attempt == 0 && rs.HasAccessRule() {
			// The service's access rule, asked once per ticket (a retry
			// below only writes the session again).
			var denied *accessDenial
			if denied, err = s.checkAccess(ctx, sess.UserID, rs); denied != nil {
				s.auditAccessDenied(ctx, "ticket.issue", start, sess.UserID, sess.OrgID, service, rs, denied)
				return "", time.Time{}, denied.err
			}
		}
		if err != nil {
			if st != "" { // kept on an earlier attempt
				_, _ = s.store.ConsumeTicket(ctx, sig.Replica, keyOf(st))
			}
			if errors.Is(err, ErrConsentRequired) && fromNewLogin && oidc == nil && nonce != "" {
				// The consent page comes first: the ticket its Allow asks
				// for is still from this login (CAS renew).
				s.setNewLogin(ctx, id, NewLoginMark{Service: service, Until: s.now().Add(NewLoginWindow).UTC(), Nonce: nonceHash(nonce)}, "")
			}
			s.audit(ctx, audit.Action{API: "ticket.issue", Subject: "session:" + id, Result: audit.ResultFailure,
				Reason: reasonOf(err), Start: start, Fields: detail("service", service, "app_id", appID)})
			return "", time.Time{}, err
		}
		now := s.now()
		newLogin := fromNewLogin || oidc == nil && sess.NewLogin.Holds(service, nonce, now)
		if st != "" && tookNewLogin && !newLogin {
			// Another request took the mark meanwhile: not this ticket's.
			_, _ = s.store.ConsumeTicket(ctx, sig.Replica, keyOf(st))
			st, tookNewLogin = "", false
		}
		if st == "" {
			// The ticket ends no later than the session as known here.
			exp := now.Add(ttl)
			if e := sess.Expiry(s.cfg.TGTIdle); e.Before(exp) {
				exp = e
			}
			st, sig = newSigned(s.mac, PrefixST, s.cfg.Centre, replica, now, exp)
			// Guarded (validation does not read the session) once the
			// session lists this instance, as the write below makes sure.
			guarded = slices.Contains(sess.Issuers, replica) || len(sess.Issuers) < MaxIssuersPerSession
			rec := &Ticket{Kind: KindST, Serial: sig.Serial, Service: service, AppID: appID, SessionID: id,
				UserID: sess.UserID, Login: sess.Login, OrgID: sess.OrgID, AuthLevel: sess.AuthLevel, AuthMethod: sess.AuthMethod, FromNewLogin: newLogin,
				AuthTime: sess.AuthTime(), IssuedAt: sig.Issued.UTC(), ExpiresAt: sig.Expires.UTC(), Guarded: guarded, OIDC: oidc}
			if err := s.store.PutTicket(ctx, keyOf(st), rec, max(sig.Expires.Sub(now), time.Second)); err != nil {
				if errors.Is(err, ErrNotFound) { // the session ended here meanwhile
					err = ErrSessionNotFound
					s.audit(ctx, audit.Action{API: "ticket.issue", Subject: "session:" + id, Result: audit.ResultFailure,
						Reason: reasonOf(err), Start: start, Fields: detail("service", service, "app_id", appID)})
				}
				return "", time.Time{}, err
			}
			tookNewLogin = newLogin && !fromNewLogin
		}
		newIssuer := guarded && !slices.Contains(sess.Issuers, replica)
		use := ServiceUse{Service: service, AppID: appID, Ticket: st, At: now.UTC()}
		if oidc != nil {
			// The logout token names the session, not the code: the
			// session record keeps the code's serial, never the code.
			use.Issuer, use.Ticket = oidc.Issuer, sig.Serial
		}
		if recorded(sess.Services, service) && now.Sub(sess.LastUsedAt) < s.cfg.TouchAfter && slices.Contains(sess.Issuers, replica) &&
			!tookNewLogin {
			// Not written: this instance remembers the service's newest
			// ticket, handed over when the session ends (EndTickets asks
			// the session's issuers only: an instance not listed, past
			// MaxIssuersPerSession, writes the session instead).
			s.store.NoteUse(id, use, sess.HardExpiry)
			break
		}
		sess.LastUsedAt = now.UTC()
		sess.Services = latestUses(sess.Services, []ServiceUse{use})
		if tookNewLogin {
			sess.NewLogin = NewLoginMark{} // once
		}
		if newIssuer {
			sess.Issuers = append(slices.Clip(sess.Issuers), replica)
		}
		err = s.store.UpdateSession(ctx, sess, rev, sess.Expiry(s.cfg.TGTIdle).Sub(now))
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			err = ErrSessionNotFound
		}
		if err != nil {
			// The session ended (or is too busy): the ticket must not
			// outlive it unrecorded.
			_, _ = s.store.ConsumeTicket(ctx, sig.Replica, keyOf(st))
			return "", time.Time{}, err
		}
		break
	}
	// The service and the application's id came from outside (a caller,
	// the registry's administrator): made safe; the rest was made here.
	f := detail("service", service, "app_id", appID, "kind", kind, "serial", sig.Serial, "session_id", id)
	if tookNewLogin {
		// The new login was made before the consent page, for this ticket.
		f = append(f, events.DetailField{Key: "new_login", Value: "before_consent"})
	}
	s.audit(ctx, audit.Action{API: "ticket.issue", Subject: "user:" + sess.UserID, Org: sess.OrgID,
		Result: audit.ResultSuccess, Reason: "OK", Start: start, Fields: f[:2], Own: f[2:]})
	return st, sig.Expires, nil
}

// setNewLogin records mark on the session of id: a login made for a
// service ticket that the person's consent must precede, owed to the
// ticket the consent page's Allow asks for (NewLoginMark, for
// NewLoginWindow); or, with clearFor, no mark any more when the session's
// is for that service (the person denied). Best effort: a mark not
// written leaves the ticket not from a new login, as before (a service
// asking renew signs the person in again), and is logged.
func (s *Service) setNewLogin(ctx context.Context, id string, mark NewLoginMark, clearFor string) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var (
			sess *Session
			rev  uint64
		)
		if sess, rev, err = s.liveSession(ctx, id); err != nil {
			break
		}
		if clearFor != "" && sess.NewLogin.Service != clearFor {
			return
		}
		sess.NewLogin = mark
		if err = s.store.UpdateSession(ctx, sess, rev, sess.Expiry(s.cfg.TGTIdle).Sub(s.now())); !errors.Is(err, ErrConflict) {
			break
		}
	}
	if err != nil {
		s.log.Warn("a new login's ticket waiting for consent was not recorded: the ticket after the consent page will not be "+
			"from a new login", zap.String("session_id", id), zapErr(err))
	}
}

// detail is an audit record's detail from key, value, key, value...: one
// allocation, no map (a ticket's records are built on every issue and
// validation).
func detail(kv ...string) []events.DetailField {
	out := make([]events.DetailField, len(kv)/2, len(kv)/2+2) // room for what a refusal adds
	for i := range out {
		out[i] = events.DetailField{Key: kv[2*i], Value: kv[2*i+1]}
	}
	return out
}

// recorded reports whether list names service (single logout goes to each
// service once).
func recorded(list []ServiceUse, service string) bool {
	for _, u := range list {
		if u.Service == service {
			return true
		}
	}
	return false
}

// latestUses is list with each of uses recorded as its service's ticket
// when it is newer than the one list has (a service list lacks is added).
func latestUses(list []ServiceUse, uses []ServiceUse) []ServiceUse {
	for _, u := range uses {
		i := slices.IndexFunc(list, func(e ServiceUse) bool { return e.Service == u.Service })
		switch {
		case i < 0:
			list = addUse(list, u)
		case u.At.After(list[i].At) || u.At.Equal(list[i].At) && u.Ticket != list[i].Ticket:
			list = slices.Clone(list) // list may be shared with a cached copy
			list[i] = u
		}
	}
	return list
}

// addUse records a service's ticket in a session's single-logout list: at
// most MaxTicketsPerService per service (the latest; an application keeps
// one session per ticket it validated, and older ones have usually ended)
// and MaxServicesPerSession in all.
func addUse(list []ServiceUse, u ServiceUse) []ServiceUse {
	same := 0
	for _, e := range list {
		if e.Service == u.Service {
			same++
		}
	}
	if same >= MaxTicketsPerService {
		for i, e := range list {
			if e.Service == u.Service {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
	}
	list = append(list, u)
	if n := len(list); n > MaxServicesPerSession {
		list = list[n-MaxServicesPerSession:]
	}
	return list
}

// Validate is a validation request (CAS serviceValidate, proxyValidate).
type Validate struct {
	Ticket     string
	Service    string
	Renew      bool
	AllowProxy bool
	// IssuePGT asks for a proxy-granting ticket for PGTURL.
	IssuePGT bool
	PGTURL   string
	// Attributes: the answer releases attributes (CAS 3.0 p3/,
	// samlValidate), and so the service's roles and permissions when it
	// releases them (Validation.Authorization).
	Attributes bool
}

// Validation is the answer: Valid with the ticket's record, or a CAS code
// and message.
type Validation struct {
	Valid   bool
	Code    CasCode
	Message string
	Ticket  *Ticket
	PGT     string
	PGTIOU  string
	// Authorization: the person's roles and permissions, when asked for
	// (Validate.Attributes) and the service releases them.
	Authorization *Authorization
	// Policy is the service's attribute release policy (nil: all
	// attributes in clear).
	Policy *AttributePolicy
}

// ValidateTicket consumes and checks a service (or proxy) ticket. Refusals
// are answers (Valid false); only faults of the store are errors.
func (s *Service) ValidateTicket(ctx context.Context, v Validate) (*Validation, error) {
	start := s.now()
	refuse := func(code CasCode, reason, msg string, t *Ticket) (*Validation, error) {
		a := audit.Action{API: "ticket.validate", Subject: "ticket", Result: audit.ResultFailure, Reason: reason, Start: start,
			Fields: detail("code", string(code), "service", v.Service)}
		if t != nil {
			a.Subject, a.Org = "user:"+t.UserID, t.OrgID
			a.Fields = append(a.Fields, events.DetailField{Key: "serial", Value: t.Serial})
		}
		s.auditCall(ctx, a)
		return &Validation{Code: code, Message: msg}, nil
	}
	if v.Ticket == "" || v.Service == "" {
		return refuse(CodeInvalidRequest, "MISSING_PARAMETER", "ticket and service are required", nil)
	}
	prefix := PrefixST
	switch {
	case strings.HasPrefix(v.Ticket, PrefixST):
	case strings.HasPrefix(v.Ticket, PrefixPT):
		// A proxy ticket at serviceValidate is refused below, once it is
		// used up (CAS 3.0 §3.1.1: refused or not, the ticket is spent).
		prefix = PrefixPT
	default:
		return refuse(CodeInvalidTicket, "UNKNOWN_TICKET", fmt.Sprintf("ticket %s not recognized", shown(v.Ticket)), nil)
	}
	sig, err := parseSigned(s.mac, prefix, v.Ticket)
	if err != nil {
		// Forged, altered or malformed: refused before any lookup.
		return refuse(CodeInvalidTicket, "FORGED_OR_MALFORMED", fmt.Sprintf("ticket %s not recognized", shown(v.Ticket)), nil)
	}
	if !s.now().Before(sig.Expires) {
		return refuse(CodeInvalidTicket, "EXPIRED", fmt.Sprintf("ticket %s has expired", shown(v.Ticket)), nil)
	}
	// The registry is read before the ticket is used up, so that its
	// fault leaves the ticket usable; its verdicts are answered after.
	rs, err := s.reg.Match(ctx, v.Service)
	if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
		return nil, err
	}
	var pgtRefusal *Validation
	if v.IssuePGT {
		if pgtRefusal, err = s.checkProxyCallback(ctx, rs, v.PGTURL); err != nil {
			return nil, err
		}
	}
	// A service releasing authz's answer: authz is asked before the
	// ticket is used up (its record read, not taken), so that authz not
	// answering leaves the ticket usable for the application's retry. The
	// answer is released only if the ticket then validates.
	release := v.Attributes && rs != nil && rs.ReleasesAuthorization()
	var rel *Authorization
	if release {
		var pt *Ticket
		rel, pt, err = s.releaseBefore(ctx, sig.Replica, keyOf(v.Ticket), rs, func(pt *Ticket) bool {
			return sameService(pt.Service, v.Service) && pt.OIDC == nil
		})
		if err != nil {
			return s.refuseRelease(ctx, start, v, pt, sig.Serial, false, err)
		}
		// Else (not found, or its instance cannot be asked so): the
		// ticket's fate is decided below, authz asked after.
	}
	t, err := s.store.ConsumeTicket(ctx, sig.Replica, keyOf(v.Ticket))
	if errors.Is(err, ErrNotFound) {
		return refuse(CodeInvalidTicket, "UNKNOWN_OR_USED", fmt.Sprintf("ticket %s not recognized", shown(v.Ticket)), nil)
	}
	if err != nil {
		return nil, err
	}
	// The ticket is used up from here on, whatever follows: CAS 3.0
	// §3.1.1 invalidates a presented ticket whether or not its validation
	// succeeds (a ticket for the wrong service, a proxy ticket at
	// serviceValidate, a refused proxy callback...).
	if !sameService(t.Service, v.Service) {
		return refuse(CodeInvalidService, "WRONG_SERVICE", "the ticket was not issued for this service", t)
	}
	if rs == nil {
		// Issued for a registered service that is no longer (deleted, or
		// its application deleted in identity), is disabled, or whose
		// application is suspended: it validates no more.
		return refuse(CodeInvalidService, "SERVICE_NOT_REGISTERED", "the service is no longer registered or is disabled, or its application is suspended", t)
	}
	// The presented URL may match another registered service than the
	// issued one (a pattern service matching the URL with its default port
	// written out, or in another letter case): its release policy, proxy
	// right and application would then apply to a ticket issued under
	// another. The issued URL's service must be this one, of the ticket's
	// application (review sec32b M1). Match hits the registry's cache: the
	// issue matched the same string.
	if issued, err := s.reg.Match(ctx, t.Service); err != nil || issued.ID != rs.ID || (t.AppID != "" && issued.AppID != t.AppID) {
		if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
			return nil, err
		}
		return refuse(CodeInvalidService, "WRONG_SERVICE", "the ticket was not issued for this service", t)
	}
	if t.OIDC != nil {
		return refuse(CodeInvalidTicketSpec, "AUTHORIZATION_CODE",
			"the ticket is an OpenID Connect authorization code: redeem it at the token endpoint", t)
	}
	if prefix == PrefixPT && !v.AllowProxy {
		return refuse(CodeInvalidTicketSpec, "PROXY_TICKET_NOT_ALLOWED", "proxy tickets are validated at proxyValidate", t)
	}
	if rs != nil && rs.LegacyScheme != 0 {
		// The legacy interface checks its caller (App_ID and secret, IP
		// allow-list): its tickets are validated there only, as CAS
		// tickets are refused there.
		return refuse(CodeInvalidService, "LEGACY_SERVICE",
			"the ticket was issued to an application of the ssoAuthService interface (validate it there)", t)
	}
	if v.Renew && !t.FromNewLogin {
		return refuse(CodeInvalidTicketSpec, "NOT_FROM_NEW_LOGIN", "renew was requested but the ticket did not follow a login", t)
	}
	if pgtRefusal != nil {
		reason := "PROXY_NOT_ALLOWED"
		if pgtRefusal.Code == CodeInvalidProxyCallback {
			reason = "BAD_PROXY_CALLBACK"
		}
		return refuse(pgtRefusal.Code, reason, pgtRefusal.Message, t)
	}
	// A ticket ends with its session: a guarded ticket was removed when
	// its session ended (wherever it ended); an unguarded one is checked
	// against the session here.
	if err := s.sessionOfTicket(ctx, t); err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			return refuse(CodeInvalidTicket, "SESSION_ENDED", fmt.Sprintf("ticket %s not recognized", shown(v.Ticket)), t)
		}
		return nil, err
	}
	if release && (rel == nil || rel.user != t.UserID) {
		// Not asked before (the ticket's instance could not be asked for
		// its record): asked now, the ticket used up.
		if rel, err = s.authorization(ctx, t.UserID, t.AppID, rs); err != nil {
			return s.refuseRelease(ctx, start, v, t, sig.Serial, true, err)
		}
	}
	out := &Validation{Valid: true, Ticket: t, Authorization: rel, Policy: rs.Policy()}
	if v.IssuePGT {
		pgt, iou := newOpaque(PrefixPGT, s.cfg.Centre), newOpaque(PrefixPGTIOU, s.cfg.Centre)
		rec := &PGT{SessionID: t.SessionID, UserID: t.UserID, Login: t.Login, OrgID: t.OrgID, AuthLevel: t.AuthLevel, AuthMethod: t.AuthMethod,
			AuthTime: t.AuthTime, Proxies: append([]string{v.PGTURL}, t.Proxies...), CreatedAt: s.now().UTC(), Service: t.Service}
		if err := s.store.PutPGT(ctx, keyOf(pgt), rec, s.cfg.PGTTTL); err != nil {
			return nil, err
		}
		out.PGT, out.PGTIOU = pgt, iou
	}
	// The service and the application's id came from outside: made safe;
	// the kind is the ticket's prefix (ST or PT, the record's kind), the
	// serial the one its signature covers (lower-case hex, checked by
	// parseSigned; the record's), and pgt a boolean.
	f := detail("service", v.Service, "app_id", t.AppID, "kind", prefix[:len(prefix)-1], "serial", sig.Serial,
		"pgt", strconv.FormatBool(out.PGT != ""))
	if rel != nil {
		f = append(f, detail("released", releasedNames(rel))...)
	}
	s.auditCall(ctx, audit.Action{API: "ticket.validate", Subject: "user:" + t.UserID, Org: t.OrgID,
		Result: audit.ResultSuccess, Reason: "OK", Start: start, Fields: f[:2], Own: f[2:]})
	return out, nil
}

// checkProxyCallback decides whether service rs (nil: not registered) may
// obtain a proxy-granting ticket at pgtURL: the service must be allowed to
// proxy, and the callback must be a registered https URL of the same
// application. A refusal is the answer (code and message); an error is a
// fault of the registry.
func (s *Service) checkProxyCallback(ctx context.Context, rs *RegisteredService, pgtURL string) (*Validation, error) {
	if rs == nil || !rs.AllowProxy {
		return &Validation{Code: CodeUnauthorizedServiceProx, Message: "the service is not allowed to obtain proxy-granting tickets"}, nil
	}
	cb, err := s.reg.Match(ctx, pgtURL)
	if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
		return nil, err
	}
	if cb == nil || !strings.HasPrefix(pgtURL, "https://") || cb.AppID != rs.AppID {
		return &Validation{Code: CodeInvalidProxyCallback,
			Message: "the proxy callback must be a registered https URL of the service's own application"}, nil
	}
	return nil, nil
}

// sessionOfTicket checks that the session of a consumed ticket has not
// ended: nothing to read for a guarded ticket (its session's end would
// have removed it, Store.EndTickets), a read of the session otherwise.
func (s *Service) sessionOfTicket(ctx context.Context, t *Ticket) error {
	if t.Guarded {
		return nil
	}
	_, _, err := s.liveSession(ctx, t.SessionID)
	return err
}

// shown is the part of a ticket value that messages and records may show:
// its prefix and serial start, never enough to use it.
func shown(t string) string {
	if len(t) > 12 {
		t = t[:12] + "..."
	}
	var b strings.Builder
	for _, r := range t {
		if r < 0x20 || r == 0x7f || r == '<' || r == '>' || r == '&' || r == '"' || r == '\'' {
			r = '?'
		}
		b.WriteRune(r)
	}
	return "'" + b.String() + "'"
}

// RevokePGT ends a PGT at once (the CAS edge's call when the pgtUrl did
// not take it: CAS 3.0 §2.5.4 issues none then).
func (s *Service) RevokePGT(ctx context.Context, pgt string) error {
	if !strings.HasPrefix(pgt, PrefixPGT) || !ValidTicketChars(pgt) {
		return nil // nothing of ours
	}
	if err := s.store.DeletePGT(ctx, keyOf(pgt)); err != nil {
		return err
	}
	s.audit(ctx, audit.Action{API: "ticket.pgt.revoke", Subject: "pgt", Result: audit.ResultSuccess, Reason: "CALLBACK_FAILED",
		Start: s.now(), Fields: detail("pgt", shown(pgt))})
	return nil
}

// IssueProxyTicket issues a PT for target from a PGT. Refusals are answers
// (code and message); only faults of the store are errors.
func (s *Service) IssueProxyTicket(ctx context.Context, pgt, target string) (string, CasCode, string, error) {
	start := s.now()
	refuse := func(code CasCode, reason, msg string) (string, CasCode, string, error) {
		s.audit(ctx, audit.Action{API: "ticket.proxy", Subject: "pgt", Result: audit.ResultFailure, Reason: reason,
			Start: start, Fields: detail("code", string(code), "service", target)})
		return "", code, msg, nil
	}
	if pgt == "" || target == "" {
		return refuse(CodeInvalidRequest, "MISSING_PARAMETER", "pgt and targetService are required")
	}
	if !strings.HasPrefix(pgt, PrefixPGT) || !ValidTicketChars(pgt) {
		return refuse(CodeInvalidTicket, "UNKNOWN_TICKET", fmt.Sprintf("ticket %s not recognized", shown(pgt)))
	}
	p, err := s.store.GetPGT(ctx, keyOf(pgt))
	if errors.Is(err, ErrNotFound) {
		return refuse(CodeInvalidTicket, "UNKNOWN_TICKET", fmt.Sprintf("ticket %s not recognized", shown(pgt)))
	}
	if err != nil {
		return "", "", "", err
	}
	sess, rev, err := s.followSession(ctx, p.SessionID)
	if err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			return refuse(CodeInvalidTicket, "SESSION_ENDED", fmt.Sprintf("ticket %s not recognized", shown(pgt)))
		}
		return "", "", "", err
	}
	// The PGT's own service must still be allowed to proxy: deleted,
	// disabled, no longer allow_proxy, or its application suspended, its
	// PGTs issue nothing more (as its service tickets validate no more).
	if p.Service != "" {
		own, err := s.reg.Match(ctx, p.Service)
		if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
			return "", "", "", err
		}
		if own == nil || !own.AllowProxy {
			_ = s.store.DeletePGT(ctx, keyOf(pgt))
			return refuse(CodeInvalidTicket, "PROXY_NOT_ALLOWED",
				fmt.Sprintf("ticket %s is no longer valid: its service is no longer registered or allowed to proxy, or its application is suspended", shown(pgt)))
		}
	}
	rs, err := s.reg.Match(ctx, target)
	if errors.Is(err, ErrServiceNotRegistered) {
		return refuse(CodeUnauthorizedService, "SERVICE_NOT_REGISTERED", "the target service is not registered to use single sign-on")
	}
	if err != nil {
		return "", "", "", err
	}
	if rs.LegacyScheme != 0 {
		// The ssoAuthService interface validates its own tickets only
		// (the caller checked), never proxy tickets.
		return refuse(CodeUnauthorizedService, "LEGACY_SERVICE",
			"the target is an application of the ssoAuthService interface, which takes no proxy tickets")
	}
	if rs.AppLevelUnknown {
		return "", "", "", ErrAppLevelUnknown
	}
	if !rs.StrongEnough(p.AuthLevel, p.AuthMethod) {
		return refuse(CodeUnauthorizedService, "AUTH_LEVEL_TOO_LOW", "the target service requires a stronger login")
	}
	if rs.HasAccessRule() {
		denied, err := s.checkAccess(ctx, p.UserID, rs)
		if err != nil {
			return "", "", "", err
		}
		if denied != nil {
			s.auditAccessDenied(ctx, "ticket.proxy", start, p.UserID, p.OrgID, target, rs, denied)
			// said to the proxying service, not to the person (trial12 D4)
			return "", CodeUnauthorizedService, "the person may not use the target service's application: " + denied.why(), nil
		}
	}
	// A client asking consent: the person's consent covers a proxy
	// ticket as a service ticket (review sec30c H1).
	if err := s.consentCovers(ctx, p.UserID, rs, rs.AppID, CASConsentScope); err != nil {
		if reasonOf(err) == ReasonConsentRequired {
			return refuse(CodeUnauthorizedService, ReasonConsentRequired, "the person has not consented to the target service's application")
		}
		return "", "", "", err
	}
	appID := rs.AppID
	now := s.now()
	pt, sig := newSigned(s.mac, PrefixPT, s.cfg.Centre, s.store.Replica(), now, now.Add(s.cfg.PTTTL))
	// The session the PGT's now is (the one that replaced it, after a raise).
	rec := &Ticket{Kind: KindPT, Serial: sig.Serial, Service: target, AppID: appID, SessionID: sess.ID,
		UserID: p.UserID, Login: p.Login, OrgID: p.OrgID, AuthLevel: p.AuthLevel, AuthMethod: p.AuthMethod, AuthTime: p.AuthTime,
		IssuedAt: sig.Issued.UTC(), ExpiresAt: sig.Expires.UTC(), Proxies: p.Proxies}
	if err := s.store.PutTicket(ctx, keyOf(pt), rec, s.cfg.PTTTL); err != nil {
		if errors.Is(err, ErrNotFound) { // the session ended here meanwhile
			return refuse(CodeInvalidTicket, "SESSION_ENDED", fmt.Sprintf("ticket %s not recognized", shown(pgt)))
		}
		return "", "", "", err
	}
	// The target receives the single-logout request of the session too,
	// as every service that received a ticket in it.
	if err := s.recordProxied(ctx, sess, rev, ServiceUse{Service: target, AppID: appID, Ticket: pt, At: now.UTC()}); err != nil {
		_, _ = s.store.ConsumeTicket(ctx, sig.Replica, keyOf(pt)) // the ticket must not outlive its session unrecorded
		if errors.Is(err, ErrSessionNotFound) {
			return refuse(CodeInvalidTicket, "SESSION_ENDED", fmt.Sprintf("ticket %s not recognized", shown(pgt)))
		}
		return "", "", "", err
	}
	s.audit(ctx, audit.Action{API: "ticket.issue", Subject: "user:" + p.UserID, Org: p.OrgID,
		Result: audit.ResultSuccess, Reason: "OK", Start: start,
		Fields: detail("kind", "PT", "serial", sig.Serial, "service", target, "app_id", appID,
			"session_id", sess.ID)})
	return pt, "", "", nil
}

// recordProxied records in session sess (read at rev) that u's service
// received a proxy ticket (its latest): the session's end sends that
// service the single-logout request too. Proxy tickets are issued by
// instances the session need not list, so the session is written for each
// (not noted in memory as repeated service tickets are). ErrSessionNotFound
// when the session has ended.
func (s *Service) recordProxied(ctx context.Context, sess *Session, rev uint64, u ServiceUse) error {
	for attempt := 0; ; attempt++ {
		sess.Services = latestUses(sess.Services, []ServiceUse{u})
		err := s.store.UpdateSession(ctx, sess, rev, sess.Expiry(s.cfg.TGTIdle).Sub(s.now()))
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrConflict) && attempt < 5:
			if sess, rev, err = s.liveSession(ctx, sess.ID); err != nil {
				return err
			}
		case errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound):
			return ErrSessionNotFound
		default:
			return err
		}
	}
}

// UserSessions lists the live sessions of a person.
func (s *Service) UserSessions(ctx context.Context, userID string) ([]*Session, error) {
	ids, err := s.store.UserSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	var out []*Session
	for _, id := range ids {
		sess, _, err := s.liveSession(ctx, id)
		if errors.Is(err, ErrSessionNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if sess.UserID == userID {
			out = append(out, sess)
		}
	}
	return out, nil
}

// RevokeUserSessions ends one session of a person (sessionID) or all of
// them; it returns how many ended.
func (s *Service) RevokeUserSessions(ctx context.Context, userID, sessionID, reason string) (int, error) {
	// A session ended with an error (an instance keeping its tickets not
	// told) counts as ended, and the person's other sessions end too.
	if sessionID != "" {
		ok, err := s.endSession(ctx, sessionID, userID, reason)
		if ok {
			return 1, err
		}
		if err != nil {
			return 0, err
		}
		return 0, ErrNoSuchUserSession
	}
	return s.EndUserSessions(ctx, userID, "", reason)
}

// EndUserSessions ends every session of a person but keep (when not
// empty: the session in which they changed their password); it returns
// how many ended.
func (s *Service) EndUserSessions(ctx context.Context, userID, keep, reason string) (int, error) {
	return s.EndUserSessionsBefore(ctx, userID, keep, reason, time.Time{})
}

// EndUserSessionsBefore is EndUserSessions for a password set at
// password (zero: whenever): a session whose login saw that password
// (Session.PasswordAt not before it) stays. A change's event may arrive
// late (the outbox's relay, a busy NATS, another centre): the person who
// changed their password and signed in with the new one meanwhile keeps
// that session, while one opened with the old password (also at a centre
// that had not yet applied the change) ends. The times are identity's
// (the stored password time, replicated as it is), not two clocks.
func (s *Service) EndUserSessionsBefore(ctx context.Context, userID, keep, reason string, password time.Time) (int, error) {
	return s.endUserSessionsBut(ctx, userID, reason, func(id string) (bool, error) {
		if id == keep {
			return true, nil
		}
		if password.IsZero() {
			return false, nil
		}
		sess, _, err := s.store.GetSession(ctx, id)
		if errors.Is(err, ErrNotFound) {
			// Ended, or not yet seen by the replica that answered (a
			// replicated bucket): the component's second sweep looks
			// again (review sec25 I1).
			return true, nil
		}
		// signed in with the new password (or later)
		return err == nil && !sess.PasswordAt.IsZero() && !sess.PasswordAt.Before(password), nil
	})
}

// EndUserSessionsBeforeState is EndUserSessions for an account locked or
// disabled at state (identity's state time; zero: whenever, every session
// ends): a session whose login saw that state or a later one
// (Session.StateAt not before it: the person was unlocked or enabled again
// and signed in since) stays. The change's event may arrive late (the
// outbox's relay, a busy NATS, a consumer catching up): it does not sign
// out the person signed in again after the unlock, while every session
// opened before the lock, and one of an earlier version that recorded no
// state time, ends (ADR 0047).
func (s *Service) EndUserSessionsBeforeState(ctx context.Context, userID, reason string, state time.Time) (int, error) {
	return s.endUserSessionsBut(ctx, userID, reason, func(id string) (bool, error) {
		if state.IsZero() {
			return false, nil
		}
		sess, _, err := s.store.GetSession(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return true, nil // ended, or not yet seen: the second sweep looks again
		}
		return err == nil && !sess.StateAt.IsZero() && !sess.StateAt.Before(state), nil
	})
}

// EndUserSessionsBelow ends the sessions of a person that do not reach
// level, the person's own (identity's min_auth_level, just raised): 2 two
// factors or a certificate (a session of level 2), 3 a certificate only (a
// certificate's session); it returns how many ended.
func (s *Service) EndUserSessionsBelow(ctx context.Context, userID string, level int, reason string) (int, error) {
	return s.endUserSessionsBut(ctx, userID, reason, func(id string) (bool, error) {
		sess, _, err := s.store.GetSession(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return sessionReaches(sess, level), nil
	})
}

// endUserSessionsBut ends, for reason, the sessions of a person but those
// stays keeps (an error of stays stops it); it returns how many ended.
func (s *Service) endUserSessionsBut(ctx context.Context, userID, reason string, stays func(id string) (bool, error)) (int, error) {
	ids, err := s.store.UserSessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	n := 0
	var untold []error
	for _, id := range ids {
		keep, err := stays(id)
		if err != nil {
			return n, err
		}
		if keep {
			continue
		}
		ok, err := s.endSession(ctx, id, userID, reason)
		switch {
		case ok:
			n++
			if err != nil {
				untold = append(untold, err)
			}
		case err != nil:
			return n, err
		}
	}
	return n, errors.Join(untold...)
}

// sessionReaches reports whether sess reaches a person's level (1 any, 2
// two factors or a certificate, 3 a certificate only).
func sessionReaches(sess *Session, level int) bool {
	if level >= 3 {
		return sess.AuthMethod == AuthMethodCertificate
	}
	return sess.AuthLevel >= level
}

// EndSessionsOfInactive ends the sessions of the people with live
// sessions whom inactive names (asked in batches of at most 1000 user
// ids: those who may no longer sign in), for reason; it returns how many
// sessions ended.
func (s *Service) EndSessionsOfInactive(ctx context.Context, inactive func(context.Context, []string) ([]string, error), reason string) (int, error) {
	users := map[string]bool{}
	for tok := ""; ; {
		list, next, err := s.ListSessions(ctx, SessionQuery{PageSize: MaxSessionPage, PageToken: tok})
		if err != nil {
			return 0, err
		}
		for _, x := range list {
			users[x.UserID] = true
		}
		if tok = next; tok == "" {
			break
		}
	}
	ids := slices.Sorted(maps.Keys(users))
	n := 0
	var errs []error
	for start := 0; start < len(ids); start += 1000 {
		gone, err := inactive(ctx, ids[start:min(start+1000, len(ids))])
		if err != nil {
			return n, err
		}
		for _, id := range gone {
			k, err := s.EndUserSessions(ctx, id, "", reason)
			n += k
			if err != nil && !errors.Is(err, ErrNoSuchUserSession) {
				errs = append(errs, err)
			}
		}
	}
	return n, errors.Join(errs...)
}

// reasonOf is the reason of an error for audit records.
func reasonOf(err error) string {
	if ae, ok := apierr.As(err); ok {
		return ae.Reason
	}
	return "ERROR"
}

func zapErr(err error) zap.Field { return zap.Error(err) }

// sameService reports whether the service a ticket is validated for is the
// one it was issued for: equal, except that the scheme and host may differ
// in case, and the scheme's default port may be written or left out (they
// name the same origin, RFC 3986 6.2.3; Apereo CAS compares without case).
// A browser sent to https://a.example:443/ shows and requests
// https://a.example/, which is what the application's CAS client then
// validates for.
func sameService(issued, presented string) bool {
	if issued == presented {
		return true
	}
	a, b := splitOrigin(issued), splitOrigin(presented)
	return a[1] == b[1] && a[1] != "" && strings.EqualFold(withoutDefaultPort(a[0]), withoutDefaultPort(b[0]))
}

// withoutDefaultPort is the scheme://host[:port] origin o without ":443"
// for https or ":80" for http (the scheme compared without case).
func withoutDefaultPort(o string) string {
	scheme, _, _ := strings.Cut(o, "://")
	switch strings.ToLower(scheme) {
	case "https":
		return strings.TrimSuffix(o, ":443")
	case "http":
		return strings.TrimSuffix(o, ":80")
	}
	return o
}

// launchURL is a registered service URL as a person is sent to it: the
// registry keeps the scheme's default port written out (its normalized
// prefix, https://a.example:443/app/), which browsers drop, so the
// application would see another URL than the ticket's.
func launchURL(registered string) string {
	o := splitOrigin(registered)
	if o[1] == "" {
		return registered
	}
	return withoutDefaultPort(o[0]) + o[1]
}

// splitOrigin splits a URL into its scheme://host part and the rest (from
// the path on); the rest is "" when there is no "://".
func splitOrigin(u string) [2]string {
	i := strings.Index(u, "://")
	if i < 0 {
		return [2]string{u, ""}
	}
	j := strings.IndexAny(u[i+3:], "/?#")
	if j < 0 {
		return [2]string{u, "/"}
	}
	return [2]string{u[:i+3+j], u[i+3+j:]}
}
