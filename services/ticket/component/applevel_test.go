package component

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"

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
	a.markRead() // the levels read from identity (TestAppLevelUnknownUntilRead)
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

// downViews is identity's ViewService while identity does not answer.
type downViews struct{}

func (downViews) GetViews(context.Context, *identityv1.GetViewsRequest, ...grpc.CallOption) (*identityv1.GetViewsResponse, error) {
	return nil, status.Error(codes.Unavailable, "identity down")
}

// Until the applications' levels were read from identity once since the
// start (a restart while identity does not answer), the services of
// applications are strong enough for no login (review sec26 M3: an
// application's level is never skipped); a service without an application
// is not held; the first read that succeeds lets them issue again.
func TestAppLevelUnknownUntilRead(t *testing.T) {
	st := fixedServices{
		{ID: "s1", AppID: "app1", Name: "One", URL: "https://one.example.com/", MinAuthLevel: 1, Enabled: true},
		{ID: "s2", Name: "Loose", URL: "https://loose.example.com/", MinAuthLevel: 1, Enabled: true},
	}
	reg := ticket.NewRegistry(st, 0, nil)
	a := newAppStatus(reg)
	ctx := context.Background()
	strong := func(url string, level, method int) bool {
		t.Helper()
		rs, err := reg.Match(ctx, url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return rs.StrongEnough(level, method)
	}
	if strong("https://one.example.com/x", 3, ticket.AuthMethodCertificate) {
		t.Fatal("an application's service issued before its level was read")
	}
	if !strong("https://loose.example.com/x", 1, 1) {
		t.Fatal("a service without an application was held")
	}
	svcs := &listed{services: []*ticket.RegisteredService(st), deleted: map[string]string{}}
	if err := a.refresh(ctx, svcs, downViews{}, zap.NewNop()); err == nil {
		t.Fatal("a refresh with identity down succeeded")
	}
	if strong("https://one.example.com/x", 3, ticket.AuthMethodCertificate) {
		t.Fatal("held open after a failed read")
	}
	if err := a.refresh(ctx, svcs, views{"app1": 1}, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if !strong("https://one.example.com/x", 1, 1) {
		t.Fatal("still held after the levels were read")
	}
}
