package component

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/ticket"
)

// fixedServices is a ServiceStore of a fixed list.
type fixedServices []*ticket.RegisteredService

func (fixedServices) CreateService(context.Context, *ticket.RegisteredService, ...events.Event) error {
	return nil
}
func (f fixedServices) GetService(_ context.Context, id string) (*ticket.RegisteredService, error) {
	for _, s := range f {
		if s.ID == id {
			return s, nil
		}
	}
	return nil, ticket.ErrNotFound
}
func (f fixedServices) ListServices(context.Context, string) ([]*ticket.RegisteredService, error) {
	return f, nil
}
func (fixedServices) UpdateService(context.Context, *ticket.RegisteredService, ...events.Event) error {
	return nil
}
func (fixedServices) DeleteService(context.Context, string, ...events.Event) error { return nil }

// An application's own level (identity's min_auth_level, from its
// app.updated events) holds its CAS services: 2 raises them to level 2, 3
// makes them take certificate logins only; a service's own stricter
// settings stay, other applications' services and the stored definitions
// are untouched, and the level set back to any lowers them again.
func TestAppLevelHoldsItsServices(t *testing.T) {
	st := fixedServices{
		{ID: "s1", AppID: "app1", Name: "One", URL: "https://one.example.com/", MinAuthLevel: 1, Enabled: true},
		{ID: "s2", AppID: "app2", Name: "Two", URL: "https://two.example.com/", MinAuthLevel: 1, Enabled: true},
		{ID: "s3", AppID: "app1", Name: "Three", URL: "https://three.example.com/", MinAuthLevel: 2, CertificateRequired: true, Enabled: true},
	}
	reg := ticket.NewRegistry(st, 0, nil)
	a := newAppStatus(reg)
	ctx := context.Background()
	held := func(url string) (int, bool) {
		t.Helper()
		rs, err := reg.Match(ctx, url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return rs.MinAuthLevel, rs.CertificateRequired
	}
	set := func(app, data string) {
		a.onChange(&nats.Msg{Subject: "uias.changes.identity.app.updated",
			Data: []byte(`{"entity":"app","op":"updated","id":"` + app + `","data":` + data + `}`)})
	}
	want := func(step, url string, level int, cert bool) {
		t.Helper()
		if l, c := held(url); l != level || c != cert {
			t.Fatalf("%s: %s level %d certificate %v, want %d %v", step, url, l, c, level, cert)
		}
	}
	want("before", "https://one.example.com/x", 1, false)
	set("app1", `{"status":1,"min_auth_level":2}`)
	want("level 2", "https://one.example.com/x", 2, false)
	want("level 2", "https://two.example.com/x", 1, false)
	want("level 2", "https://three.example.com/x", 2, true)
	set("app1", `{"status":1,"min_auth_level":3}`)
	want("level 3", "https://one.example.com/x", 2, true)
	// an event without the level (an identity of an earlier version) keeps it
	set("app1", `{"status":1}`)
	want("no level said", "https://one.example.com/x", 2, true)
	set("app1", `{"status":1,"min_auth_level":0}`)
	want("back to any", "https://one.example.com/x", 1, false)
	want("back to any", "https://three.example.com/x", 2, true)
	if st[0].MinAuthLevel != 1 || st[0].CertificateRequired {
		t.Fatalf("the stored definition changed: %+v", st[0])
	}
}
