package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

func thumb(n int) string { return fmt.Sprintf("%064x", n) }

// testCerts: bind, look up, list, unbind; one certificate is one person's;
// the per-person limit; unknown people; a deleted person's bindings go
// with them; refusals write no event.
func testCerts(t *testing.T, f *fixture) {
	o := f.org("")
	u1, u2 := f.user(o.ID), f.user(o.ID)
	c1 := &identity.UserCert{SHA256: thumb(1), UserID: u1.ID, NotAfter: base.Add(365 * 24 * time.Hour), CreatedAt: base}
	f.expectEvents(1, func() { must(t, f.s.BindCert(f.ctx, c1, 10, f.evs(1))) })
	c2 := &identity.UserCert{SHA256: thumb(2), UserID: u1.ID, CreatedAt: base.Add(time.Second)} // by thumbprint: no expiry
	must(t, f.s.BindCert(f.ctx, c2, 10, f.evs(1)))

	got, err := f.s.GetCert(f.ctx, thumb(1))
	must(t, err)
	if !reflect.DeepEqual(got, c1) {
		t.Fatalf("GetCert = %+v, want %+v", got, c1)
	}
	got, err = f.s.GetCert(f.ctx, thumb(2))
	must(t, err)
	if !got.NotAfter.IsZero() || got.UserID != u1.ID {
		t.Fatalf("GetCert by thumbprint only = %+v", got)
	}
	_, err = f.s.GetCert(f.ctx, thumb(3))
	isErr(t, err, identity.ErrNotFound)

	list, err := f.s.ListCerts(f.ctx, u1.ID)
	must(t, err)
	if len(list) != 2 || list[0].SHA256 != thumb(1) || list[1].SHA256 != thumb(2) {
		t.Fatalf("ListCerts = %+v", list)
	}
	none, err := f.s.ListCerts(f.ctx, u2.ID)
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("certificates of a person without: %+v", none)
	}

	// One certificate, one person: bound again (to the other person or
	// the same) is a conflict, with no event.
	f.expectEvents(0, func() {
		isErr(t, f.s.BindCert(f.ctx, &identity.UserCert{SHA256: thumb(1), UserID: u2.ID, CreatedAt: base}, 10, f.evs(1)), identity.ErrConflict)
		isErr(t, f.s.BindCert(f.ctx, &identity.UserCert{SHA256: thumb(1), UserID: u1.ID, CreatedAt: base}, 10, f.evs(1)), identity.ErrConflict)
		// The limit.
		isErr(t, f.s.BindCert(f.ctx, &identity.UserCert{SHA256: thumb(4), UserID: u1.ID, CreatedAt: base}, 2, f.evs(1)), identity.ErrConflict)
		// Unknown person.
		isErr(t, f.s.BindCert(f.ctx, &identity.UserCert{SHA256: thumb(5), UserID: "nobody", CreatedAt: base}, 10, f.evs(1)), identity.ErrNotFound)
		// Unbinding another person's certificate, or one not bound.
		isErr(t, f.s.UnbindCert(f.ctx, u2.ID, thumb(1), f.evs(1)), identity.ErrNotFound)
		isErr(t, f.s.UnbindCert(f.ctx, u1.ID, thumb(9), f.evs(1)), identity.ErrNotFound)
	})
	if got, err := f.s.GetCert(f.ctx, thumb(1)); err != nil || got.UserID != u1.ID {
		t.Fatalf("after refusals: %+v, %v", got, err)
	}

	// Unbind; the certificate may then be bound to someone else.
	// It is marked unbound (not bound again by itself) until bound again.
	if un, err := f.s.CertUnbound(f.ctx, thumb(1)); err != nil || un {
		t.Fatalf("a bound certificate marked unbound: %v %v", un, err)
	}
	f.expectEvents(1, func() { must(t, f.s.UnbindCert(f.ctx, u1.ID, thumb(1), f.evs(1))) })
	_, err = f.s.GetCert(f.ctx, thumb(1))
	isErr(t, err, identity.ErrNotFound)
	if un, err := f.s.CertUnbound(f.ctx, thumb(1)); err != nil || !un {
		t.Fatalf("an unbound certificate not marked: %v %v", un, err)
	}
	if un, err := f.s.CertUnbound(f.ctx, thumb(9)); err != nil || un {
		t.Fatalf("a certificate never bound marked unbound: %v %v", un, err)
	}
	must(t, f.s.BindCert(f.ctx, &identity.UserCert{SHA256: thumb(1), UserID: u2.ID, CreatedAt: base}, 10, f.evs(1)))
	if un, err := f.s.CertUnbound(f.ctx, thumb(1)); err != nil || un {
		t.Fatalf("bound again, still marked unbound: %v %v", un, err)
	}

	// Deleting a person deletes their bindings.
	must(t, f.s.DeleteUser(f.ctx, u2.ID, f.evs(1)))
	_, err = f.s.GetCert(f.ctx, thumb(1))
	isErr(t, err, identity.ErrNotFound)
	list, err = f.s.ListCerts(f.ctx, u2.ID)
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("bindings of a deleted person: %+v", list)
	}
}

