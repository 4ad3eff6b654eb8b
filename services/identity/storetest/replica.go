package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// testApplyReplica: the writes of a batch apply in order in one
// transaction; a write not above its object's version is STALE; one that
// collides with a row here (a login name taken, a missing org) is CONFLICT
// and leaves the others; passwords and secrets are written only when the
// write says so; the top of a peer's subtree hangs under the root; replicas
// write no events.
func testApplyReplica(t *testing.T, f *fixture) {
	root := f.org("")
	local := f.user(root.ID)
	before := f.outbox()
	top := &identity.Org{ID: f.id("org"), Code: "peer-top", Name: "Peer top", ParentID: "elsewhere-root",
		Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
	u := f.newUser(top.ID)
	u.PasswordHash = "argon-hash"
	u.MinAuthLevel = identity.AuthLevelTwoFactor
	a := &identity.App{ID: f.id("app"), Type: "OA", Code: "peer-app", Name: "Peer app", Status: identity.AppActive,
		SecretHash: "secret-hash", Home: "peer", CreatedAt: base, UpdatedAt: base, MinAuthLevel: identity.AuthLevelCertificate}
	clash := f.newUser(top.ID)
	clash.LoginName = local.LoginName
	g := &identity.Group{ID: f.id("grp"), Code: "peer-group", Name: "Peer group", OrgID: top.ID, CreatedAt: base}
	l := &identity.AccountLink{ID: f.id("lnk"), UserID: u.ID, AppID: a.ID, AppAccountID: "acct", Status: identity.StatusActive,
		CreatedAt: base}
	w := func(kind, id string, v uint64, op string) identity.ReplicaWrite {
		return identity.ReplicaWrite{Kind: kind, ID: id, Origin: "peer", Version: v, EventID: kind + "-" + id, Op: op}
	}
	ws := []identity.ReplicaWrite{
		w("org", top.ID, 1, identity.ReplicaUpsert),
		w("user", u.ID, 2, identity.ReplicaUpsert),
		w("app", a.ID, 3, identity.ReplicaUpsert),
		w("user", clash.ID, 4, identity.ReplicaUpsert),
		w("group", g.ID, 5, identity.ReplicaUpsert),
		w("group", g.ID, 6, identity.ReplicaMemberAdd),
		w("link", l.ID, 7, identity.ReplicaUpsert),
		w("user", f.id("usr"), 8, identity.ReplicaUpsert),
	}
	ws[0].Org, ws[0].AttachToRoot = top, true
	ws[1].User, ws[1].WithPassword = u, true
	ws[2].App, ws[2].WithSecrets = a, true
	ws[3].User = clash
	ws[4].Group = g
	ws[5].Member = u.ID
	ws[6].Link = l
	ws[7].User = f.newUser("no-such-org")
	out, err := f.s.ApplyReplica(f.ctx, ws)
	must(t, err)
	want := []identity.ReplicaOutcome{identity.ReplicaApplied, identity.ReplicaApplied, identity.ReplicaApplied,
		identity.ReplicaConflict, identity.ReplicaApplied, identity.ReplicaApplied, identity.ReplicaApplied, identity.ReplicaConflict}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("outcomes %v, want %v", out, want)
	}
	if f.count != nil && f.outbox() != before {
		t.Fatal("applying replicas wrote events")
	}
	// the origin of each change recorded, applied or in conflict; none
	// for an object no change named
	for _, k := range []struct{ kind, id string }{{"org", top.ID}, {"user", clash.ID}} {
		if from, ok, err := f.s.ReplicaOrigin(f.ctx, k.kind, k.id); err != nil || !ok || from != "peer" {
			t.Fatalf("replica origin of %s %s: %q %v %v", k.kind, k.id, from, ok, err)
		}
	}
	if _, ok, err := f.s.ReplicaOrigin(f.ctx, "org", "no-such-org"); err != nil || ok {
		t.Fatalf("replica origin of an org no change named: %v %v", ok, err)
	}
	o, err := f.s.GetOrg(f.ctx, top.ID)
	must(t, err)
	if o.ParentID != root.ID || o.Path != root.Path+top.ID+"/" {
		t.Fatalf("top of the peer subtree: parent %q path %q", o.ParentID, o.Path)
	}
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	if got.PasswordHash != "argon-hash" || got.LoginName != u.LoginName || got.OrgID != top.ID ||
		got.MinAuthLevel != identity.AuthLevelTwoFactor {
		t.Fatalf("replica user %+v", got)
	}
	ga, err := f.s.GetApp(f.ctx, a.ID)
	must(t, err)
	if ga.SecretHash != "secret-hash" || ga.Home != "peer" || ga.MinAuthLevel != identity.AuthLevelCertificate {
		t.Fatalf("replica app %+v", ga)
	}
	gg, err := f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	if !reflect.DeepEqual(gg.MemberIDs, []string{u.ID}) {
		t.Fatalf("members %v", gg.MemberIDs)
	}
	if _, err := f.s.GetLink(f.ctx, l.ID); err != nil {
		t.Fatal(err)
	}

	// Again: nothing above the versions applied; the very writes again
	// are answered as what they did (review sec16 M2).
	out, err = f.s.ApplyReplica(f.ctx, ws)
	must(t, err)
	// (the group's upsert is below its membership's version: STALE)
	want = []identity.ReplicaOutcome{identity.ReplicaReplayed, identity.ReplicaReplayed, identity.ReplicaReplayed,
		identity.ReplicaReplayedConflict, identity.ReplicaStale, identity.ReplicaReplayed, identity.ReplicaReplayed,
		identity.ReplicaReplayedConflict}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("redelivered: outcomes %v, want %v", out, want)
	}
	// A later change without the password keeps the hash; an older one is
	// stale; a delete removes the link.
	u2 := *u
	u2.DisplayName, u2.PasswordHash = "Renamed", ""
	u2.MinAuthLevel = identity.AuthLevelCertificate // the person's level comes with any change
	u2.UserType = identity.UserTypeUnit             // and so does the user type
	a2 := *a
	a2.MinAuthLevel = identity.AuthLevelTwoFactor
	a2.Name, a2.SecretHash = "Renamed app", ""
	// the signing keys and the requirement come with any change
	a2.SigningKeys = []identity.SigningKey{{PEM: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", AddedAt: base}}
	a2.RequireSignatures, a2.LegacyIPOnly, a2.NameRelease = true, true, identity.NameReleaseMasked // (review sec30b I4)
	a2.GrantedAPIs, a2.AccessUntil = []string{"sso"}, base.Add(time.Hour)
	ws = []identity.ReplicaWrite{w("user", u.ID, 9, identity.ReplicaUpsert), w("user", u.ID, 5, identity.ReplicaUpsert),
		w("app", a.ID, 10, identity.ReplicaUpsert), w("link", l.ID, 11, identity.ReplicaDelete),
		w("group", g.ID, 12, identity.ReplicaMemberRemove)}
	ws[0].User, ws[1].User, ws[2].App, ws[4].Member = &u2, u, &a2, u.ID
	out, err = f.s.ApplyReplica(f.ctx, ws)
	must(t, err)
	want = []identity.ReplicaOutcome{identity.ReplicaApplied, identity.ReplicaStale, identity.ReplicaApplied,
		identity.ReplicaApplied, identity.ReplicaApplied}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("outcomes %v, want %v", out, want)
	}
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	if got.DisplayName != "Renamed" || got.PasswordHash != "argon-hash" || got.MinAuthLevel != identity.AuthLevelCertificate ||
		got.UserType != identity.UserTypeUnit {
		t.Fatalf("replica user after update %+v", got)
	}
	ga, err = f.s.GetApp(f.ctx, a.ID)
	must(t, err)
	if ga.Name != "Renamed app" || ga.SecretHash != "secret-hash" || !ga.RequireSignatures || len(ga.SigningKeys) != 1 ||
		ga.SigningKeys[0].PEM != a2.SigningKeys[0].PEM || !ga.SigningKeys[0].AddedAt.Equal(base) ||
		!slices.Equal(ga.GrantedAPIs, []string{"sso"}) || !ga.AccessUntil.Equal(base.Add(time.Hour)) ||
		ga.MinAuthLevel != identity.AuthLevelTwoFactor || !ga.LegacyIPOnly || ga.NameRelease != identity.NameReleaseMasked {
		t.Fatalf("replica app after update %+v", ga)
	}
	if _, err := f.s.GetLink(f.ctx, l.ID); err == nil {
		t.Fatal("deleted link still there")
	}
	gg, err = f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	if len(gg.MemberIDs) != 0 {
		t.Fatalf("members %v", gg.MemberIDs)
	}
}

