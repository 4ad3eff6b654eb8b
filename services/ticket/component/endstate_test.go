package component

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/services/ticket"
)

// stateEvent is identity's change event of person u1 (subject op) naming
// the account's state time at (zero: an event of an earlier version that
// names none); origin, when set, says it was applied here as another
// centre's change.
func stateEvent(op string, at time.Time, origin string) (string, []byte) {
	data := `{"locked_until":"9999-12-31T00:00:00Z"`
	if op == "status_changed" {
		data = `{"status":2`
	}
	if !at.IsZero() {
		data += `,"state_at":"` + at.UTC().Format(time.RFC3339Nano) + `"`
	}
	data += "}"
	subject := "uias.changes.identity.user." + op
	payload := `{"entity":"user","op":"` + op + `","id":"u1","data":` + data + `}`
	if origin != "" {
		subject = "uias.changes.identity.user.replica." + op
		payload = `{"entity":"user","op":"` + op + `","id":"u1","origin":"` + origin + `","data":` + data + `}`
	}
	return subject, []byte(payload)
}

// openAt opens a session of u1 whose login saw the account's state of at
// (zero: a session of an earlier version, which recorded none).
func openAt(t *testing.T, svc *ticket.Service, at time.Time) string {
	t.Helper()
	tgt, _, err := svc.CreateSession(context.Background(), ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1, StateAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func alive(svc *ticket.Service, tgt string) bool {
	_, err := svc.GetSession(context.Background(), tgt)
	return err == nil
}

// A lock (or disable) event that arrives late, after the person was
// unlocked (enabled) and signed in again, ends the sessions opened before
// the lock and leaves the one opened after the unlock; real sessions in
// JetStream (embedded NATS).
func TestLateLockEventKeepsSessionsAfterUnlock(t *testing.T) {
	for _, op := range []string{"locked", "status_changed", "disabled"} {
		t.Run(op, func(t *testing.T) {
			svc := newSessions(t)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			created := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
			lockedAt := created.Add(time.Hour)
			unlockedAt := lockedAt.Add(time.Minute)
			before := openAt(t, svc, created) // signed in before the lock
			after := openAt(t, svc, unlockedAt)
			var reasons []string
			svc.SetEnding(func(_ *ticket.Session, reason string) { reasons = append(reasons, reason) })

			subject, payload := stateEvent(op, lockedAt, "")
			endSessionsOnChange(ctx, svc, zap.NewNop(), subject, payload)
			if alive(svc, before) {
				t.Error("the session opened before the lock survived its event")
			}
			if !alive(svc, after) {
				t.Error("the session opened after the unlock was ended by the late lock event")
			}
			if len(reasons) != 1 {
				t.Errorf("ended %v, want one session", reasons)
			}
			// A login that saw the lock's own state (a lock that had
			// expired) is not older than it: it stays too.
			same := openAt(t, svc, lockedAt)
			endSessionsOnChange(ctx, svc, zap.NewNop(), subject, payload) // redelivered
			if !alive(svc, same) || !alive(svc, after) {
				t.Error("a redelivered lock event ended a session opened at or after its state")
			}
		})
	}
}

// A login that saw the account before the lock and stores its session
// only after the lock's event was handled (it raced the lock) is refused:
// the event noted the lock's time first. Logins after a later unlock open.
func TestLockRefusesLoginsInFlight(t *testing.T) {
	svc := newSessions(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	seen := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	lockedAt := seen.Add(time.Hour)
	subject, payload := stateEvent("locked", lockedAt, "")
	endSessionsOnChange(ctx, svc, zap.NewNop(), subject, payload)

	_, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1, StateAt: seen})
	if !errors.Is(err, ticket.ErrAccountChanged) {
		t.Fatalf("a login that saw the account before the lock: %v", err)
	}
	if ids, err := svc.UserSessions(ctx, "u1"); err != nil || len(ids) != 0 {
		t.Errorf("the refused login left sessions %v (%v)", ids, err)
	}
	if tgt, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1,
		StateAt: lockedAt.Add(time.Second)}); err != nil || !alive(svc, tgt) {
		t.Errorf("a login after the unlock: %v", err)
	}
	// Another person is not concerned; a password note of the same person
	// and the lock's note live side by side.
	if _, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u2", Login: "l-u2", AuthLevel: 1, StateAt: seen}); err != nil {
		t.Errorf("another person's login: %v", err)
	}
	if err := svc.NotePassword(ctx, "u1", seen); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1, StateAt: seen,
		PasswordAt: seen}); !errors.Is(err, ticket.ErrAccountChanged) {
		t.Errorf("the lock's note after a password note: %v", err)
	}
}

