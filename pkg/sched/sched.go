// Package sched sets the Linux CPU scheduling policy of the whole process.
//
// The identity service spends nearly all of its CPU in argon2id hashes of
// 10 to 50 ms each, while gRPC, SQLite and NATS work runs in short bursts
// between them on the same CPUs. Under the default policy (SCHED_OTHER) every
// wake-up of such a short burst preempts a running hash at once: thousands of
// preemptions a second when logins saturate the CPUs, each costing the hash
// its warm caches. SCHED_BATCH tells the kernel the threads of this process
// need no wake-up preemption among themselves ("without interactivity
// causing extra preemptions between the workload's tasks", sched(7)): a woken
// thread runs on an idle CPU at once, and otherwise when the running thread's
// time slice ends (a few milliseconds). Priority and fairness are unchanged;
// no privilege is needed.
package sched

import "errors"

// ErrUnsupported is returned where the process policy cannot be set (not
// Linux).
var ErrUnsupported = errors.New("sched: setting the scheduling policy is only supported on Linux")

// Policy names accepted by config (identity.sched_policy).
const (
	// PolicyBatch switches every thread of the process to SCHED_BATCH.
	PolicyBatch = "batch"
	// PolicyInherit leaves the policy the process was started with.
	PolicyInherit = "inherit"
)
