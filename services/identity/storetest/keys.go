package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// keyStore returns f's store as an identity.KeyStore (skipping the test
// when it is not one).
func keyStore(t *testing.T, f *fixture) identity.KeyStore {
	t.Helper()
	ks, ok := f.s.(identity.KeyStore)
	if !ok {
		t.Skip("the store does not implement identity.KeyStore")
	}
	return ks
}

func testDataKeys(t *testing.T, f *fixture) {
	ks := keyStore(t, f)
	keys, err := ks.ListDataKeys(f.ctx)
	must(t, err)
	eq(t, "keys of a new store", len(keys), 0)
	checks, err := ks.ListKeyChecks(f.ctx)
	must(t, err)
	eq(t, "checks of a new store", len(checks), 0)

	first := []identity.DataKey{
		{ID: "d1", Purpose: identity.KeyPurposeSeal, Seq: 1, Wrapped: "m1:wrapped-d1", CreatedAt: base},
		{ID: "index", Purpose: identity.KeyPurposeIndex, Seq: 0, Wrapped: "m1:wrapped-index", CreatedAt: base},
	}
	f.expectEvents(0, func() { must(t, ks.AddDataKeys(f.ctx, first, nil)) })
	// Two instances creating the first keys, or rotating, at once: the
	// second gets ErrConflict and nothing of its batch is stored.
	f.expectEvents(0, func() {
		err := ks.AddDataKeys(f.ctx, []identity.DataKey{
			{ID: "d2", Purpose: identity.KeyPurposeSeal, Seq: 2, Wrapped: "m1:x", CreatedAt: base},
			{ID: "d1b", Purpose: identity.KeyPurposeSeal, Seq: 1, Wrapped: "m1:y", CreatedAt: base},
		}, f.evs(1))
		isErr(t, err, identity.ErrConflict)
	})
	err = ks.AddDataKeys(f.ctx, []identity.DataKey{{ID: "d1", Purpose: identity.KeyPurposeSeal, Seq: 7, Wrapped: "m1:z"}}, nil)
	isErr(t, err, identity.ErrConflict)
	f.expectEvents(1, func() {
		must(t, ks.AddDataKeys(f.ctx, []identity.DataKey{{ID: "d2", Purpose: identity.KeyPurposeSeal, Seq: 2,
			Wrapped: "m2:wrapped-d2", CreatedAt: base.Add(time.Hour)}}, f.evs(1)))
	})
	keys, err = ks.ListDataKeys(f.ctx)
	must(t, err)
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	if !slices.Equal(ids, []string{"index", "d1", "d2"}) {
		t.Fatalf("keys by seq: %v", ids)
	}
	eq(t, "wrapped", keys[2].Wrapped, "m2:wrapped-d2")
	eq(t, "master id", keys[2].MasterKeyID(), "m2")
	eqTime(t, "created", keys[2].CreatedAt, base.Add(time.Hour))

	must(t, ks.RewrapDataKeys(f.ctx, map[string]string{"index": "m2:rw-index", "d1": "m2:rw-d1"}))
	isErr(t, ks.RewrapDataKeys(f.ctx, map[string]string{"d1": "m3:a", "nope": "m3:b"}), identity.ErrNotFound)
	keys, _ = ks.ListDataKeys(f.ctx)
	eq(t, "rewrapped index", keys[0].Wrapped, "m2:rw-index")
	eq(t, "rewrapped d1 (the failed batch changed nothing)", keys[1].Wrapped, "m2:rw-d1")

	must(t, ks.AddKeyCheck(f.ctx, identity.KeyCheck{MasterID: "m1", Value: "check-1", CreatedAt: base}))
	isErr(t, ks.AddKeyCheck(f.ctx, identity.KeyCheck{MasterID: "m1", Value: "other", CreatedAt: base}), identity.ErrConflict)
	must(t, ks.AddKeyCheck(f.ctx, identity.KeyCheck{MasterID: "m2", Value: "check-2", CreatedAt: base}))
	checks, err = ks.ListKeyChecks(f.ctx)
	must(t, err)
	if len(checks) != 2 || checks[0].MasterID != "m1" || checks[0].Value != "check-1" || checks[1].Value != "check-2" {
		t.Fatalf("checks: %+v", checks)
	}
}

func testSealedValues(t *testing.T, f *fixture) {
	ks := keyStore(t, f)
	o := f.org("")
	mk := func(idNumber, phone string) *identity.User {
		u := f.newUser(o.ID)
		u.IDNumberEnc, u.PhoneEnc = idNumber, phone
		must(t, f.s.CreateUser(f.ctx, u, nil))
		return u
	}
	none := mk("", "")
	onD2 := mk("d2:a", "d2:b")
	idOld := mk("d1:a", "d2:b")
	phoneOld := mk("", "d1:b")
	bothOld := mk("k1:a", "d1:b")
	// A key id that is a prefix of another is not mistaken for it.
	prefix := mk("d22:a", "")
	_ = none
	_ = onD2

	n, err := ks.CountSealedWithout(f.ctx, "d2")
	must(t, err)
	eq(t, "values not on d2", n, 5)
	n, _ = ks.CountSealedWithout(f.ctx, "d9")
	eq(t, "values not on d9", n, 8)

	var got []string
	after := ""
	for {
		page, err := ks.SealedWithout(f.ctx, "d2", after, 2)
		must(t, err)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		for _, v := range page {
			got = append(got, v.UserID)
			after = v.UserID
		}
	}
	want := []string{idOld.ID, phoneOld.ID, bothOld.ID, prefix.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("users with values not on d2: %v, want %v", got, want)
	}

	// Reseal is a compare-and-set.
	from := identity.SealedValues{UserID: bothOld.ID, IDNumberEnc: "k1:a", PhoneEnc: "d1:b"}
	to := identity.SealedValues{UserID: bothOld.ID, IDNumberEnc: "d2:A", PhoneEnc: "d2:B"}
	ok, err := ks.Reseal(f.ctx, from, to)
	must(t, err)
	eq(t, "reseal", ok, true)
	ok, err = ks.Reseal(f.ctx, from, to)
	must(t, err)
	eq(t, "reseal of values that changed meanwhile", ok, false)
	ok, _ = ks.Reseal(f.ctx, identity.SealedValues{UserID: "nobody"}, to)
	eq(t, "reseal of a missing user", ok, false)
	u, err := f.s.GetUser(f.ctx, bothOld.ID)
	must(t, err)
	eq(t, "id number", u.IDNumberEnc, "d2:A")
	eq(t, "phone", u.PhoneEnc, "d2:B")
	eq(t, "login untouched", u.LoginName, bothOld.LoginName)
	n, _ = ks.CountSealedWithout(f.ctx, "d2")
	eq(t, "values not on d2 after reseal", n, 3)
}

