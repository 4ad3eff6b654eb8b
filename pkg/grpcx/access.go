package grpcx

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
)

// MetadataNested marks a call that a UIAS component makes while it serves
// another call (the outer call is the API call, already recorded). A server
// believes it only over a trusted channel: in-process, or signed with the
// internal key together with the origin (see ServerOptions.InternalKey).
const MetadataNested = "x-uias-nested"

// Call is one finished call as the server saw it, for
// ServerOptions.OnCall (the access log of every API call).
type Call struct {
	// Method is the full method name, "/uias.identity.v1.AuthService/Authenticate".
	Method string
	// Start is when the call arrived; Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// Code is the call's status code (Internal for a handler that panicked).
	Code codes.Code
	// Reason is the reason of the error's ErrorInfo ("" when none, or OK).
	Reason string
	// Nested: a UIAS component made the call while serving another call
	// (over a trusted channel), so it is part of that API call, not one
	// of its own.
	Nested bool
	// Refused: caller authentication refused the call (the caller was not
	// established: bad or missing credentials, or a refusal before the
	// caller was known).
	Refused bool
	// App is the App_ID the handler named with NameApp ("" if none).
	App string
	// Record is what the handler handed with HandRecord to be the call's
	// access record (nil: none).
	Record any
}

// callState carries, from the access interceptor to caller auth, the
// context in which the caller is known.
type callState struct {
	authed  context.Context
	nested  bool   // see nestedCall
	refused bool   // see Call.Refused
	app     string // see NameApp
	record  any    // see HandRecord
}

// servingKey marks the context of a call this server serves: calls made
// with it (or a context derived from it) are nested (MetadataNested). The
// server's own mark holds the call's *callState (one context value for
// both).
type servingKey struct{}

// Serving reports whether ctx belongs to a call a UIAS server is serving
// (outgoing calls made with it are marked nested).
func Serving(ctx context.Context) bool { return ctx.Value(servingKey{}) != nil }

// PartOf returns ctx marked as serving an API call whose access record
// another call made with it already carries (an edge handler that makes
// two component calls for one request marks the second): calls made with
// the result are nested (MetadataNested), so a server believes it only
// over a trusted channel, as for calls made while serving.
func PartOf(ctx context.Context) context.Context { return context.WithValue(ctx, servingKey{}, true) }

// skipAccess: health checks and reflection are not API calls.
func skipAccess(method string) bool {
	return strings.HasPrefix(method, healthPrefix) || strings.HasPrefix(method, "/grpc.reflection.")
}

// nestedCall reports whether the incoming call says it is nested and comes
// over a trusted channel (checked with the origin by the client ip
// interceptor, which runs first).
func nestedCall(ctx context.Context) bool {
	return nestedOf(ctx, callMD(ctx))
}

// nestedOf is nestedCall with the call's metadata given.
func nestedOf(ctx context.Context, md metadata.MD) bool {
	return firstValue(md, MetadataNested) != "" && FromComponent(ctx)
}

// startCall prepares the context of a call for the access log (the client
// ip interceptor has run: whether the call is nested is known).
func (c *chain) startCall(ctx context.Context, md metadata.MD) (context.Context, *callState) {
	st := &callState{nested: nestedOf(ctx, md)}
	return context.WithValue(ctx, servingKey{}, st), st
}

// HandRecord hands rec to the API call being served in ctx to be its
// access record (ServerOptions.OnCall finds it in Call.Record): a component
// whose own audit record of the call tells what its access record would
// makes one record instead of two. It reports false, keeping nothing, when
// ctx serves no call that leaves an access record (no OnCall, health or
// reflection, a nested call) or the call holds a record already: the
// component then records as it would without. Only the handler's
// goroutine may call it, before the handler returns.
func HandRecord(ctx context.Context, rec any) bool {
	st, ok := ctx.Value(servingKey{}).(*callState)
	if !ok || st.nested || st.record != nil || rec == nil {
		return false
	}
	st.record = rec
	return true
}

// NameApp names, for the API call being served in ctx, the application it
// was made for when caller authentication established none: a CAS ticket
// validation is made by the application the ticket was issued for, known
// once the ticket is (ServerOptions.OnCall finds it in Call.App; the
// per-application metrics count the call under it). It reports false when
// ctx serves no call that OnCall hears of. Only the handler's goroutine
// may call it, before the handler returns.
func NameApp(ctx context.Context, appID string) bool {
	st, ok := ctx.Value(servingKey{}).(*callState)
	if !ok || appID == "" {
		return false
	}
	st.app = appID
	return true
}

func (c *chain) endCall(ctx context.Context, st *callState, method string, start time.Time, d time.Duration, err error, completed bool) {
	call := Call{Method: method, Start: start, Duration: d, Code: callCode(err, completed), Nested: st.nested, Refused: st.refused, App: st.app, Record: st.record}
	if s, ok := status.FromError(err); ok && err != nil {
		if info := apierr.Info(s); info != nil {
			call.Reason = info.GetReason()
		}
	}
	if st.authed != nil {
		ctx = st.authed
	}
	c.onCall(ctx, call)
}

func (c *chain) streamAccess(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	if c.onCall == nil || skipAccess(info.FullMethod) {
		return handler(srv, ss)
	}
	start := time.Now()
	ctx, st := c.startCall(ss.Context(), callMD(ss.Context()))
	completed := false
	defer func() { c.endCall(ctx, st, info.FullMethod, start, time.Since(start), err, completed) }()
	err = handler(srv, withStreamContext(ss, ctx))
	completed = true
	return err
}

// noteRefused tells the access interceptor of the call that caller
// authentication refused it.
func noteRefused(ctx context.Context) {
	if st, ok := ctx.Value(servingKey{}).(*callState); ok {
		st.refused = true
	}
}

// noteAuthed hands the context in which the caller is known to the access
// interceptor of the call.
func noteAuthed(before, after context.Context) {
	if st, ok := before.Value(servingKey{}).(*callState); ok {
		st.authed = after
	}
}
