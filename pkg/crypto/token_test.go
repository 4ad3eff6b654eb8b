package crypto

import (
	"strings"
	"testing"
)

// AppendHashToken is HashToken appended to a buffer, for tokens of every
// length (the buffer it hashes from holds 256 bytes), and it makes no
// allocation for a token that fits.
func TestAppendHashTokenIsHashToken(t *testing.T) {
	for _, tok := range []string{"", "abc", RandomToken(32), strings.Repeat("x", 256), strings.Repeat("y", 257), strings.Repeat("z", 4096)} {
		var b [TokenHashLen]byte
		got := string(AppendHashToken(b[:0], tok))
		if want := HashToken(tok); got != want || len(got) != TokenHashLen {
			t.Errorf("token of %d bytes: AppendHashToken %q, HashToken %q", len(tok), got, want)
		}
		if got := string(AppendHashToken([]byte("prefix:"), tok)); got != "prefix:"+HashToken(tok) {
			t.Errorf("token of %d bytes: not appended: %q", len(tok), got)
		}
	}
	tok := RandomToken(32)
	var b [TokenHashLen]byte
	if n := testing.AllocsPerRun(100, func() { AppendHashToken(b[:0], tok) }); n != 0 {
		t.Errorf("AppendHashToken made %v allocations a call, want 0", n)
	}
}
