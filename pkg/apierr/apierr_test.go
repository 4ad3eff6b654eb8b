package apierr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reasons used by these tests, registered as a service would register its own.
func init() {
	Register(
		Reason{Name: "USER_NOT_FOUND", Code: NotFound, Doc: "test"},
		Reason{Name: "DB_DOWN", Code: Unavailable, Legacy: -6, Doc: "test"},
		Reason{Name: "NOT_ADMIN", Code: PermissionDenied, Doc: "test"},
		Reason{Name: "UPSTREAM_TIMEOUT", Code: Unavailable, Doc: "test"},
		Reason{Name: "TOO_MANY_ATTEMPTS", Code: ResourceExhausted, Doc: "test"},
		Reason{Name: "ROW_MISSING", Code: NotFound, Doc: "test"},
		Reason{Name: "R_UNAUTH", Code: Unauthenticated, Doc: "test"},
		Reason{Name: "OTHER", Code: Unavailable, Doc: "test"},
	)
	for c := range codeInfo {
		Register(Reason{Name: "TEST_" + c.String(), Code: c, Doc: "test"})
	}
}

func errorInfo(t *testing.T, st *status.Status) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func TestToStatusCodes(t *testing.T) {
	tests := []struct {
		code Code
		want codes.Code
	}{
		{InvalidArgument, codes.InvalidArgument},
		{NotFound, codes.NotFound},
		{AlreadyExists, codes.AlreadyExists},
		{FailedPrecondition, codes.FailedPrecondition},
		{PermissionDenied, codes.PermissionDenied},
		{Unauthenticated, codes.Unauthenticated},
		{ResourceExhausted, codes.ResourceExhausted},
		{Unavailable, codes.Unavailable},
		{Internal, codes.Internal},
		{DeadlineExceeded, codes.DeadlineExceeded},
		{Canceled, codes.Canceled},
		{Unimplemented, codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			reason := "TEST_" + tt.code.String()
			e := New(tt.code, reason, "something happened").WithMeta("user_id", "u1")
			st := status.Convert(ToStatus(e))
			if st.Code() != tt.want {
				t.Fatalf("code = %v, want %v", st.Code(), tt.want)
			}
			wantMsg := "something happened"
			if tt.code == Internal {
				wantMsg = "internal error" // an internal error's text never leaves
			}
			if st.Message() != wantMsg {
				t.Fatalf("message = %q, want %q", st.Message(), wantMsg)
			}
			info := errorInfo(t, st)
			if info == nil {
				t.Fatal("no ErrorInfo detail")
			}
			wantReason, wantMeta := reason, "u1"
			if tt.code == Internal {
				wantReason, wantMeta = ReasonInternal, ""
			}
			if info.Reason != wantReason || info.Domain != Domain || info.Metadata["user_id"] != wantMeta {
				t.Fatalf("ErrorInfo = %+v", info)
			}
		})
	}
}

func TestToStatusNil(t *testing.T) {
	if ToStatus(nil) != nil {
		t.Fatal("ToStatus(nil) != nil")
	}
}

func TestToStatusNoLeak(t *testing.T) {
	secrets := []string{
		`pq: syntax error at or near "FROM" in SELECT * FROM users WHERE id = 1`,
		"dial tcp 10.0.0.1:5432: connect: connection refused",
		"goroutine 1 [running]: main.main() /srv/app/main.go:12",
	}
	for _, secret := range secrets {
		cases := map[string]error{
			"plain":            errors.New(secret),
			"fmt wrapped":      fmt.Errorf("load user: %w", errors.New(secret)),
			"domain cause":     Wrap(errors.New(secret), Unavailable, "DB_DOWN", "database unavailable"),
			"wrapped domain":   fmt.Errorf("outer %s: %w", secret, Wrap(errors.New(secret), NotFound, "USER_NOT_FOUND", "user not found")),
			"grpc transport":   status.Error(codes.Unavailable, "connection error: desc = "+secret),
			"grpc internal":    fmt.Errorf("call: %w", status.Error(codes.Internal, secret)),
			"grpc unknown":     status.Error(codes.Unknown, secret),
			"context wrapped":  fmt.Errorf("%s: %w", secret, context.DeadlineExceeded),
			"zero code domain": Wrap(errors.New(secret), 0, "X", secret),
		}
		for name, err := range cases {
			t.Run(name, func(t *testing.T) {
				st := status.Convert(ToStatus(err))
				text := st.Message() + " " + fmt.Sprint(st.Proto())
				for _, frag := range []string{"SELECT", "10.0.0.1", "goroutine", "main.go"} {
					if strings.Contains(text, frag) {
						t.Fatalf("status leaks %q: %s", frag, text)
					}
				}
			})
		}
	}
}

func TestToStatusPlainIsInternal(t *testing.T) {
	st := status.Convert(ToStatus(errors.New("SELECT * FROM users")))
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	info := errorInfo(t, st)
	if info == nil || info.Reason != ReasonInternal || info.Domain != Domain {
		t.Fatalf("ErrorInfo = %+v", info)
	}
}

