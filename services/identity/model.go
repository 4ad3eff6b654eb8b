// Package identity holds the identity component's domain logic: orgs, users,
// groups, applications, account links, passwords and Authenticate. It has no
// gRPC imports; the server package adapts it to the wire.
package identity

import (
	"time"
)

// Status of an org or account link.
type Status int

// Status values.
const (
	StatusActive   Status = 1
	StatusDisabled Status = 2
)

// AppStatus of an application.
type AppStatus int

// AppStatus values.
const (
	AppActive    AppStatus = 1
	AppSuspended AppStatus = 2
)

// IDType is the kind of identity document.
type IDType int

// IDType values (match the proto enum).
const (
	IDTypeNone       IDType = 0
	IDTypeResidentID IDType = 1
	IDTypePassport   IDType = 2
	IDTypeMilitary   IDType = 3
	// The unit ID types (unit.go): a unit account's only ones.
	IDTypeUSCC    IDType = 4 // 统一社会信用代码, GB 32100-2015
	IDTypeOrgCode IDType = 5 // 组织机构代码, GB 11714-1997
	IDTypeOther   IDType = 9
)

// UserType says whom an account is for (match the proto enum): a person
// or a unit (单位). The zero value, what rows and replicas from before
// unit accounts hold, is a person's (UserType.Norm).
type UserType int

// UserType values.
const (
	UserTypePerson UserType = 1
	UserTypeUnit   UserType = 2
)

// Org is a node of the organisation tree. Path is the materialised list of
// ancestor ids ("/root/child/"), used for subtree queries and cycle checks.
type Org struct {
	ID        string
	Code      string
	Name      string
	ParentID  string
	Path      string
	Status    Status
	CreatedAt time.Time
	UpdatedAt time.Time
}

// User is a person's central account. Personal data is held encrypted
// (IDNumberEnc, PhoneEnc) with a masked copy for display.
type User struct {
	ID          string
	LoginName   string
	DisplayName string
	// UserType: a person's or a unit's account (0 is a person's).
	UserType     UserType
	IDType       IDType
	IDNumberEnc  string
	IDNumberMask string
	PhoneEnc     string
	PhoneMask    string
	Email        string
	OrgID        string
	Status       Status
	FeatureCode  string
	// IDKey is the blind index of IDType + IDNumber that makes an ID
	// number one account's (Service.idKey); "" (NULL) without an ID
	// number, for replicas of other centres' people (or
	// ReplicaIDKeyPrefix and their id, once the start's backfill saw
	// them), and while Policy.SharedIDNumbers.
	IDKey string
	// CentresKey is IDType + IDNumber keyed with the key every centre
	// shares (identity.uniqueness.key_file; Service.centresKey): the ID
	// number compared across centres at level 1 (uniq.go). Replicas carry
	// their home's. "" without that key or an ID number.
	CentresKey string
	IsAdmin    bool

	PasswordHash      string
	PasswordChangedAt time.Time
	MustChange        bool
	// PasswordByOther: the password was set by someone other than the
	// person (an administrator's create, set or reset): it is nobody's
	// secret but theirs only once they chose their own. An administrator's
	// login requires a password of their own (callers.go).
	PasswordByOther bool
	NeverExpires    bool
	CannotChange    bool
	// PasswordOnly: the person may authenticate by password only; a
	// fingerprint Authenticate answers ReasonPasswordOnly (-3).
	PasswordOnly bool
	// MinAuthLevel is the level the person must sign in with everywhere
	// (graded authentication, ADR 0020): 0 the policy's default
	// (Policy.MinAuthLevel), AuthLevelAny, AuthLevelTwoFactor,
	// AuthLevelCertificate.
	MinAuthLevel int
	// FailedCount is the number of counted failed password checks since
	// the last success or lock (see loginguard.go).
	FailedCount int
	LockedUntil time.Time // zero: not locked; LockForever: until unlocked
	// NextAttemptAt is the earliest start of the next counted password
	// check (the login gate's per-account spacing).
	NextAttemptAt time.Time

	CreatedAt time.Time
	UpdatedAt time.Time
	// StateChangedAt is when the account last changed state at this
	// centre: disabled, enabled, locked (an administrator, the login
	// gate), unlocked (ADR 0047); zero: not since it was made. Logins
	// answer it (StateAt) and lock and status events name it, so that the
	// ticket component ends only the sessions opened before a lock or
	// disable. UpdateUser never lowers it.
	StateChangedAt time.Time

	// DisabledCentre is the centre that disabled this person from outside
	// their home (the level-1 centre, ADR 0048; "" none), when
	// (DisabledCentreAt) and by which administrator there
	// (DisabledCentreBy). Apart from Status, the home's own: the person
	// may sign in nowhere while either disables them (Enabled). Only that
	// centre clears it; Store.UpdateUser and a replica of the person
	// never write it (Store.SetCentreDisabled does).
	DisabledCentre   string
	DisabledCentreAt time.Time
	DisabledCentreBy string

	// WriteGate (not stored) tells Store.UpdateUser that this update sets
	// the login gate's fields (FailedCount, LockedUntil, NextAttemptAt:
	// LockUser, UnlockUser). Without it the store keeps the row's, which
	// the login gate may have changed since this copy was read (a lock
	// from failed logins is not undone by an administrator's edit).
	WriteGate bool
	// WriteMustChange (not stored) tells Store.UpdateUser that this update
	// sets MustChange (an administrator's must_change_password). Without
	// it the store keeps the row's, which a password change (SetPassword)
	// may have cleared since this copy was read.
	WriteMustChange bool
	// IfStateChangedAt (not stored), when not nil, makes Store.UpdateUser
	// write only if the row's StateChangedAt is still this one (to the
	// millisecond; the zero time: never changed), else ErrConflict: a
	// lock, unlock, disable or enable computes its new state time from the
	// copy it read, and its event must name exactly the time stored, later
	// than any a login answered before it commits (ADR 0047; review
	// sec32a M1).
	IfStateChangedAt *time.Time
}

