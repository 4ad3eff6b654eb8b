package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/webhook"
)

// seen lists the deliveries a receiver got as "kind id op".
func seen(bs []webhook.Body) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Kind+" "+b.ObjectID+" "+b.Op)
	}
	return out
}

// roleCodes is the codes of the roles a person's delivery carries ("-":
// no roles field).
func roleCodes(b webhook.Body) string {
	if b.Roles == nil {
		return "-"
	}
	var cs []string
	for _, r := range *b.Roles {
		cs = append(cs, r.Code)
	}
	return "[" + strings.Join(cs, ",") + "]"
}

func members(b webhook.Body) string {
	if b.Members == nil {
		return "-"
	}
	return "[" + strings.Join(*b.Members, ",") + "]"
}

// roleFixture is an org with two people and a group, and roles of two
// applications and a global one.
func roleFixture(env *provtest.Env) {
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "org_id": "o1", "status": 1})
	env.Change("group", "created", "g1", map[string]any{"code": "desk", "name": "Desk", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u2"})
	env.Role("put", "r1", "crm", "clerk", "Clerk", "orders:read")
	env.Role("put", "r2", "erp", "buyer", "Buyer", "po:write")
	env.Role("put", "r3", "", "auditor", "Auditor (global)")
}

// A subscription with deliver_roles gets its application's roles and, on
// each person, the roles they hold (granted to them or to their group, an
// org above them): a grant, a revocation, a role's change and its removal
// are delivered; a subscription without it gets nothing new; another
// application's subscription never gets this application's roles.
func TestRolesDeliveredToTheirApplication(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rcA, rcB, rcC := &receiver{}, &receiver{}, &receiver{}
	srvA, srvB, srvC := httptest.NewServer(rcA), httptest.NewServer(rcB), httptest.NewServer(rcC)
	defer srvA.Close()
	defer srvB.Close()
	defer srvC.Close()
	env.Start()
	sel := provision.Selection{Orgs: []string{"o1"}}
	a := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm roles", Selection: sel, DeliverRoles: true,
		Transport: provision.Webhook, Endpoint: srvA.URL, Secret: secret})
	b := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm people", Selection: sel,
		Transport: provision.Webhook, Endpoint: srvB.URL, Secret: secret})
	c := env.Subscribe(&provision.Subscription{App: "erp", Name: "erp roles", Selection: sel, DeliverRoles: true,
		Transport: provision.Webhook, Endpoint: srvC.URL, Secret: secret})

	// each step waits for its deliveries: a delivery carries the state
	// of its object when it is made
	step := func(sub *provision.Subscription, n int) {
		t.Helper()
		env.Wait("delivery "+strconv.Itoa(n)+env.Summary(sub.ID), func() bool { return env.Count(sub.ID, provision.Delivered) == n })
	}
	roleFixture(env)
	step(a, 6)
	step(c, 6)
	env.Grant("put", "gr1", "r1", "user", "u1")
	step(a, 8)
	env.Grant("put", "gr2", "r1", "group", "g1")
	step(a, 10)
	env.Grant("put", "gr3", "r2", "org", "o1")
	env.Grant("put", "gr4", "r3", "user", "u1") // a global role: no application's
	step(c, 9)
	env.Role("put", "r1", "crm", "clerk", "Clerk", "orders:read", "orders:approve") // its permissions changed
	step(a, 11)
	env.Grant("delete", "gr1", "", "", "")
	step(a, 13)
	env.Role("put", "r4", "crm", "temp", "Temporary")
	env.Role("delete", "r4", "", "", "")
	step(a, 15)

	got := rcA.got()
	want := []string{"identity.org o1 upsert", "identity.user u1 upsert", "identity.user u2 upsert", "identity.group g1 upsert",
		"identity.group g1 upsert", "authz.role r1 upsert", // created
		"identity.user u1 upsert", "authz.role r1 upsert", // gr1
		"identity.user u2 upsert", "authz.role r1 upsert", // gr2 (to u2's group)
		"authz.role r1 upsert",                            // its permissions
		"identity.user u1 upsert", "authz.role r1 upsert", // gr1 revoked
		"authz.role r4 upsert", "authz.role r4 delete"}
	if !slices.Equal(seen(got), want) {
		t.Fatalf("crm got %v\nwant %v", seen(got), want)
	}
	for i, w := range map[int]string{1: "[]", 2: "[]", 6: "[clerk]", 8: "[clerk]", 11: "[]"} {
		if roleCodes(got[i]) != w {
			t.Fatalf("delivery %d (%s) carries roles %s, want %s", i, seen(got)[i], roleCodes(got[i]), w)
		}
	}
	for i, w := range map[int]string{5: "[]", 7: "[u1]", 9: "[u1,u2]", 10: "[u1,u2]", 12: "[u2]"} {
		if members(got[i]) != w {
			t.Fatalf("delivery %d (%s) carries members %s, want %s", i, seen(got)[i], members(got[i]), w)
		}
	}
	var role struct {
		App, Code, Name string
		Permissions     []string
	}
	if err := json.Unmarshal(got[10].Object, &role); err != nil {
		t.Fatal(err)
	}
	if role.App != "crm" || role.Code != "clerk" || role.Name != "Clerk" ||
		!slices.Equal(role.Permissions, []string{"orders:read", "orders:approve"}) {
		t.Fatalf("the role's delivery: %s", got[10].Object)
	}
	if got[14].Object != nil || got[14].Members != nil {
		t.Fatalf("a role's removal carries nothing: %+v", got[14])
	}

	// without deliver_roles: no role, no roles on people
	if n := len(env.Deliveries(b.ID)); n != 5 {
		t.Fatalf("a subscription without deliver_roles got %d deliveries, want 5%s", n, env.Summary(b.ID))
	}
	for _, bd := range rcB.got() {
		if bd.Kind == provision.KindRole || bd.Roles != nil {
			t.Fatalf("a subscription without deliver_roles got %s %s roles %s", bd.Kind, bd.ObjectID, roleCodes(bd))
		}
	}
	// another application: its own role only
	gotC := rcC.got()
	wantC := []string{"identity.org o1 upsert", "identity.user u1 upsert", "identity.user u2 upsert", "identity.group g1 upsert",
		"identity.group g1 upsert", "authz.role r2 upsert", "identity.user u1 upsert", "identity.user u2 upsert", "authz.role r2 upsert"}
	if !slices.Equal(seen(gotC), wantC) {
		t.Fatalf("erp got %v\nwant %v", seen(gotC), wantC)
	}
	if roleCodes(gotC[6]) != "[buyer]" || roleCodes(gotC[7]) != "[buyer]" || members(gotC[8]) != "[u1,u2]" {
		t.Fatalf("erp's people and role: %s %s %s", roleCodes(gotC[6]), roleCodes(gotC[7]), members(gotC[8]))
	}

	// a new subscription's initial batch: the roles after the people
	d := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm later", Selection: sel, DeliverRoles: true,
		Transport: provision.Webhook, Endpoint: srvA.URL, Secret: secret})
	env.Wait("the initial batch"+env.Summary(d.ID), func() bool { return env.Count(d.ID, provision.Delivered) == 5 })
	var initial []string
	for _, dl := range env.Deliveries(d.ID) {
		initial = append(initial, dl.Kind+" "+dl.ObjectID)
	}
	if want := "identity.org o1,identity.user u1,identity.user u2,identity.group g1,authz.role r1"; strings.Join(initial, ",") != want {
		t.Fatalf("initial batch %v, want %s", initial, want)
	}

	// turning deliver_roles on for b: its people again, with their roles,
	// then the roles; off again: the roles removed
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	cur, err := env.Store.GetSubscription(context.Background(), b.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur.DeliverRoles, cur.Secret = true, ""
	if _, err := svc.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	env.Wait("the edit's 3 deliveries"+env.Summary(b.ID), func() bool { return env.Count(b.ID, provision.Delivered) == 8 })
	gotB := rcB.got()[5:]
	if w := []string{"identity.user u1 upsert", "identity.user u2 upsert", "authz.role r1 upsert"}; !slices.Equal(seen(gotB), w) {
		t.Fatalf("turned on: %v, want %v", seen(gotB), w)
	}
	if roleCodes(gotB[0]) != "[]" || roleCodes(gotB[1]) != "[clerk]" || members(gotB[2]) != "[u2]" {
		t.Fatalf("turned on: roles %s %s members %s", roleCodes(gotB[0]), roleCodes(gotB[1]), members(gotB[2]))
	}
	cur.DeliverRoles = false
	if _, err := svc.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	env.Wait("the edit's 3 deliveries"+env.Summary(b.ID), func() bool { return env.Count(b.ID, provision.Delivered) == 11 })
	gotB = rcB.got()[8:]
	if w := []string{"identity.user u1 upsert", "identity.user u2 upsert", "authz.role r1 delete"}; !slices.Equal(seen(gotB), w) {
		t.Fatalf("turned off: %v, want %v", seen(gotB), w)
	}
	// withdrawn: the people carry no roles (review sec27b M1), and the
	// edit's deliveries say so in their event id
	if roleCodes(gotB[0]) != "[]" || roleCodes(gotB[1]) != "[]" || !strings.HasSuffix(gotB[0].EventID, ":roles-off") {
		t.Fatalf("turned off: people carry roles %s %s (event %s)", roleCodes(gotB[0]), roleCodes(gotB[1]), gotB[0].EventID)
	}
	if gotB[2].EventID != "edit:"+gotB[2].BatchID {
		t.Fatalf("turned off: the role's event id %s", gotB[2].EventID)
	}
}

