package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	authzsql "github.com/uias/uias/services/authz/sqlstore"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/applier"
	syncsql "github.com/uias/uias/services/sync/sqlstore"
	"github.com/uias/uias/services/sync/synctest"
)

// authzCentre is one centre's authz (commands over its own SQLite) with
// the org tree its identity mirror would hold: people p0... in the bureau,
// which hangs under root.
func authzCentre(t *testing.T, h *centre.Homes, root string, people int) (*commands.Service, *authzsql.Store) {
	t.Helper()
	db := storetest.OpenSQLite(t)
	if err := authzsql.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	st, idx := authzsql.New(db), index.New()
	if err := idx.Apply(authz.BuiltinChanges()...); err != nil {
		t.Fatal(err)
	}
	idx.SetOrgParent("bureau", root)
	for i := range people {
		idx.SetUserOrg(fmt.Sprintf("p%d", i), "bureau")
	}
	svc := commands.New(commands.Deps{Store: st, Index: idx, Homes: h})
	if err := svc.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc, st
}

// authzChanges are the changes written to st, as the CHANGES events the
// outbox relay publishes (event id, subject, payload; version: the
// revision).
func authzChanges(t *testing.T, st *authzsql.Store) []commands.ReplicaChange {
	t.Helper()
	chs, err := st.ChangesSince(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]commands.ReplicaChange, 0, len(chs))
	for _, ch := range chs {
		p, _ := json.Marshal(commands.ChangePayload{Change: ch, Time: time.Now().UTC()})
		out = append(out, commands.ReplicaChange{EventID: fmt.Sprintf("authz-%d-%d", ch.Rev, time.Now().UnixNano()),
			Subject: commands.ChangesSubjectPrefix + ch.Obj + "." + ch.Op, Version: uint64(ch.Rev), Payload: p})
	}
	return out
}

// authzTarget hands a link's authz changes to a centre's authz, as the sync
// component does through AuthzReplicaService; after, when set, runs after
// each call with the number of changes handed so far.
type authzTarget struct {
	svc   *commands.Service
	mu    gosync.Mutex
	seen  int
	after func(seen int)
}

func (*authzTarget) Name() string   { return "authz" }
func (*authzTarget) Prefix() string { return commands.ChangesSubjectPrefix }

func (a *authzTarget) Apply(ctx context.Context, origin string, cs []*usync.Change) (applier.Applied, error) {
	rcs := make([]commands.ReplicaChange, len(cs))
	for i, c := range cs {
		rcs[i] = commands.ReplicaChange{EventID: c.EventID, Subject: c.Subject, Version: c.Version, Payload: c.Payload}
	}
	out, _, err := a.svc.ApplyReplica(ctx, origin, rcs)
	if err != nil {
		return applier.Applied{}, err
	}
	a.mu.Lock()
	a.seen += len(cs)
	seen, after := a.seen, a.after
	a.mu.Unlock()
	if after != nil {
		after(seen)
	}
	res := applier.Applied{Outcomes: make([]string, len(out))}
	for i, o := range out {
		res.Outcomes[i] = string(o)
	}
	return res, nil
}

