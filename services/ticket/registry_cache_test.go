package ticket_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/services/ticket"
)

// TestRegistryMatchCacheSeesChanges: the registry remembers which service
// a URL matched, and a change of the registry is seen at once all the
// same: through Invalidate (what the service's admin calls do) or, for a
// change made elsewhere, after the refresh period.
func TestRegistryMatchCacheSeesChanges(t *testing.T) {
	st := &memServices{}
	register(t, st, "a", ticket.RegisteredService{URL: "https://a.example/app/"})
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	reg := ticket.NewRegistry(st, time.Minute, clock)
	ctx := context.Background()
	const raw = "https://a.example/app/x/page?y=1"
	want := func(id string) {
		t.Helper()
		for range 3 { // the first match fills the cache, the others read it
			s, err := reg.Match(ctx, raw)
			switch {
			case id == "" && !errors.Is(err, ticket.ErrServiceNotRegistered):
				t.Fatalf("matched %+v (%v), want not registered", s, err)
			case id != "" && (err != nil || s.ID != id):
				t.Fatalf("%+v %v, want service %s", s, err, id)
			}
		}
	}
	want("a")

	// A more specific service registered: it wins at once.
	register(t, st, "b", ticket.RegisteredService{URL: "https://a.example/app/x/"})
	reg.Invalidate()
	want("b")

	// Disabled: the URL falls back to the other service.
	b, _ := st.GetService(ctx, "b")
	b.Enabled = false
	_ = st.UpdateService(ctx, b)
	reg.Invalidate()
	want("a")

	// Deleted: nothing matches.
	_ = st.DeleteService(ctx, "a")
	reg.Invalidate()
	want("")

	// Registered again, elsewhere (no Invalidate here): seen after the
	// refresh period, as without the cache.
	register(t, st, "c", ticket.RegisteredService{URL: "https://a.example/"})
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	want("c")
	_ = st.DeleteService(ctx, "c")
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	want("")
}

// TestRegistryMatchCacheRefusesBadURLs: once a good URL has matched (and
// is remembered), what differs from it in any way takes the whole check
// and is still refused, every time; a URL that matched nothing is not
// remembered as refused.
func TestRegistryMatchCacheRefusesBadURLs(t *testing.T) {
	st := &memServices{}
	register(t, st, "good", ticket.RegisteredService{URL: "https://good.example.com/app/"})
	reg := ticket.NewRegistry(st, time.Hour, nil)
	ctx := context.Background()
	const good = "https://good.example.com/app/page"
	for range 2 {
		if s, err := reg.Match(ctx, good); err != nil || s.ID != "good" {
			t.Fatalf("%s: %+v %v", good, s, err)
		}
	}
	for _, raw := range []string{
		good + "#frag",
		good + "\t",
		" " + good,
		good + "\r\nX: y",
		"https://good.example.com@evil.example/app/page",
		"https://good.example.com./app/page",
		"https://good.example.com/app/../admin",
		"https://good.example.com/app/%2e%2e/admin",
		"https://good.example.com:8443/app/page",
		"http://good.example.com/app/page",
		"https://good.example.com.evil.example/app/page",
		"//good.example.com/app/page",
		"https://other.example/app/page",                          // well formed, unregistered
		good + "?" + strings.Repeat("x", ticket.MaxServiceURLLen), // too long
		"",
	} {
		for i := range 3 {
			if s, err := reg.Match(ctx, raw); !errors.Is(err, ticket.ErrServiceNotRegistered) {
				t.Errorf("%q (try %d) matched %+v (%v)", raw, i, s, err)
			}
		}
	}
	// The unregistered URL was not remembered as refused.
	register(t, st, "other", ticket.RegisteredService{URL: "https://other.example/"})
	reg.Invalidate()
	if s, err := reg.Match(ctx, "https://other.example/app/page"); err != nil || s.ID != "other" {
		t.Fatalf("after registering: %+v %v", s, err)
	}
	if s, err := reg.Match(ctx, good); err != nil || s.ID != "good" {
		t.Fatalf("%s after the change: %+v %v", good, s, err)
	}
}

// TestRegistryMatchConcurrent matches from many goroutines while the
// registry changes (run with -race).
func TestRegistryMatchConcurrent(t *testing.T) {
	st := &memServices{}
	register(t, st, "a", ticket.RegisteredService{URL: "https://a.example/"})
	reg := ticket.NewRegistry(st, time.Hour, nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				raw := "https://a.example/p" + strconv.Itoa((g*500+i)%50)
				if s, err := reg.Match(ctx, raw); err != nil || s.ID != "a" {
					t.Errorf("%s: %+v %v", raw, s, err)
					return
				}
				if _, err := reg.Match(ctx, "https://a.example/p#x"); err == nil {
					t.Error("a fragment matched")
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			reg.Invalidate()
		}
	})
	wg.Wait()
}