// testReplicaLocksAndSealed: a replica person's sealed values are written
// when the write carries them and kept otherwise; a lock set at another
// centre (kind "lock") and the home's changes keep the later lock, and
// only the home's unlock clears it.
func testReplicaLocksAndSealed(t *testing.T, f *fixture) {
	f.org("")
	top := &identity.Org{ID: f.id("org"), Code: "peer-top-2", Name: "Peer top", ParentID: "elsewhere-root",
		Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
	u := f.newUser(top.ID)
	u.IDNumberEnc, u.PhoneEnc = "k1:sealed-id", "k1:sealed-phone"
	w := func(kind string, v uint64) identity.ReplicaWrite {
		return identity.ReplicaWrite{Kind: kind, ID: u.ID, Origin: "peer", Version: v, EventID: fmt.Sprintf("%s-%s-%d", kind, u.ID, v),
			Op: identity.ReplicaUpsert}
	}
	org := w("org", 1)
	org.ID, org.Org, org.AttachToRoot = top.ID, top, true
	created := w("user", 1)
	created.User, created.WithSealed = u, true
	out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{org, created})
	must(t, err)
	if out[0] != identity.ReplicaApplied || out[1] != identity.ReplicaApplied {
		t.Fatalf("outcomes %v", out)
	}
	check := func(what string, lock time.Time, idEnc string) {
		t.Helper()
		got, err := f.s.GetUser(f.ctx, u.ID)
		must(t, err)
		if !got.LockedUntil.Equal(lock) || got.IDNumberEnc != idEnc || got.PhoneEnc != "k1:sealed-phone" {
			t.Fatalf("%s: locked until %v sealed %q %q; want %v %q", what, got.LockedUntil, got.IDNumberEnc, got.PhoneEnc, lock, idEnc)
		}
	}
	check("created", time.Time{}, "k1:sealed-id")

	later, earlier := base.Add(time.Hour), base.Add(30*time.Minute)
	lock := w("lock", 1)
	lock.Origin, lock.Lock = "l1", later
	home := *u
	home.IDNumberEnc, home.PhoneEnc, home.DisplayName = "", "", "Renamed at home"
	update := w("user", 2)
	update.User = &home // without its sealed values: they stay
	older := w("lock", 2)
	older.Origin, older.Lock = "l1", earlier
	out, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{lock, update, older})
	must(t, err)
	if !reflect.DeepEqual(out, []identity.ReplicaOutcome{identity.ReplicaApplied, identity.ReplicaApplied, identity.ReplicaApplied}) {
		t.Fatalf("outcomes %v", out)
	}
	check("locked at another centre, then changed at home", later, "k1:sealed-id")

	resealed := *u
	resealed.IDNumberEnc = "k2:sealed-id"
	sealed := w("user", 3)
	sealed.User, sealed.WithSealed = &resealed, true
	unlock := w("user", 4)
	unlocked := home
	unlock.User, unlock.Unlocked = &unlocked, true
	_, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{sealed})
	must(t, err)
	check("sealed again at home", later, "k2:sealed-id")
	_, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{unlock})
	must(t, err)
	check("unlocked at home", time.Time{}, "k2:sealed-id")
}

