package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/events"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	authzcomponent "github.com/uias/uias/services/authz/component"
)

// authzOA puts the OA model of docs/integrators.md into authz through
// AuthzAdminService: a docs module with an inbox menu and a contract entity
// with an approval operation, a clerk and an approver role.
func authzOA(t *testing.T, adm authzv1.AuthzAdminServiceClient, ctx context.Context, app string) (clerk, approver string) {
	t.Helper()
	for _, r := range []*authzv1.Resource{
		{App: app, Code: "docs", Kind: "module", Operations: []string{"read"}},
		{App: app, Code: "docs.inbox", Parent: "docs", Kind: "menu", Operations: []string{"read"}},
		{App: app, Code: "docs.contract", Parent: "docs", Kind: "entity", Operations: []string{"read", "approve"}},
	} {
		if _, err := adm.PutResource(ctx, r); err != nil {
			t.Fatalf("put resource %s: %v", r.GetCode(), err)
		}
	}
	c, err := adm.CreateRole(ctx, &authzv1.Role{App: app, Code: "clerk", Permissions: []*authzv1.Permission{{App: app, Resource: "docs.inbox", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := adm.CreateRole(ctx, &authzv1.Role{App: app, Code: "approver", Permissions: []*authzv1.Permission{{App: app, Resource: "docs.contract", Operation: "approve"}}})
	if err != nil {
		t.Fatal(err)
	}
	return c.GetRole().GetId(), a.GetRole().GetId()
}

// Monolithic: authz runs in all; administrators manage the model over gRPC
// and REST, applications ask over both; an org grant follows identity's org
// tree (mirrored from its CHANGES events); a check demanding the revision a
// grant returned sees it; refusals carry their reasons.
func TestAuthzInAll(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "ann", nil, nil)
	branch, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "branch-a", Name: "Branch A", ParentId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	team, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "team-a1", Name: "Team A1", ParentId: branch.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "bob", DisplayName: "Bob", OrgId: team.GetId(),
		Password: "Str0ng-Pass!42"})
	if err != nil {
		t.Fatal(err)
	}
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	az := authzv1.NewAuthzServiceClient(e.conn)
	clerk, approver := authzOA(t, adm, e.adm(), f.appID)

	// A person's own grant, seen at once when the check demands its revision.
	g, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read",
		AtLeastRevision: g.GetRevision()})
	if err != nil || !res.GetAllowed() || res.GetRevision() < g.GetRevision() {
		t.Fatalf("check after grant: %v %v", res, err)
	}

	// An org grant reaches bob, two levels below, once identity's events
	// have told authz where bob is.
	og, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: approver, Subject: &authzv1.Subject{Kind: "org", Id: branch.GetId()}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "an org grant to reach a person below the org", func() bool {
		r, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: bob.GetId(), Resource: "docs.contract", Operation: "approve",
			AtLeastRevision: og.GetRevision()})
		return err == nil && r.GetAllowed()
	})
	ex, err := az.Explain(f.ctx(), &authzv1.CheckRequest{Person: bob.GetId(), Resource: "docs.contract", Operation: "approve"})
	if err != nil || !ex.GetAllowed() || ex.GetGrant().GetId() != og.GetGrant().GetId() || ex.GetGrant().GetSubject().GetId() != branch.GetId() {
		t.Fatalf("explain: %v %v", ex, err)
	}

	// REST, as a business system: check, batch, menus, explain.
	hdr := appHeaders(f)
	code, out, _ := e.rest("POST", "/v1/authz/check", hdr, map[string]any{"person": bob.GetId(), "resource": "docs.contract", "operation": "approve"})
	if code != http.StatusOK || out["allowed"] != true {
		t.Fatalf("REST check: %d %v", code, out)
	}
	code, out, _ = e.rest("POST", "/v1/authz/check:batch", hdr, map[string]any{"checks": []map[string]any{
		{"person": f.userID, "resource": "docs.inbox", "operation": "read"},
		{"person": f.userID, "resource": "docs.contract", "operation": "approve"}}})
	if code != http.StatusOK || fmt.Sprint(out["allowed"]) != "[true false]" {
		t.Fatalf("REST batch: %d %v", code, out)
	}
	code, out, _ = e.rest("GET", "/v1/authz/permissions?person="+f.userID, hdr, nil)
	if code != http.StatusOK || fmt.Sprint(out["permissions"]) != fmt.Sprintf("[map[app:%s operation:read resource:docs.inbox]]", f.appID) {
		t.Fatalf("REST permissions: %d %v", code, out)
	}
	code, out, _ = e.rest("POST", "/v1/authz/explain", hdr, map[string]any{"person": f.userID, "resource": "docs.contract", "operation": "approve"})
	if code != http.StatusOK || out["allowed"] == true || out["reason"] != "NOT_GRANTED" {
		t.Fatalf("REST explain: %d %v", code, out)
	}
	// The decisions are in the audit log (trial7 L6): each call's access
	// record is its decision, under authz.check, authz.batch_check and
	// authz.explain, naming the person, the permission and the answer.
	eventually(t, "the decision records", func() bool {
		seen := map[string]bool{}
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.authz.") {
			if ev["api"] == "uias.authz.v1.AuthzService/Check" || ev["api"] == "uias.authz.v1.AuthzService/BatchCheck" {
				t.Fatalf("a check recorded under its gRPC method beside its decision: %v", ev["_raw"])
			}
			d, _ := ev["detail"].(map[string]any)
			seen[fmt.Sprint(ev["_subject"], " ", ev["subject"], " ", ev["result"], " ", ev["reason"], " ", d["resource"], ":",
				d["operation"], " ", d["checks"], " ", d["denied"], " ", d["first_denied"], " ", d["method"] != nil)] = true
		}
		for _, want := range []string{
			"uias.audit.authz.authz.check user:" + bob.GetId() + " success OK docs.contract:approve <nil> <nil> <nil> true",
			"uias.audit.authz.authz.batch_check user:" + f.userID + " denied NOT_PERMITTED <nil>:<nil> 2 1 docs.contract:approve true",
			"uias.audit.authz.authz.explain user:" + f.userID + " denied NOT_GRANTED docs.contract:approve <nil> <nil> <nil> true",
		} {
			if !seen[want] {
				return false
			}
		}
		return true
	})
	code, out, _ = e.rest("GET", "/v1/authz/subjects?resource=docs.contract&operation=approve", hdr, nil)
	if code != http.StatusOK || len(out["subjects"].([]any)) != 1 {
		t.Fatalf("REST subjects: %d %v", code, out)
	}

	// Refusals: bad application credentials, no administrator token, a
	// revision never issued, both halves of an exclusive pair.
	_, err = az.Check(appCtx(f.appID, "wrong"), &authzv1.CheckRequest{Person: f.userID, Resource: "docs", Operation: "read"})
	wantCode(t, err, codes.Unauthenticated, "BAD_APP_CREDENTIALS")
	_, err = adm.ListRoles(context.Background(), &authzv1.ListRolesRequest{All: true})
	wantCode(t, err, codes.Unauthenticated, "")
	_, err = az.Check(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs", Operation: "read", AtLeastRevision: 1 << 40})
	wantCode(t, err, codes.FailedPrecondition, "REVISION_NOT_REACHED")
	// a revision inside a batch's check was silently ignored; a page token
	// no page issued answered an empty page (trial7 L3)
	_, err = az.BatchCheck(f.ctx(), &authzv1.BatchCheckRequest{Checks: []*authzv1.CheckRequest{
		{Person: f.userID, Resource: "docs", Operation: "read", AtLeastRevision: 5}}})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	_, err = adm.ListGrants(e.adm(), &authzv1.ListGrantsRequest{PageToken: "Z2FyYmFnZQ"})
	wantCode(t, err, codes.InvalidArgument, "INVALID_PAGE_TOKEN")
	// Another business system reads nothing of this one's model: its
	// checks, explanations, permissions and subjects naming this
	// application are refused (its own, app left empty, are answered).
	other := e.seed("hr", "hank", nil, nil)
	foreign := &authzv1.CheckRequest{App: f.appID, Person: f.userID, Resource: "docs.inbox", Operation: "read"}
	_, err = az.Check(other.ctx(), foreign)
	wantCode(t, err, codes.PermissionDenied, "FOREIGN_APP")
	_, err = az.Explain(other.ctx(), foreign)
	wantCode(t, err, codes.PermissionDenied, "FOREIGN_APP")
	_, err = az.BatchCheck(other.ctx(), &authzv1.BatchCheckRequest{Checks: []*authzv1.CheckRequest{foreign}})
	wantCode(t, err, codes.PermissionDenied, "FOREIGN_APP")
	_, err = az.ListPermissions(other.ctx(), &authzv1.ListPermissionsRequest{App: f.appID, Person: f.userID})
	wantCode(t, err, codes.PermissionDenied, "FOREIGN_APP")
	_, err = az.ListSubjects(other.ctx(), &authzv1.ListSubjectsRequest{App: f.appID, Resource: "docs.inbox", Operation: "read"})
	wantCode(t, err, codes.PermissionDenied, "FOREIGN_APP")
	if code, out, _ := e.rest("POST", "/v1/authz/check", appHeaders(other), map[string]any{"app": f.appID, "person": f.userID,
		"resource": "docs.inbox", "operation": "read"}); code != http.StatusForbidden {
		t.Fatalf("REST check of another application: %d %v", code, out)
	}
	if r, err := az.Check(f.ctx(), &authzv1.CheckRequest{App: f.appID, Person: f.userID, Resource: "docs.inbox", Operation: "read"}); err != nil || !r.GetAllowed() {
		t.Fatalf("an application naming itself: %v %v", r, err)
	}
	// A person disabled in identity holds nothing (a business system
	// checking a session it already holds stops serving them), and gets it
	// back when enabled (identity's CHANGES events).
	allowed := func() bool {
		r, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read"})
		return err == nil && r.GetAllowed()
	}
	setStatus := func(st identityv1.UserStatus) {
		t.Helper()
		if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: f.userID, Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(identityv1.UserStatus_USER_STATUS_DISABLED)
	eventually(t, "a disabled person's check refused", func() bool { return !allowed() })
	if ex, err := az.Explain(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read"}); err != nil ||
		ex.GetReason() != "PERSON_DISABLED" {
		t.Fatalf("explain for a disabled person: %v %v", ex, err)
	}
	setStatus(identityv1.UserStatus_USER_STATUS_ACTIVE)
	eventually(t, "the person enabled again allowed", allowed)
	admHdr := map[string]string{"Authorization": "Bearer " + e.token}
	code, out, _ = e.rest("POST", "/v1/authz/exclusions", admHdr, map[string]any{"role_a": clerk, "role_b": approver, "name": "maker-checker"})
	if code != http.StatusOK {
		t.Fatalf("REST exclusion: %d %v", code, out)
	}
	code, out, _ = e.rest("POST", "/v1/authz/grants", admHdr, map[string]any{"role_id": approver, "subject": map[string]any{"kind": "user", "id": f.userID}})
	if code != http.StatusBadRequest || fmt.Sprint(out["details"]) == "" || !containsReason(out, "SOD_CONFLICT") {
		t.Fatalf("REST grant of the other half: %d %v", code, out)
	}
	// a reorganisation is held to the same rule (trial7 H1): the clerk's
	// team moved under the approvers' org is refused, naming the pair
	mkOrg := func(code string) string {
		o, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: code, Name: code, ParentId: e.root})
		if err != nil {
			t.Fatal(err)
		}
		return o.GetId()
	}
	approverOrg, clerkTeam := mkOrg("approvers"), mkOrg("clerk-team")
	if _, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: approver, Subject: &authzv1.Subject{Kind: "org", Id: approverOrg}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: f.userID, OrgId: clerkTeam, UpdateMask: []string{"org_id"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "moving the clerk's team under the approvers refused", func() bool {
		_, err := e.admin.MoveOrg(e.adm(), &identityv1.MoveOrgRequest{Id: clerkTeam, NewParentId: approverOrg})
		if err == nil {
			// authz did not know yet that the clerk is in the team (the
			// person's move reaches it with identity's event): back, again
			if _, err := e.admin.MoveOrg(e.adm(), &identityv1.MoveOrgRequest{Id: clerkTeam, NewParentId: e.root}); err != nil {
				t.Fatal(err)
			}
			return false
		}
		st, _ := status.FromError(err)
		return st.Code() == codes.FailedPrecondition && strings.Contains(st.Message(), "maker-checker")
	})
	code, out, _ = e.rest("POST", "/v1/authz/check", map[string]string{"X-Uias-App-Id": f.appID, "X-Uias-App-Secret": "wrong"},
		map[string]any{"person": f.userID, "resource": "docs", "operation": "read"})
	if code != http.StatusUnauthorized {
		t.Fatalf("REST check with a wrong secret: %d %v", code, out)
	}
	// Revoked: refused at the revision of the revocation.
	rv, err := adm.RevokeGrant(e.adm(), &authzv1.RevokeGrantRequest{Id: g.GetGrant().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	res, err = az.Check(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read", AtLeastRevision: rv.GetRevision()})
	if err != nil || res.GetAllowed() {
		t.Fatalf("check after revoke: %v %v", res, err)
	}
	// Every change went to CHANGES (with its revision) and AUDIT.
	eventually(t, "authz changes in CHANGES and AUDIT", func() bool {
		return len(appEvents(t, e.app, events.StreamChanges, "uias.changes.authz.")) >= 9 &&
			len(appEvents(t, e.app, events.StreamAudit, "uias.audit.authz.")) >= 10
	})
}

func containsReason(out map[string]any, reason string) bool {
	return fmt.Sprint(out["details"]) != "" && slices.ContainsFunc(out["details"].([]any), func(d any) bool {
		m, ok := d.(map[string]any)
		return ok && m["reason"] == reason
	})
}

// Two authz replicas (two processes) on one store and one NATS: a grant
// made through one is answered by the other without the caller naming a
// revision, as soon as its CHANGES event arrives. The test logs the delay
// (issue 10 asks for < 1 s p99); it asserts only that it happens.
func TestAuthzTwoReplicas(t *testing.T) {
	d := newDeployment(t)
	mk := d.config
	oneCfg := mk("identity,authz,gateway", "one")
	makeKeyRing(t, oneCfg) // outside "all" a replica does not make its own
	one := start(t, oneCfg)
	twoCfg := mk("authz", "two")
	twoCfg.DB.DSN = filepath.Join(d.dir, "one", "authz.db") // the same store
	two := start(t, twoCfg)
	one.login()
	f := one.seed("oa", "ann", nil, nil)
	adm := authzv1.NewAuthzAdminServiceClient(one.conn)
	clerk, _ := authzOA(t, adm, one.adm(), f.appID)
	azOne, azTwo := authzv1.NewAuthzServiceClient(one.conn), authzv1.NewAuthzServiceClient(two.conn)
	h := two.app.Value(authzcomponent.Name).(*authzcomponent.Handle)
	<-h.Loaded

	check := func(az authzv1.AuthzServiceClient, person string) bool {
		r, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: person, Resource: "docs.inbox", Operation: "read"})
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		return r.GetAllowed()
	}
	eventually(t, "the second replica to verify application callers through identity", func() bool {
		_, err := azTwo.Check(f.ctx(), &authzv1.CheckRequest{Person: "x", Resource: "docs.inbox", Operation: "read"})
		return err == nil
	})
	var delays []time.Duration
	for i := range 20 {
		// people identity has (a grant to nobody is refused)
		u, err := one.admin.CreateUser(one.adm(), &identityv1.CreateUserRequest{LoginName: fmt.Sprint("p", i), DisplayName: fmt.Sprint("P", i),
			OrgId: one.root})
		if err != nil {
			t.Fatal(err)
		}
		person := u.GetId()
		g, err := adm.CreateGrant(one.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: person}})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		eventually(t, "a grant made through one replica to reach the other", func() bool { return check(azTwo, person) })
		delays = append(delays, time.Since(t0))
		if !check(azOne, person) {
			t.Fatal("the replica that made the grant does not see it")
		}
		if i == 19 {
			if _, err := adm.RevokeGrant(one.adm(), &authzv1.RevokeGrantRequest{Id: g.GetGrant().GetId()}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "a revocation to reach the other replica", func() bool { return !check(azTwo, person) })
		}
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("grant on one replica visible on the other: p50 %v, max %v (%d grants)", delays[len(delays)/2], delays[len(delays)-1], len(delays))
}
