package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/provision/scimsim"
)

// Monolithic, with identity's and authz's real CHANGES events (docs/adr/0044):
// a SCIM subscription with deliver_roles and roles_as=groups gets a Group per
// role of its application, its members the people granted it; a person
// disabled in identity leaves the Group and comes back when enabled; a batch
// of the application's roles goes through REST (POST /v1/sync/batches with
// roles_only) and is refused with an org.
func TestRoleGroupsInAll(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "ann", nil, nil)
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	clerk, _ := authzOA(t, adm, e.adm(), f.appID)

	const token = "scim-token-0123456789"
	users, groups := scimsim.NewResources(), scimsim.NewResources()
	h, err := scimsim.Handler(users, groups, token)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	prov := syncv1.NewSyncProvisioningServiceClient(e.conn)
	sub, err := prov.CreateSubscription(e.adm(), &syncv1.CreateSubscriptionRequest{Subscription: &syncv1.Subscription{
		App: f.appID, Name: "oa scim roles", Selection: &syncv1.Selection{Orgs: []string{e.root}}, Transport: "scim",
		Endpoint: srv.URL + "/scim/v2", Secret: token, Enabled: true, DeliverRoles: true,
		Settings: map[string]string{"roles_as": "groups"}}})
	if err != nil {
		t.Fatal(err)
	}
	state := func() string {
		names := map[string]string{}
		for _, u := range users.All() {
			names[fmt.Sprint(u["id"])] = fmt.Sprint(u["userName"])
		}
		var out []string
		for _, g := range groups.All() {
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
	eventually(t, "the roles' Groups", func() bool { return state() == "role:approver=[] role:clerk=[]" })

	if _, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann in the clerk Group", func() bool { return state() == "role:approver=[] role:clerk=[ann]" })

	setStatus := func(st identityv1.UserStatus) {
		t.Helper()
		if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: f.userID, Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(identityv1.UserStatus_USER_STATUS_DISABLED)
	eventually(t, "ann disabled leaves the Group", func() bool { return state() == "role:approver=[] role:clerk=[]" })
	setStatus(identityv1.UserStatus_USER_STATUS_ACTIVE)
	eventually(t, "ann enabled is back", func() bool { return state() == "role:approver=[] role:clerk=[ann]" })

	bearer := map[string]string{"Authorization": "Bearer " + e.token}
	code, body, _ := e.rest(http.MethodPost, "/v1/sync/batches", bearer, map[string]any{"app": f.appID, "roles_only": true})
	if code != http.StatusOK || fmt.Sprint(body["subscriptions"]) != "["+sub.GetId()+"]" || fmt.Sprint(body["enqueued"]) != "2" {
		t.Fatalf("a batch of the roles over REST: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodPost, "/v1/sync/batches", bearer, map[string]any{"app": f.appID, "roles_only": true, "org": e.root})
	raw, _ := json.Marshal(body)
	if reason, msg := restReason(t, raw); code != http.StatusBadRequest || reason != "SYNC_BAD_BATCH" || !strings.Contains(msg, "org") {
		t.Fatalf("a batch of the roles narrowed by org: %d %s", code, raw)
	}
	eventually(t, "the batch delivered", func() bool {
		st, err := prov.GetProvisioningStatus(e.adm(), &syncv1.GetProvisioningStatusRequest{})
		if err != nil {
			return false
		}
		for _, s := range st.GetSubscriptions() {
			if s.GetId() == sub.GetId() {
				return s.GetPending() == 0
			}
		}
		return false
	})
	if got := state(); got != "role:approver=[] role:clerk=[ann]" {
		t.Fatalf("after the batch of the roles: %s", got)
	}
}
