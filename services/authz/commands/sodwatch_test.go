package commands_test

import (
	"strings"
	"testing"

	"github.com/uias/uias/services/authz"
)

// A person who came to hold both roles of a pair without a write that
// could refuse it (here: authz's mirror learning of a membership, as when
// another centre's membership and grant arrive together) is found by the
// separation watch and reported once, by an audit record naming the
// person and the pair; a breach that ends and comes again is reported
// again.
func TestSeparationWatch(t *testing.T) {
	f := newFixture(t)
	f.resource("oa", "docs", "", authz.KindModule, "write", "approve")
	role := func(code, op string) string {
		r, _, err := f.svc.CreateRole(f.ctx, authz.Role{App: "oa", Code: code, Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: op}}})
		f.must(err)
		return r.ID
	}
	clerk, approver := role("clerk", "write"), role("approver", "approve")
	excl, _, err := f.svc.CreateExclusion(f.ctx, authz.Exclusion{RoleA: clerk, RoleB: approver, Name: "maker-checker"})
	f.must(err)
	idx := f.svc.Index()
	idx.SetGroupOrg("clerks", "root")
	idx.SetUserOrg("ann", "root")
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: clerk, Subject: authz.Subject{Kind: authz.SubjectGroup, ID: "clerks"}})
	f.must(err)
	g, _, err := f.svc.CreateGrant(f.ctx, authz.Grant{Role: approver, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "ann"}})
	f.must(err)
	if n := f.svc.ScanSeparation(f.ctx); n != 0 || len(f.svc.SeparationBreaches()) != 0 {
		t.Fatalf("breaches before the membership: %d %v", n, f.svc.SeparationBreaches())
	}
	idx.SetGroupMember("clerks", "ann", true)
	bs := f.svc.SeparationBreaches()
	if len(bs) != 1 || bs[0].Person != "ann" || bs[0].Exclusion.ID != excl.ID {
		t.Fatalf("breaches: %+v", bs)
	}
	if n := f.svc.ScanSeparation(f.ctx); n != 1 {
		t.Fatalf("first scan reported %d", n)
	}
	// another instance of authz on the same database, or this one after
	// a restart, does not report it again (review sec15 L4)
	other := f.replica()
	oi := other.Index()
	oi.SetGroupOrg("clerks", "root")
	oi.SetUserOrg("ann", "root")
	oi.SetGroupMember("clerks", "ann", true)
	if bs := other.SeparationBreaches(); len(bs) != 1 {
		t.Fatalf("the other instance sees %v", bs)
	}
	if n := other.ScanSeparation(f.ctx); n != 0 {
		t.Fatalf("the other instance reported %d again", n)
	}
	// a second person breaking the same pair is reported too, though the
	// first still does (review sec15)
	idx.SetUserOrg("aaron", "root")
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: approver, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "aaron"}})
	f.must(err)
	idx.SetGroupMember("clerks", "aaron", true)
	if n := f.svc.ScanSeparation(f.ctx); n != 1 {
		t.Fatalf("a second breach of the pair: reported %d", n)
	}
	idx.SetGroupMember("clerks", "aaron", false)
	if n := f.svc.ScanSeparation(f.ctx); n != 0 {
		t.Fatalf("second scan reported %d again", n)
	}
	records := 0
	for _, p := range f.outbox("uias.audit.") {
		if strings.Contains(p, `"authz.sod_breach"`) && strings.Contains(p, `"user:ann"`) && strings.Contains(p, excl.ID) &&
			strings.Contains(p, "maker-checker") {
			records++
		}
	}
	if records != 1 {
		t.Fatalf("%d breach records, want 1", records)
	}
	// mended, then broken again
	_, err = f.svc.RevokeGrant(f.ctx, g.ID)
	f.must(err)
	if n := f.svc.ScanSeparation(f.ctx); n != 0 || len(f.svc.SeparationBreaches()) != 0 {
		t.Fatalf("after the revocation: %d", n)
	}
	idx.SetGroupMember("clerks", "ann", false)
	_, _, err = f.svc.CreateGrant(f.ctx, authz.Grant{Role: approver, Subject: authz.Subject{Kind: authz.SubjectUser, ID: "ann"}})
	f.must(err)
	idx.SetGroupMember("clerks", "ann", true)
	if n := f.svc.ScanSeparation(f.ctx); n != 1 {
		t.Fatalf("broken again: reported %d", n)
	}
}
