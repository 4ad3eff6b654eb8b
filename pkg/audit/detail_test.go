package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
)

// TestDetailBytesAsMap: records built with their detail as fields are, byte
// for byte, what encoding/json writes for the record with the detail map
// built as before (every key and value through Text, a call's method and
// code added last, under call.* where the component has the key), for details of every size, hostile text, keys a
// component shares with the call's record, and more fields than the
// builder's room on the stack.
func TestDetailBytesAsMap(t *testing.T) {
	start := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	b := NewBuilder("ticket", func() time.Time { return start.Add(1500 * time.Microsecond) })
	many := map[string]string{}
	for i := range 3 * maxDetail {
		many[strings.Repeat("k", i%5)+string(rune('a'+i))] = strings.Repeat("v", i)
	}
	details := []map[string]string{
		nil, {}, {"a": "1"},
		{"kind": "ST", "serial": "0123", "service": "https://a.example/?x=<1>&y=2", "app_id": "app", "session_id": "s"},
		{"z": "\x00\n\u2028", "é": "\xff", "\\": `"`, strings.Repeat("x", 2*MaxText): strings.Repeat("y", 3*MaxText)},
		{DetailMethod: "mine", DetailGRPCCode: "mine too", "code": "INVALID_TICKET"},
		many,
	}
	// old is the detail map as the builder made it before (with Fields
	// set after Detail's entries, one by one).
	old := func(d map[string]string, fields []events.DetailField, call *grpcx.Call) map[string]string {
		m := map[string]string(nil)
		if len(d) > 0 || len(fields) > 0 {
			m = map[string]string{}
			for k, v := range d {
				m[Text(k)] = Text(v)
			}
			for _, f := range fields {
				m[Text(f.Key)] = Text(f.Value)
			}
		}
		if call != nil {
			if m == nil {
				m = map[string]string{}
			}
			set := func(k, v string) { // the component's own key stays
				if _, taken := m[k]; taken {
					k = DetailCallPrefix + k
				}
				m[k] = v
			}
			set(DetailMethod, Text(strings.TrimPrefix(call.Method, "/")))
			set(DetailGRPCCode, call.Code.String())
		}
		return m
	}
	check := func(name string, ev events.Event, want map[string]string) {
		t.Helper()
		var rec events.AuditRecord
		if err := json.Unmarshal(ev.Payload, &rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rec.Detail = want
		w, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ev.Payload, w) {
			t.Errorf("%s:\n got %s\nwant %s", name, ev.Payload, w)
		}
	}
	ctx := caller.With(context.Background(), &caller.Caller{RequestID: "req-1", ClientIP: netip.MustParseAddr("203.0.113.7")})
	f := func(kv ...string) (out []events.DetailField) {
		for i := 0; i < len(kv); i += 2 {
			out = append(out, events.DetailField{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	fieldSets := [][]events.DetailField{nil, f("kind", "ST", "serial", "0123", "app_id", "app"),
		f("a", "from fields", "a", "later", DetailMethod, "mine", "\n", "\x00", strings.Repeat("é", MaxText), "x")}
	for i, d := range details {
		for j, fields := range fieldSets {
			name := string(rune('0'+i)) + "/" + string(rune('0'+j))
			a := Action{API: "ticket.issue", Subject: "user:u1", Result: ResultSuccess, Reason: "OK", Start: start, Detail: d,
				Fields: fields}
			check("event "+name, b.Event(ctx, a), old(d, fields, nil))
			check("later "+name, b.Later(ctx, a).Event(), old(d, fields, nil))
			call := grpcx.Call{Method: "/uias.ticket.v1.TicketService/ValidateServiceTicket", Start: start,
				Duration: 2 * time.Millisecond, Code: codes.NotFound, Record: &callRecord{l: laterAction{b: b, c: &caller.Caller{},
					end: start, a: a}, publish: func(events.Later) {}}}
			check("call "+name, AccessOf(context.Background(), "ticket", call).Event(), old(d, fields, &call))
			check("later appended "+name, appendedEvent(t, b.Later(ctx, a)), old(d, fields, nil))
			call.Record = &callRecord{l: laterAction{b: b, c: &caller.Caller{}, end: start, a: a}, publish: func(events.Later) {}}
			check("call appended "+name, appendedEvent(t, AccessOf(context.Background(), "ticket", call)), old(d, fields, &call))
		}
	}
}

// TestOwnDetailAsGiven: a component's own fields (Action.Own) are stored
// as given, without Text (only JSON-escaped), and count over Fields and
// Detail of the same key; the caller-supplied Fields and Detail beside
// them are still made safe.
func TestOwnDetailAsGiven(t *testing.T) {
	start := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	b := NewBuilder("ticket", func() time.Time { return start })
	long := strings.Repeat("s", 2*MaxText)
	a := Action{API: "ticket.validate", Subject: "user:u1", Result: ResultSuccess, Reason: "OK", Start: start,
		Detail: map[string]string{"kind": "from detail", "d": "x\ny"},
		Fields: []events.DetailField{{Key: "service", Value: "https://a.example/\u202e\x00"}, {Key: "serial", Value: "from fields"}},
		Own:    []events.DetailField{{Key: "kind", Value: "ST"}, {Key: "serial", Value: long}, {Key: "q", Value: `"<\`}}}
	want := map[string]string{"d": Text("x\ny"), "service": Text("https://a.example/\u202e\x00"),
		"kind": "ST", "serial": long, "q": `"<\`}
	ctx := caller.With(context.Background(), &caller.Caller{RequestID: "req-1"})
	for name, ev := range map[string]events.Event{"event": b.Event(ctx, a), "later": b.Later(ctx, a).Event()} {
		var rec events.AuditRecord
		if err := json.Unmarshal(ev.Payload, &rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(rec.Detail) != len(want) {
			t.Errorf("%s: detail %q, want %q", name, rec.Detail, want)
		}
		for k, v := range want {
			if rec.Detail[k] != v {
				t.Errorf("%s: detail[%q] = %q, want %q", name, k, rec.Detail[k], v)
			}
		}
		if rec.Detail["service"] == "https://a.example/\u202e\x00" {
			t.Errorf("%s: a caller's field was stored unescaped", name)
		}
	}
}

// TestNamesBuiltOnce: an API's subject and type are those concatenated
// per event, the same strings every time, and a builder keeps at most
// maxNames APIs (beyond, they are made per event, still right).
func TestNamesBuiltOnce(t *testing.T) {
	b := NewBuilder("ticket", nil)
	ctx := context.Background()
	for i := range maxNames + 10 {
		api := "api." + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		for range 2 {
			ev := b.Event(ctx, Action{API: api, Result: ResultSuccess, Start: time.Now()})
			if ev.Subject != "uias.audit.ticket."+api || ev.Type != "audit."+api {
				t.Fatalf("%s: subject %q type %q", api, ev.Subject, ev.Type)
			}
		}
	}
	if n := len(*b.names.m.Load()); n != maxNames {
		t.Errorf("%d names kept, want %d", n, maxNames)
	}
	n1, n2 := b.namesOf("api.a"), b.namesOf("api.a")
	if unsafe.StringData(n1.subject) != unsafe.StringData(n2.subject) {
		t.Error("an API's subject was built again")
	}
	var zero Builder // not from NewBuilder: names made per event
	zero.component = "c"
	if n := zero.namesOf("x"); n.subject != "uias.audit.c.x" || n.typ != "audit.x" {
		t.Errorf("zero builder: %+v", n)
	}
}

// appendedEvent is l's event built as a publisher builds it
// (events.Appender), into a buffer holding something already: that stays,
// the payload follows it and is capped at its end.
func appendedEvent(t *testing.T, l events.Later) events.Event {
	t.Helper()
	a, ok := l.(events.Appender)
	if !ok {
		t.Fatalf("%T is not an events.Appender", l)
	}
	buf := append(make([]byte, 0, 8), "before"...)
	ev, buf := a.AppendEvent(buf)
	if string(buf[:6]) != "before" || !bytes.Equal(buf[6:], ev.Payload) || cap(ev.Payload) != len(ev.Payload) {
		t.Fatalf("buffer %q, payload %q (cap %d)", buf, ev.Payload, cap(ev.Payload))
	}
	return ev
}
