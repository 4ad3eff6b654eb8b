package component

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/sqlstore"
)

// TestDeletedAppLosesItsModel: identity's app.deleted, read from the
// CHANGES stream as the component follows it, removes the application's
// model from authz's store and index: its resources and roles, the grants
// of its roles, the exclusions naming them, and its permissions and roles
// from a global role; another application's model stays. A replica loaded
// from the store afterwards has none of it either, and the deletion read
// again (a restart replays the stream) changes nothing.
func TestDeletedAppLosesItsModel(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	db := storetest.Migrated(t, storetest.OpenSQLite(t), sqlstore.Migrate)
	open := func() *commands.Service {
		t.Helper()
		s := commands.New(commands.Deps{Store: sqlstore.New(db), Index: index.New()})
		if err := s.Load(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	svc := open()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	role := func(app, code string, inherits []string, perms ...authz.Permission) string {
		t.Helper()
		r, _, err := svc.CreateRole(ctx, authz.Role{App: app, Code: code, Inherits: inherits, Permissions: perms})
		must(err)
		return r.ID
	}
	grant := func(role, person string) {
		t.Helper()
		_, _, err := svc.CreateGrant(ctx, authz.Grant{Role: role, Subject: authz.Subject{Kind: authz.SubjectUser, ID: person}})
		must(err)
	}
	for _, r := range []authz.Resource{
		{App: "oa", Code: "docs", Kind: authz.KindModule, Operations: []string{"read", "approve"}},
		{App: "oa", Code: "docs.inbox", Parent: "docs", Kind: authz.KindMenu, Operations: []string{"read"}},
		{App: "oa", Code: "docs.inbox.item", Parent: "docs.inbox", Kind: authz.KindEntity, Operations: []string{"read"}},
		{App: "hr", Code: "staff", Kind: authz.KindModule, Operations: []string{"read"}},
	} {
		_, _, err := svc.PutResource(ctx, r)
		must(err)
	}
	clerk := role("oa", "clerk", nil, authz.Permission{App: "oa", Resource: "docs.inbox", Operation: "read"})
	head := role("oa", "head", []string{clerk}, authz.Permission{App: "oa", Resource: "docs", Operation: "approve"})
	hrReader := role("hr", "reader", nil, authz.Permission{App: "hr", Resource: "staff", Operation: "read"})
	global := role("", "auditor", []string{head, hrReader}, authz.Permission{App: "oa", Resource: "docs", Operation: "read"},
		authz.Permission{App: "hr", Resource: "staff", Operation: "read"})
	payroll := role("hr", "payroll", nil, authz.Permission{App: "hr", Resource: "staff", Operation: "read"})
	_, _, err := svc.CreateExclusion(ctx, authz.Exclusion{RoleA: clerk, RoleB: payroll})
	must(err)
	grant(clerk, "ann")
	grant(head, "bob")
	grant(hrReader, "bob")
	grant(global, "cat")

	publish := func(subject, entity, op, id string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"entity": entity, "op": op, "id": id, "actor": "user:admin1", "data": map[string]any{}})
		if _, err := js.Publish(ctx, subject, b); err != nil {
			t.Fatal(err)
		}
	}
	publish("uias.changes.identity.app.updated", "app", "updated", "oa")
	publish("uias.changes.identity.app.deleted", "app", "deleted", "oa")

	follow := func() {
		t.Helper()
		loaded := make(chan struct{})
		fctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		var mirrored atomic.Int64
		go func() {
			defer close(done)
			followIdentity(fctx, js, svc.Index(), nil, zap.NewNop(), loaded, &mirrored, func(int64) {}, nil,
				func(ctx context.Context, c identityChange) { forgetApp(ctx, svc, zap.NewNop(), c) })
		}()
		defer func() { stop(); <-done }()
		select {
		case <-loaded:
		case <-ctx.Done():
			t.Fatal("the stream was not read in 30 s")
		}
	}
	follow()

	x := svc.Index()
	if r := x.Resources("oa"); len(r) != 0 {
		t.Fatalf("resources of the deleted application: %v", r)
	}
	if r := x.Roles("oa", false); len(r) != 0 {
		t.Fatalf("roles of the deleted application: %v", r)
	}
	for _, p := range []string{"ann", "bob"} {
		for _, g := range x.Grants(index.GrantFilter{Subject: &authz.Subject{Kind: authz.SubjectUser, ID: p}}) {
			if g.Role == clerk || g.Role == head {
				t.Fatalf("a grant of a deleted application's role: %+v", g)
			}
		}
	}
	if e := x.Exclusions(); len(e) != 0 {
		t.Fatalf("exclusions naming the deleted application's roles: %v", e)
	}
	g, ok := x.Role(global)
	if !ok || !slices.Equal(g.Inherits, []string{hrReader}) || len(g.Permissions) != 1 || g.Permissions[0].App != "hr" {
		t.Fatalf("the global role after the deletion: %+v", g)
	}
	// Another application's model stays.
	if len(x.Resources("hr")) != 1 || len(x.Roles("hr", false)) != 2 {
		t.Fatal("another application's resources went")
	}
	if ok, _, err := svc.Check(ctx, index.Query{Person: "bob", App: "hr", Resource: "staff", Operation: "read"}, 0); err != nil || !ok {
		t.Fatalf("another application's grant: %v %v", ok, err)
	}
	if ok, _, _ := svc.Check(ctx, index.Query{Person: "cat", App: "oa", Resource: "docs", Operation: "read"}, 0); ok {
		t.Fatal("a permission on the deleted application still allowed")
	}

	// The store holds the same: a replica loaded afterwards.
	fresh := open()
	if len(fresh.Index().Resources("oa")) != 0 || len(fresh.Index().Roles("oa", false)) != 0 || len(fresh.Index().Exclusions()) != 0 {
		t.Fatal("the store still holds the deleted application's model")
	}
	// Read again (a restart): nothing more to remove.
	rev := x.Revision()
	follow()
	if x.Revision() != rev {
		t.Fatalf("a replayed deletion moved the revision from %d to %d", rev, x.Revision())
	}
}
