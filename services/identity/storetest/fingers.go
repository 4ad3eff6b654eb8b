package storetest

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

func (f *fixture) finger(userID string, pos int) *identity.StoredFinger {
	return &identity.StoredFinger{Finger: identity.Finger{UserID: userID, Position: pos, Quality: 50 + pos,
		Format: "ISO/IEC 19794-2:2005", Minutiae: 30 + pos, CreatedAt: base, UpdatedAt: base},
		TemplateEnc: "d1:sealed-" + userID}
}

// testFingers: enrol, replace, list, delete, the per-person limit and
// its events.
func testFingers(t *testing.T, f *fixture) {
	o := f.org("")
	u1, u2 := f.user(o.ID), f.user(o.ID)
	f.expectEvents(1, func() { must(t, f.s.PutFinger(f.ctx, f.finger(u1.ID, 2), 10, f.evs(1))) })
	must(t, f.s.PutFinger(f.ctx, f.finger(u1.ID, 7), 10, f.evs(1)))
	must(t, f.s.PutFinger(f.ctx, f.finger(u2.ID, 2), 10, f.evs(1)))

	got, err := f.s.ListFingers(f.ctx, u1.ID)
	must(t, err)
	if len(got) != 2 || got[0].Position != 2 || got[1].Position != 7 {
		t.Fatalf("ListFingers = %+v, want positions 2 and 7", got)
	}
	if want := f.finger(u1.ID, 2); !reflect.DeepEqual(got[0], want) {
		t.Fatalf("finger = %+v, want %+v", got[0], want)
	}
	// Replacing a position keeps its creation time.
	r := f.finger(u1.ID, 2)
	r.Quality, r.TemplateEnc, r.CreatedAt, r.UpdatedAt = 99, "d2:new", base.Add(time.Hour), base.Add(time.Hour)
	must(t, f.s.PutFinger(f.ctx, r, 10, f.evs(1)))
	got, err = f.s.ListFingers(f.ctx, u1.ID)
	must(t, err)
	if len(got) != 2 || got[0].Quality != 99 || got[0].TemplateEnc != "d2:new" || !got[0].CreatedAt.Equal(base) ||
		!got[0].UpdatedAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("replaced finger = %+v", got[0])
	}
	// Unknown user.
	isErr(t, f.s.PutFinger(f.ctx, f.finger("nobody", 1), 10, f.evs(1)), identity.ErrNotFound)
	none, err := f.s.ListFingers(f.ctx, "nobody")
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("fingers of nobody: %+v", none)
	}

	// The limit counts the other positions: a third is refused at 2,
	// replacing one of the two is not; a refusal writes no event.
	f.expectEvents(0, func() {
		isErr(t, f.s.PutFinger(f.ctx, f.finger(u1.ID, 3), 2, f.evs(1)), identity.ErrConflict)
	})
	must(t, f.s.PutFinger(f.ctx, f.finger(u1.ID, 7), 2, f.evs(1)))

	// Delete.
	f.expectEvents(1, func() { must(t, f.s.DeleteFinger(f.ctx, u1.ID, 7, f.evs(1))) })
	isErr(t, f.s.DeleteFinger(f.ctx, u1.ID, 7, f.evs(1)), identity.ErrNotFound)
	got, err = f.s.ListFingers(f.ctx, u1.ID)
	must(t, err)
	if len(got) != 1 || got[0].Position != 2 {
		t.Fatalf("after delete: %+v", got)
	}
	other, err := f.s.ListFingers(f.ctx, u2.ID)
	must(t, err)
	if len(other) != 1 {
		t.Fatalf("the other user's fingers: %+v", other)
	}
}

// testFingerLimitConcurrent: enrolments of one person at once never pass
// the limit together.
func testFingerLimitConcurrent(t *testing.T, f *fixture) {
	u := f.user(f.org("").ID)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		ev := f.evs(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.s.PutFinger(f.ctx, f.finger(u.ID, i+1), 3, ev)
		}()
	}
	wg.Wait()
	got, err := f.s.ListFingers(f.ctx, u.ID)
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("%d fingers stored with a limit of 3 (errors %v)", len(got), errs)
	}
}

// testFingerBypass: off until set; set, change, unknown application.
func testFingerBypass(t *testing.T, f *fixture) {
	a := f.app("fb")
	b, err := f.s.GetFingerBypass(f.ctx, a.ID)
	must(t, err)
	if b.Enabled || b.AppID != a.ID {
		t.Fatalf("never set: %+v", b)
	}
	on := &identity.FingerBypass{AppID: a.ID, Enabled: true, Reason: "scanner broken", SetBy: "usr-1", UpdatedAt: base}
	f.expectEvents(1, func() { must(t, f.s.SetFingerBypass(f.ctx, on, f.evs(1))) })
	b, err = f.s.GetFingerBypass(f.ctx, a.ID)
	must(t, err)
	if !reflect.DeepEqual(b, on) {
		t.Fatalf("GetFingerBypass = %+v, want %+v", b, on)
	}
	off := &identity.FingerBypass{AppID: a.ID, Enabled: false, Reason: "fixed", SetBy: "usr-2", UpdatedAt: base.Add(time.Minute)}
	must(t, f.s.SetFingerBypass(f.ctx, off, f.evs(1)))
	b, err = f.s.GetFingerBypass(f.ctx, a.ID)
	must(t, err)
	if !reflect.DeepEqual(b, off) {
		t.Fatalf("GetFingerBypass = %+v, want %+v", b, off)
	}
	f.expectEvents(0, func() {
		isErr(t, f.s.SetFingerBypass(f.ctx, &identity.FingerBypass{AppID: "missing", Reason: "x", UpdatedAt: base}, f.evs(1)), identity.ErrNotFound)
	})
}
