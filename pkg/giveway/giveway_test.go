package giveway

import (
	"context"
	"testing"
	"time"
)

// paused runs s.Pause(ctx) in a goroutine; the channel gets its result.
func paused(ctx context.Context, s *Signal) <-chan time.Duration {
	done := make(chan time.Duration, 1)
	go func() { done <- s.Pause(ctx) }()
	return done
}

func TestPauseReturnsAtOnceWhenNobodyWaits(t *testing.T) {
	s := New(0)
	if s.MaxPause() != DefaultMaxPause {
		t.Errorf("MaxPause %v, want %v", s.MaxPause(), DefaultMaxPause)
	}
	s.after = func(time.Duration) <-chan time.Time { t.Fatal("a pause with nobody waiting"); return nil }
	if d := s.Pause(context.Background()); d != 0 {
		t.Errorf("paused %v with nobody waiting", d)
	}
	s.Add(1)
	s.Add(-1)
	if d := s.Pause(context.Background()); d != 0 {
		t.Errorf("paused %v after the waiter left", d)
	}
}

func TestPauseLastsWhileCallsWaitAndEndsWithTheLast(t *testing.T) {
	s := New(time.Hour)
	never := make(chan time.Time)
	s.after = func(time.Duration) <-chan time.Time { return never }
	s.Add(1)
	s.Add(1)
	if s.Waiting() != 2 {
		t.Fatalf("Waiting %d, want 2", s.Waiting())
	}
	done := paused(context.Background(), s)
	s.Add(-1) // one still waits
	select {
	case <-done:
		t.Fatal("the pause ended while a call still waits")
	case <-time.After(20 * time.Millisecond):
	}
	s.Add(-1)
	<-done // ends with the last waiter (the test hangs otherwise)
	if s.Waiting() != 0 {
		t.Errorf("Waiting %d, want 0", s.Waiting())
	}
}

func TestPauseIsBounded(t *testing.T) {
	s := New(1500 * time.Millisecond)
	fire := make(chan time.Time, 1)
	var asked time.Duration
	s.after = func(d time.Duration) <-chan time.Time { asked = d; return fire }
	s.Add(1) // a storm that does not end
	done := paused(context.Background(), s)
	fire <- time.Now()
	<-done
	if asked != 1500*time.Millisecond {
		t.Errorf("bounded at %v, want 1.5s", asked)
	}
	if s.Waiting() != 1 {
		t.Errorf("Waiting %d, want 1", s.Waiting())
	}
}

func TestPauseEndsWithTheContext(t *testing.T) {
	s := New(time.Hour)
	s.after = func(time.Duration) <-chan time.Time { return nil }
	s.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := paused(ctx, s)
	cancel()
	<-done
}

func TestNilSignalNeverPauses(t *testing.T) {
	var s *Signal
	s.Add(1)
	if s.Waiting() != 0 || s.MaxPause() != 0 || s.Pause(context.Background()) != 0 {
		t.Error("a nil Signal counts or pauses")
	}
}

func TestAddNeverGoesBelowZero(t *testing.T) {
	s := New(0)
	s.Add(-1)
	s.Add(1)
	if s.Waiting() != 1 {
		t.Fatalf("Waiting %d, want 1", s.Waiting())
	}
	s.Add(-1)
	if d := s.Pause(context.Background()); d != 0 {
		t.Errorf("paused %v", d)
	}
}
