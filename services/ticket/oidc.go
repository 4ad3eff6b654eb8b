package ticket

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
)

// OpenID Connect (authorization code flow, as Apereo CAS's /cas/oidc and
// Keycloak serve it). An authorization code is a service ticket issued for
// the redirect URI, a registered service of the client's application, and
// bound to the client, its scope, nonce and PKCE challenge: the session's
// level, the service's access rule, single use and single logout apply as
// to any ticket. The token endpoint authenticates the client with its
// App_ID and secret (and IP allow-list), uses the code up and answers an
// opaque access token (its record kept by a hash, like every ticket) and an
// ID token signed with keys derived from the key ring. An access token
// lives while its session does (logout, a person disabled end it).

// PrefixAT prefixes access tokens, PrefixRT refresh tokens.
const (
	PrefixAT = "AT-"
	PrefixRT = "RT-"
)

// OIDCBinding is what an authorization code is bound to.
type OIDCBinding struct {
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope,omitempty"`
	Nonce     string `json:"nonce,omitempty"`
	Challenge string `json:"challenge,omitempty"` // PKCE S256
	// Issuer is the edge's issuer URL (the logout token's iss).
	Issuer string `json:"issuer,omitempty"`
}

// AccessToken is the record of an OAuth access token.
type AccessToken struct {
	SessionID string `json:"session_id"`
	// SID is the session's OpenID Connect sid (Session.SID).
	SID      string `json:"sid,omitempty"`
	UserID   string `json:"user_id"`
	Login    string `json:"login"`
	OrgID    string `json:"org_id,omitempty"`
	ClientID string `json:"client_id"`
	// Service is the redirect URI the grant's code was issued for: a
	// refresh checks it is still the client's registered service.
	Service   string    `json:"service,omitempty"`
	Scope     string    `json:"scope,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	AuthLevel int       `json:"auth_level"`
	AuthTime  time.Time `json:"auth_time"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Refresh: a refresh token's record (kept like an access token's,
	// under the hash of its own value).
	Refresh bool `json:"refresh,omitempty"`
	// Grant is the key of the code grant the token comes from (its
	// code's, CodeGrant): the token lives only while that record does, so
	// that ending the grant (a replayed code, a revoked refresh token)
	// ends every token of it, those a refresh gave included (RFC 6749
	// §4.1.2, RFC 7009 §2.1). Empty in records made before it was kept.
	Grant string `json:"grant,omitempty"`
	// GrantedAt is when the grant was made (its code issued; review
	// sec30c M1): a person revoking the client's access after it ends the
	// token (consent.go), and the code itself.
	GrantedAt time.Time `json:"granted_at,omitzero"`
}

// sid is the token's session's OpenID Connect sid.
func (t *AccessToken) sid() string {
	if t.SID != "" {
		return t.SID
	}
	return t.SessionID
}

// Profile is what the claims of a person say beyond their id.
type Profile struct {
	Login, Name, OrgID, OrgName, Account string
	Groups                               []string
	// UserType: "person" or "unit" (UserTypeName; "": not known).
	UserType string
}

// ProfileSource answers a person's profile as an application sees it.
type ProfileSource interface {
	Profile(ctx context.Context, userID, appID string) (Profile, error)
}

// OpenID Connect errors (reasons registered in reasons.go); the CAS edge
// answers each with its OAuth error code.
var (
	ErrOIDCUnavailable     = apierr.New(apierr.FailedPrecondition, "OIDC_UNAVAILABLE", "OpenID Connect is not available: the key ring has no keys to sign ID tokens with")
	ErrRedirectNotOfClient = apierr.New(apierr.InvalidArgument, "OAUTH_REDIRECT_NOT_OF_CLIENT",
		"the redirect_uri is not a registered service of the client's application")
	ErrInvalidClient = apierr.New(apierr.Unauthenticated, "OAUTH_INVALID_CLIENT",
		"client authentication failed: present the application's App_ID and secret, from an address on its IP allow-list")
	ErrInvalidGrant = apierr.New(apierr.InvalidArgument, "OAUTH_INVALID_GRANT",
		"the authorization code is invalid, expired, used, or was issued to another client or redirect_uri")
	ErrInvalidToken = apierr.New(apierr.Unauthenticated, "OAUTH_INVALID_TOKEN",
		"the access token is invalid, expired or revoked, or its session has ended")
	ErrInvalidScope = apierr.New(apierr.InvalidArgument, "OAUTH_INVALID_SCOPE",
		"the scope asked for at a refresh is not within the scope first granted")
	ErrInvalidRefresh = ErrInvalidGrant.WithMessage("the refresh token is invalid, revoked or another client's, or its session has ended")
)

