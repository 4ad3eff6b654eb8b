// Package ticket holds the ticket component's domain: single sign-on
// sessions (TGT), single-use service tickets (ST), proxy-granting tickets
// (PGT) and proxy tickets (PT), as CAS 3.0 defines them. It has no gRPC
// imports; the server package adapts it to the wire, and the kvstore
// package keeps its records in NATS JetStream key-value buckets.
package ticket

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"
)

// Session is an SSO session (the record behind a TGT). The TGT itself is
// never stored: the session is found by a hash of it (ID).
type Session struct {
	ID string `json:"id"`
	// SID is the session's OpenID Connect sid: its id when it began, kept
	// by the sessions that replace it (a step-up, a re-login), so the ID
	// tokens and the final logout token name the same sid ("": ID).
	SID       string `json:"sid,omitempty"`
	UserID    string `json:"user_id"`
	Login     string `json:"login"`
	OrgID     string `json:"org_id,omitempty"`
	AuthLevel int    `json:"auth_level"`
	// AuthMethod is how the person signed in (ticketv1.AuthMethod; 0: not
	// recorded).
	AuthMethod int `json:"auth_method,omitempty"`
	// PasswordAt is when the person's password was last set as identity
	// answered the login (zero: not known, a session of an earlier
	// version): a password change after it ends the session
	// (EndUserSessionsBefore).
	PasswordAt time.Time `json:"password_at,omitzero"`
	// StateAt is when the person's account last changed state (disabled,
	// enabled, locked, unlocked) as identity answered the login (zero: not
	// known, a session of an earlier version): a lock or disable after it
	// ends the session, one before it does not (EndUserSessionsBefore,
	// ADR 0047).
	StateAt time.Time `json:"state_at,omitzero"`
	Centre  string    `json:"centre"`
	// Peer is the centre whose assertion opened the session (sign-in
	// across centres, peer.go); "" for a login here.
	Peer string `json:"peer,omitempty"`
	// PeerSID is the peer's session (its OIDCSid) the assertion came from:
	// a logout here tells the peer to end it (and its end ends this one).
	PeerSID string `json:"peer_sid,omitempty"`
	// Vouched are the peers this session gave an assertion to: its end
	// tells each of them to end the sessions they opened from it.
	Vouched []string `json:"vouched,omitempty"`
	// AuthAt is when the person authenticated, when before CreatedAt (a
	// session opened on a peer's word: the sign-in there); zero: CreatedAt.
	AuthAt     time.Time `json:"auth_at,omitzero"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	// HardExpiry is when the session ends however much it is used.
	HardExpiry time.Time `json:"hard_expiry"`
	ClientIP   string    `json:"client_ip,omitempty"`
	// Services are those that received a ticket in this session, each
	// once with its latest ticket recorded here, told of its end (single
	// logout). A service's later tickets that did not write the session
	// are noted by their issuing instance (Store.NoteUse) and merged in
	// when the session ends.
	Services []ServiceUse `json:"services,omitempty"`
	// Issuers are the instances (Store.Replica) that issued service
	// tickets of this session that validation does not read the session
	// for (Ticket.Guarded): ending the session tells each of them before
	// it answers (Store.EndTickets), so none of those tickets outlives it.
	Issuers []string `json:"issuers,omitempty"`
	// NewLogin is a fresh login's claim on a service ticket it could not
	// get yet: the service's client asks consent, shown first (CAS renew
	// through the consent page; NewLoginMark).
	NewLogin NewLoginMark `json:"new_login,omitzero"`
}

// NewLoginWindow is how long a fresh login's ticket waits for the person's
// consent (NewLoginMark): a consent page answered later gives a ticket not
// from a new login (a service asking renew signs the person in again).
const NewLoginWindow = 10 * time.Minute

// NewLoginMark records that a login with credentials presented for a CAS
// service ticket (from_new_login, CAS renew) was refused CONSENT_REQUIRED:
// the next ticket of this session for Service, until Until, is issued from
// that new login (once: issuing it clears the mark). The mark is the
// ticket component's own record, so nothing the browser sends (a form
// field) can make a ticket look like one from a new login.
type NewLoginMark struct {
	Service string    `json:"service,omitempty"`
	Until   time.Time `json:"until,omitzero"`
	// Nonce is the hex SHA-256 of the consent page's nonce (the edge's
	// consent_nonce): only the Allow of that page takes the mark.
	Nonce string `json:"nonce,omitempty"`
}

// For reports whether the mark holds for service at now.
func (m NewLoginMark) For(service string, now time.Time) bool {
	return m.Service != "" && m.Service == service && now.Before(m.Until)
}

// Holds reports whether the mark holds for service at now and was left
// for the consent page whose nonce is nonce.
func (m NewLoginMark) Holds(service, nonce string, now time.Time) bool {
	if nonce == "" || m.Nonce == "" || !m.For(service, now) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(m.Nonce), []byte(nonceHash(nonce))) == 1
}

// nonceHash is what a NewLoginMark keeps of a consent page's nonce.
func nonceHash(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return hex.EncodeToString(sum[:])
}

// MaxIssuersPerSession bounds a session's Issuers (instance names are new
// at every start): beyond it, tickets are issued unguarded and their
// validation reads the session.
const MaxIssuersPerSession = 32

// ServiceUse is a service that received a ticket in a session: the CAS
// logoutRequest names the ticket (SessionIndex).
type ServiceUse struct {
	Service string    `json:"service"`
	AppID   string    `json:"app_id,omitempty"`
	Ticket  string    `json:"ticket"`
	At      time.Time `json:"at"`
	// Issuer: the ticket was an OpenID Connect authorization code of this
	// issuer; the service's logout_url gets a back-channel logout token.
	Issuer string `json:"issuer,omitempty"`
}

// MaxServicesPerSession bounds the single-logout list of a session (the
// oldest entries give way).
const MaxServicesPerSession = 64

// MaxTicketsPerService bounds the tickets of one service a session's
// single-logout list keeps (the latest).
const MaxTicketsPerService = 4

// OIDCSid is the sid of s in ID and logout tokens.
func (s *Session) OIDCSid() string {
	if s.SID != "" {
		return s.SID
	}
	return s.ID
}

// AuthTime is when the person authenticated (AuthAt, else CreatedAt).
func (s *Session) AuthTime() time.Time {
	if !s.AuthAt.IsZero() {
		return s.AuthAt
	}
	return s.CreatedAt
}

// Expiry is when s ends unless used again.
func (s *Session) Expiry(idle time.Duration) time.Time {
	e := s.LastUsedAt.Add(idle)
	if e.After(s.HardExpiry) {
		e = s.HardExpiry
	}
	return e
}

// Kind of a consumable ticket.
type Kind string

// Kinds.
const (
	KindST Kind = "ST"
	KindPT Kind = "PT"
)

// Ticket is the record of an ST or PT, consumed by its validation.
type Ticket struct {
	Kind         Kind      `json:"kind"`
	Serial       string    `json:"serial"`
	Service      string    `json:"service"`
	AppID        string    `json:"app_id,omitempty"`
	SessionID    string    `json:"session_id"`
	UserID       string    `json:"user_id"`
	Login        string    `json:"login"`
	OrgID        string    `json:"org_id,omitempty"`
	AuthLevel    int       `json:"auth_level"`
	AuthMethod   int       `json:"auth_method,omitempty"`
	FromNewLogin bool      `json:"from_new_login,omitempty"`
	AuthTime     time.Time `json:"auth_time"`
	IssuedAt     time.Time `json:"issued_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	// Proxies lists the proxy services of a PT, nearest first.
	Proxies []string `json:"proxies,omitempty"`
	// Guarded: the issuing instance is in its session's Issuers, so the
	// session's end removes the ticket and validation need not read the
	// session. Unguarded tickets (proxy tickets, tickets of an earlier
	// version) are checked against the session at validation.
	Guarded bool `json:"guarded,omitempty"`
	// OIDC: the ticket is an OpenID Connect authorization code, redeemed
	// only at the token endpoint by this client.
	OIDC *OIDCBinding `json:"oidc,omitempty"`
}

