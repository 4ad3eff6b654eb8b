package component

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/sqlstore"
)

// A person deleted in identity leaves authz's mirror: their org and group
// memberships (who is under an org, who is in a group) forget them, and the
// change counts as one that may take something away from an administrator.
func TestDeletedPersonLeavesTheMirror(t *testing.T) {
	idx := index.New()
	for _, ev := range []string{
		`{"entity":"org","op":"created","id":"east","data":{"parent_id":""}}`,
		`{"entity":"user","op":"created","id":"u1","data":{"org_id":"east"}}`,
		`{"entity":"user","op":"created","id":"u2","data":{"org_id":"east"}}`,
		`{"entity":"group","op":"created","id":"g1","data":{"org_id":"east"}}`,
		`{"entity":"group","op":"member_added","id":"g1","data":{"user_id":"u1"}}`,
	} {
		if !ApplyIdentityEvent(idx, []byte(ev)) {
			t.Fatalf("not applied: %s", ev)
		}
	}
	if !slices.Contains(idx.PeopleUnder("east"), "u1") || !slices.Contains(idx.GroupMembers("g1"), "u1") {
		t.Fatal("the mirror before the deletion")
	}
	deleted := []byte(`{"entity":"user","op":"deleted","id":"u1","data":{"org_id":"east"}}`)
	if c, ok := parseIdentityEvent(deleted); !ok || !c.narrows() {
		t.Fatal("a deletion must count as narrowing")
	}
	if !ApplyIdentityEvent(idx, deleted) {
		t.Fatal("user.deleted not applied")
	}
	if slices.Contains(idx.PeopleUnder("east"), "u1") || slices.Contains(idx.GroupMembers("g1"), "u1") {
		t.Fatalf("a deleted person still mirrored: under east %v, in g1 %v", idx.PeopleUnder("east"), idx.GroupMembers("g1"))
	}
	if !slices.Contains(idx.PeopleUnder("east"), "u2") {
		t.Fatal("another person of the org was forgotten")
	}
	// A deleted group: its members leave it.
	ApplyIdentityEvent(idx, []byte(`{"entity":"group","op":"member_added","id":"g1","data":{"user_id":"u2"}}`))
	if !ApplyIdentityEvent(idx, []byte(`{"entity":"group","op":"deleted","id":"g1","data":{"org_id":"east"}}`)) {
		t.Fatal("group.deleted not applied")
	}
	if m := idx.GroupMembers("g1"); len(m) != 0 {
		t.Fatalf("members of a deleted group: %v", m)
	}
}

// downStore is the authz store of a test whose database can be made
// unavailable: its reads and writes then fail as pkg/store reports an
// unreachable database.
type downStore struct {
	authz.Store
	down atomic.Bool
}

func (s *downStore) err() error {
	if s.down.Load() {
		return fmt.Errorf("test: database down: %w", store.ErrUnavailable)
	}
	return nil
}

func (s *downStore) ChangesSince(ctx context.Context, rev int64, limit int) ([]authz.Change, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.ChangesSince(ctx, rev, limit)
}

func (s *downStore) DeleteGrantsOf(ctx context.Context, expect int64, sub authz.Subject, ids []string,
	evs func(authz.Change) []events.Event) ([]authz.Change, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.DeleteGrantsOf(ctx, expect, sub, ids, evs)
}

// authzProcess is what start wires for identity's events: the service on
// the store, its index, the grant forgetter and the identity mirror.
type authzProcess struct {
	svc       *commands.Service
	idx       *index.Index
	forgetter *grantForgetter
	stop      func()
}

