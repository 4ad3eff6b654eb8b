package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
)

func (f *fixture) outbox(subjectPrefix string) []string {
	f.t.Helper()
	rows, err := f.db.QueryContext(f.ctx, f.db.Rebind(`SELECT payload FROM events_outbox WHERE subject LIKE ? ORDER BY seq`), subjectPrefix+"%")
	f.must(err)
	defer func() { _ = rows.Close() }()
	var out []string
	for rows.Next() {
		var p []byte
		f.must(rows.Scan(&p))
		out = append(out, string(p))
	}
	f.must(rows.Err())
	return out
}

// A person or group deleted in identity takes its grants: each goes as a
// revocation would (a grant delete change, its CHANGES event, an audit
// record naming the cause and the administrator), other subjects keep
// theirs, and applying the deletion again, or on another replica, deletes
// nothing more.
func TestDeleteGrantsOfDeletedSubjects(t *testing.T) {
	f := newFixture(t)
	clerk, approver, _ := f.oa()
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	group := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectGroup, ID: id} }
	f.grant(clerk, authz.SubjectUser, "ann")
	f.grant(approver, authz.SubjectUser, "ann")
	f.grant(clerk, authz.SubjectUser, "bob")
	f.grant(approver, authz.SubjectGroup, "g1")
	f.grant(approver, authz.SubjectGroup, "ann") // a group with the person's id
	f.svc.Index().SetGroupMember("g1", "bob", true)
	other := f.replica()
	if !f.check(f.svc, "ann", "oa", "docs.contract", "approve") || !f.check(f.svc, "bob", "oa", "docs.contract", "approve") {
		t.Fatal("before: the grants do not allow")
	}
	changesBefore := len(f.outbox("uias.changes.authz.grant.delete"))
	rev := f.svc.Index().Revision()

	n, err := f.svc.DeleteGrantsOf(as("admin1"), user("ann"), "user.deleted")
	if err != nil || n != 2 {
		t.Fatalf("ann's grants: %d deleted, %v; want 2", n, err)
	}
	if got := f.svc.Index().Revision(); got != rev+2 {
		t.Fatalf("revision %d, want %d (one per grant)", got, rev+2)
	}
	if gs := f.svc.Index().Grants(index.GrantFilter{Subject: &authz.Subject{Kind: authz.SubjectUser, ID: "ann"}}); len(gs) != 0 {
		t.Fatalf("ann still holds %v", gs)
	}
	if f.check(f.svc, "ann", "oa", "docs.inbox", "read") || f.check(f.svc, "ann", "oa", "docs.contract", "approve") {
		t.Fatal("a deleted person's grants still allow")
	}
	if !f.check(f.svc, "bob", "oa", "docs.inbox", "read") {
		t.Fatal("another person lost a grant")
	}
	if gs := f.svc.Index().Grants(index.GrantFilter{Subject: &authz.Subject{Kind: authz.SubjectGroup, ID: "ann"}}); len(gs) != 1 {
		t.Fatalf("the group named like the person lost its grant: %v", gs)
	}
	// Each delete has its CHANGES event and its audit record.
	if got := len(f.outbox("uias.changes.authz.grant.delete")) - changesBefore; got != 2 {
		t.Fatalf("%d grant delete events, want 2", got)
	}
	var audits []string
	for _, p := range f.outbox("uias.audit.authz.") {
		if strings.Contains(p, commands.ReasonSubjectDeleted) {
			audits = append(audits, p)
		}
	}
	if len(audits) != 2 || !strings.Contains(audits[0], "grant.revoke") || !strings.Contains(audits[0], "user.deleted") ||
		!strings.Contains(audits[0], "admin1") || !strings.Contains(audits[0], "user:ann") {
		t.Fatalf("audit records: %v", audits)
	}

	// Again (the event applied twice), and on another replica: nothing.
	if n, err := f.svc.DeleteGrantsOf(as("admin1"), user("ann"), "user.deleted"); err != nil || n != 0 {
		t.Fatalf("again: %d, %v", n, err)
	}
	if n, err := other.DeleteGrantsOf(context.Background(), user("ann"), "user.deleted"); err != nil || n != 0 {
		t.Fatalf("on another replica: %d, %v", n, err)
	}
	if got := f.svc.Index().Revision(); got != rev+2 {
		t.Fatalf("revision moved to %d by deleting nothing", got)
	}
	if f.check(other, "ann", "oa", "docs.inbox", "read") {
		t.Fatal("the other replica still allows the deleted person")
	}

	// A deleted group: its grants go; bob keeps his own.
	if n, err := other.DeleteGrantsOf(context.Background(), group("g1"), "group.deleted"); err != nil || n != 1 {
		t.Fatalf("g1's grants: %d, %v", n, err)
	}
	if err := f.svc.CatchUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	if f.check(f.svc, "bob", "oa", "docs.contract", "approve") || !f.check(f.svc, "bob", "oa", "docs.inbox", "read") {
		t.Fatal("after g1's deletion: bob still approves through it, or lost his own grant")
	}
	// an org's grants go with it (an org is deleted empty; trial7 L7)
	if _, err := f.svc.DeleteGrantsOf(f.ctx, authz.Subject{Kind: authz.SubjectOrg, ID: "east"}, "org.deleted"); err != nil {
		t.Fatalf("an org's grants: %v", err)
	}
	if _, err := f.svc.DeleteGrantsOf(f.ctx, authz.Subject{Kind: "planet", ID: "x"}, "planet.deleted"); reasonOf(err) != authz.ReasonBadModel {
		t.Fatalf("a planet's grants: %v", err)
	}
}

