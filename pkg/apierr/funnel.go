package apierr

import (
	"context"
	"errors"
	"maps"
	"strconv"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// answer is what the funnel sends for an error, before it becomes a status.
type answer struct {
	reason Reason
	msg    string
	meta   map[string]string
	// verbatim is set for a status that already came out of a UIAS funnel
	// (e.g. relayed from another service); it is sent unchanged.
	verbatim *status.Status
	// note, when set, is a log line the operator should see: the answer
	// hides something (an internal error, an unregistered reason, ...).
	note  string
	level zapcore.Level
}

func (a answer) code() codes.Code {
	if a.verbatim != nil {
		return a.verbatim.Code()
	}
	return a.reason.Code.GRPCCode()
}

func (a answer) status() *status.Status {
	if a.verbatim != nil {
		return a.verbatim
	}
	msg := a.msg
	if msg == "" || a.reason.Code == Internal {
		msg = codeInfo[a.reason.Code].message // an internal error's text never leaves
	}
	md := maps.Clone(a.meta)
	delete(md, MetaLegacyCode)
	if a.reason.Legacy != 0 {
		if md == nil {
			md = map[string]string{}
		}
		md[MetaLegacyCode] = strconv.Itoa(a.reason.Legacy)
	}
	if len(md) == 0 {
		md = nil
	}
	st := status.New(a.reason.Code.GRPCCode(), msg)
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: a.reason.Name, Domain: Domain, Metadata: md}); err == nil {
		st = withInfo
	}
	return st
}

// ToStatus is the error funnel: it maps any error to a gRPC status error that
// is safe to send. nil stays nil. Every status it returns carries an
// ErrorInfo with Domain, so a status without one did not come from a UIAS
// funnel (the REST edge relies on this).
//
//   - *Error anywhere in the chain: its reason's registered code, its Message
//     (or a generic message for the code when empty; always the generic one
//     for Internal) and ErrorInfo{Reason, Domain, Metadata + legacy_code from
//     the table}. The cause (Err) is never included. A reason that is not
//     registered is answered as INTERNAL; so is an *Error with neither a
//     reason nor a known code. An *Error without a reason gets its code's
//     generic reason (e.g. NOT_FOUND).
//   - context.Canceled / context.DeadlineExceeded: CANCELED / DEADLINE_EXCEEDED
//     with a generic message.
//   - a gRPC status carrying a UIAS ErrorInfo (produced by a funnel, e.g. by
//     another service) passes through unchanged.
//   - any other gRPC status (from the gRPC library or a foreign peer): its
//     code with the code's generic reason; its message is kept for
//     caller-caused codes and replaced by a generic one for server-side codes
//     (Unknown, Internal, Unavailable, DeadlineExceeded, DataLoss, ...), whose
//     text may name internal hosts. Foreign details are dropped.
//   - anything else: codes.Internal "internal error", reason INTERNAL.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	return resolve(err).status().Err()
}

// ToStatusLogged is ToStatus that also writes one log line to log when the
// answer hides something an operator must see: an internal error (with its
// cause), a reason nobody registered, a code that contradicts its reason, or
// a server-side failure reported by a gRPC peer. Pass a logger that already
// names the request (request id, method). Causes are logged, never sent.
func ToStatusLogged(log *zap.Logger, err error) error {
	if err == nil {
		return nil
	}
	a := resolve(err)
	if a.note != "" && log != nil {
		if ce := log.Check(a.level, a.note); ce != nil {
			ce.Write(zap.String("reason", a.reason.Name), zap.String("error", err.Error()))
		}
	}
	return a.status().Err()
}

func resolve(err error) answer {
	if e, ok := As(err); ok {
		return domainAnswer(e)
	}
	if st, ok := grpcStatusOf(err); ok {
		return foreignAnswer(st)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return answer{reason: genericReason(Canceled)}
	case errors.Is(err, context.DeadlineExceeded):
		return answer{reason: genericReason(DeadlineExceeded)}
	}
	return internal("internal error")
}

