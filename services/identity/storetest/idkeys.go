package storetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
)

// apierrOf is "CODE/REASON" of err's domain error.
func apierrOf(err error) (string, bool) {
	e, ok := apierr.As(err)
	if !ok {
		return "", false
	}
	return e.Code.String() + "/" + e.Reason, true
}

// One account per person: an ID key is one person's (ErrIDNumberTaken, an
// ALREADY_EXISTS that names neither the key nor the other account), on
// create and on update; people without one (NULL) are many; an update that
// keeps its key, or gives it up, passes.
func testUserIDKey(t *testing.T, f *fixture) {
	o := f.org("")
	a := f.newUser(o.ID)
	a.IDKey = "idk-person-1"
	must(t, f.s.CreateUser(f.ctx, a, nil))
	got, err := f.s.GetUser(f.ctx, a.ID)
	must(t, err)
	eq(t, "stored ID key", got.IDKey, a.IDKey)

	b := f.newUser(o.ID)
	b.IDKey = a.IDKey
	err = f.s.CreateUser(f.ctx, b, nil)
	isErr(t, err, identity.ErrIDNumberTaken, "another account already has this ID number")
	if e, ok := apierrOf(err); !ok || e != "ALREADY_EXISTS/ID_NUMBER_TAKEN" {
		t.Fatalf("code/reason of a taken ID key = %q", e)
	}
	if strings.Contains(err.Error(), a.IDKey) || strings.Contains(err.Error(), a.LoginName) {
		t.Fatalf("error names the key or the other account: %v", err)
	}
	_, err = f.s.GetUser(f.ctx, b.ID)
	isErr(t, err, identity.ErrNotFound)

	// Found by its key (a certificate's number mapped to its person);
	// an unknown or empty key is no one.
	got, err = f.s.GetUserByIDKey(f.ctx, a.IDKey)
	must(t, err)
	eq(t, "person of the ID key", got.ID, a.ID)
	_, err = f.s.GetUserByIDKey(f.ctx, "idk-nobody")
	isErr(t, err, identity.ErrNotFound)
	_, err = f.s.GetUserByIDKey(f.ctx, "")
	isErr(t, err, identity.ErrNotFound)

	// Without an ID key: as many as there are.
	for range 3 {
		_ = f.user(o.ID)
	}

	// Update: to a taken key refused (and nothing changed), keeping the
	// own key or giving it up passes, and a key given up is free.
	c := f.newUser(o.ID)
	c.IDKey = "idk-person-2"
	must(t, f.s.CreateUser(f.ctx, c, nil))
	upd := *c
	upd.IDKey, upd.DisplayName = a.IDKey, "renamed"
	isErr(t, f.s.UpdateUser(f.ctx, &upd, nil), identity.ErrIDNumberTaken)
	got, err = f.s.GetUser(f.ctx, c.ID)
	must(t, err)
	eq(t, "ID key after a refused update", got.IDKey, c.IDKey)
	eq(t, "name after a refused update", got.DisplayName, c.DisplayName)
	upd.IDKey = c.IDKey
	must(t, f.s.UpdateUser(f.ctx, &upd, nil))
	upd.IDKey = ""
	must(t, f.s.UpdateUser(f.ctx, &upd, nil))
	d := f.newUser(o.ID)
	d.IDKey = c.IDKey
	must(t, f.s.CreateUser(f.ctx, d, nil))
}

