package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/authz"
)

// testDirectGrant: a direct grant of a permission (docs/adr/0018) is kept
// whole, its permission with it, by every way the store hands grants out
// (the change log, a snapshot, a replica's objects), and deleted with its
// subject (DeleteGrantsOf) as a grant of a role is.
func testDirectGrant(t *testing.T, s Subject) {
	ctx := context.Background()
	g := authz.Grant{ID: "d1", Permission: authz.Permission{App: "oa", Resource: "docs.contract", Operation: "approve"},
		Subject: authz.Subject{Kind: authz.SubjectUser, ID: "u1"}, ValidUntil: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		CreatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), CreatedBy: "admin"}
	data, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.Write(ctx, 0, authz.Change{Obj: authz.ObjGrant, Op: authz.OpPut, ID: g.ID, Data: data},
		[]events.Event{ev("uias.changes.authz.grant.put")}); err != nil {
		t.Fatal(err)
	}
	back := func(where string, b []byte) {
		t.Helper()
		var got authz.Grant
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if !reflect.DeepEqual(got, g) || !got.Direct() {
			t.Fatalf("%s: %+v, want %+v", where, got, g)
		}
	}
	chs, err := s.Store.ChangesSince(ctx, 0, 10)
	if err != nil || len(chs) != 1 {
		t.Fatalf("changes %v %v", chs, err)
	}
	back("change log", chs[0].Data)
	got, _, _ := snapshot(t, s.Store)
	back("snapshot", []byte(got["grant/d1"]))
	if rs, ok := s.Store.(authz.ReplicaStore); ok {
		r := g
		r.ID = "d2"
		rd, _ := json.Marshal(r)
		if _, _, err := rs.ApplyReplica(ctx, 1, []authz.ReplicaWrite{{Change: authz.Change{Obj: authz.ObjGrant, Op: authz.OpPut, ID: "d2", Data: rd},
			Origin: "l2", Version: 1, EventID: "e1"}}, func(authz.Change) events.Event { return ev("uias.changes.authz.grant.replica.put") }); err != nil {
			t.Fatal(err)
		}
		if err := rs.EachObject(ctx, func(obj, id string, data []byte, origin string) error {
			if id == "d2" {
				g.ID = "d2"
				back("replica object", data)
				g.ID = "d1"
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	rev, _ := s.Store.Revision(ctx)
	dels, err := s.Store.DeleteGrantsOf(ctx, rev, g.Subject, []string{"d1", "d2"}, nil)
	if err != nil || len(dels) == 0 || dels[0].ID != "d1" {
		t.Fatalf("deleted with their subject: %+v %v", dels, err)
	}
	if got, _, _ := snapshot(t, s.Store); len(got) != 0 {
		t.Fatalf("left after DeleteGrantsOf: %v", got)
	}
}
