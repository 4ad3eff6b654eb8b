// Package storetest is the conformance suite every identity.Store
// implementation must pass.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity"
)

// Subject is one fresh store under test.
type Subject struct {
	Store identity.Store
	// CountOutbox returns the number of events in the store's outbox. When
	// nil, the checks that events are written (or not) are skipped.
	CountOutbox func(t *testing.T) int
}

// Run runs the suite; newStore must return a fresh, empty store each call.
// The outbox checks are skipped (see RunWithOutbox).
func Run(t *testing.T, newStore func(t *testing.T) identity.Store) {
	RunWithOutbox(t, func(t *testing.T) Subject { return Subject{Store: newStore(t)} })
}

// RunWithOutbox runs the suite including the checks that every mutation
// writes its events in the same transaction. Subtests run in parallel, each
// on its own fresh store.
func RunWithOutbox(t *testing.T, newSubject func(t *testing.T) Subject) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Ping", testPing},
		{"AppendEvents", testAppendEvents},
		{"OrgCRUD", testOrgCRUD},
		{"OrgList", testOrgList},
		{"MoveOrg", testMoveOrg},
		{"DisabledInOrgChain", testDisabledInOrgChain},
		{"UserCRUD", testUserCRUD},
		{"UserConflicts", testUserConflicts},
		{"UserIDKey", testUserIDKey},
		{"IDKeyBackfill", testIDKeyBackfill},
		{"CentresKey", testCentresKey},
		{"CentresKeyBackfill", testCentresKeyBackfill},
		{"UserList", testUserList},
		{"UserListPasswordExpired", testUserListPasswordExpired},
		{"UpdateUser", testUpdateUser},
		{"AccountStateTime", testAccountStateTime},
		{"AccountStateTimeConditional", testAccountStateTimeConditional},
		{"CentreDisabled", testCentreDisabled},
		{"SetMustChange", testSetMustChange},
		{"DeleteUser", testDeleteUser},
		{"DeleteOrgAndGroup", testDeleteOrgAndGroup},
		{"DeleteApp", testDeleteApp},
		{"PasswordHistory", testPasswordHistory},
		{"LoginGate", testLoginGate},
		{"LoginGateConcurrent", testLoginGateConcurrent},
		{"ReadLoginGate", testReadLoginGate},
		{"LoginGateClearedByUserWrites", testLoginGateCleared},
		{"Groups", testGroups},
		{"GroupList", testGroupList},
		{"Apps", testApps},
		{"AppList", testAppList},
		{"Links", testLinks},
		{"SSOAttributes", testSSOAttributes},
		{"AdminTokens", testAdminTokens},
		{"AdminTokensRevoked", testAdminTokensRevoked},
		{"Appointments", testAppointments},
		{"FirstAdmins", testFirstAdmins},
		{"LiteralStrings", testLiteralStrings},
		{"UserSubtree", testUserSubtree},
		{"UserTypes", testUserTypes},
		{"OrgSubtree", testOrgSubtree},
		{"Within", testWithin},
		{"Search", testSearch},
		{"SearchLoginFirst", testSearchLoginFirst},
		{"ListingEdges", testListingEdges},
		{"ReplacePasswordHash", testReplacePasswordHash},
		{"ImportBatch", testImportBatch},
		{"ImportBulk", testImportBulk},
		{"Export", testExport},
		{"OutboxWrites", testOutboxWrites},
		{"FailedMutationWritesNoEvents", testFailedNoEvents},
		{"EventFailureRollsBack", testEventFailureRollsBack},
		{"DataKeys", testDataKeys},
		{"SealedValues", testSealedValues},
		{"SealedFingers", testSealedFingers},
		{"SealedTOTP", testSealedTOTP},
		{"Fingers", testFingers},
		{"FingerLimitConcurrent", testFingerLimitConcurrent},
		{"FingerBypass", testFingerBypass},
		{"Certs", testCerts},
		{"CertsConcurrent", testCertsConcurrent},
		{"TOTP", testTOTP},
		{"TOTPConcurrent", testTOTPConcurrent},
		{"TOTPCodeCount", testTOTPCodeCount},
		{"ApplyReplicaTOTP", testApplyReplicaTOTP},
		{"ApplyReplicaCert", testApplyReplicaCert},
		{"ApplyReplica", testApplyReplica},
		{"ReplicaLocksAndSealed", testReplicaLocksAndSealed},
		{"ReplicaLevelOneManages", testReplicaLevelOneManages},
		{"ReplicaSearchAndEvents", testReplicaSearchAndEvents},
		{"ReplicaOfAnAbsentPerson", testReplicaOfAnAbsentPerson},
		{"ReplicaDeleteOfAnOrgHeldHere", testReplicaDeleteOfAnOrgHeldHere},
		{"ReplicaLinkOfAnotherPerson", testReplicaLinkOfAnotherPerson},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := newSubject(t)
			tc.fn(t, &fixture{t: t, s: sub.Store, count: sub.CountOutbox, ctx: context.Background()})
		})
	}
}

// base is a time with millisecond precision (stores keep milliseconds).
var base = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

type fixture struct {
	t     *testing.T
	s     identity.Store
	count func(t *testing.T) int
	ctx   context.Context
	n     int
}

// id returns a fresh id with prefix p; ids of one prefix sort by creation.
func (f *fixture) id(p string) string {
	f.n++
	return fmt.Sprintf("%s-%05d", p, f.n)
}

// evs returns n valid events with fresh ids.
func (f *fixture) evs(n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = events.Event{ID: f.id("ev"), Subject: "uias.changes.identity.test.op", Type: "identity.test.op",
			Time: base, Payload: []byte(`{"k":"v"}`)}
	}
	return out
}

func (f *fixture) outbox() int {
	f.t.Helper()
	if f.count == nil {
		return 0
	}
	return f.count(f.t)
}

// expectEvents checks that fn adds exactly want events to the outbox.
func (f *fixture) expectEvents(want int, fn func()) {
	f.t.Helper()
	before := f.outbox()
	fn()
	if f.count == nil {
		return
	}
	if got := f.outbox() - before; got != want {
		f.t.Fatalf("outbox grew by %d events, want %d", got, want)
	}
}

func (f *fixture) org(parent string) *identity.Org {
	f.t.Helper()
	id := f.id("org")
	o := &identity.Org{ID: id, Code: "code-" + id, Name: "Org " + id, ParentID: parent,
		Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
	must(f.t, f.s.CreateOrg(f.ctx, o, f.evs(1)))
	return o
}

func (f *fixture) user(orgID string) *identity.User {
	f.t.Helper()
	u := f.newUser(orgID)
	must(f.t, f.s.CreateUser(f.ctx, u, f.evs(1)))
	return u
}

func (f *fixture) newUser(orgID string) *identity.User {
	id := f.id("usr")
	return &identity.User{ID: id, LoginName: "login-" + id, DisplayName: "User " + id, OrgID: orgID,
		Status: identity.StatusActive, PasswordHash: "hash-" + id, CreatedAt: base, UpdatedAt: base}
}

func (f *fixture) app(typ string) *identity.App {
	f.t.Helper()
	id := f.id("app")
	a := &identity.App{ID: id, Type: typ, Code: "code-" + id, Name: "App " + id, Status: identity.AppActive,
		SecretHash: "secret-" + id, CreatedAt: base, UpdatedAt: base}
	must(f.t, f.s.CreateApp(f.ctx, a, f.evs(1)))
	return a
}

func (f *fixture) link(userID, appID, account string) *identity.AccountLink {
	f.t.Helper()
	l := &identity.AccountLink{ID: f.id("lnk"), UserID: userID, AppID: appID, AppAccountID: account,
		Status: identity.StatusActive, CreatedAt: base}
	must(f.t, f.s.CreateLink(f.ctx, l, f.evs(1)))
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func isErr(t *testing.T, err, target error, contains ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Fatalf("error %q does not mention %q", err, c)
		}
	}
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func eqTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.IsZero() != want.IsZero() {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// pages collects every page of list with size, checking each page's length.
func pages[T any](t *testing.T, size int, list func(identity.Page) ([]T, string, error)) [][]T {
	t.Helper()
	var out [][]T
	p := identity.Page{Size: size}
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("pagination does not end")
		}
		items, next, err := list(p)
		must(t, err)
		out = append(out, items)
		if next == "" {
			return out
		}
		if len(items) != size {
			t.Fatalf("page %d has %d items with a next token, want %d", i, len(items), size)
		}
		p.Token = next
	}
}

// ---------------------------------------------------------------------------

func testPing(t *testing.T, f *fixture) {
	must(t, f.s.Ping(f.ctx))
}

func testAppendEvents(t *testing.T, f *fixture) {
	f.expectEvents(3, func() { must(t, f.s.AppendEvents(f.ctx, f.evs(3))) })
	f.expectEvents(0, func() { must(t, f.s.AppendEvents(f.ctx, nil)) })
}

func testDisabledInOrgChain(t *testing.T, f *fixture) {
	root := f.org("")
	child := f.org(root.ID)
	grand := f.org(child.ID)
	sibling := f.org(root.ID)
	chain := func(id string) string {
		t.Helper()
		d, err := f.s.DisabledInOrgChain(f.ctx, id)
		must(t, err)
		return d
	}
	for _, o := range []*identity.Org{root, child, grand, sibling} {
		eq(t, "all active: "+o.ID, chain(o.ID), "")
	}
	set := func(o *identity.Org, st identity.Status) {
		t.Helper()
		u := *o
		u.Status = st
		must(t, f.s.UpdateOrg(f.ctx, &u, nil))
	}
	set(child, identity.StatusDisabled)
	eq(t, "disabled itself", chain(child.ID), child.ID)
	eq(t, "under a disabled parent", chain(grand.ID), child.ID)
	eq(t, "sibling", chain(sibling.ID), "")
	eq(t, "root", chain(root.ID), "")
	set(root, identity.StatusDisabled)
	eq(t, "nearest the root first", chain(grand.ID), root.ID)
	set(root, identity.StatusActive)
	set(child, identity.StatusActive)
	eq(t, "re-enabled", chain(grand.ID), "")
	_, err := f.s.DisabledInOrgChain(f.ctx, "missing")
	isErr(t, err, identity.ErrNotFound)
}

func testOrgCRUD(t *testing.T, f *fixture) {
	root := f.org("")
	eq(t, "root path", root.Path, "/"+root.ID+"/")
	child := f.org(root.ID)
	eq(t, "child path", child.Path, "/"+root.ID+"/"+child.ID+"/")
	grand := f.org(child.ID)
	eq(t, "grandchild path", grand.Path, child.Path+grand.ID+"/")

	got, err := f.s.GetOrg(f.ctx, child.ID)
	must(t, err)
	if *got != *child {
		t.Fatalf("GetOrg = %+v, want %+v", got, child)
	}
	got, err = f.s.GetOrg(f.ctx, root.ID)
	must(t, err)
	eq(t, "root parent", got.ParentID, "")

	_, err = f.s.GetOrg(f.ctx, "missing")
	isErr(t, err, identity.ErrNotFound)

	dup := &identity.Org{ID: f.id("org"), Code: root.Code, Name: "dup", Status: identity.StatusActive}
	isErr(t, f.s.CreateOrg(f.ctx, dup, nil), identity.ErrConflict, "code")
	sameID := &identity.Org{ID: root.ID, Code: "other-code", Name: "dup", Status: identity.StatusActive}
	isErr(t, f.s.CreateOrg(f.ctx, sameID, nil), identity.ErrConflict)
	orphan := &identity.Org{ID: f.id("org"), Code: "orphan", Name: "o", ParentID: "missing", Status: identity.StatusActive}
	isErr(t, f.s.CreateOrg(f.ctx, orphan, nil), identity.ErrNotFound)

	upd := *child
	upd.Name, upd.Status, upd.UpdatedAt = "Renamed", identity.StatusDisabled, base.Add(time.Hour)
	upd.Code = "ignored-code" // UpdateOrg writes name and status only
	must(t, f.s.UpdateOrg(f.ctx, &upd, f.evs(1)))
	got, err = f.s.GetOrg(f.ctx, child.ID)
	must(t, err)
	eq(t, "name", got.Name, "Renamed")
	eq(t, "status", got.Status, identity.StatusDisabled)
	eq(t, "code", got.Code, child.Code)
	eqTime(t, "updated", got.UpdatedAt, base.Add(time.Hour))
	eqTime(t, "created", got.CreatedAt, base)

	isErr(t, f.s.UpdateOrg(f.ctx, &identity.Org{ID: "missing", Name: "x", Status: identity.StatusActive}, nil),
		identity.ErrNotFound)

	n, err := f.s.CountOrgs(f.ctx)
	must(t, err)
	eq(t, "CountOrgs", n, 3)
}

