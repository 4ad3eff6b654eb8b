package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/authz"
)

// testReplica: changes of another centre commit with this centre's
// revisions, once per object version, with their local events, and are
// told apart from objects written here.
func testReplica(t *testing.T, s Subject) {
	rs, ok := s.Store.(authz.ReplicaStore)
	if !ok {
		t.Skip("the store keeps no replicas")
	}
	ctx := context.Background()
	if _, err := s.Store.Write(ctx, 0, put(authz.ObjRole, "local", `{"id":"local"}`), nil); err != nil {
		t.Fatal(err)
	}
	before := s.CountOutbox(t)
	w := func(obj, op, id string, version uint64) authz.ReplicaWrite {
		ch := authz.Change{Obj: obj, Op: op, ID: id}
		if op == authz.OpPut {
			ch.Data = []byte(`{"id":"` + id + `"}`)
		}
		return authz.ReplicaWrite{Change: ch, Origin: "l1", Version: version, EventID: id}
	}
	event := func(ch authz.Change) events.Event { return ev("uias.changes.authz." + ch.Obj + ".replica." + ch.Op) }
	out, committed, err := rs.ApplyReplica(ctx, 1, []authz.ReplicaWrite{
		w(authz.ObjRole, authz.OpPut, "r1", 5), w(authz.ObjGrant, authz.OpPut, "g1", 3), w(authz.ObjGrant, authz.OpDelete, "gone", 4),
	}, event)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0] != authz.ReplicaApplied || out[1] != authz.ReplicaApplied || out[2] != authz.ReplicaApplied {
		t.Fatalf("outcomes %v", out)
	}
	if len(committed) != 2 || committed[0].Rev != 2 || committed[1].Rev != 3 || committed[1].ID != "g1" {
		t.Fatalf("committed %+v: want r1 at 2, g1 at 3 (a delete of what is not held takes no revision)", committed)
	}
	if rev, _ := s.Store.Revision(ctx); rev != 3 {
		t.Fatalf("revision %d, want 3", rev)
	}
	if n := s.CountOutbox(t) - before; n != 2 {
		t.Fatalf("%d local events, want 2", n)
	}
	// Again (a redelivery) and an older change: stale; a newer one applies.
	out, committed, err = rs.ApplyReplica(ctx, 3, []authz.ReplicaWrite{
		w(authz.ObjRole, authz.OpPut, "r1", 5), w(authz.ObjGrant, authz.OpPut, "g1", 2), w(authz.ObjGrant, authz.OpDelete, "g1", 6),
	}, event)
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != authz.ReplicaStale || out[1] != authz.ReplicaStale || out[2] != authz.ReplicaApplied || len(committed) != 1 ||
		committed[0].Rev != 4 || committed[0].Op != authz.OpDelete {
		t.Fatalf("outcomes %v, committed %+v", out, committed)
	}
	// A batch checked against an older revision commits nothing.
	if _, _, err := rs.ApplyReplica(ctx, 3, []authz.ReplicaWrite{w(authz.ObjRole, authz.OpPut, "r2", 9)}, event); !errors.Is(err, authz.ErrStale) {
		t.Fatalf("stale batch: %v", err)
	}
	if origin, held, err := rs.ReplicaOrigin(ctx, authz.ObjRole, "r1"); err != nil || !held || origin != "l1" {
		t.Fatalf("origin of r1: %q %v %v", origin, held, err)
	}
	if _, held, err := rs.ReplicaOrigin(ctx, authz.ObjRole, "local"); err != nil || held {
		t.Fatalf("origin of an object written here: %v %v", held, err)
	}
	got := map[string]string{}
	if err := rs.EachObject(ctx, func(obj, id string, data []byte, origin string) error {
		got[obj+"/"+id] = origin + " " + string(data)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["role/local"] != ` {"id":"local"}` || got["role/r1"] != `l1 {"id":"r1"}` {
		t.Fatalf("objects %v", got)
	}
}