// PasswordSet is how a new password is set (Store.SetPassword).
type PasswordSet struct {
	// MustChange: the person must change it at their next login.
	MustChange bool
	// ByOther: someone other than the person set it (User.PasswordByOther).
	ByOther bool
	// IfChangedAt: the password is set only if the stored change time is
	// still this one (to the millisecond; the zero time: no password set
	// yet), else ErrConflict; nil: whatever it is.
	IfChangedAt *time.Time
}

// LockForever is the LockedUntil value of an account locked until an
// administrator unlocks it.
var LockForever = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Enabled reports whether neither the person's home (Status) nor
// another centre (DisabledCentre) disabled them.
func (u *User) Enabled() bool { return u.Status == StatusActive && u.DisabledCentre == "" }

// CentreDisable is a disable of a person set by a centre other than their
// home (User.DisabledCentre; the zero value: none).
type CentreDisable struct {
	Centre string
	At     time.Time
	By     string
	// IfStateAt: written only while the person's stored state time
	// (StateChangedAt, zero: never changed) is still this one, else
	// ErrConflict with nothing written (so that the change's event names
	// exactly the state time stored, ADR 0047); nil: whatever it is.
	IfStateAt *time.Time
}

// StateAt is the account's state time as logins answer it: StateChangedAt,
// or its creation when it never changed state (never zero for a stored
// account, so that a session always records it).
func (u *User) StateAt() time.Time {
	if !u.StateChangedAt.IsZero() {
		return u.StateChangedAt
	}
	return u.CreatedAt
}

// nextStateAt is the state time of a change at now of an account whose
// state time is prev (StateAt): now to the millisecond (the store's
// precision), and always after prev, whatever the clock did, so that a
// login that saw prev is told from one that saw the change.
func nextStateAt(prev, now time.Time) time.Time {
	at := now.UTC().Truncate(time.Millisecond)
	if p := prev.UTC().Truncate(time.Millisecond); !at.After(p) {
		at = p.Add(time.Millisecond)
	}
	return at
}

// Locked reports whether the account is locked at now.
func (u *User) Locked(now time.Time) bool {
	return !u.LockedUntil.IsZero() && now.Before(u.LockedUntil)
}

// Group is a named set of users within an org.
type Group struct {
	ID        string
	Code      string
	Name      string
	OrgID     string
	MemberIDs []string
	CreatedAt time.Time
}

