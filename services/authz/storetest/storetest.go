// Package storetest is the conformance suite of authz.Store: every
// implementation (SQLite, PostgreSQL) runs it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/authz"
)

// Subject is a store under test with a way to count its outbox rows.
type Subject struct {
	Store       authz.Store
	CountOutbox func(t *testing.T) int
}

// Run runs the suite; open returns a fresh, migrated, empty store.
func Run(t *testing.T, open func(t *testing.T) Subject) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Subject)
	}{
		{"Empty", testEmpty},
		{"PutAndRead", testPutAndRead},
		{"Stale", testStale},
		{"Delete", testDelete},
		{"WriteBatch", testWriteBatch},
		{"ChangesSinceOrderAndLimit", testChangesSince},
		{"SnapshotOrder", testSnapshotOrder},
		{"ConcurrentWritersGetEveryRevisionOnce", testConcurrent},
		{"Replica", testReplica},
		{"DeleteGrantsOf", testDeleteGrantsOf},
		{"RecordBreaches", testRecordBreaches},
		{"DirectGrant", testDirectGrant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ev(subject string) events.Event {
	return events.Event{ID: ids.New(), Subject: subject, Type: "test", Payload: []byte(`{}`)}
}

func put(obj, id, data string) authz.Change {
	return authz.Change{Obj: obj, Op: authz.OpPut, ID: id, Data: []byte(data)}
}

func snapshot(t *testing.T, st authz.Store) (map[string]string, []string, int64) {
	t.Helper()
	got := map[string]string{}
	var order []string
	rev, err := st.Snapshot(context.Background(), func(c authz.Change) error {
		if c.Rev != 0 || c.Op != authz.OpPut {
			return fmt.Errorf("snapshot change %+v: want put with rev 0", c)
		}
		got[c.Obj+"/"+c.ID] = string(c.Data)
		order = append(order, c.Obj)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, order, rev
}

func testEmpty(t *testing.T, s Subject) {
	ctx := context.Background()
	rev, err := s.Store.Revision(ctx)
	if err != nil || rev != 0 {
		t.Fatalf("Revision = %d, %v", rev, err)
	}
	chs, err := s.Store.ChangesSince(ctx, 0, 10)
	if err != nil || len(chs) != 0 {
		t.Fatalf("ChangesSince = %v, %v", chs, err)
	}
	got, _, srev := snapshot(t, s.Store)
	if len(got) != 0 || srev != 0 {
		t.Fatalf("snapshot = %v at %d", got, srev)
	}
	if err := s.Store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func testPutAndRead(t *testing.T, s Subject) {
	ctx := context.Background()
	before := s.CountOutbox(t)
	ch, err := s.Store.Write(ctx, 0, put(authz.ObjRole, "r1", `{"id":"r1","code":"a"}`),
		[]events.Event{ev("uias.changes.authz.role.put"), ev("uias.audit.authz.role.create")})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Rev != 1 {
		t.Fatalf("rev = %d", ch.Rev)
	}
	if n := s.CountOutbox(t) - before; n != 2 {
		t.Fatalf("outbox rows added: %d, want 2", n)
	}
	// Replacing keeps one object with the new data.
	if _, err := s.Store.Write(ctx, 1, put(authz.ObjRole, "r1", `{"id":"r1","code":"b"}`), nil); err != nil {
		t.Fatal(err)
	}
	// The same id of another kind is another object.
	if _, err := s.Store.Write(ctx, 2, put(authz.ObjGrant, "r1", `{"id":"r1"}`), nil); err != nil {
		t.Fatal(err)
	}
	got, _, rev := snapshot(t, s.Store)
	if rev != 3 || len(got) != 2 || got["role/r1"] != `{"id":"r1","code":"b"}` {
		t.Fatalf("snapshot at %d: %v", rev, got)
	}
	chs, err := s.Store.ChangesSince(ctx, 0, 10)
	if err != nil || len(chs) != 3 {
		t.Fatalf("changes %v %v", chs, err)
	}
	if string(chs[0].Data) != `{"id":"r1","code":"a"}` || chs[0].Obj != authz.ObjRole || chs[0].ID != "r1" || chs[0].Op != authz.OpPut {
		t.Fatalf("first change %+v", chs[0])
	}
}

func testStale(t *testing.T, s Subject) {
	ctx := context.Background()
	if _, err := s.Store.Write(ctx, 0, put(authz.ObjRole, "r1", `{}`), nil); err != nil {
		t.Fatal(err)
	}
	before := s.CountOutbox(t)
	for _, expect := range []int64{0, 2, 7} {
		_, err := s.Store.Write(ctx, expect, put(authz.ObjRole, "r2", `{}`), []events.Event{ev("uias.changes.authz.role.put")})
		if !errors.Is(err, authz.ErrStale) {
			t.Fatalf("expect %d: err = %v, want ErrStale", expect, err)
		}
	}
	if rev, _ := s.Store.Revision(ctx); rev != 1 {
		t.Fatalf("revision moved to %d", rev)
	}
	if s.CountOutbox(t) != before {
		t.Fatal("a stale write left events")
	}
	if got, _, _ := snapshot(t, s.Store); len(got) != 1 {
		t.Fatalf("a stale write left an object: %v", got)
	}
}

func testDelete(t *testing.T, s Subject) {
	ctx := context.Background()
	if _, err := s.Store.Write(ctx, 0, put(authz.ObjGrant, "g1", `{}`), nil); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Store.Write(ctx, 1, authz.Change{Obj: authz.ObjGrant, Op: authz.OpDelete, ID: "g1"}, nil)
	if err != nil || ch.Rev != 2 {
		t.Fatalf("delete: %+v %v", ch, err)
	}
	if got, _, _ := snapshot(t, s.Store); len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
	before := s.CountOutbox(t)
	_, err = s.Store.Write(ctx, 2, authz.Change{Obj: authz.ObjGrant, Op: authz.OpDelete, ID: "g1"}, []events.Event{ev("uias.x")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of a missing object: %v", err)
	}
	if rev, _ := s.Store.Revision(ctx); rev != 2 || s.CountOutbox(t) != before {
		t.Fatalf("a refused delete moved the revision (%d) or left events", rev)
	}
	chs, _ := s.Store.ChangesSince(ctx, 1, 10)
	if len(chs) != 1 || chs[0].Op != authz.OpDelete || chs[0].Data != nil {
		t.Fatalf("delete change: %+v", chs)
	}
}

// testWriteBatch: several changes commit in one transaction with
// consecutive revisions (as an application's model is removed); a stale
// expectation or a delete of a missing object writes nothing.
func testWriteBatch(t *testing.T, s Subject) {
	ctx := context.Background()
	for i, c := range []authz.Change{put(authz.ObjResource, "app1/m", `{"app":"app1"}`), put(authz.ObjRole, "r1", `{"app":"app1"}`),
		put(authz.ObjGrant, "g1", `{"role":"r1"}`), put(authz.ObjRole, "r2", `{}`)} {
		if _, err := s.Store.Write(ctx, int64(i), c, nil); err != nil {
			t.Fatal(err)
		}
	}
	del := func(obj, id string) authz.Change { return authz.Change{Obj: obj, Op: authz.OpDelete, ID: id} }
	batch := []authz.Change{del(authz.ObjGrant, "g1"), put(authz.ObjRole, "r2", `{"code":"kept"}`), del(authz.ObjRole, "r1"),
		del(authz.ObjResource, "app1/m")}

	before := s.CountOutbox(t)
	if _, err := s.Store.WriteBatch(ctx, 3, batch, []events.Event{ev("uias.x")}); !errors.Is(err, authz.ErrStale) {
		t.Fatalf("a stale batch: %v", err)
	}
	missing := append(slices.Clone(batch), del(authz.ObjGrant, "nope"))
	if _, err := s.Store.WriteBatch(ctx, 4, missing, []events.Event{ev("uias.x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a batch deleting a missing object: %v", err)
	}
	if rev, _ := s.Store.Revision(ctx); rev != 4 || s.CountOutbox(t) != before {
		t.Fatalf("a refused batch moved the revision (%d) or left events", rev)
	}
	if got, _, _ := snapshot(t, s.Store); len(got) != 4 {
		t.Fatalf("a refused batch changed objects: %v", got)
	}

	out, err := s.Store.WriteBatch(ctx, 4, batch, []events.Event{ev("uias.x"), ev("uias.y")})
	if err != nil || len(out) != 4 || out[0].Rev != 5 || out[3].Rev != 8 {
		t.Fatalf("WriteBatch: %+v %v", out, err)
	}
	if rev, _ := s.Store.Revision(ctx); rev != 8 || s.CountOutbox(t) != before+2 {
		t.Fatalf("after the batch: revision %d, %d events", rev, s.CountOutbox(t)-before)
	}
	got, _, rev := snapshot(t, s.Store)
	if rev != 8 || len(got) != 1 || got[authz.ObjRole+"/r2"] != `{"code":"kept"}` {
		t.Fatalf("objects after the batch (rev %d): %v", rev, got)
	}
	chs, _ := s.Store.ChangesSince(ctx, 4, 10)
	if len(chs) != 4 || chs[0].Rev != 5 || chs[0].Op != authz.OpDelete || chs[1].Op != authz.OpPut || chs[3].ID != "app1/m" {
		t.Fatalf("changes of the batch: %+v", chs)
	}
	if out, err := s.Store.WriteBatch(ctx, 8, nil, nil); err != nil || len(out) != 0 {
		t.Fatalf("an empty batch: %v %v", out, err)
	}
	if rev, _ := s.Store.Revision(ctx); rev != 8 {
		t.Fatalf("an empty batch moved the revision to %d", rev)
	}
}

func testChangesSince(t *testing.T, s Subject) {
	ctx := context.Background()
	for i := range 7 {
		if _, err := s.Store.Write(ctx, int64(i), put(authz.ObjGrant, fmt.Sprint("g", i), `{}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	chs, err := s.Store.ChangesSince(ctx, 2, 3)
	if err != nil || len(chs) != 3 || chs[0].Rev != 3 || chs[2].Rev != 5 || chs[0].ID != "g2" {
		t.Fatalf("ChangesSince(2, 3) = %+v, %v", chs, err)
	}
	if chs, _ := s.Store.ChangesSince(ctx, 7, 3); len(chs) != 0 {
		t.Fatalf("beyond the end: %+v", chs)
	}
}

func testSnapshotOrder(t *testing.T, s Subject) {
	ctx := context.Background()
	objs := []string{authz.ObjGrant, authz.ObjExclusion, authz.ObjRole, authz.ObjResource, authz.ObjGrant, authz.ObjRole}
	for i, o := range objs {
		if _, err := s.Store.Write(ctx, int64(i), put(o, fmt.Sprint(i), `{}`), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, order, rev := snapshot(t, s.Store)
	want := []string{authz.ObjResource, authz.ObjRole, authz.ObjRole, authz.ObjExclusion, authz.ObjGrant, authz.ObjGrant}
	if fmt.Sprint(order) != fmt.Sprint(want) || rev != 6 {
		t.Fatalf("snapshot order %v at %d, want %v at 6", order, rev, want)
	}
}

// Writers racing for the next revision: each succeeds exactly once per
// revision, with no gap and no revision given twice.
func testConcurrent(t *testing.T, s Subject) {
	ctx := context.Background()
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				rev, err := s.Store.Revision(ctx)
				if err != nil {
					errs <- err
					return
				}
				_, err = s.Store.Write(ctx, rev, put(authz.ObjGrant, fmt.Sprintf("w%d-%d", w, i), `{}`), nil)
				switch {
				case errors.Is(err, authz.ErrStale), errors.Is(err, store.ErrUnavailable):
					continue // lost the race (or SQLite was busy): try again
				case err != nil:
					errs <- err
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	chs, err := s.Store.ChangesSince(ctx, 0, 1000)
	if err != nil || len(chs) != writers*each {
		t.Fatalf("%d changes, %v", len(chs), err)
	}
	for i, c := range chs {
		if c.Rev != int64(i+1) {
			t.Fatalf("change %d has revision %d", i, c.Rev)
		}
	}
}

// testDeleteGrantsOf: the grants named whose subject is the one given go,
// each with its own revision, change and events; other subjects' grants,
// other objects and missing ids stay and take no revision; a second call
// (the identity event applied again) deletes nothing; a stale revision
// commits nothing.
func testDeleteGrantsOf(t *testing.T, s Subject) {
	ctx := context.Background()
	objs := []authz.Change{
		put(authz.ObjGrant, "g1", `{"id":"g1","role":"r","subject":{"kind":"user","id":"u1"}}`),
		put(authz.ObjGrant, "g2", `{"id":"g2","role":"r","subject":{"kind":"group","id":"u1"}}`), // same id, a group
		put(authz.ObjGrant, "g3", `{"id":"g3","role":"r","subject":{"kind":"user","id":"u2"}}`),
		put(authz.ObjGrant, "g4", `{"id":"g4","role":"r2","subject":{"kind":"user","id":"u1"}}`),
		put(authz.ObjRole, "g5", `{"id":"g5","subject":{"kind":"user","id":"u1"}}`), // not a grant
	}
	for i, c := range objs {
		if _, err := s.Store.Write(ctx, int64(i), c, nil); err != nil {
			t.Fatal(err)
		}
	}
	u1 := authz.Subject{Kind: authz.SubjectUser, ID: "u1"}
	evs := func(ch authz.Change) []events.Event {
		if ch.Obj != authz.ObjGrant || ch.Op != authz.OpDelete || ch.Rev == 0 {
			t.Errorf("events asked for %+v", ch)
		}
		return []events.Event{ev("uias.changes.authz.grant.delete"), ev("uias.audit.authz.grant.revoke")}
	}
	ids := []string{"g1", "g2", "g3", "missing", "g4", "g5", "g1"}
	// Checked against an older revision: nothing.
	before := s.CountOutbox(t)
	if _, err := s.Store.DeleteGrantsOf(ctx, 4, u1, ids, evs); !errors.Is(err, authz.ErrStale) {
		t.Fatalf("stale: %v", err)
	}
	if got, _, rev := snapshot(t, s.Store); len(got) != 5 || rev != 5 || s.CountOutbox(t) != before {
		t.Fatalf("a stale delete changed something: %d objects at %d", len(got), rev)
	}
	chs, err := s.Store.DeleteGrantsOf(ctx, 5, u1, ids, evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 2 || chs[0].ID != "g1" || chs[0].Rev != 6 || chs[1].ID != "g4" || chs[1].Rev != 7 ||
		chs[0].Op != authz.OpDelete || chs[0].Obj != authz.ObjGrant || chs[0].Data != nil {
		t.Fatalf("deleted %+v: want g1 at 6, g4 at 7", chs)
	}
	if n := s.CountOutbox(t) - before; n != 4 {
		t.Fatalf("%d events, want 4", n)
	}
	got, _, rev := snapshot(t, s.Store)
	if rev != 7 || len(got) != 3 || got["grant/g2"] == "" || got["grant/g3"] == "" || got["role/g5"] == "" {
		t.Fatalf("after: %v at %d", got, rev)
	}
	log, err := s.Store.ChangesSince(ctx, 5, 10)
	if err != nil || len(log) != 2 || log[0].ID != "g1" || log[0].Op != authz.OpDelete || log[1].Rev != 7 {
		t.Fatalf("change log %+v %v", log, err)
	}
	// Again: nothing to delete, no revision, no event.
	before = s.CountOutbox(t)
	chs, err = s.Store.DeleteGrantsOf(ctx, 7, u1, ids, evs)
	if err != nil || len(chs) != 0 {
		t.Fatalf("again: %+v %v", chs, err)
	}
	if r, _ := s.Store.Revision(ctx); r != 7 || s.CountOutbox(t) != before {
		t.Fatalf("a delete of nothing moved the revision (%d) or left events", r)
	}
	if chs, err := s.Store.DeleteGrantsOf(ctx, 7, u1, nil, evs); err != nil || len(chs) != 0 {
		t.Fatalf("no ids: %+v %v", chs, err)
	}
	// The group of the same id.
	chs, err = s.Store.DeleteGrantsOf(ctx, 7, authz.Subject{Kind: authz.SubjectGroup, ID: "u1"}, []string{"g2", "g3"}, nil)
	if err != nil || len(chs) != 1 || chs[0].ID != "g2" || chs[0].Rev != 8 {
		t.Fatalf("group: %+v %v", chs, err)
	}
}

// RecordBreaches reports a breach once while it stands: again only after
// it ended; its record goes to the outbox in the same transaction (a
// failing one records nothing); of two callers at once, one reports it.
func testRecordBreaches(t *testing.T, s Subject) {
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	record := func(evs func(authz.Breach) []events.Event, now ...authz.Breach) ([]authz.Breach, error) {
		return s.Store.RecordBreaches(ctx, now, at, evs)
	}
	one := func(authz.Breach) []events.Event { return []events.Event{ev("uias.audit.authz")} }
	rec := func(now ...authz.Breach) []authz.Breach {
		t.Helper()
		got, err := record(one, now...)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, authz.CompareBreaches)
		return got
	}
	ann, bob := authz.Breach{Exclusion: "x1", Person: "ann"}, authz.Breach{Exclusion: "x1", Person: "bob"}
	before := s.CountOutbox(t)
	if got := rec(ann, bob); !slices.Equal(got, []authz.Breach{ann, bob}) {
		t.Fatalf("first: %v", got)
	}
	if got := rec(bob, ann); len(got) != 0 {
		t.Fatalf("standing breaches reported again: %v", got)
	}
	if got := rec(ann); len(got) != 0 {
		t.Fatalf("one ended: %v", got)
	}
	if got := rec(ann, bob); !slices.Equal(got, []authz.Breach{bob}) {
		t.Fatalf("an ended breach that came again: %v", got)
	}
	if n := s.CountOutbox(t) - before; n != 3 {
		t.Fatalf("%d records in the outbox, want 3", n)
	}
	// the records fail: nothing recorded, reported at the next call
	cy := authz.Breach{Exclusion: "x2", Person: "cy"}
	dup := ev("uias.audit.authz")
	if _, err := record(func(authz.Breach) []events.Event { return []events.Event{dup, dup} }, ann, bob, cy); err == nil {
		t.Fatal("records with one event id twice: no error")
	}
	if got := rec(ann, bob, cy); !slices.Equal(got, []authz.Breach{cy}) {
		t.Fatalf("after a failed call: %v", got)
	}
	// two callers at once
	dee := authz.Breach{Exclusion: "x2", Person: "dee"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	reported := 0
	for range 2 {
		wg.Go(func() {
			got, err := record(one, ann, bob, cy, dee)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			reported += len(got)
			mu.Unlock()
		})
	}
	wg.Wait()
	if reported != 1 {
		t.Fatalf("two callers at once reported %d, want 1", reported)
	}
	if got := rec(); len(got) != 0 {
		t.Fatalf("none standing: %v", got)
	}
}
