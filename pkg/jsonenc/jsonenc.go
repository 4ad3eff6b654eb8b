// Package jsonenc writes JSON by appending to a byte slice, byte for byte
// as encoding/json's Marshal writes the same values (HTML escaping on, map
// keys sorted, ES6 float formatting, RFC 3339 times), without reflection:
// for the hot encoders whose bytes must not change (audit records made on
// every API call, the audit log's leaves). Their tests compare with
// encoding/json on hostile inputs.
//
// An object is written a field a line, each key with its punctuation:
//
//	b = jsonenc.AppendString(append(b, `{"serial":`...), r.Serial)
//	b = jsonenc.AppendString(append(b, `,"api":`...), r.API)
//	b = append(b, '}')
package jsonenc

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// plainByte[b]: the ASCII byte b is written as itself (printable, not a
// quote, a backslash or one of the HTML characters encoding/json escapes).
var plainByte = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// AppendString appends s as a JSON string exactly as encoding/json's
// Marshal writes it: ", \ and control characters escaped (\b \f \n \r \t
// by name, others as \u00XX), <, > and & as \u003c \u003e \u0026, invalid
// UTF-8 bytes as \ufffd, U+2028 and U+2029 as \u2028 and \u2029.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	// The plain start, the common case (ids, codes, URLs): a table look-up
	// a byte, then copied whole.
	i := 0
	for i < len(s) && plainByte[s[i]] {
		i++
	}
	if i == len(s) {
		return append(append(dst, s...), '"')
	}
	start := 0
	for i < len(s) {
		b := s[i]
		if b < utf8.RuneSelf {
			if plainByte[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ErrFloat is what AppendFloat reports for NaN and infinities, which
// encoding/json refuses.
var ErrFloat = errors.New("jsonenc: NaN or infinite number")

// AppendFloat appends f as encoding/json writes a float64 (ES6 number
// formatting); ErrFloat for NaN and infinities (dst unchanged).
func AppendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, ErrFloat
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// AppendStringMap appends d as encoding/json writes a map[string]string
// (keys sorted), writing an empty or nil map as {}.
func AppendStringMap(dst []byte, d map[string]string) []byte {
	if len(d) == 0 {
		return append(dst, '{', '}')
	}
	var small [16]string
	keys := small[:0]
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		dst = AppendString(dst, d[k])
	}
	return append(dst, '}')
}

// AppendTime appends t as encoding/json writes a time.Time (its
// MarshalJSON: quoted RFC 3339 with nanoseconds); an error, as
// MarshalJSON's, for a year outside [0,9999] or an offset of 24 hours or
// more.
func AppendTime(dst []byte, t time.Time) ([]byte, error) {
	b, err := t.AppendText(append(dst, '"'))
	if err != nil {
		return dst, err
	}
	return append(b, '"'), nil
}
