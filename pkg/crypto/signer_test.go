package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
)

// TestSignerRawMACs checks that the pooled, reset HMAC states give the MAC
// of a fresh hmac.New every time, for every key, also concurrently, and that
// VerifyMAC accepts exactly the right key id and MAC.
func TestSignerRawMACs(t *testing.T) {
	keys := map[string][]byte{"a": key(1), "b": key(2)}
	s := NewSigner("b", keys)
	keys["b"][0] ^= 1 // NewSigner copied the keys
	want := func(k, msg []byte) []byte {
		m := hmac.New(sha256.New, k)
		m.Write(msg)
		return m.Sum(nil)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				msg := fmt.Appendf(nil, "msg %d %d", g, i)
				kid, got := s.AppendMAC([]byte("pre"), msg)
				if kid != "b" || !bytes.Equal(got[3:], want(key(2), msg)) || string(got[:3]) != "pre" {
					t.Errorf("AppendMAC(%q) = %q %x", msg, kid, got)
					return
				}
				if !s.VerifyMAC("b", msg, got[3:]) || !s.VerifyMAC("a", msg, want(key(1), msg)) {
					t.Errorf("VerifyMAC(%q) refused its MAC", msg)
					return
				}
				if s.VerifyMAC("a", msg, got[3:]) || s.VerifyMAC("c", msg, got[3:]) ||
					s.VerifyMAC("b", append(msg, 0), got[3:]) || s.VerifyMAC("b", msg, got[3:34]) {
					t.Errorf("VerifyMAC(%q) accepted a wrong key, message or length", msg)
					return
				}
			}
		})
	}
	wg.Wait()
	if sig := s.Sign([]byte("x")); !s.Verify([]byte("x"), sig) || s.Verify([]byte("x"), sig+"AAAA") {
		t.Errorf("Sign/Verify: %q", sig)
	}
	if s.Active() != "b" {
		t.Errorf("Active() = %q", s.Active())
	}
}

// TestSignerMessageSizes: messages of any size (the state's copy of a
// long one is not kept) get the MAC of a fresh hmac.New, and a MAC made
// and checked in the caller's stack buffers allocates nothing.
func TestSignerMessageSizes(t *testing.T) {
	s := NewSigner("a", map[string][]byte{"a": key(1)})
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 5000, 70000, 3} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		_, got := s.AppendMAC(nil, msg)
		if !bytes.Equal(got, mac(key(1), msg)) || !s.VerifyMAC("a", msg, got) {
			t.Fatalf("%d bytes: %x", n, got)
		}
	}
	msg := []byte("uias ticket v1\x00ST-0123456789abcdef0123456789abcdef-mf0abcd-mf0abce-c1-0123456789ab")
	allocs := testing.AllocsPerRun(100, func() {
		var buf [sha256.Size]byte
		_, m := s.AppendMAC(buf[:0], msg)
		if !s.VerifyMAC("a", msg, m) {
			t.Fatal("refused")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations a MAC made and checked", allocs)
	}
}

// BenchmarkSignerVerifyMAC is the check of one ticket's MAC.
func BenchmarkSignerVerifyMAC(b *testing.B) {
	s := NewSigner("a", map[string][]byte{"a": key(1)})
	msg := []byte("uias ticket v1\x00ST-0123456789abcdef0123456789abcdef-mf0abcd-mf0abce-c1-0123456789ab")
	_, m := s.AppendMAC(nil, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !s.VerifyMAC("a", msg, m) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkHMACNew is the same check with a state built per call (the old way).
func BenchmarkHMACNew(b *testing.B) {
	k := key(1)
	msg := []byte("uias ticket v1\x00ST-0123456789abcdef0123456789abcdef-mf0abcd-mf0abce-c1-0123456789ab")
	m := mac(k, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !hmac.Equal(m, mac(k, msg)) {
			b.Fatal("refused")
		}
	}
}