// Replicas racing to apply the same deletion delete each grant once, with
// every revision given once.
func TestDeleteGrantsOfRacingReplicas(t *testing.T) {
	f := newFixture(t)
	clerk, approver, head := f.oa()
	for _, r := range []string{clerk, approver, head} {
		f.grant(r, authz.SubjectUser, "ann")
	}
	rev := f.svc.Index().Revision()
	svcs := []*commands.Service{f.svc, f.replica(), f.replica(), f.replica()}
	var wg sync.WaitGroup
	counts := make([]int, len(svcs))
	errs := make([]error, len(svcs))
	for i, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = s.DeleteGrantsOf(f.ctx, authz.Subject{Kind: authz.SubjectUser, ID: "ann"}, "user.deleted")
		}()
	}
	wg.Wait()
	total := 0
	for i := range svcs {
		if errs[i] != nil && reasonOf(errs[i]) != "STORAGE_UNAVAILABLE" {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += counts[i]
	}
	// SQLite may answer a racing writer busy; that replica retries later
	// (the component's loop) and finds nothing left.
	for i, s := range svcs {
		if errs[i] != nil {
			n, err := s.DeleteGrantsOf(f.ctx, authz.Subject{Kind: authz.SubjectUser, ID: "ann"}, "user.deleted")
			if err != nil {
				t.Fatalf("replica %d again: %v", i, err)
			}
			total += n
		}
	}
	if total != 3 {
		t.Fatalf("%d grants deleted in all, want 3", total)
	}
	chs, err := sqlstoreChanges(f, rev)
	if err != nil || len(chs) != 3 {
		t.Fatalf("changes after the deletion: %+v %v", chs, err)
	}
	for i, c := range chs {
		if c.Rev != rev+int64(i)+1 || c.Op != authz.OpDelete {
			t.Fatalf("change %d: %+v", i, c)
		}
	}
}

func sqlstoreChanges(f *fixture, since int64) ([]authz.Change, error) {
	var out []authz.Change
	rows, err := f.db.QueryContext(f.ctx, f.db.Rebind(`SELECT rev, op, id FROM authz_changes WHERE rev > ? ORDER BY rev`), since)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var c authz.Change
		if err := rows.Scan(&c.Rev, &c.Op, &c.ID); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// The last security auditor stays: their grant is kept when the person is
// deleted (identity refuses that at home; another centre, where the person
// is a replica, may not know), and goes once another auditor is appointed.
// Other administrator grants go with the person.
func TestDeleteGrantsOfKeepsTheLastAuditor(t *testing.T) {
	f := newAdminFixture(t)
	aud := authz.Subject{Kind: authz.SubjectUser, ID: "aud"}
	g, _, err := f.svc.CreateGrant(context.Background(), authz.Grant{Role: f.clerk, Subject: aud})
	f.must(err)
	n, err := f.svc.DeleteGrantsOf(context.Background(), aud, "user.deleted")
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v: want the clerk grant only", n, err)
	}
	if _, ok := f.svc.Index().Grant(g.ID); ok {
		t.Fatal("the clerk grant stayed")
	}
	if _, ok := f.svc.Index().Grant(f.grants["aud"]); !ok {
		t.Fatal("the last security auditor's grant went")
	}
	if _, _, err := f.svc.CreateGrant(as("aud"), authz.Grant{Role: authz.RoleSecurityAuditor, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "dave"}}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.DeleteGrantsOf(context.Background(), aud, "user.deleted"); err != nil || n != 1 {
		t.Fatalf("with another auditor: %d, %v", n, err)
	}
	if _, ok := f.svc.Index().Grant(f.grants["aud"]); ok {
		t.Fatal("the auditor's grant stayed although another auditor holds the role")
	}
	// A unit administrator's grant goes like any.
	if n, err := f.svc.DeleteGrantsOf(context.Background(), authz.Subject{Kind: authz.SubjectUser, ID: "ea"}, "user.deleted"); err != nil || n != 1 {
		t.Fatalf("unit admin: %d, %v", n, err)
	}
}

