package audit

import (
	"context"
	"strings"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
)

// One record per call (ADR 0007 amendment): a component whose audit record
// of an API call tells what the call did (ticket.validate: whose ticket,
// for which service, accepted or refused and why) hands it to the call with
// Builder.ForCall instead of publishing it; the call's access record is
// then that record, completed with what an access record carries (the
// call's method and status code in the detail, its duration and end, the
// request id, App_ID, actor and client address the edge vouched for when
// the component's caller has none). Audit's queries and reports find it
// under the component's API (ticket.validate), as before; the call leaves
// no record under its gRPC method.

// Detail keys a call's record adds (the component's own detail may use
// "code" for something else: the CAS code of a refusal). They never
// overwrite the component's detail: when it has a key of that name, the
// call's value goes under "call." + the key (DetailCallPrefix).
const (
	DetailCallPrefix = "call."
	DetailMethod     = "method"    // the gRPC method, "uias.ticket.v1.TicketService/ValidateServiceTicket"
	DetailGRPCCode   = "grpc_code" // the call's status code, "OK"
)

// callRecord is a component's record of a call, handed to the call.
type callRecord struct {
	l       laterAction
	publish func(events.Later) // how it goes out if the process keeps no access record of the call
	access  Access             // the call's, set by AccessOf (in place: no allocation of its own)
	called  bool               // access is set
}

// ForCall hands the record of a, done in the API call served in ctx, to
// that call as its access record (see above); publish is how the record
// goes out if the process keeps no access record of the call after all
// (access records off). It reports false when ctx serves no call that
// leaves an access record (not served, nested, or a record handed
// already): the component then publishes the record itself. a, its
// Detail, Fields and Own must not change afterwards.
func (b *Builder) ForCall(ctx context.Context, a Action, publish func(events.Later)) bool {
	return grpcx.HandRecord(ctx, &callRecord{l: laterAction{b: b, c: caller.From(ctx), end: b.now(), a: a}, publish: publish})
}

// AccessOf is the access record of call c served for component: the
// record the call's handler handed (Builder.ForCall), else NewAccess's.
func AccessOf(ctx context.Context, component string, c grpcx.Call) events.Later {
	if r, ok := c.Record.(*callRecord); ok {
		r.access, r.called = newAccess(ctx, component, c), true
		return r
	}
	return NewAccess(ctx, component, c)
}

// NotKept publishes, the component's way, the record handed to call c
// (if any) when the process keeps no access record of c.
func NotKept(c grpcx.Call) {
	if r, ok := c.Record.(*callRecord); ok {
		r.publish(&r.l)
	}
}

// Event builds the record (events.Later).
func (r *callRecord) Event() events.Event { return r.event(nil) }

// AppendEvent builds the record with its payload appended to buf
// (events.Appender).
func (r *callRecord) AppendEvent(buf []byte) (events.Event, []byte) {
	ev := r.event(&buf)
	return ev, buf
}

func (r *callRecord) event(buf *[]byte) events.Event {
	l, acc := &r.l, &r.access
	if !r.called {
		return l.b.event(l.c, l.end, l.a, buf)
	}
	var room [maxDetail]events.DetailField
	rec, detail := l.b.record(l.c, l.end, l.a, room[:0])
	c, o := acc.call, acc.origin
	if rec.Serial == "" {
		rec.Serial, rec.TraceID = Text(acc.requestID), Text(acc.requestID)
	}
	if rec.AppID == "" {
		rec.AppID = mask(o.App) // what the trusted edge asserted
	}
	if rec.Actor == "anonymous" && o.Principal != "" {
		rec.Actor = mask("user:" + o.Principal)
	}
	if rec.ClientIP == "" && o.ClientIP.IsValid() {
		rec.ClientIP = o.ClientIP.String()
	}
	rec.DurationMS = float64(c.Duration.Microseconds()) / 1000
	rec.Time = c.Start.Add(c.Duration).UTC()
	detail = addCallDetail(detail, DetailMethod, Text(strings.TrimPrefix(c.Method, "/")))
	detail = addCallDetail(detail, DetailGRPCCode, c.Code.String())
	return l.b.eventOf(l.a.API, &rec, detail, buf)
}

// addCallDetail adds the call's detail key k with v to d, or, when the
// component's detail has k already, DetailCallPrefix + k.
func addCallDetail(d []events.DetailField, k, v string) []events.DetailField {
	for _, f := range d {
		if f.Key == k {
			k = DetailCallPrefix + k
			break
		}
	}
	return append(d, events.DetailField{Key: k, Value: v})
}
