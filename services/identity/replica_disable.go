package identity

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// Level 1 disables and enables a level-2 person (ADR 0048).
//
// Level 1 manages every user (004 §2.1.1): an administrator there may
// disable a person homed at a level-2 centre (SetUserStatus DISABLED) and
// enable them again. The disable is not the home's status: it is kept
// beside it (User.DisabledCentre, with when and by whom), so that
//
//   - the person may sign in nowhere while either disables them
//     (User.Enabled): level 1 at once, the home once the change arrives;
//   - only level 1 lifts its disable (SetUserStatus ACTIVE there), and the
//     home's own disable stays the home's (an enable at level 1 leaves it);
//   - a change of the person at the home, which travels up and replaces
//     level 1's copy of them, leaves level 1's disable alone.
//
// Level 1 writes it on its copy of the person and sends it as a
// "lock.disabled" or "lock.enabled" change of entity lock (id: the
// person), which goes down with the lock changes (applier.Down); the
// home writes it (kept to its replica version, so that a replay or an
// older change undoes no newer one) and audits it naming level 1
// (detail.home_centre). Ticket ends the person's SSO sessions at level 1
// on its lock.disabled, at the home on the lock.replica.disabled it
// writes, as a disable at home does.

// disableRecord is the replica part of a lock.disabled or lock.enabled
// change: the disable (none for an enable).
type disableRecord struct {
	Centre string    `json:"centre,omitempty"`
	At     time.Time `json:"at,omitempty"`
	By     string    `json:"by,omitempty"`
}

// levelOneHolds loads person id when this is the level-1 centre and they
// are homed at another centre (nil otherwise, and on a single centre).
func (s *Service) levelOneHolds(ctx context.Context, id string) (*User, error) {
	if s.homes == nil || s.homes.Level != 1 {
		return nil, nil
	}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.homedHere(ctx, u) {
		return nil, nil
	}
	return u, nil
}

// setHeldReplicaStatus disables (or enables) person u, whom level 1 holds
// as a replica of their level-2 home: written here at once, audited
// (user.status_changed, detail.centre this centre, detail.home_centre the
// home) and sent to the home as a lock change in one transaction.
func (s *Service) setHeldReplicaStatus(ctx context.Context, u *User, st Status) (*User, error) {
	start := s.now()
	home, err := s.homeOfUser(ctx, u)
	if err != nil {
		return nil, err
	}
	var d CentreDisable
	op := "enabled"
	var stateAt time.Time
	// A disable names in its event exactly the state time it stores (ADR
	// 0047): written only while the state time read is still the row's,
	// read again when another change moved it meanwhile.
	for try := 0; ; try++ {
		if st == StatusDisabled {
			if try > 0 {
				if u, err = s.store.GetUser(ctx, u.ID); err != nil {
					return nil, err
				}
			}
			read := u.StateChangedAt
			stateAt = nextStateAt(u.StateAt(), s.now())
			op = "disabled"
			d = CentreDisable{Centre: s.homes.Self, At: stateAt, By: caller.From(ctx).Actor(), IfStateAt: &read}
		}
		data := map[string]any{"status": st, "centre": s.homes.Self}
		if st == StatusDisabled {
			data["state_at"] = stateAt.UTC()
		}
		detail := userChangeDetail(u, map[string]any{"status": st, "centre": s.homes.Self, "home_centre": home})
		err = s.write(ctx, func(evs []events.Event) error { return s.store.SetCentreDisabled(ctx, u.ID, d, evs) },
			s.changeWith(ctx, "lock", op, u.ID, data, disableRecord{Centre: d.Centre, At: d.At, By: d.By}),
			s.audit(ctx, "user.status_changed", "user:"+u.ID, u.OrgID, "success", "OK", start, detail))
		s.ForgetUser(u.ID)
		if errors.Is(err, ErrConflict) && st == StatusDisabled && try < 4 {
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	d.IfStateAt = nil
	after := *u
	after.DisabledCentre, after.DisabledCentreAt, after.DisabledCentreBy = d.Centre, d.At, d.By
	if st == StatusDisabled {
		after.StateChangedAt = stateAt
	}
	return &after, nil
}

// replicaDisableWrite turns level 1's lock.disabled or lock.enabled change
// into the write of the person's disable by that centre, when this centre
// is their home, with its audit record naming origin.
func (s *Service) replicaDisableWrite(ctx context.Context, origin string, w ReplicaWrite, ev replicaEvent, hasRep bool) (ReplicaWrite, ReplicaOutcome, error) {
	var r disableRecord
	readable := hasRep && json.Unmarshal(ev.Replica, &r) == nil
	if !readable || s.homes == nil || s.homes.Level == 1 || !s.fromLevelOne(origin) ||
		(ev.Op == "disabled") != (r.Centre != "") || (r.Centre != "" && r.Centre != origin) {
		return w, ReplicaIgnored, nil // not a change this centre can apply: recorded as ignored
	}
	u, out, err := s.homedPerson(ctx, ev.ID)
	if u == nil {
		return w, out, err
	}
	if r.Centre == "" && u.DisabledCentre != "" && u.DisabledCentre != origin {
		// an enable lifts only the disable of the centre that sends it
		// (review sec32c I1)
		return w, ReplicaIgnored, nil
	}
	d := CentreDisable{Centre: r.Centre, At: r.At, By: r.By}
	if d.Centre != "" {
		// this centre's own state time (ADR 0047), not level 1's
		d.At = nextStateAt(u.StateAt(), s.now())
	}
	st := StatusActive
	if d.Centre != "" {
		st = StatusDisabled
	}
	w.Kind, w.Op, w.CentreDisable = "lock", ReplicaUpsert, &d
	// who at level 1: the change's actor, for the enable too (review
	// sec32c L3)
	by := ev.Actor
	if by == "" {
		by = r.By
	}
	w.Events = append(w.Events, s.audit(ctx, "user.status_changed", "user:"+u.ID, u.OrgID, "success", "OK", s.now(),
		userChangeDetail(u, map[string]any{"status": st, "centre": origin, "home_centre": origin, "by": by})))
	return w, "", nil
}

// LocalStateAtKey is the data key of the local event of a change applied
// as a replica that carries this centre's own state time (ADR 0047) of
// the person, when the write set one (level 1's disable at the home).
const LocalStateAtKey = "local_state_at"

// fromLevelOne reports whether origin is this level-2 centre's level-1
// centre (any origin when its name is not configured): only it disables,
// enables or requires a password change of a person homed here.
func (s *Service) fromLevelOne(origin string) bool {
	return s.homes == nil || s.homes.Parent == "" || origin == s.homes.Parent
}