func testOrgList(t *testing.T, f *fixture) {
	root := f.org("")
	var kids []*identity.Org
	for i := range 7 {
		o := &identity.Org{ID: f.id("org"), Code: fmt.Sprintf("kid-%d", i), Name: fmt.Sprintf("Kid Number %d", i),
			ParentID: root.ID, Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
		if i%2 == 1 {
			o.Status = identity.StatusDisabled
		}
		must(t, f.s.CreateOrg(f.ctx, o, nil))
		kids = append(kids, o)
	}
	other := f.org("")
	_ = f.org(other.ID)

	ps := pages(t, 3, func(p identity.Page) ([]*identity.Org, string, error) {
		return f.s.ListOrgs(f.ctx, identity.OrgFilter{ParentID: root.ID}, p)
	})
	eq(t, "pages", len(ps), 3)
	eq(t, "last page", len(ps[2]), 1)
	var ids []string
	for _, p := range ps {
		for _, o := range p {
			ids = append(ids, o.ID)
		}
	}
	var want []string
	for _, o := range kids {
		want = append(want, o.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("paged ids = %v, want %v", ids, want)
	}

	all, next, err := f.s.ListOrgs(f.ctx, identity.OrgFilter{}, identity.Page{})
	must(t, err)
	eq(t, "all orgs", len(all), 10)
	eq(t, "next token", next, "")
	if !slices.IsSortedFunc(all, func(a, b *identity.Org) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatal("ListOrgs is not ordered by id")
	}

	// Exactly one full page: no next token.
	_, next, err = f.s.ListOrgs(f.ctx, identity.OrgFilter{}, identity.Page{Size: 10})
	must(t, err)
	eq(t, "next token of an exact page", next, "")

	dis, _, err := f.s.ListOrgs(f.ctx, identity.OrgFilter{ParentID: root.ID, Status: identity.StatusDisabled}, identity.Page{})
	must(t, err)
	eq(t, "disabled kids", len(dis), 3)

	q, _, err := f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "nUMBER 4"}, identity.Page{})
	must(t, err)
	if len(q) != 1 || q[0].ID != kids[4].ID {
		t.Fatalf("query by name = %v", q)
	}
	q, _, err = f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "KID-5"}, identity.Page{})
	must(t, err)
	if len(q) != 1 || q[0].ID != kids[5].ID {
		t.Fatalf("query by code = %v", q)
	}
	q, _, err = f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "no such thing"}, identity.Page{})
	must(t, err)
	eq(t, "no match", len(q), 0)

	_, _, err = f.s.ListOrgs(f.ctx, identity.OrgFilter{}, identity.Page{Token: "!!not a token!!"})
	if err == nil {
		t.Fatal("invalid page token accepted")
	}
}

func testMoveOrg(t *testing.T, f *fixture) {
	a := f.org("")
	b := f.org(a.ID)
	c := f.org(b.ID)
	d := f.org("")
	e := f.org(d.ID)

	now := base.Add(2 * time.Hour)
	var moved *identity.Org
	f.expectEvents(2, func() {
		var err error
		moved, err = f.s.MoveOrg(f.ctx, b.ID, e.ID, now, f.evs(2))
		must(t, err)
	})
	eq(t, "moved parent", moved.ParentID, e.ID)
	eq(t, "moved path", moved.Path, e.Path+b.ID+"/")
	eqTime(t, "moved updated", moved.UpdatedAt, now)
	gc, err := f.s.GetOrg(f.ctx, c.ID)
	must(t, err)
	eq(t, "child path after move", gc.Path, e.Path+b.ID+"/"+c.ID+"/")
	eq(t, "child parent after move", gc.ParentID, b.ID)
	ga, err := f.s.GetOrg(f.ctx, a.ID)
	must(t, err)
	eq(t, "old parent path", ga.Path, a.Path)

	// Cycles: under itself, its child, its grandchild.
	f.expectEvents(0, func() {
		for _, target := range []string{b.ID, c.ID} {
			_, err := f.s.MoveOrg(f.ctx, b.ID, target, now, f.evs(1))
			isErr(t, err, identity.ErrConflict, "cannot move an org under its own subtree")
		}
		_, err := f.s.MoveOrg(f.ctx, d.ID, c.ID, now, f.evs(1))
		isErr(t, err, identity.ErrConflict, "cannot move an org under its own subtree")
	})
	gb, err := f.s.GetOrg(f.ctx, b.ID)
	must(t, err)
	eq(t, "path unchanged after refused move", gb.Path, moved.Path)

	_, err = f.s.MoveOrg(f.ctx, "missing", a.ID, now, nil)
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.MoveOrg(f.ctx, b.ID, "missing", now, nil)
	isErr(t, err, identity.ErrNotFound)

	// To the root.
	moved, err = f.s.MoveOrg(f.ctx, b.ID, "", now, nil)
	must(t, err)
	eq(t, "root move parent", moved.ParentID, "")
	eq(t, "root move path", moved.Path, "/"+b.ID+"/")
	gc, err = f.s.GetOrg(f.ctx, c.ID)
	must(t, err)
	eq(t, "child path after root move", gc.Path, "/"+b.ID+"/"+c.ID+"/")

	// A sibling subtree whose path shares a prefix is not rewritten.
	_, err = f.s.MoveOrg(f.ctx, d.ID, a.ID, now, nil)
	must(t, err)
	ge, err := f.s.GetOrg(f.ctx, e.ID)
	must(t, err)
	eq(t, "grandchild path", ge.Path, a.Path+d.ID+"/"+e.ID+"/")
	gc, err = f.s.GetOrg(f.ctx, c.ID)
	must(t, err)
	eq(t, "untouched subtree", gc.Path, "/"+b.ID+"/"+c.ID+"/")
	kids, _, err := f.s.ListOrgs(f.ctx, identity.OrgFilter{ParentID: a.ID}, identity.Page{})
	must(t, err)
	if len(kids) != 1 || kids[0].ID != d.ID {
		t.Fatalf("children of a = %v", kids)
	}
}

func fullUser(f *fixture, orgID string) *identity.User {
	u := f.newUser(orgID)
	u.DisplayName = "Zhang San"
	u.IDType = identity.IDTypeResidentID
	u.IDNumberEnc = "k1:sealed-id"
	u.IDNumberMask = "110***********34"
	u.PhoneEnc = "k1:sealed-phone"
	u.PhoneMask = "138****5678"
	u.Email = "zs@example.com"
	u.Status = identity.StatusActive
	u.FeatureCode = "fc-" + u.ID
	u.IDKey = "idk-" + u.ID
	u.IsAdmin = true
	u.PasswordChangedAt = base.Add(-time.Hour)
	u.MustChange = true
	u.NeverExpires = true
	u.CannotChange = true
	u.PasswordOnly = true
	u.MinAuthLevel = identity.AuthLevelTwoFactor
	u.FailedCount = 2
	u.LockedUntil = base.Add(time.Minute)
	u.CreatedAt = base
	u.UpdatedAt = base.Add(time.Second)
	return u
}

func sameUser(t *testing.T, got, want *identity.User) {
	t.Helper()
	g, w := *got, *want
	for _, p := range []struct {
		name string
		a, b *time.Time
	}{
		{"PasswordChangedAt", &g.PasswordChangedAt, &w.PasswordChangedAt},
		{"LockedUntil", &g.LockedUntil, &w.LockedUntil},
		{"NextAttemptAt", &g.NextAttemptAt, &w.NextAttemptAt},
		{"CreatedAt", &g.CreatedAt, &w.CreatedAt},
		{"UpdatedAt", &g.UpdatedAt, &w.UpdatedAt},
	} {
		eqTime(t, p.name, *p.a, *p.b)
		*p.a, *p.b = time.Time{}, time.Time{}
	}
	if g != w {
		t.Fatalf("user = %+v, want %+v", g, w)
	}
}

func testUserCRUD(t *testing.T, f *fixture) {
	o := f.org("")
	u := fullUser(f, o.ID)
	f.expectEvents(2, func() { must(t, f.s.CreateUser(f.ctx, u, f.evs(2))) })
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	sameUser(t, got, u)
	got, err = f.s.GetUserByLogin(f.ctx, u.LoginName)
	must(t, err)
	sameUser(t, got, u)

	// Minimal user: zero times and empty optional fields round-trip.
	m := &identity.User{ID: f.id("usr"), LoginName: "minimal", Status: identity.StatusActive}
	must(t, f.s.CreateUser(f.ctx, m, nil))
	got, err = f.s.GetUser(f.ctx, m.ID)
	must(t, err)
	sameUser(t, got, m)

	_, err = f.s.GetUser(f.ctx, "missing")
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.GetUserByLogin(f.ctx, "secret-login-name")
	isErr(t, err, identity.ErrNotFound)
	if strings.Contains(err.Error(), "secret-login-name") {
		t.Fatalf("not-found error echoes the login name: %v", err)
	}
	// Case aside: the same account, its name as registered.
	got, err = f.s.GetUserByLogin(f.ctx, strings.ToUpper(u.LoginName))
	must(t, err)
	sameUser(t, got, u)
	// ASCII letters only: a Kelvin sign (U+212A) is no k, whatever the
	// database's locale folds it to (review sec25 L4).
	k := &identity.User{ID: f.id("usr"), LoginName: "kate", Status: identity.StatusActive}
	must(t, f.s.CreateUser(f.ctx, k, nil))
	_, err = f.s.GetUserByLogin(f.ctx, "\u212Aate")
	isErr(t, err, identity.ErrNotFound)
}

func testUserConflicts(t *testing.T, f *fixture) {
	o := f.org("")
	u := fullUser(f, o.ID)
	must(t, f.s.CreateUser(f.ctx, u, nil))

	dupLogin := f.newUser(o.ID)
	dupLogin.LoginName = u.LoginName
	isErr(t, f.s.CreateUser(f.ctx, dupLogin, nil), identity.ErrConflict, "login name")
	// Login names differing only in case are one name (gap1 G17), on
	// create and on update.
	caseTwin := f.newUser(o.ID)
	caseTwin.LoginName = strings.ToUpper(u.LoginName)
	isErr(t, f.s.CreateUser(f.ctx, caseTwin, nil), identity.ErrConflict, "login name")
	other := f.user(o.ID)
	other.LoginName = strings.ToUpper(u.LoginName)
	isErr(t, f.s.UpdateUser(f.ctx, other, nil), identity.ErrConflict, "login name")
	// A person may change the case of their own name.
	u.LoginName = strings.ToUpper(u.LoginName)
	must(t, f.s.UpdateUser(f.ctx, u, nil))
	dupFeature := f.newUser(o.ID)
	dupFeature.FeatureCode = u.FeatureCode
	isErr(t, f.s.CreateUser(f.ctx, dupFeature, nil), identity.ErrConflict, "feature code")
	dupID := f.newUser(o.ID)
	dupID.ID = u.ID
	isErr(t, f.s.CreateUser(f.ctx, dupID, nil), identity.ErrConflict)
	for _, e := range []error{
		f.s.CreateUser(f.ctx, dupLogin, nil),
		f.s.CreateUser(f.ctx, dupFeature, nil),
	} {
		if strings.Contains(e.Error(), u.LoginName) || strings.Contains(e.Error(), u.FeatureCode) {
			t.Fatalf("conflict error echoes the value: %v", e)
		}
	}

	// Empty feature codes do not collide.
	_ = f.user(o.ID)
	_ = f.user(o.ID)

	noOrg := f.newUser("missing-org")
	isErr(t, f.s.CreateUser(f.ctx, noOrg, nil), identity.ErrNotFound)
}

func testUserList(t *testing.T, f *fixture) {
	o1, o2 := f.org(""), f.org("")
	var in1 []*identity.User
	for i := range 7 {
		u := f.newUser(o1.ID)
		u.DisplayName = fmt.Sprintf("Person %d", i)
		u.Email = fmt.Sprintf("p%d@Example.COM", i)
		if i == 3 {
			u.Status = identity.StatusDisabled
		}
		must(t, f.s.CreateUser(f.ctx, u, nil))
		in1 = append(in1, u)
	}
	other := f.user(o2.ID)

	ps := pages(t, 3, func(p identity.Page) ([]*identity.User, string, error) {
		return f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: o1.ID}, p)
	})
	var ids []string
	for _, p := range ps {
		for _, u := range p {
			ids = append(ids, u.ID)
		}
	}
	var want []string
	for _, u := range in1 {
		want = append(want, u.ID)
	}
	eq(t, "pages", len(ps), 3)
	if !slices.Equal(ids, want) {
		t.Fatalf("paged users = %v, want %v", ids, want)
	}

	got, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: o2.ID}, identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("users of o2 = %v", got)
	}
	got, _, err = f.s.ListUsers(f.ctx, identity.UserFilter{Status: identity.StatusDisabled}, identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != in1[3].ID {
		t.Fatalf("disabled users = %v", got)
	}
	for q, wantID := range map[string]string{
		"person 5":                        in1[5].ID, // display name
		"P6@EXAMPLE":                      in1[6].ID, // email
		strings.ToUpper(in1[2].LoginName): in1[2].ID,
	} {
		got, _, err = f.s.ListUsers(f.ctx, identity.UserFilter{Query: q}, identity.Page{})
		must(t, err)
		if len(got) != 1 || got[0].ID != wantID {
			t.Fatalf("query %q = %v, want %s", q, got, wantID)
		}
	}
}

