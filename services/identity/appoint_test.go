package identity_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// appointer records the appointments asked of a stand-in for authz's
// AppointAdmin and answers with fail while it is set.
type appointer struct {
	mu    sync.Mutex
	fail  error
	calls []string // "user/role"
}

func (a *appointer) appoint(_ context.Context, userID, role string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, userID+"/"+role)
	return a.fail
}

func (a *appointer) set(fail error) {
	a.mu.Lock()
	a.fail = fail
	a.mu.Unlock()
}

func (a *appointer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// adminUser reads the bootstrap administrator from the store (a listing:
// GetUser may answer from the admin-read cache).
func adminUser(svc *identity.Service) (*identity.User, error) {
	users, _, err := svc.ListUsers(context.Background(), identity.UserFilter{}, 100, "")
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.LoginName == "admin" {
			return u, nil
		}
	}
	return nil, errors.New("no user admin")
}

// With authz unreachable for longer than any start-up retry, the legacy
// is_admin flag is kept, so its holder keeps administering (no lock-out
// of the only administrator); the appointment stays pending and is made,
// once, as soon as authz answers.
func TestAppointmentsWaitForAuthz(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	admin, err := adminUser(w.svc)
	if err != nil || !admin.IsAdmin {
		t.Fatalf("bootstrap administrator: is_admin=%v %v", admin != nil && admin.IsAdmin, err)
	}
	az := &appointer{fail: errors.New("authz: connection refused")}
	for i := range 20 { // many runs: an outage far longer than the start-up retries
		n, err := w.svc.MigrateAdmins(ctx, az.appoint)
		if n != 0 || err == nil {
			t.Fatalf("run %d with authz down: made %d, err %v (want 0 and the failure)", i, n, err)
		}
	}
	if az.count() != 20 {
		t.Fatalf("appointment asked %d times in 20 runs", az.count())
	}
	if u, err := adminUser(w.svc); err != nil || !u.IsAdmin {
		t.Fatalf("is_admin flag must stay while authz is down: is_admin=%v %v", u != nil && u.IsAdmin, err)
	}
	if _, _, _, err := w.svc.AdminLogin(ctx, "admin", "Boot-Strap-Pass1"); err != nil {
		t.Fatalf("the flag holder must still log in as administrator while authz is down: %v", err)
	}

	if _, err := w.svc.GetUser(ctx, admin.ID); err != nil { // now in the admin-read cache
		t.Fatal(err)
	}
	az.set(nil)
	n, err := w.svc.MigrateAdmins(ctx, az.appoint)
	if n != 1 || err != nil {
		t.Fatalf("authz back: made %d, err %v (want 1, nil)", n, err)
	}
	if got := az.calls[len(az.calls)-1]; got != admin.ID+"/"+identity.RoleSystemAdmin {
		t.Fatalf("appointed %q, want %s/%s", got, admin.ID, identity.RoleSystemAdmin)
	}
	if u, err := adminUser(w.svc); err != nil || u.IsAdmin {
		t.Fatalf("the flag must be cleared once the grant exists: is_admin=%v %v", u != nil && u.IsAdmin, err)
	}
	if u, err := w.svc.GetUser(ctx, admin.ID); err != nil || u.IsAdmin {
		t.Fatalf("GetUser must not answer the cleared flag from its cache: is_admin=%v %v", u != nil && u.IsAdmin, err)
	}
	before := az.count()
	if n, err := w.svc.MigrateAdmins(ctx, az.appoint); n != 0 || err != nil || az.count() != before {
		t.Fatalf("second run: made %d, err %v, asked %d more times (want nothing left to do)", n, err, az.count()-before)
	}
}

// An appointment authz refuses for good (separation of duty) is dropped:
// the flag is cleared without a grant instead of being retried forever.
func TestAppointmentRefusedForGoodIsDropped(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	az := &appointer{fail: fmt.Errorf("%w: holds security_auditor", identity.ErrNotAppointable)}
	if n, err := w.svc.MigrateAdmins(ctx, az.appoint); n != 1 || err != nil {
		t.Fatalf("refused for good: finished %d, err %v (want 1, nil)", n, err)
	}
	if u, err := adminUser(w.svc); err != nil || u.IsAdmin {
		t.Fatalf("flag after a refusal for good: is_admin=%v %v", u != nil && u.IsAdmin, err)
	}
	before := az.count()
	if n, _ := w.svc.MigrateAdmins(ctx, az.appoint); n != 0 || az.count() != before {
		t.Fatalf("a dropped appointment was asked again")
	}
}

// RunAppointments keeps retrying while authz is down and makes the
// appointment when it comes back, without waiting for the long interval.
func TestRunAppointmentsRetriesUntilAuthzAnswers(t *testing.T) {
	w := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	az := &appointer{fail: errors.New("authz: unavailable")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.svc.RunAppointments(ctx, az.appoint, nil, time.Hour)
	}()
	deadline := time.Now().Add(time.Minute)
	for az.count() < 2 { // the first run and one retry, long before the hour
		if time.Now().After(deadline) {
			t.Fatal("no retry while authz was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	az.set(nil)
	for {
		u, err := adminUser(w.svc)
		if err != nil {
			t.Fatal(err)
		}
		if !u.IsAdmin {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("appointment not made after authz came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}
