package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goscim "github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/scim"
)

// ---- the business system: a SCIM 2.0 service provider built with
// github.com/elimity-com/scim, storing in memory, checking the bearer token
// and If-Match, and counting what it is asked ----

const token = "scim-token-0123456789"

type handler struct {
	mu      sync.Mutex
	res     map[string]goscim.Resource
	next    int
	creates map[string]int // by externalId
	patches int
	deletes int
	// onCreate, when set, runs after a resource is stored (under no lock)
	onCreate func(r *http.Request, n int)
}

func newHandler() *handler {
	return &handler{res: map[string]goscim.Resource{}, creates: map[string]int{}}
}

func (h *handler) Create(r *http.Request, attrs goscim.ResourceAttributes) (goscim.Resource, error) {
	h.mu.Lock()
	if attrs["userName"] != nil {
		for _, x := range h.res {
			if strings.EqualFold(fmt.Sprint(x.Attributes["userName"]), fmt.Sprint(attrs["userName"])) {
				h.mu.Unlock()
				return goscim.Resource{}, scimerrors.ScimErrorUniqueness
			}
		}
	}
	h.next++
	id := strconv.Itoa(h.next)
	ext, _ := attrs["externalId"].(string)
	delete(attrs, "externalId")
	res := goscim.Resource{ID: id, ExternalID: optional.NewString(ext), Attributes: attrs, Meta: goscim.Meta{Version: `W/"1"`}}
	h.res[id] = res
	h.creates[ext]++
	n := 0
	for _, c := range h.creates {
		n += c
	}
	h.mu.Unlock()
	if h.onCreate != nil {
		h.onCreate(r, n)
	}
	return res, nil
}