// testUserListPasswordExpired: PasswordChangedBefore lists the users
// whose password was set before it and may expire, in every listing shape
// (alone, in an org, with a search, in pages).
func testUserListPasswordExpired(t *testing.T, f *fixture) {
	o := f.org("")
	cut := base.Add(-90 * 24 * time.Hour)
	mk := func(name string, changed time.Time, never bool, hash string) *identity.User {
		u := f.newUser(o.ID)
		u.DisplayName, u.PasswordChangedAt, u.NeverExpires, u.PasswordHash = name, changed, never, hash
		must(t, f.s.CreateUser(f.ctx, u, nil))
		return u
	}
	old1 := mk("expired one", cut.Add(-time.Hour), false, "h1")
	old2 := mk("expired two", cut.Add(-time.Millisecond), false, "h2")
	mk("never expires", cut.Add(-time.Hour), true, "h3")
	mk("fresh", cut.Add(time.Hour), false, "h4")
	mk("at the cut", cut, false, "h5")
	mk("no password", time.Time{}, false, "")
	other := f.org("")
	elsewhere := f.newUser(other.ID)
	elsewhere.PasswordChangedAt = cut.Add(-time.Hour)
	must(t, f.s.CreateUser(f.ctx, elsewhere, nil))

	ids := func(fl identity.UserFilter, size int) []string {
		t.Helper()
		var out []string
		for _, p := range pages(t, size, func(p identity.Page) ([]*identity.User, string, error) {
			return f.s.ListUsers(f.ctx, fl, p)
		}) {
			for _, u := range p {
				out = append(out, u.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	want := []string{old1.ID, old2.ID}
	slices.Sort(want)
	if got := ids(identity.UserFilter{OrgID: o.ID, PasswordChangedBefore: cut}, 1); !slices.Equal(got, want) {
		t.Fatalf("expired in org = %v, want %v", got, want)
	}
	all := append([]string{elsewhere.ID}, want...)
	slices.Sort(all)
	if got := ids(identity.UserFilter{PasswordChangedBefore: cut}, 2); !slices.Equal(got, all) {
		t.Fatalf("expired anywhere = %v, want %v", got, all)
	}
	if got := ids(identity.UserFilter{Query: "expired", PasswordChangedBefore: cut}, 5); !slices.Equal(got, want) {
		t.Fatalf("expired matching a search = %v, want %v", got, want)
	}
	if got := ids(identity.UserFilter{OrgID: o.ID, Subtree: true, PasswordChangedBefore: cut}, 5); !slices.Equal(got, want) {
		t.Fatalf("expired in subtree = %v, want %v", got, want)
	}
	// HasPassword: the users with a hash (the directory sweep's listing).
	if got := ids(identity.UserFilter{OrgID: o.ID, Subtree: true, HasPassword: true}, 2); len(got) != 5 {
		t.Fatalf("with a password in subtree = %v, want the 5 with a hash", got)
	}
	if got := ids(identity.UserFilter{OrgID: o.ID}, 10); len(got) != 6 {
		t.Fatalf("without the filter: %d users, want 6", len(got))
	}
}

// testAccountStateTime: the account's state time (ADR 0047) is read with
// the user (zero for a new one, whose StateAt is its creation), written by
// UpdateUser and never lowered by a copy read before a later change, and
// by UpdateLoginGate when a write names it (a lock of the login gate),
// whose decide sees it under the row lock; a gate write that names none
// leaves it.
func testAccountStateTime(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	if !got.StateChangedAt.IsZero() {
		t.Fatalf("new user's state time = %v", got.StateChangedAt)
	}
	eqTime(t, "never changed: its creation", got.StateAt(), u.CreatedAt)

	t1 := base.Add(time.Hour)
	stale := *got
	upd := *got
	upd.Status, upd.StateChangedAt, upd.UpdatedAt = identity.StatusDisabled, t1, t1
	must(t, f.s.UpdateUser(f.ctx, &upd, nil))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "after a disable", got.StateChangedAt, t1)
	byLogin, err := f.s.GetUserByLogin(f.ctx, u.LoginName)
	must(t, err)
	eqTime(t, "read by login", byLogin.StateAt(), t1)

	// A copy read before the change (no state time, or an older one)
	// leaves the newer time.
	stale.DisplayName = "Edited"
	must(t, f.s.UpdateUser(f.ctx, &stale, nil))
	stale.StateChangedAt = base.Add(time.Minute)
	must(t, f.s.UpdateUser(f.ctx, &stale, nil))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "not lowered", got.StateChangedAt, t1)

	// A lock of the login gate: decide sees the time under the row lock.
	t2 := t1.Add(time.Minute)
	f.expectEvents(1, func() {
		must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "src", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
			eqTime(t, "gate's state time", g.StateAt, t1)
			return identity.LoginGateWrite{LockedUntil: identity.LockForever, StateChangedAt: t2, Events: f.evs(1)}, true
		}))
	})
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "after the gate's lock", got.StateChangedAt, t2)
	eqTime(t, "locked", got.LockedUntil, identity.LockForever)
	// A gate write naming no state time (failures counted, a clean login)
	// leaves it.
	must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "src", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: 1, SourceFailures: 1, LockedUntil: g.LockedUntil}, true
	}))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "kept by a gate write", got.StateChangedAt, t2)
}

// An update naming the state time it was read with (IfStateChangedAt)
// is written only while the row's is still that one, else ErrConflict
// with nothing written, its events neither (ADR 0047: a lock's event
// names exactly the time stored; review sec32a M1).
func testAccountStateTimeConditional(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	read, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	never := time.Time{}

	// never changed: the zero time matches
	t1 := base.Add(time.Hour)
	upd := *read
	upd.Status, upd.StateChangedAt, upd.UpdatedAt, upd.IfStateChangedAt = identity.StatusDisabled, t1, t1, &never
	f.expectEvents(1, func() { must(t, f.s.UpdateUser(f.ctx, &upd, f.evs(1))) })

	// a copy read before that change, naming the zero time, is refused
	stale := *read
	t0 := base.Add(time.Minute)
	stale.LockedUntil, stale.WriteGate, stale.StateChangedAt, stale.IfStateChangedAt = identity.LockForever, true, t0, &never
	f.expectEvents(0, func() { isErr(t, f.s.UpdateUser(f.ctx, &stale, f.evs(1)), identity.ErrConflict) })
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "kept after a refused write", got.StateChangedAt, t1)
	if !got.LockedUntil.IsZero() {
		t.Errorf("a refused write locked the account until %v", got.LockedUntil)
	}

	// a gate's lock moves the time: a copy naming t1 is refused too
	t2 := t1.Add(time.Minute)
	must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{LockedUntil: identity.LockForever, StateChangedAt: t2}, true
	}))
	again := *got
	t3 := t2.Add(time.Minute)
	again.LockedUntil, again.WriteGate, again.StateChangedAt, again.IfStateChangedAt = time.Time{}, true, t3, &t1
	isErr(t, f.s.UpdateUser(f.ctx, &again, nil), identity.ErrConflict)

	// read again: written, to exactly the time named
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "the gate's", got.StateChangedAt, t2)
	fresh := *got
	fresh.LockedUntil, fresh.WriteGate, fresh.StateChangedAt, fresh.IfStateChangedAt = time.Time{}, true, t3, &t2
	must(t, f.s.UpdateUser(f.ctx, &fresh, nil))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "after the conditional unlock", got.StateChangedAt, t3)
	if !got.LockedUntil.IsZero() {
		t.Errorf("still locked until %v", got.LockedUntil)
	}
}

func testUpdateUser(t *testing.T, f *fixture) {
	o1, o2 := f.org(""), f.org("")
	u := f.user(o1.ID)
	other := fullUser(f, o1.ID)
	must(t, f.s.CreateUser(f.ctx, other, nil))

	upd := *u
	upd.LoginName = "renamed"
	upd.DisplayName = "New Name"
	upd.IDType = identity.IDTypePassport
	upd.IDNumberEnc, upd.IDNumberMask = "enc2", "E1******9"
	upd.PhoneEnc, upd.PhoneMask = "penc2", "139****0000"
	upd.Email = "new@example.org"
	upd.OrgID = o2.ID
	upd.Status = identity.StatusDisabled
	upd.FeatureCode = "feature-new"
	upd.IsAdmin = true
	upd.PasswordChangedAt = base.Add(3 * time.Hour)
	upd.MustChange, upd.NeverExpires, upd.CannotChange, upd.PasswordOnly = true, true, true, false
	upd.MinAuthLevel = identity.AuthLevelCertificate
	upd.FailedCount = 4
	upd.LockedUntil = identity.LockForever
	upd.NextAttemptAt = base.Add(time.Minute)
	upd.UpdatedAt = base.Add(4*time.Hour + 567*time.Millisecond)
	upd.PasswordHash = "must-not-be-written"

	// Without WriteGate the login gate's fields (and the password's time,
	// SetPassword's), without WriteMustChange must_change, are the row's:
	// the copy was read before.
	f.expectEvents(1, func() { must(t, f.s.UpdateUser(f.ctx, &upd, f.evs(1))) })
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	want := upd
	want.PasswordHash, want.PasswordChangedAt = u.PasswordHash, u.PasswordChangedAt
	want.FailedCount, want.LockedUntil, want.NextAttemptAt = u.FailedCount, u.LockedUntil, u.NextAttemptAt
	want.MustChange = u.MustChange
	want.CreatedAt = u.CreatedAt
	sameUser(t, got, &want)

	// With them (LockUser, UnlockUser; must_change_password) they are written.
	upd.WriteGate, upd.WriteMustChange = true, true
	must(t, f.s.UpdateUser(f.ctx, &upd, nil))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	want = upd
	want.PasswordHash, want.PasswordChangedAt, want.WriteGate, want.WriteMustChange = u.PasswordHash, u.PasswordChangedAt, false, false
	want.CreatedAt = u.CreatedAt
	sameUser(t, got, &want)
	if !got.Locked(base.AddDate(100, 0, 0)) {
		t.Fatal("LockForever did not round-trip")
	}

	// Clearing fields.
	clr := *got
	clr.FeatureCode, clr.OrgID, clr.LockedUntil = "", "", time.Time{}
	clr.NextAttemptAt, clr.WriteGate, clr.WriteMustChange = time.Time{}, true, true
	clr.IsAdmin, clr.MustChange, clr.NeverExpires, clr.CannotChange, clr.PasswordOnly = false, false, false, false, false
	clr.MinAuthLevel = identity.AuthLevelDefault
	must(t, f.s.UpdateUser(f.ctx, &clr, nil))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	clr.WriteGate, clr.WriteMustChange = false, false
	sameUser(t, got, &clr)

	conf := *got
	conf.LoginName = other.LoginName
	isErr(t, f.s.UpdateUser(f.ctx, &conf, nil), identity.ErrConflict, "login name")
	conf = *got
	conf.FeatureCode = other.FeatureCode
	isErr(t, f.s.UpdateUser(f.ctx, &conf, nil), identity.ErrConflict, "feature code")
	// Keeping one's own unique values is not a conflict.
	must(t, f.s.UpdateUser(f.ctx, got, nil))

	missing := *got
	missing.ID, missing.LoginName = "missing", "free-login"
	isErr(t, f.s.UpdateUser(f.ctx, &missing, nil), identity.ErrNotFound)
	bad := *got
	bad.OrgID = "missing-org"
	isErr(t, f.s.UpdateUser(f.ctx, &bad, nil), identity.ErrNotFound)
}

