package component

import (
	"testing"

	"github.com/uias/uias/pkg/sched"
)

// auto means SCHED_BATCH only for an identity process alone; an explicit
// setting always wins.
func TestSchedPolicyAuto(t *testing.T) {
	for _, tc := range []struct {
		set   string
		alone bool
		want  string
	}{
		{SchedAuto, true, sched.PolicyBatch},
		{SchedAuto, false, sched.PolicyInherit},
		{sched.PolicyBatch, false, sched.PolicyBatch},
		{sched.PolicyInherit, true, sched.PolicyInherit},
	} {
		if got := schedPolicy(tc.set, tc.alone); got != tc.want {
			t.Errorf("schedPolicy(%q, alone=%v) = %q, want %q", tc.set, tc.alone, got, tc.want)
		}
	}
}
