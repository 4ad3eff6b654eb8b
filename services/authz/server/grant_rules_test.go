package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// A grant names exactly one of role_id and permission; a direct grant's
// permission names its application, resource and operation. The proto's
// rules refuse the rest (INVALID_ARGUMENT BAD_REQUEST) with a sentence
// naming the fields.
func TestGrantRequestRules(t *testing.T) {
	sub := &authzv1.Subject{Kind: "user", Id: "u1"}
	perm := &authzv1.Permission{App: "oa", Resource: "docs.contract", Operation: "approve"}
	for _, c := range []struct {
		name string
		m    proto.Message
		want string // "" = valid
	}{
		{"role", &authzv1.Grant{RoleId: "r1", Subject: sub}, ""},
		{"permission", &authzv1.Grant{Permission: perm, Subject: sub}, ""},
		{"neither", &authzv1.Grant{Subject: sub}, "request names neither role_id nor permission"},
		{"both", &authzv1.Grant{RoleId: "r1", Permission: perm, Subject: sub}, "request names both role_id and permission"},
		{"no operation", &authzv1.Grant{Permission: &authzv1.Permission{App: "oa", Resource: "docs"}, Subject: sub}, "permission.operation is required"},
		{"bad resource code", &authzv1.Grant{Permission: &authzv1.Permission{App: "oa", Resource: "docs contract", Operation: "read"}, Subject: sub}, "permission.resource"},
		{"list by permission", &authzv1.ListGrantsRequest{Permission: perm}, ""},
		{"list by both", &authzv1.ListGrantsRequest{RoleId: "r1", Permission: perm}, "request names both role_id and permission"},
	} {
		err := grpcx.ValidateRequest(c.m)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		ae, ok := apierr.As(err)
		if !ok || ae.Code != apierr.InvalidArgument || ae.Reason != grpcx.ReasonBadRequest || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%s: want INVALID_ARGUMENT BAD_REQUEST saying %q, got %v", c.name, c.want, err)
		}
	}
}