func testPasswordHistory(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	f.gate(u.ID, "src", 3)

	for i := range 5 {
		f.expectEvents(1, func() {
			must(t, f.s.SetPassword(f.ctx, u.ID, fmt.Sprintf("h%d", i), base.Add(time.Duration(i)*time.Minute),
				identity.PasswordSet{MustChange: i == 4, ByOther: i == 4}, 3, f.evs(1)))
		})
	}
	h, err := f.s.PasswordHistory(f.ctx, u.ID, 10)
	must(t, err)
	// The history holds replaced hashes (the creation hash, h0..h3), newest first.
	if !slices.Equal(h, []string{"h3", "h2", "h1"}) {
		t.Fatalf("history = %v, want the newest 3 replaced hashes", h)
	}
	h, err = f.s.PasswordHistory(f.ctx, u.ID, 2)
	must(t, err)
	if !slices.Equal(h, []string{"h3", "h2"}) {
		t.Fatalf("history(2) = %v", h)
	}
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "hash", got.PasswordHash, "h4")
	eq(t, "must change", got.MustChange, true)
	eq(t, "set by another", got.PasswordByOther, true)
	eq(t, "failed count", got.FailedCount, 0)
	eq(t, "next attempt", got.NextAttemptAt.IsZero(), true)
	eqTime(t, "changed at", got.PasswordChangedAt, base.Add(4*time.Minute))
	eq(t, "source count", f.readGate(u.ID, "src").SourceFailures, 0)

	// Same timestamps keep insertion order; a smaller keep trims.
	must(t, f.s.SetPassword(f.ctx, u.ID, "h5", base, identity.PasswordSet{}, 2, nil))
	must(t, f.s.SetPassword(f.ctx, u.ID, "h6", base, identity.PasswordSet{}, 2, nil))
	h, err = f.s.PasswordHistory(f.ctx, u.ID, 10)
	must(t, err)
	if !slices.Equal(h, []string{"h5", "h4"}) {
		t.Fatalf("history after keep 2 = %v", h)
	}
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "must change cleared", got.MustChange, false)
	eq(t, "the holder's own", got.PasswordByOther, false)

	// A person created with a password another chose keeps the mark.
	w := f.newUser(o.ID)
	w.PasswordByOther = true
	must(t, f.s.CreateUser(f.ctx, w, f.evs(1)))
	got, err = f.s.GetUser(f.ctx, w.ID)
	must(t, err)
	eq(t, "created with another's password", got.PasswordByOther, true)

	// Histories are per user.
	v := f.user(o.ID)
	must(t, f.s.SetPassword(f.ctx, v.ID, "v1", base, identity.PasswordSet{}, 5, nil))
	h, err = f.s.PasswordHistory(f.ctx, v.ID, 10)
	must(t, err)
	if !slices.Equal(h, []string{v.PasswordHash}) {
		t.Fatalf("history of v = %v", h)
	}
	h, err = f.s.PasswordHistory(f.ctx, "missing", 10)
	must(t, err)
	eq(t, "history of missing user", len(h), 0)

	isErr(t, f.s.SetPassword(f.ctx, "missing", "x", base, identity.PasswordSet{}, 3, nil), identity.ErrNotFound)

	// Conditional: only while the stored change time is the one named.
	cur, err := f.s.GetUser(f.ctx, v.ID)
	must(t, err)
	stale := cur.PasswordChangedAt.Add(-time.Minute)
	isErr(t, f.s.SetPassword(f.ctx, v.ID, "v-stale", base.Add(time.Hour), identity.PasswordSet{IfChangedAt: &stale}, 5, f.evs(1)),
		identity.ErrConflict)
	got, err = f.s.GetUser(f.ctx, v.ID)
	must(t, err)
	eq(t, "hash after a refused conditional set", got.PasswordHash, cur.PasswordHash)
	at := cur.PasswordChangedAt
	must(t, f.s.SetPassword(f.ctx, v.ID, "v-next", base.Add(time.Hour), identity.PasswordSet{IfChangedAt: &at}, 5, nil))
	got, err = f.s.GetUser(f.ctx, v.ID)
	must(t, err)
	eq(t, "hash after a conditional set", got.PasswordHash, "v-next")
	// no change time yet: the zero time names it
	nv := f.user(o.ID)
	var zero time.Time
	must(t, f.s.SetPassword(f.ctx, nv.ID, "nv-1", base, identity.PasswordSet{IfChangedAt: &zero}, 5, nil))
	isErr(t, f.s.SetPassword(f.ctx, nv.ID, "nv-2", base.Add(time.Minute), identity.PasswordSet{IfChangedAt: &zero}, 5, nil),
		identity.ErrConflict)
}

// gate sets the login gate of userID: n failures, all from source, the
// next attempt a minute after base.
func (f *fixture) gate(userID, source string, n int) {
	f.t.Helper()
	must(f.t, f.s.UpdateLoginGate(f.ctx, userID, source, func(identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: n, SourceFailures: n, NextAttemptAt: base.Add(time.Minute)}, true
	}))
}

// readGate returns the login gate of userID as seen from source, and
// checks that ReadLoginGate reads the same.
func (f *fixture) readGate(userID, source string) identity.LoginGate {
	f.t.Helper()
	var out identity.LoginGate
	must(f.t, f.s.UpdateLoginGate(f.ctx, userID, source, func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		out = g
		return identity.LoginGateWrite{}, false
	}))
	read, err := f.s.ReadLoginGate(f.ctx, userID, source)
	must(f.t, err)
	if !sameGate(read, out) {
		f.t.Fatalf("ReadLoginGate(%s, %q) = %+v, UpdateLoginGate reads %+v", userID, source, read, out)
	}
	return out
}

func sameGate(a, b identity.LoginGate) bool {
	return a.FailedCount == b.FailedCount && a.SourceFailures == b.SourceFailures && a.NextAttemptAt.Equal(b.NextAttemptAt) &&
		a.LockedUntil.Equal(b.LockedUntil) && a.Pending == b.Pending && a.PendingAt.Equal(b.PendingAt)
}

// testReadLoginGate: ReadLoginGate reads what UpdateLoginGate reads (the
// other login gate tests compare the two in every state through
// readGate), a missing user is ErrNotFound, and the read is answered
// while another transaction holds the user's row for a write.
func testReadLoginGate(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	f.gate(u.ID, "src", 2)
	eq(t, "source counted", f.readGate(u.ID, "src").SourceFailures, 2)
	eq(t, "other source", f.readGate(u.ID, "other").SourceFailures, 0)
	eq(t, "no source", f.readGate(u.ID, "").FailedCount, 2)
	_, err := f.s.ReadLoginGate(f.ctx, "missing", "src")
	isErr(t, err, identity.ErrNotFound)

	// A write holds the row (decide waits here, deliberately against its
	// contract) until a plain read has been answered.
	read := make(chan error, 1)
	var got identity.LoginGate
	must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "src", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		go func() {
			var err error
			got, err = f.s.ReadLoginGate(f.ctx, u.ID, "src")
			read <- err
		}()
		select {
		case err := <-read:
			must(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("ReadLoginGate waits for a write transaction on the user's row")
		}
		return identity.LoginGateWrite{FailedCount: 3, SourceFailures: 3}, true
	}))
	eq(t, "read beside the write: the committed count", got.FailedCount, 2)
	eq(t, "after the write", f.readGate(u.ID, "src").FailedCount, 3)
}

func testLoginGate(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	if g := f.readGate(u.ID, "a"); g != (identity.LoginGate{StateAt: g.StateAt}) || !g.StateAt.Equal(u.CreatedAt) {
		t.Fatalf("fresh gate = %+v", g)
	}
	// decide answering false writes nothing, not even events.
	f.expectEvents(0, func() { f.readGate(u.ID, "a") })

	lock := base.Add(15 * time.Minute)
	f.expectEvents(2, func() {
		must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "a", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{FailedCount: 3, SourceFailures: 2, NextAttemptAt: base.Add(time.Second),
				LockedUntil: lock, Pending: 2, PendingAt: base, Events: f.evs(2)}, true
		}))
	})
	g := f.readGate(u.ID, "a")
	eq(t, "failed count", g.FailedCount, 3)
	eq(t, "source failures", g.SourceFailures, 2)
	eqTime(t, "next attempt", g.NextAttemptAt, base.Add(time.Second))
	eqTime(t, "locked until", g.LockedUntil, lock)
	eq(t, "pending", g.Pending, 2)
	eqTime(t, "pending at", g.PendingAt, base)
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "user failed count", got.FailedCount, 3)
	eqTime(t, "user next attempt", got.NextAttemptAt, base.Add(time.Second))
	eqTime(t, "user lock", got.LockedUntil, lock)
	eq(t, "hash untouched", got.PasswordHash, u.PasswordHash)

	// Sources are counted apart; another source starts at 0.
	eq(t, "other source", f.readGate(u.ID, "b").SourceFailures, 0)
	eq(t, "no source", f.readGate(u.ID, "").SourceFailures, 0)
	must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "b", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: g.FailedCount + 1, SourceFailures: g.SourceFailures + 1}, true
	}))
	eq(t, "b counted", f.readGate(u.ID, "b").SourceFailures, 1)
	eq(t, "a kept", f.readGate(u.ID, "a").SourceFailures, 2)
	eq(t, "total", f.readGate(u.ID, "a").FailedCount, 4)
	// A source count of 0 forgets the source; ClearSources forgets all.
	must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "b", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: g.FailedCount}, true
	}))
	eq(t, "b forgotten", f.readGate(u.ID, "b").SourceFailures, 0)
	eq(t, "a still", f.readGate(u.ID, "a").SourceFailures, 2)
	f.expectEvents(1, func() {
		must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{ClearSources: true, Rehash: "rehashed", Events: f.evs(1)}, true
		}))
	})
	g = f.readGate(u.ID, "a")
	if g != (identity.LoginGate{StateAt: g.StateAt}) {
		t.Fatalf("cleared gate = %+v", g)
	}
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "rehash", got.PasswordHash, "rehashed")

	isErr(t, f.s.UpdateLoginGate(f.ctx, "missing", "a", func(identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: 1}, true
	}), identity.ErrNotFound)
}

// testLoginGateConcurrent: decide runs on the stored state under the row
// lock, so concurrent read-modify-writes never lose an update.
func testLoginGateConcurrent(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			errs <- f.s.UpdateLoginGate(f.ctx, u.ID, "src", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
				return identity.LoginGateWrite{FailedCount: g.FailedCount + 1, SourceFailures: g.SourceFailures + 1}, true
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	g := f.readGate(u.ID, "src")
	eq(t, "concurrent failures", g.FailedCount, n)
	eq(t, "concurrent source failures", g.SourceFailures, n)
}

// testLoginGateCleared: an update with no failures (unlock) and a new
// password forget the per-source counts.
func testLoginGateCleared(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	f.gate(u.ID, "src", 2)
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "failed", got.FailedCount, 2)
	got.DisplayName = "still failing"
	must(t, f.s.UpdateUser(f.ctx, got, nil))
	eq(t, "kept by a profile update", f.readGate(u.ID, "src").SourceFailures, 2)
	// A copy read before failures were counted (an administrator's edit
	// racing failed logins) does not undo them.
	stale := *got
	stale.FailedCount, stale.NextAttemptAt = 0, time.Time{}
	f.gate(u.ID, "src2", 1)
	stale.Email = "racing@example.org"
	must(t, f.s.UpdateUser(f.ctx, &stale, nil))
	after, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "failures kept by a stale copy", after.FailedCount, 1) // the gate's write after the copy was read
	eq(t, "e-mail written", after.Email, "racing@example.org")
	eq(t, "source kept by a stale copy", f.readGate(u.ID, "src").SourceFailures, 2)
	eq(t, "new source kept by a stale copy", f.readGate(u.ID, "src2").SourceFailures, 1)
	// The unlock (WriteGate) clears them.
	got.FailedCount, got.NextAttemptAt, got.WriteGate = 0, time.Time{}, true
	must(t, f.s.UpdateUser(f.ctx, got, nil))
	if g := f.readGate(u.ID, "src"); g != (identity.LoginGate{StateAt: g.StateAt}) {
		t.Fatalf("after unlock: %+v", g)
	}
	f.gate(u.ID, "src", 2)
	must(t, f.s.SetPassword(f.ctx, u.ID, "new", base, identity.PasswordSet{}, 3, nil))
	if g := f.readGate(u.ID, "src"); g != (identity.LoginGate{StateAt: g.StateAt}) {
		t.Fatalf("after a new password: %+v", g)
	}
}

func testGroups(t *testing.T, f *fixture) {
	o := f.org("")
	g := &identity.Group{ID: f.id("grp"), Code: "admins", Name: "Admins", OrgID: o.ID, CreatedAt: base}
	f.expectEvents(1, func() { must(t, f.s.CreateGroup(f.ctx, g, f.evs(1))) })
	got, err := f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	eq(t, "code", got.Code, g.Code)
	eq(t, "name", got.Name, g.Name)
	eq(t, "org", got.OrgID, o.ID)
	eqTime(t, "created", got.CreatedAt, base)
	eq(t, "members", len(got.MemberIDs), 0)

	dup := &identity.Group{ID: f.id("grp"), Code: "admins", Name: "x", OrgID: o.ID}
	isErr(t, f.s.CreateGroup(f.ctx, dup, nil), identity.ErrConflict, "code")
	_, err = f.s.GetGroup(f.ctx, "missing")
	isErr(t, err, identity.ErrNotFound)

	u1, u2, u3 := f.user(o.ID), f.user(o.ID), f.user(o.ID)
	for _, u := range []*identity.User{u3, u1, u2, u1} { // u1 twice: idempotent
		must(t, f.s.AddGroupMember(f.ctx, g.ID, u.ID, f.evs(1)))
	}
	got, err = f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	if !slices.Equal(got.MemberIDs, []string{u1.ID, u2.ID, u3.ID}) {
		t.Fatalf("members = %v, want sorted u1,u2,u3", got.MemberIDs)
	}
	f.expectEvents(1, func() { must(t, f.s.RemoveGroupMember(f.ctx, g.ID, u2.ID, f.evs(1))) })
	must(t, f.s.RemoveGroupMember(f.ctx, g.ID, u2.ID, nil)) // again: no-op
	got, err = f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	if !slices.Equal(got.MemberIDs, []string{u1.ID, u3.ID}) {
		t.Fatalf("members after remove = %v", got.MemberIDs)
	}

	g0 := &identity.Group{ID: f.id("grp"), Code: "aaa-first", Name: "First", OrgID: o.ID, CreatedAt: base}
	must(t, f.s.CreateGroup(f.ctx, g0, nil))
	must(t, f.s.AddGroupMember(f.ctx, g0.ID, u1.ID, nil))
	ug, err := f.s.UserGroups(f.ctx, u1.ID)
	must(t, err)
	if len(ug) != 2 || ug[0].Code != "aaa-first" || ug[1].Code != "admins" || ug[1].Name != "Admins" {
		t.Fatalf("groups of u1 = %+v, want aaa-first, admins", ug)
	}
	ug, err = f.s.UserGroups(f.ctx, u2.ID)
	must(t, err)
	eq(t, "groups of a removed member", len(ug), 0)

	isErr(t, f.s.AddGroupMember(f.ctx, "missing", u1.ID, nil), identity.ErrNotFound)
	isErr(t, f.s.AddGroupMember(f.ctx, g.ID, "missing", nil), identity.ErrNotFound)
	isErr(t, f.s.RemoveGroupMember(f.ctx, "missing", u1.ID, nil), identity.ErrNotFound)

	// A rename keeps the code, the org and the members.
	renamed := *g
	renamed.Name = "Administrators"
	f.expectEvents(1, func() { must(t, f.s.UpdateGroup(f.ctx, &renamed, f.evs(1))) })
	got, err = f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	if got.Name != "Administrators" || got.Code != "admins" || got.OrgID != o.ID || !slices.Equal(got.MemberIDs, []string{u1.ID, u3.ID}) {
		t.Fatalf("renamed group = %+v", got)
	}
	gone := identity.Group{ID: "missing", Name: "x"}
	f.expectEvents(0, func() { isErr(t, f.s.UpdateGroup(f.ctx, &gone, f.evs(1)), identity.ErrNotFound) })
}

