package identity

import "context"

// One account per person (the provincial staff SSO standard: "以居民身份证号
// 为唯一标识", 一人一号). A person's ID type and number, when given, are
// one account's among the people of this centre: User.IDKey (Service.idKey)
// is unique in the store (users.id_key, migration 0050), and CreateUser and
// the import refuse a second account with ErrIDNumberTaken. Replicas of
// other centres' people carry no ID key: uniqueness holds per centre.
// identity.policy.unique_id_number false (Policy.SharedIDNumbers) lets
// several accounts share one ID number; their ID keys stay empty.

// ReplicaIDKeyPrefix starts the ID key of another centre's person held
// here as a replica, followed by the person's id: unique, never a real
// key (32 hex digits), so it claims no ID number; it only tells the start's
// backfill that the person was looked at.
const ReplicaIDKeyPrefix = "replica:"

// IDKeyPending is a person with an ID number and no ID key (BackfillIDKeys).
type IDKeyPending struct {
	UserID      string
	IDType      IDType
	IDNumberEnc string
	OrgPath     string
}

// IDKeySet gives UserID the ID key Key.
type IDKeySet struct {
	UserID, Key string
}

// IDKeyStore fills the ID keys of the people stored before them.
type IDKeyStore interface {
	// GetUserByIDKey returns the person whose ID key (User.IDKey) is key;
	// ErrNotFound when none (or key is "").
	GetUserByIDKey(ctx context.Context, key string) (*User, error)
	// UsersWithoutIDKey lists up to limit people with an ID number and
	// no ID key, ids above after, in id order.
	UsersWithoutIDKey(ctx context.Context, after string, limit int) ([]IDKeyPending, error)
	// SetIDKeys gives each person their key unless they have one; those
	// whose key another person holds (or an earlier entry of sets) keep
	// none and are returned.
	SetIDKeys(ctx context.Context, sets []IDKeySet) (taken []string, err error)
	// UsersWithoutCentresKey lists up to limit people with an ID number
	// and no centres key (uniq.go), ids above after, in id order.
	UsersWithoutCentresKey(ctx context.Context, after string, limit int) ([]IDKeyPending, error)
	// SetCentresKeys gives each person their centres key unless they
	// have one.
	SetCentresKeys(ctx context.Context, sets []IDKeySet) error
}