// oidcService refuses a service that cannot receive authorization codes of
// client at redirect: another application's, one of the legacy interface,
// or one whose URL is not redirect exactly (ExactRedirect).
func oidcService(rs *RegisteredService, clientID, redirect string) error {
	if rs.AppID != clientID {
		return ErrRedirectNotOfClient
	}
	if rs.LegacyScheme != 0 {
		return ErrRedirectNotOfClient.WithMessage("the redirect_uri is a service of the legacy ssoAuthService interface, which takes no authorization codes")
	}
	if !ExactRedirect(rs.URL, rs.Pattern, redirect) {
		return ErrRedirectNotOfClient.WithMessage("the redirect_uri must be registered exactly, as the URL of a service of the " +
			"client's application (no other path, no query; a service with a pattern takes no authorization codes)")
	}
	return nil
}

// ExactRedirect reports whether redirect is exactly the registered service
// URL url (as normalised: scheme and host in lower case, the default port
// implied), with no query: OAuth redirect URIs are compared exactly
// (RFC 9700 §4.1.3), not as the CAS service prefix they also are. A service
// with a pattern (pattern set) matches no redirect URI.
func ExactRedirect(url, pattern, redirect string) bool {
	if pattern != "" || url == "" || strings.Contains(redirect, "?") {
		return false
	}
	u, ok := checkURL(redirect)
	return ok && u.prefix() == url
}

// AuthorizationRequest asks for an authorization code.
type AuthorizationRequest struct {
	TGT, RedirectURI string
	Binding          OIDCBinding
	FromNewLogin     bool
}

// IssueAuthorizationCode issues an authorization code from the session of
// a.TGT for a.RedirectURI.
func (s *Service) IssueAuthorizationCode(ctx context.Context, a AuthorizationRequest) (string, time.Time, error) {
	if s.idTokens == nil {
		return "", time.Time{}, ErrOIDCUnavailable
	}
	b := a.Binding
	if hasScope(b.Scope, CASConsentScope) {
		// The CAS consent's scope: never an OpenID Connect grant (review
		// sec31c L1; the edge refuses it first).
		return "", time.Time{}, errCASScope
	}
	return s.issueTicket(ctx, a.TGT, a.RedirectURI, a.FromNewLogin, "", &b)
}

// Client is a client's credentials at the token, introspection and
// revocation endpoints, and the address it called from.
type Client struct {
	ID, Secret, IP string
	// Cert is the fingerprint of the client certificate the edge verified
	// ("" none): an application bound to one must call with it.
	Cert string
}

// authenticate checks c's App_ID, secret and address (identity): a refusal
// is ErrInvalidClient (an expired secret says so), anything else a fault.
func (s *Service) authenticate(ctx context.Context, c Client) error {
	if c.ID == "" || c.Secret == "" {
		return ErrInvalidClient
	}
	if s.legacy.Apps == nil {
		return ErrOIDCUnavailable
	}
	err := s.legacy.Apps.VerifyApp(ctx, c.ID, c.Secret, c.IP, c.Cert, caller.APIOIDC)
	if err == nil {
		return nil
	}
	if ae, ok := refused(err); ok {
		if ae.Reason == caller.ReasonSignatureRequired {
			// identity's message asks for signature headers, which this
			// endpoint does not take (integrators.md "OpenID Connect")
			return ErrInvalidClient.WithMessage("this application must sign its requests, which the OpenID Connect token, " +
				"introspection and revocation endpoints cannot take (they authenticate the App_ID and secret): it signs people in through CAS")
		}
		if toldClient[ae.Reason] {
			return ErrInvalidClient.WithMessage(ae.Message)
		}
		return ErrInvalidClient
	}
	return err
}

// toldClient are identity's refusals of a caller that presented the
// application's right secret (or, APP_SECRET_REPLACED, its previous one):
// the REST and gRPC edges tell that caller why, so the token endpoint's
// invalid_client says it too rather than sending the developer to check a
// secret that is right (acceptc: an application not granted "oidc" read
// "present the application's App_ID and secret"). A wrong App_ID or secret
// still learns nothing more.
var toldClient = map[string]bool{
	caller.ReasonAppSecretExpired: true, caller.ReasonAppSecretReplaced: true,
	caller.ErrAppSuspended.Reason: true, caller.ReasonAppTerminated: true,
	caller.ErrClientCert.Reason: true, caller.ErrIPNotAllowed.Reason: true, caller.ReasonAllowListRequired: true,
	caller.ReasonAPINotGranted: true, caller.ReasonAppAccessExpired: true, caller.ReasonAppAccessNotBegun: true,
	caller.ErrRateLimited.Reason: true,
}

// tokenRequest audits the refusals of a token endpoint call (api).
type tokenRequest struct {
	s      *Service
	ctx    context.Context
	api    string
	client string
	start  time.Time
}

// deny records a refusal (of the person userID, when known) and returns
// err.
func (r tokenRequest) deny(err error, why, userID, orgID string) error {
	a := audit.Action{API: r.api, Subject: "client:" + r.client, Result: audit.ResultDenied, Reason: reasonOf(err),
		Start: r.start, Fields: detail("client_id", r.client, "why", why)}
	if userID != "" {
		a.Subject, a.Org = "user:"+userID, orgID
	}
	r.s.auditCall(r.ctx, a)
	return err
}