// The start's backfill: UsersWithoutIDKey lists the people with an ID
// number and no key, in id order after a given id; SetIDKeys sets them,
// except those whose key another person holds, or an earlier entry of the
// same call, which it returns and leaves without.
func testIDKeyBackfill(t *testing.T, f *fixture) {
	o := f.org("")
	holder := f.newUser(o.ID)
	holder.IDNumberEnc, holder.IDType, holder.IDKey = "k1:sealed-holder", identity.IDTypeResidentID, "idk-held"
	must(t, f.s.CreateUser(f.ctx, holder, nil))
	var pending []string
	for range 4 {
		u := f.newUser(o.ID)
		u.IDNumberEnc, u.IDType = "k1:sealed-"+u.ID, identity.IDTypePassport
		must(t, f.s.CreateUser(f.ctx, u, nil))
		pending = append(pending, u.ID)
	}
	_ = f.user(o.ID) // no ID number: not listed
	slices.Sort(pending)

	got, err := f.s.UsersWithoutIDKey(f.ctx, "", 10)
	must(t, err)
	var ids []string
	for _, p := range got {
		ids = append(ids, p.UserID)
		eq(t, "ID type of a pending person", p.IDType, identity.IDTypePassport)
		eq(t, "sealed ID number of a pending person", p.IDNumberEnc, "k1:sealed-"+p.UserID)
		eq(t, "org path of a pending person", p.OrgPath, o.Path)
	}
	if !slices.Equal(ids, pending) {
		t.Fatalf("pending = %v, want %v", ids, pending)
	}
	page, err := f.s.UsersWithoutIDKey(f.ctx, pending[0], 2)
	must(t, err)
	if len(page) != 2 || page[0].UserID != pending[1] || page[1].UserID != pending[2] {
		t.Fatalf("page after %s: %+v", pending[0], page)
	}

	// pending[0] gets a fresh key; pending[1] the holder's; pending[2] and
	// pending[3] the same new one (the first of the call keeps it).
	taken, err := f.s.SetIDKeys(f.ctx, []identity.IDKeySet{{UserID: pending[0], Key: "idk-fresh"},
		{UserID: pending[1], Key: "idk-held"}, {UserID: pending[2], Key: "idk-twin"}, {UserID: pending[3], Key: "idk-twin"}})
	must(t, err)
	slices.Sort(taken)
	if want := []string{pending[1], pending[3]}; !slices.Equal(taken, want) {
		t.Fatalf("taken = %v, want %v", taken, want)
	}
	for id, want := range map[string]string{pending[0]: "idk-fresh", pending[1]: "", pending[2]: "idk-twin", pending[3]: "", holder.ID: "idk-held"} {
		u, err := f.s.GetUser(f.ctx, id)
		must(t, err)
		eq(t, "ID key of "+id, u.IDKey, want)
	}
	got, err = f.s.UsersWithoutIDKey(f.ctx, "", 10)
	must(t, err)
	if len(got) != 2 || got[0].UserID != pending[1] || got[1].UserID != pending[3] {
		t.Fatalf("pending after the backfill: %+v", got)
	}
	// A person who has a key keeps it.
	taken, err = f.s.SetIDKeys(f.ctx, []identity.IDKeySet{{UserID: pending[0], Key: "idk-other"}})
	must(t, err)
	eq(t, "taken when the person has a key", len(taken), 0)
	u, err := f.s.GetUser(f.ctx, pending[0])
	must(t, err)
	eq(t, "ID key kept", u.IDKey, "idk-fresh")
}

