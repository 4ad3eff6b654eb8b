package component

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/ticket"
)

// listed is a registry's services; deleted records the applications whose
// services were deleted, with the cause.
type listed struct {
	services []*ticket.RegisteredService
	deleted  map[string]string
}

func (l *listed) ListRegisteredServices(context.Context, string) ([]*ticket.RegisteredService, error) {
	return l.services, nil
}

func (l *listed) DeleteAppServices(_ context.Context, appID, cause string) (int, error) {
	n := 0
	for _, r := range l.services {
		if r.AppID == appID {
			n++
		}
	}
	l.deleted[appID] = cause
	return n, nil
}

// views answers identity's ViewService from a map of App_ID to status.
type views map[string]int

func (v views) GetViews(_ context.Context, r *identityv1.GetViewsRequest, _ ...grpc.CallOption) (*identityv1.GetViewsResponse, error) {
	out := &identityv1.GetViewsResponse{}
	for _, id := range r.GetIds() {
		if st, ok := v[id]; ok {
			d, _ := json.Marshal(map[string]any{"status": st, "name": id})
			out.Views = append(out.Views, &identityv1.View{Id: id, Data: d})
		}
	}
	return out, nil
}

// The set of suspended applications: read from identity (suspended ones,
// and those identity no longer knows: deleted while nobody heard it), then
// kept by app.updated and app.deleted events.
func TestAppStatus(t *testing.T) {
	a := newAppStatus(ticket.NewRegistry(nil, 0, nil))
	svcs := &listed{services: []*ticket.RegisteredService{{AppID: "active"}, {AppID: "paused"}, {AppID: "gone"}, {AppID: "active"}},
		deleted: map[string]string{}}
	clock := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return clock }
	known := views{"active": 1, "paused": appSuspended}
	if err := a.refresh(context.Background(), svcs, known, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	// The services of the application identity no longer knows take no
	// tickets at once, and are deleted (its app.deleted was missed) once
	// identity has not known it for unknownGrace; the others' are kept.
	if len(svcs.deleted) != 0 {
		t.Errorf("services deleted at once: %v", svcs.deleted)
	}
	clock = clock.Add(unknownGrace / 2)
	if err := a.refresh(context.Background(), svcs, known, zap.NewNop()); err != nil || len(svcs.deleted) != 0 {
		t.Fatalf("services deleted within the grace: %v %v", svcs.deleted, err)
	}
	clock = clock.Add(unknownGrace)
	if err := a.refresh(context.Background(), svcs, known, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if len(svcs.deleted) != 1 || svcs.deleted["gone"] != ticket.CauseAppUnknown {
		t.Errorf("services deleted by the refresh: %v, want those of gone (APP_UNKNOWN)", svcs.deleted)
	}
	for app, want := range map[string]bool{"active": false, "paused": true, "gone": true, "never-listed": false} {
		if got := a.isSuspended(app); got != want {
			t.Errorf("%s suspended %v, want %v", app, got, want)
		}
	}
	msg := func(op, id, data string) *nats.Msg {
		return &nats.Msg{Subject: "uias.changes.identity.app." + op,
			Data: []byte(`{"entity":"app","op":"` + op + `","id":"` + id + `","data":` + data + `}`)}
	}
	a.onChange(msg("updated", "paused", `{"status":1}`))
	a.onChange(msg("updated", "active", `{"status":2}`))
	a.onChange(msg("secret_rotated", "other", `{"overlap_seconds":0}`))
	a.onChange(msg("deleted", "later", `{}`))
	for app, want := range map[string]bool{"active": true, "paused": false, "other": false, "later": true} {
		if got := a.isSuspended(app); got != want {
			t.Errorf("after the events: %s suspended %v, want %v", app, got, want)
		}
	}
}

// An identity that knows none of several applications (a wrong or restored
// database) holds their services suspended and deletes none.
func TestAppStatusUnknownEverywhere(t *testing.T) {
	a := newAppStatus(ticket.NewRegistry(nil, 0, nil))
	clock := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return clock }
	svcs := &listed{services: []*ticket.RegisteredService{{AppID: "a"}, {AppID: "b"}, {AppID: "c"}}, deleted: map[string]string{}}
	for range 3 {
		if err := a.refresh(context.Background(), svcs, views{}, zap.NewNop()); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(unknownGrace)
	}
	if len(svcs.deleted) != 0 || !a.isSuspended("a") || !a.isSuspended("c") {
		t.Fatalf("identity knowing no application: deleted %v, a suspended %v", svcs.deleted, a.isSuspended("a"))
	}
}

// An application outside its access period (access_from, access_until) is
// as suspended: its services take no tickets until the period begins, and
// none once it has ended (review sec23 M2).
func TestAppStatusAccessPeriod(t *testing.T) {
	a := newAppStatus(ticket.NewRegistry(nil, 0, nil))
	clock := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return clock }
	msg := func(id, data string) *nats.Msg {
		return &nats.Msg{Subject: "uias.changes.identity.app.updated",
			Data: []byte(`{"entity":"app","op":"updated","id":"` + id + `","data":` + data + `}`)}
	}
	a.onChange(msg("ending", `{"status":1,"access_until":"2026-12-06T00:00:00Z"}`))
	a.onChange(msg("starting", `{"status":1,"access_from":"2026-12-06T00:00:00Z","access_until":null}`))
	a.onChange(msg("open", `{"status":1,"access_from":null,"access_until":null}`))
	for app, want := range map[string]bool{"ending": false, "starting": true, "open": false} {
		if got := a.isSuspended(app); got != want {
			t.Errorf("before: %s suspended %v, want %v", app, got, want)
		}
	}
	clock = clock.Add(24 * time.Hour)
	for app, want := range map[string]bool{"ending": true, "starting": false, "open": false} {
		if got := a.isSuspended(app); got != want {
			t.Errorf("after: %s suspended %v, want %v", app, got, want)
		}
	}
	// The period lifted: open again.
	a.onChange(msg("ending", `{"status":1,"access_until":null}`))
	if a.isSuspended("ending") {
		t.Error("an application whose period was lifted stays suspended")
	}
}

// While identity is unreachable the first read is retried every 2 s: the
// failures are logged at the first and then once a minute (an outage
// logged 30 warnings a minute per ticket instance), and the success that
// ends them says how many there were.
func TestAppStatusFailuresLoggedOnceAMinute(t *testing.T) {
	var f failureLog
	t0 := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	logged := 0
	for i := range 60 { // two minutes of retries every 2 s
		if f.failure(t0.Add(time.Duration(i) * 2 * time.Second)) {
			logged++
		}
	}
	if logged != 2 {
		t.Fatalf("60 failed reads over 2 minutes logged %d times, want 2 (the first, then a minute later)", logged)
	}
	if n := f.success(); n != 60 {
		t.Fatalf("the success after 60 failures reports %d", n)
	}
	if n := f.success(); n != 0 {
		t.Fatalf("a success after a success reports %d failures", n)
	}
	if !f.failure(t0.Add(3 * time.Minute)) {
		t.Fatal("the first failure after a success is not logged")
	}
}