// authenticate checks the client: a refusal is recorded and answered
// ErrInvalidClient; a fault passes as it is.
func (r tokenRequest) authenticate(c Client) error {
	err := r.s.authenticate(r.ctx, c)
	if err != nil && reasonOf(err) == ErrInvalidClient.Reason {
		return r.deny(err, "client authentication", "", "")
	}
	return err
}

// Exchange is a token request of the authorization_code grant.
type Exchange struct {
	Client
	Code, RedirectURI, CodeVerifier string
	// Issuer is the edge's issuer URL (the ID token's iss).
	Issuer string
}

// Tokens answer a token request.
type Tokens struct {
	AccessToken  string
	ExpiresIn    int64
	IDToken      string
	Scope        string
	RefreshToken string
}

// ExchangeCode redeems an authorization code.
func (s *Service) ExchangeCode(ctx context.Context, x Exchange) (*Tokens, error) {
	start := s.now()
	if s.idTokens == nil {
		return nil, ErrOIDCUnavailable
	}
	tr := tokenRequest{s: s, ctx: ctx, api: "oidc.token", client: x.ID, start: start}
	fail := func(err error, why string, t *Ticket) (*Tokens, error) {
		if t != nil {
			return nil, tr.deny(err, why, t.UserID, t.OrgID)
		}
		return nil, tr.deny(err, why, "", "")
	}
	if err := tr.authenticate(x.Client); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(x.Code, PrefixST) {
		return fail(ErrInvalidGrant, "unknown code", nil)
	}
	sig, err := parseSigned(s.mac, PrefixST, x.Code)
	if err != nil {
		return fail(ErrInvalidGrant, "forged or malformed code", nil)
	}
	if !s.now().Before(sig.Expires) {
		return fail(ErrInvalidGrant, s.replayed(ctx, x.Code, x.ID, "expired code"), nil)
	}
	// The registry is read before the code is used up (a fault of it
	// leaves the code usable).
	rs, err := s.reg.Match(ctx, x.RedirectURI)
	if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
		return nil, err
	}
	// A client whose service releases roles and permissions: authz is
	// asked before the code is used up (its record read, not taken), so
	// that authz not answering leaves the code usable for a retry.
	var pre *Authorization
	if rs != nil && rs.ReleasesAuthorization() {
		var pt *Ticket
		pre, pt, err = s.releaseBefore(ctx, sig.Replica, keyOf(x.Code), rs, func(pt *Ticket) bool {
			return pt.OIDC != nil && pt.OIDC.ClientID == x.ID && pt.Service == x.RedirectURI && hasScope(pt.OIDC.Scope, "openid")
		})
		if err != nil {
			return nil, s.releaseFault(ctx, "oidc.token", start, pt.UserID, pt.OrgID, x.ID, false, err)
		}
	}
	t, err := s.store.ConsumeTicket(ctx, sig.Replica, keyOf(x.Code))
	if errors.Is(err, ErrNotFound) {
		return fail(ErrInvalidGrant, s.replayed(ctx, x.Code, x.ID, "unknown or used code"), nil)
	}
	if err != nil {
		return nil, err
	}
	// The code is used up from here on, whatever follows.
	switch {
	case t.OIDC == nil:
		return fail(ErrInvalidGrant, "a service ticket, not an authorization code", t)
	case t.OIDC.ClientID != x.ID:
		return fail(ErrInvalidGrant, "code of another client", t)
	case t.Service != x.RedirectURI:
		return fail(ErrInvalidGrant, "another redirect_uri", t)
	case rs == nil:
		return fail(ErrInvalidGrant.WithMessage("the redirect_uri is no longer registered, or its application is suspended"), "service gone", t)
	}
	if t.OIDC.Challenge != "" || x.CodeVerifier != "" {
		if t.OIDC.Challenge == "" || !pkceOK(x.CodeVerifier, t.OIDC.Challenge) {
			return fail(ErrInvalidGrant.WithMessage("the code_verifier does not match the code_challenge (PKCE, S256)"), "pkce", t)
		}
	}
	sess, _, err := s.liveSession(ctx, t.SessionID)
	if errors.Is(err, ErrSessionNotFound) {
		return fail(ErrInvalidGrant.WithMessage("the session the code came from has ended"), "session ended", t)
	}
	if err != nil {
		return nil, err
	}
	// What the code gives is recorded before any token is made (its
	// tokens live only while the record does), and its own client's
	// replay of the code that raced this exchange is looked for after
	// (each side writes, then reads the other's: one of them sees it).
	// It lives as long as a token of it can: the refresh token until the
	// session's hard expiry, and an access token a refresh gave just
	// before that for access_token_ttl more (the session raised, whose
	// later hard expiry it may follow; review sec20 L4).
	// The grant is made when the code was issued (review sec30c M1): a
	// code issued before the person removed the application's access
	// gives nothing after it.
	grantedAt := t.IssuedAt.UTC()
	if err := s.grantRevoked(ctx, &AccessToken{UserID: t.UserID, ClientID: x.ID, GrantedAt: grantedAt}); err != nil {
		if errors.Is(err, ErrInvalidToken) {
			return fail(ErrInvalidGrant.WithMessage("the person removed the application's access after the code was issued"), "access removed", t)
		}
		return nil, err
	}
	grant := keyOf(x.Code)
	if err := s.store.PutCodeGrant(ctx, grant, &CodeGrant{ClientID: x.ID, UserID: t.UserID, OrgID: t.OrgID},
		max(sess.HardExpiry.Sub(s.now())+s.cfg.AccessTTL, time.Second)); err != nil {
		if errors.Is(err, ErrConflict) {
			return fail(ErrInvalidGrant, "code replayed while it was redeemed", t)
		}
		return nil, err
	}
	if _, err := s.store.GetCodeGrant(ctx, replayKey(x.Code, x.ID)); !errors.Is(err, ErrNotFound) {
		s.endGrant(ctx, grant)
		if err == nil {
			s.auditReplay(ctx, t.UserID, t.OrgID, x.ID)
			return fail(ErrInvalidGrant, "code replayed while it was redeemed; replayed: its tokens ended", t)
		}
		return nil, err
	}
	// The issuer the browser was sent back from (bound to the code) is
	// the ID token's, whatever name the client's back channel used.
	iss := t.OIDC.Issuer
	if iss == "" {
		iss = x.Issuer
	}
	base := AccessToken{SessionID: t.SessionID, SID: sess.OIDCSid(), UserID: t.UserID, Login: t.Login, OrgID: t.OrgID, ClientID: x.ID, Service: t.Service,
		Scope: t.OIDC.Scope, Issuer: iss, AuthLevel: t.AuthLevel, AuthTime: t.AuthTime.UTC(), Grant: grant, GrantedAt: grantedAt}
	out, err := s.mint(ctx, base, sess, t.OIDC.Nonce, true, pre)
	if err != nil {
		return nil, err
	}
	s.auditCall(ctx, audit.Action{API: "oidc.token", Subject: "user:" + t.UserID, Org: t.OrgID, Result: audit.ResultSuccess,
		Reason: "OK", Start: start, Fields: detail("client_id", x.ID, "scope", t.OIDC.Scope), Own: detail("session_id", t.SessionID)})
	return out, nil
}

