// Package apierr defines the domain error type used across UIAS and the single
// funnel (ToStatus) that turns any error into a gRPC status that is safe to
// return to a caller.
//
// Handlers and services return *Error values (or wrap lower-level errors with
// Wrap). Everything else — SQL errors, network errors, panics turned into
// errors — is reported to the caller as codes.Internal "internal error" and
// never leaks its text. The full cause stays available to logs via Error().
package apierr

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain attached to every status produced by ToStatus.
const Domain = "uias.dev"

// ReasonInternal is the ErrorInfo reason used for errors that are not domain errors.
const ReasonInternal = "INTERNAL"

// Code classifies a domain error. The zero value is not a valid code; an
// *Error with an unknown code is reported as Internal.
type Code int

// Error codes. They map one-to-one onto gRPC codes of the same name.
const (
	InvalidArgument Code = iota + 1
	NotFound
	AlreadyExists
	FailedPrecondition
	PermissionDenied
	Unauthenticated
	ResourceExhausted
	Unavailable
	Internal
	DeadlineExceeded
	Canceled
)

var codeInfo = map[Code]struct {
	name    string
	grpc    codes.Code
	message string // default caller-facing message when Error.Message is empty
}{
	InvalidArgument:    {"INVALID_ARGUMENT", codes.InvalidArgument, "invalid argument"},
	NotFound:           {"NOT_FOUND", codes.NotFound, "not found"},
	AlreadyExists:      {"ALREADY_EXISTS", codes.AlreadyExists, "already exists"},
	FailedPrecondition: {"FAILED_PRECONDITION", codes.FailedPrecondition, "failed precondition"},
	PermissionDenied:   {"PERMISSION_DENIED", codes.PermissionDenied, "permission denied"},
	Unauthenticated:    {"UNAUTHENTICATED", codes.Unauthenticated, "unauthenticated"},
	ResourceExhausted:  {"RESOURCE_EXHAUSTED", codes.ResourceExhausted, "resource exhausted"},
	Unavailable:        {"UNAVAILABLE", codes.Unavailable, "service temporarily unavailable"},
	Internal:           {"INTERNAL", codes.Internal, "internal error"},
	DeadlineExceeded:   {"DEADLINE_EXCEEDED", codes.DeadlineExceeded, "deadline exceeded"},
	Canceled:           {"CANCELED", codes.Canceled, "request canceled"},
}

// String returns the upper-snake-case name of the code (e.g. "NOT_FOUND").
func (c Code) String() string {
	if i, ok := codeInfo[c]; ok {
		return i.name
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// GRPCCode returns the gRPC code for c; unknown codes map to codes.Internal.
func (c Code) GRPCCode() codes.Code {
	if i, ok := codeInfo[c]; ok {
		return i.grpc
	}
	return codes.Internal
}

// Error is a domain error. Message is shown to callers and must not contain
// internal details; Err is the (optional) cause, kept for logs only.
type Error struct {
	Code    Code
	Reason  string            // machine-readable, UPPER_SNAKE_CASE, e.g. "USER_LOCKED"
	Message string            // human-readable, safe to show to the caller
	Meta    map[string]string // extra machine-readable details (ErrorInfo.metadata)
	Err     error             // cause; never sent to the caller
}

// New returns a domain error without a cause.
func New(code Code, reason, msg string) *Error {
	return &Error{Code: code, Reason: reason, Message: msg}
}

// Wrap returns a domain error with err as its cause. The cause is available to
// errors.Is/As and to logs, but is never part of the status sent to callers.
func Wrap(err error, code Code, reason, msg string) *Error {
	return &Error{Code: code, Reason: reason, Message: msg, Err: err}
}

// Error returns a log-oriented description including the cause. Do not send it
// to callers; use ToStatus.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code.String())
	if e.Reason != "" {
		b.WriteString(" ")
		b.WriteString(e.Reason)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code and Reason, so
// sentinels such as ErrUnavailable work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	return t.Code == e.Code && t.Reason == e.Reason
}

// WithMeta returns a copy of e with metadata key k set to v. e is not modified.
func (e *Error) WithMeta(k, v string) *Error {
	c := *e
	c.Meta = make(map[string]string, len(e.Meta)+1)
	maps.Copy(c.Meta, e.Meta)
	c.Meta[k] = v
	return &c
}

// WithCause returns a copy of e with err as its cause. Handy for sentinels:
// apierr.ErrUnavailable.WithCause(err).
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Meta = maps.Clone(e.Meta)
	c.Err = err
	return &c
}

// As returns the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e, true
	}
	return nil, false
}

