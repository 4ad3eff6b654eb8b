package identity_test

import (
	"strings"
	"testing"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// TestDirectory: an application reads the people with an account in it
// (by account id or login name, or a page at a time) and the org tree;
// never another application's people nor an ID number; every call
// audited, a refused look-up too (without the account asked for in
// clear).
func TestDirectory(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	root := evRoot(t, e.svc)
	// otto has an account in another application only; three more
	// people have accounts in oa.
	other, _, err := e.svc.CreateApp(ctx, identity.NewApp{Type: "HR", Code: "hr", Name: "HR"})
	if err != nil {
		t.Fatal(err)
	}
	otto, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "otto", DisplayName: "Otto", OrgID: root.ID, Password: "First-Pass-1",
		IDType: identity.IDTypeResidentID, IDNumber: "110101199003071233", Phone: "13812345678"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateLink(ctx, otto.ID, other.ID, "o-1"); err != nil {
		t.Fatal(err)
	}
	oaID := caller.From(w.ctx).App.ID
	for _, login := range []string{"p1", "p2", "p3"} {
		u, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: login, DisplayName: login, OrgID: root.ID, Password: "First-Pass-1",
			Phone: "13812345678"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.CreateLink(ctx, u.ID, oaID, "acct-"+login); err != nil {
			t.Fatal(err)
		}
	}

	m := e.mark(t)
	for _, account := range []string{"m001", "mia", "MIA"} {
		p, err := e.svc.DirectoryPerson(w.ctx, account)
		if err != nil {
			t.Fatalf("%s: %v", account, err)
		}
		if p.User.ID != w.user.ID || p.Link.AppAccountID != "m001" || p.Org == nil || p.Org.Code != root.Code {
			t.Fatalf("%s: %+v", account, p)
		}
	}
	if rec := audit(t, e.outbox(t, m)[:1], "directory.get_person"); rec.Subject != "user:"+w.user.ID || rec.Result != "success" {
		t.Fatalf("audit %+v", rec)
	}
	// Another application's person, and nobody: one answer.
	for _, account := range []string{"otto", "o-1", "nobody-13812345678"} {
		m := e.mark(t)
		_, err := e.svc.DirectoryPerson(w.ctx, account)
		if reasonOf(err) != identity.ReasonNoSuchPerson || strings.Contains(err.Error(), account) {
			t.Fatalf("%s: %v", account, err)
		}
		rec := audit(t, e.outbox(t, m), "directory.get_person")
		if rec.Result != "failure" || rec.Reason != identity.ReasonNoSuchPerson || strings.Contains(rec.Subject, "13812345678") {
			t.Fatalf("%s: audit %+v", account, rec)
		}
	}
	// A page at a time: mia and p1-p3, each once, masked phones only.
	seen := map[string]bool{}
	tok := ""
	for pages := 0; ; pages++ {
		people, next, err := e.svc.DirectoryPeople(w.ctx, 3, tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range people {
			if seen[p.User.LoginName] || p.User.ID == otto.ID {
				t.Fatalf("listed %s (twice, or of another application)", p.User.LoginName)
			}
			seen[p.User.LoginName] = true
			if p.User.PhoneMask != "" && !strings.Contains(p.User.PhoneMask, "*") {
				t.Fatalf("phone not masked: %q", p.User.PhoneMask)
			}
		}
		if tok = next; tok == "" || pages > 3 {
			break
		}
	}
	if len(seen) != 4 || !seen["mia"] || !seen["p3"] {
		t.Fatalf("listed %v", seen)
	}
	if _, _, err := e.svc.DirectoryPeople(w.ctx, 501, ""); reasonOf(err) != "BAD_REQUEST" && err == nil {
		t.Fatalf("page size 501: %v", err)
	}
	orgs, _, err := e.svc.DirectoryOrgs(w.ctx, 0, "")
	if err != nil || len(orgs) != 1 || orgs[0].ID != root.ID {
		t.Fatalf("orgs %v %v", orgs, err)
	}
	// Without an application: refused.
	if _, err := e.svc.DirectoryPerson(ctx, "mia"); reasonOf(err) != "BAD_APP_CREDENTIALS" {
		t.Fatalf("an administrator's context: %v", err)
	}
}