// mint makes the tokens of a grant: an access token, with scope openid an
// ID token (nonce: the authorization request's), and for a code's grant
// (codeGrant) a refresh token, which lives as long as the session can. An unanswered
// profile fails a refresh (nothing is spent: the client retries); at a
// code's exchange, whose code is spent, it leaves the profile's claims out
// of the ID token (userinfo answers them later), never guessed.
//
// A client whose service releases roles and permissions gets them in the
// ID token as authz answers them (pre: asked already for the code's
// person); when authz does not answer, no token is made (ADR 0019).
func (s *Service) mint(ctx context.Context, base AccessToken, sess *Session, nonce string, codeGrant bool, pre *Authorization) (*Tokens, error) {
	now := s.now()
	exp := now.Add(s.cfg.AccessTTL)
	if sess.HardExpiry.Before(exp) {
		exp = sess.HardExpiry
	}
	rec := base
	rec.IssuedAt, rec.ExpiresAt, rec.Refresh = now.UTC(), exp.UTC(), false
	out := &Tokens{ExpiresIn: int64(exp.Sub(now).Round(time.Second) / time.Second), Scope: base.Scope}
	if hasScope(base.Scope, "openid") {
		rel, rerr := s.releaseOf(ctx, &rec, pre)
		if rerr != nil {
			api := "oidc.refresh"
			if codeGrant {
				api = "oidc.token" // the code is spent: it was read before only where its instance could say
			}
			return nil, s.releaseFault(ctx, api, now, rec.UserID, rec.OrgID, rec.ClientID, codeGrant, rerr)
		}
		claims, perr := s.claims(ctx, &rec, rel)
		if perr != nil {
			if !codeGrant {
				return nil, perr
			}
			s.log.Warn("OpenID Connect: the person's profile was not read; the ID token carries sub, login and org id only", zapErr(perr))
		}
		claims["iss"], claims["aud"], claims["azp"] = base.Issuer, base.ClientID, base.ClientID
		claims["iat"], claims["exp"] = now.Unix(), exp.Unix()
		claims["auth_time"], claims["sid"], claims["acr"] = base.AuthTime.Unix(), base.sid(), strconv.Itoa(base.AuthLevel)
		if nonce != "" {
			claims["nonce"] = nonce
		}
		var err error
		if out.IDToken, err = s.idTokens.Sign(claims); err != nil {
			return nil, err
		}
	}
	tok := newOpaque(PrefixAT, s.cfg.Centre)
	if err := s.store.PutAccessToken(ctx, keyOf(tok), &rec, max(exp.Sub(now), time.Second)); err != nil {
		return nil, err
	}
	out.AccessToken = tok
	if codeGrant {
		rr := base
		rr.IssuedAt, rr.ExpiresAt, rr.Refresh = now.UTC(), sess.HardExpiry.UTC(), true
		rt := newOpaque(PrefixRT, s.cfg.Centre)
		if err := s.store.PutAccessToken(ctx, keyOf(rt), &rr, max(sess.HardExpiry.Sub(now), time.Second)); err != nil {
			return nil, err
		}
		out.RefreshToken = rt
	}
	return out, nil
}

