package ctl

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/apierr"
)

// An error shows its ErrorInfo reason (the key of the docs' error tables)
// beside the gRPC code, unless it only repeats the code (trial7 L5).
func TestDescribeShowsTheReason(t *testing.T) {
	a := &app{}
	for _, c := range []struct {
		err  error
		want string
	}{
		{apierr.ToStatus(apierr.New(apierr.PermissionDenied, "ADMIN_NOT_ALLOWED", "not yours")), "not yours (PermissionDenied, ADMIN_NOT_ALLOWED)"},
		{apierr.ToStatus(apierr.New(apierr.NotFound, "NOT_FOUND", "org not found")), "org not found (NotFound)"},
		{apierr.ToStatus(apierr.New(apierr.FailedPrecondition, "FAILED_PRECONDITION", "no")), "no (FailedPrecondition)"},
	} {
		if got := a.describe(c.err); got != c.want {
			t.Errorf("describe: %q, want %q", got, c.want)
		}
	}
	if !plainReason("PERMISSION_DENIED", codes.PermissionDenied) || plainReason("ADMIN_NOT_ALLOWED", codes.PermissionDenied) {
		t.Error("plainReason")
	}
}
