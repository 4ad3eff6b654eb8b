package finger

import (
	"errors"
	"testing"
	"unsafe"
)

// FuzzParse: no input makes Parse (or Prepare and Score on what it
// accepts) panic; a refusal is a FormatError pointing inside the input;
// what is accepted takes no more memory than the input declares: every
// view and minutia comes from bytes of the record, and the slices are
// exactly as long as what they hold.
func FuzzParse(f *testing.F) {
	for _, fm := range []Format{ISO, ANSI} {
		b, _ := Encode(sampleRecord(fm))
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Offset < 0 || fe.Offset > len(b) || fe.Reason == "" {
				t.Fatalf("error %#v for %d bytes", err, len(b))
			}
			return
		}
		if cap(r.Views) != len(r.Views) {
			t.Fatalf("views: cap %d, len %d", cap(r.Views), len(r.Views))
		}
		total := 0
		for _, v := range r.Views {
			if cap(v.Minutiae) != len(v.Minutiae) {
				t.Fatalf("minutiae: cap %d, len %d", cap(v.Minutiae), len(v.Minutiae))
			}
			total += len(v.Minutiae)
		}
		// Declared size bound: each view header is 4 bytes (plus 2 of
		// extended data length), each minutia 6.
		if len(r.Views)*6+total*6 > len(b) {
			t.Fatalf("%d views and %d minutiae from %d bytes", len(r.Views), total, len(b))
		}
		mem := int(unsafe.Sizeof(View{}))*len(r.Views) + int(unsafe.Sizeof(Minutia{}))*total
		if mem > 8*len(b) {
			t.Fatalf("%d bytes of views and minutiae for a %d-byte record", mem, len(b))
		}
		for i := range r.Views {
			tp, err := Prepare(r, i)
			if err != nil {
				continue
			}
			if s := Score(tp, tp); s < 0 || s > 1 {
				t.Fatalf("self score %v out of [0,1]", s)
			}
		}
	})
}
