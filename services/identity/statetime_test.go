package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// stateAtOf returns the state_at of the single change subject (op of a
// user) in rows, failing without one.
func stateAtOf(t *testing.T, rows []outboxRow, op string) time.Time {
	t.Helper()
	r := oneRow(t, rows, "uias.changes.identity.user."+op)
	var p struct {
		Data struct {
			StateAt time.Time `json:"state_at"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Payload, &p); err != nil || p.Data.StateAt.IsZero() {
		t.Fatalf("user.%s names no state time: %s (%v)", op, r.Payload, err)
	}
	return p.Data.StateAt
}

// The account's state time (ADR 0047): every lock, unlock, disable and
// enable (an administrator's, and the login gate's lock) gives the person
// a new state time, later than the last whatever the clock does, names it
// in its change event (state_at) and stores it; a login answers the
// current one (the creation's before any change). Real service on SQLite.
func TestAccountStateTime(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	id := w.user.ID
	login := func() time.Time {
		t.Helper()
		res, err := e.svc.SSOLogin(context.Background(), "mia", evUserPass)
		if err != nil || res.Reason != identity.ReasonOK {
			t.Fatalf("login: %+v %v", res, err)
		}
		return res.User.StateAt()
	}
	stored := func() time.Time {
		t.Helper()
		u, err := e.svc.GetUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u.StateChangedAt
	}
	prev := login()
	if !prev.Equal(w.user.CreatedAt) {
		t.Fatalf("a new account's state time %v, want its creation %v", prev, w.user.CreatedAt)
	}
	steps := []struct {
		op string
		fn func() error
	}{
		{"locked", func() error { _, err := e.svc.LockUser(ctx, id, 0); return err }},
		{"unlocked", func() error { _, err := e.svc.UnlockUser(ctx, id); return err }},
		{"status_changed", func() error { _, err := e.svc.SetUserStatus(ctx, id, identity.StatusDisabled); return err }},
		{"status_changed", func() error { _, err := e.svc.SetUserStatus(ctx, id, identity.StatusActive); return err }},
		// the clock set back an hour: the time still moves on
		{"locked", func() error {
			e.clk.mu.Lock()
			e.clk.t = e.clk.t.Add(-time.Hour)
			e.clk.mu.Unlock()
			_, err := e.svc.LockUser(ctx, id, time.Minute)
			return err
		}},
		{"unlocked", func() error { _, err := e.svc.UnlockUser(ctx, id); return err }},
	}
	for i, s := range steps {
		m := e.mark(t)
		if err := s.fn(); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.op, err)
		}
		at := stateAtOf(t, e.outbox(t, m), s.op)
		if !at.After(prev) {
			t.Errorf("step %d (%s): state time %v not after %v", i, s.op, at, prev)
		}
		if got := stored(); !got.Equal(at) {
			t.Errorf("step %d (%s): stored %v, event %v", i, s.op, got, at)
		}
		prev = at
	}
	if got := login(); !got.Equal(prev) {
		t.Errorf("a login after the unlock answers %v, want %v", got, prev)
	}

	// The login gate's lock (too many failures) moves it on too.
	app := caller.From(w.ctx).App
	var rows []outboxRow
	for i := range e.svc.Policy().MaxFailures {
		m := e.mark(t)
		c := caller.With(context.Background(), &caller.Caller{App: app, RequestID: "r-fail"})
		res, err := e.svc.Authenticate(c, identity.AuthRequest{AppUserID: "m001", Password: fmt.Sprintf("Wrong-Pass-%d", i),
			AuthType: identity.AuthPassword, Extend: map[string]string{identity.ClientIPExtend: fmt.Sprintf("198.51.100.%d", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Reason == identity.ReasonAccountLocked {
			rows = e.outbox(t, m)
			break
		}
	}
	if rows == nil {
		t.Fatal("the login gate did not lock the account")
	}
	at := stateAtOf(t, rows, "locked")
	if !at.After(prev) || !stored().Equal(at) {
		t.Errorf("the gate's lock: event %v, stored %v, previous %v", at, stored(), prev)
	}
}

// A lock applied as another centre's change (the person's home locked
// them) reaches this centre's ticket component as a local event without
// the home's state time (another clock, not this centre's record: ticket
// then ends every session of the person, as before), and this centre's
// record keeps its own state time (ADR 0047).
func TestReplicaLockNamesNoStateTime(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-s")
	svc2, svc1 := l2.svc, l1.svc
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "stoker", DisplayName: "Stoker", OrgID: bureau.ID,
		Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	_, mark, _ := l1.changes(t, 0)
	if _, err := svc2.LockUser(admin2, u.ID, 0); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	if len(cs) != 1 || !bytes.Contains(cs[0].Payload, []byte(`"state_at"`)) {
		t.Fatalf("the home's lock names no state time: %+v", cs)
	}
	if out, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil || len(out) != 1 || out[0] != identity.ReplicaApplied {
		t.Fatalf("the lock at level 1: %v %v", out, err)
	}
	local, _, _ := l1.changes(t, mark)
	if len(local) != 1 || local[0].Subject != "uias.changes.identity.user.replica.locked" {
		t.Fatalf("level 1's local events of the lock: %+v", local)
	}
	if bytes.Contains(local[0].Payload, []byte(`"state_at"`)) || !bytes.Contains(local[0].Payload, []byte(`"origin"`)) {
		t.Errorf("level 1's local lock event: %s", local[0].Payload)
	}
	r, err := svc1.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !r.StateChangedAt.IsZero() {
		t.Errorf("level 1's record took the home's state time %v", r.StateChangedAt)
	}
}
