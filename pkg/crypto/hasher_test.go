package crypto

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fast params for tests; argon2 cost is irrelevant to the logic under test.
var testParams = Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherConfig{Params: testParams})
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("unexpected encoding %q", enc)
	}
	ok, rehash, err := h.Verify(ctx, enc, "correct horse")
	if err != nil || !ok || rehash {
		t.Fatalf("Verify(correct) = %v, %v, %v", ok, rehash, err)
	}
	ok, rehash, err = h.Verify(ctx, enc, "wrong horse")
	if err != nil || ok || rehash {
		t.Fatalf("Verify(wrong) = %v, %v, %v", ok, rehash, err)
	}
	enc2, _ := h.Hash(ctx, "correct horse")
	if enc2 == enc {
		t.Fatal("two hashes of the same password are equal (salt not random?)")
	}
	// Unicode and empty passwords work too.
	for _, pw := range []string{"", "密码🔒"} {
		e, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, _ := h.Verify(ctx, e, pw); !ok {
			t.Fatalf("Verify(%q) failed", pw)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	ctx := context.Background()
	old := NewHasher(HasherConfig{Params: testParams})
	enc, err := old.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]Argon2Params{
		"memory":  {MemoryKiB: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		"time":    {MemoryKiB: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32},
		"threads": {MemoryKiB: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32},
		"keylen":  {MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 64},
		"saltlen": {MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 32},
	}
	for name, p := range changes {
		t.Run(name, func(t *testing.T) {
			ok, rehash, err := NewHasher(HasherConfig{Params: p}).Verify(ctx, enc, "pw")
			if err != nil || !ok || !rehash {
				t.Fatalf("Verify = %v, %v, %v; want ok and needsRehash", ok, rehash, err)
			}
		})
	}
	// Wrong password never asks for a rehash.
	ok, rehash, _ := NewHasher(HasherConfig{Params: changes["time"]}).Verify(ctx, enc, "nope")
	if ok || rehash {
		t.Fatalf("wrong password: ok=%v rehash=%v", ok, rehash)
	}
}

func TestDefaultsFilled(t *testing.T) {
	h := NewHasher(HasherConfig{})
	if h.Params() != DefaultArgon2() {
		t.Fatalf("Params = %+v", h.Params())
	}
	if h.Workers() != runtime.GOMAXPROCS(0) || h.MaxWait() != DefaultMaxHashWait || h.waitCap != -1 {
		t.Fatalf("workers=%d max wait=%v wait cap=%d", h.Workers(), h.MaxWait(), h.waitCap)
	}
	if h.HashTime() <= 0 {
		t.Fatalf("no hash time estimate after NewHasher: %v", h.HashTime())
	}
	if c := NewHasher(HasherConfig{Params: testParams, Workers: 1, Queue: NoQueue}).waitCap; c != 0 {
		t.Fatalf("NoQueue -> wait cap %d", c)
	}
	if c := NewHasher(HasherConfig{Params: testParams, Workers: 1, Queue: 3}).waitCap; c != 3 {
		t.Fatalf("Queue 3 -> wait cap %d", c)
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams})
	for _, enc := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"} {
		ok, _, err := h.Verify(context.Background(), enc, "pw")
		if ok || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformedHash", enc, ok, err)
		}
	}
}

// blockingHasher returns a hasher whose derive blocks until release is
// closed; started receives one value per derive call that has begun. Its
// estimate of one hash's duration is fixed at est (nothing is timed), and
// its clock stands still at clockAt (a time far from now, so that context
// deadlines set from it never fire during a test).
func blockingHasher(cfg HasherConfig, est time.Duration) (h *Hasher, started chan struct{}, release chan struct{}) {
	cfg.Testing = &HasherTesting{HashTime: est}
	h = NewHasher(cfg)
	h.now = func() time.Time { return clockAt }
	started = make(chan struct{}, 64)
	release = make(chan struct{})
	h.derive = func(m *argon2Memory, pw, salt []byte, p Argon2Params) []byte {
		started <- struct{}{}
		<-release
		return argon2idKey(m, pw, salt, p)
	}
	return h, started, release
}

var clockAt = time.Now().Add(24 * time.Hour)

// waitForWaiters spins (without sleeping or timing) until n callers are queued.
func waitForWaiters(h *Hasher, n int) {
	for h.Waiting() != n {
		runtime.Gosched()
	}
}