// testSealedFingers: fingerprint templates count among the values on
// older keys, are listed by user and position after a cursor, and are
// resealed with a compare-and-set.
func testSealedFingers(t *testing.T, f *fixture) {
	ks := keyStore(t, f)
	o := f.org("")
	u1, u2 := f.user(o.ID), f.user(o.ID)
	put := func(u string, pos int, enc string) {
		fg := f.finger(u, pos)
		fg.TemplateEnc = enc
		must(t, f.s.PutFinger(f.ctx, fg, 10, nil))
	}
	put(u1.ID, 1, "d1:a")
	put(u1.ID, 3, "d2:b")
	put(u1.ID, 4, "d22:c") // a key id that is a prefix of another is not mistaken for it
	put(u2.ID, 2, "k1:d")
	n, err := ks.CountSealedWithout(f.ctx, "d2")
	must(t, err)
	eq(t, "templates not on d2", n, 3)

	var got []string
	afterUser, afterPos := "", 0
	for {
		page, err := ks.FingersSealedWithout(f.ctx, "d2", afterUser, afterPos, 2)
		must(t, err)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		for _, v := range page {
			got = append(got, v.TemplateEnc)
			afterUser, afterPos = v.UserID, v.Position
		}
	}
	want := []string{"d1:a", "d22:c", "k1:d"}
	if u2.ID < u1.ID {
		want = []string{"k1:d", "d1:a", "d22:c"}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("templates not on d2: %v, want %v", got, want)
	}

	from := identity.SealedFinger{UserID: u1.ID, Position: 1, TemplateEnc: "d1:a"}
	ok, err := ks.ResealFinger(f.ctx, from, "d2:A")
	must(t, err)
	eq(t, "reseal", ok, true)
	ok, err = ks.ResealFinger(f.ctx, from, "d2:B")
	must(t, err)
	eq(t, "reseal of a template that changed meanwhile", ok, false)
	ok, _ = ks.ResealFinger(f.ctx, identity.SealedFinger{UserID: u2.ID, Position: 9, TemplateEnc: "k1:d"}, "d2:C")
	eq(t, "reseal of a missing finger", ok, false)
	fs, err := f.s.ListFingers(f.ctx, u1.ID)
	must(t, err)
	eq(t, "resealed template", fs[0].TemplateEnc, "d2:A")
	n, _ = ks.CountSealedWithout(f.ctx, "d2")
	eq(t, "templates not on d2 after the reseal", n, 2)
}

// testSealedTOTP: authenticator app secrets on another key are counted,
// listed by user and resealed compare-and-set.
func testSealedTOTP(t *testing.T, f *fixture) {
	ks := keyStore(t, f)
	o := f.org("")
	u1, u2, u3 := f.user(o.ID), f.user(o.ID), f.user(o.ID)
	for _, e := range []identity.UserTOTP{{UserID: u1.ID, SecretEnc: "d1:a"}, {UserID: u2.ID, SecretEnc: "d22:b"}, {UserID: u3.ID, SecretEnc: "d2:c"}} {
		e.CreatedAt = base
		must(t, f.s.PutTOTP(f.ctx, &e, nil))
	}
	n, err := ks.CountSealedWithout(f.ctx, "d2")
	must(t, err)
	eq(t, "secrets not on d2", n, 2)
	var got []string
	after := ""
	for {
		page, err := ks.TOTPSealedWithout(f.ctx, "d2", after, 1)
		must(t, err)
		if len(page) == 0 {
			break
		}
		if len(page) > 1 {
			t.Fatalf("page of %d, limit 1", len(page))
		}
		got = append(got, page[0].SecretEnc)
		after = page[0].UserID
	}
	want := []string{"d1:a", "d22:b"}
	if u2.ID < u1.ID {
		want = []string{"d22:b", "d1:a"}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("secrets not on d2: %v, want %v", got, want)
	}
	from := identity.UserTOTP{UserID: u1.ID, SecretEnc: "d1:a"}
	ok, err := ks.ResealTOTP(f.ctx, from, "d2:A")
	must(t, err)
	eq(t, "reseal", ok, true)
	ok, err = ks.ResealTOTP(f.ctx, from, "d2:B")
	must(t, err)
	eq(t, "reseal of a secret that changed meanwhile", ok, false)
	got1, err := f.s.GetTOTP(f.ctx, u1.ID)
	must(t, err)
	eq(t, "resealed secret", got1.SecretEnc, "d2:A")
	n, _ = ks.CountSealedWithout(f.ctx, "d2")
	eq(t, "secrets not on d2 after the reseal", n, 1)
}
