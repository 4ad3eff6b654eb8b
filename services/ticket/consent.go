package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
)

// OpenID Connect consent and a person's own control of the applications
// they gave access to (JR/T 0185-2020 9.3.2; ADR 0036), as Keycloak's
// consent screen and Account Console "Applications" page: a service with
// ConsentRequired gives its client an authorization code only after the
// person allowed the scopes it asks for, remembered for the service's
// ConsentTTL; the person may revoke a client's access, which forgets the
// consent and ends every token of the client granted to them before (the
// consent record's RevokedAt, read by every use of a token).

// DefaultConsentTTL is how long a consent is remembered when the service
// sets no period; MaxConsentTTL bounds the period a service may set.
const (
	DefaultConsentTTL = 90 * 24 * time.Hour
	MaxConsentTTL     = 3650 * 24 * time.Hour
)

// Consent is a person's consent to an OpenID Connect client (an
// application), and the last time they revoked its access.
type Consent struct {
	UserID, ClientID string
	// Scope is what the person allowed (space-separated; "" none), from
	// GrantedAt until ExpiresAt (zero: nothing remembered).
	Scope     string
	GrantedAt time.Time
	ExpiresAt time.Time
	// RevokedAt: the person revoked the client's access then; grants made
	// before it (their tokens) are ended. Zero: never.
	RevokedAt time.Time
}

// Covers reports whether c, at now, remembers consent to every scope of
// scope.
func (c *Consent) Covers(scope string, now time.Time) bool {
	if c == nil || c.Scope == "" || !now.Before(c.ExpiresAt) {
		return false
	}
	for _, sc := range strings.Fields(scope) {
		if !hasScope(c.Scope, sc) {
			return false
		}
	}
	return true
}

// ConsentStore keeps consents (the ticket component's SQL store), one
// record per person and client. A missing record is store.ErrNotFound.
type ConsentStore interface {
	// PutConsent writes c (replacing the record of its person and client)
	// with its events in the same transaction.
	PutConsent(ctx context.Context, c *Consent, evs ...events.Event) error
	GetConsent(ctx context.Context, userID, clientID string) (*Consent, error)
	// ListConsents lists the person's records, by client.
	ListConsents(ctx context.Context, userID string) ([]*Consent, error)
}

// SetConsents sets the consent store (nil: no service may require consent;
// such a service's authorization is refused CONSENT_UNAVAILABLE).
func (s *Service) SetConsents(c ConsentStore) { s.consents = c }

// Consent errors (reasons registered in reasons.go).
var (
	ErrConsentRequired = apierr.New(apierr.FailedPrecondition, ReasonConsentRequired,
		"the application asks for your consent before it may have access to your account: allow it on the consent page")
	ErrConsentUnavailable = apierr.New(apierr.Unavailable, ReasonConsentUnavailable,
		"consents cannot be read or recorded now; try again later")
	ErrMyAppNotFound = apierr.New(apierr.NotFound, ReasonMyAppNotFound,
		"you have given no access to that application (or it was removed already)")
)

// Consent reasons.
const (
	ReasonConsentRequired    = "CONSENT_REQUIRED"
	ReasonConsentUnavailable = "CONSENT_UNAVAILABLE"
	ReasonMyAppNotFound      = "MY_APPLICATION_NOT_FOUND"
)

// ConsentTTLOf is the period a consent to rs is remembered.
func ConsentTTLOf(rs *RegisteredService) time.Duration {
	if rs.ConsentTTL > 0 {
		return rs.ConsentTTL
	}
	return DefaultConsentTTL
}

// CASConsentScope is what a consent covers for a CAS (or ssoAuthService,
// or proxy) ticket of a client asking consent (review sec30c H1: no
// protocol reaches such a client without the person's consent). It is a
// scope of its own (review sec31c L1): the CAS consent page lists what the
// client's CAS services receive after their release policy (roles,
// permissions, groups, level, account type), which the OpenID Connect page
// of "openid profile" never shows, so an OpenID Connect consent does not
// cover a CAS ticket, and a CAS consent grants no OpenID Connect scope. An
// OpenID Connect client may not ask for it (ErrInvalidScope), and a consent
// query asks it alone (ConsentScopeOK). Consents recorded before it (as
// "openid profile") no longer cover CAS tickets: the person is asked once
// again.
const CASConsentScope = "cas"

