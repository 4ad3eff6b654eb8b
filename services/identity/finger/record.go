// Package finger reads finger minutiae records (ISO/IEC 19794-2:2005 and
// ANSI INCITS 378-2004) and compares them. It has no gRPC or storage
// imports: identity's Authenticate and the benchmark use it alike.
//
// Both standards lay a record out as a header followed by finger views;
// each view holds up to 255 minutiae of 6 bytes and an extended data block.
// They differ in the header (ISO: a 4-byte record length; ANSI: a 2-byte
// length, or 0 followed by a 4-byte length, then a 4-byte CBEFF product
// identifier) and in the unit of a minutia's angle (ISO: 360/256 degrees,
// 0-255; ANSI: 2 degrees, 0-179).
package finger

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Format is the standard a record follows.
type Format uint8

// Formats.
const (
	ISO  Format = 1 // ISO/IEC 19794-2:2005
	ANSI Format = 2 // ANSI INCITS 378-2004
)

func (f Format) String() string {
	switch f {
	case ISO:
		return "ISO/IEC 19794-2:2005"
	case ANSI:
		return "ANSI INCITS 378-2004"
	}
	return "unknown format"
}

// MaxRecordSize bounds the records this package reads (a view holds at
// most 255 minutiae, so one finger needs about 1.6 KB; 64 KiB leaves room
// for many views and extended data).
const MaxRecordSize = 64 << 10

// Minutia types.
const (
	TypeOther       = 0
	TypeRidgeEnding = 1
	TypeBifurcation = 2
)

// Minutia is one minutia as recorded: pixel coordinates, the angle in the
// record's own unit (see Record.AngleRadians), type and quality (0-100).
type Minutia struct {
	X, Y    uint16
	Angle   uint8
	Type    uint8
	Quality uint8
}

// View is one finger view: finger position (0 unknown, 1-10 right thumb
// to left little finger), view number, impression type, quality (0-100)
// and its minutiae. Extended data (ridge counts, cores, deltas) is
// checked for framing and skipped.
type View struct {
	Position   uint8
	Number     uint8
	Impression uint8
	Quality    uint8
	Minutiae   []Minutia
}

// Record is a parsed finger minutiae record.
type Record struct {
	Format        Format
	Width, Height uint16 // image size in pixels
	XRes, YRes    uint16 // pixels per centimetre
	Views         []View
}

// AngleRadians converts a minutia angle of this record's format to
// radians in [0, 2π).
func (r *Record) AngleRadians(a uint8) float64 {
	if r.Format == ANSI {
		return float64(a) * 2 * math.Pi / 180
	}
	return float64(a) * 2 * math.Pi / 256
}

// FormatError says why a record was refused and where.
type FormatError struct {
	Offset int    // byte offset of the offending field
	Reason string // for a person: what is wrong
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("finger minutiae record: at byte %d: %s", e.Offset, e.Reason)
}