// testReplicaSearchAndEvents: a batch's renames reach the people search
// (the last name a batch gives a person, and only it), a rename left out
// as CONFLICT does not, a person's links follow a move to another org, and
// the local events of the writes applied (and only of those) reach the
// outbox in the batch's order.
func testReplicaSearchAndEvents(t *testing.T, f *fixture) {
	root := f.org("")
	local := f.user(root.ID)
	top := &identity.Org{ID: f.id("org"), Code: "peer-top-3", Name: "Peer top", ParentID: "elsewhere-root",
		Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
	unit := &identity.Org{ID: f.id("org"), Code: "peer-unit-3", Name: "Peer unit", ParentID: top.ID,
		Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
	a, b := f.newUser(top.ID), f.newUser(top.ID)
	a.DisplayName, b.DisplayName = "Quartermaster Ahab", "Quartermaster Bligh"
	app := f.app("OA")
	l := &identity.AccountLink{ID: f.id("lnk"), UserID: a.ID, AppID: app.ID, AppAccountID: "acct-a", Status: identity.StatusActive,
		CreatedAt: base}
	v := uint64(0)
	w := func(kind, id string, ev bool) identity.ReplicaWrite {
		v++
		rw := identity.ReplicaWrite{Kind: kind, ID: id, Origin: "peer", Version: v, EventID: fmt.Sprintf("e%d", v),
			Op: identity.ReplicaUpsert}
		if ev {
			rw.Event = &f.evs(1)[0]
		}
		return rw
	}
	ws := []identity.ReplicaWrite{w("org", top.ID, false), w("org", unit.ID, false), w("user", a.ID, false),
		w("user", b.ID, false), w("link", l.ID, false)}
	ws[0].Org, ws[0].AttachToRoot, ws[1].Org, ws[2].User, ws[3].User, ws[4].Link = top, true, unit, a, b, l
	out, err := f.s.ApplyReplica(f.ctx, ws)
	must(t, err)
	for i, oc := range out {
		if oc != identity.ReplicaApplied {
			t.Fatalf("write %d: %s", i, oc)
		}
	}
	search := func(q string) []string {
		t.Helper()
		us, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{Query: q}, identity.Page{})
		must(t, err)
		var ids []string
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		return ids
	}
	if got := search("Quartermaster"); !reflect.DeepEqual(got, []string{a.ID, b.ID}) {
		t.Fatalf("search after the replicas' creation = %v", got)
	}

	// One batch: a renamed twice and moved to unit; b renamed with a login
	// name taken here (CONFLICT: neither name nor login written); a third
	// person's write stale.
	a1, a2, b1 := *a, *a, *b
	a1.DisplayName = "Navigator Ahab"
	a2.DisplayName, a2.Email, a2.OrgID = "Bosun Ahab", "bosun@ship.example", unit.ID
	b1.DisplayName, b1.LoginName = "Navigator Bligh", local.LoginName
	ws = []identity.ReplicaWrite{w("user", a.ID, true), w("user", b.ID, true), w("user", a.ID, true)}
	ws[0].User, ws[1].User, ws[2].User = &a1, &b1, &a2
	stale := ws[2]
	stale.Version, stale.User, stale.Event = 1, b, &f.evs(1)[0]
	ws = append(ws, stale)
	before := f.outbox()
	out, err = f.s.ApplyReplica(f.ctx, ws)
	must(t, err)
	want := []identity.ReplicaOutcome{identity.ReplicaApplied, identity.ReplicaConflict, identity.ReplicaApplied,
		identity.ReplicaStale}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("outcomes %v, want %v", out, want)
	}
	if f.count != nil {
		if got := f.outbox() - before; got != 2 {
			t.Fatalf("outbox grew by %d events, want 2 (the applied writes')", got)
		}
	}
	for q, want := range map[string][]string{
		"Bosun":            {a.ID},
		"ship.example":     {a.ID},
		"Navigator":        nil, // a's first name was replaced in the batch; b's was not written
		"Quartermaster":    {b.ID},
		"Quartermaster Ah": nil,
	} {
		if got := search(q); !reflect.DeepEqual(got, want) {
			t.Fatalf("search %q = %v, want %v", q, got, want)
		}
	}
	got, err := f.s.GetUser(f.ctx, b.ID)
	must(t, err)
	if got.LoginName != b.LoginName || got.DisplayName != b.DisplayName {
		t.Fatalf("conflicting write changed b: %+v", got)
	}
	links, _, err := f.s.ListLinks(f.ctx, identity.LinkFilter{Within: []string{unit.ID}}, identity.Page{})
	must(t, err)
	if len(links) != 1 || links[0].ID != l.ID {
		t.Fatalf("links within the unit a moved to = %v", links)
	}

	// A write that changes no searched field leaves the search as it was.
	a3 := a2
	a3.Status = identity.StatusDisabled
	ws = []identity.ReplicaWrite{w("user", a.ID, false)}
	ws[0].User = &a3
	out, err = f.s.ApplyReplica(f.ctx, ws)
	must(t, err)
	if out[0] != identity.ReplicaApplied {
		t.Fatalf("outcome %s", out[0])
	}
	if got := search("Bosun"); !reflect.DeepEqual(got, []string{a.ID}) {
		t.Fatalf("search after a status change = %v", got)
	}
	got, err = f.s.GetUser(f.ctx, a.ID)
	must(t, err)
	if got.Status != identity.StatusDisabled || got.OrgID != unit.ID || got.DisplayName != "Bosun Ahab" ||
		got.Email != "bosun@ship.example" || got.LoginName != a.LoginName {
		t.Fatalf("a after the batches: %+v", got)
	}
	disabled, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{Status: identity.StatusDisabled, OrgID: unit.ID}, identity.Page{})
	must(t, err)
	if len(disabled) != 1 || disabled[0].ID != a.ID {
		t.Fatalf("disabled people of the unit = %v", disabled)
	}
	// UserOrg: the one column the home checks read.
	if org, err := f.s.UserOrg(f.ctx, a.ID); err != nil || org != unit.ID {
		t.Fatalf("UserOrg(a) = %q, %v; want %q", org, err, unit.ID)
	}
	orgless := f.user("")
	if org, err := f.s.UserOrg(f.ctx, orgless.ID); err != nil || org != "" {
		t.Fatalf("UserOrg(a person of no org) = %q, %v", org, err)
	}
	_, err = f.s.UserOrg(f.ctx, "no-such-person")
	isErr(t, err, identity.ErrNotFound)
}

