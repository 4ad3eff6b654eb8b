package audit_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
)

// An access record carries the bank API standard's fields: serial number,
// App_ID, API id, duration, time, result and client IP, with ID numbers
// masked.
func TestAccessEvent(t *testing.T) {
	start := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	ctx := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "oa"}, RequestID: "req-7",
		ClientIP: netip.MustParseAddr("198.51.100.7")})
	ev := audit.AccessEvent(ctx, "identity", grpcx.Call{Method: "/uias.identity.v1.AuthService/Authenticate",
		Start: start, Duration: 2500 * time.Microsecond, Code: codes.OK})
	if ev.Subject != "uias.audit.identity.access" || ev.Type != audit.TypeAccess || ev.ID == "" {
		t.Fatalf("event %s %s %q", ev.Subject, ev.Type, ev.ID)
	}
	if err := events.ValidateEvent(ev); err != nil {
		t.Fatal(err)
	}
	rec, keys := decode(t, ev)
	if rec.Serial != "req-7" || rec.AppID != "oa" || rec.API != "uias.identity.v1.AuthService/Authenticate" ||
		rec.DurationMS != 2.5 || !rec.Time.Equal(start.Add(2500*time.Microsecond)) || rec.Result != audit.ResultSuccess ||
		rec.Reason != "OK" || rec.ClientIP != "198.51.100.7" || rec.Actor != "app:oa" || rec.Detail["code"] != "OK" {
		t.Fatalf("record %+v", rec)
	}
	for _, k := range []string{"serial", "app_id", "api", "duration_ms", "time", "result", "client_ip"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("record lacks %q", k)
		}
	}

	// A refused call before caller auth: what the trusted edge asserted,
	// the request id of the call, the reason; ID numbers masked.
	octx := grpcx.WithOrigin(grpcx.WithRequestID(context.Background(), "req-8"),
		grpcx.Origin{ClientIP: netip.MustParseAddr("2001:db8::1"), App: "110101199003074518"})
	rec, _ = decode(t, audit.AccessEvent(octx, "ticket", grpcx.Call{Method: "/uias.ticket.v1.X/Y", Start: start,
		Code: codes.PermissionDenied, Reason: "APP_NOT_ALLOWED"}))
	if rec.Serial != "req-8" || rec.Result != audit.ResultDenied || rec.Reason != "APP_NOT_ALLOWED" ||
		rec.ClientIP != "2001:db8::1" || rec.AppID == "110101199003074518" || rec.AppID == "" {
		t.Fatalf("refused call record %+v", rec)
	}
	// An application identified by its address alone (the legacy
	// transports' ip_only mode): the record says so.
	ictx := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "oa"}, AuthMode: caller.AuthModeIPOnly})
	rec, _ = decode(t, audit.AccessEvent(ictx, "identity", grpcx.Call{Method: "/uias.identity.v1.AuthService/Authenticate",
		Start: start, Code: codes.OK}))
	if rec.AppID != "oa" || rec.Detail[audit.DetailAuthMode] != "ip_only" {
		t.Fatalf("ip_only call record %+v", rec)
	}
	b := audit.NewBuilder("identity", func() time.Time { return start })
	rec, _ = decode(t, b.Event(ictx, audit.Action{API: "authenticate", Result: audit.ResultSuccess, Reason: "OK", Start: start,
		Detail: map[string]string{audit.DetailAuthMode: "forged"}}))
	if rec.Detail[audit.DetailAuthMode] != "ip_only" {
		t.Fatalf("audit record of an ip_only call %+v", rec)
	}
	rec, _ = decode(t, audit.AccessEvent(context.Background(), "ticket", grpcx.Call{Method: "/x/y", Code: codes.Unavailable}))
	if rec.Result != audit.ResultFailure || rec.Reason != "Unavailable" || rec.Actor != "anonymous" {
		t.Fatalf("failed call record %+v", rec)
	}

	// Built into a publisher's buffer (events.Appender), the record is the
	// same, after what the buffer held.
	a := audit.NewAccess(ctx, "identity", grpcx.Call{Method: "/uias.identity.v1.AuthService/Authenticate",
		Start: start, Duration: 2500 * time.Microsecond, Code: codes.OK})
	own := a.Event()
	buf := []byte("earlier payloads")
	appended, buf := a.AppendEvent(buf)
	if string(appended.Payload) != string(own.Payload) || string(buf) != "earlier payloads"+string(own.Payload) ||
		cap(appended.Payload) != len(appended.Payload) || appended.Subject != own.Subject || appended.Type != own.Type ||
		!appended.Time.Equal(own.Time) || appended.ID == "" || appended.ID == own.ID {
		t.Fatalf("appended %+v (buffer %q), built alone %+v", appended, buf, own)
	}
}
