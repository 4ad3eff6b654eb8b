package crypto

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
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
	if h.Workers() != runtime.GOMAXPROCS(0) || h.QueueLen() != 4*h.Workers() {
		t.Fatalf("workers=%d queue=%d", h.Workers(), h.QueueLen())
	}
	if q := NewHasher(HasherConfig{Workers: 1, Queue: NoQueue}).QueueLen(); q != 0 {
		t.Fatalf("NoQueue -> %d", q)
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
// closed; started receives one value per derive call that has begun.
func blockingHasher(cfg HasherConfig) (h *Hasher, started chan struct{}, release chan struct{}) {
	h = NewHasher(cfg)
	started = make(chan struct{}, 16)
	release = make(chan struct{})
	h.derive = func(m *argon2Memory, pw, salt []byte, p Argon2Params) []byte {
		started <- struct{}{}
		<-release
		return argon2idKey(m, pw, salt, p)
	}
	return h, started, release
}

// waitForWaiters spins (without sleeping or timing) until n callers are queued.
func waitForWaiters(h *Hasher, n int) {
	for h.Waiting() != n {
		runtime.Gosched()
	}
}

func TestOverloadNoQueue(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Queue: NoQueue})
	done := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "first"); done <- err }()
	if h.Saturated() {
		t.Fatal("saturated with an idle worker")
	}
	<-started // the only worker is now busy
	if !h.Saturated() {
		t.Fatal("not saturated with the only worker busy and no queue")
	}

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
	// Capacity is back.
	if _, err := h.Hash(ctx, "third"); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestOverloadQueueBound(t *testing.T) {
	ctx := context.Background()
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Queue: 1})
	results := make(chan error, 2)
	go func() { _, err := h.Hash(ctx, "in flight"); results <- err }()
	<-started
	if h.Saturated() {
		t.Fatal("saturated with a free queue slot")
	}
	go func() { _, err := h.Hash(ctx, "queued"); results <- err }()
	waitForWaiters(h, 1)
	if !h.Saturated() {
		t.Fatal("not saturated with the worker busy and the queue full")
	}

	if _, err := h.Hash(ctx, "rejected"); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("Hash with full queue = %v, want ErrOverloaded", err)
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("admitted hash failed: %v", err)
		}
	}
	if h.Saturated() {
		t.Fatal("still saturated after the work finished")
	}
}

func TestContextCancelWhileWaiting(t *testing.T) {
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Queue: 4})
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
	if len(h.slots) != 2 {
		t.Fatalf("%d idle workers, want 2", len(h.slots))
	}
	want := 0
	if argon2ReusesMemory {
		want = int(testParams.MemoryKiB) * 1024
	}
	for range 2 {
		m := <-h.slots
		if cap(m.buf) != want && cap(m.buf) != 0 {
			t.Errorf("worker memory %d bytes, want %d (or 0 if unused)", cap(m.buf), want)
		}
		if argon2ReusesMemory && cap(m.buf) > want {
			t.Errorf("worker kept %d bytes after a bigger hash", cap(m.buf))
		}
	}
}
