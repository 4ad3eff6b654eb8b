package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"

	"go.uber.org/zap"
)

// Replicas of other centres (pkg/centre, docs/operators.md "Two-level
// centres"). Every identity CHANGES event of an org, user, group,
// application or account link carries, besides its "data" (what changed,
// for readers of the stream), a "replica" part: the object's state after
// the change, what another centre's identity needs to hold the same row.
// The hashes a login needs (the password hash, the application secret
// hashes: never a clear secret) travel only there, and only on the events
// that set them (created, password_changed, secret_rotated). Personal data
// travels masked in "data" and sealed in the replica part of the events
// that write it (created, updated, imported: sealedRecord): centres that
// share the home's key ring open it, as fingerprint templates.
//
// The sync component hands each peer's changes to ApplyReplica, which
// applies those of objects homed at that peer (by this centre's settings)
// exactly once and in order per object: the store keeps the version (the
// change's sequence in the origin's CHANGES) applied to each object and
// answers a change not above it STALE. Applying publishes no change to
// other centres (it was published once, at its home); it writes, with each
// change applied, a local event (replica_events.go) that stays in this
// centre, so its ticket and authz learn of the replica.

// ReplicaOutcome is what ApplyReplica did with one change.
type ReplicaOutcome string

// Outcomes of ApplyReplica.
const (
	ReplicaApplied ReplicaOutcome = "APPLIED"
	// ReplicaStale: the object's applied version is not below the change's
	// (a redelivery, or an older change): nothing applied.
	ReplicaStale ReplicaOutcome = "STALE"
	// ReplicaNotHomed: by this centre's settings the object is not the
	// origin's (e.g. a level-2 centre's own root org or bootstrap
	// administrator): not applied.
	ReplicaNotHomed ReplicaOutcome = "NOT_HOMED"
	// ReplicaIgnored: the change carries nothing to apply (an event without
	// a replica part, an import summary, a fingerprint change).
	ReplicaIgnored ReplicaOutcome = "IGNORED"
	// ReplicaConflict: the change collides with a row of this centre (a
	// login name, code or account taken here); its version is recorded.
	ReplicaConflict ReplicaOutcome = "CONFLICT"
	// ReplicaReplayed, ReplicaReplayedConflict: the store's answer to the
	// very change it applied (or refused) before, delivered again (a batch
	// redelivered after a failure): nothing written; ApplyReplica answers
	// it STALE, and its object as it did then, so that sync records or
	// resolves what it missed (review sec16 M2).
	ReplicaReplayed         ReplicaOutcome = "REPLAYED"
	ReplicaReplayedConflict ReplicaOutcome = "REPLAYED_CONFLICT"
)

// ReplicaChange is one identity CHANGES event of another centre.
type ReplicaChange struct {
	EventID, Subject string
	// Version is the event's sequence in the origin's CHANGES stream.
	Version uint64
	Payload []byte
	// Resent: an object of a resend (ResendOrg): its local event says so,
	// and provisioning delivers nothing for it.
	Resent bool
}

// Replica write operations.
const (
	ReplicaUpsert       = "upsert"
	ReplicaMove         = "move"
	ReplicaMemberAdd    = "member_add"
	ReplicaMemberRemove = "member_remove"
	ReplicaDelete       = "delete"
	// ReplicaRefuse: the change is left out as a CONFLICT (its org is one
	// this centre left out): nothing is written but its version, so that
	// what is below it is known to be in conflict too, and a replay is
	// STALE first.
	ReplicaRefuse = "refuse"
)

// ReplicaWrite is one change ApplyReplica hands the store.
type ReplicaWrite struct {
	// Kind is org, user, group, app, link, lock, finger, totp, cert or
	// admintokens; ID the object's id.
	Kind, ID string
	Origin   string
	Version  uint64
	EventID  string
	// Op is one of the Replica* operations.
	Op string
	// Org (upsert, move: its ParentID). AttachToRoot: the org is the top of
	// a subtree of the origin whose parent this centre does not hold (each
	// centre bootstrapped its own root): it hangs under this centre's root.
	Org          *Org
	AttachToRoot bool
	// User (upsert); WithPassword also writes the hash and its time,
	// WithSealed the sealed personal data (IDNumberEnc, PhoneEnc).
	User         *User
	WithPassword bool
	WithSealed   bool
	// Group (upsert); Member (member_add, member_remove) the user id.
	Group  *Group
	Member string
	// WithMembers (group upsert, a resend): the group's members here
	// become Members (those of them held here); with MembersAppend they
	// are added to the members.
	WithMembers   bool
	Members       []string
	MembersAppend bool
	// HomeMembers: the members the home sent (a resend's group, this
	// part of them), for the answer of each (memberOutcomes).
	HomeMembers []string
	// Events are written with Event, in the same transaction, also when
	// the write is refused (ReplicaRefuse): a resend's membership events,
	// the audit records of a refusal for separation of duty or of a
	// token revocation.
	Events []events.Event
	// App (upsert, with Home = Origin); WithSecrets also writes the
	// secret hashes.
	App         *App
	WithSecrets bool
	// Link (upsert); delete needs only ID.
	Link *AccountLink
	// Unlocked: the home unlocked the person (their "unlocked" change):
	// the replica's lock becomes the home's; any other change keeps the
	// later of the two (replica_lock.go).
	Unlocked bool
	// Lock (kind "lock", ID the person): a lock set at another centre; the
	// person's lock becomes the later of theirs and it.
	Lock time.Time
	// MustChange (kind "lock", ID the person, at their home): level 1
	// requires the person to change their password (lock.must_change):
	// their must_change_password is set (replica_lock.go).
	MustChange bool
	// MustChangeBy: who required it at level 1 (the change's actor),
	// named in the home's audit record (not stored).
	MustChangeBy string
	// CentreDisable (kind "lock", ID the person, at their home): level 1
	// disabled (or, zero, enabled) the person (lock.disabled,
	// lock.enabled; replica_disable.go).
	CentreDisable *CentreDisable
	// Finger (upsert: with its sealed template; delete: user and
	// position), kind "finger".
	Finger *StoredFinger
	// TOTP (upsert: the authenticator app with its sealed secret; delete:
	// the user), kind "totp", ID the person.
	TOTP *UserTOTP
	// TokensBefore (kind "admintokens", ID the person): the home centre
	// revoked the person's administrator tokens at this time (an
	// appointment): the tokens they hold here issued before it go too.
	TokensBefore time.Time
	// Cert (upsert: the binding; delete: the person's binding of the
	// thumbprint), kind "cert", ID the origin and the thumbprint
	// ("<origin>/<sha256>"): a centre replaces or removes only the
	// bindings it made.
	Cert *UserCert
	// Event is the local CHANGES event of the write (replica_events.go),
	// added to the outbox when the write is applied.
	Event *events.Event
}

// ReplicaStore is the store's part of replication.
type ReplicaStore interface {
	// ApplyReplica applies ws in one transaction, in order. A write whose
	// Version is not above the version applied to its object (Kind, ID) is
	// STALE and left out (REPLAYED or REPLAYED_CONFLICT when it is the very
	// change recorded, by event id and version, and it was applied or
	// refused then); one that collides with a row (a unique key, a missing
	// referenced row) is CONFLICT and left out; either way the object's
	// version becomes the write's when higher. It returns one outcome per
	// write.
	ApplyReplica(ctx context.Context, ws []ReplicaWrite) ([]ReplicaOutcome, error)
	// UserOrg returns the org of person id ("" for none), ErrNotFound if
	// there is no such person: the one column a replica batch's home check
	// reads of each person it names.
	UserOrg(ctx context.Context, id string) (string, error)
	// ReplicaOrigin returns the centre whose change of object (kind, id)
	// was last recorded here (applied, or left out as a CONFLICT); ok
	// false when none was.
	ReplicaOrigin(ctx context.Context, kind, id string) (origin string, ok bool, err error)
}

// ---- the replica part of change events ----