// The centres key (uniqueness across centres): stored on create, update
// and a replica's write with its sealed data; CentresKeyHeld finds a
// holder other than the person asking, of this centre or a replica; it is
// not unique (a collision found afterwards must not stop a replica), and
// a key given up is free.
func testCentresKey(t *testing.T, f *fixture) {
	o := f.org("")
	a := f.newUser(o.ID)
	a.CentresKey = "ck-person-1"
	must(t, f.s.CreateUser(f.ctx, a, nil))
	got, err := f.s.GetUser(f.ctx, a.ID)
	must(t, err)
	eq(t, "stored centres key", got.CentresKey, a.CentresKey)
	held := func(key, self string, want bool) {
		t.Helper()
		ok, err := f.s.CentresKeyHeld(f.ctx, key, self)
		must(t, err)
		if ok != want {
			t.Fatalf("CentresKeyHeld(%q, %q) = %v, want %v", key, self, ok, want)
		}
	}
	held(a.CentresKey, "someone-else", true)
	held(a.CentresKey, a.ID, false) // the person's own
	held("ck-nobody", "someone-else", false)

	// Update: a new key replaces the old; none frees it.
	upd := *got
	upd.CentresKey = "ck-person-1b"
	must(t, f.s.UpdateUser(f.ctx, &upd, nil))
	held("ck-person-1", "someone-else", false)
	held("ck-person-1b", "someone-else", true)
	upd.CentresKey = ""
	must(t, f.s.UpdateUser(f.ctx, &upd, nil))
	held("ck-person-1b", "someone-else", false)

	// A replica carries its home's key, written with its sealed data (on
	// create and update), and the same key held twice is no conflict.
	r := f.newUser(o.ID)
	r.CentresKey = "ck-replica"
	w := identity.ReplicaWrite{Kind: "user", ID: r.ID, Origin: "peer", Version: 1, EventID: "ck-" + r.ID,
		Op: identity.ReplicaUpsert, User: r, WithSealed: true}
	out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{w})
	must(t, err)
	eq(t, "replica outcome", string(out[0]), string(identity.ReplicaApplied))
	held("ck-replica", a.ID, true)
	b := f.newUser(o.ID)
	b.CentresKey = "ck-local"
	must(t, f.s.CreateUser(f.ctx, b, nil))
	r2 := *r
	r2.CentresKey = "ck-local" // a local person's: applied all the same
	w.User, w.Version, w.EventID = &r2, 2, "ck2-"+r.ID
	out, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{w})
	must(t, err)
	eq(t, "replica outcome", string(out[0]), string(identity.ReplicaApplied))
	held("ck-replica", a.ID, false)
	held("ck-local", b.ID, true) // the replica holds it too
	// Without its sealed data, a replica's change keeps the key.
	r3 := r2
	r3.CentresKey, r3.DisplayName = "", "Renamed"
	w.User, w.Version, w.EventID, w.WithSealed = &r3, 3, "ck3-"+r.ID, false
	_, err = f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{w})
	must(t, err)
	held("ck-local", b.ID, true)
}

// The centres keys' backfill: the people with an ID number and no centres
// key are listed (in id order, after a cursor) until they have one; a key
// set is kept.
func testCentresKeyBackfill(t *testing.T, f *fixture) {
	o := f.org("")
	with := f.newUser(o.ID)
	with.IDNumberEnc, with.CentresKey = "sealed-1", "ck-has"
	must(t, f.s.CreateUser(f.ctx, with, nil))
	without := f.newUser(o.ID)
	without.IDNumberEnc, without.IDType = "sealed-2", identity.IDTypePassport
	must(t, f.s.CreateUser(f.ctx, without, nil))
	_ = f.user(o.ID) // no ID number: not listed
	list := func() []string {
		t.Helper()
		var ids []string
		for after := ""; ; {
			ps, err := f.s.UsersWithoutCentresKey(f.ctx, after, 1)
			must(t, err)
			if len(ps) == 0 {
				return ids
			}
			after = ps[0].UserID
			ids = append(ids, ps[0].UserID)
			if ps[0].IDNumberEnc == "" || ps[0].OrgPath == "" {
				t.Fatalf("pending %+v", ps[0])
			}
		}
	}
	if got := list(); !slices.Contains(got, without.ID) || slices.Contains(got, with.ID) {
		t.Fatalf("pending %v", got)
	}
	must(t, f.s.SetCentresKeys(f.ctx, []identity.IDKeySet{{UserID: without.ID, Key: "ck-new"}, {UserID: with.ID, Key: "ck-other"}}))
	if got := list(); slices.Contains(got, without.ID) {
		t.Fatalf("still pending %v", got)
	}
	a, err := f.s.GetUser(f.ctx, with.ID)
	must(t, err)
	b, err := f.s.GetUser(f.ctx, without.ID)
	must(t, err)
	eq(t, "kept key", a.CentresKey, "ck-has")
	eq(t, "new key", b.CentresKey, "ck-new")
}