// App is a business system allowed to call UIAS. Secrets are stored as
// SHA-256 hashes; the previous secret stays valid until PrevSecretExpires.
type App struct {
	ID          string
	Type        string
	Code        string
	Name        string
	Status      AppStatus
	IPAllowList []string
	RateLimit   float64
	RateBurst   int
	// MaxConcurrent bounds the application's calls in progress (0: none;
	// pkg/caller flow.go).
	MaxConcurrent int
	// NameRelease is what Authenticate answers of the person's name
	// (display_name) to the application: NameReleaseFull (the name),
	// NameReleaseMasked or NameReleaseOmitted.
	NameRelease string
	SecretHash  string
	// SecretLifetime is the application's own secret lifetime (whole
	// seconds; zero: the server default, identity.app_secret_lifetime).
	SecretLifetime time.Duration
	// SecretIssuedAt is when the current secret was issued (created or
	// rotated; for a secret older than migration 0051, the upgrade).
	SecretIssuedAt time.Time
	// SecretExpires is when the current secret stops working (zero:
	// never): SecretIssuedAt plus the lifetime in force when it was issued,
	// recomputed when SecretLifetime changes (secretlife.go).
	SecretExpires     time.Time
	PrevSecretHash    string
	PrevSecretExpires time.Time
	// WriteIfSecretIssuedAt, when set, makes Store.UpdateApp write only if
	// the stored SecretIssuedAt is still this one (to the millisecond;
	// ErrConflict else): a rotation asked from a page that showed an
	// earlier secret does not replace the one just issued. Not stored.
	WriteIfSecretIssuedAt *time.Time
	// ClientCertSHA256, when set, binds the application to a client
	// certificate (App_ID + certificate): its calls must present the
	// verified client certificate with this SHA-256 fingerprint (64 lower
	// case hex digits of the DER encoding).
	ClientCertSHA256 string
	// SigningKeys are the application's request signing keys (public
	// keys, at most reqsig.MaxKeys; signing.go); RequireSignatures: its
	// AuthService calls must be signed with one of them.
	SigningKeys       []SigningKey
	RequireSignatures bool
	// GrantedAPIs are the interfaces the application may call
	// (caller.APIs; empty: every one); AccessFrom and AccessUntil bound
	// the period it may call (zero: open; caller.App.Permits).
	GrantedAPIs             []string
	AccessFrom, AccessUntil time.Time
	// SecurityLevel is the application's interface level (JR/T
	// 0185-2020 6.2): 1 (A1, the default) or 2 (A2: its calls must be
	// signed with a registered key, and UIAS signs its answers;
	// checkSecurityLevel).
	SecurityLevel int
	// MinAuthLevel is the lowest level Authenticate accepts for the
	// application's people (0 or AuthLevelAny: any auth type; ADR 0020).
	MinAuthLevel int
	// LegacyIPOnly lets the legacy Hessian/SOAP authenticate identify the
	// application by Type and Code alone, without a secret, from an
	// address on its (non-empty) IP allow-list; never for an A2,
	// signature-requiring or certificate-bound application (legacyip.go).
	LegacyIPOnly bool
	// Home is the centre the application is homed at (written at) in a
	// multi-centre deployment: "" for one created at this centre, else
	// the peer centre it is a replica of (pkg/centre, replica.go).
	Home      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// AppTombstone is what is kept of a deleted application: when it was
// deleted and the hashes of its last secrets (its calls with one of them
// are told its service ended: caller.AppTerminated).
type AppTombstone struct {
	DeletedAt                  time.Time
	SecretHash, PrevSecretHash string
}

// SigningKey is a registered request signing key: the public key (PEM
// PUBLIC KEY, as re-encoded from what was given) and when it was added.
type SigningKey struct {
	PEM     string    `json:"pem"`
	AddedAt time.Time `json:"added_at"`
	// ExpiresAt ends the key's validity period (zero: it does not
	// expire), fixed when it is registered (signing.go).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// AccountLink ties a central user to their account inside an application.
type AccountLink struct {
	ID           string
	UserID       string
	AppID        string
	AppAccountID string
	Status       Status
	CreatedAt    time.Time
}

// AdminToken is a hashed administrator bearer token. It is valid until
// ExpiresAt (the hard limit) while used at least every admin_token_idle.
type AdminToken struct {
	Hash       string
	UserID     string
	ExpiresAt  time.Time
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// Page asks for one page of a list.
type Page struct {
	Size  int
	Token string
}

// OrgFilter narrows ListOrgs.
type OrgFilter struct {
	ParentID string
	// Subtree widens ParentID to every org below it (at any depth),
	// listed by path.
	Subtree bool
	Query   string
	Status  Status
	// Within limits the listing to these orgs' subtrees (the orgs
	// included): a unit administrator's listing that names no org.
	Within []string
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	OrgID string
	// Subtree widens OrgID to the users of OrgID and of every org below
	// it, listed by (org path, id).
	Subtree bool
	Query   string
	Status  Status
	// Within limits the listing to these orgs' subtrees (the orgs
	// included): a unit administrator's listing that names no org.
	Within []string
	// PasswordExpired asks for the users whose password has passed the
	// policy's maximum age; Service.ListUsers turns it into
	// PasswordChangedBefore, which the store applies: users with a
	// password set before it that may expire.
	PasswordExpired       bool
	PasswordChangedBefore time.Time
	// HasPassword limits the listing to the users with a password hash
	// (the sweep of directory people's hashes: ClearDirectoryHashes).
	HasPassword bool
	// UserType lists only persons or only units (0: both).
	UserType UserType
}

// GroupFilter narrows ListGroups.
type GroupFilter struct {
	OrgID string
	Query string
	// Within limits the listing to these orgs' subtrees (the orgs
	// included): a unit administrator's listing that names no org.
	Within []string
}

// AppFilter narrows ListApps.
type AppFilter struct {
	Type   string
	Query  string
	Status AppStatus
	// SecretExpiresBefore, when set, keeps the applications whose current
	// secret expires at or before it (expired ones included; secrets that
	// do not expire are left out). Service.ListApps sets it from
	// SecretExpiresWithin.
	SecretExpiresBefore time.Time
	// SecretExpiresWithin (Service.ListApps only; nil: no filter) keeps
	// the applications whose secret expires within this long from now.
	SecretExpiresWithin *time.Duration
}

// LinkFilter narrows ListLinks.
type LinkFilter struct {
	UserID string
	AppID  string
	// Within limits the listing to these orgs' subtrees (the orgs
	// included): a unit administrator's listing that names no org.
	Within []string
}

// FoldLogin is a login name as uniqueness compares it: ASCII letters in
// lower case, every other character as it is (login names are ASCII; the
// store folds alike: unique index users_login_name_fold_key).
func FoldLogin(login string) string {
	b := []byte(login)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
