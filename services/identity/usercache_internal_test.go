package identity

import (
	"fmt"
	"testing"
	"time"
)

// A read that started before a write must not cache what it read.
func TestTTLCacheGenerationGuard(t *testing.T) {
	c := ttlCache[User]{ttl: time.Minute, max: 10}
	now := time.Now()
	gen := c.generation()
	c.drop("u1") // a write lands while the read is in flight
	c.putIfCurrent("u1", User{ID: "u1", DisplayName: "old"}, gen, now)
	if _, ok := c.get("u1", now); ok {
		t.Fatal("a read older than a write was cached")
	}
	c.putIfCurrent("u1", User{ID: "u1", DisplayName: "new"}, c.generation(), now)
	if u, ok := c.get("u1", now); !ok || u.DisplayName != "new" {
		t.Fatalf("fresh read not cached: %v %v", u, ok)
	}
	if _, ok := c.get("u1", now.Add(time.Minute)); ok {
		t.Fatal("served after the TTL")
	}
	off := ttlCache[User]{ttl: -1}
	off.put("u1", User{ID: "u1"}, now)
	if _, ok := off.get("u1", now); ok {
		t.Fatal("a cache with a negative TTL served an entry")
	}
}

func TestTTLCacheBounded(t *testing.T) {
	c := ttlCache[User]{ttl: time.Minute, max: 3}
	now := time.Now()
	for i := range 10 {
		c.put(fmt.Sprint(i), User{ID: fmt.Sprint(i)}, now)
		if len(c.m) > 3 {
			t.Fatalf("%d entries, max 3", len(c.m))
		}
	}
	if _, ok := c.get("9", now); !ok {
		t.Fatal("the newest entry is missing")
	}
	// Expired entries make room before anything fresh is dropped.
	c = ttlCache[User]{ttl: time.Minute, max: 3}
	c.put("old", User{ID: "old"}, now.Add(-2*time.Minute))
	for _, id := range []string{"a", "b", "c"} {
		c.put(id, User{ID: id}, now)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, ok := c.get(id, now); !ok {
			t.Fatalf("%s dropped while an expired entry could go", id)
		}
	}
}

// Change event payloads that name no user are ignored, not a panic.
func TestForgetChangedUserIgnoresBadPayloads(t *testing.T) {
	s := &Service{}
	s.users.ttl, s.tokens.ttl = time.Minute, time.Minute
	now := time.Now()
	s.users.put("u1", User{ID: "u1"}, now)
	for _, p := range []string{"", "not json", `{"id": 7}`, `{"op": "updated"}`, `{"id": ""}`} {
		s.ForgetChangedUser([]byte(p))
	}
	if _, ok := s.users.get("u1", now); !ok {
		t.Fatal("a payload without the user's id dropped it")
	}
	s.ForgetChangedUser([]byte(`{"entity": "user", "op": "updated", "id": "u1"}`))
	if _, ok := s.users.get("u1", now); ok {
		t.Fatal("the change event did not drop the user")
	}
}
