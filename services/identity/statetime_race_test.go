package identity_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity"
)

// racingStore runs hook just before UpdateUser while armed is above zero
// (counting it down): another administrator's change and a login land
// between the read of a lock, unlock, disable or enable and its write
// (what concurrent requests do).
type racingStore struct {
	identity.Store
	armed  atomic.Int32
	inHook atomic.Bool // the hook's own writes are not raced
	hook   func()
}

func (r *racingStore) UpdateUser(ctx context.Context, u *identity.User, evs []events.Event) error {
	if !r.inHook.Load() && r.armed.Add(-1) >= 0 {
		r.inHook.Store(true)
		r.hook()
		r.inHook.Store(false)
	}
	return r.Store.UpdateUser(ctx, u, evs)
}

// lastStateAt is the state_at of the last change subject op of a user in rows.
func lastStateAt(t *testing.T, rows []outboxRow, op string) time.Time {
	t.Helper()
	for i := len(rows) - 1; i >= 0; i-- {
		if rows[i].Subject == "uias.changes.identity.user."+op {
			return stateAtOf(t, rows[i:i+1], op)
		}
	}
	t.Fatalf("no user.%s change", op)
	return time.Time{}
}

// An administrator's lock whose read precedes another administrator's
// unlock and a login after it names a state time after the one that login
// answered, the time stored (review sec32a M1: it named the time computed
// from its stale copy, below the login's, and the ticket component kept
// that session). The same for a disable racing an enable. Real service on
// SQLite; the store conformance suite checks the store's part on both
// stores (AccountStateTimeConditional).
func TestAccountStateTimeLockRacingUnlock(t *testing.T) {
	for _, tc := range []struct {
		name, op      string
		undo, do      func(ctx context.Context, svc *identity.Service, id string) error
		refusedReason identity.Reason
	}{
		{"lock racing unlock", "locked",
			func(ctx context.Context, svc *identity.Service, id string) error {
				_, err := svc.UnlockUser(ctx, id)
				return err
			},
			func(ctx context.Context, svc *identity.Service, id string) error {
				_, err := svc.LockUser(ctx, id, time.Hour)
				return err
			}, identity.ReasonAccountLocked},
		{"disable racing enable", "status_changed",
			func(ctx context.Context, svc *identity.Service, id string) error {
				_, err := svc.SetUserStatus(ctx, id, identity.StatusActive)
				return err
			},
			func(ctx context.Context, svc *identity.Service, id string) error {
				_, err := svc.SetUserStatus(ctx, id, identity.StatusDisabled)
				return err
			}, identity.ReasonAccountDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rs *racingStore
			e := newEvEnvWith(t, "", func(d *identity.Deps) { rs = &racingStore{Store: d.Store}; d.Store = rs })
			w := setupOn(t, e.svc, e.clk)
			ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
			id := w.user.ID
			if err := tc.do(ctx, e.svc, id); err != nil { // admin 1 earlier
				t.Fatal(err)
			}
			var loginAt time.Time
			rs.hook = func() {
				// admin 2 undoes it, and the person signs in
				if err := tc.undo(ctx, e.svc, id); err != nil {
					t.Fatal(err)
				}
				res, err := e.svc.SSOLogin(context.Background(), "mia", evUserPass)
				if err != nil || res.Reason != identity.ReasonOK {
					t.Fatalf("login after the undo: %+v %v", res, err)
				}
				loginAt = res.User.StateAt()
			}
			rs.armed.Store(1)
			m := e.mark(t)
			if err := tc.do(ctx, e.svc, id); err != nil { // admin 1 again, concurrently
				t.Fatal(err)
			}
			rows := e.outbox(t, m)
			at := lastStateAt(t, rows, tc.op)
			u, err := e.svc.GetUser(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			res, err := e.svc.SSOLogin(context.Background(), "mia", evUserPass)
			if err != nil {
				t.Fatal(err)
			}
			if res.Reason != tc.refusedReason {
				t.Fatalf("login at the end: %v, want %v", res.Reason, tc.refusedReason)
			}
			if !loginAt.Before(at) {
				t.Errorf("the change names %v, not after the state time %v of a session opened before it committed", at, loginAt)
			}
			if !at.Equal(u.StateChangedAt) {
				t.Errorf("the change names %v, the store holds %v", at, u.StateChangedAt)
			}
		})
	}
}

// A lock that meets another state change at every try is refused with
// ACCOUNT_STATE_CHANGING, having changed nothing; one that meets it a few
// times is retried and written.
func TestAccountStateTimeRetriesBounded(t *testing.T) {
	var rs *racingStore
	e := newEvEnvWith(t, "", func(d *identity.Deps) { rs = &racingStore{Store: d.Store}; d.Store = rs })
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	id := w.user.ID
	flip := false
	rs.hook = func() {
		// another administrator locks and unlocks in turn
		var err error
		if flip = !flip; flip {
			_, err = e.svc.UnlockUser(ctx, id)
		} else {
			_, err = e.svc.LockUser(ctx, id, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rs.armed.Store(100)
	_, err := e.svc.LockUser(ctx, id, time.Hour)
	wantReason(t, "LockUser", err, apierr.FailedPrecondition, identity.ReasonAccountStateChanging)
	rs.armed.Store(0)
	u, err := e.svc.GetUser(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !u.LockedUntil.IsZero() && !u.LockedUntil.Equal(identity.LockForever) {
		t.Errorf("the refused lock (an hour) was written: locked until %v", u.LockedUntil)
	}

	rs.armed.Store(2) // two races, then it lands
	m := e.mark(t)
	if _, err := e.svc.LockUser(ctx, id, time.Hour); err != nil {
		t.Fatalf("a lock meeting two state changes: %v", err)
	}
	at := lastStateAt(t, e.outbox(t, m), "locked")
	if u, err = e.svc.GetUser(ctx, id); err != nil {
		t.Fatal(err)
	}
	if !at.Equal(u.StateChangedAt) {
		t.Errorf("the lock names %v, the store holds %v", at, u.StateChangedAt)
	}
	if !u.Locked(e.clk.now()) {
		t.Error("not locked after the retried lock")
	}
}