// testReplicaOfAnAbsentPerson: a finger, an authenticator app or a
// certificate of a person not held here (their creation was left out as
// a CONFLICT) is CONFLICT too, not a failure of the batch; a group's
// member set (a resend) holds the members held here and writes their
// events.
func testReplicaOfAnAbsentPerson(t *testing.T, f *fixture) {
	root := f.org("")
	held := f.user(root.ID)
	absent := f.id("usr")
	g := &identity.Group{ID: f.id("grp"), Code: "resent-group", Name: "Resent", OrgID: root.ID, CreatedAt: base}
	w := func(kind, id string, v uint64) identity.ReplicaWrite {
		return identity.ReplicaWrite{Kind: kind, ID: id, Origin: "peer", Version: v, EventID: fmt.Sprintf("%s-%d", kind, v),
			Op: identity.ReplicaUpsert}
	}
	finger, app, cert, group := w("finger", absent+"/2", 1), w("totp", absent, 2), w("cert", "peer/"+absent, 3), w("group", g.ID, 4)
	finger.Finger = &identity.StoredFinger{Finger: identity.Finger{UserID: absent, Position: 2, Quality: 60, Format: "ISO",
		Minutiae: 30, CreatedAt: base, UpdatedAt: base}, TemplateEnc: "k:sealed"}
	app.TOTP = &identity.UserTOTP{UserID: absent, SecretEnc: "k:sealed", CreatedAt: base}
	cert.Cert = &identity.UserCert{SHA256: fmt.Sprintf("%064d", 7), UserID: absent, NotAfter: base.Add(time.Hour), CreatedAt: base}
	group.Group, group.WithMembers, group.Members = g, true, []string{absent, held.ID}
	out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{finger, app, cert, group})
	must(t, err)
	want := []identity.ReplicaOutcome{identity.ReplicaConflict, identity.ReplicaConflict, identity.ReplicaConflict, identity.ReplicaApplied}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("outcomes %v, want %v", out, want)
	}
	got, err := f.s.GetGroup(f.ctx, g.ID)
	must(t, err)
	if !reflect.DeepEqual(got.MemberIDs, []string{held.ID}) {
		t.Fatalf("members %v, want the held person only", got.MemberIDs)
	}
	// a later set replaces it
	again := w("group", g.ID, 5)
	again.Group, again.WithMembers = g, true
	out, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{again})
	must(t, err)
	if got, err := f.s.GetGroup(f.ctx, g.ID); err != nil || len(got.MemberIDs) != 0 || out[0] != identity.ReplicaApplied {
		t.Fatalf("an empty member set: %v %+v %v", out, got, err)
	}
}