func TestOverloadNoQueue(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Queue: NoQueue}, time.Millisecond)
	done := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "first"); done <- err }()
	<-started // the only worker is now busy

	if _, err := h.Hash(ctx, "second"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash while saturated = %v, want ErrOverloaded", err)
	}
	enc := EncodePHC(testParams, make([]byte, 16), make([]byte, 32))
	if _, _, err := h.Verify(ctx, enc, "x"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Verify while saturated = %v, want ErrOverloaded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("first hash: %v", err)
	}
	// Capacity is back (once the worker is back from handing over its
	// result: until then a call that may not wait is refused).
	for {
		_, err := h.Hash(ctx, "third")
		if err == nil {
			break
		}
		if !errors.Is(err, ErrOverloaded) {
			t.Fatalf("after release: %v", err)
		}
		runtime.Gosched()
	}
}

func TestOverloadQueueBound(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Queue: 1}, time.Millisecond)
	results := make(chan error, 2)
	go func() { _, err := h.Hash(ctx, "in flight"); results <- err }()
	<-started
	go func() { _, err := h.Hash(ctx, "queued"); results <- err }()
	waitForWaiters(h, 1)

	if _, err := h.Hash(ctx, "rejected"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash with full queue = %v, want ErrOverloaded", err)
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("admitted hash failed: %v", err)
		}
	}
}

// TestWaitBudgetMaxWait: with 2 workers busy and hashes of 1 s, the k-th
// caller to queue (k from 0) projects 1 s + k x 0.5 s; with MaxWait 3 s
// (and its quarter of slack: 3.75 s) callers 0..5 wait and the next,
// projecting 4 s, is refused at once. All admitted ones are then served.
func TestWaitBudgetMaxWait(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 2, MaxWait: 3 * time.Second}, time.Second)
	results := make(chan error, 8)
	for range 2 {
		go func() { _, err := h.Hash(ctx, "running"); results <- err }()
		<-started
	}
	for k := range 6 {
		if w := h.projectedWait(int64(k)); w != time.Second+time.Duration(k)*500*time.Millisecond {
			t.Fatalf("projected wait with %d ahead = %v", k, w)
		}
		go func() { _, err := h.Hash(ctx, "waiting"); results <- err }()
		waitForWaiters(h, k+1)
	}
	if _, err := h.Hash(ctx, "one too many"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash projecting 4 s with MaxWait 3 s = %v, want ErrOverloaded", err)
	}
	enc := EncodePHC(testParams, make([]byte, 16), make([]byte, 32))
	if _, _, err := h.Verify(ctx, enc, "x"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Verify projecting 4 s with MaxWait 3 s = %v, want ErrOverloaded", err)
	}
	if h.Waiting() != 6 {
		t.Fatalf("refused calls left %d waiting, want 6", h.Waiting())
	}
	close(release)
	for range 8 {
		if err := <-results; err != nil {
			t.Fatalf("admitted call failed: %v", err)
		}
	}
}

// TestWaitBudgetSlack: a projected wait may pass MaxWait by a quarter of
// it (the estimate's error, estimateSlack) and still wait, not more. One
// worker busy, hashes of 1 s, MaxWait 4 s: the k-th caller to queue
// projects k+1 s; those projecting up to 5 s (4 s and its quarter) wait,
// the one projecting 6 s is refused at once. The deadline gets no slack.
func TestWaitBudgetSlack(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, MaxWait: 4 * time.Second}, time.Second)
	results := make(chan error, 6)
	go func() { _, err := h.Hash(ctx, "running"); results <- err }()
	<-started
	for k := range 5 {
		if k == 4 {
			// Within MaxWait's slack is not within the deadline: a
			// call projected to wait 5 s whose own hash would then end
			// past its deadline is refused.
			short, cancel := context.WithDeadline(ctx, clockAt.Add(5500*time.Millisecond))
			admitted := h.Admits(short)
			cancel()
			if admitted {
				t.Fatal("Admits = true for a deadline 5.5 s away behind a 5 s wait and its own 1 s hash")
			}
		}
		go func() { _, err := h.Hash(ctx, "waiting"); results <- err }()
		waitForWaiters(h, k+1)
	}
	if _, err := h.Hash(ctx, "one too many"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash projecting 6 s with MaxWait 4 s = %v, want ErrOverloaded", err)
	}
	close(release)
	for range 6 {
		if err := <-results; err != nil {
			t.Fatalf("admitted call failed: %v", err)
		}
	}
}