func (h *handler) Get(_ *http.Request, id string) (goscim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res, ok := h.res[id]
	if !ok {
		return goscim.Resource{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	return res, nil
}

func (h *handler) GetAll(_ *http.Request, p goscim.ListRequestParams) (goscim.Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	page := goscim.Page{Resources: []goscim.Resource{}}
	for _, res := range h.res {
		if p.FilterValidator != nil && p.FilterValidator.PassesFilter(res.Attributes) != nil {
			continue
		}
		page.Resources = append(page.Resources, res)
	}
	page.TotalResults = len(page.Resources)
	return page, nil
}

func (h *handler) Replace(_ *http.Request, id string, attrs goscim.ResourceAttributes) (goscim.Resource, error) {
	return goscim.Resource{}, scimerrors.ScimError{Status: http.StatusNotImplemented, Detail: "PUT is not used"}
}

// checkVersion answers 412 when If-Match does not name the current version.
func (h *handler) checkVersion(r *http.Request, res goscim.Resource) error {
	if m := r.Header.Get("If-Match"); m != res.Meta.Version {
		return scimerrors.ScimError{Status: http.StatusPreconditionFailed, Detail: "If-Match " + m + " is not " + res.Meta.Version}
	}
	return nil
}

func (h *handler) Delete(r *http.Request, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	res, ok := h.res[id]
	if !ok {
		return scimerrors.ScimErrorResourceNotFound(id)
	}
	if err := h.checkVersion(r, res); err != nil {
		return err
	}
	delete(h.res, id)
	h.deletes++
	return nil
}

func (h *handler) Patch(r *http.Request, id string, ops []goscim.PatchOperation) (goscim.Resource, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	res, ok := h.res[id]
	if !ok {
		return goscim.Resource{}, scimerrors.ScimErrorResourceNotFound(id)
	}
	if err := h.checkVersion(r, res); err != nil {
		return goscim.Resource{}, err
	}
	for _, op := range ops {
		if op.Op != "replace" || op.Path != nil {
			return goscim.Resource{}, scimerrors.ScimErrorBadRequest("only replace without a path is supported here")
		}
		vals, _ := op.Value.(map[string]any)
		for k, v := range vals {
			res.Attributes[k] = v
		}
	}
	v, _ := strconv.Atoi(strings.Trim(strings.TrimPrefix(res.Meta.Version, "W/"), `"`))
	res.Meta.Version = `W/"` + strconv.Itoa(v+1) + `"`
	h.res[id] = res
	h.patches++
	return res, nil
}

func (h *handler) byExternal(ext string) (goscim.Resource, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.res {
		if r.ExternalID.Value() == ext {
			return r, true
		}
	}
	return goscim.Resource{}, false
}

func (h *handler) stats() (users, creates, patches, deletes int, maxPerID int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.res {
		if r.Attributes["userName"] != nil {
			users++
		}
	}
	for _, c := range h.creates {
		creates += c
		maxPerID = max(maxPerID, c)
	}
	return users, creates, h.patches, h.deletes, maxPerID
}

// startSCIM serves users and groups under /scim/v2; mw may replace the
// answers (faults).
func startSCIM(t *testing.T, users, groups *handler, mw func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	srv, err := goscim.NewServer(&goscim.ServerArgs{
		ServiceProviderConfig: &goscim.ServiceProviderConfig{},
		ResourceTypes: []goscim.ResourceType{
			{ID: optional.NewString("User"), Name: "User", Endpoint: "/Users", Schema: schema.CoreUserSchema(), Handler: users},
			{ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups", Schema: schema.CoreGroupSchema(), Handler: groups},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"status":"401","detail":"bad token"}`, http.StatusUnauthorized)
			return
		}
		http.StripPrefix("/scim/v2", srv).ServeHTTP(w, r)
	})
	if mw != nil {
		h = mw(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
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

	ann, ok := users.byExternal("u1")
	if !ok || ann.Attributes["userName"] != "ann" || ann.Attributes["displayName"] != "Ann Lee" || ann.Meta.Version != `W/"2"` {
		t.Fatalf("ann at the SCIM server: %+v (deliveries %s)", ann, env.Summary(sub.ID))
	}
	bob, _ := users.byExternal("u2")
	if bob.Attributes["active"] != false {
		t.Fatalf("a disabled person is not inactive: %+v", bob)
	}
	g, ok := groups.byExternal("g1")
	members, _ := g.Attributes["members"].([]any)
	if !ok || g.Attributes["displayName"] != "Deck crew" || len(members) != 1 ||
		members[0].(map[string]any)["value"] != ann.ID {
		t.Fatalf("group at the SCIM server: %+v", g)
	}
	// moved out of the selection: deleted at the SCIM server (with If-Match)
	env.Change("user", "updated", "u1", map[string]any{"org_id": "elsewhere"})
	env.Wait("the delete", func() bool { return env.Count(sub.ID, provision.Delivered) == 8 })
	if _, ok := users.byExternal("u1"); ok {
		t.Fatal("a person who left the selection is still provisioned")
	}
	n, creates, patches, deletes, maxPerID := users.stats()
	if n != 1 || creates != 2 || patches != 2 || deletes != 1 || maxPerID != 1 {
		t.Fatalf("users %d creates %d patches %d deletes %d", n, creates, patches, deletes)
	}
}

// Item 6: a sync process killed in the middle of a batch (one create made
// at the server whose answer never came back) resumes without losing or
// doubling anything: counted at the SCIM server.
func TestKilledMidBatchResumesWithoutLossOrDouble(t *testing.T) {
	const people = 60
	users, groups := newHandler(), newHandler()
	killAt := make(chan struct{})
	var once sync.Once
	users.onCreate = func(r *http.Request, n int) {
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
	sub := subscribe(env, srv.URL, provision.Batch)
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	if _, n, _, err := svc.StartBatch(context.Background(), "hr", "", provision.Filter{}); err != nil || n != people+1 {
		t.Fatalf("batch %d %v", n, err)
	}
	<-killAt
	env.Stop() // killed mid-batch, a create in flight
	if d := env.Count(sub.ID, provision.Delivered); d >= people {
		t.Fatalf("the batch was not stopped in the middle (%d delivered)", d)
	}
	env.Start() // the restarted process
	env.Wait("the rest of the batch", func() bool { return env.Count(sub.ID, provision.Delivered) == people+1 })
	n, creates, _, _, maxPerID := users.stats()
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
	if _, ok := users.byExternal("u1"); !ok {
		t.Fatal("not provisioned after the faults")
	}
}
