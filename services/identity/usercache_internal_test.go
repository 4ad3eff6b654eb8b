package identity

import (
	"testing"
	"time"

	"github.com/uias/uias/pkg/cache"
)

// Change event payloads that name no user are ignored, not a panic.
func TestForgetChangedUserIgnoresBadPayloads(t *testing.T) {
	s := &Service{users: cache.NewTTL[cachedUser](time.Minute, 0), adminTokens: newAdminTokenCache(time.Minute)}
	now := time.Now()
	s.users.Put("u1", cachedUser{User: User{ID: "u1"}}, now)
	for _, p := range []string{"", "not json", `{"id": 7}`, `{"op": "updated"}`, `{"id": ""}`} {
		s.ForgetChangedUser([]byte(p))
	}
	if _, ok := s.users.Get("u1", now); !ok {
		t.Fatal("a payload without the user's id dropped it")
	}
	s.ForgetChangedUser([]byte(`{"entity": "user", "op": "updated", "id": "u1"}`))
	if _, ok := s.users.Get("u1", now); ok {
		t.Fatal("the change event did not drop the user")
	}
}
