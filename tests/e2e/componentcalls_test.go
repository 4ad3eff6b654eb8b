package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestComponentOnlyCallsAcrossProcesses: in microservices mode the calls
// only UIAS components may make reach their component when the caller acts
// for nobody (a background job: no person, application or client address
// to assert), signed with the internal key:
//   - identity appoints the first-start security auditor in authz, who
//     then logs in (the appointment was refused as a caller without
//     application credentials, retried for ever);
//   - ticket reads the status of the applications with CAS services from
//     identity: a suspended application's service takes no tickets, also
//     in a ticket process started after the suspension;
//   - a required permission that the application's model does not define
//     is refused at registration.
func TestComponentOnlyCallsAcrossProcesses(t *testing.T) {
	id, az, d := startAcross(t, false)
	_ = az
	id.login()
	if id.aud() == nil { // fails the test when the auditor cannot log in
		t.Fatal("no auditor")
	}
	// authz records the appointment as identity does: made by the process
	// ("system:appointments"), not by "anonymous" (it was, across processes
	// and in one: identity's caller does not travel with the call).
	eventually(t, "authz's records of the first start's appointments", func() bool {
		n := 0
		for _, ev := range streamEvents(t, d.nats.ClientURL(), "AUDIT", "uias.audit.authz.grant.appoint") {
			if ev["actor"] != "system:appointments" {
				t.Fatalf("authz recorded an appointment by %v, want system:appointments: %s", ev["actor"], ev["_raw"])
			}
			n++
		}
		return n >= 2 // the system administrator and the security auditor
	})

	f := id.seed("tkapp", "tess", nil, nil)
	// A component reading views for itself (as ticket refreshes the
	// applications' statuses every minute: signed with the internal key,
	// for nobody who called) is recorded at identity as a component's
	// read, not as "anonymous" (a caller nobody authenticated).
	asComponent, err := grpc.NewClient(id.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcx.UnaryClientOrigin([]byte(testInternalKey))))
	if err != nil {
		t.Fatal(err)
	}
	defer asComponent.Close()
	if _, err := identityv1.NewViewServiceClient(asComponent).GetViews(context.Background(),
		&identityv1.GetViewsRequest{Entity: "app", Ids: []string{f.appID}}); err != nil {
		t.Fatalf("a component reads an application's view: %v", err)
	}
	eventually(t, "identity's access record of the component's GetViews", func() bool {
		for _, ev := range streamEvents(t, d.nats.ClientURL(), "AUDIT", "uias.audit.identity.access") {
			if ev["api"] != "uias.identity.v1.ViewService/GetViews" {
				continue
			}
			if ev["actor"] != "system:component" {
				t.Fatalf("identity recorded a component's GetViews by %v, want system:component: %s", ev["actor"], ev["_raw"])
			}
			return true
		}
		return false
	})
	idCfg := d.config("identity", "identity")
	ticketCfg := func(data string) config.Config { // the deployment's key ring, as identity's
		c := d.config("ticket", data)
		identitycomponent.Settings(&c).KeyFile = identitycomponent.Settings(&idCfg).KeyFile
		return c
	}
	tk := start(t, ticketCfg("ticket"))
	registry := ticketv1.NewServiceRegistryServiceClient(tk.conn)
	const svc = "https://tk.example.com/app/"
	if _, err := registry.CreateService(id.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "TK", Url: svc, RequiredPermission: "nosuch:read"}}); err == nil {
		t.Fatal("a required permission the application's model does not define was registered")
	} else {
		wantCode(t, err, codes.InvalidArgument, "BAD_SERVICE_DEFINITION")
	}
	if _, err := registry.CreateService(id.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "TK", Url: svc}}); err != nil {
		t.Fatal(err)
	}
	if _, err := id.admin.UpdateApp(id.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"status"},
		Status: identityv1.AppStatus_APP_STATUS_SUSPENDED}); err != nil {
		t.Fatal(err)
	}
	// A ticket process started now reads the statuses at its start.
	tk2 := start(t, ticketCfg("ticket2"))
	reg := tk2.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle).Service.Registry()
	eventually(t, "the suspended application's service to take no tickets", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rs, err := reg.Match(ctx, svc)
		return err != nil && rs == nil
	})
}
