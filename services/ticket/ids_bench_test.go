package ticket

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
)

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

// TestCharClassTable: every byte is in exactly the classes the character
// ranges say (the checks read the table).
func TestCharClassTable(t *testing.T) {
	for i := range 256 {
		c := byte(i)
		digit, lower, upper := '0' <= c && c <= '9', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z'
		for set, want := range map[uint8]bool{
			classDigit | classLower | classUpper | classHyphen: digit || lower || upper || c == '-', // ValidTicketChars
			classDigit | classLower | classUpper:               digit || lower || upper,             // validCentre
			classDigit | classHexLow:                           digit || 'a' <= c && c <= 'f',       // lowerHex
			classDigit | classLower:                            digit || lower,                      // ValidReplica
			classDigit | classLower | classHyphen:              digit || lower || c == '-',          // host labels
		} {
			if got := allIn(string([]byte{c}), set); got != want {
				t.Errorf("byte %#x in %05b: %v, want %v", c, set, got, want)
			}
			if got := allIn(string([]byte{'0', c, '0'}), set); got != want {
				t.Errorf("byte %#x inside, in %05b: %v, want %v", c, set, got, want)
			}
		}
	}
	if allIn("", classDigit) {
		t.Error("the empty string is in a class")
	}
}

// BenchmarkParseSigned measures the parse and signature check of a
// service ticket value.
func BenchmarkParseSigned(b *testing.B) {
	m := crypto.NewSigner("k1", map[string][]byte{"k1": []byte("bench key")})
	now := time.Now()
	st, _ := newSigned(m, PrefixST, "c1", "0123456789ab", now, now.Add(10*time.Second))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSigned(m, PrefixST, st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewSigned measures making a signed service ticket value.
func BenchmarkNewSigned(b *testing.B) {
	m := crypto.NewSigner("k1", map[string][]byte{"k1": []byte("bench key")})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		newSigned(m, PrefixST, "c1", "0123456789ab", now, now.Add(10*time.Second))
	}
}

// TestNewSignedAsBefore: a signed value is, byte for byte, what the
// earlier code (string concatenation, signedMsg) made of the same fields,
// and it parses back, for key ids of 1 to 64 bytes and a longer one.
func TestNewSignedAsBefore(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_123)
	for _, kid := range []string{"k", "k1", strings.Repeat("x", 64)} {
		m := crypto.NewSigner(kid, map[string][]byte{kid: []byte("test key " + kid)})
		for _, prefix := range []string{PrefixST, PrefixPT} {
			v, sig := newSigned(m, prefix, "C1", "r0", now, now.Add(10*time.Second))
			body := sig.Serial + "-" + strconv.FormatInt(sig.Issued.UnixMilli(), 36) + "-" +
				strconv.FormatInt(sig.Expires.UnixMilli(), 36) + "-C1-r0"
			k, raw := m.AppendMAC(nil, signedMsg(nil, prefix, body))
			if want := prefix + body + "-" + hex.EncodeToString([]byte(k)) + "-" + hex.EncodeToString(raw); v != want {
				t.Fatalf("kid %q: %q, before %q", kid, v, want)
			}
			got, err := parseSigned(m, prefix, v)
			if err != nil || got != sig || len(sig.Serial) != 2*serialBytes || !lowerHex(sig.Serial) {
				t.Fatalf("kid %q: parsed %+v %v, made %+v", kid, got, err, sig)
			}
		}
	}
	long := strings.Repeat("y", 65) // longer than a ring allows: still parsed as before
	m := crypto.NewSigner(long, map[string][]byte{long: []byte("k")})
	v, sig := newSigned(m, PrefixST, "C1", "r0", now, now.Add(time.Second))
	if got, err := parseSigned(m, PrefixST, v); err != nil || got != sig {
		t.Fatalf("a 65-byte key id: %+v %v", got, err)
	}
	if _, err := parseSigned(m, PrefixST, v[:len(v)-1]+"0"); err == nil && v[len(v)-1] != '0' {
		t.Fatal("an altered MAC parsed")
	}
}
