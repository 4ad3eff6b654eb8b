package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/webhook"
)

const secret = "whsec-0123456789abcdef"

// receiver is a business system's webhook endpoint that checks signatures.
type receiver struct {
	mu     sync.Mutex
	bodies []webhook.Body
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if crypto.VerifyWebhook([]byte(secret), r.Header, body, time.Now(), 0) != nil {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var b webhook.Body
	if err := json.Unmarshal(body, &b); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	rc.bodies = append(rc.bodies, b)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got() []webhook.Body {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Body(nil), rc.bodies...)
}

func dial() map[string]provision.Dialer {
	return map[string]provision.Dialer{provision.Webhook: webhook.New}
}

func TestImmediateDeliversSelectionChangesSigned(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "hr", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})

	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Change("org", "created", "o2", map[string]any{"code": "x", "name": "Elsewhere", "parent_id": ""})
	env.Change("org", "created", "o11", map[string]any{"code": "sub", "name": "Sub", "parent_id": "o1"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o11", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o2", "status": 1})
	env.Change("user", "updated", "u1", map[string]any{"display_name": "Ann Lee"})
	env.Change("user", "updated", "u1", map[string]any{"org_id": "o2"}) // leaves the selection

	env.Wait("5 deliveries", func() bool { return env.Count(sub.ID, provision.Delivered) == 5 })
	got := rc.got()
	var seen []string
	for _, b := range got {
		seen = append(seen, b.Kind+" "+b.ObjectID+" "+b.Op)
	}
	want := "identity.org o1 upsert,identity.org o11 upsert,identity.user u1 upsert,identity.user u1 upsert,identity.user u1 delete"
	if strings.Join(seen, ",") != want {
		t.Fatalf("delivered %v, want %s%s", seen, want, env.Summary(sub.ID))
	}
	var upd map[string]any
	_ = json.Unmarshal(got[3].Object, &upd)
	if upd["display_name"] != "Ann Lee" || upd["login_name"] != "ann" {
		t.Fatalf("update carries the object's state: %s", got[3].Object)
	}
	if got[4].Object != nil {
		t.Fatalf("a delete carries no object: %s", got[4].Object)
	}
	if rc.bad != 0 {
		t.Fatalf("%d deliveries failed the signature check", rc.bad)
	}
	for _, d := range env.Deliveries(sub.ID) {
		if d.Attempts != 1 || d.DeliveredAt.IsZero() || d.EventID == "" {
			t.Fatalf("delivery record %+v", d)
		}
	}
}