// TestWaitBudgetDeadline: a call waits only if its projected wait plus its
// own hash end before its context's deadline; MaxWait is not the limit here.
func TestWaitBudgetDeadline(t *testing.T) {
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, MaxWait: time.Hour}, time.Second)
	results := make(chan error, 3)
	go func() { _, err := h.Hash(context.Background(), "running"); results <- err }()
	<-started

	// 1 s wait + 1 s hash does not fit 1.5 s.
	short, cancel := context.WithDeadline(context.Background(), clockAt.Add(1500*time.Millisecond))
	defer cancel()
	if _, err := h.Hash(short, "too late"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash with 1.5 s left projecting 2 s = %v, want ErrOverloaded", err)
	}
	// It fits 2.5 s (and no deadline at all): both wait.
	long, cancel2 := context.WithDeadline(context.Background(), clockAt.Add(2500*time.Millisecond))
	defer cancel2()
	go func() { _, err := h.Hash(long, "in time"); results <- err }()
	waitForWaiters(h, 1)
	// Second in line: 1 s + 1 s wait + 1 s hash is past 2.5 s.
	if _, err := h.Hash(long, "second in line"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("second in line with 2.5 s left = %v, want ErrOverloaded", err)
	}
	go func() { _, err := h.Hash(context.Background(), "no deadline"); results <- err }()
	waitForWaiters(h, 2)
	close(release)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatalf("admitted call failed: %v", err)
		}
	}
}

// TestWaitersHoldNoHashMemory: however many calls wait, only the workers
// hash, each in its own kept memory.
func TestWaitersHoldNoHashMemory(t *testing.T) {
	const workers, waiters = 2, 40
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: workers}, time.Nanosecond)
	var (
		mu             sync.Mutex
		inFlight, peak int
		mems           = map[*argon2Memory]bool{}
		gate           = h.derive
	)
	h.derive = func(m *argon2Memory, pw, salt []byte, p Argon2Params) []byte {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mems[m] = true
		mu.Unlock()
		key := gate(m, pw, salt, p)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return key
	}
	results := make(chan error, workers+waiters)
	for range workers {
		go func() { _, err := h.Hash(context.Background(), "running"); results <- err }()
		<-started
	}
	for range waiters {
		go func() { _, err := h.Hash(context.Background(), "waiting"); results <- err }()
	}
	waitForWaiters(h, waiters)
	mu.Lock()
	if inFlight != workers {
		t.Errorf("%d hashes in flight with %d waiting, want %d", inFlight, waiters, workers)
	}
	mu.Unlock()
	close(release)
	for range workers + waiters {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if peak != workers || len(mems) != workers {
		t.Fatalf("peak %d concurrent hashes in %d memories, want %d and %d", peak, len(mems), workers, workers)
	}
	if argon2ReusesMemory {
		for m := range mems {
			if cap(m.buf) > int(testParams.MemoryKiB)*1024 {
				t.Errorf("worker memory %d bytes, more than one hash needs", cap(m.buf))
			}
		}
	}
}