// testCertsConcurrent: the same certificate bound to several people at
// once is bound to one of them; one person's bindings at once never pass
// the limit together.
func testCertsConcurrent(t *testing.T, f *fixture) {
	o := f.org("")
	users := make([]*identity.User, 5)
	for i := range users {
		users[i] = f.user(o.ID)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(users))
	for i, u := range users {
		ev := f.evs(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.s.BindCert(f.ctx, &identity.UserCert{SHA256: thumb(7), UserID: u.ID, CreatedAt: base}, 10, ev)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			isErr(t, err, identity.ErrConflict)
		}
	}
	if ok != 1 {
		t.Fatalf("%d bindings of one certificate succeeded (errors %v)", ok, errs)
	}

	u := users[0]
	for i := range 10 {
		ev := f.evs(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = f.s.BindCert(f.ctx, &identity.UserCert{SHA256: thumb(100 + i), UserID: u.ID, CreatedAt: base}, 3, ev)
		}()
	}
	wg.Wait()
	list, err := f.s.ListCerts(f.ctx, u.ID)
	must(t, err)
	if n := len(list); n > 3 {
		t.Fatalf("%d certificates bound with a limit of 3", n)
	}
}

// testApplyReplicaCert: a certificate binding applied as a replica is
// upserted (the home's person and expiry stand, even over a binding of
// the thumbprint to another person) and deleted only from the person
// named.
func testApplyReplicaCert(t *testing.T, f *fixture) {
	o := f.org("")
	u1, u2 := f.user(o.ID), f.user(o.ID)
	w := func(v uint64, op, user string, notAfter time.Time) identity.ReplicaWrite {
		return identity.ReplicaWrite{Kind: "cert", ID: thumb(7), Origin: "peer", Version: v, EventID: fmt.Sprintf("cert-%d", v), Op: op,
			Cert: &identity.UserCert{SHA256: thumb(7), UserID: user, NotAfter: notAfter, CreatedAt: base}}
	}
	bound := func(user string, notAfter time.Time) {
		t.Helper()
		got, err := f.s.GetCert(f.ctx, thumb(7))
		must(t, err)
		if got.UserID != user || !got.NotAfter.Equal(notAfter) || !got.CreatedAt.Equal(base) || got.Origin != "peer" {
			t.Fatalf("replica binding %+v, want %s until %s", got, user, notAfter)
		}
	}
	year := base.Add(365 * 24 * time.Hour)
	f.applyReplica(t, w(1, identity.ReplicaUpsert, u1.ID, year))
	bound(u1.ID, year)
	f.applyReplica(t, w(2, identity.ReplicaUpsert, u2.ID, time.Time{})) // moved, bound by thumbprint
	bound(u2.ID, time.Time{})
	f.applyReplica(t, w(3, identity.ReplicaDelete, u1.ID, time.Time{})) // not u1's any more: stays
	bound(u2.ID, time.Time{})
	// another centre's binding of the same thumbprint does not replace it
	other := w(5, identity.ReplicaUpsert, u1.ID, year)
	other.Origin, other.ID = "peer2", "peer2/"+thumb(7)
	if out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{other}); err != nil || out[0] != identity.ReplicaConflict {
		t.Fatalf("another centre's binding over peer's: %v %v", out, err)
	}
	bound(u2.ID, time.Time{})
	f.applyReplica(t, w(6, identity.ReplicaDelete, u2.ID, time.Time{}))
	_, err := f.s.GetCert(f.ctx, thumb(7))
	isErr(t, err, identity.ErrNotFound)
	// nor does any centre's replace a binding made here, nor remove it
	local := &identity.UserCert{SHA256: thumb(8), UserID: u1.ID, CreatedAt: base}
	must(t, f.s.BindCert(f.ctx, local, 10, f.evs(1)))
	over := w(7, identity.ReplicaUpsert, u2.ID, year)
	over.Cert.SHA256 = thumb(8)
	if out, err := f.s.ApplyReplica(f.ctx, []identity.ReplicaWrite{over}); err != nil || out[0] != identity.ReplicaConflict {
		t.Fatalf("a replica binding over a local one: %v %v", out, err)
	}
	del := w(8, identity.ReplicaDelete, u1.ID, time.Time{})
	del.Cert.SHA256 = thumb(8)
	f.applyReplica(t, del)
	if got, err := f.s.GetCert(f.ctx, thumb(8)); err != nil || got.UserID != u1.ID || got.Origin != "" {
		t.Fatalf("the local binding after replica writes: %+v %v", got, err)
	}
}
