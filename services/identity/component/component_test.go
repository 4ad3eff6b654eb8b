package component

import (
	"testing"

	"github.com/uias/uias/pkg/sched"
)

// auto means inherit, for an identity process alone too (see
// docs/adr/0004-sched-policy.md); an explicit setting always wins.
func TestSchedPolicyAuto(t *testing.T) {
	for set, want := range map[string]string{
		SchedAuto:           sched.PolicyInherit,
		sched.PolicyBatch:   sched.PolicyBatch,
		sched.PolicyInherit: sched.PolicyInherit,
	} {
		if got := schedPolicy(set); got != want {
			t.Errorf("schedPolicy(%q) = %q, want %q", set, got, want)
		}
	}
}
