package ticket

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
)

// oneService is a ServiceStore of one service.
type oneService struct{ s RegisteredService }

func (o oneService) CreateService(context.Context, *RegisteredService, ...events.Event) error {
	return errors.ErrUnsupported
}
func (o oneService) GetService(_ context.Context, id string) (*RegisteredService, error) {
	if id != o.s.ID {
		return nil, store.NotFound("service")
	}
	c := o.s
	return &c, nil
}
func (o oneService) ListServices(context.Context, string) ([]*RegisteredService, error) {
	c := o.s
	return []*RegisteredService{&c}, nil
}
func (o oneService) UpdateService(context.Context, *RegisteredService, ...events.Event) error {
	return errors.ErrUnsupported
}
func (o oneService) DeleteService(context.Context, string, ...events.Event) error {
	return errors.ErrUnsupported
}

// TestRegistryHitsBounded: however many different URLs match, the
// registry remembers at most maxHits of them, and every one still
// matches.
func TestRegistryHitsBounded(t *testing.T) {
	reg := NewRegistry(oneService{RegisteredService{ID: "a", AppID: "app", URL: "https://a.example:443/", MinAuthLevel: 1,
		Enabled: true}}, 0, nil)
	ctx := context.Background()
	for i := range 3 * maxHits {
		raw := "https://a.example/p" + strconv.Itoa(i)
		if s, err := reg.Match(ctx, raw); err != nil || s.ID != "a" {
			t.Fatalf("%s: %+v %v", raw, s, err)
		}
		reg.mu.Lock()
		n := len(reg.hits)
		reg.mu.Unlock()
		if n > maxHits || n == 0 {
			t.Fatalf("after %d URLs the registry remembers %d", i+1, n)
		}
	}
	if _, err := reg.Match(ctx, "https://a.example/p1#x"); !errors.Is(err, ErrServiceNotRegistered) {
		t.Fatalf("a fragment: %v", err)
	}
}
