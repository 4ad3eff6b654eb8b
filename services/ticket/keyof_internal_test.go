package ticket

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestKeyOfAsBefore: a ticket's storage key is the first 128 bits of its
// SHA-256 in hex, for values of every length up to the longest ticket
// and past it (copied on the heap then).
func TestKeyOfAsBefore(t *testing.T) {
	for n := range MaxTicketLen + 40 {
		v := strings.Repeat("ST-0123456789abcdef-", n/20+1)[:n]
		sum := sha256.Sum256([]byte(v))
		if got, want := keyOf(v), hex.EncodeToString(sum[:16]); got != want {
			t.Fatalf("length %d: key %s, want %s", n, got, want)
		}
	}
	long := strings.Repeat("x", MaxTicketLen)
	if a := testing.AllocsPerRun(100, func() { _ = keyOf(long) }); a > 1 {
		t.Errorf("keyOf: %v allocations, want the key's only", a)
	}
}
