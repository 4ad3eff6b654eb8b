package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// testTOTP: enrol, read back, one enrolment a person, the last accepted
// step only rises (replay), remove, unknown people, a deleted person's
// enrolment goes with them; refusals write no event.
func testTOTP(t *testing.T, f *fixture) {
	o := f.org("")
	u1, u2 := f.user(o.ID), f.user(o.ID)
	e := &identity.UserTOTP{UserID: u1.ID, SecretEnc: "k1:sealed", LastStep: 100, CreatedAt: base}
	f.expectEvents(1, func() { must(t, f.s.PutTOTP(f.ctx, e, f.evs(1))) })
	got, err := f.s.GetTOTP(f.ctx, u1.ID)
	must(t, err)
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("GetTOTP = %+v, want %+v", got, e)
	}
	_, err = f.s.GetTOTP(f.ctx, u2.ID)
	isErr(t, err, identity.ErrNotFound)

	f.expectEvents(0, func() {
		// One a person.
		isErr(t, f.s.PutTOTP(f.ctx, &identity.UserTOTP{UserID: u1.ID, SecretEnc: "k1:other", CreatedAt: base}, f.evs(1)), identity.ErrConflict)
		// Unknown person.
		isErr(t, f.s.PutTOTP(f.ctx, &identity.UserTOTP{UserID: "nobody", SecretEnc: "x", CreatedAt: base}, f.evs(1)), identity.ErrNotFound)
		isErr(t, f.s.DeleteTOTP(f.ctx, u2.ID, f.evs(1)), identity.ErrNotFound)
	})
	if got, _ := f.s.GetTOTP(f.ctx, u1.ID); got.SecretEnc != "k1:sealed" {
		t.Fatalf("a refused enrolment replaced the secret: %+v", got)
	}

	// The step only rises: the same or an earlier one is a replay.
	for _, c := range []struct {
		step int64
		ok   bool
	}{{101, true}, {101, false}, {100, false}, {99, false}, {103, true}, {102, false}} {
		ok, err := f.s.UseTOTPStep(f.ctx, u1.ID, c.step)
		must(t, err)
		if ok != c.ok {
			t.Fatalf("UseTOTPStep(%d) = %v, want %v", c.step, ok, c.ok)
		}
	}
	if got, _ := f.s.GetTOTP(f.ctx, u1.ID); got.LastStep != 103 {
		t.Fatalf("last step = %d, want 103", got.LastStep)
	}
	_, err = f.s.UseTOTPStep(f.ctx, u2.ID, 1)
	isErr(t, err, identity.ErrNotFound)

	// Remove; a new enrolment may follow.
	f.expectEvents(1, func() { must(t, f.s.DeleteTOTP(f.ctx, u1.ID, f.evs(1))) })
	_, err = f.s.GetTOTP(f.ctx, u1.ID)
	isErr(t, err, identity.ErrNotFound)
	must(t, f.s.PutTOTP(f.ctx, &identity.UserTOTP{UserID: u1.ID, SecretEnc: "k1:new", CreatedAt: base.Add(time.Minute)}, f.evs(1)))

	// Deleting a person deletes their enrolment.
	must(t, f.s.PutTOTP(f.ctx, &identity.UserTOTP{UserID: u2.ID, SecretEnc: "k1:u2", CreatedAt: base}, f.evs(1)))
	must(t, f.s.DeleteUser(f.ctx, u2.ID, f.evs(1)))
	_, err = f.s.GetTOTP(f.ctx, u2.ID)
	isErr(t, err, identity.ErrNotFound)
}

// testTOTPConcurrent: of parallel uses of one step exactly one is
// accepted, and of parallel enrolments of one person exactly one is stored.
func testTOTPConcurrent(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.s.PutTOTP(f.ctx, &identity.UserTOTP{UserID: u.ID, SecretEnc: "k1:s", CreatedAt: base}, f.evs(1))
		}()
	}
	wg.Wait()
	stored := 0
	for _, err := range errs {
		if err == nil {
			stored++
		} else {
			isErr(t, err, identity.ErrConflict)
		}
	}
	if stored != 1 {
		t.Fatalf("%d parallel enrolments stored, want 1", stored)
	}
	oks := make([]bool, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := f.s.UseTOTPStep(f.ctx, u.ID, 500)
			if err != nil {
				t.Error(err)
			}
			oks[i] = ok
		}()
	}
	wg.Wait()
	accepted := 0
	for _, ok := range oks {
		if ok {
			accepted++
		}
	}
	if accepted != 1 {
		t.Fatalf("one step accepted %d times in parallel, want once", accepted)
	}
}

