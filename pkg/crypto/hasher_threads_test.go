package crypto

import (
	"context"
	"sync"
	"testing"
)

// OwnThreads: the hashes run on the workers' own threads, give the same
// results, share the admission, and Close ends the threads (later calls
// hash on the caller's goroutine).
func TestOwnThreads(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(HasherConfig{Params: testParams, Workers: 2, OwnThreads: true})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Go(func() {
			pw := string(rune('a' + i%26))
			enc, err := h.Hash(ctx, pw)
			if err != nil {
				errs <- err
				return
			}
			if ok, _, err := h.Verify(ctx, enc, pw); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
			if ok, _, _ := h.Verify(ctx, enc, pw+"x"); ok {
				t.Error("a wrong password verified")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	want := RawArgon2id([]byte("pw"), salt, testParams)
	got, err := h.compute(ctx, []byte("pw"), salt, testParams, true)
	if err != nil || string(got) != string(want) {
		t.Fatalf("own thread's key %x (%v), want %x", got, err, want)
	}
	if err := h.Run(ctx, func() {}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	h.Close() // twice is harmless
	for range 3 {
		got, err := h.compute(ctx, []byte("pw"), salt, testParams, true)
		if err != nil || string(got) != string(want) {
			t.Fatalf("after Close: key %x (%v), want %x", got, err, want)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.free) != 2 || len(h.queue) != 0 {
		t.Fatalf("after Close: %d idle workers, %d queued", len(h.free), len(h.queue))
	}
}

// The pure-Go hash of a worker yields its processor on the way; the key is
// the same as without.
func TestYieldingHashSameKey(t *testing.T) {
	p := Argon2Params{MemoryKiB: 4096, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	salt := []byte("0123456789abcdef")
	want := argon2idKey(nil, []byte("pw"), salt, p)
	if got := argon2idKey(&argon2Memory{yield: true}, []byte("pw"), salt, p); string(got) != string(want) {
		t.Fatalf("yielding hash %x, want %x", got, want)
	}
}
