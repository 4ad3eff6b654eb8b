//go:build linux

package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Batch switches every thread of this process that runs under the default
// policy (SCHED_OTHER) to SCHED_BATCH, keeping its nice value; threads under
// another policy (real-time, idle) are left as the operator set them. Threads
// created later inherit the policy of the thread that creates them, so the
// Go runtime's and cgo's future threads are SCHED_BATCH as well. Threads may
// start while it runs, so it repeats until a pass finds nothing to change.
// It returns the number of threads of the process that are SCHED_BATCH.
func Batch() (int, error) { return switchPolicy(unix.SCHED_NORMAL, unix.SCHED_BATCH) }

// Normal undoes Batch: every SCHED_BATCH thread of this process goes back to
// the default policy (SCHED_OTHER), keeping its nice value. It returns the
// number of threads that are SCHED_OTHER. The benchmark uses it to act as a
// client of another process whatever policy it ran its own phases under.
func Normal() (int, error) { return switchPolicy(unix.SCHED_BATCH, unix.SCHED_NORMAL) }

func switchPolicy(from, to uint32) (int, error) {
	for pass := 0; pass < 10; pass++ {
		tids, err := threads()
		if err != nil {
			return 0, err
		}
		changed, done := 0, 0
		for _, tid := range tids {
			attr, err := unix.SchedGetAttr(tid, 0)
			if errors.Is(err, unix.ESRCH) {
				continue // the thread exited
			}
			if err != nil {
				return 0, fmt.Errorf("sched: read policy of thread %d: %w", tid, err)
			}
			switch attr.Policy {
			case to:
				done++
				continue
			case from:
			default:
				continue
			}
			attr.Policy = to
			attr.Flags &= unix.SCHED_FLAG_RESET_ON_FORK // keep it; drop util-clamp flags
			err = unix.SchedSetAttr(tid, attr, 0)
			if errors.Is(err, unix.ESRCH) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("sched: set %s on thread %d: %w", policyName(to), tid, err)
			}
			changed++
			done++
		}
		if changed == 0 {
			return done, nil
		}
	}
	return 0, fmt.Errorf("sched: threads kept starting under %s; gave up", policyName(from))
}

// Policies returns the scheduling policy of every thread of the process by
// name ("other", "batch", "idle", "fifo", "rr", "deadline").
func Policies() (map[int]string, error) {
	tids, err := threads()
	if err != nil {
		return nil, err
	}
	out := make(map[int]string, len(tids))
	for _, tid := range tids {
		attr, err := unix.SchedGetAttr(tid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sched: read policy of thread %d: %w", tid, err)
		}
		out[tid] = policyName(attr.Policy)
	}
	return out, nil
}

func policyName(p uint32) string {
	switch p {
	case unix.SCHED_NORMAL:
		return "other"
	case unix.SCHED_BATCH:
		return "batch"
	case unix.SCHED_IDLE:
		return "idle"
	case unix.SCHED_FIFO:
		return "fifo"
	case unix.SCHED_RR:
		return "rr"
	case unix.SCHED_DEADLINE:
		return "deadline"
	}
	return strconv.FormatUint(uint64(p), 10)
}

func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("sched: list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// LowerThread lowers the priority of the calling OS thread alone (Linux
// keeps a nice value per thread) by raising its nice value by `by` (1..19),
// at most to 19, and returns the new nice value: the thread then gets a
// smaller share of the CPU than the process's other threads whenever they
// want it, and all of it otherwise. The caller must have locked its
// goroutine to the thread (runtime.LockOSThread) and keep it locked: the
// runtime would otherwise run other goroutines on it, and an unprivileged
// process cannot raise a thread's priority back. No privilege is needed.
func LowerThread(by int) (int, error) {
	if by < 1 || by > 19 {
		return 0, fmt.Errorf("sched: a thread's priority is lowered by 1 to 19, not %d", by)
	}
	cur, err := ThreadNice()
	if err != nil {
		return 0, fmt.Errorf("sched: read the thread's nice value: %w", err)
	}
	nice := min(cur+by, 19)
	if nice == cur {
		return cur, nil
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice); err != nil {
		return cur, fmt.Errorf("sched: set the thread's nice value to %d: %w", nice, err)
	}
	return nice, nil
}

// ThreadNice returns the nice value of the calling OS thread.
func ThreadNice() (int, error) {
	// The raw system call answers 20 - nice (1..40).
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		return 0, err
	}
	return 20 - p, nil
}
