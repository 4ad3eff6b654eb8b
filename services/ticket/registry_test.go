package ticket_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/ticket"
)

// memServices is an in-memory ServiceStore for domain tests (the SQL
// stores pass the conformance suite in storetest).
type memServices struct {
	mu sync.Mutex
	m  map[string]*ticket.RegisteredService
}

func (s *memServices) CreateService(_ context.Context, r *ticket.RegisteredService, _ ...events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*ticket.RegisteredService{}
	}
	c := *r
	s.m[r.ID] = &c
	return nil
}
func (s *memServices) GetService(_ context.Context, id string) (*ticket.RegisteredService, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	if !ok {
		return nil, store.NotFound("service")
	}
	c := *r
	return &c, nil
}
func (s *memServices) ListServices(_ context.Context, appID string) ([]*ticket.RegisteredService, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*ticket.RegisteredService
	for _, r := range s.m {
		if appID == "" || r.AppID == appID {
			c := *r
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *ticket.RegisteredService) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
func (s *memServices) UpdateService(ctx context.Context, r *ticket.RegisteredService, _ ...events.Event) error {
	return s.CreateService(ctx, r)
}
func (s *memServices) DeleteService(_ context.Context, id string, _ ...events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

func register(t testing.TB, st *memServices, id string, s ticket.RegisteredService) {
	t.Helper()
	s.ID, s.Enabled = id, true
	if s.AppID == "" {
		s.AppID = "app-" + id
	}
	if s.MinAuthLevel == 0 {
		s.MinAuthLevel = 1
	}
	if err := ticket.CheckService(&s); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	_ = st.CreateService(context.Background(), &s)
}

// TestOpenRedirectTricks: only exactly registered services match; every
// trick that makes browsers, proxies or frameworks read another host or
// path is refused.
func TestOpenRedirectTricks(t *testing.T) {
	st := &memServices{}
	register(t, st, "good", ticket.RegisteredService{URL: "https://good.example.com/app/"})
	register(t, st, "exact", ticket.RegisteredService{URL: "https://good.example.com/exact"})
	register(t, st, "idn", ticket.RegisteredService{URL: "https://xn--bcher-kva.example/"}) // bücher.example
	register(t, st, "re", ticket.RegisteredService{Pattern: `https://[a-z0-9-]+\.tenants\.example\.com/cas/.*`})
	reg := ticket.NewRegistry(st, 0, nil)
	ctx := context.Background()

	good := map[string]string{
		"https://good.example.com/app/":                  "good",
		"https://good.example.com/app/page?x=1&y=%20z":   "good",
		"https://GOOD.Example.com/app/":                  "good",
		"https://good.example.com:443/app/x":             "good",
		"https://good.example.com/exact":                 "exact",
		"https://good.example.com/exact/sub":             "exact",
		"https://good.example.com/exact?ticket=x":        "exact",
		"https://xn--bcher-kva.example/shop":             "idn",
		"https://acme.tenants.example.com/cas/login?x=1": "re",
	}
	for raw, want := range good {
		s, err := reg.Match(ctx, raw)
		if err != nil || s.ID != want {
			t.Errorf("%q: %v %v, want service %s", raw, s, err, want)
		}
	}
	tricks := []string{
		"//evil.example/app/",                                   // scheme-relative
		"https://good.example.com.evil.example/app/",            // suffix host
		"https://good.example.com@evil.example/app/",            // userinfo
		"https://evil.example@good.example.com/app/",            // userinfo, good host
		"https://good.example.com\\@evil.example/app/",          // backslash
		"https:\\\\evil.example/app/",                           // backslashes as slashes
		"https:/\\evil.example/app/",                            // mixed slashes
		"https:evil.example/app/",                               // opaque
		"https:///evil.example/app/",                            // empty host
		"https://good.example.com%2eevil.example/app/",          // encoded dot in host
		"https://good.example.com%40evil.example/app/",          // encoded @
		"https://good.example.com/app/%2e%2e/admin",             // encoded dot segment
		"https://good.example.com/app/..%2f..%2fadmin",          // encoded slash
		"https://good.example.com/app/%252e%252e/admin",         // double encoding
		"https://good.example.com/app/../admin",                 // dot segment
		"https://good.example.com/app/%5c..%5cadmin",            // encoded backslash
		"https://gооd.example.com/app/",                         // Cyrillic o (IDN look-alike)
		"https://bücher.example/shop",                           // raw Unicode host
		"https://xn--gd-yelb.example.com/app/",                  // punycode look-alike
		"javascript:alert(1)//good.example.com/app/",            // javascript:
		"JavaScript://good.example.com/app/%0aalert(1)",         // javascript with newline
		"data:text/html,<script>alert(1)</script>",              // data:
		"https://good.example.com/app/\r\nSet-Cookie:%20x=y",    // CRLF
		"https://good.example.com/app/%0d%0aSet-Cookie:x",       // encoded CRLF is only path data: see below
		"https://good.example.com./app/",                        // trailing dot
		"https://good.example.com:8443/app/",                    // other port
		"https://good.example.com:/app/",                        // empty port
		"https://good.example.com:0443/app/",                    // leading-zero port
		"http://good.example.com/app/",                          // scheme downgrade
		"https://good.example.com/application",                  // prefix not on a segment boundary
		"https://good.example.com/exactly",                      // same for an exact path
		"https://good.example.com/ap%70/",                       // encoded path letters do not match
		"https://good.example.com#@evil.example/app/",           // fragment
		"https://good.example.com/app/#frag",                    // fragment
		" https://good.example.com/app/",                        // leading space
		"https://good.example.com/app/\t",                       // tab
		"https://evil.example/?u=https://good.example.com/app/", // registered URL in the query
		"https://evil.example/https://good.example.com/app/",    // registered URL in the path
		"https://[::1]/app/",                                    // IP literal
		"ftp://good.example.com/app/",                           // other scheme
		"https://acme.tenants.example.com.evil.example/cas/x",   // pattern is anchored
		"https://a.tenants.example.com@evil.example/cas/x",      // userinfo under a pattern
		"https://evil.example/#.tenants.example.com/cas/",       // fragment under a pattern
		"",
	}
	for _, raw := range tricks {
		if raw == "https://good.example.com/app/%0d%0aSet-Cookie:x" {
			// Encoded CR LF in a path are data, never a header: the
			// service matches, and the edge writes the URL only
			// escaped into Location. Checked here to be explicit.
			if _, err := reg.Match(ctx, raw); err != nil {
				t.Errorf("%q: %v", raw, err)
			}
			continue
		}
		s, err := reg.Match(ctx, raw)
		if !errors.Is(err, ticket.ErrServiceNotRegistered) {
			t.Errorf("trick %q matched %+v (%v)", raw, s, err)
		}
	}
	if len(tricks) < 15 {
		t.Fatal("fewer than 15 tricks")
	}
}

func TestCheckService(t *testing.T) {
	for name, s := range map[string]ticket.RegisteredService{
		"no app":          {URL: "https://a.example/", MinAuthLevel: 1},
		"url and pattern": {AppID: "a", URL: "https://a.example/", Pattern: "x", MinAuthLevel: 1},
		"neither":         {AppID: "a", MinAuthLevel: 1},
		"bad level":       {AppID: "a", URL: "https://a.example/", MinAuthLevel: 3},
		"query":           {AppID: "a", URL: "https://a.example/?x=1", MinAuthLevel: 1},
		"userinfo":        {AppID: "a", URL: "https://u@a.example/", MinAuthLevel: 1},
		"bad pattern":     {AppID: "a", Pattern: "(", MinAuthLevel: 1},
		"http logout":     {AppID: "a", URL: "https://a.example/", LogoutURL: "http://a.example/logout", MinAuthLevel: 1},
		"http service":    {AppID: "a", URL: "http://a.example/app/", MinAuthLevel: 1},
		"legacy release":  {AppID: "a", URL: "https://a.example/sso", MinAuthLevel: 1, LegacyScheme: 2, ReleaseRoles: true},
	} {
		if err := ticket.CheckService(&s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	loop := ticket.RegisteredService{AppID: "a", URL: "http://127.0.0.1:8081/app/", MinAuthLevel: 1}
	if err := ticket.CheckService(&loop); err != nil {
		t.Fatalf("an http service on loopback: %v", err)
	}
	s := ticket.RegisteredService{AppID: "a", URL: "HTTPS://A.Example/app/", LogoutURL: "https://a.example/slo", MinAuthLevel: 1}
	if err := ticket.CheckService(&s); err != nil || s.URL != "https://a.example:443/app/" {
		t.Fatalf("normalised: %q %v", s.URL, err)
	}
}