// errCASScope refuses an OpenID Connect request asking CASConsentScope, or
// a consent query asking it with other scopes.
var errCASScope = ErrInvalidScope.WithMessage("the scope " + CASConsentScope + " is the consent to the application's CAS " +
	"services, given only on their consent page: an OpenID Connect client may not ask for it")

// ConsentScopeOK checks a consent query's scope: CASConsentScope alone (the
// CAS consent page) or OpenID Connect scopes without it (ErrInvalidScope).
func ConsentScopeOK(scope string) error {
	if hasScope(scope, CASConsentScope) && strings.TrimSpace(scope) != CASConsentScope {
		return errCASScope
	}
	return nil
}

// oidcConsentScope is the scope an OpenID Connect (or plain OAuth)
// authorization request asks consent to: its scope, or "openid" when it
// names none (review sec32a L1). RFC 6749 3.3 lets the server apply a
// default to a request without scope, and the consent page shows such a
// request as "openid" already; so a CAS-only consent (CASConsentScope)
// never covers it, and Allow on its page records "openid", which then
// does. The code and tokens keep the scope the request asked (none).
func oidcConsentScope(scope string) string {
	if strings.TrimSpace(scope) == "" {
		return "openid"
	}
	return scope
}

// consentService is the service whose consent settings apply to rs's
// client (nil: it asks none). Consent is kept and enforced per client
// (review sec30c M2): when any enabled service of rs's application asks
// consent, all of them do (rs's own settings first).
func (s *Service) consentService(ctx context.Context, rs *RegisteredService) (*RegisteredService, error) {
	if rs.ConsentRequired {
		return rs, nil
	}
	return s.reg.consentOf(ctx, rs.AppID)
}

// ConsentPrompt is what the consent page shows.
type ConsentPrompt struct {
	// Needed: the person must consent (false: go on and issue the code).
	Needed      bool
	ClientID    string
	ServiceName string
	Scope       string
	// TTL is how long an allowed consent is remembered; Until is when
	// one given now ends.
	TTL   time.Duration
	Until time.Time
	// Granted is the scope an earlier consent still covers ("" none).
	Granted string
}

// ConsentQuery asks whether the person of TGT must consent before the
// client gets a code for RedirectURI with Scope (Force: prompt=consent).
type ConsentQuery struct {
	TGT, ClientID, RedirectURI, Scope string
	Force                             bool
}

// consentSubject resolves q's session and service (a live session, a
// registered OpenID Connect service of the client).
func (s *Service) consentSubject(ctx context.Context, tgt, clientID, redirect string) (*Session, *RegisteredService, error) {
	if !validTGT(tgt) {
		return nil, nil, ErrSessionNotFound
	}
	sess, _, err := s.liveSession(ctx, SessionID(tgt))
	if err != nil {
		return nil, nil, err
	}
	rs, err := s.reg.Match(ctx, redirect)
	if err != nil {
		return nil, nil, err
	}
	// Any service of the client (its redirect URI, or a CAS service
	// asking consent before its ticket): consent is the client's.
	if rs.AppID != clientID {
		return nil, nil, ErrRedirectNotOfClient
	}
	return sess, rs, nil
}

// ConsentNeeded answers whether q needs the person's consent, and what the
// consent page shows.
func (s *Service) ConsentNeeded(ctx context.Context, q ConsentQuery) (*ConsentPrompt, error) {
	if err := ConsentScopeOK(q.Scope); err != nil {
		return nil, err
	}
	sess, rs, err := s.consentSubject(ctx, q.TGT, q.ClientID, q.RedirectURI)
	if err != nil {
		return nil, err
	}
	return s.consentPrompt(ctx, sess.UserID, rs, q.ClientID, oidcConsentScope(q.Scope), q.Force)
}

