package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/audit"
	auditcomponent "github.com/uias/uias/services/audit/component"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestDeleteApp: an administrator deletes a business system over REST,
// once it is suspended (APP_ACTIVE before); it is gone (404, again 404),
// its credentials are refused (401), its account link goes, its CAS
// service goes and a service ticket issued before no longer validates,
// and its authz model (resources, roles, grants) goes. Without a token the
// call is refused (401), and an administrator without the applications
// permission (the security auditor) too (403).
func TestDeleteApp(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("retired", "rita", nil, nil)
	ctx := context.Background()
	bearer := map[string]string{"Authorization": "Bearer " + e.token}

	// Its CAS service, a session with a service ticket for it, its model
	// and a grant in authz.
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	const svcURL = "https://retired.example.com/"
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID,
		Name: "Retired", Url: svcURL}}); err != nil {
		t.Fatal(err)
	}
	h, ok := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in target all")
	}
	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: f.login, AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := h.Service.IssueServiceTicket(ctx, tgt, svcURL, false)
	if err != nil {
		t.Fatal(err)
	}
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	clerk, _ := authzOA(t, adm, e.adm(), f.appID)
	if _, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}}); err != nil {
		t.Fatal(err)
	}

	// Active: refused, nothing deleted.
	code, body, _ := e.rest(http.MethodDelete, "/v1/apps/"+f.appID, bearer, nil)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "APP_ACTIVE") {
		t.Fatalf("delete an active application: %d %v", code, body)
	}
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"status"},
		Status: identityv1.AppStatus_APP_STATUS_SUSPENDED}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.rest(http.MethodDelete, "/v1/apps/"+f.appID, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("delete without a token: %d %v", code, body)
	}
	aud := e.grantedAdmin(t, "aud-app", "security_auditor")
	if code, body, _ := e.rest(http.MethodDelete, "/v1/apps/"+f.appID, map[string]string{"Authorization": "Bearer " + aud}, nil); code != http.StatusForbidden {
		t.Fatalf("the security auditor deletes an application: %d %v", code, body)
	}

	if code, body, _ := e.rest(http.MethodDelete, "/v1/apps/"+f.appID, bearer, nil); code != http.StatusOK {
		t.Fatalf("delete: %d %v", code, body)
	}
	if code, body, _ := e.rest(http.MethodGet, "/v1/apps/"+f.appID, bearer, nil); code != http.StatusNotFound {
		t.Fatalf("a deleted application read back: %d %v", code, body)
	}
	if code, body, _ := e.rest(http.MethodDelete, "/v1/apps/"+f.appID, bearer, nil); code != http.StatusNotFound {
		t.Fatalf("deleted twice: %d %v", code, body)
	}
	// Its credentials: refused at once, over REST and gRPC, with the
	// notice that its service ended (JR/T 0185-2020 11).
	if code, body, _ := e.rest(http.MethodPost, "/v1/authenticate", appHeaders(f),
		map[string]any{"app_user_id": f.account, "password": f.password, "auth_type": "AUTH_TYPE_PASSWORD"}); code != http.StatusForbidden ||
		!strings.Contains(fmt.Sprint(body), "APP_TERMINATED") {
		t.Fatalf("a deleted application authenticates: %d %v", code, body)
	}
	_, err = e.authPW(f, f.account, f.password)
	if st := wantCode(t, err, codes.PermissionDenied, "APP_TERMINATED"); !strings.Contains(st.Message(), "terminated on") {
		t.Fatalf("notice: %q", st.Message())
	}
	links, err := e.admin.ListAccountLinks(e.adm(), &identityv1.ListAccountLinksRequest{UserId: f.userID})
	if err != nil || len(links.GetLinks()) != 0 {
		t.Fatalf("links of the deleted application: %v %v", links, err)
	}

	// Ticket drops its CAS service; the ticket issued before is refused.
	eventually(t, "the deleted application's CAS service to go", func() bool {
		l, err := registry.ListServices(e.adm(), &ticketv1.ListServicesRequest{AppId: f.appID})
		return err == nil && len(l.GetServices()) == 0
	})
	v, err := h.Service.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcURL})
	if err != nil || v.Valid || v.Code != ticket.CodeInvalidService {
		t.Fatalf("a ticket of the deleted application's service: %+v %v", v, err)
	}
	// The service's deletion is recorded as the administrator's, who
	// deleted the application.
	who, err := e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: "admin", Password: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	ah := e.app.Value(auditcomponent.Name).(*auditcomponent.Handle)
	eventually(t, "the record of the CAS service's deletion, by the administrator", func() bool {
		found := false
		_ = ah.Store.ScanRecords(ctx, 0, func(r *audit.Record) error {
			found = found || (r.Component == "ticket" && r.API == "service.deleted" && r.Actor == "user:"+who.GetUser().GetId())
			return nil
		})
		return found
	})
	// Authz drops its model and grants.
	eventually(t, "the deleted application's authz model to go", func() bool {
		rs, err := adm.ListResources(e.adm(), &authzv1.ListResourcesRequest{App: f.appID})
		roles, rerr := adm.ListRoles(e.adm(), &authzv1.ListRolesRequest{App: f.appID})
		return err == nil && rerr == nil && len(rs.GetResources()) == 0 && len(roles.GetRoles()) == 0
	})
	gs, err := adm.ListGrants(e.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: f.userID})
	if err != nil || len(gs.GetGrants()) != 0 {
		t.Fatalf("grants of the deleted application's role: %v %v", gs, err)
	}
}
