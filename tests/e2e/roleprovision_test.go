package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/provision/webhook"
)

// Monolithic, with authz's real CHANGES events: a subscription with
// deliver_roles gets its application's roles (created, their permissions
// changed, deleted) and the person a role is granted to, then revoked
// from, with the roles they hold; another application's role never
// reaches it.
func TestRoleProvisioningInAll(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "ann", nil, nil)
	other := e.seed("erp", "bob", nil, nil)
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	clerk, approver := authzOA(t, adm, e.adm(), f.appID)
	if _, err := adm.PutResource(e.adm(), &authzv1.Resource{App: other.appID, Code: "po", Kind: "entity", Operations: []string{"write"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateRole(e.adm(), &authzv1.Role{App: other.appID, Code: "buyer",
		Permissions: []*authzv1.Permission{{App: other.appID, Resource: "po", Operation: "write"}}}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var got []webhook.Body
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b webhook.Body
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &b) != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, b)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	prov := syncv1.NewSyncProvisioningServiceClient(e.conn)
	sub, err := prov.CreateSubscription(e.adm(), &syncv1.CreateSubscriptionRequest{Subscription: &syncv1.Subscription{
		App: f.appID, Name: "oa roles", Selection: &syncv1.Selection{Orgs: []string{e.root}}, Transport: "webhook",
		Endpoint: srv.URL, Secret: "whsec-0123456789abcdef", Enabled: true, DeliverRoles: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !sub.GetDeliverRoles() {
		t.Fatalf("deliver_roles not answered: %v", sub)
	}
	// has reports whether a delivery matches.
	has := func(match func(b webhook.Body) bool) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.ContainsFunc(got, match)
		}
	}
	codes := func(b webhook.Body) string {
		if b.Roles == nil {
			return "-"
		}
		var cs []string
		for _, r := range *b.Roles {
			cs = append(cs, r.Code)
		}
		return strings.Join(cs, ",")
	}
	person := func(id, roles string) func(b webhook.Body) bool {
		return func(b webhook.Body) bool {
			return b.Kind == "identity.user" && b.ObjectID == id && b.Op == "upsert" && codes(b) == roles
		}
	}
	role := func(id, op string, holders ...string) func(b webhook.Body) bool {
		return func(b webhook.Body) bool {
			if b.Kind != "authz.role" || b.ObjectID != id || b.Op != op {
				return false
			}
			return op == "delete" || (b.Members != nil && slices.Equal(*b.Members, holders))
		}
	}
	// the initial batch: the people without roles, the two roles without holders
	eventually(t, "the initial batch", has(role(approver, "upsert")))
	eventually(t, "ann without roles", has(person(f.userID, "")))

	g, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann with the clerk role", has(person(f.userID, "clerk")))
	eventually(t, "the clerk role held by ann", has(role(clerk, "upsert", f.userID)))

	if _, err := adm.UpdateRole(e.adm(), &authzv1.Role{Id: approver, App: f.appID, Code: "approver", Name: "Contract approver",
		Permissions: []*authzv1.Permission{{App: f.appID, Resource: "docs.contract", Operation: "approve"},
			{App: f.appID, Resource: "docs.contract", Operation: "read"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the approver's new permissions", has(func(b webhook.Body) bool {
		var o struct{ Name string }
		_ = json.Unmarshal(b.Object, &o)
		return role(approver, "upsert")(b) && o.Name == "Contract approver" &&
			strings.Contains(string(b.Object), `"docs.contract:read"`)
	}))

	if _, err := adm.RevokeGrant(e.adm(), &authzv1.RevokeGrantRequest{Id: g.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the clerk role without holders", has(role(clerk, "upsert")))
	if _, err := adm.DeleteRole(e.adm(), &authzv1.DeleteRoleRequest{Id: approver}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the approver role deleted", has(role(approver, "delete")))
	mu.Lock()
	defer mu.Unlock()
	last := -1
	for i, b := range got {
		if b.Kind == "identity.user" && b.ObjectID == f.userID {
			last = i
		}
		if b.Kind == "authz.role" && b.ObjectID != clerk && b.ObjectID != approver {
			t.Fatalf("another application's role was delivered: %+v", b)
		}
		if b.Kind == "identity.user" && b.ObjectID == other.userID && codes(b) != "" {
			t.Fatalf("bob carries roles of another application: %s", codes(b))
		}
	}
	if last < 0 || codes(got[last]) != "" {
		t.Fatalf("ann's last delivery carries roles %q after the revocation", codes(got[last]))
	}
}
