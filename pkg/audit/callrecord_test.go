package audit

import (
	"context"
	"encoding/json"
	"maps"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
)

// A component's record handed to its call (ForCall) is the call's access
// record: the component's API, subject, result and detail, with the call's
// method, status code, duration and end, and the request id and client
// address the call carries when the component's caller has none. Not kept
// as an access record, it goes out the component's way. Outside a served
// call ForCall refuses it.
func TestCallRecord(t *testing.T) {
	start := time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	b := NewBuilder("ticket", func() time.Time { return start.Add(time.Millisecond) })
	a := Action{API: "ticket.validate", Subject: "user:u1", Org: "hr", Result: ResultFailure, Reason: "UNKNOWN_OR_USED",
		Start: start, Detail: map[string]string{"code": "INVALID_TICKET", "service": "https://a.example.com/"}}
	var published []events.Later
	publish := func(l events.Later) { published = append(published, l) }
	if b.ForCall(context.Background(), a, publish) {
		t.Fatal("ForCall outside a served call")
	}
	r := &callRecord{l: laterAction{b: b, c: &caller.Caller{}, end: start.Add(time.Millisecond), a: a}, publish: publish}
	ctx := grpcx.WithOrigin(grpcx.WithRequestID(context.Background(), "req-9"), grpcx.Origin{ClientIP: netip.MustParseAddr("198.51.100.9")})
	call := grpcx.Call{Method: "/uias.ticket.v1.TicketService/ValidateServiceTicket", Start: start, Duration: 3 * time.Millisecond,
		Code: codes.OK, Record: r}
	ev := AccessOf(ctx, "ticket", call).Event()
	if ev.Subject != "uias.audit.ticket.ticket.validate" || ev.Type != "audit.ticket.validate" || ev.ID == "" {
		t.Fatalf("event %s %s %q", ev.Subject, ev.Type, ev.ID)
	}
	var rec events.AuditRecord
	if err := json.Unmarshal(ev.Payload, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.API != "ticket.validate" || rec.Subject != "user:u1" || rec.Org != "hr" || rec.Result != ResultFailure ||
		rec.Reason != "UNKNOWN_OR_USED" || rec.Serial != "req-9" || rec.TraceID != "req-9" || rec.ClientIP != "198.51.100.9" ||
		rec.DurationMS != 3 || !rec.Time.Equal(start.Add(3*time.Millisecond)) || rec.Detail["code"] != "INVALID_TICKET" ||
		rec.Detail["service"] != "https://a.example.com/" || rec.Detail[DetailMethod] != "uias.ticket.v1.TicketService/ValidateServiceTicket" ||
		rec.Detail[DetailGRPCCode] != "OK" {
		t.Fatalf("record %+v", rec)
	}
	if len(a.Detail) != 2 {
		t.Fatalf("the action's detail changed: %v", a.Detail)
	}
	// The component's own "method" and "grpc_code" are kept; the call's
	// go under call.method and call.grpc_code.
	own := a
	own.Detail = map[string]string{DetailMethod: "the component's", DetailGRPCCode: "its own"}
	r = &callRecord{l: laterAction{b: b, c: &caller.Caller{}, end: start.Add(time.Millisecond), a: own}, publish: publish}
	call.Record = r
	rec = events.AuditRecord{}
	if err := json.Unmarshal(AccessOf(ctx, "ticket", call).Event().Payload, &rec); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{DetailMethod: "the component's", DetailGRPCCode: "its own",
		"call.method": "uias.ticket.v1.TicketService/ValidateServiceTicket", "call.grpc_code": "OK"}; !maps.Equal(rec.Detail, want) {
		t.Fatalf("detail %v, want %v", rec.Detail, want)
	}
	if len(own.Detail) != 2 {
		t.Fatalf("the action's detail changed: %v", own.Detail)
	}
	call.Record = nil
	if AccessOf(ctx, "ticket", grpcx.Call{Method: "/x/y"}).Event().Type != TypeAccess {
		t.Fatal("a call without a record of its own")
	}
	NotKept(grpcx.Call{Method: "/x/y"})
	call.Record = &callRecord{l: laterAction{b: b, c: &caller.Caller{}, end: start.Add(time.Millisecond), a: a}, publish: publish}
	NotKept(call)
	if len(published) != 1 || published[0].Event().Subject != "uias.audit.ticket.ticket.validate" {
		t.Fatalf("published %v", published)
	}
}