func TestToStatusContext(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{fmt.Errorf("query: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		st := status.Convert(ToStatus(tt.err))
		if st.Code() != tt.want {
			t.Errorf("ToStatus(%v) code = %v, want %v", tt.err, st.Code(), tt.want)
		}
		if strings.Contains(st.Message(), "query") {
			t.Errorf("message leaks wrapper text: %q", st.Message())
		}
	}
}

func TestToStatusWrappedDomain(t *testing.T) {
	inner := New(PermissionDenied, "NOT_ADMIN", "admin role required").WithMeta("role", "viewer")
	err := fmt.Errorf("handler: %w", fmt.Errorf("service: %w", inner))
	st := status.Convert(ToStatus(err))
	if st.Code() != codes.PermissionDenied || st.Message() != "admin role required" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	info := errorInfo(t, st)
	if info.Reason != "NOT_ADMIN" || info.Metadata["role"] != "viewer" {
		t.Fatalf("ErrorInfo = %+v", info)
	}
}

func TestToStatusDomainWinsOverContext(t *testing.T) {
	err := Wrap(context.DeadlineExceeded, Unavailable, "UPSTREAM_TIMEOUT", "upstream timed out")
	if got := status.Code(ToStatus(err)); got != codes.Unavailable {
		t.Fatalf("code = %v, want Unavailable", got)
	}
}

func TestToStatusPassThrough(t *testing.T) {
	orig := status.Error(codes.NotFound, "no such app")
	got := ToStatus(orig)
	st := status.Convert(got)
	if st.Code() != codes.NotFound || st.Message() != "no such app" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	// A status produced by the funnel (e.g. relayed from another service) is
	// kept verbatim, including its details and message.
	relayed := ToStatus(New(Unavailable, "DB_DOWN", "database unavailable"))
	again := status.Convert(ToStatus(fmt.Errorf("rpc: %w", relayed)))
	if again.Code() != codes.Unavailable || again.Message() != "database unavailable" {
		t.Fatalf("relayed: %v %q", again.Code(), again.Message())
	}
	if info := errorInfo(t, again); info == nil || info.Reason != "DB_DOWN" {
		t.Fatalf("relayed ErrorInfo = %+v", info)
	}
}

func TestDefaultsForEmptyFields(t *testing.T) {
	st := status.Convert(ToStatus(&Error{Code: NotFound}))
	if st.Message() != "not found" {
		t.Fatalf("message = %q", st.Message())
	}
	if info := errorInfo(t, st); info.Reason != "NOT_FOUND" {
		t.Fatalf("reason = %q", info.Reason)
	}
	st = status.Convert(ToStatus(&Error{Code: Code(99), Reason: "WEIRD", Message: "weird"}))
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("unknown code: %v %q", st.Code(), st.Message())
	}
}

func TestErrorsIsAndAs(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.1:4222: connection refused")
	err := fmt.Errorf("publish: %w", ErrUnavailable.WithCause(cause))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatal("errors.Is(err, ErrUnavailable) = false")
	}
	if !errors.Is(err, cause) {
		t.Fatal("cause not reachable through Unwrap")
	}
	if errors.Is(err, New(Unavailable, "OTHER", "x")) {
		t.Fatal("different reason must not match")
	}
	e, ok := As(err)
	if !ok || e.Code != Unavailable {
		t.Fatalf("As = %v, %v", e, ok)
	}
	if _, ok := As(errors.New("plain")); ok {
		t.Fatal("As(plain) = true")
	}
	if ErrUnavailable.Err != nil {
		t.Fatal("WithCause modified the sentinel")
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Error() should keep the cause for logs: %q", err.Error())
	}
}

func TestWithMetaCopies(t *testing.T) {
	base := New(NotFound, "ROW_MISSING", "m").WithMeta("a", "1")
	derived := base.WithMeta("b", "2")
	if _, ok := base.Meta["b"]; ok {
		t.Fatal("WithMeta modified the receiver")
	}
	if derived.Meta["a"] != "1" || derived.Meta["b"] != "2" {
		t.Fatalf("derived meta = %v", derived.Meta)
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want Code
	}{
		{nil, 0},
		{New(NotFound, "ROW_MISSING", "m"), NotFound},
		{fmt.Errorf("x: %w", New(Unauthenticated, "R_UNAUTH", "m")), Unauthenticated},
		{New(NotFound, "NOT_REGISTERED_ANYWHERE", "m"), Internal},
		{context.Canceled, Canceled},
		{errors.New("boom"), Internal},
	}
	for _, tt := range tests {
		if got := CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestFromStatusRoundTrip(t *testing.T) {
	orig := New(ResourceExhausted, "TOO_MANY_ATTEMPTS", "too many attempts").WithMeta("retry_after_s", "30")
	e, ok := FromStatus(fmt.Errorf("call: %w", ToStatus(orig)))
	if !ok {
		t.Fatal("FromStatus = false")
	}
	if e.Code != ResourceExhausted || e.Reason != "TOO_MANY_ATTEMPTS" || e.Message != "too many attempts" || e.Meta["retry_after_s"] != "30" {
		t.Fatalf("got %+v", e)
	}
	if _, ok := FromStatus(errors.New("plain")); ok {
		t.Fatal("FromStatus(plain) = true")
	}
	e, _ = FromStatus(status.Error(codes.AlreadyExists, "dup"))
	if e.Code != AlreadyExists || e.Reason != "ALREADY_EXISTS" {
		t.Fatalf("foreign status: %+v", e)
	}
}
