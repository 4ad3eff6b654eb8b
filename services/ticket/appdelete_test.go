package ticket_test

import (
	"context"
	"testing"

	"github.com/uias/uias/services/ticket"
)

// TestDeletedAppLosesItsServices: an application deleted in identity
// (CHANGES app.deleted) loses its CAS services; a service ticket issued to
// one before does not validate afterwards (the service is no longer
// registered: INVALID_SERVICE, and the ticket is spent), while other
// applications' services keep working.
func TestDeletedAppLosesItsServices(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	ctx := context.Background()
	register(t, f.services, "a2", ticket.RegisteredService{AppID: "app1", URL: "https://a2.example.com/"})
	tgt := f.login(t, "u1")
	st := f.st(t, tgt, svcA)
	other := f.st(t, tgt, "https://b.example.com/x")

	n, err := f.svc.DeleteAppServices(ctx, "app1", ticket.CauseAppDeleted)
	if err != nil || n != 2 {
		t.Fatalf("DeleteAppServices: %d %v, want 2", n, err)
	}
	if left, _ := f.svc.ListRegisteredServices(ctx, "app1"); len(left) != 0 {
		t.Fatalf("services of the deleted application: %v", left)
	}
	if v := f.validate(t, st, svcA); v.Valid || v.Code != ticket.CodeInvalidService {
		t.Fatalf("a ticket of a deleted application's service: %+v, want INVALID_SERVICE", v)
	}
	if !f.audit.find("ticket.validate", "failure", "SERVICE_NOT_REGISTERED") {
		t.Errorf("audit: %+v", f.audit.evs)
	}
	if _, _, err := f.svc.IssueServiceTicket(ctx, tgt, svcA, false); err == nil {
		t.Fatal("a ticket issued for a deleted application's service")
	}
	if v := f.validate(t, other, "https://b.example.com/x"); !v.Valid {
		t.Fatalf("another application's ticket: %+v", v)
	}
	// Again (a redelivered event): nothing left.
	if n, err := f.svc.DeleteAppServices(ctx, "app1", ticket.CauseAppDeleted); err != nil || n != 0 {
		t.Fatalf("again: %d %v", n, err)
	}
}

// TestSuspendedAppServices: the registry leaves out the services of the
// applications it is told are suspended, like disabled ones.
func TestSuspendedAppServices(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	ctx := context.Background()
	tgt := f.login(t, "u1")
	before := f.st(t, tgt, svcA)
	suspended := true
	f.svc.Registry().SetSuspended(func(app string) bool { return suspended && app == "app1" })
	if _, _, err := f.svc.IssueServiceTicket(ctx, tgt, svcA, false); err == nil {
		t.Fatal("a ticket for a suspended application's service")
	}
	if v := f.validate(t, before, svcA); v.Valid || v.Code != ticket.CodeInvalidService {
		t.Fatalf("a ticket issued before the suspension: %+v", v)
	}
	if v := f.validate(t, f.st(t, tgt, "https://b.example.com/x"), "https://b.example.com/x"); !v.Valid {
		t.Fatalf("another application's ticket: %+v", v)
	}
	suspended = false
	f.svc.Registry().Invalidate()
	if v := f.validate(t, f.st(t, tgt, svcA), svcA); !v.Valid {
		t.Fatalf("a ticket once active again: %+v", v)
	}
}