// TestAuthzReplicaNATSDownMidApply: level 1's sync applier loses its NATS
// connection while it hands a level-2 centre's backlog of grants to level
// 1's authz, and gets it back: the link resumes from its cursor, every
// grant reaches level 1's authz exactly once (one revision each, equal
// digests), and nothing is skipped.
func TestAuthzReplicaNATSDownMidApply(t *testing.T) {
	const n = 300
	ctx := context.Background()
	subtrees := map[string]string{"bureau": "l2a"}
	az1, st1 := authzCentre(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees}, "root1", n)
	az2, st2 := authzCentre(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees}, "root2", n)

	// Level 1's model, applied at level 2 (as its own link would bring it).
	if _, _, err := az1.PutResource(ctx, authz.Resource{App: "oa", Code: "docs", Kind: authz.KindModule, Operations: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	clerk, _, err := az1.CreateRole(ctx, authz.Role{App: "oa", Code: "clerk", Permissions: []authz.Permission{{App: "oa", Resource: "docs", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := az2.ApplyReplica(ctx, "l1", authzChanges(t, st1)); err != nil {
		t.Fatal(err)
	}
	// Level 2 grants the role to its n people; its changes are in its
	// NATS's CHANGES, as its outbox relay publishes them.
	for i := range n {
		if _, _, err := az2.CreateGrant(ctx, authz.Grant{Role: clerk.ID, Subject: authz.Subject{Kind: authz.SubjectUser, ID: fmt.Sprintf("p%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	l1 := synctest.StartLevel1(t, "l1")
	l2 := synctest.StartLevel2(t, "l2a", l1)
	_, js1 := l1.Connect(t)
	_, js2 := l2.Connect(t)
	for _, js := range []jetstream.JetStream{js1, js2} {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := events.EnsureStreams(ectx, js); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	var grants int
	for _, c := range authzChanges(t, st2) {
		if !strings.HasPrefix(c.Subject, commands.ChangesSubjectPrefix+authz.ObjGrant+".") {
			continue // level 1's model, applied there: level 2 sends its own changes only
		}
		m := nats.NewMsg(c.Subject)
		m.Data = c.Payload
		m.Header.Set(jetstream.MsgIDHeader, c.EventID)
		m.Header.Set(events.HeaderTime, time.Now().UTC().Format(time.RFC3339Nano))
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js2.PublishMsg(pctx, m)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		grants++
	}
	if grants != n {
		t.Fatalf("level 2 wrote %d grant changes, want %d", grants, n)
	}

	// Level 1's applier reads through a relay that is cut while its authz
	// holds the batch crossing a quarter of the backlog.
	relay := synctest.NewRelay(t, strings.TrimPrefix(l1.URL(), "nats://"))
	nc, err := nats.Connect("nats://"+relay.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenSQLite(t)
	if err := syncsql.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	sst := syncsql.New(db)
	rev0 := revisionOf(t, st1)
	cut, down := make(chan struct{}), make(chan struct{})
	var once gosync.Once
	target := &authzTarget{svc: az1, after: func(seen int) {
		if seen >= n/4 {
			once.Do(func() { close(cut); <-down })
		}
	}}
	a := applier.New(js, sst, []applier.Link{applier.PeerLink("l2a", applier.Up)},
		applier.Options{Batch: 20, Retry: 20 * time.Millisecond, Logger: zaptest.NewLogger(t), Targets: []applier.Target{target}})
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(actx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-cut:
	case <-time.After(2 * time.Minute):
		t.Fatal("the applier did not start on the backlog")
	}
	relay.Cut()
	eventuallyWithin(t, 2*time.Minute, "the applier's connection drops", func() bool { return !nc.IsConnected() })
	close(down)
	eventuallyWithin(t, 2*time.Minute, "the applier reports the broken link", func() bool {
		st, err := a.Status(ctx)
		return err == nil && st[0].Err != ""
	})
	relay.Heal()
	eventuallyWithin(t, 2*time.Minute, "the link applies every grant", func() bool {
		c, err := sst.Cursor(ctx, "l2a")
		return err == nil && c.Applied == n
	})
	c, err := sst.Cursor(ctx, "l2a")
	if err != nil || c.Skipped != 0 || c.Duplicates != 0 {
		t.Fatalf("cursor %+v %v", c, err)
	}
	// Exactly once: one revision of level 1's authz per grant, the same
	// grants at both centres.
	if got := revisionOf(t, st1) - rev0; got != n {
		t.Fatalf("level 1's authz took %d revisions for %d grants", got, n)
	}
	d1, err := az1.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := az2.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d1) != fmt.Sprint(d2) || !strings.Contains(fmt.Sprint(d1), fmt.Sprintf("grants %d ", n)) {
		t.Fatalf("digests of l2a's objects:\n l1 %v\n l2 %v", d1, d2)
	}
	if ok, _, err := az1.Check(ctx, index.Query{Person: fmt.Sprintf("p%d", n-1), App: "oa", Resource: "docs", Operation: "read"}, 0); err != nil || !ok {
		t.Fatalf("level 2's last grant at level 1: %v %v", ok, err)
	}
}

// revisionOf is the last revision of an authz store's change log.
func revisionOf(t *testing.T, st *authzsql.Store) int64 {
	t.Helper()
	chs, err := st.ChangesSince(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) == 0 {
		return 0
	}
	return chs[len(chs)-1].Rev
}

// TestAuthzReplicaDirectGrants: direct grants of a permission (no role)
// made at a level-2 centre, and the revocation of one, reach level 1's
// authz through the sync applier over NATS: the permission travels in the
// grant, level 1 answers it, the revoked one no more, and both centres
// hold the same grants of level 2's (equal digests).
func TestAuthzReplicaDirectGrants(t *testing.T) {
	ctx := context.Background()
	subtrees := map[string]string{"bureau": "l2a"}
	az1, st1 := authzCentre(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees}, "root1", 2)
	az2, st2 := authzCentre(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees}, "root2", 2)
	if _, _, err := az1.PutResource(ctx, authz.Resource{App: "oa", Code: "docs", Kind: authz.KindModule, Operations: []string{"read", "sign"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := az2.ApplyReplica(ctx, "l1", authzChanges(t, st1)); err != nil {
		t.Fatal(err)
	}
	sign := authz.Permission{App: "oa", Resource: "docs", Operation: "sign"}
	for i := range 2 {
		if _, _, err := az2.CreateGrant(ctx, authz.Grant{Permission: sign, Subject: authz.Subject{Kind: authz.SubjectUser, ID: fmt.Sprintf("p%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	p1 := authz.Subject{Kind: authz.SubjectUser, ID: "p1"}
	if _, err := az2.RevokeGrant(ctx, az2.Index().Grants(index.GrantFilter{Subject: &p1})[0].ID); err != nil {
		t.Fatal(err)
	}
	l1 := synctest.StartLevel1(t, "l1")
	l2 := synctest.StartLevel2(t, "l2a", l1)
	_, js1 := l1.Connect(t)
	_, js2 := l2.Connect(t)
	for _, js := range []jetstream.JetStream{js1, js2} {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := events.EnsureStreams(ectx, js); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	sent := int64(0)
	for _, c := range authzChanges(t, st2) {
		if !strings.HasPrefix(c.Subject, commands.ChangesSubjectPrefix+authz.ObjGrant+".") {
			continue
		}
		m := nats.NewMsg(c.Subject)
		m.Data = c.Payload
		m.Header.Set(jetstream.MsgIDHeader, c.EventID)
		m.Header.Set(events.HeaderTime, time.Now().UTC().Format(time.RFC3339Nano))
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js2.PublishMsg(pctx, m)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		sent++
	}
	db := storetest.OpenSQLite(t)
	if err := syncsql.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	sst := syncsql.New(db)
	a := applier.New(js1, sst, []applier.Link{applier.PeerLink("l2a", applier.Up)},
		applier.Options{Batch: 20, Retry: 20 * time.Millisecond, Logger: zaptest.NewLogger(t), Targets: []applier.Target{&authzTarget{svc: az1}}})
	actx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(actx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	eventuallyWithin(t, 2*time.Minute, "the link applies level 2's direct grants", func() bool {
		c, err := sst.Cursor(ctx, "l2a")
		return err == nil && c.Applied == sent
	})
	if c, err := sst.Cursor(ctx, "l2a"); err != nil || c.Skipped != 0 {
		t.Fatalf("cursor %+v %v", c, err)
	}
	q := func(p string) bool {
		ok, _, err := az1.Check(ctx, index.Query{Person: p, App: "oa", Resource: "docs", Operation: "sign"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !q("p0") || q("p1") {
		t.Fatalf("level 1's answers: p0 %v (want true), p1 %v (revoked: want false)", q("p0"), q("p1"))
	}
	p0 := authz.Subject{Kind: authz.SubjectUser, ID: "p0"}
	if gs := az1.Index().Grants(index.GrantFilter{Subject: &p0}); len(gs) != 1 || gs[0].Permission != sign || gs[0].Role != "" {
		t.Fatalf("level 1's replica of p0's grant: %+v", gs)
	}
	d1, err := az1.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := az2.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d1) != fmt.Sprint(d2) || !strings.Contains(fmt.Sprint(d1), "grants 1 ") {
		t.Fatalf("digests of l2a's objects:\n l1 %v\n l2 %v", d1, d2)
	}
}
