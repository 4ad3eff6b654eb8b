package crypto

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWakeWhileHashing: how long a goroutine made ready (a request's
// next step: a read done, an answer to write) waits for a processor while
// a Hasher's workers (as many as processors) hash without pause: a timer
// wakes a goroutine, which then waits for a processor. It reports the
// median and the 99th percentile of that wait (wake-p50-µs, wake-p99-µs)
// and the hashes' rate (hashes/s). Variants: "shared", the hasher as
// NewHasher makes it (a pure-Go hash yields its processor every
// yieldEvery blocks; a libargon2 hash runs in C on the caller's thread);
// "own", OwnThreads; "hold" (pure Go only), a pure-Go hash that does not
// yield, as before.
func BenchmarkWakeWhileHashing(b *testing.B) {
	variants := []string{"shared", "own"}
	if !Argon2Cgo {
		variants = append(variants, "hold")
	}
	for _, v := range variants {
		b.Run(v, func(b *testing.B) {
			procs := runtime.GOMAXPROCS(0)
			h := NewHasher(HasherConfig{Workers: procs, OwnThreads: v == "own"})
			defer h.Close()
			if v == "hold" {
				for _, m := range h.mems {
					m.yield = false
				}
			}
			ctx := context.Background()
			var stop atomic.Bool
			var hashes atomic.Int64
			var wg sync.WaitGroup
			for range procs {
				wg.Go(func() {
					for !stop.Load() {
						if _, err := h.Hash(ctx, "pw"); err == nil {
							hashes.Add(1)
						}
					}
				})
			}
			time.Sleep(50 * time.Millisecond) // the hashes hold the processors
			var waits []time.Duration
			start := time.Now()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				time.Sleep(time.Millisecond)
				waits = append(waits, time.Since(t0)-time.Millisecond)
			}
			b.StopTimer()
			elapsed := time.Since(start)
			stop.Store(true)
			wg.Wait()
			slices.Sort(waits)
			q := func(f float64) float64 {
				return float64(waits[min(len(waits)-1, int(f*float64(len(waits))))].Microseconds())
			}
			b.ReportMetric(q(0.5), "wake-p50-µs")
			b.ReportMetric(q(0.99), "wake-p99-µs")
			b.ReportMetric(float64(hashes.Load())/elapsed.Seconds(), "hashes/s")
		})
	}
}
