package ctl

import (
	"bytes"
	"strings"
	"testing"
	"text/tabwriter"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// A grant's table row says what a unit administrator's grant is over: the
// org subtree, the roles they may hand on, delegable (trial12 D6).
func TestGrantTableScope(t *testing.T) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	grantTable(tw, &authzv1.Grant{Id: "g1", RoleId: "unit_admin", Subject: &authzv1.Subject{Kind: "user", Id: "u1"},
		ScopeOrg: "o7", GrantableRoles: []string{"viewer", "editor"}, Delegable: true})
	grantTable(tw, &authzv1.Grant{Id: "g2", RoleId: "viewer", Subject: &authzv1.Subject{Kind: "org", Id: "o7"}})
	grantTable(tw, &authzv1.Grant{Id: "g3", RoleId: "unit_admin", Subject: &authzv1.Subject{Kind: "user", Id: "u2"},
		ScopeOrg: "o8", GrantableRoles: []string{"viewer"}, Delegable: true, DelegationDepth: 3})
	_ = tw.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "org:o7 grantable:viewer,editor delegable") || !strings.HasSuffix(lines[1], " -") ||
		!strings.HasSuffix(lines[2], "org:o8 grantable:viewer delegable:3") {
		t.Fatalf("grant rows:\n%s", b.String())
	}
}
