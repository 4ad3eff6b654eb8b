package ticket_test

import (
	"context"
	"testing"

	"github.com/uias/uias/services/ticket"
)

// TestValidateUnderTheIssuedService: a validation applies the registered
// service the ticket was issued under, never another one the presented URL
// happens to match (review sec32b M1). With ":443" equal to no port, a
// ticket of application P's pattern service, presented with the port
// written out, matched application Q's pattern service and got Q's release
// policy and proxy right: now refused WRONG_SERVICE (and used up). A
// pattern matching both forms still validates either.
func TestValidateUnderTheIssuedService(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	ctx := context.Background()
	register(t, f.services, "pp", ticket.RegisteredService{AppID: "appP", Pattern: `https://portal\.example\.com/.*`,
		ReleaseAttributes: []string{"login", "displayName"}, MaskedAttributes: []string{"displayName"}})
	register(t, f.services, "pq", ticket.RegisteredService{AppID: "appQ", Pattern: `https://[a-z.]+\.example\.com:[0-9]+/.*`, AllowProxy: true})
	register(t, f.services, "qcb", ticket.RegisteredService{AppID: "appQ", URL: "https://q.example.com/pgt"})
	register(t, f.services, "both", ticket.RegisteredService{AppID: "appB", Pattern: `https://both\.example\.org(:443)?/.*`})
	f.svc.Registry().Invalidate()
	tgt := f.login(t, "u1")

	st := f.st(t, tgt, "https://portal.example.com/x")
	v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: "https://portal.example.com:443/x", IssuePGT: true, PGTURL: "https://q.example.com/pgt"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Valid || v.Code != ticket.CodeInvalidService || v.Message != "the ticket was not issued for this service" || v.PGT != "" {
		t.Fatalf("P's ticket under Q's service: %+v", v)
	}
	// used up: CAS 3.0 §3.1.1
	if v, err = f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: "https://portal.example.com/x"}); err != nil || v.Valid {
		t.Fatalf("the refused ticket again: %+v %v", v, err)
	}
	// as issued: P's own policy
	st = f.st(t, tgt, "https://portal.example.com/y")
	if v, err = f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: "https://portal.example.com/y"}); err != nil || !v.Valid ||
		v.Policy == nil || len(v.Policy.Release) != 2 || v.Ticket.AppID != "appP" {
		t.Fatalf("as issued: %+v %v", v, err)
	}
	// one service matching both forms: either validates
	st = f.st(t, tgt, "https://both.example.org/z")
	if v, err = f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: "https://both.example.org:443/z"}); err != nil || !v.Valid || v.Ticket.AppID != "appB" {
		t.Fatalf("one service, default port written out: %+v %v", v, err)
	}
}
