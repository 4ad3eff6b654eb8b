package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// testAppointments: the people identity still has to appoint in authz are
// the is_admin holders and the recorded appointments; finishing one clears
// the flag (keeping the admin tokens) or deletes the record, once.
func testAppointments(t *testing.T, f *fixture) {
	o := f.org("")
	flagged := f.newUser(o.ID)
	flagged.IsAdmin = true
	must(t, f.s.CreateUser(f.ctx, flagged, nil))
	plain := f.user(o.ID)
	aud := f.user(o.ID)
	must(t, f.s.CreateAdminToken(f.ctx, &identity.AdminToken{Hash: "h-flagged", UserID: flagged.ID, ExpiresAt: base.Add(time.Hour), CreatedAt: base}))

	rec := identity.Appointment{UserID: aud.ID, Role: identity.RoleSecurityAuditor}
	must(t, f.s.AddAppointment(f.ctx, rec))
	must(t, f.s.AddAppointment(f.ctx, rec)) // once is enough
	got, err := f.s.PendingAppointments(f.ctx)
	must(t, err)
	want := []identity.Appointment{{UserID: flagged.ID, Role: identity.RoleSystemAdmin, Legacy: true}, rec}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("pending %+v, want %+v (not %s)", got, want, plain.ID)
	}

	legacy := want[0]
	f.expectEvents(1, func() {
		done, err := f.s.FinishAppointment(f.ctx, legacy, base.Add(time.Minute), f.evs(1))
		must(t, err)
		if !done {
			t.Fatal("legacy appointment not finished")
		}
	})
	u, err := f.s.GetUser(f.ctx, flagged.ID)
	must(t, err)
	if u.IsAdmin {
		t.Fatal("is_admin still set after the appointment")
	}
	eqTime(t, "updated", u.UpdatedAt, base.Add(time.Minute))
	_, err = f.s.GetAdminToken(f.ctx, "h-flagged")
	must(t, err) // the grant carries the same rights: the token stays
	f.expectEvents(0, func() {
		done, err := f.s.FinishAppointment(f.ctx, legacy, base, f.evs(1))
		must(t, err)
		if done {
			t.Fatal("finished twice")
		}
	})
	f.expectEvents(1, func() {
		done, err := f.s.FinishAppointment(f.ctx, rec, base, f.evs(1))
		if err != nil || !done {
			t.Fatalf("recorded appointment: %v %v", done, err)
		}
	})
	got, err = f.s.PendingAppointments(f.ctx)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("still pending: %+v", got)
	}
}

// testFirstAdmins: the first start's administrators and their recorded
// appointment are written together, or not at all (a login taken makes
// the whole write fail: no user, no appointment, no event).
func testFirstAdmins(t *testing.T, f *fixture) {
	o := f.org("")
	admin, aud := f.newUser(o.ID), f.newUser(o.ID)
	admin.IsAdmin = true
	rec := identity.Appointment{UserID: aud.ID, Role: identity.RoleSecurityAuditor}

	taken := f.user(o.ID)
	clash := f.newUser(o.ID)
	clash.LoginName = taken.LoginName
	f.expectEvents(0, func() {
		err := f.s.CreateFirstAdmins(f.ctx, []*identity.User{aud, clash}, []identity.Appointment{rec}, f.evs(2))
		if err == nil {
			t.Fatal("a taken login did not fail the first administrators' write")
		}
	})
	if _, err := f.s.GetUser(f.ctx, aud.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("a failed write left the auditor: %v", err)
	}
	got, err := f.s.PendingAppointments(f.ctx)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("a failed write left appointments: %+v", got)
	}

	f.expectEvents(2, func() {
		must(t, f.s.CreateFirstAdmins(f.ctx, []*identity.User{admin, aud}, []identity.Appointment{rec}, f.evs(2)))
	})
	for _, u := range []*identity.User{admin, aud} {
		if _, err := f.s.GetUser(f.ctx, u.ID); err != nil {
			t.Fatalf("first administrator %s: %v", u.LoginName, err)
		}
	}
	got, err = f.s.PendingAppointments(f.ctx)
	must(t, err)
	want := []identity.Appointment{{UserID: admin.ID, Role: identity.RoleSystemAdmin, Legacy: true}, rec}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("pending %+v, want %+v", got, want)
	}
}
