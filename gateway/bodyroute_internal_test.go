package gateway

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/uias/uias/proto/gen/uias/sync/v1" // the sync routes' messages
)

// The keys a body may not contradict: the body's own fields its path binds
// ({resource.code}), and a field of the request beside the body that the
// body's message has too (PUT /v1/sync/subscriptions/{id}, body
// subscription: its id; review sec12 #7); in proto and JSON form.
func TestBodyRouteKeys(t *testing.T) {
	md := func(name string) protoreflect.MessageDescriptor {
		t.Helper()
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Skipf("%s not linked in this test: %v", name, err)
		}
		return d.(protoreflect.MessageDescriptor)
	}
	for _, c := range []struct {
		body, path, msg string
		want            []bodyKey
	}{
		{"*", "/v1/users/{user_id}/fingers", "uias.identity.v1.EnrollFingerRequest",
			[]bodyKey{{"user_id", "user_id"}, {"user_id", "userId"}}},
		{"*", "/v1/users/{id}", "uias.identity.v1.UpdateUserRequest", []bodyKey{{"id", "id"}}},
		{"subscription", "/v1/sync/subscriptions/{id}", "uias.sync.v1.UpdateSubscriptionRequest", []bodyKey{{"id", "id"}}},
	} {
		br := newBodyRoute(c.body, c.path, md(c.msg))
		if len(br.keys) != len(c.want) || br.typ == nil {
			t.Fatalf("%s %s: keys %v, want %v", c.body, c.path, br.keys, c.want)
		}
		for i := range c.want {
			if br.keys[i] != c.want[i] {
				t.Fatalf("%s %s: keys %v, want %v", c.body, c.path, br.keys, c.want)
			}
		}
	}
}
