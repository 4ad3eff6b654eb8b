// Package giveway lets background work give the CPUs to logins waiting for
// a password hash worker.
//
// The password hasher (pkg/crypto) counts the calls waiting in its queue
// into a Signal (Add); loops whose work can wait a few seconds without loss
// (the outbox relay: its rows are durable in SQL; the audit ingest: its
// messages are durable in JetStream) call Pause before each round of work.
// Pause returns at once when nobody waits, and otherwise when the last
// waiter got its worker, the loop's context ends, or MaxPause passed,
// whichever comes first: a storm of logins that never ends delays such a
// loop by at most MaxPause a round, never stops it. The work that waited
// then goes out in fewer, larger batches.
//
// A process has one Signal (module.Env.GiveWay); a nil *Signal never
// pauses.
package giveway

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxPause is the longest one Pause lasts when New is given 0.
const DefaultMaxPause = 2 * time.Second

// Signal tells background loops whether foreground calls wait for a hash
// worker. It is safe for concurrent use.
type Signal struct {
	maxPause time.Duration
	// after is time.After (tests replace it to end a pause at will).
	after func(time.Duration) <-chan time.Time

	mu      sync.Mutex
	waiting int
	// clear is closed when waiting drops to 0 (a new one is made when it
	// rises from 0).
	clear chan struct{}
}

// New returns a Signal whose pauses last at most maxPause (<= 0:
// DefaultMaxPause).
func New(maxPause time.Duration) *Signal {
	if maxPause <= 0 {
		maxPause = DefaultMaxPause
	}
	return &Signal{maxPause: maxPause, after: time.After}
}

// MaxPause is the longest one Pause lasts.
func (s *Signal) MaxPause() time.Duration {
	if s == nil {
		return 0
	}
	return s.maxPause
}

// Add changes the number of waiting calls by delta (+1 when a call starts
// waiting, -1 when it stops). It never blocks for long.
func (s *Signal) Add(delta int) {
	if s == nil || delta == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.waiting
	s.waiting = max(0, s.waiting+delta)
	switch {
	case was == 0 && s.waiting > 0:
		s.clear = make(chan struct{})
	case was > 0 && s.waiting == 0:
		close(s.clear)
	}
}

// Waiting returns the number of calls waiting now.
func (s *Signal) Waiting() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// Pause blocks while calls wait: it returns at once when none does, else
// when none waits any more, ctx ends or MaxPause has passed. It returns
// how long it paused.
func (s *Signal) Pause(ctx context.Context) time.Duration {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	if s.waiting == 0 {
		s.mu.Unlock()
		return 0
	}
	clear := s.clear
	s.mu.Unlock()
	start := time.Now()
	select {
	case <-clear:
	case <-ctx.Done():
	case <-s.after(s.maxPause):
	}
	return time.Since(start)
}