func testGroupList(t *testing.T, f *fixture) {
	o1, o2 := f.org(""), f.org("")
	var want []string
	for i := range 7 {
		g := &identity.Group{ID: f.id("grp"), Code: fmt.Sprintf("g-%d", i), Name: fmt.Sprintf("Team %d", i),
			OrgID: o1.ID, CreatedAt: base}
		must(t, f.s.CreateGroup(f.ctx, g, nil))
		want = append(want, g.ID)
	}
	must(t, f.s.CreateGroup(f.ctx, &identity.Group{ID: f.id("grp"), Code: "other", Name: "Other", OrgID: o2.ID}, nil))

	ps := pages(t, 3, func(p identity.Page) ([]*identity.Group, string, error) {
		return f.s.ListGroups(f.ctx, identity.GroupFilter{OrgID: o1.ID}, p)
	})
	var ids []string
	for _, p := range ps {
		for _, g := range p {
			ids = append(ids, g.ID)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("paged groups = %v, want %v", ids, want)
	}
	got, _, err := f.s.ListGroups(f.ctx, identity.GroupFilter{Query: "TEAM 6"}, identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != want[6] {
		t.Fatalf("query = %v", got)
	}
	got, _, err = f.s.ListGroups(f.ctx, identity.GroupFilter{Query: "OTH"}, identity.Page{})
	must(t, err)
	eq(t, "query by code", len(got), 1)
}

func sameApp(t *testing.T, got, want *identity.App) {
	t.Helper()
	g, w := *got, *want
	eqTime(t, "PrevSecretExpires", g.PrevSecretExpires, w.PrevSecretExpires)
	eqTime(t, "SecretIssuedAt", g.SecretIssuedAt, w.SecretIssuedAt)
	eqTime(t, "SecretExpires", g.SecretExpires, w.SecretExpires)
	eqTime(t, "CreatedAt", g.CreatedAt, w.CreatedAt)
	eqTime(t, "UpdatedAt", g.UpdatedAt, w.UpdatedAt)
	eqTime(t, "AccessFrom", g.AccessFrom, w.AccessFrom)
	eqTime(t, "AccessUntil", g.AccessUntil, w.AccessUntil)
	g.AccessFrom, w.AccessFrom, g.AccessUntil, w.AccessUntil = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	// an application written without a level is A1
	w.SecurityLevel = max(w.SecurityLevel, 1)
	if !slices.Equal(g.IPAllowList, w.IPAllowList) {
		t.Fatalf("IPAllowList = %v, want %v", g.IPAllowList, w.IPAllowList)
	}
	g.PrevSecretExpires, w.PrevSecretExpires = time.Time{}, time.Time{}
	g.SecretIssuedAt, w.SecretIssuedAt, g.SecretExpires, w.SecretExpires = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	g.CreatedAt, w.CreatedAt, g.UpdatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	g.IPAllowList, w.IPAllowList = nil, nil
	if len(g.SigningKeys) != len(w.SigningKeys) {
		t.Fatalf("SigningKeys = %v, want %v", g.SigningKeys, w.SigningKeys)
	}
	for i := range g.SigningKeys {
		if g.SigningKeys[i].PEM != w.SigningKeys[i].PEM {
			t.Fatalf("SigningKeys[%d] = %q, want %q", i, g.SigningKeys[i].PEM, w.SigningKeys[i].PEM)
		}
		eqTime(t, "SigningKeys.AddedAt", g.SigningKeys[i].AddedAt, w.SigningKeys[i].AddedAt)
		eqTime(t, "SigningKeys.ExpiresAt", g.SigningKeys[i].ExpiresAt, w.SigningKeys[i].ExpiresAt)
	}
	g.SigningKeys, w.SigningKeys = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("app = %+v, want %+v", g, w)
	}
}

func testApps(t *testing.T, f *fixture) {
	a := &identity.App{ID: f.id("app"), Type: "oa", Code: "portal", Name: "Portal", Status: identity.AppActive,
		IPAllowList: []string{"10.0.0.0/8", "192.168.1.7"}, RateLimit: 12.5, RateBurst: 30,
		SecretHash: "s1", PrevSecretHash: "s0", PrevSecretExpires: base.Add(24 * time.Hour),
		SecretLifetime: 90 * 24 * time.Hour, SecretIssuedAt: base, SecretExpires: base.Add(90 * 24 * time.Hour),
		ClientCertSHA256: strings.Repeat("ab", 32), CreatedAt: base, UpdatedAt: base,
		SigningKeys: []identity.SigningKey{{PEM: testKeyPEM("one"), AddedAt: base.Add(-time.Hour),
			ExpiresAt: base.Add(365 * 24 * time.Hour)}},
		RequireSignatures: true, GrantedAPIs: []string{"authenticate", "authz.check"}, AccessUntil: base.Add(365 * 24 * time.Hour),
		SecurityLevel: 2, MinAuthLevel: identity.AuthLevelTwoFactor, MaxConcurrent: 40,
		LegacyIPOnly: true, NameRelease: identity.NameReleaseMasked}
	f.expectEvents(1, func() { must(t, f.s.CreateApp(f.ctx, a, f.evs(1))) })
	got, err := f.s.GetApp(f.ctx, a.ID)
	must(t, err)
	sameApp(t, got, a)
	got, err = f.s.GetAppByCode(f.ctx, "oa", "portal")
	must(t, err)
	sameApp(t, got, a)

	_, err = f.s.GetApp(f.ctx, "missing")
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.GetAppByCode(f.ctx, "erp", "portal")
	isErr(t, err, identity.ErrNotFound)

	dup := &identity.App{ID: f.id("app"), Type: "oa", Code: "portal", Name: "Dup", Status: identity.AppActive}
	isErr(t, f.s.CreateApp(f.ctx, dup, nil), identity.ErrConflict)
	dup.Type = "erp" // same code, other type: fine
	must(t, f.s.CreateApp(f.ctx, dup, nil))

	upd := *a
	upd.Type, upd.Code, upd.Name, upd.Status = "hr", "portal2", "Portal 2", identity.AppSuspended
	upd.IPAllowList = nil
	upd.RateLimit, upd.RateBurst = 0.25, 1
	upd.SecretHash, upd.PrevSecretHash, upd.PrevSecretExpires = "s2", "s1", base.Add(48*time.Hour)
	upd.ClientCertSHA256 = ""
	// a lifetime back to the default (none): the secret no longer expires
	upd.SecretLifetime, upd.SecretIssuedAt, upd.SecretExpires = 0, base.Add(time.Hour), time.Time{}
	// a key rollover: two keys; signatures no longer required
	upd.SigningKeys = []identity.SigningKey{a.SigningKeys[0], {PEM: testKeyPEM("two"), AddedAt: base.Add(time.Hour)}}
	upd.RequireSignatures = false
	// every interface again; a period with a start
	upd.GrantedAPIs, upd.AccessFrom, upd.AccessUntil = nil, base.Add(time.Hour), base.Add(2*365*24*time.Hour)
	upd.SecurityLevel = 1
	upd.MinAuthLevel = identity.AuthLevelCertificate
	upd.MaxConcurrent = 0
	upd.LegacyIPOnly = false
	upd.NameRelease = identity.NameReleaseOmitted
	upd.UpdatedAt = base.Add(time.Hour)
	f.expectEvents(1, func() { must(t, f.s.UpdateApp(f.ctx, &upd, f.evs(1))) })
	got, err = f.s.GetApp(f.ctx, a.ID)
	must(t, err)
	sameApp(t, got, &upd)

	conf := upd
	conf.Type, conf.Code = dup.Type, dup.Code
	isErr(t, f.s.UpdateApp(f.ctx, &conf, nil), identity.ErrConflict)
	must(t, f.s.UpdateApp(f.ctx, &upd, nil)) // own type+code: fine
	missing := upd
	missing.ID, missing.Code = "missing", "free"
	isErr(t, f.s.UpdateApp(f.ctx, &missing, nil), identity.ErrNotFound)
	// Conditional on the secret's issue time (a rotation).
	stale := upd.SecretIssuedAt.Add(-time.Minute)
	rot := upd
	rot.SecretHash, rot.WriteIfSecretIssuedAt = "s3", &stale
	isErr(t, f.s.UpdateApp(f.ctx, &rot, f.evs(1)), identity.ErrConflict)
	got, err = f.s.GetApp(f.ctx, a.ID)
	must(t, err)
	eq(t, "secret after a refused conditional write", got.SecretHash, "s2")
	issued := upd.SecretIssuedAt
	rot.WriteIfSecretIssuedAt, rot.SecretIssuedAt = &issued, base.Add(2*time.Hour)
	must(t, f.s.UpdateApp(f.ctx, &rot, nil))
	got, err = f.s.GetApp(f.ctx, a.ID)
	must(t, err)
	eq(t, "secret after a conditional write", got.SecretHash, "s3")
}

// testKeyPEM is a PEM block for the store (which keeps it as text; the
// domain parses keys).
func testKeyPEM(name string) string {
	return "-----BEGIN PUBLIC KEY-----\n" + name + "\n-----END PUBLIC KEY-----\n"
}

func testAppList(t *testing.T, f *fixture) {
	var want []string
	for i := range 7 {
		a := &identity.App{ID: f.id("app"), Type: "oa", Code: fmt.Sprintf("c%d", i), Name: fmt.Sprintf("System %d", i),
			Status: identity.AppActive}
		if i == 2 {
			a.Status = identity.AppSuspended
		}
		must(t, f.s.CreateApp(f.ctx, a, nil))
		want = append(want, a.ID)
	}
	other := f.app("erp")

	ps := pages(t, 3, func(p identity.Page) ([]*identity.App, string, error) {
		return f.s.ListApps(f.ctx, identity.AppFilter{Type: "oa"}, p)
	})
	var ids []string
	for _, p := range ps {
		for _, a := range p {
			ids = append(ids, a.ID)
		}
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("paged apps = %v, want %v", ids, want)
	}
	got, _, err := f.s.ListApps(f.ctx, identity.AppFilter{Status: identity.AppSuspended}, identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != want[2] {
		t.Fatalf("suspended = %v", got)
	}
	got, _, err = f.s.ListApps(f.ctx, identity.AppFilter{Type: "erp"}, identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("type erp = %v", got)
	}
	got, _, err = f.s.ListApps(f.ctx, identity.AppFilter{Query: "system 4"}, identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != want[4] {
		t.Fatalf("query = %v", got)
	}

	// Secrets expiring by a time: those expired and those due by then, not
	// those later nor those that never expire.
	for i, exp := range []time.Time{base.Add(-time.Hour), base.Add(10 * 24 * time.Hour), base.Add(10*24*time.Hour + time.Millisecond),
		base.Add(40 * 24 * time.Hour)} {
		a, err := f.s.GetApp(f.ctx, want[i])
		must(t, err)
		a.SecretIssuedAt, a.SecretExpires, a.SecretLifetime = base.Add(-24*time.Hour), exp, time.Duration(i+1)*time.Hour
		must(t, f.s.UpdateApp(f.ctx, a, nil))
	}
	var expiring []string
	for _, p := range pages(t, 1, func(p identity.Page) ([]*identity.App, string, error) {
		return f.s.ListApps(f.ctx, identity.AppFilter{SecretExpiresBefore: base.Add(10 * 24 * time.Hour)}, p)
	}) {
		for _, a := range p {
			expiring = append(expiring, a.ID)
		}
	}
	if !slices.Equal(expiring, want[:2]) {
		t.Fatalf("secrets expiring by then = %v, want %v", expiring, want[:2])
	}
	got, _, err = f.s.ListApps(f.ctx, identity.AppFilter{SecretExpiresBefore: base.Add(100 * 24 * time.Hour), Status: identity.AppSuspended},
		identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != want[2] || got[0].SecretLifetime != 3*time.Hour {
		t.Fatalf("suspended and expiring = %v", got)
	}
}

func testLinks(t *testing.T, f *fixture) {
	o := f.org("")
	u1, u2, u3 := f.user(o.ID), f.user(o.ID), f.user(o.ID)
	a1, a2 := f.app("oa"), f.app("oa")

	l1 := f.link(u1.ID, a1.ID, "acct-1")
	got, err := f.s.GetLink(f.ctx, l1.ID)
	must(t, err)
	if *got != *l1 {
		t.Fatalf("GetLink = %+v, want %+v", got, l1)
	}
	_, err = f.s.GetLink(f.ctx, "missing")
	isErr(t, err, identity.ErrNotFound)

	// Find by app account id.
	got, err = f.s.FindLink(f.ctx, a1.ID, "acct-1")
	must(t, err)
	eq(t, "by account", got.ID, l1.ID)
	// Find by the central login name.
	got, err = f.s.FindLink(f.ctx, a1.ID, u1.LoginName)
	must(t, err)
	eq(t, "by login", got.ID, l1.ID)
	// An app account id equal to another user's login name wins.
	l2 := f.link(u2.ID, a1.ID, u3.LoginName)
	l3 := f.link(u3.ID, a1.ID, "acct-3")
	got, err = f.s.FindLink(f.ctx, a1.ID, u3.LoginName)
	must(t, err)
	eq(t, "account id before login", got.ID, l2.ID)
	got, err = f.s.FindLink(f.ctx, a1.ID, "acct-3")
	must(t, err)
	eq(t, "acct-3", got.ID, l3.ID)
	// Other apps do not match.
	_, err = f.s.FindLink(f.ctx, a2.ID, "acct-1")
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.FindLink(f.ctx, a2.ID, u1.LoginName)
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.FindLink(f.ctx, a1.ID, "nobody")
	isErr(t, err, identity.ErrNotFound)

	// Conflicts.
	dupAcct := &identity.AccountLink{ID: f.id("lnk"), UserID: u3.ID, AppID: a1.ID, AppAccountID: "acct-1", Status: identity.StatusActive}
	isErr(t, f.s.CreateLink(f.ctx, dupAcct, nil), identity.ErrConflict)
	dupUser := &identity.AccountLink{ID: f.id("lnk"), UserID: u1.ID, AppID: a1.ID, AppAccountID: "acct-9", Status: identity.StatusActive}
	isErr(t, f.s.CreateLink(f.ctx, dupUser, nil), identity.ErrConflict)
	// Same account id in another app is fine.
	l4 := f.link(u1.ID, a2.ID, "acct-1")
	// Missing references.
	isErr(t, f.s.CreateLink(f.ctx, &identity.AccountLink{ID: f.id("lnk"), UserID: "missing", AppID: a2.ID, AppAccountID: "x"}, nil),
		identity.ErrNotFound)
	isErr(t, f.s.CreateLink(f.ctx, &identity.AccountLink{ID: f.id("lnk"), UserID: u2.ID, AppID: "missing", AppAccountID: "x"}, nil),
		identity.ErrNotFound)

	list, _, err := f.s.ListLinks(f.ctx, identity.LinkFilter{UserID: u1.ID}, identity.Page{})
	must(t, err)
	if len(list) != 2 || list[0].ID != l1.ID || list[1].ID != l4.ID {
		t.Fatalf("links of u1 = %v", list)
	}
	list, _, err = f.s.ListLinks(f.ctx, identity.LinkFilter{AppID: a1.ID}, identity.Page{})
	must(t, err)
	eq(t, "links of a1", len(list), 3)
	list, _, err = f.s.ListLinks(f.ctx, identity.LinkFilter{AppID: a1.ID, UserID: u2.ID}, identity.Page{})
	must(t, err)
	if len(list) != 1 || list[0].ID != l2.ID {
		t.Fatalf("links of a1/u2 = %v", list)
	}
	ps := pages(t, 3, func(p identity.Page) ([]*identity.AccountLink, string, error) {
		return f.s.ListLinks(f.ctx, identity.LinkFilter{}, p)
	})
	eq(t, "link pages", len(ps), 2)

	f.expectEvents(1, func() { must(t, f.s.DeleteLink(f.ctx, l1.ID, f.evs(1))) })
	_, err = f.s.GetLink(f.ctx, l1.ID)
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.FindLink(f.ctx, a1.ID, "acct-1")
	isErr(t, err, identity.ErrNotFound)
	isErr(t, f.s.DeleteLink(f.ctx, l1.ID, nil), identity.ErrNotFound)
	// The account can be linked again.
	_ = f.link(u1.ID, a1.ID, "acct-1")
}

func testAdminTokens(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	live := &identity.AdminToken{Hash: "h-live", UserID: u.ID, ExpiresAt: base.Add(time.Hour), CreatedAt: base}
	old := &identity.AdminToken{Hash: "h-old", UserID: u.ID, ExpiresAt: base.Add(-time.Minute), CreatedAt: base.Add(-time.Hour)}
	edge := &identity.AdminToken{Hash: "h-edge", UserID: u.ID, ExpiresAt: base, CreatedAt: base.Add(-time.Hour)}
	for _, tok := range []*identity.AdminToken{live, old, edge} {
		f.expectEvents(0, func() { must(t, f.s.CreateAdminToken(f.ctx, tok)) })
	}
	got, err := f.s.GetAdminToken(f.ctx, "h-live")
	must(t, err)
	eq(t, "user", got.UserID, u.ID)
	eqTime(t, "expires", got.ExpiresAt, live.ExpiresAt)
	eqTime(t, "created", got.CreatedAt, live.CreatedAt)
	eqTime(t, "last used = created", got.LastUsedAt, live.CreatedAt)
	must(t, f.s.TouchAdminToken(f.ctx, "h-live", base.Add(5*time.Minute)))
	must(t, f.s.TouchAdminToken(f.ctx, "h-live", base.Add(time.Minute))) // never backwards
	got, err = f.s.GetAdminToken(f.ctx, "h-live")
	must(t, err)
	eqTime(t, "last used", got.LastUsedAt, base.Add(5*time.Minute))
	_, err = f.s.GetAdminToken(f.ctx, "missing")
	isErr(t, err, identity.ErrNotFound)
	isErr(t, f.s.CreateAdminToken(f.ctx, &identity.AdminToken{Hash: "h-live", UserID: u.ID, ExpiresAt: base}), identity.ErrConflict)
	isErr(t, f.s.CreateAdminToken(f.ctx, &identity.AdminToken{Hash: "h-x", UserID: "missing", ExpiresAt: base}), identity.ErrNotFound)

	// Still readable when expired (the caller checks), until deleted.
	_, err = f.s.GetAdminToken(f.ctx, "h-old")
	must(t, err)
	must(t, f.s.DeleteExpiredAdminTokens(f.ctx, base))
	for _, h := range []string{"h-old", "h-edge"} {
		_, err = f.s.GetAdminToken(f.ctx, h)
		isErr(t, err, identity.ErrNotFound)
	}
	_, err = f.s.GetAdminToken(f.ctx, "h-live")
	must(t, err)

	// Logout deletes one token, with its events.
	f.expectEvents(1, func() { must(t, f.s.DeleteAdminToken(f.ctx, "h-live", f.evs(1))) })
	_, err = f.s.GetAdminToken(f.ctx, "h-live")
	isErr(t, err, identity.ErrNotFound)
	f.expectEvents(0, func() { isErr(t, f.s.DeleteAdminToken(f.ctx, "h-live", f.evs(1)), identity.ErrNotFound) })

	// An appointment deletes every token of the person (and only theirs),
	// with its events; none left is no error.
	other := f.user(o.ID)
	for _, tk := range []*identity.AdminToken{{Hash: "h-a1", UserID: u.ID}, {Hash: "h-a2", UserID: u.ID}, {Hash: "h-o", UserID: other.ID}} {
		tk.ExpiresAt, tk.CreatedAt = base.Add(time.Hour), base
		must(t, f.s.CreateAdminToken(f.ctx, tk))
	}
	f.expectEvents(1, func() { must(t, f.s.DeleteUserAdminTokens(f.ctx, u.ID, f.evs(1))) })
	for _, h := range []string{"h-a1", "h-a2"} {
		_, err = f.s.GetAdminToken(f.ctx, h)
		isErr(t, err, identity.ErrNotFound)
	}
	_, err = f.s.GetAdminToken(f.ctx, "h-o")
	must(t, err)
	f.expectEvents(1, func() { must(t, f.s.DeleteUserAdminTokens(f.ctx, u.ID, f.evs(1))) })

	// An appointment at the person's home centre, applied as a replica,
	// deletes their tokens issued up to its time (the same millisecond
	// counts), not later ones, nor other people's.
	for _, tk := range []*identity.AdminToken{{Hash: "h-r1", CreatedAt: base}, {Hash: "h-r2", CreatedAt: base.Add(time.Second)},
		{Hash: "h-r3", CreatedAt: base.Add(time.Second + time.Millisecond)}} {
		tk.UserID, tk.ExpiresAt = u.ID, base.Add(time.Hour)
		must(t, f.s.CreateAdminToken(f.ctx, tk))
	}
	out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{{Kind: "admintokens", ID: u.ID, Origin: "peer", Version: 1,
		EventID: "ev-admintokens", Op: identity.ReplicaUpsert, TokensBefore: base.Add(time.Second)}})
	must(t, err)
	if len(out) != 1 || out[0] != identity.ReplicaApplied {
		t.Fatalf("tokens revoked as a replica: %v", out)
	}
	for h, gone := range map[string]bool{"h-r1": true, "h-r2": true, "h-r3": false, "h-o": false} {
		_, err := f.s.GetAdminToken(f.ctx, h)
		if gone {
			isErr(t, err, identity.ErrNotFound)
		} else {
			must(t, err)
		}
	}
}

// testAdminTokensRevoked: a new password, a change of status or admin
// rights and a new lock delete every token of the user (and only theirs);
// profile changes and unlocking do not.
func testAdminTokensRevoked(t *testing.T, f *fixture) {
	o := f.org("")
	other := f.user(o.ID)
	n := 0
	issue := func(userID string) string {
		n++
		h := fmt.Sprintf("tok-%d", n)
		must(t, f.s.CreateAdminToken(f.ctx, &identity.AdminToken{Hash: h, UserID: userID, ExpiresAt: base.Add(time.Hour), CreatedAt: base}))
		return h
	}
	alive := func(h string) bool {
		t.Helper()
		_, err := f.s.GetAdminToken(f.ctx, h)
		if err != nil && !errors.Is(err, identity.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	bystander := issue(other.ID)
	for _, c := range []struct {
		name    string
		change  func(u *identity.User)
		revokes bool
	}{
		{"profile", func(u *identity.User) { u.DisplayName = "renamed" }, false},
		{"failure count", func(u *identity.User) { u.FailedCount = 3 }, false},
		{"disable", func(u *identity.User) { u.Status = identity.StatusDisabled }, true},
		{"admin rights taken", func(u *identity.User) { u.IsAdmin = false }, true},
		{"admin rights given", func(u *identity.User) { u.IsAdmin = true }, true},
		{"lock", func(u *identity.User) { u.LockedUntil, u.WriteGate = base.Add(time.Hour), true }, true},
		{"lock forever", func(u *identity.User) { u.LockedUntil, u.WriteGate = identity.LockForever, true }, true},
		{"lock in a stale copy (no WriteGate)", func(u *identity.User) { u.LockedUntil = base.Add(time.Hour) }, false},
	} {
		u := f.newUser(o.ID)
		u.IsAdmin = c.name != "admin rights given"
		must(t, f.s.CreateUser(f.ctx, u, nil))
		h1, h2 := issue(u.ID), issue(u.ID)
		c.change(u)
		must(t, f.s.UpdateUser(f.ctx, u, nil))
		if alive(h1) == c.revokes || alive(h2) == c.revokes {
			t.Fatalf("%s: tokens alive %v %v, want revoked=%v", c.name, alive(h1), alive(h2), c.revokes)
		}
		if c.revokes {
			// Undoing the change does not bring them back.
			u2, err := f.s.GetUser(f.ctx, u.ID)
			must(t, err)
			u2.Status, u2.LockedUntil, u2.WriteGate = identity.StatusActive, time.Time{}, true
			must(t, f.s.UpdateUser(f.ctx, u2, nil))
			if alive(h1) || alive(h2) {
				t.Fatalf("%s: tokens came back", c.name)
			}
		}
	}
	u := f.user(o.ID)
	h := issue(u.ID)
	must(t, f.s.SetPassword(f.ctx, u.ID, "new", base, identity.PasswordSet{}, 3, nil))
	if alive(h) {
		t.Fatal("token survived a new password")
	}
	if !alive(bystander) {
		t.Fatal("another user's token was revoked")
	}
}

func testLiteralStrings(t *testing.T, f *fixture) {
	const inject = "'; DROP TABLE users; --"
	o := &identity.Org{ID: f.id("org"), Code: inject, Name: `Robert"); DROP TABLE orgs;--`, Status: identity.StatusActive}
	must(t, f.s.CreateOrg(f.ctx, o, nil))
	got, err := f.s.GetOrg(f.ctx, o.ID)
	must(t, err)
	eq(t, "code", got.Code, inject)

	mk := func(login, display string) *identity.User {
		u := f.newUser(o.ID)
		u.LoginName, u.DisplayName = login, display
		must(t, f.s.CreateUser(f.ctx, u, nil))
		return u
	}
	uInject := mk(inject, "plain one")
	uPct := mk("%", "hundred% sure")
	uUnd := mk("_", "under_score")
	uBack := mk(`back\slash`, "plain two")
	mk("plainlogin", "plain three")

	for login, want := range map[string]string{inject: uInject.ID, "%": uPct.ID, "_": uUnd.ID, `back\slash`: uBack.ID} {
		got, err := f.s.GetUserByLogin(f.ctx, login)
		must(t, err)
		eq(t, "login "+login, got.ID, want)
	}
	_, err = f.s.GetUserByLogin(f.ctx, "' OR '1'='1")
	isErr(t, err, identity.ErrNotFound)

	// Queries of MinSearchLen (3) characters and more are substrings.
	for q, want := range map[string][]string{
		"d% s":       {uPct.ID},
		"r_s":        {uUnd.ID},
		`k\s`:        {uBack.ID},
		"drop table": {uInject.ID},
		"'; d":       {uInject.ID},
		"%%%":        nil,
		"___":        nil,
		`"""`:        nil,
	} {
		list, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{Query: q}, identity.Page{})
		must(t, err)
		var ids []string
		for _, u := range list {
			ids = append(ids, u.ID)
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("query %q = %v, want %v", q, ids, want)
		}
	}
	orgs, _, err := f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "drop table"}, identity.Page{})
	must(t, err)
	eq(t, "orgs matching", len(orgs), 1)

	a := &identity.App{ID: f.id("app"), Type: "t'--", Code: "%_", Name: "x", Status: identity.AppActive,
		IPAllowList: []string{`"]`, "'"}}
	must(t, f.s.CreateApp(f.ctx, a, nil))
	ga, err := f.s.GetAppByCode(f.ctx, "t'--", "%_")
	must(t, err)
	sameApp(t, ga, a)
	_, err = f.s.GetAppByCode(f.ctx, "t'--", "ab")
	isErr(t, err, identity.ErrNotFound)

	// The tables are all still there.
	n, err := f.s.CountOrgs(f.ctx)
	must(t, err)
	eq(t, "orgs", n, 1)
	all, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{}, identity.Page{})
	must(t, err)
	eq(t, "users", len(all), 5)
}

// testOutboxWrites checks each mutating method writes exactly its events.
func testOutboxWrites(t *testing.T, f *fixture) {
	if f.count == nil {
		t.Skip("no outbox counter")
	}
	o := &identity.Org{ID: f.id("org"), Code: "o", Name: "o", Status: identity.StatusActive}
	f.expectEvents(2, func() { must(t, f.s.CreateOrg(f.ctx, o, f.evs(2))) })
	o2 := &identity.Org{ID: f.id("org"), Code: "o2", Name: "o2", Status: identity.StatusActive}
	f.expectEvents(0, func() { must(t, f.s.CreateOrg(f.ctx, o2, nil)) })
	f.expectEvents(1, func() { must(t, f.s.UpdateOrg(f.ctx, o, f.evs(1))) })
	f.expectEvents(1, func() {
		_, err := f.s.MoveOrg(f.ctx, o2.ID, o.ID, base, f.evs(1))
		must(t, err)
	})
	u := f.newUser(o.ID)
	f.expectEvents(1, func() { must(t, f.s.CreateUser(f.ctx, u, f.evs(1))) })
	f.expectEvents(1, func() { must(t, f.s.UpdateUser(f.ctx, u, f.evs(1))) })
	f.expectEvents(1, func() { must(t, f.s.SetPassword(f.ctx, u.ID, "h", base, identity.PasswordSet{}, 3, f.evs(1))) })
	f.expectEvents(1, func() {
		must(t, f.s.UpdateLoginGate(f.ctx, u.ID, "s", func(identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{FailedCount: 1, SourceFailures: 1, Events: f.evs(1)}, true
		}))
	})
	must(t, f.s.CreateAdminToken(f.ctx, &identity.AdminToken{Hash: "t", UserID: u.ID, ExpiresAt: base}))
	f.expectEvents(1, func() { must(t, f.s.DeleteAdminToken(f.ctx, "t", f.evs(1))) })
	g := &identity.Group{ID: f.id("grp"), Code: "g", Name: "g", OrgID: o.ID}
	f.expectEvents(1, func() { must(t, f.s.CreateGroup(f.ctx, g, f.evs(1))) })
	f.expectEvents(1, func() { must(t, f.s.AddGroupMember(f.ctx, g.ID, u.ID, f.evs(1))) })
	f.expectEvents(1, func() { must(t, f.s.RemoveGroupMember(f.ctx, g.ID, u.ID, f.evs(1))) })
	a := &identity.App{ID: f.id("app"), Type: "t", Code: "c", Name: "n", Status: identity.AppActive}
	f.expectEvents(1, func() { must(t, f.s.CreateApp(f.ctx, a, f.evs(1))) })
	f.expectEvents(1, func() { must(t, f.s.UpdateApp(f.ctx, a, f.evs(1))) })
	l := &identity.AccountLink{ID: f.id("lnk"), UserID: u.ID, AppID: a.ID, AppAccountID: "x", Status: identity.StatusActive}
	f.expectEvents(1, func() { must(t, f.s.CreateLink(f.ctx, l, f.evs(1))) })
	f.expectEvents(1, func() { must(t, f.s.DeleteLink(f.ctx, l.ID, f.evs(1))) })
	f.expectEvents(2, func() { must(t, f.s.AppendEvents(f.ctx, f.evs(2))) })
}

// testFailedNoEvents checks failed mutations leave the outbox untouched.
func testFailedNoEvents(t *testing.T, f *fixture) {
	if f.count == nil {
		t.Skip("no outbox counter")
	}
	o := f.org("")
	child := f.org(o.ID)
	u := f.user(o.ID)
	a := f.app("t")
	g := &identity.Group{ID: f.id("grp"), Code: "g", Name: "g", OrgID: o.ID}
	must(t, f.s.CreateGroup(f.ctx, g, nil))
	l := f.link(u.ID, a.ID, "acct")

	f.expectEvents(0, func() {
		dupOrg := &identity.Org{ID: f.id("org"), Code: o.Code, Name: "x", Status: identity.StatusActive}
		isErr(t, f.s.CreateOrg(f.ctx, dupOrg, f.evs(1)), identity.ErrConflict)
		isErr(t, f.s.UpdateOrg(f.ctx, &identity.Org{ID: "missing", Name: "x"}, f.evs(1)), identity.ErrNotFound)
		_, err := f.s.MoveOrg(f.ctx, o.ID, child.ID, base, f.evs(1))
		isErr(t, err, identity.ErrConflict)

		dupUser := f.newUser(o.ID)
		dupUser.LoginName = u.LoginName
		isErr(t, f.s.CreateUser(f.ctx, dupUser, f.evs(1)), identity.ErrConflict)
		isErr(t, f.s.UpdateUser(f.ctx, &identity.User{ID: "missing", LoginName: "free"}, f.evs(1)), identity.ErrNotFound)
		isErr(t, f.s.SetPassword(f.ctx, "missing", "h", base, identity.PasswordSet{}, 3, f.evs(1)), identity.ErrNotFound)
		isErr(t, f.s.UpdateLoginGate(f.ctx, "missing", "s", func(identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{FailedCount: 1, Events: f.evs(1)}, true
		}), identity.ErrNotFound)
		isErr(t, f.s.DeleteAdminToken(f.ctx, "missing", f.evs(1)), identity.ErrNotFound)

		dupGroup := &identity.Group{ID: f.id("grp"), Code: "g", Name: "g", OrgID: o.ID}
		isErr(t, f.s.CreateGroup(f.ctx, dupGroup, f.evs(1)), identity.ErrConflict)
		isErr(t, f.s.AddGroupMember(f.ctx, g.ID, "missing", f.evs(1)), identity.ErrNotFound)
		isErr(t, f.s.RemoveGroupMember(f.ctx, "missing", u.ID, f.evs(1)), identity.ErrNotFound)

		dupApp := &identity.App{ID: f.id("app"), Type: a.Type, Code: a.Code, Name: "x", Status: identity.AppActive}
		isErr(t, f.s.CreateApp(f.ctx, dupApp, f.evs(1)), identity.ErrConflict)
		isErr(t, f.s.UpdateApp(f.ctx, &identity.App{ID: "missing", Type: "q", Code: "q"}, f.evs(1)), identity.ErrNotFound)

		dupLink := &identity.AccountLink{ID: f.id("lnk"), UserID: u.ID, AppID: a.ID, AppAccountID: "other"}
		isErr(t, f.s.CreateLink(f.ctx, dupLink, f.evs(1)), identity.ErrConflict)
		isErr(t, f.s.DeleteLink(f.ctx, "missing", f.evs(1)), identity.ErrNotFound)
	})
	_, err := f.s.GetLink(f.ctx, l.ID)
	must(t, err)
}

// testEventFailureRollsBack checks that a failing event write undoes the
// change it belongs to.
func testEventFailureRollsBack(t *testing.T, f *fixture) {
	if f.count == nil {
		t.Skip("no outbox counter")
	}
	first := f.evs(1)
	must(t, f.s.AppendEvents(f.ctx, first))

	// The change is written before its events; the repeated event id fails
	// the transaction and must take the change with it.
	o := &identity.Org{ID: f.id("org"), Code: "rolled-back", Name: "x", Status: identity.StatusActive}
	f.expectEvents(0, func() {
		if err := f.s.CreateOrg(f.ctx, o, append(f.evs(1), first[0])); err == nil {
			t.Fatal("CreateOrg with a repeated event id succeeded")
		}
	})
	_, err := f.s.GetOrg(f.ctx, o.ID)
	isErr(t, err, identity.ErrNotFound)

	root := f.org("")
	u := f.user(root.ID)
	f.expectEvents(0, func() {
		if err := f.s.UpdateLoginGate(f.ctx, u.ID, "s", func(identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{FailedCount: 1, SourceFailures: 1, Events: first}, true
		}); err == nil {
			t.Fatal("UpdateLoginGate with a repeated event id succeeded")
		}
		if err := f.s.SetPassword(f.ctx, u.ID, "new-hash", base, identity.PasswordSet{}, 3, first); err == nil {
			t.Fatal("SetPassword with a repeated event id succeeded")
		}
	})
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "failed count after rollback", got.FailedCount, 0)
	eq(t, "source count after rollback", f.readGate(u.ID, "s").SourceFailures, 0)
	eq(t, "hash after rollback", got.PasswordHash, u.PasswordHash)
	h, err := f.s.PasswordHistory(f.ctx, u.ID, 5)
	must(t, err)
	eq(t, "history after rollback", len(h), 0)
}

