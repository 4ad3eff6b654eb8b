// Package audit builds the audit records every UIAS component writes for
// security-relevant actions (logins, refused callers, admin changes, ...):
// serial/trace id, App_ID, API id, actor, subject, org, result, reason,
// duration, client IP and time, as events.AuditRecord payloads of AUDIT
// events. The component writes the event into its outbox (with the change
// it audits, when there is one), and the relay publishes it on the AUDIT
// stream.
//
// Records must hold no personal data in clear and no secrets: subjects are
// ids ("user:<id>"), details are masked by the caller.
package audit

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
)

// Results used across components.
const (
	ResultSuccess = "success"
	ResultFailure = "failure" // the caller's request failed (bad password, unknown account, ...)
	ResultDenied  = "denied"  // the caller may not do this (refused caller, not an admin, ...)
	// ResultIncomplete: the credentials were right, but the login needs
	// another step first (an administrator's password change): neither a
	// success (no token) nor a failed login (the failed-login reports do
	// not count it).
	ResultIncomplete = "incomplete"
)

// APICallerDenied is the API id of the record of a refused application
// caller (see Builder.CallerDenied).
const APICallerDenied = "caller.denied"

// Action is what a component audits.
type Action struct {
	API     string    // what was called, e.g. "authenticate", "user.create"
	Subject string    // what it was done to, e.g. "user:<id>", "app:<App_ID>"
	Org     string    // the org of the subject, if any
	Result  string    // ResultSuccess, ResultFailure, ResultDenied or a component's own
	Reason  string    // e.g. "OK", "BAD_CREDENTIALS"
	Start   time.Time // when the call started (the record's duration ends now)
	// AppID is the application the action concerns when no application
	// calls (e.g. the CAS pages refusing a person a service: the service's
	// application), so that the records of that application find it.
	AppID  string
	Detail map[string]string
	// Fields is more detail, as fields (no map to build and copy: what a
	// component auditing every call of a hot path gives); of the same key,
	// a field counts over Detail's entry and a later field over an earlier.
	Fields []events.DetailField
	// Own is detail the component made itself and knows to be safe: ids,
	// serials and codes it generated, never anything a caller sent (that
	// goes in Fields or Detail). It is stored as given, without Text's
	// scan and cap (still JSON-escaped); of the same key, an Own field
	// counts over Fields and Detail.
	Own []events.DetailField
}

// Builder makes the AUDIT events of one component.
type Builder struct {
	component string
	now       func() time.Time
	names     *nameCache // nil: names made per event
}

// names are the subject and type of the events of one API.
type names struct{ subject, typ string }

// nameCache keeps each API's subject and type, built once instead of
// concatenated per event (a component records every call of a hot path
// under a few APIs): read without a lock, replaced whole when an API is
// added.
type nameCache struct {
	m  atomic.Pointer[map[string]names]
	mu sync.Mutex
}

// maxNames bounds the APIs a builder keeps names for (a component has a
// few dozen; beyond, names are made per event).
const maxNames = 256