type orgRecord struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	ParentID  string    `json:"parent_id,omitempty"`
	Status    Status    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type passwordRecord struct {
	Hash      string    `json:"hash"`
	ChangedAt time.Time `json:"changed_at"`
	// ByOther: User.PasswordByOther (absent from older centres: the
	// holder's own).
	ByOther bool `json:"by_other,omitempty"`
}

type userRecord struct {
	LoginName    string          `json:"login_name"`
	DisplayName  string          `json:"display_name"`
	IDType       IDType          `json:"id_type"`
	IDNumberMask string          `json:"id_number_mask,omitempty"`
	PhoneMask    string          `json:"phone_mask,omitempty"`
	Email        string          `json:"email,omitempty"`
	OrgID        string          `json:"org_id"`
	Status       Status          `json:"status"`
	FeatureCode  string          `json:"feature_code,omitempty"`
	MustChange   bool            `json:"must_change"`
	NeverExpires bool            `json:"never_expires"`
	CannotChange bool            `json:"cannot_change"`
	PasswordOnly bool            `json:"password_only"`
	LockedUntil  time.Time       `json:"locked_until"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	Password     *passwordRecord `json:"password,omitempty"`
	// Sealed: the ID and phone numbers sealed as the home stored them
	// (withSealed; only on the events that write them).
	Sealed *sealedRecord `json:"sealed,omitempty"`
	// MinAuthLevel: the person's level (ADR 0020) on every change;
	// absent: the policy's default (also from a centre of an older
	// version).
	MinAuthLevel int `json:"min_auth_level,omitzero"`
	// UserType: a unit's account (UserTypeUnit) on every change; absent:
	// a person's (also from a centre of an older version, which ignores
	// the field: it keeps a unit as a person, feature code as sent).
	UserType UserType `json:"user_type,omitzero"`
}

// sealedRecord is a person's sealed personal data. It travels sealed with
// the home centre's data keys, which travel beside it wrapped by the home's
// master key (keys.go, resealArrived): a centre whose key ring holds that
// master key opens it (reveal) and seals it again with its own; one without
// keeps it sealed and shows the masked copy.
type sealedRecord struct {
	IDNumberEnc string `json:"id_number_enc"`
	PhoneEnc    string `json:"phone_enc"`
	// Keys: the wrapped data keys that sealed the values, by id (absent
	// from centres of older versions).
	Keys map[string]string `json:"keys,omitempty"`
	// CentresKey: the ID number's key comparable across centres
	// (User.CentresKey; uniq.go), absent without one.
	CentresKey string `json:"centres_key,omitempty"`
}

// withSealed adds u's sealed personal data to r: on the events of writes
// that seal it (a person created, updated or imported), whose u holds the
// whole row.
func (s *Service) withSealed(r userRecord, u *User) userRecord {
	r.Sealed = &sealedRecord{IDNumberEnc: u.IDNumberEnc, PhoneEnc: u.PhoneEnc}
	if len(s.cfg.Uniqueness.CentresKey) > 0 {
		// Only while this centre compares ID numbers across centres: a
		// centres key stored before identity.uniqueness.id_numbers false
		// (or the key file removed) is no longer sent (review sec29b M3).
		r.Sealed.CentresKey = u.CentresKey
	}
	if s.homes != nil {
		r.Sealed.Keys = s.keys.wrappedFor(u.IDNumberEnc, u.PhoneEnc)
	}
	return r
}

// tokensClockAllowance is how far a centre's clock may run ahead of the
// home's for the tokens a revocation reaches (see replicaWrite).
const tokensClockAllowance = 30 * time.Second

// tokensRecord is the replica part of user.admin_tokens_revoked: when the
// home centre revoked the person's administrator tokens.
type tokensRecord struct {
	NotBefore time.Time `json:"not_before"`
}

type groupRecord struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	OrgID     string    `json:"org_id"`
	CreatedAt time.Time `json:"created_at"`
	// Members: the group's members, only in a resend (ResendOrg): the
	// replica's membership becomes them (nil: left as it is), or, with
	// MembersAppend (a large group's later items), gains them.
	Members       *[]string `json:"members,omitempty"`
	MembersAppend bool      `json:"members_append,omitempty"`
}

type appSecretsRecord struct {
	SecretHash        string    `json:"secret_hash"`
	PrevSecretHash    string    `json:"prev_secret_hash,omitempty"`
	PrevSecretExpires time.Time `json:"prev_secret_expires"`
}

type appRecord struct {
	Type             string    `json:"app_type"`
	Code             string    `json:"app_code"`
	Name             string    `json:"name"`
	Status           AppStatus `json:"status"`
	IPAllowList      []string  `json:"ip_allow_list,omitempty"`
	RateLimit        float64   `json:"rate_limit"`
	RateBurst        int       `json:"rate_burst"`
	MaxConcurrent    int       `json:"max_concurrent,omitzero"`
	LegacyIPOnly     bool      `json:"legacy_ip_only,omitzero"`
	NameRelease      string    `json:"name_release,omitempty"`
	ClientCertSHA256 string    `json:"client_cert_sha256,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	// The current secret's lifetime (seconds), issue time and expiry
	// (secretlife.go): on every change, so that a peer refuses an expired
	// secret too (a lifetime update recomputes the expiry without a new
	// secret). Absent (a centre of an older version): no expiry.
	SecretLifetime int64     `json:"secret_lifetime_seconds,omitzero"`
	SecretIssuedAt time.Time `json:"secret_issued_at,omitzero"`
	SecretExpires  time.Time `json:"secret_expires,omitzero"`
	// The request signing keys (public) and whether signatures are
	// required: on every change, like the allow-list. Absent (a centre
	// of an older version): none, not required.
	SigningKeys       []SigningKey `json:"signing_keys,omitempty"`
	RequireSignatures bool         `json:"require_signatures,omitzero"`
	// The interface grants and the access period: on every change.
	// Absent (a centre of an older version): every interface, open.
	GrantedAPIs []string  `json:"granted_apis,omitempty"`
	AccessFrom  time.Time `json:"access_from,omitzero"`
	AccessUntil time.Time `json:"access_until,omitzero"`
	// SecurityLevel: 2 for an A2 application; absent: A1.
	SecurityLevel int `json:"security_level,omitzero"`
	// MinAuthLevel: the lowest level of its Authenticate calls (ADR
	// 0020); absent: any.
	MinAuthLevel int               `json:"min_auth_level,omitzero"`
	Secrets      *appSecretsRecord `json:"secrets,omitempty"`
}

type linkRecord struct {
	UserID       string    `json:"user_id"`
	AppID        string    `json:"app_id"`
	AppAccountID string    `json:"app_account_id"`
	Status       Status    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
}

func orgReplica(o *Org) orgRecord {
	return orgRecord{Code: o.Code, Name: o.Name, ParentID: o.ParentID, Status: o.Status, CreatedAt: o.CreatedAt.UTC(),
		UpdatedAt: o.UpdatedAt.UTC()}
}

