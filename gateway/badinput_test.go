package gateway

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestDecodeBodyDescribes: what decodeBody says about bodies that do not
// fit, for the shapes the REST bodies of every component have (nested
// messages, lists, oneofs, well-known types), and that a body that fits
// decodes as protojson has it.
func TestDecodeBodyDescribes(t *testing.T) {
	uo := protojson.UnmarshalOptions{}
	decode := func(body string, v proto.Message) error {
		return decodeBody(json.NewDecoder(strings.NewReader(body)), true, func(raw []byte) error { return unmarshalBody(uo, raw, v) })
	}
	for _, c := range []struct {
		msg         proto.Message
		body, field string
		want        string
	}{
		{&identityv1.ListUsersResponse{}, `{"users":[{"login_name":"a"},{"login_name":5}]}`, "users.login_name", "users[1].login_name must be a JSON string of valid UTF-8"},
		{&identityv1.ListUsersResponse{}, `{"users":[null]}`, "users", "users[0] must not be null"},
		{&identityv1.ListUsersResponse{}, `{"users":{"login_name":"a"}}`, "users", "users must be a JSON array"},
		{&identityv1.ListUsersResponse{}, `{"users":[7]}`, "users", "users[0] must be a JSON object"},
		{&identityv1.ListUsersResponse{}, `{"users":[{"nope":1}]}`, "users.nope", `unknown field "users[0].nope"`},
		{&identityv1.User{}, `{"create_time":"yesterday"}`, "create_time", `create_time must be an RFC 3339 time such as "2026-01-02T15:04:05Z"`},
		{&identityv1.User{}, `{"createTime":5}`, "create_time", `create_time must be an RFC 3339 time`},
		{&identityv1.ImportRequest{}, `{"header":{"kind":"IMPORT_KIND_USERS"},"chunk":"YQ=="}`, "chunk", "header and chunk exclude each other: give only one"},
		{&identityv1.ImportRequest{}, `{"header":{"kind":true}}`, "header.kind", "header.kind must be one of"},
		{&identityv1.ImportRequest{}, `{"header":"users"}`, "header", "header must be a JSON object"},
		{&structpb.ListValue{}, `{"values":[{"nullValue":"x"}]}`, "values", "values[0]"},
		{&identityv1.ListUsersResponse{}, `{"users":[` + strings.Repeat(`{},`, maxElems) + `{"login_name":5}]}`, "users", "users is not valid"},
	} {
		err := decode(c.body, c.msg.ProtoReflect().New().Interface())
		var b *badInput
		if !errors.As(err, &b) {
			t.Errorf("%s: %v, want a *badInput", c.body, err)
			continue
		}
		if b.field != c.field || !strings.HasPrefix(b.msg, c.want) {
			t.Errorf("%s: field %q message %q; want %q %q", c.body, b.field, b.msg, c.field, c.want)
		}
	}
	// A body that fits decodes as protojson has it; an empty one is EOF.
	var u identityv1.User
	if err := decode(`{"loginName":"a","create_time":"2026-01-02T15:04:05Z"}`, &u); err != nil ||
		u.GetLoginName() != "a" || u.GetCreateTime().GetSeconds() == 0 {
		t.Errorf("a good body: %v %v", err, &u)
	}
	if err := decode("", &u); err == nil || err.Error() != "EOF" {
		t.Errorf("empty body: %v", err)
	}
}