// namesOf returns the subject and type of api's events.
func (b *Builder) namesOf(api string) names {
	c := b.names
	if c != nil {
		if m := c.m.Load(); m != nil {
			if n, ok := (*m)[api]; ok {
				return n
			}
		}
	}
	n := names{subject: "uias.audit." + b.component + "." + api, typ: "audit." + api}
	if c == nil {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil && len(*old) >= maxNames {
		return n
	}
	m := make(map[string]names, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[api] = n
	c.m.Store(&m)
	return n
}

func lenOf(m *map[string]names) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// NewBuilder returns a builder for component (the events' subjects are
// uias.audit.<component>.<api>) on the clock now (nil: time.Now).
func NewBuilder(component string, now func() time.Time) *Builder {
	if now == nil {
		now = time.Now
	}
	return &Builder{component: component, now: now, names: &nameCache{}}
}

// Event builds the audit event of a, done for the caller in ctx
// (caller.From): its request id is the serial and trace id, its App_ID,
// actor and client IP are recorded.
func (b *Builder) Event(ctx context.Context, a Action) events.Event {
	return b.event(caller.From(ctx), b.now(), a, nil)
}

// Later is Event built later: the caller and the end are taken now, the
// record is encoded when the returned value's Event is called (by whoever
// publishes it, off the call's path). a, its Detail, Fields and Own must
// not change afterwards.
func (b *Builder) Later(ctx context.Context, a Action) events.Later {
	return &laterAction{b: b, c: caller.From(ctx), end: b.now(), a: a}
}

type laterAction struct {
	b   *Builder
	c   *caller.Caller // callers in a context are never changed
	end time.Time
	a   Action
}

func (l *laterAction) Event() events.Event { return l.b.event(l.c, l.end, l.a, nil) }

// AppendEvent builds the event with its payload appended to buf
// (events.Appender).
func (l *laterAction) AppendEvent(buf []byte) (events.Event, []byte) {
	ev := l.b.event(l.c, l.end, l.a, &buf)
	return ev, buf
}

// event is the event of a done for c, ending at end; its payload is
// appended to *buf when buf is not nil (see payloadInto).
func (b *Builder) event(c *caller.Caller, end time.Time, a Action, buf *[]byte) events.Event {
	var room [maxDetail]events.DetailField
	rec, detail := b.record(c, end, a, room[:0])
	return b.eventOf(a.API, &rec, detail, buf)
}

// DetailActorLogin is the detail key of the actor's login name when the
// record was written (caller.Caller.PrincipalLogin; 004 2.1.7 lists the
// administrator's name among a record's fields).
const DetailActorLogin = "actor_login"

// DetailAppIP is the detail key of the address a call came from when the
// record's client_ip is the person's address the calling application
// reported (caller.Caller.AppIP).
const DetailAppIP = "app_ip"

// DetailRemark is the detail key of the caller's remark on the call
// (caller.Caller.Remark).
const DetailRemark = "remark"

// DetailAuthMode is the detail key of how the calling application was
// identified when not by App_ID and secret (caller.Caller.AuthMode:
// caller.AuthModeIPOnly).
const DetailAuthMode = "auth_mode"

// maxDetail is how many detail fields a record is built with without a
// heap allocation.
const maxDetail = 12

// capped is s, escaped as Text does when it holds anything but printable
// ASCII, else cut at n bytes only (a verified value kept whole).
func capped(s string, n int) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return Text(s)
		}
	}
	return s[:min(len(s), n)]
}

// record is the audit record of a done for c, ending at end, without its
// detail: a.Detail's entries (made safe, Text) are appended to detail.
func (b *Builder) record(c *caller.Caller, end time.Time, a Action, detail []events.DetailField) (events.AuditRecord, []events.DetailField) {
	for k, v := range a.Detail {
		if k != DetailActorLogin && k != DetailAppIP && k != DetailRemark && k != DetailAuthMode { // the caller's alone (below)
			detail = append(detail, events.DetailField{Key: Text(k), Value: Text(v)})
		}
	}
	for _, f := range a.Fields {
		if f.Key != DetailActorLogin && f.Key != DetailAppIP && f.Key != DetailRemark && f.Key != DetailAuthMode {
			detail = append(detail, events.DetailField{Key: Text(f.Key), Value: Text(f.Value)})
		}
	}
	detail = append(detail, a.Own...)
	if c.PrincipalLogin != "" {
		detail = append(detail, events.DetailField{Key: DetailActorLogin, Value: Text(c.PrincipalLogin)})
	}
	if c.AppIP.IsValid() {
		// client_ip is the person's, as the application reported it
		detail = append(detail, events.DetailField{Key: DetailAppIP, Value: c.AppIP.String()})
	}
	if c.Remark != "" {
		detail = append(detail, events.DetailField{Key: DetailRemark, Value: c.Remark}) // checked text (grpcx), kept whole
	}
	if c.AuthMode != "" {
		detail = append(detail, events.DetailField{Key: DetailAuthMode, Value: c.AuthMode}) // a constant
	}
	if c.SignedKey != "" {
		// A signed call (caller.AuthenticateSigned): which key verified
		// it and, the evidence, what its signature covered. The values
		// were verified (base64, digits, the nonce's characters, a
		// printable target): kept whole, not cut as Text would.
		detail = append(detail, events.DetailField{Key: "signed_key", Value: c.SignedKey})
		if s := c.Signed; s != nil {
			detail = append(detail,
				events.DetailField{Key: "signature", Value: capped(s.Signature, 2048)},
				events.DetailField{Key: "signed_timestamp", Value: capped(s.Timestamp, 32)},
				events.DetailField{Key: "signed_nonce", Value: capped(s.Nonce, 128)},
				events.DetailField{Key: "signed_target", Value: capped(s.Target, 4096)},
				events.DetailField{Key: "signed_body_sha256", Value: capped(s.BodySHA256, 64)})
		}
	}
	// Subjects and details may hold what a caller sent (a login name, a
	// claimed App_ID): capped and escaped (Text), so a caller can neither
	// forge lines nor grow the log.
	rid := Text(c.RequestID)
	app := c.AppID()
	if app == "" {
		app = a.AppID
	}
	rec := events.AuditRecord{
		Serial: rid, TraceID: rid, AppID: Text(app), API: a.API,
		Actor: Text(c.Actor()), Subject: Text(a.Subject), Org: Text(a.Org), Result: a.Result, Reason: a.Reason,
		DurationMS: float64(end.Sub(a.Start).Microseconds()) / 1000, Time: end.UTC(),
	}
	if c.ClientIP.IsValid() {
		rec.ClientIP = c.ClientIP.String()
	}
	return rec, detail
}

