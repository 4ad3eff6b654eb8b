package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/scim"
)

const token = "scim-token-0123456789"

type handler = provtest.SCIMResources

func newHandler() *handler { return provtest.NewSCIMResources() }

func startSCIM(t *testing.T, users, groups *handler, mw func(http.Handler) http.Handler) *httptest.Server {
	return provtest.StartSCIM(t, users, groups, token, mw)
}

func dial() map[string]provision.Dialer { return map[string]provision.Dialer{provision.SCIM: scim.New} }

func subscribe(env *provtest.Env, url string, strategy string) *provision.Subscription {
	return env.Subscribe(&provision.Subscription{App: "hr", Name: "HR", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.SCIM, Endpoint: url + "/scim/v2", Secret: token, Strategy: strategy})
}

func TestUsersAndGroupsCreatedPatchedDeleted(t *testing.T) {
	users, groups := newHandler(), newHandler()
	srv := startSCIM(t, users, groups, nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	sub := subscribe(env, srv.URL, provision.Immediate)
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1", "status": 1,
		"email": "ann@example.test"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o1", "status": 1})
	env.Change("group", "created", "g1", map[string]any{"code": "deck", "name": "Deck crew", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u1"})
	env.Change("user", "updated", "u1", map[string]any{"display_name": "Ann Lee"})
	env.Change("user", "status_changed", "u2", map[string]any{"status": 2})
	env.Wait("7 deliveries", func() bool { return env.Count(sub.ID, provision.Delivered) == 7 })

	ann, ok := users.ByExternal("u1")
	if !ok || ann.Attributes["userName"] != "ann" || ann.Attributes["displayName"] != "Ann Lee" || ann.Meta.Version != `W/"2"` {
		t.Fatalf("ann at the SCIM server: %+v (deliveries %s)", ann, env.Summary(sub.ID))
	}
	bob, _ := users.ByExternal("u2")
	if bob.Attributes["active"] != false {
		t.Fatalf("a disabled person is not inactive: %+v", bob)
	}
	g, ok := groups.ByExternal("g1")
	members, _ := g.Attributes["members"].([]any)
	if !ok || g.Attributes["displayName"] != "Deck crew" || len(members) != 1 ||
		members[0].(map[string]any)["value"] != ann.ID {
		t.Fatalf("group at the SCIM server: %+v", g)
	}
	// moved out of the selection: deleted at the SCIM server (with If-Match),
	// and the group that listed them written again at once
	env.Change("user", "updated", "u1", map[string]any{"org_id": "elsewhere"})
	env.Wait("the delete and the group", func() bool { return env.Count(sub.ID, provision.Delivered) == 9 })
	if _, ok := users.ByExternal("u1"); ok {
		t.Fatal("a person who left the selection is still provisioned")
	}
	if g, _ := groups.ByExternal("g1"); len(g.Attributes["members"].([]any)) != 0 {
		t.Fatalf("the group still lists the person who left: %+v", g)
	}
	n, creates, patches, deletes, maxPerID := users.Stats()
	if n != 1 || creates != 2 || patches != 2 || deletes != 1 || maxPerID != 1 {
		t.Fatalf("users %d creates %d patches %d deletes %d", n, creates, patches, deletes)
	}
}

// Item 6: a sync process killed in the middle of a batch (here the initial
// delivery of a new subscription; one create made
// at the server whose answer never came back) resumes without losing or
// doubling anything: counted at the SCIM server.
func TestKilledMidBatchResumesWithoutLossOrDouble(t *testing.T) {
	const people = 60
	users, groups := newHandler(), newHandler()
	killAt := make(chan struct{})
	var once sync.Once
	users.OnCreate = func(r *http.Request, n int) {
		if n == people/3 {
			// the server stored it; the client never hears back
			once.Do(func() { close(killAt) })
			<-r.Context().Done()
		}
	}
	srv := startSCIM(t, users, groups, nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	for i := range people {
		env.Change("user", "created", fmt.Sprintf("u%03d", i), map[string]any{"login_name": fmt.Sprintf("p%03d", i), "org_id": "o1"})
	}
	env.Wait("the projection", func() bool {
		c, _ := env.Store.Cursor(context.Background())
		return c == people+1
	})
	// the initial delivery of a new subscription is the batch killed here
	sub := subscribe(env, srv.URL, provision.Batch)
	// one read of the deliveries: the batch is already being delivered, so
	// two counts read apart could see a delivery in both states
	ds := env.Deliveries(sub.ID)
	live := 0
	for _, d := range ds {
		if d.Status == provision.Pending || d.Status == provision.Delivered {
			live++
		}
	}
	if sub.InitialBatch == "" || len(ds) != people+1 || live != people+1 {
		t.Fatalf("initial batch %q of %d deliveries, %d pending or delivered (want %d): %s", sub.InitialBatch, len(ds), live, people+1, env.Summary(sub.ID))
	}
	<-killAt
	env.Stop() // killed mid-batch, a create in flight
	if d := env.Count(sub.ID, provision.Delivered); d >= people {
		t.Fatalf("the batch was not stopped in the middle (%d delivered)", d)
	}
	env.Start() // the restarted process
	env.Wait("the rest of the batch", func() bool { return env.Count(sub.ID, provision.Delivered) == people+1 })
	n, creates, _, _, maxPerID := users.Stats()
	if n != people || creates != people || maxPerID != 1 {
		t.Fatalf("at the SCIM server: %d users, %d creates, at most %d per person (want %d, %d, 1)", n, creates, maxPerID, people, people)
	}
}

// Item 6: garbage answers, 500s, a wrong token and a closed connection are
// recorded with a clear last error; the delivery succeeds once the system
// is well again.
func TestFaultsRecordedWithClearErrors(t *testing.T) {
	users, groups := newHandler(), newHandler()
	var mode atomic.Value
	mode.Store("garbage")
	srv := startSCIM(t, users, groups, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch mode.Load() {
			case "garbage":
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>maintenance</html>"))
			case "500":
				http.Error(w, `{"status":"500","detail":"backend down"}`, http.StatusInternalServerError)
			case "close":
				c, _, _ := w.(http.Hijacker).Hijack()
				_ = c.Close()
			case "token":
				r.Header.Set("Authorization", "Bearer wrong")
				next.ServeHTTP(w, r)
			default:
				next.ServeHTTP(w, r)
			}
		})
	})
	env := provtest.New(t, provision.Options{Dial: dial(), MaxAttempts: 1000})
	env.Start()
	sub := subscribe(env, srv.URL, provision.Immediate)
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1"})
	lastErr := func() string {
		for _, d := range env.Deliveries(sub.ID) {
			if d.Kind == provision.KindUser {
				return d.LastError
			}
		}
		return ""
	}
	for _, c := range []struct{ mode, want string }{
		{"garbage", "not a SCIM list response"},
		{"500", "answered HTTP 500: backend down"},
		{"token", "answered HTTP 401"},
		{"close", "EOF"},
	} {
		mode.Store(c.mode)
		env.Wait(c.mode+" recorded", func() bool { return strings.Contains(lastErr(), c.want) })
	}
	mode.Store("ok")
	env.Wait("the delivery", func() bool { return env.Count(sub.ID, provision.Delivered) == 2 })
	if _, ok := users.ByExternal("u1"); !ok {
		t.Fatal("not provisioned after the faults")
	}
}

func counts(h *handler) (users, creates, deletes, maxPerID int) {
	users, creates, _, deletes, maxPerID = h.Stats()
	return users, creates, deletes, maxPerID
}

// A new subscription gets the current selection at once (its initial
// batch), each person created once at the SCIM server; one created while
// no engine runs (or disabled, then enabled) gets it when the engine starts
// (or when it is enabled). The status reports the initial batch.
func TestNewSubscriptionGetsTheCurrentSelection(t *testing.T) {
	const people = 40
	users, groups := newHandler(), newHandler()
	srv := startSCIM(t, users, groups, nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("org", "created", "o2", map[string]any{"code": "other"})
	for i := range people {
		env.Change("user", "created", fmt.Sprintf("u%03d", i), map[string]any{"login_name": fmt.Sprintf("p%03d", i), "org_id": "o1"})
	}
	env.Change("user", "created", "x1", map[string]any{"login_name": "outsider", "org_id": "o2"})
	env.Change("group", "created", "g1", map[string]any{"code": "crew", "name": "Crew", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u000"})
	env.Wait("the projection", func() bool {
		c, _ := env.Store.Cursor(context.Background())
		return c == people+5
	})
	sub := subscribe(env, srv.URL, provision.Immediate)
	if sub.InitialBatch == "" {
		t.Fatal("no initial batch")
	}
	env.Wait("the initial delivery", func() bool { return env.Count(sub.ID, provision.Delivered) == people+2 }) // o1, people, g1
	if n, creates, _, maxPerID := counts(users); n != people || creates != people || maxPerID != 1 {
		t.Fatalf("at the SCIM server: %d users, %d creates, at most %d per person", n, creates, maxPerID)
	}
	if g, ok := groups.ByExternal("g1"); !ok || len(g.Attributes["members"].([]any)) != 1 {
		t.Fatalf("the group at the SCIM server: %+v", g)
	}
	st, err := (&provision.Service{Store: env.Store}).Status(context.Background())
	if err != nil || len(st) != 1 || st[0].Subscription.InitialBatch != sub.InitialBatch || st[0].InitialPending != 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	// later changes are delivered as before, once
	env.Change("user", "created", "u999", map[string]any{"login_name": "late", "org_id": "o1"})
	env.Wait("the later person", func() bool { n, _, _, _ := counts(users); return n == people+1 })

	// created while the engine is stopped (a process that died before it
	// enqueued the batch): enqueued when the engine starts
	env.Stop()
	users2 := newHandler()
	srv2 := startSCIM(t, users2, newHandler(), nil)
	later, err := (&provision.Service{Store: env.Store}).Create(context.Background(), &provision.Subscription{App: "crm", Name: "CRM",
		Selection: provision.Selection{Orgs: []string{"o1"}}, Transport: provision.SCIM, Endpoint: srv2.URL + "/scim/v2",
		Secret: token, Enabled: true})
	if err != nil || later.InitialBatch != "" {
		t.Fatalf("created without an engine: %+v %v", later, err)
	}
	// a disabled one gets nothing until it is enabled
	users3 := newHandler()
	srv3 := startSCIM(t, users3, newHandler(), nil)
	off, err := (&provision.Service{Store: env.Store}).Create(context.Background(), &provision.Subscription{App: "wiki", Name: "Wiki",
		Selection: provision.Selection{Orgs: []string{"o1"}}, Transport: provision.SCIM, Endpoint: srv3.URL + "/scim/v2",
		Secret: token})
	if err != nil {
		t.Fatal(err)
	}
	env.Start()
	env.Wait("the initial delivery after the start", func() bool { n, _, _, _ := counts(users2); return n == people+1 })
	if n, creates, _, maxPerID := counts(users2); creates != people+1 || maxPerID != 1 {
		t.Fatalf("at the second SCIM server: %d users, %d creates, at most %d per person", n, creates, maxPerID)
	}
	if len(env.Deliveries(off.ID)) != 0 {
		t.Fatal("a disabled subscription got deliveries")
	}
	off.Enabled = true
	off.Secret = ""
	if _, err := (&provision.Service{Store: env.Store, Engine: env.Engine()}).Update(context.Background(), off); err != nil {
		t.Fatal(err)
	}
	env.Wait("the initial delivery once enabled", func() bool { n, _, _, _ := counts(users3); return n == people+1 })
}

// An org moved into (out of) a selected subtree brings (takes) the people
// below it, and a role granted to (revoked from) an org reaches the people
// of its whole subtree: created and deleted at the SCIM server, once each.
func TestOrgMoveAndOrgGrantRedeliverThePeopleBelow(t *testing.T) {
	byOrgUsers, byRoleUsers := newHandler(), newHandler()
	byOrgSrv := startSCIM(t, byOrgUsers, newHandler(), nil)
	byRoleSrv := startSCIM(t, byRoleUsers, newHandler(), nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	byOrg := subscribe(env, byOrgSrv.URL, provision.Immediate)
	byRole := env.Subscribe(&provision.Subscription{App: "mail", Name: "Mail", Selection: provision.Selection{Roles: []string{"r1"}},
		Transport: provision.SCIM, Endpoint: byRoleSrv.URL + "/scim/v2", Secret: token})
	env.Change("org", "created", "o0", map[string]any{"code": "root"})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "parent_id": "o0"})
	env.Change("org", "created", "o2", map[string]any{"code": "yard", "parent_id": "o0"})
	env.Change("org", "created", "o3", map[string]any{"code": "dock", "parent_id": "o2"})
	for i, org := range []string{"o2", "o2", "o3", "o3", "o3"} {
		env.Change("user", "created", fmt.Sprintf("u%d", i), map[string]any{"login_name": fmt.Sprintf("p%d", i), "org_id": org})
	}
	env.Change("user", "created", "u9", map[string]any{"login_name": "stay", "org_id": "o1"})
	settled := func(subs ...*provision.Subscription) bool {
		for _, s := range subs {
			if env.Count(s.ID, provision.Pending) != 0 {
				return false
			}
		}
		return true
	}
	env.Wait("the person in hq", func() bool { n, _, _, _ := counts(byOrgUsers); return n == 1 })

	env.Change("org", "moved", "o2", map[string]any{"parent_id": "o1"})
	env.Wait("the five people below the moved org", func() bool {
		n, _, _, _ := counts(byOrgUsers)
		return n == 6 && settled(byOrg)
	})
	env.Change("org", "moved", "o2", map[string]any{"parent_id": "o0"})
	env.Wait("the five people gone with it", func() bool {
		n, _, _, _ := counts(byOrgUsers)
		return n == 1 && settled(byOrg)
	})
	if _, creates, deletes, maxPerID := counts(byOrgUsers); creates != 6 || deletes != 5 || maxPerID != 1 {
		t.Fatalf("by org: %d creates, %d deletes, at most %d creates per person%s", creates, deletes, maxPerID, env.Summary(byOrg.ID))
	}

	env.Grant("put", "gr1", "r1", "org", "o2")
	env.Wait("the people of the granted subtree", func() bool {
		n, _, _, _ := counts(byRoleUsers)
		return n == 5 && settled(byRole)
	})
	env.Grant("delete", "gr1", "", "", "")
	env.Wait("the people of the revoked subtree gone", func() bool {
		n, _, _, _ := counts(byRoleUsers)
		return n == 0 && settled(byRole)
	})
	if _, creates, deletes, maxPerID := counts(byRoleUsers); creates != 5 || deletes != 5 || maxPerID != 1 {
		t.Fatalf("by role: %d creates, %d deletes, at most %d creates per person%s", creates, deletes, maxPerID, env.Summary(byRole.ID))
	}
}

// An edit of a subscription's selection is delivered at once: the people
// who came into it are created, those who left it deleted (the default)
// or, with on_leave=disable, kept inactive; a group still selected gets
// its members at once. Counted at the SCIM server.
func TestSelectionEditCreatesDeletesOrDisables(t *testing.T) {
	users, groups := newHandler(), newHandler()
	srv := startSCIM(t, users, groups, nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "hr", Name: "HR", Selection: provision.Selection{Orgs: []string{"o1"}, Groups: []string{"g1"}},
		Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token})
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("org", "created", "o2", map[string]any{"code": "yard"})
	env.Change("org", "created", "o3", map[string]any{"code": "dock"})
	for i, org := range []string{"o1", "o1", "o2", "o2", "o3"} {
		env.Change("user", "created", fmt.Sprintf("u%d", i), map[string]any{"login_name": fmt.Sprintf("p%d", i), "org_id": org, "status": 1})
	}
	// g1 (in o3, selected by itself) has a member in o1 and one in o2
	env.Change("group", "created", "g1", map[string]any{"code": "crew", "name": "Crew", "org_id": "o3"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u0"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u2"})
	settled := func() bool { return len(env.Deliveries(sub.ID)) > 0 && env.Count(sub.ID, provision.Pending) == 0 }
	members := func() int {
		g, ok := groups.ByExternal("g1")
		if !ok {
			return -1
		}
		ms, _ := g.Attributes["members"].([]any)
		return len(ms)
	}
	// u2 is a member: in the selection by the group; g1's members u0 and u2
	env.Wait("o1's people and the group", func() bool { n, _, _, _ := counts(users); return settled() && n == 3 && members() == 2 })

	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	edit := func(settings map[string]string, orgs ...string) {
		t.Helper()
		s, err := env.Store.GetSubscription(context.Background(), sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.Selection.Orgs, s.Secret, s.Settings = orgs, "", settings
		if _, err := svc.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	// o1 out, o2 in (default: people who leave are deleted)
	before := len(env.Deliveries(sub.ID))
	edit(nil, "o2")
	env.Wait("the first edit", func() bool { return settled() && len(env.Deliveries(sub.ID)) > before })
	for _, u := range []string{"u2", "u3"} {
		if _, ok := users.ByExternal(u); !ok {
			t.Fatalf("%s came into the selection and is not at the SCIM server%s", u, env.Summary(sub.ID))
		}
	}
	if _, ok := users.ByExternal("u1"); ok {
		t.Fatal("u1 left the selection and is still at the SCIM server")
	}
	if _, ok := users.ByExternal("u0"); !ok {
		t.Fatal("u0 is still selected by the group and was deleted")
	}
	if n, creates, deletes, maxPerID := counts(users); n != 3 || creates != 4 || deletes != 1 || maxPerID != 1 {
		t.Fatalf("after the first edit: %d users, %d creates, %d deletes, at most %d creates per person%s", n, creates, deletes, maxPerID,
			env.Summary(sub.ID))
	}
	// o2 out, o3 in, on_leave=disable: u3 stays, inactive; u4 comes
	before = len(env.Deliveries(sub.ID))
	edit(map[string]string{provision.SettingOnLeave: provision.LeaveDisable}, "o3")
	env.Wait("the second edit", func() bool { return settled() && len(env.Deliveries(sub.ID)) > before })
	u3, ok := users.ByExternal("u3")
	if !ok || u3.Attributes["active"] != false {
		t.Fatalf("u3 left with on_leave=disable: %+v (%v)", u3, ok)
	}
	if u4, ok := users.ByExternal("u4"); !ok || u4.Attributes["active"] != true {
		t.Fatalf("u4 came into the selection: %+v (%v)", u4, ok)
	}
	if u2, ok := users.ByExternal("u2"); !ok || u2.Attributes["active"] != true {
		t.Fatalf("u2 is still selected by the group: %+v (%v)", u2, ok)
	}
	if n, creates, deletes, maxPerID := counts(users); n != 4 || creates != 5 || deletes != 1 || maxPerID != 1 {
		t.Fatalf("after the second edit: %d users, %d creates, %d deletes, at most %d creates per person%s", n, creates, deletes, maxPerID,
			env.Summary(sub.ID))
	}
	if members() != 2 {
		t.Fatalf("the group's members at the SCIM server: %d", members())
	}
	// a later change leaving the selection follows the policy too
	env.Change("user", "updated", "u4", map[string]any{"org_id": "o1"})
	env.Wait("u4 disabled", func() bool {
		u4, ok := users.ByExternal("u4")
		return settled() && ok && u4.Attributes["active"] == false
	})
}

// Two sync processes on one database deliver each delivery once: the
// queue's lease lets one of them deliver it at a time, and when the one
// holding it stops, the other takes over. Counted at the SCIM server: one
// lookup and one create per person.
func TestTwoProcessesDeliverEachDeliveryOnce(t *testing.T) {
	const people = 40
	users, groups := newHandler(), newHandler()
	var gets, posts atomic.Int64
	srv := startSCIM(t, users, groups, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet:
				gets.Add(1)
			case http.MethodPost:
				posts.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	stopOther := env.StartAnother()
	sub := subscribe(env, srv.URL, provision.Immediate)
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	for i := range people {
		if i == people/2 {
			// the first half delivered and recorded; then one process stops
			env.Wait("the first half", func() bool { return env.Count(sub.ID, provision.Delivered) == people/2+1 })
			env.Stop()
		}
		env.Change("user", "created", fmt.Sprintf("u%03d", i), map[string]any{"login_name": fmt.Sprintf("p%03d", i), "org_id": "o1"})
	}
	env.Wait("every person", func() bool { return env.Count(sub.ID, provision.Delivered) == people+1 })
	stopOther()
	if n, creates, _, _, maxPerID := users.Stats(); n != people || creates != people || maxPerID != 1 {
		t.Fatalf("at the SCIM server: %d users, %d creates, at most %d per person", n, creates, maxPerID)
	}
	if g, p := gets.Load(), posts.Load(); g != people || p != people {
		t.Fatalf("%d lookups and %d creates for %d people: a delivery was made twice", g, p, people)
	}
}

// The level-1 centre's disable of a person homed at a level-2 centre (ADR
// 0048) is no change of their status but identity's lock.disabled (at level
// 1) or lock.replica.disabled (at the home): provisioning makes the person
// inactive at the SCIM server all the same, keeps them so while their home
// says active, and level 1's enable makes them active again (review
// sec32c M1). Other lock changes and people provisioning does not hold
// deliver nothing.
func TestLevelOneDisableMakesInactive(t *testing.T) {
	for _, atHome := range []bool{false, true} {
		t.Run(fmt.Sprintf("at home %v", atHome), func(t *testing.T) {
			users, groups := newHandler(), newHandler()
			srv := startSCIM(t, users, groups, nil)
			env := provtest.New(t, provision.Options{Dial: dial()})
			env.Start()
			sub := subscribe(env, srv.URL, provision.Immediate)
			env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ"})
			env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1", "status": 1})
			env.Wait("ann delivered", func() bool { _, ok := users.ByExternal("u1"); return ok })
			base := env.Count(sub.ID, provision.Delivered)
			active := func() any { u, _ := users.ByExternal("u1"); return u.Attributes["active"] }
			if active() != true {
				t.Fatalf("before: %v", active())
			}
			env.CentreDisable("nobody", true, atHome) // not held: nothing
			env.Change("lock", "locked", "u1", map[string]any{"locked_until": "2026-12-07T19:00:00Z"})
			env.CentreDisable("u1", true, atHome)
			env.Wait("the disable delivered", func() bool { return env.Count(sub.ID, provision.Delivered) == base+1 })
			if active() != false {
				t.Fatalf("a person level 1 disabled is active at the SCIM server: %v (%s)", active(), env.Summary(sub.ID))
			}
			// the home's own status says active: level 1's disable holds
			env.Change("user", "status_changed", "u1", map[string]any{"status": 1})
			env.Wait("the home's status delivered", func() bool { return env.Count(sub.ID, provision.Delivered) == base+2 })
			if active() != false {
				t.Fatal("the home's active status lifted level 1's disable")
			}
			env.CentreDisable("u1", false, atHome)
			env.Wait("the enable delivered", func() bool { return env.Count(sub.ID, provision.Delivered) == base+3 })
			if active() != true {
				t.Fatalf("level 1's enable: %v", active())
			}
			if n := env.Count(sub.ID, provision.Delivered); n != base+3 {
				t.Fatalf("deliveries: %d (%s)", n, env.Summary(sub.ID))
			}
		})
	}
}
