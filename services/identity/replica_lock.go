package identity

import (
	"context"
	"encoding/json"
	"time"

	"github.com/uias/uias/pkg/events"
)

// Lockouts across centres.
//
// A person is locked after too many failed passwords at the centre where
// they failed (loginguard.go). The lock travels; the failure counters do
// not (each centre counts its own, so a guesser gets at most
// max_failures per centre before the lock holds at every centre that
// holds the person):
//
//   - a lock at the person's home centre is their "user.locked" change,
//     whose replica part carries locked_until to every centre holding them;
//   - a lock at a centre holding the person as a replica (level 1 holds
//     every bureau's people) is a "lock.locked" change of entity lock (id:
//     the person), which level 1 sends down to level 2 (applier.Down) and
//     the home applies to its row; it is no user change, so the person's
//     versions at their home are left alone;
//   - a replica keeps the later of its own lock and the home's: a later
//     change of the person at their home (made before the lock reached it)
//     does not unlock them. Only the home's "unlocked" (an administrator
//     unlocked them there) clears the lock everywhere.

// lockRecord is the replica part of a lock.locked change.
type lockRecord struct {
	LockedUntil time.Time `json:"locked_until"`
}

// lockChange is the change event of u locked until lock after failed
// passwords: the person's own change when u is homed here (or on a single
// centre), else a lock change for the home (see above).
//
// stateAt is the person's new state time here (User.StateChangedAt, ADR
// 0047), named in the change's data (state_at) for this centre's ticket
// component; another centre's reads its own (replicaLocalEvent drops it).
func (s *Service) lockChange(ctx context.Context, u *User, lock, stateAt time.Time, homedHere bool, reason string) events.Event {
	data := map[string]any{"locked_until": lock.UTC().Format(time.RFC3339), "reason": reason, "state_at": stateAt.UTC()}
	if homedHere {
		return s.replicaChange(ctx, "user", "locked", u.ID, data, lockedReplica(u, lock))
	}
	data["centre"] = s.homes.Self
	return s.changeWith(ctx, "lock", "locked", u.ID, data, lockRecord{LockedUntil: lock.UTC()})
}

// homedHere reports whether u is homed at this centre (true on a single
// centre): whether its lock is a change of the person.
func (s *Service) homedHere(ctx context.Context, u *User) bool {
	return s.homes == nil || s.ownUser(ctx, u) == nil
}

// replicaLockWrite turns a lock change of origin into the write of the
// person's lock, when this centre holds the person.
func (s *Service) replicaLockWrite(ctx context.Context, w ReplicaWrite, ev replicaEvent, hasRep bool) (ReplicaWrite, ReplicaOutcome, error) {
	until, ok := lockUntil(ev.Replica)
	if ev.Op != "locked" || !hasRep || !ok {
		return w, ReplicaIgnored, nil // not a lock this centre can apply: recorded as ignored
	}
	if _, err := s.store.GetUser(ctx, ev.ID); err != nil {
		if isNotFound(err) {
			return w, ReplicaNotHomed, nil
		}
		return w, "", err
	}
	w.Kind, w.Op, w.Lock = "lock", ReplicaUpsert, until
	return w, "", nil
}

// lockUntil reads the end of the lock a lock change carries; false when
// the change carries none or cannot be read.
func lockUntil(replica []byte) (time.Time, bool) {
	var r lockRecord
	if json.Unmarshal(replica, &r) != nil || r.LockedUntil.IsZero() {
		return time.Time{}, false
	}
	return r.LockedUntil, true
}
