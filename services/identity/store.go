package identity

import (
	"context"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
)

// Store errors: the platform's (pkg/store). Implementations return them
// (store.NotFound, store.Conflict, store.Classify) so the domain can tell a
// missing row from a conflict from a storage fault; they carry caller-facing
// messages and reasons, so the error funnel answers them as they are.
var (
	ErrNotFound    = store.ErrNotFound
	ErrConflict    = store.ErrConflict
	ErrUnavailable = store.ErrUnavailable
)

// Store is the identity component's persistence. Every mutating call takes
// the events (change and audit) to write into the outbox in the same
// transaction, so a change and its events are never separated.
// The conformance suite in storetest runs against every implementation.
type Store interface {
	Ping(ctx context.Context) error
	// AppendEvents writes events alone (e.g. an audit record of a failed call).
	AppendEvents(ctx context.Context, evs []events.Event) error

	CreateOrg(ctx context.Context, o *Org, evs []events.Event) error
	GetOrg(ctx context.Context, id string) (*Org, error)
	ListOrgs(ctx context.Context, f OrgFilter, p Page) ([]*Org, string, error)
	// UpdateOrg writes name and status.
	UpdateOrg(ctx context.Context, o *Org, evs []events.Event) error
	// MoveOrg re-parents id (and rewrites the paths of its subtree).
	MoveOrg(ctx context.Context, id, newParentID string, now time.Time, evs []events.Event) (*Org, error)
	CountOrgs(ctx context.Context) (int, error)
	// DisabledInOrgChain returns the id of a disabled org among id and its
	// ancestors ("" when all are active): a disabled org disables the whole
	// subtree below it.
	DisabledInOrgChain(ctx context.Context, id string) (string, error)

	CreateUser(ctx context.Context, u *User, evs []events.Event) error
	GetUser(ctx context.Context, id string) (*User, error)
	GetUserByLogin(ctx context.Context, login string) (*User, error)
	ListUsers(ctx context.Context, f UserFilter, p Page) ([]*User, string, error)
	// UpdateUser writes every profile, status, flag and lock field
	// (not the password hash: see SetPassword).
	UpdateUser(ctx context.Context, u *User, evs []events.Event) error
	// SetPassword stores a new hash, moves the replaced hash (if any) into
	// the history (keeping the newest keep entries) and clears failures.
	SetPassword(ctx context.Context, userID, hash string, changedAt time.Time, mustChange bool, keep int, evs []events.Event) error
	PasswordHistory(ctx context.Context, userID string, n int) ([]string, error)
	// RecordLoginFailure adds one failure; when the count reaches maxFailures
	// it sets LockedUntil = lockUntil and resets the count. evs are written
	// with it; onLock only when this failure locked the account (in the same
	// transaction). It returns the user after the update.
	RecordLoginFailure(ctx context.Context, userID string, maxFailures int, lockUntil time.Time, now time.Time, evs, onLock []events.Event) (*User, error)
	// RecordLoginSuccess clears failures and, when rehash != "", replaces the
	// password hash with an equivalent one under new parameters.
	RecordLoginSuccess(ctx context.Context, userID, rehash string, now time.Time, evs []events.Event) error

	CreateGroup(ctx context.Context, g *Group, evs []events.Event) error
	GetGroup(ctx context.Context, id string) (*Group, error)
	ListGroups(ctx context.Context, f GroupFilter, p Page) ([]*Group, string, error)
	AddGroupMember(ctx context.Context, groupID, userID string, evs []events.Event) error
	RemoveGroupMember(ctx context.Context, groupID, userID string, evs []events.Event) error

	CreateApp(ctx context.Context, a *App, evs []events.Event) error
	GetApp(ctx context.Context, id string) (*App, error)
	GetAppByCode(ctx context.Context, appType, appCode string) (*App, error)
	ListApps(ctx context.Context, f AppFilter, p Page) ([]*App, string, error)
	// UpdateApp writes every field including secret hashes.
	UpdateApp(ctx context.Context, a *App, evs []events.Event) error

	CreateLink(ctx context.Context, l *AccountLink, evs []events.Event) error
	GetLink(ctx context.Context, id string) (*AccountLink, error)
	// FindLink finds the link of appID whose app account id is account, or,
	// failing that, the link of appID owned by the user whose login name is
	// account.
	FindLink(ctx context.Context, appID, account string) (*AccountLink, error)
	ListLinks(ctx context.Context, f LinkFilter, p Page) ([]*AccountLink, string, error)
	DeleteLink(ctx context.Context, id string, evs []events.Event) error

	CreateAdminToken(ctx context.Context, t *AdminToken) error
	GetAdminToken(ctx context.Context, hash string) (*AdminToken, error)
	DeleteExpiredAdminTokens(ctx context.Context, now time.Time) error
}