// TestEstimateIsMedianOfRecent: the estimate is the median of the last 64
// hashes at the current parameters; one stalled hash does not move it, a
// lasting change does, and hashes under other parameters (old stored
// hashes) do not count.
func TestEstimateIsMedianOfRecent(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	var now time.Time
	var step time.Duration
	h.now = func() time.Time { return now }
	h.derive = func(m *argon2Memory, pw, salt []byte, p Argon2Params) []byte {
		now = now.Add(step) // the hash "takes" step
		return argon2idKey(m, pw, salt, p)
	}
	ctx := context.Background()
	hashTaking := func(d time.Duration) {
		t.Helper()
		step = d
		if _, err := h.Hash(ctx, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	h.recent, h.next = [estimateWindow]time.Duration{}, 0
	for _, d := range []time.Duration{50, 30, 40} {
		hashTaking(d * time.Millisecond)
	}
	if got := h.HashTime(); got != 40*time.Millisecond {
		t.Fatalf("estimate after 50, 30, 40 ms = %v, want 40 ms", got)
	}
	for range estimateWindow {
		hashTaking(20 * time.Millisecond)
	}
	hashTaking(time.Second) // stalled
	if got := h.HashTime(); got != 20*time.Millisecond {
		t.Fatalf("estimate after one stalled hash = %v, want 20 ms", got)
	}
	big := testParams
	big.MemoryKiB *= 2
	step = time.Hour
	enc := EncodePHC(big, []byte("0123456789abcdef"), RawArgon2id([]byte("pw"), []byte("0123456789abcdef"), big))
	for range estimateWindow {
		if ok, _, err := h.Verify(ctx, enc, "pw"); !ok || err != nil {
			t.Fatalf("Verify(old params) = %v, %v", ok, err)
		}
	}
	if got := h.HashTime(); got != 20*time.Millisecond {
		t.Fatalf("hashes under other parameters changed the estimate to %v", got)
	}
	for range estimateWindow / 2 {
		hashTaking(60 * time.Millisecond)
	}
	if got := h.HashTime(); got != 60*time.Millisecond {
		t.Fatalf("estimate after %d hashes of 60 ms = %v, want 60 ms", estimateWindow/2, got)
	}
}

func TestHashIfIdle(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1}, time.Nanosecond)
	done := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "running"); done <- err }()
	<-started
	if _, err := h.HashIfIdle(ctx, "busy"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("HashIfIdle with the worker busy = %v, want ErrOverloaded at once", err)
	}
	if h.Waiting() != 0 {
		t.Fatal("HashIfIdle waited")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Once the worker is back from handing over its result, it is idle.
	var enc string
	for {
		var err error
		if enc, err = h.HashIfIdle(ctx, "idle"); err == nil {
			break
		}
		if !errors.Is(err, ErrOverloaded) {
			t.Fatalf("HashIfIdle with the worker idle: %v", err)
		}
		runtime.Gosched()
	}
	if ok, _, err := h.Verify(ctx, enc, "idle"); !ok || err != nil {
		t.Fatalf("Verify(HashIfIdle) = %v, %v", ok, err)
	}
}

func TestContextCancelWhileWaiting(t *testing.T) {
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Queue: 4}, time.Millisecond)
	defer close(release)
	go func() { _, _ = h.Hash(context.Background(), "in flight") }()
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "waiting"); res <- err }()
	waitForWaiters(h, 1)
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash after cancel = %v, want context.Canceled", err)
	}
	if h.Waiting() != 0 {
		t.Fatalf("waiting = %d after cancel", h.Waiting())
	}
}

// TestWorkersAllComeBack: whatever the mix of served, refused and
// cancelled calls, every worker ends idle and the queue empty.
func TestWorkersAllComeBack(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 3, Queue: 8})
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			if i%3 == 0 {
				cancel() // before, during or after its wait
			}
			_, _ = h.Hash(ctx, "pw")
			if i%5 == 0 {
				_, _ = h.HashIfIdle(ctx, "pw")
			}
			cancel()
		})
		if i%7 == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	h.mu.Lock()
	idle, queued := len(h.free), len(h.queue)
	h.mu.Unlock()
	if queued != 0 || idle != 3 {
		t.Fatalf("%d jobs left in the queue, %d idle workers of 3", queued, idle)
	}
	if _, err := h.Hash(context.Background(), "after"); err != nil {
		t.Fatal(err)
	}
}

func TestContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := NewHasher(HasherConfig{Params: testParams})
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash = %v", err)
	}
}

func TestRawArgon2idDeterministic(t *testing.T) {
	a := RawArgon2id([]byte("pw"), []byte("0123456789abcdef"), testParams)
	b := RawArgon2id([]byte("pw"), []byte("0123456789abcdef"), testParams)
	if len(a) != 32 || string(a) != string(b) {
		t.Fatal("RawArgon2id not deterministic or wrong length")
	}
}

func BenchmarkRawArgon2idDefault(b *testing.B) {
	p := DefaultArgon2()
	salt := make([]byte, p.SaltLen)
	pw := []byte("correct horse battery staple")
	b.ReportAllocs()
	for b.Loop() {
		RawArgon2id(pw, salt, p)
	}
}