func (s *Service) consentPrompt(ctx context.Context, userID string, rs *RegisteredService, clientID, scope string, force bool) (*ConsentPrompt, error) {
	now := s.now()
	cs, err := s.consentService(ctx, rs)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return &ConsentPrompt{ClientID: clientID, ServiceName: rs.Name, Scope: scope}, nil
	}
	ttl := ConsentTTLOf(cs)
	p := &ConsentPrompt{ClientID: clientID, ServiceName: rs.Name, Scope: scope, TTL: ttl, Until: now.Add(ttl).UTC()}
	c, err := s.getConsent(ctx, userID, clientID)
	if err != nil {
		return nil, err
	}
	if c != nil && now.Before(c.ExpiresAt) {
		p.Granted = c.Scope
	}
	p.Needed = force || !c.Covers(scope, now)
	return p, nil
}

// getConsent reads the person's record of client (nil: none).
func (s *Service) getConsent(ctx context.Context, userID, clientID string) (*Consent, error) {
	if s.consents == nil {
		return nil, ErrConsentUnavailable
	}
	c, err := s.consents.GetConsent(ctx, userID, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return c, err
}

// consentCovers checks, at ticket or code issue, that a client asking
// consent (any of its services does) has the person's consent to scope
// (ErrConsentRequired when not).
func (s *Service) consentCovers(ctx context.Context, userID string, rs *RegisteredService, clientID, scope string) error {
	cs, err := s.consentService(ctx, rs)
	if err != nil || cs == nil {
		return err
	}
	c, err := s.getConsent(ctx, userID, clientID)
	if err != nil {
		return err
	}
	if !c.Covers(scope, s.now()) {
		return ErrConsentRequired
	}
	return nil
}

// consentEvents are the CHANGES event and audit record of a person's
// consent change (op: granted, revoked), the person the actor.
func (s *Service) consentEvents(ctx context.Context, op string, sess *Session, c *Consent, extra ...string) []events.Event {
	now := s.now().UTC()
	payload, _ := json.Marshal(map[string]any{"entity": "consent", "op": op, "id": c.UserID + "/" + c.ClientID,
		"actor": "user:" + sess.UserID, "time": now, "data": map[string]any{"user_id": c.UserID, "client_id": c.ClientID,
			"scope": c.Scope, "expires_at": c.ExpiresAt}})
	change := events.Event{ID: ids.New(), Subject: "uias.changes.ticket.consent." + op, Type: "ticket.consent." + op,
		Time: now, Payload: payload}
	return []events.Event{change, s.auditor.Event(ctx, audit.Action{API: "oidc.consent." + op, Subject: "user:" + sess.UserID,
		Org: sess.OrgID, AppID: c.ClientID, Result: audit.ResultSuccess, Reason: "OK", Start: now,
		Fields: detail(append([]string{"client_id", c.ClientID}, extra...)...), Own: detail("session_id", sess.ID)})}
}

// GrantConsent records that the person of q.TGT allowed q.Scope to the
// client (with what an unexpired earlier consent covers), for the
// service's consent period. It returns what was recorded.
func (s *Service) GrantConsent(ctx context.Context, q ConsentQuery) (*Consent, error) {
	if err := ConsentScopeOK(q.Scope); err != nil {
		return nil, err
	}
	sess, rs, err := s.consentSubject(ctx, q.TGT, q.ClientID, q.RedirectURI)
	if err != nil {
		return nil, err
	}
	old, err := s.getConsent(ctx, sess.UserID, q.ClientID)
	if err != nil {
		return nil, err
	}
	cs, err := s.consentService(ctx, rs)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		cs = rs
	}
	now := s.now().UTC()
	scopes := strings.Fields(oidcConsentScope(q.Scope))
	c := &Consent{UserID: sess.UserID, ClientID: q.ClientID, GrantedAt: now, ExpiresAt: now.Add(ConsentTTLOf(cs))}
	if old != nil {
		c.RevokedAt = old.RevokedAt
		if now.Before(old.ExpiresAt) {
			scopes = append(scopes, strings.Fields(old.Scope)...)
		}
	}
	slices.Sort(scopes)
	c.Scope = strings.Join(slices.Compact(scopes), " ")
	if err := s.consents.PutConsent(ctx, c, s.consentEvents(ctx, "granted", sess, c, "scope", c.Scope,
		"expires_at", c.ExpiresAt.Format(time.RFC3339))...); err != nil {
		return nil, err
	}
	return c, nil
}

