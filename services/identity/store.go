package identity

import (
	"context"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
)

// Store errors: the platform's (pkg/store). Implementations return them
// (store.NotFound, store.Conflict, store.Classify) so the domain can tell a
// missing row from a conflict from a storage fault; they carry caller-facing
// messages and reasons, so the error funnel answers them as they are.
var (
	ErrNotFound = store.ErrNotFound
	ErrConflict = store.ErrConflict
	// ErrOrgNotEmpty: DeleteOrg of an org with orgs, people or groups
	// under it (the message says which).
	ErrOrgNotEmpty = apierr.New(apierr.FailedPrecondition, "ORG_NOT_EMPTY", "the org is not empty")
	ErrUnavailable = store.ErrUnavailable
	// ErrAppActive: DeleteApp of an application that is not suspended.
	ErrAppActive = apierr.New(apierr.FailedPrecondition, "APP_ACTIVE",
		"the application is active: suspend it first (uias ctl app suspend ID, or PATCH /v1/apps/{id} with status SUSPENDED), then delete it once nothing calls it")
)

// Store is the identity component's persistence. Every mutating call takes
// the events (change and audit) to write into the outbox in the same
// transaction, so a change and its events are never separated.
// The conformance suite in storetest runs against every implementation.
type Store interface {
	AppointmentStore
	IDKeyStore
	Ping(ctx context.Context) error
	// AppendEvents writes events alone (e.g. an audit record of a failed call).
	AppendEvents(ctx context.Context, evs []events.Event) error

	CreateOrg(ctx context.Context, o *Org, evs []events.Event) error
	GetOrg(ctx context.Context, id string) (*Org, error)
	GetOrgByCode(ctx context.Context, code string) (*Org, error)
	ListOrgs(ctx context.Context, f OrgFilter, p Page) ([]*Org, string, error)
	// UpdateOrg writes name and status.
	UpdateOrg(ctx context.Context, o *Org, evs []events.Event) error
	// DeleteOrg deletes org id when nothing is under it, with evs;
	// ErrNotFound when there is no such org, ErrOrgNotEmpty (naming what
	// is left) when an org, person or group is under it.
	DeleteOrg(ctx context.Context, id string, evs []events.Event) error
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
	// CentresKeyHeld reports whether a person other than self (of this
	// centre or a replica of another's) has the centres key key
	// (User.CentresKey; uniq.go).
	CentresKeyHeld(ctx context.Context, key, self string) (bool, error)
	ListUsers(ctx context.Context, f UserFilter, p Page) ([]*User, string, error)
	// UpdateUser writes every profile, status, flag and lock field
	// (not the password hash: see SetPassword). A FailedCount of 0 also
	// forgets the per-source failure counts. When it changes the status or
	// the admin flag, or sets a lock (a LockedUntil other than the stored
	// one, not zero), it deletes every admin token of the user in the same
	// transaction: such a change revokes them for good.
	UpdateUser(ctx context.Context, u *User, evs []events.Event) error
	// SetCentreDisabled sets the disable of person id by a centre other
	// than their home (User.DisabledCentre; the zero CentreDisable clears
	// it) with evs, in one transaction; a set one also deletes the
	// person's admin tokens and raises their state time to d.At (never
	// lowered). ErrNotFound when there is no such user.
	SetCentreDisabled(ctx context.Context, id string, d CentreDisable, evs []events.Event) error
	// SetMustChange sets person id's must_change_password with evs, in one
	// transaction, and nothing else of the row (level 1 requiring a
	// level-2 person to change their password, ADR 0048). ErrNotFound
	// when there is no such user.
	SetMustChange(ctx context.Context, id string, evs []events.Event) error
	// DeleteUser deletes user id and what hangs on it (account links,
	// fingerprints, certificate bindings, group memberships, password history, admin tokens,
	// per-source login failures, a pending appointment), with evs;
	// ErrNotFound when there is no such user.
	DeleteUser(ctx context.Context, id string, evs []events.Event) error
	// SetPassword stores a new hash, moves the replaced hash (if any) into
	// the history (keeping the newest keep entries), clears the login gate
	// (failures, per-source counts, next attempt) and deletes every admin
	// token of the user. With set.IfChangedAt, only if the stored change
	// time is still that one: ErrConflict else (nothing written).
	SetPassword(ctx context.Context, userID, hash string, changedAt time.Time, set PasswordSet, keep int, evs []events.Event) error
	PasswordHistory(ctx context.Context, userID string, n int) ([]string, error)
	// ReplacePasswordHash replaces userID's hash old by new (the same
	// password in another form: no history, the login gate and tokens
	// untouched) with evs; ErrConflict when the hash is no longer old,
	// ErrNotFound without the user.
	ReplacePasswordHash(ctx context.Context, userID, old, new string, evs []events.Event) error
	// UpdateLoginGate is the login gate's one atomic step: in one
	// transaction, under the user row's write lock, it reads the gate of
	// userID as seen from source (SourceFailures is that source's count;
	// source may be ""), calls decide with it and, when decide returns
	// true, writes what it returned with its events. decide must not block
	// and must not call the store (it runs inside the write transaction:
	// a write from it would wait for the transaction it is part of). A
	// store may first ask decide on a consistent snapshot read without
	// the lock and, when the answer changes nothing but adds events, write
	// only those events (sqlstore's login outbox); otherwise it asks again
	// under the lock: decide may run more than once and only its last
	// answer counts, so it must have no other effect than setting what
	// the caller reads after the call. A missing user is ErrNotFound.
	UpdateLoginGate(ctx context.Context, userID, source string, decide func(LoginGate) (LoginGateWrite, bool)) error
	// ReadLoginGate reads the login gate of userID as seen from source
	// (as UpdateLoginGate would give it to decide) in one plain read: no
	// write transaction, no row lock, so on SQLite it does not wait for
	// the database's write lock. What it returns may be outdated by the
	// time it is used: the gate reads it only to see whether a check may
	// run without a write before it settles (loginguard.go, rule 3).
	// A missing user is ErrNotFound.
	ReadLoginGate(ctx context.Context, userID, source string) (LoginGate, error)

	CreateGroup(ctx context.Context, g *Group, evs []events.Event) error
	// DeleteGroup deletes group id and its memberships, with evs;
	// ErrNotFound when there is no such group.
	DeleteGroup(ctx context.Context, id string, evs []events.Event) error
	// UpdateGroup writes g's name, with evs (ErrNotFound when it is gone).
	UpdateGroup(ctx context.Context, g *Group, evs []events.Event) error
	GetGroup(ctx context.Context, id string) (*Group, error)
	ListGroups(ctx context.Context, f GroupFilter, p Page) ([]*Group, string, error)
	AddGroupMember(ctx context.Context, groupID, userID string, evs []events.Event) error
	// UserGroups lists the groups userID is a member of (without
	// MemberIDs), by code, at most MaxUserGroups.
	UserGroups(ctx context.Context, userID string) ([]*Group, error)
	RemoveGroupMember(ctx context.Context, groupID, userID string, evs []events.Event) error

	CreateApp(ctx context.Context, a *App, evs []events.Event) error
	GetApp(ctx context.Context, id string) (*App, error)
	GetAppByCode(ctx context.Context, appType, appCode string) (*App, error)
	ListApps(ctx context.Context, f AppFilter, p Page) ([]*App, string, error)
	// UpdateApp writes every field including secret hashes.
	UpdateApp(ctx context.Context, a *App, evs []events.Event) error
	// DeleteApp deletes application id with its secrets and what hangs on
	// it (account links, fingerprint bypass setting), with evs, if it is
	// suspended (checked in the deleting statement: ErrAppActive when it is
	// not); ErrNotFound when there is no such application. The App_ID is
	// kept with the time of the deletion (AppTombstone).
	DeleteApp(ctx context.Context, id string, at time.Time, evs []events.Event) error
	// AppTombstone is what is kept of deleted application id (when, its
	// last secrets' hashes); ErrNotFound when it never was deleted (or
	// never existed).
	AppTombstone(ctx context.Context, id string) (*AppTombstone, error)

	CreateLink(ctx context.Context, l *AccountLink, evs []events.Event) error
	GetLink(ctx context.Context, id string) (*AccountLink, error)
	// FindLink finds the link of appID whose app account id is account, or,
	// failing that, the link of appID owned by the user whose login name is
	// account.
	FindLink(ctx context.Context, appID, account string) (*AccountLink, error)
	ListLinks(ctx context.Context, f LinkFilter, p Page) ([]*AccountLink, string, error)
	// SSOAttributes returns what a ticket validation releases of user
	// userID to application appID: the user, their org's name ("" when
	// none), the account of their active link to appID ("" when none, or
	// appID is "") and their group codes (UserGroups' order and limit).
	// A missing user is ErrNotFound.
	SSOAttributes(ctx context.Context, userID, appID string) (*PersonAttributes, error)
	DeleteLink(ctx context.Context, id string, evs []events.Event) error

	// ImportBatch writes the items of one batch of an import in one
	// transaction, each on its own (a failing item leaves the others; its
	// result carries the error, a store error with a reason), skipping
	// items whose Key importID has already written. evs returns the
	// events to write with the items written. With dryRun nothing is
	// kept (the results are what a real run would have done). With chunk
	// > 0 the store may write the items chunk at a time and end the
	// transaction between two chunks when other writes wait for the
	// database (SQLite's one write lock): the results then cover only the
	// first items (a whole number of chunks), and the caller sends the
	// others again. After each chunk it calls ImportChunkDone(ctx, ...)
	// with the transaction open (the importer gives way to logins there,
	// until the store's cut says another write waits).
	ImportBatch(ctx context.Context, importID string, items []ImportItem, dryRun bool, chunk int,
		evs func(written []ImportItem) []events.Event) ([]ImportResult, error)
	// BeginImport prepares the store for an import's run of ImportBatch
	// calls: they are made with the context it returns, until end is
	// called (on SQLite: one connection with a page cache large enough
	// for the indexes an import writes, on which the store's other writes
	// run meanwhile, each between two of the import's transactions, so
	// that no other connection's commit resets that cache; see
	// sqlstore.BeginImport).
	BeginImport(ctx context.Context) (importCtx context.Context, end func(), err error)
	// YieldWrites lets the writes that wait for the database go first
	// (an import calls it before each of its transactions, so that the
	// logins' writes are not held up behind a run of them); it returns
	// when none waits, after a bound, or when ctx ends.
	YieldWrites(ctx context.Context) error

	// CreateAdminToken stores t (its LastUsedAt is its CreatedAt).
	CreateAdminToken(ctx context.Context, t *AdminToken) error
	GetAdminToken(ctx context.Context, hash string) (*AdminToken, error)
	// TouchAdminToken records a use of the token at now.
	TouchAdminToken(ctx context.Context, hash string, now time.Time) error
	// DeleteAdminToken deletes one token (logout) with evs; ErrNotFound
	// when there is none.
	DeleteAdminToken(ctx context.Context, hash string, evs []events.Event) error
	DeleteExpiredAdminTokens(ctx context.Context, now time.Time) error
	// DeleteUserAdminTokens deletes every token of userID with evs (an
	// appointment: rights from before it end); none is no error.
	DeleteUserAdminTokens(ctx context.Context, userID string, evs []events.Event) error

	FingerStore  // fingers.go
	CertStore    // certs.go
	TOTPStore    // totp.go
	ExportStore  // export.go
	ReplicaStore // replica.go
}

