package cache_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/cache"
)

type user struct{ ID, Name string }

// A read that started before a write must not cache what it read.
func TestGenerationGuard(t *testing.T) {
	c := cache.NewTTL[user](time.Minute, 10)
	now := time.Now()
	gen := c.Generation()
	c.Drop("u1") // a write lands while the read is in flight
	c.PutIfCurrent("u1", user{ID: "u1", Name: "old"}, gen, now)
	if _, ok := c.Get("u1", now); ok {
		t.Fatal("a read older than a write was cached")
	}
	c.PutIfCurrent("u1", user{ID: "u1", Name: "new"}, c.Generation(), now)
	if u, ok := c.Get("u1", now); !ok || u.Name != "new" {
		t.Fatalf("fresh read not cached: %v %v", u, ok)
	}
	gen = c.Generation()
	c.Clear()
	c.PutIfCurrent("u1", user{ID: "u1", Name: "stale"}, gen, now)
	if _, ok := c.Get("u1", now); ok {
		t.Fatal("a read older than Clear was cached")
	}
}

func TestExpiry(t *testing.T) {
	c := cache.NewTTL[user](time.Minute, 0)
	now := time.Now()
	c.Put("u1", user{ID: "u1"}, now)
	if _, ok := c.Get("u1", now.Add(time.Minute-time.Nanosecond)); !ok {
		t.Fatal("not served within the TTL")
	}
	if _, ok := c.Get("u1", now.Add(time.Minute)); ok {
		t.Fatal("served after the TTL")
	}
	// Caches that cache nothing.
	for name, off := range map[string]*cache.TTL[user]{
		"TTL 0": cache.NewTTL[user](0, 0), "TTL -1": cache.NewTTL[user](-1, 0), "zero value": {},
	} {
		off.Put("u1", user{ID: "u1"}, now)
		if _, ok := off.Get("u1", now); ok || off.Len() != 0 {
			t.Fatalf("a cache with %s served an entry", name)
		}
	}
}

func TestDropAndClear(t *testing.T) {
	c := cache.NewTTL[user](time.Minute, 0)
	now := time.Now()
	c.Put("a", user{ID: "a"}, now)
	c.Put("b", user{ID: "b"}, now)
	c.Drop("a")
	if _, ok := c.Get("a", now); ok {
		t.Fatal("dropped entry served")
	}
	if _, ok := c.Get("b", now); !ok {
		t.Fatal("Drop removed another entry")
	}
	c.Clear()
	if _, ok := c.Get("b", now); ok || c.Len() != 0 {
		t.Fatal("Clear left an entry")
	}
	c.Put("c", user{ID: "c"}, now) // usable after Clear
	if _, ok := c.Get("c", now); !ok {
		t.Fatal("not usable after Clear")
	}
}

func TestBounded(t *testing.T) {
	c := cache.NewTTL[user](time.Minute, 3)
	now := time.Now()
	for i := range 10 {
		c.Put(fmt.Sprint(i), user{ID: fmt.Sprint(i)}, now)
		if c.Len() > 3 {
			t.Fatalf("%d entries, max 3", c.Len())
		}
	}
	if _, ok := c.Get("9", now); !ok {
		t.Fatal("the newest entry is missing")
	}
	// Expired entries make room before anything fresh is dropped.
	c = cache.NewTTL[user](time.Minute, 3)
	c.Put("old", user{ID: "old"}, now.Add(-2*time.Minute))
	for _, id := range []string{"a", "b", "c"} {
		c.Put(id, user{ID: id}, now)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, ok := c.Get(id, now); !ok {
			t.Fatalf("%s dropped while an expired entry could go", id)
		}
	}
	// The default bound applies when max is 0.
	d := cache.NewTTL[int](time.Minute, 0)
	for i := range cache.DefaultMax + 1 {
		d.Put(fmt.Sprint(i), i, now)
	}
	if d.Len() > cache.DefaultMax {
		t.Fatalf("%d entries, default max %d", d.Len(), cache.DefaultMax)
	}
}

// Concurrent readers, writers and droppers (run with -race).
func TestConcurrentUse(t *testing.T) {
	c := cache.NewTTL[int](time.Minute, 50)
	now := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprint((w*500 + i) % 80)
				switch i % 4 {
				case 0:
					c.PutIfCurrent(k, i, c.Generation(), now)
				case 1:
					c.Put(k, i, now)
				case 2:
					c.Drop(k)
				default:
					c.Get(k, now)
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 50 {
		t.Fatalf("%d entries, max 50", c.Len())
	}
}
