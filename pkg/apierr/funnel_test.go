package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func init() {
	Register(
		Reason{Name: "BAD_THING", Code: InvalidArgument, Legacy: -5, Doc: "test"},
		Reason{Name: "TOO_BIG", Code: InvalidArgument, Legacy: -5, HTTP: http.StatusRequestEntityTooLarge, Doc: "test"},
		Reason{Name: "NO_LEGACY", Code: FailedPrecondition, Doc: "test"},
	)
}

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func TestRegisterRejectsBadDeclarations(t *testing.T) {
	bad := map[string]Reason{
		"lower case":        {Name: "bad_reason", Code: NotFound, Doc: "x"},
		"too short":         {Name: "AB", Code: NotFound, Doc: "x"},
		"trailing _":        {Name: "BAD_", Code: NotFound, Doc: "x"},
		"double _":          {Name: "BAD__REASON", Code: NotFound, Doc: "x"},
		"too long":          {Name: strings.Repeat("A", 64), Code: NotFound, Doc: "x"},
		"unknown code":      {Name: "ODD_CODE", Code: Code(99), Doc: "x"},
		"zero code":         {Name: "ZERO_CODE", Doc: "x"},
		"success HTTP":      {Name: "HTTP_OK", Code: NotFound, HTTP: 200, Doc: "x"},
		"no doc":            {Name: "NO_DOC", Code: NotFound},
		"redeclared code":   {Name: "BAD_THING", Code: NotFound, Legacy: -5, Doc: "test"},
		"redeclared legacy": {Name: "BAD_THING", Code: InvalidArgument, Legacy: -6, Doc: "test"},
	}
	for name, r := range bad {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("Register(%+v) did not panic", r)
				}
			}()
			Register(r)
		})
	}
	// The same declaration twice is fine (two packages may share one).
	Register(Reason{Name: "BAD_THING", Code: InvalidArgument, Legacy: -5, Doc: "test"})
	if _, ok := Lookup("ODD_CODE"); ok {
		t.Fatal("a rejected reason was registered")
	}
}

func TestReasonsSortedAndGenericPresent(t *testing.T) {
	rs := Reasons()
	for i := 1; i < len(rs); i++ {
		if rs[i-1].Name >= rs[i].Name {
			t.Fatalf("Reasons not sorted: %s before %s", rs[i-1].Name, rs[i].Name)
		}
	}
	for c := range codeInfo {
		r, ok := Lookup(c.String())
		if !ok || r.Code != c {
			t.Errorf("generic reason %s: %+v, %v", c, r, ok)
		}
	}
}

func TestLegacyCodeFromTable(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{New(InvalidArgument, "BAD_THING", "bad"), "-5"},
		// A hand-set legacy code is replaced by the table's...
		{New(InvalidArgument, "BAD_THING", "bad").WithMeta(MetaLegacyCode, "-1"), "-5"},
		// ...and dropped when the reason has none.
		{New(FailedPrecondition, "NO_LEGACY", "no").WithMeta(MetaLegacyCode, "-6"), ""},
		{errors.New("boom"), "-6"},
		{New(NotFound, "", "gone"), ""},
		{New(InvalidArgument, "", "bad"), "-5"},
	}
	for _, tt := range tests {
		st := status.Convert(ToStatus(tt.err))
		info := errorInfo(t, st)
		if got := info.GetMetadata()[MetaLegacyCode]; got != tt.want {
			t.Errorf("%v: legacy_code = %q, want %q", tt.err, got, tt.want)
		}
		if got, want := LegacyCode(tt.err), atoi(tt.want); got != want {
			t.Errorf("LegacyCode(%v) = %d, want %d", tt.err, got, want)
		}
	}
}

func atoi(s string) int {
	var n int
	_, _ = fmt.Sscan(s, &n)
	return n
}

func TestUnregisteredReasonIsInternalAndLogged(t *testing.T) {
	log, logs := observed()
	err := Wrap(errors.New("SELECT secret FROM t"), NotFound, "NOBODY_REGISTERED_THIS", "user alice not found")
	st := status.Convert(ToStatusLogged(log, err))
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	if info := errorInfo(t, st); info.GetReason() != ReasonInternal || info.GetMetadata()[MetaLegacyCode] != "-6" {
		t.Fatalf("ErrorInfo = %+v", info)
	}
	if text := fmt.Sprint(st.Proto()); strings.Contains(text, "alice") || strings.Contains(text, "NOBODY") || strings.Contains(text, "SELECT") {
		t.Fatalf("status leaks: %s", text)
	}
	entries := logs.FilterMessageSnippet("not registered").All()
	if len(entries) != 1 || entries[0].Level != zapcore.ErrorLevel {
		t.Fatalf("want one error log line about the unregistered reason, got %v", logs.All())
	}
	if got := entries[0].ContextMap()["error"]; !strings.Contains(fmt.Sprint(got), "NOBODY_REGISTERED_THIS") {
		t.Fatalf("log line lacks the error: %v", entries[0].ContextMap())
	}
}

