package audit

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
)

// BenchmarkCallRecordEvent builds the record of a ticket validation handed
// to its call (ForCall, AccessOf): what is built for every ticket
// validated over gRPC, its detail map built in the loop as a component
// builds it for each call.
func BenchmarkCallRecordEvent(b *testing.B) {
	start := time.Now()
	bl := NewBuilder("ticket", nil)
	a := Action{API: "ticket.validate", Subject: "user:0193a8c2f1e07d4c", Org: "org-1", Result: ResultSuccess, Reason: "OK",
		Start: start}
	serial, service, app := "0123456789abcdef0123456789abcdef", "https://app.example.com/cas/login", "bench-app-0001"
	call := grpcx.Call{Method: "/uias.ticket.v1.TicketService/ValidateServiceTicket", Start: start,
		Duration: 800 * time.Microsecond, Code: codes.OK}
	ctx := grpcx.WithRequestID(context.Background(), "0193a8c2f1e07d4c9b2a5e6f7d8c9b0a")
	b.ReportAllocs()
	for b.Loop() {
		a.Detail = map[string]string{"kind": "ST", "serial": serial, "service": service, "app_id": app, "pgt": "false"}
		call.Record = &callRecord{l: laterAction{b: bl, c: &caller.Caller{}, end: start, a: a}}
		_ = AccessOf(ctx, "ticket", call).Event()
	}
}

// BenchmarkCallRecordEventFields is BenchmarkCallRecordEvent with the
// detail as Fields (how the ticket component gives it).
func BenchmarkCallRecordEventFields(b *testing.B) {
	start := time.Now()
	bl := NewBuilder("ticket", nil)
	call := grpcx.Call{Method: "/uias.ticket.v1.TicketService/ValidateServiceTicket", Start: start,
		Duration: 800 * time.Microsecond, Code: codes.OK}
	ctx := grpcx.WithRequestID(context.Background(), "0193a8c2f1e07d4c9b2a5e6f7d8c9b0a")
	serial, service, app := "0123456789abcdef0123456789abcdef", "https://app.example.com/cas/login", "bench-app-0001"
	b.ReportAllocs()
	for b.Loop() {
		// Built in the loop, as a component builds it for each call.
		a := Action{API: "ticket.validate", Subject: "user:0193a8c2f1e07d4c", Org: "org-1", Result: ResultSuccess, Reason: "OK",
			Start: start, Fields: []events.DetailField{{Key: "kind", Value: "ST"}, {Key: "serial", Value: serial},
				{Key: "service", Value: service}, {Key: "app_id", Value: app}, {Key: "pgt", Value: "false"}}}
		call.Record = &callRecord{l: laterAction{b: bl, c: &caller.Caller{}, end: start, a: a}}
		_ = AccessOf(ctx, "ticket", call).Event()
	}
}