// flaky is a receiver that answers 503 to the first fails deliveries of
// roles, and records every delivery id it was sent.
type flaky struct {
	receiver
	mu    sync.Mutex
	fails int
	ids   []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var b webhook.Body
	_ = json.Unmarshal(body, &b)
	f.mu.Lock()
	if b.Kind == provision.KindRole {
		f.ids = append(f.ids, r.Header.Get(webhook.HeaderDelivery))
		if f.fails > 0 {
			f.fails--
			f.mu.Unlock()
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
	}
	f.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	f.receiver.ServeHTTP(w, r)
}

// A role's delivery to a business system that is down is retried with
// the same delivery id (X-Uias-Delivery) and holds the later deliveries;
// a restarted engine delivers nothing twice.
func TestRoleDeliveryRetriedAndNotRepeated(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &flaky{fails: 2}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	s := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1", "status": 1})
	env.Role("put", "r1", "crm", "clerk", "Clerk", "orders:read")
	env.Grant("put", "gr1", "r1", "user", "u1")
	env.Wait("5 deliveries"+env.Summary(s.ID), func() bool { return env.Count(s.ID, provision.Delivered) == 5 })
	ds := env.Deliveries(s.ID)
	if ds[2].Kind != provision.KindRole || ds[2].Attempts != 3 {
		t.Fatalf("the role's first delivery: %+v", ds[2])
	}
	rc.mu.Lock()
	ids := slices.Clone(rc.ids)
	rc.mu.Unlock()
	if len(ids) != 4 || ids[0] != ids[1] || ids[1] != ids[2] || ids[2] == ids[3] || ids[0] == "" {
		t.Fatalf("delivery ids of the role's attempts: %v", ids)
	}
	if w := []string{"identity.org o1 upsert", "identity.user u1 upsert", "authz.role r1 upsert", "identity.user u1 upsert",
		"authz.role r1 upsert"}; !slices.Equal(seen(rc.got()), w) {
		t.Fatalf("order: %v", seen(rc.got()))
	}
	// a restart projects nothing again: the next change is the only new delivery
	env.Stop()
	env.Start()
	env.Role("put", "r1", "crm", "clerk", "Senior clerk", "orders:read")
	env.Wait("the rename's deliveries"+env.Summary(s.ID), func() bool { return env.Count(s.ID, provision.Delivered) == 7 })
	if w := []string{"authz.role r1 upsert", "identity.user u1 upsert"}; !slices.Equal(seen(rc.got()[5:]), w) {
		t.Fatalf("after the restart: %v", seen(rc.got()[5:]))
	}
	if got := rc.got()[6]; (*got.Roles)[0].Name != "Senior clerk" {
		t.Fatalf("the holder carries the role's new name: %+v", *got.Roles)
	}
}

// keysOf is the set of keys of a JSON object, and of the objects it holds
// (as "key.sub"; the first element of an array of objects as "key[].sub").
func keysOf(prefix string, m map[string]any, out map[string]bool) {
	for k, v := range m {
		out[prefix+k] = true
		switch x := v.(type) {
		case map[string]any:
			keysOf(prefix+k+".", x, out)
		case []any:
			if len(x) > 0 {
				if o, ok := x[0].(map[string]any); ok {
					keysOf(prefix+k+"[].", o, out)
				}
			}
		}
	}
}

// The two payloads of docs/integrators.md's roles section (a person with
// their roles, a role with its holders) have exactly the fields of what
// the engine delivers, with the same kind, op and values for the role.
func TestDocumentedRolePayloads(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- role-webhook:begin -->")
	section, _, ok2 := strings.Cut(rest, "<!-- role-webhook:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/integrators.md has no role-webhook examples")
	}
	var examples []map[string]any
	for _, block := range strings.Split(section, "```json")[1:] {
		block, _, _ = strings.Cut(block, "```")
		var m map[string]any
		if err := json.Unmarshal([]byte(block), &m); err != nil {
			t.Fatalf("a documented payload is not JSON: %v\n%s", err, block)
		}
		examples = append(examples, m)
	}
	if len(examples) != 2 {
		t.Fatalf("want 2 documented payloads, got %d", len(examples))
	}

	env := provtest.New(t, provision.Options{Dial: dial()})
	var mu sync.Mutex
	var raw []map[string]any
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		raw = append(raw, m)
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rc.ServeHTTP(w, r)
	}))
	defer srv.Close()
	env.Start()
	s := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Role("put", "r1", "crm", "clerk", "Clerk", "orders:read", "orders:approve")
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1", "status": 1})
	env.Wait("3 deliveries"+env.Summary(s.ID), func() bool { return env.Count(s.ID, provision.Delivered) == 3 })
	env.Grant("put", "gr1", "r1", "user", "u1")
	env.Wait("5 deliveries"+env.Summary(s.ID), func() bool { return env.Count(s.ID, provision.Delivered) == 5 })
	mu.Lock()
	person, role := raw[3], raw[4]
	mu.Unlock()
	for i, pair := range [][2]map[string]any{{examples[0], person}, {examples[1], role}} {
		want, got := map[string]bool{}, map[string]bool{}
		keysOf("", pair[0], want)
		keysOf("", pair[1], got)
		if !maps.Equal(want, got) {
			t.Errorf("documented payload %d has fields %v, the delivery %v", i, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)))
		}
		for _, k := range []string{"kind", "op", "object_id", "app"} {
			if pair[0][k] != pair[1][k] {
				t.Errorf("documented payload %d: %s %v, delivered %v", i, k, pair[0][k], pair[1][k])
			}
		}
	}
	wantRole, _ := json.Marshal(examples[1]["object"])
	gotRole, _ := json.Marshal(role["object"])
	if string(wantRole) != string(gotRole) || fmt.Sprint(examples[1]["members"]) != fmt.Sprint(role["members"]) ||
		fmt.Sprint(examples[0]["roles"]) != fmt.Sprint(person["roles"]) {
		t.Errorf("documented role %s members %v, delivered %s %v", wantRole, examples[1]["members"], gotRole, role["members"])
	}
}

