package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
)

// TestRangeOf: a start of 0001-01-01T00:00:00Z is a start given (from
// the beginning), not the report's default range; none given stays none.
func TestRangeOf(t *testing.T) {
	earliest := timestamppb.New(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))
	if r := rangeOf(&auditv1.ImpossibleTravelRequest{StartTime: earliest}); r.From.IsZero() || r.From.After(time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("earliest start: %v", r.From)
	}
	if r := rangeOf(&auditv1.ImpossibleTravelRequest{}); !r.From.IsZero() || !r.To.IsZero() {
		t.Fatalf("no range: %+v", r)
	}
}