func BenchmarkHasherHashDefault(b *testing.B) {
	h := NewHasher(HasherConfig{Params: DefaultArgon2()})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHasherReusesWorkerMemory: each worker keeps one memory of the current
// parameters' size, and verifying an older hash made with more memory does
// not make it keep more.
func TestHasherReusesWorkerMemory(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherConfig{Params: testParams, Workers: 2})
	big := testParams
	big.MemoryKiB *= 4
	bigHash := EncodePHC(big, []byte("0123456789abcdef"), RawArgon2id([]byte("old"), []byte("0123456789abcdef"), big))
	for range 3 {
		enc, err := h.Hash(ctx, "pw")
		if err != nil {
			t.Fatal(err)
		}
		if ok, _, err := h.Verify(ctx, enc, "pw"); !ok || err != nil {
			t.Fatalf("Verify = %v, %v", ok, err)
		}
		if ok, rehash, err := h.Verify(ctx, bigHash, "old"); !ok || !rehash || err != nil {
			t.Fatalf("Verify(bigger hash) = %v, %v, %v", ok, rehash, err)
		}
	}
	if len(h.mems) != 2 {
		t.Fatalf("%d worker memories, want 2", len(h.mems))
	}
	want := 0
	if argon2ReusesMemory {
		want = int(testParams.MemoryKiB) * 1024
	}
	for _, m := range h.mems {
		if cap(m.buf) != want && cap(m.buf) != 0 {
			t.Errorf("worker memory %d bytes, want %d (or 0 if unused)", cap(m.buf), want)
		}
		if argon2ReusesMemory && cap(m.buf) > want {
			t.Errorf("worker kept %d bytes after a bigger hash", cap(m.buf))
		}
	}
}

// Run shares the workers and the admission of hashes: it runs its work
// when a worker is free, queues behind busy workers, and is refused like a
// hash when it may not wait.
func TestRunSharesWorkers(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Queue: NoQueue}, time.Millisecond)
	ran := false
	if err := h.Run(ctx, func() { ran = true }); err != nil || !ran {
		t.Fatalf("Run on an idle hasher: ran %v, %v", ran, err)
	}
	done := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "first"); done <- err }()
	<-started
	if err := h.Run(ctx, func() { t.Error("work ran while the only worker was busy") }); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Run while saturated = %v, want ErrOverloaded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Queued behind a busy worker, the work runs on that worker after it.
	h, started, release = blockingHasher(HasherConfig{Params: testParams, Workers: 1}, time.Millisecond)
	go func() { _, err := h.Hash(ctx, "first"); done <- err }()
	<-started
	queued := make(chan error, 1)
	ran = false
	go func() { queued <- h.Run(ctx, func() { ran = true }) }()
	waitForWaiters(h, 1)
	close(release)
	if err := <-queued; err != nil || !ran {
		t.Fatalf("queued Run: ran %v, %v", ran, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAdmitsAnswersAsHashWould: Admits tells, without reserving anything,
// what Hash would decide now: true with a worker free or a projected wait
// that fits max wait and the deadline, false otherwise.
func TestAdmitsAnswersAsHashWould(t *testing.T) {
	ctx := context.Background()
	// One worker, hashes estimated at 1 s, max wait 2 s: with the worker
	// busy, the first waiter projects 1 s, the second 2 s, the third 3 s.
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, MaxWait: 2 * time.Second}, time.Second)
	if !h.Admits(ctx) {
		t.Fatal("Admits = false with the worker free")
	}
	done := make(chan error, 3)
	go func() { _, err := h.Hash(ctx, "first"); done <- err }()
	<-started
	short, cancel := context.WithDeadline(ctx, clockAt.Add(1500*time.Millisecond))
	defer cancel()
	if h.Admits(short) {
		t.Fatal("Admits = true for a deadline 1.5 s away (wait 1 s, then its own 1 s hash)")
	}
	for i := range 2 {
		if !h.Admits(ctx) {
			t.Fatalf("Admits = false with %d waiting (projected %d s, max 2 s)", i, i+1)
		}
		go func() { _, err := h.Hash(ctx, "waiter"); done <- err }()
		waitForWaiters(h, i+1)
	}
	if h.Admits(ctx) {
		t.Fatal("Admits = true with 2 waiting (projected 3 s, max 2 s)")
	}
	if _, err := h.Hash(ctx, "refused"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash after Admits = false: %v, want ErrOverloaded", err)
	}
	if h.Waiting() != 2 {
		t.Fatalf("Admits reserved something: %d waiting, want 2", h.Waiting())
	}
	close(release)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if !h.Admits(short) {
		t.Fatal("Admits = false with the worker free again")
	}
	gone, stop := context.WithCancel(ctx)
	stop()
	if h.Admits(gone) {
		t.Fatal("Admits = true for a call whose context ended")
	}
}

