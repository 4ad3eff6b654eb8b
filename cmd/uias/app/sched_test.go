//go:build linux

package app_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/sched"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// setAllThreads puts every thread of the test process under policy.
func setAllThreads(t *testing.T, policy uint32) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		_ = unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policy}, 0)
	}
}

func policiesAfterStart(t *testing.T, c config.Config) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, c, app.Options{BootstrapPassword: "Sched-Test-Pass-1"})
	if err != nil {
		t.Fatalf("app.Start: %v", err)
	}
	defer func() {
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	pol, err := sched.Policies()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range pol {
		count[p]++
	}
	return count
}

// Target all runs more than identity, so by default (auto) the process
// keeps the policy it was started with: SCHED_BATCH would slow the edge and
// every other component while hashes run. identity.sched_policy=batch still
// switches it, inherit leaves it.
func TestSchedPolicy(t *testing.T) {
	setAllThreads(t, unix.SCHED_NORMAL)
	t.Cleanup(func() { setAllThreads(t, unix.SCHED_NORMAL) })

	c := quickConfig(t)
	if got := identitycomponent.Settings(&c).SchedPolicy; got != identitycomponent.SchedAuto {
		t.Fatalf("default sched_policy %q, want auto", got)
	}
	if got := policiesAfterStart(t, c); got["batch"] != 0 || got["other"] == 0 {
		t.Fatalf("default sched_policy with target all: thread policies %v, want all other", got)
	}

	c = quickConfig(t)
	identitycomponent.Settings(&c).SchedPolicy = sched.PolicyInherit
	if got := policiesAfterStart(t, c); got["batch"] != 0 || got["other"] == 0 {
		t.Fatalf("sched_policy inherit: thread policies %v, want all other", got)
	}

	c = quickConfig(t)
	identitycomponent.Settings(&c).SchedPolicy = sched.PolicyBatch
	if got := policiesAfterStart(t, c); got["other"] != 0 || got["batch"] == 0 {
		t.Fatalf("sched_policy batch: thread policies %v, want all batch", got)
	}
}