// Batches (on demand, a resync) deliver the roles after the people: the
// whole selection with its roles; narrowed to a role, its holders and the
// role; narrowed to an org, people only.
func TestRoleBatches(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	s := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Strategy: provision.Batch, Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	roleFixture(env)
	env.Role("put", "r5", "crm", "viewer", "Viewer")
	env.Grant("put", "gr1", "r1", "user", "u1")
	env.Grant("put", "gr2", "r5", "group", "g1")
	env.Grant("put", "gr3", "r2", "user", "u2")
	// a batch strategy: the changes enqueue nothing; wait for the
	// projection through a batch narrowed to the last grant's role
	batch := func(f provision.Filter) []string {
		t.Helper()
		before := len(rc.got())
		_, n, err := env.Engine().EnqueueBatch(context.Background(), []*provision.Subscription{s}, f)
		if err != nil {
			t.Fatal(err)
		}
		env.Wait("the batch"+env.Summary(s.ID), func() bool { return len(rc.got()) == before+n })
		return seen(rc.got()[before:])
	}
	env.Wait("the projection of the grants", func() bool {
		return slices.Equal(batch(provision.Filter{Role: "r5"}), []string{"identity.user u2 upsert", "authz.role r5 upsert"})
	})
	all := batch(provision.Filter{})
	if w := []string{"identity.org o1 upsert", "identity.user u1 upsert", "identity.user u2 upsert", "identity.group g1 upsert",
		"authz.role r1 upsert", "authz.role r5 upsert"}; !slices.Equal(all, w) {
		t.Fatalf("whole batch %v, want %v", all, w)
	}
	got := rc.got()
	if u1 := got[len(got)-5]; roleCodes(u1) != "[clerk]" {
		t.Fatalf("u1 in the batch carries %s", roleCodes(u1))
	}
	if u2 := got[len(got)-4]; roleCodes(u2) != "[viewer]" {
		t.Fatalf("u2 in the batch carries %s", roleCodes(u2))
	}
	if byOrg := batch(provision.Filter{Org: "o1"}); slices.ContainsFunc(byOrg, func(s string) bool { return strings.HasPrefix(s, "authz.role") }) {
		t.Fatalf("a batch narrowed to an org delivered roles: %v", byOrg)
	}
	// a batch of the application's roles (docs/adr/0044): the roles with
	// their holders, no person, org or group; narrowed to one role, it
	if roles := batch(provision.Filter{RolesOnly: true}); !slices.Equal(roles, []string{"authz.role r1 upsert", "authz.role r5 upsert"}) {
		t.Fatalf("a batch of the roles delivered %v", roles)
	}
	got = rc.got()
	if r1, r5 := got[len(got)-2], got[len(got)-1]; members(r1) != "[u1]" || members(r5) != "[u2]" {
		t.Fatalf("the roles' holders in a batch of the roles: r1 %s, r5 %s", members(r1), members(r5))
	}
	if one := batch(provision.Filter{RolesOnly: true, Role: "r5"}); !slices.Equal(one, []string{"authz.role r5 upsert"}) {
		t.Fatalf("a batch of one role delivered %v", one)
	}
	if other := batch(provision.Filter{RolesOnly: true, Role: "r2"}); len(other) != 0 {
		t.Fatalf("a batch of another application's role delivered %v", other)
	}
}

