package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/uias/uias/pkg/jsonenc"
)

// hostile are strings whose escaping encoding/json gets a say in.
var hostile = []string{
	"", "plain", `quote " and \ backslash`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "<script>&amp;</script>",
	"line\u2028sep\u2029para", "bad utf8 \xff\xfe end", "\xc3", "\xed\xa0\x80 surrogate", "é中文🙂",
	"\u202e bidi \u200b zwsp", "\ufffd literal", strings300(),
}

func strings300() string { return string(bytes.Repeat([]byte("a<"), 150)) }

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range hostile {
		if got, want := jsonenc.AppendString([]byte("x"), s), append([]byte("x"), marshal(t, s)...); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
	for c := range 256 { // every byte alone
		s := string([]byte{byte(c)})
		if got, want := jsonenc.AppendString(nil, s), marshal(t, s); !bytes.Equal(got, want) {
			t.Errorf("byte %#x: got %s, want %s", c, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := marshal(t, s)
		got := jsonenc.AppendString(nil, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s does not decode: %v", s, got, err)
		}
	})
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, math.Copysign(0, -1), 1, 0.001, 1.5, 12.345, 1e-6, 9.99e-7, 1e-9, 1e20, 1e21, 1.5e300, -2.5e-8, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		got, err := jsonenc.AppendFloat(nil, f)
		if want := marshal(t, f); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%v: got %s (%v), want %s", f, got, err, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := jsonenc.AppendFloat([]byte("x"), f); err == nil || string(got) != "x" {
			t.Errorf("%v: got %s, %v; want x and an error", f, got, err)
		}
	}
}

func TestAppendTimeMatchesEncodingJSON(t *testing.T) {
	for _, tm := range []time.Time{{}, time.Unix(0, 0).UTC(), time.Date(2026, 12, 2, 16, 10, 0, 123456789, time.UTC),
		time.Date(2026, 12, 2, 16, 10, 0, 120000000, time.FixedZone("x", 8*3600))} {
		got, err := jsonenc.AppendTime(nil, tm)
		if want := marshal(t, tm); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%v: got %s (%v), want %s", tm, got, err, want)
		}
	}
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := json.Marshal(tm); err == nil {
			t.Fatalf("encoding/json accepts %v", tm)
		}
		if got, err := jsonenc.AppendTime([]byte("x"), tm); err == nil || string(got) != "x" {
			t.Errorf("%v: got %s, %v; want x and an error", tm, got, err)
		}
	}
}

// TestAppendStringEveryByte: every byte alone, at the start, in the middle
// and at the end of plain text is written as encoding/json writes it (the
// plain-byte table and the copy of a plain start).
func TestAppendStringEveryByte(t *testing.T) {
	for b := range 256 {
		c := string([]byte{byte(b)})
		for _, s := range []string{c, c + "plain", "plain" + c, "pl" + c + "ain", "é" + c, c + c + "x"} {
			if got, want := jsonenc.AppendString(nil, s), marshal(t, s); !bytes.Equal(got, want) {
				t.Errorf("%q: got %s, want %s", s, got, want)
			}
		}
	}
}
