package identity

import (
	"context"
	"encoding/json"
	"time"

	"github.com/uias/uias/pkg/cache"
	"github.com/uias/uias/pkg/events"
)

// The user cache (Service.users) serves administrator reads (GetUser).
// Decisions that must see the stored state (Authenticate, lockout, every
// read-modify-write) read the store, never the cache.
//
// Coherence: every user write made through this instance drops the user
// (userCachingStore), and GetUser caches only what it read when nothing was
// dropped meanwhile (cache.TTL.PutIfCurrent). Writes made by another instance
// reach this one as CHANGES events (ForgetUser, wired by the binary to
// UserChangesSubject) or expire after the TTL.

// cachedUser is the user cache's entry: a user and when they enrolled an
// authenticator app (zero: none), both of which GetUser answers.
type cachedUser struct {
	User
	totpAt time.Time
}

// UserChangesSubject matches the CHANGES events of every user change.
const UserChangesSubject = changesSubjectPrefix + "user.>"

// userCachingStore is the Store with every user write dropping the user
// from the cache after it (whether it failed or not: a failed write may
// still have committed before the error reached us).
type userCachingStore struct {
	Store
	c      *cache.TTL[cachedUser]
	tokens *adminTokenCache
}

// forget drops a user from the user cache, then their administrator
// tokens from the token cache (in that order: adminTokenCache.put checks
// the user cache's generation).
func (s userCachingStore) forget(id string) {
	s.c.Drop(id)
	s.tokens.dropUser(id)
}

func (s userCachingStore) UpdateUser(ctx context.Context, u *User, evs []events.Event) error {
	defer s.forget(u.ID)
	return s.Store.UpdateUser(ctx, u, evs)
}

func (s userCachingStore) SetPassword(ctx context.Context, userID, hash string, changedAt time.Time, set PasswordSet, keep int, evs []events.Event) error {
	defer s.forget(userID)
	return s.Store.SetPassword(ctx, userID, hash, changedAt, set, keep, evs)
}

func (s userCachingStore) UpdateLoginGate(ctx context.Context, userID, source string, decide func(LoginGate) (LoginGateWrite, bool)) error {
	defer s.forget(userID)
	return s.Store.UpdateLoginGate(ctx, userID, source, decide)
}

// ReadLoginGate is a read of the store (the login gate is never cached):
// it drops nothing.
func (s userCachingStore) ReadLoginGate(ctx context.Context, userID, source string) (LoginGate, error) {
	return s.Store.ReadLoginGate(ctx, userID, source)
}

func (s userCachingStore) ReplacePasswordHash(ctx context.Context, userID, old, new string, evs []events.Event) error {
	defer s.forget(userID)
	return s.Store.ReplacePasswordHash(ctx, userID, old, new, evs)
}

func (s userCachingStore) FinishAppointment(ctx context.Context, a Appointment, now time.Time, evs []events.Event) (bool, error) {
	defer s.forget(a.UserID) // a legacy appointment clears the user's is_admin flag
	return s.Store.FinishAppointment(ctx, a, now, evs)
}

func (s userCachingStore) PutTOTP(ctx context.Context, t *UserTOTP, evs []events.Event) error {
	defer s.forget(t.UserID)
	return s.Store.PutTOTP(ctx, t, evs)
}

func (s userCachingStore) DeleteTOTP(ctx context.Context, userID string, evs []events.Event) error {
	defer s.forget(userID)
	return s.Store.DeleteTOTP(ctx, userID, evs)
}

// ForgetUser drops a user from this instance's caches.
func (s *Service) ForgetUser(id string) {
	s.users.Drop(id)
	s.adminTokens.dropUser(id)
}

// ForgetChangedUser is ForgetUser for the payload of a CHANGES event on
// UserChangesSubject; a payload without an id is ignored.
func (s *Service) ForgetChangedUser(payload []byte) {
	var ev struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(payload, &ev) == nil && ev.ID != "" {
		s.ForgetUser(ev.ID)
	}
}