// testReplicaDeleteOfAnOrgHeldHere: a peer's deletion of an org that
// still holds a person here (one whose move this centre refused) is
// CONFLICT, not a failure of the batch (which would stall the link); the
// org and the person stay.
func testReplicaDeleteOfAnOrgHeldHere(t *testing.T, f *fixture) {
	root := f.org("")
	o := f.org(root.ID)
	u := f.user(o.ID)
	del := identity.ReplicaWrite{Kind: "org", ID: o.ID, Origin: "peer", Version: 1, EventID: "org-del", Op: identity.ReplicaDelete}
	out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{del})
	must(t, err)
	if out[0] != identity.ReplicaConflict {
		t.Fatalf("outcome %v, want CONFLICT", out[0])
	}
	if _, err := f.s.GetOrg(f.ctx, o.ID); err != nil {
		t.Fatalf("the org: %v", err)
	}
	if _, err := f.s.GetUser(f.ctx, u.ID); err != nil {
		t.Fatalf("the person: %v", err)
	}
}

// testReplicaLinkOfAnotherPerson: a peer's change of an account link names
// its person; one naming another person than the link's here changes
// nothing (an upsert is CONFLICT, a deletion deletes nothing).
func testReplicaLinkOfAnotherPerson(t *testing.T, f *fixture) {
	root := f.org("")
	owner, other := f.user(root.ID), f.user(root.ID)
	app := f.app("oa")
	l := f.link(owner.ID, app.ID, "acct-owner")
	up := identity.ReplicaWrite{Kind: "link", ID: l.ID, Origin: "peer", Version: 1, EventID: "link-up", Op: identity.ReplicaUpsert,
		Link: &identity.AccountLink{ID: l.ID, UserID: other.ID, AppID: app.ID, AppAccountID: "stolen", Status: identity.StatusActive, CreatedAt: base}}
	del := identity.ReplicaWrite{Kind: "link", ID: l.ID, Origin: "peer", Version: 2, EventID: "link-del", Op: identity.ReplicaDelete,
		Link: &identity.AccountLink{ID: l.ID, UserID: other.ID}}
	out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{up, del})
	must(t, err)
	if out[0] != identity.ReplicaConflict {
		t.Fatalf("an upsert naming another person: %v", out[0])
	}
	got, err := f.s.GetLink(f.ctx, l.ID)
	if err != nil || got.UserID != owner.ID || got.AppAccountID != "acct-owner" {
		t.Fatalf("the link after a peer's changes naming another person: %+v %v", got, err)
	}
}