// DenyConsent records (audit) that the person of q.TGT refused the
// client's request; nothing remembered changes.
func (s *Service) DenyConsent(ctx context.Context, q ConsentQuery) error {
	sess, _, err := s.consentSubject(ctx, q.TGT, q.ClientID, q.RedirectURI)
	if err != nil {
		return err
	}
	if sess.NewLogin.Service != "" && sess.NewLogin.Service == q.RedirectURI {
		// A renew login waiting for this consent is not owed a ticket any
		// more (review sec31c M1).
		s.setNewLogin(ctx, sess.ID, NewLoginMark{}, q.RedirectURI)
	}
	s.audit(ctx, audit.Action{API: "oidc.consent.denied", Subject: "user:" + sess.UserID, Org: sess.OrgID, AppID: q.ClientID,
		Result: audit.ResultSuccess, Reason: "OK", Start: s.now(), Fields: detail("client_id", q.ClientID, "scope", q.Scope),
		Own: detail("session_id", sess.ID)})
	return nil
}

// MyApp is an application the person gave access to: an account link, a
// remembered consent, and/or OpenID Connect sign-ins in live sessions.
type MyApp struct {
	AppID, Name string
	// Account: the person's linked account ("" none); LinkedAt unknown
	// here (identity keeps it).
	Account string
	// Scope, GrantedAt, ExpiresAt: the remembered consent (Scope "" none).
	Scope     string
	GrantedAt time.Time
	ExpiresAt time.Time
	// SignedInAt: the latest authorization code the client got in one of
	// the person's live sessions (zero: none).
	SignedInAt time.Time
}

// Revocable reports whether the person has access of the application to
// revoke: a remembered consent (OpenID Connect scopes and/or the CAS
// consent, CASConsentScope) or OpenID Connect sign-ins.
func (a *MyApp) Revocable() bool { return a.Scope != "" || !a.SignedInAt.IsZero() }

// MyApplications lists the applications the person of tgt gave access to.
func (s *Service) MyApplications(ctx context.Context, tgt string) ([]MyApp, error) {
	if !validTGT(tgt) {
		return nil, ErrSessionNotFound
	}
	sess, _, err := s.liveSession(ctx, SessionID(tgt))
	if err != nil {
		return nil, err
	}
	return s.myApps(ctx, sess)
}

func (s *Service) myApps(ctx context.Context, sess *Session) ([]MyApp, error) {
	apps := map[string]*MyApp{}
	get := func(id string) *MyApp {
		if a, ok := apps[id]; ok {
			return a
		}
		a := &MyApp{AppID: id}
		apps[id] = a
		return a
	}
	if s.legacy.Apps != nil {
		links, err := s.legacy.Apps.Links(ctx, sess.UserID)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			a := get(l.AppID)
			a.Name, a.Account = l.AppName, l.Account
		}
	}
	revoked := map[string]time.Time{}
	if s.consents != nil {
		cs, err := s.consents.ListConsents(ctx, sess.UserID)
		if err != nil {
			return nil, err
		}
		now := s.now()
		for _, c := range cs {
			revoked[c.ClientID] = c.RevokedAt
			if c.Scope == "" || !now.Before(c.ExpiresAt) {
				continue
			}
			a := get(c.ClientID)
			a.Scope, a.GrantedAt, a.ExpiresAt = c.Scope, c.GrantedAt, c.ExpiresAt
		}
	}
	uses, err := s.oidcUses(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	for id, at := range uses {
		if !at.After(revoked[id]) {
			continue // revoked since
		}
		if a := get(id); at.After(a.SignedInAt) {
			a.SignedInAt = at
		}
	}
	all, err := s.reg.services(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if a, ok := apps[c.AppID]; ok && a.Name == "" {
			a.Name = c.Name
		}
	}
	out := make([]MyApp, 0, len(apps))
	for _, a := range apps {
		if a.Name == "" {
			a.Name = a.AppID
		}
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b MyApp) int { return strings.Compare(a.Name+"\x00"+a.AppID, b.Name+"\x00"+b.AppID) })
	return out, nil
}