func TestInternalCauseLoggedNotSent(t *testing.T) {
	log, logs := observed()
	st := status.Convert(ToStatusLogged(log, fmt.Errorf("load: %w", errors.New("disk on fire"))))
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "fire") {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	if logs.FilterField(zap.String("error", "load: disk on fire")).Len() != 1 {
		t.Fatalf("cause not logged: %v", logs.All())
	}
	// An explicit INTERNAL domain error does not send its message either.
	st = status.Convert(ToStatus(New(Internal, ReasonInternal, "row 42 of users is corrupt")))
	if st.Message() != "internal error" {
		t.Fatalf("message = %q", st.Message())
	}
	// Domain errors that are not internal are not logged.
	logs.TakeAll()
	_ = ToStatusLogged(log, New(InvalidArgument, "BAD_THING", "bad"))
	if logs.Len() != 0 {
		t.Fatalf("unexpected log: %v", logs.All())
	}
}

func TestCodeContradictingReason(t *testing.T) {
	log, logs := observed()
	st := status.Convert(ToStatusLogged(log, New(NotFound, "BAD_THING", "bad")))
	if st.Code() != codes.InvalidArgument || st.Message() != "bad" {
		t.Fatalf("got %v %q (the table decides the code)", st.Code(), st.Message())
	}
	if logs.FilterMessageSnippet("differs").Len() != 1 {
		t.Fatalf("mismatch not logged: %v", logs.All())
	}
	// A zero code takes the reason's code silently.
	logs.TakeAll()
	st = status.Convert(ToStatusLogged(log, &Error{Reason: "BAD_THING", Message: "bad"}))
	if st.Code() != codes.InvalidArgument || logs.Len() != 0 {
		t.Fatalf("got %v, logs %v", st.Code(), logs.All())
	}
}

func TestForeignStatusGetsInfoAndLosesDetails(t *testing.T) {
	foreign, err := status.New(codes.Internal, "panic at 10.0.0.7:9090").WithDetails(
		&errdetails.DebugInfo{Detail: "goroutine 1 [running]"})
	if err != nil {
		t.Fatal(err)
	}
	log, logs := observed()
	st := status.Convert(ToStatusLogged(log, fmt.Errorf("call: %w", foreign.Err())))
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	if len(st.Details()) != 1 || errorInfo(t, st).GetReason() != ReasonInternal {
		t.Fatalf("details = %v", st.Details())
	}
	if logs.FilterMessageSnippet("10.0.0.7").Len() != 1 {
		t.Fatalf("peer failure not logged: %v", logs.All())
	}
	// Caller-caused codes keep their message and get the generic reason.
	st = status.Convert(ToStatus(status.Error(codes.Unimplemented, "unknown service x.Y")))
	if st.Code() != codes.Unimplemented || st.Message() != "unknown service x.Y" || errorInfo(t, st).GetReason() != "UNIMPLEMENTED" {
		t.Fatalf("got %v %q %v", st.Code(), st.Message(), st.Details())
	}
	// Codes without a domain code become Internal.
	st = status.Convert(ToStatus(status.Error(codes.DataLoss, "page 7 torn")))
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
}

func TestEveryAnswerHasInfo(t *testing.T) {
	errs := []error{
		errors.New("x"), New(NotFound, "", ""), New(NotFound, "USER_NOT_FOUND", "user not found"),
		status.Error(codes.Unavailable, "connection refused"), status.Error(codes.AlreadyExists, "dup"),
		fmt.Errorf("w: %w", ToStatus(New(InvalidArgument, "BAD_THING", "bad"))),
	}
	for _, err := range errs {
		if Info(status.Convert(ToStatus(err))) == nil {
			t.Errorf("ToStatus(%v) carries no ErrorInfo", err)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		st   *status.Status
		want int
	}{
		{status.Convert(ToStatus(New(InvalidArgument, "TOO_BIG", "too big"))), http.StatusRequestEntityTooLarge},
		{status.Convert(ToStatus(New(InvalidArgument, "BAD_THING", "bad"))), http.StatusBadRequest},
		{status.Convert(ToStatus(New(ResourceExhausted, "TOO_MANY_ATTEMPTS", "slow down"))), http.StatusTooManyRequests},
		{status.Convert(ToStatus(errors.New("x"))), http.StatusInternalServerError},
		// No UIAS ErrorInfo: the code's default.
		{status.New(codes.Unavailable, "transport"), http.StatusServiceUnavailable},
		{status.New(codes.Canceled, ""), 499},
	}
	for _, tt := range tests {
		if got := HTTPStatus(tt.st); got != tt.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tt.st, got, tt.want)
		}
	}
	// A registered reason on a status of another code (e.g. from a peer of
	// another version) does not lend its HTTP status.
	st, _ := status.New(codes.NotFound, "x").WithDetails(&errdetails.ErrorInfo{Reason: "TOO_BIG", Domain: Domain})
	if got := HTTPStatus(st); got != http.StatusNotFound {
		t.Errorf("mismatched reason: HTTP %d, want 404", got)
	}
}