// A batch of the roles (StartBatch with RolesOnly) goes to the
// subscriptions of the application that deliver roles only; it is refused
// when none does, and when narrowed by org.
func TestRolesBatchGoesToRoleSubscribers(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	sel := provision.Selection{Orgs: []string{"o1"}}
	withRoles := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm roles", Selection: sel, DeliverRoles: true,
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	plain := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm people", Selection: sel,
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	ctx := context.Background()
	_, _, subs, err := svc.StartBatch(ctx, "crm", "", provision.Filter{RolesOnly: true})
	if err != nil || !slices.Equal(subs, []string{withRoles.ID}) {
		t.Fatalf("a batch of the roles went to %v (%v), want only %s", subs, err, withRoles.ID)
	}
	for _, c := range []struct {
		app, sub string
		f        provision.Filter
		reason   string
	}{
		{"", plain.ID, provision.Filter{RolesOnly: true}, provision.ReasonNoSubscription},
		{"erp", "", provision.Filter{RolesOnly: true}, provision.ReasonNoSubscription},
		{"crm", "", provision.Filter{RolesOnly: true, Org: "o1"}, provision.ReasonBadBatch},
	} {
		_, _, _, err := svc.StartBatch(ctx, c.app, c.sub, c.f)
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Reason != c.reason {
			t.Errorf("batch %+v of %q/%q: %v, want %s", c.f, c.app, c.sub, err, c.reason)
		}
	}
}