// userReplica is u's replica part; withPassword adds the password hash
// (only on the events that set it).
func userReplica(u *User, withPassword bool) userRecord {
	r := userRecord{LoginName: u.LoginName, DisplayName: u.DisplayName, IDType: u.IDType, IDNumberMask: u.IDNumberMask,
		UserType:  StoredUserType(u.UserType),
		PhoneMask: u.PhoneMask, Email: u.Email, OrgID: u.OrgID, Status: u.Status, FeatureCode: u.FeatureCode,
		MustChange: u.MustChange, NeverExpires: u.NeverExpires, CannotChange: u.CannotChange, PasswordOnly: u.PasswordOnly,
		MinAuthLevel: u.MinAuthLevel, LockedUntil: u.LockedUntil.UTC(), CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
	// A hash removed (dropDirectoryHash: the person's password is a
	// directory's) travels as an empty one with its time, so that the
	// other centres' copies stop signing in with it too (review sec27a
	// M2); a person who never had one sends none, as before.
	if withPassword && (u.PasswordHash != "" || !u.PasswordChangedAt.IsZero()) {
		r.Password = &passwordRecord{Hash: u.PasswordHash, ChangedAt: u.PasswordChangedAt.UTC(), ByOther: u.PasswordByOther}
	}
	return r
}

func groupReplica(g *Group) groupRecord {
	return groupRecord{Code: g.Code, Name: g.Name, OrgID: g.OrgID, CreatedAt: g.CreatedAt.UTC()}
}

// appReplica is a's replica part; withSecrets adds the secret hashes (only
// on the events that set them).
func appReplica(a *App, withSecrets bool) appRecord {
	r := appRecord{Type: a.Type, Code: a.Code, Name: a.Name, Status: a.Status, IPAllowList: a.IPAllowList,
		RateLimit: a.RateLimit, RateBurst: a.RateBurst, MaxConcurrent: a.MaxConcurrent, LegacyIPOnly: a.LegacyIPOnly, NameRelease: a.NameRelease, ClientCertSHA256: a.ClientCertSHA256, CreatedAt: a.CreatedAt.UTC(),
		UpdatedAt: a.UpdatedAt.UTC(), SecretLifetime: int64(a.SecretLifetime / time.Second),
		SecretIssuedAt: a.SecretIssuedAt.UTC(), SecretExpires: a.SecretExpires.UTC(), RequireSignatures: a.RequireSignatures,
		GrantedAPIs: a.GrantedAPIs, AccessFrom: a.AccessFrom.UTC(), AccessUntil: a.AccessUntil.UTC()}
	if a.SecurityLevel > 1 {
		r.SecurityLevel = a.SecurityLevel
	}
	if a.MinAuthLevel > 1 {
		r.MinAuthLevel = a.MinAuthLevel
	}
	for _, k := range a.SigningKeys {
		r.SigningKeys = append(r.SigningKeys, SigningKey{PEM: k.PEM, AddedAt: k.AddedAt.UTC(), ExpiresAt: k.ExpiresAt.UTC()})
	}
	if withSecrets {
		r.Secrets = &appSecretsRecord{SecretHash: a.SecretHash, PrevSecretHash: a.PrevSecretHash,
			PrevSecretExpires: a.PrevSecretExpires.UTC()}
	}
	return r
}

func linkReplica(l *AccountLink) linkRecord {
	return linkRecord{UserID: l.UserID, AppID: l.AppID, AppAccountID: l.AppAccountID, Status: l.Status, CreatedAt: l.CreatedAt.UTC()}
}

// ---- applying ----

// ErrNotACentre answers replica calls on a single-centre deployment.
var ErrNotACentre = apierr.New(apierr.FailedPrecondition, "REPLICA_NOT_A_CENTRE",
	"this deployment is a single centre (sync.centre is not set): it applies no replica")

// replicaEvent is the envelope of an identity CHANGES event.
type replicaEvent struct {
	Entity  string          `json:"entity"`
	Op      string          `json:"op"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
	Replica json.RawMessage `json:"replica"`
	// Actor: who made the change at its centre ("user:<id>", ...); the
	// audit of level 1's disable, enable and password requirement at the
	// home names them.
	Actor string `json:"actor"`
}

// replicaBatch remembers what the changes before the current one in a
// batch will have written (the store sees them only at commit), and what
// the batch read of the store (each object read once per batch).
type replicaBatch struct {
	orgs   map[string]string // org id -> path (as far as homes go)
	users  map[string]string // user id -> org id
	groups map[string]string // group id -> org id
	apps   map[string]string // app id -> home
	// unopened counts the sealed values that do not open here
	// (arrivedSealed): kept as they came; ownValues those that open with
	// this centre's own data keys: left out.
	unopened, ownValues int
	// members: person id -> the groups they are in as the batch leaves
	// them (replicaGroupsOf).
	members map[string]map[string]bool
	// unset: group id -> the members a resend's first part of the group
	// removed in this batch (its later parts, adding them back, say so).
	unset map[string]map[string]bool
}

// unopenedWarnEvery is how often at most the sealed values of one origin
// that do not open here are warned of (centres with rings of their own
// are a configuration, not an incident).
const unopenedWarnEvery = time.Hour

// unopenedWarnings counts, per origin, the sealed values that did not
// open here since the last warning.
type unopenedWarnings struct {
	mu   sync.Mutex
	last map[string]time.Time
	n    map[string]int
}

// warnUnopened counts n values of origin that do not open here and warns
// of them at most once every unopenedWarnEvery per origin.
func (s *Service) warnUnopened(origin string, n int) {
	if n == 0 {
		return
	}
	u := &s.unopened
	u.mu.Lock()
	if u.last == nil {
		u.last, u.n = map[string]time.Time{}, map[string]int{}
	}
	u.n[origin] += n
	now := s.now()
	due := u.last[origin].IsZero() || now.Sub(u.last[origin]) >= unopenedWarnEvery
	total := u.n[origin]
	if due {
		u.last[origin], u.n[origin] = now, 0
	}
	u.mu.Unlock()
	if due {
		s.log.Warn("sealed values of another centre do not open with this centre's key ring: kept as they came; "+
			"the fingerprint and authenticator app logins of those people, and their ID and phone numbers, "+
			"work at their home centre only (docs/operators.md, \"Sealed data between centres\"; "+
			"warned at most hourly per centre)", zap.String("origin", origin), zap.Int("values", total))
	}
}

// arrivedSealed is value, sealed at another centre, sealed again with this
// centre's data key (keys.go, resealArrived), or as it came when it does
// not open here (counted in b).
func (s *Service) arrivedSealed(value string, aad []byte, keys map[string]string, b *replicaBatch) string {
	out, _ := s.arrivedSealedOwn(value, aad, keys, false, b)
	return out
}

// arrivedSealedOwn is arrivedSealed for a value whose aad binds no person
// when unbound: own reports a value that opens with this centre's own
// data keys (left out).
func (s *Service) arrivedSealedOwn(value string, aad []byte, keys map[string]string, unbound bool, b *replicaBatch) (out string, own bool) {
	out, err := s.keys.resealArrived(value, aad, keys, unbound)
	switch {
	case errors.Is(err, errOwnValue):
		b.ownValues++
		return "", true
	case err != nil:
		b.unopened++
	}
	return out, false
}

// ApplyReplica applies the identity changes of the centre origin (one
// batch of a sync link, in the origin's order): one outcome per change.
func (s *Service) ApplyReplica(ctx context.Context, origin string, cs []ReplicaChange) ([]ReplicaOutcome, error) {
	out, _, err := s.ApplyReplicaObjects(ctx, origin, cs)
	return out, err
}

// ReplicaObject is what ApplyReplicaObjects did with one object of a
// change: APPLIED or CONFLICT.
type ReplicaObject struct {
	// Change is the index of the change.
	Change int
	// Key names the object: "<kind>:<id>", a part of it
	// ("group:<id>/member:<user id>", "<kind>:<id>/place": a move), or
	// "<kind>:<id>/*": the object whole with its parts, as an import or
	// resend writes it, or its deletion (sync's ObjectOutcome.Key).
	Key     string
	Outcome ReplicaOutcome
}

// ApplyReplicaObjects is ApplyReplica answering besides what it did with
// each object, so that sync records each one refused (a change of an
// import or resend writes many) and resolves the conflicts that one
// applied settles.
func (s *Service) ApplyReplicaObjects(ctx context.Context, origin string, cs []ReplicaChange) ([]ReplicaOutcome, []ReplicaObject, error) {
	if s.homes == nil {
		return nil, nil, ErrNotACentre
	}
	if origin == s.homes.Self {
		return nil, nil, badRequest("a centre does not apply its own changes as a replica")
	}
	// what it writes is the origin's doing (trial10 L3: records of a
	// refusal named no actor)
	c := *caller.From(ctx)
	c.Centre = origin
	ctx = caller.With(ctx, &c)
	out := make([]ReplicaOutcome, len(cs))
	b := &replicaBatch{orgs: map[string]string{}, users: map[string]string{}, groups: map[string]string{}, apps: map[string]string{},
		members: map[string]map[string]bool{}}
	var (
		ws    []ReplicaWrite
		pos   []int
		whole []bool   // the write is of an import or resend
		subj  []string // the subject of its change
		objs  []ReplicaObject
	)
	for i, c := range cs {
		sub, imported := expandImported(c)
		if !imported {
			sub = []ReplicaChange{c}
		}
		for _, c := range sub {
			w, oc, err := s.replicaWrite(ctx, origin, c, b)
			if err != nil {
				return nil, nil, err
			}
			if oc != "" {
				out[i] = mergeOutcome(out[i], oc)
				if oc == ReplicaConflict && w.Kind != "" {
					objs = append(objs, ReplicaObject{Change: i, Key: replicaKey(w, c.Subject, false), Outcome: oc})
				}
				if oc == ReplicaNotHomed {
					// the deletion of an object not held here (left out
					// as a conflict): nothing left to apply of it
					for _, k := range goneKeys(c) {
						objs = append(objs, ReplicaObject{Change: i, Key: k, Outcome: ReplicaApplied})
					}
				}
				continue
			}
			w.Event = s.replicaLocalEvent(origin, c)
			if w.Kind == "lock" && w.CentreDisable != nil && w.CentreDisable.Centre != "" {
				// this centre's state time of level 1's disable in the
				// local event, which its ticket component reads for a
				// change applied as a replica (whose own state_at is the
				// origin's and is left out): a login racing the disable
				// is refused as for a disable at home (ADR 0047; review
				// sec32c L2)
				w.setEventData(LocalStateAtKey, w.CentreDisable.At.UTC(), false)
			}
			if w.Kind == "user" && w.User != nil {
				w.KeptInOrg(w.User.OrgID) // the org it is applied in
			}
			ws, pos, whole, subj = append(ws, w), append(pos, i), append(whole, imported), append(subj, c.Subject)
		}
		if imported && len(sub) == 0 {
			out[i] = ReplicaIgnored
		}
	}
	s.warnUnopened(origin, b.unopened)
	if b.ownValues > 0 {
		s.log.Warn("sealed values of another centre open with this centre's own data keys: left out (values sealed here "+
			"sent back as another person's, or centres made from one copy of a database)",
			zap.String("origin", origin), zap.Int("values", b.ownValues))
	}
	if len(ws) == 0 {
		return out, objs, nil
	}
	res, err := s.store.ApplyReplica(ctx, ws)
	if err != nil {
		return nil, nil, err
	}
	s.kick()
	for j, oc := range res {
		if oc == ReplicaApplied && ws[j].Kind == "lock" && ws[j].MustChange {
			s.ForgetUser(ws[j].ID)
			s.mustChangeApplied(ctx, origin, ws[j].ID, ws[j].MustChangeBy)
		}
	}
	for j, oc := range res {
		was := oc
		switch oc {
		case ReplicaReplayed:
			oc, was = ReplicaStale, ReplicaApplied
		case ReplicaReplayedConflict:
			oc, was = ReplicaStale, ReplicaConflict
		}
		out[pos[j]] = mergeOutcome(out[pos[j]], oc)
		switch w := ws[j]; was {
		case ReplicaApplied:
			objs = append(objs, ReplicaObject{Change: pos[j], Key: replicaKey(w, subj[j], whole[j] && wholeKinds[w.Kind] || w.Op == ReplicaDelete),
				Outcome: was})
			if w.Kind == "user" && w.Op == ReplicaDelete {
				var ev replicaEvent
				if decoded(cs[pos[j]].Payload, &ev) {
					for _, k := range personPartKeys(ev) {
						objs = append(objs, ReplicaObject{Change: pos[j], Key: k, Outcome: was})
					}
				}
			}
			if w.WithMembers {
				mo, err := s.memberOutcomes(ctx, w, pos[j])
				if err != nil {
					return nil, nil, err
				}
				objs = append(objs, mo...)
			}
		case ReplicaConflict:
			objs = append(objs, ReplicaObject{Change: pos[j], Key: replicaKey(w, subj[j], false), Outcome: was})
		}
		switch ws[j].Kind {
		case "admintokens", "user", "lock":
			s.ForgetUser(ws[j].ID)
		case "app":
			s.appAuth.Forget(ws[j].ID)
		}
	}
	return out, objs, nil
}

// wholeKinds are the kinds an import's or resend's upsert writes whole,
// with all their parts: not an org or a person (one held here keeps their
// place: a resend does not move them, review sec16 H1, sec17 N3) nor a
// group (its members are answered one by one: memberOutcomes).
var wholeKinds = map[string]bool{"finger": true, "totp": true, "link": true, "app": true}

// memberOutcomes answers, for a group written with the home's members
// (a resend's), each of them: APPLIED when a member here after the
// batch, else CONFLICT (refused for a separation-of-duty pair, or not
// held here: their own creation was a conflict). A member taken out by
// a later change of the batch is answered CONFLICT, which that change
// settles; one whose person is deleted later in the batch stays open
// (resolve it by hand).
func (s *Service) memberOutcomes(ctx context.Context, w ReplicaWrite, change int) ([]ReplicaObject, error) {
	g, err := s.store.GetGroup(ctx, w.ID)
	if isNotFound(err) {
		// deleted by a later change of the batch (the members are read
		// after the batch: review sec17 N4): nothing to answer of them
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(g.MemberIDs))
	for _, m := range g.MemberIDs {
		have[m] = true
	}
	out := make([]ReplicaObject, 0, len(w.HomeMembers))
	for _, m := range w.HomeMembers {
		oc := ReplicaApplied
		if !have[m] {
			oc = ReplicaConflict
		}
		out = append(out, ReplicaObject{Change: change, Key: "group:" + w.ID + "/member:" + m, Outcome: oc})
	}
	return out, nil
}

// goneKeys are the keys a deletion of an object not held here settles
// (ReplicaObject.Key, whole): a person's deletion also their fingers and
// authenticator app.
func goneKeys(c ReplicaChange) []string {
	var ev replicaEvent
	if !decoded(c.Payload, &ev) || !keyID(ev.Entity, ev.ID) {
		return nil
	}
	switch ev.Entity + "." + ev.Op {
	case "user.deleted":
		return append([]string{"user:" + ev.ID + "/*", "finger:" + ev.ID + "/*", "totp:" + ev.ID + "/*"}, personPartKeys(ev)...)
	case "org.deleted", "group.deleted", "link.deleted", "app.deleted":
		return []string{ev.Entity + ":" + ev.ID + "/*"}
	case "user.totp_removed":
		return []string{"totp:" + ev.ID + "/*"}
	case "user.finger_deleted":
		var d struct {
			Position int `json:"position"`
		}
		if decoded(ev.Data, &d) && d.Position > 0 {
			return []string{"finger:" + fingerID(ev.ID, d.Position) + "/*"}
		}
	}
	return nil
}

// personPartKeys are the keys a person's deletion (ev) settles besides
// the person's own: their account links and their memberships, as the
// home named them (deletedParts; none from a centre that did not).
func personPartKeys(ev replicaEvent) []string {
	var d struct {
		Links  []string `json:"links"`
		Groups []string `json:"groups"`
	}
	if !decoded(ev.Data, &d) || !keyID("user", ev.ID) {
		return nil
	}
	out := make([]string, 0, len(d.Links)+len(d.Groups))
	for _, l := range d.Links {
		if keyID("link", l) {
			out = append(out, "link:"+l+"/*")
		}
	}
	for _, g := range d.Groups {
		if keyID("group", g) {
			out = append(out, "group:"+g+"/member:"+ev.ID)
		}
	}
	return out
}

// keyID reports whether id, of an object of kind, can stand in a key:
// never "*", and "/" only where a centre makes it (a finger's
// "<user>/<position>", a certificate's "<origin>/<digest>"), so that a
// peer's id cannot name a part or the whole of another of its objects
// (review sec16 L2, sec17).
func keyID(kind, id string) bool {
	switch {
	case id == "" || strings.Contains(id, "*"):
		return false
	case kind == "finger" || kind == "cert":
		return true
	}
	return !strings.Contains(id, "/")
}

// replicaKey is the key of what w, written for a change of subject,
// writes (ReplicaObject.Key): whole, the object with all its parts; else
// a membership's member or a move's place when the subject says so.
func replicaKey(w ReplicaWrite, subject string, whole bool) string {
	if !keyID(w.Kind, w.ID) || strings.Contains(w.Member, "/") {
		return "" // not an id a centre makes: names nothing (review sec16 L2)
	}
	key := w.Kind + ":" + w.ID
	if whole {
		return key + "/*"
	}
	switch subject[strings.LastIndexByte(subject, '.')+1:] {
	case "member_added", "member_removed":
		return key + "/member:" + w.Member
	case "moved":
		return key + "/place"
	}
	return key
}

// mergeOutcome is the outcome of a change that wrote several objects (an
// import's): APPLIED when any was, else the first.
func mergeOutcome(prev, oc ReplicaOutcome) ReplicaOutcome {
	if prev == "" || oc == ReplicaApplied {
		return oc
	}
	return prev
}

// replicaWrite turns one change into a store write, or answers its outcome
// (NOT_HOMED, IGNORED) at once.
func (s *Service) replicaWrite(ctx context.Context, origin string, c ReplicaChange, b *replicaBatch) (ReplicaWrite, ReplicaOutcome, error) {
	var ev replicaEvent
	if !decoded(c.Payload, &ev) || ev.ID == "" || !strings.HasPrefix(c.Subject, changesSubjectPrefix+ev.Entity+".") {
		return ReplicaWrite{}, ReplicaIgnored, nil
	}
	w := ReplicaWrite{Kind: ev.Entity, ID: ev.ID, Origin: origin, Version: c.Version, EventID: c.EventID, Op: ReplicaUpsert}
	var data struct {
		ParentID string `json:"parent_id"`
		UserID   string `json:"user_id"`
	}
	_ = json.Unmarshal(ev.Data, &data)
	hasRep := len(ev.Replica) > 0 && string(ev.Replica) != "null"
	homed := func(ok bool, err error) (ReplicaWrite, ReplicaOutcome, error) {
		switch {
		case err != nil:
			return ReplicaWrite{}, "", err
		case !ok:
			return ReplicaWrite{}, ReplicaNotHomed, nil
		}
		return w, "", nil
	}
	switch {
	case ev.Entity == "org" && ev.Op == "moved":
		w.Op, w.Org = ReplicaMove, &Org{ID: ev.ID, ParentID: data.ParentID}
		var r orgRecord
		if hasRep && decoded(ev.Replica, &r) {
			w.Org.UpdatedAt = r.UpdatedAt
		}
		path, ok, err := s.replicaOrgPath(ctx, ev.ID, b)
		if err != nil || !ok || s.homes.HomeOfPath(path) != origin {
			return homed(false, err)
		}
		ppath, ok, err := s.replicaOrgPath(ctx, data.ParentID, b)
		if err != nil || !ok || s.homes.HomeOfPath(ppath+ev.ID+"/") != origin {
			return homed(false, err)
		}
		refused, err := s.replicaSeparation(ctx, origin, SeparationQuestion{MoveOrg: ev.ID, JoinOrg: data.ParentID}, &w)
		switch {
		case err != nil:
			return ReplicaWrite{}, "", err
		case refused:
			w.Op = ReplicaRefuse
			return w, "", nil
		}
		b.orgs[ev.ID] = ppath + ev.ID + "/"
		return w, "", nil
	case ev.Entity == "org" && hasRep:
		var r orgRecord
		if !decoded(ev.Replica, &r) {
			return w, ReplicaIgnored, nil
		}
		w.Org = &Org{ID: ev.ID, Code: r.Code, Name: r.Name, ParentID: r.ParentID, Status: r.Status, CreatedAt: r.CreatedAt,
			UpdatedAt: r.UpdatedAt}
		path, ok, err := s.replicaOrgPath(ctx, ev.ID, b)
		if err != nil {
			return homed(false, err)
		}
		if !ok {
			ppath, pok, err := s.replicaOrgPath(ctx, r.ParentID, b)
			switch {
			case err != nil:
				return homed(false, err)
			case pok:
				path = ppath + ev.ID + "/"
			case s.homes.Subtrees[ev.ID] == origin:
				// The top of the origin's subtree, under a root this
				// centre does not hold: it hangs under this centre's root.
				w.AttachToRoot, path = true, "/"+ev.ID+"/"
			default:
				return s.orphanOutcome(ctx, w, origin, r.ParentID)
			}
		}
		if s.homes.HomeOfPath(path) != origin {
			return homed(false, nil)
		}
		b.orgs[ev.ID] = path
		return w, "", nil
	case ev.Entity == "user" && (ev.Op == "finger_enrolled" || ev.Op == "finger_deleted"):
		var f fingerRecord
		switch {
		case ev.Op == "finger_deleted":
			var d struct {
				Position int `json:"position"`
			}
			if !decoded(ev.Data, &d) || d.Position == 0 {
				return w, ReplicaIgnored, nil
			}
			w.Op, f.Position = ReplicaDelete, d.Position
		case !hasRep || !decoded(ev.Replica, &f) || f.Position == 0 || f.TemplateEnc == "":
			return w, ReplicaIgnored, nil
		}
		w.Kind, w.ID = "finger", fingerID(ev.ID, f.Position)
		if w.Op == ReplicaUpsert {
			f.TemplateEnc = s.arrivedSealed(f.TemplateEnc, fingerAAD(ev.ID, f.Position), f.Keys, b)
		}
		w.Finger = &StoredFinger{Finger: Finger{UserID: ev.ID, Position: f.Position, Quality: f.Quality, Format: f.Format,
			Minutiae: f.Minutiae, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt}, TemplateEnc: f.TemplateEnc}
		return homed(s.replicaUserOf(ctx, origin, ev.ID, b))
	case ev.Entity == "user" && (ev.Op == "totp_enrolled" || ev.Op == "totp_removed"):
		// An authenticator app set up or removed at the person's home
		// centre: here too a password login asks for its code.
		w.Kind, w.ID, w.TOTP = "totp", ev.ID, &UserTOTP{UserID: ev.ID}
		if ev.Op == "totp_removed" {
			w.Op = ReplicaDelete
		} else {
			var r totpRecord
			if !hasRep || !decoded(ev.Replica, &r) || r.SecretEnc == "" {
				return w, ReplicaIgnored, nil
			}
			w.TOTP.SecretEnc = s.arrivedSealed(r.SecretEnc, []byte(aadTOTPSecret+ev.ID), r.Keys, b)
			w.TOTP.LastStep, w.TOTP.CreatedAt = r.LastStep, r.CreatedAt
		}
		return homed(s.replicaUserOf(ctx, origin, ev.ID, b))
	case ev.Entity == "user" && (ev.Op == "certificate_bound" || ev.Op == "certificate_unbound"):
		// A certificate bound or unbound at the person's home centre:
		// here too it signs them in, or no longer.
		var d struct {
			SHA256 string `json:"sha256"`
		}
		if !decoded(ev.Data, &d) || len(d.SHA256) != 64 {
			return w, ReplicaIgnored, nil
		}
		// Versions per origin and thumbprint: centres number their changes
		// each on their own.
		w.Kind, w.ID, w.Cert = "cert", origin+"/"+d.SHA256, &UserCert{SHA256: d.SHA256, UserID: ev.ID}
		if ev.Op == "certificate_unbound" {
			w.Op = ReplicaDelete
		} else {
			var r certRecord
			if !hasRep || !decoded(ev.Replica, &r) {
				return w, ReplicaIgnored, nil
			}
			w.Cert.NotAfter, w.Cert.CreatedAt = r.NotAfter, r.CreatedAt
		}
		return homed(s.replicaUserOf(ctx, origin, ev.ID, b))
	case ev.Entity == "user" && ev.Op == "admin_tokens_revoked":
		// The person was appointed at their home centre, which revoked
		// every administrator token they held there: those they hold here
		// go too, or one kept from an earlier appointment, powerless since
		// that role was revoked, would work again with the new one (review
		// sec10 M2).
		var r tokensRecord
		if !hasRep || !decoded(ev.Replica, &r) || r.NotBefore.IsZero() {
			return w, ReplicaIgnored, nil
		}
		// The tokens are dated by this centre's clock, the revocation by
		// the home's: those issued up to tokensClockAllowance after it go
		// too (a token from just before the appointment would otherwise
		// survive a clock running ahead; review sec12 #3). A login here
		// in that moment is asked again.
		w.Kind, w.TokensBefore = "admintokens", r.NotBefore.Add(tokensClockAllowance)
		org, held, err := s.replicaPersonOrg(ctx, ev.ID, b)
		if err != nil || !held {
			return homed(false, err)
		}
		// from the person's home, or from level 1, which appoints the
		// units' administrators of level-2 centres: its appointment of a
		// person of this centre revokes their tokens here too (a
		// revocation only takes away; review sec15 L1)
		if ok, err := s.replicaOrgHomed(ctx, origin, org, b); err != nil || !ok && origin != s.homes.Top() {
			return homed(ok, err)
		}
		// audited here as at the home (review sec12 #9), with the write
		// (review sec13 L3)
		var d struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		if d.Reason == "" {
			d.Reason = "APPOINTMENT"
		}
		w.Events = append(w.Events, s.audit(ctx, "admin.tokens_revoked", "user:"+ev.ID, org, "success", d.Reason, s.now(),
			map[string]string{"home_centre": origin}))
		return w, "", nil
	case ev.Entity == "user" && ev.Op == "deleted":
		// A person deleted at their home centre: the replica goes too (it
		// would still log in here).
		w.Op = ReplicaDelete
		ok, err := s.replicaUserOf(ctx, origin, ev.ID, b)
		if ok {
			delete(b.users, ev.ID)
		}
		return homed(ok, err)
	case ev.Entity == "user" && hasRep:
		var r userRecord
		if !decoded(ev.Replica, &r) {
			return w, ReplicaIgnored, nil
		}
		ok, err := s.replicaUserHomed(ctx, origin, ev.ID, r.OrgID, b)
		if err == nil && !ok {
			if _, held, perr := s.replicaOrgPath(ctx, r.OrgID, b); perr == nil && !held {
				ow, oc, oerr := s.orphanOutcome(ctx, w, origin, r.OrgID)
				if oerr != nil || ow.Op != ReplicaRefuse {
					return ow, oc, oerr
				}
				// A person held here, moved at home into an org left out
				// here: the change still applies in the org they are in
				// here, or a person disabled, locked or given a new
				// password at home would keep signing in here with the
				// old (review sec13 M4).
				prev, perr := s.store.UserOrg(ctx, ev.ID)
				if isNotFound(perr) {
					return ow, oc, nil
				}
				if perr != nil {
					return ReplicaWrite{}, "", perr
				}
				if ok, err = s.replicaOrgHomed(ctx, origin, prev, b); err != nil || !ok {
					return ow, oc, err
				}
				s.log.Warn("a person moved at home into an org this centre left out (CONFLICT): the change applies in their org here",
					zap.String("user_id", ev.ID), zap.String("org_id", prev))
				r.OrgID = prev
			}
		}
		if err != nil || !ok {
			return homed(ok, err)
		}
		if prev, held, err := s.replicaPersonOrg(ctx, ev.ID, b); err != nil {
			return ReplicaWrite{}, "", err
		} else if held && prev != r.OrgID && s.separation != nil {
			groups, _, err := s.replicaGroupsOf(ctx, ev.ID, b)
			if err != nil {
				return ReplicaWrite{}, "", err
			}
			refused, err := s.replicaSeparation(ctx, origin, SeparationQuestion{Person: ev.ID, Groups: groups, Org: prev, JoinOrg: r.OrgID}, &w)
			if err != nil {
				return ReplicaWrite{}, "", err
			}
			if refused {
				r.OrgID = prev // the rest of the change applies, in their org here
			}
		}
		// A replica never carries the legacy system-administrator flag:
		// administration of this centre is granted here.
		w.User = &User{ID: ev.ID, LoginName: r.LoginName, DisplayName: r.DisplayName, IDType: r.IDType,
			IDNumberMask: r.IDNumberMask, PhoneMask: r.PhoneMask, Email: r.Email, OrgID: r.OrgID, Status: r.Status,
			FeatureCode: r.FeatureCode, MustChange: r.MustChange, NeverExpires: r.NeverExpires, CannotChange: r.CannotChange,
			PasswordOnly: r.PasswordOnly, MinAuthLevel: r.MinAuthLevel, LockedUntil: r.LockedUntil, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
			UserType: StoredUserType(r.UserType)}
		if r.Password != nil {
			w.WithPassword, w.User.PasswordHash, w.User.PasswordChangedAt = true, r.Password.Hash, r.Password.ChangedAt
			w.User.PasswordByOther = r.Password.ByOther
		}
		if r.Sealed != nil {
			var own1, own2 bool
			w.User.IDNumberEnc, own1 = s.arrivedSealedOwn(r.Sealed.IDNumberEnc, []byte(aadIDNumber), r.Sealed.Keys, true, b)
			w.User.PhoneEnc, own2 = s.arrivedSealedOwn(r.Sealed.PhoneEnc, []byte(aadPhone), r.Sealed.Keys, true, b)
			w.User.CentresKey = r.Sealed.CentresKey
			// a value sent back is left out: the stored ones stay
			// (review sec15 M4)
			w.WithSealed = !own1 && !own2
			if err := s.replicaIDCollision(ctx, origin, &w); err != nil {
				return ReplicaWrite{}, "", err
			}
		}
		w.Unlocked = ev.Op == "unlocked"
		b.users[ev.ID] = r.OrgID
		return w, "", nil
	case ev.Entity == "lock" && (ev.Op == "disabled" || ev.Op == "enabled"):
		return s.replicaDisableWrite(ctx, origin, w, ev, hasRep)
	case ev.Entity == "lock" && ev.Op == "must_change":
		return s.replicaMustChangeWrite(ctx, origin, w, ev, hasRep)
	case ev.Entity == "lock":
		return s.replicaLockWrite(ctx, w, ev, hasRep)
	case ev.Entity == "group" && (ev.Op == "member_added" || ev.Op == "member_removed"):
		w.Op, w.Member = ReplicaMemberAdd, data.UserID
		if ev.Op == "member_removed" {
			w.Op = ReplicaMemberRemove
		}
		org, ok, err := s.replicaGroupOrg(ctx, ev.ID, b)
		if err != nil || !ok {
			return homed(ok, err)
		}
		if ok, err = s.replicaOrgHomed(ctx, origin, org, b); err != nil || !ok {
			return homed(ok, err)
		}
		return w, "", s.replicaMembership(ctx, origin, ev.ID, &w, b)
	case ev.Entity == "group" && ev.Op == "deleted":
		// A group deleted at its home centre goes here too (its
		// memberships would still reach grants here).
		w.Op = ReplicaDelete
		org, ok, err := s.replicaGroupOrg(ctx, ev.ID, b)
		if err != nil || !ok {
			return homed(ok, err)
		}
		return homed(s.replicaOrgHomed(ctx, origin, org, b))
	case ev.Entity == "org" && ev.Op == "deleted":
		w.Op = ReplicaDelete
		return homed(s.replicaOrgHomed(ctx, origin, ev.ID, b))
	case ev.Entity == "group" && hasRep:
		var r groupRecord
		if !decoded(ev.Replica, &r) {
			return w, ReplicaIgnored, nil
		}
		w.Group = &Group{ID: ev.ID, Code: r.Code, Name: r.Name, OrgID: r.OrgID, CreatedAt: r.CreatedAt}
		if ok, err := s.replicaOrgHomed(ctx, origin, r.OrgID, b); err != nil || !ok {
			return homed(ok, err)
		}
		if org, ok, err := s.replicaGroupOrg(ctx, ev.ID, b); err != nil || ok && org != r.OrgID {
			if err == nil {
				ok, err = s.replicaOrgHomed(ctx, origin, org, b)
			}
			if err != nil || !ok {
				return homed(ok, err)
			}
		}
		b.groups[ev.ID] = r.OrgID
		if r.Members != nil {
			keep, added, removed, err := s.replicaMemberSet(ctx, origin, ev.ID, *r.Members, r.MembersAppend, &w, b)
			if err != nil {
				return ReplicaWrite{}, "", err
			}
			w.WithMembers, w.Members, w.MembersAppend, w.HomeMembers = true, keep, r.MembersAppend, *r.Members
			for _, m := range added {
				w.Events = append(w.Events, s.memberLocalEvent(origin, c.EventID, ev.ID, m, true))
			}
			for _, m := range removed {
				w.Events = append(w.Events, s.memberLocalEvent(origin, c.EventID, ev.ID, m, false))
			}
		}
		return w, "", nil
	case ev.Entity == "app" && ev.Op == "deleted":
		// An application deleted at its home centre: the replica goes too
		// (its App_ID and secret would still be accepted here).
		w.Op = ReplicaDelete
		ok, err := s.replicaAppOf(ctx, origin, ev.ID, b)
		if ok {
			delete(b.apps, ev.ID)
		}
		return homed(ok, err)
	case ev.Entity == "app" && hasRep:
		var r appRecord
		if !decoded(ev.Replica, &r) {
			return w, ReplicaIgnored, nil
		}
		if !knownNameRelease(r.NameRelease) {
			// Not a value this centre knows (a corrupt or newer peer's):
			// not stored as it came (review sec30b I4). legacy_ip_only is
			// a flag, re-checked at every call (it may have become unsafe
			// at home later, which the home does not refuse either).
			s.log.Warn("an application's replica names an unknown name_release: change ignored",
				zap.String("app_id", ev.ID), zap.String("origin", origin), zap.String("name_release", strconv.Quote(r.NameRelease[:min(len(r.NameRelease), 64)])))
			return w, ReplicaIgnored, nil
		}
		home, ok := b.apps[ev.ID]
		if !ok {
			a, err := s.store.GetApp(ctx, ev.ID)
			switch {
			case err == nil:
				home, ok = s.appHome(a), true
			case !isNotFound(err):
				return homed(false, err)
			}
		}
		if ok && home != origin {
			return homed(false, nil)
		}
		w.App = &App{ID: ev.ID, Type: r.Type, Code: r.Code, Name: r.Name, Status: r.Status, IPAllowList: r.IPAllowList,
			RateLimit: r.RateLimit, RateBurst: r.RateBurst, MaxConcurrent: r.MaxConcurrent, LegacyIPOnly: r.LegacyIPOnly, NameRelease: r.NameRelease, ClientCertSHA256: r.ClientCertSHA256, Home: origin,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, SecretLifetime: time.Duration(r.SecretLifetime) * time.Second,
			SecretIssuedAt: r.SecretIssuedAt, SecretExpires: r.SecretExpires, SigningKeys: r.SigningKeys,
			RequireSignatures: r.RequireSignatures, GrantedAPIs: r.GrantedAPIs, AccessFrom: r.AccessFrom, AccessUntil: r.AccessUntil,
			SecurityLevel: max(r.SecurityLevel, 1), MinAuthLevel: r.MinAuthLevel}
		if r.Secrets != nil {
			w.WithSecrets = true
			w.App.SecretHash, w.App.PrevSecretHash, w.App.PrevSecretExpires = r.Secrets.SecretHash, r.Secrets.PrevSecretHash,
				r.Secrets.PrevSecretExpires
		}
		b.apps[ev.ID] = origin
		return w, "", nil
	case ev.Entity == "link" && ev.Op == "deleted":
		// the link of the person the change names, no other (review
		// sec15 L7)
		w.Op, w.Link = ReplicaDelete, &AccountLink{ID: ev.ID, UserID: data.UserID}
		return homed(s.replicaUserOf(ctx, origin, data.UserID, b))
	case ev.Entity == "link" && hasRep:
		var r linkRecord
		if !decoded(ev.Replica, &r) {
			return w, ReplicaIgnored, nil
		}
		w.Link = &AccountLink{ID: ev.ID, UserID: r.UserID, AppID: r.AppID, AppAccountID: r.AppAccountID, Status: r.Status,
			CreatedAt: r.CreatedAt}
		return homed(s.replicaUserOf(ctx, origin, r.UserID, b))
	}
	return w, ReplicaIgnored, nil
}

// decoded reports whether raw is the JSON of v (a change this version
// cannot read is IGNORED, not an error).
func decoded(raw []byte, v any) bool { return json.Unmarshal(raw, v) == nil }

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// appHome is the centre an application is homed at: its Home, or this
// centre for one created here.
func (s *Service) appHome(a *App) string {
	if a.Home != "" {
		return a.Home
	}
	if s.homes == nil {
		return ""
	}
	return s.homes.Self
}

// replicaOrgPath is the path of org id as the batch leaves it (ok false:
// this centre does not hold it).
func (s *Service) replicaOrgPath(ctx context.Context, id string, b *replicaBatch) (string, bool, error) {
	if id == "" {
		return "", false, nil
	}
	if p, ok := b.orgs[id]; ok {
		return p, true, nil
	}
	o, err := s.store.GetOrg(ctx, id)
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	b.orgs[id] = o.Path // read once per batch (a batch names a few orgs many times)
	return o.Path, true, nil
}

// orphanOutcome is the outcome of w, whose org orgID this centre does not
// hold: CONFLICT when the origin's change of that org was left out here (a
// collision: what is in it collides with it, and is shown to the operator
// as sync's skipped changes; trial9 D3), else NOT_HOMED (an org that is
// not the origin's to send: a level-2 centre's own root).
func (s *Service) orphanOutcome(ctx context.Context, w ReplicaWrite, origin, orgID string) (ReplicaWrite, ReplicaOutcome, error) {
	if orgID == "" {
		return w, ReplicaNotHomed, nil
	}
	from, ok, err := s.store.ReplicaOrigin(ctx, "org", orgID)
	switch {
	case err != nil:
		return ReplicaWrite{}, "", err
	case ok && from == origin:
		// to the store, which records its version (and answers a replay
		// STALE) and CONFLICT (review sec13 M3, L1)
		w.Op = ReplicaRefuse
		return w, "", nil
	}
	return w, ReplicaNotHomed, nil
}

// replicaOrgHomed reports whether org id is held here as origin's.
func (s *Service) replicaOrgHomed(ctx context.Context, origin, id string, b *replicaBatch) (bool, error) {
	p, ok, err := s.replicaOrgPath(ctx, id, b)
	if err != nil || !ok {
		return false, err
	}
	return s.homes.HomeOfPath(p) == origin, nil
}

// replicaUserHomed: user id (now in org orgID) is origin's, and so was its
// org here before the change, if this centre holds it.
func (s *Service) replicaUserHomed(ctx context.Context, origin, id, orgID string, b *replicaBatch) (bool, error) {
	if ok, err := s.replicaOrgHomed(ctx, origin, orgID, b); err != nil || !ok {
		return false, err
	}
	prev, held, err := s.replicaPersonOrg(ctx, id, b)
	if err != nil || !held || prev == orgID {
		return err == nil, err
	}
	return s.replicaOrgHomed(ctx, origin, prev, b)
}

// replicaUserOf: user id is held here as origin's (for its account links).
func (s *Service) replicaUserOf(ctx context.Context, origin, id string, b *replicaBatch) (bool, error) {
	org, held, err := s.replicaPersonOrg(ctx, id, b)
	if err != nil || !held {
		return false, err
	}
	return s.replicaOrgHomed(ctx, origin, org, b)
}

// replicaAppOf reports whether application id is held here as a replica
// of origin (false: not held here, or homed elsewhere).
func (s *Service) replicaAppOf(ctx context.Context, origin, id string, b *replicaBatch) (bool, error) {
	home, ok := b.apps[id]
	if !ok {
		a, err := s.store.GetApp(ctx, id)
		if isNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		home = s.appHome(a)
		b.apps[id] = home
	}
	return home == origin, nil
}

// replicaGroupOrg is the org of group id (ok false: not held here).
func (s *Service) replicaGroupOrg(ctx context.Context, id string, b *replicaBatch) (string, bool, error) {
	if org, ok := b.groups[id]; ok {
		return org, true, nil
	}
	g, err := s.store.GetGroup(ctx, id)
	if isNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	b.groups[id] = g.OrgID
	return g.OrgID, true, nil
}

// ---- digest ----

// ReplicaTableDigest is the digest of the rows of one identity table that
// are homed at one centre.
type ReplicaTableDigest struct {
	Table  string
	Rows   int64
	SHA256 string
}

// ReplicaDigest returns a digest per table (orgs, users, user_fingers,
// groups, group_members, apps, account_links) of the rows homed at centre home, as
// this centre's settings see it, over what every centre holding them holds
// alike: not the sealed personal data nor the fingerprint templates (each
// centre seals them with its own data keys; the masked copy and the
// finger's description and times are compared),
// the legacy administrator flag, the login gate, nor the parent of the top
// of a subtree (each centre has its own root). Equal digests at two
// centres: equal replicas.
func (s *Service) ReplicaDigest(ctx context.Context, home string) ([]ReplicaTableDigest, error) {
	if s.homes == nil {
		return nil, ErrNotACentre
	}
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	tables := map[string][]string{}
	add := func(table string, f ...any) {
		parts := make([]string, len(f))
		for i, v := range f {
			parts[i] = fmt.Sprint(v)
		}
		tables[table] = append(tables[table], strings.Join(parts, "\x1f"))
	}
	orgs := map[string]bool{}
	if err := eachPage(ctx, func(p Page) ([]*Org, string, error) { return s.store.ListOrgs(ctx, OrgFilter{}, p) }, func(o *Org) {
		if s.homes.HomeOfPath(o.Path) == home {
			orgs[o.ID] = true
		}
	}); err != nil {
		return nil, err
	}
	if err := eachPage(ctx, func(p Page) ([]*Org, string, error) { return s.store.ListOrgs(ctx, OrgFilter{}, p) }, func(o *Org) {
		if orgs[o.ID] {
			parent := ""
			if orgs[o.ParentID] {
				parent = o.ParentID
			}
			add("orgs", o.ID, o.Code, o.Name, int(o.Status), parent, ms(o.CreatedAt), ms(o.UpdatedAt))
		}
	}); err != nil {
		return nil, err
	}
	users := map[string]bool{}
	if err := eachPage(ctx, func(p Page) ([]*User, string, error) { return s.store.ListUsers(ctx, UserFilter{}, p) }, func(u *User) {
		if orgs[u.OrgID] {
			users[u.ID] = true
			row := []any{u.ID, u.LoginName, u.DisplayName, int(u.IDType), u.IDNumberMask, u.PhoneMask, u.Email, u.OrgID,
				int(u.Status), u.FeatureCode, u.MustChange, u.NeverExpires, u.CannotChange, u.PasswordOnly, u.PasswordHash,
				ms(u.PasswordChangedAt), ms(u.LockedUntil), ms(u.CreatedAt), ms(u.UpdatedAt)}
			if u.MinAuthLevel > 0 {
				// Only when set: the row of a centre of an older version.
				row = append(row, "L"+strconv.Itoa(u.MinAuthLevel))
			}
			if u.UserType.Norm() == UserTypeUnit {
				// Only for a unit: a person's row as before.
				row = append(row, "T"+strconv.Itoa(int(UserTypeUnit)))
			}
			add("users", row...)
		}
	}); err != nil {
		return nil, err
	}
	// The fingers of those people (not their templates: sealed with each
	// centre's own data keys).
	userIDs := make([]string, 0, len(users))
	for id := range users {
		userIDs = append(userIDs, id)
	}
	slices.Sort(userIDs)
	for _, id := range userIDs {
		fs, err := s.store.ListFingers(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			add("user_fingers", f.UserID, f.Position, f.Quality, f.Format, f.Minutiae, ms(f.CreatedAt), ms(f.UpdatedAt))
		}
	}
	var groups []string
	if err := eachPage(ctx, func(p Page) ([]*Group, string, error) { return s.store.ListGroups(ctx, GroupFilter{}, p) }, func(g *Group) {
		if orgs[g.OrgID] {
			groups = append(groups, g.ID)
			add("groups", g.ID, g.Code, g.Name, g.OrgID, ms(g.CreatedAt))
		}
	}); err != nil {
		return nil, err
	}
	for _, id := range groups {
		g, err := s.store.GetGroup(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, m := range g.MemberIDs {
			add("group_members", id, m)
		}
	}
	if err := eachPage(ctx, func(p Page) ([]*App, string, error) { return s.store.ListApps(ctx, AppFilter{}, p) }, func(a *App) {
		if s.appHome(a) == home {
			row := []any{a.ID, a.Type, a.Code, a.Name, int(a.Status), strings.Join(a.IPAllowList, ","), a.RateLimit, a.RateBurst,
				a.SecretHash, a.PrevSecretHash, ms(a.PrevSecretExpires), a.ClientCertSHA256, ms(a.CreatedAt), ms(a.UpdatedAt),
				int64(a.SecretLifetime / time.Second), ms(a.SecretExpires), signingKeysDigest(a.SigningKeys), a.RequireSignatures}
			if len(a.GrantedAPIs) > 0 || !a.AccessFrom.IsZero() || !a.AccessUntil.IsZero() {
				// Only when set: an application without grants or a period
				// has the row of a centre of an older version.
				row = append(row, strings.Join(a.GrantedAPIs, ","), ms(a.AccessFrom), ms(a.AccessUntil))
			}
			if a.SecurityLevel > 1 {
				row = append(row, "A"+strconv.Itoa(a.SecurityLevel))
			}
			if a.MinAuthLevel > 1 {
				row = append(row, "L"+strconv.Itoa(a.MinAuthLevel))
			}
			if a.MaxConcurrent > 0 {
				row = append(row, "C"+strconv.Itoa(a.MaxConcurrent))
			}
			if a.LegacyIPOnly {
				row = append(row, "IP")
			}
			if a.NameRelease != "" {
				row = append(row, "N"+a.NameRelease)
			}
			add("apps", row...)
		}
	}); err != nil {
		return nil, err
	}
	if err := eachPage(ctx, func(p Page) ([]*AccountLink, string, error) {
		return s.store.ListLinks(ctx, LinkFilter{}, p)
	}, func(l *AccountLink) {
		if users[l.UserID] {
			add("account_links", l.ID, l.UserID, l.AppID, l.AppAccountID, int(l.Status), ms(l.CreatedAt))
		}
	}); err != nil {
		return nil, err
	}
	var out []ReplicaTableDigest
	for _, t := range []string{"orgs", "users", "user_fingers", "groups", "group_members", "apps", "account_links"} {
		rows := tables[t]
		slices.Sort(rows)
		h := sha256.New()
		for _, r := range rows {
			h.Write([]byte(r))
			h.Write([]byte{'\n'})
		}
		out = append(out, ReplicaTableDigest{Table: t, Rows: int64(len(rows)), SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// eachPage calls fn for every item of a paged listing.
func eachPage[T any](ctx context.Context, list func(Page) ([]T, string, error), fn func(T)) error {
	token := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		items, next, err := list(Page{Size: 500, Token: token})
		if err != nil {
			return err
		}
		for _, it := range items {
			fn(it)
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// replicaChange builds a CHANGES event whose payload also carries rep, the
// object's state for other centres (see above).
func (s *Service) replicaChange(ctx context.Context, entity, op, id string, data, rep any) events.Event {
	return s.changeWith(ctx, entity, op, id, data, rep)
}

// lockedReplica is the replica part of u locked until lock.
func lockedReplica(u *User, lock time.Time) userRecord {
	after := *u
	after.LockedUntil = lock
	return userReplica(&after, false)
}

// movedReplica is the replica part of o moved under parentID at t.
func movedReplica(o *Org, parentID string, t time.Time) orgRecord {
	after := *o
	after.ParentID, after.UpdatedAt = parentID, t
	return orgReplica(&after)
}
