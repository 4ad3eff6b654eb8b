// Package apierr defines the domain error type used across UIAS, the table of
// error reasons (reasons.go) and the single funnel (ToStatus) that turns any
// error into a gRPC status that is safe to return to a caller.
//
// A domain error carries a reason (ErrorInfo.reason, e.g. "WEAK_PASSWORD").
// The reason is declared once, with Register, by the package whose errors use
// it; the declaration fixes the gRPC code, the legacy result code and the HTTP
// status every error with that reason gets. The funnel answers an *Error with
// its registered reason, its Message and google.rpc.ErrorInfo{reason, domain,
// metadata (incl. legacy_code)}. Everything else — SQL errors, network errors,
// panics turned into errors, errors whose reason nobody registered — is
// answered as codes.Internal "internal error" and never leaks its text. The
// full cause stays available to logs via Error() and ToStatusLogged.
package apierr

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// Domain is the ErrorInfo domain attached to every status produced by ToStatus.
const Domain = "uias.dev"

// ReasonInternal is the ErrorInfo reason used for errors that are not domain errors.
const ReasonInternal = "INTERNAL"

// ReasonBadRequest is the ErrorInfo reason of a malformed request (legacy
// code -5), in every component.
const ReasonBadRequest = "BAD_REQUEST"

// MetaLegacyCode is the ErrorInfo metadata key of the legacy result code.
// The funnel sets it from the reason table; a value set by hand is replaced.
const MetaLegacyCode = "legacy_code"

// MetaField is the ErrorInfo metadata key naming the offending request
// field of a bad request by its proto field path, when there is one.
const MetaField = "field"

// Code classifies a domain error. The zero value is not a valid code; an
// *Error with an unknown code and no registered reason is reported as Internal.
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
	Unimplemented
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
	Unimplemented:      {"UNIMPLEMENTED", codes.Unimplemented, "not implemented"},
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

// Error is a domain error. Reason selects its entry in the reason table
// (which decides the code callers see); Message is shown to callers and must
// not contain internal details; Err is the (optional) cause, kept for logs
// only. Code states the intent at the construction site; it must agree with
// the registered reason (a test checks every constructor call in the
// sources), and where it does not, the table wins.
type Error struct {
	Code    Code
	Reason  string            // registered, UPPER_SNAKE_CASE, e.g. "USER_LOCKED"; "" means the code's generic reason
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
// sentinels such as ErrUnavailable (or store.ErrNotFound) work with errors.Is.
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

// WithMessage returns a copy of e with the caller-facing message msg, e.g.
// store.ErrNotFound.WithMessage("user not found").
func (e *Error) WithMessage(msg string) *Error {
	c := *e
	c.Meta = maps.Clone(e.Meta)
	c.Message = msg
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

// CodeOf returns the code callers get for err (what ToStatus answers):
// the registered code of a domain error's reason, Canceled/DeadlineExceeded
// for context errors, Internal otherwise. CodeOf(nil) is 0.
func CodeOf(err error) Code {
	if err == nil {
		return 0
	}
	return fromGRPC(resolve(err).code())
}

// LegacyCode returns the legacy result code callers get for err (0: none).
func LegacyCode(err error) int {
	if err == nil {
		return 0
	}
	a := resolve(err)
	if a.verbatim != nil {
		n, _ := strconv.Atoi(ourInfo(a.verbatim).GetMetadata()[MetaLegacyCode])
		return n
	}
	return a.reason.Legacy
}

// Sentinels usable with errors.Is (compared by Code and Reason).
var (
	ErrUnavailable = New(Unavailable, "UNAVAILABLE", "service temporarily unavailable")
)
