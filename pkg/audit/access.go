package audit

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/ids"
	ulog "github.com/uias/uias/pkg/log"
)

// Access records: the access log the bank API standard asks for, one record
// per API call, whatever it did: transaction serial number (the request id),
// App_ID, API id (the gRPC method), call duration, timestamp, result and
// client IP, with account and ID numbers masked. The servers of every
// process make them in one place (grpcx.ServerOptions.OnCall, wired by
// pkg/module), not the components.
const (
	// TypeAccess is the event type of access records; their subject is
	// uias.audit.<component>.access.
	// Their API id is the gRPC method without the leading slash,
	// "uias.identity.v1.AuthService/Authenticate".
	TypeAccess = "access"
)

// AccessSubject is the subject of component's access records.
func AccessSubject(component string) string { return "uias.audit." + component + "." + TypeAccess }

// accessSubjects holds AccessSubject of each component that made a record
// (a handful: the components of the process).
var accessSubjects sync.Map

// accessSubject is AccessSubject(component), made once per component.
func accessSubject(component string) string {
	if s, ok := accessSubjects.Load(component); ok {
		return s.(string)
	}
	s := AccessSubject(component)
	accessSubjects.Store(component, s)
	return s
}

// AccessResult is the result an access record gives a call of code.
func AccessResult(code codes.Code) string {
	switch code {
	case codes.OK:
		return ResultSuccess
	case codes.PermissionDenied, codes.Unauthenticated:
		return ResultDenied
	}
	return ResultFailure
}

// AccessEvent builds the access record of call c served for component, in
// the call's context (caller.From: App_ID and actor; the request id is the
// serial and trace id; the client address).
func AccessEvent(ctx context.Context, component string, c grpcx.Call) events.Event {
	return NewAccess(ctx, component, c).Event()
}

// Access is what the access record of a call is made of, taken from the
// call's context when it ends (no encoding, no id, no masking: a few
// copies). Its Event builds the record later, off the call's path (an
// events.Publisher does it with AddLater).
type Access struct {
	component string
	call      grpcx.Call
	caller    *caller.Caller // callers in a context are never changed
	origin    grpcx.Origin
	requestID string
}

// NewAccess takes what the access record of call c served for component
// needs from the call's context.
func NewAccess(ctx context.Context, component string, c grpcx.Call) *Access {
	a := newAccess(ctx, component, c)
	return &a
}

func newAccess(ctx context.Context, component string, c grpcx.Call) Access {
	return Access{component: component, call: c, caller: caller.From(ctx), origin: grpcx.OriginFrom(ctx),
		requestID: grpcx.RequestID(ctx)}
}

// Event builds the access record (events.Later).
func (a *Access) Event() events.Event { return a.event(nil) }

// AppendEvent builds the access record with its payload appended to buf
// (events.Appender).
func (a *Access) AppendEvent(buf []byte) (events.Event, []byte) {
	ev := a.event(&buf)
	return ev, buf
}

func (a *Access) event(buf *[]byte) events.Event {
	cl, o, c := a.caller, a.origin, a.call
	rid := cl.RequestID
	if rid == "" {
		rid = a.requestID
	}
	app := cl.AppID()
	if app == "" {
		app = o.App // what the trusted edge asserted
	}
	actor := cl.Actor()
	if actor == "anonymous" && o.Principal != "" {
		actor = "user:" + o.Principal
	}
	reason := c.Reason
	if reason == "" && c.Code != codes.OK {
		reason = c.Code.String()
	}
	if reason == "" {
		reason = "OK"
	}
	end := c.Start.Add(c.Duration).UTC()
	rec := events.AuditRecord{
		Serial: Text(rid), TraceID: Text(rid), AppID: mask(app), API: Text(strings.TrimPrefix(c.Method, "/")),
		Actor: mask(actor), Result: AccessResult(c.Code), Reason: Text(reason),
		DurationMS: float64(c.Duration.Microseconds()) / 1000, Time: end,
	}
	ip := cl.ClientIP
	if !ip.IsValid() {
		ip = o.ClientIP
	}
	if ip.IsValid() {
		rec.ClientIP = ip.String()
	}
	ev := events.Event{ID: ids.New(), Subject: accessSubject(a.component), Type: TypeAccess, Time: end}
	detail := [4]events.DetailField{{Key: "code", Value: c.Code.String()}}
	n := 1
	if cl.PrincipalLogin != "" {
		detail[n], n = events.DetailField{Key: DetailActorLogin, Value: Text(cl.PrincipalLogin)}, n+1
	}
	if cl.Remark != "" {
		detail[n], n = events.DetailField{Key: DetailRemark, Value: cl.Remark}, n+1 // checked text, kept whole
	}
	if cl.AuthMode != "" {
		detail[n], n = events.DetailField{Key: DetailAuthMode, Value: cl.AuthMode}, n+1 // a constant
	}
	payloadInto(&ev, &rec, detail[:n], buf)
	return ev
}

// mask makes a caller-supplied value safe (Text) with ID and phone numbers
// masked (the audit log masks account numbers again at ingest).
func mask(s string) string { return Text(ulog.MaskText(s)) }

// The records a publisher builds into its buffer (events.Appender).
var (
	_ events.Appender = (*Access)(nil)
	_ events.Appender = (*callRecord)(nil)
	_ events.Appender = (*laterAction)(nil)
)
