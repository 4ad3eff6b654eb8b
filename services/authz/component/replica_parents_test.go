package component

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// TestRebuiltMirrorPlacesOldBureausUnderRoot rebuilds level 1's mirror of
// identity's org tree from a CHANGES stream written partly before level 1's
// identity named its root in the local event of an attached level-2 bureau:
// bureau A's event names its parent at l2a (an org level 1 never created),
// bureau B's names level 1's root, as live events do now. After the
// rebuild both hang under level 1's root, so an org grant on that root
// reaches the people of both; orgs below a bureau, and orgs that are no
// listed subtree root, keep the parent their event names.
func TestRebuiltMirrorPlacesOldBureausUnderRoot(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	publish := func(subject, entity, op, id string, data map[string]any) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"entity": entity, "op": op, "id": id, "data": data})
		if _, err := js.Publish(ctx, subject, b); err != nil {
			t.Fatal(err)
		}
	}
	const pre = "uias.changes.identity."
	publish(pre+"org.created", "org", "created", "root1", map[string]any{"code": "root", "parent_id": ""})
	publish(pre+"org.created", "org", "created", "hq", map[string]any{"code": "hq", "parent_id": "root1"})
	// Old: the parent at l2a. New: level 1's root.
	publish(pre+"org.replica.created", "org", "created", "bureauA", map[string]any{"parent_id": "rootL2a"})
	publish(pre+"org.replica.created", "org", "created", "deptA", map[string]any{"parent_id": "bureauA"})
	publish(pre+"org.replica.created", "org", "created", "bureauB", map[string]any{"parent_id": "root1"})
	publish(pre+"org.replica.created", "org", "created", "stray", map[string]any{"parent_id": "rootL2a"})
	publish(pre+"user.replica.created", "user", "created", "pA", map[string]any{"org_id": "deptA"})
	publish(pre+"user.replica.created", "user", "created", "pB", map[string]any{"org_id": "bureauB"})

	rebuild := func(homes *centre.Homes) *index.Index {
		t.Helper()
		idx := index.New()
		loaded := make(chan struct{})
		fctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		var mirrored atomic.Int64
		go func() {
			defer close(done)
			followIdentity(fctx, js, idx, homes, zap.NewNop(), loaded, &mirrored, func(int64) {}, nil, nil)
		}()
		t.Cleanup(func() { stop(); <-done })
		select {
		case <-loaded:
		case <-time.After(30 * time.Second):
			t.Fatal("the mirror did not load the stream in 30 s")
		}
		return idx
	}
	l1 := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{"bureauA": "l2a", "bureauB": "l2b"}}
	idx := rebuild(l1)
	for org, want := range map[string][]string{
		"bureauA": {"bureauA", "root1"},
		"bureauB": {"bureauB", "root1"},
		"deptA":   {"deptA", "bureauA", "root1"},
		"hq":      {"hq", "root1"},
		"stray":   {"stray", "rootL2a"}, // no listed subtree root: as its event says
	} {
		if got := idx.OrgAncestors(org); !slices.Equal(got, want) {
			t.Errorf("rebuilt at level 1: ancestors of %s %v, want %v", org, got, want)
		}
	}
	// An org grant on level 1's root allows the people of both bureaus.
	onRoot := authz.Subject{Kind: authz.SubjectOrg, ID: "root1"}
	put := func(rev int64, obj, id string, v any) authz.Change {
		b, _ := json.Marshal(v)
		return authz.Change{Rev: rev, Obj: obj, Op: authz.OpPut, ID: id, Data: b}
	}
	if err := idx.Apply(
		put(1, authz.ObjResource, index.ResourceID("portal", "docs"),
			authz.Resource{App: "portal", Code: "docs", Kind: authz.KindEntity, Operations: []string{"read"}}),
		put(2, authz.ObjRole, "reader", authz.Role{ID: "reader", App: "portal", Code: "reader",
			Permissions: []authz.Permission{{App: "portal", Resource: "docs", Operation: "read"}}}),
		put(3, authz.ObjGrant, "g1", authz.Grant{ID: "g1", Role: "reader", Subject: onRoot}),
	); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"pA", "pB"} {
		if ok, _ := idx.Check(index.Query{Person: p, App: "portal", Resource: "docs", Operation: "read"}, time.Now()); !ok {
			t.Errorf("rebuilt at level 1: an org grant on level 1's root does not allow %s", p)
		}
	}
	// The same stream read as a single centre's (no centre settings):
	// events are applied as they are, so bureau A's people are out of reach
	// of the root; this is what the placement corrects.
	if idx := rebuild(nil); idx.SubjectReaches(onRoot, "pA") || !idx.SubjectReaches(onRoot, "pB") {
		t.Error("without centre settings the events are not applied as they are")
	}
}