// CodeOf returns the domain code of err: the code of the first *Error in the
// chain, Canceled/DeadlineExceeded for context errors, Internal otherwise.
// CodeOf(nil) is 0.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	if e, ok := As(err); ok {
		if _, known := codeInfo[e.Code]; known {
			return e.Code
		}
		return Internal
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	return Internal
}

// Sentinels usable with errors.Is (compared by Code and Reason).
var (
	ErrUnavailable = New(Unavailable, "UNAVAILABLE", "service temporarily unavailable")
)

// ToStatus maps any error to a gRPC status error. nil stays nil.
//
//   - *Error anywhere in the chain: its code, its Message (or a generic message
//     for the code when empty) and an errdetails.ErrorInfo{Reason, Domain,
//     Metadata}. The cause (Err) is never included.
//   - context.Canceled / context.DeadlineExceeded: codes.Canceled /
//     codes.DeadlineExceeded with a generic message.
//   - an error that already is (or wraps) a gRPC status passes through with its
//     code and details. Its message is kept when it was produced by this funnel
//     (ErrorInfo with Domain) or when the code is caller-caused; for
//     server-side codes (Unknown, Internal, Unavailable, DeadlineExceeded,
//     DataLoss) a foreign message — e.g. a gRPC transport error naming a
//     dialled host — is replaced by a generic one.
//   - anything else: codes.Internal "internal error", reason "INTERNAL".
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := As(err); ok {
		return domainStatus(e)
	}
	if st, ok := grpcStatusOf(err); ok {
		return passThrough(st)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return domainStatus(New(Canceled, "CANCELED", ""))
	case errors.Is(err, context.DeadlineExceeded):
		return domainStatus(New(DeadlineExceeded, "DEADLINE_EXCEEDED", ""))
	}
	return domainStatus(New(Internal, ReasonInternal, ""))
}

func domainStatus(e *Error) error {
	code := e.Code
	if _, known := codeInfo[code]; !known {
		code = Internal
	}
	msg := e.Message
	if msg == "" || code != e.Code {
		msg = codeInfo[code].message
	}
	reason := e.Reason
	if reason == "" || code != e.Code {
		reason = codeInfo[code].name
	}
	st := status.New(code.GRPCCode(), msg)
	info := &errdetails.ErrorInfo{Reason: reason, Domain: Domain}
	if len(e.Meta) > 0 && code == e.Code {
		info.Metadata = maps.Clone(e.Meta)
	}
	if withInfo, err := st.WithDetails(info); err == nil {
		st = withInfo
	}
	return st.Err()
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

func passThrough(st *status.Status) error {
	if ourInfo(st) {
		return st.Err()
	}
	switch st.Code() {
	case codes.Unknown, codes.Internal, codes.Unavailable, codes.DeadlineExceeded, codes.DataLoss:
		p := st.Proto()
		p.Message = genericMessage(st.Code())
		return status.FromProto(p).Err()
	}
	return st.Err()
}

func ourInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			return true
		}
	}
	return false
}

func genericMessage(c codes.Code) string {
	for _, i := range codeInfo {
		if i.grpc == c {
			return i.message
		}
	}
	return "internal error"
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
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == Domain {
			e.Reason = info.GetReason()
			e.Meta = maps.Clone(info.GetMetadata())
			break
		}
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