// testApplyReplicaTOTP: a person's authenticator app applied as a replica
// is upserted (the later of the two last steps stays) and deleted.
func testApplyReplicaTOTP(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	w := func(v uint64, op string, enc string, last int64) identity.ReplicaWrite {
		return identity.ReplicaWrite{Kind: "totp", ID: u.ID, Origin: "peer", Version: v, EventID: fmt.Sprintf("totp-%d", v), Op: op,
			TOTP: &identity.UserTOTP{UserID: u.ID, SecretEnc: enc, LastStep: last, CreatedAt: base}}
	}
	apply := func(ws ...identity.ReplicaWrite) { f.applyReplica(t, ws...) }
	apply(w(1, identity.ReplicaUpsert, "k1:a", 10))
	got, err := f.s.GetTOTP(f.ctx, u.ID)
	must(t, err)
	if got.SecretEnc != "k1:a" || got.LastStep != 10 || !got.CreatedAt.Equal(base) {
		t.Fatalf("replica app %+v", got)
	}
	must2 := func(want string, last int64) {
		t.Helper()
		got, err := f.s.GetTOTP(f.ctx, u.ID)
		must(t, err)
		if got.SecretEnc != want || got.LastStep != last {
			t.Fatalf("replica app %+v, want %s at step %d", got, want, last)
		}
	}
	apply(w(2, identity.ReplicaUpsert, "k1:b", 5))
	must2("k1:b", 10)
	apply(w(3, identity.ReplicaUpsert, "k1:b", 12))
	must2("k1:b", 12)
	apply(w(4, identity.ReplicaDelete, "", 0))
	_, err = f.s.GetTOTP(f.ctx, u.ID)
	isErr(t, err, identity.ErrNotFound)
}

// testTOTPCodeCount: AdmitTOTPCode admits max codes, then blocks the next
// for block(1) (refusing all until then), the next run's block is
// block(2); a right code (UseTOTPStep) resets count and blocks; parallel
// admissions count one by one; no enrolment: ErrNotFound.
func testTOTPCodeCount(t *testing.T, f *fixture) {
	o := f.org("")
	u := f.user(o.ID)
	must(t, f.s.PutTOTP(f.ctx, &identity.UserTOTP{UserID: u.ID, SecretEnc: "k1:sealed", LastStep: 10, CreatedAt: base}, nil))
	block := func(n int) time.Duration { return time.Duration(n) * time.Hour }
	admit := func(at time.Time) (bool, time.Time) {
		t.Helper()
		ok, until, err := f.s.AdmitTOTPCode(f.ctx, u.ID, at, 3, block)
		must(t, err)
		return ok, until
	}
	for i := range 3 {
		if ok, _ := admit(base); !ok {
			t.Fatalf("code %d refused", i)
		}
	}
	if ok, until := admit(base); ok || !until.Equal(base.Add(time.Hour)) {
		t.Fatalf("fourth code: %v until %v, want a block until %v", ok, until, base.Add(time.Hour))
	}
	if ok, until := admit(base.Add(59 * time.Minute)); ok || !until.Equal(base.Add(time.Hour)) {
		t.Fatalf("during the block: %v until %v", ok, until)
	}
	after := base.Add(time.Hour + time.Second)
	for range 3 {
		if ok, _ := admit(after); !ok {
			t.Fatal("a code after the block refused")
		}
	}
	if ok, until := admit(after); ok || !until.Equal(after.Add(2*time.Hour)) {
		t.Fatalf("second block: %v until %v, want %v", ok, until, after.Add(2*time.Hour))
	}
	// A right code resets the count and the blocks.
	later := after.Add(3 * time.Hour)
	if ok, _ := admit(later); !ok {
		t.Fatal("after the second block")
	}
	used, err := f.s.UseTOTPStep(f.ctx, u.ID, 11)
	must(t, err)
	if !used {
		t.Fatal("step 11 not used")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 10 {
		wg.Go(func() {
			ok, _, err := f.s.AdmitTOTPCode(f.ctx, u.ID, later, 3, block)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != 3 {
		t.Fatalf("%d of 10 parallel codes admitted after a reset, want 3", admitted)
	}
	if ok, until := admit(later); ok || !until.Equal(later.Add(time.Hour)) {
		t.Fatalf("the block after a reset: %v until %v, want the first block's length", ok, until)
	}
	_, _, err = f.s.AdmitTOTPCode(f.ctx, f.user(o.ID).ID, base, 3, block)
	isErr(t, err, identity.ErrNotFound)
}

// applyReplica applies ws, each of which must be APPLIED.
func (f *fixture) applyReplica(t *testing.T, ws ...identity.ReplicaWrite) {
	t.Helper()
	out, err := f.s.ApplyReplica(f.ctx, ws)
	must(t, err)
	for i, o := range out {
		if o != identity.ReplicaApplied {
			t.Fatalf("write %d: %v", i, o)
		}
	}
}
