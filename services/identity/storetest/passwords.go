package storetest

import (
	"errors"
	"testing"

	"github.com/uias/uias/pkg/events"

	"github.com/uias/uias/services/identity"
)

// ReplacePasswordHash swaps a hash only while it is the expected one.
func testReplacePasswordHash(t *testing.T, f *fixture) {
	u := f.user("")
	f.expectEvents(1, func() {
		must(t, f.s.ReplacePasswordHash(f.ctx, u.ID, u.PasswordHash, "{SSHA}new", f.evs(1)))
	})
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "replaced hash", got.PasswordHash, "{SSHA}new")
	hist, err := f.s.PasswordHistory(f.ctx, u.ID, 5)
	must(t, err)
	eq(t, "history after a replace", len(hist), 0)
	f.expectEvents(0, func() {
		err := f.s.ReplacePasswordHash(f.ctx, u.ID, u.PasswordHash, "{SSHA}other", f.evs(1))
		isErr(t, err, identity.ErrConflict)
		err = f.s.ReplacePasswordHash(f.ctx, "missing", "x", "y", f.evs(1))
		isErr(t, err, identity.ErrNotFound)
	})
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "hash after a refused replace", got.PasswordHash, "{SSHA}new")
}

// ImportBatch writes each item on its own, skips what the import wrote,
// writes the batch's events once, and keeps nothing in a dry run.
func testImportBatch(t *testing.T, f *fixture) {
	root := f.org("")
	app := f.app("oa")
	exists := f.user(root.ID)
	mk := func(login string) identity.ImportItem {
		u := f.newUser(root.ID)
		u.LoginName = login
		return identity.ImportItem{Key: "user:" + login, At: base, User: u,
			Link: &identity.AccountLink{ID: f.id("lnk"), UserID: u.ID, AppID: app.ID, AppAccountID: "acct-" + login,
				Status: identity.StatusActive, CreatedAt: base}}
	}
	org := identity.ImportItem{Key: "org:imp", At: base, Org: &identity.Org{ID: f.id("org"), Code: "imp", Name: "Imported",
		ParentID: root.ID, Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}}
	items := []identity.ImportItem{mk("a"), mk(exists.LoginName), org, mk("b")}
	calls := 0
	evs := func(written []identity.ImportItem) []events.Event {
		calls++
		eq(t, "items written", len(written), 3)
		return f.evs(2)
	}
	// Dry run: the same answers, nothing kept.
	f.expectEvents(0, func() {
		res, err := f.s.ImportBatch(f.ctx, "imp-1", items, true, 0, evs)
		must(t, err)
		if res[1].Err == nil || !errors.Is(res[1].Err, identity.ErrConflict) || res[0].Err != nil || res[3].Err != nil {
			t.Fatalf("dry run results %+v", res)
		}
	})
	_, err := f.s.GetUserByLogin(f.ctx, "a")
	isErr(t, err, identity.ErrNotFound)

	f.expectEvents(2, func() {
		res, err := f.s.ImportBatch(f.ctx, "imp-1", items, false, 0, evs)
		must(t, err)
		if res[1].Err == nil || res[0].Err != nil || res[2].Err != nil || res[3].Err != nil {
			t.Fatalf("results %+v", res)
		}
	})
	u, err := f.s.GetUserByLogin(f.ctx, "b")
	must(t, err)
	links, _, err := f.s.ListLinks(f.ctx, identity.LinkFilter{UserID: u.ID}, identity.Page{})
	must(t, err)
	eq(t, "links of b", len(links), 1)
	o, err := f.s.GetOrgByCode(f.ctx, "imp")
	must(t, err)
	eq(t, "imported org path", o.Path, root.Path+o.ID+"/")
	// Again: written items are skipped, no events.
	f.expectEvents(0, func() {
		res, err := f.s.ImportBatch(f.ctx, "imp-1", items, false, 0, func([]identity.ImportItem) []events.Event {
			t.Fatal("events for a batch that wrote nothing")
			return nil
		})
		must(t, err)
		if !res[0].Skipped || !res[2].Skipped || !res[3].Skipped || res[1].Err == nil {
			t.Fatalf("second results %+v", res)
		}
	})
	eq(t, "event calls", calls, 2)
	_, err = f.s.GetOrgByCode(f.ctx, "nope")
	isErr(t, err, identity.ErrNotFound)
}