func TestLinkedGroupAndRoleSelections(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	linked := env.Subscribe(&provision.Subscription{App: "app9", Name: "linked", Selection: provision.Selection{Linked: true},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	byGroup := env.Subscribe(&provision.Subscription{App: "app8", Name: "group", Selection: provision.Selection{Groups: []string{"g1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	byRole := env.Subscribe(&provision.Subscription{App: "app7", Name: "role", Selection: provision.Selection{Roles: []string{"clerk"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})

	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "org_id": "o1"})
	env.Change("link", "created", "l1", map[string]any{"user_id": "u1", "app_id": "app9", "app_account_id": "A1"})
	env.Change("link", "created", "l2", map[string]any{"user_id": "u2", "app_id": "other", "app_account_id": "B1"})
	env.Change("group", "created", "g1", map[string]any{"code": "g1", "name": "Group 1", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u2"})
	env.Grant("put", "gr1", "clerk", "user", "u1")
	env.Grant("delete", "gr1", "", "", "")
	env.Change("link", "deleted", "l1", map[string]any{"user_id": "u1", "app_id": "app9"})

	ops := func(sub string) string {
		var s []string
		for _, d := range env.Deliveries(sub) {
			s = append(s, d.Kind[len("identity."):]+" "+d.ObjectID+" "+d.Op)
		}
		return strings.Join(s, ",")
	}
	env.Wait("every delivery"+env.Summary(linked.ID)+env.Summary(byGroup.ID)+env.Summary(byRole.ID), func() bool {
		return env.Count(linked.ID, provision.Delivered) == 2 && env.Count(byGroup.ID, provision.Delivered) == 3 &&
			env.Count(byRole.ID, provision.Delivered) == 2
	})
	if got := ops(linked.ID); got != "user u1 upsert,user u1 delete" {
		t.Errorf("linked: %s", got)
	}
	if got := ops(byGroup.ID); got != "group g1 upsert,user u2 upsert,group g1 upsert" {
		t.Errorf("group: %s", got)
	}
	if got := ops(byRole.ID); got != "user u1 upsert,user u1 delete" {
		t.Errorf("role: %s", got)
	}
}

// An edit of a subscription's selection is delivered at once: what came
// into it is upserted, a person who left it is disabled (on_leave=disable:
// op "disable" with the person's state), an org that left it deleted.
func TestSelectionEditDeliversWhatCameAndWent(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "hr", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret,
		Settings: map[string]string{provision.SettingOnLeave: provision.LeaveDisable}})
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("org", "created", "o2", map[string]any{"code": "yard"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "org_id": "o2", "status": 1})
	env.Change("user", "created", "u3", map[string]any{"login_name": "cy", "org_id": "o2", "status": 1})
	env.Wait("o1 and ann", func() bool { return env.Count(sub.ID, provision.Delivered) == 2 })

	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	edit := func(orgs ...string) {
		t.Helper()
		s, err := env.Store.GetSubscription(context.Background(), sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.Selection.Orgs, s.Secret = orgs, ""
		if _, err := svc.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	edit("o2")
	env.Wait("the edit delivered", func() bool { return env.Count(sub.ID, provision.Delivered) == 7 })
	got := rc.got()[2:]
	var seen []string
	for _, b := range got {
		seen = append(seen, b.Kind+" "+b.ObjectID+" "+b.Op)
	}
	// orgs, then people, then groups; in id order
	want := "identity.org o1 delete,identity.org o2 upsert,identity.user u1 disable,identity.user u2 upsert,identity.user u3 upsert"
	if strings.Join(seen, ",") != want {
		t.Fatalf("delivered %v, want %s%s", seen, want, env.Summary(sub.ID))
	}
	var ann map[string]any
	if err := json.Unmarshal(got[2].Object, &ann); err != nil || ann["login_name"] != "ann" {
		t.Fatalf("a disable carries the person's state: %s", got[2].Object)
	}
	for _, b := range got {
		if b.BatchID == "" || b.EventID != "edit:"+b.BatchID {
			t.Fatalf("an edit's delivery names its batch: %+v", b)
		}
	}
	// the same selection again (in another order): nothing is delivered
	edit("o2", "o2")
	// later changes follow the new selection
	env.Change("user", "updated", "u1", map[string]any{"org_id": "o2"})
	env.Wait("ann back", func() bool { return env.Count(sub.ID, provision.Delivered) == 8 })
	if b := rc.got()[7]; b.ObjectID != "u1" || b.Op != provision.OpUpsert {
		t.Fatalf("after the edit: %+v", b)
	}
	if n := len(env.Deliveries(sub.ID)); n != 8 {
		t.Fatalf("%d deliveries, want 8: %s", n, env.Summary(sub.ID))
	}
	if rc.bad != 0 {
		t.Fatalf("%d deliveries failed the signature check", rc.bad)
	}
}

// A group's delivery always says who is in it ("members": [] once the last
// one left: a receiver applying the state drops them), and a person's
// object holds the person's fields only: no fingerprint positions or
// qualities, nothing of how a password change came about.
func TestGroupMembersAndPersonFields(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "app1", Name: "all", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ", "parent_id": ""})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1", "status": 1})
	env.Change("group", "created", "g1", map[string]any{"code": "deck", "name": "Deck", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u1"})
	env.Change("group", "member_removed", "g1", map[string]any{"user_id": "u1"})
	env.Change("user", "finger_enrolled", "u1", map[string]any{"position": 2, "quality": 80, "format": "ISO/IEC 19794-2:2005"})
	env.Change("user", "password_changed", "u1", map[string]any{"must_change_password": true, "keep_session": "s-1"})
	env.Wait("the deliveries"+env.Summary(sub.ID), func() bool {
		got := rc.got()
		return len(got) > 0 && got[len(got)-1].Kind == "identity.user" && strings.Contains(string(got[len(got)-1].Object), "must_change")
	})
	var groups [][]string
	for _, b := range rc.got() {
		switch b.Kind {
		case "identity.group":
			if b.Members == nil {
				t.Fatalf("group delivery without members: %+v", b)
			}
			groups = append(groups, *b.Members)
		case "identity.user":
			var o map[string]any
			_ = json.Unmarshal(b.Object, &o)
			for _, k := range []string{"position", "quality", "format", "keep_session"} {
				if _, ok := o[k]; ok {
					t.Fatalf("person object carries %q: %s", k, b.Object)
				}
			}
		case "identity.org":
			if b.Members != nil {
				t.Fatalf("members on an org: %+v", b)
			}
		}
	}
	if len(groups) < 2 || len(groups[len(groups)-1]) != 0 {
		t.Fatalf("group deliveries' members: %v, want the last one empty", groups)
	}
}
