package e2e

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// The ticket component in target all: tickets validated over gRPC by
// anyone (the ticket is the credential), session calls refused to callers
// that are no UIAS component, administrators listing and revoking a
// person's sessions, and a disabled or locked person losing their sessions
// through identity's CHANGES events.
func TestTicketComponent(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("tkt", "tina", nil, nil)
	h, ok := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in target all")
	}
	ctx := context.Background()
	tickets := ticketv1.NewTicketServiceClient(e.conn)
	admin := ticketv1.NewTicketAdminServiceClient(e.conn)

	// Session calls are for components only (the CAS edge), not for a
	// client over the network.
	_, err := tickets.CreateSession(ctx, &ticketv1.CreateSessionRequest{UserId: f.userID, Login: "tina", AuthLevel: 1})
	wantCode(t, err, codes.PermissionDenied, "COMPONENTS_ONLY")

	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "tina", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	const svc = "https://oa.example.com/"
	// No ticket for a service nobody registered.
	if _, _, err := h.Service.IssueServiceTicket(ctx, tgt, svc, true); !errors.Is(err, ticket.ErrServiceNotRegistered) {
		t.Fatalf("ticket for an unregistered service: %v", err)
	}
	// Administrators register the application's service (identity checks
	// the token and the application).
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	def := &ticketv1.ServiceDefinition{AppId: f.appID, Name: "OA", Url: "https://OA.example.com/"}
	_, err = registry.CreateService(ctx, &ticketv1.CreateServiceRequest{Service: def})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_TOKEN")
	_, err = registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: "no-such-app", Url: svc}})
	wantCode(t, err, codes.NotFound, "")
	_, err = registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID, Url: "https://oa.example.com@evil.example/"}})
	wantCode(t, err, codes.InvalidArgument, "BAD_SERVICE_DEFINITION")
	rs, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: def})
	if err != nil || rs.GetUrl() != "https://oa.example.com:443/" || rs.GetMinAuthLevel() != 1 || !rs.GetEnabled() {
		t.Fatalf("register: %v %v", rs, err)
	}
	code, body, _ := e.rest(http.MethodGet, "/v1/cas/services?app_id="+f.appID, map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusOK || len(body["services"].([]any)) != 1 {
		t.Fatalf("REST list services: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodPost, "/v1/cas/services", map[string]string{"Authorization": "Bearer " + e.token},
		map[string]any{"service": map[string]any{"app_id": f.appID, "pattern": `https://[a-z]+\.oa\.example\.com/.*`, "min_auth_level": 2}})
	if code != http.StatusOK || body["pattern"] == "" {
		t.Fatalf("REST register a pattern: %d %v", code, body)
	}
	if _, err := tickets.MatchService(ctx, &ticketv1.MatchServiceRequest{Service: svc}); err == nil {
		t.Fatal("MatchService over the network without being a component")
	}
	if _, _, err := h.Service.IssueServiceTicket(ctx, tgt, "https://hr.oa.example.com/x", true); !errors.Is(err, ticket.ErrAuthLevelTooLow) {
		t.Fatalf("level-2 service from a password session: %v", err)
	}
	st, _, err := h.Service.IssueServiceTicket(ctx, tgt, svc, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st, Service: svc})
	if err != nil || !res.GetValid() || res.GetUserId() != f.userID || res.GetLogin() != "tina" || res.GetAppId() != f.appID {
		t.Fatalf("validate over gRPC: %v %v", res, err)
	}
	res, err = tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: st, Service: svc})
	if err != nil || res.GetValid() || res.GetCode() != ticketv1.CasCode_CAS_CODE_INVALID_TICKET {
		t.Fatalf("replay over gRPC: %v %v", res, err)
	}

	// Administrators list and revoke sessions; identity checks the token.
	_, err = admin.ListUserSessions(ctx, &ticketv1.ListUserSessionsRequest{UserId: f.userID})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_TOKEN")
	list, err := admin.ListUserSessions(e.adm(), &ticketv1.ListUserSessionsRequest{UserId: f.userID})
	if err != nil || len(list.GetSessions()) != 1 || list.GetSessions()[0].GetServices()[0] != svc {
		t.Fatalf("list sessions: %v %v", list, err)
	}
	code, body, _ = e.rest(http.MethodGet, "/v1/users/"+f.userID+"/sessions", map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusOK || len(body["sessions"].([]any)) != 1 {
		t.Fatalf("REST list sessions: %d %v", code, body)
	}
	second, _, _ := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "tina", AuthLevel: 1})
	rv, err := admin.RevokeUserSessions(e.adm(), &ticketv1.RevokeUserSessionsRequest{UserId: f.userID, SessionId: ticket.SessionID(second)})
	if err != nil || rv.GetEnded() != 1 {
		t.Fatalf("revoke one: %v %v", rv, err)
	}
	_, err = admin.RevokeUserSessions(e.adm(), &ticketv1.RevokeUserSessionsRequest{UserId: f.userID, SessionId: ticket.SessionID(second)})
	wantCode(t, err, codes.NotFound, "SESSION_NOT_OF_USER")

	// Disabling the person ends their sessions (CHANGES user.status_changed).
	begin := time.Now()
	if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: f.userID, Status: identityv1.UserStatus_USER_STATUS_DISABLED}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disabled person's session to end", func() bool {
		_, err := h.Service.GetSession(ctx, tgt)
		return err != nil
	})
	t.Logf("session ended %s after the person was disabled", time.Since(begin).Round(time.Millisecond))

	// Locking does too (CHANGES user.locked).
	if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: f.userID, Status: identityv1.UserStatus_USER_STATUS_ACTIVE}); err != nil {
		t.Fatal(err)
	}
	tgt, _, _ = h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "tina", AuthLevel: 1})
	if _, err := e.admin.LockUser(e.adm(), &identityv1.LockUserRequest{Id: f.userID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the locked person's session to end", func() bool {
		_, err := h.Service.GetSession(ctx, tgt)
		return err != nil
	})

	// So does a password reset by an administrator (CHANGES
	// user.password_changed): whoever knew the old one is signed out.
	if _, err := e.admin.UnlockUser(e.adm(), &identityv1.UnlockUserRequest{Id: f.userID}); err != nil {
		t.Fatal(err)
	}
	tgt, _, _ = h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "tina", AuthLevel: 1})
	if _, err := e.admin.SetPassword(e.adm(), &identityv1.SetPasswordRequest{Id: f.userID, Password: "Reset-Pass-42x"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session to end on a password reset", func() bool {
		_, err := h.Service.GetSession(ctx, tgt)
		return err != nil
	})
	// A change on the SSO pages keeps the session it was made in and
	// ends the person's others.
	here, _, _ := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "tina", AuthLevel: 1})
	other, _, _ := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "tina", AuthLevel: 1})
	sess, err := h.Service.GetSession(ctx, here)
	if err != nil {
		t.Fatal(err)
	}
	idh := e.app.Value(identitycomponent.Name).(*identitycomponent.Handle)
	if err := idh.Service.SSOChangePassword(ctx, "tina", "Reset-Pass-42x", "Kept-Session-7x", sess.ID, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other session to end on a change on the SSO pages", func() bool {
		_, err := h.Service.GetSession(ctx, other)
		return err != nil
	})
	if _, err := h.Service.GetSession(ctx, here); err != nil {
		t.Fatalf("the session the password was changed in ended: %v", err)
	}

	// Every step left its audit record.
	eventually(t, "ticket audit records", func() bool {
		seen := map[string]bool{}
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.") {
			seen[ev["_subject"].(string)+"/"+ev["result"].(string)+"/"+ev["reason"].(string)] = true
		}
		for _, want := range []string{"service.created/success/OK", "session.create/success/OK", "ticket.issue/success/OK", "ticket.validate/success/OK",
			"ticket.validate/failure/UNKNOWN_OR_USED", "session.end/success/ADMIN_REVOKED", "session.end/success/USER_DISABLED",
			"session.end/success/USER_LOCKED", "session.end/success/PASSWORD_CHANGED"} {
			if !seen["uias.audit.ticket."+want] {
				return false
			}
		}
		return true
	})
	// One record per validation (ADR 0007 amendment): the ticket.validate
	// record is the call's access record, with its method and status code
	// and request id; none under the gRPC method. With the access records
	// off, the validation is still recorded.
	const method = "uias.ticket.v1.TicketService/ValidateServiceTicket"
	validations := func() (merged, plain int) {
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.") {
			if ev["api"] == method {
				t.Errorf("an access record under the method beside the validation's: %v", ev["_raw"])
			}
			if ev["_subject"] != "uias.audit.ticket.ticket.validate" {
				continue
			}
			d, _ := ev["detail"].(map[string]any)
			switch {
			case d["method"] == method && d["grpc_code"] == "OK" && ev["serial"] != "" && ev["serial"] != nil:
				merged++
			case d["method"] == nil && d["grpc_code"] == nil:
				plain++
			default:
				t.Errorf("validation record: %v", ev["_raw"])
			}
		}
		return merged, plain
	}
	if merged, plain := validations(); merged != 2 || plain != 0 {
		t.Fatalf("validation records: %d with their call's access fields (want 2), %d without (want 0)", merged, plain)
	}
	e.app.SetAccessLog(false)
	if res, err := tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: "ST-1-forged", Service: svc}); err != nil || res.GetValid() {
		t.Fatalf("a forged ticket: %v %v", res, err)
	}
	e.app.SetAccessLog(true)
	eventually(t, "the validation recorded with the access records off", func() bool {
		merged, plain := validations()
		return merged == 2 && plain == 1
	})

	// The administrator who revoked a session, and who registered the
	// service, is named in the records.
	me, err := identityv1.NewAdminSessionServiceClient(e.conn).WhoAmI(e.adm(), &identityv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.") {
		if ev["reason"] == "ADMIN_REVOKED" || ev["_subject"] == "uias.audit.ticket.service.created" {
			if ev["actor"] != "user:"+me.GetUser().GetId() {
				t.Errorf("%s: actor %v, want the administrator user:%s", ev["_subject"], ev["actor"], me.GetUser().GetId())
			}
		}
	}
}