func bad(off int, format string, args ...any) error {
	return &FormatError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

const (
	isoHeaderLen       = 24
	ansiHeaderLen      = 26
	ansiLargeHeaderLen = 30
	viewHeaderLen      = 4
	minutiaLen         = 6
)

// Parse reads a record, recognising its format from the header: the
// record length field must equal len(b) (ISO: 4 bytes at offset 8; ANSI:
// 2 bytes at offset 8, or 0 there and 4 bytes at offset 10).
func Parse(b []byte) (*Record, error) {
	if err := checkStart(b); err != nil {
		return nil, err
	}
	switch {
	case len(b) >= 12 && int(binary.BigEndian.Uint32(b[8:12])) == len(b):
		return parse(b, ISO)
	case int(binary.BigEndian.Uint16(b[8:10])) == len(b):
		return parse(b, ANSI)
	case binary.BigEndian.Uint16(b[8:10]) == 0 && len(b) >= 14 && int(binary.BigEndian.Uint32(b[10:14])) == len(b):
		return parse(b, ANSI)
	}
	return nil, bad(8, "the record length field (ISO: %d, ANSI: %d) does not match the %d bytes received",
		be32(b, 8), binary.BigEndian.Uint16(b[8:10]), len(b))
}

// ParseAs reads a record that must follow format f.
func ParseAs(b []byte, f Format) (*Record, error) {
	if f != ISO && f != ANSI {
		return nil, bad(0, "unknown format %d", f)
	}
	if err := checkStart(b); err != nil {
		return nil, err
	}
	return parse(b, f)
}

func be32(b []byte, off int) uint32 {
	if len(b) < off+4 {
		return 0
	}
	return binary.BigEndian.Uint32(b[off : off+4])
}

func checkStart(b []byte) error {
	if len(b) > MaxRecordSize {
		return bad(0, "record of %d bytes exceeds the limit of %d bytes", len(b), MaxRecordSize)
	}
	if len(b) < isoHeaderLen {
		return bad(len(b), "record of %d bytes is shorter than any record header (%d bytes)", len(b), isoHeaderLen)
	}
	if string(b[0:4]) != "FMR\x00" {
		return bad(0, "format identifier is not \"FMR\\0\": not a finger minutiae record")
	}
	if string(b[4:8]) != " 20\x00" {
		return bad(4, "version %q is not supported (only \" 20\": ISO/IEC 19794-2:2005, ANSI INCITS 378-2004)", trimZero(b[4:8]))
	}
	return nil
}

func trimZero(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// parse validates b in one pass without allocating, then fills a Record
// whose slices are sized exactly from what the first pass counted: the
// memory it takes is bounded by the record's own length.
func parse(b []byte, f Format) (*Record, error) {
	r := Record{Format: f}
	off, err := header(b, &r)
	if err != nil {
		return nil, err
	}
	nviews := int(b[off-2])
	views, minutiae, err := walkViews(b, off, nviews, &r, nil, nil)
	if err != nil {
		return nil, err
	}
	out := &r
	out.Views = make([]View, views)
	ms := make([]Minutia, minutiae)
	if _, _, err := walkViews(b, off, nviews, &r, out.Views, ms); err != nil {
		return nil, err // cannot happen: the first pass accepted the same bytes
	}
	return out, nil
}

// header checks the header and returns the offset of the first view.
func header(b []byte, r *Record) (int, error) {
	off := 8
	switch r.Format {
	case ISO:
		if l := be32(b, 8); int(l) != len(b) {
			return 0, bad(8, "record length field says %d bytes but %d were received", l, len(b))
		}
		off = 12
	case ANSI:
		if len(b) < ansiHeaderLen {
			return 0, bad(len(b), "record of %d bytes is shorter than the ANSI header (%d bytes)", len(b), ansiHeaderLen)
		}
		l := int(binary.BigEndian.Uint16(b[8:10]))
		off = 10
		if l == 0 {
			if len(b) < ansiLargeHeaderLen {
				return 0, bad(len(b), "record of %d bytes is shorter than the ANSI header with a 4-byte length (%d bytes)", len(b), ansiLargeHeaderLen)
			}
			l = int(binary.BigEndian.Uint32(b[10:14]))
			off = 14
			if l < 0x10000 {
				return 0, bad(10, "a 4-byte record length (%d) is only allowed above 65535 bytes", l)
			}
		}
		if l != len(b) {
			return 0, bad(8, "record length field says %d bytes but %d were received", l, len(b))
		}
		off += 4 // CBEFF product identifier (owner, type)
	}
	// Capture equipment: 4 bits compliance, 12 bits equipment id: any.
	off += 2
	r.Width = binary.BigEndian.Uint16(b[off:])
	r.Height = binary.BigEndian.Uint16(b[off+2:])
	r.XRes = binary.BigEndian.Uint16(b[off+4:])
	r.YRes = binary.BigEndian.Uint16(b[off+6:])
	if r.Width == 0 || r.Height == 0 {
		return 0, bad(off, "image size %dx%d: width and height must not be zero", r.Width, r.Height)
	}
	if r.XRes == 0 || r.YRes == 0 {
		return 0, bad(off+4, "resolution %dx%d pixels/cm: must not be zero", r.XRes, r.YRes)
	}
	off += 8
	if b[off] == 0 {
		return 0, bad(off, "the record holds no finger view")
	}
	if b[off+1] != 0 {
		return 0, bad(off+1, "reserved header byte is %d, must be 0", b[off+1])
	}
	return off + 2, nil
}

// walkViews checks (views == nil) or fills the finger views starting at
// off, and returns how many views and minutiae it found.
func walkViews(b []byte, off, nviews int, r *Record, views []View, ms []Minutia) (int, int, error) {
	var nextView [11]uint8 // next allowed view number per finger position
	total := 0
	for v := range nviews {
		if len(b)-off < viewHeaderLen {
			return 0, 0, bad(off, "finger view %d of %d: record ends inside its header", v+1, nviews)
		}
		pos, num, imp, q, n := b[off], b[off+1]>>4, b[off+1]&0x0f, b[off+2], int(b[off+3])
		if pos > 10 {
			return 0, 0, bad(off, "finger view %d: finger position %d is not 0-10", v+1, pos)
		}
		if num < nextView[pos] {
			return 0, 0, bad(off+1, "finger view %d: view number %d repeats or goes back for finger position %d", v+1, num, pos)
		}
		if nextView[pos] == 0 && num != 0 {
			return 0, 0, bad(off+1, "finger view %d: the first view of finger position %d has number %d, must be 0", v+1, pos, num)
		}
		nextView[pos] = num + 1
		switch imp {
		case 0, 1, 2, 3, 8, 9: // live/non-live plain/rolled, swipe, contactless
		default:
			return 0, 0, bad(off+1, "finger view %d: impression type %d is not defined", v+1, imp)
		}
		if q > 100 {
			return 0, 0, bad(off+2, "finger view %d: finger quality %d is above 100", v+1, q)
		}
		off += viewHeaderLen
		if len(b)-off < n*minutiaLen {
			return 0, 0, bad(off, "finger view %d: %d minutiae declared but only %d bytes left (%d needed)", v+1, n, len(b)-off, n*minutiaLen)
		}
		for i := range n {
			m, fe := minutia(b[off:off+minutiaLen], r)
			if fe != nil {
				fe.Offset += off
				fe.Reason = fmt.Sprintf("finger view %d, minutia %d: %s", v+1, i+1, fe.Reason)
				return 0, 0, fe
			}
			if ms != nil {
				ms[total+i] = m
			}
			off += minutiaLen
		}
		if views != nil {
			views[v] = View{Position: pos, Number: num, Impression: imp, Quality: q,
				Minutiae: ms[total : total+n : total+n]}
		}
		total += n
		var err error
		if off, err = extended(b, off, v+1); err != nil {
			return 0, 0, err
		}
	}
	if off != len(b) {
		return 0, 0, bad(off, "%d bytes follow the last finger view", len(b)-off)
	}
	return nviews, total, nil
}

func minutia(p []byte, r *Record) (Minutia, *FormatError) {
	xw, yw := binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
	m := Minutia{Type: uint8(xw >> 14), X: xw & 0x3fff, Y: yw & 0x3fff, Angle: p[4], Quality: p[5]}
	fe := func(off int, format string, args ...any) *FormatError {
		return &FormatError{Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case m.Type == 3:
		return m, fe(0, "minutia type 3 is reserved")
	case yw>>14 != 0:
		return m, fe(2, "reserved bits of the y coordinate are not 0")
	case m.X >= r.Width || m.Y >= r.Height:
		return m, fe(0, "position (%d,%d) lies outside the %dx%d image", m.X, m.Y, r.Width, r.Height)
	case r.Format == ANSI && m.Angle > 179:
		return m, fe(4, "angle %d is above 179 (ANSI unit: 2 degrees)", m.Angle)
	case m.Quality > 100:
		return m, fe(5, "quality %d is above 100", m.Quality)
	}
	return m, nil
}

// extended checks the framing of a view's extended data block: a 2-byte
// total length, then blocks of type (2 bytes), length (2 bytes, counting
// its 4-byte header) and data, whose lengths add up to the total.
func extended(b []byte, off, view int) (int, error) {
	if len(b)-off < 2 {
		return 0, bad(off, "finger view %d: record ends before the extended data length", view)
	}
	total := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if len(b)-off < total {
		return 0, bad(off-2, "finger view %d: extended data of %d bytes declared but only %d bytes left", view, total, len(b)-off)
	}
	end := off + total
	for off < end {
		if end-off < 4 {
			return 0, bad(off, "finger view %d: extended data ends inside a block header", view)
		}
		typ, l := binary.BigEndian.Uint16(b[off:]), int(binary.BigEndian.Uint16(b[off+2:]))
		if typ == 0 {
			return 0, bad(off, "finger view %d: extended data type 0 is reserved", view)
		}
		if l < 4 || l > end-off {
			return 0, bad(off+2, "finger view %d: extended data block length %d does not fit (4 to %d)", view, l, end-off)
		}
		off += l
	}
	return end, nil
}

// Encode writes r in its format (the inverse of Parse; views carry no
// extended data). It is used by tests, the generator and tools.
func Encode(r *Record) ([]byte, error) {
	size := isoHeaderLen
	if r.Format == ANSI {
		size = ansiHeaderLen
	}
	if len(r.Views) == 0 || len(r.Views) > 255 {
		return nil, fmt.Errorf("finger: %d views, must be 1-255", len(r.Views))
	}
	for _, v := range r.Views {
		if len(v.Minutiae) > 255 {
			return nil, fmt.Errorf("finger: %d minutiae in a view, at most 255", len(v.Minutiae))
		}
		size += viewHeaderLen + minutiaLen*len(v.Minutiae) + 2
	}
	large := r.Format == ANSI && size > 0xffff
	if large {
		size += 4
	}
	b := make([]byte, 0, size)
	b = append(b, "FMR\x00 20\x00"...)
	switch r.Format {
	case ISO:
		b = binary.BigEndian.AppendUint32(b, uint32(size))
	case ANSI:
		if large {
			b = binary.BigEndian.AppendUint16(b, 0)
			b = binary.BigEndian.AppendUint32(b, uint32(size))
		} else {
			b = binary.BigEndian.AppendUint16(b, uint16(size))
		}
		b = append(b, 0, 0x33, 0, 1) // CBEFF product identifier (owner, type)
	default:
		return nil, fmt.Errorf("finger: unknown format %d", r.Format)
	}
	b = append(b, 0, 0)
	for _, v := range []uint16{r.Width, r.Height, r.XRes, r.YRes} {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	b = append(b, uint8(len(r.Views)), 0)
	for _, v := range r.Views {
		b = append(b, v.Position, v.Number<<4|v.Impression&0x0f, v.Quality, uint8(len(v.Minutiae)))
		for _, m := range v.Minutiae {
			b = binary.BigEndian.AppendUint16(b, uint16(m.Type)<<14|m.X&0x3fff)
			b = binary.BigEndian.AppendUint16(b, m.Y&0x3fff)
			b = append(b, m.Angle, m.Quality)
		}
		b = append(b, 0, 0)
	}
	return b, nil
}
