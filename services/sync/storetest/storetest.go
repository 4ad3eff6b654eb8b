// Package storetest is the conformance suite every sync.Store
// implementation passes (SQLite and PostgreSQL).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	usync "github.com/uias/uias/services/sync"
)

// Run runs the suite; open returns a new, empty, migrated store.
func Run(t *testing.T, open func(t *testing.T) usync.Store) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000).UTC()
	change := func(ev, kind, id string, version uint64, data string) usync.Change {
		return usync.Change{EventID: ev, Origin: "l2a", Kind: kind, Op: "updated", ObjectID: id, Version: version,
			Data: json.RawMessage(data)}
	}

	ch := func(ev, kind, id string, version uint64, data string) *usync.Change {
		c := change(ev, kind, id, version, data)
		return &c
	}

	t.Run("ApplyMergesInOrder", func(t *testing.T) {
		s := open(t)
		items := []usync.Item{
			{Seq: 1, Change: ch("e1", "identity.user", "u1", 10, `{"name":"a","org":"o1"}`)},
			{Seq: 2, Change: ch("e2", "identity.user", "u1", 12, `{"name":"b"}`)},
			{Seq: 3, Change: ch("e3", "identity.user", "u2", 11, `{"name":"c"}`)},
		}
		out, err := s.Apply(ctx, "l2a", items, now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out) != "[APPLIED APPLIED APPLIED]" {
			t.Fatalf("outcomes %v", out)
		}
		o, err := s.Object(ctx, "identity.user", "u1")
		if err != nil {
			t.Fatal(err)
		}
		if string(o.Data) != `{"name":"b","org":"o1"}` || o.Version != 12 || o.EventID != "e2" || o.Home != "l2a" {
			t.Fatalf("object %+v data %s", o, o.Data)
		}
		c, err := s.Cursor(ctx, "l2a")
		if err != nil || c.Seq != 3 || c.Applied != 3 || c.Skipped != 0 || !c.LastApplied.Equal(now) {
			t.Fatalf("cursor %+v, %v", c, err)
		}
	})

	t.Run("ConflictIsRecordedNotApplied", func(t *testing.T) {
		s := open(t)
		refused := ch("e2", "identity.user", "u2", 6, `{"login_name":"zoe"}`)
		refused.Refused = usync.Conflict
		out, err := s.Apply(ctx, "l2a", []usync.Item{{Seq: 1, Change: ch("e1", "identity.user", "u1", 5, `{"n":1}`)},
			{Seq: 2, Change: refused}}, now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out) != "[APPLIED CONFLICT]" {
			t.Fatalf("outcomes %v", out)
		}
		if _, err := s.Object(ctx, "identity.user", "u2"); err == nil {
			t.Fatal("a change the owning component refused is in the replica")
		}
		sk, _, err := s.ListSkipped(ctx, usync.SkippedFilter{}, 10, "")
		if err != nil || len(sk) != 1 || sk[0].Reason != usync.Conflict || sk[0].EventID != "e2" || sk[0].ObjectID != "u2" {
			t.Fatalf("skipped %+v %v", sk, err)
		}
		if c, _ := s.Cursor(ctx, "l2a"); c.Seq != 2 || c.Applied != 1 || c.Skipped != 1 {
			t.Fatalf("cursor %+v", c)
		}
	})

	t.Run("ConflictsAreResolvedByWhatSettlesThem", func(t *testing.T) {
		s := open(t)
		obj := func(key string, oc usync.Outcome) []usync.ObjectOutcome {
			return []usync.ObjectOutcome{{Key: key, Outcome: oc}}
		}
		refuse := func(c *usync.Change, key string) *usync.Change {
			c.Refused, c.Objects = usync.Conflict, obj(key, usync.Conflict)
			return c
		}
		settle := func(c *usync.Change, objs ...usync.ObjectOutcome) *usync.Change {
			c.Objects = objs
			return c
		}
		// earlier batch: a person, a membership and an org's move refused
		if _, err := s.Apply(ctx, "l2a", []usync.Item{
			{Seq: 1, Change: refuse(ch("e1", "identity.user", "u1", 1, `{}`), "user:u1")},
			{Seq: 2, Change: refuse(ch("e2", "identity.group", "g1", 2, `{}`), "group:g1/member:u7")},
			{Seq: 3, Change: refuse(ch("e3", "identity.group", "g1", 3, `{}`), "group:g1/member:u8")},
			{Seq: 4, Change: refuse(ch("e4", "identity.org", "o1", 4, `{}`), "org:o1/place")},
		}, now); err != nil {
			t.Fatal(err)
		}
		// the same keys from another centre, and a refusal naming no object
		if _, err := s.Apply(ctx, "l2b", []usync.Item{
			{Seq: 1, Change: refuse(&usync.Change{EventID: "f1", Origin: "l2b", Kind: "identity.user", ObjectID: "u1", Version: 1,
				Data: json.RawMessage(`{}`)}, "user:u1")},
			{Seq: 2, Change: &usync.Change{EventID: "f2", Origin: "l2b", Kind: "identity.user", ObjectID: "u2", Version: 2,
				Data: json.RawMessage(`{}`), Refused: usync.Conflict}},
		}, now); err != nil {
			t.Fatal(err)
		}
		openConflicts := func() map[string]int64 {
			t.Helper()
			o, err := s.OpenConflicts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		if o := openConflicts(); o["l2a"] != 4 || o["l2b"] != 2 {
			t.Fatalf("open conflicts %v", o)
		}
		later := now.Add(time.Minute)
		out, err := s.Apply(ctx, "l2a", []usync.Item{
			// another member of g1, and g1 itself: neither settles u7's
			// membership
			{Seq: 5, Change: settle(ch("e5", "identity.group", "g1", 5, `{}`), usync.ObjectOutcome{Key: "group:g1/member:u9", Outcome: usync.Applied})},
			{Seq: 6, Change: settle(ch("e6", "identity.group", "g1", 6, `{}`), usync.ObjectOutcome{Key: "group:g1", Outcome: usync.Applied})},
			// u8's membership is applied: settled
			{Seq: 7, Change: settle(ch("e7", "identity.group", "g1", 7, `{}`), usync.ObjectOutcome{Key: "group:g1/member:u8", Outcome: usync.Applied})},
			// a STALE target answer settles nothing
			{Seq: 8, Change: settle(ch("e8", "identity.org", "o1", 8, `{}`), usync.ObjectOutcome{Key: "org:o1/place", Outcome: "STALE"})},
			// a resend: u1 whole applied, a new object refused in it
			{Seq: 9, Change: settle(ch("e9", "identity.org", "root2", 9, `{}`),
				usync.ObjectOutcome{Key: "user:u1/*", Outcome: usync.Applied},
				usync.ObjectOutcome{Key: "user:u5", Outcome: usync.Conflict},
				usync.ObjectOutcome{Key: "user:u6", Outcome: usync.Applied})},
			// and in the same batch, u5 settled by its next change
			{Seq: 10, Change: settle(ch("e10", "identity.user", "u5", 10, `{}`), usync.ObjectOutcome{Key: "user:u5", Outcome: usync.Applied})},
		}, later)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out) != "[APPLIED APPLIED APPLIED APPLIED APPLIED APPLIED]" {
			t.Fatalf("outcomes %v", out)
		}
		if o := openConflicts(); o["l2a"] != 2 || o["l2b"] != 2 {
			t.Fatalf("open conflicts after the settling batch %v", o)
		}
		all, _, err := s.ListSkipped(ctx, usync.SkippedFilter{}, 50, "")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, k := range all {
			state := "open"
			if !k.Resolved.IsZero() {
				state = k.ResolvedBy
				if !k.Resolved.Equal(later) {
					t.Fatalf("resolved at %v, want %v", k.Resolved, later)
				}
			}
			got[k.Origin+" "+k.Object] = state
		}
		want := map[string]string{"l2a user:u1": "e9", "l2a group:g1/member:u7": "open", "l2a group:g1/member:u8": "e7",
			"l2a org:o1/place": "open", "l2a user:u5": "e10", "l2b user:u1": "open", "l2b ": "open"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("skipped changes\n got %v\nwant %v", got, want)
		}
		opens, _, err := s.ListSkipped(ctx, usync.SkippedFilter{Open: true}, 50, "")
		if err != nil || len(opens) != 4 {
			t.Fatalf("open listing %d %v", len(opens), err)
		}
		// the refused object of the resend counts as skipped besides the
		// change applied
		if c, _ := s.Cursor(ctx, "l2a"); c.Applied != 6 || c.Skipped != 5 {
			t.Fatalf("cursor %+v", c)
		}
		// g1 whole (a resend of the group with its members) settles u7's
		if _, err := s.Apply(ctx, "l2a", []usync.Item{{Seq: 11, Change: settle(ch("e11", "identity.group", "g1", 11, `{}`),
			usync.ObjectOutcome{Key: "group:g1/*", Outcome: usync.Applied})}}, later); err != nil {
			t.Fatal(err)
		}
		if o := openConflicts(); o["l2a"] != 1 {
			t.Fatalf("open conflicts after g1 whole %v", o)
		}
		// by hand: one object of a change, or all of them; nothing open
		// left of it is NOT_FOUND; the record is made of what was done,
		// refusals included
		var recorded []string
		record := func(n int64, err error) events.Event {
			recorded = append(recorded, fmt.Sprintf("%d %v", n, errors.Is(err, store.ErrNotFound)))
			return events.Event{ID: fmt.Sprintf("r%d", len(recorded)), Subject: "uias.audit.sync", Type: "audit.sync.skipped.resolve",
				Time: now, Payload: []byte(`{}`)}
		}
		if n, err := s.ResolveConflicts(ctx, "f1", "user:u9", "admin:a1", later, record); !errors.Is(err, store.ErrNotFound) || n != 0 {
			t.Fatalf("resolving another object: %d %v", n, err)
		}
		if n, err := s.ResolveConflicts(ctx, "f1", "user:u1", "admin:a1", later, record); err != nil || n != 1 {
			t.Fatalf("resolving by hand: %d %v", n, err)
		}
		if n, err := s.ResolveConflicts(ctx, "f1", "", "admin:a1", later, record); !errors.Is(err, store.ErrNotFound) || n != 0 {
			t.Fatalf("resolving again: %d %v", n, err)
		}
		if n, err := s.ResolveConflicts(ctx, "e7", "", "admin:a1", later, nil); !errors.Is(err, store.ErrNotFound) || n != 0 {
			t.Fatalf("resolving a change applied: %d %v", n, err)
		}
		if got := strings.Join(recorded, ", "); got != "0 true, 1 false, 0 true" {
			t.Fatalf("records made: %s", got)
		}
		if o := openConflicts(); o["l2b"] != 1 {
			t.Fatalf("open conflicts after the hand %v", o)
		}
		mine, _, err := s.ListSkipped(ctx, usync.SkippedFilter{}, 50, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range mine {
			if k.EventID == "f1" && (k.ResolvedBy != "admin:a1" || !k.Resolved.Equal(later)) {
				t.Fatalf("resolved by hand: %+v", k)
			}
		}
	})

	t.Run("RefusedChangeCopiedAgainIsAReplay", func(t *testing.T) {
		s := open(t)
		refused := func(seq uint64) usync.Item {
			c := ch("e1", "identity.user", "u1", 5, `{}`)
			c.Refused, c.Objects = usync.Conflict, []usync.ObjectOutcome{{Key: "user:u1", Outcome: usync.Conflict}}
			return usync.Item{Seq: seq, Change: c}
		}
		if out, err := s.Apply(ctx, "l2a", []usync.Item{refused(1)}, now); err != nil || fmt.Sprint(out) != "[CONFLICT]" {
			t.Fatalf("first: %v %v", out, err)
		}
		// the peer's stream copied again (new sequences), twice in a batch
		out, err := s.Apply(ctx, "l2a", []usync.Item{refused(2), refused(3)}, now)
		if err != nil || fmt.Sprint(out) != "[DUPLICATE DUPLICATE]" {
			t.Fatalf("copied again: %v %v", out, err)
		}
		if o, err := s.OpenConflicts(ctx); err != nil || o["l2a"] != 1 {
			t.Fatalf("open conflicts %v %v", o, err)
		}
		// resolved by hand, it stays resolved when copied again
		if _, err := s.ResolveConflicts(ctx, "e1", "", "admin:a1", now, nil); err != nil {
			t.Fatal(err)
		}
		if out, err := s.Apply(ctx, "l2a", []usync.Item{refused(4)}, now); err != nil || fmt.Sprint(out) != "[DUPLICATE]" {
			t.Fatalf("copied again after the hand: %v %v", out, err)
		}
		if o, err := s.OpenConflicts(ctx); err != nil || len(o) != 0 {
			t.Fatalf("open conflicts after the hand %v %v", o, err)
		}
		if c, _ := s.Cursor(ctx, "l2a"); c.Skipped != 1 || c.Duplicates != 3 {
			t.Fatalf("cursor %+v", c)
		}
	})

	t.Run("DuplicateAndStaleAreRecordedNotApplied", func(t *testing.T) {
		s := open(t)
		if _, err := s.Apply(ctx, "l2a", []usync.Item{{Seq: 1, Change: ch("e1", "identity.user", "u1", 5, `{"n":1}`)},
			{Seq: 2, Change: ch("e2", "identity.user", "u1", 7, `{"n":2}`)}}, now); err != nil {
			t.Fatal(err)
		}
		out, err := s.Apply(ctx, "l2a", []usync.Item{
			{Seq: 3, Change: ch("e1", "identity.user", "u1", 5, `{"n":1}`)},            // replayed under a new sequence
			{Seq: 4, Change: ch("e9", "identity.user", "u1", 6, `{"n":9}`)},            // older than applied
			{Seq: 5, Change: &usync.Change{EventID: "e10", Origin: "l2a", Version: 8}}, // names no object
		}, now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out) != "[DUPLICATE STALE INVALID]" {
			t.Fatalf("outcomes %v", out)
		}
		o, _ := s.Object(ctx, "identity.user", "u1")
		if string(o.Data) != `{"n":2}` || o.Version != 7 {
			t.Fatalf("object changed by a skipped change: %+v %s", o, o.Data)
		}
		sk, next, err := s.ListSkipped(ctx, usync.SkippedFilter{}, 2, "")
		if err != nil || len(sk) != 2 || next == "" {
			t.Fatalf("skipped page 1: %d %q %v", len(sk), next, err)
		}
		if sk[0].Reason != usync.Invalid || sk[1].Reason != usync.Stale || sk[1].AppliedVersion != 7 || sk[1].Version != 6 {
			t.Fatalf("newest first: %+v", sk)
		}
		sk2, next2, err := s.ListSkipped(ctx, usync.SkippedFilter{}, 2, next)
		if err != nil || len(sk2) != 1 || next2 != "" || sk2[0].Reason != usync.Duplicate || sk2[0].EventID != "e1" {
			t.Fatalf("skipped page 2: %+v %q %v", sk2, next2, err)
		}
		if _, _, err := s.ListSkipped(ctx, usync.SkippedFilter{}, 2, "!!"); !errors.Is(err, store.ErrBadPageToken) {
			t.Fatalf("bad token: %v", err)
		}
		c, _ := s.Cursor(ctx, "l2a")
		// The replay is counted apart: no failure.
		if c.Seq != 5 || c.Applied != 2 || c.Skipped != 2 || c.Duplicates != 1 {
			t.Fatalf("cursor %+v", c)
		}
		if cs, err := s.Cursors(ctx); err != nil || len(cs) != 1 || cs[0] != c {
			t.Fatalf("cursors %+v %v, want [%+v]", cs, err, c)
		}
	})

	t.Run("LargeBatchDecidesInOrder", func(t *testing.T) {
		// One batch of 1200 changes of 7 objects (more than one multi-row
		// statement), with replays and older versions inside the batch:
		// each change sees those before it.
		s := open(t)
		var items []usync.Item
		want := map[string]int{}
		for i := range 1200 {
			id := fmt.Sprintf("o%d", i%7)
			items = append(items, usync.Item{Seq: uint64(i + 1), Change: ch(fmt.Sprintf("e%d", i), "identity.org", id, uint64(10+i),
				fmt.Sprintf(`{"n":%d,"f%d":true}`, i, i%3))})
			want[id] = i
		}
		items = append(items,
			usync.Item{Seq: 1201, Change: ch("e5", "identity.org", "o5", 15, `{"n":-1}`)},    // replay in the batch
			usync.Item{Seq: 1202, Change: ch("e-old", "identity.org", "o1", 11, `{"n":-2}`)}) // older than applied
		out, err := s.Apply(ctx, "l2a", items, now)
		if err != nil {
			t.Fatal(err)
		}
		if out[0] != usync.Applied || out[1199] != usync.Applied || out[1200] != usync.Duplicate || out[1201] != usync.Stale {
			t.Fatalf("outcomes %v ... %v", out[:2], out[1198:])
		}
		for id, i := range want {
			o, err := s.Object(ctx, "identity.org", id)
			if err != nil {
				t.Fatal(err)
			}
			if o.Version != uint64(10+i) || !strings.Contains(string(o.Data), fmt.Sprintf(`"n":%d`, i)) || o.EventID != fmt.Sprintf("e%d", i) {
				t.Fatalf("object %s: %+v %s", id, o, o.Data)
			}
		}
		c, _ := s.Cursor(ctx, "l2a")
		if c.Seq != 1202 || c.Applied != 1200 || c.Skipped != 1 || c.Duplicates != 1 {
			t.Fatalf("cursor %+v", c)
		}
		d, err := s.Digest(ctx, usync.DigestFilter{})
		if err != nil || d[0].Rows != 7 || d[1].Rows != 1200 {
			t.Fatalf("digest %+v %v", d, err)
		}
	})

	t.Run("RedeliveryBelowCursorIsLeftOut", func(t *testing.T) {
		s := open(t)
		items := []usync.Item{{Seq: 1, Change: ch("e1", "identity.org", "o1", 1, `{}`)},
			{Seq: 2, Change: ch("e2", "identity.org", "o1", 2, `{"x":1}`)}, {Seq: 3}} // 3: not replicated
		if _, err := s.Apply(ctx, "l1", items, now); err != nil {
			t.Fatal(err)
		}
		out, err := s.Apply(ctx, "l1", append(items, usync.Item{Seq: 4, Change: ch("e3", "identity.org", "o2", 3, `{}`)}), now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out) != "[   APPLIED]" {
			t.Fatalf("outcomes %q", out)
		}
		if sk, _, _ := s.ListSkipped(ctx, usync.SkippedFilter{}, 10, ""); len(sk) != 0 {
			t.Fatalf("a redelivery below the cursor was recorded: %+v", sk)
		}
		// Links have cursors of their own.
		if c, _ := s.Cursor(ctx, "other"); c.Seq != 0 {
			t.Fatalf("cursor of an unknown link %+v", c)
		}
		cs, err := s.Cursors(ctx)
		if err != nil || len(cs) != 1 || cs[0].Link != "l1" || cs[0].Seq != 4 || cs[0].Applied != 3 {
			t.Fatalf("cursors %+v %v", cs, err)
		}
	})

	t.Run("DeleteKeepsATombstone", func(t *testing.T) {
		s := open(t)
		c := change("e1", "identity.link", "k1", 1, `{"user_id":"u"}`)
		d := change("e2", "identity.link", "k1", 2, `{"user_id":"u"}`)
		d.Op = "deleted"
		if _, err := s.Apply(ctx, "l1", []usync.Item{{Seq: 1, Change: &c}, {Seq: 2, Change: &d}}, now); err != nil {
			t.Fatal(err)
		}
		o, err := s.Object(ctx, "identity.link", "k1")
		if err != nil || !o.Deleted || o.Op != "deleted" {
			t.Fatalf("%+v %v", o, err)
		}
		if _, err := s.Object(ctx, "identity.link", "none"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing object: %v", err)
		}
	})

	t.Run("DigestIsIndependentOfArrivalBatchesAndFiltersByHome", func(t *testing.T) {
		a, b := open(t), open(t)
		c1 := change("e1", "identity.user", "u1", 1, `{"a":1}`)
		c2 := change("e2", "identity.user", "u1", 2, `{"b":2}`)
		c3 := change("e3", "identity.app", "p1", 1, `{}`)
		c3.Origin = "l1"
		if _, err := a.Apply(ctx, "x", []usync.Item{{Seq: 1, Change: &c1}, {Seq: 2, Change: &c2}, {Seq: 3, Change: &c3}}, now); err != nil {
			t.Fatal(err)
		}
		// b gets them in two batches, at another time, on other links, with a replay.
		if _, err := b.Apply(ctx, "y", []usync.Item{{Seq: 7, Change: &c1}}, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Apply(ctx, "y", []usync.Item{{Seq: 8, Change: &c1}, {Seq: 9, Change: &c2}}, now.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		da, err := a.Digest(ctx, usync.DigestFilter{Homes: []string{"l2a"}})
		if err != nil {
			t.Fatal(err)
		}
		db, err := b.Digest(ctx, usync.DigestFilter{Homes: []string{"l2a"}})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(da) != fmt.Sprint(db) || len(da) != 2 || da[0].Rows != 1 || da[1].Rows != 2 {
			t.Fatalf("digests differ:\n%v\n%v", da, db)
		}
		all, _ := a.Digest(ctx, usync.DigestFilter{})
		if all[0].Rows != 2 || all[0].SHA256 == da[0].SHA256 {
			t.Fatalf("unfiltered digest %v", all)
		}
		apps, _ := a.Digest(ctx, usync.DigestFilter{KindPrefixes: []string{"identity.app", "authz."}})
		if apps[0].Rows != 1 || apps[1].Rows != 1 {
			t.Fatalf("digest by kind %v", apps)
		}
	})

	t.Run("MergeIsDeterministic", func(t *testing.T) {
		got := string(usync.Merge(json.RawMessage(`{"b":1,"a":{"x": 1}}`), json.RawMessage(`{"c": [1, 2],"a":null}`)))
		if got != `{"a":null,"b":1,"c":[1,2]}` {
			t.Fatalf("merge %s", got)
		}
		if got := string(usync.Merge(json.RawMessage(`{"a":1}`), json.RawMessage(`"eyJ9"`))); got != `"eyJ9"` {
			t.Fatalf("replace %s", got)
		}
	})
}