func internal(note string) answer {
	return answer{reason: genericReason(Internal), note: note, level: zapcore.ErrorLevel}
}

func domainAnswer(e *Error) answer {
	name := e.Reason
	if name == "" {
		if _, known := codeInfo[e.Code]; !known {
			return internal("error with neither a reason nor a known code; answered as internal error")
		}
		name = e.Code.String()
	}
	r, ok := Lookup(name)
	if !ok {
		return internal("error reason is not registered (apierr.Register); answered as internal error")
	}
	if r.Code == Internal {
		return internal("internal error")
	}
	a := answer{reason: r, msg: e.Message, meta: e.Meta}
	if e.Code != 0 && e.Code != r.Code {
		a.note, a.level = "error code differs from the code registered for its reason; answered with the registered code", zapcore.ErrorLevel
	}
	return a
}

func foreignAnswer(st *status.Status) answer {
	if ourInfo(st) != nil {
		return answer{verbatim: st}
	}
	c := fromGRPC(st.Code())
	switch c {
	case InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, PermissionDenied,
		Unauthenticated, ResourceExhausted, Unimplemented:
		return answer{reason: genericReason(c), msg: st.Message()}
	case Canceled:
		return answer{reason: genericReason(c)}
	}
	// Server-side failures of a peer or of the gRPC library: the message
	// (which may name hosts) is logged, not sent.
	return answer{reason: genericReason(c), note: "failure reported by gRPC: " + st.Code().String() + ": " + st.Message(),
		level: zapcore.WarnLevel}
}

// grpcStatusOf returns the status carried by err or by an error in its chain,
// using the inner status itself (status.FromError would prepend the wrapping
// text to the message).
func grpcStatusOf(err error) (*status.Status, bool) {
	type grpcStatus interface{ GRPCStatus() *status.Status }
	var gs grpcStatus
	if !errors.As(err, &gs) {
		return nil, false
	}
	st := gs.GRPCStatus()
	if st == nil || st.Code() == codes.OK {
		return nil, false
	}
	return st, true
}

// ourInfo returns the UIAS ErrorInfo of st (nil when it has none).
func ourInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return info
		}
	}
	return nil
}

// Info returns the UIAS ErrorInfo of a status (nil when it has none: the
// status did not come out of a UIAS funnel, e.g. a client-side transport
// failure).
func Info(st *status.Status) *errdetails.ErrorInfo {
	if st == nil {
		return nil
	}
	return ourInfo(st)
}

// HTTPStatus is the REST status of st, derived from its code and ErrorInfo
// only: the registered reason's HTTP status when the reason is registered
// with st's code, otherwise the code's default (HTTPStatusOfCode).
func HTTPStatus(st *status.Status) int {
	if info := Info(st); info != nil {
		if r, ok := Lookup(info.GetReason()); ok && r.Code.GRPCCode() == st.Code() {
			return r.HTTPStatus()
		}
	}
	return HTTPStatusOfCode(st.Code())
}

// FromStatus converts a status error produced by ToStatus (typically received
// from another UIAS service) back into an *Error, so a caller can inspect the
// reason and metadata. It returns false when err carries no gRPC status.
// Statuses without a UIAS ErrorInfo get the reason of their code name.
func FromStatus(err error) (*Error, bool) {
	st, ok := grpcStatusOf(err)
	if !ok {
		return nil, false
	}
	e := &Error{Code: fromGRPC(st.Code()), Message: st.Message(), Err: err}
	if info := ourInfo(st); info != nil {
		e.Reason = info.GetReason()
		e.Meta = maps.Clone(info.GetMetadata())
	}
	if e.Reason == "" {
		e.Reason = e.Code.String()
	}
	return e, true
}

func fromGRPC(c codes.Code) Code {
	for code, i := range codeInfo {
		if i.grpc == c {
			return code
		}
	}
	return Internal
}
