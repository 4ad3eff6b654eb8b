package ticket

import (
	"context"
	"errors"
	"time"
)

// Store errors (the kvstore maps its own to these).
var (
	// ErrNotFound: no live record (never made, consumed, ended or expired).
	ErrNotFound = errors.New("ticket: not found")
	// ErrConflict: the record changed since it was read (another
	// validation consumed it, another call updated the session).
	ErrConflict = errors.New("ticket: changed concurrently")
)

// Notes are what Store.Noted returns: the latest password time and the
// latest time the account was locked or disabled that the person's change
// events named.
type Notes struct {
	Password, State time.Time
}

// Store keeps sessions and tickets with a time to live per record. Every
// method returns promptly when the backend is down (an error that is, or
// wraps, an *apierr.Error with reason TICKET_STORE_UNAVAILABLE).
type Store interface {
	// CreateSession stores a new session, ending after ttl.
	CreateSession(ctx context.Context, s *Session, ttl time.Duration) error
	// GetSession returns the session id and its revision.
	GetSession(ctx context.Context, id string) (*Session, uint64, error)
	// CachedSession returns a recent copy of the session and its revision
	// if the store holds one (no backend call; false: read it). The copy
	// may be stale: use it only to write back with UpdateSession, which
	// refuses a stale revision.
	CachedSession(id string) (*Session, uint64, bool)
	// UpdateSession replaces the session if it is still at rev (else
	// ErrConflict), with a new time to live.
	UpdateSession(ctx context.Context, s *Session, rev uint64, ttl time.Duration) error
	// DeleteSession removes the session (ErrNotFound when there is none).
	DeleteSession(ctx context.Context, id string) (*Session, error)
	// UserSessions lists the ids of the sessions of a person (some may
	// have ended since).
	UserSessions(ctx context.Context, userID string) ([]string, error)
	// Replica names this instance of the store: the service and proxy
	// tickets it keeps are in its memory, and their values carry this
	// name (1-16 lower-case letters or digits, new at every start).
	Replica() string
	// PutTicket keeps a consumable ticket under key in this instance's
	// memory, ending after ttl. It answers ErrNotFound when t's session
	// was ended here (EndTickets) in the last minutes: an issue from a
	// stale copy of that session must not leave a ticket behind.
	PutTicket(ctx context.Context, key string, t *Ticket, ttl time.Duration) error
	// NoteUse remembers in this instance's memory, until until, that the
	// service u.Service received ticket u.Ticket in session id, where the
	// session is not written for that ticket (a service it lists already):
	// EndTickets hands the latest ticket of each service over, so that
	// single logout names it.
	NoteUse(id string, u ServiceUse, until time.Time)
	// EndTickets removes the tickets of session id that the instances
	// issuers keep (this one in memory, the others asked through NATS; an
	// instance that has stopped kept none) and makes them refuse new ones
	// for it, before it returns. It returns the uses those instances
	// noted for the session (NoteUse; an instance that has stopped or did
	// not answer hands none). An error means an instance that may be
	// running was not told: its tickets of the session may still validate
	// until they expire.
	EndTickets(ctx context.Context, id string, issuers []string) ([]ServiceUse, error)
	// ConsumeTicket returns the ticket under key kept by instance replica
	// (this one, or another asked through NATS) and removes it,
	// atomically: of concurrent calls for one key, at any instance,
	// exactly one gets the ticket, the others ErrNotFound. A ticket of an
	// instance that has stopped is ErrNotFound.
	ConsumeTicket(ctx context.Context, replica, key string) (*Ticket, error)
	// PeekTicket returns what ConsumeTicket would, without removing the
	// ticket (a validation asks about the person before it uses the ticket
	// up). ErrNotFound also when the instance cannot be asked so (an
	// earlier version): the caller then goes on with ConsumeTicket.
	PeekTicket(ctx context.Context, replica, key string) (*Ticket, error)
	// PutPGT stores a proxy-granting ticket under key, ending after ttl.
	PutPGT(ctx context.Context, key string, p *PGT, ttl time.Duration) error
	// GetPGT returns the proxy-granting ticket under key.
	GetPGT(ctx context.Context, key string) (*PGT, error)
	// DeletePGT ends the proxy-granting ticket under key (none: no error).
	DeletePGT(ctx context.Context, key string) error
	// PutAccessToken stores an OAuth access token's record under key (a
	// hash of the token), ending after ttl.
	PutAccessToken(ctx context.Context, key string, t *AccessToken, ttl time.Duration) error
	// GetAccessToken returns the access token record under key.
	GetAccessToken(ctx context.Context, key string) (*AccessToken, error)
	// DeleteAccessToken ends the access token under key (none: no error).
	DeleteAccessToken(ctx context.Context, key string) error
	// PutCodeGrant keeps what a redeemed authorization code gave under key
	// (a hash of the code), ending after ttl; only once (ErrConflict when
	// the key holds a record, or held one ended less than a second ago).
	PutCodeGrant(ctx context.Context, key string, g *CodeGrant, ttl time.Duration) error
	// GetCodeGrant returns what the code under key gave (ErrNotFound:
	// nothing kept); DeleteCodeGrant removes it (none: no error).
	GetCodeGrant(ctx context.Context, key string) (*CodeGrant, error)
	DeleteCodeGrant(ctx context.Context, key string) error
	// PutSessionForward records that session oldID was replaced by newID
	// (a raise), until ttl: tokens and proxy-granting tickets of the old
	// session follow it (never a TGT).
	PutSessionForward(ctx context.Context, oldID, newID string, ttl time.Duration) error
	// GetSessionForward returns the session that replaced oldID
	// (ErrNotFound: none).
	GetSessionForward(ctx context.Context, oldID string) (string, error)
	// NotePassword records that the person's password was set at at
	// (identity's time, from a user.password_changed event), for ttl (the
	// longest a session lives): a later time replaces an earlier one, never
	// the reverse, so events arriving out of order keep the newest.
	NotePassword(ctx context.Context, userID string, at time.Time, ttl time.Duration) error
	// NoteState records that the person's account was locked or disabled
	// at at (identity's state time, from the event), as NotePassword: a
	// later time replaces an earlier one, never the reverse (ADR 0047).
	NoteState(ctx context.Context, userID string, at time.Time, ttl time.Duration) error
	// Noted returns the latest times NotePassword and NoteState recorded
	// for the person (zero: none, or expired), in one read.
	Noted(ctx context.Context, userID string) (Notes, error)
	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
}
