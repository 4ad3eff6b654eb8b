package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// roleGroupState describes the Groups at a SCIM server whose displayName
// starts with prefix as "displayName=[userName,...]" sorted, the members
// by their userName.
func roleGroupState(users, groups *handler, prefix string) string {
	names := map[string]string{}
	for _, u := range users.All() {
		names[fmt.Sprint(u["id"])] = fmt.Sprint(u["userName"])
	}
	var out []string
	for _, g := range groups.All() {
		if !strings.HasPrefix(fmt.Sprint(g["displayName"]), prefix) {
			continue
		}
		var ms []string
		list, _ := g["members"].([]any)
		for _, m := range list {
			mm, _ := m.(map[string]any)
			ms = append(ms, names[fmt.Sprint(mm["value"])])
		}
		sort.Strings(ms)
		out = append(out, fmt.Sprintf("%v=[%s]", g["displayName"], strings.Join(ms, ",")))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func reasonOf(err error) string {
	if e, ok := apierr.As(err); ok {
		return e.Reason
	}
	return ""
}

// settled reports whether no delivery of sub is waiting.
func settled(env *provtest.Env, sub string) bool {
	return env.Count(sub, provision.Pending) == 0
}

// roleGroupsFixture: o1 (selected) with o2 below it and o3 outside; ann in
// o1, bob and cid in o2; cid in group g1; roles of hr (clerk, boss), of
// erp (buyer) and a global one (auditor).
func roleGroupsFixture(env *provtest.Env) {
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Change("org", "created", "o2", map[string]any{"code": "desk", "name": "Desk", "parent_id": "o1"})
	env.Change("org", "created", "o3", map[string]any{"code": "other", "name": "Other", "parent_id": ""})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o2", "status": 1})
	env.Change("user", "created", "u3", map[string]any{"login_name": "cid", "display_name": "Cid", "org_id": "o2", "status": 1})
	env.Change("group", "created", "g1", map[string]any{"code": "night", "name": "Night shift", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u3"})
	env.Role("put", "r1", "hr", "clerk", "HR clerk", "leave:approve")
	env.Role("put", "r4", "hr", "boss", "Head of desk", "leave:decide")
	env.Role("put", "r2", "erp", "buyer", "Buyer", "po:write")
	env.Role("put", "r3", "", "auditor", "Auditor")
}

// TestRoleGroupsAtTheSCIMServer: with deliver_roles and roles_as=groups, each
// role of the application is a SCIM Group "role:<code>" whose members are the
// selected people holding it: granted to them, to their group or to an org
// above them, within the grant's validity window; a window starting or
// ending, a person disabled and enabled again, a person leaving the
// selected org, a revocation, a rename and a removal change the Group. The
// Users carry no roles attribute; another application's roles and global
// roles make no Group; a subscription without deliver_roles at another
// SCIM server gets no Group at all. On SQLite, and on PostgreSQL when
// UIAS_TEST_PG_DSN is set.
func TestRoleGroupsAtTheSCIMServer(t *testing.T) {
	for name, db := range pstoretest.DBs(t) {
		t.Run(name, func(t *testing.T) { roleGroupsAtTheSCIMServer(t, db) })
	}
}

func roleGroupsAtTheSCIMServer(t *testing.T, db *store.DB) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	users, groups := newHandler(), newHandler()
	srv := startSCIM(t, users, groups, nil)
	users2, groups2 := newHandler(), newHandler()
	srv2 := startSCIM(t, users2, groups2, nil)
	env := provtest.NewOn(t, db, provision.Options{Dial: dial(), Now: clock})
	env.Start()
	sel := provision.Selection{Orgs: []string{"o1"}}
	sub := env.Subscribe(&provision.Subscription{App: "hr", Name: "HR", Selection: sel, DeliverRoles: true,
		Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token,
		Settings: map[string]string{provision.SettingRolesAs: provision.RolesAsGroups}})
	plain := env.Subscribe(&provision.Subscription{App: "hr", Name: "HR no roles", Selection: sel,
		Transport: provision.SCIM, Endpoint: srv2.URL + "/scim/v2", Secret: token})
	roleGroupsFixture(env)
	start := time.Now()
	env.Grant("put", "gr1", "r1", "user", "u1")
	env.Grant("put", "gr2", "r1", "group", "g1")
	env.Grant("put", "gr3", "r4", "org", "o2")
	env.Grant("put", "gr4", "r2", "user", "u1")
	env.Grant("put", "gr5", "r3", "user", "u1")
	env.GrantDuring("gr6", "r4", "user", "u1", start.Add(time.Hour), start.Add(2*time.Hour))
	expect := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		env.Wait(what+": "+want, func() bool {
			got := roleGroupState(users, groups, "role:")
			if time.Now().After(deadline) {
				t.Fatalf("%s: the SCIM server holds %q, want %q%s", what, got, want, env.Summary(sub.ID))
			}
			return settled(env, sub.ID) && got == want
		})
	}
	expect("grants to a person, a group and an org; a window not started",
		"role:boss=[bob,cid] role:clerk=[ann,cid]")
	ann, _ := users.ByExternal("u1")
	if _, ok := ann.Attributes["roles"]; ok {
		t.Fatalf("with roles_as=groups a User carries a roles attribute: %v", ann.Attributes["roles"])
	}
	clerk, ok := groups.ByExternal("r1")
	if !ok {
		t.Fatal("the clerk Group has not the role's id as externalId")
	}

	offset.Store(int64(time.Hour + time.Second))
	expect("ann's window starts", "role:boss=[ann,bob,cid] role:clerk=[ann,cid]")
	offset.Store(int64(2*time.Hour + time.Second))
	expect("ann's window ends", "role:boss=[bob,cid] role:clerk=[ann,cid]")

	env.Change("user", "status_changed", "u2", map[string]any{"status": 2})
	expect("bob disabled", "role:boss=[cid] role:clerk=[ann,cid]")
	if bob, _ := users.ByExternal("u2"); bob.Attributes["active"] != false {
		t.Fatalf("bob disabled is active at the SCIM server: %v", bob.Attributes["active"])
	}
	env.Change("user", "status_changed", "u2", map[string]any{"status": 1})
	expect("bob enabled again", "role:boss=[bob,cid] role:clerk=[ann,cid]")

	env.Change("user", "updated", "u3", map[string]any{"org_id": "o3"})
	expect("cid left the selected org", "role:boss=[bob] role:clerk=[ann]")
	if _, ok := users.ByExternal("u3"); ok {
		t.Fatal("cid is still a User after leaving the selection")
	}

	env.Grant("delete", "gr1", "", "", "")
	expect("ann's grant revoked", "role:boss=[bob] role:clerk=[]")

	env.Role("put", "r1", "hr", "teller", "HR teller", "leave:approve")
	expect("clerk renamed teller", "role:boss=[bob] role:teller=[]")
	if g, _ := groups.ByExternal("r1"); g.ID != clerk.ID {
		t.Fatalf("the renamed role is Group %s, was %s: a second Group was made", g.ID, clerk.ID)
	}

	env.Grant("delete", "gr3", "", "", "")
	env.Grant("delete", "gr6", "", "", "")
	env.Role("delete", "r4", "", "", "")
	expect("boss revoked, then removed", "role:teller=[]")

	if got := roleGroupState(users2, groups2, "role:"); got != "" {
		t.Fatalf("a subscription without deliver_roles got Groups: %s", got)
	}
	for _, u := range users2.All() {
		if _, ok := u["roles"]; ok {
			t.Fatalf("a subscription without deliver_roles got roles on %v", u["userName"])
		}
	}
	for _, d := range env.Deliveries(plain.ID) {
		if d.Kind == provision.KindRole {
			t.Fatalf("a subscription without deliver_roles was given a role: %+v", d)
		}
	}
}

// TestRoleGroupRefusedAndRevokedWhileDown: a SCIM server that refuses the
// roles' Groups gets them retried, then dead-lettered like people's
// deliveries (the people and the other groups still arrive); a grant
// revoked while the server is down is tried, retried and, once the server
// is back and the dead letters are put back in the queue (uias ctl sync
// retry), reaches it: each role's delivery carries its holders at the
// time it is made, so the Groups end as UIAS has them.
func TestRoleGroupRefusedAndRevokedWhileDown(t *testing.T) {
	users, groups := newHandler(), newHandler()
	var mode atomic.Value
	mode.Store("refuse roles")
	srv := startSCIM(t, users, groups, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			switch {
			case mode.Load() == "down":
				http.Error(w, `{"status":"503","detail":"maintenance"}`, http.StatusServiceUnavailable)
			case mode.Load() == "refuse roles" && strings.Contains(r.URL.Path, "/Groups") &&
				strings.Contains(string(body), `"displayName":"hr-`):
				http.Error(w, `{"status":"400","detail":"group quota reached"}`, http.StatusBadRequest)
			default:
				next.ServeHTTP(w, r)
			}
		})
	})
	env := provtest.New(t, provision.Options{Dial: dial(), MaxAttempts: 3})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "hr", Name: "HR", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token,
		Settings: map[string]string{provision.SettingRolesAs: provision.RolesAsGroups, provision.SettingRoleGroupPrefix: "hr-"}})
	roleGroupsFixture(env)
	env.Grant("put", "gr1", "r1", "user", "u1")
	env.Grant("put", "gr3", "r4", "org", "o2")
	// r1 and r4 created, then each again with the grants: four role
	// deliveries, each refused three times
	env.Wait("the roles dead-lettered"+env.Summary(sub.ID), func() bool {
		return settled(env, sub.ID) && env.Count(sub.ID, provision.Dead) == 4
	})
	for _, d := range env.Deliveries(sub.ID) {
		switch {
		case d.Kind == provision.KindRole && (d.Status != provision.Dead || !strings.Contains(d.LastError, "group quota reached")):
			t.Errorf("role delivery %s %s: %s %q, want dead with the server's refusal", d.ObjectID, d.Op, d.Status, d.LastError)
		case d.Kind == provision.KindRole && d.Attempts != 3:
			t.Errorf("role delivery %s %s: %d attempts, want 3 (max_attempts)", d.ObjectID, d.Op, d.Attempts)
		case d.Kind != provision.KindRole && d.Status != provision.Delivered:
			t.Errorf("%s %s not delivered while the roles were refused: %s %q", d.Kind, d.ObjectID, d.Status, d.LastError)
		}
	}
	if got := roleGroupState(users, groups, ""); got != "Night shift=[cid]" {
		t.Fatalf("Groups written while the roles were refused: %s", got)
	}

	mode.Store("down")
	revoked := env.Grant("delete", "gr1", "", "", "") // ann loses clerk while the server is down
	env.Wait("the revocation tried while down"+env.Summary(sub.ID), func() bool {
		for _, d := range env.Deliveries(sub.ID) {
			if d.EventID == revoked && d.Kind == provision.KindRole && d.Attempts > 0 &&
				strings.Contains(d.LastError, "maintenance") {
				return true
			}
		}
		return false
	})
	mode.Store("ok")
	env.Wait("the queue run"+env.Summary(sub.ID), func() bool { return settled(env, sub.ID) })
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	if n, err := svc.Retry(context.Background(), provision.DeliveryFilter{Subscription: sub.ID}); err != nil || n == 0 {
		t.Fatalf("retry of the dead letters: %d, %v", n, err)
	}
	env.Wait("the retried roles"+env.Summary(sub.ID), func() bool {
		return settled(env, sub.ID) && env.Count(sub.ID, provision.Dead) == 0 &&
			roleGroupState(users, groups, "") == "Night shift=[cid] hr-boss=[bob,cid] hr-clerk=[]"
	})
}