// RefreshRequest is a token request of the refresh_token grant.
type RefreshRequest struct {
	Client
	RefreshToken string
	// Scope: empty, or within the scope first granted (narrower tokens).
	Scope  string
	Issuer string
}

// Refresh answers new tokens for a refresh token (the refresh_token
// grant) while its session lives and the client's service would still
// issue it a code (registered, the session's level enough, its access rule
// letting the person in). It does not move the session's idle deadline:
// the person's own use of their applications does. The refresh token is
// kept (not rotated): it ends with the session, or when the client
// revokes it.
func (s *Service) Refresh(ctx context.Context, x RefreshRequest) (*Tokens, error) {
	start := s.now()
	if s.idTokens == nil {
		return nil, ErrOIDCUnavailable
	}
	tr := tokenRequest{s: s, ctx: ctx, api: "oidc.refresh", client: x.ID, start: start}
	fail := func(err error, why string, t *AccessToken) (*Tokens, error) {
		if t != nil {
			return nil, tr.deny(err, why, t.UserID, t.OrgID)
		}
		return nil, tr.deny(err, why, "", "")
	}
	if err := tr.authenticate(x.Client); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(x.RefreshToken, PrefixRT) || len(x.RefreshToken) > MaxTicketLen {
		return fail(ErrInvalidRefresh, "unknown refresh token", nil)
	}
	t, err := s.store.GetAccessToken(ctx, keyOf(x.RefreshToken))
	if errors.Is(err, ErrNotFound) {
		return fail(ErrInvalidRefresh, "unknown refresh token", nil)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case !t.Refresh:
		return fail(ErrInvalidRefresh, "not a refresh token", t)
	case t.ClientID != x.ID:
		return fail(ErrInvalidRefresh, "refresh token of another client", t)
	case !s.now().Before(t.ExpiresAt):
		return fail(ErrInvalidRefresh, "expired refresh token", t)
	}
	if err := s.grantLives(ctx, t); err != nil {
		if errors.Is(err, ErrInvalidToken) {
			return fail(ErrInvalidRefresh, "its grant ended (the code replayed, or the refresh token revoked)", t)
		}
		return nil, err
	}
	scope := t.Scope
	if x.Scope != "" {
		for _, sc := range strings.Fields(x.Scope) {
			if !hasScope(t.Scope, sc) {
				return fail(ErrInvalidScope, "scope beyond the grant", t)
			}
		}
		scope = strings.Join(strings.Fields(x.Scope), " ")
	}
	sess, _, err := s.followSession(ctx, t.SessionID)
	if errors.Is(err, ErrSessionNotFound) {
		return fail(ErrInvalidRefresh, "session ended", t)
	}
	if err != nil {
		return nil, err
	}
	rs, err := s.reg.Match(ctx, t.Service)
	if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
		return nil, err
	}
	switch {
	case rs == nil || oidcService(rs, x.ID, t.Service) != nil:
		return fail(ErrInvalidRefresh.WithMessage("the client's redirect URI is no longer registered, or its application is suspended"), "service gone", t)
	case rs.AppLevelUnknown:
		return nil, ErrAppLevelUnknown // kept: try again once the level is read
	case !rs.StrongEnough(sess.AuthLevel, sess.AuthMethod):
		return fail(ErrInvalidRefresh.WithMessage("the application now needs a stronger login than the session's"), "level", t)
	case rs.HasAccessRule():
		denied, err := s.checkAccess(ctx, t.UserID, rs)
		if denied != nil {
			s.auditAccessDenied(ctx, "oidc.refresh", start, t.UserID, t.OrgID, t.Service, rs, denied)
			return fail(ErrInvalidRefresh.WithMessage("the application's access rule no longer lets the person in"), "access rule", t)
		}
		if err != nil {
			return nil, err
		}
	}
	base := *t
	base.Scope = scope
	if base.Issuer == "" {
		base.Issuer = x.Issuer
	}
	out, err := s.mint(ctx, base, sess, "", false, nil)
	if err != nil {
		return nil, err
	}
	s.auditCall(ctx, audit.Action{API: "oidc.refresh", Subject: "user:" + t.UserID, Org: t.OrgID, Result: audit.ResultSuccess,
		Reason: "OK", Start: start, Fields: detail("client_id", x.ID, "scope", scope), Own: detail("session_id", t.SessionID)})
	return out, nil
}