// LoginGate is an account's login gate as UpdateLoginGate reads it.
type LoginGate struct {
	FailedCount    int       // counted failures (User.FailedCount)
	SourceFailures int       // how many checks the source asked about counted (failed or running)
	NextAttemptAt  time.Time // earliest start of the next counted password check
	LockedUntil    time.Time
	Pending        int       // counted checks admitted and not yet decided
	PendingAt      time.Time // when the count last rose from zero (the pending period's start)
	// StateAt is the account's state time (User.StateAt), read by
	// UpdateLoginGate only (zero elsewhere): a lock's StateChangedAt
	// follows it (nextStateAt).
	StateAt time.Time
}

// LoginGateWrite is what UpdateLoginGate writes, every field at once.
type LoginGateWrite struct {
	FailedCount    int
	SourceFailures int  // the source's new count (ignored with ClearSources)
	ClearSources   bool // forget every source's count
	NextAttemptAt  time.Time
	LockedUntil    time.Time
	Pending        int
	PendingAt      time.Time
	// Rehash, when not empty, replaces the password hash (the same
	// password under new parameters).
	Rehash string
	// StateChangedAt, when not zero, is written as the account's state
	// time (a lock: User.StateChangedAt); zero leaves the row's.
	StateChangedAt time.Time
	Events         []events.Event
}
