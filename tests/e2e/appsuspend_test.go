package e2e

import (
	"context"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestSuspendedAppTakesNoTickets: a suspended application's CAS services
// take no tickets (as a disabled client in Keycloak): none is issued, and
// one issued before does not validate; activated again, they do.
func TestSuspendedAppTakesNoTickets(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("paused", "pia", nil, nil)
	other := e.seed("running", "oli", nil, nil)
	ctx := context.Background()
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	const svcURL, otherURL = "https://paused.example.com/", "https://running.example.com/"
	for app, url := range map[string]string{f.appID: svcURL, other.appID: otherURL} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: app,
			Name: "S", Url: url}}); err != nil {
			t.Fatal(err)
		}
	}
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: f.login, AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	before, _, err := h.Service.IssueServiceTicket(ctx, tgt, svcURL, false)
	if err != nil {
		t.Fatal(err)
	}
	status := func(s identityv1.AppStatus) {
		t.Helper()
		if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"status"}, Status: s}); err != nil {
			t.Fatal(err)
		}
	}
	status(identityv1.AppStatus_APP_STATUS_SUSPENDED)
	eventually(t, "the suspended application's service to take no ticket", func() bool {
		_, _, err := h.Service.IssueServiceTicket(ctx, tgt, svcURL, false)
		return err != nil
	})
	if v, err := h.Service.ValidateTicket(ctx, ticket.Validate{Ticket: before, Service: svcURL}); err != nil || v.Valid || v.Code != ticket.CodeInvalidService {
		t.Fatalf("a ticket issued before the suspension: %+v %v", v, err)
	}
	if _, _, err := h.Service.IssueServiceTicket(ctx, tgt, otherURL, false); err != nil {
		t.Fatalf("another application's service: %v", err)
	}
	status(identityv1.AppStatus_APP_STATUS_ACTIVE)
	var again string
	eventually(t, "the activated application's service to take tickets again", func() bool {
		again, _, err = h.Service.IssueServiceTicket(ctx, tgt, svcURL, false)
		return err == nil
	})
	if v, err := h.Service.ValidateTicket(ctx, ticket.Validate{Ticket: again, Service: svcURL}); err != nil || !v.Valid {
		t.Fatalf("a ticket after the activation: %+v %v", v, err)
	}
}