// testReplicaLevelOneManages: level 1's changes of a person homed here
// (kind "lock", ADR 0048) write their disable by level 1 and its lifting,
// and their must_change_password, in version order; an older change is
// STALE and undoes nothing; a home change of the person afterwards
// (kind "user") leaves the disable.
func testReplicaLevelOneManages(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	at := base.Add(time.Hour)
	w := func(v uint64) identity.ReplicaWrite {
		return identity.ReplicaWrite{Kind: "lock", ID: u.ID, Origin: "l1", Version: v, EventID: fmt.Sprintf("l1-%s-%d", u.ID, v),
			Op: identity.ReplicaUpsert}
	}
	disable, ask, enable := w(1), w(2), w(3)
	disable.CentreDisable = &identity.CentreDisable{Centre: "l1", At: at, By: "user:adm"}
	ask.MustChange = true
	enable.CentreDisable = &identity.CentreDisable{}
	out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{disable, ask})
	must(t, err)
	if out[0] != identity.ReplicaApplied || out[1] != identity.ReplicaApplied {
		t.Fatalf("outcomes %v", out)
	}
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	if got.DisabledCentre != "l1" || got.DisabledCentreBy != "user:adm" || !got.DisabledCentreAt.Equal(at) || !got.MustChange || got.Enabled() {
		t.Fatalf("after level 1's disable and requirement: %+v", got)
	}
	eqTime(t, "state time", got.StateChangedAt, at)
	// The home changes the person (a copy without the disable).
	got.DisplayName = "Edited"
	must(t, f.s.UpdateUser(f.ctx, got, nil))
	out, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{enable})
	must(t, err)
	if out[0] != identity.ReplicaApplied {
		t.Fatalf("enable: %v", out)
	}
	// the disable again, older: STALE
	out, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{disable})
	must(t, err)
	if out[0] == identity.ReplicaApplied {
		t.Fatalf("an older disable after the enable: %v", out)
	}
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	if got.DisabledCentre != "" || !got.Enabled() || got.DisplayName != "Edited" {
		t.Fatalf("after level 1's enable and an older disable: %+v", got)
	}
}