func startAuthz(t *testing.T, js jetstream.JetStream, st authz.Store) *authzProcess {
	t.Helper()
	idx := index.New()
	if err := idx.Apply(authz.BuiltinChanges()...); err != nil {
		t.Fatal(err)
	}
	svc := commands.New(commands.Deps{Store: st, Index: idx})
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	storeLoaded := make(chan struct{})
	close(storeLoaded)
	p := &authzProcess{svc: svc, idx: idx}
	p.forgetter = newGrantForgetter(svc, func(sub authz.Subject) bool {
		return len(idx.Grants(index.GrantFilter{Subject: &sub})) > 0
	}, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { p.forgetter.run(ctx, storeLoaded); done <- struct{}{} }()
	loaded := make(chan struct{})
	var mirrored atomic.Int64
	go func() {
		followIdentity(ctx, js, idx, nil, zap.NewNop(), loaded, &mirrored, func(int64) {}, p.forgetter.forget, nil)
		done <- struct{}{}
	}()
	var once bool
	p.stop = func() {
		if !once {
			once = true
			cancel()
			<-done
			<-done
		}
	}
	t.Cleanup(p.stop)
	select {
	case <-loaded:
	case <-time.After(30 * time.Second):
		t.Fatal("the identity mirror did not load in 30 s")
	}
	return p
}

func (p *authzProcess) allows(t *testing.T, person, res, op string) bool {
	t.Helper()
	ok, _, err := p.svc.Check(context.Background(), index.Query{Person: person, App: "oa", Resource: res, Operation: op}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// storedGrants are the subjects of the grants the store holds.
func storedGrants(t *testing.T, st authz.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	if _, err := st.Snapshot(context.Background(), func(c authz.Change) error {
		if c.Obj == authz.ObjGrant {
			var g authz.Grant
			if err := json.Unmarshal(c.Data, &g); err != nil {
				return err
			}
			out[g.Subject.String()]++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Identity's user.deleted, group.deleted and org.deleted, as authz applies them from the
// CHANGES stream, delete the subject's grants from the store and the index:
// Check, ListPermissions and Explain answer nothing for them. With the
// store down the mirror still applies the event (the person holds nothing
// at once) and the deletion waits, retried until the store answers; a
// process stopped meanwhile does it at its next start, from the stream read
// again (nothing is acknowledged, nothing lost).
func TestDeletedSubjectsTakeTheirGrants(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	publish := func(entity, op, id string, data map[string]any) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"entity": entity, "op": op, "id": id, "actor": "user:admin1", "data": data})
		if _, err := js.Publish(ctx, "uias.changes.identity."+entity+"."+op, b); err != nil {
			t.Fatal(err)
		}
	}
	publish("org", "created", "east", map[string]any{"parent_id": ""})
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		publish("user", "created", u, map[string]any{"org_id": "east", "status": 1})
	}
	publish("group", "created", "g1", map[string]any{"org_id": "east"})
	publish("group", "member_added", "g1", map[string]any{"user_id": "u2"})

	db := storetest.Migrated(t, storetest.OpenSQLite(t), sqlstore.Migrate)
	st := &downStore{Store: sqlstore.New(db)}
	p := startAuthz(t, js, st)
	svc := p.svc
	if _, _, err := svc.PutResource(ctx, authz.Resource{App: "oa", Code: "docs", Kind: authz.KindModule,
		Operations: []string{"read", "approve"}}); err != nil {
		t.Fatal(err)
	}
	role := func(code, op string) string {
		r, _, err := svc.CreateRole(ctx, authz.Role{App: "oa", Code: code, Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: op}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	reader, approver := role("reader", "read"), role("approver", "approve")
	grant := func(r string, kind authz.SubjectKind, id string) {
		if _, _, err := svc.CreateGrant(ctx, authz.Grant{Role: r, Subject: authz.Subject{Kind: kind, ID: id}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		grant(reader, authz.SubjectUser, u)
	}
	grant(approver, authz.SubjectUser, "u1")
	grant(approver, authz.SubjectGroup, "g1")
	if !p.allows(t, "u1", "docs", "approve") || !p.allows(t, "u2", "docs", "approve") {
		t.Fatal("before: the grants do not allow")
	}

	// user.deleted: u1's two grants go.
	publish("user", "deleted", "u1", map[string]any{"org_id": "east"})
	eventually(t, "u1's grants gone from the store", func() bool { return storedGrants(t, st)["user:u1"] == 0 })
	if gs := p.idx.Grants(index.GrantFilter{Subject: &authz.Subject{Kind: authz.SubjectUser, ID: "u1"}}); len(gs) != 0 {
		t.Fatalf("u1's grants in the index: %v", gs)
	}
	if p.allows(t, "u1", "docs", "read") || p.allows(t, "u1", "docs", "approve") {
		t.Fatal("Check allows a deleted person")
	}
	if perms, _, err := svc.ListPermissions(ctx, "u1", "oa", 0); err != nil || len(perms) != 0 {
		t.Fatalf("ListPermissions of a deleted person: %v %v", perms, err)
	}
	if e, err := svc.Explain(ctx, index.Query{Person: "u1", App: "oa", Resource: "docs", Operation: "read"}, 0); err != nil || e.Allowed {
		t.Fatalf("Explain of a deleted person: %+v %v", e, err)
	}

	// group.deleted: the group's grant goes; its member keeps their own.
	publish("group", "deleted", "g1", map[string]any{"org_id": "east"})
	eventually(t, "g1's grant gone from the store", func() bool { return storedGrants(t, st)["group:g1"] == 0 })
	if p.allows(t, "u2", "docs", "approve") || !p.allows(t, "u2", "docs", "read") {
		t.Fatal("after group.deleted: u2 approves through the group, or lost their own grant")
	}

	// org.deleted (an org is deleted empty): its grant goes too, not left
	// for an org that never comes back (trial7 L7)
	publish("org", "created", "west", map[string]any{"parent_id": "east"})
	grant(reader, authz.SubjectOrg, "west")
	if storedGrants(t, st)["org:west"] != 1 {
		t.Fatal("west's grant not stored")
	}
	publish("org", "deleted", "west", map[string]any{})
	eventually(t, "west's grant gone from the store", func() bool { return storedGrants(t, st)["org:west"] == 0 })
	if p.idx.Mirrored(authz.Subject{Kind: authz.SubjectOrg, ID: "west"}) {
		t.Fatal("a deleted org is still in the mirror (a new grant to it would not be checked with identity)")
	}

	// The store down: the event is applied to the mirror (u3 holds nothing
	// at once), the grant stays stored and waits; it goes once the store
	// is back.
	st.down.Store(true)
	publish("user", "deleted", "u3", map[string]any{"org_id": "east"})
	eventually(t, "u3's deletion waiting", func() bool { return p.forgetter.Pending() == 1 })
	if p.allows(t, "u3", "docs", "read") {
		t.Fatal("a deleted person is allowed while their grants wait")
	}
	if storedGrants(t, st)["user:u3"] != 1 {
		t.Fatal("u3's grant went with the store down")
	}
	st.down.Store(false)
	eventually(t, "u3's grant deleted once the store is back", func() bool {
		return storedGrants(t, st)["user:u3"] == 0 && p.forgetter.Pending() == 0
	})

	// The store down and the process stopped before the retry: the next
	// start reads identity's events again and deletes u4's grant.
	st.down.Store(true)
	publish("user", "deleted", "u4", map[string]any{"org_id": "east"})
	eventually(t, "u4's deletion waiting", func() bool { return p.forgetter.Pending() == 1 })
	p.stop()
	st.down.Store(false)
	if storedGrants(t, st)["user:u4"] != 1 {
		t.Fatal("u4's grant went although the process stopped with the store down")
	}
	next := startAuthz(t, js, st)
	eventually(t, "u4's grant deleted at the next start", func() bool { return storedGrants(t, st)["user:u4"] == 0 })
	if next.allows(t, "u4", "docs", "read") || !next.allows(t, "u2", "docs", "read") {
		t.Fatal("after the restart: u4 allowed, or u2 not")
	}
	if got := storedGrants(t, st); len(got) != 1 || got["user:u2"] != 1 {
		t.Fatalf("grants left: %v, want u2's only", got)
	}
}

// The level-1 centre's disable of a person homed at a level-2 centre (ADR
// 0048) travels as identity's lock.disabled (at level 1) and
// lock.replica.disabled (at the home), never as a user change: authz, read
// from the CHANGES stream, takes it as the person disabled (Check refuses,
// they hold no permission), keeps it beside the home's status (the home
// enabling them lifts nothing), and lock.enabled restores them (review
// sec32c M1).
func TestLevelOneDisableHoldsInAuthz(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	publish := func(subject, entity, op, id string, data map[string]any, origin string) {
		t.Helper()
		m := map[string]any{"entity": entity, "op": op, "id": id, "actor": "user:admin1", "data": data}
		if origin != "" {
			m["origin"] = origin
		}
		b, _ := json.Marshal(m)
		if _, err := js.Publish(ctx, "uias.changes.identity."+subject, b); err != nil {
			t.Fatal(err)
		}
	}
	publish("org.created", "org", "created", "east", map[string]any{"parent_id": ""}, "")
	for _, u := range []string{"u1", "u2"} {
		publish("user.created", "user", "created", u, map[string]any{"org_id": "east", "status": 1}, "")
	}
	db := storetest.Migrated(t, storetest.OpenSQLite(t), sqlstore.Migrate)
	p := startAuthz(t, js, sqlstore.New(db))
	svc := p.svc
	if _, _, err := svc.PutResource(ctx, authz.Resource{App: "oa", Code: "docs", Kind: authz.KindModule,
		Operations: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	r, _, err := svc.CreateRole(ctx, authz.Role{App: "oa", Code: "reader", Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u1", "u2"} {
		if _, _, err := svc.CreateGrant(ctx, authz.Grant{Role: r.ID, Subject: authz.Subject{Kind: authz.SubjectUser, ID: u}}); err != nil {
			t.Fatal(err)
		}
	}
	if !p.allows(t, "u1", "docs", "read") || !p.allows(t, "u2", "docs", "read") {
		t.Fatal("before: the grants do not allow")
	}
	// at level 1: its own lock.disabled
	publish("lock.disabled", "lock", "disabled", "u1", map[string]any{"status": 2, "centre": "l1", "state_at": "2026-12-07T18:00:00Z"}, "")
	// at the home: the replica of it
	publish("lock.replica.disabled", "lock", "disabled", "u2", map[string]any{"status": 2, "centre": "l1"}, "l1")
	eventually(t, "level 1's disable holds in authz", func() bool {
		return !p.allows(t, "u1", "docs", "read") && !p.allows(t, "u2", "docs", "read")
	})
	if perms, _, err := svc.ListPermissions(ctx, "u2", "oa", 0); err != nil || len(perms) != 0 {
		t.Fatalf("ListPermissions of a person level 1 disabled: %v %v", perms, err)
	}
	if e, err := svc.Explain(ctx, index.Query{Person: "u2", App: "oa", Resource: "docs", Operation: "read"}, 0); err != nil ||
		e.Allowed || e.Reason != index.WhyPersonDisabled {
		t.Fatalf("Explain of a person level 1 disabled: %+v %v", e, err)
	}
	// the home's own status (active) lifts nothing of level 1's disable
	publish("user.status_changed", "user", "status_changed", "u2", map[string]any{"status": 1}, "")
	publish("user.updated", "user", "updated", "u2", map[string]any{"status": 1}, "")
	// a lock of another centre (lock.locked) is no disable nor enable
	publish("lock.locked", "lock", "locked", "u1", map[string]any{"locked_until": "2026-12-07T19:00:00Z"}, "")
	// a marker: once u3 exists, every event before it has been applied
	publish("user.created", "user", "created", "u3", map[string]any{"org_id": "east", "status": 1}, "")
	eventually(t, "the events before the marker applied", func() bool { return slices.Contains(p.idx.PeopleUnder("east"), "u3") })
	if p.allows(t, "u2", "docs", "read") || p.allows(t, "u1", "docs", "read") {
		t.Fatal("the home's active status or a lock lifted level 1's disable")
	}
	// level 1 enables them again: lock.enabled, lock.replica.enabled
	publish("lock.enabled", "lock", "enabled", "u1", map[string]any{"status": 1, "centre": "l1"}, "")
	publish("lock.replica.enabled", "lock", "enabled", "u2", map[string]any{"status": 1, "centre": "l1"}, "l1")
	eventually(t, "level 1's enable restores them", func() bool {
		return p.allows(t, "u1", "docs", "read") && p.allows(t, "u2", "docs", "read")
	})
	// the home's own disable still holds after level 1's enable
	publish("user.status_changed", "user", "status_changed", "u2", map[string]any{"status": 2}, "")
	publish("lock.replica.enabled", "lock", "enabled", "u2", map[string]any{"status": 1, "centre": "l1"}, "l1")
	publish("user.created", "user", "created", "u4", map[string]any{"org_id": "east", "status": 1}, "")
	eventually(t, "the events before the second marker applied", func() bool { return slices.Contains(p.idx.PeopleUnder("east"), "u4") })
	if p.allows(t, "u2", "docs", "read") {
		t.Fatal("level 1's enable lifted the home's own disable")
	}
	if c, ok := parseIdentityEvent([]byte(`{"entity":"lock","op":"disabled","id":"u1","data":{"status":2}}`)); !ok || !c.narrows() {
		t.Fatal("level 1's disable must count as narrowing")
	}
}