// CodeGrant is the record of what a redeemed authorization code gave,
// kept while its tokens may live (they carry its key, AccessToken.Grant):
// ended, it ends them. Records made before that kept the keys of the
// exchange's tokens instead (Access, Refresh).
type CodeGrant struct {
	Access   string `json:"access,omitempty"`
	Refresh  string `json:"refresh,omitempty"`
	ClientID string `json:"client_id"`
	UserID   string `json:"user_id,omitempty"`
	OrgID    string `json:"org_id,omitempty"`
}

// replayKey is the key of the record that client presented code again
// while it was perhaps being redeemed (a replay racing the exchange finds
// no grant yet; the exchange, having written its grant, looks for it).
func replayKey(code, client string) string { return keyOf("replayed\x00" + client + "\x00" + code) }

// replayMarkTTL is how long the mark of a replay that found no grant is
// kept: longer than any exchange in progress can take.
const replayMarkTTL = 2 * time.Minute

// replayed ends the tokens a genuine code gave when its own client
// presents it again (a stolen code raced its client, or the client
// replays; another client cannot end them): why, and what was done, for
// the refusal's record. The person's tokens ended are recorded too
// (oidc.code.replayed). A replay that finds no grant may be racing the
// exchange: it leaves its mark (replayKey) and looks again.
func (s *Service) replayed(ctx context.Context, code, clientID, why string) string {
	grant := keyOf(code)
	g, err := s.store.GetCodeGrant(ctx, grant)
	if errors.Is(err, ErrNotFound) {
		if err := s.store.PutCodeGrant(ctx, replayKey(code, clientID), &CodeGrant{ClientID: clientID}, replayMarkTTL); err != nil && !errors.Is(err, ErrConflict) {
			return why
		}
		g, err = s.store.GetCodeGrant(ctx, grant)
	}
	if err != nil || g.ClientID != clientID {
		return why
	}
	defer s.auditReplay(ctx, g.UserID, g.OrgID, clientID)
	errs := []error{s.store.DeleteCodeGrant(ctx, grant)}
	for _, k := range []string{g.Access, g.Refresh} {
		if k != "" {
			errs = append(errs, s.store.DeleteAccessToken(ctx, k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("OpenID Connect: a replayed code's tokens were not all ended", zapErr(err))
		return why + "; replayed: its tokens not all ended"
	}
	return why + "; replayed: its tokens ended"
}

// auditReplay records, for the person, that their tokens of a code
// replayed by its client ended.
func (s *Service) auditReplay(ctx context.Context, userID, orgID, clientID string) {
	s.audit(ctx, audit.Action{API: "oidc.code.replayed", Subject: "user:" + userID, Org: orgID,
		Result: audit.ResultSuccess, Reason: "CODE_REPLAYED", Start: s.now(), Fields: detail("client_id", clientID)})
}

// endGrant ends a code grant and so every token of it.
func (s *Service) endGrant(ctx context.Context, grant string) {
	if err := s.store.DeleteCodeGrant(ctx, grant); err != nil {
		s.log.Warn("OpenID Connect: a code grant was not ended; its tokens live until they expire", zapErr(err))
	}
}

// grantLives checks that the grant of token t has not ended
// (ErrInvalidToken when it has).
func (s *Service) grantLives(ctx context.Context, t *AccessToken) error {
	if err := s.grantRevoked(ctx, t); err != nil {
		return err
	}
	if t.Grant == "" {
		return nil
	}
	_, err := s.store.GetCodeGrant(ctx, t.Grant)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken
	}
	return err
}

// pkceOK checks an S256 code_verifier against its challenge (RFC 7636).
func pkceOK(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

func hasScope(scope, s string) bool { return slices.Contains(strings.Fields(scope), s) }

// claims are a token's person's claims: sub always; with scope profile
// their login, name and org; with scope groups their groups; roles and
// permissions as rel releases them (whatever the scope: the service's
// registration decides, as for CAS). When identity
// does not answer the profile, the error is returned with the claims the
// session itself knows (sub, login, org id): never a claim that was not
// read, such as an empty list of groups.
//
// The client's service's attribute release policy (attrrelease.go)
// filters and masks them; a registry that cannot be read leaves out every
// claim a policy could govern (never released unchecked).
func (s *Service) claims(ctx context.Context, t *AccessToken, rel *Authorization) (map[string]any, error) {
	c, err := s.rawClaims(ctx, t, rel)
	s.applyPolicy(ctx, t, c)
	return c, err
}

// applyPolicy filters and masks claims c of token t by its service's
// attribute release policy (the ID token, userinfo and introspection):
// a registry that cannot be read leaves out every claim a policy could
// govern.
func (s *Service) applyPolicy(ctx context.Context, t *AccessToken, c map[string]any) {
	rs, merr := s.reg.Match(ctx, t.Service)
	switch {
	case merr == nil:
		rs.Policy().ApplyClaims(c)
	case errors.Is(merr, ErrServiceNotRegistered):
		// No longer registered: its tokens are refused (liveToken).
	default:
		(&AttributePolicy{Release: []string{"userId"}}).ApplyClaims(c)
	}
}

// rawClaims are claims before the service's attribute release policy.
func (s *Service) rawClaims(ctx context.Context, t *AccessToken, rel *Authorization) (map[string]any, error) {
	c := map[string]any{"sub": t.UserID}
	if rel != nil && rel.RolesReleased {
		c["roles"] = append([]string{}, rel.Roles...)
	}
	if rel != nil && rel.PermissionsReleased {
		c["permissions"] = append([]string{}, rel.Permissions...)
	}
	profile, groups := hasScope(t.Scope, "profile"), hasScope(t.Scope, "groups")
	if !profile && !groups {
		return c, nil
	}
	p := Profile{Login: t.Login, OrgID: t.OrgID}
	if s.profiles != nil {
		got, err := s.profiles.Profile(ctx, t.UserID, t.ClientID)
		if err != nil {
			if profile {
				c["preferred_username"] = t.Login
				if t.OrgID != "" {
					c["org_id"] = t.OrgID
				}
			}
			return c, err
		}
		p = got
	}
	if profile {
		c["preferred_username"] = p.Login
		if p.Name != "" {
			c["name"] = p.Name
		}
		if p.OrgID != "" {
			c["org_id"] = p.OrgID
		}
		if p.OrgName != "" {
			c["org_name"] = p.OrgName
		}
		if p.Account != "" {
			c["app_account"] = p.Account
		}
		if p.UserType != "" {
			c["user_type"] = p.UserType
		}
	}
	if groups {
		c["groups"] = append([]string{}, p.Groups...)
	}
	return c, nil
}

// liveToken returns the record of an access token (with refresh, or a
// refresh token) whose grant and session live and whose client is still
// a registered, active OpenID Connect client: suspending or deleting the
// application ends its tokens at once (JR/T 0185-2020 9.2.1: the bank
// actively ends an application's tokens; gap2 G11).
func (s *Service) liveToken(ctx context.Context, token string, refresh bool) (*AccessToken, error) {
	if !(strings.HasPrefix(token, PrefixAT) || (refresh && strings.HasPrefix(token, PrefixRT))) || len(token) > MaxTicketLen {
		return nil, ErrInvalidToken
	}
	t, err := s.store.GetAccessToken(ctx, keyOf(token))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if !s.now().Before(t.ExpiresAt) || (t.Refresh && !refresh) {
		return nil, ErrInvalidToken
	}
	if err := s.grantLives(ctx, t); err != nil {
		return nil, err
	}
	if _, _, err := s.followSession(ctx, t.SessionID); err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			return nil, ErrInvalidToken
		}
		return nil, err
	}
	rs, err := s.reg.Match(ctx, t.Service)
	if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
		return nil, err
	}
	if rs == nil || oidcService(rs, t.ClientID, t.Service) != nil {
		return nil, ErrInvalidToken
	}
	return t, nil
}