// eventOf is the AUDIT event of rec, a record of api, with detail (in any
// order; of fields with the same key the last one given counts).
func (b *Builder) eventOf(api string, rec *events.AuditRecord, detail []events.DetailField, buf *[]byte) events.Event {
	n := b.namesOf(api)
	ev := events.Event{ID: ids.New(), Subject: n.subject, Type: n.typ, Time: rec.Time}
	payloadInto(&ev, rec, detail, buf)
	return ev
}

// payloadInto sets ev's payload to rec's JSON with detail: appended to
// *buf when buf is not nil (the buffer an events.Publisher passes to an
// events.Appender; the payload is capped at its end), else encoded on its
// own (encode). A record that cannot be encoded has no payload.
func payloadInto(ev *events.Event, rec *events.AuditRecord, detail []events.DetailField, buf *[]byte) {
	if buf == nil {
		ev.Payload = encode(rec, detail)
		return
	}
	n := len(*buf)
	b, err := rec.AppendJSONDetail(*buf, detail)
	if err != nil {
		*buf = b[:n]
		return
	}
	ev.Payload, *buf = b[n:len(b):len(b)], b
}

// scratch holds the buffers records are encoded into (encode).
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// encode returns rec's JSON with detail (events.AuditRecord.AppendJSONDetail,
// the bytes json.Marshal writes for rec with that detail map), encoded into
// a reused buffer and copied out at its size. A record json.Marshal would
// refuse (a NaN duration, a year past 9999: never made here) has no
// payload, as before.
func encode(rec *events.AuditRecord, detail []events.DetailField) []byte {
	bp := scratch.Get().(*[]byte)
	b, err := rec.AppendJSONDetail((*bp)[:0], detail)
	var out []byte
	if err == nil {
		out = bytes.Clone(b)
	}
	if cap(b) <= 64<<10 { // a huge record's buffer is not kept
		*bp = b
		scratch.Put(bp)
	}
	return out
}

// CallerDenied builds the record of an application caller refused for
// reason (see caller.AuthOptions.Denied): API caller.denied, subject
// "app:<appID>" with the claimed App_ID also in the detail, result denied.
func (b *Builder) CallerDenied(ctx context.Context, appID, reason string, start time.Time) events.Event {
	return b.Event(ctx, Action{API: APICallerDenied, Subject: "app:" + appID, Result: ResultDenied, Reason: reason,
		Start: start, Detail: map[string]string{"app_id": appID}})
}

// ResultOf is the result and reason of an administrator's change that
// ended with err: success and OK, or failure and the error's reason
// (ERROR when it names none).
func ResultOf(err error) (result, reason string) {
	if err == nil {
		return ResultSuccess, "OK"
	}
	if e, ok := apierr.As(err); ok && e.Reason != "" {
		return ResultFailure, e.Reason
	}
	return ResultFailure, "ERROR"
}
