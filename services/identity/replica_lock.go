package identity

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

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

// homedPerson reads person id for a level-1 change this centre applies as
// their home: nil with NOT_HOMED when it does not hold them or is not
// their home, nil with the error when the store fails.
func (s *Service) homedPerson(ctx context.Context, id string) (*User, ReplicaOutcome, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return nil, ReplicaNotHomed, nil
		}
		return nil, "", err
	}
	if !s.homedHere(ctx, u) {
		return nil, ReplicaNotHomed, nil
	}
	return u, "", nil
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

// Level 1 asks a level-2 person to change their password (ADR 0048).
//
// Level 1 manages every user (004 §2.1.1): besides locking a person homed
// at a level-2 centre (above), an administrator there may require that
// person to change their password at their next sign-in (UpdateUser with
// update_mask ["must_change_password"] and must_change_password true).
// The password itself stays with the home (a password never travels from
// level 1 down): level 1 writes a "lock.must_change" change of entity
// lock (id: the person), which goes down with the lock changes
// (applier.Down); the home sets the person's must_change_password (a write
// kept to its replica version, so a replay sets nothing again) and then
// writes it as its own change of the person (user.updated, audited with
// detail.home_centre naming level 1), which comes back up, so that every
// centre holding the person shows and applies it. Only a new password
// clears it, at the home: level 1 clears nothing (HOME_CENTRE_ELSEWHERE).

// mustChangeRecord is the replica part of a lock.must_change change.
type mustChangeRecord struct {
	MustChange bool `json:"must_change_password"`
}

// levelOneAsksChange reports whether up, refused at this centre because u
// is homed at another, is level 1 requiring the person to change their
// password: the only write of a level-2 person's record level 1 makes.
func (s *Service) levelOneAsksChange(ctx context.Context, u *User, up UserUpdate) bool {
	return s.homes != nil && s.homes.Level == 1 && up.MustChange && len(up.Mask) == 1 &&
		up.Mask[0] == "must_change_password" && !s.homedHere(ctx, u)
}

// mustChangeHeldReplica writes level 1's requirement that person u,
// homed at a level-2 centre, change their password: audited here
// (user.update, detail.centre this centre, detail.home_centre the home)
// and sent to the home as a lock.must_change change in one transaction.
// Level 1's copy of the person is set in the same transaction (its
// sign-ins ask for the change at once); the answer is the person as
// stored after it.
func (s *Service) mustChangeHeldReplica(ctx context.Context, u *User, start time.Time) (*User, error) {
	if u.CannotChange {
		// they could sign in nowhere: the change form refuses them
		return nil, badField("must_change_password", "a person who may not change their own password "+
			"(user_cannot_change_password) cannot be required to change it at the next login: they could not sign in; "+
			"their home centre may let them change it")
	}
	home, err := s.homeOfUser(ctx, u)
	if err != nil {
		return nil, err
	}
	detail := userChangeDetail(u, map[string]any{"must_change_password": true, "centre": s.homes.Self, "home_centre": home})
	data := map[string]any{"must_change_password": true, "centre": s.homes.Self, "reason": "ADMIN_REQUIRED"}
	// Written on level 1's copy of the person at once, so that level 1,
	// which checks their password itself, sends them to the change form
	// while the home's change has not come back (review sec32c L1); the
	// home's later change of the person (its new password) clears it
	// through the replica's upsert.
	err = s.write(ctx, func(evs []events.Event) error { return s.store.SetMustChange(ctx, u.ID, evs) },
		s.changeWith(ctx, "lock", "must_change", u.ID, data, mustChangeRecord{MustChange: true}),
		s.audit(ctx, "user.update", "user:"+u.ID, u.OrgID, "success", "OK", start, detail))
	s.ForgetUser(u.ID)
	if err != nil {
		return nil, err
	}
	return s.loadUser(ctx, u.ID)
}

// replicaMustChangeWrite turns level 1's lock.must_change change into the
// write of the person's must_change_password, when this centre is their
// home (a centre holding them as a replica has it from the home's change).
//
// Only the level-1 centre's is applied (origin its parent), as only it
// disables (review sec32c I1).
func (s *Service) replicaMustChangeWrite(ctx context.Context, origin string, w ReplicaWrite, ev replicaEvent, hasRep bool) (ReplicaWrite, ReplicaOutcome, error) {
	var r mustChangeRecord
	readable := hasRep && json.Unmarshal(ev.Replica, &r) == nil
	if !readable || !r.MustChange || s.homes == nil || s.homes.Level == 1 || !s.fromLevelOne(origin) {
		return w, ReplicaIgnored, nil // not a change this centre can apply: recorded as ignored
	}
	u, out, err := s.homedPerson(ctx, ev.ID)
	if u == nil {
		return w, out, err
	}
	if u.CannotChange {
		// turned on here before the requirement arrived: a person who
		// may not change their password is not sent to a change they
		// would be refused
		s.log.Warn("level 1 required a password change of a person who may not change their own password: not applied",
			zap.String("user_id", u.ID))
		return w, ReplicaIgnored, nil
	}
	w.Kind, w.Op, w.MustChange, w.MustChangeBy = "lock", ReplicaUpsert, true, ev.Actor
	return w, "", nil
}

// mustChangeApplied writes, at the home, level 1's requirement just
// applied (replicaMustChangeWrite) as the home's own change of the person,
// audited with detail.home_centre naming origin, so that it travels to
// every centre holding them. A failure is logged: the home applies the
// requirement all the same (its sign-ins read its own record), and the
// person's next change at the home carries it.
//
// by is the level-1 administrator who required it (the change's actor),
// named in the audit record as the disable's is (review sec32c L3).
func (s *Service) mustChangeApplied(ctx context.Context, origin, id, by string) {
	start := s.now()
	data := map[string]any{"must_change_password": true, "home_centre": origin}
	u, err := s.loadUser(ctx, id)
	if err == nil {
		err = s.ownUser(ctx, u)
	}
	if err == nil {
		u.MustChange, u.WriteMustChange, u.UpdatedAt = true, true, start
		// the audit names level 1's administrator; the change (which
		// business systems read as the person's fields) does not
		detail := userChangeDetail(u, data)
		if by != "" {
			detail["by"] = by
		}
		err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateUser(ctx, u, evs) },
			s.replicaChange(ctx, "user", "updated", u.ID, data, userReplica(u, false)),
			s.audit(ctx, "user.updated", "user:"+u.ID, u.OrgID, "success", "OK", start, detail))
	}
	if err != nil {
		s.log.Warn("level 1's password change requirement was applied here but not sent on as the person's change",
			zap.String("user_id", id), zap.String("origin", origin), zap.Error(err))
	}
}