// Active: false before any hash, true while one runs and within the
// window after the last one ended, false after it.
func TestHasherActive(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1}, time.Nanosecond)
	now := time.Unix(1_000_000, 0)
	h.now = func() time.Time { return now }
	if h.Active(time.Second) {
		t.Fatal("active before any hash")
	}
	done := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "running"); done <- err }()
	<-started
	now = now.Add(time.Hour) // a long hash: active while it runs, whatever the window
	if !h.Active(time.Second) {
		t.Fatal("not active while a hash runs")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for h.running.Load() > 0 {
		runtime.Gosched()
	}
	now = now.Add(999 * time.Millisecond)
	if !h.Active(time.Second) {
		t.Fatal("not active 999ms after the last hash, window 1s")
	}
	now = now.Add(time.Millisecond)
	if h.Active(time.Second) {
		t.Fatal("active 1s after the last hash, window 1s")
	}
}

// Contended: false while logins find a free worker (however many hash),
// true while every worker is busy or a call waits, and within the window
// after a call last found every worker busy, false after it.
func TestHasherContended(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 2}, time.Nanosecond)
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	if h.Contended(time.Second) {
		t.Fatal("contended before any hash")
	}
	done := make(chan error, 3)
	hash := func(pw string) { go func() { _, err := h.Hash(ctx, pw); done <- err }() }
	hash("one")
	<-started
	if h.Contended(time.Second) {
		t.Fatal("contended with one of two workers busy")
	}
	if !h.Active(time.Second) {
		t.Fatal("not active while a hash runs")
	}
	hash("two")
	<-started
	if !h.Contended(time.Second) {
		t.Fatal("not contended with every worker busy")
	}
	hash("three")
	waitForWaiters(h, 1)
	if !h.Contended(0) { // the queue alone says so, whatever the window
		t.Fatal("not contended with a call waiting")
	}
	close(release)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for h.running.Load() > 0 || h.Waiting() > 0 {
		runtime.Gosched()
	}
	if !h.Contended(time.Second) {
		t.Fatal("not contended right after a call waited, window 1s")
	}
	advance(time.Second)
	if h.Contended(time.Second) {
		t.Fatal("contended 1s after a call last waited, window 1s")
	}
	if !h.Active(time.Hour) {
		t.Fatal("not active after hashes, window 1h")
	}
}