// testSSOAttributes: what a ticket validation releases, in one read: the
// user, the org's name, the account of the active link to the app (none
// for a disabled link, another app or no app) and the group codes in code
// order.
func testSSOAttributes(t *testing.T, f *fixture) {
	o := f.org("")
	u, bare := f.user(o.ID), f.user("")
	a1, a2, a3 := f.app("oa"), f.app("oa"), f.app("oa")
	f.link(u.ID, a1.ID, "acct-u")
	off := &identity.AccountLink{ID: f.id("lnk"), UserID: u.ID, AppID: a2.ID, AppAccountID: "acct-off",
		Status: identity.StatusDisabled, CreatedAt: base}
	must(t, f.s.CreateLink(f.ctx, off, nil))
	for _, code := range []string{"zeta", "alpha"} {
		g := &identity.Group{ID: f.id("grp"), Code: code, Name: "Group " + code, OrgID: o.ID, CreatedAt: base}
		must(t, f.s.CreateGroup(f.ctx, g, nil))
		must(t, f.s.AddGroupMember(f.ctx, g.ID, u.ID, nil))
	}
	for _, tc := range []struct{ app, account string }{{a1.ID, "acct-u"}, {a2.ID, ""}, {a3.ID, ""}, {"", ""}} {
		got, err := f.s.SSOAttributes(f.ctx, u.ID, tc.app)
		must(t, err)
		if got.User.ID != u.ID || got.User.LoginName != u.LoginName || got.User.DisplayName != u.DisplayName ||
			got.User.OrgID != o.ID || got.OrgName != o.Name || got.AppAccountID != tc.account ||
			!slices.Equal(got.Groups, []string{"alpha", "zeta"}) {
			t.Fatalf("attributes for app %q = %+v %+v, want account %q, org %q, groups alpha, zeta", tc.app, got, got.User, tc.account, o.Name)
		}
	}
	got, err := f.s.SSOAttributes(f.ctx, bare.ID, a1.ID)
	must(t, err)
	if got.User.ID != bare.ID || got.OrgName != "" || got.AppAccountID != "" || len(got.Groups) != 0 {
		t.Fatalf("attributes of a person without org, link or group = %+v", got)
	}
	_, err = f.s.SSOAttributes(f.ctx, "missing", a1.ID)
	isErr(t, err, identity.ErrNotFound)
}

