package webhook_test

// sec27b proof (roles): removing a person from a group that holds a role
// grant takes the role away in authz and in the projection, but nothing
// tells the business system: the person is not delivered again (roles
// still [clerk] there) and the role's members still list them.
// Run: cp /work/review/sec27b-rolesgroup_test.go services/sync/provision/webhook/zz_sec27b_test.go
//      nice -n 10 go test -count=1 -run TestSec27bGroupLeaveKeepsRole ./services/sync/provision/webhook

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

func TestSec27bGroupLeaveKeepsRole(t *testing.T) {
	env := provtest.New(t, provision.Options{Dial: dial()})
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	env.Start()
	a := env.Subscribe(&provision.Subscription{App: "crm", Name: "crm roles", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.Webhook, Endpoint: srv.URL, Secret: secret})
	step := func(n int) {
		t.Helper()
		env.Wait("delivery "+strconv.Itoa(n)+env.Summary(a.ID), func() bool { return env.Count(a.ID, provision.Delivered) == n })
	}
	roleFixture(env)
	step(6)
	env.Grant("put", "gr2", "r1", "group", "g1") // u2 holds clerk through g1
	step(8)
	got := rc.got()
	if roleCodes(got[6]) != "[clerk]" || members(got[7]) != "[u2]" {
		t.Fatalf("setup: %v %s %s", seen(got), roleCodes(got[6]), members(got[7]))
	}
	env.Change("group", "member_removed", "g1", map[string]any{"user_id": "u2"}) // u2 no longer holds clerk
	step(9)                                                                         // the group itself
	time.Sleep(3 * time.Second)
	got = rc.got()
	t.Logf("after leaving the group: %v", seen(got[8:]))
	var userAgain, roleAgain bool
	for _, b := range got[8:] {
		if b.Kind == provision.KindUser && b.ObjectID == "u2" && roleCodes(b) == "[]" {
			userAgain = true
		}
		if b.Kind == provision.KindRole && b.ObjectID == "r1" && members(b) == "[]" {
			roleAgain = true
		}
	}
	if !userAgain || !roleAgain {
		t.Fatalf("u2 left g1 (losing role clerk) but the business system was not told: person re-delivered %v, role members updated %v (deliveries after: %v)",
			userAgain, roleAgain, seen(got[8:]))
	}
}