// TestEstimateFollowsBusyWorkers: once enough hashes have run back to back
// (queued, each begun as the one before it ended), the estimate is the
// lone hashes' median times the back-to-back ones' pace against it: the
// pace learnt in one burst carries over to the next, scaled by how lone
// hashes run now, within busyRatioMin..busyRatioMax.
func TestEstimateFollowsBusyWorkers(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	var (
		mu        sync.Mutex
		now       = clockAt
		lone      time.Duration // what a lone hash "takes"
		busy      time.Duration // what a back-to-back one does
		hold      chan struct{} // when set, the next lone hash waits for it
		heldBegan = make(chan struct{}, 1)
	)
	h.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h.cpu = func() (time.Duration, bool) { return 0, false } // the fake hashes use none
	h.derive = func(m *argon2Memory, pw, salt []byte, p Argon2Params) []byte {
		mu.Lock()
		wait := hold
		hold = nil
		mu.Unlock()
		if wait != nil {
			heldBegan <- struct{}{}
			<-wait
		}
		mu.Lock()
		if m.backToBack {
			now = now.Add(busy)
		} else {
			now = now.Add(lone)
		}
		mu.Unlock()
		return argon2idKey(m, pw, salt, p)
	}
	set := func(l, b time.Duration) { mu.Lock(); lone, busy = l, b; mu.Unlock() }
	ctx := context.Background()
	// burst holds the worker in a lone hash while n calls queue, then
	// lets them run back to back.
	burst := func(n int) {
		t.Helper()
		release := make(chan struct{})
		mu.Lock()
		hold = release
		mu.Unlock()
		errs := make(chan error, n+1)
		go func() { _, err := h.Hash(ctx, "lone"); errs <- err }()
		<-heldBegan
		for range n {
			go func() { _, err := h.Hash(ctx, "queued"); errs <- err }()
		}
		waitForWaiters(h, n)
		close(release)
		for range n + 1 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	h.estMu.Lock()
	h.recent, h.next = [estimateWindow]time.Duration{}, 0 // forget the calibration
	h.estMu.Unlock()

	set(30*time.Millisecond, 24*time.Millisecond)
	hashN(t, h, 5)
	if got := h.HashTime(); got != 30*time.Millisecond {
		t.Fatalf("estimate after lone hashes of 30 ms = %v", got)
	}
	burst(busyMin - 2)
	if got := h.HashTimes(); got.Estimate != 30*time.Millisecond || got.BusyPace != 0 {
		t.Fatalf("after %d back-to-back hashes (fewer than %d): %+v, want the lone 30 ms", busyMin-2, busyMin, got)
	}
	burst(4)
	if got := h.HashTimes(); got.Estimate != 24*time.Millisecond || got.Lone != 30*time.Millisecond || got.BusyPace != 0.8 {
		t.Fatalf("after %d back-to-back hashes of 24 ms: %+v, want 24 ms (lone 30 ms × pace 0.8)", busyMin+2, got)
	}
	if w := h.projectedWait(3); w != 24*time.Millisecond*(1+3) {
		t.Fatalf("projected wait behind 3 = %v, want 4 × 24 ms", w)
	}
	set(40*time.Millisecond, 0)
	hashN(t, h, estimateWindow)
	if got := h.HashTime(); got != 32*time.Millisecond {
		t.Fatalf("estimate with lone hashes at 40 ms = %v, want 32 ms (the busy pace 0.8 kept)", got)
	}
	set(40*time.Millisecond, time.Millisecond)
	burst(estimateWindow)
	if got := h.HashTimes(); got.BusyPace != busyRatioMin || got.Estimate != 20*time.Millisecond {
		t.Fatalf("back-to-back hashes 40 times faster than lone ones: %+v, want the pace bounded at %v", got, busyRatioMin)
	}
}

// TestBusyPaceOfAHashThatDoesNotYield: a back-to-back hash that does not
// yield (a thread of its own, which the other threads of a storm preempt)
// compares its thread's CPU time with the lone hashes' CPU time, so that
// the time the kernel gives to other processes stays in the lone wall
// time the pace multiplies; without a lone CPU time it compares times on
// a thread. A yielding one counts its time on a thread, as a lone one
// does. The pace stays within busyRatioMin..busyRatioMax.
func TestBusyPaceOfAHashThatDoesNotYield(t *testing.T) {
	ms := time.Millisecond
	fresh := func() *Hasher {
		h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
		h.estMu.Lock()
		h.recent, h.recentWall, h.recentCPU, h.next = [estimateWindow]time.Duration{}, [estimateWindow]time.Duration{}, [estimateWindow]time.Duration{}, 0
		h.estMu.Unlock()
		return h
	}
	h := fresh()
	// Lone: 25 ms of wall time, 20 of them on the CPU (the kernel gave
	// 5 ms to another process).
	for range busyLoneMin {
		h.observe(hashTimes{wall: 25 * ms, onThread: 25 * ms, cpu: 20 * ms, cpuOK: true})
	}
	for range busyMin {
		h.observe(hashTimes{wall: 50 * ms, onThread: 50 * ms, cpu: 16 * ms, cpuOK: true, backToBack: true})
	}
	if got := h.HashTimes(); got.BusyPace != 0.8 || got.Estimate != 20*ms || got.Lone != 25*ms {
		t.Fatalf("unsplit back-to-back hashes of 16 ms CPU in 50 ms: %+v, want pace 0.8 (CPU over the lone CPU 20 ms), estimate 25 ms × 0.8", got)
	}
	for range estimateWindow {
		h.observe(hashTimes{wall: 50 * ms, onThread: 30 * ms, cpu: 10 * ms, cpuOK: true, split: true, backToBack: true})
	}
	if got := h.HashTimes(); got.BusyPace != 1.2 || got.Estimate != 30*ms {
		t.Fatalf("yielding back-to-back hashes of 30 ms on a thread: %+v, want pace 1.2 (over the lone 25 ms)", got)
	}
	for range estimateWindow {
		h.observe(hashTimes{wall: 150 * ms, onThread: 100 * ms, split: true, backToBack: true})
	}
	if got := h.HashTimes(); got.BusyPace != busyRatioMax || got.Estimate != 50*ms {
		t.Fatalf("back-to-back hashes 4 times slower than lone ones: %+v, want the pace bounded at %v", got, busyRatioMax)
	}

	h = fresh() // the lone hashes' CPU time not known
	for range busyLoneMin {
		h.observe(hashTimes{wall: 25 * ms, onThread: 25 * ms})
	}
	for range busyMin {
		h.observe(hashTimes{wall: 30 * ms, onThread: 30 * ms, cpu: 16 * ms, cpuOK: true, backToBack: true})
	}
	if got := h.HashTimes(); got.BusyPace != 1.2 {
		t.Fatalf("no lone CPU time: %+v, want pace 1.2 (30 ms over 25 ms on a thread)", got)
	}
}

// TestBusyPaceAgainstFreshLoneHashes: a back-to-back hash's pace is its
// time over the lone hashes of the same stretch (those that ended within
// busyLoneAge before it, at least busyLoneMin of them). Back-to-back
// hashes on a slow stretch, whose lone hashes ran a minute earlier on a
// fast one, teach no pace: the next burst, its lone hashes fast again,
// is not admitted at the slow stretch's pace over the fast one's.
func TestBusyPaceAgainstFreshLoneHashes(t *testing.T) {
	ms := time.Millisecond
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	now := clockAt
	h.now = func() time.Time { return now }
	h.estMu.Lock()
	h.recent, h.recentWall, h.recentCPU, h.next = [estimateWindow]time.Duration{}, [estimateWindow]time.Duration{}, [estimateWindow]time.Duration{}, 0
	h.estMu.Unlock()
	lone := func(n int, d time.Duration) {
		for range n {
			now = now.Add(d)
			h.observe(hashTimes{wall: d, onThread: d, split: true})
		}
	}
	busy := func(n int, d time.Duration) {
		for range n {
			now = now.Add(d)
			h.observe(hashTimes{wall: d, onThread: d, split: true, backToBack: true})
		}
	}

	// A fast stretch: lone hashes of 20 ms. A minute later, a slow one
	// saturated: back-to-back hashes of 34 ms and no lone hash.
	lone(estimateWindow, 20*ms)
	now = now.Add(time.Minute)
	busy(estimateWindow, 34*ms)
	if got := h.HashTimes(); got.BusyPace != 0 || got.Estimate != 20*ms {
		t.Fatalf("back-to-back hashes a minute after the last lone ones: %+v, want no pace (estimate the lone 20 ms)", got)
	}

	// Fewer than busyLoneMin lone hashes of the moment: still no pace.
	lone(busyLoneMin-1, 30*ms)
	busy(busyMin, 34*ms)
	if got := h.HashTimes(); got.BusyPace != 0 {
		t.Fatalf("with %d lone hashes of the moment: %+v, want no pace", busyLoneMin-1, got)
	}

	// Slow lone hashes of the moment (30 ms; the window's median is still
	// the older 20 ms): the pace is 36 over 30, not over 20.
	lone(1, 30*ms)
	busy(estimateWindow, 36*ms)
	if got := h.HashTimes(); got.BusyPace != 1.2 || got.Lone != 20*ms || got.Estimate != 24*ms {
		t.Fatalf("back-to-back hashes of 36 ms beside lone ones of 30 ms: %+v, want pace 1.2 (estimate lone 20 ms × 1.2)", got)
	}

	// The pace carries over a quiet stretch to the next burst, scaled by
	// the lone hashes of then.
	now = now.Add(time.Hour)
	lone(estimateWindow, 25*ms)
	if got := h.HashTimes(); got.BusyPace != 1.2 || got.Estimate != 30*ms {
		t.Fatalf("an hour later, lone hashes of 25 ms: %+v, want 25 ms × the pace 1.2 kept", got)
	}
}
