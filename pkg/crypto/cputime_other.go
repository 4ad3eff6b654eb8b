//go:build !linux

package crypto

import "time"

// threadCPU: no per-thread CPU clock here; hashes are timed by wall clock.
func threadCPU() (time.Duration, bool) { return 0, false }
