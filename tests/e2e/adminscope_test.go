package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// grantedAdmin makes a person in the root org holding the built-in
// administrator role (unscoped) and returns their administrator token.
func (e *env) grantedAdmin(t *testing.T, login, role string) string {
	t.Helper()
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: login, DisplayName: login, OrgId: e.root,
		Password: escalationPassword, PasswordNeverExpires: true})
	if err != nil {
		t.Fatalf("create %s: %v", login, err)
	}
	by := e.adm()
	if role == "security_auditor" {
		by = e.aud() // an auditor appoints auditors
	}
	res, err := authzv1.NewAuthzAdminServiceClient(e.conn).CreateGrant(by, &authzv1.Grant{RoleId: role,
		Subject: &authzv1.Subject{Kind: "user", Id: u.GetId()}})
	if err != nil {
		t.Fatalf("grant %s to %s: %v", role, login, err)
	}
	e.noteGrant(login, res)
	// authz applies its own write at once: the grant counts for the login
	tok, err := e.firstAdminLogin(t, login, escalationPassword)
	if err != nil {
		t.Fatalf("admin login %s: %v", login, err)
	}
	return tok
}

// The audit, sync and ticket components decide their administrator calls
// with authz (pkg/adminauth), as identity does: the three-administrator
// separation holds there too. The security auditor and the system
// administrator read the whole audit log, a unit administrator the records
// of their subtree's orgs, and only the auditor backs it up; the
// sync state and the ticket registry are the system administrator's. Every
// refusal is PERMISSION_DENIED ADMIN_NOT_ALLOWED with a sentence, over gRPC
// and REST alike.
func TestAdminScopesOfComponents(t *testing.T) {
	x := newEscalation(t)
	e := x.e
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	logc := auditv1.NewAuditLogServiceClient(e.conn)
	syncc := syncv1.NewSyncAdminServiceClient(e.conn)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	sessions := ticketv1.NewTicketAdminServiceClient(e.conn)

	deniedReason := func(what string, err error, why string) {
		t.Helper()
		denied(t, what, err, why)
		if r := errorInfo(status.Convert(err)).GetReason(); r != adminauth.ReasonNotAllowed {
			t.Errorf("%s: reason %q, want %s", what, r, adminauth.ReasonNotAllowed)
		}
	}

	// The security auditor reads and verifies the audit log.
	if _, err := q.QueryRecords(x.as("aud"), &auditv1.QueryRecordsRequest{Api: "admin.login"}); err != nil {
		t.Fatalf("auditor reads the audit log: %v", err)
	}
	if _, err := logc.VerifyLog(x.as("aud"), &auditv1.VerifyLogRequest{}); err != nil {
		t.Fatalf("auditor verifies the audit log: %v", err)
	}
	code, out, _ := e.rest(http.MethodGet, "/v1/audit/records?page_size=1", x.asHeader("aud"), nil)
	if code != http.StatusOK {
		t.Fatalf("auditor reads the audit log over REST: %d %v", code, out)
	}

	// System administrators (by grant and the bootstrap one) read and
	// verify the whole log too (004 2.1.7.1: "the system administrator
	// queries all logs"), but back up and remove nothing.
	for _, who := range []string{"admin", "sys2"} {
		eventually(t, who+" reads the records of every org", func() bool {
			r, err := q.QueryRecords(x.as(who), &auditv1.QueryRecordsRequest{Subject: "user:" + x.carol})
			if err != nil {
				t.Fatalf("%s reads the audit log: %v", who, err)
			}
			return len(r.GetRecords()) > 0
		})
		// carol's creation names the administrator who created her
		r, err := q.QueryRecords(x.as(who), &auditv1.QueryRecordsRequest{Subject: "user:" + x.carol, Api: "user.create"})
		if err != nil || len(r.GetRecords()) != 1 || r.GetRecords()[0].GetActorName() != "admin (System Administrator)" {
			t.Errorf("carol's creation as %s reads it: %v %v", who, r, err)
		}
		// allowed: a checkpoint, or none signed yet (not a refusal)
		if _, err := logc.GetCheckpoint(x.as(who), &auditv1.GetCheckpointRequest{}); err != nil && status.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s reads an audit checkpoint: %v", who, err)
		}
		_, err = logc.ArchiveRecords(x.as(who), &auditv1.ArchiveRecordsRequest{Before: timestamppb.Now()})
		deniedReason(who+" backs up the audit log", err, "not allowed to archive audit.records")
	}

	// A unit administrator reads the records of the orgs of their subtree
	// (004 2.1.7.1: "unit administrators query their own org's logs"):
	// bob's (east1, below east), never carol's (west), nor records of no
	// org; proofs and checkpoints concern the whole log and are refused.
	inSubtree := map[string]bool{x.east: true, x.east1: true}
	eventually(t, "the unit administrator reads bob's records", func() bool {
		r, err := q.QueryRecords(x.as("unitA"), &auditv1.QueryRecordsRequest{Subject: "user:" + x.bob})
		if err != nil {
			t.Fatalf("unit admin reads the audit log of their subtree: %v", err)
		}
		return len(r.GetRecords()) > 0
	})
	all, err := q.QueryRecords(x.as("unitA"), &auditv1.QueryRecordsRequest{PageSize: 1000})
	if err != nil || len(all.GetRecords()) == 0 {
		t.Fatalf("unit admin reads the audit log: %v %v", all, err)
	}
	for _, r := range all.GetRecords() {
		if !inSubtree[r.GetOrg()] {
			t.Fatalf("a unit admin of east reads a record of org %q: %v", r.GetOrg(), r)
		}
	}
	if r, err := q.QueryRecords(x.as("unitA"), &auditv1.QueryRecordsRequest{Subject: "user:" + x.carol}); err != nil || len(r.GetRecords()) != 0 {
		t.Fatalf("unit admin of east reads carol's records (west): %v %v", r, err)
	}
	// One person's login history: a person outside the subtree is refused
	// (an empty answer would read "carol never signed in"), bob's answered.
	an := auditv1.NewAuditAnalyticsServiceClient(e.conn)
	_, err = an.LoginHistory(x.as("unitA"), &auditv1.LoginHistoryRequest{UserId: x.carol})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "outside the org subtrees you administer") {
		t.Fatalf("unit admin of east asks for carol's logins (west): %v", err)
	}
	if _, err := an.LoginHistory(x.as("unitA"), &auditv1.LoginHistoryRequest{UserId: x.bob}); err != nil {
		t.Fatalf("unit admin of east asks for bob's logins: %v", err)
	}
	if _, err := an.LoginHistory(x.as("aud"), &auditv1.LoginHistoryRequest{UserId: x.carol}); err != nil {
		t.Fatalf("the auditor asks for carol's logins: %v", err)
	}
	// a person of the subtree since deleted, or an id nobody has: answered
	// from the scoped records, not refused
	gone, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "gone", DisplayName: "Gone", OrgId: x.east1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.DeleteUser(e.adm(), &identityv1.DeleteUserRequest{Id: gone.GetId()}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{gone.GetId(), "no-such-person"} {
		if _, err := an.LoginHistory(x.as("unitA"), &auditv1.LoginHistoryRequest{UserId: id}); err != nil {
			t.Fatalf("unit admin of east asks for the logins of %s: %v", id, err)
		}
	}
	// last access: a unit administrator (who may not list the applications)
	// is refused an application nobody has too
	_, err = an.LastAccess(x.as("unitA"), &auditv1.LastAccessRequest{AppIds: []string{"no-such-app"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unit admin asks for the last access to an application nobody has: %v", err)
	}
	// An org filter (004 2.1.7.2, reports per org unit): the org and the
	// orgs below it, within the caller's scope.
	for who, want := range map[string]map[string]bool{"aud": inSubtree, "unitA": inSubtree} {
		r, err := q.QueryRecords(x.as(who), &auditv1.QueryRecordsRequest{OrgId: x.east, PageSize: 1000})
		if err != nil || len(r.GetRecords()) == 0 {
			t.Fatalf("%s asks for the records of east: %v %v", who, r, err)
		}
		for _, rec := range r.GetRecords() {
			if !want[rec.GetOrg()] {
				t.Fatalf("%s: the records of east hold one of org %q", who, rec.GetOrg())
			}
		}
	}
	if r, err := q.QueryRecords(x.as("aud"), &auditv1.QueryRecordsRequest{OrgId: x.west, Subject: "user:" + x.carol}); err != nil ||
		len(r.GetRecords()) == 0 || r.GetRecords()[0].GetOrg() != x.west {
		t.Fatalf("the auditor asks for carol's records in west: %v %v", r, err)
	}
	_, err = q.QueryRecords(x.as("unitA"), &auditv1.QueryRecordsRequest{OrgId: x.west})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unit admin of east asks for the records of west: %v", err)
	}
	_, err = q.QueryRecords(x.as("aud"), &auditv1.QueryRecordsRequest{OrgId: "no-such-org"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("records of an org nobody has: %v", err)
	}
	rep := auditv1.NewAuditReportServiceClient(e.conn)
	counts, err := rep.CountRecords(x.as("aud"), &auditv1.CountRecordsRequest{By: auditv1.CountBy_COUNT_BY_ORG,
		Filter: &auditv1.RecordFilter{OrgId: x.east}})
	if err != nil || len(counts.GetCounts()) == 0 {
		t.Fatalf("counts by org within east: %v %v", counts, err)
	}
	for _, c := range counts.GetCounts() {
		if !inSubtree[c.GetKey()] {
			t.Fatalf("counts by org within east hold org %q", c.GetKey())
		}
	}
	code, out, _ = e.rest(http.MethodGet, "/v1/audit/records?org_id="+x.west, x.asHeader("unitA"), nil)
	if code != http.StatusForbidden {
		t.Fatalf("unit admin of east asks for the records of west over REST: %d %v", code, out)
	}
	code, out, _ = e.rest(http.MethodGet, "/v1/audit/records?page_size=1000", x.asHeader("unitA"), nil)
	recs, _ := out["records"].([]any)
	if code != http.StatusOK || len(recs) == 0 {
		t.Fatalf("unit admin reads the audit log over REST: %d %v", code, out)
	}
	for _, r := range recs {
		if org, _ := r.(map[string]any)["org"].(string); !inSubtree[org] {
			t.Fatalf("a unit admin of east reads a record of org %q over REST", org)
		}
	}
	_, err = logc.GetCheckpoint(x.as("unitA"), &auditv1.GetCheckpointRequest{})
	deniedReason("unit admin reads an audit checkpoint", err, "not allowed to verify audit.records")
	_, err = logc.ProveInclusion(x.as("unitA"), &auditv1.ProveInclusionRequest{Seq: 1})
	deniedReason("unit admin asks for an inclusion proof", err, "not allowed to read audit.records")
	_, err = logc.ArchiveRecords(x.as("unitA"), &auditv1.ArchiveRecordsRequest{Before: timestamppb.Now()})
	deniedReason("unit admin backs up the audit log", err, "not allowed to archive audit.records")

	// The sync state: system administrators and the auditor (read) may see
	// it; a unit administrator may not.
	for _, who := range []string{"admin", "sys2", "aud"} {
		if _, err := syncc.GetSyncStatus(x.as(who), &syncv1.GetSyncStatusRequest{}); err != nil {
			t.Errorf("%s reads the sync status: %v", who, err)
		}
	}
	_, err = syncc.GetSyncStatus(x.as("unitA"), &syncv1.GetSyncStatusRequest{})
	deniedReason("unit admin reads the sync status", err, "not allowed to read sync.replication")
	code, out, _ = e.rest(http.MethodGet, "/v1/sync/status", x.asHeader("unitA"), nil)
	restDenied(t, "unit admin reads the sync status", code, out, "not allowed to read sync.replication")

	// The ticket registry and sessions: the system administrator registers
	// and revokes; the auditor only reads; a unit administrator reads the
	// sessions of their subtree only, and not the registry.
	app, err := e.admin.CreateApp(x.as("sys2"), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "scoped", Name: "Scoped"})
	if err != nil {
		t.Fatal(err)
	}
	def := &ticketv1.ServiceDefinition{AppId: app.GetApp().GetId(), Name: "Scoped", Url: "https://scoped.example.com/"}
	if _, err := registry.CreateService(x.as("sys2"), &ticketv1.CreateServiceRequest{Service: def}); err != nil {
		t.Fatalf("system admin registers a service: %v", err)
	}
	if l, err := registry.ListServices(x.as("aud"), &ticketv1.ListServicesRequest{}); err != nil || len(l.GetServices()) == 0 {
		t.Fatalf("auditor lists services: %v %v", l, err)
	}
	_, err = registry.CreateService(x.as("aud"), &ticketv1.CreateServiceRequest{Service: def})
	deniedReason("auditor registers a service", err, "not allowed to write ticket.services")
	_, err = registry.ListServices(x.as("unitA"), &ticketv1.ListServicesRequest{})
	deniedReason("unit admin lists services", err, "not allowed to read ticket.services")
	code, out, _ = e.rest(http.MethodPost, "/v1/cas/services", x.asHeader("aud"), map[string]any{"service": map[string]any{
		"app_id": app.GetApp().GetId(), "url": "https://other.example.com/"}})
	restDenied(t, "auditor registers a service", code, out, "not allowed to write ticket.services")
	if _, err := sessions.ListUserSessions(x.as("aud"), &ticketv1.ListUserSessionsRequest{UserId: x.bob}); err != nil {
		t.Errorf("auditor lists sessions: %v", err)
	}
	_, err = sessions.RevokeUserSessions(x.as("aud"), &ticketv1.RevokeUserSessionsRequest{UserId: x.bob})
	deniedReason("auditor revokes sessions", err, "not allowed to revoke ticket.sessions")
	// a unit administrator reads the sessions of the people of their subtree
	// (bob is in east1, below east), no one else's, and revokes none
	if _, err := sessions.ListUserSessions(x.as("unitA"), &ticketv1.ListUserSessionsRequest{UserId: x.bob}); err != nil {
		t.Errorf("unit admin lists the sessions of a person of their subtree: %v", err)
	}
	_, err = sessions.ListUserSessions(x.as("unitA"), &ticketv1.ListUserSessionsRequest{UserId: x.carol})
	deniedReason("unit admin lists the sessions of a person of another branch", err, "not allowed to read ticket.sessions")
	_, err = sessions.RevokeUserSessions(x.as("unitA"), &ticketv1.RevokeUserSessionsRequest{UserId: x.bob})
	deniedReason("unit admin revokes sessions", err, "not allowed to revoke ticket.sessions")
	if _, err := sessions.RevokeUserSessions(x.as("sys2"), &ticketv1.RevokeUserSessionsRequest{UserId: x.bob}); err != nil {
		t.Errorf("system admin revokes sessions: %v", err)
	}

	// Without a token: UNAUTHENTICATED, before any permission.
	_, err = q.QueryRecords(context.Background(), &auditv1.QueryRecordsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("audit without a token: %v", err)
	}
}

// The legacy is_admin flag becomes a grant: identity appoints the
// bootstrap administrator (and anyone created with the flag) system_admin
// in authz and clears the flag, keeping their tokens. From then on only the
// grant counts: revoked, the administrator can do nothing, flag or not.
func TestIsAdminMigratedIntoGrants(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	az := authzv1.NewAuthzAdminServiceClient(e.conn)
	adminID := e.adminID(t)
	migrated := func(id string) string {
		t.Helper()
		var grant string
		eventually(t, "the is_admin flag of "+id+" to become a grant", func() bool {
			u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: id})
			if err != nil || u.GetIsAdmin() {
				return false
			}
			gs, err := az.ListGrants(e.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: id, RoleId: "system_admin"})
			if err != nil || len(gs.GetGrants()) != 1 {
				return false
			}
			grant = gs.GetGrants()[0].GetId()
			return true
		})
		return grant
	}
	adminGrant := migrated(adminID)
	// the token taken before the migration still works
	if _, err := e.admin.ListOrgs(e.adm(), &identityv1.ListOrgsRequest{}); err != nil {
		t.Fatalf("admin token after the migration: %v", err)
	}

	// A user created with the flag (by a system administrator) is appointed
	// too, and logs in.
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "second", DisplayName: "Second", OrgId: e.root,
		Password: escalationPassword, PasswordNeverExpires: true, IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	migrated(u.GetId())
	tok, err := e.firstAdminLogin(t, "second", escalationPassword)
	if err != nil {
		t.Fatalf("appointed administrator logs in: %v", err)
	}
	second := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)

	// The grant is what counts: the second system administrator revokes the
	// bootstrap administrator's, whose token is then refused everything.
	if _, err := az.RevokeGrant(second, &authzv1.RevokeGrantRequest{Id: adminGrant}); err != nil {
		t.Fatalf("revoke the bootstrap admin's grant: %v", err)
	}
	_, err = e.admin.ListOrgs(e.adm(), &identityv1.ListOrgsRequest{})
	if c := status.Code(err); c != codes.Unauthenticated && c != codes.PermissionDenied {
		t.Fatalf("bootstrap admin after revocation: %v", err)
	}
	_, err = e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "admin", Password: adminPassword})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("bootstrap admin logs in after revocation: %v", err)
	}
}
