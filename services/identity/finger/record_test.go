package finger

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func sampleRecord(f Format) *Record {
	ms := make([]Minutia, 12)
	for i := range ms {
		ms[i] = Minutia{X: uint16(20 + 25*i), Y: uint16(300 - 20*i), Angle: uint8(i * 13), Type: uint8(1 + i%2), Quality: 60}
	}
	return &Record{Format: f, Width: 400, Height: 500, XRes: 197, YRes: 197,
		Views: []View{{Position: 2, Quality: 80, Minutiae: ms}, {Position: 2, Number: 1, Impression: 8, Quality: 70, Minutiae: ms[:5]}}}
}

func encode(t testing.TB, r *Record) []byte {
	t.Helper()
	b, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{ISO, ANSI} {
		want := sampleRecord(f)
		b := encode(t, want)
		wantLen := 24 + 2*(4+2) + 17*6
		if f == ANSI {
			wantLen += 2
		}
		if len(b) != wantLen {
			t.Fatalf("%v: %d bytes, want %d", f, len(b), wantLen)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if got.Format != f || got.Width != 400 || got.Height != 500 || got.XRes != 197 || len(got.Views) != 2 {
			t.Fatalf("%v: header %+v", f, got)
		}
		for v := range want.Views {
			w, g := want.Views[v], got.Views[v]
			if g.Position != w.Position || g.Number != w.Number || g.Impression != w.Impression || g.Quality != w.Quality || len(g.Minutiae) != len(w.Minutiae) {
				t.Fatalf("%v view %d: %+v, want %+v", f, v, g, w)
			}
			for i := range w.Minutiae {
				if g.Minutiae[i] != w.Minutiae[i] {
					t.Fatalf("%v view %d minutia %d: %+v, want %+v", f, v, i, g.Minutiae[i], w.Minutiae[i])
				}
			}
		}
		if _, err := ParseAs(b, f); err != nil {
			t.Fatalf("ParseAs(%v): %v", f, err)
		}
	}
}

func TestAngles(t *testing.T) {
	iso, ansi := &Record{Format: ISO}, &Record{Format: ANSI}
	if got := iso.AngleRadians(64); got != 3.141592653589793/2 {
		t.Fatalf("ISO 64 = %v rad, want π/2", got)
	}
	if got := ansi.AngleRadians(45); got != 3.141592653589793/2 {
		t.Fatalf("ANSI 45 = %v rad, want π/2", got)
	}
}

// TestMalformed: every malformed record is refused with a reason that
// names the problem, at the right offset.
func TestMalformed(t *testing.T) {
	iso := func() []byte { return encode(t, sampleRecord(ISO)) }
	ansi := func() []byte { return encode(t, sampleRecord(ANSI)) }
	const v1 = 24 // first view of the ISO sample
	const m1 = v1 + 4
	cases := []struct {
		name   string
		b      []byte
		offset int
		reason string
	}{
		{"empty", nil, 0, "shorter than any record header"},
		{"short", iso()[:20], 20, "shorter than any record header"},
		{"magic", set(iso(), 0, 'X'), 0, `not "FMR\0"`},
		{"version", set(iso(), 5, '3'), 4, `version " 30" is not supported`},
		{"length", iso()[:len(iso())-1], 8, "does not match the"},
		{"iso length as ansi", func() []byte { b := iso(); return b }()[:60], 8, "does not match"},
		{"width", set16(iso(), 14, 0), 14, "width and height must not be zero"},
		{"resolution", set16(iso(), 20, 0), 18, "resolution"},
		{"no views", set(iso(), 22, 0), 22, "no finger view"},
		{"reserved", set(iso(), 23, 1), 23, "reserved header byte"},
		{"position", set(iso(), v1, 11), v1, "finger position 11 is not 0-10"},
		{"impression", set(iso(), v1+1, 0x05), v1 + 1, "impression type 5"},
		{"first view number", set(iso(), v1+1, 0x10), v1 + 1, "first view of finger position 2 has number 1"},
		{"finger quality", set(iso(), v1+2, 101), v1 + 2, "finger quality 101"},
		{"minutiae count", set(iso(), v1+3, 200), v1 + 4, "200 minutiae declared"},
		{"type", set(iso(), m1, 0xc0), m1, "minutia 1: minutia type 3 is reserved"},
		{"y reserved", set(iso(), m1+2, 0x41), m1 + 2, "reserved bits of the y coordinate"},
		{"outside", set16(iso(), m1+6, 0x4000|450), m1 + 6, "minutia 2: position (450,280) lies outside the 400x500 image"},
		{"quality", set(iso(), m1+5, 101), m1 + 5, "quality 101 is above 100"},
		{"ansi angle", set(ansi(), 26+4+4, 180), 26 + 4 + 4, "angle 180 is above 179"},
		{"extended length", set16(iso(), m1+12*6, 40), m1 + 12*6, "extended data of 40 bytes declared"},
		{"second view number", set(iso(), m1+12*6+2+1, 0x08), m1 + 12*6 + 2 + 1, "view number 0 repeats"},
		{"trailing", withLen(append(iso(), 0, 0)), len(iso()), "2 bytes follow the last finger view"},
		{"extended block", extendedBlock(t, 0x0001, 3), m1 + 12*6 + 2 + 2, "extended data block length 3 does not fit"},
		{"extended type 0", extendedBlock(t, 0, 8), m1 + 12*6 + 2, "extended data type 0 is reserved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Parse(c.b)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Parse = %+v, %v; want a FormatError", r, err)
			}
			if fe.Offset != c.offset || !strings.Contains(fe.Reason, c.reason) {
				t.Fatalf("error %q at %d, want %q at %d", fe.Reason, fe.Offset, c.reason, c.offset)
			}
		})
	}
}

func set(b []byte, off int, v byte) []byte { b[off] = v; return b }

func set16(b []byte, off int, v uint16) []byte {
	binary.BigEndian.PutUint16(b[off:], v)
	return b
}

// withLen fixes the ISO record length field after an edit.
func withLen(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)))
	return b
}

// extendedBlock gives the first view of the ISO sample one extended data
// block of type typ and declared length l (8 bytes of room).
func extendedBlock(t *testing.T, typ, l uint16) []byte {
	b := encode(t, sampleRecord(ISO))
	at := 24 + 4 + 12*6
	ext := []byte{0, 8, byte(typ >> 8), byte(typ), byte(l >> 8), byte(l), 0, 0, 0, 0}
	out := append(append(append([]byte{}, b[:at]...), ext...), b[at+2:]...)
	return withLen(out)
}

func TestExtendedData(t *testing.T) {
	b := extendedBlock(t, 0x0001, 8)
	r, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Views) != 2 || len(r.Views[0].Minutiae) != 12 {
		t.Fatalf("%+v", r)
	}
}

// TestParseAllocations: a parse allocates the record, its views and one
// array of minutiae, nothing per field.
func TestParseAllocations(t *testing.T) {
	b := encode(t, sampleRecord(ANSI))
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(b) }); n > 3 {
		t.Fatalf("%v allocations per Parse, want at most 3", n)
	}
	bad := set(encode(t, sampleRecord(ISO)), 24, 11)
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(bad) }); n > 3 {
		t.Fatalf("%v allocations per refused Parse, want at most 3 (the error)", n)
	}
}

func TestLimits(t *testing.T) {
	if _, err := Parse(make([]byte, MaxRecordSize+1)); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("oversized record: %v", err)
	}
	if _, err := ParseAs(encode(t, sampleRecord(ISO)), ANSI); err == nil {
		t.Fatal("an ISO record parsed as ANSI")
	}
}