// UserInfo answers the claims of the person of an access token (JSON).
// The call's record names the client application and the person (the
// edge knows neither: a bearer token is all it sees).
func (s *Service) UserInfo(ctx context.Context, token string) ([]byte, error) {
	start := s.now()
	t, err := s.liveToken(ctx, token, false)
	if err != nil {
		return nil, err
	}
	rel, err := s.releaseOf(ctx, t, nil)
	if err != nil {
		return nil, s.releaseFault(ctx, "oidc.userinfo", start, t.UserID, t.OrgID, t.ClientID, false, err)
	}
	c, err := s.claims(ctx, t, rel)
	if err != nil {
		return nil, err
	}
	s.auditCall(ctx, audit.Action{API: "oidc.userinfo", Subject: "user:" + t.UserID, Org: t.OrgID, Result: audit.ResultSuccess,
		Reason: "OK", Start: start, AppID: t.ClientID, Fields: detail("client_id", t.ClientID, "scope", t.Scope),
		Own: detail("session_id", t.SessionID)})
	return json.Marshal(c)
}

// Introspect answers RFC 7662's JSON for token to client c: inactive for
// a token of another client; username only as the service's attribute
// release policy releases login.
func (s *Service) Introspect(ctx context.Context, c Client, token string) ([]byte, error) {
	if err := s.authenticate(ctx, c); err != nil {
		return nil, err
	}
	t, err := s.liveToken(ctx, token, true)
	if errors.Is(err, ErrInvalidToken) || (err == nil && t.ClientID != c.ID) {
		return []byte(`{"active":false}`), nil
	}
	if err != nil {
		return nil, err
	}
	typ := "Bearer"
	if t.Refresh {
		typ = "Refresh"
	}
	out := map[string]any{"active": true, "client_id": t.ClientID, "sub": t.UserID,
		"token_type": typ, "exp": t.ExpiresAt.Unix(), "iat": t.IssuedAt.Unix(), "aud": t.ClientID, "sid": t.sid()}
	// username (RFC 7662: optional) is the login: answered only as the
	// service's policy releases login (preferred_username), as in the ID
	// token and userinfo (review sec30b I1). The rest is the protocol's.
	pc := map[string]any{"preferred_username": t.Login}
	s.applyPolicy(ctx, t, pc)
	if v, ok := pc["preferred_username"]; ok {
		out["username"] = v
	}
	if t.Scope != "" {
		out["scope"] = t.Scope
	}
	if t.Issuer != "" {
		out["iss"] = t.Issuer
	}
	return json.Marshal(out)
}