// TestRolesAsSetting: roles_as takes attribute or groups (SCIM only),
// role_group_prefix goes with groups; neither changes while deliver_roles
// is on (the roles delivered the old way would stay behind).
func TestRolesAsSetting(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	svc := &provision.Service{Store: env.Store}
	ctx := context.Background()
	mk := func(settings map[string]string, roles bool) *provision.Subscription {
		return &provision.Subscription{App: "hr", Name: "HR", Selection: provision.Selection{Orgs: []string{"o1"}}, Enabled: true,
			DeliverRoles: roles, Transport: provision.SCIM, Endpoint: "https://hr.example.com/scim/v2", Secret: token, Settings: settings}
	}
	for _, c := range []struct {
		settings map[string]string
		field    string
	}{
		{map[string]string{"roles_as": "entitlements"}, "settings.roles_as"},
		{map[string]string{"role_group_prefix": "x-"}, "settings.role_group_prefix"},
		{map[string]string{"roles_as": "groups", "role_group_prefix": " x"}, "settings.role_group_prefix"},
		{map[string]string{"roles_as": "groups", "role_group_prefix": ""}, "settings.role_group_prefix"}, // review sec31c M2
		{map[string]string{"roles_as": "groups", "role_group_prefix": strings.Repeat("p", 65)}, "settings.role_group_prefix"},
	} {
		_, err := svc.Create(ctx, mk(c.settings, true))
		if reasonOf(err) != provision.ReasonBadSubscription || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%v: %v, want %s refused", c.settings, err, c.field)
		}
	}
	sub, err := svc.Create(ctx, mk(map[string]string{"roles_as": "groups", "role_group_prefix": "crm-"}, true))
	if err != nil {
		t.Fatal(err)
	}
	edit := *sub
	edit.Settings = map[string]string{"roles_as": "attribute"}
	if _, err := svc.Update(ctx, &edit); reasonOf(err) != provision.ReasonBadSubscription ||
		!strings.Contains(err.Error(), "turn deliver_roles off first") {
		t.Fatalf("roles_as changed while deliver_roles is on: %v", err)
	}
	edit.DeliverRoles = false
	if _, err := svc.Update(ctx, &edit); reasonOf(err) != provision.ReasonBadSubscription {
		t.Fatalf("roles_as changed in the edit turning deliver_roles off (its withdrawal goes out with the new settings): %v", err)
	}
	edit.Settings = sub.Settings
	off, err := svc.Update(ctx, &edit)
	if err != nil {
		t.Fatal(err)
	}
	on := *off
	on.DeliverRoles, on.Settings = true, map[string]string{}
	if _, err := svc.Update(ctx, &on); err != nil {
		t.Fatalf("roles_as changed while turning deliver_roles on: %v", err)
	}
}

