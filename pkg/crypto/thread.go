package crypto

import "github.com/uias/uias/pkg/sched"

// lowerThreadPriority lowers the priority of the calling OS thread by by
// nice levels (see sched.LowerThread); the caller keeps its goroutine
// locked to the thread.
func lowerThreadPriority(by int) error {
	_, err := sched.LowerThread(by)
	return err
}