// testDeleteUser: a deleted person goes with their links, group
// memberships, admin tokens and password history (one event); listings
// and searches no longer name them; the login name is free again.
func testDeleteUser(t *testing.T, f *fixture) {
	o := f.org("")
	a := f.app("OA")
	u, keep := f.user(o.ID), f.user(o.ID)
	l := f.link(u.ID, a.ID, "acct-del")
	g := &identity.Group{ID: f.id("grp"), Code: "g-del", Name: "G", OrgID: o.ID, CreatedAt: base}
	must(t, f.s.CreateGroup(f.ctx, g, nil))
	must(t, f.s.AddGroupMember(f.ctx, g.ID, u.ID, nil))
	must(t, f.s.AddGroupMember(f.ctx, g.ID, keep.ID, nil))
	must(t, f.s.CreateAdminToken(f.ctx, &identity.AdminToken{Hash: "h-del", UserID: u.ID, ExpiresAt: base.Add(time.Hour), CreatedAt: base}))

	f.expectEvents(1, func() { must(t, f.s.DeleteUser(f.ctx, u.ID, f.evs(1))) })
	_, err := f.s.GetUser(f.ctx, u.ID)
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.GetLink(f.ctx, l.ID)
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.GetAdminToken(f.ctx, "h-del")
	isErr(t, err, identity.ErrNotFound)
	got, err := f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	if !slices.Equal(got.MemberIDs, []string{keep.ID}) {
		t.Fatalf("group members after the deletion: %v, want only %s", got.MemberIDs, keep.ID)
	}
	list, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: o.ID}, identity.Page{})
	must(t, err)
	if len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("people of the org after the deletion: %v", list)
	}
	if h, err := f.s.PasswordHistory(f.ctx, u.ID, 10); err == nil && len(h) != 0 {
		t.Fatalf("password history of a deleted person: %v", h)
	}
	isErr(t, f.s.DeleteUser(f.ctx, u.ID, f.evs(1)), identity.ErrNotFound)
	f.expectEvents(0, func() { isErr(t, f.s.DeleteUser(f.ctx, "missing", f.evs(1)), identity.ErrNotFound) })
	// The login name and the account can be given to someone new.
	again := f.newUser(o.ID)
	again.LoginName = u.LoginName
	must(t, f.s.CreateUser(f.ctx, again, nil))
	_ = f.link(again.ID, a.ID, "acct-del")
}