// A person disabled in UIAS holds no role at the business system: their
// delivery carries "roles": [] and the roles they hold are delivered
// without them as a member; enabled again, both come back (docs/adr/0044).
// Their grants in authz are untouched.
func TestDisabledPersonHoldsNoRole(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm roles", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	roleFixture(env)
	env.Grant("put", "gr1", "r1", "org", "o1")
	from := 0
	expect := func(what, bobRoles, holders string) {
		t.Helper()
		env.Wait(what+env.Summary(sub.ID), func() bool {
			got := rc.got()[from:]
			person := slices.IndexFunc(got, func(b webhook.Body) bool {
				return b.Kind == provision.KindUser && b.ObjectID == "u2" && roleCodes(b) == bobRoles
			})
			return person >= 0 && slices.ContainsFunc(got[person:], func(b webhook.Body) bool {
				return b.Kind == provision.KindRole && b.ObjectID == "r1" && members(b) == holders
			})
		})
		from = len(rc.got())
	}
	expect("the org's grant", "[clerk]", "[u1,u2]")
	env.Change("user", "status_changed", "u2", map[string]any{"status": 2})
	expect("bob disabled", "[]", "[u1]")
	env.Change("user", "status_changed", "u2", map[string]any{"status": 1})
	expect("bob enabled again", "[clerk]", "[u1,u2]")
}
