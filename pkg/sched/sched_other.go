//go:build !linux

package sched

// Batch is not supported outside Linux.
func Batch() (int, error) { return 0, ErrUnsupported }

// Normal is not supported outside Linux.
func Normal() (int, error) { return 0, ErrUnsupported }

// Policies is not supported outside Linux.
func Policies() (map[int]string, error) { return nil, ErrUnsupported }

// LowerThread is not supported outside Linux.
func LowerThread(int) (int, error) { return 0, ErrUnsupported }

// ThreadNice is not supported outside Linux.
func ThreadNice() (int, error) { return 0, ErrUnsupported }