// testDeleteOrgAndGroup: an org is deleted only when nothing is under it
// (a conflict naming what is left otherwise, nothing written); a group
// goes with its memberships, its members stay.
func testDeleteOrgAndGroup(t *testing.T, f *fixture) {
	root := f.org("")
	branch := f.org(root.ID)
	sub := f.org(branch.ID)
	u := f.user(sub.ID)
	g := &identity.Group{ID: f.id("grp"), Code: "g-gone", Name: "G", OrgID: sub.ID, CreatedAt: base}
	must(t, f.s.CreateGroup(f.ctx, g, nil))
	must(t, f.s.AddGroupMember(f.ctx, g.ID, u.ID, nil))

	f.expectEvents(0, func() { isErr(t, f.s.DeleteOrg(f.ctx, branch.ID, f.evs(1)), identity.ErrOrgNotEmpty, "orgs") })
	f.expectEvents(0, func() { isErr(t, f.s.DeleteOrg(f.ctx, sub.ID, f.evs(1)), identity.ErrOrgNotEmpty, "people") })

	f.expectEvents(1, func() { must(t, f.s.DeleteGroup(f.ctx, g.ID, f.evs(1))) })
	_, err := f.s.GetGroup(f.ctx, g.ID)
	isErr(t, err, identity.ErrNotFound)
	if _, err := f.s.GetUser(f.ctx, u.ID); err != nil {
		t.Fatalf("a member of a deleted group: %v", err)
	}
	isErr(t, f.s.DeleteGroup(f.ctx, g.ID, nil), identity.ErrNotFound)

	g2 := &identity.Group{ID: f.id("grp"), Code: "g-left", Name: "G2", OrgID: sub.ID, CreatedAt: base}
	must(t, f.s.CreateGroup(f.ctx, g2, nil))
	must(t, f.s.DeleteUser(f.ctx, u.ID, nil))
	f.expectEvents(0, func() { isErr(t, f.s.DeleteOrg(f.ctx, sub.ID, f.evs(1)), identity.ErrOrgNotEmpty, "groups") })
	must(t, f.s.DeleteGroup(f.ctx, g2.ID, nil))
	f.expectEvents(1, func() { must(t, f.s.DeleteOrg(f.ctx, sub.ID, f.evs(1))) })
	_, err = f.s.GetOrg(f.ctx, sub.ID)
	isErr(t, err, identity.ErrNotFound)
	must(t, f.s.DeleteOrg(f.ctx, branch.ID, nil))
	isErr(t, f.s.DeleteOrg(f.ctx, branch.ID, nil), identity.ErrNotFound)
}

// testDeleteApp: a deleted application goes with its account links and
// fingerprint bypass setting (one event); the people linked stay, other
// applications keep theirs; its type and code can be registered again.
func testDeleteApp(t *testing.T, f *fixture) {
	o := f.org("")
	a, keep := f.app("DA"), f.app("DA")
	u := f.user(o.ID)
	l := f.link(u.ID, a.ID, "acct-app-del")
	kl := f.link(u.ID, keep.ID, "acct-app-keep")
	must(t, f.s.SetFingerBypass(f.ctx, &identity.FingerBypass{AppID: a.ID, Enabled: true, Reason: "r", SetBy: "x", UpdatedAt: base}, nil))

	// Only a suspended application goes (checked as it is deleted).
	_, err := f.s.AppTombstone(f.ctx, a.ID)
	isErr(t, err, identity.ErrNotFound)
	f.expectEvents(0, func() { isErr(t, f.s.DeleteApp(f.ctx, a.ID, base, f.evs(1)), identity.ErrAppActive) })
	a.Status = identity.AppSuspended
	must(t, f.s.UpdateApp(f.ctx, a, nil))
	f.expectEvents(1, func() { must(t, f.s.DeleteApp(f.ctx, a.ID, base.Add(time.Hour), f.evs(1))) })
	_, err = f.s.GetApp(f.ctx, a.ID)
	isErr(t, err, identity.ErrNotFound)
	// Its App_ID is kept with the time of its deletion and its last
	// secrets' hashes.
	if ts, err := f.s.AppTombstone(f.ctx, a.ID); err != nil || !ts.DeletedAt.Equal(base.Add(time.Hour)) ||
		ts.SecretHash != a.SecretHash || ts.PrevSecretHash != a.PrevSecretHash {
		t.Fatalf("tombstone: %+v %v, want %q %q", ts, err, a.SecretHash, a.PrevSecretHash)
	}
	_, err = f.s.GetAppByCode(f.ctx, a.Type, a.Code)
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.GetLink(f.ctx, l.ID)
	isErr(t, err, identity.ErrNotFound)
	if _, err := f.s.GetLink(f.ctx, kl.ID); err != nil {
		t.Fatalf("the link of another application: %v", err)
	}
	if _, err := f.s.GetUser(f.ctx, u.ID); err != nil {
		t.Fatalf("a person linked to a deleted application: %v", err)
	}
	if b, err := f.s.GetFingerBypass(f.ctx, a.ID); err != nil || b.Enabled {
		t.Fatalf("the bypass of a deleted application: %+v %v", b, err)
	}
	apps, _, err := f.s.ListApps(f.ctx, identity.AppFilter{Type: "DA"}, identity.Page{})
	must(t, err)
	if len(apps) != 1 || apps[0].ID != keep.ID {
		t.Fatalf("applications after the deletion: %v", apps)
	}
	isErr(t, f.s.DeleteApp(f.ctx, a.ID, base, f.evs(1)), identity.ErrNotFound)
	f.expectEvents(0, func() { isErr(t, f.s.DeleteApp(f.ctx, "missing", base, f.evs(1)), identity.ErrNotFound) })
	// The type and code, and the account, can be registered again.
	again := &identity.App{ID: f.id("app"), Type: a.Type, Code: a.Code, Name: "Again", Status: identity.AppActive,
		SecretHash: "secret-again", CreatedAt: base, UpdatedAt: base}
	must(t, f.s.CreateApp(f.ctx, again, nil))
	_ = f.link(u.ID, again.ID, "acct-app-del")
}

// testSetMustChange: level 1's requirement of a new password (ADR 0048)
// sets must_change_password with its events and nothing else of the row;
// an unknown person is ErrNotFound, nothing written.
func testSetMustChange(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	before, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	f.expectEvents(1, func() { must(t, f.s.SetMustChange(f.ctx, u.ID, f.evs(1))) })
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	if !got.MustChange || got.PasswordHash != before.PasswordHash || got.DisplayName != before.DisplayName ||
		got.Status != before.Status || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("after SetMustChange: %+v, before %+v", got, before)
	}
	f.expectEvents(0, func() {
		if err := f.s.SetMustChange(f.ctx, "nobody", f.evs(1)); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("an unknown person: %v", err)
		}
	})
}

// testCentreDisabled: a disable set by another centre (level 1's of a
// level-2 person, ADR 0048) is read with the person (by id, login and in
// listings), written with its events, raises the state time (never
// lowers it), survives an UpdateUser of a copy read before it, and is
// cleared by the zero value; an unknown person is ErrNotFound.
func testCentreDisabled(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	t1 := base.Add(time.Hour)
	stale, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	f.expectEvents(1, func() {
		must(t, f.s.SetCentreDisabled(f.ctx, u.ID, identity.CentreDisable{Centre: "l1", At: t1, By: "user:adm"}, f.evs(1)))
	})
	check := func(what string, got *identity.User, centre string) {
		t.Helper()
		if got.DisabledCentre != centre || (centre != "" && (got.DisabledCentreBy != "user:adm" || !got.DisabledCentreAt.Equal(t1))) {
			t.Fatalf("%s: disabled by %q at %v by %q, want %q", what, got.DisabledCentre, got.DisabledCentreAt, got.DisabledCentreBy, centre)
		}
		if got.Enabled() != (centre == "") {
			t.Fatalf("%s: enabled %v", what, got.Enabled())
		}
	}
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	check("by id", got, "l1")
	eqTime(t, "state time", got.StateChangedAt, t1)
	byLogin, err := f.s.GetUserByLogin(f.ctx, u.LoginName)
	must(t, err)
	check("by login", byLogin, "l1")
	list, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: o.ID}, identity.Page{Size: 10})
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("listing: %d users", len(list))
	}
	check("listed", list[0], "l1")

	// The home's change of a copy read before it leaves it.
	stale.DisplayName = "Edited"
	must(t, f.s.UpdateUser(f.ctx, stale, nil))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	check("after an update", got, "l1")

	// Cleared; the state time is not lowered.
	must(t, f.s.SetCentreDisabled(f.ctx, u.ID, identity.CentreDisable{}, nil))
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	check("cleared", got, "")
	eqTime(t, "state time after the clear", got.StateChangedAt, t1)

	if err := f.s.SetCentreDisabled(f.ctx, "nobody", identity.CentreDisable{Centre: "l1", At: t1}, nil); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("an unknown person: %v", err)
	}

	// Conditional on the state time read: a stale one is ErrConflict,
	// nothing written, its events neither; the stored one writes.
	never, t2 := time.Time{}, t1.Add(time.Minute)
	f.expectEvents(0, func() {
		isErr(t, f.s.SetCentreDisabled(f.ctx, u.ID, identity.CentreDisable{Centre: "l1", At: t2, By: "user:adm", IfStateAt: &never}, f.evs(1)),
			identity.ErrConflict)
	})
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	check("after a stale conditional disable", got, "")
	f.expectEvents(1, func() {
		must(t, f.s.SetCentreDisabled(f.ctx, u.ID, identity.CentreDisable{Centre: "l1", At: t2, By: "user:adm", IfStateAt: &t1}, f.evs(1)))
	})
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eqTime(t, "state time of the conditional disable", got.StateChangedAt, t2)
	if got.DisabledCentre != "l1" {
		t.Fatalf("the conditional disable: %+v", got)
	}
	if err := f.s.SetCentreDisabled(f.ctx, "nobody", identity.CentreDisable{Centre: "l1", At: t2, IfStateAt: &t1}, nil); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("an unknown person, conditional: %v", err)
	}
}