// Between centres: a grant held as another centre's replica is deleted by
// its home centre, whose deletion arrives as a replica change; a centre's
// own grants (its administrator appointments) of the person go there.
func TestDeleteGrantsOfBetweenCentres(t *testing.T) {
	ctx := context.Background()
	subtrees := map[string]string{"bureau": "l2"}
	l1 := newCentre(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})
	l2 := newCentre(t, &centre.Homes{Self: "l2", Level: 2, Parent: "l1", Subtrees: subtrees})
	l1.idx.SetOrgParent("bureau", "root1")
	l1.idx.SetUserOrg("ann", "bureau")
	l2.idx.SetOrgParent("bureau", "root2")
	l2.idx.SetUserOrg("ann", "bureau")
	if _, _, err := l1.svc.PutResource(ctx, authz.Resource{App: "oa", Code: "docs", Kind: authz.KindModule, Operations: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	clerk, _, err := l1.svc.CreateRole(ctx, authz.Role{App: "oa", Code: "clerk", Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	l2.apply("l1", l1.changes())
	if _, _, err := l2.svc.CreateGrant(ctx, authz.Grant{Role: clerk.ID, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "ann"}}); err != nil {
		t.Fatal(err)
	}
	if got := outcomes(l1.apply("l2", l2.changes())); got != "APPLIED" {
		t.Fatalf("l2's grant at l1: %s", got)
	}
	// Level 1 appoints ann (homed at l2) a system administrator of its own.
	if _, _, _, err := l1.svc.AppointAdmin(ctx, "ann", authz.RoleSystemAdmin); err != nil {
		t.Fatal(err)
	}
	ann := authz.Subject{Kind: authz.SubjectUser, ID: "ann"}
	// Level 1 applies identity's replica of the deletion first: its own
	// appointment goes, l2's grant stays for l2 to delete.
	if n, err := l1.svc.DeleteGrantsOf(ctx, ann, "user.deleted"); err != nil || n != 1 {
		t.Fatalf("at l1: %d, %v; want its own administrator grant", n, err)
	}
	if gs := l1.idx.Grants(index.GrantFilter{Subject: &ann}); len(gs) != 1 || gs[0].Role != clerk.ID {
		t.Fatalf("at l1 after its deletion: %v", gs)
	}
	if n, err := l2.svc.DeleteGrantsOf(ctx, ann, "user.deleted"); err != nil || n != 1 {
		t.Fatalf("at l2: %d, %v", n, err)
	}
	// l2's deletion comes to l1 and applies there.
	if got := outcomes(l1.apply("l2", l2.changes())); got != "APPLIED" {
		t.Fatalf("l2's deletion at l1: %s", got)
	}
	if gs := l1.idx.Grants(index.GrantFilter{Subject: &ann}); len(gs) != 0 {
		t.Fatalf("at l1 after l2's deletion: %v", gs)
	}
	for _, home := range []string{"l1", "l2"} {
		if a, b := l1.digest(home), l2.digest(home); a != b {
			t.Errorf("digests of %s differ:\n l1 %s\n l2 %s", home, a, b)
		}
	}
}

// The audit records of permission changes say what changed (004 2.1.7:
// "操作描述", "授权关系的调整"): a grant names its role, who it is granted
// to and the grant, and carries the org of the person granted (so that
// the administrators of that org find it); its revocation names the same;
// a role names its code and permissions.
func TestAuditRecordsDescribeChanges(t *testing.T) {
	f := newFixture(t)
	clerk, _, _ := f.oa()
	f.svc.Index().SetUserOrg("ann", "org-east")
	g, _ := f.grant(clerk, authz.SubjectUser, "ann")
	if _, err := f.svc.RevokeGrant(f.ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	find := func(api string) map[string]any {
		t.Helper()
		for _, p := range f.outbox("uias.audit.authz.") {
			var rec map[string]any
			f.must(json.Unmarshal([]byte(p), &rec))
			if rec["api"] == api {
				return rec
			}
		}
		t.Fatalf("no %s record", api)
		return nil
	}
	for _, api := range []string{"grant.create", "grant.revoke"} {
		rec := find(api)
		d, _ := rec["detail"].(map[string]any)
		if d["role"] != "clerk" || d["granted_to"] != "user:ann" || d["grant_id"] != g.ID || rec["org"] != "org-east" {
			t.Errorf("%s record: %v", api, rec)
		}
	}
	rec := find("role.create")
	if d, _ := rec["detail"].(map[string]any); d["role"] != "clerk" || !strings.Contains(fmt.Sprint(d["permissions"]), "oa:docs.inbox:read") {
		t.Errorf("role.create record: %v", rec)
	}
}
