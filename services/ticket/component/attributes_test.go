package component

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// fakeSSO answers PersonAttributes with a display name that counts the
// calls.
type fakeSSO struct {
	identityv1.SSOServiceClient
	calls atomic.Int32
}

func (f *fakeSSO) PersonAttributes(_ context.Context, r *identityv1.PersonAttributesRequest, _ ...grpc.CallOption) (*identityv1.PersonAttributesResponse, error) {
	n := f.calls.Add(1)
	return &identityv1.PersonAttributesResponse{UserId: r.GetUserId(), Login: "l-" + r.GetUserId(),
		DisplayName: string('A' + n - 1), AppAccountId: "acct-" + r.GetAppId()}, nil
}

func TestAttributeCacheDroppedByChanges(t *testing.T) {
	sso := &fakeSSO{}
	c := newAttributeCache(sso, 5*time.Second)
	now := time.Now()
	c.now = func() time.Time { return now }
	ctx := context.Background()
	get := func(user, app string) string {
		t.Helper()
		a, err := c.Attributes(ctx, user, app)
		if err != nil {
			t.Fatal(err)
		}
		if a.GetAppAccountId() != "acct-"+app || a.GetLogin() != "l-"+user {
			t.Fatalf("attributes of %s for %s: %+v", user, app, a)
		}
		return a.GetDisplayName()
	}
	calls := func(want int32) {
		t.Helper()
		if got := sso.calls.Load(); got != want {
			t.Fatalf("identity asked %d times, want %d", got, want)
		}
	}
	get("u1", "app1")
	get("u1", "app1")
	calls(1)
	get("u1", "app2") // per application (the account differs)
	get("u2", "app1")
	calls(3)
	get("u1", "app1")
	calls(3)

	ev := func(subject, data string) { c.changed(&nats.Msg{Subject: subject, Data: []byte(data)}) }
	ev("uias.changes.identity.user.updated", `{"entity":"user","op":"updated","id":"u1","data":{"id":"u1"}}`)
	get("u1", "app1")
	get("u2", "app1") // another person's answer stays
	calls(4)
	ev("uias.changes.identity.group.member_added", `{"entity":"group","op":"member_added","id":"g1","data":{"user_id":"u2"}}`)
	get("u2", "app1")
	get("u1", "app1")
	calls(5)
	ev("uias.changes.identity.link.deleted", `{"entity":"link","op":"deleted","id":"k1","data":{"user_id":"u1","app_id":"app1"}}`)
	get("u1", "app1")
	calls(6)
	ev("uias.changes.identity.org.updated", `{"entity":"org","op":"updated","id":"o1","data":{"name":"x"}}`)
	get("u1", "app1")
	get("u2", "app1")
	calls(8)
	ev("uias.changes.identity.user.imported", `{"entity":"user","op":"imported","id":"imp1","data":{"ids":["u1"]}}`)
	get("u1", "app1")
	get("u2", "app1")
	calls(10)
	ev("uias.changes.identity.user.updated", `not json`)
	get("u1", "app1")
	calls(11)

	// The TTL bounds an answer.
	now = now.Add(6 * time.Second)
	get("u1", "app1")
	calls(12)

	// 0 turns the cache off.
	off := newAttributeCache(sso, 0)
	for range 2 {
		if _, err := off.Attributes(ctx, "u1", "app1"); err != nil {
			t.Fatal(err)
		}
	}
	calls(14)
}