// PGT is the record of a proxy-granting ticket.
type PGT struct {
	SessionID  string    `json:"session_id"`
	UserID     string    `json:"user_id"`
	Login      string    `json:"login"`
	OrgID      string    `json:"org_id,omitempty"`
	AuthLevel  int       `json:"auth_level"`
	AuthMethod int       `json:"auth_method,omitempty"`
	AuthTime   time.Time `json:"auth_time"`
	// Proxies: the service that got the PGT (its pgtUrl) first, then the
	// services before it.
	Proxies   []string  `json:"proxies"`
	CreatedAt time.Time `json:"created_at"`
	// Service is the service URL whose validation got it: while that
	// service may proxy (registered, enabled, allow_proxy, its application
	// not suspended) the PGT issues proxy tickets ("" in PGTs of older
	// versions: not checked).
	Service string `json:"service,omitempty"`
}

// CasCode is the CAS 3.0 error code of a refused validation.
type CasCode string

// CAS error codes.
const (
	CodeInvalidRequest          CasCode = "INVALID_REQUEST"
	CodeInvalidTicketSpec       CasCode = "INVALID_TICKET_SPEC"
	CodeUnauthorizedServiceProx CasCode = "UNAUTHORIZED_SERVICE_PROXY"
	CodeInvalidProxyCallback    CasCode = "INVALID_PROXY_CALLBACK"
	CodeInvalidTicket           CasCode = "INVALID_TICKET"
	CodeInvalidService          CasCode = "INVALID_SERVICE"
	CodeUnauthorizedService     CasCode = "UNAUTHORIZED_SERVICE"
	CodeInternalError           CasCode = "INTERNAL_ERROR"
)