// TestOrgDisabledEndsSessions: disabling an org ends the sessions of the
// people in it and below it (a person below a disabled org may not sign
// in: identity's InactivePeople), not those of people elsewhere; enabling
// it again restores nothing, and new logins work again.
func TestOrgDisabledEndsSessions(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	ctx := context.Background()
	org := func(code, parent string) string {
		o, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: code, Name: code, ParentId: parent})
		if err != nil {
			t.Fatal(err)
		}
		return o.GetId()
	}
	bureau := org("bureau", e.root)
	branch, other := org("branch", bureau), org("other", e.root)
	session := func(login, orgID string) string {
		u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: login, DisplayName: login, OrgId: orgID,
			Password: "Harbour-Pass-1"})
		if err != nil {
			t.Fatal(err)
		}
		tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: u.GetId(), Login: login, AuthLevel: 1, OrgID: orgID})
		if err != nil {
			t.Fatal(err)
		}
		return tgt
	}
	inBureau, inBranch, elsewhere := session("gina", bureau), session("hank", branch), session("ivy", other)
	if _, err := e.admin.SetOrgStatus(e.adm(), &identityv1.SetOrgStatusRequest{Id: bureau, Status: identityv1.Status_STATUS_DISABLED}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the sessions below the disabled org to end", func() bool {
		_, err1 := h.Service.GetSession(ctx, inBureau)
		_, err2 := h.Service.GetSession(ctx, inBranch)
		return errors.Is(err1, ticket.ErrSessionNotFound) && errors.Is(err2, ticket.ErrSessionNotFound)
	})
	if _, err := h.Service.GetSession(ctx, elsewhere); err != nil {
		t.Fatalf("a session in another org ended: %v", err)
	}
	// A session opened while the org is disabled cannot come from a login
	// (identity refuses it); re-enabled, people sign in again.
	if _, err := e.admin.SetOrgStatus(e.adm(), &identityv1.SetOrgStatusRequest{Id: bureau, Status: identityv1.Status_STATUS_ACTIVE}); err != nil {
		t.Fatal(err)
	}
	// InactivePeople is for components only.
	_, err := identityv1.NewSSOServiceClient(e.conn).InactivePeople(ctx, &identityv1.InactivePeopleRequest{UserIds: []string{"x"}})
	wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
}

// TestInactiveSweepEndsMissedSessions: the sessions of a person who may no
// longer sign in end even when the change event never reached the ticket
// component (stopped, or cut off from NATS, when it was published): its
// sweep (ticket.inactive_sweep) asks identity. Here a person identity does
// not know (deleted while the instance was away: no event will come); an
// active person's session stays.
func TestInactiveSweepEndsMissedSessions(t *testing.T) {
	cfg := testConfig(t.TempDir())
	ticketcomponent.Settings(&cfg).InactiveSweep = time.Second
	e := start(t, cfg)
	e.login()
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	ctx := context.Background()
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "kim", DisplayName: "Kim", OrgId: e.root,
		Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	active, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: u.GetId(), Login: "kim", AuthLevel: 1, OrgID: e.root})
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: "01a0000000000000000000000000dead", Login: "ghost", AuthLevel: 1,
		OrgID: e.root})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the session of a person identity does not know to end", func() bool {
		_, err := h.Service.GetSession(ctx, gone)
		return errors.Is(err, ticket.ErrSessionNotFound)
	})
	if _, err := h.Service.GetSession(ctx, active); err != nil {
		t.Fatalf("the session of an active person ended: %v", err)
	}
}
