package storetest

import (
	"fmt"
	"testing"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity"
)

// ImportBatch of users and links only (the bulk path): every kind of row
// failure is reported on its row with the row-by-row path's error, the
// other rows are written (with their org path and search entry), a second
// run skips them, a dry run keeps nothing; a conflict the checks cannot
// see (two rows of one batch with the same login name) still fails only
// its row.
func testImportBulk(t *testing.T, f *fixture) {
	root := f.org("")
	app := f.app("oa")
	exists := f.user(root.ID)
	exists.FeatureCode, exists.IDKey = "feat-exists", "idk-exists"
	must(t, f.s.UpdateUser(f.ctx, exists, f.evs(1)))
	linked := f.user(root.ID)
	f.link(linked.ID, app.ID, "acct-taken")
	n := 0
	mk := func(login string) identity.ImportItem {
		n++
		u := f.newUser(root.ID)
		u.LoginName, u.DisplayName, u.Email = login, "导入者"+login, login+"@bulk.example"
		u.IDKey = "idk-" + login // more than one look-up's worth of ID keys
		return identity.ImportItem{Row: n, Key: "user:" + login, At: base, User: u,
			Link: &identity.AccountLink{ID: f.id("lnk"), UserID: u.ID, AppID: app.ID, AppAccountID: "acct-" + login,
				Status: identity.StatusActive, CreatedAt: base}}
	}
	var items []identity.ImportItem
	for i := range 1200 { // more than one INSERT statement
		items = append(items, mk(fmt.Sprintf("bulk%04d", i)))
	}
	bad := map[int]error{}
	put := func(i int, want error, change func(it *identity.ImportItem)) {
		change(&items[i])
		bad[i] = want
	}
	put(3, identity.ErrConflict, func(it *identity.ImportItem) { it.User.LoginName = exists.LoginName })
	put(7, identity.ErrConflict, func(it *identity.ImportItem) { it.User.FeatureCode = "feat-exists" })
	put(11, identity.ErrNotFound, func(it *identity.ImportItem) { it.User.OrgID = "no-such-org" })
	put(13, identity.ErrConflict, func(it *identity.ImportItem) { it.Link.AppAccountID = "acct-taken" })
	put(17, identity.ErrNotFound, func(it *identity.ImportItem) { it.Link.AppID = "no-such-app" })
	put(19, identity.ErrIDNumberTaken, func(it *identity.ImportItem) { it.User.IDKey = "idk-exists" })
	put(1100, identity.ErrIDNumberTaken, func(it *identity.ImportItem) { it.User.IDKey = "idk-exists" })
	msgs := map[int]string{3: "login name already exists", 7: "feature code already exists", 13: "app account is already linked",
		19: "another account already has this ID number", 1100: "another account already has this ID number"}
	written := 0
	evs := func(w []identity.ImportItem) []events.Event {
		written = len(w)
		return f.evs(2)
	}
	check := func(res []identity.ImportResult) {
		t.Helper()
		for i, r := range res {
			if want := bad[i]; want != nil {
				isErr(t, r.Err, want, msgs[i])
			} else if r.Err != nil || r.Skipped {
				t.Fatalf("row %d: %+v", i, r)
			}
		}
	}
	f.expectEvents(0, func() {
		res, err := f.s.ImportBatch(f.ctx, "bulk-1", items, true, 0, evs)
		must(t, err)
		check(res)
	})
	_, err := f.s.GetUserByLogin(f.ctx, "bulk0000")
	isErr(t, err, identity.ErrNotFound)
	searchCount := func(q string) int {
		t.Helper()
		got, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{Query: q}, identity.Page{})
		must(t, err)
		return len(got)
	}
	eq(t, "search after a dry run", searchCount("导入者bulk0000"), 0)
	f.expectEvents(2, func() {
		res, err := f.s.ImportBatch(f.ctx, "bulk-1", items, false, 0, evs)
		must(t, err)
		check(res)
	})
	eq(t, "items written", written, len(items)-len(bad))
	u, err := f.s.GetUserByLogin(f.ctx, "bulk1199")
	must(t, err)
	eq(t, "org path of an imported user", u.OrgID, root.ID)
	inOrg, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: root.ID, Subtree: true, Query: "导入者bulk1199"}, identity.Page{})
	must(t, err)
	if len(inOrg) != 1 || inOrg[0].ID != u.ID {
		t.Fatalf("search after a bulk import: %+v", inOrg)
	}
	links, _, err := f.s.ListLinks(f.ctx, identity.LinkFilter{UserID: u.ID}, identity.Page{})
	must(t, err)
	eq(t, "links of an imported user", len(links), 1)
	// Again: written rows are skipped, the failed ones fail again.
	f.expectEvents(0, func() {
		res, err := f.s.ImportBatch(f.ctx, "bulk-1", items, false, 0, func([]identity.ImportItem) []events.Event {
			t.Fatal("events for a batch that wrote nothing")
			return nil
		})
		must(t, err)
		for i, r := range res {
			if (bad[i] == nil) != r.Skipped || (bad[i] != nil) != (r.Err != nil) {
				t.Fatalf("second run, row %d: %+v", i, r)
			}
		}
	})

	// Links of existing people (links kind): unknown user, already linked.
	other := f.user(root.ID)
	lk := func(userID, acct string) identity.ImportItem {
		n++
		return identity.ImportItem{Row: n, Key: "link:" + acct, At: base, Link: &identity.AccountLink{ID: f.id("lnk"),
			UserID: userID, AppID: app.ID, AppAccountID: acct, Status: identity.StatusActive, CreatedAt: base}}
	}
	res, err := f.s.ImportBatch(f.ctx, "bulk-2", []identity.ImportItem{lk(other.ID, "acct-other"), lk("no-such-user", "acct-x"),
		lk(linked.ID, "acct-linked-again")}, false, 0, func(w []identity.ImportItem) []events.Event { return f.evs(1) })
	must(t, err)
	if res[0].Err != nil {
		t.Fatalf("link row: %+v", res[0])
	}
	isErr(t, res[1].Err, identity.ErrNotFound)
	isErr(t, res[2].Err, identity.ErrConflict, "user is already linked to this app")
	// Every link written (of a person imported with it, or of one already
	// there) carries its person's org path: the listing of root's subtree
	// holds them all.
	linkIDs := func(lf identity.LinkFilter) int {
		t.Helper()
		n := 0
		for _, p := range pages(t, 500, func(p identity.Page) ([]*identity.AccountLink, string, error) {
			return f.s.ListLinks(f.ctx, lf, p)
		}) {
			n += len(p)
		}
		return n
	}
	eq(t, "links within root after the imports", linkIDs(identity.LinkFilter{Within: []string{root.ID}}), linkIDs(identity.LinkFilter{}))
	eq(t, "links of the app within root", linkIDs(identity.LinkFilter{Within: []string{root.ID}, AppID: app.ID}), written+2)

	// Two rows of one batch with the same login name: the first is
	// written, the second fails (the row-by-row fallback).
	a, b := mk("twin"), mk("twin")
	b.Key = "user:twin-2"
	res, err = f.s.ImportBatch(f.ctx, "bulk-3", []identity.ImportItem{a, mk("single"), b}, false, 0,
		func(w []identity.ImportItem) []events.Event {
			eq(t, "written with a twin", len(w), 2)
			return f.evs(1)
		})
	must(t, err)
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("twin batch: %+v", res)
	}
	isErr(t, res[2].Err, identity.ErrConflict)
	_, err = f.s.GetUserByLogin(f.ctx, "single")
	must(t, err)
	// The search index holds what was written, once: the failed twin's
	// rows were rolled back with it.
	eq(t, "search of a row written by the fallback", searchCount("导入者single"), 1)
	eq(t, "search of the twins", searchCount("导入者twin"), 1)

	// Two rows of one batch with the same ID key (the importer finds
	// those of one file; the store's index is the backstop): the first
	// is written, the second fails with ID_NUMBER_TAKEN.
	c, d := mk("idtwin-a"), mk("idtwin-b")
	d.User.IDKey = c.User.IDKey
	res, err = f.s.ImportBatch(f.ctx, "bulk-4", []identity.ImportItem{c, mk("idsingle"), d}, false, 0,
		func(w []identity.ImportItem) []events.Event { return f.evs(1) })
	must(t, err)
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("ID twin batch: %+v", res)
	}
	isErr(t, res[2].Err, identity.ErrIDNumberTaken)
	_, err = f.s.GetUserByLogin(f.ctx, "idtwin-b")
	isErr(t, err, identity.ErrNotFound)
	eq(t, "search of bulk rows", searchCount("导入者bulk119"), 10)
}
