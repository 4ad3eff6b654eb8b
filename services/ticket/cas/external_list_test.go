package cas

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestExternalListNotPoisonedByCancel (security review sec31a L3): the
// first page after a start whose browser dropped its connection does not
// leave the pages without the authenticators: identity is asked under a
// context the page's request does not cancel.
func TestExternalListNotPoisonedByCancel(t *testing.T) {
	calls := 0
	h := New(Options{Tickets: &certTickets{sessions: map[string]int32{}}, SSO: &extSSO{},
		ListExternal: func(ctx context.Context) ([]*identityv1.ExternalAuthenticatorInfo, error) {
			calls++
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return []*identityv1.ExternalAuthenticatorInfo{{Name: "face", Label: "Face", Level: 1}}, nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the first browser after a start drops its connection
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/cas/login", nil).WithContext(ctx))
	for i := 0; i < 3; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/cas/login", nil))
		if !strings.Contains(w.Body.String(), `id="external-face"`) {
			t.Fatalf("page %d: no link to the authenticator (ListExternal calls %d)", i, calls)
		}
	}
	if calls != 1 {
		t.Fatalf("ListExternal called %d times, want 1 (the list is cached)", calls)
	}
}

// TestExternalListRetriedSoonAfterStart: identity failing to list the
// authenticators before any list was read is asked again after
// externalRetry, not after externalRefresh; once a list was read, a
// failure keeps it for externalRefresh.
func TestExternalListRetriedSoonAfterStart(t *testing.T) {
	now := time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC)
	calls, fail := 0, true
	h := New(Options{Tickets: &certTickets{sessions: map[string]int32{}}, SSO: &extSSO{}, Now: func() time.Time { return now },
		ListExternal: func(context.Context) ([]*identityv1.ExternalAuthenticatorInfo, error) {
			calls++
			if fail {
				return nil, errors.New("identity starting")
			}
			return []*identityv1.ExternalAuthenticatorInfo{{Name: "face", Label: "Face", Level: 1}}, nil
		}})
	page := func() bool {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/cas/login", nil))
		return strings.Contains(w.Body.String(), `id="external-face"`)
	}
	if page() || calls != 1 {
		t.Fatalf("identity down: links shown, or calls %d", calls)
	}
	fail = false
	if now = now.Add(externalRetry / 2); page() || calls != 1 {
		t.Fatalf("asked again at every page: calls %d", calls)
	}
	if now = now.Add(externalRetry); !page() || calls != 2 {
		t.Fatalf("not asked again after externalRetry: calls %d", calls)
	}
	fail = true
	if now = now.Add(externalRefresh); !page() || calls != 3 {
		t.Fatalf("a failure after a read list lost it: calls %d", calls)
	}
	if now = now.Add(externalRetry + time.Second); !page() || calls != 3 {
		t.Fatalf("asked again before externalRefresh once a list was read: calls %d", calls)
	}
}
