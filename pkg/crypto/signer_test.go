package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// mac is HMAC-SHA256 of msg under key, built afresh: the reference the
// Signer's pooled states are checked against.
func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// TestSignerRawMACs checks that the pooled, reset HMAC states give the MAC
// of a fresh hmac.New every time, for every key, also concurrently, and that
// VerifyMAC accepts exactly the right key id and MAC.
func TestSignerRawMACs(t *testing.T) {
	keys := map[string][]byte{"a": key(1), "b": key(2)}
	s := NewSigner("b", keys)
	keys["b"][0] ^= 1 // NewSigner copied the keys
	want := mac
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

// Verify accepts a signature by any key of the set under that key's id,
// and nothing else.
func TestSignerVerify(t *testing.T) {
	s := NewSigner("a", map[string][]byte{"a": key(1), "b": key(2)})
	msg := []byte("uias ticket v1\x00ST-1")
	enc := base64.RawURLEncoding.EncodeToString
	good := s.Sign(msg)
	body := good[len("a:"):]
	// A message whose MAC's URL-safe base64 has a '-' or '_', which the
	// standard alphabet writes '+' or '/'.
	var urlMsg []byte
	for i := 0; urlMsg == nil; i++ {
		if m := fmt.Appendf(nil, "msg %d", i); strings.ContainsAny(enc(mac(key(1), m)), "-_") {
			urlMsg = m
		}
	}
	// flip changes character i of a URL-safe base64 text to another of the
	// alphabet, in a bit that counts also in the last character (whose two
	// lowest bits are padding).
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	flip := func(str string, i int) string {
		b := []byte(str)
		b[i] = alphabet[strings.IndexByte(alphabet, b[i])^16]
		return string(b)
	}
	for _, c := range []struct {
		name string
		msg  []byte
		sig  string
		want bool
	}{
		{"the active key's signature", msg, good, true},
		{"another key of the set, under its id", msg, "b:" + enc(mac(key(2), msg)), true},
		{"the same body", msg, "a:" + body, true},
		{"wrong key under the active id", msg, "a:" + enc(mac(key(3), msg)), false},
		{"the other key's MAC under the active id", msg, "a:" + enc(mac(key(2), msg)), false},
		{"the active key's MAC under the other id", msg, "b:" + body, false},
		{"unknown key id", msg, "c:" + body, false},
		{"empty key id", msg, ":" + body, false},
		{"key id in another case", msg, "A:" + body, false},
		{"another message", append(msg, '!'), good, false},
		{"empty message", nil, good, false},
		{"altered first character", msg, "a:" + flip(body, 0), false},
		{"altered last character", msg, "a:" + flip(body, len(body)-1), false},
		{"truncated by one character", msg, good[:len(good)-1], false},
		{"truncated by four characters (whole bytes)", msg, good[:len(good)-4], false},
		{"the MAC's first 16 bytes", msg, "a:" + enc(mac(key(1), msg)[:16]), false},
		{"the MAC and one more byte", msg, "a:" + enc(append(mac(key(1), msg), 0)), false},
		{"the MAC and four more characters", msg, good + "AAAA", false},
		{"key id only", msg, "a:", false},
		{"empty", msg, "", false},
		{"colon only", msg, ":", false},
		{"no colon", msg, "a" + body, false},
		{"body with padding", msg, good + "=", false},
		{"standard base64 alphabet", urlMsg, "a:" + base64.RawStdEncoding.EncodeToString(mac(key(1), urlMsg)), false},
		{"(its URL-safe form)", urlMsg, "a:" + enc(mac(key(1), urlMsg)), true},
		{"a second colon", msg, "a:" + body[:10] + ":" + body[10:], false},
		{"spaces around", msg, " " + good + " ", false},
	} {
		if got := s.Verify(c.msg, c.sig); got != c.want {
			t.Errorf("%s: Verify(%q) = %v, want %v", c.name, c.sig, got, c.want)
		}
	}
}