// oidcUses are the OpenID Connect clients that got authorization codes in
// the person's live sessions, with the latest time.
func (s *Service) oidcUses(ctx context.Context, userID string) (map[string]time.Time, error) {
	ids, err := s.store.UserSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, id := range ids {
		sess, _, err := s.store.GetSession(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if sess.UserID != userID {
			continue
		}
		for _, u := range sess.Services {
			if u.Issuer != "" && u.AppID != "" && u.At.After(out[u.AppID]) {
				out[u.AppID] = u.At
			}
		}
	}
	return out, nil
}

// RevokeMyApplication ends the access the person of tgt gave to the
// application appID: their account link with it is removed (identity, the
// person the actor: CHANGES link.deleted), its remembered consent is
// forgotten and every token of the client granted to the person before
// now (refresh and access tokens) stops working at once. ErrMyAppNotFound when the person
// has no such access (another person's grants are never reachable: the
// person is the session's).
func (s *Service) RevokeMyApplication(ctx context.Context, tgt, appID string) error {
	if !validTGT(tgt) {
		return ErrSessionNotFound
	}
	sess, _, err := s.liveSession(ctx, SessionID(tgt))
	if err != nil {
		return err
	}
	linked := false
	if s.legacy.Apps != nil {
		links, err := s.legacy.Apps.Links(ctx, sess.UserID)
		if err != nil {
			return err
		}
		linked = slices.ContainsFunc(links, func(l PersonLink) bool { return l.AppID == appID })
	}
	revocable := false
	var revokedAt time.Time
	if s.consents != nil {
		old, err := s.getConsent(ctx, sess.UserID, appID)
		if err != nil {
			return err
		}
		revocable = old != nil && old.Scope != "" && s.now().Before(old.ExpiresAt)
		if old != nil {
			revokedAt = old.RevokedAt
		}
	}
	if !revocable {
		uses, err := s.oidcUses(ctx, sess.UserID)
		if err != nil {
			return err
		}
		at, ok := uses[appID]
		revocable = ok && at.After(revokedAt)
	}
	switch {
	case !linked && !revocable:
		return ErrMyAppNotFound
	case revocable && s.consents == nil:
		return ErrConsentUnavailable
	}
	if revocable {
		// The tokens first: a failure leaves the link for the retry.
		// RevokedAt is rounded up to the store's millisecond: a grant
		// made in the same millisecond, before this, ends too.
		now := s.now().UTC()
		c := &Consent{UserID: sess.UserID, ClientID: appID, RevokedAt: now.Truncate(time.Millisecond).Add(time.Millisecond)}
		if err := s.consents.PutConsent(ctx, c, s.consentEvents(ctx, "revoked", sess, c)...); err != nil {
			return err
		}
	}
	if linked {
		if err := s.legacy.Apps.Unlink(ctx, sess.UserID, appID); err != nil && !errors.Is(err, store.ErrNotFound) && reasonOf(err) != "NOT_FOUND" {
			return err
		}
	}
	return nil
}

// grantRevoked checks that the person did not revoke the client's access
// after token t's grant was made (ErrInvalidToken when they did).
func (s *Service) grantRevoked(ctx context.Context, t *AccessToken) error {
	if s.consents == nil {
		return nil
	}
	c, err := s.consents.GetConsent(ctx, t.UserID, t.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !c.RevokedAt.IsZero() && !t.GrantedAt.After(c.RevokedAt) {
		return ErrInvalidToken
	}
	return nil
}
