package scim_test

import (
	"fmt"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// rolesOf is the roles attribute of a SCIM resource as "value/display/type"
// ("-": none).
func rolesOf(attrs map[string]any) string {
	rs, ok := attrs["roles"].([]any)
	if !ok {
		return "-"
	}
	out := ""
	for _, r := range rs {
		m, _ := r.(map[string]any)
		out += fmt.Sprintf("[%v/%v/%v]", m["value"], m["display"], m["type"])
	}
	return out
}

// With deliver_roles, each User carries the roles of the application the
// person holds in RFC 7643's roles attribute (by a grant to them or to
// their org); a revocation empties it; another application's roles and
// global roles never appear; roles make no SCIM resource of their own.
func TestUserRolesAtTheSCIMServer(t *testing.T) {
	users, groups := newHandler(), newHandler()
	srv := startSCIM(t, users, groups, nil)
	env := provtest.New(t, provision.Options{Dial: dial()})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "hr", Name: "HR", Selection: provision.Selection{Orgs: []string{"o1"}},
		DeliverRoles: true, Transport: provision.SCIM, Endpoint: srv.URL + "/scim/v2", Secret: token})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "HQ"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1", "status": 1})
	env.Role("put", "r1", "hr", "clerk", "HR clerk", "leave:approve")
	env.Role("put", "r2", "erp", "buyer", "Buyer", "po:write")
	env.Role("put", "r3", "", "auditor", "Auditor")
	env.Grant("put", "gr1", "r1", "org", "o1")
	env.Grant("put", "gr2", "r2", "user", "u1")
	env.Grant("put", "gr3", "r3", "user", "u1")
	// o1, u1, r1 (no resource), then gr1: u1 and r1 again
	env.Wait("the grant"+env.Summary(sub.ID), func() bool { return env.Count(sub.ID, provision.Delivered) == 5 })
	ann, ok := users.ByExternal("u1")
	if !ok || rolesOf(ann.Attributes) != "[clerk/HR clerk/hr]" {
		t.Fatalf("ann's roles at the SCIM server: %s (%+v)", rolesOf(ann.Attributes), ann)
	}
	if len(groupIDs(groups)) != 0 {
		t.Fatalf("a role became a SCIM group")
	}
	env.Grant("delete", "gr1", "", "", "")
	env.Wait("the revocation"+env.Summary(sub.ID), func() bool { return env.Count(sub.ID, provision.Delivered) == 7 })
	ann, _ = users.ByExternal("u1")
	if rolesOf(ann.Attributes) != "" {
		t.Fatalf("ann's roles after the revocation: %s", rolesOf(ann.Attributes))
	}
}

func groupIDs(h *handler) []string {
	var out []string
	for _, id := range []string{"r1", "r2", "r3"} {
		if _, ok := h.ByExternal(id); ok {
			out = append(out, id)
		}
	}
	return out
}
