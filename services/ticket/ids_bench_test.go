package ticket

import (
	"testing"
	"time"
)

type benchMAC struct{}

func (benchMAC) AppendMAC(dst, _ []byte) (string, []byte) {
	return "k1", append(dst, make([]byte, 32)...)
}
func (benchMAC) VerifyMAC(string, []byte, []byte) bool { return true }

// TestTicketCharClasses pins the character classes of ticket values.
func TestTicketCharClasses(t *testing.T) {
	for s, want := range map[string]bool{"ST-abc-XYZ-09": true, "": false, "ST_1": false, "ST+1": false, "ST/1": false,
		"ST=1": false, "ST 1": false, "ST-é": false, string(make([]byte, MaxTicketLen+1)): false} {
		if got := ValidTicketChars(s); got != want {
			t.Errorf("ValidTicketChars(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"c1": true, "C1": true, "": false, "c-1": false, "abcdefghijklmnopq": false, "abcdefghijklmnop": true} {
		if got := validCentre(s); got != want {
			t.Errorf("validCentre(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"a1b2": true, "A1": false, "": false, "a-1": false, "abcdefghijklmnopq": false} {
		if got := ValidReplica(s); got != want {
			t.Errorf("ValidReplica(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"09af": true, "09aF": false, "0g": false, "": false} {
		if got := lowerHex(s); got != want {
			t.Errorf("lowerHex(%q) = %v", s, got)
		}
	}
}

// BenchmarkParseSigned measures the parse of a service ticket value (the
// signature check itself stubbed).
func BenchmarkParseSigned(b *testing.B) {
	now := time.Now()
	st, _ := newSigned(benchMAC{}, PrefixST, "c1", "0123456789ab", now, now.Add(10*time.Second))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSigned(benchMAC{}, PrefixST, st); err != nil {
			b.Fatal(err)
		}
	}
}