// TestDocumentedRoleGroup: the role's Group documented in docs/integrators.md
// ("role-scim-group") is what the transport posts: the same fields, name
// and externalId, its member the SCIM id of the person who holds it.
func TestDocumentedRoleGroup(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- role-scim-group:begin -->")
	section, _, ok2 := strings.Cut(rest, "<!-- role-scim-group:end -->")
	_, block, ok3 := strings.Cut(section, "```json")
	block, _, _ = strings.Cut(block, "```")
	var want map[string]any
	if !ok || !ok2 || !ok3 || json.Unmarshal([]byte(block), &want) != nil {
		t.Fatalf("docs/integrators.md has no role-scim-group example that is JSON:\n%s", section)
	}
	users, groups := newHandler(), newHandler()
	var mu sync.Mutex
	var posted []map[string]any
	srv := startSCIM(t, users, groups, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Groups") {
				var m map[string]any
				_ = json.Unmarshal(body, &m)
				mu.Lock()
				posted = append(posted, m)
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token,
		Settings: map[string]string{provision.SettingRolesAs: provision.RolesAsGroups}})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1", "status": 1})
	env.Grant("put", "gr1", "r1", "user", "u1")
	env.Role("put", "r1", "crm", "clerk", "Clerk", "orders:read")
	env.Wait("the role's Group"+env.Summary(sub.ID), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posted) == 1 && settled(env, sub.ID)
	})
	ann, _ := users.ByExternal("u1")
	mu.Lock()
	got := posted[0]
	mu.Unlock()
	wantKeys, gotKeys := slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))
	if !slices.Equal(wantKeys, gotKeys) {
		t.Fatalf("documented fields %v, posted %v", wantKeys, gotKeys)
	}
	for _, k := range []string{"schemas", "externalId", "displayName"} {
		if fmt.Sprint(want[k]) != fmt.Sprint(got[k]) {
			t.Errorf("%s: documented %v, posted %v", k, want[k], got[k])
		}
	}
	if fmt.Sprint(got["members"]) != "[map[value:"+ann.ID+"]]" {
		t.Errorf("members posted %v, want ann's SCIM id %s", got["members"], ann.ID)
	}
}
