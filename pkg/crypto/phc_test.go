package crypto

import (
	"errors"
	"strings"
	"testing"
)

func TestPHCRoundTrip(t *testing.T) {
	salt := []byte("0123456789abcdef")
	hash := []byte("0123456789abcdef0123456789abcdef")
	enc := EncodePHC(testParams, salt, hash)
	p, s, h, err := ParsePHC(enc)
	if err != nil {
		t.Fatal(err)
	}
	if p != testParams || string(s) != string(salt) || string(h) != string(hash) {
		t.Fatalf("round trip: %+v %q %q", p, s, h)
	}
}

func TestParsePHCMalformed(t *testing.T) {
	good := EncodePHC(testParams, []byte("0123456789abcdef"), []byte("0123456789abcdef0123456789abcdef"))
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	cases := map[string]string{
		"empty":             "",
		"garbage":           "not a hash",
		"bcrypt":            "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":           with(1, "argon2i"),
		"missing field":     strings.Join(parts[:5], "$"),
		"extra field":       good + "$x",
		"no leading dollar": strings.TrimPrefix(good, "$"),
		"version 16":        with(2, "v=16"),
		"version garbage":   with(2, "v=abc"),
		"no version":        with(2, "19"),
		"params order":      with(3, "t=1,m=64,p=1"),
		"params missing":    with(3, "m=64,t=1"),
		"params extra":      with(3, "m=64,t=1,p=1,x=2"),
		"params empty":      with(3, "m=,t=1,p=1"),
		"params negative":   with(3, "m=-64,t=1,p=1"),
		"params leading 0":  with(3, "m=064,t=1,p=1"),
		"params overflow":   with(3, "m=99999999999,t=1,p=1"),
		"memory huge":       with(3, "m=4194304,t=1,p=1"),
		"time zero":         with(3, "m=64,t=0,p=1"),
		"time huge":         with(3, "m=64,t=100000,p=1"),
		"threads zero":      with(3, "m=64,t=1,p=0"),
		"threads 256":       with(3, "m=4096,t=1,p=256"),
		"memory < 8p":       with(3, "m=8,t=1,p=2"),
		"salt bad b64":      with(4, "!!!!"),
		"salt padded":       with(4, parts[4]+"=="),
		"salt short":        with(4, "YWJj"),
		"hash bad b64":      with(5, "@@@@"),
		"hash short":        with(5, "YWJjZGVm"),
		"hash empty":        with(5, ""),
	}
	for name, enc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := ParsePHC(enc); !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("ParsePHC(%q) err = %v, want ErrMalformedHash", enc, err)
			}
		})
	}
}

func FuzzParsePHC(f *testing.F) {
	f.Add(EncodePHC(testParams, []byte("0123456789abcdef"), []byte("0123456789abcdef0123456789abcdef")))
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Add("$$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, hash, err := ParsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("error does not wrap ErrMalformedHash: %v", err)
			}
			return
		}
		// Anything accepted must be within the limits and re-encode to a
		// string that parses to the same values.
		if p.MemoryKiB > maxMemoryKiB || p.Time < 1 || p.Time > maxTime || p.Threads < 1 {
			t.Fatalf("accepted out-of-range params %+v", p)
		}
		p2, salt2, hash2, err := ParsePHC(EncodePHC(p, salt, hash))
		if err != nil || p2 != p || string(salt2) != string(salt) || string(hash2) != string(hash) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}