// Revoke ends an access or refresh token of client c (RFC 7009; a
// refresh token's grant ends with it, and so every access token of that
// grant): a token unknown, ended or of another client is left alone,
// without an error.
func (s *Service) Revoke(ctx context.Context, c Client, token string) error {
	start := s.now()
	if err := s.authenticate(ctx, c); err != nil {
		return err
	}
	if !(strings.HasPrefix(token, PrefixAT) || strings.HasPrefix(token, PrefixRT)) || len(token) > MaxTicketLen {
		return nil
	}
	t, err := s.store.GetAccessToken(ctx, keyOf(token))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t.ClientID != c.ID {
		return nil
	}
	if t.Refresh && t.Grant != "" {
		// the access tokens of the same grant end too (RFC 7009 §2.1):
		// the grant first, so that a failure leaves the refresh token
		// for the client's retry (review sec20 L3)
		if err := s.store.DeleteCodeGrant(ctx, t.Grant); err != nil {
			return err
		}
	}
	if err := s.store.DeleteAccessToken(ctx, keyOf(token)); err != nil {
		return err
	}
	s.audit(ctx, audit.Action{API: "oidc.revoke", Subject: "user:" + t.UserID, Org: t.OrgID, Result: audit.ResultSuccess,
		Reason: "OK", Start: start, Fields: detail("client_id", c.ID), Own: detail("session_id", t.SessionID)})
	return nil
}

// EndSessionOfIDToken is RP-initiated logout without the browser's
// session cookie: it ends the session an ID token signed here names (its
// sid; expired tokens too, as OpenID Connect RP-Initiated Logout 1.0 §2
// allows), when the token was issued to clientID (if given). It reports
// whether a live session ended; a token not signed here, of another
// client or naming no session is ErrInvalidToken.
func (s *Service) EndSessionOfIDToken(ctx context.Context, hint, clientID string) (bool, error) {
	if s.idTokens == nil {
		return false, ErrOIDCUnavailable
	}
	claims, err := s.idTokens.Verify(hint, "JWT")
	if err != nil {
		return false, ErrInvalidToken.WithMessage("the id_token_hint is not an ID token of this deployment: " + err.Error())
	}
	sid, _ := claims["sid"].(string)
	sub, _ := claims["sub"].(string)
	aud, _ := claims["aud"].(string)
	if sid == "" || sub == "" || aud == "" || (clientID != "" && !audienceHas(claims["aud"], clientID)) {
		return false, ErrInvalidToken.WithMessage("the id_token_hint names no session, or was issued to another client")
	}
	sess, _, err := s.followSession(ctx, sid)
	if errors.Is(err, ErrSessionNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return s.endSession(ctx, sess.ID, sub, "LOGOUT")
}

// audienceHas reports whether a JWT's aud (a string or an array) names id.
func audienceHas(aud any, id string) bool {
	switch a := aud.(type) {
	case string:
		return a == id
	case []any:
		for _, x := range a {
			if x == id {
				return true
			}
		}
	}
	return false
}

// LogoutToken is the OpenID Connect back-channel logout token of a session
// that ended, for the client of use (an authorization code's: use.Issuer
// set).
func (s *Service) LogoutToken(sess *Session, use ServiceUse) (string, error) {
	if s.idTokens == nil {
		return "", ErrOIDCUnavailable
	}
	now := s.now()
	return s.idTokens.SignTyped("logout+jwt", map[string]any{"iss": use.Issuer, "aud": use.AppID, "iat": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(), "jti": newOpaque("LT-", s.cfg.Centre), "sub": sess.UserID, "sid": sess.OIDCSid(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
}

// JWKS answers the ID token keys' JSON Web Key Set.
func (s *Service) JWKS() ([]byte, error) {
	if s.idTokens == nil {
		return nil, ErrOIDCUnavailable
	}
	return s.idTokens.JWKS()
}