// An event without a state time (identity of an earlier version), one
// applied here as another centre's change (whose time is not this
// centre's), and sessions without one (an earlier version's) end as
// before: every session of the person ends, the safe side.
func TestLockEventWithoutTimeEndsAll(t *testing.T) {
	lockedAt := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for name, ev := range map[string]struct {
		at     time.Time
		origin string
	}{"no time": {}, "another centre's": {at: lockedAt, origin: "c2"}} {
		t.Run(name, func(t *testing.T) {
			svc := newSessions(t)
			ctx := context.Background()
			tgts := []string{openAt(t, svc, time.Time{}), openAt(t, svc, lockedAt.Add(time.Hour))}
			other, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u2", Login: "l-u2", AuthLevel: 1})
			if err != nil {
				t.Fatal(err)
			}
			subject, payload := stateEvent("locked", ev.at, ev.origin)
			endSessionsOnChange(ctx, svc, zap.NewNop(), subject, payload)
			for i, tgt := range tgts {
				if alive(svc, tgt) {
					t.Errorf("session %d survived a lock event without this centre's time", i)
				}
			}
			if !alive(svc, other) {
				t.Error("another person's session ended")
			}
		})
	}
	// A timed event ends a session that recorded no state time.
	svc := newSessions(t)
	old := openAt(t, svc, time.Time{})
	subject, payload := stateEvent("locked", lockedAt, "")
	endSessionsOnChange(context.Background(), svc, zap.NewNop(), subject, payload)
	if alive(svc, old) {
		t.Error("a session without a state time survived a timed lock event")
	}
}

// A session that escaped the first sweep (opened without a state time
// after it, as one a lagging replica did not list) ends at the second;
// the session after the unlock stays.
func TestLockSweepsTwice(t *testing.T) {
	old := passwordResweep
	passwordResweep = 50 * time.Millisecond
	t.Cleanup(func() { passwordResweep = old })
	svc := newSessions(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lockedAt := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	subject, payload := stateEvent("locked", lockedAt, "")
	endSessionsOnChange(ctx, svc, zap.NewNop(), subject, payload)
	escaped := openAt(t, svc, time.Time{})
	fresh := openAt(t, svc, lockedAt.Add(time.Minute))
	deadline := time.Now().Add(10 * time.Second)
	for alive(svc, escaped) {
		if time.Now().After(deadline) {
			t.Fatal("the second sweep did not end the session that escaped the first")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !alive(svc, fresh) {
		t.Fatal("the session after the unlock ended")
	}
}

// Level 1's disable applied at the person's home (lock.replica.disabled,
// ADR 0048) names the home's own state time (data.local_state_at; the
// origin's state_at is left out): a login at the home that saw the person
// before the disable and stores its session after the sweep is refused, a
// session of a login after it stays, as for a disable at home (ADR 0047;
// review sec32c L2).
func TestLevelOneDisableAtTheHomeRefusesLoginsInFlight(t *testing.T) {
	svc := newSessions(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	seen := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	disabledAt := seen.Add(time.Hour)
	before := openAt(t, svc, seen)
	payload := []byte(`{"entity":"lock","op":"disabled","id":"u1","actor":"user:adm","origin":"l1","origin_event_id":"ev1",` +
		`"data":{"status":2,"centre":"l1","local_state_at":"` + disabledAt.Format(time.RFC3339Nano) + `"}}`)
	endSessionsOnChange(ctx, svc, zap.NewNop(), "uias.changes.identity.lock.replica.disabled", payload)
	if alive(svc, before) {
		t.Error("a session from before level 1's disable survived at the home")
	}
	if _, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1, StateAt: seen}); !errors.Is(err, ticket.ErrAccountChanged) {
		t.Fatalf("a login at the home that saw the person before level 1's disable: %v", err)
	}
	if tgt, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1,
		StateAt: disabledAt.Add(time.Second)}); err != nil || !alive(svc, tgt) {
		t.Errorf("a login after level 1's enable: %v", err)
	}
}
