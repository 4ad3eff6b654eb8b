package applier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/synctest"
)

// publishAsync publishes n user changes (over 1000 objects) the way the
// outbox relay does, waiting for every acknowledgement.
func publishAsync(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	var futs []jetstream.PubAckFuture
	wait := func() {
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			case <-time.After(time.Minute):
				b.Fatal("publish not acknowledged in a minute")
			}
		}
		futs = futs[:0]
	}
	for i := range n {
		if len(futs) == 1000 {
			wait() // under the client's limit of outstanding publishes
		}
		m := nats.NewMsg("uias.changes.identity.user.updated")
		m.Data, _ = json.Marshal(map[string]any{"id": fmt.Sprintf("u%d", i%1000), "data": map[string]any{"n": i}})
		m.Header.Set(jetstream.MsgIDHeader, ids.New())
		m.Header.Set(events.HeaderTime, time.Now().UTC().Format(time.RFC3339Nano))
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		futs = append(futs, f)
	}
	wait()
}

// applyAll runs an applier of links until link has applied want changes
// and returns how long that took.
func applyAll(b *testing.B, js jetstream.JetStream, st usync.Store, l applier.Link, want int64, o applier.Options) time.Duration {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a := applier.New(js, st, []applier.Link{l}, o)
	start := time.Now()
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := st.Cursor(context.Background(), l.Name)
		if err == nil && c.Applied >= want {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			b.Fatalf("link %s applied %d of %d in 5 minutes", l.Name, c.Applied, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkCatchUp: a level-2 centre cut off from level 1 queues changes;
// after the heal, level 1 sources and applies them. The floor is the same
// number of changes applied from the level-2 centre's own CHANGES (no leaf
// node, no sourcing), in the same run: catch_up_ratio = remote / local
// time. projected_100k_s extrapolates the remote rate to 100k changes.
//
// UIAS_SYNC_CATCHUP_N sets the number of queued changes (default 10 000;
// the goal is stated for 100 000: UIAS_SYNC_CATCHUP_N=100000).
func BenchmarkCatchUp(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("UIAS_SYNC_CATCHUP_N")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		b.StopTimer()
		l1 := synctest.StartLevel1(b, "l1")
		l2 := synctest.StartLevel2(b, "l2a", l1)
		_, js1 := l1.Connect(b)
		_, js2 := l2.Connect(b)
		for _, js := range []jetstream.JetStream{js1, js2} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := events.EnsureStreams(ctx, js); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		peer := applier.PeerLink("l2a", applier.Up)
		if _, err := js1.CreateOrUpdateStream(ctx, applier.StreamConfig(peer)); err != nil {
			b.Fatal(err)
		}
		cancel()
		l2.Link.Cut()
		synctest.WaitLeaf(b, l2.Server, false)
		publishAsync(b, js2, n)
		b.StartTimer()
		local := applyAll(b, js2, newStore(b), applier.LocalLink("l2a"), int64(n), applier.Options{})
		l2.Link.Heal()
		healed := time.Now()
		sourced, first := make(chan time.Duration, 1), make(chan time.Duration, 1)
		go func() {
			var started bool
			for time.Since(healed) < 5*time.Minute {
				if st, err := js1.Stream(context.Background(), peer.Stream); err == nil {
					if m := st.CachedInfo().State.Msgs; m > 0 && !started {
						started = true
						first <- time.Since(healed)
					}
					if st.CachedInfo().State.Msgs >= uint64(n) {
						sourced <- time.Since(healed)
						return
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !started {
				first <- 0
			}
			sourced <- 0
		}()
		remote := applyAll(b, js1, newStore(b), peer, int64(n), applier.Options{})
		b.ReportMetric((<-first).Seconds(), "first_sourced_s")
		b.ReportMetric((<-sourced).Seconds(), "sourced_s")
		b.StopTimer()
		b.ReportMetric(float64(n)/remote.Seconds(), "remote_changes/s")
		b.ReportMetric(float64(n)/local.Seconds(), "local_changes/s")
		b.ReportMetric(remote.Seconds()/local.Seconds(), "catch_up_ratio")
		b.ReportMetric(100000*remote.Seconds()/float64(n), "projected_100k_s")
	}
}

// BenchmarkLag: while connected, level 2 writes 2000 changes at about 400/s;
// the lag of each (event time to application) is measured at level 1
// (sourced over the leaf node) and, as the floor, at level 2 (its own
// CHANGES) in the same run: lag_p99_ratio = remote p99 / local p99.
func BenchmarkLag(b *testing.B) {
	const n, every = 2000, 2500 * time.Microsecond
	for range b.N {
		b.StopTimer()
		l1 := synctest.StartLevel1(b, "l1")
		l2 := synctest.StartLevel2(b, "l2a", l1)
		_, js1 := l1.Connect(b)
		_, js2 := l2.Connect(b)
		for _, js := range []jetstream.JetStream{js1, js2} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := events.EnsureStreams(ctx, js); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
		var mu sync.Mutex
		lags := map[string][]time.Duration{}
		obs := func(link string, d time.Duration) { mu.Lock(); lags[link] = append(lags[link], d); mu.Unlock() }
		st1, st2 := newStore(b), newStore(b)
		ctx, cancel := context.WithCancel(context.Background())
		a1 := applier.New(js1, st1, []applier.Link{applier.PeerLink("l2a", applier.Up)}, applier.Options{Observe: obs})
		a2 := applier.New(js2, st2, []applier.Link{{Name: "local", Origin: "l2a", Stream: events.StreamChanges}}, applier.Options{Observe: obs})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a1.Run(ctx) }()
		go func() { defer wg.Done(); a2.Run(ctx) }()
		// Let the peer stream and consumers exist before measuring.
		warm := time.Now().Add(time.Minute)
		for {
			if s, err := js1.Stream(context.Background(), applier.StreamFor("l2a")); err == nil && s != nil {
				break
			}
			if time.Now().After(warm) {
				b.Fatal("peer stream not created in a minute")
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.StartTimer()
		for i := range n {
			m := nats.NewMsg("uias.changes.identity.user.updated")
			m.Data, _ = json.Marshal(map[string]any{"id": fmt.Sprintf("u%d", i%100), "data": map[string]any{"n": i}})
			m.Header.Set(jetstream.MsgIDHeader, ids.New())
			m.Header.Set(events.HeaderTime, time.Now().UTC().Format(time.RFC3339Nano))
			if _, err := js2.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
			time.Sleep(every)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			mu.Lock()
			done := len(lags["l2a"]) >= n && len(lags["local"]) >= n
			mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("applied %d remote and %d local of %d", len(lags["l2a"]), len(lags["local"]), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.StopTimer()
		cancel()
		wg.Wait()
		p := func(xs []time.Duration, q float64) float64 {
			xs = slices.Clone(xs)
			slices.Sort(xs)
			return float64(xs[int(q*float64(len(xs)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(p(lags["l2a"], 0.5), "remote_p50_ms")
		b.ReportMetric(p(lags["l2a"], 0.99), "remote_p99_ms")
		b.ReportMetric(p(lags["local"], 0.99), "local_p99_ms")
		b.ReportMetric(p(lags["l2a"], 0.99)/p(lags["local"], 0.99), "lag_p99_ratio")
	}
}
