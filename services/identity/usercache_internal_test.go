package identity

import (
	"fmt"
	"testing"
	"time"
)

// A read that started before a write must not cache what it read.
func TestUserCacheGenerationGuard(t *testing.T) {
	c := userCache{ttl: time.Minute, max: 10}
	now := time.Now()
	gen := c.generation()
	c.forget("u1") // a write lands while the read is in flight
	c.put(&User{ID: "u1", DisplayName: "old"}, gen, now)
	if _, ok := c.get("u1", now); ok {
		t.Fatal("a read older than a write was cached")
	}
	c.put(&User{ID: "u1", DisplayName: "new"}, c.generation(), now)
	if u, ok := c.get("u1", now); !ok || u.DisplayName != "new" {
		t.Fatalf("fresh read not cached: %v %v", u, ok)
	}
	if _, ok := c.get("u1", now.Add(time.Minute)); ok {
		t.Fatal("served after the TTL")
	}
}

func TestUserCacheBounded(t *testing.T) {
	c := userCache{ttl: time.Minute, max: 3}
	now := time.Now()
	for i := range 10 {
		c.put(&User{ID: fmt.Sprint(i)}, c.generation(), now)
		if len(c.m) > 3 {
			t.Fatalf("%d entries, max 3", len(c.m))
		}
	}
	if _, ok := c.get("9", now); !ok {
		t.Fatal("the newest entry is missing")
	}
	// Expired entries make room before anything fresh is dropped.
	c = userCache{ttl: time.Minute, max: 3}
	c.put(&User{ID: "old"}, 0, now.Add(-2*time.Minute))
	c.put(&User{ID: "a"}, 0, now)
	c.put(&User{ID: "b"}, 0, now)
	c.put(&User{ID: "c"}, 0, now)
	for _, id := range []string{"a", "b", "c"} {
		if _, ok := c.get(id, now); !ok {
			t.Fatalf("%s dropped while an expired entry could go", id)
		}
	}
}
